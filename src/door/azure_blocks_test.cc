#include "door/azure_blocks.h"

#include <gtest/gtest.h>

#include "common/strings.h"

namespace shoal::door {
namespace {

BlockListEntry Entry(BlockListKind kind, const std::string& id) { return {kind, id}; }

// What the SDKs send: azure.storage.blob 12.15 (ids base64 of base64 text) and the Go/JS shape.
TEST(BlockListTest, ParsesTheThreeKindsInOrder) {
  auto r = ParseBlockList(
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList>\n  <Committed>" + Base64Encode("first") +
      "</Committed>\n  <Uncommitted>" + Base64Encode("second") + "</Uncommitted>\n  <Latest>" + Base64Encode("third") +
      "</Latest>\n  <Latest>" + Base64Encode("first") + "</Latest>\n</BlockList>");
  ASSERT_EQ(r.error_code, "") << r.message;
  EXPECT_EQ(r.entries, (std::vector<BlockListEntry>{Entry(BlockListKind::kCommitted, "first"),
                                                    Entry(BlockListKind::kUncommitted, "second"),
                                                    Entry(BlockListKind::kLatest, "third"),
                                                    Entry(BlockListKind::kLatest, "first")}));
}

TEST(BlockListTest, AnEmptyListIsAnEmptyBlob) {
  auto r = ParseBlockList("<BlockList/>");
  EXPECT_EQ(r.error_code, "");
  EXPECT_TRUE(r.entries.empty());
  r = ParseBlockList("<?xml version=\"1.0\"?><BlockList>\n  <!-- none -->\n</BlockList>");
  EXPECT_EQ(r.error_code, "");
  EXPECT_TRUE(r.entries.empty());
}

TEST(BlockListTest, IdsAreDecodedBytesAndTrimmed) {
  const std::string raw("\x00\xff\x10 binary", 9);
  auto r = ParseBlockList("<BlockList><Latest>\n  " + Base64Encode(raw) + "  \n</Latest></BlockList>");
  ASSERT_EQ(r.error_code, "") << r.message;
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].id, raw);
  // 64 bytes is the longest id Azure takes.
  r = ParseBlockList("<BlockList><Latest>" + Base64Encode(std::string(64, 'a')) + "</Latest></BlockList>");
  EXPECT_EQ(r.error_code, "");
  r = ParseBlockList("<BlockList><Latest>" + Base64Encode(std::string(65, 'a')) + "</Latest></BlockList>");
  EXPECT_EQ(r.error_code, "InvalidBlockId");
}

TEST(BlockListTest, RefusesWhatIsNotABlockList) {
  for (const char* body : {"", "not xml", "<BlockList><Latest>YQ==</Latest>", "<Blocks><Latest>YQ==</Latest></Blocks>",
                           "<BlockList><Block>YQ==</Block></BlockList>", "<BlockList><latest>YQ==</latest></BlockList>",
                           "<BlockList><Latest><Id>YQ==</Id></Latest></BlockList>"}) {
    auto r = ParseBlockList(body);
    EXPECT_EQ(r.error_code, "InvalidXmlDocument") << body;
    EXPECT_TRUE(r.entries.empty()) << body;
    EXPECT_FALSE(r.message.empty()) << body;
  }
}

TEST(BlockListTest, RefusesIdsThatAreNotBase64OfOneTo64Bytes) {
  for (const char* body : {"<BlockList><Latest></Latest></BlockList>", "<BlockList><Latest>YQ</Latest></BlockList>",
                           "<BlockList><Latest>not base64!</Latest></BlockList>",
                           "<BlockList><Latest>YQ==</Latest><Committed>%%%%</Committed></BlockList>"}) {
    auto r = ParseBlockList(body);
    EXPECT_EQ(r.error_code, "InvalidBlockId") << body;
    EXPECT_TRUE(r.entries.empty()) << body;
  }
}

TEST(BlockListTest, AtMost50000Entries) {
  std::string many = "<BlockList>";
  const std::string one = "<Latest>" + Base64Encode("block") + "</Latest>";
  for (size_t i = 0; i < kMaxBlockListEntries; i++) many += one;
  auto r = ParseBlockList(many + "</BlockList>");
  EXPECT_EQ(r.error_code, "");
  EXPECT_EQ(r.entries.size(), kMaxBlockListEntries);
  r = ParseBlockList(many + one + "</BlockList>");
  EXPECT_EQ(r.error_code, "InvalidBlockList");
  EXPECT_TRUE(r.entries.empty());
}

}  // namespace
}  // namespace shoal::door
