#include "door/credentials.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/process.h"

namespace shoal::door {
namespace {

constexpr const char* kFile = R"(# test keys
s3    AKIDREADER        readsecret            models:read
s3    AKIDWRITER        writesecret           ckpt/job7/:read-write  models:read
azure shoalacct         c2hvYWwta2V5LTAx      data:read-write
both  admin             YWRtaW4ta2V5          *:read-write
)";

std::unique_ptr<Credentials> Parse(const char* text) {
  auto c = Credentials::FromText(text, "keys.txt");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

std::string ErrorOf(const std::string& text) {
  auto c = Credentials::FromText(text, "keys.txt");
  return c.ok() ? "" : c.status().message();
}

TEST(Credentials, ParsesEveryKindOfKey) {
  auto c = Parse(kFile);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->size(), 4u);
  auto reader = c->Find("AKIDREADER");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->s3);
  EXPECT_FALSE(reader->azure);
  EXPECT_EQ(reader->secret, "readsecret");
  auto acct = c->Find("shoalacct");
  ASSERT_NE(acct, nullptr);
  EXPECT_TRUE(acct->azure);
  EXPECT_EQ(acct->azure_key, "shoal-key-01");
  auto admin = c->Find("admin");
  ASSERT_NE(admin, nullptr);
  EXPECT_TRUE(admin->s3 && admin->azure);
  EXPECT_EQ(c->Find("nobody"), nullptr);
}

TEST(Credentials, ReadOnlyKeyCannotWrite) {
  auto c = Parse(kFile);
  EXPECT_TRUE(c->Allows("AKIDREADER", "models", "llama/weights.bin", Access::kRead));
  EXPECT_FALSE(c->Allows("AKIDREADER", "models", "llama/weights.bin", Access::kWrite));
}

TEST(Credentials, KeyForOneBucketCannotTouchAnother) {
  auto c = Parse(kFile);
  EXPECT_FALSE(c->Allows("AKIDREADER", "ckpt", "job7/a", Access::kRead));
  EXPECT_FALSE(c->Allows("shoalacct", "models", "x", Access::kRead));
  EXPECT_TRUE(c->Allows("shoalacct", "data", "x", Access::kWrite));
  EXPECT_FALSE(c->Allows("nobody", "data", "x", Access::kRead));
}

TEST(Credentials, PrefixScopeCoversOnlyKeysUnderIt) {
  auto c = Parse(kFile);
  EXPECT_TRUE(c->Allows("AKIDWRITER", "ckpt", "job7/step100/shard0", Access::kWrite));
  EXPECT_TRUE(c->Allows("AKIDWRITER", "ckpt", "job7/", Access::kRead));
  EXPECT_FALSE(c->Allows("AKIDWRITER", "ckpt", "job8/step100/shard0", Access::kWrite));
  EXPECT_FALSE(c->Allows("AKIDWRITER", "ckpt", "job7", Access::kRead));
  // The bucket as a whole (a listing without a prefix) is not under the prefix.
  EXPECT_FALSE(c->Allows("AKIDWRITER", "ckpt", "", Access::kRead));
  // Its second scope: read-only on models.
  EXPECT_TRUE(c->Allows("AKIDWRITER", "models", "", Access::kRead));
  EXPECT_FALSE(c->Allows("AKIDWRITER", "models", "a", Access::kWrite));
}

TEST(Credentials, StarScopeCoversEveryBucket) {
  auto c = Parse(kFile);
  EXPECT_TRUE(c->Allows("admin", "anything", "k", Access::kWrite));
  EXPECT_TRUE(c->Allows("admin", "other", "", Access::kRead));
}

TEST(Credentials, RefusesMalformedLinesNamingLineAndField) {
  std::string e = ErrorOf("s3 AKIDGOOD secret a:read\nftp AKIDX secret a:read\n");
  EXPECT_NE(e.find("keys.txt line 2 field 1"), std::string::npos) << e;
  EXPECT_NE(e.find("ftp"), std::string::npos) << e;
  e = ErrorOf("\n\ns3 AKIDGOOD secret a:write\n");
  EXPECT_NE(e.find("line 3 field 4"), std::string::npos) << e;
  EXPECT_NE(e.find("'write' is not read or read-write"), std::string::npos) << e;
  e = ErrorOf("s3 AKIDGOOD secret\n");
  EXPECT_NE(e.find("line 1 field 4"), std::string::npos) << e;
  e = ErrorOf("s3 AKIDGOOD\n");
  EXPECT_NE(e.find("line 1 field 3"), std::string::npos) << e;
  e = ErrorOf("s3 AK/ID secret a:read\n");
  EXPECT_NE(e.find("line 1 field 2"), std::string::npos) << e;
  e = ErrorOf("s3 AKIDGOOD secret a:read bucket\n");
  EXPECT_NE(e.find("line 1 field 5"), std::string::npos) << e;
  e = ErrorOf("s3 AKIDGOOD secret */x:read\n");
  EXPECT_NE(e.find("takes no prefix"), std::string::npos) << e;
  e = ErrorOf("azure BadName c2hvYWw= a:read\n");
  EXPECT_NE(e.find("line 1 field 2"), std::string::npos) << e;
}

TEST(Credentials, RefusesDuplicateIds) {
  std::string e = ErrorOf("s3 AKIDGOOD one a:read\ns3 AKIDGOOD two b:read\n");
  EXPECT_NE(e.find("line 2 field 2"), std::string::npos) << e;
  EXPECT_NE(e.find("appears twice"), std::string::npos) << e;
}

TEST(Credentials, RefusesAnAzureKeyThatIsNotBase64) {
  for (const char* secret : {"not-base64!", "abc", "====", "c2hvYWw"}) {
    std::string e = ErrorOf(std::string("azure acct ") + secret + " a:read\n");
    EXPECT_NE(e.find("line 1 field 3"), std::string::npos) << secret << ": " << e;
    EXPECT_NE(e.find("not base64"), std::string::npos) << secret << ": " << e;
  }
  // An s3 key's secret is any text.
  EXPECT_EQ(ErrorOf("s3 AKIDGOOD not-base64! a:read\n"), "");
}

TEST(Credentials, ReloadSwapsTheWholeSetAndKeepsItOnError) {
  shoal::testing::TempDir dir;
  std::string path = dir.path() + "/keys";
  std::ofstream(path) << "s3 AKIDONE one a:read\n";
  auto loaded = Credentials::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto& c = *loaded;
  auto old_key = c->Find("AKIDONE");
  ASSERT_NE(old_key, nullptr);

  std::ofstream(path) << "s3 AKIDTWO two b:read-write\n";
  ASSERT_TRUE(c->Reload().ok());
  EXPECT_EQ(c->Find("AKIDONE"), nullptr);
  ASSERT_NE(c->Find("AKIDTWO"), nullptr);
  EXPECT_TRUE(c->Allows("AKIDTWO", "b", "k", Access::kWrite));
  EXPECT_EQ(old_key->secret, "one");  // a key taken before the reload stays valid

  std::ofstream(path) << "s3 AKIDTHREE three\n";
  Status st = c->Reload();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path + " line 1 field 4"), std::string::npos) << st.ToString();
  EXPECT_NE(c->Find("AKIDTWO"), nullptr);
  EXPECT_EQ(c->Find("AKIDTHREE"), nullptr);
}

TEST(Credentials, LoadOfAMissingFileSaysWhich) {
  auto c = Credentials::Load("/nonexistent/keys");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/keys"), std::string::npos);
}

}  // namespace
}  // namespace shoal::door
