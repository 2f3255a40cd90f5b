// The node's part in a cluster: its view of the membership, and chunks got from other nodes.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/strings.h"
#include "net/node_errors.h"
#include "net/retry.h"
#include "node/node.h"

namespace shoal::node {

namespace {
// How long a peer that failed a request is skipped (reads go to the store meanwhile).
constexpr auto kPeerRetryAfter = std::chrono::seconds(3);
// Times a chunk is asked again of a peer that answered 503 Busy (at its connection cap), and
// the back-off between (about 13 s in all before the store is asked instead).
constexpr int kBusyRetries = 20;
constexpr std::chrono::milliseconds kBusyBackoff{250};
constexpr std::chrono::milliseconds kBusyMaxBackoff{1500};
// Between attempts to join etcd while this node's previous lease lapses.
constexpr std::chrono::milliseconds kJoinBackoff{250};
constexpr std::chrono::milliseconds kJoinMaxBackoff{1000};
}  // namespace

std::vector<engine::ChunkKey> WriteChunkKeys(const std::string& url, const std::string& id, uint64_t count) {
  std::vector<engine::ChunkKey> keys;
  for (uint64_t i = 0; i < count; i++) keys.push_back(engine::ChunkKey{url, LocalVersion(id), i});
  return keys;
}

std::string ReplicaCommitPath(const engine::UploadRecord& r, const std::string& origin, const std::string& incarnation,
                              bool adopt) {
  return proto::ReplicaCommitPath(proto::ReplicaCommit{.id = r.id,
                                                       .url = r.url,
                                                       .origin = origin,
                                                       .incarnation = incarnation,
                                                       .size = r.size,
                                                       .chunk_size = r.chunk_size,
                                                       .created_unix_ms = r.created_unix_ms,
                                                       .adopt = adopt});
}

std::shared_ptr<const cluster::View> Node::view() {
  std::lock_guard<std::mutex> lock(view_mu_);
  return view_;
}

bool Node::AdoptView(std::shared_ptr<const cluster::View> v) {
  std::lock_guard<std::mutex> lock(view_mu_);
  if (view_ && view_->epoch() >= v->epoch()) return false;
  std::fprintf(stderr, "shoald: cluster epoch %llu: %zu members\n", static_cast<unsigned long long>(v->epoch()),
               v->placement().members().size());
  view_ = std::move(v);
  return true;
}

void Node::SawEpoch(uint64_t seen) {
  auto v = view();
  if (etcd_ || closing_ || !v || seen <= v->epoch()) return;
  std::lock_guard<std::mutex> lock(refresh_mu_);
  auto now = std::chrono::steady_clock::now();
  if (refreshing_view_ || now - last_refresh_ < std::chrono::seconds(5)) return;  // at most every 5 s
  if (refresh_thread_.joinable()) refresh_thread_.join();  // the last refresh, finished
  refreshing_view_ = true;
  last_refresh_ = now;
  std::fprintf(stderr, "shoald: a request carried epoch %llu, newer than this node's %llu: asking the members\n",
               static_cast<unsigned long long>(seen), static_cast<unsigned long long>(v->epoch()));
  refresh_thread_ = std::thread([this, v, seen] {
    for (const auto& p : v->peers()) {
      if (p.member.id == id() || closing_) continue;
      std::string body;
      if (!CallPeer(p, "GET", std::string(proto::kClusterViewPath), {}, &body, std::chrono::seconds(5)).ok()) continue;
      auto fresh = cluster::View::Decode(body);
      if (fresh.ok()) AdoptView(*fresh);  // only if newer
      if (view()->epoch() >= seen) break;
    }
    std::lock_guard<std::mutex> done(refresh_mu_);
    refreshing_view_ = false;
  });
}

Status Node::JoinCluster(const std::string& endpoint) {
  advertise_ = endpoint;
  if (!options_.etcd.empty()) return JoinEtcd(endpoint);
  const auto& peers = options_.peers;
  if (peers.empty()) return Status::Ok();
  bool listed = false;
  for (const auto& p : peers) listed |= p.member.id == options_.node_id;
  if (listed == options_.reader) {
    return Status::InvalidArgument(options_.reader ? "--reader: --node-id " + options_.node_id +
                                                         " is one of --peers: a reader follows the members, it is not one"
                                                   : "--node-id " + options_.node_id +
                                                         " is not one of --peers: list this node too");
  }
  // The newest view any live peer holds.
  std::shared_ptr<const cluster::View> base;
  for (const auto& p : peers) {
    if (p.member.id == options_.node_id) continue;
    http::Request req = proto::NodeRequest("GET", p.endpoint, proto::kClusterViewPath, options_.token);
    req.timeout = std::chrono::seconds(5);  // a hung member must not stop a start
    http::Response resp;
    Status st = peers_.Send(req, &resp);
    if (!st.ok() || resp.status != 200) continue;
    auto v = cluster::View::Decode(resp.body);
    if (!v.ok()) {
      std::fprintf(stderr, "shoald: %s sent a bad cluster view: %s\n", p.member.id.c_str(), v.status().ToString().c_str());
      continue;
    }
    if (!base || (*v)->epoch() > base->epoch()) base = *v;
  }
  if (options_.reader) {
    if (!base) {
      return Status::Unavailable("--reader: no member of --peers answered with the cluster's view; start the "
                                 "members first");
    }
    AdoptView(base);  // later epochs come from SawEpoch
    return Status::Ok();
  }
  // A member restarting follows the cluster as it is, whatever its --peers says: a stale list
  // must not undo a join (nodes leave by `shoal drain`). A node not yet in it joins: the next
  // epoch is the cluster's members plus this one.
  std::vector<cluster::Peer> members = peers;
  if (base) {
    members = base->peers();
    bool in = false;
    for (const auto& m : members) in |= m.member.id == options_.node_id;
    if (in) {
      if (!base->SameMembers(peers)) {
        std::fprintf(stderr, "shoald: following the cluster's epoch %llu (%zu members), not --peers (%zu): "
                     "members join by starting with a list that names them and leave by `shoal drain`\n",
                     static_cast<unsigned long long>(base->epoch()), base->placement().members().size(), peers.size());
      }
      AdoptView(base);
      return Status::Ok();
    }
    for (const auto& p : peers) {
      if (p.member.id == options_.node_id) members.push_back(p);
    }
  }
  SHOAL_ASSIGN_OR_RETURN(auto next, cluster::View::Build(base.get(), members, base ? base->epoch() + 1 : 1));
  if (base) {
    std::fprintf(stderr, "shoald: joining the cluster's epoch %llu (%zu members) as epoch %llu\n",
                 static_cast<unsigned long long>(base->epoch()), base->placement().members().size(),
                 static_cast<unsigned long long>(next->epoch()));
  }
  AdoptView(next);
  if (!base) return Status::Ok();  // a new cluster: every member builds the same first epoch
  // Tell everyone (the previous members too, so a removed node learns it is out).
  std::string encoded = next->Encode();
  for (const auto& p : next->peers()) {
    if (p.member.id == options_.node_id) continue;
    http::Request req = proto::NodeRequest("POST", p.endpoint, proto::kClusterViewPath, options_.token);
    req.body = encoded;
    req.timeout = std::chrono::seconds(5);  // a frozen member catches up later (SawEpoch)
    http::Response resp;
    Status st = peers_.Send(req, &resp);
    if (!st.ok() || resp.status / 100 != 2) {
      std::fprintf(stderr, "shoald: could not tell %s (%s) about epoch %llu: %s\n", p.member.id.c_str(),
                   p.endpoint.c_str(), static_cast<unsigned long long>(next->epoch()),
                   st.ok() ? resp.body.c_str() : st.ToString().c_str());
    }
  }
  return Status::Ok();
}

Status Node::JoinEtcd(const std::string& endpoint) {
  SHOAL_ASSIGN_OR_RETURN(etcd_, cluster::EtcdMembership::Connect(options_.etcd, options_.etcd_prefix + "members/"));
  // Every node replays the membership's whole history, so all build the same tables.
  SHOAL_RETURN_IF_ERROR(etcd_->Watch(0, [this](const cluster::MembershipEvent& e) { OnMembership(e); }));
  if (options_.reader) return Status::Ok();  // follows, never registers
  cluster::Peer self{cluster::Member{options_.node_id, options_.weight,
                                     options_.domain.empty() ? options_.node_id : options_.domain},
                     endpoint};
  // The lease is the grace a node that stops answering keeps its slots for.
  auto ttl = std::max<std::chrono::seconds>(std::chrono::seconds(1),
                                            std::chrono::duration_cast<std::chrono::seconds>(options_.down_grace));
  auto deadline = std::chrono::steady_clock::now() + ttl + std::chrono::seconds(10);
  net::Backoff backoff(kJoinBackoff, kJoinMaxBackoff);
  for (bool told = false;;) {
    Status st = etcd_->Join(self, ttl);
    if (st.ok()) return Status::Ok();
    if (st.code() != Code::kAlreadyExists || std::chrono::steady_clock::now() > deadline) {
      return st.WithContext("joining the cluster in etcd (" + options_.etcd + ")");
    }
    if (!told) {  // this node restarted within its lease: wait for the old one to lapse
      std::fprintf(stderr, "shoald: %s; waiting for that lease to expire (up to %llds)\n", st.message().c_str(),
                   static_cast<long long>(ttl.count()));
      told = true;
    }
    std::this_thread::sleep_for(backoff.Next());
  }
}

void Node::OnMembership(const cluster::MembershipEvent& e) {
  if (e.peers.empty()) return;  // nobody left: keep routing by the last table
  auto current = view();
  const cluster::View* base = e.resync ? nullptr : current.get();
  if (e.resync) {
    // The history is gone: take this epoch's table from a member that has it.
    for (const auto& p : e.peers) {
      if (p.member.id == id()) continue;
      std::string body;
      if (!CallPeer(p, "GET", std::string(proto::kClusterViewPath), {}, &body).ok()) continue;
      auto v = cluster::View::Decode(body);
      if (v.ok() && (*v)->epoch() == e.revision && (*v)->SameMembers(e.peers)) {
        AdoptView(*v);
        return;
      }
    }
    std::fprintf(stderr, "shoald: etcd history is compacted and no member has epoch %llu: building it afresh\n",
                 static_cast<unsigned long long>(e.revision));
  }
  auto next = cluster::View::Build(base, e.peers, e.revision);
  if (!next.ok()) {
    std::fprintf(stderr, "shoald: cannot apply membership epoch %llu: %s\n", static_cast<unsigned long long>(e.revision),
                 next.status().ToString().c_str());
    return;
  }
  AdoptView(*next);
}

bool Node::PeerDown(const std::string& id) {
  std::lock_guard<std::mutex> lock(view_mu_);
  auto it = peer_down_until_.find(id);
  return it != peer_down_until_.end() && std::chrono::steady_clock::now() < it->second;
}

Status Node::GetChunk(const std::string& endpoint, const std::string& url, const ObjectInfo& info, uint64_t index,
                      std::string_view how, const std::string& failed_holder, ChunkFill* fill, http::Response* resp) {
  uint64_t first = index * options_.chunk_size + fill->filled();
  uint64_t last = index * options_.chunk_size + fill->length() - 1;
  auto v = view();
  http::Request req = proto::ChunkRequest(endpoint, options_.token,
                                          proto::ChunkRead{.url = url,
                                                           .etag = info.etag,
                                                           .size = info.size,
                                                           .first = first,
                                                           .last = last,
                                                           .mode = how,
                                                           .epoch = v ? v->epoch() : 0});
  req.headers.push_back({std::string(proto::kFromHeader), id()});
  // Where this node serves: the asked node may send others here for this chunk (fan-in).
  if (!advertise_.empty()) req.headers.push_back({std::string(proto::kEndpointHeader), advertise_});
  if (!failed_holder.empty()) req.headers.push_back({std::string(proto::kFailedHolderHeader), failed_holder});
  ByteSink sink = [&](const char* d, size_t n) {
    return fill->Append(d, n) ? Status::Ok() : Status::Corruption("node at " + endpoint + " sent more than asked");
  };
  Status st = peers_.Send(req, resp, &sink);
  if (st.ok()) SawEpoch(std::strtoull(resp->Header(proto::kEpochHeader).c_str(), nullptr, 10));
  return st;
}

Result<std::shared_ptr<const std::string>> Node::FetchFromPeer(const cluster::Peer& peer, const std::string& url,
                                                               const ObjectInfo& info, uint64_t index,
                                                               bool cache_only, const std::shared_ptr<ChunkFill>& fill) {
  struct Timed {  // the fetch's latency, for every return that leaves the chunk whole
    Histogram& latency;
    ChunkFill& fill;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    ~Timed() {
      if (fill.filled() == fill.length()) latency.Observe(std::chrono::steady_clock::now() - started);
    }
  } timed{metrics_.op_peer, *fill};
  const uint64_t before = fill->filled();
  http::Response resp;
  Status st;
  net::Backoff busy_backoff(kBusyBackoff, kBusyMaxBackoff);
  for (int busy = 0;; busy++) {
    resp = http::Response{};
    st = GetChunk(peer.endpoint, url, info, index, cache_only ? proto::kReadCacheOnly : proto::kReadForwarded, "",
                  fill.get(), &resp);
    // A peer at its connection cap says so at once: wait a moment and ask again (a few
    // times), rather than call it down and fetch from the store what it holds.
    if (!st.ok() || resp.status != 503 || resp.Header(proto::kErrorHeader) != proto::kBusy || busy == kBusyRetries) break;
    metrics_.peer_busy++;
    std::this_thread::sleep_for(busy_backoff.Next());
  }
  if (st.ok() && resp.status == 307 && !cache_only) {
    // Fan-in: the owner is sending this chunk to others already and names a node that has it
    // or is getting it, which streams it on as it arrives. Failing that (midway too: the
    // bytes got are kept), the owner sends the rest after all.
    std::string holder = resp.Header(proto::kHolderHeader);
    const uint64_t held_from = fill->filled();
    // Only a 2xx body lands in the fill: what counts is whether it is whole.
    http::Response held;
    GetChunk(holder, url, info, index, proto::kReadHeld, "", fill.get(), &held).IgnoreError();
    metrics_.fan_in_fetch_bytes += fill->filled() - held_from;
    if (fill->filled() == fill->length()) {  // whole, even if the answer then ended badly
      metrics_.fan_in_fetches++;
      return ChunkFill::Whole(fill);
    }
    metrics_.fan_in_fallbacks++;
    resp = http::Response{};
    st = GetChunk(peer.endpoint, url, info, index, proto::kReadForwarded, holder, fill.get(), &resp);
  }
  if (!st.ok()) {
    metrics_.peer_failures++;
    std::lock_guard<std::mutex> lock(view_mu_);
    peer_down_until_[peer.member.id] = std::chrono::steady_clock::now() + kPeerRetryAfter;
    return Status::Unavailable("node " + peer.member.id + " (" + peer.endpoint + "): " + st.message());
  }
  if (resp.status == 404) return Status::NotFound(url + " chunk " + std::to_string(index) + " is not on " + peer.member.id);
  if (resp.status == 412) return Status::PreconditionFailed(url + " changed in the object store");
  if (resp.status / 100 != 2 || fill->filled() != fill->length()) {
    metrics_.peer_failures++;
    return Status::Unavailable("node " + peer.member.id + " answered " + std::to_string(resp.status) + " for " + url +
                               " chunk " + std::to_string(index));
  }
  metrics_.peer_fetch_bytes += fill->filled() - before;
  return ChunkFill::Whole(fill);
}

Result<std::shared_ptr<const std::string>> Node::FetchFromCluster(const std::string& url, const ObjectInfo& info,
                                                                  uint64_t index, ReadMode mode,
                                                                  const std::shared_ptr<ChunkFill>& fill) {
  auto v = view();
  if (!v || v->placement().members().size() < 2) return Status::NotFound("not in a cluster");
  cluster::Route route = v->RouteOf(url, index, 1);
  const cluster::Peer& owner = route.replicas[0];
  Result<std::shared_ptr<const std::string>> got = Status::NotFound("");
  if (owner.member.id != id()) {
    // Not ours: the owner fetches it (once for the whole cluster) unless it is down.
    if (mode != ReadMode::kRoute || PeerDown(owner.member.id)) return Status::NotFound("owner skipped");
    got = FetchFromPeer(owner, url, info, index, false, fill);
    if (got.ok()) metrics_.peer_fetches++;
  } else if (route.previous && route.previous->member.id != id() && !PeerDown(route.previous->member.id)) {
    // Ours since the last membership change: the previous owner may still have it.
    got = FetchFromPeer(*route.previous, url, info, index, true, fill);
    if (got.ok()) metrics_.previous_owner_hits++;
  }
  if (!got.ok()) {
    // Only a changed object is final; a missing or unreachable peer sends us to the store.
    if (got.status().code() == Code::kPreconditionFailed) return got;
    return Status::NotFound(got.status().message());
  }
  chunks_->Put(engine::ChunkKey{url, ChunkVersion(url, info.etag), index}, **got, false).IgnoreError();
  return got;
}

Status Node::CallPeer(const cluster::Peer& peer, const std::string& method, const std::string& path,
                      std::string_view body, std::string* answer, std::chrono::milliseconds timeout) {
  http::Request req = proto::NodeRequest(method, peer.endpoint, path, options_.token);
  req.body = body;
  req.timeout = timeout;
  http::Response resp;
  Status st = peers_.Send(req, &resp);
  if (!st.ok()) {
    metrics_.peer_failures++;
    {
      std::lock_guard<std::mutex> lock(view_mu_);
      peer_down_until_[peer.member.id] = std::chrono::steady_clock::now() + kPeerRetryAfter;
    }
    return Status::Unavailable("node " + peer.member.id + " (" + peer.endpoint + ") cannot be reached: " + st.message());
  }
  if (resp.status == 404) return Status::NotFound(method + " " + path + " at node " + peer.member.id + ": " + resp.body);
  if (resp.status / 100 != 2) {
    metrics_.peer_failures++;
    return http::StatusFromResponse(resp, method + " " + path + " at node " + peer.member.id,
                                    http::NodeErrors());
  }
  if (answer) *answer = std::move(resp.body);
  return Status::Ok();
}

Result<std::vector<cluster::Peer>> Node::ReplicaTargets(const std::string& url) {
  std::vector<cluster::Peer> out;
  auto v = view();
  if (!v || options_.replicas < 2) return out;
  size_t members = v->placement().members().size();
  size_t want = std::min<size_t>(options_.replicas, members) - 1;
  if (want == 0) return out;
  // The object's first chunk's replica set, this node left out, skipping nodes known down.
  std::string down;
  for (const auto& p : v->RouteOf(url, 0, static_cast<uint32_t>(members)).replicas) {
    if (out.size() == want) break;
    if (p.member.id == id()) continue;
    if (PeerDown(p.member.id)) {
      down += (down.empty() ? "" : ", ") + p.member.id;
      continue;
    }
    out.push_back(p);
  }
  if (out.size() < want) {
    return Status::Unavailable("writing " + url + ": " + std::to_string(options_.replicas) +
                               " copies are wanted (--replicas) but nodes are down (" + down +
                               "); nothing of this write was acknowledged. Retry in a few seconds, take a "
                               "dead node out with `shoal drain`, or run the nodes with fewer --replicas");
  }
  return out;
}

Status Node::PutReplicaChunk(const std::string& id, const std::string& url, uint64_t index, std::string_view data) {
  return chunks_->Put(engine::ChunkKey{url, LocalVersion(id), index}, data, /*pinned=*/true)
      .WithContext("keeping a copy of " + url);
}

Status Node::CommitReplica(const engine::UploadRecord& r, bool adopt) {
  if (draining_) return Status::Unavailable("this node is draining (leaving the cluster): send the copy elsewhere");
  std::vector<engine::ChunkKey> keys = WriteChunkKeys(r);
  for (const auto& key : keys) {
    if (!chunks_->Contains(key)) {
      return Status::PreconditionFailed("the copy of " + r.url + " lacks chunk " + std::to_string(key.index));
    }
  }
  SHOAL_RETURN_IF_ERROR(chunks_->Sync(keys).WithContext("keeping a copy of " + r.url));
  std::lock_guard<std::mutex> lock(copies_mu_);  // a copy's record changes only under it
  if (adopt) {
    engine::UploadRecord own = r;
    own.origin.clear();
    own.origin_incarnation.clear();
    own.replicas.clear();
    SHOAL_RETURN_IF_ERROR(journal_->Put(own).WithContext("journaling " + r.url));
    copies_.erase(r.id);
    {
      std::lock_guard<std::mutex> staged(staged_mu_);
      staged_bytes_ += r.size;
    }
    metrics_.handoffs_received++;
    Stage(own);
    return Status::Ok();
  }
  SHOAL_RETURN_IF_ERROR(journal_->Put(r).WithContext("journaling a copy of " + r.url));
  metrics_.replica_bytes += r.size;
  copies_[r.id] = Copy{r, {}};
  return Status::Ok();
}

void Node::DropReplica(const std::string& id, const std::string& url, uint64_t chunks) {
  std::lock_guard<std::mutex> lock(copies_mu_);
  auto r = journal_->Get(id);
  if (r.ok() && r->origin.empty()) return;  // taken over or adopted: it is this node's write now
  copies_.erase(id);
  if (r.ok()) journal_->Remove(id).IgnoreError();
  // Also chunks of a copy never completed (the write failed before its end).
  for (const auto& key : WriteChunkKeys(url, id, chunks)) chunks_->Remove(key).IgnoreError();
}

std::string Node::WriteState(const std::string& id) {
  auto r = journal_->Get(id);
  if (!r.ok() || !r->origin.empty()) return "unknown";
  return r->state == engine::UploadRecord::State::kDurable ? "durable" : "pending";
}

uint64_t Node::CopiesUnder(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(copies_mu_);
  uint64_t n = 0;
  for (const auto& [id, c] : copies_) n += StartsWith(c.record.url, prefix);
  return n;
}

Status Node::AdoptCopy(const std::string& id) {
  Status st = TakeOver(id, "a draining node handed over its write");
  if (st.ok()) metrics_.handoffs_received++;
  return st;
}

Status Node::TakeOver(const std::string& id, const std::string& why) {
  engine::UploadRecord r;
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    auto it = copies_.find(id);
    if (it == copies_.end()) return Status::NotFound("no copy of write " + id + " is held here");
    r = it->second.record;
    std::fprintf(stderr, "shoald: %s (%s from node %s): uploading this node's copy\n", why.c_str(), r.url.c_str(),
                 r.origin.c_str());
    r.origin.clear();
    r.origin_incarnation.clear();
    SHOAL_RETURN_IF_ERROR(journal_->Put(r).WithContext("taking over " + r.url));  // retried next round
    copies_.erase(it);
  }
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    staged_bytes_ += r.size;
  }
  metrics_.replica_takeovers++;
  Stage(r);
  return Status::Ok();
}

void Node::WatchReplicas() {
  std::unique_lock<std::mutex> lock(copies_mu_);
  while (!stopping_) {
    copies_cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) return;
    std::vector<Copy> copies;
    for (const auto& [id, c] : copies_) copies.push_back(c);
    lock.unlock();
    auto v = view();
    auto now = std::chrono::steady_clock::now();
    std::map<std::string, Status> unreachable;  // this round: origins that did not answer
    for (auto& c : copies) {
      if (closing_) break;
      const std::string& origin = c.record.origin;
      std::string endpoint = v ? v->EndpointOf(origin) : "";
      std::string answer;
      Status st = unreachable.count(origin) ? unreachable[origin]
                  : endpoint.empty()        ? Status::Unavailable("not a member")
                                            : CallPeer(cluster::Peer{{origin, 0, ""}, endpoint}, "GET",
                                                       proto::Target(proto::kReplicaStatePath, {{proto::kIdParam, c.record.id}}), {}, &answer,
                                                       std::chrono::seconds(2));
      auto j = nlohmann::json::parse(answer, nullptr, false);
      std::string state = st.ok() && j.is_object() ? j.value("state", "") : "";
      if (state == "durable") {
        DropReplica(c.record.id, c.record.url, ChunkCount(c.record.size, c.record.chunk_size));
      } else if (state == "unknown") {
        if (!c.record.origin_incarnation.empty() && j.value("incarnation", "") == c.record.origin_incarnation) {
          // Its disk is intact and the write is not on it: never acknowledged, or handed off.
          DropReplica(c.record.id, c.record.url, ChunkCount(c.record.size, c.record.chunk_size));
        } else {
          TakeOver(c.record.id, "node " + origin + " lost its disk").IgnoreError();
        }
      } else if (!st.ok()) {
        unreachable.emplace(origin, st);
        bool gone = false;
        {
          std::lock_guard<std::mutex> relock(copies_mu_);
          auto it = copies_.find(c.record.id);
          if (it == copies_.end()) continue;
          if (it->second.origin_down_since == std::chrono::steady_clock::time_point{}) {
            it->second.origin_down_since = now;
          } else {
            gone = now - it->second.origin_down_since >= options_.down_grace;
          }
        }
        if (gone) TakeOver(c.record.id, "node " + origin + " is gone with a write not yet uploaded").IgnoreError();
      } else {
        std::lock_guard<std::mutex> relock(copies_mu_);
        auto it = copies_.find(c.record.id);
        if (it != copies_.end()) it->second.origin_down_since = {};
      }
    }
    lock.lock();
  }
}

Status Node::StartDrain() {
  auto v = view();
  if (!v) return Status::InvalidArgument("this node is not in a cluster: `shoal flush --wait` is how it empties");
  if (v->placement().members().size() < 2 && !draining_) {
    return Status::PreconditionFailed("the last member of a cluster has nobody to hand its writes to: "
                                      "run `shoal flush --wait` and stop it");
  }
  std::lock_guard<std::mutex> lock(drain_mu_);
  if (drain_.state == "draining") return Status::Ok();
  if (drain_thread_.joinable()) drain_thread_.join();
  drain_ = DrainState{};
  drain_.state = "draining";
  draining_ = true;
  drain_thread_ = std::thread([this] { Drain(); });
  return Status::Ok();
}

Node::DrainState Node::GetDrainState() {
  std::lock_guard<std::mutex> lock(drain_mu_);
  return drain_;
}

Status Node::LeaveCluster() {
  if (options_.reader) return Status::Ok();  // never joined: nothing to leave
  if (etcd_) {
    SHOAL_RETURN_IF_ERROR(etcd_->Leave().WithContext("leaving the membership in etcd"));
    // Wait for our own watch to apply the change, so the hand-off below routes by it.
    for (int i = 0; i < 200; i++) {
      auto v = view();
      bool member = false;
      for (const auto& m : v->placement().members()) member |= m.id == id();
      if (!member) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::Unavailable("left etcd, but the change did not come back on the watch within 10 s");
  }
  auto v = view();
  std::vector<cluster::Peer> rest;
  for (const auto& p : v->peers()) {
    if (p.member.id != id()) rest.push_back(p);
  }
  SHOAL_ASSIGN_OR_RETURN(auto next, cluster::View::Build(v.get(), rest, v->epoch() + 1));
  AdoptView(next);
  std::string encoded = next->Encode();
  for (const auto& p : rest) {
    Status st = CallPeer(p, "POST", std::string(proto::kClusterViewPath), encoded);
    if (!st.ok()) std::fprintf(stderr, "shoald: could not tell %s that this node left: %s\n", p.member.id.c_str(), st.ToString().c_str());
  }
  return Status::Ok();
}

Status Node::SendWrite(const cluster::Peer& peer, const engine::UploadRecord& r, bool adopt) {
  for (const auto& key : WriteChunkKeys(r)) {
    SHOAL_ASSIGN_OR_RETURN(std::string data, chunks_->Get(key));
    SHOAL_RETURN_IF_ERROR(CallPeer(peer, "PUT", ReplicaChunkPath(r.id, r.url, key.index), data));
  }
  return CallPeer(peer, "POST", ReplicaCommitPath(r, adopt ? id() : r.origin, r.origin_incarnation, adopt));
}

Status Node::Delete(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  SHOAL_RETURN_IF_ERROR(store->ValidateKey(parsed.key));
  // Writes of it taken here and not yet uploaded: out of the upload queue first, then looked at
  // again (one that became durable meanwhile is deleted from the store below).
  for (const auto& listed : journal_->List()) {
    if (listed.url != url || !listed.origin.empty() || listed.state != engine::UploadRecord::State::kStaged) continue;
    uint64_t uploaded = uploader_->Cancel(listed.id);
    auto now = journal_->Get(listed.id);
    if (!now.ok() || now->state != engine::UploadRecord::State::kStaged) continue;
    ForgetWrite(*now, uploaded);
    DropCopiesOf(*now);  // the copies other nodes hold of it are not needed now
  }
  Invalidate(url);
  return store->Delete(parsed.key);
}

void Node::DropCopiesOf(const engine::UploadRecord& r, const std::string& except) {
  auto v = view();
  if (!v) return;
  for (const auto& holder : r.replicas) {
    std::string endpoint = v->EndpointOf(holder);
    if (endpoint.empty() || holder == except) continue;
    CallPeer(cluster::Peer{{holder, 0, ""}, endpoint}, "POST", ReplicaDropPath(r.id, r.url, ChunkCount(r.size, r.chunk_size)))
        .IgnoreError();  // a holder that missed it asks later, sees "unknown" under our incarnation, and drops it
  }
}

void Node::ForgetWrite(const engine::UploadRecord& r, uint64_t uploaded) {
  journal_->Remove(r.id).IgnoreError();
  for (const auto& key : WriteChunkKeys(r)) chunks_->Remove(key).IgnoreError();
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    auto it = meta_.find(r.url);
    if (it != meta_.end() && it->second.info.etag == LocalVersion(r.id)) meta_.erase(it);
  }
  ReleaseStaged(r.size - std::min(uploaded, r.size));
}

void Node::Drain() {
  auto set = [&](auto&& change) {
    std::lock_guard<std::mutex> lock(drain_mu_);
    change(drain_);
  };
  auto fail = [&](const Status& st) {
    std::fprintf(stderr, "shoald: drain failed: %s\n", st.ToString().c_str());
    set([&](DrainState& d) {
      d.state = "failed";
      d.error = st.message() + " (the node has left the cluster; run `shoal drain` again to hand off the rest)";
    });
  };
  Status st = LeaveCluster();
  if (!st.ok()) return fail(st);
  std::fprintf(stderr, "shoald: left the cluster; handing off what is not yet uploaded\n");
  // Until nothing is left: writes that were in progress when the drain began end meanwhile.
  for (int round = 0;; round++) {
    std::vector<engine::UploadRecord> todo;
    for (const auto& r : journal_->List()) {
      if (r.state == engine::UploadRecord::State::kStaged) todo.push_back(r);
    }
    set([&](DrainState& d) { d.left = todo.size(); });
    if (todo.empty() && writers_ == 0) break;
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto v = view();
    for (const auto& listed : todo) {
      if (closing_) return fail(Status::Unavailable("shoald is stopping"));
      // Take it out of the upload queue first, then look again: it may have become durable.
      bool own = listed.origin.empty();
      uint64_t uploaded = own ? uploader_->Cancel(listed.id) : 0;
      auto now = journal_->Get(listed.id);
      if (!now.ok() || now->state != engine::UploadRecord::State::kStaged) continue;
      const engine::UploadRecord& r = *now;
      // Own writes: to a holder of the copy (it has every chunk), else to the object's nodes
      // in the new epoch. Copies held for others: to another node (never back to the origin).
      struct Target {
        cluster::Peer peer;
        bool holder;
      };
      std::vector<Target> targets;
      if (own) {
        for (const auto& holder : r.replicas) {
          std::string endpoint = v->EndpointOf(holder);
          if (!endpoint.empty()) targets.push_back({cluster::Peer{{holder, 0, ""}, endpoint}, true});
        }
      }
      for (const auto& p : v->RouteOf(r.url, 0, static_cast<uint32_t>(v->placement().members().size())).replicas) {
        if (p.member.id != id() && p.member.id != r.origin) targets.push_back({p, false});
      }
      Status done = Status::Unavailable("no node to hand " + r.url + " to");
      std::string taker;
      for (const auto& t : targets) {
        done = t.holder ? CallPeer(t.peer, "POST", proto::Target(proto::kReplicaAdoptPath, {{proto::kIdParam, r.id}})) : SendWrite(t.peer, r, own);
        taker = t.peer.member.id;
        if (done.ok()) break;
        std::fprintf(stderr, "shoald: drain: %s to %s: %s\n", r.url.c_str(), t.peer.member.id.c_str(),
                     done.ToString().c_str());
      }
      if (!done.ok()) {
        if (own) uploader_->Add(r);  // still ours: upload it after all
        return fail(done);
      }
      if (own) {
        ForgetWrite(r, uploaded);
        DropCopiesOf(r, taker);  // other holders of copies: theirs is not needed now
        set([&](DrainState& d) {
          d.writes++;
          d.write_bytes += r.size;
        });
      } else {
        DropReplica(r.id, r.url, ChunkCount(r.size, r.chunk_size));
        set([&](DrainState& d) { d.copies++; });
      }
    }
  }
  set([&](DrainState& d) {
    d.state = "done";
    std::fprintf(stderr, "shoald: drained: %llu writes (%s) and %llu copies handed off; this node can be stopped\n",
                 static_cast<unsigned long long>(d.writes), FormatBytes(d.write_bytes).c_str(),
                 static_cast<unsigned long long>(d.copies));
  });
}

}  // namespace shoal::node
