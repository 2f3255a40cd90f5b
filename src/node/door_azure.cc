// The Azure Blob API of the front door, path-style as Azurite serves it
// (http://NODE:PORT/ACCOUNT/CONTAINER/BLOB): the door's buckets are the containers. Get Blob,
// Get Blob Properties, Put Blob, Put Block and Put Block List (blocks staged by door_uploads.h,
// the blob committed whole), Get Block List, List Blobs, Delete Blob, Get/Set Blob Metadata,
// Set Blob Properties, Get Container Properties and List Containers. Every request is verified
// (door/azure_auth.h: Shared Key, service and account SAS) unless the door is open; reads go
// through the node's read path, writes through write-back. What is refused, and how, is in
// docs/front-door.md.

#include <chrono>
#include <ctime>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>

#include "common/strings.h"
#include "door/azure_auth.h"
#include "door/azure_blocks.h"
#include "door/checksum.h"
#include "net/node_protocol.h"
#include "node/door.h"
#include "node/door_http.h"
#include "node/exchange.h"
#include "node/listing.h"
#include "node/request_parse.h"

namespace shoal::node {
namespace {

constexpr uint64_t kMaxPutBlobBytes = 5000ull << 20;  // Azure's limit for one Put Blob
constexpr uint64_t kMaxBlockBytes = 4000ull << 20;    // and for one block
constexpr uint64_t kMaxBlockListBody = 8ull << 20;    // 50,000 ids of 64 bytes fit
constexpr uint64_t kMaxResults = 5000;                // Azure's largest page
constexpr const char* kMarkerTag = "a1.";             // our NextMarkers
constexpr const char* kDefaultVersion = "2021-12-02";  // x-ms-version answered to a client that sends none

// When the door's containers came to be, as their properties say.
std::time_t DoorStarted() {
  static const std::time_t started = std::time(nullptr);
  return started;
}

// Azure's request ids are GUIDs.
std::string RequestId() {
  std::string h = RandomHex() + RandomHex();
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
}

// One Azure request: what it names, who signed it, and how to answer it.
struct AzureCall : DoorCall {
  bool has_body;
  std::string request_id = RequestId();
  std::string account, container, blob;  // decoded
  const DoorBucket* bucket = nullptr;
  door::AzurePrincipal principal;  // when verified (the door is not open)

  AzureCall(Exchange& ex, Parser& p, const Door& d) : DoorCall(ex, p, d), has_body(!p.is_done()) {}

  std::string H(std::string_view name) const { return std::string(view.Header(name).value_or("")); }
  std::string Url() const { return bucket->UrlOf(blob); }

  template <class Body>
  void Stamp(http::response<Body>& res) const {
    Prepare(res, v, ka);
    res.set("x-ms-request-id", request_id);
    std::string version = H("x-ms-version");
    res.set("x-ms-version", version.empty() ? kDefaultVersion : version);
    res.set(http::field::date, FormatRfc1123(std::time(nullptr)));
  }

  TextResponse Empty(http::status status) const {
    TextResponse res{status, v};
    Stamp(res);
    res.content_length(0);
    return res;
  }

  TextResponse Xml(http::status status, std::string body) const {
    TextResponse res{status, v};
    Stamp(res);
    res.set(http::field::content_type, "application/xml");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  // Azure's error: the code in x-ms-error-code and in the XML body (none for HEAD).
  // `close`: the body was not read.
  TextResponse Error(http::status status, const std::string& code, const std::string& message, bool close = false,
                     const std::string& detail = "") const {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"Code", code}, {"Message", message + "\nRequestId:" + request_id + "\nTime:" + FormatIso8601(std::time(nullptr))}};
    if (!detail.empty()) fields.emplace_back("AuthenticationErrorDetail", detail);
    auto res = Xml(status, head ? "" : door::RenderErrorXml("utf-8", fields));
    res.set("x-ms-error-code", code);
    if (head) res.content_length(0);
    if (close) res.keep_alive(false);
    return res;
  }

  TextResponse Error(const door::AzureError& e, bool close = false) const {
    return Error(static_cast<http::status>(e.http_status()), e.name(), e.message, close, e.detail);
  }

  // A node's error as Azure names it; kNotFound is `not_found` (BlobNotFound by default).
  TextResponse Error(const Status& st, bool close = false, const char* not_found = "BlobNotFound") const {
    CountError(x.node, st);
    switch (st.code()) {
      case Code::kNotFound:
        return Error(http::status::not_found, not_found, "The specified blob does not exist: " + st.message(), close);
      case Code::kPreconditionFailed:
        return Error(http::status::precondition_failed, "ConditionNotMet", st.message(), close);
      case Code::kInvalidArgument:
        return Error(http::status::bad_request, "InvalidInput", "One of the request inputs is not valid: " + st.message(), close);
      case Code::kPermissionDenied:
        return Error(http::status::forbidden, "AuthorizationFailure", st.message(), close);
      case Code::kUnavailable:
      case Code::kResourceExhausted:
        return Error(http::status::service_unavailable, "ServerBusy", st.message() + " (retry)", close);
      default:
        return Error(http::status::internal_server_error, "InternalError", st.message(), close);
    }
  }
};

// Sends a refusal whose request body was not read, and closes: false for the caller to return.
awaitable<bool> Refuse(AzureCall& call, TextResponse res) {
  res.keep_alive(false);
  co_await call.x.Write(std::move(res));
  co_return false;
}

// ---- authentication -------------------------------------------------------------------------

std::optional<door::AzureError> Authenticate(AzureCall& call) {
  if (call.door.open()) return std::nullopt;
  auto verdict = door::VerifyAzure(call.view, *call.door.credentials(), {}, std::time(nullptr));
  if (!verdict.ok()) return verdict.error();
  call.principal = std::move(verdict).value();
  return std::nullopt;
}

std::optional<door::AzureError> Authorize(const AzureCall& call, std::string_view key_path, door::AzureOp op) {
  if (call.door.open()) return std::nullopt;
  return door::AuthorizeAzure(call.principal, call.bucket->name, key_path, op);
}

// Whether the key has any scope in `container` (what lets it see the container's name and
// properties when its scopes are prefixes); a SAS must also carry `op`.
std::optional<door::AzureError> AuthorizeContainer(const AzureCall& call, const std::string& container, door::AzureOp op) {
  if (call.door.open()) return std::nullopt;
  auto e = door::AuthorizeAzure(call.principal, container, "", op);
  if (!e || e->code == door::AzureErrorCode::kAuthorizationPermissionMismatch) return e;
  for (const auto& s : call.principal.key->scopes) {
    if (s.bucket == container || s.bucket == "*") return std::nullopt;
  }
  return e;
}

// The blob's content headers and x-ms-meta-*: Azure's x-ms-blob-content-* headers, or (Put
// Blob, `plain`) the standard ones they stand for when absent.
Result<ObjectMeta> AzureMetaOf(const AzureCall& call, bool plain) {
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  for (const auto& f : kContentFields) {
    auto value = call.view.Header(f.azure);
    if (!value && plain) value = call.view.Header(f.header);
    if (value) headers.emplace_back(f.header, *value);
  }
  for (const auto& [name, value] : call.view.headers) {
    if (StartsWith(ToLower(name), "x-ms-meta-")) headers.emplace_back(name, value);
  }
  return proto::MetaFromHeaders(headers, "x-ms-meta-");
}

TextResponse InvalidMetadata(const AzureCall& call, const Status& st) {
  return call.Error(http::status::bad_request, "InvalidMetadata", "The metadata specified is invalid: " + st.message());
}

// ---- bodies ---------------------------------------------------------------------------------

// A request body, read raw (ReadRawBody) and handed to `write`; *bytes its length, reading
// stops past `limit`; Content-MD5, when sent, checked at the end (*md5_mismatch). *st the
// first error. Only when it is clear may the data be committed. False if the connection failed.
awaitable<bool> ReadAzureBody(AzureCall& call, uint64_t limit, const std::function<Status(std::string_view)>& write,
                              Status* st, uint64_t* bytes, bool* md5_mismatch) {
  std::string want = call.H("Content-MD5");
  std::unique_ptr<door::Checksum> md5;
  if (!want.empty()) {
    auto raw = Base64Decode(want);
    want = raw.ok() ? *raw : "";
    md5 = door::Checksum::Make("md5");
  }
  auto take = [&](std::string_view data) -> Status {
    *bytes += data.size();
    if (*bytes > limit) return Status::InvalidArgument("the body is larger than " + FormatBytes(limit));
    if (md5) md5->Update(data);
    return write(data);
  };
  bool connected = co_await ReadRawBody(call.x, call.parser, take, st);
  if (connected && st->ok() && md5 && md5->Final() != want) {
    *md5_mismatch = true;
    *st = Status::InvalidArgument("the body's MD5 is not Content-MD5's");
  }
  co_return connected;
}

// A refusal of a body that failed ReadAzureBody.
TextResponse BodyError(const AzureCall& call, const Status& st, uint64_t bytes, uint64_t limit, bool md5_mismatch) {
  if (md5_mismatch) {
    return call.Error(http::status::bad_request, "Md5Mismatch",
                      "The MD5 value specified in the request did not match with the MD5 value calculated by the server.", true);
  }
  if (bytes > limit) {
    return call.Error(http::status::payload_too_large, "RequestBodyTooLarge",
                      "The request body is too large and exceeds the maximum permissible limit (" + FormatBytes(limit) + ").", true);
  }
  return call.Error(st, true);
}

// Bytes [offset, offset + length) of version `info` of `url`, through the read path, to `sink`.
// Blocking (waits for fetches): on the serve pool only.
Status ReadObjectRange(Node* node, const std::string& url, const ObjectInfo& info, uint64_t offset, uint64_t length,
                       const std::function<Status(std::string_view)>& sink) {
  const uint64_t chunk_size = node->options().chunk_size;
  uint64_t pos = offset;
  const uint64_t end = offset + length;
  while (pos < end) {
    const uint64_t index = pos / chunk_size, base = index * chunk_size;
    auto src = node->reads().OpenChunk(url, info, index, ReadMode::kRoute);
    if (!src.ok()) return src.status();
    std::string_view bytes;
    if (src->data) {
      bytes = *src->data;
    } else {
      std::shared_ptr<ChunkFill> fill = src->fill;
      const size_t need = std::min<uint64_t>(end - base, fill->length());
      auto done = std::make_shared<std::promise<void>>();
      std::future<void> over = done->get_future();
      fill->WhenPast(need - 1, [done] { done->set_value(); });
      over.wait();
      if (fill->filled() < need) return node->reads().FetchError(url, info, index);
      bytes = std::string_view(fill->data(), need);
      if (pos - base >= bytes.size()) return Status::Corruption(url + ": chunk " + std::to_string(index) + " is short");
      const uint64_t k = std::min<uint64_t>(bytes.size() - (pos - base), end - pos);
      SHOAL_RETURN_IF_ERROR(sink(bytes.substr(pos - base, k)));
      pos += k;
      continue;
    }
    if (pos - base >= bytes.size()) return Status::Corruption(url + ": chunk " + std::to_string(index) + " is short");
    const uint64_t k = std::min<uint64_t>(bytes.size() - (pos - base), end - pos);
    SHOAL_RETURN_IF_ERROR(sink(bytes.substr(pos - base, k)));
    pos += k;
  }
  return Status::Ok();
}

// The blob's answer headers: version, type, content headers and x-ms-meta-*.
template <class Body>
void BlobHeaders(const ObjectInfo& info, http::response<Body>& res, bool meta_only) {
  std::time_t modified = info.last_modified != 0 ? info.last_modified : std::time(nullptr);
  res.set(http::field::etag, "\"" + info.etag + "\"");
  res.set(http::field::last_modified, FormatRfc1123(modified));
  const ObjectMeta meta = info.meta ? *info.meta : ObjectMeta{};
  if (meta_only) {
    for (const auto& [name, value] : meta.user) res.set("x-ms-meta-" + name, value);
    return;
  }
  res.set("x-ms-blob-type", "BlockBlob");
  res.set("x-ms-creation-time", FormatRfc1123(modified));
  res.set("x-ms-lease-state", "available");
  res.set("x-ms-lease-status", "unlocked");
  res.set("x-ms-server-encrypted", "false");
  res.set(http::field::accept_ranges, "bytes");
  for (const auto& [name, value] : MetaHeaders(meta, &ContentField::header, "x-ms-meta-")) res.set(name, value);
}

// ---- blobs ----------------------------------------------------------------------------------

// Get Blob, Get Blob Properties (HEAD), Get Blob Metadata (comp=metadata): through the read path.
awaitable<bool> GetBlob(AzureCall& call, bool meta_only) {
  Exchange& x = call.x;
  Node* node = x.node;
  if (auto e = Authorize(call, call.blob, door::AzureOp::kRead)) co_return co_await x.Write(call.Error(*e));
  const std::string url = call.Url();
  auto stat = x.Offload([node, url] { return node->directory().Stat(url); });
  Result<ObjectInfo> info = co_await std::move(stat);
  if (!info.ok()) co_return co_await x.Write(call.Error(info.status()));
  std::time_t modified = info->last_modified != 0 ? info->last_modified : std::time(nullptr);
  const Precondition pre = CheckObjectPreconditions(node, call.req, url, *info, modified);
  if (pre == Precondition::kFailed) {
    co_return co_await x.Write(call.Error(http::status::precondition_failed, "ConditionNotMet",
                                          "The condition specified using HTTP conditional header(s) is not met."));
  }
  if (pre == Precondition::kNotModified) {
    http::response<http::empty_body> res{http::status::not_modified, call.v};
    call.Stamp(res);
    res.set(http::field::etag, "\"" + info->etag + "\"");
    res.set(http::field::last_modified, FormatRfc1123(modified));
    co_return co_await x.WriteHeader(res) && call.ka;
  }
  http::response<http::empty_body> res{http::status::ok, call.v};
  call.Stamp(res);
  BlobHeaders(*info, res, meta_only);
  if (meta_only) {
    res.content_length(0);
    co_return co_await x.WriteHeader(res) && call.ka;
  }
  uint64_t offset = 0, length = info->size;
  std::string range = call.H("x-ms-range");
  if (range.empty()) range = call.H("Range");
  if (!range.empty()) {
    if (!ParseRange(range, info->size, &offset, &length)) {
      auto err = call.Error(http::status::range_not_satisfiable, "InvalidRange", "The range specified is invalid for the current size of the resource.");
      err.set(http::field::content_range, "bytes */" + std::to_string(info->size));
      co_return co_await x.Write(std::move(err));
    }
    res.result(http::status::partial_content);
  }
  const std::function<TextResponse(const Status&)> error = [&call](const Status& st) { return call.Error(st); };
  co_return co_await SendDoorObject(x, url, *info, offset, length, call.head, call.ka, res, error);
}

// Put Blob (a block blob): the body into write-back; 201 once the write is acknowledged.
awaitable<bool> PutBlob(AzureCall& call) {
  Exchange& x = call.x;
  Node* node = x.node;
  const auto started = std::chrono::steady_clock::now();
  if (auto e = Authorize(call, call.blob, door::AzureOp::kWrite)) co_return co_await Refuse(call, call.Error(*e));
  if (!call.H("x-ms-copy-source").empty()) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "UnsupportedHeader",
                                               "Copy Blob (x-ms-copy-source) is not served by this door: upload the bytes"));
  }
  const std::string type = call.H("x-ms-blob-type");
  if (type.empty()) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "MissingRequiredHeader",
                                               "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type"));
  }
  if (type != "BlockBlob") {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "InvalidHeaderValue",
                                               "x-ms-blob-type " + type + ": this door serves block blobs only (BlockBlob)"));
  }
  if (call.parser.content_length().value_or(0) > kMaxPutBlobBytes) {
    co_return co_await Refuse(call, call.Error(http::status::payload_too_large, "RequestBodyTooLarge",
                                               "Put Blob takes at most 5000 MiB: upload larger blobs in blocks"));
  }
  if (!call.H("Content-MD5").empty() && !Base64Decode(call.H("Content-MD5")).ok()) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "InvalidHeaderValue", "Content-MD5 is not base64"));
  }
  auto meta = AzureMetaOf(call, true);
  if (!meta.ok()) co_return co_await Refuse(call, InvalidMetadata(call, meta.status()));
  const std::string url = call.Url();
  auto begin = x.Offload([node, url, m = std::move(meta).value()] { return node->writes().BeginWrite(url, m); });
  Result<std::unique_ptr<Writer>> begun = co_await std::move(begin);
  if (!begun.ok()) co_return co_await Refuse(call, call.Error(begun.status()));
  std::shared_ptr<Writer> w = std::move(*begun);
  if (!co_await x.ContinueIfAsked(call.req)) co_return false;
  uint64_t bytes = 0;
  bool md5_mismatch = false;
  Status st;
  Writer* writer = w.get();
  const std::function<Status(std::string_view)> write = [writer](std::string_view d) { return writer->Append(d.data(), d.size()); };
  bool connected = co_await ReadAzureBody(call, kMaxPutBlobBytes, write, &st, &bytes, &md5_mismatch);
  auto end = x.EndWrite(std::move(w), connected, st);
  Result<ObjectInfo> info = co_await std::move(end);
  if (!connected) co_return false;
  if (!st.ok()) co_return co_await Refuse(call, BodyError(call, st, bytes, kMaxPutBlobBytes, md5_mismatch));
  if (!info.ok()) co_return co_await Refuse(call, call.Error(info.status()));
  // The blob is new: blocks staged for its name, and the list it was committed from, are gone.
  DoorUploads* uploads = call.door.uploads();
  const std::string container = call.bucket->name, blob = call.blob;
  DoorAssemblies* assemblies = call.door.assemblies();
  auto forget = x.Offload([uploads, assemblies, container, blob] {
    auto area = uploads->BlockArea(container, blob, false);
    if (!area.ok()) return Status::Ok();
    assemblies->Drop(area->id);
    return uploads->Remove(*area);
  });
  (void)co_await std::move(forget);
  auto res = call.Empty(http::status::created);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set(http::field::last_modified, FormatRfc1123(std::time(nullptr)));
  res.set("x-ms-request-server-encrypted", "false");
  res.set("x-shoal-state", "local");
  bool ok = co_await x.Write(std::move(res));
  node->metrics().op_write_ack.Observe(std::chrono::steady_clock::now() - started);
  co_return ok;
}

// The block id of ?blockid=: base64 of 1 to 64 bytes.
std::optional<std::string> BlockIdOf(const AzureCall& call) {
  auto id = Base64Decode(call.Q("blockid"));
  if (!id.ok() || id->empty() || id->size() > 64) return std::nullopt;
  return *id;
}

// The offset in the blob a block id names, when it names one as the Azure SDK for Python does:
// base64 of the URL-quoted base64 of the zero-padded decimal offset (the id as received is
// already base64-decoded once). Nullopt for any other id. Only a hint: Put Block List checks
// what was joined early against the list it is given (door_assembly.h).
std::optional<uint64_t> BlockOffset(std::string_view id) {
  std::optional<std::string> unquoted = door::PercentDecode(id);
  if (!unquoted) return std::nullopt;
  auto digits = Base64Decode(*unquoted);
  if (!digits.ok() || digits->empty() || digits->size() > 32) return std::nullopt;
  uint64_t offset = 0;
  for (char c : *digits) {
    if (c < '0' || c > '9' || offset > (UINT64_MAX - 9) / 10) return std::nullopt;
    offset = offset * 10 + static_cast<uint64_t>(c - '0');
  }
  return offset;
}

// Put Block: the bytes into a file of the blob's block area.
awaitable<bool> PutBlock(AzureCall& call) {
  Exchange& x = call.x;
  if (auto e = Authorize(call, call.blob, door::AzureOp::kWrite)) co_return co_await Refuse(call, call.Error(*e));
  if (!call.H("x-ms-copy-source").empty()) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "UnsupportedHeader",
                                               "Put Block From URL (x-ms-copy-source) is not served by this door: upload the bytes"));
  }
  auto id = BlockIdOf(call);
  if (!id) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "InvalidQueryParameterValue",
                                               "Value for one of the query parameters specified in the request URI is invalid: "
                                               "blockid must be base64 of 1 to 64 bytes"));
  }
  if (call.parser.content_length().value_or(0) > kMaxBlockBytes) {
    co_return co_await Refuse(call, call.Error(http::status::payload_too_large, "RequestBodyTooLarge", "A block is at most 4000 MiB"));
  }
  DoorUploads* uploads = call.door.uploads();
  const std::string container = call.bucket->name, blob = call.blob, block = *id;
  StagedUpload area;
  StagedUpload* a = &area;
  auto open = x.Offload([uploads, container, blob, block, a]() -> Result<std::unique_ptr<DoorUploads::PartWriter>> {
    SHOAL_ASSIGN_OR_RETURN(*a, uploads->BlockArea(container, blob, true));
    return uploads->WriteBlock(*a, block);
  });
  Result<std::unique_ptr<DoorUploads::PartWriter>> part = co_await std::move(open);
  if (!part.ok()) co_return co_await Refuse(call, call.Error(part.status()));
  std::unique_ptr<DoorUploads::PartWriter> w = std::move(*part);
  if (!co_await x.ContinueIfAsked(call.req)) co_return false;
  uint64_t bytes = 0;
  bool md5_mismatch = false;
  Status st;
  DoorUploads::PartWriter* writer = w.get();
  const std::function<Status(std::string_view)> write = [writer](std::string_view d) { return writer->Append(d); };
  if (!co_await ReadAzureBody(call, kMaxBlockBytes, write, &st, &bytes, &md5_mismatch)) co_return false;
  if (!st.ok()) co_return co_await Refuse(call, BodyError(call, st, bytes, kMaxBlockBytes, md5_mismatch));
  // Staged: the joiner appends it to the blob's write once the blocks before it are (door_assembly.h).
  DoorAssemblies* assemblies = call.door.assemblies();
  WriteBack* writes = &x.node->writes();
  const uint64_t cap = x.node->options().staged_cap;
  const std::string url = call.Url();
  auto finish = x.Offload([&w, assemblies, writes, cap, &url, a, &block]() -> Result<StagedPart> {
    Result<StagedPart> part = w->Finish();
    if (part.ok()) assemblies->Staged(writes, cap, url, *a, *part, BlockOffset(block));
    return part;
  });
  Result<StagedPart> done = co_await std::move(finish);
  if (!done.ok()) co_return co_await Refuse(call, call.Error(done.status()));
  auto res = call.Empty(http::status::created);
  res.set("x-ms-request-server-encrypted", "false");
  co_return co_await x.Write(std::move(res));
}

// The blob's committed block list, if it still describes the blob (a write through S3 or a Put
// Blob elsewhere replaces the blob without telling the area): the sizes must add up.
std::vector<StagedPart> CommittedOf(DoorUploads* uploads, const StagedUpload& area, const Result<ObjectInfo>& blob) {
  auto committed = uploads->Committed(area);
  if (!committed.ok() || !blob.ok()) return {};
  uint64_t total = 0;
  for (const auto& p : *committed) total += p.size;
  return total == blob->size ? *committed : std::vector<StagedPart>{};
}

// Put Block List: the blocks named, in order, streamed into one write-back write (which the
// blocks joined while they arrived have begun, when they are the list's first); nothing is
// written unless every block is found. Blocking: runs on the serve pool.
TextResponse PutBlockList(AzureCall& call, const std::string& body) {
  Node* node = call.x.node;
  DoorUploads* uploads = call.door.uploads();
  auto list = door::ParseBlockList(body);
  if (!list.error_code.empty()) return call.Error(http::status::bad_request, list.error_code, list.message);
  auto meta = AzureMetaOf(call, false);
  if (!meta.ok()) return InvalidMetadata(call, meta.status());
  const std::string url = call.Url();
  auto area = uploads->BlockArea(call.bucket->name, call.blob, false);
  if (!area.ok() && area.status().code() != Code::kNotFound) return call.Error(area.status());
  std::map<std::string, StagedPart> staged;
  std::map<std::string, std::pair<uint64_t, uint64_t>> committed;  // id -> offset, size in the blob
  Result<ObjectInfo> current = node->directory().Stat(url);
  if (area.ok()) {
    auto blocks = uploads->Blocks(*area);
    if (!blocks.ok()) return call.Error(blocks.status());
    for (auto& b : *blocks) staged[b.block_id] = b;
    uint64_t offset = 0;
    for (const auto& b : CommittedOf(uploads, *area, current)) {
      committed.emplace(b.block_id, std::make_pair(offset, b.size));
      offset += b.size;
    }
  }
  // Each entry: a staged block, or a range of the blob as it is.
  struct Source {
    std::string id;
    bool staged;
    uint64_t offset, size;
  };
  std::vector<Source> sources;
  for (const auto& e : list.entries) {
    auto s = staged.find(e.id);
    auto c = committed.find(e.id);
    const bool use_staged = s != staged.end() && e.kind != door::BlockListKind::kCommitted;
    const bool use_committed = !use_staged && c != committed.end() && e.kind != door::BlockListKind::kUncommitted;
    if (!use_staged && !use_committed) {
      const char* kind = e.kind == door::BlockListKind::kLatest      ? "Latest"
                         : e.kind == door::BlockListKind::kCommitted ? "Committed"
                                                                     : "Uncommitted";
      return call.Error(http::status::bad_request, "InvalidBlockList",
                        std::string("The specified block list is invalid: the ") + kind + " block " + Base64Encode(e.id) +
                            (e.kind == door::BlockListKind::kCommitted
                                 ? " is not in the blob's committed block list"
                                 : " is not staged for this blob (stage it with Put Block first)"));
    }
    if (use_staged) {
      sources.push_back({e.id, true, 0, s->second.size});
    } else {
      sources.push_back({e.id, false, c->second.first, c->second.second});
    }
  }
  // The blocks joined while they arrived, when they are the list's first ones as staged now
  // and the blob's metadata is what that write began with (door_assembly.h); else the write
  // starts here.
  auto usable = [&](const std::vector<StagedPart>& joined) {
    if (joined.size() > sources.size() || !area.ok() || !(*meta == area->meta)) return false;
    for (size_t i = 0; i < joined.size(); i++) {
      const Source& s = sources[i];
      if (!s.staged || s.id != joined[i].block_id || staged[s.id].etag != joined[i].etag || s.size != joined[i].size) {
        return false;
      }
    }
    return true;
  };
  auto resumed = call.door.assemblies()->Resume(&node->writes(), area.ok() ? area->id : "", url, *meta, usable);
  if (!resumed.ok()) return call.Error(resumed.status());
  std::unique_ptr<Writer> w = std::move(resumed->writer);
  const size_t from = resumed->pieces;
  auto append = [&w](std::string_view d) { return w->Append(d.data(), d.size()); };
  std::vector<StagedPart> now;
  for (size_t i = 0; i < sources.size(); i++) {
    const Source& s = sources[i];
    if (i >= from) {
      Status st = s.staged ? uploads->ReadBlock(*area, s.id, 8 << 20, append)
                           : ReadObjectRange(node, url, *current, s.offset, s.size, append);
      if (!st.ok()) return call.Error(st);
    }
    StagedPart p;
    p.block_id = s.id;
    p.size = s.size;
    now.push_back(std::move(p));
  }
  auto info = w->Finish();
  if (!info.ok()) return call.Error(info.status());
  node->metrics().door_early_bytes += resumed->bytes;
  if (area.ok() || !now.empty()) {
    auto kept = area.ok() ? area : uploads->BlockArea(call.bucket->name, call.blob, true);
    if (kept.ok()) (void)uploads->SetCommitted(*kept, now);  // the blob is written; a stale list only shows empty
  }
  auto res = call.Empty(http::status::created);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set(http::field::last_modified, FormatRfc1123(std::time(nullptr)));
  res.set("x-ms-request-server-encrypted", "false");
  res.set("x-shoal-state", "local");
  return res;
}

// Get Block List (blocklisttype committed, uncommitted or all).
TextResponse GetBlockList(AzureCall& call) {
  if (auto e = Authorize(call, call.blob, door::AzureOp::kRead)) return call.Error(*e);
  std::string type = call.Q("blocklisttype");
  if (type.empty()) type = "committed";
  if (type != "committed" && type != "uncommitted" && type != "all") {
    return call.Error(http::status::bad_request, "InvalidQueryParameterValue",
                      "blocklisttype is committed, uncommitted or all, not " + type);
  }
  DoorUploads* uploads = call.door.uploads();
  Result<ObjectInfo> current = call.x.node->directory().Stat(call.Url());
  if (!current.ok() && current.status().code() != Code::kNotFound) return call.Error(current.status());
  auto area = uploads->BlockArea(call.bucket->name, call.blob, false);
  if (!area.ok() && area.status().code() != Code::kNotFound) return call.Error(area.status());
  if (!current.ok() && !area.ok()) return call.Error(current.status());
  std::vector<StagedPart> committed, staged;
  if (area.ok()) {
    committed = CommittedOf(uploads, *area, current);
    auto blocks = uploads->Blocks(*area);
    if (!blocks.ok()) return call.Error(blocks.status());
    staged = std::move(*blocks);
  }
  pugi::xml_document doc;
  auto root = XmlRoot(doc, "BlockList", "utf-8");
  auto list = [&](const char* name, const std::vector<StagedPart>& blocks) {
    auto e = root.append_child(name);
    for (const auto& b : blocks) {
      auto block = e.append_child("Block");
      XmlAdd(block, "Name", Base64Encode(b.block_id));
      XmlAdd(block, "Size", std::to_string(b.size));
    }
  };
  if (type != "uncommitted") list("CommittedBlocks", committed);
  if (type != "committed") list("UncommittedBlocks", staged);
  auto res = call.Xml(http::status::ok, XmlText(doc));
  if (current.ok()) {
    res.set(http::field::etag, "\"" + current->etag + "\"");
    res.set(http::field::last_modified, FormatRfc1123(current->last_modified != 0 ? current->last_modified : std::time(nullptr)));
    res.set("x-ms-blob-content-length", std::to_string(current->size));
  }
  return res;
}

// Set Blob Metadata (comp=metadata) and Set Blob Properties (comp=properties): the blob is
// written again through write-back with its new metadata, its bytes read through the read path.
TextResponse SetBlobMeta(AzureCall& call) {
  if (auto e = Authorize(call, call.blob, door::AzureOp::kWrite)) return call.Error(*e);
  Node* node = call.x.node;
  const std::string url = call.Url();
  auto info = node->directory().Stat(url);
  if (!info.ok()) return call.Error(info.status());
  auto given = AzureMetaOf(call, false);
  if (!given.ok()) return InvalidMetadata(call, given.status());
  ObjectMeta meta = info->meta ? *info->meta : ObjectMeta{};
  if (call.Q("comp") == "metadata") {
    meta.user = given->user;
  } else {  // properties: every content header is set, or cleared when absent (as Azure does)
    auto user = meta.user;
    meta = *given;
    meta.user = user;
  }
  auto begun = node->writes().BeginWrite(url, meta);
  if (!begun.ok()) return call.Error(begun.status());
  std::unique_ptr<Writer> w = std::move(*begun);
  Status st = ReadObjectRange(node, url, *info, 0, info->size, [&w](std::string_view d) { return w->Append(d.data(), d.size()); });
  if (!st.ok()) return call.Error(st);
  auto written = w->Finish();
  if (!written.ok()) return call.Error(written.status());
  auto res = call.Empty(http::status::ok);
  res.set(http::field::etag, "\"" + written->etag + "\"");
  res.set(http::field::last_modified, FormatRfc1123(std::time(nullptr)));
  res.set("x-ms-request-server-encrypted", "false");
  return res;
}

TextResponse DeleteBlob(AzureCall& call) {
  if (auto e = Authorize(call, call.blob, door::AzureOp::kDelete)) return call.Error(*e);
  Node* node = call.x.node;
  const std::string url = call.Url();
  auto info = node->directory().Stat(url);
  if (!info.ok()) return call.Error(info.status());
  Status st = node->writes().Delete(url);
  if (!st.ok()) return call.Error(st);
  auto area = call.door.uploads()->BlockArea(call.bucket->name, call.blob, false);
  if (area.ok()) {
    call.door.assemblies()->Drop(area->id);
    (void)call.door.uploads()->Remove(*area);
  }
  auto res = call.Empty(http::status::accepted);
  res.set("x-ms-delete-type-permanent", "true");
  return res;
}

// ---- containers -----------------------------------------------------------------------------

std::string ServiceEndpoint(const AzureCall& call) {
  return "http://" + std::string(Header(call.req, "Host")) + "/" + call.account + "/";
}

std::optional<uint64_t> MaxResults(const AzureCall& call) {
  if (!call.Has("maxresults")) return kMaxResults;
  auto n = ParseNumber(call.Q("maxresults"));
  if (!n || *n == 0) return std::nullopt;
  return std::min<uint64_t>(*n, kMaxResults);
}

TextResponse BadMaxResults(const AzureCall& call) {
  return call.Error(http::status::bad_request, "OutOfRangeQueryParameterValue",
                    "One of the query parameters specified in the request URI is outside the permissible range: "
                    "maxresults is 1 to 5000");
}

// List Blobs (restype=container&comp=list) through the node's listing (listing.h: the store's
// page with this node's writes not yet uploaded merged in).
TextResponse ListBlobs(AzureCall& call) {
  const std::string prefix = call.Q("prefix"), delimiter = call.Q("delimiter"), marker = call.Q("marker");
  if (auto e = Authorize(call, prefix, door::AzureOp::kList)) return call.Error(*e);
  auto max = MaxResults(call);
  if (!max) return BadMaxResults(call);
  bool with_meta = false;
  std::stringstream include(call.Q("include"));
  for (std::string what; std::getline(include, what, ',');) with_meta |= what == "metadata";
  // Our marker: the node's continuation of the page to list, and the last name already shown
  // from it (a page of the node's listing may hold more than maxresults: its writes not yet
  // uploaded are merged in; the rest of it is shown on the next page).
  std::string continuation, after;
  if (!marker.empty()) {
    nlohmann::json m;
    if (StartsWith(marker, kMarkerTag)) {
      auto d = Base64Decode(marker.substr(std::string_view(kMarkerTag).size()));
      if (d.ok()) m = nlohmann::json::parse(*d, nullptr, false);
    }
    if (!m.is_object() || !m["c"].is_string() || !m["a"].is_string()) {
      return call.Error(http::status::bad_request, "OutOfRangeInput",
                        "One of the request inputs is out of range: the marker is not a NextMarker this door gave");
    }
    continuation = m["c"].get<std::string>();
    after = m["a"].get<std::string>();
  }
  Node* node = call.x.node;
  const ObjectUrl& base = call.bucket->base;
  const std::string root_url = base.WithKey("").ToString();
  // Names in order, blobs (their entry of the node's listing) and prefixes (null) together, as
  // Azure lists them.
  nlohmann::json page;
  std::map<std::string, const nlohmann::json*> names;
  std::string next;  // the node's continuation after this page
  do {
    std::string target = std::string(proto::kListPath) + "?" + std::string(proto::kUrlParam) + "=" +
                         UriEncode(root_url, false) + "&" + std::string(proto::kPrefixParam) + "=" +
                         UriEncode(base.key + prefix, false) + "&" + std::string(proto::kMaxKeysParam) + "=" +
                         std::to_string(std::min<uint64_t>(*max, 1000));
    if (!delimiter.empty()) target += "&" + std::string(proto::kDelimiterParam) + "=" + UriEncode(delimiter, false);
    if (!continuation.empty()) target += "&" + std::string(proto::kContinuationParam) + "=" + UriEncode(continuation, false);
    auto listed = ServeList(node, target);
    if (!listed.ok()) return call.Error(listed.status(), false, "ContainerNotFound");
    page = nlohmann::json::parse(*listed, nullptr, false);
    if (!page.is_object()) return call.Error(Status::Corruption("the node's listing is not JSON"));
    for (const auto& o : page["objects"]) names[o["key"].get<std::string>().substr(base.key.size())] = &o;
    for (const auto& p : page["prefixes"]) names.emplace(p.get<std::string>().substr(base.key.size()), nullptr);
    if (!after.empty()) names.erase(names.begin(), names.upper_bound(after));
    next = page.value("next_continuation", "");
    if (names.empty() && !next.empty()) {  // all shown already: the node's next page
      continuation = next;
      after.clear();
    }
  } while (names.empty() && !next.empty());
  std::string next_marker;
  if (names.size() > *max) {  // the rest of this page next time
    auto last = std::next(names.begin(), static_cast<long>(*max - 1));
    next_marker = nlohmann::json{{"c", continuation}, {"a", last->first}}.dump();
    names.erase(std::next(last), names.end());
  } else if (!next.empty()) {
    next_marker = nlohmann::json{{"c", next}, {"a", ""}}.dump();
  }

  pugi::xml_document doc;
  auto root = XmlRoot(doc, "EnumerationResults", "utf-8");
  root.append_attribute("ServiceEndpoint") = ServiceEndpoint(call).c_str();
  root.append_attribute("ContainerName") = call.bucket->name.c_str();
  if (call.Has("prefix")) XmlAdd(root, "Prefix", prefix);
  if (call.Has("marker")) XmlAdd(root, "Marker", marker);
  if (call.Has("maxresults")) XmlAdd(root, "MaxResults", call.Q("maxresults"));
  if (call.Has("delimiter")) XmlAdd(root, "Delimiter", delimiter);
  auto blobs = root.append_child("Blobs");
  for (const auto& [name, o] : names) {
    if (o == nullptr) {
      XmlAdd(blobs.append_child("BlobPrefix"), "Name", name);
      continue;
    }
    auto b = blobs.append_child("Blob");
    XmlAdd(b, "Name", name);
    auto props = b.append_child("Properties");
    std::time_t modified = (*o).value("last_modified", static_cast<int64_t>(0));
    XmlAdd(props, "Creation-Time", FormatRfc1123(modified));
    XmlAdd(props, "Last-Modified", FormatRfc1123(modified));
    XmlAdd(props, "Etag", "\"" + (*o).value("etag", "") + "\"");
    XmlAdd(props, "Content-Length", std::to_string((*o).value("size", static_cast<uint64_t>(0))));
    std::shared_ptr<const ObjectMeta> meta;
    if (with_meta) {
      auto info = node->directory().Stat(call.bucket->UrlOf(name));
      if (info.ok()) meta = info->meta;
      if (meta == nullptr) meta = std::make_shared<const ObjectMeta>();
      for (const auto& [header, value] : MetaHeaders(*meta, &ContentField::header, "x-ms-meta-")) {
        if (!StartsWith(header, "x-ms-meta-")) XmlAdd(props, header.c_str(), value);
      }
    }
    XmlAdd(props, "BlobType", "BlockBlob");
    XmlAdd(props, "AccessTier", "Hot");
    XmlAdd(props, "AccessTierInferred", "true");
    XmlAdd(props, "LeaseStatus", "unlocked");
    XmlAdd(props, "LeaseState", "available");
    XmlAdd(props, "ServerEncrypted", "false");
    if (with_meta) {
      auto m = b.append_child("Metadata");
      for (const auto& [k, value] : meta->user) XmlAdd(m, k.c_str(), value);
    }
  }
  XmlAdd(root, "NextMarker", next_marker.empty() ? "" : kMarkerTag + Base64Encode(next_marker));
  return call.Xml(http::status::ok, XmlText(doc));
}

// List Containers (comp=list at the account): the configured names the key has a scope in.
TextResponse ListContainers(AzureCall& call) {
  const std::string prefix = call.Q("prefix"), marker = call.Q("marker");
  auto max = MaxResults(call);
  if (!max) return BadMaxResults(call);
  if (!call.door.open() && call.principal.kind != door::AzureAuthKind::kSharedKey &&
      call.principal.permissions.find('l') == std::string::npos) {
    return call.Error(door::AzureError{door::AzureErrorCode::kAuthorizationPermissionMismatch,
                                       "This request is not authorized to perform this operation using this permission: "
                                       "listing containers needs 'l', the SAS has sp=" + call.principal.permissions + ".",
                                       ""});
  }
  std::vector<std::string> names;
  for (const auto& b : call.door.buckets()) {
    if (!StartsWith(b.name, prefix) || (!marker.empty() && b.name < marker)) continue;
    if (AuthorizeContainer(call, b.name, door::AzureOp::kList)) continue;
    names.push_back(b.name);
  }
  std::sort(names.begin(), names.end());
  pugi::xml_document doc;
  auto root = XmlRoot(doc, "EnumerationResults", "utf-8");
  root.append_attribute("ServiceEndpoint") = ServiceEndpoint(call).c_str();
  if (call.Has("prefix")) XmlAdd(root, "Prefix", prefix);
  if (call.Has("marker")) XmlAdd(root, "Marker", marker);
  if (call.Has("maxresults")) XmlAdd(root, "MaxResults", call.Q("maxresults"));
  auto list = root.append_child("Containers");
  std::string next;
  for (size_t i = 0; i < names.size(); i++) {
    if (i == *max) {
      next = names[i];
      break;
    }
    auto c = list.append_child("Container");
    XmlAdd(c, "Name", names[i]);
    auto props = c.append_child("Properties");
    XmlAdd(props, "Last-Modified", FormatRfc1123(DoorStarted()));
    XmlAdd(props, "Etag", "\"0x" + std::to_string(DoorStarted()) + "\"");
    XmlAdd(props, "LeaseStatus", "unlocked");
    XmlAdd(props, "LeaseState", "available");
    XmlAdd(props, "HasImmutabilityPolicy", "false");
    XmlAdd(props, "HasLegalHold", "false");
  }
  XmlAdd(root, "NextMarker", next);
  return call.Xml(http::status::ok, XmlText(doc));
}

// Get Container Properties (and Metadata: none is kept).
TextResponse ContainerProperties(AzureCall& call) {
  if (auto e = AuthorizeContainer(call, call.bucket->name, door::AzureOp::kRead)) return call.Error(*e);
  auto res = call.Empty(http::status::ok);
  res.set(http::field::etag, "\"0x" + std::to_string(DoorStarted()) + "\"");
  res.set(http::field::last_modified, FormatRfc1123(DoorStarted()));
  res.set("x-ms-lease-status", "unlocked");
  res.set("x-ms-lease-state", "available");
  res.set("x-ms-has-immutability-policy", "false");
  res.set("x-ms-has-legal-hold", "false");
  return res;
}

// Splits the path: /ACCOUNT[/CONTAINER[/BLOB]], each decoded.
void Locate(AzureCall& call) {
  std::string path = PercentDecode(call.view.raw_path);
  std::string rest = path.size() > 1 ? path.substr(1) : "";
  size_t s1 = rest.find('/');
  call.account = rest.substr(0, s1);
  if (s1 == std::string::npos) return;
  rest = rest.substr(s1 + 1);
  size_t s2 = rest.find('/');
  call.container = rest.substr(0, s2);
  if (s2 != std::string::npos) call.blob = rest.substr(s2 + 1);
}

}  // namespace

bool IsAzureRequest(const Door& door, const Request& req) {
  std::string_view target(req.target().data(), req.target().size());
  std::string host(Header(req, "Host"));
  if (size_t dot = host.find('.'); dot != std::string::npos && door.Find(host.substr(0, dot)) != nullptr) {
    return false;  // S3, virtual-hosted
  }
  std::string auth(Header(req, "Authorization"));
  if (StartsWith(auth, "AWS")) return false;  // SigV4 (and SigV2, which S3's code refuses)
  if (StartsWith(auth, "SharedKey")) return true;
  size_t q = target.find('?');
  const auto query = door::ParseQuery(q == std::string_view::npos ? "" : target.substr(q + 1));
  if (door::QueryValue(query, "X-Amz-Signature") || door::QueryValue(query, "AWSAccessKeyId")) return false;
  if (door::QueryValue(query, "sig") && door::QueryValue(query, "sv")) return true;
  std::string path = PercentDecode(target.substr(0, q));
  std::string first = path.size() > 1 ? path.substr(1, path.find('/', 1) - 1) : "";
  if (first.empty()) return false;
  if (door.credentials() != nullptr) {
    auto key = door.credentials()->Find(first);
    return key != nullptr && key->azure;
  }
  return door.Find(first) == nullptr;  // an open door: any account that is not a bucket's name
}

awaitable<bool> ServeAzure(Exchange& x, Parser& parser, const Door& door) {
  AzureCall call(x, parser, door);
  Locate(call);
  if (auto e = Authenticate(call)) co_return co_await x.Write(call.Error(*e, call.has_body));
  const http::verb m = call.req.method();
  const std::string comp = call.Q("comp"), restype = call.Q("restype");
  auto blocking = [&](TextResponse (*handler)(AzureCall&)) -> awaitable<bool> {
    auto work = x.Offload([handler, &call] { return handler(call); });
    TextResponse res = co_await std::move(work);
    co_return co_await x.Write(std::move(res));
  };
  auto unsupported = [&]() -> awaitable<bool> {
    auto res = call.Error(http::status::bad_request, "UnsupportedQueryParameter",
                          "This door does not serve " + std::string(call.req.method_string()) +
                              (comp.empty() ? std::string() : " comp=" + comp) + (restype.empty() ? std::string() : " restype=" + restype) +
                              " (docs/front-door.md lists the Azure Blob operations served)",
                          call.has_body);
    co_return co_await x.Write(std::move(res));
  };
  const bool is_put_body = m == http::verb::put && (comp.empty() || comp == "block" || comp == "blocklist") &&
                           !call.container.empty() && !call.blob.empty();
  if (call.has_body && !is_put_body) {
    co_return co_await Refuse(call, call.Error(http::status::bad_request, "InvalidInput", "this request takes no body"));
  }
  if (call.container.empty()) {  // the account
    if (m == http::verb::get && comp == "list") co_return co_await blocking(ListContainers);
    co_return co_await unsupported();
  }
  call.bucket = door.Find(call.container);
  if (call.bucket == nullptr) {
    if (m == http::verb::put && restype == "container" && call.blob.empty()) {
      co_return co_await x.Write(call.Error(http::status::forbidden, "AuthorizationFailure",
                                            "This door serves the containers it is configured with (--bucket NAME=URL) and "
                                            "creates none: add --bucket " + call.container + "=URL to the node"));
    }
    co_return co_await x.Write(call.Error(http::status::not_found, "ContainerNotFound",
                                          "The specified container does not exist: this node serves " +
                                              std::to_string(door.buckets().size()) + " configured container(s)",
                                          call.has_body));
  }
  if (call.blob.empty()) {  // the container
    if (restype != "container") co_return co_await unsupported();
    if (m == http::verb::put && comp.empty()) {
      co_return co_await x.Write(call.Error(http::status::conflict, "ContainerAlreadyExists",
                                            "The specified container already exists (it is configured on the node)"));
    }
    if ((m == http::verb::get || m == http::verb::head) && (comp.empty() || comp == "metadata")) {
      co_return co_await x.Write(ContainerProperties(call));
    }
    if (m == http::verb::get && comp == "list") co_return co_await blocking(ListBlobs);
    if (m == http::verb::delete_) {
      co_return co_await x.Write(call.Error(http::status::forbidden, "AuthorizationFailure",
                                            "The containers of this door come from its configuration (--bucket): "
                                            "it deletes none"));
    }
    co_return co_await unsupported();
  }
  if (m == http::verb::put) {
    if (comp.empty()) co_return co_await PutBlob(call);
    if (comp == "block") co_return co_await PutBlock(call);
    if (comp == "blocklist") {
      if (auto e = Authorize(call, call.blob, door::AzureOp::kWrite)) co_return co_await Refuse(call, call.Error(*e));
      std::string body;
      uint64_t bytes = 0;
      bool md5_mismatch = false;
      Status st;
      const std::function<Status(std::string_view)> keep = [&body](std::string_view d) {
        body.append(d);
        return Status::Ok();
      };
      if (!co_await x.ContinueIfAsked(call.req)) co_return false;
      if (!co_await ReadAzureBody(call, kMaxBlockListBody, keep, &st, &bytes, &md5_mismatch)) co_return false;
      if (!st.ok()) co_return co_await Refuse(call, BodyError(call, st, bytes, kMaxBlockListBody, md5_mismatch));
      auto work = x.Offload([&call, &body] { return PutBlockList(call, body); });
      TextResponse res = co_await std::move(work);
      co_return co_await x.Write(std::move(res));
    }
    if (comp == "metadata" || comp == "properties") co_return co_await blocking(SetBlobMeta);
    co_return co_await unsupported();
  }
  if (m == http::verb::get || m == http::verb::head) {
    if (comp.empty() || comp == "metadata") co_return co_await GetBlob(call, comp == "metadata");
    if (comp == "blocklist" && m == http::verb::get) co_return co_await blocking(GetBlockList);
    co_return co_await unsupported();
  }
  if (m == http::verb::delete_ && comp.empty()) co_return co_await blocking(DeleteBlob);
  co_return co_await x.Write(call.Error(http::status::method_not_allowed, "UnsupportedHttpVerb",
                                        "The resource doesn't support the specified HTTP verb " +
                                            std::string(call.req.method_string())));
}

}  // namespace shoal::node
