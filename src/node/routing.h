#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "cluster/etcd.h"
#include "cluster/view.h"
#include "common/byte_sink.h"
#include "common/status.h"
#include "net/http_client.h"
#include "node/metrics.h"
#include "node/options.h"
#include "node/peer_health.h"

namespace shoal::node {

// The node's place in the cluster: the view it routes by (static --peers, or a membership
// followed in etcd), joining and leaving it, and every call to another node (one HTTP client
// with its connections, the token, and which peers failed lately and are skipped for a while).
//
// Thread-safety: every method may be called from any thread. view_mu_ guards the view and the
// peers marked down; refresh_mu_ the background refresh of a stale view. No lock is held
// while another node is called. The etcd watch and the refresh thread call only into this
// class; the destructor stops both.
class ClusterRouting {
 public:
  ClusterRouting(const NodeOptions& options, NodeMetrics* metrics)
      : options_(options), metrics_(metrics), peers_(options.peer_connections) {}
  ~ClusterRouting();

  // Takes this node's place in the static membership (options.peers): the view comes from a
  // live peer when one has it (adopted as is when the membership is the same, else the next
  // epoch is built from it and pushed to every peer), or is built afresh. With etcd, registers
  // there as `endpoint` (HOST:PORT where it listens) and follows the membership from its first
  // revision. A node on its own: nothing to do.
  Status Join(const std::string& endpoint);
  // Leaves the membership (a drain): this node owns no chunks from the next epoch on.
  Status Leave();
  // The cluster as this node sees it; null for a node on its own.
  std::shared_ptr<const cluster::View> view();
  // Whether this node is to be in a cluster (--peers, --etcd) and has no view of it yet (with
  // etcd: has not replayed its history up to the epoch current when it joined): it serves what
  // its disk holds while it joins (a restart in place), but does not know yet which chunks are
  // whose.
  bool Joining();
  // The view; while Joining(), waits up to `at_most` for the first one.
  std::shared_ptr<const cluster::View> AwaitView(std::chrono::milliseconds at_most);
  // Takes `v` if it is a newer epoch than ours (a peer pushed it); whether it did.
  bool AdoptView(std::shared_ptr<const cluster::View> v);
  // A request or answer carried epoch `seen`: if it is newer than ours (a push we missed),
  // fetch the newest view from the members, in the background. With etcd the watch catches up.
  void SawEpoch(uint64_t seen);
  // Applies one membership change from etcd (the watch thread calls it).
  void OnMembership(const cluster::MembershipEvent& event);

  // Whether peer `id` failed lately and is skipped for now (peer_health.h).
  bool PeerDown(const std::string& id);
  // A request to peer `id` failed with `why` (counted in shoal_peer_failures_total): it is
  // skipped for a few seconds if nothing listens there, or after a few failures in a row.
  void PeerFailed(const std::string& id, const Status& why);
  // Peer `id` answered a request (any status): its failures in a row start again.
  void PeerAnswered(const std::string& id);
  // Peer `id` sent a request saying it is up (it started again): no longer skipped.
  void PeerHeard(const std::string& id);
  // This node stops to restart in place (SIGTERM or SIGINT; a drain leaves instead): tells
  // the other members of its view, so that reads of its chunks wait for it to come back
  // (RestartWait()) rather than read them from the object store. One request per member,
  // 1 s at most each; a member not told reads from the store meanwhile, as after a crash.
  // Nothing to do for a node alone, a reader, or a node no longer in its view (drained).
  void AnnounceRestart();
  // How long others wait for this node once it said it restarts: --down-grace (with etcd its
  // lease, within which it rejoins), at most kMaxRestartWait (a waiting read must end well
  // before a client's low-speed limit, 60 s).
  std::chrono::milliseconds RestartWait() const;
  static constexpr std::chrono::seconds kMaxRestartWait{30};
  // Peer `id` said it restarts in place, to be back within `within` (POST /v1/cluster/restarting).
  void PeerRestarting(const std::string& id, std::chrono::milliseconds within);
  // Whether reads of peer `id`'s chunks ask it rather than the store (PeerHealth::Awaited): it
  // said it is restarting, its time is not up, and it has not failed again since it came back.
  bool PeerAwaited(const std::string& id);
  // For a read that could not reach peer `id`: whether it is away (PeerHealth::Away: awaited,
  // and not back yet), to be asked again in a moment; false once this node is closing.
  bool PeerAway(const std::string& id);
  // One request to another node; its 2xx body in *answer. kNotFound for 404, kUnavailable when
  // it cannot be reached (PeerFailed), else the node's own error (net/node_errors).
  Status Call(const cluster::Peer& peer, const std::string& method, const std::string& path,
              std::string_view body = {}, std::string* answer = nullptr,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // A prepared request to a node (proto::ChunkRequest), its body into `sink`.
  Status Send(const http::Request& req, http::Response* resp, const ByteSink* sink = nullptr);
  // Calls to other nodes that waited for a free connection to theirs (--peer-connections).
  uint64_t connection_waits() { return peers_.waits(); }

  // With etcd: whether this node can see and renew its membership (EtcdMembership::Health);
  // otherwise (static peers, a node alone) always healthy.
  cluster::EtcdHealth MembershipHealth();

  const std::string& id() const { return options_.node_id; }
  // The HOST:PORT other nodes reach this one at (set by Join).
  const std::string& advertise() const { return advertise_; }

 private:
  Status JoinEtcd(const std::string& endpoint);
  // Waits (10 s at most) until the watch has replayed etcd's membership up to its current
  // epoch: until then the view is a step of the history, whose owners are not today's.
  void CatchUp();
  std::string LeaseFile() const;
  int64_t ReadLeaseFile() const;  // 0: none for this node
  void WriteLeaseFile(int64_t lease) const;

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  std::string advertise_;  // set once, by Join, before the node serves
  http::Client peers_;     // connections to other nodes, at most options.peer_connections to each
  std::atomic<bool> closing_{false};
  std::atomic<bool> caught_up_{options_.etcd.empty()};  // with etcd, set by CatchUp
  std::mutex view_mu_;
  std::shared_ptr<const cluster::View> view_;  // guarded by view_mu_
  PeerHealth health_;
  std::mutex refresh_mu_;
  std::chrono::steady_clock::time_point last_refresh_;  // guarded by refresh_mu_
  bool refreshing_view_ = false;                        // guarded by refresh_mu_
  std::thread refresh_thread_;                          // guarded by refresh_mu_
  // Set by JoinEtcd on the thread that joins (the node serves meanwhile) and reset by the
  // destructor, first (its watch calls OnMembership). Other threads (requests: /readyz, a
  // drain) read it only through etcd_live_, published once it is set.
  std::unique_ptr<cluster::EtcdMembership> etcd_;
  std::atomic<cluster::EtcdMembership*> etcd_live_{nullptr};
};

}  // namespace shoal::node
