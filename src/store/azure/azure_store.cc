#include "store/azure/azure_store.h"

#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common/strings.h"
#include "store/http_backend.h"

namespace shoal {
namespace {

constexpr const char* kApiVersion = "2021-08-06";
// Azurite's well-known development account (public, documented by Microsoft).
constexpr const char* kDevAccount = "devstoreaccount1";
constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

using Params = std::vector<std::pair<std::string, std::string>>;

// Azure's errors: the code in x-ms-error-code (HEAD answers have only that), the message in an
// XML <Error> body.
const http::ErrorFormat kAzureErrors{
    .describe = [](const http::Response& r) { return DescribeXmlError(r, "x-ms-error-code"); },
    .code = nullptr,  // the HTTP status decides
    .failed_2xx = nullptr};

class AzureStore;

class AzureUpload final : public MultipartUpload {
 public:
  // `nonce` empty: a new upload, with a nonce of its own.
  AzureUpload(AzureStore* store, std::string key, ObjectMeta meta, std::string nonce = "");
  ~AzureUpload() override = default;
  Status PutPart(uint32_t index, uint64_t offset, std::string_view data) override;
  Result<ObjectInfo> Complete(uint32_t num_parts, const WriteCondition& only_if) override;
  // Uncommitted blocks are discarded by the service (after a week, or when the blob's next
  // block list is committed); nothing to do.
  void Abort() override {}
  // The nonce of its block ids: blocks put again under them replace the uncommitted ones.
  std::string id() const override { return nonce_; }
  // The blob's uncommitted blocks that carry this upload's block ids (those of other uploads
  // and the committed ones are not its own). A blob with no block at all holds none.
  Result<uint32_t> FindStoredParts() override;
  bool ReusePart(uint32_t index, std::string_view data) override;

 private:
  std::string BlockId(uint32_t index) const;

  AzureStore* store_;
  std::string key_;
  ObjectMeta meta_;    // set by Put Block List
  std::string nonce_;  // makes this upload's block ids unique
  std::atomic<uint64_t> size_{0};
  std::mutex mu_;
  std::map<uint32_t, uint64_t> stored_;  // part index -> size of its staged block; guarded by mu_
};

class AzureStore final : public ObjectStore {
 public:
  AzureStore(AzureConfig config, std::string container, std::string account_name)
      : config_(std::move(config)), container_(std::move(container)), account_name_(std::move(account_name)) {
    size_t scheme = config_.endpoint.find("://");
    size_t slash = config_.endpoint.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    endpoint_path_ = slash == std::string::npos ? "" : config_.endpoint.substr(slash);
  }

  std::string Describe() const override {
    return "az://" + container_ + (account_name_.empty() ? "" : "@" + account_name_);
  }
  bool HonoursIfAbsent() const override { return true; }
  PartLimits Limits() const override {
    return PartLimits{1, 4000ull << 20, 50000};
  }

  // One signed request with retries; 2xx bodies land in resp.
  Status Call(const std::string& method, const std::string& key, const Params& query,
              const http::Request& base, http::Response* resp, const std::string& what,
              const net::RetryPolicy* retry = nullptr) {
    return Authorized(what, [&](Auth* auth, const http::ErrorFormat& format) {
      auto build = [&] {
        http::Request req = base;
        Sign(method, key, query, &req, auth);
        return req;
      };
      return http::Call(&client_, retry ? *retry : retry_, &stats_, build, resp, what, format);
    });
  }

  Result<ObjectInfo> PutBlob(const std::string& key, std::string_view data, const ObjectMeta& meta,
                             const WriteCondition& only_if) {
    http::Request req;
    req.method = "PUT";
    req.body = data;
    req.headers = {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}};
    AddMetaHeaders(meta, &req);
    AddCondition(only_if, &req);
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Conditional(only_if, resp, Call("PUT", key, {}, req, &resp, "Put Blob " + Url(key))));
    return InfoFrom(key, data.size(), resp);
  }

  static void AddCondition(const WriteCondition& only_if, http::Request* req) {
    if (!only_if.if_match.empty()) req->headers.push_back({"If-Match", "\"" + only_if.if_match + "\""});
    if (only_if.if_absent) req->headers.push_back({"If-None-Match", "*"});
  }
  // Azure answers an If-None-Match: * write over an existing blob 409 (BlobAlreadyExists), an
  // unmet If-Match 412: both are the condition failing.
  static Status Conditional(const WriteCondition& only_if, const http::Response& resp, Status st) {
    if (!st.ok() && only_if.if_absent && resp.status == 409) {
      return Status::PreconditionFailed("the blob exists (written meanwhile): " + st.message());
    }
    return st;
  }

  Status PutBlock(const std::string& key, const std::string& block_id, std::string_view data) {
    http::Request req;
    req.method = "PUT";
    req.body = data;
    req.headers = {{"Content-Type", "application/octet-stream"}};
    http::Response resp;
    return Call("PUT", key, {{"comp", "block"}, {"blockid", block_id}}, req, &resp,
                "Put Block " + Url(key));
  }

  // The uncommitted blocks of `key` (Get Block List): decoded block id -> size. None when
  // the blob does not exist (no block was ever staged or committed).
  Result<std::map<std::string, uint64_t>> UncommittedBlocks(const std::string& key) {
    http::Request req;
    req.method = "GET";
    http::Response resp;
    const std::string what = "Get Block List " + Url(key);
    Status st = Call("GET", key, {{"blocklisttype", "uncommitted"}, {"comp", "blocklist"}}, req, &resp, what);
    if (st.IsNotFound()) return std::map<std::string, uint64_t>{};
    SHOAL_RETURN_IF_ERROR(st);
    pugi::xml_document doc;
    if (!doc.load_buffer(resp.body.data(), resp.body.size())) return Status::IOError(what + ": the answer is not XML");
    std::map<std::string, uint64_t> blocks;
    for (pugi::xml_node n : doc.child("BlockList").child("UncommittedBlocks").children("Block")) {
      auto name = Base64Decode(n.child_value("Name"));
      SHOAL_ASSIGN_OR_RETURN(uint64_t size, XmlNumber(n, "Size", what + ": a block's"));
      if (name.ok()) blocks[*name] = size;
    }
    return blocks;
  }

  Result<ObjectInfo> PutBlockList(const std::string& key, const std::vector<std::string>& ids,
                                  uint64_t size, const ObjectMeta& meta, const WriteCondition& only_if) {
    std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    for (const auto& id : ids) xml += "<Latest>" + id + "</Latest>";
    xml += "</BlockList>";
    http::Request req;
    req.method = "PUT";
    req.body = xml;
    req.headers = {{"Content-Type", "application/xml"}};
    AddMetaHeaders(meta, &req);
    AddCondition(only_if, &req);
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Conditional(only_if, resp, Call("PUT", key, {{"comp", "blocklist"}}, req, &resp,
                                                          "Put Block List " + Url(key))));
    return InfoFrom(key, size, resp);
  }

 protected:
  Status GetImpl(const std::string& key, const ReadOptions& opts, const ByteSink& sink) override {
    // A read refused part-way (its token expired between two resumed attempts) goes on after
    // the bytes the sink has, pinned to the version they came from.
    uint64_t delivered = 0;
    std::string etag = opts.if_match;
    ByteSink counted = [&](const char* data, size_t len) {
      SHOAL_RETURN_IF_ERROR(sink(data, len));
      delivered += len;
      return Status::Ok();
    };
    http::Answered answered;
    Status st = Authorized("GET " + Url(key), [&](Auth* auth, const http::ErrorFormat& format) {
      ReadOptions rest = opts;
      if (delivered > 0) {
        rest.offset += delivered;
        if (rest.length != ReadOptions::kToEnd) rest.length -= delivered;
        rest.if_match = etag;
      }
      auto build = [&](uint64_t offset, uint64_t length, const std::string& pinned) {
        if (!pinned.empty()) etag = pinned;
        http::Request req;
        std::string range = http::RangeHeader(offset, length);
        if (!range.empty()) req.headers.push_back({"x-ms-range", range});
        if (!pinned.empty()) req.headers.push_back({"If-Match", "\"" + pinned + "\""});
        Sign("GET", key, {}, &req, auth);
        return req;
      };
      return http::ResumableGet(&client_, retry_, &stats_, RangeOf(rest), rest.if_match, build,
                                counted, Url(key), format, rest.if_size,
                                opts.answered != nullptr ? &answered : nullptr);
    });
    if (st.ok() && opts.answered != nullptr) *opts.answered = InfoOfAnswer(key, answered, "x-ms-meta-");
    return st;
  }

  Result<ObjectInfo> HeadImpl(const std::string& key) override {
    http::Request req;
    req.method = "HEAD";
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Call("HEAD", key, {}, req, &resp, "Get Blob Properties " + Url(key)));
    auto size = resp.NumberHeader("content-length");
    if (!size.ok()) return size.status().WithContext("Get Blob Properties " + Url(key));
    ObjectInfo info = InfoFrom(key, *size, resp);
    info.meta = MetaFromHeaders(resp, "x-ms-meta-");
    return info;
  }

  Result<ListPage> ListImpl(const ListOptions& opts) override {
    Params query = {{"restype", "container"}, {"comp", "list"},
                    {"maxresults", std::to_string(opts.max_keys)}};
    if (!opts.prefix.empty()) query.push_back({"prefix", opts.prefix});
    if (!opts.delimiter.empty()) query.push_back({"delimiter", opts.delimiter});
    if (!opts.continuation.empty()) query.push_back({"marker", opts.continuation});
    http::Request req;
    http::Response resp;
    const net::RetryPolicy quick = QuickerWhenIncomplete(retry_, opts);
    SHOAL_RETURN_IF_ERROR(Call("GET", "", query, req, &resp, "List Blobs " + Describe(), &quick));
    pugi::xml_document doc;
    if (!doc.load_buffer(resp.body.data(), resp.body.size())) {
      return Status::IOError("List Blobs " + Describe() + ": the answer is not XML");
    }
    ListPage page;
    pugi::xml_node root = doc.child("EnumerationResults");
    for (pugi::xml_node n : root.child("Blobs").children()) {
      if (std::string_view(n.name()) == "Blob") {
        pugi::xml_node p = n.child("Properties");
        SHOAL_ASSIGN_OR_RETURN(uint64_t size, XmlNumber(p, "Content-Length", "List Blobs " + Describe() + ": blob " +
                                                                                 n.child_value("Name") + "'s"));
        page.objects.push_back(ObjectInfo{n.child_value("Name"), size, Unquote(p.child_value("Etag")),
                                          ParseHttpTime(p.child_value("Last-Modified"))});
      } else if (std::string_view(n.name()) == "BlobPrefix") {
        page.prefixes.push_back(n.child_value("Name"));
      }
    }
    page.next_continuation = root.child_value("NextMarker");
    return page;
  }

  Status DeleteImpl(const std::string& key) override {
    http::Request req;
    req.method = "DELETE";
    http::Response resp;
    Status st = Call("DELETE", key, {}, req, &resp, "Delete Blob " + Url(key));
    if (st.IsNotFound()) return Status::Ok();
    return st;
  }

  Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data,
                                   const ObjectMeta& meta, const WriteCondition& only_if) override {
    return PutBlob(key, data, meta, only_if);
  }

  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key,
                                                           const ObjectMeta& meta) override {
    return std::unique_ptr<MultipartUpload>(new AzureUpload(this, key, meta));
  }

  // Nothing to ask the service yet: the same block ids again (FindStoredParts asks which of
  // them are staged), and the commit names them (and sets the metadata, as Put Block List does
  // for a new upload).
  Result<std::unique_ptr<MultipartUpload>> ResumeUploadImpl(const std::string& key, const std::string& id,
                                                            const ObjectMeta& meta) override {
    bool hex = id.size() == RandomHex().size() &&
               id.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) return Status::NotFound("'" + id + "' names no upload of " + key + " (block ids of 16 hex digits)");
    return std::unique_ptr<MultipartUpload>(new AzureUpload(this, key, meta, id));
  }

  Status CreateBucketImpl() override {
    http::Request req;
    req.method = "PUT";
    http::Response resp;
    Status st = Call("PUT", "", {{"restype", "container"}}, req, &resp, "Create Container " + Describe());
    if (!st.ok() && resp.status == 409) return Status::Ok();  // already exists
    return st;
  }

 private:
  std::string Url(const std::string& key) const { return Describe() + "/" + key; }

  std::string Path(const std::string& key) const {
    std::string p = endpoint_path_ + "/" + UriEncode(container_, false);
    if (!key.empty()) p += "/" + UriEncode(key, true);
    return p;
  }

  // The bearer token of a request's attempts, and whether the service refused it.
  struct Auth {
    std::string token;     // the token the latest attempt carried; "" with a key or SAS
    bool refused = false;  // the latest answer refused the token
  };

  // True when an answer says the service refused the bearer token (expired, revoked, not yet
  // valid): a 401, or a 403 AuthenticationFailed / InvalidAuthenticationInfo (Azurite answers
  // an expired token so). Not a 403 AuthorizationPermissionMismatch: a role is missing, and a
  // new token would not have it either.
  static bool RefusedToken(const http::Response& r) {
    if (r.status == 401) return true;
    std::string code = r.Header("x-ms-error-code");
    return r.status == 403 && (code == "AuthenticationFailed" || code == "InvalidAuthenticationInfo");
  }

  // Runs `op` (one request with its retries, sent with Sign(..., auth) and failing through
  // `format`). With a token credential: when the service refuses the token, it is refreshed
  // once and `op` runs once more.
  template <typename Op>
  Status Authorized(const std::string& what, Op&& op) {
    Auth auth;
    http::ErrorFormat format = kAzureErrors;
    format.code = [&auth](const http::Response& r) -> std::optional<Code> {
      auth.refused = RefusedToken(r);
      return std::nullopt;
    };
    if (config_.token == nullptr) return Explain(op(&auth, format));
    Result<std::string> token = config_.token->Token();
    if (!token.ok()) return TokenError(what, token.status());
    auth.token = token.value();
    Status st = op(&auth, format);
    if (st.ok() || !auth.refused) return Explain(st);
    token = config_.token->Refresh(auth.token);
    if (!token.ok()) return TokenError(what, token.status());
    auth = Auth{token.value(), false};
    st = op(&auth, format);
    if (st.ok() || !auth.refused) return Explain(st);
    return Status(st.code(), st.message() + ": account '" + config_.account +
                                 "' refused a fresh Entra ID token from " + config_.source +
                                 " too; the reason is above (a token of another tenant or cloud? "
                                 "this machine's clock wrong?)");
  }

  Status TokenError(const std::string& what, const Status& st) const {
    return Status(st.code(), what + ": no token for account '" + config_.account + "': " + st.message());
  }

  // Fills in the URL (with the SAS token) and the auth headers of one attempt.
  void Sign(const std::string& method, const std::string& key, const Params& query,
            http::Request* req, Auth* auth) {
    req->method = method;
    std::string path = Path(key);
    std::string qs;
    for (const auto& [k, v] : query) qs += (qs.empty() ? "" : "&") + k + "=" + UriEncode(v, false);
    if (!config_.sas.empty()) qs += (qs.empty() ? "" : "&") + config_.sas;
    std::string base = config_.endpoint.substr(0, config_.endpoint.size() - endpoint_path_.size());
    req->url = base + path + (qs.empty() ? "" : "?" + qs);
    req->headers.push_back({"x-ms-date", FormatRfc1123(std::time(nullptr))});
    req->headers.push_back({"x-ms-version", kApiVersion});
    if (config_.token != nullptr) {
      // The cached token of this moment (a retry long after the first attempt gets a fresh
      // one); the previous one when none can be had, which the service then refuses.
      Result<std::string> token = config_.token->Token();
      if (token.ok()) auth->token = token.value();
      req->headers.push_back({"Authorization", "Bearer " + auth->token});
      return;
    }
    if (config_.key.empty()) return;  // SAS: the token in the URL is the credential
    req->headers.push_back(
        {"Authorization",
         AzureSharedKeyAuthorization(config_, method, path, query, req->headers, req->body.size())});
  }

  // Adds who we are to auth errors, and what to do.
  Status Explain(Status st) const {
    if (st.code() != Code::kPermissionDenied) return st;
    if (config_.token != nullptr) {
      return Status(st.code(), st.message() + ": account '" + config_.account +
                                   "' refused the Entra ID token from " + config_.source +
                                   "; check that the identity has a data role on the account or "
                                   "container (Storage Blob Data Contributor to write, Storage "
                                   "Blob Data Reader to read)");
    }
    return Status(st.code(), st.message() + ": account '" + config_.account + "' with the " +
                                 (config_.key.empty() ? "SAS token" : "account key") + " from " +
                                 config_.source +
                                 " was refused; check the credential and its permissions");
  }

  // The blob's properties and metadata as Put Blob and Put Block List take them (signed with
  // the other x-ms-* headers).
  static void AddMetaHeaders(const ObjectMeta& meta, http::Request* req) {
    for (auto& h : MetaHeaders(meta, &ContentField::azure, "x-ms-meta-")) req->headers.push_back(std::move(h));
  }

  static ObjectInfo InfoFrom(const std::string& key, uint64_t size, const http::Response& resp) {
    return ObjectInfo{key, size, Unquote(resp.Header("etag")),
                      ParseHttpTime(resp.Header("last-modified"))};
  }

  AzureConfig config_;
  std::string container_;
  std::string account_name_;  // as the URL named it; "" for the default account
  std::string endpoint_path_;  // "/devstoreaccount1" for Azurite, "" for Azure
  http::Client client_;
  net::RetryPolicy retry_;
};

AzureUpload::AzureUpload(AzureStore* store, std::string key, ObjectMeta meta, std::string nonce)
    : store_(store), key_(std::move(key)), meta_(std::move(meta)), nonce_(nonce.empty() ? RandomHex() : std::move(nonce)) {}

std::string AzureUpload::BlockId(uint32_t index) const {
  // Every block id of a blob must have the same length: 16 hex + '-' + 8 digits.
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s-%08u", nonce_.c_str(), index);
  return Base64Encode(buf);
}

Result<uint32_t> AzureUpload::FindStoredParts() {
  SHOAL_ASSIGN_OR_RETURN(auto blocks, store_->UncommittedBlocks(key_));
  std::map<uint32_t, uint64_t> found;
  const std::string prefix = nonce_ + "-";
  for (const auto& [name, size] : blocks) {
    if (!StartsWith(name, prefix) || name.size() != prefix.size() + 8) continue;
    std::string_view digits = std::string_view(name).substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
    found[static_cast<uint32_t>(std::strtoul(std::string(digits).c_str(), nullptr, 10))] = size;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stored_ = std::move(found);
  return static_cast<uint32_t>(stored_.size());
}

bool AzureUpload::ReusePart(uint32_t index, std::string_view data) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(index);
    if (it == stored_.end()) return false;
    bool same = it->second == data.size();
    stored_.erase(it);  // whatever happens now, PutPart decides what the store holds
    if (!same) return false;
  }
  size_ += data.size();
  return true;
}

Status AzureUpload::PutPart(uint32_t index, uint64_t /*offset*/, std::string_view data) {
  SHOAL_RETURN_IF_ERROR(store_->PutBlock(key_, BlockId(index), data));
  size_ += data.size();
  return Status::Ok();
}

Result<ObjectInfo> AzureUpload::Complete(uint32_t num_parts, const WriteCondition& only_if) {
  std::vector<std::string> ids;
  ids.reserve(num_parts);
  for (uint32_t i = 0; i < num_parts; i++) ids.push_back(BlockId(i));
  return store_->PutBlockList(key_, ids, size_.load(), meta_, only_if);
}

}  // namespace

std::string AzureSharedKeyAuthorization(const AzureConfig& config, const std::string& method,
                                        const std::string& path, const Params& query,
                                        const Params& headers, uint64_t content_length) {
  auto header = [&](const char* name) -> std::string {
    for (const auto& [k, v] : headers) {
      if (ToLower(k) == name) return v;
    }
    return "";
  };
  std::string to_sign = method + "\n" + header("content-encoding") + "\n" +
                        header("content-language") + "\n" +
                        (content_length > 0 ? std::to_string(content_length) : "") + "\n" +
                        header("content-md5") + "\n" + header("content-type") + "\n" +
                        header("date") + "\n" + header("if-modified-since") + "\n" +
                        header("if-match") + "\n" + header("if-none-match") + "\n" +
                        header("if-unmodified-since") + "\n" + header("range") + "\n";
  std::vector<std::pair<std::string, std::string>> ms;
  for (const auto& [k, v] : headers) {
    std::string lk = ToLower(k);
    if (StartsWith(lk, "x-ms-")) ms.push_back({lk, Trim(v)});
  }
  std::sort(ms.begin(), ms.end());
  for (const auto& [k, v] : ms) to_sign += k + ":" + v + "\n";
  to_sign += "/" + config.account + path;
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : query) q.push_back({ToLower(k), v});
  std::sort(q.begin(), q.end());
  for (const auto& [k, v] : q) to_sign += "\n" + k + ":" + v;
  auto key = Base64Decode(config.key);
  std::string sig = Base64Encode(HmacSha256(key.ok() ? key.value() : "", to_sign));
  return "SharedKey " + config.account + ":" + sig;
}

Result<AzureConfig> AzureConfig::FromConnectionString(std::string_view text, std::string source) {
  AzureConfig c;
  c.source = std::move(source);
  std::string protocol = "https", suffix = "core.windows.net";
  bool dev = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(pos, end - pos);
    pos = end + 1;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = ToLower(Trim(part.substr(0, eq)));
    std::string value = Trim(part.substr(eq + 1));
    if (name == "accountname") c.account = value;
    else if (name == "accountkey") c.key = value;
    else if (name == "blobendpoint") c.endpoint = value;
    else if (name == "sharedaccesssignature") c.sas = value;
    else if (name == "defaultendpointsprotocol") protocol = value;
    else if (name == "endpointsuffix") suffix = value;
    else if (name == "usedevelopmentstorage") dev = ToLower(value) == "true";
  }
  if (dev) {
    if (c.account.empty()) c.account = kDevAccount;
    if (c.key.empty() && c.sas.empty()) c.key = kDevKey;
    if (c.endpoint.empty()) c.endpoint = "http://127.0.0.1:10000/" + c.account;
  }
  if (!c.sas.empty() && c.sas.front() == '?') c.sas.erase(0, 1);
  if (c.endpoint.empty() && !c.account.empty()) {
    c.endpoint = protocol + "://" + c.account + ".blob." + suffix;
  }
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (c.account.empty() && !c.endpoint.empty()) {
    // SAS-only strings name no account; take it from the endpoint for messages.
    size_t s = c.endpoint.find("://");
    std::string host = c.endpoint.substr(s == std::string::npos ? 0 : s + 3);
    c.account = host.substr(0, host.find_first_of("./:"));
  }
  if (c.endpoint.empty() || (c.key.empty() && c.sas.empty())) {
    return Status::InvalidArgument(
        "the Azure connection string from " + c.source +
        " needs AccountName and AccountKey (or SharedAccessSignature and BlobEndpoint)");
  }
  if (!c.key.empty() && !Base64Decode(c.key).ok()) {
    return Status::InvalidArgument("the account key from " + c.source + " is not valid base64");
  }
  return c;
}

namespace {
// The variables of FromEnvironment with `prefix` in front; `account` is the account name when
// none is set.
Result<AzureConfig> AzureFromVariables(const std::string& prefix, const std::string& account_default) {
  auto var = [&](const char* name) { return prefix + name; };
  auto value = [&](const char* name) { return EnvValue(var(name).c_str()); };
  if (const char* cs = value("AZURE_STORAGE_CONNECTION_STRING")) {
    return AzureConfig::FromConnectionString(cs, var("AZURE_STORAGE_CONNECTION_STRING"));
  }
  const char* account = value("AZURE_STORAGE_ACCOUNT");
  if (account == nullptr && account_default.empty()) {
    return Status::InvalidArgument(
        "no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with "
        "AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or an Entra ID identity (AZURE_TENANT_ID and "
        "AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or a managed "
        "identity; see docs/azure-identity.md)");
  }
  AzureConfig c;
  c.account = account ? account : account_default;
  if (const char* key = value("AZURE_STORAGE_KEY")) {
    c.key = key;
    c.source = var("AZURE_STORAGE_KEY");
    if (!Base64Decode(c.key).ok()) {
      return Status::InvalidArgument(c.source + " is not valid base64: copy the key again");
    }
  } else if (const char* sas = value("AZURE_STORAGE_SAS_TOKEN")) {
    c.sas = sas;
    if (!c.sas.empty() && c.sas.front() == '?') c.sas.erase(0, 1);
    c.source = var("AZURE_STORAGE_SAS_TOKEN");
  } else {
    auto entra = EntraConfig::FromEnvironment();
    if (!entra.ok() && !prefix.empty()) {
      return Status::InvalidArgument("no credentials for the Azure account '" + account_default + "': set " +
                                     var("AZURE_STORAGE_CONNECTION_STRING") + ", or " + var("AZURE_STORAGE_KEY") +
                                     " or " + var("AZURE_STORAGE_SAS_TOKEN") +
                                     ", or give the process an Entra ID identity (" + entra.status().message() +
                                     ")");
    }
    if (!entra.ok()) return entra.status();
    c.token = EntraCredential(*entra);
    c.source = c.token->source();
  }
  const char* endpoint = value("AZURE_STORAGE_BLOB_ENDPOINT");
  c.endpoint = endpoint ? endpoint : "https://" + c.account + ".blob.core.windows.net";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (c.token != nullptr && !StartsWith(ToLower(c.endpoint), "https://")) {
    return Status::InvalidArgument(var("AZURE_STORAGE_BLOB_ENDPOINT") + "=" + c.endpoint +
                                   ": Entra ID tokens are sent only over https");
  }
  return c;
}
}  // namespace

Result<AzureConfig> AzureConfig::FromEnvironment() { return AzureFromVariables("", ""); }

std::string AzureConfig::AccountVariablePrefix(const std::string& name) {
  std::string prefix = "SHOAL_AZ_";
  for (char c : name) prefix += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return prefix + "_";
}

Result<AzureConfig> AzureConfig::ForAccount(const std::string& name) {
  return AzureFromVariables(AccountVariablePrefix(name), name);
}

std::shared_ptr<ObjectStore> NewAzureStore(const AzureConfig& config, const std::string& container,
                                           const std::string& account_name) {
  return std::make_shared<AzureStore>(config, container, account_name);
}

}  // namespace shoal
