#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/membership.h"
#include "cluster/placement.h"
#include "common/status.h"

namespace shoal::cluster {

// The slot of chunk `index` of the object at `url`: the object's URL hashes to a slot, and its
// chunks take the slots after it in turn. Consecutive slots mostly belong to different nodes
// (a table is filled round-robin, and a join takes evenly spread slots), so a sequential
// reader's chunks rotate over the owners and every owner is busy at once. Independent of the
// object's version, so a new version lands on the same nodes as the old one.
uint32_t ChunkSlot(const Placement& placement, std::string_view url, uint64_t index);

// Where one chunk lives.
struct Route {
  std::vector<Peer> replicas;    // the owner first, then the next-ranked nodes
  std::optional<Peer> previous;  // the owner under the previous epoch, when it was another node
};

// One epoch of the cluster as a node or client routes by: the placement table, where each
// member is reached, and the table of the epoch before (so a new owner can ask the old one
// before the object store). Immutable; a membership change builds the next View.
class View {
 public:
  // The first epoch of a cluster, or the step from `prev` to `peers` (Placement::Apply: the
  // fewest slots moved). `slot_bits` is used only when there is no `prev`.
  static Result<std::shared_ptr<const View>> Build(const View* prev, const std::vector<Peer>& peers,
                                                   uint64_t epoch,
                                                   uint32_t slot_bits = Placement::kDefaultSlotBits);
  // What Encode() wrote (e.g. received from a peer).
  static Result<std::shared_ptr<const View>> Decode(std::string_view bytes);
  // Binary form: a JSON header line (epoch, members and endpoints) then the owner arrays as
  // little-endian uint32 (4 bytes per slot; the previous table too, unless `current_only`).
  std::string Encode(bool current_only = false) const;

  Route RouteOf(std::string_view url, uint64_t index, uint32_t replicas) const;
  uint64_t epoch() const { return current_.epoch(); }
  const Placement& placement() const { return current_; }
  const Placement* previous() const { return previous_ ? &*previous_ : nullptr; }
  std::vector<Peer> peers() const;  // current members with endpoints, in id order
  std::string EndpointOf(const std::string& id) const;
  // Whether `peers` is exactly this view's membership (ids, endpoints, weights, domains).
  bool SameMembers(const std::vector<Peer>& peers) const;

 private:
  View(Placement current, std::optional<Placement> previous) : current_(std::move(current)), previous_(std::move(previous)) {}
  Peer PeerOf(const Placement& p, uint32_t index) const;

  Placement current_;
  std::optional<Placement> previous_;
  std::unordered_map<std::string, std::string> endpoints_;  // id -> HOST:PORT, both epochs' members
};

}  // namespace shoal::cluster
