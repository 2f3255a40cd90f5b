// The routes that read and write objects: /v1/object (GET, HEAD, PUT, DELETE), /v1/commit,
// /v1/warm, /v1/pending. See exchange.h.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/exchange.h"
#include "node/request_parse.h"
#include "store/commit.h"

namespace shoal::node {

// The version a peer or routing client names (X-Shoal-Etag and X-Shoal-Size), if it does;
// kInvalidArgument for a size that is not a number.
Result<std::optional<ObjectInfo>> NamedVersion(const Request& req) {
  std::string etag(Header(req, proto::kEtagHeader));
  std::string_view size = Header(req, proto::kSizeHeader);
  if (etag.empty() || size.empty()) return std::optional<ObjectInfo>();
  auto n = ParseNumber(size);
  if (!n) return Status::InvalidArgument("X-Shoal-Size '" + std::string(size.substr(0, 32)) + "' is not a size");
  return std::optional<ObjectInfo>(ObjectInfo{"", *n, etag, 0});
}

awaitable<bool> SendObject(Exchange& x, ObjectSend& s, http::response<http::empty_body>& res, Status* st,
                           bool* header_sent, bool* fetched) {
  Node* const node = x.node;
  const std::string& url = s.url;

  // The header goes out with the first bytes, so a failure before them (the store's, say)
  // is still an error answer rather than a cut connection.
  bool broken = false;
  auto send = [&](const char* d, size_t n) -> awaitable<bool> {
    if (!*header_sent) {
      if (!co_await x.WriteHeader(res)) co_return false;
      *header_sent = true;
    }
    if (!co_await x.SendBytes(d, n, !x.local)) co_return false;
    node->metrics().bytes_served += n;
    if (s.to_peer) node->metrics().bytes_served_peers += n;
    if (x.local) node->metrics().bytes_served_local += n;
    co_return true;
  };
  // From a chunk's file with sendfile: plain connections (TCP or the Unix socket), never TLS,
  // whose bytes are encrypted in this process.
  const bool from_files = node->options().sendfile && x.conn().stream.tls() == nullptr;
  auto send_file = [&](const engine::ChunkFile& f, uint64_t from, uint64_t n) -> awaitable<bool> {
    if (!*header_sent) {
      if (!co_await x.WriteHeader(res)) co_return false;
      *header_sent = true;
    }
    uint64_t sent = 0;
    bool ok = co_await x.SendFile(f.fd, f.offset + from, n, !x.local, &sent);
    node->metrics().bytes_served += sent;
    node->metrics().sendfile_bytes += sent;
    if (s.to_peer) node->metrics().bytes_served_peers += sent;
    if (x.local) node->metrics().bytes_served_local += sent;
    co_return ok;
  };
  const uint64_t chunk_size = node->options().chunk_size;
  for (int attempt = 0; attempt < 2; attempt++) {
    uint64_t pos = s.offset;
    const uint64_t end = s.offset + s.length;
    while (st->ok() && !broken && pos < end) {
      const uint64_t index = pos / chunk_size, base = index * chunk_size;
      const ObjectInfo at = s.info;
      const ReadMode mode = s.mode;
      Node* n = node;
      const FileRange range{pos - base, std::min(end, base + chunk_size) - pos};
      const bool as_file = from_files;
      auto open = x.Offload([n, url, at, index, mode, range, as_file] {
        auto r = n->reads().OpenChunk(url, at, index, mode, as_file ? &range : nullptr);
        if (r.ok()) n->reads().Prefetch(url, at, index, mode);
        return r;
      });
      Result<ChunkSource> src = co_await std::move(open);
      if (!src.ok()) {
        *st = src.status();
        break;
      }
      if (src->file) {
        const std::shared_ptr<engine::ChunkFile> file = src->file;
        if (pos - base >= file->length) {
          *st = Status::Corruption(url + ": chunk " + std::to_string(index) + " on disk is shorter than the object says");
          break;
        }
        uint64_t k = std::min<uint64_t>(file->length - (pos - base), end - pos);
        broken = !co_await send_file(*file, pos - base, k);
        pos += k;
        continue;
      }
      if (src->data) {
        const std::string& data = *src->data;
        if (pos - base >= data.size()) {
          *st = Status::Corruption(url + ": chunk " + std::to_string(index) + " on disk is shorter than the object says");
          break;
        }
        uint64_t k = std::min<uint64_t>(data.size() - (pos - base), end - pos);
        broken = !co_await send(data.data() + (pos - base), k);
        pos += k;
        continue;
      }
      // Following the chunk's fetch as its bytes arrive.
      *fetched = true;
      const std::shared_ptr<ChunkFill> fill = src->fill;
      const uint64_t upto = std::min(end, base + fill->length());
      while (pos < upto && !broken) {
        co_await x.WaitPast(fill, pos - base);
        uint64_t filled = base + fill->filled();
        if (filled <= pos) {
          *st = node->reads().FetchError(url, s.info, index);
          break;
        }
        uint64_t k = std::min(filled, upto) - pos;
        broken = !co_await send(fill->data() + (pos - base), k);
        pos += k;
      }
    }
    if (broken) co_return false;
    if (st->code() != Code::kPreconditionFailed || s.pinned || *header_sent || attempt > 0) break;
    // The store has a newer version than the cached metadata says, and nothing was sent:
    // serve the new version instead. Mid-body a client pinned to the first ETag closes and
    // reports the change rather than stitching two versions.
    node->objects().Invalidate(url);
    auto restat = x.Offload([n = node, url] { return n->directory().Stat(url); });
    Result<ObjectInfo> fresh = co_await std::move(restat);
    if (!fresh.ok()) {
      *st = fresh.status();
    } else if (fresh->size != s.info.size) {
      *st = Status::PreconditionFailed(url + " changed size while being read: read it again");
    } else {
      s.info = *fresh;
      if (s.set_version) s.set_version(s.info, res);
      *st = Status::Ok();
      continue;
    }
    break;
  }
  if (st->ok() && !*header_sent) {  // an empty object or range: the header alone
    if (!co_await x.WriteHeader(res)) co_return false;
    *header_sent = true;
  }
  co_return true;
}

// The metadata a request's headers carry (proto::MetaFromHeaders).
Result<ObjectMeta> MetaOf(const Request& req) {
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  for (const auto& f : req) {
    headers.emplace_back(std::string_view(f.name_string().data(), f.name_string().size()),
                         std::string_view(f.value().data(), f.value().size()));
  }
  return proto::MetaFromHeaders(headers);
}

// Whether `req` reads the object's first chunk: a GET of it whole or of a range that starts
// in that chunk, or a HEAD that says such a read follows (proto::kFirstChunkHeader).
bool ReadsFirstChunk(const Request& req, bool head, uint64_t chunk_size) {
  if (Header(req, proto::kFirstChunkHeader) == proto::kFlagOn) return true;
  if (head) return false;
  auto range = req.find(http::field::range);
  if (range == req.end()) return true;
  uint64_t from = 0, length = 0;  // (a suffix range, against an unknown size, starts past the chunk)
  return ParseRange(std::string_view(range->value().data(), range->value().size()), UINT64_MAX, &from, &length) &&
         from < chunk_size;
}

// GET|HEAD /v1/object. False if the connection must close.
awaitable<bool> ServeObject(Exchange& x, const Request& req) {
  Node* const node = x.node;
  const auto started = std::chrono::steady_clock::now();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, proto::kUrlParam);
  bool head = req.method() == http::verb::head;
  auto fail = [&](const Status& st) -> TextResponse {
    CountError(node, st);
    return head ? HeadErrorResponse(v, HttpStatusOf(st.code()), st) : ErrorResponse(v, ka, st);
  };
  if (url.empty()) co_return co_await x.Write(fail(Status::InvalidArgument("missing ?url=az://container/key")));
  // Peers and routing clients name the mode of the read and the version they want (so no
  // HEAD goes to the store per chunk); others get the current version.
  std::string_view how = Header(req, proto::kReadHeader);
  const bool pending_only = how == proto::kReadPending;
  if (pending_only && !head) {
    co_return co_await x.Write(fail(Status::InvalidArgument("a read of a pending write only is a HEAD")));
  }
  ReadMode mode = how == proto::kReadForwarded   ? ReadMode::kForwarded
                  : how == proto::kReadCacheOnly ? ReadMode::kCacheOnly
                  : how == proto::kReadHeld      ? ReadMode::kHeld
                                                 : ReadMode::kRoute;
  auto named = NamedVersion(req);
  if (!named.ok()) co_return co_await x.Write(fail(named.status()));
  bool pinned = named->has_value();
  bool to_peer = !Header(req, proto::kFromHeader).empty();
  if (auto epoch = ParseNumber(Header(req, proto::kEpochHeader))) {
    node->cluster().SawEpoch(*epoch);
    // Forwarded by a node or client that routed by an older membership (a client that took its
    // view from a member still replaying the history after a restart, say): this node may not
    // be what it was sent to as (owner, home), and the owner was not found unreachable. It is
    // routed again here, not read from the store for an owner that is up or awaited.
    auto view = node->cluster().view();
    if (mode == ReadMode::kForwarded && view && *epoch < view->epoch()) {
      mode = ReadMode::kRoute;
      node->metrics().stale_forwards++;
    }
  }
  // (No co_await inside ?: here and below: g++ 12 miscompiles it.)
  Result<ObjectInfo> info = Status::Unavailable("");
  // A HEAD forwarded by another node asks this one as the object's home (WriteDirectory).
  const bool as_home = (mode == ReadMode::kForwarded || pending_only) && !pinned;
  std::vector<std::string> holders;  // of a pending write, answered as the home
  const uint64_t chunk_size = node->options().chunk_size;
  if (pinned) {
    info = **named;
  } else if (pending_only) {
    // From memory, here on the event loop: a home catching up asks it while every thread of
    // its own may be waiting on this node (WriteDirectory::Stat).
    auto found = node->directory().PendingHere(url);
    if (!found.ok()) co_return co_await x.Write(fail(found.status()));
    info = found->info;
    holders = std::move(found->holders);
  } else {
    // A store asked for the metadata by a read of the first chunk sends that chunk with it.
    std::optional<ObjectCatalog::FirstChunk> first;
    if (ReadsFirstChunk(req, head, chunk_size)) {
      first.emplace(ObjectCatalog::FirstChunk{
          chunk_size, [node, url](const ObjectInfo& at, std::string bytes) {
            node->reads().KeepFirstChunk(url, at, std::move(bytes));
          },
          [node, url] { return node->reads().FirstChunkFromStore(url); }});
    }
    // Asked as the home, the answer comes from this node and the store, never another node's
    // threads: it runs on the peer pool, so that it is answered while every serve thread here
    // waits on other nodes (a node catching up asks the next home, whose own readers ask it).
    if (as_home) {
      auto stat = x.Offload([n = node, url, first = std::move(first)] {
        return n->directory().AnswerAsHome(url, first ? &*first : nullptr);
      }, &node->peer_pool());
      auto answer = co_await std::move(stat);
      if (!answer.ok()) co_return co_await x.Write(fail(answer.status()));
      info = answer->info;
      holders = std::move(answer->holders);
    } else {
      auto stat = x.Offload([n = node, url, first = std::move(first)] {
        return n->directory().Stat(url, false, first ? &*first : nullptr);
      });
      info = co_await std::move(stat);
    }
  }
  if (!info.ok()) co_return co_await x.Write(fail(info.status()));
  uint64_t offset = 0, length = info->size;
  http::status status = http::status::ok;
  auto range = req.find(http::field::range);
  if (range != req.end()) {
    std::string_view spec(range->value().data(), range->value().size());
    if (!ParseRange(spec, info->size, &offset, &length)) {
      auto res = Text(v, ka, "", "application/json", http::status::range_not_satisfiable);
      res.set(http::field::content_range, "bytes */" + std::to_string(info->size));
      co_return co_await x.Write(std::move(res));
    }
    status = http::status::partial_content;
  }
  if (mode == ReadMode::kHeld && (offset % chunk_size) + length > chunk_size) {
    co_return co_await x.Write(fail(Status::InvalidArgument("a held read is of one chunk's bytes")));
  }
  http::response<http::empty_body> res{status, v};
  Prepare(res, v, ka);
  auto set_version = [node, url](const ObjectInfo& at, http::response<http::empty_body>& r) {
    r.set(http::field::etag, "\"" + at.etag + "\"");
    // An upload of a write through this node: the version readers of the write had pinned.
    if (std::string as = node->objects().ChunkVersion(url, at.etag); as != at.etag) r.set(Bv(proto::kWrittenAsHeader), as);
  };
  set_version(*info, res);
  res.set(Bv(proto::kSizeHeader), std::to_string(info->size));
  // Pending anywhere in the cluster (a local version as what readers get), or, for a version a
  // reader pinned, whether this node's write of it still waits for its upload.
  const bool pending = pinned ? node->writes().Pending(url) : IsLocalVersion(info->etag);
  res.set(Bv(proto::kStateHeader), Bv(pending ? proto::kStateLocal : proto::kStateDurable));
  if (as_home) {
    res.set(Bv(proto::kModifiedHeader), std::to_string(info->last_modified));
    if (pending) {
      std::string list;
      for (const auto& id : holders) list += (list.empty() ? "" : ",") + id;
      res.set(Bv(proto::kHoldersHeader), list);
    }
  }
  // The object's metadata: from the store's HEAD, or a write taken here. A version a peer
  // or routing client pinned carries none (they read bytes): only the default Content-Type.
  for (const auto& [name, value] : proto::MetaHeaders(info->meta ? *info->meta : ObjectMeta{})) res.set(name, value);
  if (auto view = node->cluster().view()) res.set(Bv(proto::kEpochHeader), std::to_string(view->epoch()));
  if (status == http::status::partial_content) {
    res.set(http::field::content_range, "bytes " + std::to_string(offset) + "-" +
                                            std::to_string(offset + length - 1) + "/" +
                                            std::to_string(info->size));
  }
  res.content_length(length);
  if (head) co_return co_await x.WriteHeader(res) && ka;

  // Fan-in: a node asking for a chunk this node is already sending to others may be sent to
  // a node that holds it instead (SwarmTracker).
  std::string swarm_chunk;
  if (to_peer && mode == ReadMode::kForwarded) {
    swarm_chunk = url + "\n" + info->etag + "\n" + std::to_string(offset / chunk_size);
    std::string failed(Header(req, proto::kFailedHolderHeader));
    if (!failed.empty()) {
      node->swarm().Forget(swarm_chunk, failed);
      node->swarm().Acquire(swarm_chunk);
    } else {
      std::string holder = node->swarm().Route(swarm_chunk, std::string(Header(req, proto::kEndpointHeader)));
      if (!holder.empty()) {
        node->metrics().fan_in_redirects++;
        auto go = Text(v, ka, "", "application/octet-stream", http::status::temporary_redirect);
        go.set(Bv(proto::kHolderHeader), holder);
        go.set(http::field::location, "http://" + holder + std::string(req.target()));
        if (auto view = node->cluster().view()) go.set(Bv(proto::kEpochHeader), std::to_string(view->epoch()));
        co_return co_await x.Write(std::move(go));
      }
    }
  }
  struct Sent {  // the copy counted by Route/Acquire is done, however this returns
    Node* node;
    const std::string& chunk;
    ~Sent() {
      if (!chunk.empty()) node->swarm().Release(chunk);
    }
  } sent{node, swarm_chunk};

  ObjectSend send{url, *info, offset, length, mode, pinned, to_peer, set_version};
  Status st;
  bool header_sent = false, fetched = false;
  if (!co_await SendObject(x, send, res, &st, &header_sent, &fetched)) co_return false;
  if (!st.ok()) {
    if (!header_sent) co_return co_await x.Write(fail(st));
    CountError(node, st);
    co_return false;  // mid-body: the only honest signal left is closing the connection
  }
  (fetched ? node->metrics().op_miss : node->metrics().op_hit).Observe(std::chrono::steady_clock::now() - started);
  co_return ka;
}

// PUT /v1/object: streams the body into a Writer; answers 201 with the local version once the
// write is acknowledged (on disk, journaled). False if the connection must close.
awaitable<bool> ServeWrite(Exchange& x, Parser& parser) {
  Node* const node = x.node;
  const auto started = std::chrono::steady_clock::now();
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, proto::kUrlParam);
  auto meta = MetaOf(req);
  if (!meta.ok()) {
    Status bad = meta.status().WithContext("writing " + url);
    co_await x.Write(ErrorResponse(v, false, bad));
    co_return false;  // the body was not read: the connection cannot be reused
  }
  auto begin = x.Offload([n = node, url, m = std::move(meta).value()] { return n->writes().BeginWrite(url, m); });
  auto begun = co_await std::move(begin);
  if (!begun.ok()) {
    co_await x.Write(ErrorResponse(v, false, begun.status()));
    co_return false;  // the body was not read: the connection cannot be reused
  }
  std::shared_ptr<Writer> w = std::move(*begun);
  if (!co_await x.ContinueIfAsked(req)) co_return false;
  Status st;
  bool connected = co_await x.ReadWholeBody(parser, *w, &st);
  auto end = x.EndWrite(std::move(w), connected, st);
  Result<ObjectInfo> info = co_await std::move(end);
  if (!connected) co_return false;
  if (!info.ok()) {
    CountError(node, info.status());
    co_await x.Write(ErrorResponse(v, false, info.status()));
    co_return false;
  }
  auto res = Text(v, ka,
                  nlohmann::json{{"url", url}, {"size", info->size}, {"etag", info->etag}, {"state", proto::kStateLocal}}.dump() + "\n",
                  "application/json", http::status::created);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set(Bv(proto::kStateHeader), Bv(proto::kStateLocal));
  bool ok = co_await x.Write(std::move(res));
  node->metrics().op_write_ack.Observe(std::chrono::steady_clock::now() - started);
  co_return ok;
}

// GET /v1/pending?prefix=P[&cluster=1]: the writes not yet durable under P (for `shoal flush`);
// with cluster=1 also how many there are in the whole cluster, copies included.
TextResponse ServePending(Node* node, const Request& req) {
  std::string prefix = QueryParam(req, proto::kPrefixParam);
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0, bytes_done = 0;
  std::string last_error;
  std::string generation;  // read with the list (ListingCache)
  // Copies held here for other nodes, each with its origin: a listing shows those whose origin
  // cannot answer for them (dead, before this node takes the write over). Read before this
  // node's own writes: a copy taken over becomes an own write before it stops being a copy
  // (Replicas::TakeOver), so in this order it is never missed from both.
  nlohmann::json held = nlohmann::json::array();
  for (const auto& r : node->replicas().HeldUnder(prefix)) {
    held.push_back({{"url", r.url}, {"size", r.size}, {"etag", LocalVersion(r.id)},
                    {"written_unix_ms", r.created_unix_ms}, {"origin", r.origin}});
  }
  for (const auto& p : node->writes().PendingUploads(prefix, &generation)) {
    uint64_t done = std::min(p.record.size, p.parts_done * p.record.chunk_size);
    list.push_back({{"url", p.record.url}, {"size", p.record.size}, {"etag", LocalVersion(p.record.id)}, {"uploaded", done},
                    {"written_unix_ms", p.record.created_unix_ms}, {"overdue", p.overdue},
                    {"failures", p.failures}, {"last_error", p.last_error}});
    bytes += p.record.size;
    bytes_done += done;
    if (!p.last_error.empty()) last_error = p.last_error;
  }
  nlohmann::json body = {{"objects", list.size()}, {"bytes", bytes}, {"uploaded", bytes_done},
                         {"last_error", last_error}, {"pending", list},
                         {"copies", held.size()}, {"held", held}, {"generation", generation}};
  if (QueryParam(req, proto::kClusterParam) == proto::kFlagOn) {  // what `shoal flush` waits for
    std::vector<std::string> unreachable;
    body["cluster_objects"] = node->PendingInCluster(prefix, &unreachable);
    body["unreachable"] = unreachable;
  }
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// DELETE /v1/object?url=URL[&forwarded=1]: the object goes, and so do its writes not yet
// uploaded, here or on the member that took them (204).
TextResponse ServeDelete(Node* node, const Request& req) {
  std::string url = QueryParam(req, proto::kUrlParam);
  const bool forwarded = QueryParam(req, proto::kForwardedParam) == proto::kFlagOn;
  Status st = url.empty() ? Status::InvalidArgument("missing ?url=az://container/key")
                          : node->writes().Delete(url, forwarded);
  if (!st.ok()) {
    CountError(node, st);
    return ErrorResponse(req.version(), req.keep_alive(), st);
  }
  TextResponse res{http::status::no_content, req.version()};
  Prepare(res, req.version(), req.keep_alive());
  return res;
}

// POST /v1/commit?prefix=URL[&expect=N&shard=NAME]: writes the prefix's _SHOAL_COMMITTED marker
// (201 with it) once everything under it is durable; 412 while writes are pending. With expect,
// the marker names exactly the N shards NAME ({rank} in it) and 404 names those missing.
TextResponse ServeCommit(Node* node, const Request& req) {
  Result<std::vector<std::string>> shards = std::vector<std::string>{};
  std::string expect = QueryParam(req, proto::kExpectParam);
  if (!expect.empty()) {
    auto n = ParseNumber(expect);
    shards = n && *n <= UINT32_MAX ? ShardNames(QueryParam(req, proto::kShardParam), static_cast<uint32_t>(*n))
                                   : Status::InvalidArgument("?expect= wants a number of shards, got " + expect);
  }
  auto marker = shards.ok() ? node->Commit(QueryParam(req, proto::kPrefixParam), expect.empty() ? nullptr : &*shards)
                            : Result<std::string>(shards.status());
  if (!marker.ok()) {
    CountError(node, marker.status());
    return ErrorResponse(req.version(), req.keep_alive(), marker.status());
  }
  return Text(req.version(), req.keep_alive(), std::move(marker).value(), "application/json", http::status::created);
}

// GET /v1/version?url=URL&version=LOCAL[&forwarded=1]: what a write acknowledged through the
// cluster became (proto::VersionAnswer), as the object's home knows it.
TextResponse ServeVersion(Node* node, const Request& req) {
  std::string url = QueryParam(req, proto::kUrlParam), version = QueryParam(req, proto::kVersionParam);
  if (url.empty() || version.empty()) {
    return ErrorResponse(req.version(), req.keep_alive(), http::status::bad_request,
                         Status::InvalidArgument("GET /v1/version?url=URL&version=local-..."));
  }
  auto resolved = node->directory().ResolveVersion(url, version, QueryParam(req, proto::kForwardedParam) == proto::kFlagOn);
  std::string body = proto::VersionAnswer(resolved);
  if (body.empty()) {
    CountError(node, resolved.status());
    return ErrorResponse(req.version(), req.keep_alive(), resolved.status());
  }
  return Text(req.version(), req.keep_alive(), body + "\n", "application/json");
}

// POST /v1/warm?url=URL&index=I[&route=1] with X-Shoal-Etag and X-Shoal-Size: fetch that
// chunk into this node's cache (from the store, or the previous owner; route=1: through its
// owner, as a read would) and answer {"hit": bool}.
TextResponse ServeWarm(Node* node, const Request& req) {
  std::string url = QueryParam(req, proto::kUrlParam);
  auto info = NamedVersion(req);
  auto index = ParseNumber(QueryParam(req, proto::kIndexParam));
  if (url.empty() || !info.ok() || !info->has_value() || !index || req.method() != http::verb::post) {
    return ErrorResponse(req.version(), req.keep_alive(), http::status::bad_request,
                         Status::InvalidArgument("POST /v1/warm?url=URL&index=N with X-Shoal-Etag and X-Shoal-Size"));
  }
  auto hit = node->reads().Warm(url, **info, *index, QueryParam(req, proto::kRouteParam) == proto::kFlagOn);
  if (!hit.ok()) {
    CountError(node, hit.status());
    return ErrorResponse(req.version(), req.keep_alive(), hit.status());
  }
  return Text(req.version(), req.keep_alive(), nlohmann::json{{"hit", *hit}}.dump() + "\n", "application/json");
}

}  // namespace shoal::node
