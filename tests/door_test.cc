// The S3 front door with an unmodified client: Debian's boto3 (tests/door_boto3.py) against a
// shoald whose buckets front an Azurite container and an s3rver bucket. Objects written
// through the door are read back from the backend itself, byte-identical; refusals carry
// S3's error codes and write nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "net/http_client.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::Shoald;

constexpr const char* kBackend = "doorback";
constexpr const char* kRw = "AKIDDOORTEST00001:rw-secret/with+chars";
constexpr const char* kRo = "AKIDDOORREADONLY1:ro-secret";
constexpr const char* kScoped = "AKIDDOORSCOPED001:scoped-secret";

class DoorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.path() + "/keys") << "# the door's keys\n"
                                         << "s3 AKIDDOORTEST00001 rw-secret/with+chars data:read-write s3data:read-write\n"
                                         << "s3 AKIDDOORREADONLY1 ro-secret data:read\n"
                                         << "s3 AKIDDOORSCOPED001 scoped-secret data/team-a/:read-write\n";
    node_.SetEnv(testing::Servers().s3rver.ClientEnv());
    Status st = node_.Start(testing::Servers().azurite.port(),
                            {"--replicas", "1", "--bucket", "data=az://" + std::string(kBackend) + "/door",
                             "--bucket", "s3data=s3://" + std::string(kBackend), "--credentials",
                             tmp_.path() + "/keys"});
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  CommandResult Boto3(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", testing::SourceDir() + "/tests/door_boto3.py"});
    args.insert(args.begin() + 3, "http://" + node_.Endpoint());
    return testing::RunCommand(args, {{"DOOR_KEY_RW", kRw}, {"DOOR_KEY_RO", kRo}, {"DOOR_KEY_SCOPED", kScoped},
                                      {"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                                      {"AWS_EC2_METADATA_DISABLED", "true"}},
                               "", std::chrono::seconds(300));
  }

  nlohmann::json Step(std::vector<std::string> args) {
    auto r = Boto3(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << node_.Log();
    size_t nl = r.out.rfind('\n', r.out.size() - 2);
    std::string last = r.out.substr(nl == std::string::npos ? 0 : nl + 1);
    auto j = nlohmann::json::parse(last, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  testing::TempDir tmp_;
  Shoald node_;
};

// Put, get (whole, ranges, conditions), head, delete through the door; what was written is
// in Azurite under the bucket's prefix, byte-identical, once uploaded.
TEST_F(DoorTest, Boto3ReadsAndWritesThroughTheCache) {
  Step({"basic", "data"});
  auto put = Step({"put", "data", "through/big.bin", std::to_string((16 << 20) + 3), "9"});
  EXPECT_EQ(put["state"], "local");
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  // The pattern of door_boto3.py, seed 9: what the backend holds is what boto3 sent.
  auto r = testing::RunCommand({"/usr/bin/python3", "-c",
                                "import hashlib,sys; sys.path.insert(0, sys.argv[1]); import door_boto3 as d; "
                                "print(hashlib.sha256(d.pattern(9, int(sys.argv[2]))).hexdigest())",
                                testing::SourceDir() + "/tests", std::to_string((16 << 20) + 3)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ObjectSha256(*store, "door/through/big.bin"), Trim(r.out));
  auto head = store->Head("door/basic/small.txt");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 1000u);
  EXPECT_EQ(store->Head("door/basic/empty").status().code(), Code::kNotFound);  // deleted through the door
  // S3's Content-Type and x-amz-meta-* arrive as the Azure blob's content type and metadata.
  auto meta = store->Head("door/basic/meta.pt");
  ASSERT_TRUE(meta.ok() && meta->meta) << meta.status().ToString();
  EXPECT_EQ(meta->meta->content_type, "application/x-pytorch");
  EXPECT_EQ(meta->meta->user, (std::map<std::string, std::string>{{"rank", "3"}, {"run_id", "llm-7b"}}));
  EXPECT_EQ(store->Head("door/basic/badmeta").status().code(), Code::kNotFound);
}

// boto3's managed transfer uploads in parts (staged on the node) and the object is committed
// whole; Complete refuses parts too small, unknown, out of order or malformed, and an abort
// leaves no upload and no object.
TEST_F(DoorTest, MultipartUploadsAreStagedAndCommittedWhole) {
  const uint64_t size = (40 << 20) + 123;  // 7 parts of 6 MiB
  auto r = Step({"multipart", "data", "mp/big.bin", std::to_string(size), "5", tmp_.path()});
  auto seen = r["seen"];
  EXPECT_EQ(seen["too-small"], nlohmann::json({"EntityTooSmall", 400}));
  EXPECT_EQ(seen["wrong-etag"], nlohmann::json({"InvalidPart", 400}));
  EXPECT_EQ(seen["never-staged"], nlohmann::json({"InvalidPart", 400}));
  EXPECT_EQ(seen["out-of-order"], nlohmann::json({"InvalidPartOrder", 400}));
  EXPECT_EQ(seen["malformed"], nlohmann::json({"MalformedXML", 400}));
  EXPECT_EQ(seen["after-abort"], nlohmann::json({"NoSuchUpload", 404}));
  EXPECT_EQ(seen["refused-object"], nlohmann::json({"404", 404}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "door/mp/big.bin"), r["sha256"]);
  auto head = store->Head("door/mp/big.bin");
  ASSERT_TRUE(head.ok() && head->meta) << head.status().ToString();
  EXPECT_EQ(head->meta->content_type, "application/x-tar");
  EXPECT_EQ(head->meta->user, (std::map<std::string, std::string>{{"parts", "many"}}));
  EXPECT_EQ(store->Head("door/mp/refused").status().code(), Code::kNotFound);
  // Nothing staged is left on the node's disk.
  EXPECT_TRUE(std::filesystem::is_empty(node_.DataDir() + "/door-uploads"));
  // Every part was joined to the object's write as it arrived: Complete wrote none of it again.
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), "shoal_door_early_bytes_total"), size);
}

// Parts joined to their write early (door_assembly.h) and the Completes that cannot use that:
// parts sent last to first, a part uploaded again, a list that leaves a part out or stops short,
// no part 1. Each object is exactly the parts its Complete lists, in the backend too; only the
// upload whose parts came last to first was written before its Complete.
TEST_F(DoorTest, PartsAreJoinedEarlyOnlyWhenTheCompleteListsThem) {
  auto r = Step({"multipart-orders", "data", "orders", "21"});
  auto sizes = r["sizes"];
  ASSERT_EQ(sizes.size(), 5u) << r;
  const uint64_t mib5 = 5 << 20;
  EXPECT_EQ(sizes["reversed"], 3 * mib5 + 6);
  EXPECT_EQ(sizes["again"], 3 * mib5 + 11);  // part 2 as sent the second time (5 MiB + 7)
  EXPECT_EQ(sizes["skipped"], 2 * mib5 + 4);
  EXPECT_EQ(sizes["fewer"], 2 * mib5 + 3);
  EXPECT_EQ(sizes["no-first"], 2 * mib5 + 5);
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), "shoal_door_early_bytes_total"), 3 * mib5 + 6);
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  for (const auto& [name, size] : sizes.items()) {
    auto head = store->Head("door/orders/" + name);
    ASSERT_TRUE(head.ok()) << name << ": " << head.status().ToString();
    EXPECT_EQ(head->size, size.get<uint64_t>()) << name;
  }
  EXPECT_TRUE(std::filesystem::is_empty(node_.DataDir() + "/door-uploads"));
}

// The same bucket name may front S3: an s3rver bucket behind the door.
TEST_F(DoorTest, ABucketMayFrontS3) {
  auto put = Step({"put", "s3data", "from-door.bin", std::to_string(3 << 20), "4"});
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto head = testing::Servers().s3rver.Store(kBackend)->Head("from-door.bin");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 3u << 20);
}

// 2,500 keys listed with V2 pages of 1,000 and V1 markers, and by delimiter.
TEST_F(DoorTest, ListsThousandsOfKeysWithPagesAndDelimiters) {
  auto store = testing::Servers().azurite.Store(kBackend);
  ASSERT_EQ(testing::PutMany(*store, 2500, [](int i) {
              char key[64];
              std::snprintf(key, sizeof key, "door/many/d%d/k%05d", i % 5, i);
              return std::string(key);
            }),
            0);
  auto listed = Step({"list", "data", "many/", "2500"});
  EXPECT_EQ(listed["keys"], 2500);
  EXPECT_EQ(listed["pages"], 3);
  EXPECT_EQ(listed["prefixes"], nlohmann::json({"many/d0/", "many/d1/", "many/d2/", "many/d3/", "many/d4/"}));
  EXPECT_EQ(listed["top_objects"], 0);
  auto deleted = Step({"delete-many", "data", "batch/"});
  EXPECT_EQ(deleted["deleted"], 20);
}

// Wrong secret, unknown key, a key without write scope or outside its prefix, a body that is
// not the one signed: each refused with S3's code, and nothing of them reaches the store.
TEST_F(DoorTest, RefusesWhatIsNotSignedOrNotAllowed) {
  Step({"basic", "data"});
  auto seen = Step({"refusals", "data"})["seen"];
  EXPECT_EQ(seen["wrong-secret"], nlohmann::json({"SignatureDoesNotMatch", 403}));
  EXPECT_EQ(seen["unknown-key"], nlohmann::json({"InvalidAccessKeyId", 403}));
  EXPECT_EQ(seen["read-only-put"], nlohmann::json({"AccessDenied", 403}));
  EXPECT_EQ(seen["read-only-get"], nlohmann::json({nullptr, 200}));
  EXPECT_EQ(seen["scoped-outside"], nlohmann::json({"AccessDenied", 403}));
  EXPECT_EQ(seen["scoped-inside"], nlohmann::json({nullptr, 200}));
  EXPECT_EQ(seen["sha256-mismatch"], nlohmann::json({"XAmzContentSHA256Mismatch", 400}));
  Step({"presigned", "data", "basic/small.txt"});
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  for (const char* key : {"door/refused/a", "door/refused/b", "door/refused/c", "door/refused/d"}) {
    EXPECT_EQ(store->Head(key).status().code(), Code::kNotFound) << key;
  }
  EXPECT_TRUE(store->Head("door/team-a/ok").ok());
}

// A node with buckets and no keys file refuses to start, saying how to fix it.
TEST(DoorConfigTest, BucketsWithoutKeysAreRefusedAtStart) {
  testing::TempDir tmp;
  auto r = testing::RunCommand({testing::BinaryDir() + "/bin/shoald", "--data-dir", tmp.path() + "/d", "--listen",
                                "127.0.0.1:0", "--bucket", "data=file://" + tmp.path() + "/store"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--bucket needs --credentials FILE"), std::string::npos) << r.err;
  r = testing::RunCommand({testing::BinaryDir() + "/bin/shoald", "--data-dir", tmp.path() + "/d", "--listen",
                           "127.0.0.1:0", "--bucket", "Bad_Name=file://" + tmp.path() + "/store", "--door-open"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not a bucket name S3 clients can use"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBackend); }
