// Acceptance of the S3 front door with unmodified clients and real backends:
// - the AWS SDK for JavaScript (@aws-sdk/client-s3, tests/door_sdk.js, run with node): every
//   operation an application uses, what it wrote read back from Azurite byte-identical;
// - a 3-node cluster in front of Azurite behind the counting proxy: 16 boto3 readers of one
//   cold object, spread over the three doors, cost the store exactly one copy of it; so do
//   12 CopyObjects of one;
// - a boto3 PutObject acknowledged by a node with --replicas 2, the node killed (-9) before
//   its upload (the store refusing them): the object reaches Azurite byte-identical;
// - an S3 bucket in front of an Azure container: a boto3 multipart upload with x-amz-meta-*
//   is a blob in Azurite, byte-identical, its metadata Azure metadata (as the Azure SDK reads).
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
// 5 MiB parts), get (whole, ranges), head, 1,200 keys created through the door and listed (pages
// of 1,000, by delimiter, pages of 200), copy, delete, delete-objects. What it wrote is in Azurite
// byte-identical; what it deleted is not.
TEST_F(DoorSdkTest, TheJavaScriptSdkUsesTheDoor) {
  StartNodes(1, {"data=az://" + std::string(kBackend) + "/js/"}, {"--replicas", "1"});
  constexpr int kKeys = 1200;
  auto r = LastJson(testing::RunCommand({"node", testing::SourceDir() + "/tests/door_sdk.js", "http://" + Endpoint(0),
                                         "data", std::to_string(kKeys)},
                                        ClientEnv("DOOR_KEY"), "", std::chrono::seconds(600)),
                    0);
  EXPECT_EQ(r["keys"], kKeys);
  EXPECT_EQ(r["pages"], 2);
  EXPECT_EQ(r["prefixes"], nlohmann::json({"sdk/many/d0/", "sdk/many/d1/", "sdk/many/d2/", "sdk/many/d3/"}));
  EXPECT_EQ(r["d1_keys"], kKeys / 4);
  EXPECT_EQ(r["d1_pages"], 2);  // 300 keys in pages of 200
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
  for (int i : {0, 1, kKeys / 2 - 1, kKeys - 1}) {
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

// 16 boto3 readers (separate processes) of one cold object at once, reader i through node i % 3
// of a 3-node cluster: each gets the object's bytes, and the store served them exactly once
// (counted by the proxy in front of Azurite).
TEST_F(DoorSdkTest, SixteenReadersThroughThreeDoorsCostTheStoreOneCopy) {
  const uint64_t size = 96 * kMiB;  // 12 chunks: four owned by each node
  constexpr int kReaders = 16;
  testing::TempDir files;
  const std::string file = files.path() + "/weights.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 41, size));
  auto cp = testing::Shoal({"cp", "-q", file, "az://" + std::string(kBackend) + "/fanin/weights.bin"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  std::remove(file.c_str());
  const std::string want = testing::PatternSha256(41, size);
  StartNodes(3, {"models=az://" + std::string(kBackend) + "/fanin/"}, {});
  const uint64_t before = StoreBytes();
  std::vector<nlohmann::json> got(kReaders);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; i++) {
    readers.emplace_back([&, i] { got[i] = Boto3(i % 3, {"get", "models", "weights.bin"}); });
  }
  for (auto& t : readers) t.join();
  for (int i = 0; i < kReaders; i++) {
    EXPECT_EQ(got[i].value("sha256", ""), want) << "reader " << i << " through node " << i % 3;
    EXPECT_EQ(got[i].value("size", 0ull), size) << "reader " << i;
  }
  uint64_t sent = 0;
  std::string each;
  for (int i = 0; i < 3; i++) {
    sent += NodeMetric(Endpoint(i), "shoal_bytes_served_total");
    each += " n" + std::to_string(i) + ": store GETs " + std::to_string(NodeMetric(Endpoint(i), "shoal_store_get_requests_total")) +
            " (" + FormatBytes(NodeMetric(Endpoint(i), "shoal_store_get_bytes_total")) + "), peer fetches " +
            std::to_string(NodeMetric(Endpoint(i), "shoal_peer_fetches_total")) + ", peer failures " +
            std::to_string(NodeMetric(Endpoint(i), "shoal_peer_failures_total")) + ", busy " +
            std::to_string(NodeMetric(Endpoint(i), "shoal_peer_busy_total")) + ";";
  }
  EXPECT_EQ(StoreBytes() - before, size) << "each chunk leaves the store once:" << each << "\n" << nodes_[0]->Log()
                                         << nodes_[1]->Log() << nodes_[2]->Log();
  std::printf("16 boto3 readers x %s through 3 doors: the store served %s; the nodes served %s (clients and peers)\n",
              FormatBytes(size).c_str(), FormatBytes(StoreBytes() - before).c_str(), FormatBytes(sent).c_str());
}

// 12 boto3 CopyObjects of one cold object at once, copy i through node i % 3 (more copies than
// a node has serve threads): every copy is byte-identical in Azurite, and the store served the
// source once, its chunks read through the cluster's read path as GETs read them.
TEST_F(DoorSdkTest, TwelveCopiesOfAColdObjectThroughThreeDoorsReadItOnce) {
  const uint64_t size = 32 * kMiB + 9;
  constexpr int kCopies = 12;
  testing::TempDir files;
  const std::string file = files.path() + "/source.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 44, size));
  auto cp = testing::Shoal({"cp", "-q", file, "az://" + std::string(kBackend) + "/copies/source.bin"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  // One serve thread a node: each copy's writer waits in it for its copy on another node,
  // which that node writes on its peer pool; were it the serve pool too, the nodes would wait
  // on each other for good.
  StartNodes(3, {"data=az://" + std::string(kBackend) + "/copies/"}, {"--serve-threads", "1"});
  const uint64_t before = StoreBytes();
  std::vector<nlohmann::json> got(kCopies);
  std::vector<std::thread> copies;
  for (int i = 0; i < kCopies; i++) {
    copies.emplace_back([&, i] { got[i] = Boto3(i % 3, {"copy", "data", "copy" + std::to_string(i), "source.bin"}); });
  }
  for (auto& t : copies) t.join();
  EXPECT_EQ(StoreBytes() - before, size) << "the source leaves the store once";
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(i), std::chrono::seconds(180))) << nodes_[i]->Log();
  }
  auto store = testing::Servers().azurite.Store(kBackend);
  for (int i = 0; i < kCopies; i++) {
    EXPECT_FALSE(got[i].value("etag", "").empty()) << "copy " << i;
    EXPECT_EQ(testing::ObjectSha256(*store, "copies/copy" + std::to_string(i)), testing::PatternSha256(44, size))
        << "copy " << i;
  }
}

// A boto3 PutObject acknowledged by node 0 (--replicas 2) while the store refuses uploads; node 0
// is killed (-9) before it could upload; the store comes back: the node holding the copy takes
// the write over and the object reaches Azurite byte-identical.
TEST_F(DoorSdkTest, AnAcknowledgedPutSurvivesItsNodeKilledBeforeTheUpload) {
  const uint64_t size = 24 * kMiB + 5;
  StartNodes(3, {"data=az://" + std::string(kBackend) + "/crash/"}, {"--replicas", "2", "--down-grace", "2"});
  testing::TempDir files;
  const std::string file = files.path() + "/ckpt.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 42, size));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  auto put = Boto3(0, {"put", "data", "rank0/ckpt.bin", file});
  EXPECT_EQ(put["state"], "local");
  int holder = -1;
  for (int i = 1; i < 3; i++) {
    if (NodeMetric(Endpoint(i), "shoal_replica_objects") == 1) holder = i;
  }
  ASSERT_NE(holder, -1) << "the acknowledged write has a copy on node 1 or 2";
  EXPECT_EQ(NodeMetric(Endpoint(holder), "shoal_replica_bytes_total"), size);
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(store->Head("crash/rank0/ckpt.bin").status().code(), Code::kNotFound) << "not uploaded before the kill";
  nodes_[0]->Crash();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(Until([&] { return NodeMetric(Endpoint(holder), "shoal_replica_takeovers_total") == 1; },
                    std::chrono::seconds(60)))
      << nodes_[holder]->Log();
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(holder), std::chrono::seconds(120))) << nodes_[holder]->Log();
  EXPECT_EQ(testing::ObjectSha256(*store, "crash/rank0/ckpt.bin"), testing::PatternSha256(42, size));
  // And through the surviving doors.
  auto read = Boto3(holder, {"get", "data", "rank0/ckpt.bin"});
  EXPECT_EQ(read["sha256"], testing::PatternSha256(42, size));
}

// Writes acknowledged by two members of a 3-node cluster and not yet uploaded (the store
// refuses every PUT, and answers the rest) are listed and read through the third member's door, which holds
// none of them; once uploaded they are in Azurite.
TEST_F(DoorSdkTest, ADoorListsWritesAcknowledgedAnywhereInTheCluster) {
  StartNodes(3, {"data=az://" + std::string(kBackend) + "/pending/"}, {"--replicas", "1"});
  testing::TempDir files;
  const std::string file = files.path() + "/shard.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 45, kMiB));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT"}).ok());
  const std::vector<std::string> keys = {"ckpt/rank0.bin", "ckpt/rank1.bin", "ckpt/rank2.bin", "ckpt/rank3.bin",
                                         "top.bin"};
  for (size_t i = 0; i < keys.size(); i++) {
    EXPECT_EQ(Boto3(static_cast<int>(i % 2), {"put", "data", keys[i], file})["state"], "local") << keys[i];
  }
  auto all = Boto3(2, {"list", "data", "", ""});
  auto by_dir = Boto3(2, {"list", "data", "", "/"});
  auto store = testing::Servers().azurite.Store(kBackend);
  int uploaded = 0;
  for (const auto& k : keys) uploaded += store->Head("pending/" + k).ok() ? 1 : 0;
  EXPECT_EQ(uploaded, 0) << "the listing is taken while nothing is uploaded yet";
  EXPECT_EQ(all["keys"], nlohmann::json(keys));
  EXPECT_EQ(by_dir["keys"], nlohmann::json({"top.bin"}));
  EXPECT_EQ(by_dir["prefixes"], nlohmann::json({"ckpt/"}));
  EXPECT_EQ(Boto3(2, {"list", "data", "ckpt/", "/"})["keys"], nlohmann::json({keys[0], keys[1], keys[2], keys[3]}));
  // Read through another node before its upload: that node asks the key's home, and reads the
  // bytes from the node that took the write.
  EXPECT_EQ(Boto3(2, {"get", "data", keys[0]})["sha256"], testing::PatternSha256(45, kMiB));
  EXPECT_EQ(Boto3(0, {"get", "data", keys[0]})["sha256"], testing::PatternSha256(45, kMiB));
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  for (int i = 0; i < 2; i++) ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(i), std::chrono::seconds(120)));
  for (const auto& k : keys) EXPECT_EQ(testing::ObjectSha256(*store, "pending/" + k), testing::PatternSha256(45, kMiB)) << k;
}

// An S3 bucket in front of an Azure container: boto3 uploads a large object in parts with
// Content-Type and x-amz-meta-*; the blob read straight from Azurite is byte-identical, and
// @azure/storage-blob reads the metadata as the blob's own.
TEST_F(DoorSdkTest, AMultipartUploadThroughTheS3DoorIsAnAzureBlobWithItsMetadata) {
  const uint64_t size = 300 * kMiB + 17;
  StartNodes(1, {"models=az://" + std::string(kBackend) + "/xp/"}, {"--replicas", "1"});
  testing::TempDir files;
  const std::string file = files.path() + "/model.safetensors";
  ASSERT_TRUE(testing::WritePatternFile(file, 43, size));
  auto up = Boto3(0, {"upload", "models", "llama/model.safetensors", file, "16"});
  std::remove(file.c_str());
  EXPECT_EQ(up["size"], size);
  EXPECT_EQ(up["parts"], 19);
  ASSERT_TRUE(testing::WaitUntilDurable(Endpoint(0), std::chrono::seconds(300))) << nodes_[0]->Log();
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "xp/llama/model.safetensors"), testing::PatternSha256(43, size));
  auto meta = testing::SdkObjectMeta("azure", kBackend, "xp/llama/model.safetensors", testing::ServersClientEnv());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->content_type, "application/x-safetensors");
  EXPECT_EQ(meta->user, (std::map<std::string, std::string>{{"rank", "3"}, {"run_id", "llm-7b"}}));
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBackend); }
