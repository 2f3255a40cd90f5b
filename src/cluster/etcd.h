#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "common/status.h"

namespace shoal::cluster {

// The membership as of one etcd revision.
struct MembershipEvent {
  uint64_t revision = 0;    // etcd's revision of the change (the epoch)
  std::vector<Peer> peers;  // the whole membership after it, sorted by id
  bool resync = false;      // history before this was compacted away: a full state, not one step
};

// What the keep-alive last saw of etcd (EtcdMembership::Health).
struct EtcdHealth {
  bool joined = false;
  bool reachable = true;    // the last renewal was answered
  bool lease_held = true;   // this member's key is in etcd under a live lease
  std::string problem;      // empty while both hold; else what is wrong, for /readyz and people
  uint64_t failed_renewals = 0;  // renewals etcd did not answer, since start
  uint64_t lease_losses = 0;     // times the lease was found expired (and registered again)
};

// A membership kept in etcd (v3, through its JSON gateway): one key per member, prefix + id,
// whose value is {"endpoint","weight","domain"}, attached to the member's lease so that a node
// that stops renewing it drops out after its ttl.
//
// The epoch of a membership is the revision of the latest change under the prefix: a put's
// mod_revision, and for a delete (Leave, an expired lease) the revision of the delete, as the
// watch history reports it. Writes elsewhere in etcd never change it. Every client that
// follows the same history sees the same sequence of (epoch, membership), which is what
// Placement::Apply needs to build the same table everywhere.
//
// Thread-safe. Join/Leave/Current/Watch block on etcd (each call at most a few seconds per
// endpoint); the keep-alive and the watches run on threads of their own.
class EtcdMembership {
 public:
  // endpoints: "http://127.0.0.1:2379[,http://...]" (tried in order; a call fails over to the
  // next on a connection error or an unavailable member, and later calls start from the one
  // that answered). prefix: the members' folder, "/shoal/members/" (starts and ends with '/').
  // kInvalidArgument for a bad list or prefix; kUnavailable naming the endpoints when none
  // answers.
  static Result<std::unique_ptr<EtcdMembership>> Connect(const std::string& endpoints,
                                                         const std::string& prefix);
  // Stops the keep-alive and the watches (in-flight requests are cut, threads joined). Does
  // not revoke the lease: a member destroyed without Leave() drops out when its ttl runs out,
  // as after a crash. Must not be called from an on_change callback.
  ~EtcdMembership();
  EtcdMembership(const EtcdMembership&) = delete;
  EtcdMembership& operator=(const EtcdMembership&) = delete;

  // Registers `self` at prefix + id under a lease of `ttl` (at least 1 s; etcd may round it
  // up), renewed by a thread every third of it until Leave() or destruction. If the lease is
  // lost (etcd unreachable for longer than ttl), the thread registers again under a new one.
  // kAlreadyExists if another live lease holds that id (a node restarted within its ttl gets
  // this too until the old key expires); kInvalidArgument for a bad id (empty, or with '/' or
  // control characters), a bad ttl, or when already joined.
  // previous_lease: the lease_id() of this member's previous run (0: none). When that lease is
  // still alive and holds the member's key with the same value (a restart in place within the
  // ttl), it is taken over: no new key, no membership change, no epoch.
  Status Join(const Peer& self, std::chrono::seconds ttl, int64_t previous_lease = 0);
  // The lease this member is registered under (0 when not joined); it changes when a lost
  // lease is replaced.
  int64_t lease_id();
  // Stops the keep-alive and revokes the lease: the key goes at once. Ok when not joined.
  Status Leave();
  // Whether this member can see and renew its membership now: a renewal that etcd does not
  // answer marks it unreachable, an expired lease marks it lost, until a renewal (or a new
  // registration) succeeds. Each change is logged once (component "etcd").
  EtcdHealth Health();

  // The current membership and its epoch. When the newest member key is older than etcd's
  // revision, deletes may have come after it: their revisions are found by replaying etcd's
  // history from that key on (a watch over the whole keyspace up to the revision just read),
  // so the cost grows with the writes made anywhere in etcd since the last join. If that
  // history is compacted, the epoch is the compaction revision (the oldest the store can
  // vouch for) unless a later change is known: deterministic and never behind a revision a
  // watcher was given, but a compaction may advance the epoch of an unchanged membership.
  Result<MembershipEvent> Current();

  // Calls on_change, on a thread of its own, with the membership after every revision that
  // changed the prefix, in revision order (a transaction that changed several keys is one
  // event): first those after `from_revision` (0: all retained history from revision 1, so a
  // newcomer sees every step), then live ones. If the history it needs is compacted, delivers
  // the current state once with resync = true and goes on live from there. A dropped stream is
  // reopened (failing over between endpoints, with back-off) from the revision after the last
  // one delivered: nothing is lost or repeated. Keys whose value is not a valid member are not
  // members (but their changes still make events). kInvalidArgument if from_revision is ahead
  // of etcd; kUnavailable if etcd cannot be reached to read the state at from_revision.
  Status Watch(uint64_t from_revision, std::function<void(const MembershipEvent&)> on_change);

 private:
  struct Impl;
  explicit EtcdMembership(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::cluster
