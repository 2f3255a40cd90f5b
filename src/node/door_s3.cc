// The S3 API of the front door (path-style, and virtual-hosted when the Host names a bucket):
// ListBuckets, HeadBucket, GetBucketLocation, ListObjectsV2 and V1, GetObject, HeadObject,
// PutObject, CopyObject, DeleteObject, DeleteObjects, and multipart uploads (staged by
// door_uploads.h, committed whole; parts uploaded or copied). Every request is verified
// (door/s3_auth.h) unless the door is open; reads (a copy's source too) go through the node's
// read path, writes through write-back, answered once acknowledged or, asked with
// x-shoal-wait: durable, once in the backend. What is refused, and how, is in
// docs/front-door.md.

#include <chrono>
#include <ctime>
#include <map>
#include <pugixml.hpp>
#include <sstream>

#include "common/strings.h"
#include "door/request.h"
#include "door/s3_auth.h"
#include "net/node_protocol.h"
#include "node/door.h"
#include "node/door_http.h"
#include "node/exchange.h"
#include "node/listing.h"
#include "node/request_parse.h"

namespace shoal::node {
namespace {

constexpr uint64_t kMaxPutBytes = 5ull << 30;   // S3's limit for one PutObject
constexpr uint64_t kMaxXmlBody = 2ull << 20;    // DeleteObjects of 1,000 long keys fits
constexpr const char* kTokenTag = "s2.";        // our continuation tokens (a V1 marker is a key)

std::string IsoDate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

// encoding-type=url: every byte but the unreserved ones and '/' as %XX.
std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

pugi::xml_node S3XmlRoot(pugi::xml_document& doc, const char* name) {
  auto root = node::XmlRoot(doc, name, "UTF-8");
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  return root;
}

// One S3 request: what it names, who signed it, and how to answer it.
struct S3Call : DoorCall {
  std::string request_id = RandomHex();
  std::string raw_path;
  std::string bucket_name, key;  // decoded
  const DoorBucket* bucket = nullptr;
  door::S3Principal principal;  // when verified (or made up for an open door)

  S3Call(Exchange& ex, Parser& p, const Door& d) : DoorCall(ex, p, d), raw_path(view.raw_path) {}

  std::string Resource() const { return raw_path; }

  template <class Body>
  void Stamp(http::response<Body>& res) const {
    Prepare(res, v, ka);
    res.set("x-amz-request-id", request_id);
    res.set(http::field::server, "shoald");
  }

  TextResponse Xml(http::status status, std::string body) const {
    TextResponse res{status, v};
    Stamp(res);
    res.set(http::field::content_type, "application/xml");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  // S3's error body (none for HEAD: the status says it). `close`: the body was not read.
  TextResponse Error(http::status status, const std::string& code, const std::string& message,
                     bool close = false) const {
    auto res = Xml(status, head ? "" : door::RenderErrorXml("UTF-8", {{"Code", code},
                                                                    {"Message", message},
                                                                    {"Resource", Resource()},
                                                                    {"RequestId", request_id}}));
    if (head) res.content_length(0);
    if (close || head) res.keep_alive(ka && !close);
    return res;
  }

  TextResponse Error(const door::S3Error& e, bool close = false) const {
    auto res = Xml(static_cast<http::status>(e.http_status()), head ? "" : door::RenderS3Error(e, Resource(), request_id));
    if (close) res.keep_alive(false);
    return res;
  }

  // A node's error as S3 names it.
  TextResponse Error(const Status& st, bool close = false) const {
    CountError(x.node, st);
    switch (st.code()) {
      case Code::kNotFound:
        return Error(http::status::not_found, "NoSuchKey", "The specified key does not exist: " + st.message(), close);
      case Code::kPreconditionFailed:
        return Error(http::status::precondition_failed, "PreconditionFailed", st.message(), close);
      case Code::kInvalidArgument:
        return Error(http::status::bad_request, "InvalidArgument", st.message(), close);
      case Code::kPermissionDenied:
        return Error(http::status::forbidden, "AccessDenied", st.message(), close);
      case Code::kUnavailable:
      case Code::kResourceExhausted:
        return Error(http::status::service_unavailable, "SlowDown", st.message() + " (retry)", close);
      default:
        return Error(http::status::internal_server_error, "InternalError", st.message(), close);
    }
  }
};

// ---- authentication -------------------------------------------------------------------------

// An open door checks no signature, but still has to decode the body the client framed.
std::optional<door::S3Error> OpenPrincipal(const S3Call& call, door::S3Principal* p) {
  std::string sha(call.view.Header("x-amz-content-sha256").value_or("UNSIGNED-PAYLOAD"));
  auto err = [](std::string m) { return door::S3Error{door::S3ErrorCode::kInvalidArgument, std::move(m), "", ""}; };
  if (sha == "UNSIGNED-PAYLOAD") {
    p->payload = door::S3Payload::kUnsigned;
  } else if (sha == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
    p->payload = door::S3Payload::kUnsignedChunksTrailer;
    auto n = ParseNumber(call.view.Header("x-amz-decoded-content-length").value_or(""));
    if (!n) return err("x-amz-decoded-content-length is missing or not a number");
    p->decoded_length = *n;
    std::string t(call.view.Header("x-amz-trailer").value_or(""));
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    p->trailer = t;
  } else if (sha.size() == 64) {
    p->payload = door::S3Payload::kSha256;
    p->content_sha256 = sha;
  } else {
    return err("an open door cannot check signed chunks (" + sha + "): sign with a key from --credentials, or send UNSIGNED-PAYLOAD");
  }
  return std::nullopt;
}

// Verifies the signature (or makes up the principal of an open door); nullopt when it holds.
std::optional<door::S3Error> Authenticate(S3Call& call) {
  if (call.door.open()) return OpenPrincipal(call, &call.principal);
  door::S3VerifyOptions opts;
  opts.region = "";  // any region: clients name their own (us-east-1 by default)
  auto verdict = door::VerifyS3(call.view, *call.door.credentials(), opts, std::time(nullptr));
  if (!verdict.ok()) return verdict.error();
  call.principal = std::move(verdict).value();
  return std::nullopt;
}

std::optional<door::S3Error> Authorize(const S3Call& call, std::string_view bucket, std::string_view key,
                                       door::Access access) {
  if (call.door.open()) return std::nullopt;
  return door::AuthorizeS3(call.principal, bucket, key, access);
}

// Whether the principal's key has any scope in `bucket` (for `access`, or any): what lets a
// key see a bucket's name and its HEAD even when its scopes are prefixes.
bool HasScopeIn(const S3Call& call, const std::string& bucket, std::optional<door::Access> access = std::nullopt) {
  if (call.door.open()) return true;
  for (const auto& s : call.principal.key->scopes) {
    if ((s.bucket == bucket || s.bucket == "*") && (!access || s.access == *access)) return true;
  }
  return false;
}

// The object's metadata as S3 takes it: the content headers and x-amz-meta-*. The
// aws-chunked token of Content-Encoding says how the body is framed, not what the object is:
// S3 drops it, and so does the door.
Result<ObjectMeta> S3MetaOf(const S3Call& call) {
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  for (const auto& [name, value] : call.view.headers) headers.emplace_back(name, value);
  auto meta = proto::MetaFromHeaders(headers, "x-amz-meta-");
  if (!meta.ok()) return meta;
  std::string enc;
  std::stringstream tokens(meta->content_encoding);
  for (std::string t; std::getline(tokens, t, ',');) {
    while (!t.empty() && t.front() == ' ') t.erase(0, 1);
    while (!t.empty() && t.back() == ' ') t.pop_back();
    if (t.empty() || t == "aws-chunked") continue;
    enc += (enc.empty() ? "" : ",") + t;
  }
  meta->content_encoding = enc;
  return meta;
}

// ---- bodies ---------------------------------------------------------------------------------

// The body of a PutObject or UploadPart: read raw (ReadRawBody), decoded and checked as it comes
// (door/s3_auth.h: signatures, digests, checksums), the payload handed to `write`. *bad is S3's
// error for a body that fails a check; *st any error (the first); *bytes the payload's length,
// reading stops past `limit`. Only when both are clear may the data be committed. False if the
// connection failed.
awaitable<bool> ReadS3Body(S3Call& call, uint64_t limit, const std::function<Status(std::string_view)>& write,
                           Status* st, std::optional<door::S3Error>* bad, uint64_t* bytes) {
  door::S3BodyDecoder decoder(call.principal);
  std::string payload;
  auto take = [&](std::string_view raw) -> Status {
    payload.clear();
    *bad = decoder.Feed(raw, &payload);
    if (*bad) return Status::InvalidArgument((*bad)->message);
    *bytes += payload.size();
    if (*bytes > limit) return Status::InvalidArgument("the body is larger than " + FormatBytes(limit));
    return write(payload);
  };
  bool connected = co_await ReadRawBody(call.x, call.parser, take, st);
  if (connected && st->ok()) {
    *bad = decoder.Finish();
    if (*bad) *st = Status::InvalidArgument((*bad)->message);
  }
  co_return connected;
}

// The whole (small) body, decoded and checked (*bad says what is wrong with it). False if the
// connection failed or the body was refused (the answer is sent).
awaitable<bool> ReadSmallBody(S3Call& call, std::string* body, std::optional<door::S3Error>* bad) {
  std::string raw;
  if (!co_await call.x.ReadBody(call.parser, kMaxXmlBody, &raw)) co_return false;
  door::S3BodyDecoder decoder(call.principal);
  *bad = decoder.Feed(raw, body);
  if (!*bad) *bad = decoder.Finish();
  co_return true;
}

// ---- listing --------------------------------------------------------------------------------

// A continuation token: ListWithPending's continuation, base64.
std::string EncodeToken(const std::string& node_token) { return kTokenTag + Base64Encode(node_token); }
std::optional<std::string> DecodeToken(const std::string& token) {
  if (!StartsWith(token, kTokenTag)) return std::nullopt;
  auto raw = Base64Decode(token.substr(std::string_view(kTokenTag).size()));
  if (!raw.ok()) return std::nullopt;
  return *raw;
}

// GET /bucket?list-type=2 (V2) or GET /bucket (V1).
TextResponse ListObjects(S3Call& call) {
  const bool v2 = call.Q("list-type") == "2";
  const std::string prefix = call.Q("prefix"), delimiter = call.Q("delimiter");
  const bool url_encoding = call.Q("encoding-type") == "url";
  uint32_t max_keys = 1000;
  if (call.Has("max-keys")) {
    auto n = ParseNumber(call.Q("max-keys"));
    if (!n) return call.Error(http::status::bad_request, "InvalidArgument", "max-keys must be a whole number");
    max_keys = static_cast<uint32_t>(std::min<uint64_t>(*n, 1000));
  }
  if (auto e = Authorize(call, call.bucket->name, prefix, door::Access::kRead)) return call.Error(*e);
  const std::string& base = call.bucket->base.key;

  // Where to start: our token, or (V1 marker, V2 start-after) a key to list after.
  std::string client_token = v2 ? call.Q("continuation-token") : call.Q("marker");
  std::string node_token, after = v2 && !call.Q("start-after").empty() ? base + call.Q("start-after") : "";
  if (!client_token.empty()) {
    auto t = DecodeToken(client_token);
    if (t) {
      node_token = *t;
    } else if (v2) {
      return call.Error(http::status::bad_request, "InvalidArgument", "The continuation token provided is incorrect");
    } else {
      after = base + client_token;  // a V1 marker that is a key
    }
  }
  // The store's pages with the cluster's writes not yet uploaded merged in (listing.h).
  std::vector<ListedObject> objects;
  std::vector<std::string> prefixes;
  std::string next;
  if (max_keys > 0) {
    ListOptions lo;
    lo.prefix = base + prefix;
    lo.delimiter = delimiter;
    lo.continuation = node_token;
    lo.max_keys = max_keys;
    auto got = ListWithPending(call.x.node, call.bucket->base, lo, after, /*whole_cluster=*/true);
    if (!got.ok()) {
      if (got.status().code() == Code::kInvalidArgument && !node_token.empty()) {
        return call.Error(http::status::bad_request, "InvalidArgument", "The continuation token provided is incorrect");
      }
      return call.Error(got.status());
    }
    for (auto& o : got->objects) {
      o.key = o.key.substr(base.size());
      objects.push_back(std::move(o));
    }
    for (auto& p : got->prefixes) prefixes.push_back(p.substr(base.size()));
    next = got->next_continuation;
  }
  auto enc = [&](const std::string& s) { return url_encoding ? UrlEncode(s) : s; };
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "ListBucketResult");
  XmlAdd(root, "Name", call.bucket->name);
  XmlAdd(root, "Prefix", enc(prefix));
  if (v2) {
    if (!client_token.empty()) XmlAdd(root, "ContinuationToken", client_token);
    if (!call.Q("start-after").empty()) XmlAdd(root, "StartAfter", enc(call.Q("start-after")));
    XmlAdd(root, "KeyCount", std::to_string(objects.size() + prefixes.size()));
  } else {
    XmlAdd(root, "Marker", enc(call.Q("marker")));
  }
  XmlAdd(root, "MaxKeys", std::to_string(max_keys));
  if (!delimiter.empty()) XmlAdd(root, "Delimiter", enc(delimiter));
  if (url_encoding) XmlAdd(root, "EncodingType", "url");
  XmlAdd(root, "IsTruncated", next.empty() ? "false" : "true");
  if (!next.empty()) XmlAdd(root, v2 ? "NextContinuationToken" : "NextMarker", EncodeToken(next));
  for (const auto& o : objects) {
    auto c = root.append_child("Contents");
    XmlAdd(c, "Key", enc(o.key));
    XmlAdd(c, "LastModified", IsoDate(static_cast<std::time_t>(o.last_modified)));
    XmlAdd(c, "ETag", "\"" + o.etag + "\"");
    XmlAdd(c, "Size", std::to_string(o.size));
    XmlAdd(c, "StorageClass", "STANDARD");
  }
  for (const auto& p : prefixes) XmlAdd(root.append_child("CommonPrefixes"), "Prefix", enc(p));
  return call.Xml(http::status::ok, XmlText(doc));
}

TextResponse ListBuckets(S3Call& call) {
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "ListAllMyBucketsResult");
  auto owner = root.append_child("Owner");
  std::string id = call.door.open() ? "anonymous" : call.principal.key->id;
  XmlAdd(owner, "ID", id);
  XmlAdd(owner, "DisplayName", id);
  auto list = root.append_child("Buckets");
  for (const auto& b : call.door.buckets()) {
    if (!HasScopeIn(call, b.name)) continue;  // a key scoped to a prefix still sees its bucket's name
    auto e = list.append_child("Bucket");
    XmlAdd(e, "Name", b.name);
    XmlAdd(e, "CreationDate", IsoDate(0));
  }
  return call.Xml(http::status::ok, XmlText(doc));
}

// ---- objects ----------------------------------------------------------------------------------

// GET and HEAD of an object, through the node's read path.
awaitable<bool> GetObject(S3Call& call) {
  Exchange& x = call.x;
  Node* node = x.node;
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kRead)) co_return co_await x.Write(call.Error(*e));
  const std::string url = call.bucket->UrlOf(call.key);
  auto stat = x.Offload([node, url] { return node->directory().Stat(url); });
  Result<ObjectInfo> info = co_await std::move(stat);
  if (!info.ok()) co_return co_await x.Write(call.Error(info.status()));
  const std::string etag = "\"" + info->etag + "\"";
  std::time_t modified = info->last_modified != 0 ? info->last_modified : std::time(nullptr);
  const Precondition pre = CheckObjectPreconditions(node, call.req, url, *info, modified);
  if (pre == Precondition::kFailed) {
    co_return co_await x.Write(call.Error(http::status::precondition_failed, "PreconditionFailed",
                                          "At least one of the pre-conditions you specified did not hold"));
  }
  if (pre == Precondition::kNotModified) {
    http::response<http::empty_body> res{http::status::not_modified, call.v};
    call.Stamp(res);
    res.set(http::field::etag, etag);
    res.set(http::field::last_modified, FormatRfc1123(modified));
    co_return co_await x.WriteHeader(res) && call.ka;
  }
  uint64_t offset = 0, length = info->size;
  http::status status = http::status::ok;
  auto range = call.req.find(http::field::range);
  if (range != call.req.end()) {
    std::string_view spec(range->value().data(), range->value().size());
    if (!ParseRange(spec, info->size, &offset, &length)) {
      auto res = call.Error(http::status::range_not_satisfiable, "InvalidRange", "The requested range is not satisfiable");
      res.set(http::field::content_range, "bytes */" + std::to_string(info->size));
      co_return co_await x.Write(std::move(res));
    }
    status = http::status::partial_content;
  }
  http::response<http::empty_body> res{status, call.v};
  call.Stamp(res);
  res.set(http::field::etag, etag);
  res.set(http::field::last_modified, FormatRfc1123(modified));
  res.set(http::field::accept_ranges, "bytes");
  for (const auto& [name, value] : MetaHeaders(info->meta ? *info->meta : ObjectMeta{}, &ContentField::header, "x-amz-meta-")) {
    res.set(name, value);
  }
  const std::function<TextResponse(const Status&)> error = [&call](const Status& st) { return call.Error(st); };
  co_return co_await SendDoorObject(x, url, *info, offset, length, call.head, call.ka, res, error);
}

// What CompleteMultipart did: the refusal to answer, or what was written.
struct WriteDone {
  std::optional<TextResponse> refused;
  ObjectInfo written;
};

// ---- durability: x-shoal-wait and x-shoal-state ----------------------------------------------

// What every write answers with: where it is, "local" (acknowledged: on this node's disk,
// journaled, and on its copies' nodes) or "durable" (in the backend), as the node protocol's
// X-Shoal-State says it.
constexpr const char* kDurabilityHeader = "x-shoal-state";
// What a client sends to be answered only once the write is durable: "durable" (or "local",
// the default).
constexpr const char* kWaitHeader = "x-shoal-wait";

// Whether the request asks to wait for durability (x-shoal-wait); kInvalidArgument for a
// value that is neither.
Result<bool> WaitAsked(const S3Call& call) {
  std::string_view wait = Header(call.req, kWaitHeader);
  if (wait.empty() || wait == proto::kStateLocal) return false;
  if (wait == proto::kStateDurable) return true;
  return Status::InvalidArgument(std::string(kWaitHeader) + " is 'durable' (answer once the write is in the backend) or "
                                 "'local' (once acknowledged), not '" + std::string(wait.substr(0, 32)) + "'");
}

// The x-shoal-state to answer the write acknowledged as *info with. Unless `wait`
// (x-shoal-wait: durable), kStateLocal at once; else waits, on a timer (holding no thread),
// until the write is durable in the backend, at most --upload-deadline, and then *info is the
// backend's version of it: kStateDurable, or kStateLocal (still uploading at the deadline, or
// deleted or handed to another node meanwhile: the write stands, durable or not).
awaitable<std::string> StateAsAsked(S3Call& call, bool wait, ObjectInfo* info) {
  if (!wait) co_return std::string(proto::kStateLocal);
  Node* node = call.x.node;
  const auto give_up = std::chrono::steady_clock::now() + node->options().upload_deadline;
  auto pause = std::chrono::milliseconds(20);
  const std::string version = info->etag;
  while (true) {
    auto ask = call.x.Offload([node, version] {
      ObjectInfo stored;
      WriteBack::Outcome outcome = node->writes().OutcomeOf(version, &stored);
      return std::make_pair(outcome, stored);
    });
    std::pair<WriteBack::Outcome, ObjectInfo> now = co_await std::move(ask);
    if (now.first == WriteBack::Outcome::kDurable) {
      info->etag = now.second.etag;
      if (now.second.last_modified != 0) info->last_modified = now.second.last_modified;
      co_return std::string(proto::kStateDurable);
    }
    if (now.first == WriteBack::Outcome::kGone || std::chrono::steady_clock::now() >= give_up) {
      co_return std::string(proto::kStateLocal);
    }
    asio::steady_timer timer(call.x.conn().socket.get_executor(), pause);
    beast::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::milliseconds(500));
  }
}

// PUT of an object: the body decoded and checked as it comes, into write-back; 200 once the
// write is acknowledged (on this node's disk, journaled, and on its copies' nodes).
awaitable<bool> PutObject(S3Call& call) {
  Exchange& x = call.x;
  Node* node = x.node;
  const auto started = std::chrono::steady_clock::now();
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) {
    co_await x.Write(call.Error(*e, true));
    co_return false;
  }
  if (call.parser.content_length().value_or(0) > kMaxPutBytes + (64ull << 20)) {
    co_await x.Write(call.Error(http::status::bad_request, "EntityTooLarge",
                                "Your proposed upload exceeds the maximum allowed size (5 GiB): use a multipart upload", true));
    co_return false;
  }
  const std::string url = call.bucket->UrlOf(call.key);
  auto meta = S3MetaOf(call);
  if (!meta.ok()) {
    co_await x.Write(call.Error(http::status::bad_request, "InvalidArgument", meta.status().message(), true));
    co_return false;
  }
  auto wait = WaitAsked(call);
  if (!wait.ok()) {
    co_await x.Write(call.Error(http::status::bad_request, "InvalidArgument", wait.status().message(), true));
    co_return false;
  }
  auto begin = x.Offload([node, url, m = std::move(meta).value()] { return node->writes().BeginWrite(url, m); });
  Result<std::unique_ptr<Writer>> begun = co_await std::move(begin);
  if (!begun.ok()) {
    co_await x.Write(call.Error(begun.status(), true));
    co_return false;
  }
  std::shared_ptr<Writer> w = std::move(*begun);
  if (!co_await x.ContinueIfAsked(call.req)) co_return false;
  std::optional<door::S3Error> bad;
  uint64_t bytes = 0;
  Status st;
  Writer* writer = w.get();
  const std::function<Status(std::string_view)> write = [writer](std::string_view d) {
    return writer->Append(d.data(), d.size());
  };
  bool connected = co_await ReadS3Body(call, kMaxPutBytes, write, &st, &bad, &bytes);
  auto end = x.EndWrite(std::move(w), connected, st);
  Result<ObjectInfo> info = co_await std::move(end);
  if (!connected) co_return false;
  if (bad) {
    co_await x.Write(call.Error(*bad, true));
    co_return false;
  }
  if (bytes > kMaxPutBytes) {
    co_await x.Write(call.Error(http::status::bad_request, "EntityTooLarge", "Your proposed upload exceeds 5 GiB", true));
    co_return false;
  }
  if (!info.ok()) {
    co_await x.Write(call.Error(info.status(), true));
    co_return false;
  }
  ObjectInfo written = *info;
  auto reached = StateAsAsked(call, *wait, &written);
  const std::string state = co_await std::move(reached);
  TextResponse res{http::status::ok, call.v};
  call.Stamp(res);
  res.set(http::field::etag, "\"" + written.etag + "\"");
  res.set(kDurabilityHeader, state);
  res.content_length(0);
  bool ok = co_await x.Write(std::move(res));
  node->metrics().op_write_ack.Observe(std::chrono::steady_clock::now() - started);
  co_return ok;
}

TextResponse DeleteObject(S3Call& call) {
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return call.Error(*e);
  Status st = call.x.node->writes().Delete(call.bucket->UrlOf(call.key));
  if (!st.ok()) return call.Error(st);
  TextResponse res{http::status::no_content, call.v};
  call.Stamp(res);
  return res;
}

// POST /bucket?delete: up to 1,000 keys named in XML.
TextResponse DeleteObjects(S3Call& call, const std::string& body) {
  pugi::xml_document in;
  auto parsed = in.load_buffer(body.data(), body.size());
  auto list = in.child("Delete");
  if (!parsed || !list) {
    return call.Error(http::status::bad_request, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema");
  }
  bool quiet = std::string(list.child("Quiet").text().as_string()) == "true";
  std::vector<std::string> keys;
  for (auto o : list.children("Object")) {
    auto k = o.child("Key");
    if (!k) return call.Error(http::status::bad_request, "MalformedXML", "an Object without a Key");
    keys.push_back(k.text().as_string());
  }
  if (keys.size() > 1000) return call.Error(http::status::bad_request, "MalformedXML", "at most 1,000 keys per request");
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "DeleteResult");
  for (const auto& k : keys) {
    std::string code, message;
    if (auto e = Authorize(call, call.bucket->name, k, door::Access::kWrite)) {
      code = "AccessDenied";
      message = e->message;
    } else if (Status st = call.x.node->writes().Delete(call.bucket->UrlOf(k)); !st.ok()) {
      code = st.code() == Code::kInvalidArgument ? "InvalidArgument" : "InternalError";
      message = st.message();
    }
    if (code.empty()) {
      if (!quiet) XmlAdd(root.append_child("Deleted"), "Key", k);
    } else {
      auto e = root.append_child("Error");
      XmlAdd(e, "Key", k);
      XmlAdd(e, "Code", code);
      XmlAdd(e, "Message", message);
    }
  }
  return call.Xml(http::status::ok, XmlText(doc));
}

// ---- multipart uploads (door_uploads.h) -------------------------------------------------------

constexpr uint64_t kMinPartBytes = 5ull << 20;  // S3's least part but the last
constexpr uint64_t kMaxPartBytes = 5ull << 30;

TextResponse CreateMultipart(S3Call& call) {
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return call.Error(*e);
  if (Status st = call.x.node->objects().StoreFor(call.bucket->UrlOf(call.key)).status(); !st.ok()) return call.Error(st);
  auto meta = S3MetaOf(call);
  if (!meta.ok()) return call.Error(http::status::bad_request, "InvalidArgument", meta.status().message());
  auto u = call.door.uploads()->Create(call.bucket->name, call.key, *meta);
  if (!u.ok()) return call.Error(u.status());
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "InitiateMultipartUploadResult");
  XmlAdd(root, "Bucket", call.bucket->name);
  XmlAdd(root, "Key", call.key);
  XmlAdd(root, "UploadId", u->id);
  return call.Xml(http::status::ok, XmlText(doc));
}

TextResponse NoSuchUpload(const S3Call& call, const Status& st) {
  if (st.code() != Code::kNotFound) return call.Error(st);
  return call.Error(http::status::not_found, "NoSuchUpload", st.message());
}

// PUT ?partNumber=N&uploadId=ID: the part's bytes, decoded and checked, into a file of its own.
awaitable<bool> UploadPart(S3Call& call) {
  Exchange& x = call.x;
  auto refuse = [&](TextResponse res) -> awaitable<bool> {
    res.keep_alive(false);
    co_await x.Write(std::move(res));
    co_return false;
  };
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) co_return co_await refuse(call.Error(*e));
  auto number = ParseNumber(call.Q("partNumber"));
  if (!number || *number < 1 || *number > 10000) {
    co_return co_await refuse(call.Error(http::status::bad_request, "InvalidArgument",
                                         "Part number must be an integer between 1 and 10000, inclusive"));
  }
  auto upload = call.door.uploads()->Find(call.Q("uploadId"), call.bucket->name, call.key);
  if (!upload.ok()) co_return co_await refuse(NoSuchUpload(call, upload.status()));
  auto part = call.door.uploads()->WritePart(*upload, static_cast<uint32_t>(*number));
  if (!part.ok()) co_return co_await refuse(NoSuchUpload(call, part.status()));
  std::unique_ptr<DoorUploads::PartWriter> w = std::move(*part);
  if (!co_await x.ContinueIfAsked(call.req)) co_return false;
  std::optional<door::S3Error> bad;
  uint64_t bytes = 0;
  Status st;
  DoorUploads::PartWriter* writer = w.get();
  const std::function<Status(std::string_view)> write = [writer](std::string_view d) { return writer->Append(d); };
  if (!co_await ReadS3Body(call, kMaxPartBytes, write, &st, &bad, &bytes)) co_return false;
  if (bytes > kMaxPartBytes) {
    co_return co_await refuse(call.Error(http::status::bad_request, "EntityTooLarge", "a part is at most 5 GiB"));
  }
  if (bad) co_return co_await refuse(call.Error(*bad));
  Result<StagedPart> done = st;
  if (st.ok()) {
    // Staged: the joiner appends it to the upload's write once the parts before it are (door_assembly.h).
    DoorAssemblies* assemblies = call.door.assemblies();
    WriteBack* writes = &x.node->writes();
    const uint64_t cap = x.node->options().staged_cap;
    const std::string url = call.bucket->UrlOf(call.key);
    const StagedUpload& staged = *upload;
    auto finish = x.Offload([&w, assemblies, writes, cap, &url, &staged]() -> Result<StagedPart> {
      Result<StagedPart> part = w->Finish();
      if (part.ok()) assemblies->Staged(writes, cap, url, staged, *part, part->number);
      return part;
    });
    done = co_await std::move(finish);
  }
  if (!done.ok()) co_return co_await refuse(call.Error(done.status()));
  TextResponse res{http::status::ok, call.v};
  call.Stamp(res);
  res.set(http::field::etag, "\"" + done->etag + "\"");
  res.content_length(0);
  co_return co_await x.Write(std::move(res));
}

// POST ?uploadId=ID with the parts to join: checked against what was staged, then streamed in
// order into one write-back write (which the parts joined while they arrived have begun, when
// they are the list's first) and Finished. Blocking: runs on the serve pool.
WriteDone CompleteMultipart(S3Call& call, const std::string& body) {
  auto* uploads = call.door.uploads();
  auto upload = uploads->Find(call.Q("uploadId"), call.bucket->name, call.key);
  if (!upload.ok()) return {NoSuchUpload(call, upload.status()), {}};
  pugi::xml_document in;
  auto parsed = in.load_buffer(body.data(), body.size());
  auto list = in.child("CompleteMultipartUpload");
  auto malformed = [&](const std::string& why) {
    return call.Error(http::status::bad_request, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema: " + why);
  };
  if (!parsed || !list) return {malformed("no CompleteMultipartUpload element"), {}};
  std::vector<std::pair<uint32_t, std::string>> wanted;
  for (auto p : list.children("Part")) {
    auto n = ParseNumber(p.child("PartNumber").text().as_string());
    std::string etag = p.child("ETag").text().as_string();
    if (!n || *n < 1 || *n > 10000 || etag.empty()) return {malformed("a Part without a PartNumber (1-10000) and an ETag"), {}};
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
    wanted.emplace_back(static_cast<uint32_t>(*n), etag);
  }
  if (wanted.empty()) return {malformed("no Part"), {}};
  auto staged = uploads->Parts(*upload);
  if (!staged.ok()) return {NoSuchUpload(call, staged.status()), {}};
  std::map<uint32_t, StagedPart> have;
  for (const auto& p : *staged) have[p.number] = p;
  for (size_t i = 1; i < wanted.size(); i++) {
    if (wanted[i].first <= wanted[i - 1].first) {
      return {call.Error(http::status::bad_request, "InvalidPartOrder",
                        "The list of parts was not in ascending order. The parts list must be specified in order by part number."), {}};
    }
  }
  for (size_t i = 0; i < wanted.size(); i++) {
    auto it = have.find(wanted[i].first);
    if (it == have.end() || it->second.etag != wanted[i].second) {
      return {call.Error(http::status::bad_request, "InvalidPart",
                        "One or more of the specified parts could not be found, or its ETag does not match: part " +
                            std::to_string(wanted[i].first)), {}};
    }
    if (i + 1 < wanted.size() && it->second.size < kMinPartBytes) {
      return {call.Error(http::status::bad_request, "EntityTooSmall",
                         "Your proposed upload is smaller than the minimum allowed object size: part " +
                             std::to_string(wanted[i].first) + " is " + std::to_string(it->second.size) +
                             " bytes; every part but the last must be at least 5 MiB"), {}};
    }
  }
  const std::string url = call.bucket->UrlOf(call.key);
  // The parts joined while they arrived, when they are the list's first ones as staged now
  // (door_assembly.h); else the write starts here.
  auto usable = [&](const std::vector<StagedPart>& joined) {
    if (joined.size() > wanted.size()) return false;
    for (size_t i = 0; i < joined.size(); i++) {
      const StagedPart& p = joined[i];
      const StagedPart& now = have[p.number];
      if (p.number != wanted[i].first || p.etag != wanted[i].second || now.etag != p.etag || now.size != p.size) return false;
    }
    return true;
  };
  auto resumed = call.door.assemblies()->Resume(&call.x.node->writes(), upload->id, url, upload->meta, usable);
  if (!resumed.ok()) return {call.Error(resumed.status()), {}};
  std::unique_ptr<Writer> w = std::move(resumed->writer);
  const size_t from = resumed->pieces;
  for (size_t i = from; i < wanted.size(); i++) {
    Status st = uploads->ReadPart(*upload, wanted[i].first, 8 << 20, [&](std::string_view d) { return w->Append(d.data(), d.size()); });
    if (!st.ok()) return {call.Error(st), {}};
  }
  auto info = w->Finish();
  if (!info.ok()) return {call.Error(info.status()), {}};
  call.x.node->metrics().door_early_bytes += resumed->bytes;
  (void)uploads->Remove(*upload);  // the object is written; leftovers are only disk
  return {std::nullopt, *info};
}

// CompleteMultipartUpload: the body read and checked, CompleteMultipart on the serve pool, the
// result answered once acknowledged (or durable, when asked: StateAsAsked).
awaitable<bool> CompleteMultipartUpload(S3Call& call) {
  Exchange& x = call.x;
  auto wait = WaitAsked(call);
  if (!wait.ok()) {
    co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidArgument", wait.status().message(), true));
  }
  std::string body;
  std::optional<door::S3Error> bad;
  if (!co_await ReadSmallBody(call, &body, &bad)) co_return false;
  if (bad) co_return co_await x.Write(call.Error(*bad));
  S3Call* c = &call;
  const std::string* b = &body;
  auto work = x.Offload([c, b] { return CompleteMultipart(*c, *b); });
  WriteDone done = co_await std::move(work);
  if (done.refused) co_return co_await x.Write(std::move(*done.refused));
  ObjectInfo info = done.written;
  auto reached = StateAsAsked(call, *wait, &info);
  const std::string state = co_await std::move(reached);
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "CompleteMultipartUploadResult");
  XmlAdd(root, "Location", "/" + call.bucket->name + "/" + call.key);
  XmlAdd(root, "Bucket", call.bucket->name);
  XmlAdd(root, "Key", call.key);
  XmlAdd(root, "ETag", "\"" + info.etag + "\"");
  auto res = call.Xml(http::status::ok, XmlText(doc));
  res.set(kDurabilityHeader, state);
  co_return co_await x.Write(std::move(res));
}

TextResponse AbortMultipart(S3Call& call) {
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return call.Error(*e);
  auto upload = call.door.uploads()->Find(call.Q("uploadId"), call.bucket->name, call.key);
  if (!upload.ok()) return NoSuchUpload(call, upload.status());
  call.door.assemblies()->Drop(upload->id);
  if (Status st = call.door.uploads()->Remove(*upload); !st.ok()) return call.Error(st);
  TextResponse res{http::status::no_content, call.v};
  call.Stamp(res);
  return res;
}

TextResponse ListParts(S3Call& call) {
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return call.Error(*e);
  auto upload = call.door.uploads()->Find(call.Q("uploadId"), call.bucket->name, call.key);
  if (!upload.ok()) return NoSuchUpload(call, upload.status());
  auto parts = call.door.uploads()->Parts(*upload);
  if (!parts.ok()) return NoSuchUpload(call, parts.status());
  uint64_t marker = ParseNumber(call.Q("part-number-marker")).value_or(0);
  uint64_t max_parts = std::min<uint64_t>(ParseNumber(call.Q("max-parts")).value_or(1000), 1000);
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "ListPartsResult");
  XmlAdd(root, "Bucket", call.bucket->name);
  XmlAdd(root, "Key", call.key);
  XmlAdd(root, "UploadId", upload->id);
  XmlAdd(root, "PartNumberMarker", std::to_string(marker));
  XmlAdd(root, "MaxParts", std::to_string(max_parts));
  XmlAdd(root, "StorageClass", "STANDARD");
  uint64_t listed = 0, last = 0;
  bool truncated = false;
  for (const auto& p : *parts) {
    if (p.number <= marker) continue;
    if (listed == max_parts) {
      truncated = true;
      break;
    }
    auto e = root.append_child("Part");
    XmlAdd(e, "PartNumber", std::to_string(p.number));
    XmlAdd(e, "LastModified", IsoDate(p.modified));
    XmlAdd(e, "ETag", "\"" + p.etag + "\"");
    XmlAdd(e, "Size", std::to_string(p.size));
    last = p.number;
    listed++;
  }
  XmlAdd(root, "IsTruncated", truncated ? "true" : "false");
  if (truncated) XmlAdd(root, "NextPartNumberMarker", std::to_string(last));
  return call.Xml(http::status::ok, XmlText(doc));
}

TextResponse ListMultipartUploads(S3Call& call) {
  std::string prefix = call.Q("prefix");
  if (auto e = Authorize(call, call.bucket->name, prefix, door::Access::kRead)) return call.Error(*e);
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "ListMultipartUploadsResult");
  XmlAdd(root, "Bucket", call.bucket->name);
  XmlAdd(root, "Prefix", prefix);
  XmlAdd(root, "MaxUploads", "1000");
  XmlAdd(root, "IsTruncated", "false");
  for (const auto& u : call.door.uploads()->List(call.bucket->name)) {
    if (!StartsWith(u.key, prefix)) continue;
    auto e = root.append_child("Upload");
    XmlAdd(e, "Key", u.key);
    XmlAdd(e, "UploadId", u.id);
    XmlAdd(e, "Initiated", IsoDate(u.created));
    XmlAdd(e, "StorageClass", "STANDARD");
  }
  return call.Xml(http::status::ok, XmlText(doc));
}

// ---- copies: CopyObject and UploadPartCopy ----------------------------------------------------

// The object x-amz-copy-source names, stat'ed, its conditions checked.
struct CopySource {
  const DoorBucket* bucket = nullptr;
  std::string key;
  std::string url;
  ObjectInfo info;
};

// Resolves x-amz-copy-source ("[/]bucket/key", URL-encoded; a source in any configured bucket,
// whatever backend it fronts): the key must be allowed to read it, it must exist, and the
// x-amz-copy-source-if-* conditions must hold (S3's rules: If-Match decides over
// If-Unmodified-Since, If-None-Match over If-Modified-Since; a failed one is 412). The
// refusal, or nullopt with *src set. Blocking (a HEAD to the store): on the serve pool.
std::optional<TextResponse> ResolveCopySource(S3Call& call, CopySource* src) {
  std::string raw(Header(call.req, "x-amz-copy-source"));
  if (size_t q = raw.find('?'); q != std::string::npos) {
    if (raw.compare(q + 1, 10, "versionId=") == 0) {
      return call.Error(http::status::not_implemented, "NotImplemented",
                        "x-amz-copy-source names a version (?versionId=): the door's buckets are not versioned; "
                        "leave versionId out to copy the current object");
    }
    return call.Error(http::status::bad_request, "InvalidArgument",
                      "x-amz-copy-source takes no parameter but versionId (and the door serves none): '" + raw + "'");
  }
  auto decoded = door::PercentDecode(raw);
  if (!decoded) return call.Error(http::status::bad_request, "InvalidArgument", "x-amz-copy-source is not URL-encoded right: '" + raw + "'");
  std::string path = *decoded;
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  size_t slash = path.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) {
    return call.Error(http::status::bad_request, "InvalidArgument",
                      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey (got '" + raw + "')");
  }
  src->bucket = call.door.Find(path.substr(0, slash));
  src->key = path.substr(slash + 1);
  if (src->bucket == nullptr) {
    return call.Error(http::status::not_found, "NoSuchBucket",
                      "The copy source bucket does not exist: '" + path.substr(0, slash) + "' is not configured on this node");
  }
  if (auto e = Authorize(call, src->bucket->name, src->key, door::Access::kRead)) return call.Error(*e);
  src->url = src->bucket->UrlOf(src->key);
  auto info = call.x.node->directory().Stat(src->url);
  if (!info.ok()) {
    if (info.status().code() == Code::kNotFound) {
      return call.Error(http::status::not_found, "NoSuchKey", "The copy source does not exist: " + src->bucket->name + "/" + src->key);
    }
    return call.Error(info.status());
  }
  src->info = *info;
  const std::time_t modified = info->last_modified != 0 ? info->last_modified : std::time(nullptr);
  if (CheckObjectPreconditions(call.x.node, call.req, src->url, *info, modified, "x-amz-copy-source-") !=
      Precondition::kProceed) {
    return call.Error(http::status::precondition_failed, "PreconditionFailed",
                      "At least one of the pre-conditions you specified did not hold (x-amz-copy-source-if-*)");
  }
  return std::nullopt;
}

// Bytes [offset, offset + length) of `src` through the node's read path (memory, disk, the
// chunk's owner, the store: each chunk fetched once, as a GET has it), to `sink` (run on the
// serve pool) a chunk's piece at a time. Like a GET, it follows a fetch's bytes without
// holding a thread while they come. A source that changes in the store meanwhile fails the
// copy (kPreconditionFailed).
awaitable<Status> ReadSource(Exchange& x, const CopySource& src, uint64_t offset, uint64_t length,
                             const std::function<Status(std::string_view)>& sink) {
  Node* node = x.node;
  const CopySource* s = &src;
  const std::function<Status(std::string_view)>* to = &sink;
  const uint64_t chunk_size = node->options().chunk_size;
  for (uint64_t pos = offset, end = offset + length; pos < end;) {
    const uint64_t index = pos / chunk_size, base = index * chunk_size;
    auto open = x.Offload([node, s, index] {
      auto r = node->reads().OpenChunk(s->url, s->info, index, ReadMode::kRoute);
      if (r.ok()) node->reads().Prefetch(s->url, s->info, index, ReadMode::kRoute);
      return r;
    });
    Result<ChunkSource> opened = co_await std::move(open);
    if (!opened.ok()) co_return opened.status().WithContext("copying from " + src.url);
    std::shared_ptr<const std::string> data = opened->data;
    if (!data) {
      const std::shared_ptr<ChunkFill> fill = opened->fill;
      co_await x.WaitPast(fill, fill->length() - 1);  // the whole chunk, or its fetch's end
      if (fill->filled() < fill->length()) {
        co_return node->reads().FetchError(src.url, src.info, index).WithContext("copying from " + src.url);
      }
      data = ChunkFill::Whole(fill);
    }
    if (pos - base >= data->size()) {
      co_return Status::Corruption(src.url + ": chunk " + std::to_string(index) + " is shorter than the object says");
    }
    const std::string_view piece(data->data() + (pos - base), std::min<uint64_t>(data->size() - (pos - base), end - pos));
    auto put = x.Offload([to, piece] { return (*to)(piece); });
    Status st = co_await std::move(put);
    if (!st.ok()) co_return st;
    pos += piece.size();
  }
  co_return Status::Ok();
}

// What a copy needs before the bytes: the source, the range of it to copy, and the write
// begun (CopyObject: the destination object; UploadPartCopy: the part); or the refusal.
struct CopyStart {
  std::optional<TextResponse> refused;
  CopySource src;
  uint64_t offset = 0, length = 0;
  std::shared_ptr<Writer> object;
  std::shared_ptr<DoorUploads::PartWriter> part;
};

CopyStart Refused(TextResponse res) {
  CopyStart out;
  out.refused = std::move(res);
  return out;
}

// CopyObject's start: the destination's write begun with the source's metadata, or the
// request's under x-amz-metadata-directive: REPLACE. Blocking (a HEAD to the store): on the
// serve pool.
CopyStart StartCopy(S3Call& call) {
  CopyStart out;
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return Refused(call.Error(*e));
  if (auto refused = ResolveCopySource(call, &out.src)) return Refused(std::move(*refused));
  const CopySource& src = out.src;
  const std::string directive(Header(call.req, "x-amz-metadata-directive"));
  ObjectMeta meta = src.info.meta ? *src.info.meta : ObjectMeta{};
  if (directive == "REPLACE") {
    auto given = S3MetaOf(call);
    if (!given.ok()) return Refused(call.Error(http::status::bad_request, "InvalidArgument", given.status().message()));
    meta = std::move(*given);
  } else if (!directive.empty() && directive != "COPY") {
    return Refused(call.Error(http::status::bad_request, "InvalidArgument",
                              "x-amz-metadata-directive is COPY or REPLACE, not '" + directive + "'"));
  } else if (src.bucket == call.bucket && src.key == call.key) {
    return Refused(call.Error(http::status::bad_request, "InvalidRequest",
                              "This copy request is illegal because it is trying to copy an object to itself without "
                              "changing the object's metadata (send x-amz-metadata-directive: REPLACE)"));
  }
  if (src.info.size > kMaxPutBytes) {
    return Refused(call.Error(http::status::bad_request, "InvalidRequest",
                              "The specified copy source is larger than the maximum allowable size for a copy source: "
                              "5368709120 (copy it in parts: UploadPartCopy)"));
  }
  auto begun = call.x.node->writes().BeginWrite(call.bucket->UrlOf(call.key), meta);
  if (!begun.ok()) return Refused(call.Error(begun.status()));
  out.object = std::move(*begun);
  out.length = src.info.size;
  return out;
}

// PUT with x-amz-copy-source: the source's bytes through the read path into one write-back
// write of the destination, answered with CopyObjectResult once acknowledged (or durable, when
// asked: StateAsAsked).
awaitable<bool> CopyObject(S3Call& call) {
  Exchange& x = call.x;
  const auto started = std::chrono::steady_clock::now();
  if (!call.parser.is_done()) {  // (the body is not read: the connection closes)
    co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidRequest", "a copy takes no body", true));
  }
  auto wait = WaitAsked(call);
  if (!wait.ok()) co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidArgument", wait.status().message()));
  S3Call* c = &call;
  auto start = x.Offload([c] { return StartCopy(*c); });
  CopyStart copy = co_await std::move(start);
  if (copy.refused) co_return co_await x.Write(std::move(*copy.refused));
  Writer* writer = copy.object.get();
  const std::function<Status(std::string_view)> append = [writer](std::string_view d) {
    return writer->Append(d.data(), d.size());
  };
  auto read = ReadSource(x, copy.src, copy.offset, copy.length, append);
  Status st = co_await std::move(read);
  auto end = x.EndWrite(std::move(copy.object), true, st);
  Result<ObjectInfo> written = co_await std::move(end);
  if (!written.ok()) co_return co_await x.Write(call.Error(written.status()));
  ObjectInfo info = *written;
  auto reached = StateAsAsked(call, *wait, &info);
  const std::string state = co_await std::move(reached);
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "CopyObjectResult");
  XmlAdd(root, "LastModified", IsoDate(info.last_modified != 0 ? info.last_modified : std::time(nullptr)));
  XmlAdd(root, "ETag", "\"" + info.etag + "\"");
  auto res = call.Xml(http::status::ok, XmlText(doc));
  res.set(kDurabilityHeader, state);
  bool ok = co_await x.Write(std::move(res));
  x.node->metrics().op_write_ack.Observe(std::chrono::steady_clock::now() - started);
  co_return ok;
}

// UploadPartCopy's start: the range of the source (x-amz-copy-source-range "bytes=FIRST-LAST",
// else all of it) and the part begun. Blocking: on the serve pool.
CopyStart StartPartCopy(S3Call& call) {
  CopyStart out;
  if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) return Refused(call.Error(*e));
  auto number = ParseNumber(call.Q("partNumber"));
  if (!number || *number < 1 || *number > 10000) {
    return Refused(call.Error(http::status::bad_request, "InvalidArgument",
                              "Part number must be an integer between 1 and 10000, inclusive"));
  }
  auto upload = call.door.uploads()->Find(call.Q("uploadId"), call.bucket->name, call.key);
  if (!upload.ok()) return Refused(NoSuchUpload(call, upload.status()));
  if (auto refused = ResolveCopySource(call, &out.src)) return Refused(std::move(*refused));
  const uint64_t size = out.src.info.size;
  out.length = size;
  const std::string range(Header(call.req, "x-amz-copy-source-range"));
  if (!range.empty()) {
    // Only "bytes=FIRST-LAST", both inside the object (S3 takes no suffix or open range here).
    const size_t dash = range.find('-');
    const bool framed = StartsWith(range, "bytes=") && dash != std::string::npos;
    const uint64_t first = framed ? ParseNumber(range.substr(6, dash - 6)).value_or(UINT64_MAX) : UINT64_MAX;
    const uint64_t last = framed ? ParseNumber(range.substr(dash + 1)).value_or(UINT64_MAX) : UINT64_MAX;
    if (first > last || last >= size) {
      return Refused(call.Error(http::status::bad_request, "InvalidArgument",
                               "x-amz-copy-source-range must be bytes=FIRST-LAST inside the source object (" +
                                    std::to_string(size) + " bytes): got '" + range + "'"));
    }
    out.offset = first;
    out.length = last - first + 1;
  }
  if (out.length > kMaxPartBytes) return Refused(call.Error(http::status::bad_request, "EntityTooLarge", "a part is at most 5 GiB"));
  auto part = call.door.uploads()->WritePart(*upload, static_cast<uint32_t>(*number));
  if (!part.ok()) return Refused(NoSuchUpload(call, part.status()));
  out.part = std::move(*part);
  return out;
}

// PUT ?partNumber=N&uploadId=ID with x-amz-copy-source: the source's bytes through the read
// path into the part, answered with CopyPartResult.
awaitable<bool> UploadPartCopy(S3Call& call) {
  Exchange& x = call.x;
  if (!call.parser.is_done()) {
    co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidRequest", "a copy takes no body", true));
  }
  S3Call* c = &call;
  auto start = x.Offload([c] { return StartPartCopy(*c); });
  CopyStart copy = co_await std::move(start);
  if (copy.refused) co_return co_await x.Write(std::move(*copy.refused));
  DoorUploads::PartWriter* writer = copy.part.get();
  const std::function<Status(std::string_view)> append = [writer](std::string_view d) { return writer->Append(d); };
  auto read = ReadSource(x, copy.src, copy.offset, copy.length, append);
  Status st = co_await std::move(read);
  Result<StagedPart> staged = st;
  if (st.ok()) {
    auto finish = x.Offload([writer] { return writer->Finish(); });
    staged = co_await std::move(finish);
  }
  // An unfinished part is dropped (its file removed): disk work, on the pool.
  auto drop = x.Offload([w = std::move(copy.part)]() mutable {
    w.reset();
    return 0;
  });
  co_await std::move(drop);
  if (!staged.ok()) co_return co_await x.Write(call.Error(staged.status()));
  pugi::xml_document doc;
  auto root = S3XmlRoot(doc, "CopyPartResult");
  XmlAdd(root, "LastModified", IsoDate(staged->modified));
  XmlAdd(root, "ETag", "\"" + staged->etag + "\"");
  co_return co_await x.Write(call.Xml(http::status::ok, XmlText(doc)));
}

// Which bucket and key the request names: virtual-hosted (Host "bucket.anything" with a
// configured bucket) or path-style.
void Locate(S3Call& call) {
  std::string host(Header(call.req, "Host"));
  if (size_t colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos) host.resize(colon);
  std::string path = PercentDecode(call.raw_path);
  if (size_t dot = host.find('.'); dot != std::string::npos) {
    if (const DoorBucket* b = call.door.Find(host.substr(0, dot))) {
      call.bucket_name = b->name;
      call.key = path.size() > 1 ? path.substr(1) : "";
      return;
    }
  }
  std::string rest = path.size() > 1 ? path.substr(1) : "";
  size_t slash = rest.find('/');
  call.bucket_name = rest.substr(0, slash);
  call.key = slash == std::string::npos ? "" : rest.substr(slash + 1);
}

}  // namespace

// Every request to the door (any path outside /v1 and the probes). False if the connection
// must close.
awaitable<bool> ServeS3(Exchange& x, Parser& parser, const Door& door) {
  S3Call call(x, parser, door);
  const Request& req = call.req;
  Locate(call);
  const bool has_body = !parser.is_done();
  if (auto e = Authenticate(call)) {
    co_return co_await x.Write(call.Error(*e, has_body));
  }
  const http::verb m = req.method();
  if (call.bucket_name.empty()) {
    if (m == http::verb::get) co_return co_await x.Write(ListBuckets(call));
    co_return co_await x.Write(call.Error(http::status::method_not_allowed, "MethodNotAllowed",
                                "The specified method is not allowed against this resource", has_body));
  }
  call.bucket = door.Find(call.bucket_name);
  if (call.bucket == nullptr) {
    co_return co_await x.Write(call.Error(http::status::not_found, "NoSuchBucket",
                                "The specified bucket does not exist: this node serves " +
                                    std::to_string(door.buckets().size()) + " configured bucket(s)",
                                has_body));
  }
  // A blocking handler, on the serve pool.
  auto blocking = [&](TextResponse (*handler)(S3Call&)) -> awaitable<bool> {
    auto work = x.Offload([handler, &call] { return handler(call); });
    TextResponse res = co_await std::move(work);
    co_return co_await x.Write(std::move(res));
  };
  // The same for a handler of a small body (XML), read and checked against its signature first.
  auto with_body = [&](TextResponse (*handler)(S3Call&, const std::string&)) -> awaitable<bool> {
    std::string body;
    std::optional<door::S3Error> bad;
    if (!co_await ReadSmallBody(call, &body, &bad)) co_return false;
    if (bad) co_return co_await x.Write(call.Error(*bad));
    auto work = x.Offload([handler, &call, &body] { return handler(call, body); });
    TextResponse res = co_await std::move(work);
    co_return co_await x.Write(std::move(res));
  };
  if (!call.key.empty() && (call.Has("uploads") || call.Has("uploadId"))) {
    if (m == http::verb::put && call.Has("partNumber")) {
      if (!Header(req, "x-amz-copy-source").empty()) co_return co_await UploadPartCopy(call);
      co_return co_await UploadPart(call);
    }
    if (m == http::verb::post && call.Has("uploadId")) {
      if (auto e = Authorize(call, call.bucket->name, call.key, door::Access::kWrite)) {
        co_return co_await x.Write(call.Error(*e, has_body));
      }
      co_return co_await CompleteMultipartUpload(call);
    }
    // (Answered with the connection closing: the body is not read.)
    if (has_body) co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidRequest", "this request takes no body", true));
    if (m == http::verb::post && call.Has("uploads")) co_return co_await blocking(CreateMultipart);
    if (m == http::verb::delete_) co_return co_await blocking(AbortMultipart);
    if (m == http::verb::get) co_return co_await blocking(ListParts);
    co_return co_await x.Write(call.Error(http::status::method_not_allowed, "MethodNotAllowed",
                                          "The specified method is not allowed against a multipart upload"));
  }
  if (call.key.empty()) {  // the bucket itself
    if (m == http::verb::post && call.Has("delete")) {
      // Each key is checked on its own; a key with no write scope in the bucket at all is
      // refused before its body is read.
      if (auto e = Authorize(call, call.bucket->name, "", door::Access::kWrite);
          e && !HasScopeIn(call, call.bucket->name, door::Access::kWrite)) {
        co_return co_await x.Write(call.Error(*e, has_body));
      }
      co_return co_await with_body(DeleteObjects);
    }
    // (Answered with the connection closing: the body is not read.)
    if (has_body) co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidRequest", "this request takes no body", true));
    if (m == http::verb::head) {
      if (auto e = Authorize(call, call.bucket->name, "", door::Access::kRead); e && !HasScopeIn(call, call.bucket->name)) {
        co_return co_await x.Write(call.Error(*e));  // HeadBucket: 200 to any key with a scope in the bucket
      }
      TextResponse res{http::status::ok, call.v};
      call.Stamp(res);
      res.set("x-amz-bucket-region", door.region());
      res.content_length(0);
      co_return co_await x.Write(std::move(res));
    }
    if (m == http::verb::get && call.Has("uploads")) co_return co_await blocking(ListMultipartUploads);
    if (m == http::verb::get && call.Has("location")) {
      pugi::xml_document doc;
      auto root = doc.append_child("LocationConstraint");
      root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
      if (door.region() != "us-east-1") root.text().set(door.region().c_str());
      co_return co_await x.Write(call.Xml(http::status::ok, XmlText(doc)));
    }
    if (m == http::verb::get) co_return co_await blocking(ListObjects);
    if (m == http::verb::put) {
      co_return co_await x.Write(call.Error(http::status::conflict, "BucketAlreadyOwnedByYou",
                                            "This bucket is configured on the node (--bucket)"));
    }
    co_return co_await x.Write(call.Error(http::status::method_not_allowed, "MethodNotAllowed",
                                          "The specified method is not allowed against a bucket here"));
  }
  if (m == http::verb::put && !Header(req, "x-amz-copy-source").empty()) co_return co_await CopyObject(call);
  if (m == http::verb::put) co_return co_await PutObject(call);
  if (has_body) co_return co_await x.Write(call.Error(http::status::bad_request, "InvalidRequest", "this request takes no body", true));
  if (m == http::verb::get || m == http::verb::head) co_return co_await GetObject(call);
  if (m == http::verb::delete_) co_return co_await blocking(DeleteObject);
  co_return co_await x.Write(call.Error(http::status::method_not_allowed, "MethodNotAllowed",
                                        "The specified method is not allowed against an object here"));
}

}  // namespace shoal::node
