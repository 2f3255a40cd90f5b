// Objects written by `shoal cp` read back by the official SDKs (@azure/storage-blob,
// @aws-sdk/client-s3), and objects the SDKs wrote read by `shoal`, byte-identical.
#include <gtest/gtest.h>

#include <filesystem>

#include "testing/data.h"
#include "testing/servers_environment.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::Env;

CommandResult Sdk(const std::string& op, const std::string& key, const std::string& file) {
  return testing::RunCommand(
      {"node", testing::SourceDir() + "/tests/sdk_interop.js", op, "interop", key, file}, testing::ServersClientEnv());
}

CommandResult Shoal(std::vector<std::string> args) {
  args.insert(args.begin(), testing::BinaryDir() + "/bin/shoal");
  return testing::RunCommand(args, testing::ServersClientEnv());
}

struct Case {
  std::string name;
  uint64_t size;
};

class SdkInteropTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Scheme() { return GetParam() == "azure" ? "az" : "s3"; }
  // Sizes: empty, small, and several parts (shoal's 8 MiB parts / the SDK's 4 MiB blocks).
  std::vector<Case> Cases(const std::string& dir) {
    return {{dir + "/empty", 0}, {dir + "/small file.txt", 1000}, {dir + "/ünïcødé/large.bin", (20 << 20) + 7}};
  }
  testing::TempDir tmp_;
};

TEST_P(SdkInteropTest, ShoalWritesTheSdkReads) {
  int seed = 0;
  for (const auto& c : Cases("from-shoal")) {
    std::string src = tmp_.path() + "/src" + std::to_string(seed);
    ASSERT_TRUE(testing::WritePatternFile(src, 100 + seed, c.size));
    auto put = Shoal({"cp", src, Scheme() + "://interop/" + c.name});
    ASSERT_EQ(put.exit_code, 0) << put.err;
    std::string got = tmp_.path() + "/got" + std::to_string(seed);
    auto get = Sdk(GetParam() + "-get", c.name, got);
    ASSERT_EQ(get.exit_code, 0) << c.name << ": " << get.err;
    EXPECT_EQ(std::filesystem::file_size(got), c.size) << c.name;
    EXPECT_EQ(testing::FileSha256(got), testing::FileSha256(src)) << c.name;
    seed++;
  }
}

TEST_P(SdkInteropTest, TheSdkWritesShoalReads) {
  int seed = 0;
  for (const auto& c : Cases("from-sdk")) {
    std::string src = tmp_.path() + "/src" + std::to_string(seed);
    ASSERT_TRUE(testing::WritePatternFile(src, 200 + seed, c.size));
    auto put = Sdk(GetParam() + "-put", c.name, src);
    ASSERT_EQ(put.exit_code, 0) << c.name << ": " << put.err;
    auto stat = Shoal({"stat", Scheme() + "://interop/" + c.name});
    ASSERT_EQ(stat.exit_code, 0) << stat.err;
    EXPECT_NE(stat.out.find("size:          " + std::to_string(c.size) + " "), std::string::npos) << stat.out;
    std::string got = tmp_.path() + "/got" + std::to_string(seed);
    auto get = Shoal({"cp", Scheme() + "://interop/" + c.name, got});
    ASSERT_EQ(get.exit_code, 0) << get.err;
    EXPECT_EQ(testing::FileSha256(got), testing::FileSha256(src)) << c.name;
    seed++;
  }
}

INSTANTIATE_TEST_SUITE_P(Sdks, SdkInteropTest, ::testing::Values("azure", "s3"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  return shoal::testing::RunTestsWithServers(argc, argv, "interop");
}
