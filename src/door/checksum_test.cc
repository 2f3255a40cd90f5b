#include "door/checksum.h"

#include <gtest/gtest.h>

#include "common/strings.h"

namespace shoal::door {
namespace {

std::string Of(const char* alg, std::string_view data) {
  auto c = Checksum::Make(alg);
  EXPECT_NE(c, nullptr) << alg;
  if (c == nullptr) return "";
  // In two pieces, as a body arrives.
  c->Update(data.substr(0, 4));
  c->Update(data.substr(4));
  return HexEncode(c->Final());
}

// The catalogue's check values: each CRC of the ASCII digits "123456789".
TEST(Checksum, CrcsMatchTheirCheckValues) {
  EXPECT_EQ(Of("crc32", "123456789"), "cbf43926");
  EXPECT_EQ(Of("crc32c", "123456789"), "e3069283");
  EXPECT_EQ(Of("crc64nvme", "123456789"), "ae8b14860a799888");
}

TEST(Checksum, DigestsMatchOpenSsl) {
  EXPECT_EQ(Of("sha256", "hello world"), HexEncode(Sha256("hello world")));
  EXPECT_EQ(Of("md5", "hello world"), "5eb63bbbe01eeed093cb22bb8f5acdc3");
  EXPECT_EQ(Of("sha1", "hello world"), "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
}

TEST(Checksum, UnknownAlgorithmIsNull) { EXPECT_EQ(Checksum::Make("crc16"), nullptr); }

}  // namespace
}  // namespace shoal::door
