#include "node/door_http.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

constexpr std::time_t kModified = 1764806400;  // Thu, 04 Dec 2025 00:00:00 GMT

Request With(std::vector<std::pair<std::string, std::string>> headers) {
  Request req{http::verb::get, "/b/k", 11};
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

Precondition Check(std::vector<std::pair<std::string, std::string>> headers, const std::string& same_as = "") {
  return CheckPreconditions(With(std::move(headers)), "0x8DC1", kModified, same_as);
}

TEST(CheckPreconditionsTest, IfMatchTakesAnyFormOfTheEtag) {
  EXPECT_EQ(Check({}), Precondition::kProceed);
  for (const char* v : {"\"0x8DC1\"", "0x8DC1", "W/\"0x8DC1\"", "\"other\", \"0x8DC1\"", "*"}) {
    EXPECT_EQ(Check({{"If-Match", v}}), Precondition::kProceed) << v;
  }
  EXPECT_EQ(Check({{"If-Match", "\"other\""}}), Precondition::kFailed);
}

// A client that read the blob as the node's local version (before its upload) still matches
// once the store's ETag names the same bytes.
TEST(CheckPreconditionsTest, TheLocalVersionNameMatchesItsUploadedBytes) {
  EXPECT_EQ(Check({{"If-Match", "\"local-5f1e\""}}, "local-5f1e"), Precondition::kProceed);
  EXPECT_EQ(Check({{"If-Match", "\"local-5f1e\""}}), Precondition::kFailed);
  EXPECT_EQ(Check({{"If-Match", "\"local-0000\""}}, "local-5f1e"), Precondition::kFailed);
  EXPECT_EQ(Check({{"If-None-Match", "\"local-5f1e\""}}, "local-5f1e"), Precondition::kNotModified);
}

TEST(CheckPreconditionsTest, IfNoneMatchIsNotModified) {
  EXPECT_EQ(Check({{"If-None-Match", "\"0x8DC1\""}}), Precondition::kNotModified);
  EXPECT_EQ(Check({{"If-None-Match", "*"}}), Precondition::kNotModified);
  EXPECT_EQ(Check({{"If-None-Match", "\"other\""}}), Precondition::kProceed);
}

TEST(CheckPreconditionsTest, DatesCountOnlyWithoutTheEtagConditions) {
  EXPECT_EQ(Check({{"If-Unmodified-Since", "Wed, 03 Dec 2025 00:00:00 GMT"}}), Precondition::kFailed);
  EXPECT_EQ(Check({{"If-Unmodified-Since", "Thu, 04 Dec 2025 00:00:00 GMT"}}), Precondition::kProceed);
  EXPECT_EQ(Check({{"If-Match", "\"0x8DC1\""}, {"If-Unmodified-Since", "Wed, 03 Dec 2025 00:00:00 GMT"}}),
            Precondition::kProceed);
  EXPECT_EQ(Check({{"If-Modified-Since", "Thu, 04 Dec 2025 00:00:00 GMT"}}), Precondition::kNotModified);
  EXPECT_EQ(Check({{"If-Modified-Since", "Wed, 03 Dec 2025 00:00:00 GMT"}}), Precondition::kProceed);
  EXPECT_EQ(Check({{"If-None-Match", "\"other\""}, {"If-Modified-Since", "Thu, 04 Dec 2025 00:00:00 GMT"}}),
            Precondition::kProceed);
  EXPECT_EQ(Check({{"If-Modified-Since", "not a date"}}), Precondition::kProceed);
}

}  // namespace
}  // namespace shoal::node
