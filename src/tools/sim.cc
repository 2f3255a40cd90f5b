// shoal-sim: Shoal's slot-table placement (cluster::Placement, the real code) against a
// consistent-hash ring and rendezvous (HRW) hashing, on one workload, at 1k-100k nodes:
// keys moved per membership change, load balance (uniform and Zipf), lookup time, client
// memory and bytes per change, and cache re-fetch after a change. Markdown on stdout, JSON
// with --json. Exits 1 if an internal consistency check fails.
//
// One file rather than a library plus main: nothing else links the simulator's schemes.

#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/placement.h"
#include "tools/fanin_sim.h"

namespace shoal::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// splitmix64: the same stream on every platform (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t s_;
};

// Internal consistency failures (counts out of range, schemes disagreeing with themselves).
// Any one makes the run exit 1.
class Checks {
 public:
  void Expect(bool ok, const std::string& what) {
    if (!ok) failures_.push_back(what);
  }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::vector<std::string> failures_;
};

// --- nodes and membership changes -------------------------------------------------------------

// A node's id, like a host name: unique (a bijection of the index) and in no order, so that
// joining nodes land anywhere in Placement's id-sorted member list.
std::string NodeId(uint32_t sim) {
  uint32_t x = sim * 0x9E3779B1u;
  x ^= x >> 15;
  x *= 0x85EBCA77u;
  x ^= x >> 13;
  char buf[16];
  std::snprintf(buf, sizeof buf, "gpu-%08x", x);
  return buf;
}

Member MemberOf(uint32_t sim) {
  return Member{NodeId(sim), 100, "rack-" + std::to_string(sim % 64)};
}

// One change from the base membership (nodes 0..n-1): nodes joining (ids n, n+1, ...) or
// leaving. `optimum` is the least fraction of keys any scheme must move: k/(n+k) to add k,
// k/n to remove k.
struct Change {
  std::string name;
  std::vector<uint32_t> added, removed;
  double optimum = 0;
};

std::vector<Change> ChangesFor(uint32_t n, uint64_t seed) {
  Rng rng(seed ^ n);
  std::vector<uint32_t> perm(n);
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  auto pick = [&](uint32_t k) {  // k distinct nodes, partial Fisher-Yates
    for (uint32_t i = 0; i < k; i++) std::swap(perm[i], perm[i + rng.Below(n - i)]);
    return std::vector<uint32_t>(perm.begin(), perm.begin() + k);
  };
  auto add = [&](std::string name, uint32_t k) {
    Change c{std::move(name), {}, {}, static_cast<double>(k) / (n + k)};
    for (uint32_t i = 0; i < k; i++) c.added.push_back(n + i);
    return c;
  };
  auto remove = [&](std::string name, uint32_t k) {
    return Change{std::move(name), {}, pick(k), static_cast<double>(k) / n};
  };
  const uint32_t pct = std::max<uint32_t>(1, n / 100);
  return {add("+1 node", 1), remove("-1 node", 1),
          add("+1% nodes (" + std::to_string(pct) + ")", pct),
          remove("-1% nodes (" + std::to_string(pct) + ")", pct),
          remove("10 failures", std::min<uint32_t>(10, n - 1))};
}

// Nodes after `c`: the base 0..n-1 less the removed, plus the added.
std::vector<uint32_t> NodesAfter(uint32_t n, const Change& c) {
  std::vector<bool> gone(n, false);
  for (uint32_t r : c.removed) gone[r] = true;
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < n; i++) {
    if (!gone[i]) out.push_back(i);
  }
  out.insert(out.end(), c.added.begin(), c.added.end());
  return out;
}

// --- the workload -------------------------------------------------------------------------------

// `objects` objects of `chunks` chunks each; a chunk's key is ChunkHash of its id, as the
// node hashes ChunkKey::Id(). Object r (0-based) is the (r+1)-th most requested.
struct Workload {
  uint32_t objects = 0, chunks = 0;
  std::vector<uint64_t> hash;  // every chunk's hash, ascending
  std::vector<uint32_t> rank;  // the object of hash[i]
  size_t size() const { return hash.size(); }
};

std::string ChunkId(uint32_t object, uint32_t chunk) {
  return "sim/object-" + std::to_string(object) + "#" + std::to_string(chunk);
}

Workload MakeWorkload(uint32_t objects, uint32_t chunks) {
  std::vector<std::pair<uint64_t, uint32_t>> v;
  v.reserve(static_cast<size_t>(objects) * chunks);
  for (uint32_t o = 0; o < objects; o++) {
    for (uint32_t c = 0; c < chunks; c++) v.emplace_back(ChunkHash(ChunkId(o, c)), o);
  }
  std::sort(v.begin(), v.end());
  Workload w{objects, chunks, {}, {}};
  w.hash.reserve(v.size());
  w.rank.reserve(v.size());
  for (const auto& [h, o] : v) {
    w.hash.push_back(h);
    w.rank.push_back(o);
  }
  return w;
}

// Request probability of each object: Zipf with exponent s over ranks (s = 0: uniform).
// A request reads the whole object, so each of its chunks gets the object's probability.
std::vector<double> ZipfWeights(uint32_t objects, double s) {
  std::vector<double> w(objects);
  double total = 0;
  for (uint32_t r = 0; r < objects; r++) total += w[r] = std::pow(r + 1.0, -s);
  for (double& x : w) x /= total;
  return w;
}

// --- scheme 1: Shoal's Placement ---------------------------------------------------------------

// Placement plus the map from its member index to the simulator's node number.
class ShoalScheme {
 public:
  ShoalScheme(Placement p, const std::unordered_map<std::string, uint32_t>& sim_of_id)
      : p_(std::move(p)) {
    Index(sim_of_id);
  }
  // Applies the membership `nodes` as the next epoch; returns Apply's count of moved slots.
  // `apply_ms`, if given, gets the time of Placement::Apply alone.
  Result<uint64_t> Apply(const std::vector<uint32_t>& nodes,
                         const std::unordered_map<std::string, uint32_t>& sim_of_id,
                         double* apply_ms = nullptr) {
    std::vector<Member> members;
    members.reserve(nodes.size());
    for (uint32_t s : nodes) members.push_back(MemberOf(s));
    auto start = Clock::now();
    auto moved = p_.Apply(members, p_.epoch() + 1);
    if (apply_ms != nullptr) *apply_ms = Seconds(start) * 1e3;
    Index(sim_of_id);
    return moved;
  }
  // Whether every slot has an owner in the member list (else NodeOf would read out of range).
  bool Valid() const {
    for (uint32_t s = 0; s < p_.slots(); s++) {
      if (p_.Owner(s) >= p_.members().size()) return false;
    }
    return true;
  }
  uint32_t NodeOf(uint64_t h) const { return sim_[p_.Owner(p_.SlotOf(h))]; }
  uint32_t NodeOfSlot(uint32_t slot) const { return sim_[p_.Owner(slot)]; }
  const Placement& placement() const { return p_; }

 private:
  void Index(const std::unordered_map<std::string, uint32_t>& sim_of_id) {
    sim_.clear();
    for (const Member& m : p_.members()) sim_.push_back(sim_of_id.at(m.id));
  }
  Placement p_;
  std::vector<uint32_t> sim_;  // member index -> node number
};

// --- scheme 2: a consistent-hash ring -----------------------------------------------------------

uint64_t VnodeHash(const std::string& id, uint32_t v) {
  char buf[64];
  std::memcpy(buf, id.data(), id.size());
  size_t len = id.size();
  buf[len++] = '#';
  auto r = std::to_chars(buf + len, buf + sizeof buf, v);
  return XXH3_64bits(buf, static_cast<size_t>(r.ptr - buf));
}

// `vnodes` points per node at XXH3("id#v"); a key belongs to the node of the first point at or
// after it (wrapping). Positions and owners in two arrays, so the binary search reads only
// positions.
class Ring {
 public:
  struct Point {
    uint64_t pos;
    uint32_t node;
    bool operator<(const Point& o) const { return pos != o.pos ? pos < o.pos : node < o.node; }
  };

  static std::vector<Point> PointsOf(const std::vector<uint32_t>& nodes, uint32_t vnodes) {
    std::vector<Point> pts;
    pts.reserve(static_cast<size_t>(nodes.size()) * vnodes);
    for (uint32_t s : nodes) {
      const std::string id = NodeId(s);
      for (uint32_t v = 0; v < vnodes; v++) pts.push_back({VnodeHash(id, v), s});
    }
    std::sort(pts.begin(), pts.end());
    return pts;
  }

  explicit Ring(const std::vector<Point>& sorted) {
    pos_.reserve(sorted.size());
    node_.reserve(sorted.size());
    for (const Point& p : sorted) {
      pos_.push_back(p.pos);
      node_.push_back(p.node);
    }
  }

  // This ring with the points of `added` (sorted) merged in and those of nodes with
  // gone[node] dropped: what a client does on a membership event.
  Ring With(const std::vector<Point>& added, const std::vector<bool>& gone) const {
    Ring out;
    out.pos_.reserve(pos_.size() + added.size());
    out.node_.reserve(pos_.size() + added.size());
    size_t j = 0;
    for (size_t i = 0; i < pos_.size(); i++) {
      if (node_[i] < gone.size() && gone[node_[i]]) continue;
      const Point p{pos_[i], node_[i]};
      for (; j < added.size() && added[j] < p; j++) out.Push(added[j]);
      out.Push(p);
    }
    for (; j < added.size(); j++) out.Push(added[j]);
    return out;
  }

  uint32_t NodeOf(uint64_t h) const {
    size_t i = static_cast<size_t>(std::lower_bound(pos_.begin(), pos_.end(), h) - pos_.begin());
    return node_[i == pos_.size() ? 0 : i];
  }
  // Owners of `sorted` (ascending) keys, by one merge pass: the same answers as NodeOf.
  void MapSorted(const std::vector<uint64_t>& sorted, std::vector<uint32_t>* out) const {
    out->resize(sorted.size());
    size_t j = 0;
    for (size_t i = 0; i < sorted.size(); i++) {
      while (j < pos_.size() && pos_[j] < sorted[i]) j++;
      (*out)[i] = node_[j == pos_.size() ? 0 : j];
    }
  }
  // Each node's exact share of the hash space (arc lengths / 2^64), indexed by node number.
  std::vector<double> Shares(size_t nodes) const {
    std::vector<double> share(nodes, 0);
    for (size_t i = 0; i < pos_.size(); i++) {
      uint64_t prev = pos_[i == 0 ? pos_.size() - 1 : i - 1];
      share[node_[i]] += static_cast<double>(pos_[i] - prev) * 0x1p-64;  // wraps for i = 0
    }
    return share;
  }
  // Exact fraction of the hash space whose owner differs between `a` and `b`: walks the
  // union of their points; keys in (u[j-1], u[j]] belong to each ring's first point >= u[j].
  static double MovedSpace(const Ring& a, const Ring& b) {
    size_t i = 0, j = 0;
    const size_t na = a.pos_.size(), nb = b.pos_.size();
    long double moved = 0;
    uint64_t first = 0, prev = 0;
    bool started = false;
    while (i < na || j < nb) {
      uint64_t u = std::min(i < na ? a.pos_[i] : UINT64_MAX, j < nb ? b.pos_[j] : UINT64_MAX);
      uint32_t oa = a.node_[i < na ? i : 0], ob = b.node_[j < nb ? j : 0];
      if (!started) {
        first = u;
        started = true;
      } else if (oa != ob) {
        moved += static_cast<long double>(u - prev);
      }
      prev = u;
      while (i < na && a.pos_[i] == u) i++;
      while (j < nb && b.pos_[j] == u) j++;
    }
    // The wrapping interval (last, 2^64) + [0, first] belongs to each ring's first point.
    if (started && a.node_[0] != b.node_[0]) moved += static_cast<long double>(first - prev);
    return static_cast<double>(moved * 0x1p-64L);
  }
  size_t points() const { return pos_.size(); }
  uint64_t Bytes() const { return pos_.size() * (sizeof(uint64_t) + sizeof(uint32_t)); }

 private:
  Ring() = default;
  void Push(const Point& p) {
    pos_.push_back(p.pos);
    node_.push_back(p.node);
  }
  std::vector<uint64_t> pos_;
  std::vector<uint32_t> node_;
};

// --- scheme 3: rendezvous (highest random weight) ------------------------------------------------

constexpr uint64_t kKeySecret = 0xa0761d6478bd642full;
constexpr uint64_t kNodeSecret = 0xe7037ed1a0b428dbull;

uint64_t NodeHash(uint32_t sim) {
  const std::string id = NodeId(sim);
  return XXH3_64bits(id.data(), id.size()) ^ kNodeSecret;
}

// A key's weight on a node: the folded 128-bit product of the two hashes (wyhash's mum), one
// multiply per node. `key` is the chunk hash xor kKeySecret.
inline uint64_t Score(uint64_t key, uint64_t node_hash) {
  unsigned __int128 p = static_cast<unsigned __int128>(key) * node_hash;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

// Highest score of `key` over `nodes` and its position (0 and 0 when empty).
inline uint64_t Best(uint64_t key, const std::vector<uint64_t>& nodes, size_t* at = nullptr) {
  uint64_t best = 0;
  size_t arg = 0;
  for (size_t i = 0; i < nodes.size(); i++) {
    uint64_t s = Score(key, nodes[i]);
    if (s > best) {
      best = s;
      arg = i;
    }
  }
  if (at != nullptr) *at = arg;
  return best;
}

// Whether some node scores above `s`, stopping at the first: for a random threshold this reads
// about ln(N) nodes, which is what makes exact HRW figures affordable at 100k nodes.
inline bool Beaten(uint64_t key, uint64_t s, const std::vector<uint64_t>& nodes) {
  for (uint64_t n : nodes) {
    if (Score(key, n) > s) return true;
  }
  return false;
}

// The member list a HRW client holds: node hashes, and which node each is.
struct Rendezvous {
  std::vector<uint64_t> hash;
  std::vector<uint32_t> node;
  explicit Rendezvous(const std::vector<uint32_t>& nodes) : node(nodes) {
    for (uint32_t s : nodes) hash.push_back(NodeHash(s));
  }
  uint32_t NodeOf(uint64_t h) const {
    size_t at = 0;
    Best(h ^ kKeySecret, hash, &at);
    return node[at];
  }
};

// --- measurements -----------------------------------------------------------------------------

struct Timing {
  double ns = 0;      // per lookup, independent lookups (throughput)
  double ns_dep = 0;  // per lookup, each key depending on the previous answer (latency)
  size_t lookups = 0;
};

// Mean ns per lookup over `keys`: a warm-up pass, then the best of 3 timed passes.
template <typename F>
Timing TimeLookups(const std::vector<uint64_t>& keys, size_t count, F&& lookup) {
  count = std::min(count, keys.size());
  uint64_t sink = 0;
  for (size_t i = 0; i < count; i++) sink += lookup(keys[i]);
  Timing t;
  t.lookups = count;
  t.ns = t.ns_dep = std::numeric_limits<double>::infinity();
  for (int pass = 0; pass < 3; pass++) {
    auto start = Clock::now();
    for (size_t i = 0; i < count; i++) sink += lookup(keys[i]);
    t.ns = std::min(t.ns, Seconds(start) * 1e9 / static_cast<double>(count));
  }
  for (int pass = 0; pass < 3; pass++) {
    uint32_t last = 0;
    auto start = Clock::now();
    // last >> 31 is 0 (node numbers are small) but the compiler cannot know it.
    for (size_t i = 0; i < count; i++) last = lookup(keys[i] ^ (last >> 31));
    t.ns_dep = std::min(t.ns_dep, Seconds(start) * 1e9 / static_cast<double>(count));
    sink += last;
  }
  asm volatile("" : : "r"(sink));  // keeps the lookups from being optimised away
  return t;
}

// Moved keys after one change, for one scheme.
struct MoveRow {
  MoveRow(const Change& c, std::string s)
      : change(c.name), scheme(std::move(s)), optimum(c.optimum) {}
  std::string change, scheme;
  double optimum = 0;
  uint64_t mapped = 0;        // keys looked up before and after
  uint64_t moved = 0;         // keys whose owner changed
  uint64_t owner_gone = 0;    // keys whose old owner left (re-fetched even with fallback)
  uint64_t between_kept = 0;  // moved from a node that stayed to one that was there before
  double space_moved = -1;    // exact moved fraction of the hash space; < 0: not known
  std::string space_how;      // how space_moved was found
  bool sampled = false;
};

struct LoadRow {
  explicit LoadRow(std::string s) : scheme(std::move(s)) {}
  std::string scheme;
  double share = -1;              // peak/mean of hash-space shares; < 0: not known
  std::vector<double> peak_mean;  // per workload (uniform, Zipf s...)
  std::string how;
};

struct CostRow {
  explicit CostRow(std::string s) : scheme(std::move(s)) {}
  std::string scheme;
  Timing timing;
  uint64_t memory = 0;
  uint64_t event_bytes = 0;   // a client told of one member joining or leaving
  uint64_t resync_bytes = 0;  // a client that missed events
  double change_ms = 0;       // client CPU to apply one member event
  std::string memory_how, resync_how, change_how;
};

struct NodeReport {
  uint32_t n = 0, slot_bits = 0;
  uint64_t slots = 0;
  std::vector<MoveRow> moves;
  std::vector<LoadRow> loads;
  std::vector<double> load_bound;  // peak/mean no single-copy placement can beat
  std::vector<CostRow> costs;
  std::vector<std::string> sampling;
  double seconds = 0;
};

struct Options {
  std::vector<uint32_t> nodes{1000, 10000, 100000};
  uint32_t slot_bits = 0;  // 0: per node count
  uint32_t objects = 1000000;
  uint32_t chunks = 4;
  uint32_t vnodes = 160;
  uint64_t seed = 42;
  double hrw_evals = 4e9;  // HRW node scores one measurement may compute before it samples
  uint32_t hrw_sample_nodes = 128;
  uint32_t timing_keys = 1u << 20;
  std::string json_path;
  std::string command;
};

const std::vector<double> kZipf{0.8, 1.0, 1.2};
// Lookups per timed pass for the ring: at 100k nodes each is a few cache misses (~0.5 us).
constexpr size_t kRingTimingKeys = size_t{1} << 18;

uint32_t SlotBitsFor(uint32_t n) {
  uint32_t bits = 20;
  while (bits < 26 && (uint64_t{1} << bits) < uint64_t{40} * n) bits++;
  return bits;
}

// Bytes of one member record as a membership event carries it (JSON).
uint64_t MemberEventBytes(uint32_t sim) {
  json j = {{"id", NodeId(sim)},
            {"endpoint",
             "10.0." + std::to_string(sim / 256 % 256) + "." + std::to_string(sim % 256) + ":7070"},
            {"weight", 100},
            {"domain", "rack-" + std::to_string(sim % 64)}};
  return j.dump().size();
}

// Bytes a client holds for the member list: the same accounting as Placement::MemoryBytes.
uint64_t MemberListBytes(const std::vector<uint32_t>& nodes) {
  uint64_t bytes = 0;
  for (uint32_t s : nodes) {
    Member m = MemberOf(s);
    bytes += sizeof(Member) + m.id.capacity() + m.domain.capacity();
  }
  return bytes;
}

// "512 B", "4.0 KiB", "25.7 MiB".
std::string ByteString(uint64_t b) {
  char buf[32];
  if (b < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  } else if (b < 1ull << 20) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  }
  return buf;
}

class Simulator {
 public:
  Simulator(const Options& o, const Workload& w) : o_(o), w_(w) {
    Rng rng(o.seed * 7 + 1);
    timing_keys_.resize(o.timing_keys);
    for (auto& k : timing_keys_) k = rng.Next();
    for (double s : kZipf) weights_.push_back(ZipfWeights(w.objects, s));
    weights_.insert(weights_.begin(), std::vector<double>(w.objects, 1.0 / w.objects));
  }

  NodeReport Run(uint32_t n) {
    auto start = Clock::now();
    NodeReport r;
    r.n = n;
    r.slot_bits = o_.slot_bits != 0 ? o_.slot_bits : SlotBitsFor(n);
    r.slots = uint64_t{1} << r.slot_bits;
    changes_ = ChangesFor(n, o_.seed);
    max_node_ = n;
    for (const Change& c : changes_) {
      for (uint32_t a : c.added) max_node_ = std::max(max_node_, a + 1);
    }
    sim_of_id_.clear();
    for (uint32_t s = 0; s < max_node_; s++) sim_of_id_[NodeId(s)] = s;
    base_.resize(n);
    for (uint32_t i = 0; i < n; i++) base_[i] = i;
    // One copy of a chunk sits on one node: no placement puts less than the hottest chunk's
    // load on the node that holds it.
    for (const auto& wt : weights_) r.load_bound.push_back(std::max(1.0, wt[0] * n / w_.chunks));

    RunShoal(n, r);
    Progress(n, "Shoal", start);
    RunRing(n, r);
    Progress(n, "ring", start);
    RunRendezvous(n, r);
    Progress(n, "rendezvous", start);
    r.seconds = Seconds(start);
    return r;
  }

  const Checks& checks() const { return checks_; }

 private:
  void Progress(uint32_t n, const char* what, Clock::time_point start) {
    std::fprintf(stderr, "shoal-sim: %u nodes: %s done at %.1f s\n", n, what, Seconds(start));
  }

  // Peak/mean of per-node load for each workload weighting, from each key's owner.
  std::vector<double> PeakMean(const std::vector<uint32_t>& owner, uint32_t n,
                               const std::string& who) {
    std::vector<double> out;
    for (const auto& wt : weights_) {
      std::vector<double> load(max_node_, 0);
      double total = 0;
      for (size_t i = 0; i < owner.size(); i++) {
        if (owner[i] >= max_node_) {
          checks_.Expect(false, who + ": a key mapped to node " + std::to_string(owner[i]));
          continue;
        }
        double x = wt[w_.rank[i]];
        load[owner[i]] += x;
        total += x;
      }
      out.push_back(*std::max_element(load.begin(), load.end()) * n / total);
    }
    return out;
  }

  // Fills the key counts of `row` from owners before and after a change.
  void CountMoves(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after,
                  uint32_t n, const Change& c, MoveRow* row) {
    std::vector<bool> gone(max_node_, false);
    for (uint32_t g : c.removed) gone[g] = true;
    row->mapped = before.size();
    for (size_t i = 0; i < before.size(); i++) {
      if (before[i] == after[i]) continue;
      row->moved++;
      if (gone[before[i]]) {
        row->owner_gone++;
      } else if (after[i] < n) {
        row->between_kept++;
      }
    }
  }

  void CheckRow(const MoveRow& m) {
    const std::string what = m.scheme + ", " + m.change + ": ";
    checks_.Expect(m.moved <= m.mapped, what + "more keys moved than were mapped");
    checks_.Expect(m.owner_gone <= m.moved, what + "more keys lost their owner than moved");
    checks_.Expect(m.between_kept == 0,
                   what + std::to_string(m.between_kept) + " keys moved between nodes that stayed");
    checks_.Expect(m.space_moved <= 1.0, what + "more than the whole hash space moved");
  }

  void RunShoal(uint32_t n, NodeReport& r) {
    auto created = Placement::Create(r.slot_bits);
    checks_.Expect(created.ok(), "Placement::Create: " + created.status().ToString());
    if (!created.ok()) return;
    ShoalScheme base(std::move(created).value(), sim_of_id_);
    auto first = base.Apply(base_, sim_of_id_);
    checks_.Expect(first.ok() && *first == r.slots,
                   "Shoal: the first Apply did not assign every slot");
    checks_.Expect(base.Valid(), "Shoal: a slot's owner is outside the member list");
    if (!base.Valid()) return;

    std::vector<uint32_t> before(w_.size());
    for (size_t i = 0; i < w_.size(); i++) before[i] = base.NodeOf(w_.hash[i]);

    // Loads: slot shares, then the workload.
    auto counts = base.placement().SlotCounts();
    uint64_t sum = 0;
    for (uint64_t c : counts) sum += c;
    checks_.Expect(sum == r.slots, "Shoal: slot counts do not add up to the slot count");
    LoadRow load("Shoal");
    load.share = static_cast<double>(*std::max_element(counts.begin(), counts.end())) * n / r.slots;
    load.peak_mean = PeakMean(before, n, "Shoal");
    load.how = "share: slots per node; loads: every chunk key mapped";
    r.loads.push_back(load);

    double change_ms = 0;
    for (const Change& c : changes_) {
      ShoalScheme after = base;
      double apply_ms = 0;
      auto applied = after.Apply(NodesAfter(n, c), sim_of_id_, &apply_ms);
      if (&c == &changes_[0]) change_ms = apply_ms;
      checks_.Expect(applied.ok(), "Shoal, " + c.name + ": Apply: " + applied.status().ToString());
      if (!applied.ok()) continue;
      checks_.Expect(after.Valid(),
                     "Shoal, " + c.name + ": a slot's owner is outside the member list");
      if (!after.Valid()) continue;
      uint64_t slots_moved = 0;
      for (uint32_t s = 0; s < r.slots; s++) {
        slots_moved += base.NodeOfSlot(s) != after.NodeOfSlot(s);
      }
      checks_.Expect(slots_moved == *applied,
                     "Shoal, " + c.name + ": Apply reported " + std::to_string(*applied) +
                         " moved slots, the table shows " + std::to_string(slots_moved));
      std::vector<uint32_t> owners(w_.size());
      for (size_t i = 0; i < w_.size(); i++) owners[i] = after.NodeOf(w_.hash[i]);
      MoveRow m(c, "Shoal");
      CountMoves(before, owners, n, c, &m);
      m.space_moved = static_cast<double>(slots_moved) / r.slots;
      m.space_how = std::to_string(slots_moved) + " of " + std::to_string(r.slots) + " slots";
      CheckRow(m);
      r.moves.push_back(m);
    }

    const Placement& p = base.placement();
    CostRow cost("Shoal");
    cost.timing = TimeLookups(timing_keys_, timing_keys_.size(),
                              [&p](uint64_t h) { return p.Owner(p.SlotOf(h)); });
    cost.memory = p.MemoryBytes();
    cost.memory_how =
        "Placement::MemoryBytes(): " + ByteString(r.slots * 4) + " slot table + member list";
    cost.event_bytes = MemberEventBytes(n);
    cost.resync_bytes = r.slots * 4 + n * MemberEventBytes(n);
    cost.resync_how = "full table (4 B/slot) + member list";
    cost.change_ms = change_ms;
    cost.change_how = "Placement::Apply";
    r.costs.push_back(cost);
  }

  void RunRing(uint32_t n, NodeReport& r) {
    Ring base(Ring::PointsOf(base_, o_.vnodes));
    std::vector<uint32_t> before;
    base.MapSorted(w_.hash, &before);
    Rng rng(o_.seed + 3);
    for (int i = 0; i < 1000; i++) {
      size_t k = rng.Below(w_.size());
      if (base.NodeOf(w_.hash[k]) != before[k])
        checks_.Expect(false, "ring: merge mapping disagrees with lookup");
    }
    auto shares = base.Shares(max_node_);
    double share_sum = 0;
    for (double s : shares) share_sum += s;
    checks_.Expect(std::abs(share_sum - 1.0) < 1e-9, "ring: arc shares do not add up to the ring");
    LoadRow load("ring");
    load.share = *std::max_element(shares.begin(), shares.end()) * n;
    load.peak_mean = PeakMean(before, n, "ring");
    load.how = "share: exact arc lengths; loads: every chunk key mapped";
    r.loads.push_back(load);

    double change_ms = 0;
    for (const Change& c : changes_) {
      auto start = Clock::now();
      std::vector<bool> gone(max_node_, false);
      for (uint32_t g : c.removed) gone[g] = true;
      Ring after = base.With(Ring::PointsOf(c.added, o_.vnodes), gone);
      if (&c == &changes_[0]) change_ms = Seconds(start) * 1e3;
      checks_.Expect(after.points() == (NodesAfter(n, c).size()) * o_.vnodes,
                     "ring, " + c.name + ": wrong number of points after the change");
      std::vector<uint32_t> owners;
      after.MapSorted(w_.hash, &owners);
      MoveRow m(c, "ring");
      CountMoves(before, owners, n, c, &m);
      m.space_moved = Ring::MovedSpace(base, after);
      m.space_how = "exact arc lengths";
      CheckRow(m);
      r.moves.push_back(m);
    }

    CostRow cost("ring");
    cost.timing =
        TimeLookups(timing_keys_, kRingTimingKeys, [&base](uint64_t h) { return base.NodeOf(h); });
    cost.memory = base.Bytes() + MemberListBytes(base_);
    cost.memory_how = std::to_string(base.points()) + " points x 12 B + member list";
    cost.event_bytes = MemberEventBytes(n);
    cost.resync_bytes = n * MemberEventBytes(n);
    cost.resync_how = "member list";
    cost.change_ms = change_ms;
    cost.change_how = "merge 160 points into the ring";
    r.costs.push_back(cost);
  }

  void RunRendezvous(uint32_t n, NodeReport& r) {
    const Rendezvous base(base_);
    const uint64_t keys = w_.size();

    // Loads. Mapping every key costs keys x n scores; past the budget, take a sample of nodes
    // (random ones plus the owners of the hottest chunks) and find exactly which keys each
    // owns: a key belongs to the sample's best node unless some node beats it.
    LoadRow load("rendezvous");
    if (static_cast<double>(keys) * n <= o_.hrw_evals) {
      std::vector<uint32_t> owner(keys);
      for (size_t i = 0; i < keys; i++) owner[i] = base.NodeOf(w_.hash[i]);
      load.peak_mean = PeakMean(owner, n, "rendezvous");
      load.how = "every chunk key mapped";
    } else {
      std::vector<uint32_t> sample;
      Rng rng(o_.seed + 5);
      std::vector<bool> in(n, false);
      auto add = [&](uint32_t s) {
        if (!in[s]) sample.push_back(s);
        in[s] = true;
      };
      const uint32_t hot = std::min<uint32_t>(16, w_.objects);
      for (uint32_t o = 0; o < hot; o++) {
        for (uint32_t c = 0; c < w_.chunks; c++) add(base.NodeOf(ChunkHash(ChunkId(o, c))));
      }
      const uint32_t hot_owners = static_cast<uint32_t>(sample.size());
      while (sample.size() < std::min<size_t>(n, hot_owners + o_.hrw_sample_nodes)) {
        add(static_cast<uint32_t>(rng.Below(n)));
      }
      std::vector<uint64_t> sample_hash;
      for (uint32_t s : sample) sample_hash.push_back(base.hash[s]);
      std::vector<std::vector<double>> node_load(weights_.size(),
                                                 std::vector<double>(sample.size(), 0));
      for (size_t i = 0; i < keys; i++) {
        const uint64_t k = w_.hash[i] ^ kKeySecret;
        size_t at = 0;
        uint64_t best = Best(k, sample_hash, &at);
        if (Beaten(k, best, base.hash)) continue;
        for (size_t z = 0; z < weights_.size(); z++) node_load[z][at] += weights_[z][w_.rank[i]];
      }
      for (size_t z = 0; z < weights_.size(); z++) {
        double total = w_.chunks;  // every object's weights sum to 1, times its chunks
        load.peak_mean.push_back(*std::max_element(node_load[z].begin(), node_load[z].end()) * n /
                                 total);
      }
      load.how = "sampled: exact loads of " + std::to_string(sample.size()) + " of " +
                 std::to_string(n) + " nodes (the owners of the " +
                 std::to_string(hot * w_.chunks) + " hottest chunks + " +
                 std::to_string(sample.size() - hot_owners) + " random); the peak is the sample's";
      r.sampling.push_back("rendezvous loads: " + load.how);
    }
    r.loads.push_back(load);

    // Moves. With A added and R removed, a key keeps its owner iff some node that stays
    // scores above every node of A and R: then that node's side holds the maximum before and
    // after. So a key costs |A| + |R| scores plus an early-exit scan, not two full argmax
    // passes; exact, and checked below against full argmax on a sample of keys.
    for (const Change& c : changes_) {
      std::vector<bool> gone(n, false);
      for (uint32_t g : c.removed) gone[g] = true;
      std::vector<uint64_t> kept, changed;
      for (uint32_t s = 0; s < n; s++) (gone[s] ? changed : kept).push_back(base.hash[s]);
      for (uint32_t a : c.added) changed.push_back(NodeHash(a));
      const double cost_per_key = 2.0 * static_cast<double>(changed.size()) + 2;
      const uint64_t budget_keys = static_cast<uint64_t>(o_.hrw_evals / 4 / cost_per_key);
      const uint64_t stride =
          std::max<uint64_t>(1, (keys + budget_keys - 1) / std::max<uint64_t>(1, budget_keys));
      MoveRow m(c, "rendezvous");
      m.sampled = stride > 1;
      for (uint64_t i = 0; i < keys; i += stride) {
        const uint64_t k = w_.hash[i] ^ kKeySecret;
        m.mapped++;
        if (!Beaten(k, Best(k, changed), kept)) m.moved++;
      }
      // Only removals here or only additions: every move of a removal is a key of a gone node.
      if (!c.removed.empty()) m.owner_gone = m.moved;
      if (m.sampled) {
        r.sampling.push_back("rendezvous, " + c.name + ": keys moved over 1 in " +
                             std::to_string(stride) + " chunk keys (" + std::to_string(m.mapped) +
                             " keys)");
      }
      // Full argmax before and after on a few keys: the shortcut must agree.
      const Rendezvous after(NodesAfter(n, c));
      const uint64_t verify = std::min<uint64_t>(
          keys, std::clamp<uint64_t>(static_cast<uint64_t>(2e8 / (6.0 * n)), 64, 4096));
      uint64_t disagree = 0;
      for (uint64_t v = 0; v < verify; v++) {
        const uint64_t h = w_.hash[v * (keys / verify)];
        const uint64_t k = h ^ kKeySecret;
        const uint32_t b = base.NodeOf(h), a = after.NodeOf(h);
        const bool moved = !Beaten(k, Best(k, changed), kept);
        disagree += (a != b) != moved;
        if (a != b && !gone[b] && a < n) {
          checks_.Expect(false,
                         "rendezvous, " + c.name + ": a key moved between nodes that stayed");
        }
      }
      checks_.Expect(disagree == 0, "rendezvous, " + c.name +
                                        ": the move shortcut disagrees with full lookups on " +
                                        std::to_string(disagree) + " keys");
      CheckRow(m);
      r.moves.push_back(m);
    }

    CostRow cost("rendezvous");
    const size_t lookups =
        std::clamp<size_t>(static_cast<size_t>(5e7 / n), 100, timing_keys_.size());
    cost.timing =
        TimeLookups(timing_keys_, lookups, [&base](uint64_t h) { return base.NodeOf(h); });
    cost.memory = base.hash.size() * sizeof(uint64_t) + MemberListBytes(base_);
    cost.memory_how = "member list + 8 B hash per node";
    cost.event_bytes = MemberEventBytes(n);
    cost.resync_bytes = n * MemberEventBytes(n);
    cost.resync_how = "member list";
    cost.change_ms = 0;
    cost.change_how = "add or drop one hash; not timed";
    r.costs.push_back(cost);
    if (lookups < timing_keys_.size()) {
      r.sampling.push_back("rendezvous lookup time: " + std::to_string(lookups) +
                           " lookups (O(N) each)");
    }
  }

 private:
  const Options& o_;
  const Workload& w_;
  Checks checks_;
  std::vector<uint64_t> timing_keys_;
  std::vector<std::vector<double>> weights_;  // uniform, then one per kZipf
  std::vector<Change> changes_;
  std::vector<uint32_t> base_;
  uint32_t max_node_ = 0;
  std::unordered_map<std::string, uint32_t> sim_of_id_;
};

// --- the report ---------------------------------------------------------------------------------

std::string Fmt(const char* fmt, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}
std::string Pct(double f) { return Fmt("%.4g %%", f * 100); }
std::string Num(uint64_t x) { return std::to_string(x); }

struct Acceptance {
  std::string figure, target, measured;
  bool pass;
};

std::vector<Acceptance> AcceptanceOf(const NodeReport& r) {
  std::vector<Acceptance> out;
  for (const LoadRow& l : r.loads) {
    if (l.scheme == "Shoal") {
      out.push_back({"peak/mean of slot shares", "<= 1.01", Fmt("%.4f", l.share), l.share <= 1.01});
    }
  }
  double worst = 0;
  std::string worst_change;
  for (const MoveRow& m : r.moves) {
    if (m.scheme != "Shoal") continue;
    if (m.space_moved / m.optimum > worst) {
      worst = m.space_moved / m.optimum;
      worst_change = m.change;
    }
  }
  out.push_back({"slots moved / optimum, worst change", "<= 1.05",
                 Fmt("%.4f", worst) + " (" + worst_change + ")", worst <= 1.05});
  for (const CostRow& c : r.costs) {
    if (c.scheme != "Shoal") continue;
    out.push_back(
        {"lookup (mean over random hashes)", "<= 50 ns",
         Fmt("%.1f ns", c.timing.ns) + Fmt(" (dependent chain: %.0f ns)", c.timing.ns_dep),
         c.timing.ns <= 50});
    out.push_back({"client table (Placement::MemoryBytes)", "<= 32 MiB", ByteString(c.memory),
                   c.memory <= (32ull << 20)});
  }
  return out;
}

void PrintMarkdown(const Options& o, const Workload& w, const std::vector<NodeReport>& reports,
                   const std::string& when, double seconds) {
  std::string nodes;
  for (uint32_t n : o.nodes) nodes += (nodes.empty() ? "" : ", ") + std::to_string(n);
  std::printf("# shoal-sim: chunk placement at %s nodes\n\n", nodes.c_str());
  std::printf(
      "`%s` (%s, %.1f s). Workload: %u objects x %u chunks = %zu chunk keys "
      "(ChunkHash of `sim/object-<rank>#<chunk>`), seed %llu. Nodes all weight 100, 64 racks. "
      "Ring: %u virtual nodes per node at XXH3(\"id#v\"), lookup = binary search for the "
      "successor. Rendezvous: argmax over all nodes of a 64x64->128-bit multiply of key and "
      "node hash (one multiply per node); where keys x nodes would exceed %.0e scores "
      "(--hrw-evals) its figures are sampled, as listed under *Sampled here*. One thread.\n\n",
      o.command.c_str(), when.c_str(), seconds, w.objects, w.chunks, w.size(),
      static_cast<unsigned long long>(o.seed), o.vnodes, o.hrw_evals);
  std::printf(
      "How to read it:\n"
      "- **Keys moved**: each chunk key is looked up before and after the change (the same keys "
      "for "
      "every scheme); optimum is k/(N+k) to add k nodes, k/N to remove k. With 1 node in 100k the "
      "optimum is ~40 keys, so the key figures carry ~1/sqrt(moved) sampling noise; *hash space "
      "moved* is exact (Shoal: slots moved / slots; ring: arc lengths) and is what the key figures "
      "estimate. Rendezvous has no exact figure; its key counts are exact for the keys mapped.\n"
      "- **Load**: peak/mean over nodes. *Hash-space share*: each node's fraction of the hash "
      "space "
      "(Shoal: slots; ring: arcs; rendezvous: equal by construction, not measurable without "
      "sampling). *Uniform*: every chunk requested equally (chunk counts). *Zipf s*: requests over "
      "objects by rank^-s, a request reads all chunks of its object; a node's load is the exact "
      "expected request count of the chunks it owns (no request sampling). At %zu keys / N nodes "
      "the uniform figure includes chunk-count noise that any scheme has; under skew the hottest "
      "chunk sets the peak (the bound row: no single-copy placement does better).\n"
      "- **Lookup**: ns per lookup, mean over random hashes after a warm-up pass, best of 3 "
      "passes, one thread; *dependent*: each hash depends on the previous answer (latency, not "
      "throughput). Returns the owner's index into the member list.\n"
      "- **Client bytes per change**: Shoal's next table is a deterministic function of the "
      "previous "
      "table and the new membership (Placement::Apply), so a client that saw every event receives "
      "only the member record (JSON: id, endpoint, weight, domain) and recomputes; one that missed "
      "events fetches the table (4 B/slot) and the member list. Ring and rendezvous also need only "
      "the event, or the member list. A change of k nodes is k events. *Client CPU*: the time to "
      "apply the +1 node event.\n"
      "- **Re-fetch**: a warm cache with every chunk cached once, on its owner (one copy: replicas "
      "are not modelled; with two copies a single crash would re-fetch ~0 with fallback). After "
      "the change a chunk whose owner changed is fetched from the object store, unless (fallback) "
      "the new owner asks the previous owner, which is still alive and has it. Chunks are of equal "
      "size, so this is the fraction of cached bytes.\n\n",
      w.size());

  for (const NodeReport& r : reports) {
    std::printf("## %u nodes (Shoal: 2^%u = %llu slots, %.1f per node; ran %.1f s)\n\n", r.n,
                r.slot_bits, static_cast<unsigned long long>(r.slots),
                static_cast<double>(r.slots) / r.n, r.seconds);

    std::printf("### Keys moved by a membership change\n\n");
    std::printf(
        "| change | optimum | scheme | keys moved / mapped | moved | x optimum | hash space moved "
        "| x optimum |\n|---|---|---|---|---|---|---|---|\n");
    for (const MoveRow& m : r.moves) {
      double f = static_cast<double>(m.moved) / static_cast<double>(m.mapped);
      std::string space = "-", space_ratio = "-";
      if (m.space_moved >= 0) {
        space = Pct(m.space_moved) + " (" + m.space_how + ")";
        space_ratio = Fmt("%.4f", m.space_moved / m.optimum);
      }
      std::printf("| %s | %s | %s | %s / %s%s | %s | %s | %s | %s |\n", m.change.c_str(),
                  Pct(m.optimum).c_str(), m.scheme.c_str(), Num(m.moved).c_str(),
                  Num(m.mapped).c_str(), m.sampled ? " (sample)" : "", Pct(f).c_str(),
                  Fmt("%.3f", f / m.optimum).c_str(), space.c_str(), space_ratio.c_str());
    }

    std::printf("\n### Load: peak/mean over nodes\n\n| scheme | hash-space share | uniform");
    for (double s : kZipf) std::printf(" | Zipf s=%.1f", s);
    std::printf(" | how |\n|---|---|---|---|---|---|---|\n");
    for (const LoadRow& l : r.loads) {
      std::printf("| %s | %s", l.scheme.c_str(), l.share >= 0 ? Fmt("%.4f", l.share).c_str() : "-");
      for (double x : l.peak_mean) std::printf(" | %s", Fmt("%.3f", x).c_str());
      std::printf(" | %s |\n", l.how.c_str());
    }
    std::printf("| bound: hottest chunk | 1 |");
    for (double b : r.load_bound) std::printf(" %s |", Fmt("%.3f", b).c_str());
    std::printf(" any single-copy placement |\n");

    std::printf(
        "\n### Lookup and client cost\n\n| scheme | ns/lookup | ns/lookup, dependent | lookups "
        "timed | "
        "client memory | bytes per member event | bytes after missed events | client CPU per event "
        "|\n"
        "|---|---|---|---|---|---|---|---|\n");
    for (const CostRow& c : r.costs) {
      std::printf("| %s | %s | %s | %zu | %s (%s) | %llu | %s (%s) | %s (%s) |\n", c.scheme.c_str(),
                  Fmt("%.1f", c.timing.ns).c_str(), Fmt("%.1f", c.timing.ns_dep).c_str(),
                  c.timing.lookups, ByteString(c.memory).c_str(), c.memory_how.c_str(),
                  static_cast<unsigned long long>(c.event_bytes),
                  ByteString(c.resync_bytes).c_str(), c.resync_how.c_str(),
                  Fmt("%.2f ms", c.change_ms).c_str(), c.change_how.c_str());
    }

    std::printf(
        "\n### Cached bytes re-fetched from the object store\n\n| change | scheme | no fallback | "
        "previous-owner fallback |\n|---|---|---|---|\n");
    for (const MoveRow& m : r.moves) {
      if (m.change != "+1 node" && m.change != "-1 node") continue;
      const double mapped = static_cast<double>(m.mapped);
      std::printf("| %s | %s | %s | %s |\n", m.change.c_str(), m.scheme.c_str(),
                  Pct(m.moved / mapped).c_str(), Pct(m.owner_gone / mapped).c_str());
    }

    std::printf(
        "\n### Shoal against the targets\n\n| figure | target | measured | |\n|---|---|---|---|\n");
    for (const Acceptance& a : AcceptanceOf(r)) {
      std::printf("| %s | %s | %s | %s |\n", a.figure.c_str(), a.target.c_str(), a.measured.c_str(),
                  a.pass ? "met" : "MISSED");
    }
    if (!r.sampling.empty()) {
      std::printf("\nSampled here:\n");
      for (const std::string& s : r.sampling) std::printf("- %s\n", s.c_str());
    }
    std::printf("\n");
  }
}

json ToJson(const Options& o, const Workload& w, const std::vector<NodeReport>& reports,
            const std::string& when, double seconds) {
  json j = {{"command", o.command},
            {"when", when},
            {"seconds", seconds},
            {"objects", w.objects},
            {"chunks_per_object", w.chunks},
            {"keys", w.size()},
            {"seed", o.seed},
            {"vnodes", o.vnodes},
            {"zipf", kZipf}};
  for (const NodeReport& r : reports) {
    json n = {{"nodes", r.n},         {"slot_bits", r.slot_bits},   {"slots", r.slots},
              {"seconds", r.seconds}, {"load_bound", r.load_bound}, {"sampling", r.sampling}};
    for (const MoveRow& m : r.moves) {
      n["moves"].push_back(
          {{"change", m.change},
           {"scheme", m.scheme},
           {"optimum", m.optimum},
           {"keys_mapped", m.mapped},
           {"keys_moved", m.moved},
           {"keys_old_owner_gone", m.owner_gone},
           {"sampled", m.sampled},
           {"hash_space_moved", m.space_moved >= 0 ? json(m.space_moved) : json(nullptr)},
           {"hash_space_how", m.space_how}});
    }
    for (const LoadRow& l : r.loads) {
      n["loads"].push_back(
          {{"scheme", l.scheme},
           {"share_peak_mean", l.share >= 0 ? json(l.share) : json(nullptr)},
           {"uniform_peak_mean", l.peak_mean.empty() ? json(nullptr) : json(l.peak_mean[0])},
           {"zipf_peak_mean",
            std::vector<double>(l.peak_mean.begin() + (l.peak_mean.empty() ? 0 : 1),
                                l.peak_mean.end())},
           {"how", l.how}});
    }
    for (const CostRow& c : r.costs) {
      n["costs"].push_back({{"scheme", c.scheme},
                            {"ns_per_lookup", c.timing.ns},
                            {"ns_per_lookup_dependent", c.timing.ns_dep},
                            {"lookups_timed", c.timing.lookups},
                            {"client_memory_bytes", c.memory},
                            {"member_event_bytes", c.event_bytes},
                            {"missed_events_bytes", c.resync_bytes},
                            {"change_ms", c.change_ms}});
    }
    for (const Acceptance& a : AcceptanceOf(r)) {
      n["shoal_targets"].push_back(
          {{"figure", a.figure}, {"target", a.target}, {"measured", a.measured}, {"met", a.pass}});
    }
    j["runs"].push_back(n);
  }
  return j;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "shoal-sim: Shoal's slot-table placement against a consistent-hash ring and rendezvous\n"
      "hashing: keys moved per membership change, load balance, lookup time, client cost,\n"
      "re-fetch after a change. Markdown on stdout; exits 1 if a consistency check fails.\n"
      "`shoal-sim fan-in --help`: the fan-in model (many readers of one object).",
      "shoal-sim"};
  Options o;
  bool quick = false;
  app.add_option("--nodes", o.nodes, "Cluster sizes, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_flag("--quick", quick, "Fast run: 1000,10000 nodes and 250000 objects unless given");
  app.add_option(
      "--slot-bits", o.slot_bits,
      "Shoal's table has 2^bits slots (default: 20, or more for >= 40 slots per node: 22 at 100k)");
  app.add_option("--objects", o.objects, "Objects in the workload")->capture_default_str();
  app.add_option("--chunks-per-object", o.chunks, "Chunks per object")->capture_default_str();
  app.add_option("--vnodes", o.vnodes, "Ring: virtual nodes per node")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the changes and timing keys")->capture_default_str();
  app.add_option("--hrw-evals", o.hrw_evals,
                 "Rendezvous: node scores one measurement may compute before it samples")
      ->capture_default_str();
  app.add_option("--json", o.json_path, "Also write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    if (app.count("--nodes") == 0) o.nodes = {1000, 10000};
    if (app.count("--objects") == 0) o.objects = 250000;
  }
  for (int i = 0; i < argc; i++) {
    o.command += (i ? " " : "") + std::string(i ? argv[i] : "build/bin/shoal-sim");
  }
  for (uint32_t n : o.nodes) {
    const uint32_t bits = o.slot_bits != 0 ? o.slot_bits : SlotBitsFor(n);
    if (n < 2 || bits < 10 || bits > 26 || (uint64_t{1} << bits) <= uint64_t{n} + n / 100 + 1) {
      std::fprintf(stderr,
                   "shoal-sim: %u nodes with 2^%u slots: need 2 or more nodes and more slots than "
                   "nodes (--slot-bits 10..26)\n",
                   n, bits);
      return 2;
    }
  }
  if (o.objects == 0 || o.chunks == 0 || o.vnodes == 0) {
    std::fprintf(stderr,
                 "shoal-sim: --objects, --chunks-per-object and --vnodes must be positive\n");
    return 2;
  }

  auto start = Clock::now();
  char when[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  const Workload w = MakeWorkload(o.objects, o.chunks);
  std::fprintf(stderr, "shoal-sim: %zu chunk keys in %.1f s\n", w.size(), Seconds(start));
  Simulator sim(o, w);
  std::vector<NodeReport> reports;
  for (uint32_t n : o.nodes) reports.push_back(sim.Run(n));
  const double seconds = Seconds(start);

  PrintMarkdown(o, w, reports, when, seconds);
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << ToJson(o, w, reports, when, seconds).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "shoal-sim: could not write %s\n", o.json_path.c_str());
      return 1;
    }
  }
  const auto& failures = sim.checks().failures();
  for (const std::string& f : failures)
    std::fprintf(stderr, "shoal-sim: CHECK FAILED: %s\n", f.c_str());
  if (!failures.empty()) {
    std::printf("**%zu consistency checks failed** (see stderr).\n", failures.size());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace shoal::cluster

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "fan-in") return shoal::cluster::FanInMain(argc - 1, argv + 1);
  return shoal::cluster::Main(argc, argv);
}
