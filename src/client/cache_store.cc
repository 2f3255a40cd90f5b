#include "client/cache_store.h"

#include <curl/curl.h>

#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster/view.h"
#include "common/parallel.h"
#include "common/strings.h"
#include "net/node_errors.h"
#include "net/node_protocol.h"
#include "net/retry.h"
#include "store/http_backend.h"

namespace shoal::client {
namespace {

// METHOD `target` at ENDPOINT with the token; ENDPOINT is the configured node unless given.
http::Request NodeHttp(const CacheConfig& config, std::string_view method, std::string_view target,
                       const std::string& endpoint = "") {
  return proto::NodeRequest(method, endpoint.empty() ? config.endpoint : endpoint, target, config.token);
}

// The target of object `url`: /v1/object?url=URL.
std::string ObjectTarget(std::string_view url) { return proto::Target(proto::kObjectPath, {{proto::kUrlParam, url}}); }

// A node that could not be reached is most likely not running: say so, naming `nodes` (its
// code and detail kept). (Its error answers, JSON {"code", "message"}, are read by
// http::NodeErrors.)
Status Unreachable(const std::string& nodes, const Status& st) {
  return Status(st.code(), "cannot reach the cache node at " + nodes + ": is shoald running there? (" + st.message() + ")")
      .WithDetail(st.detail());
}

// Runs `send(node)` for the node current now and, while a node cannot be reached (nothing was
// sent: Detail::kConnectFailed), for the next (config.entry), each node once at most: the
// first answer, or the last failure.
Status OnSomeNode(const CacheConfig& config, const std::function<Status(const std::string& node)>& send) {
  const size_t nodes = config.entry ? config.entry->size() : 1;
  Status st;
  for (size_t tried = 0; tried < nodes; tried++) {
    std::string node = config.Current();
    st = send(node);
    if (!st.IsConnectFailed() || !config.entry || !config.entry->Failed(node)) return st;
  }
  return st;
}

// The placement a node routes by, and its chunk size; no view when the node is on its own.
struct Routing {
  std::shared_ptr<const cluster::View> view;
  uint64_t chunk_size = 0;
};
Result<Routing> FetchRouting(http::Client* client, const CacheConfig& config, const std::string& endpoint) {
  http::Response resp;
  Status st = client->Send(
      NodeHttp(config, "GET", proto::Target(proto::kClusterViewPath, {{proto::kCurrentParam, proto::kFlagOn}}), endpoint),
      &resp);
  if (!st.ok()) return Unreachable(endpoint, st);
  if (resp.status == 404) return Routing{};  // not in a cluster
  if (resp.status != 200) {
    return http::StatusFromResponse(resp, "GET " + std::string(proto::kClusterViewPath) + " at " + endpoint, http::NodeErrors());
  }
  SHOAL_ASSIGN_OR_RETURN(auto view, cluster::View::Decode(resp.body));
  SHOAL_ASSIGN_OR_RETURN(uint64_t chunk_size, resp.NumberHeader(proto::kChunkSizeHeader));
  return Routing{view, chunk_size};
}

class CacheStore final : public ObjectStore {
 public:
  CacheStore(CacheConfig config, ObjectUrl bucket) : config_(std::move(config)), bucket_(std::move(bucket)) {
    // The node already retries the object store with back-off, so its 503 means the store
    // stayed unavailable: one more try, not another round of back-off on top of the node's.
    // A node that cannot be reached is passed over (config_.entry): every attempt is built
    // anew for the node current then, so a third attempt lets a read, stat or listing in
    // progress move on past one node that went away and one more failure. A node that is not
    // running, with none to turn to, is reported at once.
    retry_.max_attempts = 3;
    retry_.max_delay = std::chrono::milliseconds(500);
    if (config_.entry) {
      client_.set_on_connect_failed([entry = config_.entry](const http::Request& req) {
        entry->Failed(proto::EndpointOf(req));
      });
    }
  }

  std::string Describe() const override { return bucket_.ToString() + " via " + config_.Describe(); }

 protected:
  Status GetImpl(const std::string& key, const ReadOptions& opts, const ByteSink& sink) override {
    Routing routing = ClusterRouting();
    if (routing.view) {
      bool routed = false;
      Status st = RoutedGet(routing, key, opts, sink, &routed);
      if (routed) return st;
    }
    auto build = [&](uint64_t offset, uint64_t length, const std::string& etag) {
      // A version named whole (its ETag and size) is the one the node serves: a write's local
      // version goes on being read after its upload (its chunks are still on the node). Else the
      // node serves the current one, and the client checks the answer's ETag itself.
      http::Request req = Base("GET", key);
      if (!etag.empty() && opts.if_size != ReadOptions::kAnySize) {
        req.headers.push_back({std::string(proto::kEtagHeader), etag});
        req.headers.push_back({std::string(proto::kSizeHeader), std::to_string(opts.if_size)});
      }
      std::string range = http::RangeHeader(offset, length);
      if (!range.empty()) req.headers.push_back({"Range", range});
      return req;
    };
    http::Answered answered;
    Status st = Explain(http::ResumableGet(&client_, retry_, &stats_, RangeOf(opts), opts.if_match, build, sink,
                                           Name(key), http::NodeErrors(), opts.if_size,
                                           opts.answered != nullptr ? &answered : nullptr));
    if (st.ok() && opts.answered != nullptr && !answered.etag.empty()) {
      *opts.answered = ObjectInfo{key, answered.total, answered.etag, 0};
    }
    return st;
  }

  Result<ObjectInfo> HeadImpl(const std::string& key) override { return HeadThroughNode(key, false); }
  // Says the first chunk is read next (proto::kFirstChunkHeader).
  Result<ObjectInfo> HeadToReadImpl(const std::string& key) override { return HeadThroughNode(key, true); }

  // HEAD of `key` at the node; `first_chunk`: saying its first chunk is read next.
  http::Request HeadRequest(const std::string& key, bool first_chunk) const {
    http::Request req = Base("HEAD", key);
    if (first_chunk) req.headers.push_back({std::string(proto::kFirstChunkHeader), std::string(proto::kFlagOn)});
    return req;
  }

  Result<ObjectInfo> HeadThroughNode(const std::string& key, bool first_chunk) {
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Explain(http::Call(&client_, retry_, &stats_, [&] { return HeadRequest(key, first_chunk); },
                                             &resp, "HEAD " + Name(key), http::NodeErrors())));
    SHOAL_ASSIGN_OR_RETURN(uint64_t size, resp.NumberHeader(proto::kSizeHeader));
    ObjectInfo info{key, size, Unquote(resp.Header("etag")), 0};
    auto meta = proto::MetaOfAnswer(resp);  // the node answers what the store can hold
    if (meta.ok()) info.meta = std::make_shared<const ObjectMeta>(std::move(meta).value());
    return info;
  }

  // GET /v1/list: the store's page with the cluster's writes not yet uploaded merged in.
  Result<ListPage> ListImpl(const ListOptions& opts) override {
    std::string max_keys = std::to_string(opts.max_keys);
    std::string partial = opts.allow_incomplete ? std::string(proto::kFlagOn) : "";
    const std::string bucket = bucket_.ToString();
    auto target = [&] {
      return NodeHttp(config_, "GET", proto::Target(proto::kListPath, {{proto::kUrlParam, bucket},
                                                                        {proto::kPrefixParam, opts.prefix},
                                                                        {proto::kDelimiterParam, opts.delimiter},
                                                                        {proto::kContinuationParam, opts.continuation},
                                                                        {proto::kMaxKeysParam, max_keys},
                                                                        {proto::kPartialParam, partial}}),
                      config_.Current());
    };
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(Explain(http::Call(&client_, retry_, &stats_, target, &resp,
                                             "listing " + Name(opts.prefix), http::NodeErrors())));
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::IOError("the node's /v1/list answer is not JSON");
    ListPage page;
    for (const auto& o : j.value("objects", nlohmann::json::array())) {
      page.objects.push_back(ObjectInfo{o.value("key", std::string()), o.value("size", uint64_t{0}),
                                        o.value("etag", std::string()),
                                        static_cast<std::time_t>(o.value("last_modified", int64_t{0}))});
    }
    for (const auto& p : j.value("prefixes", nlohmann::json::array())) page.prefixes.push_back(p.get<std::string>());
    page.next_continuation = j.value("next_continuation", std::string());
    page.incomplete = j.value("incomplete", std::string());
    return page;
  }

  // DELETE /v1/object: the node cancels its writes of it not yet uploaded, then deletes it.
  Status DeleteImpl(const std::string& key) override {
    http::Response resp;
    return Explain(http::Call(&client_, retry_, &stats_, [&] { return Base("DELETE", key); }, &resp,
                              "DELETE " + Name(key), http::NodeErrors()));
  }
  Result<ObjectInfo> PutObjectImpl(const std::string&, std::string_view, const ObjectMeta&, const WriteCondition&) override {
    return NotYet("write");
  }
  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string&, const ObjectMeta&) override {
    return NotYet("write");
  }
  Status CreateBucketImpl() override { return NotYet("create buckets"); }

 private:
  std::string Name(const std::string& key) const { return bucket_.WithKey(key).ToString(); }

  // To the node current now (each attempt of a request is built anew).
  http::Request Base(const std::string& method, const std::string& key) const {
    return NodeHttp(config_, method, ObjectTarget(Name(key)), config_.Current());
  }

  // The entry node's cluster view (refetched when a node reports a newer epoch); no view when
  // the node is on its own (or cannot say), and then everything goes through it.
  Routing ClusterRouting() {
    // The node on this host (its Unix socket) fetches every chunk itself, from the owners or
    // from other readers, and keeps it for the next reader here: nothing to route.
    if (proto::IsUnixEndpoint(config_.endpoint)) return Routing{};
    std::lock_guard<std::mutex> lock(view_mu_);
    if (view_loaded_ && (!routing_.view || routing_.view->epoch() >= newest_epoch_)) return routing_;
    auto fetched = FetchRouting(&client_, config_, config_.Current());
    view_loaded_ = fetched.ok();  // else asked again next time (the node may have been restarting)
    bool usable = fetched.ok() && fetched->view && fetched->chunk_size > 0 &&
                  fetched->view->placement().members().size() >= 2;
    routing_ = usable ? *fetched : Routing{};
    if (usable && config_.entry) {  // the members: where to turn when the entry node goes away
      std::vector<std::string> members;
      for (const auto& p : routing_.view->peers()) members.push_back(p.endpoint);
      config_.entry->Learn(members);
    }
    return routing_;
  }

  void SawEpoch(const http::Response& resp) {
    uint64_t epoch = resp.NumberHeader(proto::kEpochHeader).value_or(0);  // none said: nothing learned
    std::lock_guard<std::mutex> lock(view_mu_);
    newest_epoch_ = std::max(newest_epoch_, epoch);
  }

  // Reads the object's chunks straight from their owners, `kWindow` chunks in flight across
  // nodes, written to `sink` in order. A node that fails is replaced by the next replica
  // (which fetches the chunk itself), then by the entry node. Objects written through the
  // entry node and not yet durable exist only there: *routed stays false for them.
  Status RoutedGet(const Routing& routing, const std::string& key, const ReadOptions& opts,
                   const ByteSink& sink, bool* routed) {
    ObjectInfo info{key, opts.if_size, opts.if_match, 0};
    // A read pinned to a version the store holds (its ETag and size named) goes to the chunks'
    // owners at once: they serve that version or answer 412. Otherwise the entry node says
    // which version is current, and whether it is durable at all.
    const bool pinned = !opts.if_match.empty() && !proto::IsLocalVersion(opts.if_match) &&
                        opts.if_size != ReadOptions::kAnySize;
    if (!pinned) {
      http::Response head;
      // Reading the first chunk next: a node that must ask the store fetches it with the
      // metadata (one request, not two) and keeps it for the owner's answer.
      auto ask = [&] { return HeadRequest(key, opts.offset < routing.chunk_size); };
      SHOAL_RETURN_IF_ERROR(
          Explain(http::Call(&client_, retry_, &stats_, ask, &head, "HEAD " + Name(key), http::NodeErrors())));
      if (head.Header(proto::kStateHeader) != proto::kStateDurable) return Status::Ok();
      SHOAL_ASSIGN_OR_RETURN(info.size, head.NumberHeader(proto::kSizeHeader));
      info.etag = Unquote(head.Header("etag"));
    }
    if (opts.answered != nullptr) *opts.answered = info;
    *routed = true;
    if (!opts.if_match.empty() && opts.if_match != info.etag) {
      // A write read as it was uploaded: its local version became this ETag, the same bytes.
      auto became = proto::IsLocalVersion(opts.if_match) ? ResolveThroughCache(config_, Name(key), opts.if_match)
                                                          : Result<std::string>(Status::NotFound("not a local version"));
      if (!became.ok() || *became != info.etag) {
        return Status::PreconditionFailed(Name(key) + " changed (ETag " + info.etag + ", wanted " + opts.if_match + ")");
      }
    }
    if (opts.offset > info.size) return Status::InvalidArgument("offset past the end of " + Name(key));
    uint64_t end = opts.length == ReadOptions::kToEnd ? info.size : std::min(info.size, opts.offset + opts.length);
    if (opts.offset >= end) return Status::Ok();
    const uint64_t chunk = routing.chunk_size;
    uint64_t next = opts.offset / chunk, last = (end - 1) / chunk;
    std::deque<std::future<Result<std::string>>> inflight;
    for (uint64_t index = next; index <= last; index++) {
      while (next <= last && inflight.size() < kWindow) {
        inflight.push_back(std::async(std::launch::async, [this, &routing, key, info, next] {
          return FetchChunk(routing, Name(key), info, next);
        }));
        next++;
      }
      auto data = inflight.front().get();
      inflight.pop_front();
      SHOAL_RETURN_IF_ERROR(data.status());
      uint64_t from = index == opts.offset / chunk ? opts.offset - index * chunk : 0;
      uint64_t to = std::min<uint64_t>(data->size(), end - index * chunk);
      SHOAL_RETURN_IF_ERROR(sink(data->data() + from, to - from));
    }
    return Status::Ok();
  }

  Result<std::string> FetchChunk(const Routing& routing, const std::string& url, const ObjectInfo& info,
                                 uint64_t index) {
    const cluster::View& view = *routing.view;
    const uint64_t offset = index * routing.chunk_size;
    const uint64_t length = std::min(routing.chunk_size, info.size - offset);
    cluster::Route route = view.RouteOf(url, index, 2);
    std::vector<std::string> tries;
    for (const auto& p : route.replicas) tries.push_back(p.endpoint);
    tries.push_back(config_.Current());
    std::string errors;
    for (size_t t = 0; t < tries.size(); t++) {
      // No further hop: the owner may ask the previous owner, a stand-in goes to the store.
      http::Request req = proto::ChunkRequest(tries[t], config_.token,
                                              proto::ChunkRead{.url = url,
                                                               .etag = info.etag,
                                                               .size = info.size,
                                                               .first = offset,
                                                               .last = offset + length - 1,
                                                               .mode = proto::kReadForwarded,
                                                               .epoch = view.epoch()});
      std::string data;
      data.reserve(length);
      ByteSink collect = [&](const char* d, size_t n) {
        data.append(d, n);
        return Status::Ok();
      };
      http::Response resp;
      Status st = client_.Send(req, &resp, &collect);
      if (st.ok()) SawEpoch(resp);
      if (st.ok() && resp.status / 100 == 2 && data.size() == length) return data;
      if (st.ok() && (resp.status == 404 || resp.status == 412)) {
        return http::StatusFromResponse(resp, "GET " + url + " chunk " + std::to_string(index) + " at " + tries[t],
                                        http::NodeErrors());
      }
      errors += (errors.empty() ? "" : "; ") + tries[t] + ": " +
                (st.ok() ? "HTTP " + std::to_string(resp.status) : st.message());
    }
    return Status::Unavailable("no node could serve " + url + " chunk " + std::to_string(index) + " (" + errors + ")");
  }


  Status NotYet(const std::string& what) const {
    return Status::InvalidArgument("the cache node cannot " + what + " this way: it takes files written whole (shoal cp "
                                   "FILE URL --cache); or run the command without --cache (and SHOAL_CACHE unset)");
  }

  // A node that could not be reached at all is most likely not running: say so.
  Status Explain(Status st) const { return st.IsConnectFailed() ? Unreachable(config_.Describe(), st) : st; }

  CacheConfig config_;
  ObjectUrl bucket_;
  http::Client client_;
  net::RetryPolicy retry_;

  static constexpr size_t kWindow = 8;  // chunks in flight per read, across owners
  std::mutex view_mu_;
  bool view_loaded_ = false;  // guarded by view_mu_
  Routing routing_;           // guarded by view_mu_
  uint64_t newest_epoch_ = 0;                   // guarded by view_mu_: the newest any node reported
};

}  // namespace

Result<CacheConfig> CacheConfig::Resolve(const std::string& cache_flag, const std::string& token_file_flag,
                                         const std::string& tls_ca_flag) {
  CacheConfig c;
  std::string list = cache_flag;
  if (list.empty()) {
    if (const char* e = EnvValue("SHOAL_CACHE")) list = e;
  }
  if (list.empty()) return c;
  std::vector<std::string> nodes;
  int tls = 0, plain = 0;  // nodes named https:// and http://
  for (std::string node : Split(list, ',')) {
    node = Trim(node);
    if (StartsWith(node, "http://")) {
      node = node.substr(7);
      plain++;
    } else if (StartsWith(node, "https://")) {  // a node serving TLS: every node is reached so
      node = node.substr(8);
      tls++;
    }
    if (proto::IsUnixEndpoint(node) ? node.size() == proto::kUnixPrefix.size() : !SplitHostPort(node).ok()) {
      return Status::InvalidArgument("--cache wants HOST:PORT, https://HOST:PORT (a node serving TLS) or unix:PATH "
                                     "(shoald --socket), or several of them comma-separated, got '" + node + "'");
    }
    nodes.push_back(node);
  }
  if (tls > 0 && plain > 0) {
    return Status::InvalidArgument("--cache names nodes with https:// and with http://: the nodes of a cluster "
                                   "all serve TLS or none does");
  }
  if (tls > 0) {
    proto::NodeTls node_tls;
    node_tls.on = true;
    node_tls.ca_file = tls_ca_flag;
    if (node_tls.ca_file.empty()) {
      if (const char* ca = EnvValue(proto::kTlsCaVariable)) node_tls.ca_file = ca;
    }
    if (!node_tls.ca_file.empty() && !std::ifstream(node_tls.ca_file)) {
      return Status::InvalidArgument("cannot read the CA file " + node_tls.ca_file + " (--tls-ca or " +
                                     proto::kTlsCaVariable + ")");
    }
    // A client certificate, for nodes that ask for one (shoald --tls-client-ca).
    if (const char* cert = EnvValue(proto::kTlsCertVariable)) node_tls.cert_file = cert;
    if (const char* key = EnvValue(proto::kTlsKeyVariable)) node_tls.key_file = key;
    if (node_tls.cert_file.empty() != node_tls.key_file.empty()) {
      return Status::InvalidArgument(std::string(proto::kTlsCertVariable) + " and " + proto::kTlsKeyVariable +
                                     " go together: a client certificate and its key, PEM files");
    }
    for (const std::string& file : {node_tls.cert_file, node_tls.key_file}) {
      if (!file.empty() && !std::ifstream(file)) {
        return Status::InvalidArgument("cannot read " + file + " (" + proto::kTlsCertVariable + " or " +
                                       proto::kTlsKeyVariable + ")");
      }
    }
    if (const char* name = EnvValue(proto::kTlsNameVariable)) {
      node_tls.name = name;
      SHOAL_RETURN_IF_ERROR(proto::CheckTlsName(std::string(proto::kTlsNameVariable) + "=", node_tls.name));
    }
    proto::SetNodeTls(node_tls);
  }
  c.endpoint = nodes[0];
  c.entry = std::make_shared<EntryNodes>(std::move(nodes));
  std::string token_file = token_file_flag;
  if (token_file.empty()) {
    if (const char* t = EnvValue("SHOAL_TOKEN_FILE")) token_file = t;
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return Status::InvalidArgument("cannot read the token file " + token_file);
    std::stringstream ss;
    ss << in.rdbuf();
    c.token = Trim(ss.str());
  }
  return c;
}

Result<ObjectInfo> WriteThroughCache(const CacheConfig& config, const std::string& url,
                                     ByteSource& source, uint64_t size,
                                     std::atomic<uint64_t>* progress) {
  http::Client client;
  const bool known = size != kUnknownSize;
  Status read_error;
  uint64_t sent = 0;
  http::Response resp;
  std::string node;
  Status st = OnSomeNode(config, [&](const std::string& to) {
    node = to;
    http::Request req = NodeHttp(config, "PUT", ObjectTarget(url), to);
    req.headers.push_back({"Content-Type", "application/octet-stream"});
    req.body_length = known ? static_cast<int64_t>(size) : -1;  // -1: chunked, to the source's end
    req.body_reader = [&](char* buf, size_t len) -> size_t {
      if (known) len = static_cast<size_t>(std::min<uint64_t>(len, size - sent));
      auto n = source.Read(buf, len);
      if (!n.ok()) {
        read_error = n.status();
        return CURL_READFUNC_ABORT;
      }
      sent += *n;
      if (progress) *progress += *n;
      return *n;
    };
    Status one = client.Send(req, &resp);
    // Another node only when nothing of the source was taken (a connection never made).
    return sent == 0 ? one : one.WithDetail(Detail::kNone);
  });
  if (!read_error.ok()) return read_error.WithContext("nothing was acknowledged");
  if (!st.ok() && st.code() != Code::kUnavailable) {  // a certificate refused: final, never sent again
    return st.WithContext("writing " + url + " through the cache node at " + node + ": nothing was acknowledged");
  }
  if (!st.ok()) {
    return Status::Unavailable("writing " + url + " through the cache node at " +
                               (st.IsConnectFailed() ? config.Describe() : node) + " failed (" + st.message() +
                               "): nothing was acknowledged; run it again");
  }
  if (resp.status != 201) {
    return http::StatusFromResponse(resp, "writing " + url + " through " + node, http::NodeErrors());
  }
  if (known && sent != size) {
    return Status::IOError("the source ended after " + std::to_string(sent) + " of " + std::to_string(size) + " bytes");
  }
  return ObjectInfo{url, sent, Unquote(resp.Header("etag")), 0};
}

Result<ObjectInfo> WriteWithResends(const std::function<Result<ObjectInfo>()>& send,
                                    const std::function<bool()>& rewind) {
  net::Backoff backoff(std::chrono::milliseconds(200), std::chrono::milliseconds(2000));
  for (int attempt = 0;; attempt++) {
    Result<ObjectInfo> r = send();
    if (r.ok() || r.status().code() != Code::kUnavailable || attempt == 4 || !rewind()) return r;
    std::this_thread::sleep_for(backoff.Next());
  }
}

namespace {
// METHOD http://NODE/path (with the token) at the node current now, else at the next that can
// be reached (config.entry): the answer when its status is `want`, else what went wrong.
Result<http::Response> DataRequest(const CacheConfig& config, const std::string& method, const std::string& path,
                                   long want = 200, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  http::Client client;
  http::Response resp;
  std::string node;
  Status st = OnSomeNode(config, [&](const std::string& to) {
    node = to;
    http::Request req = NodeHttp(config, method, path, to);
    req.headers.insert(req.headers.end(), headers.begin(), headers.end());
    return client.Send(req, &resp);
  });
  if (!st.ok()) return Unreachable(st.IsConnectFailed() ? config.Describe() : node, Status::Unavailable(st.message()));
  if (resp.status != want) {
    return http::StatusFromResponse(resp, method + " " + path + " at " + node, http::NodeErrors());
  }
  return resp;
}

// DataRequest at config.endpoint alone (drain, metrics, readiness, the membership: one node's).
Result<http::Response> NodeRequest(const CacheConfig& config, const std::string& method,
                                   const std::string& path, long want = 200) {
  CacheConfig one = config;
  one.entry = nullptr;
  return DataRequest(one, method, path, want);
}

Result<std::string> NodeGet(const CacheConfig& config, const std::string& path) {
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, NodeRequest(config, "GET", path));
  return std::move(resp.body);
}
}  // namespace

std::string CacheConfig::Describe() const {
  std::vector<std::string> all = entry ? entry->All() : std::vector<std::string>{endpoint};
  std::string out;
  for (size_t i = 0; i < all.size(); i++) {
    out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i];
  }
  return out;
}

Result<CachedObject> StatThroughCache(const CacheConfig& config, const std::string& url, bool to_read) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (to_read) headers.push_back({std::string(proto::kFirstChunkHeader), std::string(proto::kFlagOn)});
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, DataRequest(config, "HEAD", ObjectTarget(url), 200, headers));
  CachedObject o;
  SHOAL_ASSIGN_OR_RETURN(uint64_t size, resp.NumberHeader(proto::kSizeHeader));
  o.info = ObjectInfo{url, size, Unquote(resp.Header("etag")), 0};
  o.state = resp.Header(proto::kStateHeader);
  o.written_as = resp.Header(proto::kWrittenAsHeader);
  return o;
}

Result<std::string> CommitThroughCache(const CacheConfig& config, const std::string& prefix, uint32_t shards,
                                       const std::string& shard_name) {
  std::string count = std::to_string(shards);
  std::string target = shards == 0 ? proto::Target(proto::kCommitPath, {{proto::kPrefixParam, prefix}})
                                   : proto::Target(proto::kCommitPath, {{proto::kPrefixParam, prefix},
                                                                        {proto::kExpectParam, count},
                                                                        {proto::kShardParam, shard_name}});
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, DataRequest(config, "POST", target, 201));
  return std::move(resp.body);
}

Result<std::string> ResolveThroughCache(const CacheConfig& config, const std::string& url, const std::string& version) {
  if (!proto::IsLocalVersion(version)) return version;
  SHOAL_ASSIGN_OR_RETURN(http::Response resp,
                         DataRequest(config, "GET", proto::Target(proto::kVersionPath, {{proto::kUrlParam, url},
                                                                                       {proto::kVersionParam, version}})));
  return proto::ParseVersionAnswer(resp.body, url, version);
}

Result<PendingWrites> FetchPending(const CacheConfig& config, const std::string& prefix) {
  SHOAL_ASSIGN_OR_RETURN(http::Response resp,
                         DataRequest(config, "GET", proto::Target(proto::kPendingPath, {{proto::kPrefixParam, prefix},
                                                                                       {proto::kClusterParam, proto::kFlagOn}})));
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) return Status::IOError("the node's /v1/pending answer is not JSON");
  PendingWrites p;
  p.objects = j.value("objects", 0ull);
  p.bytes = j.value("bytes", 0ull);
  p.uploaded = j.value("uploaded", 0ull);
  p.last_error = j.value("last_error", std::string());
  p.cluster_objects = j.value("cluster_objects", p.objects + j.value("copies", 0ull));
  if (j.contains("unreachable") && j["unreachable"].is_array()) {
    for (const auto& id : j["unreachable"]) {
      if (id.is_string()) p.unreachable.push_back(id.get<std::string>());
    }
  }
  if (j.contains("pending") && j["pending"].is_array()) {
    for (const auto& o : j["pending"]) {
      p.list.push_back(ObjectInfo{o.value("url", std::string()), o.value("size", 0ull), "",
                                  static_cast<std::time_t>(o.value("written_unix_ms", 0ull) / 1000)});
    }
  }
  return p;
}

std::string DescribePending(const PendingWrites& p) {
  std::string line = std::to_string(p.objects) + " objects, " + FormatBytes(p.uploaded) + " of " +
                     FormatBytes(p.bytes) + " uploaded";
  if (!p.last_error.empty()) line += "; retrying after: " + p.last_error;
  if (p.cluster_objects > p.objects) {
    line += "; " + std::to_string(p.cluster_objects - p.objects) +
            " more elsewhere in the cluster (other nodes' writes, or copies of them)";
  }
  if (!p.unreachable.empty()) {
    std::string ids;
    for (const auto& id : p.unreachable) ids += (ids.empty() ? "" : ", ") + id;
    line += "; not reachable: " + ids + " (its writes count as the copies other nodes hold)";
  }
  return line;
}

Status WaitDurable(const CacheConfig& config, const std::string& prefix, int timeout_s,
                   const std::function<void(const PendingWrites&)>& each_poll, bool whole_cluster) {
  auto start = std::chrono::steady_clock::now();
  // Asks less often as a long upload goes on; clients waiting on one node do not ask in step.
  net::Backoff backoff(std::chrono::milliseconds(250), std::chrono::milliseconds(1000));
  while (true) {
    SHOAL_ASSIGN_OR_RETURN(PendingWrites p, FetchPending(config, prefix));
    if ((whole_cluster ? p.cluster_objects : p.objects) == 0) return Status::Ok();
    if (timeout_s > 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout_s)) {
      return Status::Unavailable("still not durable after " + std::to_string(timeout_s) + " s: " + DescribePending(p));
    }
    if (each_poll) each_poll(p);
    std::this_thread::sleep_for(backoff.Next());
  }
}

Status DeleteThroughCache(const CacheConfig& config, const std::string& url) {
  return DataRequest(config, "DELETE", ObjectTarget(url), 204).status();
}

Status WarmUp(const CacheConfig& config, const std::vector<std::pair<std::string, ObjectInfo>>& objects,
              int per_node, WarmupProgress* progress, bool broadcast) {
  http::Client view_client;
  SHOAL_ASSIGN_OR_RETURN(Routing routing, FetchRouting(&view_client, config, config.endpoint));
  std::shared_ptr<const cluster::View> view = routing.view;
  uint64_t chunk = routing.chunk_size;
  if (!view) {  // a node on its own does it all
    SHOAL_ASSIGN_OR_RETURN(std::string body, NodeGet(config, std::string(proto::kClusterPath)));
    auto j = nlohmann::json::parse(body, nullptr, false);
    chunk = j.is_object() ? j.value("chunk_size", 0ull) : 0;
  }
  if (chunk == 0) return Status::IOError("the node at " + config.endpoint + " did not say its chunk size");
  // Each owner's chunks, in order.
  struct Task {
    const std::string* url;
    const ObjectInfo* info;
    uint64_t index;
  };
  std::map<std::string, std::vector<Task>> by_owner;  // broadcast: every node, every chunk
  for (const auto& [url, info] : objects) {
    for (uint64_t i = 0; i * chunk < info.size; i++) {
      if (!broadcast || !view) {
        by_owner[view ? view->RouteOf(url, i, 1).replicas[0].endpoint : config.endpoint].push_back(Task{&url, &info, i});
        continue;
      }
      for (const auto& p : view->peers()) by_owner[p.endpoint].push_back(Task{&url, &info, i});
    }
  }
  // Every owner at once, per_node of its chunks at a time, one connection each; nothing starts
  // after a failure.
  std::vector<std::pair<std::string, std::vector<Task>>> owners(by_owner.begin(), by_owner.end());
  ErrorSlot error;
  ForEachAtOnce(owners.size(), owners.size(), OnFailure::kGoOn, [&](size_t o, size_t) {
    const auto& [owner, tasks] = owners[o];
    const size_t at_once = static_cast<size_t>(std::max(1, per_node));
    std::vector<http::Client> clients(std::min(at_once, tasks.size()));
    ForEachAtOnce(tasks.size(), at_once, OnFailure::kStop, [&](size_t k, size_t worker) {
      if (error.failed()) return Status::Ok();
      const Task& task = tasks[k];
      http::Request req = NodeHttp(config, "POST",
                                   proto::Target(proto::kWarmPath, {{proto::kIndexParam, std::to_string(task.index)},
                                                                    {proto::kRouteParam, broadcast ? proto::kFlagOn : "0"},
                                                                    {proto::kUrlParam, *task.url}}),
                                   owner);
      proto::SetVersion(&req, task.info->etag, task.info->size);
      http::Response r;
      Status st = clients[worker].Send(req, &r);
      if (st.ok() && r.status != 200) {
        st = http::StatusFromResponse(r, "warming " + *task.url + " on " + owner, http::NodeErrors());
      }
      if (!st.ok()) {
        error.Set(st.WithContext("node " + owner));
        return st;
      }
      uint64_t n = std::min(chunk, task.info->size - task.index * chunk);
      *progress->bytes += n;
      progress->chunks++;
      if (r.body.find("\"hit\":false") != std::string::npos) progress->fetched += n;
      return Status::Ok();
    });
    return Status::Ok();
  });
  return error.Get();
}

Result<DrainProgress> Drain(const CacheConfig& config, bool start) {
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, NodeRequest(config, start ? "POST" : "GET", std::string(proto::kDrainPath)));
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) return Status::IOError("the node's /v1/drain answer is not JSON");
  return DrainProgress{j.value("state", ""), j.value("writes", 0ull), j.value("write_bytes", 0ull),
                       j.value("copies", 0ull), j.value("left", 0ull), j.value("epoch", 0ull),
                       j.value("error", "")};
}

Result<ClusterInfo> FetchCluster(const CacheConfig& config) {
  SHOAL_ASSIGN_OR_RETURN(std::string body, NodeGet(config, std::string(proto::kClusterPath)));
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::IOError("the node's /v1/cluster answer is not JSON");
  ClusterInfo c;
  c.self = j.value("self", "");
  c.epoch = j.value("epoch", 0ull);
  c.slots = j.value("slots", 0ull);
  c.chunk_size = j.value("chunk_size", 0ull);
  for (const auto& m : j.value("members", nlohmann::json::array())) {
    c.members.push_back(ClusterMember{m.value("id", ""), m.value("endpoint", ""), m.value("domain", ""),
                                      m.value("weight", 0u), m.value("slots", 0ull)});
  }
  return c;
}

Result<std::map<std::string, double>> FetchMetrics(const CacheConfig& config) {
  SHOAL_ASSIGN_OR_RETURN(std::string body, NodeGet(config, std::string(proto::kMetricsPath)));
  std::map<std::string, double> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return out;
}

Status FetchReadiness(const CacheConfig& config) {
  return NodeGet(config, std::string(proto::kReadyzPath)).status();
}

std::shared_ptr<ObjectStore> NewCacheStore(const CacheConfig& config, const ObjectUrl& bucket) {
  return std::make_shared<CacheStore>(config, ObjectUrl{bucket.scheme, bucket.bucket, ""});
}

}  // namespace shoal::client
