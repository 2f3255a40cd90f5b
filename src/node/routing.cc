// The node's part in a cluster: its view of the membership, joining and leaving it, and the
// calls it makes to other nodes.
#include "node/routing.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log.h"
#include "net/node_errors.h"
#include "net/node_protocol.h"
#include "net/retry.h"

namespace shoal::node {

namespace {
// How long a peer that failed a request is skipped (reads go to the store meanwhile).
// Between attempts to join etcd while this node's previous lease lapses.
constexpr std::chrono::milliseconds kJoinBackoff{250};
constexpr std::chrono::milliseconds kJoinMaxBackoff{1000};
}  // namespace

ClusterRouting::~ClusterRouting() {
  closing_ = true;  // no new refreshes
  std::thread refresh;
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);  // the refresh takes it as it ends: join unlocked
    refresh = std::move(refresh_thread_);
  }
  if (refresh.joinable()) refresh.join();
  // The lease is left to expire, as in a crash, unless this node comes back within it (a
  // restart in place): the file names the lease it holds now.
  if (etcd_ && etcd_->lease_id() != 0) WriteLeaseFile(etcd_->lease_id());
  etcd_live_ = nullptr;
  etcd_.reset();  // no more membership callbacks
}

std::shared_ptr<const cluster::View> ClusterRouting::view() {
  std::lock_guard<std::mutex> lock(view_mu_);
  return view_;
}

bool ClusterRouting::Joining() {
  return (!options_.peers.empty() || !options_.etcd.empty()) && (!caught_up_ || !view());
}

std::shared_ptr<const cluster::View> ClusterRouting::AwaitView(std::chrono::milliseconds at_most) {
  auto until = std::chrono::steady_clock::now() + at_most;
  while (Joining() && !closing_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return view();
}

bool ClusterRouting::AdoptView(std::shared_ptr<const cluster::View> v) {
  std::lock_guard<std::mutex> lock(view_mu_);
  if (view_ && view_->epoch() >= v->epoch()) return false;
  Logf(LogLevel::kInfo, "cluster epoch %llu: %zu members\n", static_cast<unsigned long long>(v->epoch()),
               v->placement().members().size());
  view_ = std::move(v);
  return true;
}

void ClusterRouting::SawEpoch(uint64_t seen) {
  auto v = view();
  if (!options_.etcd.empty() || closing_ || !v || seen <= v->epoch()) return;  // etcd's watch catches up
  std::lock_guard<std::mutex> lock(refresh_mu_);
  auto now = std::chrono::steady_clock::now();
  if (refreshing_view_ || now - last_refresh_ < std::chrono::seconds(5)) return;  // at most every 5 s
  if (refresh_thread_.joinable()) refresh_thread_.join();  // the last refresh, finished
  refreshing_view_ = true;
  last_refresh_ = now;
  Logf(LogLevel::kInfo, "a request carried epoch %llu, newer than this node's %llu: asking the members\n",
               static_cast<unsigned long long>(seen), static_cast<unsigned long long>(v->epoch()));
  refresh_thread_ = std::thread([this, v, seen] {
    for (const auto& p : v->peers()) {
      if (p.member.id == id() || closing_) continue;
      std::string body;
      if (!Call(p, "GET", std::string(proto::kClusterViewPath), {}, &body, std::chrono::seconds(5)).ok()) continue;
      auto fresh = cluster::View::Decode(body);
      if (fresh.ok()) AdoptView(*fresh);  // only if newer
      if (view()->epoch() >= seen) break;
    }
    std::lock_guard<std::mutex> done(refresh_mu_);
    refreshing_view_ = false;
  });
}

Status ClusterRouting::Join(const std::string& endpoint) {
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
      Logf(LogLevel::kWarn, "%s sent a bad cluster view: %s\n", p.member.id.c_str(), v.status().ToString().c_str());
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
        Logf(LogLevel::kInfo, "following the cluster's epoch %llu (%zu members), not --peers (%zu): "
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
    Logf(LogLevel::kInfo, "joining the cluster's epoch %llu (%zu members) as epoch %llu\n",
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
      Logf(LogLevel::kWarn, "could not tell %s (%s) about epoch %llu: %s\n", p.member.id.c_str(),
                   p.endpoint.c_str(), static_cast<unsigned long long>(next->epoch()),
                   st.ok() ? resp.body.c_str() : st.ToString().c_str());
    }
  }
  return Status::Ok();
}

// The lease a previous run of this node held, so that a restart in place within its ttl takes
// it over (EtcdMembership::Join); the data directory is this node's alone (locked).
std::string ClusterRouting::LeaseFile() const {
  return options_.data_dir + "/etcd-lease";
}

int64_t ClusterRouting::ReadLeaseFile() const {
  std::ifstream in(LeaseFile());
  std::string key;
  int64_t lease = 0;
  if (!(in >> key >> lease) || key != options_.etcd_prefix + "members/" + options_.node_id) return 0;
  return lease;
}

void ClusterRouting::WriteLeaseFile(int64_t lease) const {
  std::string tmp = LeaseFile() + ".tmp";
  std::ofstream(tmp) << options_.etcd_prefix << "members/" << options_.node_id << " " << lease << "\n";
  std::rename(tmp.c_str(), LeaseFile().c_str());
}

cluster::EtcdHealth ClusterRouting::MembershipHealth() {
  cluster::EtcdMembership* etcd = etcd_live_;
  return etcd != nullptr ? etcd->Health() : cluster::EtcdHealth{};
}

Status ClusterRouting::JoinEtcd(const std::string& endpoint) {
  SHOAL_ASSIGN_OR_RETURN(etcd_, cluster::EtcdMembership::Connect(options_.etcd, options_.etcd_prefix + "members/"));
  // Every node replays the membership's whole history, so all build the same tables.
  etcd_live_ = etcd_.get();
  SHOAL_RETURN_IF_ERROR(etcd_->Watch(0, [this](const cluster::MembershipEvent& e) { OnMembership(e); }));
  if (options_.reader) {  // follows, never registers
    CatchUp();
    return Status::Ok();
  }
  cluster::Peer self{cluster::Member{options_.node_id, options_.weight,
                                     options_.domain.empty() ? options_.node_id : options_.domain},
                     endpoint};
  // The lease is the grace a node that stops answering keeps its slots for.
  auto ttl = std::max<std::chrono::seconds>(std::chrono::seconds(1),
                                            std::chrono::duration_cast<std::chrono::seconds>(options_.down_grace));
  auto deadline = std::chrono::steady_clock::now() + ttl + std::chrono::seconds(10);
  net::Backoff backoff(kJoinBackoff, kJoinMaxBackoff);
  const int64_t previous = ReadLeaseFile();
  for (bool told = false;;) {
    Status st = etcd_->Join(self, ttl, previous);
    if (st.ok()) {
      int64_t lease = etcd_->lease_id();
      if (previous != 0 && lease == previous) {
        Logf(LogLevel::kInfo, "rejoined the membership under this node's previous lease (%llx): no change",
             static_cast<unsigned long long>(lease));
      }
      WriteLeaseFile(lease);
      CatchUp();
      return Status::Ok();
    }
    if (st.code() != Code::kAlreadyExists || std::chrono::steady_clock::now() > deadline) {
      return st.WithContext("joining the cluster in etcd (" + options_.etcd + ")");
    }
    if (!told) {  // this node restarted within its lease: wait for the old one to lapse
      Logf(LogLevel::kWarn, "%s; waiting for that lease to expire (up to %llds)\n", st.message().c_str(),
                   static_cast<long long>(ttl.count()));
      told = true;
    }
    std::this_thread::sleep_for(backoff.Next());
  }
}

void ClusterRouting::CatchUp() {
  auto now = etcd_->Current();
  if (now.ok() && now->peers.empty()) {  // no member yet (a reader started first): nothing to replay
    caught_up_ = true;
    return;
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (now.ok() && !closing_ && std::chrono::steady_clock::now() < until) {
    auto v = view();
    if (v && v->epoch() >= now->revision) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto v = view();
  if (!now.ok() || !v || v->epoch() < now->revision) {
    Logf(LogLevel::kWarn, "the membership's history (epoch %llu) was not replayed within 10 s: routing by epoch %llu%s",
         static_cast<unsigned long long>(now.ok() ? now->revision : 0), static_cast<unsigned long long>(v ? v->epoch() : 0),
         now.ok() ? "" : (" (" + now.status().message() + ")").c_str());
  }
  caught_up_ = true;
}

void ClusterRouting::OnMembership(const cluster::MembershipEvent& e) {
  if (e.peers.empty()) return;  // nobody left: keep routing by the last table
  auto current = view();
  const cluster::View* base = e.resync ? nullptr : current.get();
  if (e.resync) {
    // The history is gone: take this epoch's table from a member that has it.
    for (const auto& p : e.peers) {
      if (p.member.id == id()) continue;
      std::string body;
      if (!Call(p, "GET", std::string(proto::kClusterViewPath), {}, &body).ok()) continue;
      auto v = cluster::View::Decode(body);
      if (v.ok() && (*v)->epoch() == e.revision && (*v)->SameMembers(e.peers)) {
        AdoptView(*v);
        return;
      }
    }
    Logf(LogLevel::kInfo, "etcd history is compacted and no member has epoch %llu: building it afresh\n",
                 static_cast<unsigned long long>(e.revision));
  }
  auto next = cluster::View::Build(base, e.peers, e.revision);
  if (!next.ok()) {
    Logf(LogLevel::kWarn, "cannot apply membership epoch %llu: %s\n", static_cast<unsigned long long>(e.revision),
                 next.status().ToString().c_str());
    return;
  }
  AdoptView(*next);
}

bool ClusterRouting::PeerDown(const std::string& id) { return health_.Down(id); }

void ClusterRouting::PeerFailed(const std::string& id, const Status& why) {
  metrics_->peer_failures++;
  if (health_.Failed(id, why)) {
    metrics_->peers_marked_down++;
    Logf(LogLevel::kWarn, "node %s skipped for %lld s: %s", id.c_str(),
         static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(PeerHealth::kDownFor).count()),
         why.message().c_str());
  }
}

void ClusterRouting::PeerAnswered(const std::string& id) { health_.Answered(id); }
void ClusterRouting::PeerHeard(const std::string& id) { health_.Heard(id); }

std::chrono::milliseconds ClusterRouting::RestartWait() const {
  return std::min<std::chrono::milliseconds>(options_.down_grace, kMaxRestartWait);
}

void ClusterRouting::AnnounceRestart() {
  auto v = view();
  if (options_.reader || !v) return;
  bool member = false;
  for (const auto& m : v->placement().members()) member |= m.id == id();
  if (!member) return;
  const auto wait = RestartWait();
  const std::string path = proto::Target(proto::kRestartingPath,
                                         {{proto::kIdParam, id()}, {proto::kWithinParam, std::to_string(wait.count())}});
  int told = 0;
  for (const auto& p : v->peers()) {
    if (p.member.id == id()) continue;
    Status st = Call(p, "POST", path, {}, nullptr, std::chrono::seconds(1));
    if (st.ok()) {
      told++;
    } else {
      Logf(LogLevel::kWarn, "could not tell %s that this node restarts: %s", p.member.id.c_str(), st.ToString().c_str());
    }
  }
  Logf(LogLevel::kInfo, "told %d of %zu members that this node restarts in place: they wait up to %lld ms for it", told,
       v->peers().size() - 1, static_cast<long long>(wait.count()));
}

void ClusterRouting::PeerRestarting(const std::string& id, std::chrono::milliseconds within) {
  within = std::min<std::chrono::milliseconds>(within, kMaxRestartWait);
  health_.Restarting(id, within);
  Logf(LogLevel::kInfo, "node %s restarts in place: reads of its chunks wait for it (up to %lld ms)", id.c_str(),
       static_cast<long long>(within.count()));
}

bool ClusterRouting::PeerAwaited(const std::string& id) { return health_.Awaited(id); }

bool ClusterRouting::PeerAway(const std::string& id) { return !closing_ && health_.Away(id); }

Status ClusterRouting::Call(const cluster::Peer& peer, const std::string& method, const std::string& path,
                      std::string_view body, std::string* answer, std::chrono::milliseconds timeout) {
  http::Request req = proto::NodeRequest(method, peer.endpoint, path, options_.token);
  req.body = body;
  req.timeout = timeout;
  http::Response resp;
  Status st = peers_.Send(req, &resp);
  if (!st.ok()) {
    PeerFailed(peer.member.id, st);
    return Status::Unavailable("node " + peer.member.id + " (" + peer.endpoint + ") cannot be reached: " + st.message());
  }
  PeerAnswered(peer.member.id);
  if (resp.status == 404) return Status::NotFound(method + " " + path + " at node " + peer.member.id + ": " + resp.body);
  if (resp.status / 100 != 2) {
    metrics_->peer_failures++;
    return http::StatusFromResponse(resp, method + " " + path + " at node " + peer.member.id,
                                    http::NodeErrors());
  }
  if (answer) *answer = std::move(resp.body);
  return Status::Ok();
}

Status ClusterRouting::Leave() {
  if (options_.reader) return Status::Ok();  // never joined: nothing to leave
  if (cluster::EtcdMembership* etcd = etcd_live_) {
    SHOAL_RETURN_IF_ERROR(etcd->Leave().WithContext("leaving the membership in etcd"));
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
    Status st = Call(p, "POST", std::string(proto::kClusterViewPath), encoded);
    if (!st.ok()) Logf(LogLevel::kWarn, "could not tell %s that this node left: %s\n", p.member.id.c_str(), st.ToString().c_str());
  }
  return Status::Ok();
}

Status ClusterRouting::Send(const http::Request& req, http::Response* resp, const ByteSink* sink) {
  return peers_.Send(req, resp, sink);
}

}  // namespace shoal::node
