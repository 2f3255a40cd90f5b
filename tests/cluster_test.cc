// A cluster of shoald processes on loopback (static --peers) in front of a real Azurite
// behind the fault proxy, which counts what the store served: fan-out reads fetch each chunk
// from the store once for the whole cluster, a joining node takes its chunks from their
// previous owners rather than the store, and a read survives a node killed under it.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "common/strings.h"
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

CommandResult Shoal(std::vector<std::string> args) {
  args.insert(args.begin(), testing::ShoalBinary());
  return testing::RunCommand(args, testing::Servers().azurite.ClientEnv());
}

class ClusterTest : public ::testing::Test {
 protected:
  static constexpr int kMaxNodes = 5;

  void SetUp() override {
    Status st = proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port()));
    ASSERT_TRUE(st.ok()) << st.ToString();
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

  // Starts node `i` as a member of a cluster of the first `members` nodes.
  void StartNode(int i, int members) {
    nodes_[i] = std::make_unique<Shoald>();
    Status st = nodes_[i]->Start(proxy_.port(), {"--listen", Endpoint(i), "--peers", Peers(members)});
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  uint64_t StoreBytes() {
    auto stats = proxy_.Stats();
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->upstream_response_bytes : 0;
  }

  // Puts a pattern object straight into Azurite; its sha256.
  std::string PutObject(const std::string& key, uint64_t seed, uint64_t size) {
    testing::TempDir tmp;
    std::string file = tmp.path() + "/obj";
    EXPECT_TRUE(testing::WritePatternFile(file, seed, size));
    auto cp = Shoal({"cp", "-q", file, Url(key)});
    EXPECT_EQ(cp.exit_code, 0) << cp.err;
    return testing::PatternSha256(seed, size);
  }

  testing::FaultProxy proxy_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<Shoald>> nodes_;
};

// Four nodes read a 512 MiB object cold: the store serves it exactly once, spread over every
// node; warm, not at all. A fifth node joins: it takes about 1/5 of the chunks, and finds them
// on their previous owners, so re-reading the dataset costs the store at most 1% of it.
TEST_F(ClusterTest, AJoiningNodeTakesItsChunksFromPreviousOwnersNotTheStore) {
  const uint64_t size = 512 * kMiB;
  const std::string want = PutObject("ds/data.bin", 5, size);
  const std::string url = Url("ds/data.bin");
  for (int i = 0; i < 4; i++) StartNode(i, 4);

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
  ASSERT_TRUE(Until([&] {
    for (int i = 0; i < 5; i++) {
      if (NodeMetric(Endpoint(i), "shoal_cluster_epoch") != 2) return false;
    }
    return true;
  })) << "every node learns of the join; node 4's log:\n" << nodes_[4]->Log();

  before = StoreBytes();
  ASSERT_EQ(CatSha256(url, Endpoint(0)), want);
  uint64_t refetched = StoreBytes() - before;
  EXPECT_LE(refetched, size / 100) << "re-read after the join cost the store " << FormatBytes(refetched);
  uint64_t moved = NodeMetric(Endpoint(4), "shoal_previous_owner_hits_total");
  EXPECT_GT(moved, 0u) << "the new node owns some chunks and took them from their previous owners";
  EXPECT_EQ(NodeMetric(Endpoint(4), "shoal_peer_fetch_bytes_total"), moved * 8 * kMiB);
}

// A node killed (kill -9) while a 512 MiB read is fetching chunks from it: the read goes on
// through the next replica, and the reader gets every byte right.
TEST_F(ClusterTest, AReadSurvivesANodeKilledUnderIt) {
  const uint64_t size = 512 * kMiB;
  const std::string want = PutObject("crash/data.bin", 6, size);
  const std::string url = Url("crash/data.bin");
  for (int i = 0; i < 4; i++) StartNode(i, 4);
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

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new shoal::testing::StoreServersEnvironment(shoal::kBucket));
  return RUN_ALL_TESTS();
}
