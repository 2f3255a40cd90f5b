// Acceptance of the S3 front door with unmodified clients and real backends:
// - the AWS SDK for JavaScript (@aws-sdk/client-s3, tests/door_sdk.js, run with node): every
//   operation an application uses, what it wrote read back from Azurite byte-identical.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::NodeMetric;
using testing::Shoald;
using testing::Until;

constexpr const char* kBackend = "doorsdk";
constexpr uint64_t kMiB = 1ull << 20;
constexpr const char* kKey = "AKIDSDKTEST000001:sdk-secret/with+chars";

class DoorSdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.path() + "/keys") << "s3 AKIDSDKTEST000001 sdk-secret/with+chars *:read-write\n";
    ASSERT_TRUE(proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
  }

  std::string Endpoint(int i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }

  // `n` nodes, each a door serving `buckets` (NAME=URL), reaching Azurite through the proxy;
  // with n > 1 a cluster (static --peers), waited for until every member sees all of them.
  void StartNodes(int n, const std::vector<std::string>& buckets, const std::vector<std::string>& extra) {
    std::string peers;
    for (int i = 0; i < n; i++) ports_.push_back(testing::FreePort());
    for (int i = 0; i < n; i++) peers += (i ? "," : "") + ("n" + std::to_string(i)) + "=" + Endpoint(i);
    for (int i = 0; i < n; i++) {
      nodes_.push_back(std::make_unique<Shoald>());
      std::vector<std::string> flags = {"--listen", Endpoint(i), "--credentials", tmp_.path() + "/keys"};
      if (n > 1) flags.insert(flags.end(), {"--peers", peers});
      for (const auto& b : buckets) flags.insert(flags.end(), {"--bucket", b});
      flags.insert(flags.end(), extra.begin(), extra.end());
      Status st = nodes_.back()->Start(proxy_.port(), flags);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    if (n == 1) return;
    bool agreed = Until([&] {
      for (int i = 0; i < n; i++) {
        if (NodeMetric(Endpoint(i), "shoal_cluster_members") != static_cast<uint64_t>(n)) return false;
      }
      return true;
    }, std::chrono::seconds(60));
    ASSERT_TRUE(agreed) << nodes_[0]->Log();
  }

  // One step of door_sdk_boto3.py against node `i`: the JSON line it printed.
  nlohmann::json Boto3(int i, std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", testing::SourceDir() + "/tests/door_sdk_boto3.py"});
    args.insert(args.begin() + 3, "http://" + Endpoint(i));
    return LastJson(testing::RunCommand(args, ClientEnv("DOOR_KEY_RW"), "", std::chrono::seconds(600)), i);
  }

  static testing::Env ClientEnv(const std::string& key_var) {
    return {{key_var, kKey}, {"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
            {"AWS_EC2_METADATA_DISABLED", "true"}};
  }

  nlohmann::json LastJson(const testing::CommandResult& r, int node) {
    EXPECT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << nodes_[node]->Log();
    size_t nl = r.out.rfind('\n', r.out.size() >= 2 ? r.out.size() - 2 : 0);
    auto j = nlohmann::json::parse(r.out.substr(nl == std::string::npos ? 0 : nl + 1), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j.is_discarded() ? nlohmann::json::object() : j;
  }

  uint64_t StoreBytes() {
    auto stats = proxy_.Stats();
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->upstream_response_bytes : 0;
  }

  testing::TempDir tmp_;
  testing::FaultProxy proxy_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<Shoald>> nodes_;
};

// @aws-sdk/client-s3 as an application uses it: put (one body, a stream, a multipart upload of
// 5 MiB parts), get (whole, ranges), head, 2,500 keys created through the door and listed (pages
// of 1,000, by delimiter, pages of 200), copy, delete, delete-objects. What it wrote is in Azurite
// byte-identical; what it deleted is not.
TEST_F(DoorSdkTest, TheJavaScriptSdkUsesTheDoor) {
  StartNodes(1, {"data=az://" + std::string(kBackend) + "/js/"}, {"--replicas", "1"});
  constexpr int kKeys = 2500;
  auto r = LastJson(testing::RunCommand({"node", testing::SourceDir() + "/tests/door_sdk.js", "http://" + Endpoint(0),
                                         "data", std::to_string(kKeys)},
                                        ClientEnv("DOOR_KEY"), "", std::chrono::seconds(600)),
                    0);
  EXPECT_EQ(r["keys"], kKeys);
  EXPECT_EQ(r["pages"], 3);
  EXPECT_EQ(r["prefixes"], nlohmann::json({"sdk/many/d0/", "sdk/many/d1/", "sdk/many/d2/", "sdk/many/d3/"}));
  EXPECT_EQ(r["d1_keys"], kKeys / 4);
  EXPECT_EQ(r["d1_pages"], 4);  // 625 keys in pages of 200
  EXPECT_EQ(r["deleted"], kKeys);
  EXPECT_EQ(r["left"], 0);
  EXPECT_EQ(r["single_after_delete"], 404);
  std::printf("@aws-sdk/client-s3: %d keys created through the door (32 at a time) in %lld ms; payload modes %s\n",
              kKeys, static_cast<long long>(r.value("create_ms", 0)), r["modes"].dump().c_str());
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(180))) << nodes_[0]->Log();
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "js/sdk/stream.bin"), r["stream"]);
  EXPECT_EQ(testing::ObjectSha256(*store, "js/sdk/multipart.bin"), r["multipart"]);
  EXPECT_EQ(testing::ObjectSha256(*store, "js/sdk/copy.bin"), r["multipart"]);
  auto mp = store->Head("js/sdk/multipart.bin");
  ASSERT_TRUE(mp.ok() && mp->meta) << mp.status().ToString();
  EXPECT_EQ(mp->meta->user, (std::map<std::string, std::string>{{"parts", "four"}}));
  EXPECT_EQ(store->Head("js/sdk/single.bin").status().code(), Code::kNotFound);
  for (int i : {0, 1, 1249, 2499}) {
    char key[64];
    std::snprintf(key, sizeof key, "js/sdk/many/d%d/k%05d", i % 4, i);
    EXPECT_EQ(store->Head(key).status().code(), Code::kNotFound) << key;
  }
  ListOptions lo;
  lo.prefix = "js/sdk/many/";
  auto left = store->List(lo);
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  EXPECT_TRUE(left->objects.empty()) << left->objects.size() << " keys left in Azurite";
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBackend); }
