#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace shoal::cluster {

// One node as placement sees it.
struct Member {
  std::string id;           // unique, stable across restarts (--node-id)
  uint32_t weight = 100;    // relative share of slots (e.g. proportional to NVMe size)
  std::string domain;       // failure domain (rack, zone); replicas prefer distinct ones
};

// Where chunks live: a chunk's 64-bit hash picks one of a fixed number of slots (a power of
// two, the same on every node and client), and a table maps each slot to its owner. Lookup is
// two array reads, with no metadata service on the read path.
//
// The table is not a function of the membership alone: each epoch's table is the previous
// one with the fewest slots moved that makes every node's share match its weight (counts
// within one slot of slots x weight / total weight). A joining node takes slots only from
// nodes above their new share, a leaving node's slots go only to nodes below theirs, so a
// change of one node in N moves about 1/N of the slots, the optimum. Because the step is
// deterministic (same previous table + same new membership = same table), every node and
// client that applies the same sequence of memberships (etcd revisions, or a static list)
// holds the same table, and a change costs a client only the membership event, not the table.
//
// Replicas: the owner of a slot is its first replica; replica k is found by probing slots at
// a fixed odd stride from it for an owner not already chosen, in a failure domain not yet
// used when one is available within a bounded number of probes. Not thread-safe to Apply
// while others read; readers share a const table.
class Placement {
 public:
  static constexpr uint32_t kDefaultSlotBits = 20;  // 1M slots: 4 MiB, 100+ slots per node to 10k nodes

  // An empty table of 2^slot_bits slots (10..26 bits) at epoch 0.
  static Result<Placement> Create(uint32_t slot_bits = kDefaultSlotBits);

  // A table as another node holds it (its members in id order, its slot owners as indexes
  // into them), e.g. received from a peer. Checks that it is well formed.
  static Result<Placement> FromOwners(uint32_t slot_bits, std::vector<Member> members,
                                      std::vector<uint32_t> owners, uint64_t epoch);

  // Moves to `members` (the whole new membership, any order; ids unique, weights > 0) as epoch
  // `epoch`. Returns how many slots changed owner.
  Result<uint64_t> Apply(const std::vector<Member>& members, uint64_t epoch);

  uint32_t SlotOf(uint64_t chunk_hash) const { return static_cast<uint32_t>(chunk_hash >> (64 - bits_)); }
  // Index into members() of the slot's owner. Requires a non-empty membership.
  uint32_t Owner(uint32_t slot) const { return owner_[slot]; }
  // Up to `count` distinct members for `slot`, the owner first.
  std::vector<uint32_t> Replicas(uint32_t slot, uint32_t count) const;

  const std::vector<Member>& members() const { return members_; }
  const std::vector<uint32_t>& owners() const { return owner_; }
  uint32_t slot_bits() const { return bits_; }
  uint64_t epoch() const { return epoch_; }
  uint32_t slots() const { return static_cast<uint32_t>(owner_.size()); }
  // Slots owned by each member (index as in members()).
  std::vector<uint64_t> SlotCounts() const;
  // Bytes the table holds (the slot array and the member list).
  uint64_t MemoryBytes() const;

 private:
  explicit Placement(uint32_t bits) : bits_(bits), owner_(size_t{1} << bits, kNone) {}
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t bits_;
  std::vector<uint32_t> owner_;   // slot -> index into members_
  std::vector<Member> members_;   // sorted by id
  uint64_t epoch_ = 0;
};

// The 64-bit hash placement uses for a chunk id (any string; the node uses ChunkKey::Id()).
uint64_t ChunkHash(const std::string& chunk_id);

}  // namespace shoal::cluster
