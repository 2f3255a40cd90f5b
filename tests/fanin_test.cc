// Fan-in: many nodes load one object at once. A 4-member cluster (static --peers, every node at
// an egress limit) in front of a real Azurite behind the counting proxy, and 16 reader hosts:
// each a shoald --reader with a `shoal cat` on its Unix socket. The store serves the object
// once; owners send each chunk to a few readers and send the rest to readers that have it, so
// no node sends more than twice the object.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::NodeMetric;
using testing::Shoald;
using testing::Until;

constexpr const char* kBucket = "fanintest";
constexpr uint64_t kMiB = 1ull << 20;

std::string Url(const std::string& key) { return "az://" + std::string(kBucket) + "/" + key; }

using testing::Shoal;

class FanInTest : public ::testing::Test {
 protected:
  static constexpr int kMembers = 4;

  void SetUp() override {
    Status st = proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port()));
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (int i = 0; i < kMembers; i++) ports_.push_back(testing::FreePort());
    for (int i = 0; i < kMembers; i++) peers_ += (i ? "," : "") + ("n" + std::to_string(i)) + "=" + Endpoint(i);
  }

  std::string Endpoint(int i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }

  void StartMembers(const std::vector<std::string>& extra) {
    for (int i = 0; i < kMembers; i++) {
      members_.push_back(std::make_unique<Shoald>());
      std::vector<std::string> flags = {"--listen", Endpoint(i), "--peers", peers_};
      flags.insert(flags.end(), extra.begin(), extra.end());
      Status st = members_.back()->Start(proxy_.port(), flags);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    bool agreed = Until([&] {
      for (int i = 0; i < kMembers; i++) {
        if (NodeMetric(Endpoint(i), "shoal_cluster_members") != kMembers) return false;
      }
      return true;
    }, std::chrono::seconds(60));
    ASSERT_TRUE(agreed) << members_[0]->Log();
  }

  // Reader host `i`: a shoald --reader serving its host on a Unix socket.
  void StartReader(int i, const std::vector<std::string>& extra) {
    readers_.push_back(std::make_unique<Shoald>());
    auto& r = *readers_.back();
    std::vector<std::string> flags = {"--reader", "--node-id", "r" + std::to_string(i), "--peers", peers_,
                                      "--socket", r.dir() + "/shoald.sock"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    Status st = r.Start(proxy_.port(), flags);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  std::string Socket(int i) const { return readers_[i]->dir() + "/shoald.sock"; }

  // `shoal cat --cache unix:` of `url` through each of the first `n` reader nodes at once; runs
  // `meanwhile` (if any) while they read. Each reader's sha256, or why its cat failed.
  std::vector<std::string> CatAll(const std::string& url, int n, const std::function<void()>& meanwhile) {
    std::vector<std::string> got(n);
    std::vector<std::thread> cats;
    for (int i = 0; i < n; i++) {
      cats.emplace_back([&, i] {
        auto r = testing::CatThroughNode(url, "unix:" + Socket(i));
        got[i] = r.exit_code == 0 ? Trim(r.out) : "cat failed: " + r.err;
      });
    }
    if (meanwhile) meanwhile();
    for (auto& t : cats) t.join();
    return got;
  }

  uint64_t StoreBytes() {
    auto stats = proxy_.Stats();
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->upstream_response_bytes : 0;
  }

  std::string PutObject(const std::string& key, uint64_t seed, uint64_t size) {
    std::string file = files_.path() + "/pattern";
    EXPECT_TRUE(testing::WritePatternFile(file, seed, size));
    auto cp = Shoal({"cp", "-q", file, Url(key)});
    EXPECT_EQ(cp.exit_code, 0) << cp.err;
    std::remove(file.c_str());
    return testing::PatternSha256(seed, size);
  }

  // Bytes node `endpoint` sent over TCP (to other nodes and remote clients): what its
  // network link carried. Its local clients (Unix socket) are left out. UINT64_MAX when the
  // metrics cannot be read.
  static uint64_t NetworkBytes(const std::string& endpoint) {
    auto m = testing::NodeMetrics(endpoint);
    auto all = m.find("shoal_bytes_served_total"), local = m.find("shoal_bytes_served_local_total");
    return all == m.end() || local == m.end() ? UINT64_MAX : all->second - local->second;
  }

  testing::FaultProxy proxy_;
  std::vector<int> ports_;
  std::string peers_;
  std::vector<std::unique_ptr<Shoald>> members_, readers_;
  testing::TempDir files_;
};

// 16 readers (separate processes, each through its own reader node) of one cold 256 MiB
// object at once: the store serves exactly 256 MiB, no node sends more than 2 x 256 MiB over
// the network, every reader gets the right bytes, and readers passed chunks on to each other.
TEST_F(FanInTest, SixteenReadersOfOneColdObjectCostTheStoreOneCopyAndNoNodeMoreThanTwo) {
  const uint64_t size = 256 * kMiB;  // 32 chunks, 8 owned by each member
  const int kReaders = 16;
  const std::string want = PutObject("model/weights.bin", 11, size);
  const std::string url = Url("model/weights.bin");
  const std::vector<std::string> limit = {"--egress-limit", "64MiB"};
  StartMembers(limit);
  for (int i = 0; i < kReaders; i++) StartReader(i, limit);

  uint64_t before = StoreBytes();
  std::vector<std::string> got = CatAll(url, kReaders, nullptr);
  for (int i = 0; i < kReaders; i++) EXPECT_EQ(got[i], want) << "reader " << i;
  EXPECT_EQ(StoreBytes() - before, size) << "each chunk leaves the store once";

  uint64_t most = 0, passed_on = 0, redirects = 0, fallbacks = 0;
  std::string busiest, each;
  auto check = [&](const std::string& name, const std::string& endpoint) {
    uint64_t sent = NetworkBytes(endpoint);
    EXPECT_LE(sent, 2 * size) << name << " sent " << FormatBytes(sent);
    // What each node read from the store and which of its peer requests failed, so a
    // chunk fetched twice names the node that fetched it and why.
    each += "  " + name + " sent " + FormatBytes(sent) + ", read " +
            FormatBytes(NodeMetric(endpoint, "shoal_store_get_bytes_total")) + " from the store, " +
            std::to_string(NodeMetric(endpoint, "shoal_peer_failures_total")) + " peer failures\n";
    if (sent > most) {
      most = sent;
      busiest = name;
    }
  };
  for (int i = 0; i < kMembers; i++) {
    check("member n" + std::to_string(i), Endpoint(i));
    redirects += NodeMetric(Endpoint(i), "shoal_fan_in_redirects_total");
  }
  for (int i = 0; i < kReaders; i++) {
    check("reader r" + std::to_string(i), readers_[i]->Endpoint());
    passed_on += NodeMetric(readers_[i]->Endpoint(), "shoal_bytes_served_peers_total");
    fallbacks += NodeMetric(readers_[i]->Endpoint(), "shoal_fan_in_fallbacks_total");
    EXPECT_EQ(NodeMetric(readers_[i]->Endpoint(), "shoal_bytes_served_local_total"), size);
  }
  EXPECT_GT(redirects, 0u);
  EXPECT_GT(passed_on, 0u) << "readers passed chunks on to other readers";
  // `shoal status` through a reader's Unix socket shows what it got from holders.
  auto status = Shoal({"status", "--cache", "unix:" + Socket(3)});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  uint64_t from_holders = NodeMetric(readers_[3]->Endpoint(), "shoal_fan_in_fetches_total");
  EXPECT_GT(from_holders, 0u);
  EXPECT_NE(status.out.find(std::to_string(from_holders) + " chunks (" +
                            FormatBytes(NodeMetric(readers_[3]->Endpoint(), "shoal_fan_in_fetch_bytes_total")) +
                            ") got from holders"),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find(FormatBytes(size) + " to this host's processes"), std::string::npos) << status.out;
  std::printf("fan-in: 16 readers x %s; busiest node %s sent %s; readers passed on %s; %llu redirects, %llu "
              "fallbacks\n",
              FormatBytes(size).c_str(), busiest.c_str(), FormatBytes(most).c_str(), FormatBytes(passed_on).c_str(),
              static_cast<unsigned long long>(redirects), static_cast<unsigned long long>(fallbacks));
  std::printf("%s", each.c_str());
}

// Many streams from one process (shoal-load), spread over the 4 members, of one cold object:
// each member holds its streams on its event loop while the chunks are fetched once, and the
// streams follow each chunk's bytes as they arrive. The store serves exactly one copy, every
// stream gets the same, right bytes, and none fails.
TEST_F(FanInTest, TwoHundredStreamsFromOneProcessOfAColdObjectCostTheStoreOneCopy) {
  const uint64_t size = 24 * kMiB;
  const int kStreams = 200;
  PutObject("streams/model.bin", 17, size);
  std::string pattern(size, '\0');
  testing::PatternSource::Fill(17, 0, pattern.data(), size);
  char want[32];
  std::snprintf(want, sizeof(want), "%016llx:%llu", static_cast<unsigned long long>(XXH3_64bits(pattern.data(), size)),
                static_cast<unsigned long long>(size));
  StartMembers({"--egress-limit", "512MiB"});
  std::string nodes;
  for (int i = 0; i < kMembers; i++) nodes += (i ? "," : "") + Endpoint(i);
  uint64_t before = StoreBytes();
  auto load = testing::RunCommand({testing::BinaryDir() + "/bin/shoal-load", "--node", nodes, "--streams",
                                   std::to_string(kStreams), "--url", Url("streams/model.bin")});
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  auto j = nlohmann::json::parse(load.out);
  EXPECT_EQ(j["streams_ok"], kStreams) << load.out;
  EXPECT_EQ(j["streams_failed"], 0) << load.out;
  EXPECT_EQ(j["distinct_digests"], 1) << load.out;
  EXPECT_EQ(j["digests"].value(want, 0), kStreams) << "want " << want << ": " << load.out;
  // Which member read what from the store, and whether its requests to peers failed (a
  // member whose lookups time out reads the chunks of the peer it skips from the store).
  std::string each;
  for (int i = 0; i < kMembers; i++) {
    each += "  n" + std::to_string(i) + " read " + FormatBytes(NodeMetric(Endpoint(i), "shoal_store_get_bytes_total")) +
            " from the store, " + std::to_string(NodeMetric(Endpoint(i), "shoal_peer_failures_total")) +
            " peer failures\n";
  }
  EXPECT_EQ(StoreBytes() - before, size) << "each chunk leaves the store once\n" << each;
}

// A reader host killed (kill -9) while 8 readers load a cold 256 MiB object: the nodes it was
// passing chunks on to get them from the owners instead (from the byte where it stopped),
// every other reader gets the right bytes, and the store still serves one copy.
TEST_F(FanInTest, AReaderNodeKilledMidTransferCostsTheOthersNothingButTime) {
  const uint64_t size = 256 * kMiB;
  const int kReaders = 8;
  const std::string want = PutObject("kill/model.bin", 13, size);
  const std::string url = Url("kill/model.bin");
  const std::vector<std::string> limit = {"--egress-limit", "16MiB"};
  StartMembers(limit);
  for (int i = 0; i < kReaders; i++) StartReader(i, limit);
  uint64_t before = StoreBytes();
  // The victim: a reader node seen passing chunks on (its bytes sent to peers grew between two
  // looks, from 0 too), whatever its own reader's progress: its own reader is served over the
  // Unix socket without a limit and often finishes first, while askers are still fetching from
  // it. Killed then, it cuts askers mid-chunk. Each look asks every reader node at once, so
  // looks come often.
  int victim = -1;
  std::vector<std::optional<uint64_t>> seen(kReaders);  // bytes passed on at the last look
  std::string looks;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> got = CatAll(url, kReaders, [&] {
    bool found = Until([&] {
      if (looks.size() < 16384) {
        looks += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start).count()) + " ms:";
      }
      std::vector<std::map<std::string, uint64_t>> now(kReaders);
      std::vector<std::thread> asks;
      for (int i = 0; i < kReaders; i++) {
        asks.emplace_back([&, i] { now[i] = testing::NodeMetrics(readers_[i]->Endpoint()); });
      }
      for (auto& t : asks) t.join();
      for (int i = 0; i < kReaders && victim < 0; i++) {
        const auto& m = now[i];
        auto passed = m.find("shoal_bytes_served_peers_total"), own = m.find("shoal_bytes_served_local_total");
        if (passed == m.end() || own == m.end()) continue;
        if (seen[i] && passed->second > *seen[i]) victim = i;  // growing from 0 counts too
        seen[i] = passed->second;
        if (looks.size() < 16384) {
          looks += " r" + std::to_string(i) + ":" + std::to_string(passed->second >> 20) + "/" +
                   std::to_string(own->second >> 20);
        }
      }
      if (looks.size() < 16384) looks += "\n";
      return victim >= 0;
    }, std::chrono::seconds(120));
    ASSERT_TRUE(found) << "no reader node was seen passing chunks on; each look, per reader node, MiB passed "
                          "on / MiB to its own reader:\n"
                       << looks;
    readers_[victim]->Crash();
    std::printf("reader node r%d killed; the looks (MiB passed on / MiB to its own reader):\n%s", victim,
                looks.substr(0, 2048).c_str());
  });
  ASSERT_GE(victim, 0);
  uint64_t fallbacks = 0;
  for (int i = 0; i < kReaders; i++) {
    if (i == victim) continue;
    EXPECT_EQ(got[i], want) << "reader " << i;
    fallbacks += NodeMetric(readers_[i]->Endpoint(), "shoal_fan_in_fallbacks_total");
  }
  EXPECT_GT(fallbacks, 0u) << "askers cut off by the dead node went back to the owners";
  EXPECT_EQ(StoreBytes() - before, size) << "the owners had every chunk: nothing was fetched twice";
  std::printf("fan-in with reader node %d killed: %llu chunks went back to their owner\n", victim,
              static_cast<unsigned long long>(fallbacks));
}

// `shoal warmup --broadcast` puts a copy of a 256 MiB object on each of 4 members: the store
// serves it once, each member gets every chunk exactly once (from the store, its owner, or a
// member the owner sent it to), and a second broadcast fetches nothing. Each warmup has its
// node list the prefix: node 0's listing was cached by the `ls` before it, node 1's is not.
TEST_F(FanInTest, WarmupBroadcastPutsACopyOnEveryMemberForOneStoreRead) {
  const uint64_t size = 256 * kMiB;
  const std::string want = PutObject("bcast/model.bin", 12, size);
  // One direct copy per chunk: of the 3 other members, 2 are sent to a holder.
  StartMembers({"--egress-limit", "256MiB", "--fan-in-direct", "1"});
  // Each warmup has its node list the prefix: that listing's bytes, measured alone first.
  uint64_t before = StoreBytes();
  auto ls = Shoal({"ls", "-r", "--cache", Endpoint(0), Url("bcast/")});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  const uint64_t listing = StoreBytes() - before;
  before = StoreBytes();
  auto warm = Shoal({"warmup", "--broadcast", "-q", "--cache", Endpoint(0), Url("bcast/")});
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_EQ(StoreBytes() - before, size) << "the object once; the listing from node 0's listing cache";
  uint64_t redirects = 0;
  for (int i = 0; i < kMembers; i++) {
    uint64_t got = NodeMetric(Endpoint(i), "shoal_store_get_bytes_total") +
                   NodeMetric(Endpoint(i), "shoal_peer_fetch_bytes_total") +
                   NodeMetric(Endpoint(i), "shoal_fan_in_fetch_bytes_total");
    EXPECT_EQ(got, size) << "member n" << i << " got every chunk once";
    redirects += NodeMetric(Endpoint(i), "shoal_fan_in_redirects_total");
  }
  EXPECT_GT(redirects, 0u) << "owners sent members to each other";
  auto again = Shoal({"warmup", "--broadcast", "--cache", Endpoint(1), Url("bcast/")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("0 B fetched now"), std::string::npos) << again.out;
  EXPECT_EQ(StoreBytes() - before, size + listing) << "node 1 lists the prefix once, and fetches nothing";
  for (int i = 0; i < kMembers; i++) {
    EXPECT_EQ(testing::CatSha256(Url("bcast/model.bin"), Endpoint(i)), want);
  }
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }
