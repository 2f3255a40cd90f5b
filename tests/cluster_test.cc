// A cluster of shoald processes on loopback (static --peers) in front of a real Azurite
// behind the fault proxy, which counts what the store served: fan-out reads fetch each chunk
// from the store once for the whole cluster, a joining node takes its chunks from their
// previous owners rather than the store, and a read survives a node killed under it.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "cluster/view.h"
#include "common/strings.h"
#include "net/node_protocol.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::NodeMetric;
using testing::CatSha256;
using testing::Shoald;
using testing::Until;

constexpr const char* kBucket = "clustertest";
constexpr uint64_t kMiB = 1ull << 20;

std::string Url(const std::string& key) { return "az://" + std::string(kBucket) + "/" + key; }

using testing::Shoal;

// Every test runs twice: with the membership in --peers, and kept in a real etcd.
class ClusterTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr int kMaxNodes = 5;

  bool WithEtcd() const { return GetParam() == "etcd"; }

  void SetUp() override {
    Status st = proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port()));
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (WithEtcd()) {
      st = etcd_.Start();
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    for (int i = 0; i < kMaxNodes; i++) ports_.push_back(testing::FreePort());
    nodes_.resize(kMaxNodes);
  }

  std::string Endpoint(int i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }

  // --peers for a cluster of the first `members` nodes.
  std::string Peers(int members) const {
    std::string out;
    for (int i = 0; i < members; i++) out += (i ? "," : "") + ("n" + std::to_string(i)) + "=" + Endpoint(i);
    return out;
  }

  // Starts node `i` as a member of a cluster of the first `members` nodes (static), or as
  // one more member in etcd.
  void StartNode(int i, int members) {
    nodes_[i] = std::make_unique<Shoald>();
    std::vector<std::string> flags = {"--listen", Endpoint(i)};
    if (WithEtcd()) {
      flags.insert(flags.end(), {"--etcd", etcd_.Endpoint(), "--node-id", "n" + std::to_string(i)});
    } else {
      flags.insert(flags.end(), {"--peers", Peers(members)});
    }
    flags.insert(flags.end(), extra_.begin(), extra_.end());
    if (env_.count(i)) nodes_[i]->SetEnv(env_[i]);
    Status st = nodes_[i]->Start(proxy_.port(), flags);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Starts nodes 0..n-1 and waits until they agree on a membership of n.
  void StartCluster(int n) {
    for (int i = 0; i < n; i++) StartNode(i, n);
    WaitForMembers(n);
  }

  // Nodes 0..n-1 of a static cluster, each once it has caught up: at its first refresh it asks
  // the others to announce again what they keep, which would count writes made before twice.
  void StartClusterCaughtUp(int n) {
    StartCluster(n);
    for (int i = 0; i < n; i++) {
      ASSERT_TRUE(Until([&] { return nodes_[i]->Log().find("caught up") != std::string::npos; }, std::chrono::seconds(10)))
          << nodes_[i]->Log();
    }
  }
  // A small write of `url` (pattern `seed`, `size` bytes) through node 0, then `stat` through
  // each of nodes 1..members-1: every one names it, with its size, at once.
  void WriteThroughNode0SeenBy(int members, const std::string& url, int seed, uint64_t size) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(seed, size), url});
    ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
    for (int n = 1; n < members; n++) {
      auto stat = Shoal({"stat", "--cache", Endpoint(n), url});
      EXPECT_EQ(stat.exit_code, 0) << "through node " << n << ": " << stat.err;
      EXPECT_NE(stat.out.find(std::to_string(size)), std::string::npos) << stat.out;
    }
  }


  // Starts nodes 0..n-1 as StartCluster does, each with the fault shim (LD_PRELOAD) and a file
  // of ports it cannot reach (SHOAL_FAULTNET_CUT): CutOff cuts one's links to another, Mend
  // restores them.
  void StartClusterWithCuttableLinks(int n) {
    for (int i = 0; i < n; i++) {
      std::ofstream(CutFile(i), std::ios::trunc).flush();
      env_[i] = {{"LD_PRELOAD", testing::FaultFsLibrary()}, {"SHOAL_FAULTNET_CUT", CutFile(i)}};
    }
    StartCluster(n);
  }
  std::string CutFile(int i) { return files_.path() + "/cut-" + std::to_string(i); }
  // Node `from` can no longer reach node `to` (its connections are refused; `to` still reaches it).
  void CutOff(int from, int to) { std::ofstream(CutFile(from), std::ios::trunc) << ports_[to] << "\n"; }
  void Mend(int from) { std::ofstream(CutFile(from), std::ios::trunc).flush(); }

  // Writes 96 MiB more through node `node` (four objects `prefix`0-3 of pattern bytes from
  // `seed`), each waited for until durable: past a --capacity of 64MiB, earlier chunks are evicted.
  void FillCacheOf(int node, uint64_t seed, const std::string& prefix) {
    for (int i = 0; i < 4; i++) {
      auto more = Shoal({"cp", "-q", "--cache", Endpoint(node), PatternFile(seed + i, 24 * kMiB),
                         Url(prefix + std::to_string(i))});
      ASSERT_EQ(more.exit_code, 0) << more.err;
      ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(node), std::chrono::seconds(120))) << nodes_[node]->Log();
    }
    ASSERT_GT(NodeMetric(Endpoint(node), "shoal_cache_evictions_total"), 0u);
  }

  // shoal_uploaded_write_fetches_total summed over nodes 0..n-1 once it is `expected` (or after
  // 10 s): a node counts such a fetch once it has ended, which may be after its reader got the
  // last byte.
  uint64_t UploadedWriteFetches(int n, uint64_t expected) {
    uint64_t sum = 0;
    Until([&] {
      sum = 0;
      for (int i = 0; i < n; i++) sum += NodeMetric(Endpoint(i), "shoal_uploaded_write_fetches_total");
      return sum == expected;
    }, std::chrono::seconds(10));
    return sum;
  }

  // Waits until every running node sees `members` members at the same epoch.
  void WaitForMembers(int members) {
    bool agreed = Until([&] {
      uint64_t epoch = 0;
      for (int i = 0; i < kMaxNodes; i++) {
        if (!nodes_[i] || !nodes_[i]->Running()) continue;
        if (NodeMetric(Endpoint(i), "shoal_cluster_members") != static_cast<uint64_t>(members)) return false;
        uint64_t e = NodeMetric(Endpoint(i), "shoal_cluster_epoch");
        if (epoch != 0 && e != epoch) return false;
        epoch = e;
      }
      return true;
    }, std::chrono::seconds(60));
    ASSERT_TRUE(agreed) << "the nodes did not agree on " << members << " members; node 0's log:\n" << nodes_[0]->Log();
  }

  // The one node (of 1-3) that holds a copy of node 0's write of `size` bytes; -1 if none.
  int HolderOfCopy(uint64_t size) {
    int holder = -1;
    for (int i = 1; i < 4; i++) {
      if (NodeMetric(Endpoint(i), "shoal_replica_objects") != 1) continue;
      EXPECT_EQ(holder, -1) << "two copies where one was wanted";
      EXPECT_EQ(NodeMetric(Endpoint(i), "shoal_replica_bytes_total"), size);
      holder = i;
    }
    return holder;
  }

  // Node 0 (the origin of a write to `key` whose copy `holder` has) dies with the store
  // refusing uploads; the store comes back; the holder takes the write over and uploads it.
  void CrashOriginAndExpectTheHolderUploads(int holder, const std::string& key, const std::string& sha256) {
    nodes_[0]->Crash();
    ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
    ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(holder), "shoal_replica_takeovers_total") == 1; },
                      std::chrono::seconds(60)))
        << nodes_[holder]->Log();
    ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(holder), std::chrono::seconds(120))) << nodes_[holder]->Log();
    EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key), sha256);
  }

  // With the store refusing uploads, writes `size` pattern bytes from `seed` to `key` through
  // node 0; the node (of 1-3) holding its copy, or -1 (the test has failed then).
  int WriteThroughNode0WithTheStoreDown(uint64_t seed, uint64_t size, const std::string& key) {
    EXPECT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(seed, size), Url(key)});
    EXPECT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
    int holder = cp.exit_code == 0 ? HolderOfCopy(size) : -1;
    EXPECT_NE(holder, -1) << "the acknowledged write has a copy on another node";
    return holder;
  }

  // A file of `size` pattern bytes from `seed` (testing/data.h), in the test's temp dir.
  std::string PatternFile(uint64_t seed, uint64_t size) {
    std::string file = files_.path() + "/pattern-" + std::to_string(seed) + "-" + std::to_string(size);
    EXPECT_TRUE(testing::WritePatternFile(file, seed, size));
    return file;
  }

  // The homes of each name of `keys` (the first two members of its first chunk's route, every
  // member live), as node indices, by the view node 1 routes by.
  std::vector<std::pair<int, int>> HomesOf(const std::vector<std::string>& keys) {
    auto got = testing::RunCommand(
        {"curl", "-sS", "--max-time", "10", "http://" + Endpoint(1) + std::string(proto::kClusterViewPath) + "?current=1"});
    auto view = cluster::View::Decode(got.out);
    EXPECT_TRUE(view.ok()) << view.status().ToString() << got.err;
    std::vector<std::pair<int, int>> out;
    for (const auto& key : keys) {
      const auto homes = view.ok() ? (*view)->RouteOf(Url(key), 0, 2).replicas : std::vector<cluster::Peer>{};
      auto index = [&](size_t i) { return i < homes.size() ? std::stoi(homes[i].member.id.substr(1)) : -1; };
      out.emplace_back(index(0), index(1));
    }
    return out;
  }
  // `count` names under `prefix` whose first home is node 0 (at most 64 tried per name wanted).
  std::vector<std::string> NamesHomedAtNode0(const std::string& prefix, size_t count) {
    std::vector<std::string> candidates, names;
    for (size_t k = 0; k < 64 * count; k++) candidates.push_back(prefix + std::to_string(k));
    const auto homes = HomesOf(candidates);
    for (size_t k = 0; k < homes.size() && names.size() < count; k++) {
      if (homes[k].first == 0) names.push_back(candidates[k]);
    }
    EXPECT_EQ(names.size(), count) << "names under " << prefix << " homed on node 0";
    return names;
  }

  uint64_t StoreBytes() {
    auto stats = proxy_.Stats();
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->upstream_response_bytes : 0;
  }

  // Puts a pattern object straight into Azurite; its sha256.
  std::string PutObject(const std::string& key, uint64_t seed, uint64_t size) {
    auto cp = Shoal({"cp", "-q", PatternFile(seed, size), Url(key)});
    EXPECT_EQ(cp.exit_code, 0) << cp.err;
    return testing::PatternSha256(seed, size);
  }

  testing::FaultProxy proxy_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<Shoald>> nodes_;
  std::vector<std::string> extra_;  // more flags for every node
  std::map<int, std::map<std::string, std::string>> env_;  // more environment for node i
  testing::Etcd etcd_;
  testing::TempDir files_;
};

// Four nodes read a 256 MiB object cold: the store serves it exactly once, spread over every
// node; warm, not at all. A fifth node joins: it takes about 1/5 of the 32 chunks, and finds
// them on their previous owners, so re-reading the dataset costs the store at most 1% of it
// (less than one chunk: nothing).
TEST_P(ClusterTest, AJoiningNodeTakesItsChunksFromPreviousOwnersNotTheStore) {
  const uint64_t size = 256 * kMiB;
  const std::string want = PutObject("ds/data.bin", 5, size);
  const std::string url = Url("ds/data.bin");
  StartCluster(4);

  uint64_t before = StoreBytes();
  ASSERT_EQ(CatSha256(url, Endpoint(0)), want);
  EXPECT_EQ(StoreBytes() - before, size) << "each chunk is fetched from the store once for the cluster";
  uint64_t fetched = 0;
  for (int i = 0; i < 4; i++) {
    uint64_t got = NodeMetric(Endpoint(i), "shoal_store_get_bytes_total");
    EXPECT_GT(got, 0u) << "node " << i << " owns chunks of the object";
    fetched += got;
  }
  EXPECT_EQ(fetched, size);

  before = StoreBytes();
  ASSERT_EQ(CatSha256(url, Endpoint(1)), want);
  EXPECT_EQ(StoreBytes() - before, 0u) << "a warm cluster serves the object from its disks";

  StartNode(4, 5);
  WaitForMembers(5);

  before = StoreBytes();
  ASSERT_EQ(CatSha256(url, Endpoint(0)), want);
  uint64_t refetched = StoreBytes() - before;
  EXPECT_LE(refetched, size / 100) << "re-read after the join cost the store " << FormatBytes(refetched);
  uint64_t moved = NodeMetric(Endpoint(4), "shoal_previous_owner_hits_total");
  EXPECT_GT(moved, 0u) << "the new node owns some chunks and took them from their previous owners";
  EXPECT_EQ(NodeMetric(Endpoint(4), "shoal_peer_fetch_bytes_total"), moved * 8 * kMiB);
}

// A node killed (kill -9) while a 256 MiB read is fetching chunks from it: the read goes on
// through the next replica, and the reader gets every byte right.
TEST_P(ClusterTest, AReadSurvivesANodeKilledUnderIt) {
  const uint64_t size = 256 * kMiB;
  const std::string want = PutObject("crash/data.bin", 6, size);
  const std::string url = Url("crash/data.bin");
  StartCluster(4);
  // A slow store keeps the read going long enough to kill a node in its middle.
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.latency_ms = 20, .bandwidth = 16 * kMiB}).ok());

  std::string got;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    got = CatSha256(url, Endpoint(0));
    done = true;
  });
  ASSERT_TRUE(Until([&] {
    uint64_t served = NodeMetric(Endpoint(2), "shoal_bytes_served_total");
    return served != UINT64_MAX && served >= 16 * kMiB;
  })) << "node 2 serves its chunks";
  nodes_[2]->Crash();
  EXPECT_FALSE(done) << "the node died in the middle of the read";
  reader.join();
  EXPECT_EQ(got, want);
  uint64_t survivors = 0;
  for (int i : {0, 1, 3}) survivors += NodeMetric(Endpoint(i), "shoal_store_get_bytes_total");
  EXPECT_LT(survivors, size) << "the survivors fetched only their own chunks and the dead node's";
}

// The established TCP connections process `pid` holds to 127.0.0.1:`port` now (its socket
// descriptors matched against /proc/net/tcp).
int ConnectionsTo(pid_t pid, int port) {
  std::set<std::string> inodes;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    std::string link = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && StartsWith(link, "socket:[")) inodes.insert(link.substr(8, link.size() - 9));
  }
  char want[16];
  std::snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the column names
  std::set<std::string> seen;  // by inode: a table that changes while it is read may show a line twice
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    in >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    if (remote == want && state == "01" && inodes.count(inode)) seen.insert(inode);
  }
  return static_cast<int>(seen.size());
}

// Node 0 serves 16 readers of an object cold at once with 8 fetch threads, about half of whose
// chunks node 1 owns, through a slow store: its calls to node 1 overlap, yet it never holds more
// than --peer-connections (2) connections to it, sampled every few ms and counted by what node 1
// accepted; the calls past them waited for one, and every reader got every byte right.
TEST_P(ClusterTest, ANodeKeepsAtMostPeerConnectionsToAnotherUnderLoad) {
  const uint64_t size = 128 * kMiB;
  const std::string want = PutObject("conns/data.bin", 12, size);
  extra_ = {"--peer-connections", "2", "--fetch-threads", "8"};
  StartCluster(2);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.latency_ms = 100}).ok());
  const uint64_t accepted = NodeMetric(Endpoint(1), "shoal_connections_accepted_total");
  std::atomic<bool> done{false};
  int most = 0, samples = 0;
  std::thread sampler([&] {
    while (!done) {
      most = std::max(most, ConnectionsTo(nodes_[0]->Pid(), ports_[1]));
      samples++;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::vector<CommandResult> results(16);
  std::vector<std::thread> readers;
  for (int i = 0; i < 16; i++) {
    readers.emplace_back([&, i] {
      results[i] = testing::RunCommand({"bash", "-c", "curl -sSf 'http://" + Endpoint(0) +
                                                          "/v1/object?url=az%3A%2F%2F" + kBucket +
                                                          "%2Fconns%2Fdata.bin' | sha256sum"});
    });
  }
  for (auto& t : readers) t.join();
  done = true;
  sampler.join();
  for (int i = 0; i < 16; i++) EXPECT_EQ(results[i].out.substr(0, 64), want) << i << ": " << results[i].err;
  EXPECT_GT(NodeMetric(Endpoint(0), "shoal_peer_fetches_total"), 0u) << "node 1's chunks came from node 1";
  EXPECT_GT(NodeMetric(Endpoint(0), "shoal_peer_connection_waits_total"), 0u) << "calls waited for a connection";
  EXPECT_GE(most, 1) << samples << " samples";
  EXPECT_LE(most, 2) << samples << " samples";
  // Node 1 accepted at most 2 connections from node 0 meanwhile (and this read of its metrics).
  EXPECT_LE(NodeMetric(Endpoint(1), "shoal_connections_accepted_total") - accepted, 2u + 1u);
}

// A node stopped with SIGTERM that does not come back (static membership: it stays a member).
// It told the others it restarts in place, so the reads of its chunks wait for it, for
// --down-grace at most, then take them from the store: the read completes byte-identical, and
// the store serves exactly the stopped node's chunks, each once.
TEST_P(ClusterTest, ANodeThatSaidItRestartsButStaysAwayIsWaitedForAtMostItsGrace) {
  if (WithEtcd()) {
    GTEST_SKIP() << "with etcd its lease lapses as the wait ends and its slots move; AReadSurvivesANodeKilledUnderIt "
                    "reads across that";
  }
  extra_ = {"--down-grace", "3", "--chunk-size", "1MiB"};
  StartCluster(4);
  const uint64_t size = (12ull << 20) + 5;
  const std::string want = PutObject("away/data.bin", 11, size);
  const std::string url = Url("away/data.bin");
  ASSERT_EQ(CatSha256(url, Endpoint(0)), want);  // cold: each owner fetches its own chunks
  const uint64_t owned_by_n1 = NodeMetric(Endpoint(1), "shoal_store_get_bytes_total");
  ASSERT_GT(owned_by_n1, 0u);
  ASSERT_LT(owned_by_n1, size);
  EXPECT_EQ(nodes_[1]->Terminate(std::chrono::seconds(10)), 0) << nodes_[1]->Log();
  EXPECT_NE(nodes_[1]->Log().find("told 3 of 3 members that this node restarts in place"), std::string::npos)
      << nodes_[1]->Log();
  const uint64_t before = StoreBytes();
  EXPECT_EQ(CatSha256(url, Endpoint(0)), want);
  EXPECT_EQ(StoreBytes() - before, owned_by_n1) << "n1's chunks, each once, once the wait was over";
  uint64_t waits = 0;
  for (int i : {0, 2, 3}) waits += NodeMetric(Endpoint(i), "shoal_peer_restart_waits_total");
  EXPECT_GT(waits, 0u) << "the reads of n1's chunks waited for it first";
}

// The reads of a restarting node's chunks wait for it without holding a fetch thread each: node
// 0 has one (--fetch-threads 1); while a read of n1's chunks waits for n1 (stopped with SIGTERM,
// it said it restarts in place), a read of a chunk n2 owns goes through node 0 at once, and once
// n1 is back the waiting read completes from it: the store serves nothing for either. (Before,
// each waiting chunk held a fetch thread: the second read waited the whole --down-grace, and
// then the first went to the store.)
TEST_P(ClusterTest, ReadsWaitingForARestartingOwnerHoldNoFetchThread) {
  if (WithEtcd()) GTEST_SKIP() << "with etcd the wait is the same; its lease and rejoin are tested by the rolling restart";
  extra_ = {"--down-grace", "30", "--chunk-size", "1MiB", "--fetch-threads", "1", "--readahead", "0"};
  StartCluster(3);
  auto get_bytes = [&](int i) { return NodeMetric(Endpoint(i), "shoal_store_get_bytes_total"); };
  const uint64_t size = (12ull << 20) + 5;
  const std::string want = PutObject("waits/data.bin", 21, size);
  const std::string url = Url("waits/data.bin");
  ASSERT_EQ(CatSha256(url, Endpoint(2)), want);  // cold, through node 2: each owner fetches its own chunks
  ASSERT_GT(get_bytes(1), 0u) << "n1 owns some of its chunks";
  // A one-chunk object that n2 owns: read cold through n2, only n2 takes it from the store.
  std::string other, other_want;
  for (int k = 0; k < 40 && other.empty(); k++) {
    const uint64_t before[3] = {get_bytes(0), get_bytes(1), get_bytes(2)};
    const std::string key = "waits/small-" + std::to_string(k);
    const std::string sum = PutObject(key, 100 + k, 4096 + k);
    ASSERT_EQ(CatSha256(Url(key), Endpoint(2)), sum);
    if (get_bytes(2) - before[2] == 4096u + k && get_bytes(0) == before[0] && get_bytes(1) == before[1]) {
      other = Url(key);
      other_want = sum;
    }
  }
  ASSERT_FALSE(other.empty()) << "no key among 40 owned by n2";

  ASSERT_EQ(nodes_[1]->Terminate(std::chrono::seconds(10)), 0) << nodes_[1]->Log();
  ASSERT_NE(nodes_[1]->Log().find("told 2 of 2 members that this node restarts in place"), std::string::npos)
      << nodes_[1]->Log();
  // One GET to node 0 (not the client, which would ask each chunk's owner itself): node 0
  // fetches every chunk it does not hold.
  auto through0 = [&](const std::string& object) {
    auto r = testing::RunCommand({"bash", "-o", "pipefail", "-c",
                                  "curl -sS -f 'http://" + Endpoint(0) + "/v1/object?url=" + UriEncode(object, false) +
                                      "' | sha256sum"});
    return r.out.substr(0, 64) + r.err;
  };
  const uint64_t store_before = StoreBytes();
  std::atomic<bool> first_done{false};
  std::string first_sha;
  std::thread first([&] {
    first_sha = through0(url);
    first_done = true;
  });
  struct Joiner {
    std::thread& t;
    ~Joiner() { t.join(); }
  } joiner{first};
  // Started again however the checks below go, so that the read ends.
  struct Restarter {
    std::function<void()> start;
    void Now() {
      if (start) start();
      start = nullptr;
    }
    ~Restarter() { Now(); }
  } restarter{[&] { ASSERT_TRUE(nodes_[1]->StartAgain(proxy_.port()).ok()) << nodes_[1]->Log(); }};
  ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_peer_restart_waits_total") > 0; },
                    std::chrono::seconds(20)))
      << nodes_[0]->Log();
  EXPECT_EQ(through0(other), other_want) << nodes_[0]->Log();
  // Done while n1's chunks still wait: none of them taken from the store yet (before, this read
  // came only once the grace was over and they had gone to the store).
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_store_gets_for_others_total"), 0u);
  EXPECT_FALSE(first_done.load()) << "the read of n1's chunks waits for n1, which is not back";
  restarter.Now();
  while (!first_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(first_sha, want);
  EXPECT_EQ(StoreBytes() - store_before, 0u) << "n1's chunks came from n1 once it was back";
}

// A 96 MiB write through node 0 with two copies (--replicas 2) while the store refuses every
// upload; node 0 is killed (-9) and stays dead. The node holding the copy waits out
// --down-grace, uploads it itself, and the blob in Azurite is byte-identical to the file.
TEST_P(ClusterTest, AWriteSurvivesKillNineOfTheNodeThatTookItBeforeItsUpload) {
  const uint64_t size = 96 * kMiB;
  std::string file = PatternFile(7, size);
  const std::string want = testing::PatternSha256(7, size);
  const std::string dir = "ckpt-" + std::string(GetParam()) + "/";  // the marker stays in the store
  const std::string url = Url(dir + "rank0.bin");
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());

  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), file, url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  int holder = HolderOfCopy(size);
  ASSERT_NE(holder, -1) << "the acknowledged write has a copy on another node";
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 1u);
  // A third node commits the prefix (its one shard) at once, the store down: its marker names
  // the write by its local version, and waits to be uploaded after it.
  int third = holder == 1 ? 2 : 1;
  auto commit = Shoal({"commit", "--expect", "1", "--shard-name", "rank{rank}.bin", "--timeout", "10", "--cache",
                       Endpoint(third), Url(dir)});
  ASSERT_EQ(commit.exit_code, 0) << commit.err;
  auto store = testing::Servers().azurite.Store(kBucket);
  EXPECT_TRUE(store->Head(dir + "_SHOAL_COMMITTED").status().IsNotFound());

  CrashOriginAndExpectTheHolderUploads(holder, dir + "rank0.bin", want);
  // The marker follows the write it names, with the ETag the holder's upload gave it.
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(third), std::chrono::seconds(60))) << nodes_[third]->Log();
  // No copy is left on the holder: the write's became its own, and the marker's (when the
  // marker's copy went there) is dropped once the marker is uploaded.
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(holder), "shoal_replica_objects") == 0; },
                    std::chrono::seconds(30)))
      << nodes_[holder]->Log();
  auto head = store->Head(dir + "rank0.bin");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  std::string text;
  ASSERT_TRUE(store->Get(dir + "_SHOAL_COMMITTED", {}, [&](const char* d, size_t n) {
                     text.append(d, n);
                     return Status::Ok();
                   }).ok());
  auto marker = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(marker.is_object()) << text;
  ASSERT_EQ(marker["contents"].size(), 1u) << text;
  EXPECT_EQ(marker["contents"][0]["key"], "rank0.bin");
  EXPECT_EQ(marker["contents"][0]["size"], size);
  EXPECT_EQ(marker["contents"][0]["etag"], head->etag) << text;
}

// Restore on another host: two ranks write their shards through their own members while the
// store refuses every request, and rank 0 commits the step (--expect 2): the commit returns at
// once, and a job on a third member finds the step with `shoal latest` and reads both shards,
// byte-identical, without a request to the store. The node that took rank 0's shard and the
// marker is then killed (-9): both are still read, from their copies. Once the store is back,
// the copies' holders upload them, and the marker reaches the store last, naming the store's
// ETags, so `shoal latest` straight on the store finds the step too.
TEST_P(ClusterTest, ACheckpointCommittedThroughTheClusterIsRestoredOnAnotherMemberAtOnce) {
  if (WithEtcd()) GTEST_SKIP() << "homes and copies do not depend on the membership; the read-your-writes test runs both";
  extra_ = {"--replicas", "2", "--down-grace", "3"};
  StartCluster(3);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  const std::string run = Url("restore/run1/"), step = run + "step7/";
  const uint64_t size = 9 * kMiB + 1;  // two chunks
  for (int rank = 0; rank < 2; rank++) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(rank), PatternFile(90 + rank, size),
                     step + "rank-" + std::to_string(rank)});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
  }
  auto commit = Shoal({"commit", "--expect", "2", "--timeout", "30", "--cache", Endpoint(0), step});
  ASSERT_EQ(commit.exit_code, 0) << commit.err << nodes_[0]->Log();
  EXPECT_NE(commit.out.find("committed 2 objects"), std::string::npos) << commit.out;
  auto store = testing::Servers().azurite.Store(kBucket);
  EXPECT_TRUE(store->Head("restore/run1/step7/_SHOAL_COMMITTED").status().IsNotFound());

  const uint64_t store_bytes = StoreBytes();
  auto restore = [&](int through) {
    SCOPED_TRACE("restored through n" + std::to_string(through));
    auto latest = Shoal({"latest", "--cache", Endpoint(through), run});
    EXPECT_EQ(latest.exit_code, 0) << latest.err;
    EXPECT_EQ(latest.out, step + "\n") << latest.err;
    for (int rank = 0; rank < 2; rank++) {
      EXPECT_EQ(CatSha256(step + "rank-" + std::to_string(rank), Endpoint(through)), testing::PatternSha256(90 + rank, size))
          << "rank " << rank << " through n" << through;
    }
  };
  restore(2);
  nodes_[0]->Crash();
  restore(1);
  EXPECT_EQ(StoreBytes(), store_bytes) << "nothing came from the store";

  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  auto flush = Shoal({"flush", "--wait", "--timeout", "120", "--cache", Endpoint(1), run});
  ASSERT_EQ(flush.exit_code, 0) << flush.err << nodes_[1]->Log() << nodes_[2]->Log();
  ASSERT_TRUE(Until([&] { return store->Head("restore/run1/step7/_SHOAL_COMMITTED").ok(); }, std::chrono::seconds(60)))
      << nodes_[1]->Log() << nodes_[2]->Log();
  auto direct = Shoal({"latest", run});
  EXPECT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_EQ(direct.out, step + "\n") << direct.err;
  for (int rank = 0; rank < 2; rank++) {
    EXPECT_EQ(testing::ObjectSha256(*store, "restore/run1/step7/rank-" + std::to_string(rank)),
              testing::PatternSha256(90 + rank, size));
  }
  restore(2);
}

// Read-your-writes across the cluster: a write acknowledged through node 0, with the store
// refusing every request (so the write exists only on node 0 and its copy's holder), is seen
// at once by `stat` and `cat` through the other members: its chunks come from the nodes
// holding it, never from the store. Node 0 is then killed (-9): the copy's holder serves it to
// a member that had not read it yet, and the holder's copy is listed, before its --down-grace
// is over and it takes the upload over.
TEST_P(ClusterTest, AWriteThroughOneMemberIsReadThroughEveryOtherAtOnce) {
  extra_ = {"--replicas", "2", "--down-grace", "60"};
  StartCluster(4);
  const uint64_t size = 20 * kMiB + 17;  // three chunks
  const std::string url = Url("ryw/shard-0.bin");
  const int holder = WriteThroughNode0WithTheStoreDown(71, size, "ryw/shard-0.bin");
  ASSERT_NE(holder, -1);
  const std::string want = testing::PatternSha256(71, size);
  const int late = holder == 3 ? 2 : 3;  // reads only once node 0 is dead
  const uint64_t store_gets = proxy_.Stats()->get_requests;
  for (int i = 1; i < 4; i++) {
    if (i == late) continue;
    auto stat = Shoal({"stat", "--cache", Endpoint(i), url});
    EXPECT_EQ(stat.exit_code, 0) << "through n" << i << ": " << stat.err;
    EXPECT_NE(stat.out.find(std::to_string(size)), std::string::npos) << stat.out;
    EXPECT_NE(stat.out.find("local"), std::string::npos) << stat.out;
    EXPECT_EQ(CatSha256(url, Endpoint(i)), want) << "through n" << i << "\n" << nodes_[i]->Log();
  }
  // The member that is not the holder read the three chunks from node 0; the holder has them.
  const int reader = 6 - holder - late;
  EXPECT_EQ(NodeMetric(Endpoint(reader), "shoal_holder_fetches_total"), 3u);
  EXPECT_EQ(NodeMetric(Endpoint(holder), "shoal_holder_fetches_total"), 0u);
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets) << "the store was not asked for the write";
  // The listing too: the store cannot be listed (it is asked: List Blobs is a GET), so it
  // shows what the cluster holds, and says so.
  for (int i = 1; i < 4; i++) {
    auto ls = Shoal({"ls", "--cache", Endpoint(i), Url("ryw/")});
    EXPECT_EQ(ls.exit_code, 0) << "through n" << i << ": " << ls.err;
    EXPECT_NE(ls.out.find(std::to_string(size) + "  ryw/shard-0.bin"), std::string::npos) << ls.out;
    EXPECT_NE(ls.err.find("warning: the object store could not be listed"), std::string::npos) << ls.err;
  }
  // A copy of a prefix must see every key: it fails rather than take the cluster's part alone.
  auto down = Shoal({"cp", "-r", "--cache", Endpoint(late), Url("ryw/"), files_.path() + "/down/"});
  EXPECT_NE(down.exit_code, 0) << down.out;
  const uint64_t listed_gets = proxy_.Stats()->get_requests;

  nodes_[0]->Crash();
  // At once: if node 0 was the object's first home, its second home was told with it.
  auto stat = Shoal({"stat", "--cache", Endpoint(late), url});
  EXPECT_EQ(stat.exit_code, 0) << stat.err << nodes_[late]->Log();
  EXPECT_EQ(CatSha256(url, Endpoint(late)), want) << nodes_[late]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(late), "shoal_holder_fetches_total"), 3u) << "from the copy's holder";
  EXPECT_EQ(proxy_.Stats()->get_requests, listed_gets);
  // Listed too (the store is asked, and cannot list): node 0 cannot say it has the write, so
  // its copy's holder does.
  auto ls = Shoal({"ls", "--cache", Endpoint(late), Url("ryw/")});
  EXPECT_NE(ls.out.find(std::to_string(size) + "  ryw/shard-0.bin"), std::string::npos) << ls.out << ls.err;
  EXPECT_EQ(NodeMetric(Endpoint(holder), "shoal_replica_takeovers_total"), 0u) << "read before the holder took it over";
}

// Writes acknowledged through node 0 and not yet uploaded (the store refuses every request),
// then node 1 killed -9: it was the first home of some of them (the member their readers ask).
// Every write is still stat'ed and read through the other members on the very next request,
// from the second home, which was told with the first; no chunk comes from the store. 24
// objects, so that node 1 is the first home of several whatever the members' ids.
TEST_P(ClusterTest, AWriteIsReadAtOnceThroughEveryMemberAfterItsHomeIsKilled) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the read-your-writes test runs both";
  extra_ = {"--replicas", "2", "--down-grace", "60"};
  StartCluster(4);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  constexpr int kObjects = 24;
  const uint64_t size = 64 * 1024 + 3;
  const std::string dir = files_.path() + "/homes";
  std::filesystem::create_directories(dir);
  for (int i = 0; i < kObjects; i++) {
    ASSERT_TRUE(testing::WritePatternFile(dir + "/f" + std::to_string(i), 300 + i, size));
  }
  auto cp = Shoal({"cp", "-r", "-q", "--cache", Endpoint(0), dir + "/", Url("homes/")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  ASSERT_GT(NodeMetric(Endpoint(1), "shoal_homed_writes"), 0u) << "node 1 is a home of some of the writes";
  const uint64_t store_gets = proxy_.Stats()->get_requests;

  nodes_[1]->Crash();
  for (int i = 0; i < kObjects; i++) {
    const std::string url = Url("homes/f" + std::to_string(i));
    auto stat = Shoal({"stat", "--cache", Endpoint(3), url});
    EXPECT_EQ(stat.exit_code, 0) << url << " through n3: " << stat.err;
    EXPECT_EQ(CatSha256(url, Endpoint(2)), testing::PatternSha256(300 + i, size)) << url << " through n2";
  }
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets) << "every chunk came from the nodes holding it";
}

// A reader that began on a write before its upload names the write's version for the rest (as
// a client reading chunk by chunk does). If the write is uploaded meanwhile and the node that
// took it lets its chunks go (evicted here by later writes, past its --capacity), the rest
// comes from the store, as uploaded: the write's home knows what it became. Before, the reader
// got 412 "no longer held ... read it again" (the soak saw 25 such reads in 15 minutes).
// Without copies (--replicas 1): a copy's holder keeps it as cached chunks after the upload,
// which would fill node 1's cache with the later writes' copies too.
TEST_P(ClusterTest, AReaderOfAWriteGetsItFromTheStoreOnceItsHoldersLetItGo) {
  if (WithEtcd()) GTEST_SKIP() << "where a write's chunks are read from does not depend on the membership";
  extra_ = {"--capacity", "64MiB", "--memory-cache", "0", "--replicas", "1"};
  StartCluster(3);
  const uint64_t size = 20 * kMiB + 17;  // three chunks
  const std::string url = Url("letgo/shard.bin");
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(81, size), url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  const std::string through1 = "http://" + Endpoint(1) + "/v1/object?url=" + UriEncode(url, false);
  const std::string through0 = "http://" + Endpoint(0) + "/v1/object?url=" + UriEncode(url, false);
  auto head = testing::EtagThroughNode(Endpoint(1), url);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  const std::string version = *head;
  ASSERT_EQ(version.rfind("local-", 0), 0u) << "read through node 1 before its upload: " << version;
  auto pinned = [&](const std::string& endpoint, const std::string& how) {
    std::vector<std::string> args = {"curl", "-sS", "-o", files_.path() + "/pinned", "-w", "%{http_code}",
                                     "-H", "X-Shoal-Etag: " + version, "-H", "X-Shoal-Size: " + std::to_string(size)};
    if (!how.empty()) args.insert(args.end(), {"-H", "X-Shoal-Read: " + how, "-H", "Range: bytes=0-1023"});
    args.push_back(endpoint);
    return testing::RunCommand(args).out;
  };

  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(120))) << nodes_[0]->Log();
  ASSERT_NO_FATAL_FAILURE(FillCacheOf(0, 90, "letgo/later-"));  // the write's chunks are evicted there
  ASSERT_EQ(pinned(through0, "held"), "404") << "node 0 no longer holds the write's first chunk";

  const uint64_t store_gets = proxy_.Stats()->get_requests;
  const uint64_t cached = NodeMetric(Endpoint(1), "shoal_cache_bytes");
  EXPECT_EQ(pinned(through1, ""), "200") << nodes_[1]->Log();
  EXPECT_EQ(testing::FileSha256(files_.path() + "/pinned"), testing::PatternSha256(81, size));
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets + 3) << "each chunk once, from the store";
  EXPECT_EQ(UploadedWriteFetches(3, 3), 3u);
  // Node 1 keeps each chunk once, under the version its reader names (before, also under the
  // store's ETag: twice the bytes).
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_cache_bytes"), cached + size);
  auto again = testing::RunCommand({"curl", "-sS", "-o", files_.path() + "/again", through1});
  EXPECT_EQ(testing::FileSha256(files_.path() + "/again"), testing::PatternSha256(81, size)) << again.err;
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets + 3) << "read again by the store's ETag: from node 1's cache";
}

// As above, but the write's home restarted after the upload: it knows nothing of the write
// (its entries are in memory), so it asks the store, whose write stamp names the write it
// holds. Before, the reader got 412 "no longer held ... read it again" (one path to the 73
// such reads of a 30-minute soak, whose members restarted every minute).
TEST_P(ClusterTest, AReaderOfAWriteGetsItFromTheStoreAfterItsHomeRestarted) {
  if (WithEtcd()) GTEST_SKIP() << "where a write's chunks are read from does not depend on the membership";
  extra_ = {"--capacity", "64MiB", "--memory-cache", "0", "--replicas", "1"};
  StartCluster(3);
  const std::vector<std::string> keys = NamesHomedAtNode0("restarted-home/shard", 1);
  ASSERT_EQ(keys.size(), 1u);
  const std::string url = Url(keys[0]);
  const int writer = 3 - HomesOf(keys)[0].second;  // not a home of it
  const uint64_t size = 5 * kMiB + 17;  // one chunk: one question of what the write became
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(writer), PatternFile(83, size), url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[writer]->Log();
  auto head = testing::EtagThroughNode(Endpoint(0), url);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  const std::string version = *head;
  ASSERT_EQ(version.rfind("local-", 0), 0u) << "read through node 0 before its upload: " << version;
  auto pinned = [&](int node, const std::string& how) {
    std::vector<std::string> args = {"curl", "-sS", "-o", files_.path() + "/pinned", "-w", "%{http_code}",
                                     "-H", "X-Shoal-Etag: " + version, "-H", "X-Shoal-Size: " + std::to_string(size)};
    if (!how.empty()) args.insert(args.end(), {"-H", "X-Shoal-Read: " + how, "-H", "Range: bytes=0-1023"});
    args.push_back("http://" + Endpoint(node) + "/v1/object?url=" + UriEncode(url, false));
    return testing::RunCommand(args).out;
  };
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(writer), std::chrono::seconds(120))) << nodes_[writer]->Log();
  ASSERT_NO_FATAL_FAILURE(FillCacheOf(writer, 95, "restarted-home/later-"));  // the write's chunks are evicted there
  ASSERT_EQ(pinned(writer, "held"), "404") << "the writer no longer holds the write's first chunk";
  nodes_[0]->Crash();
  ASSERT_TRUE(nodes_[0]->Restart(proxy_.port()).ok()) << nodes_[0]->Log();
  WaitForMembers(3);

  const uint64_t store_gets = proxy_.Stats()->get_requests;
  const uint64_t store_heads = NodeMetric(Endpoint(0), "shoal_store_head_requests_total");
  EXPECT_EQ(pinned(0, ""), "200") << nodes_[0]->Log();
  EXPECT_EQ(testing::FileSha256(files_.path() + "/pinned"), testing::PatternSha256(83, size));
  EXPECT_EQ(UploadedWriteFetches(1, 1), 1u) << "from the store";
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets + 1);
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_store_head_requests_total"), store_heads + 1)
      << "the home asked the store once";
}

// A writer cut off from an object's first home (node 0) when the write's upload ends (the fault
// shim refuses its connections to node 0; node 0 still reaches it) tells the other home that
// the write is durable, and node 0 once the link is back: it keeps that announcement until both
// homes have it. Before, only pending writes were announced again, and node 0 kept the write
// as pending for ever, sending readers to holders that may have let its chunks go (the soak's
// remaining "no longer held" reads).
TEST_P(ClusterTest, AHomeCutOffWhenAnUploadEndsIsToldOfItOnceItCanBeReached) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the cut link is the point";
  extra_ = {"--replicas", "1"};
  StartClusterWithCuttableLinks(3);
  const std::vector<std::string> keys = NamesHomedAtNode0("cut-home/k", 1);
  ASSERT_EQ(keys.size(), 1u);
  const std::string url = Url(keys[0]);
  const int other_home = HomesOf(keys)[0].second;
  ASSERT_GT(other_home, 0);
  const int writer = 3 - other_home;  // not a home of it
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(writer), PatternFile(76, 50000), url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[writer]->Log();
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 was told of the write";
  CutOff(writer, 0);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(writer), std::chrono::seconds(120))) << nodes_[writer]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(other_home), "shoal_homed_writes"), 0u) << "the other home was told it is durable";
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 could not be told";
  Mend(writer);
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_homed_writes") == 0; }, std::chrono::seconds(30)))
      << "node 0 still has the write as pending\n" << nodes_[writer]->Log();
  auto stat = Shoal({"stat", "--cache", Endpoint(0), url});
  EXPECT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_EQ(stat.out.find("local"), std::string::npos) << "node 0 answers the store's version\n" << stat.out;
}

// As above, but the writer stays cut off from node 0 (so node 0 keeps the write as pending), and
// lets the write's chunks go (evicted by later writes, past its --capacity). A reader through
// the fourth member is sent by node 0 to the writer, which no longer has them; node 0, asked
// what the write became, asks the store, whose write stamp names that write. Before, the
// reader got 412 "no longer held" (and would for as long as node 0 ran).
TEST_P(ClusterTest, AHomeThatMissedAnUploadAsksTheStoreOnceTheWritesHoldersLetItGo) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the cut link is the point";
  extra_ = {"--capacity", "64MiB", "--memory-cache", "0", "--replicas", "1"};
  StartClusterWithCuttableLinks(4);
  const std::vector<std::string> keys = NamesHomedAtNode0("missed-upload/shard", 1);
  ASSERT_EQ(keys.size(), 1u);
  const std::string url = Url(keys[0]);
  const int other_home = HomesOf(keys)[0].second;
  ASSERT_GT(other_home, 0);
  std::vector<int> others;  // the writer and the reader: the two members that are not homes of it
  for (int i = 1; i < 4; i++) {
    if (i != other_home) others.push_back(i);
  }
  const int writer = others[0], reader = others[1];
  const uint64_t size = 5 * kMiB + 17;
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(writer), PatternFile(77, size), url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[writer]->Log();
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 was told of the write";
  CutOff(writer, 0);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(writer), std::chrono::seconds(120))) << nodes_[writer]->Log();
  ASSERT_NO_FATAL_FAILURE(FillCacheOf(writer, 100, "missed-upload/later-"));  // the write's chunks are evicted there
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 still has the write as pending";

  const uint64_t store_gets = proxy_.Stats()->get_requests;
  const uint64_t home_heads = NodeMetric(Endpoint(0), "shoal_store_head_requests_total");
  EXPECT_EQ(CatSha256(url, Endpoint(reader)), testing::PatternSha256(77, size))
      << nodes_[reader]->Log() << nodes_[0]->Log();
  EXPECT_EQ(UploadedWriteFetches(4, 1), 1u) << "from the store";
  EXPECT_EQ(NodeMetric(Endpoint(reader), "shoal_uploaded_write_fetches_total"), 1u) << "by the reader's node";
  EXPECT_EQ(proxy_.Stats()->get_requests, store_gets + 1);
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_store_head_requests_total"), home_heads + 1) << "node 0 asked the store once";
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 0u) << "and no longer has the write as pending";
}

// An object written through node 0 (the store refusing uploads), node 0 killed, the object
// written again through node 1 once the store is back, and node 0 restarted after the newer
// write is in the store: node 0's replay of its older write must not replace the newer one.
// Before writes carried stamps, the store ended with the older (for a one-chunk Put and for a
// multipart upload alike); the soak (bench/soak.py) found it with overwrites through random
// members. Now node 0 finds the newer stamp in the store, drops its write (and its copy on
// the holder), and every member reads the newer.
TEST_P(ClusterTest, AnOlderWriteUploadedLateNeverReplacesANewerOneTakenByAnotherMember) {
  if (WithEtcd()) GTEST_SKIP() << "the order of writes does not depend on the membership";
  extra_ = {"--replicas", "2", "--down-grace", "60"};
  StartCluster(3);
  const std::vector<std::pair<std::string, uint64_t>> objects = {{"over/one-chunk.bin", 3 * kMiB + 7},
                                                                 {"over/multipart.bin", 8 * kMiB + 5}};
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  for (size_t i = 0; i < objects.size(); i++) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(90 + i, objects[i].second), Url(objects[i].first)});
    ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  }
  nodes_[0]->Crash();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  for (size_t i = 0; i < objects.size(); i++) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(95 + i, objects[i].second), Url(objects[i].first)});
    ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[1]->Log();
  }
  auto store = testing::Servers().azurite.Store(kBucket);
  for (size_t i = 0; i < objects.size(); i++) {
    const std::string newer = testing::PatternSha256(95 + i, objects[i].second);
    ASSERT_TRUE(Until([&] { return testing::ObjectSha256(*store, objects[i].first) == newer; }, std::chrono::seconds(60)))
        << objects[i].first << " (the newer write) did not reach the store\n" << nodes_[1]->Log();
  }
  ASSERT_TRUE(nodes_[0]->Restart(proxy_.port()).ok()) << nodes_[0]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(120))) << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_uploads_superseded_total"), objects.size()) << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_store_put_bytes_total"), 0u) << "a part of a superseded write was sent";
  for (size_t i = 0; i < objects.size(); i++) {
    const std::string newer = testing::PatternSha256(95 + i, objects[i].second);
    EXPECT_EQ(testing::ObjectSha256(*store, objects[i].first), newer) << objects[i].first << " in the store";
    for (int n = 0; n < 3; n++) {
      EXPECT_EQ(CatSha256(Url(objects[i].first), Endpoint(n)), newer) << objects[i].first << " through n" << n;
    }
  }
  EXPECT_TRUE(Until([&] {
    return NodeMetric(Endpoint(1), "shoal_replica_objects") + NodeMetric(Endpoint(2), "shoal_replica_objects") == 0;
  }, std::chrono::seconds(30))) << "the older writes' copies were dropped";
}

// An object's home (node 0) took a write of it that is not uploaded yet (node 0's store
// refuses its PUTs); a newer write of it through node 1 is uploaded: every member reads the newer
// one while the home's own older write still waits (its upload will find the newer one in the
// store and drop itself). Before, the home kept answering its own older write (a write taken
// there, trusted) to every reader, through itself and through the members that ask it: the
// soak's wrong reads with no restart before them (bench/soak.py --seed 1: w1/k36 at 10 s).
TEST_P(ClusterTest, ANewerWriteThroughAnotherMemberIsReadEverywhereWhileTheHomesOlderOneWaits) {
  if (WithEtcd()) GTEST_SKIP() << "the order of writes does not depend on the membership";
  testing::FaultProxy refusing;
  ASSERT_TRUE(refusing.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
  // Every PUT refused (a one-chunk upload is one conditional Put, never a look on a 503),
  // reads answered.
  ASSERT_TRUE(refusing.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  env_[0] = testing::Servers().azurite.ClientEnv(refusing.port());
  extra_ = {"--replicas", "1"};
  StartCluster(2);
  const std::vector<std::string> homed = NamesHomedAtNode0("homed/k", 1);
  ASSERT_EQ(homed.size(), 1u);
  const std::string key = homed[0];
  auto older = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(61, 100000), Url(key)});
  ASSERT_EQ(older.exit_code, 0) << older.err << nodes_[0]->Log();
  auto newer = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(62, 120000), Url(key)});
  ASSERT_EQ(newer.exit_code, 0) << newer.err << nodes_[1]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(1), std::chrono::seconds(60))) << nodes_[1]->Log();
  const std::string want = testing::PatternSha256(62, 120000);
  auto store = testing::Servers().azurite.Store(kBucket);
  ASSERT_EQ(testing::ObjectSha256(*store, key), want);
  for (int n = 0; n < 2; n++) EXPECT_EQ(CatSha256(Url(key), Endpoint(n)), want) << "through n" << n;
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 1u) << "node 0's older write still waits";
}

// A write whose node died, taken over by the holder of its copy after a newer write of the
// same name is in the store, is never what readers get: node 1's write (the older) waits,
// its store refusing everything; node 0 takes a newer one and uploads it; node 1 is killed,
// and node 0, whose store now refuses everything too, takes node 1's write over. Readers
// through node 0 get the newer write (from what node 0 learned when it uploaded it) while
// the older one waits for its upload, which will find the newer and drop itself. (Before,
// the taken-over write replaced what node 0 knew: the soak read it through its new holder,
// an older version, until its upload looked at the store 22 s later.)
TEST_P(ClusterTest, AnOlderWriteTakenOverAfterANewerOneIsDurableIsNotWhatReadersGet) {
  if (WithEtcd()) GTEST_SKIP() << "the order of writes does not depend on the membership";
  testing::FaultProxy refusing, later;
  const std::string azurite = "http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port());
  ASSERT_TRUE(refusing.Start(azurite, testing::FaultConfig{.error_rate = 1.0}).ok());
  ASSERT_TRUE(later.Start(azurite).ok());
  env_[0] = testing::Servers().azurite.ClientEnv(later.port());
  env_[1] = testing::Servers().azurite.ClientEnv(refusing.port());
  extra_ = {"--down-grace", "1", "--metadata-ttl", "600"};
  StartCluster(2);
  const std::string key = "takeover/model.bin";
  auto older = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(81, 100000), Url(key)});
  ASSERT_EQ(older.exit_code, 0) << older.err << nodes_[1]->Log();
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_replica_objects"), 1u) << "node 0 holds the older write's copy";
  auto newer = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(82, 120000), Url(key)});
  ASSERT_EQ(newer.exit_code, 0) << newer.err << nodes_[0]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(60))) << nodes_[0]->Log();
  const std::string want = testing::PatternSha256(82, 120000);
  ASSERT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key), want);
  ASSERT_TRUE(later.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  nodes_[1]->Crash();
  ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_replica_takeovers_total") == 1; },
                    std::chrono::seconds(30)))
      << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 1u) << "the older write waits for its upload";
  auto stat = Shoal({"stat", "--cache", Endpoint(0), Url(key)});
  EXPECT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("120000"), std::string::npos) << "the newer write's size\n" << stat.out;
  EXPECT_EQ(stat.out.find("local"), std::string::npos) << "not a write waiting for its upload\n" << stat.out;
  // Its bytes come from node 0's cache (it took that write): the store refuses everything.
  EXPECT_EQ(CatSha256(Url(key), Endpoint(0)), want) << nodes_[0]->Log();
}

// A node restarts with a write of its own not yet uploaded (the store refused it) that a newer
// write through another member has replaced in the store meanwhile. The node is the object's
// home: it replays its write and announces it to itself, and it knows nothing of the newer one
// (its entries and catalog are in memory). Read through it, or through the other member asking
// it, at once (its store slowed to 3 s a request, so its upload's look at the store has not
// ended), the object is the newer write: a pending write taken before the node started is
// compared with the store before it is answered. Then the older write's upload finds the newer
// one and drops itself. (Before, both read the older write until that look.)
TEST_P(ClusterTest, ARestartedHomeComparesItsOwnOlderWriteWithTheStoreBeforeAnsweringIt) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the restart is the point";
  testing::FaultProxy own;
  ASSERT_TRUE(own.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
  env_[0] = testing::Servers().azurite.ClientEnv(own.port());
  extra_ = {"--replicas", "1"};
  StartCluster(2);
  const std::vector<std::string> homed = NamesHomedAtNode0("replayed/k", 1);
  ASSERT_EQ(homed.size(), 1u);
  const std::string key = homed[0];
  ASSERT_TRUE(own.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto older = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(91, 100000), Url(key)});
  ASSERT_EQ(older.exit_code, 0) << older.err << nodes_[0]->Log();
  auto newer = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(92, 120000), Url(key)});
  ASSERT_EQ(newer.exit_code, 0) << newer.err << nodes_[1]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(1), std::chrono::seconds(60))) << nodes_[1]->Log();
  const std::string want = testing::PatternSha256(92, 120000);
  ASSERT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key), want);
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 1u) << "node 0's older write waits";
  nodes_[0]->Crash();
  ASSERT_TRUE(own.Configure(testing::FaultConfig{.latency_ms = 3000}).ok());
  ASSERT_TRUE(nodes_[0]->Restart(own.port()).ok()) << nodes_[0]->Log();
  for (int n : {0, 1}) {
    auto stat = Shoal({"stat", "--cache", Endpoint(n), Url(key)});
    EXPECT_EQ(stat.exit_code, 0) << stat.err;
    EXPECT_NE(stat.out.find("120000"), std::string::npos) << "through n" << n << ": the newer write\n"
                                                         << stat.out << nodes_[0]->Log();
    EXPECT_EQ(stat.out.find("local"), std::string::npos) << "through n" << n << "\n" << stat.out;
  }
  EXPECT_EQ(CatSha256(Url(key), Endpoint(0)), want) << nodes_[0]->Log();
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_uploads_superseded_total") == 1; },
                    std::chrono::seconds(60)))
      << nodes_[0]->Log();
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key), want) << "still the newer";
}

// A member asks a restarted home (node 0) about a write taken through another member before the
// home was told of it again: the writer is frozen, so node 0 is still catching up. Node 0 asks
// the object's other home only whether a write is pending there, and answers with it.
// Before, it answered what the store had, which for a write not yet uploaded is nothing (the
// soak saw one 404 of an acknowledged object).
TEST_P(ClusterTest, ARestartedHomeAskedByAnotherMemberBeforeItIsToldAgainAnswersThePendingWrite) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the restart is the point";
  extra_ = {"--replicas", "1"};
  StartCluster(4);
  const std::vector<std::string> keys = NamesHomedAtNode0("asked/k", 1);
  ASSERT_EQ(keys.size(), 1u);
  const std::string& key = keys[0];
  const int other_home = HomesOf(keys)[0].second;
  ASSERT_GT(other_home, 0);
  // The writer and the reader: the two members that are not homes of it.
  std::vector<int> others;
  for (int i = 1; i < 4; i++) {
    if (i != other_home) others.push_back(i);
  }
  const int writer = others[0], reader = others[1];
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(writer), PatternFile(74, 50000), Url(key)});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[writer]->Log();
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 was told of it";
  nodes_[0]->Crash();
  nodes_[writer]->Pause();  // the writer cannot tell node 0 again
  ASSERT_TRUE(nodes_[0]->Restart(proxy_.port()).ok()) << nodes_[0]->Log();
  auto stat = Shoal({"stat", "--cache", Endpoint(reader), Url(key)});
  EXPECT_EQ(stat.exit_code, 0) << stat.err << nodes_[0]->Log();
  EXPECT_NE(stat.out.find("50000"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("local"), std::string::npos) << "not uploaded yet\n" << stat.out;
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_homed_writes"), 0u) << "node 0 was not told again yet";
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_home_lookups_total"), 1u) << "node 0 asked the other home, once";
  nodes_[writer]->Resume();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  const std::string want = testing::PatternSha256(74, 50000);
  EXPECT_EQ(CatSha256(Url(key), Endpoint(reader)), want) << nodes_[reader]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(writer), std::chrono::seconds(60))) << nodes_[writer]->Log();
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key), want);
}

// An object's first home (node 0) restarts. It keeps the writes announced to it in memory only,
// so it comes back knowing none: neither a pending write told to it before (kill -9), nor one
// taken while it was down. Read through it at once, each is the newer pending write, never the
// older one the store holds: until every other member has told it again what it keeps, the
// restarted home asks each object's next home; then it knows them itself. Before, both reads
// through node 0 returned the store's older version (found by the soak: one older read through
// a member restarted during an overwrite).
TEST_P(ClusterTest, ARestartedHomeServesTheWritesAnnouncedBeforeAndWhileItWasDown) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the restart is the point";
  extra_ = {"--replicas", "1"};
  StartCluster(2);
  const std::vector<std::string> keys = NamesHomedAtNode0("rehomed/k", 2);
  ASSERT_EQ(keys.size(), 2u);
  const std::string& told = keys[0];   // its newer write announced to node 0 before its kill
  const std::string& missed = keys[1];  // its newer write taken while node 0 was down
  for (int i = 0; i < 2; i++) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(70 + i, 50000), Url(keys[i])});
    ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[1]->Log();
  }
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(1), std::chrono::seconds(60))) << nodes_[1]->Log();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto newer_told = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(72, 60000), Url(told)});
  ASSERT_EQ(newer_told.exit_code, 0) << newer_told.err;
  ASSERT_GE(NodeMetric(Endpoint(0), "shoal_homed_writes"), 1u) << "node 0 was told of it";
  nodes_[0]->Crash();
  auto newer_missed = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(73, 60000), Url(missed)});
  ASSERT_EQ(newer_missed.exit_code, 0) << newer_missed.err << nodes_[1]->Log();
  ASSERT_TRUE(nodes_[0]->Restart(proxy_.port()).ok()) << nodes_[0]->Log();
  const std::string want_told = testing::PatternSha256(72, 60000), want_missed = testing::PatternSha256(73, 60000);
  EXPECT_EQ(CatSha256(Url(told), Endpoint(0)), want_told) << "through the restarted home at once\n" << nodes_[0]->Log();
  EXPECT_EQ(CatSha256(Url(missed), Endpoint(0)), want_missed) << "through the restarted home at once\n" << nodes_[0]->Log();
  // Then node 1 has told node 0 again, and node 0 answers from what it was told.
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_homed_writes") >= 2; }, std::chrono::seconds(10)))
      << nodes_[0]->Log();
  EXPECT_EQ(CatSha256(Url(told), Endpoint(0)), want_told);
  EXPECT_EQ(CatSha256(Url(missed), Endpoint(0)), want_missed);
  EXPECT_EQ(CatSha256(Url(missed), Endpoint(1)), want_missed);
  auto store = testing::Servers().azurite.Store(kBucket);
  EXPECT_EQ(testing::ObjectSha256(*store, told), testing::PatternSha256(70, 50000)) << "the store still has the older";
}

// A write acknowledged through node 0 (--replicas 2) and not yet uploaded (the store refuses
// every request) is deleted through another member: node 0, which took it, cancels it (its
// upload never comes, its copy is dropped), though the store's part of the delete fails until
// the store is back. With node 0 dead (and still a member), a delete through the copy's holder
// cancels nothing and says why: node 0 cannot be reached, so the holder's copy stays, to be
// uploaded once it takes the write over.
TEST_P(ClusterTest, ADeleteThroughAnotherMemberCancelsTheWriteWhereItWasTaken) {
  if (WithEtcd()) GTEST_SKIP() << "homes do not depend on the membership; the read-your-writes test runs both";
  extra_ = {"--replicas", "2", "--down-grace", "60"};
  StartCluster(3);
  const uint64_t size = 8 * kMiB + 5;
  const int holder = WriteThroughNode0WithTheStoreDown(81, size, "del/a.bin");
  ASSERT_NE(holder, -1);
  const int other = 3 - holder;
  ASSERT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 1u);
  auto rm = Shoal({"rm", "--cache", Endpoint(other), Url("del/a.bin")});
  EXPECT_NE(rm.exit_code, 0) << "the store's part of the delete cannot be done: " << rm.out;
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_staged_objects"), 0u) << "node 0 cancelled its write\n" << nodes_[0]->Log();
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(holder), "shoal_replica_objects") == 0; },
                    std::chrono::seconds(10)))
      << "the copy was dropped\n" << nodes_[holder]->Log();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  rm = Shoal({"rm", "--cache", Endpoint(other), Url("del/a.bin")});
  EXPECT_NE(rm.err.find("does not exist"), std::string::npos) << "the write is gone: " << rm.err;
  for (int i = 0; i < 3; i++) {
    auto stat = Shoal({"stat", "--cache", Endpoint(i), Url("del/a.bin")});
    EXPECT_NE(stat.exit_code, 0) << "through n" << i << ": " << stat.out;
  }
  EXPECT_EQ(testing::Servers().azurite.Store(kBucket)->Head("del/a.bin").status().code(), Code::kNotFound);
  EXPECT_EQ(proxy_.Stats()->part_requests, 0u) << "nothing of the write was uploaded";

  // Node 0 dead: the delete cannot cancel its write, and changes nothing.
  std::vector<uint64_t> held(3);
  for (int i = 1; i < 3; i++) held[i] = NodeMetric(Endpoint(i), "shoal_replica_bytes_total");
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(82, size), Url("del/b.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  int holder_b = -1;
  for (int i = 1; i < 3; i++) {
    if (NodeMetric(Endpoint(i), "shoal_replica_bytes_total") - held[i] == size) holder_b = i;
  }
  ASSERT_NE(holder_b, -1) << "the write has a copy on n1 or n2";
  nodes_[0]->Crash();
  ASSERT_TRUE(Until(
      [&] {
        rm = Shoal({"rm", "--cache", Endpoint(holder_b), Url("del/b.bin")});
        return rm.err.find("cannot be reached to cancel it") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << rm.err << nodes_[holder_b]->Log();
  EXPECT_NE(rm.exit_code, 0);
  EXPECT_EQ(NodeMetric(Endpoint(holder_b), "shoal_replica_objects"), 1u) << "the copy stays";
}

// Listings through a member answer the store's pages from its listing cache while nothing
// changed through the cluster: a second `shoal ls --cache` of a prefix costs the store no
// request (counted at the proxy, and in the node's metrics). A write through another member
// is listed at once (pending), and once it is uploaded that member's generation has moved, so
// the next listing asks the store again and shows the store's version; a delete through
// another member is gone from the next listing. Before the cache, every listing was a List
// Blobs at the store.
TEST_P(ClusterTest, AListingIsAnsweredFromTheCacheUntilTheClusterChangesTheBucket) {
  if (WithEtcd()) GTEST_SKIP() << "the cache does not depend on the membership";
  extra_ = {"--replicas", "2"};
  StartCluster(3);
  PutObject("lc/a.bin", 91, 1000);
  PutObject("lc/b.bin", 92, 2000);
  auto gets = [&] { return proxy_.Stats()->get_requests; };  // List Blobs is a GET
  auto ls = [&](int node) {
    auto r = Shoal({"ls", "--cache", Endpoint(node), Url("lc/")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  uint64_t before = gets();
  std::string out = ls(1);
  EXPECT_NE(out.find("1000  lc/a.bin"), std::string::npos) << out;
  EXPECT_NE(out.find("2000  lc/b.bin"), std::string::npos) << out;
  EXPECT_EQ(gets() - before, 1u) << "one page, listed once";
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_store_list_requests_total"), 1u);
  before = gets();
  EXPECT_EQ(ls(1), out);
  EXPECT_EQ(gets() - before, 0u) << "the second listing came from the cache";
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_list_cache_hits_total"), 1u);

  // A write through node 0: listed through node 1 at once, then, uploaded, from the store.
  // The store refuses uploads until the pending listing is made (else the upload may be done
  // before it, and that listing, cached, already the store's).
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(93, 3000), Url("lc/c.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  out = ls(1);
  EXPECT_NE(out.find("3000  lc/c.bin"), std::string::npos) << "pending, listed at once: " << out;
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(60))) << nodes_[0]->Log();
  before = gets();
  out = ls(1);
  EXPECT_NE(out.find("3000  lc/c.bin"), std::string::npos) << "uploaded: " << out;
  EXPECT_EQ(gets() - before, 1u) << "node 0 uploaded a write: the store was listed again";
  before = gets();
  EXPECT_EQ(ls(1), out);
  EXPECT_EQ(gets() - before, 0u);

  // A delete through node 2: gone from the next listing through node 1.
  auto rm = Shoal({"rm", "--cache", Endpoint(2), Url("lc/a.bin")});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  out = ls(1);
  EXPECT_EQ(out.find("lc/a.bin"), std::string::npos) << "deleted: " << out;
  EXPECT_NE(out.find("2000  lc/b.bin"), std::string::npos) << out;
  EXPECT_NE(out.find("3000  lc/c.bin"), std::string::npos) << out;
  before = gets();
  EXPECT_EQ(ls(1), out);
  EXPECT_EQ(gets() - before, 0u);
}

// The node that holds a write's copy is killed, and is still a member (its --down-grace has
// not passed): the next write of the same object through node 0, whose route names the dead
// node first, gives its copy to the next live member (every chunk so far, from node 0's disk)
// and succeeds at the first attempt (from a pipe, which `shoal cp` never sends twice).
TEST_P(ClusterTest, AWriteWhoseCopyHolderIsDeadGivesItsCopyToAnotherMember) {
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  const uint64_t size = 20 * kMiB + 17;  // three chunks
  int dead = WriteThroughNode0WithTheStoreDown(61, size, "failover/obj");
  ASSERT_NE(dead, -1);
  nodes_[dead]->Crash();
  std::vector<uint64_t> copies(4);
  for (int i = 1; i < 4; i++) copies[i] = i == dead ? 0 : NodeMetric(Endpoint(i), "shoal_replica_bytes_total");
  const std::string file = PatternFile(62, size);
  auto cp = testing::RunCommand({"bash", "-c", "cat " + file + " | " + testing::ShoalBinary() + " cp -q --cache " +
                                                   Endpoint(0) + " - " + Url("failover/obj")},
                                testing::Servers().azurite.ClientEnv());
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_copy_holders_replaced_total"), 1u) << nodes_[0]->Log();
  EXPECT_NE(nodes_[0]->Log().find("node n" + std::to_string(dead) + " cannot be reached"), std::string::npos);
  int taker = -1;
  for (int i = 1; i < 4; i++) {
    if (i == dead) continue;
    uint64_t got = NodeMetric(Endpoint(i), "shoal_replica_bytes_total") - copies[i];
    if (got == 0) continue;
    EXPECT_EQ(got, size) << "node n" << i << " holds the whole copy, once";
    EXPECT_EQ(taker, -1) << "one node took the copy";
    taker = i;
  }
  ASSERT_NE(taker, -1) << "a live member holds the copy";
  // The taker's copy is the write's: with node 0 gone too, it uploads it.
  CrashOriginAndExpectTheHolderUploads(taker, "failover/obj", testing::PatternSha256(62, size));
}

// A write with metadata through node 0 of two (--replicas 2) while the store refuses every
// upload; node 0 is killed (-9) after the acknowledgement. The holder of the copy uploads it
// with the write's content headers and user metadata (they came with the copy's commit), as
// the Azure SDK reads them.
TEST_P(ClusterTest, TheHolderOfACopyUploadsItWithTheWritesMetadata) {
  const uint64_t size = 20 * kMiB;  // three chunks: a multipart upload
  std::string body(size, '\0');
  testing::PatternSource::Fill(13, 0, body.data(), body.size());
  ObjectMeta meta;
  meta.content_type = "application/x-pytorch";
  meta.content_encoding = "identity";
  meta.cache_control = "no-store";
  meta.user = {{"rank", "0"}, {"run", "llm-7b"}};
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(2);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  Status put = testing::PutThroughNode(Endpoint(0), Url("meta/rank0.pt"), body, meta);
  ASSERT_TRUE(put.ok()) << put.ToString() << nodes_[0]->Log();
  ASSERT_EQ(HolderOfCopy(size), 1) << "the acknowledged write has a copy on node 1";
  CrashOriginAndExpectTheHolderUploads(1, "meta/rank0.pt", testing::PatternSha256(13, size));
  auto sdk = testing::SdkObjectMeta("azure", kBucket, "meta/rank0.pt", testing::ServersClientEnv());
  ASSERT_TRUE(sdk.ok()) << sdk.status().ToString();
  EXPECT_EQ(*sdk, meta);
}

// A write acknowledged through node 0 (--replicas 2) while the store refuses uploads, then
// node 0 killed (-9): the write now exists only as the copy another node holds. `shoal flush
// --wait` through a third node waits for it (it counts the copies every member holds, as
// commit does): it gives up while the store is down, and returns once the holder took the
// write over and uploaded it, byte-identical. Before, the third node had nothing pending of
// its own and flush said "durable" at once.
TEST_P(ClusterTest, FlushWaitThroughASurvivorWaitsForAWriteHeldOnlyAsACopy) {
  const uint64_t size = 8 * kMiB;
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  int holder = WriteThroughNode0WithTheStoreDown(13, size, "copyonly/rank0.bin");
  ASSERT_NE(holder, -1);
  int third = holder == 1 ? 2 : 1;
  nodes_[0]->Crash();
  auto early = Shoal({"flush", "--wait", "--timeout", "3", "--cache", Endpoint(third), Url("copyonly/")});
  EXPECT_NE(early.exit_code, 0) << "flush through node n" << third << " returned while the write was a copy on n"
                                << holder << ": " << early.out;
  EXPECT_NE(early.err.find("still not durable"), std::string::npos) << early.err;
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  auto flush = Shoal({"flush", "--wait", "--timeout", "120", "--cache", Endpoint(third), Url("copyonly/")});
  EXPECT_EQ(flush.exit_code, 0) << flush.err << nodes_[holder]->Log();
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "copyonly/rank0.bin"),
            testing::PatternSha256(13, size));
}

// The node that took a write journals it after its copy is complete on the holder, or, for a
// write of one chunk (this one), while the copy is completed; a holder asking about the write
// before the origin's record is on disk must keep its copy. Node 0's journal
// fsync is slowed by 2.5 s (the fault shim, LD_PRELOAD), so the holder asks several times in
// that window: before the fix it heard "unknown" and dropped the copy, and the write was
// acknowledged on one node. Here the copy survives the acknowledgement, and when node 0 then
// dies the holder uploads it.
TEST_P(ClusterTest, ACopyAskedAboutBeforeItsWriteIsJournaledIsKept) {
  if (WithEtcd()) GTEST_SKIP() << "the window does not depend on the membership";
  const uint64_t size = 8 * kMiB;
  std::string file = PatternFile(12, size);
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  env_[0] = {{"LD_PRELOAD", testing::FaultFsLibrary()}, {"SHOAL_FAULTFS_SLOW_FSYNC", "/journal/:2500"}};
  StartCluster(4);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), file, Url("window/rank0.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  int holder = HolderOfCopy(size);
  ASSERT_NE(holder, -1) << "the acknowledged write lost its copy while it was being journaled";
  CrashOriginAndExpectTheHolderUploads(holder, "window/rank0.bin", testing::PatternSha256(12, size));
}

// The node that took a write comes back with an empty disk (a replaced NVMe): it answers
// "unknown" for the write under a new incarnation, and the holder of the copy uploads it long
// before --down-grace would have.
TEST_P(ClusterTest, AWriteSurvivesItsNodeComingBackWithAnEmptyDisk) {
  if (WithEtcd()) GTEST_SKIP() << "a member restarted under etcd waits out its old lease (--down-grace)";
  const uint64_t size = 24 * kMiB;
  std::string file = PatternFile(11, size);
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), file, Url("disk/rank0.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  int holder = HolderOfCopy(size);
  ASSERT_NE(holder, -1);
  nodes_[0]->Crash();
  StartNode(0, 4);  // same id and port, a new data directory
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(holder), "shoal_replica_takeovers_total") == 1; },
                    std::chrono::seconds(30)))
      << nodes_[holder]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(holder), std::chrono::seconds(120)));
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "disk/rank0.bin"),
            testing::PatternSha256(11, size));
}

// With every node up, the copy is dropped once the node that took the write made it durable,
// and nothing is uploaded twice.
TEST_P(ClusterTest, TheCopyGoesOnceTheWriteIsDurable) {
  const uint64_t size = 40 * kMiB;
  std::string file = PatternFile(8, size);
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(1), file, Url("ckpt/rank1.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(1), std::chrono::seconds(120)));
  ASSERT_TRUE(Until([&] {
    uint64_t copies = 0;
    for (int i = 0; i < 4; i++) copies += NodeMetric(Endpoint(i), "shoal_replica_objects");
    return copies == 0;
  }, std::chrono::seconds(30)));
  uint64_t put = 0, copied = 0;
  for (int i = 0; i < 4; i++) {
    put += NodeMetric(Endpoint(i), "shoal_store_put_bytes_total");
    copied += NodeMetric(Endpoint(i), "shoal_replica_bytes_total");
    EXPECT_EQ(NodeMetric(Endpoint(i), "shoal_replica_takeovers_total"), 0u);
  }
  EXPECT_EQ(put, size) << "uploaded once";
  EXPECT_EQ(copied, size) << "copied to one other node";
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "ckpt/rank1.bin"),
            testing::PatternSha256(8, size));
  // A write of one chunk: its copy goes with the commit, in one request to its holder.
  uint64_t whole = 0;
  for (int i = 0; i < 4; i++) whole += NodeMetric(Endpoint(i), "shoal_replica_whole_total");
  EXPECT_EQ(whole, 0u) << "five chunks go apart";
  const uint64_t small = 100 * 1024;
  auto cp_small = Shoal({"cp", "-q", "--cache", Endpoint(1), PatternFile(9, small), Url("ckpt/small.bin")});
  ASSERT_EQ(cp_small.exit_code, 0) << cp_small.err;
  copied = 0;
  for (int i = 0; i < 4; i++) {
    whole += NodeMetric(Endpoint(i), "shoal_replica_whole_total");
    copied += NodeMetric(Endpoint(i), "shoal_replica_bytes_total");
  }
  EXPECT_EQ(whole, 1u);
  EXPECT_EQ(copied, size + small);
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(1), std::chrono::seconds(60)));
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "ckpt/small.bin"),
            testing::PatternSha256(9, small));
}

// With two members both are homes of every object, so the copy's holder is one: it records
// the pending write with the copy and the origin does not announce it to it again (one
// request less before the acknowledgement). Counted: for each small write of a new name, node
// 0 sends node 1 exactly one announcement (the upload's), and the whole copy. The write is
// seen through node 1 at once, with the store refusing everything (so nothing is uploaded
// yet). A write of a name with a write pending at node 1 is announced as before.
TEST_P(ClusterTest, AHomeHoldingTheCopyRecordsThePendingWriteWithIt) {
  if (WithEtcd()) GTEST_SKIP() << "which members are homes does not depend on the membership's kind";
  extra_ = {"--replicas", "2"};
  ASSERT_NO_FATAL_FAILURE(StartClusterCaughtUp(2));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  const int kWrites = 5;
  for (int i = 0; i < kWrites; i++) {
    const std::string url = Url("homed/f" + std::to_string(i));
    const uint64_t size = 1000 + i;
    ASSERT_NO_FATAL_FAILURE(WriteThroughNode0SeenBy(2, url, 40 + i, size));
    EXPECT_EQ(CatSha256(url, Endpoint(1)), testing::PatternSha256(40 + i, size));
  }
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_announcements_total"), 0u) << "the pending writes went with their copies";
  // A write of a name node 1 knows a write of (pending here) is announced as before: were it
  // recorded with the copy and then failed, taking it back would hide the earlier write.
  const std::string again = Url("homed/f0");
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(49, 3000), again});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_announcements_total"), 1u) << "the overwrite was announced";
  EXPECT_EQ(CatSha256(again, Endpoint(1)), testing::PatternSha256(49, 3000));
  // Nor does the holder announce its copy to the origin at its next refresh (it did, each write).
  std::this_thread::sleep_for(std::chrono::seconds(2));  // four refreshes
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_announcements_total"), 0u) << "the origin knows its own write";
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_homed_writes"), static_cast<uint64_t>(kWrites));
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_replica_whole_total"), static_cast<uint64_t>(kWrites + 1)) << "the overwrite's too";
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(60))) << nodes_[0]->Log();
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(1), "shoal_homed_writes") == 0; }, std::chrono::seconds(30)));
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_announcements_total"), static_cast<uint64_t>(kWrites + 2))
      << "one announcement a write: its upload (and the overwrite's pending one)\n" << nodes_[0]->Log()
      << nodes_[1]->Log();
}

// Three members with --replicas 2: each name has two homes among the three (its first chunk's
// route), and a write's copy goes to the first member of that route other than the writer,
// a home. A write through node 0 is pending at exactly its two homes before it is acknowledged
// (readers through the other nodes see it at once, the store refusing every request): node 0
// records it itself, the holder with the copy, and the other home, when node 0 is not one, is
// told by node 0's announcement. At their next refresh the holders tell that other
// home once more, and only that: a safety net for a writer that skipped a home it saw as down
// and died before telling it (so exactly as many as node 0's announcements).
TEST_P(ClusterTest, WithThreeMembersEveryWriteIsPendingAtItsTwoHomes) {
  if (WithEtcd()) GTEST_SKIP() << "which members are homes does not depend on the membership's kind";
  extra_ = {"--replicas", "2"};
  ASSERT_NO_FATAL_FAILURE(StartClusterCaughtUp(3));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  const int kWrites = 12;
  for (int i = 0; i < kWrites; i++) {
    ASSERT_NO_FATAL_FAILURE(WriteThroughNode0SeenBy(3, Url("three/f" + std::to_string(i)), 60 + i, 1000 + i));
  }
  uint64_t homed = 0, copies = 0, recorded = 0;
  for (int n = 0; n < 3; n++) {
    homed += NodeMetric(Endpoint(n), "shoal_homed_writes");
    copies += NodeMetric(Endpoint(n), "shoal_replica_whole_total");
    recorded += NodeMetric(Endpoint(n), "shoal_copies_recorded_total");
  }
  EXPECT_EQ(homed, 2u * kWrites) << "each write pending at its two homes";
  EXPECT_EQ(copies, static_cast<uint64_t>(kWrites));
  EXPECT_EQ(recorded, static_cast<uint64_t>(kWrites)) << "each copy's holder is a home and recorded it";
  const uint64_t own = NodeMetric(Endpoint(0), "shoal_homed_writes");
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_announcements_total"), 2u * kWrites - own - recorded)
      << "node 0 told each home that neither it nor the copy's holder is";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // four refreshes
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_announcements_total") + NodeMetric(Endpoint(2), "shoal_announcements_total"),
            NodeMetric(Endpoint(0), "shoal_announcements_total"))
      << "the holders told the other home once each, and nothing else\n" << nodes_[1]->Log() << nodes_[2]->Log();
  EXPECT_GT(own, 0u) << "node 0 is a home of some of the names";
  EXPECT_LT(own, static_cast<uint64_t>(kWrites)) << "and not of others: the case of a third home told by node 0";
}

// A write whose copy was committed (and recorded as pending by the holder, a home) but that
// then failed on its origin (its pack cannot be synced: the disk loses what was written) is
// never acknowledged: the copy's drop retracts it at the holder, so nothing pending stays
// there and readers through it find no such object.
TEST_P(ClusterTest, AWriteThatFailsAfterItsCopyIsRecordedIsRetractedAtTheHolder) {
  if (WithEtcd()) GTEST_SKIP() << "which members are homes does not depend on the membership's kind";
  extra_ = {"--replicas", "2"};
  env_[0] = {{"LD_PRELOAD", testing::FaultFsLibrary()}, {"SHOAL_FAULTFS_LOST_WRITEBACK", "/chunks/packs/"}};
  StartCluster(2);
  const std::string url = Url("retracted/f");
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(50, 2000), url});
  ASSERT_NE(cp.exit_code, 0) << "the write succeeded though node 0 cannot sync its pack";
  EXPECT_NE(cp.err.find("nothing of it was acknowledged"), std::string::npos) << cp.err;
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_replica_whole_total"), 1u) << "the copy was not committed: not the case tested";
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(1), "shoal_homed_writes") == 0; }, std::chrono::seconds(10)))
      << nodes_[1]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_replica_objects"), 0u);
  auto stat = Shoal({"stat", "--cache", Endpoint(1), url});
  EXPECT_NE(stat.exit_code, 0) << stat.out;
  EXPECT_NE(stat.err.find("404"), std::string::npos) << stat.err;
}

// Two nodes with --replicas 2: a write through node 0 has its copy on node 1. Once it is
// uploaded, node 1 keeps the copy's chunks as cached chunks of the stored version (they are
// the store's bytes), so reading the object through node 1, each chunk from its owner (node 0
// or node 1), costs the store nothing. Before, node 1 deleted the copy at the upload and
// fetched again from the store every chunk it owns.
TEST_P(ClusterTest, ACopyStaysCachedOnItsHolderOnceItsWriteIsUploaded) {
  if (WithEtcd()) GTEST_SKIP() << "what a copy's holder keeps does not depend on the membership";
  const uint64_t size = 40 * kMiB + 5;  // six chunks: each node owns some
  extra_ = {"--replicas", "2", "--memory-cache", "0"};
  StartCluster(2);
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(23, size), Url("kept/shard.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(120))) << nodes_[0]->Log();
  ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(1), "shoal_replica_objects") == 0; }, std::chrono::seconds(30)))
      << nodes_[1]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_copies_kept_cached_total"), 1u);
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_cache_pinned_bytes"), 0u) << "kept as cache: evictable";
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_cache_bytes"), size);

  const auto before = *proxy_.Stats();
  EXPECT_EQ(CatSha256(Url("kept/shard.bin"), Endpoint(1)), testing::PatternSha256(23, size));
  const auto after = *proxy_.Stats();
  EXPECT_EQ(after.get_requests, before.get_requests) << "every chunk from node 0 or node 1's disk";
  EXPECT_EQ(after.requests, before.requests);
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_store_get_requests_total"), 0u);
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_store_get_requests_total"), 0u);
}

// `shoal warmup PREFIX` through one node fills every owner from the store: three objects cost
// the store their size once (the node's listing of the prefix comes from its listing cache,
// filled by the `ls` before), every node fetched a share, and reading them afterwards costs the
// store nothing. A second warmup finds everything cached.
TEST_P(ClusterTest, WarmupFillsEveryOwnerOnce) {
  std::vector<std::string> want;
  for (int i = 0; i < 3; i++) want.push_back(PutObject("warm/part-" + std::to_string(i), 20 + i, 40 * kMiB));
  StartCluster(4);
  // The node lists the prefix for the warmup: listed once first, so the warmup's listing of it
  // comes from the node's listing cache.
  auto ls = Shoal({"ls", "-r", "--cache", Endpoint(2), Url("warm/")});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  uint64_t before = StoreBytes();
  auto warm = Shoal({"warmup", "--cache", Endpoint(2), Url("warm/")});
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_NE(warm.out.find("warmed 3 objects (120.0 MiB in 15 chunks)"), std::string::npos) << warm.out;
  EXPECT_EQ(StoreBytes() - before, 120 * kMiB);
  for (int i = 0; i < 4; i++) EXPECT_GT(NodeMetric(Endpoint(i), "shoal_store_get_bytes_total"), 0u) << "node " << i;
  before = StoreBytes();
  for (int i = 0; i < 3; i++) EXPECT_EQ(CatSha256(Url("warm/part-" + std::to_string(i)), Endpoint(i)), want[i]);
  EXPECT_EQ(StoreBytes() - before, 0u) << "a warmed prefix is read from the nodes' disks";
  auto again = Shoal({"warmup", "--cache", Endpoint(0), Url("warm/")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("0 B fetched now, 120.0 MiB already cached"), std::string::npos) << again.out;
}

// `shoal drain` of a node holding writes not yet uploaded (the store refuses everything) and
// a copy of another node's write: it leaves the membership, its writes go to the holders of
// their copies and its copy to another node, it has nothing left, and once the store is back
// every object arrives byte-identical.
TEST_P(ClusterTest, DrainHandsOffWhatANodeHasNotUploaded) {
  const uint64_t size = 24 * kMiB;
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  StartCluster(4);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  // Writes through node 3, and through the others until node 3 holds a copy of one.
  std::vector<std::pair<std::string, std::string>> written;  // key, sha256
  for (int w = 0; w < 12 && (written.size() < 2 || NodeMetric(Endpoint(3), "shoal_replica_objects") == 0); w++) {
    int through = written.size() < 2 ? 3 : w % 3;
    std::string key = "drain/f" + std::to_string(w);
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(through), PatternFile(40 + w, size), Url(key)});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    written.push_back({key, testing::PatternSha256(40 + w, size)});
  }
  ASSERT_EQ(NodeMetric(Endpoint(3), "shoal_staged_objects"), 2u);
  ASSERT_GE(NodeMetric(Endpoint(3), "shoal_replica_objects"), 1u);

  auto drain = Shoal({"drain", "--timeout", "120", Endpoint(3)});
  ASSERT_EQ(drain.exit_code, 0) << drain.err << nodes_[3]->Log();
  EXPECT_NE(drain.out.find("handed off 2 writes (48.0 MiB)"), std::string::npos) << drain.out;
  EXPECT_EQ(NodeMetric(Endpoint(3), "shoal_staged_objects"), 0u);
  EXPECT_EQ(NodeMetric(Endpoint(3), "shoal_replica_objects"), 0u);
  WaitForMembers(3);
  uint64_t received = 0;
  for (int i = 0; i < 3; i++) received += NodeMetric(Endpoint(i), "shoal_handoffs_received_total");
  EXPECT_EQ(received, 2u);

  nodes_[3]->Crash();  // drained: nothing is lost with it
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  for (int i = 0; i < 3; i++) ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(i), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBucket);
  for (const auto& [key, sha] : written) EXPECT_EQ(testing::ObjectSha256(*store, key), sha) << key;
}

// Small writes through node 0 of three, each with its copy recorded as pending by its holder (a
// home), then node 0 drained while the store refuses everything: each write goes to its copy's
// holder, and through the hand-off and the copy's end on node 0's side no home loses it: the
// two members left each hold every write as a home (12 entries for 6 writes), every write is
// read through both, byte-identical, and once the store is back each arrives in it.
TEST_P(ClusterTest, WritesRecordedWithTheirCopiesStayVisibleThroughADrain) {
  if (WithEtcd()) GTEST_SKIP() << "the hand-off does not depend on the membership's kind";
  extra_ = {"--replicas", "2", "--down-grace", "2"};
  ASSERT_NO_FATAL_FAILURE(StartClusterCaughtUp(3));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  const int kWrites = 6;
  auto key = [](int i) { return "drained/f" + std::to_string(i); };
  for (int i = 0; i < kWrites; i++) {
    auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(70 + i, 2000 + i), Url(key(i))});
    ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  }
  ASSERT_EQ(NodeMetric(Endpoint(1), "shoal_copies_recorded_total") + NodeMetric(Endpoint(2), "shoal_copies_recorded_total"),
            static_cast<uint64_t>(kWrites));
  auto drain = Shoal({"drain", "--timeout", "120", Endpoint(0)});
  ASSERT_EQ(drain.exit_code, 0) << drain.err << nodes_[0]->Log();
  EXPECT_NE(drain.out.find("handed off 6 writes"), std::string::npos) << drain.out;
  WaitForMembers(2);
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_handoffs_received_total") + NodeMetric(Endpoint(2), "shoal_handoffs_received_total"),
            static_cast<uint64_t>(kWrites));
  nodes_[0]->Crash();  // drained: nothing is lost with it
  EXPECT_TRUE(Until(
      [&] {
        return NodeMetric(Endpoint(1), "shoal_homed_writes") + NodeMetric(Endpoint(2), "shoal_homed_writes") ==
               2u * kWrites;
      },
      std::chrono::seconds(10)))
      << "each write pending at both members left: " << NodeMetric(Endpoint(1), "shoal_homed_writes") << " + "
      << NodeMetric(Endpoint(2), "shoal_homed_writes") << "\n" << nodes_[1]->Log() << nodes_[2]->Log();
  for (int i = 0; i < kWrites; i++) {
    for (int n = 1; n < 3; n++) {
      EXPECT_EQ(CatSha256(Url(key(i)), Endpoint(n)), testing::PatternSha256(70 + i, 2000 + i)) << key(i) << " through node " << n;
    }
  }
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  for (int n = 1; n < 3; n++) ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(n), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBucket);
  for (int i = 0; i < kWrites; i++) {
    EXPECT_EQ(testing::ObjectSha256(*store, key(i)), testing::PatternSha256(70 + i, 2000 + i)) << key(i);
  }
}

// Static membership: a member frozen (SIGSTOP) while a fifth node joins misses the push of
// the new epoch. The first request that carries the newer epoch makes it fetch the view.
TEST_P(ClusterTest, AMemberThatMissedAJoinCatchesUpOnTheNextRequest) {
  if (WithEtcd()) GTEST_SKIP() << "with etcd every member follows the watch";
  const std::string want = PutObject("late/data.bin", 9, 64 * kMiB);
  StartCluster(4);
  nodes_[3]->Pause();
  StartNode(4, 5);  // its push to node 3 times out
  nodes_[3]->Resume();
  EXPECT_EQ(NodeMetric(Endpoint(3), "shoal_cluster_epoch"), 1u) << "node 3 missed the join";
  EXPECT_EQ(CatSha256(Url("late/data.bin"), Endpoint(4)), want);  // routed by epoch 2, through every node
  WaitForMembers(5);
}

// GET /readyz as Kubernetes' readiness probe asks it: a node in a cluster is ready only once it
// holds a view of the membership. Under etcd a reader started before any member has none (503,
// saying why) until a member registers; a node alone is always ready.
TEST_P(ClusterTest, ANodeIsReadyOnlyOnceItHasTheClusterView) {
  auto readyz = [](const std::string& endpoint) {  // the body, then "|" and the HTTP status
    return testing::RunCommand({"curl", "-sS", "-w", "|%{http_code}", "http://" + endpoint + "/readyz"}).out;
  };
  Shoald alone;
  ASSERT_TRUE(alone.Start(proxy_.port()).ok()) << alone.Log();
  EXPECT_EQ(readyz(alone.Endpoint()), "ready\n|200");
  if (WithEtcd()) {
    nodes_[4] = std::make_unique<Shoald>();
    Status st = nodes_[4]->Start(proxy_.port(), {"--listen", Endpoint(4), "--reader", "--node-id", "r",
                                                 "--etcd", etcd_.Endpoint()});
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::string before = readyz(Endpoint(4));
    EXPECT_NE(before.find("no view of the cluster's membership yet"), std::string::npos) << before;
    EXPECT_NE(before.find(etcd_.Endpoint()), std::string::npos) << before;
    EXPECT_EQ(before.substr(before.size() - 4), "|503") << before;
    // Nor does it hand a client a view to route by (a client routing by a partial one sends
    // chunks to nodes that do not own them): 503, so the client reads through it and asks again.
    auto view = testing::RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                     "http://" + Endpoint(4) + "/v1/cluster/view?current=1"});
    EXPECT_EQ(view.out, "503");
  }
  StartCluster(2);
  EXPECT_EQ(readyz(Endpoint(0)), "ready\n|200");
  EXPECT_EQ(readyz(Endpoint(1)), "ready\n|200");
  if (WithEtcd()) {
    EXPECT_TRUE(Until([&] { return readyz(Endpoint(4)) == "ready\n|200"; }, std::chrono::seconds(60)))
        << readyz(Endpoint(4)) << nodes_[4]->Log();
    auto view = testing::RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                     "http://" + Endpoint(4) + "/v1/cluster/view?current=1"});
    EXPECT_EQ(view.out, "200");
  }
}

// etcd killed under a running cluster: each node says so within its renewal period, in
// /readyz (503 with why), in its metrics (shoal_membership_ok 0, unanswered renewals counted),
// in `shoal status` and once in its log; with etcd back it is ready again and logs that. A
// lease revoked behind a node's back (as if it had expired) is counted once, logged, and the
// node registers again under a new lease.
TEST_P(ClusterTest, ANodeThatCannotSeeEtcdSaysSoInReadyzMetricsStatusAndLog) {
  if (!WithEtcd()) GTEST_SKIP() << "static membership has no etcd";
  extra_ = {"--down-grace", "3"};
  StartCluster(2);
  auto readyz = [](const std::string& endpoint) {
    return testing::RunCommand({"curl", "-sS", "-w", "|%{http_code}", "http://" + endpoint + "/readyz"}).out;
  };
  EXPECT_EQ(readyz(Endpoint(0)), "ready\n|200");
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_membership_ok"), 1u);
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_etcd_failed_renewals_total"), 0u);

  etcd_.Kill();
  for (int i = 0; i < 2; i++) {
    EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(i), "shoal_membership_ok") == 0; }, std::chrono::seconds(30)))
        << nodes_[i]->Log();
    EXPECT_GE(NodeMetric(Endpoint(i), "shoal_etcd_failed_renewals_total"), 1u);
    std::string r = readyz(Endpoint(i));
    EXPECT_NE(r.find("cannot see the membership: etcd (" + etcd_.Endpoint() + ") did not answer the renewal"),
              std::string::npos) << r;
    EXPECT_EQ(r.substr(r.size() - 4), "|503") << r;
  }
  auto status = Shoal({"status", "--cache", Endpoint(0)});
  EXPECT_NE(status.out.find("membership    NOT SEEN"), std::string::npos) << status.out << status.err;
  EXPECT_NE(status.out.find("did not answer the renewal"), std::string::npos) << status.out;
  std::string log = nodes_[0]->Log();
  size_t first = log.find(" warn  etcd: etcd (" + etcd_.Endpoint() + ") did not answer the renewal");
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("did not answer the renewal", log.find('\n', first)), std::string::npos) << "logged once, not per renewal:\n"
                                                                                   << log;

  ASSERT_TRUE(etcd_.Restart().ok());
  for (int i = 0; i < 2; i++) {
    EXPECT_TRUE(Until([&] { return readyz(Endpoint(i)) == "ready\n|200"; }, std::chrono::seconds(60)))
        << readyz(Endpoint(i)) << nodes_[i]->Log();
    EXPECT_EQ(NodeMetric(Endpoint(i), "shoal_membership_ok"), 1u);
  }
  EXPECT_NE(nodes_[0]->Log().find("renewed again"), std::string::npos) << nodes_[0]->Log();

  // Revoke node 0's lease (etcd's JSON gateway, as an operator or an expiry would).
  uint64_t losses = NodeMetric(Endpoint(0), "shoal_etcd_lease_losses_total");
  auto key = testing::RunCommand({"curl", "-sS", "-X", "POST", etcd_.Endpoint() + "/v3/kv/range", "-d",
                                  "{\"key\":\"" + Base64Encode("/shoal/members/n0") + "\"}"});
  auto lease_at = key.out.find("\"lease\":\"");
  ASSERT_NE(lease_at, std::string::npos) << key.out;
  std::string lease = key.out.substr(lease_at + 9, key.out.find('"', lease_at + 9) - lease_at - 9);
  auto revoke = testing::RunCommand(
      {"curl", "-sS", "-X", "POST", etcd_.Endpoint() + "/v3/lease/revoke", "-d", "{\"ID\":\"" + lease + "\"}"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(0), "shoal_etcd_lease_losses_total") == losses + 1; },
                    std::chrono::seconds(30)))
      << nodes_[0]->Log();
  EXPECT_TRUE(Until([&] { return readyz(Endpoint(0)) == "ready\n|200"; }, std::chrono::seconds(30)))
      << nodes_[0]->Log();
  EXPECT_NE(nodes_[0]->Log().find(" error etcd: lost the lease of /shoal/members/n0"), std::string::npos)
      << nodes_[0]->Log();
  EXPECT_NE(nodes_[0]->Log().find("under a new lease"), std::string::npos) << nodes_[0]->Log();
  // `shoal status` counts the loss, and says the membership is seen again.
  status = Shoal({"status", "--cache", Endpoint(0)});
  EXPECT_NE(status.out.find("membership    seen (etcd answers, lease held); etcd renewals unanswered"),
            std::string::npos) << status.out << status.err;
  EXPECT_NE(status.out.find(", leases lost " + std::to_string(losses + 1) + "\n"), std::string::npos) << status.out;
}

// A client given two nodes (--cache A,B: A the node on its own host) goes on through B while A
// is down: cat, stat, cp and ls all work, and each says nothing of A. Given A alone it says it
// cannot reach A. A long-lived client (the library, as the mount and Python use it) that has
// seen the cluster's view turns to another member by itself: its next read is served whole by
// the members left, counted there, and a file it was writing through A when A died is
// complete once closed (its spool sent to another member), byte for byte.
TEST_P(ClusterTest, AClientTurnsToAnotherNodeWhenItsOwnCannotBeReached) {
  if (WithEtcd()) GTEST_SKIP() << "the client's side: the membership's kind does not change it";
  StartCluster(3);  // a write through n1 while n0 is down has its copy on n2
  const uint64_t size = (3ull << 20) + 5;
  const std::string sum = PutObject("entry/obj", 21, size);
  client::ClientOptions options;
  options.cache = Endpoint(0);
  auto lib = client::Client::Open(options);
  ASSERT_TRUE(lib.ok()) << lib.status().ToString();
  auto read_all = [&] {
    auto reader = (*lib)->OpenRead(Url("entry/obj"));
    if (!reader.ok()) return reader.status().ToString();
    std::string bytes(size, '\0');
    auto n = (*reader)->ReadAt(0, bytes.data(), bytes.size());
    if (!n.ok()) return n.status().ToString();
    bytes.resize(*n);
    return HexEncode(Sha256(bytes));
  };
  ASSERT_EQ(read_all(), sum);  // through n0, which gave it the cluster's view
  const uint64_t streamed = 5ull << 20;
  std::string streamed_bytes(streamed, '\0');
  testing::PatternSource::Fill(23, 0, streamed_bytes.data(), streamed_bytes.size());
  auto writer = (*lib)->OpenWrite(Url("entry/streamed"));
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE((*writer)->Write(streamed_bytes.data(), 3ull << 20).ok());  // on its way to n0

  nodes_[0]->Crash();
  Status rest = (*writer)->Write(streamed_bytes.data() + (3ull << 20), streamed - (3ull << 20));
  ASSERT_TRUE(rest.ok()) << rest.ToString();
  auto closed = (*writer)->Close();
  ASSERT_TRUE(closed.ok()) << closed.status().ToString();
  EXPECT_EQ(closed->size, streamed);
  // Writes the members left took as their own (staged, or uploaded since); copies not counted.
  // One scrape gives both at one moment (two could count an upload that ends between them twice).
  auto taken = [&] {
    uint64_t n = 0;
    for (int i = 1; i < 3; i++) {
      auto m = testing::NodeMetrics(Endpoint(i));
      n += m["shoal_staged_objects"] + m["shoal_uploads_total"];
    }
    return n;
  };
  EXPECT_EQ(taken(), 1u) << "the spool went to a member left";
  EXPECT_EQ(CatSha256(Url("entry/streamed"), Endpoint(2)), testing::PatternSha256(23, streamed));
  const std::string both = Endpoint(0) + "," + Endpoint(1);
  auto alone = Shoal({"cat", "--cache", Endpoint(0), Url("entry/obj")});
  EXPECT_NE(alone.exit_code, 0);
  EXPECT_NE(alone.err.find("cannot reach the cache node at " + Endpoint(0) + ": is shoald running there?"),
            std::string::npos)
      << alone.err;
  EXPECT_EQ(CatSha256(Url("entry/obj"), both), sum);
  auto cp = Shoal({"cp", "-q", "--cache", both, PatternFile(22, 1 << 20), Url("entry/written")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_EQ(cp.err.find(Endpoint(0)), std::string::npos) << cp.err;
  EXPECT_EQ(taken(), 2u) << "the write went to a member left";
  auto stat = Shoal({"stat", "--cache", both, Url("entry/written")});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("1048576"), std::string::npos) << stat.out;
  auto ls = Shoal({"ls", "--cache", both, Url("entry/")});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("written"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("obj"), std::string::npos) << ls.out;
  EXPECT_EQ(CatSha256(Url("entry/written"), Endpoint(1)), testing::PatternSha256(22, 1 << 20));

  auto served = [&] {
    return NodeMetric(Endpoint(1), "shoal_bytes_served_total") + NodeMetric(Endpoint(2), "shoal_bytes_served_total");
  };
  const uint64_t before = served();
  EXPECT_EQ(read_all(), sum);
  EXPECT_EQ(served() - before, size) << nodes_[1]->Log();
}

// A reader pinned to a write's local version (it looked while the write was pending) reads it
// routed to the chunks' owners after the upload: the node resolves the local version to the
// store's ETag, the same bytes, instead of calling the object changed (`shoal cat` stats, then
// reads, and an upload may end between the two).
TEST_P(ClusterTest, AReadPinnedToAWritesLocalVersionGoesOnAfterItsUpload) {
  if (WithEtcd()) GTEST_SKIP() << "the client's side: the membership's kind does not change it";
  StartCluster(2);
  const uint64_t size = (3ull << 20) + 7;
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());  // the upload waits
  auto cp = Shoal({"cp", "-q", "--cache", Endpoint(0), PatternFile(31, size), Url("pinned/obj")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  client::CacheConfig n0{Endpoint(0), "", nullptr};
  auto pending = client::StatThroughCache(n0, Url("pinned/obj"));
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  ASSERT_EQ(pending->state, "local");
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(60))) << nodes_[0]->Log();

  auto store = client::NewCacheStore(n0, *ObjectUrl::Parse(Url("")));
  ReadOptions ro;
  ro.if_match = pending->info.etag;
  testing::Sha256Stream sha;
  Status st = store->Get("pinned/obj", ro, [&](const char* d, size_t n) {
    sha.Update(d, n);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sha.HexDigest(), testing::PatternSha256(31, size));
}

// A read forwarded with an older epoch than the node's (by a client that took its view from a
// member still replaying the membership after a restart, or a node behind) is routed again by
// the node that got it, not taken for one whose owner could not be reached. Each of three
// nodes gets the forwarded read of a cold one-chunk object: the store serves it once, to its
// owner. Before, the two that do not own it each read it from the store (3 GETs).
TEST_P(ClusterTest, AReadForwardedByAnOlderMembershipIsRoutedAgainNotReadFromTheStore) {
  StartCluster(3);
  const uint64_t size = 3 * kMiB + 5;  // one chunk
  const std::string want = PutObject("stale/one.bin", 77, size);
  const std::string url = Url("stale/one.bin");
  auto head = testing::EtagThroughNode(Endpoint(0), url);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  const uint64_t epoch = NodeMetric(Endpoint(0), "shoal_cluster_epoch");
  ASSERT_GE(epoch, 1u);
  ASSERT_TRUE(proxy_.Reset().ok());
  for (int i = 0; i < 3; i++) {
    const std::string curl = "curl -sS -f -H 'X-Shoal-Etag: " + *head + "' -H 'X-Shoal-Size: " +
                             std::to_string(size) + "' -H 'X-Shoal-Read: forwarded' -H 'X-Shoal-Epoch: " +
                             std::to_string(epoch - 1) + "' 'http://" + Endpoint(i) + "/v1/object?url=" +
                             UriEncode(url, false) + "'";
    auto r = testing::RunCommand({"bash", "-o", "pipefail", "-c", curl + " | sha256sum"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, 64), want) << "through n" << i;
  }
  auto stats = proxy_.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->get_requests, 1u) << "nodes that do not own the chunk read it from the store";
  uint64_t stale = 0, for_others = 0;
  for (int i = 0; i < 3; i++) {
    stale += NodeMetric(Endpoint(i), "shoal_stale_forwards_total");
    for_others += NodeMetric(Endpoint(i), "shoal_store_gets_for_others_total");
  }
  EXPECT_EQ(stale, 3u);
  EXPECT_EQ(for_others, 0u);
}

// A rolling restart in place under etcd: each of 4 nodes in turn gets SIGTERM and comes back
// on the same data directory and address, while three readers read 8 objects (6 chunks each,
// more than one node's share) and a writer writes new objects, each client through its own
// node (as a job on that node's host would) with the next node as its second (--cache A,B),
// the store slowed to 1.5 s a request so that writes are still pending at each stop. Nothing
// waits for the clients: a node is stopped with reads and writes in flight through it. Each
// node rejoins under its previous lease (the epoch never changes) with its cache and its
// writes not yet uploaded; no read or write fails (a client whose node is away goes on
// through its second; a read cut off resumes there; a write cut off or refused while its
// copy's node was down is sent again by `shoal cp`), and every acknowledged write arrives
// byte-identical. The store serves at most 1% of the cached bytes again over the whole
// rollout (counted at the proxy): reads of a stopped node's chunks wait for it (it said it
// restarts) instead of going to the store, and a restarted node routes only once it has
// replayed the membership up to the current epoch.
TEST_P(ClusterTest, ARollingRestartInPlaceKeepsCacheWritesAndMembership) {
  if (!WithEtcd()) GTEST_SKIP() << "rejoining within the lease is etcd's";
  // --down-grace 30: reads wait up to this long (at most 30 s) for a restarting owner; on a
  // loaded machine a restart can take longer than 20 s, and a read then goes to the store.
  extra_ = {"--down-grace", "30", "--chunk-size", "1MiB"};
  StartCluster(4);
  const uint64_t epoch = NodeMetric(Endpoint(0), "shoal_cluster_epoch");
  const int kObjects = 8;
  const uint64_t kSize = (5ull << 20) + 3;
  std::vector<std::string> sums;
  for (int i = 0; i < kObjects; i++) sums.push_back(PutObject("roll/obj" + std::to_string(i), 300 + i, kSize));
  for (int i = 0; i < kObjects; i++) {
    ASSERT_EQ(CatSha256(Url("roll/obj" + std::to_string(i)), Endpoint(0)), sums[i]);  // warm: cached at the owners
  }
  const uint64_t cached = kObjects * kSize;
  const uint64_t store_before = StoreBytes();
  testing::FaultConfig slow;
  slow.latency_ms = 1500;
  ASSERT_TRUE(proxy_.Configure(slow).ok());

  // Client k uses node k % 4, and the next one when that node cannot be reached.
  std::mutex mu;
  auto nodes_of = [&](int n) { return Endpoint(n % 4) + "," + Endpoint((n + 1) % 4); };
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::string> failures;  // guarded by mu
  std::vector<std::pair<std::string, std::string>> acked;  // key, sha256; guarded by mu
  // Each operation's first node and when it ran; each node's time away. Guarded by mu.
  using Clock = std::chrono::steady_clock;
  struct Span {
    int node;
    Clock::time_point from, to;
  };
  std::vector<Span> ops, away;
  auto record = [&](int n, Clock::time_point from) {
    std::lock_guard<std::mutex> lock(mu);
    ops.push_back(Span{n, from, Clock::now()});
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; t++) {
    clients.emplace_back([&, t] {
      for (int k = 0; !done; k++) {
        int i = (k * 3 + t) % kObjects;
        int n = (k + t) % 4;
        auto from = Clock::now();
        std::string sha = CatSha256(Url("roll/obj" + std::to_string(i)), nodes_of(n));
        record(n, from);
        reads++;
        if (sha != sums[i]) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back("read of obj" + std::to_string(i) + " through n" + std::to_string(n) + ": " + sha);
        }
      }
    });
  }
  clients.emplace_back([&] {
    for (int w = 0; !done; w++) {
      std::string key = "roll/w" + std::to_string(w);
      uint64_t size = (2ull << 20) + w;
      std::string file = PatternFile(500 + w, size);
      int n = w % 4;
      auto from = Clock::now();
      auto cp = Shoal({"cp", "-q", "--cache", nodes_of(n), file, Url(key)});
      record(n, from);
      std::lock_guard<std::mutex> lock(mu);
      if (cp.exit_code == 0) {
        acked.emplace_back(key, testing::PatternSha256(500 + w, size));
      } else {
        failures.push_back("write " + key + " through n" + std::to_string(n) + ": " + cp.err);
      }
    }
  });

  uint64_t pending_at_stops = 0;
  uint64_t restart_waits = 0;  // reads that waited for a restarting owner, over every node's runs
  uint64_t stale_forwards = 0;  // reads sent by an older membership, routed again; likewise
  // Chunk GETs each node sent to the store, and of them for chunks another member owns, over
  // every run of it (its counters start again at a restart).
  uint64_t store_gets[4] = {0, 0, 0, 0}, gets_for_others[4] = {0, 0, 0, 0};
  auto count_gets = [&](int k) {
    store_gets[k] += NodeMetric(Endpoint(k), "shoal_store_get_requests_total");
    gets_for_others[k] += NodeMetric(Endpoint(k), "shoal_store_gets_for_others_total");
  };
  for (int k = 0; k < 4; k++) {
    std::this_thread::sleep_for(std::chrono::seconds(2));  // traffic on every node
    // Bytes cached for reads: the cache less what is pinned (this node's own writes and the
    // copies it holds for other members, which it drops once their origin has uploaded them,
    // so the total may fall while the node restarts). One scrape gives both at one moment.
    auto read_cached = [&] {
      auto m = testing::NodeMetrics(Endpoint(k));
      return m["shoal_cache_bytes"] - m["shoal_cache_pinned_bytes"];
    };
    const uint64_t cached_before = read_cached();
    pending_at_stops += NodeMetric(Endpoint(k), "shoal_staged_objects");
    restart_waits += NodeMetric(Endpoint(k), "shoal_peer_restart_waits_total");  // its counters start again
    stale_forwards += NodeMetric(Endpoint(k), "shoal_stale_forwards_total");
    count_gets(k);
    auto stopped = Clock::now();
    ASSERT_TRUE(nodes_[k]->RestartGracefully(proxy_.port()).ok()) << nodes_[k]->Log();
    {
      std::lock_guard<std::mutex> lock(mu);
      away.push_back(Span{k, stopped, Clock::now()});
    }
    EXPECT_GE(read_cached(), cached_before) << "n" << k << " lost cached chunks";
    // It replays the membership's history up to the same epoch: nothing new was written there.
    EXPECT_TRUE(Until([&] { return NodeMetric(Endpoint(k), "shoal_cluster_epoch") == epoch; }, std::chrono::seconds(30)))
        << nodes_[k]->Log();
    for (int i = 0; i < 4; i++) EXPECT_EQ(NodeMetric(Endpoint(i), "shoal_cluster_epoch"), epoch) << "n" << i;
    EXPECT_NE(nodes_[k]->Log().find("rejoined the membership under this node's previous lease"), std::string::npos)
        << nodes_[k]->Log();
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  done = true;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  for (int k = 0; k < 4; k++) {
    EXPECT_EQ(NodeMetric(Endpoint(k), "shoal_cluster_epoch"), epoch) << "a restart changed the membership";
    ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(k), std::chrono::seconds(120))) << nodes_[k]->Log();
  }
  EXPECT_TRUE(failures.empty()) << failures.size() << " client operations failed, the first: " << failures.front();
  // Operations begun on a node, or under way there, while it was away: each went on elsewhere.
  int across = 0;
  for (const auto& op : ops) {
    for (const auto& a : away) across += op.node == a.node && op.from < a.to && op.to > a.from;
  }
  std::printf("rolling restart: %d of %zu client operations were on their own node while it was stopped\n", across,
              ops.size());
  EXPECT_GT(across, 0) << "no client's own node went away under it: the test did not cover that";
  EXPECT_GT(pending_at_stops, 0u) << "no write was pending at a stop: the test did not cover un-uploaded writes";
  EXPECT_GT(reads.load(), 0);
  ASSERT_FALSE(acked.empty());
  auto store = testing::Servers().azurite.Store(kBucket);
  for (const auto& [key, sha] : acked) EXPECT_EQ(testing::ObjectSha256(*store, key), sha) << key;
  const uint64_t reread = StoreBytes() - store_before;
  for (int k = 0; k < 4; k++) {
    restart_waits += NodeMetric(Endpoint(k), "shoal_peer_restart_waits_total");
    stale_forwards += NodeMetric(Endpoint(k), "shoal_stale_forwards_total");
  }
  std::printf("rolling restart: %d reads (%llu chunk reads waited for a restarting owner, %llu sent by an older "
              "membership were routed again), %zu writes acknowledged, "
              "%llu pending at the 4 stops; the store served %llu bytes again, %.2f%% of the %llu cached\n",
              reads.load(), static_cast<unsigned long long>(restart_waits),
              static_cast<unsigned long long>(stale_forwards), acked.size(),
              static_cast<unsigned long long>(pending_at_stops), static_cast<unsigned long long>(reread),
              100.0 * static_cast<double>(reread) / static_cast<double>(cached), static_cast<unsigned long long>(cached));
  std::string each;  // which nodes went to the store, and for whose chunks, for a failure
  for (int k = 0; k < 4; k++) {
    count_gets(k);
    each += " n" + std::to_string(k) + ": " + std::to_string(store_gets[k]) + " store GETs, " +
            std::to_string(gets_for_others[k]) + " for another member's chunks;";
    // Why: each node logs its stand-ins, and the announcements it could not make.
    std::istringstream log(nodes_[k]->Log());
    for (std::string line; std::getline(log, line);) {
      if (line.find("from the object store") != std::string::npos || line.find("could not tell") != std::string::npos) {
        each += "\n  n" + std::to_string(k) + ": " + line;
      }
    }
  }
  EXPECT_LE(reread, cached / 100) << "the store served " << reread << " bytes again, of " << cached << " cached;"
                                  << each;
  EXPECT_GT(restart_waits, 0u) << "no read waited for a restarting owner: the test did not read a stopped node's chunks";
}

// The cluster's token rotated while the members run (--token-grace 0, so the old token is
// refused at once): the new token in the shared --token-file, SIGHUP to each member. Each logs
// the reload; a client with the old token is refused by both, one with the new token reads;
// and the members call each other with the new one: a write through n0 gets its copy onto n1,
// no call of n0 to a peer fails and n1 refuses none. Before the file was read again on
// SIGHUP, the old token stayed the only one accepted and sent.
TEST_P(ClusterTest, TheClustersTokenRotatesOnSighupAndMembersUseTheNewOne) {
  testing::TempDir tmp;
  const std::string token_file = tmp.path() + "/cluster-token";
  std::ofstream(token_file) << "old-cluster-token-0123456789\n";
  extra_ = {"--token-file", token_file, "--token-grace", "0", "--chunk-size", "1MiB"};
  StartCluster(2);
  const uint64_t size = 16ull << 20;
  const std::string key = "token-rotation/obj.bin";
  std::string bytes(size, '\0');
  testing::PatternSource::Fill(83, 0, bytes.data(), bytes.size());
  ASSERT_TRUE(testing::Servers().azurite.Store(kBucket)->PutObject(key, bytes).ok());
  auto cat = [&](int node, const std::string& token) {
    std::ofstream(tmp.path() + "/client-token") << token << "\n";
    testing::Env env = testing::ServersClientEnv();
    env["SHOAL_TOKEN_FILE"] = tmp.path() + "/client-token";
    return testing::RunCommand({testing::ShoalBinary(), "cat", "--cache", Endpoint(node), Url(key)}, env);
  };
  // The old token works before the rotation (a HEAD through n1 only: n0 reads nothing yet).
  std::ofstream(tmp.path() + "/client-token") << "old-cluster-token-0123456789\n";
  testing::Env env = testing::ServersClientEnv();
  env["SHOAL_TOKEN_FILE"] = tmp.path() + "/client-token";
  auto stat = testing::RunCommand({testing::ShoalBinary(), "stat", "--cache", Endpoint(1), Url(key)}, env);
  ASSERT_EQ(stat.exit_code, 0) << stat.err;

  std::ofstream(token_file, std::ios::trunc) << "new-cluster-token-9876543210\n";
  for (int i = 0; i < 2; i++) {
    ::kill(nodes_[i]->Pid(), SIGHUP);
    ASSERT_TRUE(Until([&] { return nodes_[i]->Log().find("SIGHUP: cluster token reloaded from " + token_file) !=
                                   std::string::npos; }, std::chrono::seconds(30)))
        << nodes_[i]->Log();
    EXPECT_NE(nodes_[i]->Log().find("another one sent to the members; retired: 1, refused from now on"),
              std::string::npos) << nodes_[i]->Log();
  }
  for (int i = 0; i < 2; i++) {
    auto old = cat(i, "old-cluster-token-0123456789");
    EXPECT_NE(old.exit_code, 0) << "n" << i << " still takes the old token";
    EXPECT_NE(old.err.find("not one this node knows"), std::string::npos) << old.err;
  }
  const uint64_t refused_by_n1 = NodeMetric(Endpoint(1), "shoal_auth_refusals_total");
  auto read = cat(0, "new-cluster-token-9876543210");
  ASSERT_EQ(read.exit_code, 0) << read.err << nodes_[0]->Log();
  EXPECT_TRUE(read.out == bytes) << "the object read through n0 is not the one in the store";
  // A write through n0 is acknowledged once n1 holds its copy (/v1/replica/*, which only the
  // cluster's token may call): n0 sent the new token, the only one n1 still accepts.
  const uint64_t copied = 3ull << 20;
  testing::Env writer = testing::ServersClientEnv();
  writer["SHOAL_TOKEN_FILE"] = tmp.path() + "/client-token";
  auto cp = testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", Endpoint(0), PatternFile(84, copied),
                                 Url("token-rotation/written.bin")}, writer);
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_replica_bytes_total"), copied) << nodes_[1]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(0), "shoal_peer_failures_total"), 0u) << nodes_[0]->Log();
  EXPECT_EQ(NodeMetric(Endpoint(1), "shoal_auth_refusals_total"), refused_by_n1) << nodes_[1]->Log();
}

INSTANTIATE_TEST_SUITE_P(Membership, ClusterTest, ::testing::Values("static", "etcd"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }
