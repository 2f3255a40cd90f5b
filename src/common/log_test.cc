#include "common/log.h"

#include <gtest/gtest.h>

namespace shoal {
namespace {

constexpr int64_t kAt = 1796325000123;  // 2026-12-03T19:10:00.123Z

TEST(Log, TextLinesCarryTimestampLevelAndComponent) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kAt, LogLevel::kWarn, "shoald", "upload failed"),
            "2026-12-03T19:10:00.123Z warn  shoald: upload failed");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kAt, LogLevel::kError, "etcd", "two\nlines"),
            "2026-12-03T19:10:00.123Z error etcd: two\\nlines");
}

TEST(Log, JsonLinesAreOneObjectEachWithEverythingEscaped) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, kAt, LogLevel::kInfo, "shoald", "say \"hi\"\n\\ \x01"),
            "{\"ts\":\"2026-12-03T19:10:00.123Z\",\"level\":\"info\",\"component\":\"shoald\","
            "\"msg\":\"say \\\"hi\\\"\\n\\\\ \\u0001\"}");
}

TEST(Log, FormatNamesParse) {
  LogFormat f = LogFormat::kText;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("text", &f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("JSON", &f));
  EXPECT_FALSE(ParseLogFormat("", &f));
}

}  // namespace
}  // namespace shoal
