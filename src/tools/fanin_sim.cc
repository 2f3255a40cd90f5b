// shoal-sim fan-in: R readers load one object at once through the cluster's fan-in
// (cluster::SwarmTracker, the code the nodes run). For every chunk the readers ask its owner in
// a random order; the tracker answers each with "from me" or a holder, which builds the chunk's
// tree. From the trees:
//   bytes each node sends (the owner's direct copies, each holder's passed-on copies),
//   the deepest tree (hops a chunk takes from the owner),
//   modelled completion: the busiest link's bytes / B, plus the deepest tree's hops x C / B
//     (store-and-forward per chunk: a holder passes a chunk on once it has all of it),
//   the ideal: every link busy (R copies of S over M + R links) plus the shallowest tree,
//   spreading off: every owner sends every reader its chunks.
// Every chunk leaves the object store once (its owner fetches it; the tree does the rest).

#include "tools/fanin_sim.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cluster/swarm.h"

namespace shoal::cluster {
namespace {

constexpr double kMiB = 1048576.0;

struct FanInOptions {
  std::vector<uint32_t> readers = {16, 1000, 10000, 100000};
  uint32_t members = 4;
  double size_mib = 512, chunk_mib = 8, link_mib_s = 64;
  int direct = 4, fanout = 2;
  uint64_t seed = 1;
  std::string json_path;
};

struct FanInReport {
  uint32_t readers = 0;
  double model_s = 0, ideal_s = 0, off_s = 0;
  double most_mib = 0, mean_reader_mib = 0, owner_mib = 0;
  uint32_t deepest = 0, shallowest_possible = 0;
  double store_mib = 0;
  double seconds = 0;  // to simulate
};

// Hops from the owner to the last of `readers` in the shallowest tree: the owner sends
// `direct` copies, every holder passes on `fanout`, each hop doubling what holds it.
uint32_t ShallowestDepth(uint32_t readers, int direct, int fanout) {
  uint64_t have = 0, frontier = direct;
  uint32_t depth = 0;
  while (have < readers) {
    depth++;
    have += frontier;
    frontier *= static_cast<uint64_t>(fanout) + 1;  // new holders pass it on, and so do the old
  }
  return depth;
}

FanInReport Simulate(const FanInOptions& o, uint32_t readers) {
  auto t0 = std::chrono::steady_clock::now();
  const uint32_t chunks = static_cast<uint32_t>(std::ceil(o.size_mib / o.chunk_mib));
  const double chunk_bytes = o.chunk_mib * kMiB;
  // Node ids: members 0..M-1, readers M..M+R-1.
  std::vector<double> sent(o.members + readers, 0);
  std::vector<uint32_t> depth(o.members + readers, 0);
  std::vector<uint32_t> order(readers);
  for (uint32_t i = 0; i < readers; i++) order[i] = o.members + i;
  std::mt19937_64 rng(o.seed + readers);
  SwarmTracker::Options to;
  to.direct = o.direct;
  to.per_holder = o.fanout;
  uint32_t deepest = 0;
  auto id_of = [&](const std::string& s) { return static_cast<uint32_t>(std::stoul(s)); };
  for (uint32_t c = 0; c < chunks; c++) {
    SwarmTracker tracker(to);  // one per owner; a chunk's tree involves only its owner's
    const uint32_t owner = c % o.members;
    const std::string chunk = "chunk" + std::to_string(c);
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t r : order) {
      std::string to_node = tracker.Route(chunk, std::to_string(r));
      uint32_t from = to_node.empty() ? owner : id_of(to_node);
      sent[from] += chunk_bytes;
      depth[r] = (to_node.empty() ? 0 : depth[from]) + 1;
      deepest = std::max(deepest, depth[r]);
    }
  }
  FanInReport rep;
  rep.readers = readers;
  double most = 0, reader_total = 0, owner_most = 0;
  for (uint32_t i = 0; i < sent.size(); i++) {
    most = std::max(most, sent[i]);
    if (i >= o.members) reader_total += sent[i];
    else owner_most = std::max(owner_most, sent[i]);
  }
  const double size = o.size_mib * kMiB, link = o.link_mib_s * kMiB;
  rep.most_mib = most / kMiB;
  rep.mean_reader_mib = reader_total / readers / kMiB;
  rep.owner_mib = owner_most / kMiB;
  rep.deepest = deepest;
  rep.shallowest_possible = ShallowestDepth(readers, o.direct, o.fanout);
  rep.model_s = most / link + deepest * chunk_bytes / link;
  rep.ideal_s = size * readers / ((o.members + readers) * link) + rep.shallowest_possible * chunk_bytes / link;
  // Off: each owner sends its share of the chunks to every reader.
  double owner_share = std::ceil(static_cast<double>(chunks) / o.members) * chunk_bytes;
  rep.off_s = owner_share * readers / link;
  rep.store_mib = chunks * o.chunk_mib;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

std::string Fixed(double x, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

}  // namespace

int FanInMain(int argc, char** argv) {
  CLI::App app{
      "shoal-sim fan-in: R readers load one object at once; the chunk trees the nodes' fan-in\n"
      "tracker builds, what each node sends, and the modelled completion time against the ideal\n"
      "and against spreading off. Markdown on stdout.",
      "shoal-sim fan-in"};
  FanInOptions o;
  bool quick = false;
  app.add_option("--readers", o.readers, "Reader counts, comma-separated")->delimiter(',')->capture_default_str();
  app.add_flag("--quick", quick, "Fast run: 16 and 1000 readers unless given");
  app.add_option("--members", o.members, "Member nodes (chunk owners)")->capture_default_str();
  app.add_option("--size-mib", o.size_mib, "Object size S, MiB")->capture_default_str();
  app.add_option("--chunk-mib", o.chunk_mib, "Chunk size C, MiB (shoald --chunk-size)")->capture_default_str();
  app.add_option("--link-mib-s", o.link_mib_s,
                 "Each node's outgoing link B, MiB/s (the bench's --egress-limit, which a node meets: "
                 "bench/results/cluster_read_bench.md)")
      ->capture_default_str();
  app.add_option("--direct", o.direct, "Copies an owner sends itself (shoald --fan-in-direct)")->capture_default_str();
  app.add_option("--fanout", o.fanout, "Copies a holder passes on (shoald --fan-in-fanout)")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the readers' order")->capture_default_str();
  app.add_option("--json", o.json_path, "Also write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  if (quick && app.count("--readers") == 0) o.readers = {16, 1000};
  if (o.members < 1 || o.direct < 1 || o.fanout < 1 || o.size_mib <= 0 || o.chunk_mib <= 0 || o.link_mib_s <= 0) {
    std::fprintf(stderr, "shoal-sim fan-in: --members, --direct, --fanout and the sizes must be positive\n");
    return 2;
  }
  std::vector<FanInReport> reports;
  for (uint32_t r : o.readers) {
    if (r < 1) continue;
    reports.push_back(Simulate(o, r));
    std::fprintf(stderr, "shoal-sim fan-in: %u readers in %.1f s\n", r, reports.back().seconds);
  }
  std::printf("## Fan-in: R readers of one %s MiB object, %u members, chunks of %s MiB, every link %s MiB/s\n\n",
              Fixed(o.size_mib, 0).c_str(), o.members, Fixed(o.chunk_mib, 0).c_str(), Fixed(o.link_mib_s, 0).c_str());
  std::printf("| readers | modelled s | ideal s | model / ideal | spreading off s | on / off | deepest tree (shallowest "
              "possible) | busiest node sent | mean reader sent | an owner sent | store served |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : reports) {
    std::printf("| %u | %s | %s | %s | %s | %s | %u (%u) | %s MiB | %s MiB | %s MiB | %s MiB |\n", r.readers,
                Fixed(r.model_s).c_str(), Fixed(r.ideal_s).c_str(), Fixed(r.model_s / r.ideal_s, 2).c_str(),
                Fixed(r.off_s, 0).c_str(), Fixed(r.model_s / r.off_s, 4).c_str(), r.deepest, r.shallowest_possible,
                Fixed(r.most_mib, 0).c_str(), Fixed(r.mean_reader_mib, 0).c_str(), Fixed(r.owner_mib, 0).c_str(),
                Fixed(r.store_mib, 0).c_str());
  }
  std::printf("\nOwners send %d copies of a chunk, holders pass it on to %d; the readers ask in a random order per "
              "chunk. Modelled: busiest link's bytes / B + deepest tree x C / B. Ideal: R copies over M + R links "
              "+ the shallowest tree x C / B. Off: each owner sends its chunks to every reader.\n",
              o.direct, o.fanout);
  if (!o.json_path.empty()) {
    nlohmann::json j = {{"size_mib", o.size_mib}, {"chunk_mib", o.chunk_mib}, {"link_mib_s", o.link_mib_s},
                        {"members", o.members}, {"direct", o.direct}, {"fanout", o.fanout}};
    for (const auto& r : reports) {
      j["results"].push_back({{"readers", r.readers}, {"model_s", r.model_s}, {"ideal_s", r.ideal_s},
                              {"off_s", r.off_s}, {"deepest", r.deepest}, {"shallowest", r.shallowest_possible},
                              {"busiest_mib", r.most_mib}, {"mean_reader_mib", r.mean_reader_mib},
                              {"owner_mib", r.owner_mib}, {"store_mib", r.store_mib}});
    }
    std::ofstream(o.json_path) << j.dump(1) << "\n";
  }
  return 0;
}

}  // namespace shoal::cluster
