// `shoal mount` (a real FUSE mount, as a separate process) and the Python binding, over a shoald
// in front of a real Azurite: PyTorch checkpoints saved and loaded through both, the blob in the
// store byte for byte what was written (read back with the official Azure SDK), `cp -r` of a
// tree in and out, no torn reads while a file is written, and the errors a mount gives.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::Shoal;
using testing::Shoald;
using testing::Until;

constexpr const char* kBucket = "mounttest";
constexpr uint64_t kMiB = 1ull << 20;

std::string Url(const std::string& key) { return "az://" + std::string(kBucket) + "/" + key; }

bool Mounted(const std::string& mountpoint) {
  std::ifstream in("/proc/mounts");
  std::string dev, mp, rest;
  while (in >> dev >> mp && std::getline(in, rest)) {
    if (mp == mountpoint) return true;
  }
  return false;
}

// `argv` run with no object-store credentials in its environment (`env -u` of every variable
// the stores read), as on a GPU host that only knows its cache node.
std::vector<std::string> NoStoreCredentials(const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"env"};
  for (const char* v : {"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
                        "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_BLOB_ENDPOINT", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                        "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
                        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                        "AWS_ENDPOINT_URL_S3"}) {
    out.insert(out.end(), {"-u", v});
  }
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}
// What NoStoreCredentials runs with: were anything to try the store directly, its managed
// identity lookup goes to a closed port on this host (never outside) and fails.
testing::Env NoStoreCredentialsEnv() { return {{"AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"}}; }

// One `shoal mount --foreground` process; unmounted and stopped when it goes away.
class Mount {
 public:
  // `store_credentials` false: the mount's environment has none (NoStoreCredentials).
  Status Start(const std::string& url, const std::vector<std::string>& extra, bool store_credentials = true) {
    mountpoint_ = dir_.path() + "/mnt";
    fs::create_directory(mountpoint_);
    std::vector<std::string> argv = {testing::ShoalBinary(), "mount", "--foreground", url, mountpoint_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto env = store_credentials ? testing::ServersClientEnv() : NoStoreCredentialsEnv();
    if (!store_credentials) argv = NoStoreCredentials(argv);
    if (!proc_.Start(argv, env, dir_.path() + "/mount.log")) {
      return Status::IOError("could not start shoal mount");
    }
    if (!Until([&] { return Mounted(mountpoint_) || !proc_.running(); }, std::chrono::seconds(30)) ||
        !Mounted(mountpoint_)) {
      return Status::IOError("not mounted: " + Log());
    }
    return Status::Ok();
  }
  ~Mount() {
    if (Mounted(mountpoint_)) {
      auto r = Shoal({"unmount", mountpoint_});
      if (r.exit_code != 0) ::umount2(mountpoint_.c_str(), MNT_DETACH);
    }
    Until([&] { return !proc_.running(); }, std::chrono::seconds(20));
  }
  const std::string& path() const { return mountpoint_; }
  std::string Log() const {
    std::ifstream in(dir_.path() + "/mount.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  bool Running() { return proc_.running(); }
  pid_t Pid() const { return proc_.pid(); }

 private:
  testing::TempDir dir_;
  testing::Subprocess proc_;
  std::string mountpoint_;
};

// /usr/bin/python3 tests/python/SCRIPT ARGS, with `import shoal` from the build tree.
CommandResult PythonScript(const std::string& script, const std::vector<std::string>& args, const std::string& cache) {
  std::vector<std::string> argv = {"/usr/bin/python3", testing::SourceDir() + "/tests/python/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  auto env = testing::ServersClientEnv();
  env["PYTHONPATH"] = testing::BinaryDir() + "/python";
  env["SHOAL_CACHE"] = cache;
  return testing::RunCommand(argv, env, "", std::chrono::seconds(300));
}
CommandResult Python(const std::vector<std::string>& args, const std::string& cache) {
  return PythonScript("torch_io.py", args, cache);
}

// "name sha256" lines (lib_io.py sums) as a map.
std::map<std::string, std::string> Sums(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string name, sha;
  while (in >> name >> sha) m[name] = sha;
  return m;
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port()));
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = node_.Start(proxy_.port());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // The blob as the official Azure SDK downloads it (its sha256), straight from Azurite.
  std::string SdkSha256(const std::string& key) {
    std::string file = files_.path() + "/sdk-download";
    auto r = testing::RunCommand({"node", testing::SourceDir() + "/tests/sdk_interop.js", "azure-get", kBucket, key, file},
                                 testing::ServersClientEnv());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string sha = testing::FileSha256(file);
    fs::remove(file);
    return sha;
  }

  testing::FaultProxy proxy_;
  Shoald node_;
  testing::TempDir files_;
};

// torch.save through a mount (temp name, then rename) and through the binding; torch.load of
// each from another mount and another client, equal tensor by tensor; after `shoal flush
// --wait` each blob in Azurite is byte-identical to the file.
TEST_F(MountTest, TorchCheckpointsThroughMountAndBinding) {
  Mount a, b;
  ASSERT_TRUE(a.Start(Url("ckpt/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  ASSERT_TRUE(b.Start(Url("ckpt/"), {"--cache", node_.Endpoint()}).ok()) << b.Log();

  auto saved = Python({"save", a.path() + "/mounted.pt", "7"}, node_.Endpoint());
  ASSERT_EQ(saved.exit_code, 0) << saved.err << a.Log();
  auto bound = Python({"save", Url("ckpt/bound.pt"), "8"}, node_.Endpoint());
  ASSERT_EQ(bound.exit_code, 0) << bound.err;

  // Each read back the other way: the mount's file through the binding and another mount, the
  // binding's object through the other mount.
  for (const auto& [target, seed] : std::vector<std::pair<std::string, std::string>>{
           {b.path() + "/mounted.pt", "7"}, {Url("ckpt/mounted.pt"), "7"}, {b.path() + "/bound.pt", "8"}}) {
    auto checked = Python({"check", target, seed}, node_.Endpoint());
    EXPECT_EQ(checked.exit_code, 0) << target << ": " << checked.err << checked.out;
    EXPECT_NE(checked.out.find("equal"), std::string::npos) << checked.out;
  }
  // The rename left no temporary object behind, on the node or (after flush) in the store.
  EXPECT_FALSE(fs::exists(a.path() + "/mounted.pt.tmp"));
  auto flushed = Shoal({"flush", "--wait", "-q", "--cache", node_.Endpoint(), Url("ckpt/")});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  auto ls = Shoal({"ls", Url("ckpt/")});
  EXPECT_EQ(ls.out.find("mounted.pt.tmp"), std::string::npos) << ls.out;
  for (const char* name : {"mounted.pt", "bound.pt"}) {
    std::string file_sha = testing::FileSha256(b.path() + "/" + name);
    EXPECT_EQ(SdkSha256(std::string("ckpt/") + name), file_sha) << name;
    auto stat = Shoal({"stat", "--cache", node_.Endpoint(), Url(std::string("ckpt/") + name)});
    EXPECT_NE(stat.out.find("durable"), std::string::npos) << stat.out;
  }
}

// A host with no store credentials, only the node: `shoal cp -r --cache` up and down, `shoal
// ls --cache`, `shoal rm --cache`, a mount's readdir and reads, and the binding's ls(). A write
// the node has not uploaded yet (the store slowed to 16 KiB/s) is listed by all of them, and
// one deleted through the node is listed by none.
TEST_F(MountTest, HostsWithoutStoreCredentialsListCopyAndMountThroughTheNode) {
  const std::string ep = node_.Endpoint();
  auto bare = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), testing::ShoalBinary());
    return testing::RunCommand(NoStoreCredentials(args), NoStoreCredentialsEnv(), input);
  };
  std::string src = files_.path() + "/up";
  fs::create_directories(src + "/sub");
  ASSERT_TRUE(testing::WritePatternFile(src + "/a.bin", 90, 3 * kMiB + 5));
  ASSERT_TRUE(testing::WritePatternFile(src + "/sub/b.bin", 91, 100000));
  auto up = bare({"cp", "-r", "-q", "--cache", ep, src, Url("bare/")});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  ASSERT_TRUE(testing::WaitUntilDurable(ep, std::chrono::seconds(120)));
  auto down = bare({"cp", "-r", "-q", "--cache", ep, Url("bare/"), files_.path() + "/down"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  auto diff = testing::RunCommand({"diff", "-r", src, files_.path() + "/down"});
  EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
  // Without the node the same listing fails: the host really has no credentials.
  auto direct = bare({"ls", Url("bare/")});
  EXPECT_EQ(direct.exit_code, 1) << direct.out;

  // A write still on the node only, and one deleted through it.
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.bandwidth = 16 << 10}).ok());
  ASSERT_EQ(bare({"cp", "-q", "--cache", ep, "-", Url("bare/sub/pending.bin")}, std::string(256 << 10, 'p')).exit_code, 0);
  ASSERT_EQ(bare({"cp", "-q", "--cache", ep, "-", Url("bare/gone.bin")}, "soon gone").exit_code, 0);
  auto rm = bare({"rm", "--cache", ep, Url("bare/gone.bin")});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  auto ls = bare({"ls", "--cache", ep, Url("bare/")});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("PRE  bare/sub/"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(std::to_string(3 * kMiB + 5) + "  bare/a.bin"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find("gone.bin"), std::string::npos) << ls.out;
  auto lsr = bare({"ls", "-r", "--cache", ep, Url("bare/")});
  EXPECT_NE(lsr.out.find("262144  bare/sub/pending.bin"), std::string::npos) << lsr.out;
  EXPECT_NE(lsr.out.find("100000  bare/sub/b.bin"), std::string::npos) << lsr.out;
  EXPECT_EQ(lsr.out.find("gone.bin"), std::string::npos) << lsr.out;

  auto py = testing::RunCommand(
      NoStoreCredentials({"/usr/bin/python3", "-c",
                          "import shoal, sys\n"
                          "for e in shoal.Client().ls(sys.argv[1], recursive=True): print(e.url, e.size)",
                          Url("bare/")}),
      {{"PYTHONPATH", testing::BinaryDir() + "/python"}, {"SHOAL_CACHE", ep},
       {"AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9"}});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, Url("bare/a.bin") + " " + std::to_string(3 * kMiB + 5) + "\n" + Url("bare/sub/b.bin") +
                        " 100000\n" + Url("bare/sub/pending.bin") + " 262144\n");

  Mount m;
  ASSERT_TRUE(m.Start(Url("bare/"), {"--cache", ep}, /*store_credentials=*/false).ok()) << m.Log();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(m.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a.bin", "sub"}));
  names.clear();
  for (const auto& e : fs::directory_iterator(m.path() + "/sub")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b.bin", "pending.bin"}));
  EXPECT_EQ(testing::FileSha256(m.path() + "/a.bin"), testing::FileSha256(src + "/a.bin"));
  EXPECT_EQ(fs::file_size(m.path() + "/sub/pending.bin"), 256u << 10);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
}

// zipfile, np.savez and tarfile (its first header patched after the end was written) write
// through a mount and through the binding as they write to local disk, seeking back to fill in
// headers; a file appended to ("ab"), moved in and truncated too, and one written past a seek
// beyond its end (the hole reads as zeros). Each object, read back
// through the mount and the binding, and in the store after flush, equals the local file.
TEST_F(MountTest, FilesWrittenAsLibrariesWriteThemEqualTheLocalOnes) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("libs/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  const std::string local_m = files_.path() + "/local-m", local_b = files_.path() + "/local-b";
  fs::create_directories(local_m);
  fs::create_directories(local_b);
  fs::create_directories(a.path() + "/m");
  auto mounted = PythonScript("lib_io.py", {"write", a.path() + "/m", local_m}, node_.Endpoint());
  ASSERT_EQ(mounted.exit_code, 0) << mounted.err << a.Log();
  auto bound = PythonScript("lib_io.py", {"write", Url("libs/b/"), local_b}, node_.Endpoint());
  ASSERT_EQ(bound.exit_code, 0) << bound.err;
  const std::vector<std::string> names = {"x.zip", "x.npz", "x.tar", "y.bin", "z.bin"};
  std::map<std::string, std::string> local;
  for (const auto& n : names) {
    local[n] = testing::FileSha256(local_m + "/" + n);
    ASSERT_EQ(testing::FileSha256(local_b + "/" + n), local[n]) << n << " differs between two local writes";
  }
  EXPECT_EQ(fs::file_size(local_m + "/y.bin"), 7000u);
  EXPECT_EQ(fs::file_size(local_m + "/z.bin"), (1u << 20) + 3 + 4);
  for (const auto& target : {a.path() + "/m", Url("libs/m/"), Url("libs/b/"), a.path() + "/b"}) {
    auto sums = PythonScript("lib_io.py", {"sums", target}, node_.Endpoint());
    ASSERT_EQ(sums.exit_code, 0) << target << ": " << sums.err;
    EXPECT_EQ(Sums(sums.out), local) << target;
  }
  auto flushed = Shoal({"flush", "--wait", "-q", "--cache", node_.Endpoint(), Url("libs/")});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  auto store = testing::Servers().azurite.Store(kBucket);
  for (const auto& n : names) {
    EXPECT_EQ(testing::ObjectSha256(*store, "libs/m/" + n), local[n]) << n;
    EXPECT_EQ(testing::ObjectSha256(*store, "libs/b/" + n), local[n]) << n;
  }
}

// cp -r of a tree of mixed sizes (empty to several chunks, nested) into the mount and out again.
TEST_F(MountTest, CopyATreeInAndOut) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("tree/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  std::string src = files_.path() + "/src";
  std::map<std::string, uint64_t> sizes = {{"empty", 0},           {"one", 1},
                                           {"a/small.json", 4096}, {"a/b/mid.bin", 3 * kMiB + 17},
                                           {"a/b/c/big.bin", 21 * kMiB}, {"d/e/f/g/deep.txt", 100}};
  uint64_t seed = 1;
  for (const auto& [rel, size] : sizes) {
    fs::create_directories(fs::path(src + "/" + rel).parent_path());
    ASSERT_TRUE(testing::WritePatternFile(src + "/" + rel, seed++, size));
  }
  auto in = testing::RunCommand({"cp", "-r", src, a.path() + "/copy"});
  ASSERT_EQ(in.exit_code, 0) << in.err << a.Log();
  // Out through a second mount (nothing cached from the writes) and through the first.
  Mount b;
  ASSERT_TRUE(b.Start(Url("tree/"), {"--cache", node_.Endpoint()}).ok()) << b.Log();
  for (const Mount* m : {&a, &b}) {
    std::string out = files_.path() + "/out";
    fs::remove_all(out);
    auto cp = testing::RunCommand({"cp", "-r", m->path() + "/copy", out});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    auto diff = testing::RunCommand({"diff", "-r", src, out});
    EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
    size_t files = 0;
    for (auto it = fs::recursive_directory_iterator(out); it != fs::recursive_directory_iterator(); ++it) {
      files += it->is_regular_file();
    }
    EXPECT_EQ(files, sizes.size());
  }
}

// A process killed while it writes a file through the mount (a training job's rank killed in
// the middle of torch.save) has abandoned the write: nothing of it is published, and the
// version written before stays, in the mount and in the store. A process that exits without
// closing the file, by exit() rather than a signal, published what it wrote, as on a local
// disk. Before, the kernel's close of the killed process's file looked like any other close,
// and the mount published the partial file.
TEST_F(MountTest, AWriterKilledBeforeItClosesTheFilePublishesNothing) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("killed/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  const std::string path = a.path() + "/ckpt.bin";
  const uint64_t old_size = 3 * kMiB + 5;
  ASSERT_TRUE(testing::WritePatternFile(path, 61, old_size)) << a.Log();
  const uint64_t written_before = testing::NodeMetric(node_.Endpoint(), "shoal_bytes_written_total");
  ASSERT_EQ(written_before, old_size);
  // The writer: 20 MiB written (the node has most of it), then it waits to be killed.
  const std::string marker = files_.path() + "/wrote";
  const std::string writer =
      "import os, sys, time\n"
      "f = open(sys.argv[1], 'wb')\n"
      "for i in range(20): f.write(bytes([i]) * (1 << 20))\n"
      "f.flush()\n"
      "open(sys.argv[2], 'w').close()\n"
      "if sys.argv[3] == 'exit': os._exit(0)\n"
      "time.sleep(600)\n";
  {
    testing::Subprocess p;
    ASSERT_TRUE(p.Start({"/usr/bin/python3", "-c", writer, path, marker, "wait"}));
    ASSERT_TRUE(Until([&] { return fs::exists(marker) || !p.running(); }, std::chrono::seconds(60))) << a.Log();
    ASSERT_TRUE(fs::exists(marker)) << "the writer ended early: " << a.Log();
    p.Kill();
  }
  EXPECT_TRUE(Until([&] { return a.Log().find("killed by signal 9") != std::string::npos; }, std::chrono::seconds(30)))
      << a.Log();
  EXPECT_EQ(testing::FileSha256(path), testing::PatternSha256(61, old_size)) << a.Log();
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), "shoal_bytes_written_total"), written_before)
      << "nothing of the killed write was acknowledged";
  auto flush = Shoal({"flush", "--wait", "-q", "--cache", node_.Endpoint(), Url("killed/")});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "killed/ckpt.bin"),
            testing::PatternSha256(61, old_size));

  // Exiting without a close is not being killed: the file is published whole.
  fs::remove(marker);
  auto exited = testing::RunCommand({"/usr/bin/python3", "-c", writer, path, marker, "exit"});
  ASSERT_EQ(exited.exit_code, 0) << exited.err << a.Log();
  EXPECT_TRUE(Until([&] { return testing::NodeMetric(node_.Endpoint(), "shoal_bytes_written_total") ==
                                 written_before + 20 * kMiB; },
                    std::chrono::seconds(30)))
      << a.Log();
  EXPECT_EQ(fs::file_size(path), 20 * kMiB);
}

// A file opened and written by one thread of a process and closed by another (a writer pool,
// an executor's callback) is complete when that close returns, as when its opener closes it:
// acknowledged by the node, or the close fails. Here the node is killed between the write and
// the close, so the close must fail (it returned 0 while the object was still unwritten when
// only the opening thread's close counted).
TEST_F(MountTest, AFileClosedByAnotherThreadOfItsWriterIsCompleteWhenTheCloseReturns) {
  Shoald n;
  ASSERT_TRUE(n.Start(proxy_.port()).ok()) << n.Log();
  Mount a;
  ASSERT_TRUE(a.Start(Url("threads/"), {"--cache", n.Endpoint()}).ok()) << a.Log();
  const std::string bytes(64 * 1024 + 3, 'q');
  auto open_and_write = [&](const std::string& path) {
    int fd = -1;
    std::thread opener([&] {
      fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd >= 0 && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        ::close(fd);
        fd = -1;
      }
    });
    opener.join();
    return fd;
  };
  int fd = open_and_write(a.path() + "/ok.bin");
  ASSERT_GE(fd, 0) << std::strerror(errno) << a.Log();
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno) << a.Log();
  EXPECT_EQ(testing::NodeMetric(n.Endpoint(), "shoal_bytes_written_total"), bytes.size())
      << "acknowledged when the close returned";

  fd = open_and_write(a.path() + "/lost.bin");
  ASSERT_GE(fd, 0) << std::strerror(errno) << a.Log();
  n.Crash();
  EXPECT_NE(::close(fd), 0) << "the close returned 0 for a file the node never acknowledged: " << a.Log();
}

// Small files cost the node one request each way: `cp -r` into a directory the mount makes
// asks nothing about the names it creates there (the mount found it empty), only writes them;
// reading each by name is its lookup and its read, the open asking nothing again. Counted at
// the node (shoal_requests_total), which counts every request a client sends it.
TEST_F(MountTest, SmallFilesCostTheNodeOneRequestEachWay) {
  constexpr int kFiles = 40;
  Mount a;
  ASSERT_TRUE(a.Start(Url("small/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  std::string src = files_.path() + "/small";
  fs::create_directories(src);
  for (int i = 0; i < kFiles; i++) ASSERT_TRUE(testing::WritePatternFile(src + "/f" + std::to_string(i), i + 1, 4096));
  const std::string requests = "shoal_requests_total";
  uint64_t before = testing::NodeMetric(node_.Endpoint(), requests);
  auto in = testing::RunCommand({"cp", "-r", src, a.path() + "/copy"});
  ASSERT_EQ(in.exit_code, 0) << in.err << a.Log();
  // copy/ looked up four times before it exists (cp's open and stat of it, the kernel's lookup
  // for the mkdir, the mkdir's own), a HEAD and a listing each; then one PUT per file, and the
  // read of /metrics itself. (It was 3 per file: a HEAD and a listing of each name first.)
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), requests) - before, 8u + kFiles + 1u);

  Mount b;  // nothing known of the files
  ASSERT_TRUE(b.Start(Url("small/"), {"--cache", node_.Endpoint()}).ok()) << b.Log();
  before = testing::NodeMetric(node_.Endpoint(), requests);
  for (int i = 0; i < kFiles; i++) {
    std::string name = "/copy/f" + std::to_string(i);
    ASSERT_EQ(testing::FileSha256(b.path() + name), testing::FileSha256(src + "/f" + std::to_string(i))) << name;
  }
  // copy/'s lookup (a HEAD, then a listing: it is a directory), the node's cluster view (once
  // per mount, at its first read), the lookups of the first 3 names (a HEAD each), then one
  // listing of copy/ that answers the other lookups, one GET per file (the open, which takes
  // the bytes of a small file with it), and the read of /metrics. (It was 3 per file: the open
  // asked again; then 2: a HEAD at the lookup, a GET.)
  EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), requests) - before, 3u + 3u + 1u + kFiles + 1u);
}

// A file whose size and ETag the mount knows (from a listing) is opened with its bytes in one
// request, and that request takes the version current now: replaced through the node after the
// listing by a larger file, then by a smaller one, each open reads the new file whole, neither
// cut at nor padded to the size the kernel was told.
TEST_F(MountTest, AnOpenReadsTheVersionCurrentNowInOneRequest) {
  Mount m;
  ASSERT_TRUE(m.Start(Url("fresh/"), {"--cache", node_.Endpoint()}).ok()) << m.Log();
  const std::string src = files_.path() + "/fresh";
  fs::create_directories(src);
  const std::vector<std::pair<std::string, uint64_t>> versions = {{"first", 100 << 10}, {"larger", 300 << 10},
                                                                  {"smaller", 10 << 10}};
  for (size_t i = 0; i < versions.size(); i++) {
    ASSERT_TRUE(testing::WritePatternFile(src + "/" + versions[i].first, i + 7, versions[i].second));
  }
  auto put = [&](const std::string& name) {
    auto r = Shoal({"cp", "-q", src + "/" + name, Url("fresh/f"), "--cache", node_.Endpoint()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  put("first");
  auto listed = testing::RunCommand({"ls", "-l", m.path()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_NE(listed.out.find(std::to_string(versions[0].second)), std::string::npos) << listed.out;
  EXPECT_EQ(testing::FileSha256(m.path() + "/f"), testing::FileSha256(src + "/first"));
  const std::string requests = "shoal_requests_total";
  for (const char* name : {"larger", "smaller"}) {
    put(name);
    const uint64_t before = testing::NodeMetric(node_.Endpoint(), requests);
    EXPECT_EQ(testing::FileSha256(m.path() + "/f"), testing::FileSha256(src + "/" + name)) << name << m.Log();
    // The open's GET, and the read of /metrics.
    EXPECT_EQ(testing::NodeMetric(node_.Endpoint(), requests) - before, 2u) << name;
  }
}

// Files only the store holds, in nested directories, read by name through a fresh mount over a
// node (every file, then `find`): the first time the node asks the store. Read again through
// another fresh mount (another job on the host), they cost the store nothing: the files' sizes,
// ETags and bytes, the directories' listings, and that a directory's name is not an object (a
// lookup asks for one first) are all within the node's --metadata-ttl. Counted at the proxy.
// (The directories' names cost a HEAD each before the node remembered a 404.)
TEST_F(MountTest, AWarmReadThroughAFreshMountCostsTheStoreNothing) {
  Shoald node;
  Status st = node.Start(proxy_.port(), {"--metadata-ttl", "3600"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::string src = files_.path() + "/tree";
  std::vector<std::string> names;
  for (const char* dir : {"a/b", "a/c", "d"}) {
    fs::create_directories(src + "/" + dir);
    for (int i = 0; i < 5; i++) names.push_back(std::string(dir) + "/f" + std::to_string(i));
  }
  for (size_t i = 0; i < names.size(); i++) ASSERT_TRUE(testing::WritePatternFile(src + "/" + names[i], i + 1, 64 << 10));
  auto copied = Shoal({"cp", "-r", "-q", src + "/", Url("warm-tree/")});  // straight to Azurite: the node has none
  ASSERT_EQ(copied.exit_code, 0) << copied.err;

  auto read_all = [&](const std::string& mount_path) {  // by name first, as a data loader opens them
    for (const auto& name : names) {
      EXPECT_EQ(testing::FileSha256(mount_path + "/" + name), testing::FileSha256(src + "/" + name)) << name;
    }
    auto found = testing::RunCommand({"find", mount_path, "-type", "f"});
    ASSERT_EQ(found.exit_code, 0) << found.err;
    EXPECT_EQ(std::count(found.out.begin(), found.out.end(), '\n'), static_cast<long>(names.size())) << found.out;
  };
  ASSERT_TRUE(proxy_.Reset().ok());
  {
    Mount cold;
    ASSERT_TRUE(cold.Start(Url("warm-tree/"), {"--cache", node.Endpoint()}).ok()) << cold.Log();
    read_all(cold.path());
  }
  auto first = proxy_.Stats();
  ASSERT_TRUE(first.ok());
  EXPECT_GE(first->get_requests, names.size()) << "the first read fetched every file from the store";
  ASSERT_TRUE(proxy_.Reset().ok());
  Mount warm;
  ASSERT_TRUE(warm.Start(Url("warm-tree/"), {"--cache", node.Endpoint()}).ok()) << warm.Log();
  read_all(warm.path());
  auto second = proxy_.Stats();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->requests, 0u) << "the warm read asked the store; node log:\n" << node.Log();
}

// A prefix of 100,000 keys (the store's) and 3 writes not yet uploaded (the store refuses
// uploads), listed through the node (`shoal ls --cache`, page by page) and through a mount's
// readdir: the store's own keys plus the 3, once each, in order; the node's peak RSS over the
// listing grows by less than 64 MiB (its peak is reset first: /proc/PID/clear_refs).
TEST_F(MountTest, AHundredThousandKeyPrefixListsThroughTheNodeInBoundedMemory) {
  constexpr int kKeys = 100000;
  auto secs = [t = std::chrono::steady_clock::now()]() mutable {  // since the last call
    auto now = std::chrono::steady_clock::now();
    double d = std::chrono::duration<double>(now - t).count();
    t = now;
    return d;
  };
  // About 2 minutes on a quiet machine (Azurite takes about 800 blobs a second); under the
  // load of a sanitized run, more than 10.
  auto made = testing::RunCommand({"node", testing::SourceDir() + "/tests/sdk_interop.js", "azure-many", kBucket,
                                   "big/k", std::to_string(kKeys)},
                                  testing::ServersClientEnv(), "", std::chrono::seconds(1500));
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::printf("%d keys made in Azurite in %.1f s\n", kKeys, secs());
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0, .error_methods = "PUT,POST"}).ok());
  const std::vector<std::string> pending = {"big/j-first", "big/k050000.5", "big/z-last"};
  for (const auto& key : pending) {
    Status put = testing::PutThroughNode(node_.Endpoint(), Url(key), "pending " + key, ObjectMeta{});
    ASSERT_TRUE(put.ok()) << put.ToString();
  }
  auto store = Shoal({"ls", Url("big/")});  // the store's own listing, straight from Azurite
  ASSERT_EQ(store.exit_code, 0) << store.err;
  auto keys_of = [](const std::string& out) {
    std::vector<std::string> keys;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      size_t at = line.rfind(' ');
      keys.push_back(line.substr(at + 1));
    }
    return keys;
  };
  std::printf("listed straight from Azurite in %.1f s\n", secs());
  std::vector<std::string> expected = keys_of(store.out);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kKeys)) << "the store holds the keys made";
  for (const auto& key : pending) expected.push_back(key);
  std::sort(expected.begin(), expected.end());

  const pid_t pid = node_.Pid();
  ASSERT_TRUE(testing::ResetPeakRss(pid));
  const long before = testing::ProcStatusKib(pid, "VmRSS");
  auto listed = Shoal({"ls", "--cache", node_.Endpoint(), Url("big/")});
  const long peak = testing::ProcStatusKib(pid, "VmHWM");
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(keys_of(listed.out), expected) << "the node's listing is the store's plus the pending writes, in order";
  std::printf("listed through the node in %.1f s; its RSS %ld KiB before, peak %ld KiB during it\n", secs(), before,
              peak);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // their shadow memory counts in the RSS
  EXPECT_LT(peak - before, 64 * 1024) << "KiB the node's RSS grew by, listing " << kKeys << " keys";
#endif

  Mount m;
  ASSERT_TRUE(m.Start(Url("big/"), {"--cache", node_.Endpoint()}).ok()) << m.Log();
  auto names = testing::RunCommand({"ls", "-f", m.path()});
  ASSERT_EQ(names.exit_code, 0) << names.err;
  EXPECT_EQ(std::count(names.out.begin(), names.out.end(), '\n'), kKeys + 3 + 2) << "every name once, . and .. too";
  std::printf("listed through a mount over the node in %.1f s\n", secs());
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
}

// A reader (another process, on another mount and on the writer's own) never sees part of a
// file being written: it is absent until the writer closes it, then whole.
TEST_F(MountTest, AReaderSeesTheWholeFileOnlyAfterClose) {
  Mount a, b;
  ASSERT_TRUE(a.Start(Url("race/"), {"--cache", node_.Endpoint(), "--metadata-ttl", "1"}).ok()) << a.Log();
  ASSERT_TRUE(b.Start(Url("race/"), {"--cache", node_.Endpoint(), "--metadata-ttl", "1"}).ok()) << b.Log();
  const std::string mib = "48";
  CommandResult on_other, on_same;
  std::thread other([&] { on_other = Python({"watch", b.path() + "/grow.bin", mib, "120"}, ""); });
  std::thread same([&] { on_same = Python({"watch", a.path() + "/grow.bin", mib, "120"}, ""); });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the watchers are looking
  auto wrote = Python({"write", a.path() + "/grow.bin", mib}, "");
  other.join();
  same.join();
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err << a.Log();
  for (const auto* r : {&on_other, &on_same}) {
    std::printf("%s: %s", r == &on_other ? "reader on another mount" : "reader on the writer's mount", r->out.c_str());
    ASSERT_EQ(r->exit_code, 0) << r->err;
    EXPECT_NE(r->out.find("torn 0"), std::string::npos) << r->out;
    EXPECT_EQ(r->out.find("absent 0 "), std::string::npos) << "it looked while the file was written: " << r->out;
    EXPECT_EQ(r->out.find("complete 0 "), std::string::npos) << r->out;
  }
}

// A file written through the mount is read while its upload cannot happen (every store request
// fails), and its upload lands in the middle of the read: the version the reader pinned (the
// node's) gives way to the store's, the same bytes, and the read goes on without an error.
TEST_F(MountTest, AReadGoesOnWhenTheFilesUploadLandsUnderIt) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("landing/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  const uint64_t size = 96 * kMiB;  // more than the reader fetches ahead of its first read
  const std::string path = a.path() + "/model.bin";
  std::string want(size, '\0');
  testing::PatternSource::Fill(41, 0, want.data(), want.size());
  int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);  // the store answers that it is new
  ASSERT_GE(out, 0) << std::strerror(errno) << a.Log();
  testing::FaultConfig down;
  down.error_rate = 1.0;
  ASSERT_TRUE(proxy_.Configure(down).ok());
  for (uint64_t off = 0; off < size; off += kMiB) {
    ASSERT_EQ(::write(out, want.data() + off, kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno) << a.Log();
  }
  ASSERT_EQ(::close(out), 0) << std::strerror(errno) << a.Log();
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno) << a.Log();
  std::string got(size, '\0');
  ASSERT_EQ(::read(fd, got.data(), kMiB), static_cast<ssize_t>(kMiB)) << std::strerror(errno);
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  auto flush = Shoal({"flush", "--wait", "-q", "--cache", node_.Endpoint(), Url("landing/")});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  uint64_t done = kMiB;
  while (done < size) {
    ssize_t n = ::read(fd, got.data() + done, size - done);
    ASSERT_GT(n, 0) << "read at " << done << ": " << (n < 0 ? std::strerror(errno) : "end of file") << a.Log();
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  EXPECT_TRUE(got == want) << "the bytes read differ from those written";
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "landing/model.bin"),
            testing::PatternSha256(41, size));
}

// How many of the file's pages the kernel holds in its page cache, asked with mincore on a fresh
// shared map of it (which itself reads nothing); -1 if it cannot be mapped.
long ResidentPages(int fd, uint64_t size) {
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> in((size + page - 1) / page);
  long resident = ::mincore(map, size, in.data()) == 0 ? 0 : -1;
  for (unsigned char c : in) resident += c & 1;
  ::munmap(map, size);
  return resident;
}

// Reads the whole file with read(2) in 4 MiB calls, then through a shared map; true if both are
// `want`. *resident: the page-cache pages between the two (ResidentPages).
::testing::AssertionResult ReadAndMap(const std::string& path, const std::string& want, long* resident) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return ::testing::AssertionFailure() << "open " << path << ": " << std::strerror(errno);
  std::string got(want.size(), '\0');
  uint64_t done = 0;
  while (done < got.size()) {
    ssize_t n = ::read(fd, got.data() + done, std::min<uint64_t>(4 * kMiB, got.size() - done));
    if (n <= 0) {
      ::close(fd);
      return ::testing::AssertionFailure() << "read " << path << " at " << done << ": "
                                           << (n < 0 ? std::strerror(errno) : "end of file");
    }
    done += static_cast<uint64_t>(n);
  }
  *resident = ResidentPages(fd, want.size());
  void* map = ::mmap(nullptr, want.size(), PROT_READ, MAP_SHARED, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (got != want) return ::testing::AssertionFailure() << "read(2) of " << path << " differs from what was written";
  if (map == MAP_FAILED) return ::testing::AssertionFailure() << "mmap MAP_SHARED " << path << ": " << std::strerror(map_errno);
  bool same = std::memcmp(map, want.data(), want.size()) == 0;
  ::munmap(map, want.size());
  if (!same) return ::testing::AssertionFailure() << "the map of " << path << " differs from what was written";
  return ::testing::AssertionSuccess();
}

// Files of 32 MiB and more are read around the kernel's page cache (direct I/O: the data is not
// held in memory a second time, beside the node's), smaller ones and every file of a
// --kernel-cache mount through it; a shared mmap of either kind (safetensors, NumPy's memmap)
// reads the right bytes. The kernel allows such maps of direct-I/O files since 6.6.
TEST_F(MountTest, LargeFilesAreReadAroundThePageCacheAndStillMap) {
  utsname u{};
  ::uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major < 6 || (major == 6 && minor < 6)) GTEST_SKIP() << "kernel " << u.release << " predates 6.6";
  Mount a, b;
  ASSERT_TRUE(a.Start(Url("direct/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  ASSERT_TRUE(b.Start(Url("direct/"), {"--cache", node_.Endpoint(), "--kernel-cache"}).ok()) << b.Log();
  std::map<std::string, std::string> files = {{"big.bin", std::string(40 * kMiB, '\0')},
                                              {"small.bin", std::string(3 * kMiB + 5, '\0')}};
  uint64_t seed = 70;
  for (auto& [name, bytes] : files) {
    testing::PatternSource::Fill(seed++, 0, bytes.data(), bytes.size());
    std::ofstream out(a.path() + "/" + name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    ASSERT_TRUE(out.good()) << name << a.Log();
  }
  long resident = -1;
  ASSERT_TRUE(ReadAndMap(a.path() + "/big.bin", files["big.bin"], &resident)) << a.Log();
  EXPECT_EQ(resident, 0) << "a 40 MiB file went through the page cache";
  ASSERT_TRUE(ReadAndMap(a.path() + "/small.bin", files["small.bin"], &resident)) << a.Log();
  EXPECT_GT(resident, 0) << "a 3 MiB file did not go through the page cache";
  ASSERT_TRUE(ReadAndMap(b.path() + "/big.bin", files["big.bin"], &resident)) << b.Log();
  EXPECT_GT(resident, 0) << "--kernel-cache: a 40 MiB file did not go through the page cache";
}

// Writing into the middle of an existing object, and appending to it, publish a new whole
// version at close. What a mount refuses, and how: reading a file open for writing
// (EOPNOTSUPP), any change on a --read-only mount (EROFS); `shoal unmount` ends a mount that
// detached.
// A write the node cannot take (more than it may stage: --capacity 32MiB stages at most 16
// MiB) fails in the writer with ENOSPC, at a write or at the close, and publishes nothing: the
// version written before stays, in the mount and in the store, and nothing is left staged or
// acknowledged on the node.
TEST_F(MountTest, AWriteTheNodeCannotTakeFailsWithEnospcAndTheVersionBeforeStays) {
  Shoald small;
  ASSERT_TRUE(small.Start(proxy_.port(), {"--capacity", "32MiB"}).ok()) << small.Log();
  Mount a;
  ASSERT_TRUE(a.Start(Url("full/"), {"--cache", small.Endpoint()}).ok()) << a.Log();
  const std::string path = a.path() + "/ckpt.bin";
  const uint64_t old_size = 4 * kMiB + 3;
  ASSERT_TRUE(testing::WritePatternFile(path, 71, old_size)) << a.Log();
  auto flush = Shoal({"flush", "--wait", "-q", "--cache", small.Endpoint(), Url("full/")});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  const uint64_t written = testing::NodeMetric(small.Endpoint(), "shoal_bytes_written_total");
  ASSERT_EQ(written, old_size);

  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0) << std::strerror(errno) << a.Log();
  const std::string piece(kMiB, 'z');
  int failed_with = 0;
  for (int i = 0; i < 60 && failed_with == 0; i++) {
    if (::write(fd, piece.data(), piece.size()) != static_cast<ssize_t>(piece.size())) failed_with = errno;
  }
  if (::close(fd) != 0 && failed_with == 0) failed_with = errno;
  EXPECT_EQ(failed_with, ENOSPC) << std::strerror(failed_with) << a.Log();

  EXPECT_EQ(testing::FileSha256(path), testing::PatternSha256(71, old_size)) << a.Log();
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "full/ckpt.bin"),
            testing::PatternSha256(71, old_size));
  auto m = testing::NodeMetrics(small.Endpoint());
  EXPECT_EQ(m["shoal_bytes_written_total"], written) << "nothing of the failed write was acknowledged";
  EXPECT_EQ(m["shoal_staged_objects"], 0u);
  EXPECT_EQ(m["shoal_cache_pinned_bytes"], 0u);
}

// --async-close: close returns once the mount holds the file's bytes (here while the node is
// stopped, so it cannot have waited for it), the file is looked up with its size meanwhile, and
// an fsync of a directory above it (`sync DIR`) returns once the node acknowledged every such
// file. A close whose write then fails (the node killed) is logged and reported by `shoal
// unmount` (its fsync of the root).
TEST_F(MountTest, AnAsyncCloseReturnsAtOnceAndSyncOfTheDirectoryWaitsForTheNode) {
  Shoald n;
  ASSERT_TRUE(n.Start(proxy_.port()).ok()) << n.Log();
  Mount a;
  ASSERT_TRUE(a.Start(Url("async/"), {"--cache", n.Endpoint(), "--async-close"}).ok()) << a.Log();
  const uint64_t size = 64 * 1024 + 7;
  const std::string source = files_.path() + "/a.bin";
  ASSERT_TRUE(testing::WritePatternFile(source, 91, size));
  std::ifstream in(source, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(bytes.size(), size);
  // Opened and written, then the node stops, then the close. "" when the close returned ok
  // while the node was stopped.
  auto write_then_close_while_stopped = [&](const std::string& path) -> std::string {
    std::atomic<int> step{0};  // 1: written; 2: the node is stopped, close; 3: closed
    std::string failed;
    std::thread writer([&] {
      int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        failed = std::string("open or write: ") + std::strerror(errno);
      }
      step = 1;
      while (step.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (fd >= 0 && ::close(fd) != 0 && failed.empty()) failed = std::string("close: ") + std::strerror(errno);
      step = 3;
    });
    Until([&] { return step.load() == 1; }, std::chrono::seconds(60));
    n.Pause();
    step = 2;
    const bool early = Until([&] { return step.load() == 3; }, std::chrono::seconds(30));
    if (!early) n.Resume();  // so that the close can end
    writer.join();
    if (!early) return "the close waited for the stopped node";
    return failed;
  };

  const std::string path = a.path() + "/a.bin";
  ASSERT_EQ(write_then_close_while_stopped(path), "") << a.Log();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size) << "looked up with its size before the node has it";
  n.Resume();
  int root = ::open(a.path().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(root, 0) << std::strerror(errno);
  EXPECT_EQ(::fsync(root), 0) << std::strerror(errno) << a.Log();
  ::close(root);
  EXPECT_EQ(testing::NodeMetric(n.Endpoint(), "shoal_bytes_written_total"), size) << "acknowledged once fsync returned";
  EXPECT_EQ(testing::FileSha256(path), testing::PatternSha256(91, size));

  // A tree copied in, then `sync DIR` (coreutils: fsync of the directory): every file is on
  // the node when it returns.
  constexpr int kFiles = 60;
  fs::create_directories(files_.path() + "/tree/sub");
  for (int i = 0; i < kFiles; i++) {
    ASSERT_TRUE(testing::WritePatternFile(files_.path() + "/tree/sub/f" + std::to_string(i), 100 + i, 4096 + i));
  }
  auto cp = testing::RunCommand({"cp", "-r", files_.path() + "/tree", a.path() + "/"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << a.Log();
  auto sync = testing::RunCommand({"sync", a.path() + "/tree"});
  ASSERT_EQ(sync.exit_code, 0) << sync.err << a.Log();
  uint64_t tree_bytes = 0;
  for (int i = 0; i < kFiles; i++) tree_bytes += 4096 + i;
  EXPECT_EQ(testing::NodeMetric(n.Endpoint(), "shoal_bytes_written_total"), size + tree_bytes);
  auto diff = testing::RunCommand({"diff", "-r", files_.path() + "/tree", a.path() + "/tree"});
  EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;

  // A name written again, then deleted, right after each close: each step waits for the one
  // before, so the versions reach the node in order and the delete comes last.
  auto put = [&](const std::string& name, const std::string& text) {
    std::ofstream out(a.path() + "/" + name, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    return out.good();
  };
  ASSERT_TRUE(put("again.txt", "one")) << a.Log();
  ASSERT_TRUE(put("again.txt", "second")) << a.Log();
  ASSERT_TRUE(put("gone.txt", "soon deleted")) << a.Log();
  EXPECT_EQ(::unlink((a.path() + "/gone.txt").c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(testing::RunCommand({"sync", a.path()}).exit_code, 0) << a.Log();
  EXPECT_EQ(testing::NodeMetric(n.Endpoint(), "shoal_bytes_written_total"), size + tree_bytes + 3 + 6 + 12);
  {
    std::ifstream again(a.path() + "/again.txt");
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), {}), "second");
  }
  auto stat_gone = Shoal({"stat", "--cache", n.Endpoint(), Url("async/gone.txt")});
  EXPECT_NE(stat_gone.exit_code, 0) << stat_gone.out;
  auto stat_again = Shoal({"cat", "--cache", n.Endpoint(), Url("async/again.txt")});
  EXPECT_EQ(stat_again.out, "second") << stat_again.err;

  // A close whose write fails after it returned: the node is killed while it waits.
  ASSERT_EQ(write_then_close_while_stopped(a.path() + "/b.bin"), "") << a.Log();
  n.Crash();
  auto unmount = Shoal({"unmount", a.path()});
  EXPECT_NE(unmount.exit_code, 0) << unmount.out;
  EXPECT_NE(unmount.err.find("was not stored after its close returned"), std::string::npos) << unmount.err;
  EXPECT_NE(a.Log().find("b.bin: not written (after its close returned)"), std::string::npos) << a.Log();
}

// A mount whose process is stopped never answers: `shoal unmount --timeout` gives up, says
// what to do, and unmounts nothing; once the process goes on, unmount ends it. (Before, the
// command waited without a word for as long as the mount was stopped.)
TEST_F(MountTest, UnmountOfAStoppedMountGivesUpAtItsTimeoutAndUnmountsNothing) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("stopped/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  ASSERT_EQ(::kill(a.Pid(), SIGSTOP), 0);
  auto un = Shoal({"unmount", "--timeout", "2", a.path()});
  ::kill(a.Pid(), SIGCONT);
  EXPECT_EQ(un.exit_code, 1) << un.err;
  EXPECT_NE(un.err.find("did not answer within 2 s"), std::string::npos) << un.err;
  EXPECT_NE(un.err.find("nothing was unmounted"), std::string::npos) << un.err;
  EXPECT_NE(un.err.find("fusermount3 -uz " + a.path()), std::string::npos) << un.err;
  EXPECT_TRUE(Mounted(a.path())) << "unmounted a mount that did not answer";
  auto again = Shoal({"unmount", a.path()});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_FALSE(Mounted(a.path()));
  auto bad = Shoal({"unmount", "--timeout", "-1", a.path()});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  auto not_mounted = Shoal({"unmount", a.path()});
  EXPECT_EQ(not_mounted.exit_code, 1);
  EXPECT_NE(not_mounted.err.find("is not a mount point"), std::string::npos) << not_mounted.err;
}

TEST_F(MountTest, UnsupportedWritesFailClearlyAndUnmountEndsTheMount) {
  Mount a;
  ASSERT_TRUE(a.Start(Url("errs/"), {"--cache", node_.Endpoint()}).ok()) << a.Log();
  {
    std::ofstream f(a.path() + "/exists.txt", std::ios::binary);
    f << "0123456789";
  }
  auto content = [&](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  int fd = ::open((a.path() + "/exists.txt").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd, "x", 1, 5), 1) << std::strerror(errno) << a.Log();
  ::close(fd);
  EXPECT_EQ(content(a.path() + "/exists.txt"), "01234x6789");
  fd = ::open((a.path() + "/exists.txt").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::write(fd, "y", 1), 1) << std::strerror(errno);
  ::close(fd);
  EXPECT_EQ(content(a.path() + "/exists.txt"), "01234x6789y");
  // A file being written cannot be read back through the same descriptor.
  fd = ::open((a.path() + "/rw.txt").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "abc", 3), 3);
  char got[3];
  EXPECT_EQ(::pread(fd, got, 3, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  ::close(fd);
  EXPECT_NE(a.Log().find("EOPNOTSUPP"), std::string::npos) << a.Log();

  Mount ro;
  ASSERT_TRUE(ro.Start(Url("errs/"), {"--cache", node_.Endpoint(), "--read-only"}).ok()) << ro.Log();
  EXPECT_EQ(::open((ro.path() + "/new.txt").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::unlink((ro.path() + "/exists.txt").c_str()), -1);
  EXPECT_EQ(errno, EROFS);

  // Without --foreground, the mount detaches once it is in place; unmount ends it.
  testing::TempDir dir;
  std::string mp = dir.path() + "/bg";
  fs::create_directory(mp);
  auto bg = testing::RunCommand({testing::ShoalBinary(), "mount", "--cache", node_.Endpoint(), Url("errs/"), mp},
                                testing::ServersClientEnv(), "", std::chrono::seconds(60));
  ASSERT_EQ(bg.exit_code, 0) << bg.err;
  EXPECT_TRUE(Mounted(mp));
  EXPECT_TRUE(fs::exists(mp + "/exists.txt"));
  auto un = Shoal({"unmount", mp});
  EXPECT_EQ(un.exit_code, 0) << un.err;
  EXPECT_FALSE(Mounted(mp));
  // Detached with its stderr sent to a file: the mount's messages go on into that file.
  const std::string log = dir.path() + "/mount.log";
  auto logged = testing::RunCommand({"/bin/sh", "-c", "exec \"$0\" mount --cache \"$1\" \"$2\" \"$3\" 2>> \"$4\"",
                                     testing::ShoalBinary(), node_.Endpoint(), Url("errs/"), mp, log},
                                    testing::ServersClientEnv(), "", std::chrono::seconds(60));
  ASSERT_EQ(logged.exit_code, 0) << logged.err;
  {
    int fd = ::open((mp + "/rw.txt").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    char c = 'x';
    EXPECT_EQ(::write(fd, &c, 1), 1);
    EXPECT_EQ(::pread(fd, &c, 1, 0), -1);  // reading a file open for writing: logged, EOPNOTSUPP
    ::close(fd);
  }
  EXPECT_EQ(Shoal({"unmount", mp}).exit_code, 0);
  std::ifstream log_in(log);
  const std::string log_text((std::istreambuf_iterator<char>(log_in)), {});
  EXPECT_NE(log_text.find("reading a file open for writing is not supported"), std::string::npos) << log_text;
  // A mount of a store that cannot be reached fails at once, saying so, and mounts nothing.
  auto bad = testing::RunCommand({testing::ShoalBinary(), "mount", "--foreground", "az://no-such-container-x/", mp},
                                 testing::ServersClientEnv(), "", std::chrono::seconds(60));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("cannot list"), std::string::npos) << bad.err;
  EXPECT_FALSE(Mounted(mp));
}

// One "epoch E objects N bytes B secs S objects/s R store_gets G store_heads H workers W" line
// of torch_data.py epochs, as name -> value.
std::map<std::string, double> EpochLine(const std::string& out, int epoch) {
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::map<std::string, double> m;
    std::string name;
    double value;
    while (in >> name >> value) m[name] = value;
    if (m.count("epoch") && m["epoch"] == epoch) return m;
  }
  return {};
}

// shoal.torch.ObjectDataset read by a DataLoader with 4 workers (each worker its own client)
// over 2,000 objects of 4-64 KiB that only the store holds: each epoch yields every object
// exactly once with its bytes (sha256, checked in the script), from the workers and never the
// main process, each worker through a client opened in its own process. Epoch 1 costs the
// store exactly one GET per object (the listing was before it; the node learns the size and
// ETag from that GET's answer: before, a HEAD came first); epoch 2, served by the node, costs
// it none. The node trusts metadata for an
// hour here; with the default --metadata-ttl of 60 s, an object whose size and ETag the node
// learned longer ago than that costs a HEAD (never a GET) in the next epoch. Then an
// IterableObjectDataset split across 2 ranks of 2 workers each (one rank's forked, the other's
// spawned): every object read once by one of them (4 readers: each rank's 2 workers).
TEST_F(MountTest, DataLoaderWorkersReadEveryObjectOnceAndTheSecondEpochFromTheNode) {
  constexpr int kObjects = 2000;
  Shoald node;
  Status st = node.Start(proxy_.port(), {"--metadata-ttl", "3600"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::string dir = files_.path() + "/ds";
  fs::create_directories(dir);
  auto made = PythonScript("torch_data.py", {"make", dir, std::to_string(kObjects)}, "");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto copied = Shoal({"cp", "-r", "-q", dir + "/", Url("ds/")});  // straight to Azurite: the node has none
  ASSERT_EQ(copied.exit_code, 0) << copied.err;

  auto run = PythonScript("torch_data.py",
                          {"epochs", Url("ds/"), std::to_string(kObjects), "4", "2", std::to_string(proxy_.port())},
                          node.Endpoint());
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  std::cout << run.out;
  auto one = EpochLine(run.out, 1), two = EpochLine(run.out, 2);
  ASSERT_FALSE(one.empty() || two.empty()) << run.out;
  for (auto* e : {&one, &two}) {
    EXPECT_EQ((*e)["objects"], kObjects);
    EXPECT_EQ((*e)["workers"], 4);
  }
  EXPECT_EQ(one["store_gets"], kObjects);
  EXPECT_EQ(one["store_heads"], 0) << "the size and ETag come with the object's GET";
  EXPECT_EQ(two["store_gets"], 0);
  EXPECT_EQ(two["store_heads"], 0);
  EXPECT_EQ(two["bytes"], one["bytes"]);

  auto iterable = PythonScript("torch_data.py", {"iterable", Url("ds/"), std::to_string(kObjects), "2", "2"},
                               node.Endpoint());
  ASSERT_EQ(iterable.exit_code, 0) << iterable.err << iterable.out;
  EXPECT_NE(iterable.out.find("iterable objects 2000 ranks 2 readers 4"), std::string::npos) << iterable.out;

  auto bare = PythonScript("torch_data.py", {"no-torch"}, node.Endpoint());
  EXPECT_EQ(bare.exit_code, 0) << bare.err << bare.out;
}

// 4 processes (forked, each with its own client) torch.save a shard each at the same moment
// through the node; rank 0 commits the step once all 4 are there. Each shard loads back equal
// tensor by tensor, the marker names exactly the 4, and after flush each blob is in the store.
TEST_F(MountTest, RanksSaveShardsAtOnceAndLoadThemBack) {
  auto run = PythonScript("torch_data.py", {"shards", Url("step1/"), "4"}, node_.Endpoint());
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  EXPECT_NE(run.out.find("shards 4 saved at once, loaded equal; marker names rank-0.pt rank-1.pt rank-2.pt "
                         "rank-3.pt"),
            std::string::npos)
      << run.out;
  auto flushed = Shoal({"flush", "--wait", "-q", "--cache", node_.Endpoint(), Url("step1/")});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  auto ls = Shoal({"ls", Url("step1/")});
  for (const char* name : {"rank-0.pt", "rank-1.pt", "rank-2.pt", "rank-3.pt", "_SHOAL_COMMITTED"}) {
    EXPECT_NE(ls.out.find(name), std::string::npos) << name << " not in the store: " << ls.out;
  }
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }
