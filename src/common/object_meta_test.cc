#include "common/object_meta.h"

#include <gtest/gtest.h>

#include <sstream>

namespace shoal {
namespace {

ObjectMeta WithUser(std::string name, std::string value) {
  ObjectMeta m;
  m.user[std::move(name)] = std::move(value);
  return m;
}

TEST(ObjectMeta, NamesBothApisHoldAreAccepted) {
  for (const char* name : {"a", "_", "colour", "x_1", "_private", "author2"}) {
    EXPECT_TRUE(WithUser(name, "v").Validate().ok()) << name;
  }
}

TEST(ObjectMeta, NamesOneApiCannotHoldAreRefusedNotRenamed) {
  // '-' and '.' are fine for S3 but not in a C# identifier; upper case would be folded by S3;
  // a leading digit and C# keywords are not identifiers.
  for (const char* name : {"my-key", "a.b", "Key", "1st", "class", "in", "", "ü"}) {
    Status st = WithUser(name, "v").Validate();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("Azure"), std::string::npos) << st.message();
  }
}

TEST(ObjectMeta, ValuesMustSurviveHttpAsTheyAre) {
  EXPECT_TRUE(WithUser("k", "a value, with: punctuation ~!").Validate().ok());
  for (const char* value : {"", " lead", "trail ", "new\nline", "tab\t", "ünï"}) {
    EXPECT_EQ(WithUser("k", value).Validate().code(), Code::kInvalidArgument) << value;
  }
  ObjectMeta m;
  m.content_type = "text/plain ";
  EXPECT_EQ(m.Validate().code(), Code::kInvalidArgument);
  m.content_type = "text/plain; charset=utf-8";
  EXPECT_TRUE(m.Validate().ok());
}

// S3's 2 KiB, less the room kept for the write stamp a cache node adds on upload; with the
// stamp in, the whole 2 KiB.
TEST(ObjectMeta, UserMetadataIsCappedAtWhatS3HoldsWithRoomForTheWriteStamp) {
  ObjectMeta m;
  m.user["k"] = std::string(kMaxUserMetaBytes - kWriteStampMetaBytes - 1, 'v');
  EXPECT_TRUE(m.Validate().ok());
  m.user["k"] += "v";
  EXPECT_EQ(m.Validate().code(), Code::kInvalidArgument);
  m.user[std::string(kWriteStampMeta)] = std::string(kWriteStampMetaBytes - kWriteStampMeta.size() - 1, '1');
  EXPECT_TRUE(m.Validate().ok());
  m.user["k"] += "v";
  EXPECT_EQ(m.Validate().code(), Code::kInvalidArgument);
}

TEST(ObjectMeta, PrintsAsItsJson) {
  ObjectMeta m;
  m.content_type = "text/csv";
  m.user["k"] = "v";
  std::ostringstream out;
  out << m;
  EXPECT_EQ(out.str(), R"({"content_type":"text/csv","user":{"k":"v"}})");
}

TEST(ObjectMeta, EmptyMeansNothingSet) {
  EXPECT_TRUE(ObjectMeta{}.empty());
  ObjectMeta m;
  m.cache_control = "no-cache";
  EXPECT_FALSE(m.empty());
  EXPECT_FALSE(WithUser("k", "v").empty());
}

}  // namespace
}  // namespace shoal
