// The Azure Blob API of the front door with an unmodified client: Debian's azure.storage.blob
// (tests/door_azure.py) by connection string against a shoald whose containers front an Azurite
// container and an s3rver bucket. Blobs written through the door are read back from the backend
// itself, byte-identical, with their metadata; refusals carry Azure's error codes and write
// nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::Shoald;

constexpr const char* kBackend = "doorazback";
constexpr const char* kAccount = "shoalacct";
// Any base64 text is an account key; this one is the door's own, not Azurite's.
constexpr const char* kKey = "c2hvYWwtZG9vci1henVyZS10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm";

class DoorAzureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.path() + "/keys") << "azure " << kAccount << " " << kKey << " data:read-write s3data:read-write\n";
    node_.SetEnv(testing::Servers().s3rver.ClientEnv());
    Status st = node_.Start(testing::Servers().azurite.port(),
                            {"--replicas", "1", "--bucket", "data=az://" + std::string(kBackend) + "/azdoor", "--bucket",
                             "s3data=s3://" + std::string(kBackend) + "/fromazure", "--credentials", tmp_.path() + "/keys"});
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Runs one step of door_azure.py and returns the JSON line it printed last.
  nlohmann::json Step(const std::string& step, const std::string& container, std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"/usr/bin/python3", testing::SourceDir() + "/tests/door_azure.py", step,
                                     "http://" + node_.Endpoint() + "/" + kAccount, container};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = testing::RunCommand(argv, {{"DOOR_AZURE_ACCOUNT", kAccount}, {"DOOR_AZURE_KEY", kKey}}, "",
                                 std::chrono::seconds(300));
    EXPECT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << node_.Log();
    size_t nl = r.out.rfind('\n', r.out.size() - 2);
    auto j = nlohmann::json::parse(r.out.substr(nl == std::string::npos ? 0 : nl + 1), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  // SHA-256 of door_azure.py's pattern(seed, size): what the script wrote.
  std::string ScriptPatternSha256(int seed, uint64_t size) {
    auto r = testing::RunCommand({"/usr/bin/python3", "-c",
                                  "import hashlib,sys; sys.path.insert(0, sys.argv[1]); import door_azure as d; "
                                  "print(hashlib.sha256(d.pattern(int(sys.argv[2]), int(sys.argv[3]))).hexdigest())",
                                  testing::SourceDir() + "/tests", std::to_string(seed), std::to_string(size)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }

  testing::TempDir tmp_;
  Shoald node_;
};

using Seen = nlohmann::json;

// Put Blob, Get Blob (whole and ranged), properties, metadata, delete; what was written is in
// Azurite under the container's prefix, byte-identical, with its content type and metadata.
TEST_F(DoorAzureTest, SdkReadsAndWritesBlobsThroughTheCache) {
  auto seen = Step("basic", "data")["seen"];
  EXPECT_EQ(seen["create-configured"], Seen({"ContainerAlreadyExists", 409}));
  EXPECT_EQ(seen["create-unconfigured"], Seen({"AuthorizationFailure", 403}));
  EXPECT_EQ(seen["missing-container"], Seen({"ContainerNotFound", 404}));
  EXPECT_EQ(seen["range-past-end"], Seen({"InvalidRange", 416}));
  EXPECT_EQ(seen["bad-metadata"], Seen({"InvalidMetadata", 400}));
  EXPECT_EQ(seen["missing-blob"], Seen({"BlobNotFound", 404}));
  EXPECT_EQ(seen["after-delete"], Seen({"BlobNotFound", 404}));
  EXPECT_EQ(seen["delete-again"], Seen({"BlobNotFound", 404}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  // Set Blob Metadata once the blob is uploaded (two pending writes of one blob may reach the
  // store in either order).
  EXPECT_EQ(Step("set-metadata", "data")["metadata"], Seen({{"owner", "team_a"}, {"stage", "two"}}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "azdoor/basic/dir/large.bin"), ScriptPatternSha256(2, (20 << 20) + 7));
  auto small = store->Head("azdoor/basic/small.txt");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->size, 1000u);
  auto empty = store->Head("azdoor/basic/empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->size, 0u);
  auto meta = store->Head("azdoor/basic/meta.pt");  // its properties set after the upload
  ASSERT_TRUE(meta.ok() && meta->meta) << meta.status().ToString();
  EXPECT_EQ(meta->size, 700u);
  EXPECT_EQ(meta->meta->content_type, "text/plain");
  EXPECT_EQ(meta->meta->content_language, "en");
  EXPECT_EQ(meta->meta->cache_control, "");
  EXPECT_EQ(meta->meta->user, (std::map<std::string, std::string>{{"rank", "3"}, {"run_id", "llm-7b"}}));
  auto meta2 = store->Head("azdoor/basic/meta2.pt");
  ASSERT_TRUE(meta2.ok() && meta2->meta) << meta2.status().ToString();
  EXPECT_EQ(meta2->meta->user, (std::map<std::string, std::string>{{"owner", "team_a"}, {"stage", "two"}}));
  EXPECT_EQ(testing::ObjectSha256(*store, "azdoor/basic/meta2.pt"), ScriptPatternSha256(7, 3 << 20));
  EXPECT_EQ(store->Head("azdoor/basic/gone").status().code(), Code::kNotFound);
  EXPECT_EQ(store->Head("azdoor/basic/badmeta").status().code(), Code::kNotFound);
}

// The SDK's block upload (256 MiB in 4 MiB blocks staged on the node, committed whole by Put
// Block List); block lists mixing committed and new blocks, and ones naming a block never staged
// or in the wrong list, refused with the blob unchanged.
TEST_F(DoorAzureTest, BlocksAreStagedAndCommittedWhole) {
  const uint64_t size = 256ull << 20;
  auto r = Step("blocks", "data", {"staged/big.bin", std::to_string(size), "5"});
  EXPECT_EQ(r["blocks"], 64);
  EXPECT_EQ(r["seen"]["never-staged"], Seen({"InvalidBlockList", 400}));
  EXPECT_EQ(r["seen"]["uncommitted-as-committed"], Seen({"InvalidBlockList", 400}));
  EXPECT_EQ(r["seen"]["committed-as-uncommitted"], Seen({"InvalidBlockList", 400}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "azdoor/staged/big.bin"), r["sha256"]);
  auto head = store->Head("azdoor/staged/big.bin");
  ASSERT_TRUE(head.ok() && head->meta) << head.status().ToString();
  EXPECT_EQ(head->size, size);
  EXPECT_EQ(head->meta->content_type, "application/x-tar");
  EXPECT_EQ(head->meta->user, (std::map<std::string, std::string>{{"parts", "many"}}));
  // What stays staged: the committed lists of the two blobs written in blocks, no block.
  size_t areas = 0, blocks = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(node_.DataDir() + "/door-uploads")) {
    std::string name = e.path().filename();
    if (name == "committed.json") areas++;
    if (StartsWith(name, "block-")) blocks++;
  }
  EXPECT_EQ(areas, 2u);
  EXPECT_EQ(blocks, 0u);
  // Blocks joined to their write as they arrived (door_assembly.h): all of the 12 MiB blob,
  // none of the 256 MiB one (its list sets metadata, which the early write did not begin with)
  // nor of the edits (blocks named otherwise than by their offset).
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), "shoal_door_early_bytes_total"), 12u << 20);
}

// A container may front S3: blobs written through the Azure API land in s3rver.
TEST_F(DoorAzureTest, AContainerMayFrontS3) {
  const uint64_t size = (12 << 20) + 5;  // four blocks
  auto r = Step("put", "s3data", {"from-azure.bin", std::to_string(size), "4"});
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().s3rver.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "fromazure/from-azure.bin"), r["sha256"]);
  auto head = store->Head("fromazure/from-azure.bin");
  ASSERT_TRUE(head.ok() && head->meta) << head.status().ToString();
  EXPECT_EQ(head->size, size);
  EXPECT_EQ(head->meta->user, (std::map<std::string, std::string>{{"origin", "azure_sdk"}}));
}

// 2,500 blobs (put in Azurite directly) listed in pages of 1,000 with NextMarker, and by
// hierarchy.
TEST_F(DoorAzureTest, ListsThousandsOfBlobsWithPagesAndDelimiters) {
  auto store = testing::Servers().azurite.Store(kBackend);
  ASSERT_EQ(testing::PutMany(*store, 2500, [](int i) {
              char key[64];
              std::snprintf(key, sizeof key, "azdoor/many/d%d/k%05d", i % 5, i);
              return std::string(key);
            }),
            0);
  Step("basic", "data");  // basic/meta.pt and basic/meta2.pt, with metadata, pending or uploaded
  auto listed = Step("list", "data", {"many/", "2500", "1000"});
  EXPECT_EQ(listed["blobs"], 2500);
  EXPECT_EQ(listed["pages"], 3);
  EXPECT_EQ(listed["prefixes"], Seen({"many/d0/", "many/d1/", "many/d2/", "many/d3/", "many/d4/"}));
  EXPECT_EQ(listed["sub_blobs"], 500);
  EXPECT_EQ(listed["sub_pages"], 1);
  EXPECT_EQ(listed["metadata"], Seen({{"basic/meta.pt", {{"rank", "3"}, {"run_id", "llm-7b"}}},
                                      {"basic/meta2.pt", {{"stage", "one"}}}}));
}

// The JavaScript SDK (@azure/storage-blob) by connection string: blocks, ranges, metadata,
// listings by page and by hierarchy, delete.
TEST_F(DoorAzureTest, JavaScriptSdkToo) {
  auto r = testing::RunCommand({"node", testing::SourceDir() + "/tests/door_azure.js",
                                "http://" + node_.Endpoint() + "/" + kAccount, "data", "js/"},
                               {{"DOOR_AZURE_ACCOUNT", kAccount}, {"DOOR_AZURE_KEY", kKey}}, "", std::chrono::seconds(300));
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << node_.Log();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["pages"], 2);  // pages of one: both blobs are not uploaded yet, merged in by the node
  EXPECT_EQ(j["names"], Seen({"js/big.bin", "js/dir/small.txt"}));
  EXPECT_EQ(j["tops"], Seen({"prefix:js/dir/", "blob:js/big.bin"}));  // the SDK yields prefixes first
  EXPECT_EQ(j["deleted_status"], 404);
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*store, "azdoor/js/big.bin"), j["sha256"]);
  EXPECT_EQ(store->Head("azdoor/js/dir/small.txt").status().code(), Code::kNotFound);
}

// A wrong account key (AuthenticationFailed) and a read-only SAS writing
// (AuthorizationPermissionMismatch) are refused, and nothing of them reaches the store.
TEST_F(DoorAzureTest, RefusesWhatIsNotSignedOrNotAllowed) {
  Step("basic", "data");
  auto seen = Step("refusals", "data")["seen"];
  EXPECT_EQ(seen["wrong-key"], Seen({"AuthenticationFailed", 403}));
  EXPECT_EQ(seen["wrong-key-read"], Seen({"AuthenticationFailed", 403}));
  EXPECT_EQ(seen["read-only-sas-write"], Seen({"AuthorizationPermissionMismatch", 403}));
  EXPECT_EQ(seen["read-only-sas-block"], Seen({"AuthorizationPermissionMismatch", 403}));
  EXPECT_EQ(seen["read-only-sas-delete"], Seen({"AuthorizationPermissionMismatch", 403}));
  EXPECT_EQ(seen["read-only-sas-list"], Seen({nullptr, 200}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  for (const char* key : {"azdoor/refused/a", "azdoor/refused/b", "azdoor/refused/c"}) {
    EXPECT_EQ(store->Head(key).status().code(), Code::kNotFound) << key;
  }
  EXPECT_TRUE(store->Head("azdoor/basic/small.txt").ok());
  // No block was staged for the refused Put Block.
  for (const auto& e : std::filesystem::recursive_directory_iterator(node_.DataDir() + "/door-uploads")) {
    EXPECT_FALSE(StartsWith(e.path().filename().string(), "block-")) << e.path();
  }
}

// A blob overwritten while its first version is still uploading ends as the second in the
// store: a small overwrite used to land first and be overwritten by the large original.
TEST_F(DoorAzureTest, AnOverwriteWhileTheFirstUploadsWins) {
  Step("overwrite", "data");
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto store = testing::Servers().azurite.Store(kBackend);
  for (int i = 0; i < 20; i++) {
    auto head = store->Head("azdoor/overwrite/x" + std::to_string(i));
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    EXPECT_EQ(head->size, 1000u + i) << "overwrite/x" << i;
  }
  EXPECT_EQ(testing::ObjectSha256(*store, "azdoor/overwrite/x7"), ScriptPatternSha256(107, 1007));
}

// An open door (--door-open) takes Azure requests of any account, signed with any key or not
// signed at all.
TEST(DoorAzureOpenTest, AnOpenDoorTakesAnyAccount) {
  Shoald node;
  Status st = node.Start(testing::Servers().azurite.port(),
                         {"--replicas", "1", "--bucket", "data=az://" + std::string(kBackend) + "/open", "--door-open"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto r = testing::RunCommand({"/usr/bin/python3", testing::SourceDir() + "/tests/door_azure.py", "open",
                                "http://" + node.Endpoint() + "/anyaccount", "data"},
                               {{"DOOR_AZURE_ACCOUNT", "anyaccount"}, {"DOOR_AZURE_KEY", "unused"}}, "",
                               std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << node.Log();
  EXPECT_NE(r.out.find("\"names\": [\"open/a.bin\"]"), std::string::npos) << r.out;
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120)));
  auto head = testing::Servers().azurite.Store(kBackend)->Head("open/open/a.bin");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 5000u);
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBackend); }
