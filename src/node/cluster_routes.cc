// The routes of the cluster: views, replica copies, drain, membership and readiness. See
// exchange.h.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/exchange.h"
#include "node/request_parse.h"

namespace shoal::node {

// POST /v1/drain: the node leaves the cluster and hands off what it has not uploaded (202);
// GET /v1/drain: how far it got.
TextResponse ServeDrain(Node* node, const Request& req) {
  if (req.method() == http::verb::post) {
    Status st = node->replicas().StartDrain();
    if (!st.ok()) return ErrorResponse(req.version(), req.keep_alive(), st);
  }
  auto d = node->replicas().GetDrainState();
  nlohmann::json body = {{"state", d.state}, {"writes", d.writes}, {"write_bytes", d.write_bytes},
                         {"copies", d.copies}, {"left", d.left}, {"error", d.error}};
  if (auto v = node->cluster().view()) body["epoch"] = v->epoch();
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// GET /readyz: 503 while this node is in a cluster (--peers, --etcd) and holds no view of its
// membership yet (joining, etcd not reached, or its history not replayed up to the epoch current
// when it joined: ClusterRouting::Joining), or, with etcd, cannot see it now (etcd does
// not answer, or the lease was lost), with why; "ready" otherwise.
TextResponse ServeReadyz(Node* node, unsigned version, bool keep_alive) {
  const NodeOptions& o = node->options();
  if (node->cluster().Joining()) {
    std::string where = o.etcd.empty() ? "from the members of --peers" : "in etcd " + o.etcd;
    return ErrorResponse(version, keep_alive, http::status::service_unavailable,
                         Status::Unavailable("not ready: no view of the cluster's membership yet (looked for it " +
                                             where + "); see this node's log"));
  }
  auto health = node->cluster().MembershipHealth();
  if (!health.problem.empty()) {
    return ErrorResponse(version, keep_alive, http::status::service_unavailable,
                         Status::Unavailable("not ready: cannot see the membership: " + health.problem));
  }
  return Text(version, keep_alive, "ready\n", "text/plain");
}

// GET /v1/cluster: the membership as this node routes by, as JSON (for `shoal status`).
TextResponse ServeCluster(Node* node, const Request& req) {
  auto view = node->cluster().view();
  nlohmann::json body = {{"self", node->id()}, {"chunk_size", node->options().chunk_size}};
  if (!view) {
    body["epoch"] = 0;
    body["members"] = nlohmann::json::array();
  } else {
    auto counts = view->placement().SlotCounts();
    auto peers = view->peers();
    body["epoch"] = view->epoch();
    body["slots"] = view->placement().slots();
    for (size_t i = 0; i < peers.size(); i++) {
      body["members"].push_back({{"id", peers[i].member.id}, {"endpoint", peers[i].endpoint},
                                 {"weight", peers[i].member.weight}, {"domain", peers[i].member.domain},
                                 {"slots", counts[i]}});
    }
  }
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// POST /v1/cluster/restarting?id=NODE&within=MS: NODE stops to restart in place (SIGTERM) and
// is to be back within MS; reads of its chunks wait for it meanwhile (ClusterRouting::PeerAway, ReadPath::RunFetch).
TextResponse ServeRestarting(Node* node, const Request& req) {
  std::string id = QueryParam(req, proto::kIdParam);
  std::optional<uint64_t> within = ParseNumber(QueryParam(req, proto::kWithinParam));
  if (req.method() != http::verb::post || id.empty() || !within) {
    return ErrorResponse(req.version(), req.keep_alive(), http::status::bad_request,
                         Status::InvalidArgument("/v1/cluster/restarting takes POST ?id=NODE&within=MILLISECONDS"));
  }
  node->cluster().PeerRestarting(id, std::chrono::milliseconds(*within));
  return Text(req.version(), req.keep_alive(), "awaited\n", "text/plain");
}

// Replication between nodes:
//   PUT  /v1/replica/chunk?id=&index=&url=   a chunk of another node's write (body)
//   POST /v1/replica/commit?id=&size=&chunk_size=&created=&origin=&url=   the copy is whole
//   POST /v1/replica/whole?(commit's)&meta=N  a write of one chunk: its metadata and chunk, committed
//   POST /v1/replica/adopt?id=               a draining origin hands the write over
//   POST /v1/replica/drop?id=&chunks=&url=[&stored=]   the origin uploaded it (as ETag `stored`:
//                                            the copy stays as cached chunks), or the write failed
//   GET  /v1/replica/state?id=               {"state": "pending"|"unknown", "incarnation"}
//   POST /v1/replica/announce?id=            a write not yet in the store, told to its object's
//                                            home (proto::Announcement as JSON)
// Their disk work runs on the node's peer pool: the origin's writer waits for these answers in a
// serve thread, so they must not queue behind serve threads that may all be such writers.
awaitable<bool> ServeReplica(Exchange& x, Parser& parser) {
  Node* const node = x.node;
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  std::string id = QueryParam(req, proto::kIdParam), url = QueryParam(req, proto::kUrlParam);
  auto answer = [&](const Status& st) {
    return st.ok() ? Text(v, ka, "ok\n", "text/plain") : ErrorResponse(v, ka, st);
  };
  // A copy committed: its origin learns whether this node recorded the write as its home.
  auto copied = [&](const Status& st, bool homed) {
    return st.ok() && homed ? Text(v, ka, std::string(proto::kCopyRecordedAnswer), "text/plain") : answer(st);
  };
  if (id.empty()) {
    co_await x.Write(ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("missing ?id=")));
    co_return false;
  }
  if (StartsWith(target, proto::kReplicaChunkPath) && req.method() == http::verb::put) {
    auto index = ParseNumber(QueryParam(req, proto::kIndexParam));
    std::string body;
    if (!co_await x.ReadBody(parser, node->options().chunk_size, &body)) co_return false;
    if (!index) co_return co_await x.Write(answer(Status::InvalidArgument("a replica chunk names its ?index=")));
    auto put_chunk = x.Offload([n = node, id, url, i = *index, &body] { return n->replicas().PutChunk(id, url, i, body); },
                               &node->peer_pool());
    Status st = co_await std::move(put_chunk);
    co_return co_await x.Write(answer(st));
  }
  // A commit's record from its parameters and its metadata (the body, or the whole's first part).
  auto commit_record = [&](std::string_view meta_json) -> Result<engine::UploadRecord> {
    auto meta = proto::ParseReplicaCommitBody(meta_json);
    if (!meta.ok()) return meta.status();
    engine::UploadRecord r;
    r.meta = std::move(meta).value();
    r.id = id;
    r.url = url;
    auto size = ParseNumber(QueryParam(req, proto::kSizeParam)),
         chunk = ParseNumber(QueryParam(req, proto::kChunkSizeParam)),
         created = ParseNumber(QueryParam(req, proto::kCreatedParam));
    r.origin = QueryParam(req, proto::kOriginParam);
    r.origin_incarnation = QueryParam(req, proto::kIncarnationParam);
    if (r.origin.empty() || !size || !chunk || *chunk == 0 || !created) {
      return Status::InvalidArgument("a replica commit names its origin, size, chunk size and creation time");
    }
    r.size = *size;
    r.chunk_size = *chunk;
    r.created_unix_ms = static_cast<int64_t>(*created);
    if (auto begun = ParseNumber(QueryParam(req, proto::kBegunParam))) r.begun_unix_us = *begun;  // absent: an older origin
    return r;
  };
  if (StartsWith(target, proto::kReplicaCommitPath) && req.method() == http::verb::post) {
    std::string body;  // the write's metadata
    if (!co_await x.ReadBody(parser, 64 << 10, &body)) co_return false;
    auto r = commit_record(body);
    if (!r.ok()) co_return co_await x.Write(answer(r.status()));
    bool adopt = QueryParam(req, proto::kAdoptParam) == proto::kFlagOn;
    bool homed = false;
    auto commit_copy = x.Offload(
        [n = node, r = std::move(r).value(), adopt, &homed] { return n->replicas().Commit(r, adopt, &homed); },
        &node->peer_pool());
    Status st = co_await std::move(commit_copy);
    co_return co_await x.Write(copied(st, homed));
  }
  if (StartsWith(target, proto::kReplicaWholePath) && req.method() == http::verb::post) {
    std::string body;  // the metadata, then the write's one chunk
    if (!co_await x.ReadBody(parser, node->options().chunk_size + (64 << 10), &body)) co_return false;
    auto meta_bytes = ParseNumber(QueryParam(req, proto::kMetaParam));
    if (!meta_bytes || *meta_bytes > body.size() || *meta_bytes > (64 << 10)) {
      co_return co_await x.Write(answer(Status::InvalidArgument("a whole replica names its metadata's ?meta=BYTES, within its body")));
    }
    auto r = commit_record(std::string_view(body).substr(0, *meta_bytes));
    if (!r.ok()) co_return co_await x.Write(answer(r.status()));
    if (r->size == 0 || r->size != body.size() - *meta_bytes || r->size > r->chunk_size) {
      co_return co_await x.Write(answer(Status::InvalidArgument("a whole replica's chunk is not the write's size, or not one chunk")));
    }
    bool homed = false;
    auto store_whole = x.Offload(
        [n = node, r = std::move(r).value(), &body, skip = *meta_bytes, &homed] {
          SHOAL_RETURN_IF_ERROR(n->replicas().PutChunk(r.id, r.url, 0, std::string_view(body).substr(skip)));
          SHOAL_RETURN_IF_ERROR(n->replicas().Commit(r, false, &homed));
          n->metrics().replica_whole++;
          return Status::Ok();
        },
        &node->peer_pool());
    Status st = co_await std::move(store_whole);
    co_return co_await x.Write(copied(st, homed));
  }
  if (StartsWith(target, proto::kReplicaAnnouncePath) && req.method() == http::verb::post) {
    std::string body;
    if (!co_await x.ReadBody(parser, 64 << 10, &body)) co_return false;
    auto announced = proto::ParseAnnouncement(body);
    if (!announced.ok()) co_return co_await x.Write(answer(announced.status()));
    if (announced->id != id) co_return co_await x.Write(answer(Status::InvalidArgument("an announcement's ?id= and body disagree")));
    auto record = x.Offload(
        [n = node, a = std::move(announced).value()] {
          n->directory().Record(a);
          return 0;
        },
        &node->peer_pool());
    co_await std::move(record);
    co_return co_await x.Write(answer(Status::Ok()));
  }
  if (!parser.is_done()) {
    co_await x.Write(ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("this request takes no body")));
    co_return false;
  }
  if (StartsWith(target, proto::kReplicaRetellPath) && req.method() == http::verb::post) {
    // On the serve pool: it waits on other nodes (it announces to them), and the peer pool's
    // threads must never (Node::peer_pool).
    auto retell = x.Offload([n = node, id] { return n->directory().Retell(id); });
    const bool told = co_await std::move(retell);
    // A statement of its own: g++ 12 destroys a conditional's temporaries inside a co_await
    // expression twice ("free(): invalid pointer", seen here).
    Status st = Status::Ok();
    if (!told) st = Status::Unavailable("could not announce again to " + id + " every write homed there");
    co_return co_await x.Write(answer(st));
  }
  if (StartsWith(target, proto::kReplicaAdoptPath) && req.method() == http::verb::post) {
    auto adopt_copy = x.Offload([n = node, id] { return n->replicas().Adopt(id); }, &node->peer_pool());
    Status st = co_await std::move(adopt_copy);
    co_return co_await x.Write(answer(st));
  }
  if (StartsWith(target, proto::kReplicaDropPath) && req.method() == http::verb::post) {
    auto chunks = ParseNumber(QueryParam(req, proto::kChunksParam));
    if (!chunks) co_return co_await x.Write(answer(Status::InvalidArgument("a replica drop names its ?chunks=")));
    auto drop = x.Offload(
        [n = node, id, url, k = *chunks, stored = QueryParam(req, proto::kStoredParam)] {
          n->replicas().Drop(id, url, k, stored);
          return 0;
        },
        &node->peer_pool());
    co_await std::move(drop);
    co_return co_await x.Write(answer(Status::Ok()));
  }
  if (StartsWith(target, proto::kReplicaStatePath)) {
    auto ask_state = x.Offload([n = node, id] { return n->writes().WriteState(id); }, &node->peer_pool());
    std::string state = co_await std::move(ask_state);
    nlohmann::json body = {{"state", state}, {"incarnation", node->incarnation()}};
    co_return co_await x.Write(Text(v, ka, body.dump() + "\n", "application/json"));
  }
  co_return co_await x.Write(answer(Status::InvalidArgument("no such replica request")));
}

// GET /v1/cluster/view[?current=1]: the placement in binary (cluster::View::Encode), for
// clients that route chunks themselves and nodes joining. POST: a peer's newer view.
awaitable<bool> ServeClusterView(Exchange& x, Parser& parser) {
  Node* const node = x.node;
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  if (req.method() == http::verb::post) {
    std::string body;
    if (!co_await x.ReadBody(parser, 1ull << 30, &body)) co_return false;
    auto view = cluster::View::Decode(body);
    if (!view.ok()) {
      co_await x.Write(ErrorResponse(v, false, http::status::bad_request, view.status()));
      co_return false;
    }
    auto adopt_view = x.Offload([n = node, vw = *view] { return n->cluster().AdoptView(vw); });
    bool taken = co_await std::move(adopt_view);
    co_return co_await x.Write(Text(v, ka, taken ? "adopted\n" : "kept a newer or equal epoch\n", "text/plain"));
  }
  // Joining (just started, or replaying the membership's history after a restart): the view
  // it holds may be of an older, smaller membership, and a client (which asks for the current
  // view only) routing by it would send chunks to nodes that do not own them. The client asks
  // again; meanwhile its reads go through here. Members asking for the table of an epoch they
  // name still get what this node holds.
  const bool current = QueryParam(req, proto::kCurrentParam) == proto::kFlagOn;
  if (current && node->cluster().Joining()) {
    co_return co_await x.Write(ErrorResponse(
        v, ka, http::status::service_unavailable,
        Status::Unavailable("this node is joining the cluster and does not hold its current membership yet: "
                            "read through it, or ask again in a moment")));
  }
  auto view = node->cluster().view();
  if (!view) {
    co_return co_await x.Write(ErrorResponse(v, ka, http::status::not_found,
                                              Status::NotFound("this node is not in a cluster (started without --peers)")));
  }
  auto res = Text(v, ka, view->Encode(current), "application/octet-stream");
  res.set(Bv(proto::kChunkSizeHeader), std::to_string(node->options().chunk_size));
  co_return co_await x.Write(std::move(res));
}

}  // namespace shoal::node
