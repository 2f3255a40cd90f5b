#include "store/s3/s3_store.h"

#include <pugixml.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common/strings.h"
#include "store/http_backend.h"

namespace shoal {
namespace {

// If-Match / If-None-Match: * for a conditional PutObject or CompleteMultipartUpload (AWS S3
// honours both; a server that ignores them writes unconditionally).
void AddCondition(const WriteCondition& only_if, http::Request* req) {
  if (!only_if.if_match.empty()) req->headers.push_back({"If-Match", "\"" + only_if.if_match + "\""});
  if (only_if.if_absent) req->headers.push_back({"If-None-Match", "*"});
}

using Params = std::vector<std::pair<std::string, std::string>>;
constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";

// S3's errors: an XML <Error> body with its code and message. CompleteMultipartUpload can
// fail after its 200 has been sent: the <Error> is then the 200's body.
const http::ErrorFormat kS3Errors{
    .describe = [](const http::Response& r) { return DescribeXmlError(r); },
    .code = nullptr,  // the HTTP status decides
    .failed_2xx =
        [](const http::Request& req, const http::Response& r) {
          return req.method == "POST" && r.body.find("<Error>") != std::string::npos;
        }};

class S3Store;

class S3Upload final : public MultipartUpload {
 public:
  S3Upload(S3Store* store, std::string key, std::string upload_id)
      : store_(store), key_(std::move(key)), upload_id_(std::move(upload_id)) {}
  ~S3Upload() override { Abort(); }
  Status PutPart(uint32_t index, uint64_t offset, std::string_view data) override;
  Result<ObjectInfo> Complete(uint32_t num_parts, const WriteCondition& only_if) override;
  void Abort() override;
  std::string id() const override { return upload_id_; }
  void Keep() override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  Result<uint32_t> FindStoredParts() override;
  bool ReusePart(uint32_t index, std::string_view data) override;

 private:
  struct StoredPart {
    uint64_t size = 0;
    std::string etag;  // as ListParts quotes it
  };

  S3Store* store_;
  std::string key_;
  std::string upload_id_;
  std::mutex mu_;
  std::map<uint32_t, std::string> etags_;  // part index -> ETag; guarded by mu_
  std::map<uint32_t, StoredPart> stored_;  // part index -> what ListParts said; guarded by mu_
  uint64_t size_ = 0;                      // guarded by mu_
  bool done_ = false;                      // completed or aborted; guarded by mu_
};

class S3Store final : public ObjectStore {
 public:
  S3Store(S3Config config, std::string bucket) : config_(std::move(config)), bucket_(std::move(bucket)) {
    if (config_.endpoint.empty()) {
      base_ = "https://" + bucket_ + ".s3." + config_.region + ".amazonaws.com";
      path_prefix_ = "";
    } else {
      base_ = config_.endpoint;
      while (!base_.empty() && base_.back() == '/') base_.pop_back();
      path_prefix_ = "/" + UriEncode(bucket_, false);
    }
    size_t s = base_.find("://");
    host_ = base_.substr(s == std::string::npos ? 0 : s + 3);
    host_ = host_.substr(0, host_.find('/'));
  }

  std::string Describe() const override { return "s3://" + bucket_; }
  PartLimits Limits() const override { return PartLimits{5ull << 20, 5ull << 30, 10000}; }

  // One signed request with retries; 2xx bodies land in resp.
  Status Call(const std::string& method, const std::string& key, const Params& query,
              const http::Request& base, http::Response* resp, const std::string& what,
              const net::RetryPolicy* retry = nullptr) {
    auto build = [&] {
      http::Request req = base;
      Sign(method, key, query, &req);
      return req;
    };
    return Explain(http::Call(&client_, retry ? *retry : retry_, &stats_, build, resp, what, kS3Errors));
  }

  std::string Url(const std::string& key) const { return "s3://" + bucket_ + "/" + key; }

 protected:
  Status GetImpl(const std::string& key, const ReadOptions& opts, const ByteSink& sink) override {
    auto build = [&](uint64_t offset, uint64_t length, const std::string& etag) {
      http::Request req;
      std::string range = http::RangeHeader(offset, length);
      if (!range.empty()) req.headers.push_back({"Range", range});
      if (!etag.empty()) req.headers.push_back({"If-Match", "\"" + etag + "\""});
      Sign("GET", key, {}, &req);
      return req;
    };
    http::Answered answered;
    Status st = Explain(http::ResumableGet(&client_, retry_, &stats_, RangeOf(opts), opts.if_match, build, sink,
                                           Url(key), kS3Errors, opts.if_size,
                                           opts.answered != nullptr ? &answered : nullptr));
    if (st.ok() && opts.answered != nullptr) *opts.answered = InfoOfAnswer(key, answered, "x-amz-meta-");
    return st;
  }

  Result<ObjectInfo> HeadImpl(const std::string& key) override {
    http::Request req;
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Call("HEAD", key, {}, req, &resp, "HeadObject " + Url(key)));
    auto size = resp.NumberHeader("content-length");
    if (!size.ok()) return size.status().WithContext("HeadObject " + Url(key));
    return ObjectInfo{key, *size, Unquote(resp.Header("etag")), ParseHttpTime(resp.Header("last-modified")),
                      MetaFromHeaders(resp, "x-amz-meta-")};
  }

  Result<ListPage> ListImpl(const ListOptions& opts) override {
    Params query = {{"list-type", "2"}, {"max-keys", std::to_string(opts.max_keys)}};
    if (!opts.prefix.empty()) query.push_back({"prefix", opts.prefix});
    if (!opts.delimiter.empty()) query.push_back({"delimiter", opts.delimiter});
    if (!opts.continuation.empty()) query.push_back({"continuation-token", opts.continuation});
    http::Request req;
    http::Response resp;
    const net::RetryPolicy quick = QuickerWhenIncomplete(retry_, opts);
    SHOAL_RETURN_IF_ERROR(Call("GET", "", query, req, &resp, "ListObjectsV2 " + Describe(), &quick));
    pugi::xml_document doc;
    if (!doc.load_buffer(resp.body.data(), resp.body.size())) {
      return Status::IOError("ListObjectsV2 " + Describe() + ": the answer is not XML");
    }
    pugi::xml_node root = doc.child("ListBucketResult");
    ListPage page;
    for (pugi::xml_node n : root.children("Contents")) {
      SHOAL_ASSIGN_OR_RETURN(uint64_t size,
                             XmlNumber(n, "Size", "ListObjectsV2 of " + bucket_ + ": " + n.child_value("Key") + "'s"));
      page.objects.push_back(ObjectInfo{n.child_value("Key"), size, Unquote(n.child_value("ETag")),
                                        ParseHttpTime(n.child_value("LastModified"))});
    }
    for (pugi::xml_node n : root.children("CommonPrefixes")) page.prefixes.push_back(n.child_value("Prefix"));
    if (std::string_view(root.child_value("IsTruncated")) == "true") {
      page.next_continuation = root.child_value("NextContinuationToken");
      if (page.next_continuation.empty()) {
        return Status::IOError("ListObjectsV2 " + Describe() +
                               ": a truncated page without NextContinuationToken");
      }
    }
    return page;
  }

  Status DeleteImpl(const std::string& key) override {
    http::Request req;
    http::Response resp;
    Status st = Call("DELETE", key, {}, req, &resp, "DeleteObject " + Url(key));
    if (st.IsNotFound()) return Status::Ok();
    return st;
  }

  Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data,
                                   const ObjectMeta& meta, const WriteCondition& only_if) override {
    http::Request req;
    req.body = data;
    AddMetaHeaders(meta, &req);
    AddCondition(only_if, &req);
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Call("PUT", key, {}, req, &resp, "PutObject " + Url(key)));
    return ObjectInfo{key, data.size(), Unquote(resp.Header("etag")),
                      ParseHttpTime(resp.Header("last-modified"))};
  }

  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key,
                                                           const ObjectMeta& meta) override {
    http::Request req;
    AddMetaHeaders(meta, &req);  // S3 keeps them for the object CompleteMultipartUpload makes
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Call("POST", key, {{"uploads", ""}}, req, &resp,
                               "CreateMultipartUpload " + Url(key)));
    pugi::xml_document doc;
    doc.load_buffer(resp.body.data(), resp.body.size());
    std::string id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
    if (id.empty()) return Status::IOError("CreateMultipartUpload " + Url(key) + ": no UploadId in the answer");
    return std::unique_ptr<MultipartUpload>(new S3Upload(this, key, id));
  }

  // The UploadId names the upload; parts put again under their number replace the old ones. The
  // metadata was given to CreateMultipartUpload; S3 keeps it with the upload.
  Result<std::unique_ptr<MultipartUpload>> ResumeUploadImpl(const std::string& key, const std::string& id,
                                                            const ObjectMeta&) override {
    return std::unique_ptr<MultipartUpload>(new S3Upload(this, key, id));
  }

  Status CreateBucketImpl() override {
    http::Request req;
    http::Response resp;
    Status st = Call("PUT", "", {}, req, &resp, "CreateBucket " + Describe());
    if (!st.ok() && resp.status == 409) return Status::Ok();  // already exists and is ours
    return st;
  }

 private:
  // The object's content headers and x-amz-meta-* as PutObject and CreateMultipartUpload
  // take them.
  static void AddMetaHeaders(const ObjectMeta& meta, http::Request* req) {
    for (auto& h : MetaHeaders(meta, &ContentField::header, "x-amz-meta-")) req->headers.push_back(std::move(h));
  }

  void Sign(const std::string& method, const std::string& key, const Params& query,
            http::Request* req) {
    req->method = method;
    std::string path = path_prefix_ + "/" + UriEncode(key, true);
    if (key.empty() && !path_prefix_.empty()) path = path_prefix_;
    std::string qs;
    for (const auto& [k, v] : query) {
      qs += (qs.empty() ? "" : "&") + UriEncode(k, false) + "=" + UriEncode(v, false);
    }
    req->url = base_ + path + (qs.empty() ? "" : "?" + qs);
    std::time_t now = std::time(nullptr);
    Params signed_headers = {{"host", host_},
                             {"x-amz-content-sha256", kUnsignedPayload},
                             {"x-amz-date", FormatIso8601Basic(now)}};
    if (!config_.session_token.empty()) signed_headers.push_back({"x-amz-security-token", config_.session_token});
    for (const auto& h : signed_headers) {
      if (h.first != "host") req->headers.push_back(h);
    }
    // S3 refuses x-amz-* headers that are not signed ("headers present in the request which
    // were not signed"): the metadata is signed too.
    for (const auto& [name, value] : req->headers) {
      if (StartsWith(ToLower(name), "x-amz-meta-")) signed_headers.push_back({name, value});
    }
    req->headers.push_back({"Authorization", SigV4Authorization(config_, method, path, query,
                                                                signed_headers, kUnsignedPayload, now)});
  }

  Status Explain(Status st) const {
    if (st.code() != Code::kPermissionDenied) return st;
    return Status(st.code(), st.message() + ": access key '" + config_.access_key + "' from " +
                                 config_.source +
                                 " was refused; check the credentials and the bucket policy");
  }

  friend class S3Upload;
  S3Config config_;
  std::string bucket_;
  std::string base_;         // scheme://host[:port]
  std::string host_;         // host[:port], signed
  std::string path_prefix_;  // "/bucket" for path-style addressing
  http::Client client_;
  net::RetryPolicy retry_;
};

Status S3Upload::PutPart(uint32_t index, uint64_t /*offset*/, std::string_view data) {
  http::Request req;
  req.body = data;
  req.headers = {{"Content-Type", "application/octet-stream"}};
  http::Response resp;
  SHOAL_RETURN_IF_ERROR(store_->Call(
      "PUT", key_, {{"partNumber", std::to_string(index + 1)}, {"uploadId", upload_id_}}, req,
      &resp, "UploadPart " + std::to_string(index + 1) + " of " + store_->Url(key_)));
  std::lock_guard<std::mutex> lock(mu_);
  etags_[index] = resp.Header("etag");
  size_ += data.size();
  return Status::Ok();
}

Result<uint32_t> S3Upload::FindStoredParts() {
  std::map<uint32_t, StoredPart> found;
  std::string marker = "0";
  const std::string what = "ListParts of " + store_->Url(key_);
  while (true) {
    http::Request req;
    http::Response resp;
    Status st = store_->Call("GET", key_, {{"max-parts", "1000"}, {"part-number-marker", marker}, {"uploadId", upload_id_}},
                             req, &resp, what);
    // A store without ListParts (405 MethodNotAllowed, 501 NotImplemented): nothing is known.
    if (!st.ok() && (resp.status == 405 || resp.status == 501)) return 0u;
    SHOAL_RETURN_IF_ERROR(st);
    pugi::xml_document doc;
    if (!doc.load_buffer(resp.body.data(), resp.body.size())) {
      return Status::IOError(what + ": the answer is not XML");
    }
    pugi::xml_node root = doc.child("ListPartsResult");
    for (pugi::xml_node n : root.children("Part")) {
      SHOAL_ASSIGN_OR_RETURN(uint64_t number, XmlNumber(n, "PartNumber", what + ": a part's"));
      SHOAL_ASSIGN_OR_RETURN(uint64_t size, XmlNumber(n, "Size", what + ": a part's"));
      if (number == 0 || number > 10000) continue;
      found[static_cast<uint32_t>(number - 1)] = StoredPart{size, n.child_value("ETag")};
    }
    if (std::string_view(root.child_value("IsTruncated")) != "true") break;
    std::string next = root.child_value("NextPartNumberMarker");
    if (next.empty() || next == marker) return Status::IOError(what + ": a truncated page without a new NextPartNumberMarker");
    marker = next;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stored_ = std::move(found);
  return static_cast<uint32_t>(stored_.size());
}

bool S3Upload::ReusePart(uint32_t index, std::string_view data) {
  StoredPart part;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(index);
    if (it == stored_.end()) return false;
    part = std::move(it->second);
    stored_.erase(it);  // whatever happens now, PutPart decides what the store holds
  }
  if (part.size != data.size() || Unquote(part.etag) != HexEncode(Md5(data))) return false;
  std::lock_guard<std::mutex> lock(mu_);
  etags_[index] = part.etag;
  size_ += data.size();
  return true;
}

Result<ObjectInfo> S3Upload::Complete(uint32_t num_parts, const WriteCondition& only_if) {
  std::string xml = "<CompleteMultipartUpload>";
  uint64_t size = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t i = 0; i < num_parts; i++) {
      auto it = etags_.find(i);
      if (it == etags_.end()) {
        return Status::InvalidArgument("CompleteMultipartUpload " + store_->Url(key_) + ": part " +
                                       std::to_string(i + 1) + " was never uploaded");
      }
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + it->second +
             "</ETag></Part>";
    }
    size = size_;
  }
  xml += "</CompleteMultipartUpload>";
  http::Request req;
  req.body = xml;
  req.headers = {{"Content-Type", "application/xml"}};
  // S3 may take minutes to assemble a large object before it answers (AWS sends spaces
  // meanwhile; s3rver sends nothing): a retry then would find the upload gone.
  req.silent_limit = std::chrono::minutes(15);
  AddCondition(only_if, &req);
  http::Response resp;
  Status st = store_->Call("POST", key_, {{"uploadId", upload_id_}}, req, &resp,
                           "CompleteMultipartUpload " + store_->Url(key_));
  if (st.IsNotFound() && store_->stats().retries.load() > 0) {
    // An earlier attempt may have completed before its answer was lost: if the object is
    // there with the right size, that attempt won.
    auto info = store_->Head(key_);
    if (info.ok() && info->size == size) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      return info;
    }
  }
  SHOAL_RETURN_IF_ERROR(st);
  pugi::xml_document doc;
  doc.load_buffer(resp.body.data(), resp.body.size());
  std::string etag = Unquote(doc.child("CompleteMultipartUploadResult").child_value("ETag"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  return ObjectInfo{key_, size, etag, std::time(nullptr)};
}

void S3Upload::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
  }
  http::Request req;
  http::Response resp;
  store_->Call("DELETE", key_, {{"uploadId", upload_id_}}, req, &resp,
               "AbortMultipartUpload " + store_->Url(key_))
      .IgnoreError();
}

}  // namespace

std::string SigV4Authorization(const S3Config& config, const std::string& method,
                               const std::string& canonical_uri, const Params& query,
                               const Params& headers, const std::string& payload_hash,
                               std::time_t now, const std::string& service) {
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : query) q.push_back({UriEncode(k, false), UriEncode(v, false)});
  std::sort(q.begin(), q.end());
  std::string canonical_query;
  for (const auto& [k, v] : q) canonical_query += (canonical_query.empty() ? "" : "&") + k + "=" + v;
  std::vector<std::pair<std::string, std::string>> h;
  for (const auto& [k, v] : headers) h.push_back({ToLower(k), Trim(v)});
  std::sort(h.begin(), h.end());
  std::string canonical_headers, signed_headers;
  for (const auto& [k, v] : h) {
    canonical_headers += k + ":" + v + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + k;
  }
  std::string canonical = method + "\n" + canonical_uri + "\n" + canonical_query + "\n" +
                          canonical_headers + "\n" + signed_headers + "\n" + payload_hash;
  std::string amz_date = FormatIso8601Basic(now);
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + config.region + "/" + service + "/aws4_request";
  std::string to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + HexEncode(Sha256(canonical));
  std::string k = HmacSha256("AWS4" + config.secret_key, date);
  k = HmacSha256(k, config.region);
  k = HmacSha256(k, service);
  k = HmacSha256(k, "aws4_request");
  return "AWS4-HMAC-SHA256 Credential=" + config.access_key + "/" + scope +
         ", SignedHeaders=" + signed_headers + ", Signature=" + HexEncode(HmacSha256(k, to_sign));
}

Result<S3Config> S3Config::FromEnvironment() {
  S3Config c;
  const char* id = EnvValue("AWS_ACCESS_KEY_ID");
  const char* secret = EnvValue("AWS_SECRET_ACCESS_KEY");
  if (id == nullptr || secret == nullptr) {
    return Status::InvalidArgument(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_REGION, "
        "AWS_ENDPOINT_URL for a custom endpoint)");
  }
  c.access_key = id;
  c.secret_key = secret;
  c.source = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
  if (const char* t = EnvValue("AWS_SESSION_TOKEN")) c.session_token = t;
  if (const char* r = EnvValue("AWS_REGION")) c.region = r;
  else if (const char* r2 = EnvValue("AWS_DEFAULT_REGION")) c.region = r2;
  if (const char* e = EnvValue("AWS_ENDPOINT_URL_S3")) c.endpoint = e;
  else if (const char* e2 = EnvValue("AWS_ENDPOINT_URL")) c.endpoint = e2;
  return c;
}

std::shared_ptr<ObjectStore> NewS3Store(const S3Config& config, const std::string& bucket) {
  return std::make_shared<S3Store>(config, bucket);
}

}  // namespace shoal
