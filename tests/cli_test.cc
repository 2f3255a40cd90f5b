// The `shoal` command line as users run it: a separate process against a real Azurite and
// s3rver, checking exit codes, output, error lines and the bytes that land.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"

namespace shoal {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::Env;

std::string Shoal() { return testing::BinaryDir() + "/bin/shoal"; }

// Runs shoal with the credentials of both stores (and nothing else from the environment
// that could point elsewhere).
CommandResult RunShoal(std::vector<std::string> args, const std::string& input = "", Env extra = {}) {
  Env env = testing::ServersClientEnv();
  for (auto& [k, v] : extra) env[k] = v;
  args.insert(args.begin(), Shoal());
  return testing::RunCommand(args, env, input);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class CliTest : public ::testing::TestWithParam<std::string> {
 protected:
  // A URL prefix unique to this test on the parameter's store.
  std::string Base() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    name = name.substr(0, name.find('/'));
    if (GetParam() == "local") return "file://" + local_root_.path() + "/" + name;
    return GetParam() + "://clitest/" + name;
  }
  testing::TempDir tmp_;
  testing::TempDir local_root_;
};

TEST_P(CliTest, FileRoundTripsByteIdentical) {
  std::string src = tmp_.path() + "/in.bin";
  ASSERT_TRUE(testing::WritePatternFile(src, 1, (20 << 20) + 12345));  // several parts
  auto up = RunShoal({"cp", src, Base() + "/obj.bin"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(up.out, "");  // quiet on success when not on a terminal
  auto down = RunShoal({"cp", Base() + "/obj.bin", tmp_.path() + "/out.bin"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(testing::FileSha256(tmp_.path() + "/out.bin"), testing::FileSha256(src));
}

TEST_P(CliTest, DestinationEndingInSlashKeepsTheFileName) {
  std::string src = tmp_.path() + "/named.txt";
  WriteFile(src, "named");
  ASSERT_EQ(RunShoal({"cp", src, Base() + "/dir/"}).exit_code, 0);
  auto cat = RunShoal({"cat", Base() + "/dir/named.txt"});
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "named");
  fs::create_directories(tmp_.path() + "/into");
  ASSERT_EQ(RunShoal({"cp", Base() + "/dir/named.txt", tmp_.path() + "/into"}).exit_code, 0);
  EXPECT_EQ(ReadFile(tmp_.path() + "/into/named.txt"), "named");
}

TEST_P(CliTest, StdinToObjectAndObjectToStdout) {
  std::string data(9 << 20, '\0');  // more than one part: the streaming multipart path
  testing::PatternSource::Fill(5, 0, data.data(), data.size());
  auto up = RunShoal({"cp", "-", Base() + "/piped"}, data);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto down = RunShoal({"cp", Base() + "/piped", "-"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_TRUE(down.out == data);
  auto cat = RunShoal({"cat", "--offset", "100", "--length", "50", Base() + "/piped"});
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == data.substr(100, 50));
}

// `cat --offset/--length` reaching past the end is clamped to the object, as an HTTP range is,
// on every store: the bytes that are there, and nothing (exit 0) from the end on.
TEST_P(CliTest, CatPastTheEndGivesTheBytesThereOnEveryStore) {
  const std::string data = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";  // 50 bytes
  ASSERT_EQ(RunShoal({"cp", "-", Base() + "/fifty"}, data).exit_code, 0);
  struct Case {
    std::string offset, length, want;
  };
  for (const Case& c : {Case{"40", "100", data.substr(40)}, Case{"0", "51", data}, Case{"49", "", data.substr(49)},
                        Case{"50", "", ""}, Case{"50", "10", ""}, Case{"1000", "1", ""}, Case{"10", "0", ""}}) {
    std::vector<std::string> args = {"cat", "--offset", c.offset};
    if (!c.length.empty()) args.insert(args.end(), {"--length", c.length});
    args.push_back(Base() + "/fifty");
    auto cat = RunShoal(args);
    EXPECT_EQ(cat.exit_code, 0) << "--offset " << c.offset << " --length " << c.length << ": " << cat.err;
    EXPECT_EQ(cat.out, c.want) << "--offset " << c.offset << " --length " << c.length;
  }
}

TEST_P(CliTest, RecursiveCopyOfATreeOfMixedSizesComesBackIdentical) {
  std::string tree = tmp_.path() + "/tree";
  std::map<std::string, std::string> files = {
      {"empty", ""},
      {"one", "1"},
      {"a/b/c/deep.txt", "deep"},
      {"with space/ü.bin", std::string(100000, 'u')},
  };
  std::string big(9 << 20, '\0');
  testing::PatternSource::Fill(9, 0, big.data(), big.size());
  files["big/blob.bin"] = big;
  for (auto& [name, data] : files) WriteFile(tree + "/" + name, data);
  auto up = RunShoal({"cp", "-r", tree, Base() + "/tree"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto ls = RunShoal({"ls", "-r", Base() + "/tree/"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(Lines(ls.out), static_cast<int>(files.size())) << ls.out;
  auto down = RunShoal({"cp", "-r", Base() + "/tree", tmp_.path() + "/back"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  for (auto& [name, data] : files) {
    EXPECT_TRUE(ReadFile(tmp_.path() + "/back/" + name) == data) << name;
  }
  size_t count = 0;
  for (auto& e : fs::recursive_directory_iterator(tmp_.path() + "/back")) count += e.is_regular_file();
  EXPECT_EQ(count, files.size());
}

TEST_P(CliTest, LsGroupsByDirectoryAndStatShowsSizeAndEtag) {
  // One level below each common prefix: s3rver drops common prefixes whose keys lie two
  // levels down (its directory walk prunes them), which S3 itself does not.
  for (std::string k : {"x/1", "x/2", "y/3", "top"}) {
    ASSERT_EQ(RunShoal({"cp", "-", Base() + "/ls/" + k}, k).exit_code, 0);
  }
  auto ls = RunShoal({"ls", Base() + "/ls/"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("PRE"), std::string::npos);
  EXPECT_NE(ls.out.find("/ls/x/"), std::string::npos);
  EXPECT_NE(ls.out.find("/ls/top"), std::string::npos);
  EXPECT_EQ(Lines(ls.out), 3) << ls.out;
  auto stat = RunShoal({"stat", Base() + "/ls/top"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("size:          3 "), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("etag:"), std::string::npos);
  EXPECT_NE(stat.out.find("last-modified: 20"), std::string::npos);
}

TEST_P(CliTest, RmDeletesOneOrAPrefix) {
  for (std::string k : {"a", "b", "c"}) ASSERT_EQ(RunShoal({"cp", "-", Base() + "/rm/" + k}, k).exit_code, 0);
  EXPECT_EQ(RunShoal({"rm", Base() + "/rm/a"}).exit_code, 0);
  EXPECT_NE(RunShoal({"stat", Base() + "/rm/a"}).exit_code, 0);
  EXPECT_EQ(RunShoal({"rm", "-r", Base() + "/rm"}).exit_code, 0);
  auto ls = RunShoal({"ls", "-r", Base() + "/rm/"});
  EXPECT_EQ(ls.exit_code, 0);
  EXPECT_EQ(ls.out, "");
}

TEST_P(CliTest, MissingObjectFailsWithOneLineSayingSo) {
  auto r = RunShoal({"cat", Base() + "/no/such/object"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(Stores, CliTest, ::testing::Values("az", "s3", "local"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// rm -r through a proxy that counts what Azurite served: one listing and one DELETE per object,
// no more; with every DELETE refused (403) it goes on past each, deletes nothing, exits 1 and
// says how many are left and why; run again once the store accepts, it deletes them all.
TEST(Cli, RmRecursiveDeletesEveryObjectOnceAndReportsWhatItCouldNot) {
  constexpr int kObjects = 120;
  auto store = testing::Servers().azurite.Store("clitest");
  ASSERT_EQ(testing::PutMany(*store, kObjects, [](int i) { return "rmmany/o" + std::to_string(i); }), 0);
  testing::FaultProxy proxy;
  ASSERT_TRUE(proxy.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
  const Env via = testing::Servers().azurite.ClientEnv(proxy.port());

  testing::FaultConfig refuse;
  refuse.error_rate = 1;
  refuse.error_codes = "403";
  refuse.error_methods = "DELETE";
  ASSERT_TRUE(proxy.Configure(refuse).ok());
  auto refused = RunShoal({"rm", "-r", "az://clitest/rmmany/"}, "", via);
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("deleted 0 of " + std::to_string(kObjects) + " objects under az://clitest/rmmany/; " +
                             std::to_string(kObjects) + " could not be deleted"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(Lines(refused.err), 1) << refused.err;

  ASSERT_TRUE(proxy.Configure({}).ok());
  ASSERT_TRUE(proxy.Reset().ok());
  auto rm = RunShoal({"rm", "-r", "az://clitest/rmmany/"}, "", via);
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(rm.err.find("deleted " + std::to_string(kObjects) + " objects"), std::string::npos) << rm.err;
  auto stats = proxy.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->requests, static_cast<uint64_t>(kObjects) + 1) << "one listing, one DELETE per object";
  ListOptions lo;
  lo.prefix = "rmmany/";
  auto left = store->List(lo);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->objects.empty());
}

TEST(Cli, EveryCommandAnswersHelp) {
  for (std::string cmd : {"", "cp", "cat", "ls", "stat", "rm", "mb"}) {
    std::vector<std::string> args;
    if (!cmd.empty()) args.push_back(cmd);
    args.push_back("--help");
    auto r = RunShoal(args);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ": " << r.out;
  }
  auto top = RunShoal({"--help"});
  EXPECT_NE(top.out.find("AZURE_STORAGE_CONNECTION_STRING"), std::string::npos);
}

TEST(Cli, NoCommandIsAUsageError) {
  auto r = RunShoal({});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);  // usage errors are not runtime failures
}

// Regression: usage errors exited with CLI11's own codes (104, 106, 109) and without the
// command's name, and a negative --offset wrapped to a huge one.
TEST(Cli, UsageErrorsExitTwoNamingTheCommandAndItsHelp) {
  struct Case {
    std::vector<std::string> args;
    std::string command;  // "shoal cp", as the error line starts
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{"cp"}, "shoal cp", "SRC"},
           {{"cp", "a", "b", "c"}, "shoal cp", "c"},
           {{"cat", "--offset", "-1", "az://clitest/x"}, "shoal cat", "--offset"},
           {{"cat", "--length", "-5", "az://clitest/x"}, "shoal cat", "--length"},
           {{"cat", "--offset", "x", "az://clitest/x"}, "shoal cat", "--offset"},
           {{"ls", "--bogus", "az://clitest/"}, "shoal ls", "--bogus"},
           {{"frob"}, "shoal", "frob"},
           {{}, "shoal", "command"},
       }) {
    auto r = RunShoal(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    EXPECT_EQ(r.exit_code, 2) << shown << ": " << r.err;
    EXPECT_EQ(r.err.rfind(c.command + ": ", 0), 0u) << shown << ": " << r.err;
    EXPECT_NE(r.err.find(c.mentions), std::string::npos) << shown << ": " << r.err;
    EXPECT_NE(r.err.find(c.command + " --help"), std::string::npos) << shown << ": " << r.err;
  }
}

// Regression: `shoal cp f az:/data/x` (one slash) exited 0 having written ./az:/data/x.
TEST(Cli, AUrlWithoutItsTwoSlashesIsRefusedNotTakenForALocalPath) {
  testing::TempDir tmp;
  WriteFile(tmp.path() + "/f", "data");
  for (std::string target : {"az:/data/x", "s3:bucket/x", "file:/tmp/x", "AZ:/data/x"}) {
    auto r = testing::RunCommand({"sh", "-c", "cd '" + tmp.path() + "' && exec '" + Shoal() + "' cp f " + target});
    EXPECT_EQ(r.exit_code, 1) << target << ": " << r.err;
    EXPECT_NE(r.err.find("'" + target + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("://"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("./" + target), std::string::npos) << r.err;  // how to mean a local path
    EXPECT_FALSE(fs::exists(tmp.path() + "/" + target.substr(0, target.find(':') + 1))) << target;
  }
  auto read = testing::RunCommand({"sh", "-c", "cd '" + tmp.path() + "' && exec '" + Shoal() + "' cat az:/data/x"});
  EXPECT_EQ(read.exit_code, 1) << read.err;
  EXPECT_NE(read.err.find("az://"), std::string::npos) << read.err;
  // A local file whose name starts so is still reachable, as ./NAME.
  auto local = testing::RunCommand({"sh", "-c", "cd '" + tmp.path() + "' && exec '" + Shoal() + "' cp f ./az:x"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(ReadFile(tmp.path() + "/az:x"), "data");
}

TEST(Cli, MissingCredentialsNameTheVariablesToSet) {
  auto r = testing::RunCommand({Shoal(), "ls", "az://somewhere/"}, {{"AZURE_STORAGE_CONNECTION_STRING", ""}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("AZURE_STORAGE_CONNECTION_STRING"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("AZURE_STORAGE_KEY"), std::string::npos) << r.err;
}

TEST(Cli, WrongAccountKeyIsRefusedWithoutPrintingIt) {
  std::string bad_key = Base64Encode("not-the-real-key-at-all");
  std::string cs = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + bad_key +
                   ";BlobEndpoint=" + testing::Servers().azurite.Endpoint() + ";";
  auto r = RunShoal({"ls", "az://clitest/"}, "", {{"AZURE_STORAGE_CONNECTION_STRING", cs}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("devstoreaccount1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("AZURE_STORAGE_CONNECTION_STRING"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(bad_key), std::string::npos) << r.err;
}

TEST(Cli, BadUrlsAndFlagsAreExplained) {
  auto scheme = RunShoal({"cat", "gs://bucket/x"});
  EXPECT_EQ(scheme.exit_code, 1);
  EXPECT_NE(scheme.err.find("az://"), std::string::npos) << scheme.err;
  auto size = RunShoal({"cp", "--part-size", "lots", "-", "az://clitest/x"}, "x");
  EXPECT_EQ(size.exit_code, 1);
  EXPECT_NE(size.err.find("8MiB"), std::string::npos) << size.err;
  auto dir = RunShoal({"cp", testing::SourceDir() + "/src", "az://clitest/x"});
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_NE(dir.err.find("-r"), std::string::npos) << dir.err;
  auto escape = RunShoal({"cp", "-", "file:///tmp/a/../b"}, "x");
  EXPECT_EQ(escape.exit_code, 1);
  EXPECT_NE(escape.err.find(".."), std::string::npos) << escape.err;
}

// The memory bound: a 1 GiB object (four times the bound) moves through a fixed set of part
// buffers, whose number and size do not depend on the object's.
TEST(Cli, PeakMemoryOfA1GiBCopyStaysUnder256MiB) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's shadow memory and quarantine count in the peak RSS";
#endif
  testing::TempDir tmp;
  const uint64_t size = 1ull << 30;
  std::string src = tmp.path() + "/1g.bin";
  ASSERT_TRUE(testing::WritePatternFile(src, 4, size));
  auto up = RunShoal({"cp", src, "az://clitest/rss/1g.bin"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  fs::remove(src);
  auto down = RunShoal({"cp", "az://clitest/rss/1g.bin", tmp.path() + "/1g.back"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(testing::FileSha256(tmp.path() + "/1g.back"), testing::PatternSha256(4, size));
  std::printf("peak RSS of shoal cp, 1 GiB: upload %ld KiB, download %ld KiB\n", up.max_rss_kib,
              down.max_rss_kib);
  EXPECT_LT(up.max_rss_kib, 256 * 1024);
  EXPECT_LT(down.max_rss_kib, 256 * 1024);
  EXPECT_EQ(RunShoal({"rm", "az://clitest/rss/1g.bin"}).exit_code, 0);
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  return shoal::testing::RunTestsWithServers(argc, argv, "clitest");
}
