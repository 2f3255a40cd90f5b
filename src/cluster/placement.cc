#include "cluster/placement.h"

#include <xxhash.h>

#include <algorithm>
#include <numeric>
#include <unordered_map>

namespace shoal::cluster {

uint64_t ChunkHash(const std::string& chunk_id) { return XXH3_64bits(chunk_id.data(), chunk_id.size()); }

Result<Placement> Placement::Create(uint32_t slot_bits) {
  if (slot_bits < 10 || slot_bits > 26) {
    return Status::InvalidArgument("the slot space must be 2^10 to 2^26 slots, not 2^" + std::to_string(slot_bits));
  }
  return Placement(slot_bits);
}

Result<Placement> Placement::FromOwners(uint32_t slot_bits, std::vector<Member> members,
                                       std::vector<uint32_t> owners, uint64_t epoch) {
  SHOAL_ASSIGN_OR_RETURN(Placement p, Create(slot_bits));
  if (owners.size() != p.owner_.size()) {
    return Status::Corruption("a table of 2^" + std::to_string(slot_bits) + " slots came with " +
                              std::to_string(owners.size()) + " owners");
  }
  for (size_t i = 1; i < members.size(); i++) {
    if (!(members[i - 1].id < members[i].id)) return Status::Corruption("table members are not sorted by id");
  }
  for (uint32_t o : owners) {
    if (o >= members.size()) return Status::Corruption("a slot's owner is outside the member list");
  }
  p.owner_ = std::move(owners);
  p.members_ = std::move(members);
  p.epoch_ = epoch;
  return p;
}

Result<uint64_t> Placement::Apply(const std::vector<Member>& members_in, uint64_t epoch) {
  std::vector<Member> members = members_in;
  std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
  for (size_t i = 0; i < members.size(); i++) {
    if (members[i].id.empty()) return Status::InvalidArgument("a member has an empty id");
    if (members[i].weight == 0) return Status::InvalidArgument("member " + members[i].id + " has weight 0");
    if (i > 0 && members[i].id == members[i - 1].id) {
      return Status::InvalidArgument("member id " + members[i].id + " appears twice");
    }
  }
  if (members.size() >= slots()) {
    return Status::InvalidArgument(std::to_string(members.size()) + " members need more than " +
                                   std::to_string(slots()) + " slots");
  }
  const uint64_t n_slots = slots();
  const size_t n = members.size();

  // Targets: slots x weight / total, rounded down, the remainder to the largest fractions.
  uint64_t total = 0;
  for (const auto& m : members) total += m.weight;
  std::vector<uint64_t> target(n), frac(n);
  uint64_t assigned = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned __int128 exact = static_cast<unsigned __int128>(n_slots) * members[i].weight;
    target[i] = static_cast<uint64_t>(exact / total);
    frac[i] = static_cast<uint64_t>(exact % total);
    assigned += target[i];
  }
  if (n > 0) {
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return frac[a] != frac[b] ? frac[a] > frac[b] : a < b; });
    for (uint64_t k = 0; k < n_slots - assigned; k++) target[order[k]]++;
  }

  // Old member index -> new index (kNone: removed).
  std::unordered_map<std::string, uint32_t> index_of;
  for (size_t i = 0; i < n; i++) index_of[members[i].id] = static_cast<uint32_t>(i);
  std::vector<uint32_t> remap(members_.size(), kNone);
  for (size_t i = 0; i < members_.size(); i++) {
    auto it = index_of.find(members_[i].id);
    if (it != index_of.end()) remap[i] = it->second;
  }
  std::vector<uint64_t> count(n, 0);
  for (auto& o : owner_) {
    o = o == kNone ? kNone : remap[o];
    if (o != kNone) count[o]++;
  }

  // Release: slots of removed members, and the excess of members above their target, spread
  // evenly over each one's slots (the k-th of its h slots goes when floor(k e / h) steps, for
  // an excess e), so that the slots a joining node takes are spread over the whole table too.
  std::vector<uint64_t> excess(n, 0), held = count, seen(n, 0);
  for (size_t i = 0; i < n; i++) excess[i] = count[i] > target[i] ? count[i] - target[i] : 0;
  std::vector<uint32_t> pool;
  for (uint32_t s = 0; s < n_slots; s++) {
    uint32_t& o = owner_[s];
    if (o != kNone && excess[o] > 0) {
      uint64_t k = seen[o]++;
      if ((k + 1) * excess[o] / held[o] != k * excess[o] / held[o]) {
        count[o]--;
        o = kNone;
      }
    }
    if (o == kNone) pool.push_back(s);
  }
  // Assign: pool slots in order, round-robin over the members below their target, so each
  // member's new slots spread over the slot space.
  std::vector<uint32_t> needy;
  for (uint32_t i = 0; i < n; i++) {
    if (count[i] < target[i]) needy.push_back(i);
  }
  size_t cursor = 0;
  for (uint32_t s : pool) {
    if (needy.empty()) break;  // only with no members at all
    uint32_t i = needy[cursor];
    owner_[s] = i;
    if (++count[i] == target[i]) {
      needy[cursor] = needy.back();
      needy.pop_back();
      if (cursor >= needy.size()) cursor = 0;
    } else {
      cursor = (cursor + 1) % needy.size();
    }
  }
  members_ = std::move(members);
  epoch_ = epoch;
  return static_cast<uint64_t>(n == 0 ? 0 : pool.size());
}

std::vector<uint32_t> Placement::Replicas(uint32_t slot, uint32_t want) const {
  std::vector<uint32_t> out;
  if (members_.empty() || want == 0) return out;
  want = std::min<uint32_t>(want, static_cast<uint32_t>(members_.size()));
  out.push_back(owner_[slot]);
  const uint32_t mask = slots() - 1;
  const uint32_t stride = static_cast<uint32_t>(0x9E3779B97F4A7C15ull >> (64 - bits_)) | 1;  // odd: visits every slot
  const uint32_t max_probes = 32 * want;
  auto chosen = [&](uint32_t m) { return std::find(out.begin(), out.end(), m) != out.end(); };
  auto domain_used = [&](uint32_t m) {
    for (uint32_t c : out) {
      if (members_[c].domain == members_[m].domain) return true;
    }
    return false;
  };
  // First a new failure domain; failing that within the probe budget, any other member.
  for (int relax = 0; relax < 2 && out.size() < want; relax++) {
    uint32_t s = slot;
    for (uint32_t p = 0; p < max_probes && out.size() < want; p++) {
      s = (s + stride) & mask;
      uint32_t m = owner_[s];
      if (chosen(m) || (relax == 0 && domain_used(m))) continue;
      out.push_back(m);
    }
  }
  // Tiny clusters where probing missed a member: take the rest in index order.
  for (uint32_t m = 0; m < members_.size() && out.size() < want; m++) {
    if (!chosen(m)) out.push_back(m);
  }
  return out;
}

std::vector<uint64_t> Placement::SlotCounts() const {
  std::vector<uint64_t> counts(members_.size(), 0);
  for (uint32_t o : owner_) {
    if (o != kNone) counts[o]++;
  }
  return counts;
}

uint64_t Placement::MemoryBytes() const {
  uint64_t bytes = owner_.size() * sizeof(uint32_t);
  for (const auto& m : members_) bytes += sizeof(Member) + m.id.capacity() + m.domain.capacity();
  return bytes;
}

}  // namespace shoal::cluster
