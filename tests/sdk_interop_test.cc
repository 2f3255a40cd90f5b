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

// Azure credentials as separate variables: a key, then SAS tokens made by the SDK.
class AzureEnvCredentialsTest : public ::testing::Test {
 protected:
  CommandResult ShoalWith(std::vector<std::string> args, Env env, const std::string& input = "") {
    args.insert(args.begin(), testing::BinaryDir() + "/bin/shoal");
    env["AZURE_STORAGE_CONNECTION_STRING"] = "";  // only the variables below
    env["AZURE_STORAGE_ACCOUNT"] = "devstoreaccount1";
    env["AZURE_STORAGE_BLOB_ENDPOINT"] = testing::Servers().azurite.Endpoint();
    return testing::RunCommand(args, env, input);
  }
  std::string Sas(const std::string& permissions) {
    auto r = testing::RunCommand({"node", testing::SourceDir() + "/tests/sdk_interop.js", "azure-sas",
                                  permissions, "-", "-"},
                                 testing::ServersClientEnv());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
};

TEST_F(AzureEnvCredentialsTest, AccountKeyVariableWorks) {
  Env env = {{"AZURE_STORAGE_KEY",
              "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="}};
  ASSERT_EQ(ShoalWith({"cp", "-", "az://interop/env/key.txt"}, env, "by key").exit_code, 0);
  auto cat = ShoalWith({"cat", "az://interop/env/key.txt"}, env);
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "by key");
}

TEST_F(AzureEnvCredentialsTest, SasTokenVariableWorksForEveryOperation) {
  Env env = {{"AZURE_STORAGE_SAS_TOKEN", Sas("rwdlac")}};
  std::string big(9 << 20, 's');  // Put Block + Put Block List under SAS too
  auto up = ShoalWith({"cp", "-", "az://interop/env/sas.bin"}, env, big);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto cat = ShoalWith({"cat", "az://interop/env/sas.bin"}, env);
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == big);
  auto ls = ShoalWith({"ls", "az://interop/env/"}, env);
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("env/sas.bin"), std::string::npos) << ls.out;
  EXPECT_EQ(ShoalWith({"rm", "az://interop/env/sas.bin"}, env).exit_code, 0);
}

TEST_F(AzureEnvCredentialsTest, ReadOnlySasRefusesWritesAndSaysWhichCredential) {
  std::string sas = Sas("rl");
  auto up = ShoalWith({"cp", "-", "az://interop/env/denied"}, {{"AZURE_STORAGE_SAS_TOKEN", sas}}, "x");
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("AZURE_STORAGE_SAS_TOKEN"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("devstoreaccount1"), std::string::npos) << up.err;
  EXPECT_EQ(up.err.find(sas), std::string::npos) << "the token leaked into: " << up.err;
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  return shoal::testing::RunTestsWithServers(argc, argv, "interop");
}
