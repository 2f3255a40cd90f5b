// Objects written by `shoal cp` read back by the official SDKs (@azure/storage-blob,
// @aws-sdk/client-s3), and objects the SDKs wrote read by `shoal`, byte-identical.
#include <gtest/gtest.h>

#include <filesystem>

#include "testing/data.h"
#include "testing/servers.h"

namespace shoal {
namespace {

using testing::CommandResult;
using testing::Env;

struct World {
  testing::Azurite azurite;
  testing::S3rver s3rver;
};
World* world = nullptr;

class WorldEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    world = new World();
    ASSERT_TRUE(world->azurite.Start().ok());
    ASSERT_TRUE(world->s3rver.Start().ok());
    ASSERT_TRUE(world->azurite.Store("interop")->CreateBucket().ok());
    ASSERT_TRUE(world->s3rver.Store("interop")->CreateBucket().ok());
  }
  void TearDown() override { delete world; }
};

Env ClientEnv() {
  Env env = world->azurite.ClientEnv();
  for (auto& [k, v] : world->s3rver.ClientEnv()) env[k] = v;
  return env;
}

CommandResult Sdk(const std::string& op, const std::string& key, const std::string& file) {
  return testing::RunCommand(
      {"node", testing::SourceDir() + "/tests/sdk_interop.js", op, "interop", key, file}, ClientEnv());
}

CommandResult Shoal(std::vector<std::string> args) {
  args.insert(args.begin(), testing::BinaryDir() + "/bin/shoal");
  return testing::RunCommand(args, ClientEnv());
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
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new shoal::WorldEnvironment());
  return RUN_ALL_TESTS();
}
