// Write-back through shoald (a separate process) into a real Azurite behind the fault proxy:
// crashes at many points of a 1 GiB upload, a failing store, a slow store against the
// staged-bytes cap, a full disk, and checkpoint commits.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "client/cache_store.h"
#include "common/strings.h"
#include "net/http_client.h"
#include "net/node_protocol.h"
#include "store/transfer.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::Env;
using testing::NodeMetric;
using testing::CatSha256;
using testing::Shoald;
using testing::Until;

constexpr const char* kBucket = "wbtest";

std::string Url(const std::string& key) { return "az://" + std::string(kBucket) + "/" + key; }

// `shoal ARGS...` with the Azurite credentials (direct, not through the proxy).
using testing::Shoal;

std::string StoreSha256(const std::string& key) {
  return testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), key);
}

// The environment of /usr/bin/python3 running the binding from the build tree through `node`.
Env PythonEnv(const std::string& node) {
  Env env = testing::ServersClientEnv();
  env["PYTHONPATH"] = testing::BinaryDir() + "/python";
  env["SHOAL_CACHE"] = node;
  return env;
}

// The text of PREFIX_SHOAL_COMMITTED in Azurite (`prefix`: a key ending in '/'); "" if absent.
std::string ReadMarker(const std::string& prefix) {
  std::string text;
  testing::Servers()
      .azurite.Store(kBucket)
      ->Get(prefix + "_SHOAL_COMMITTED", {}, [&](const char* d, size_t n) {
        text.append(d, n);
        return Status::Ok();
      })
      .IgnoreError();
  return text;
}

// `data` written to `url` through `node` (`shoal cp --cache NODE - URL`).
void PutThrough(const Shoald& node, const std::string& url, const std::string& data) {
  auto r = Shoal({"cp", "-q", "--cache", node.Endpoint(), "-", url}, data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

uint64_t Pending(const Shoald& node) { return NodeMetric(node.Endpoint(), "shoal_staged_objects"); }

class WriteBackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status st = proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port()));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void StoreDown() { ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.error_rate = 1.0}).ok()); }
  void StoreUp() { ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok()); }

  testing::FaultProxy proxy_;
};

// kill -9 at eleven points of a 1 GiB write-back: during the write (nothing acknowledged),
// right after the acknowledgement, seven times during the upload, around the commit, and
// after it. After each restart the acknowledged write is still pending (or durable), reads
// through the node return it whole, and in the end the blob is byte-identical with exactly
// one committed block per chunk.
TEST_F(WriteBackTest, KillNineAtElevenPointsOfAOneGiBWriteBack) {
  const uint64_t size = 1ull << 30;
  const uint64_t chunk = 8ull << 20;
  testing::TempDir tmp;
  std::string file = tmp.path() + "/ckpt.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 31, size));
  const std::string want = testing::PatternSha256(31, size);
  const std::string url = Url("kill9/ckpt.bin");
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  auto cp = [&](const std::string& endpoint) { return Shoal({"cp", "-q", "--cache", endpoint, file, url}); };

  // 1. During the write, before the acknowledgement: the writer is told nothing was kept.
  // (The endpoint is read here: the restart below changes it.)
  CommandResult first;
  std::thread writer([&, endpoint = node.Endpoint()] { first = cp(endpoint); });
  EXPECT_TRUE(Until([&] {
    uint64_t pinned = NodeMetric(node.Endpoint(), "shoal_cache_pinned_bytes");
    return pinned != UINT64_MAX && pinned >= 256ull << 20;
  }));
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  writer.join();
  EXPECT_NE(first.exit_code, 0);
  EXPECT_NE(first.err.find("nothing was acknowledged"), std::string::npos) << first.err;
  EXPECT_EQ(Pending(node), 0u) << "an unacknowledged write must not be uploaded";

  // 2. Right after the acknowledgement.
  auto acked = cp(node.Endpoint());
  ASSERT_EQ(acked.exit_code, 0) << acked.err;
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  EXPECT_EQ(Pending(node), 1u);
  EXPECT_EQ(CatSha256(url, node.Endpoint()), want) << "reads during the upload come from the node's disk";

  // 3-9. During the upload, after more and more of it reached the store: the bytes this node
  // sent, and those of the parts the store held when it resumed (not sent again).
  auto in_store = [&] {
    auto m = testing::NodeMetrics(node.Endpoint());
    if (!m.count("shoal_store_put_bytes_total") || !m.count("shoal_upload_reused_bytes_total")) return uint64_t{0};
    return m["shoal_store_put_bytes_total"] + m["shoal_upload_reused_bytes_total"];
  };
  int kills = 2;
  for (uint64_t mib : {32, 96, 192, 320, 448, 640, 896}) {
    ASSERT_TRUE(Until([&] { return in_store() >= (mib << 20); }))
        << "upload stalled before " << mib << " MiB; log:\n" << node.Log();
    ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
    kills++;
    ASSERT_EQ(Pending(node), 1u) << "the acknowledged write was lost after kill " << kills;
  }

  // 10. Once every part is in the store: at, or just around, the commit.
  ASSERT_TRUE(Until([&] { return in_store() >= size; })) << node.Log();
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  kills++;

  // 11. After it is durable: nothing is uploaded again.
  auto flush = Shoal({"flush", "--wait", "--timeout", "600", "--cache", node.Endpoint(), url});
  ASSERT_EQ(flush.exit_code, 0) << flush.err << node.Log();
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  kills++;
  EXPECT_EQ(Pending(node), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_store_put_bytes_total"), 0u);
  EXPECT_EQ(kills, 11);

  EXPECT_EQ(StoreSha256("kill9/ckpt.bin"), want);
  EXPECT_EQ(CatSha256(url, node.Endpoint()), want);
  auto blocks = testing::RunCommand(
      {"node", testing::SourceDir() + "/tests/sdk_interop.js", "azure-blocklist", kBucket, "kill9/ckpt.bin"},
      testing::ServersClientEnv());
  ASSERT_EQ(blocks.exit_code, 0) << blocks.err;
  auto ids = nlohmann::json::parse(blocks.out);
  EXPECT_EQ(ids.size(), size / chunk);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "a block was committed twice";
}

// 30% of requests answered 503 and 10% of connections dropped: every upload completes,
// byte-identical, and the node slowed its uploads down (halved its window) on the way.
TEST_F(WriteBackTest, UploadsCompleteThroughThirtyPercent503sAndDroppedConnections) {
  testing::TempDir tmp;
  fs::create_directories(tmp.path() + "/ckpt/optim");
  std::vector<std::pair<std::string, uint64_t>> files = {
      {"model.pt", (40ull << 20) + 5}, {"optim/shard-0.pt", 24ull << 20}, {"optim/shard-1.pt", 17ull << 20},
      {"config.json", 1000}};
  for (size_t i = 0; i < files.size(); i++) {
    ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/ckpt/" + files[i].first, 40 + i, files[i].second));
  }
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  testing::FaultConfig faults;
  faults.error_rate = 0.3;
  faults.drop_rate = 0.1;
  faults.seed = 7;
  ASSERT_TRUE(proxy_.Configure(faults).ok());
  auto cp = Shoal({"cp", "-r", "-q", "--cache", node.Endpoint(), tmp.path() + "/ckpt", Url("faults/")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto flush = Shoal({"flush", "--wait", "--timeout", "600", "--cache", node.Endpoint(), Url("faults/")});
  ASSERT_EQ(flush.exit_code, 0) << flush.err << node.Log();
  StoreUp();
  for (size_t i = 0; i < files.size(); i++) {
    EXPECT_EQ(StoreSha256("faults/" + files[i].first), testing::PatternSha256(40 + i, files[i].second))
        << files[i].first;
  }
  auto stats = proxy_.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->injected_errors, 0u);
  EXPECT_GT(stats->dropped, 0u);
  EXPECT_GT(NodeMetric(node.Endpoint(), "shoal_store_throttles_total"), 0u);
  EXPECT_GT(NodeMetric(node.Endpoint(), "shoal_upload_window_cuts_total"), 0u);
}

// Two storage accounts (two Azurite instances) written at once through one node, the "west"
// one behind a proxy answering half of its requests 503: only west's upload window is cut and
// every 503 is booked to west alone (exactly as many as the proxy injected), east's window
// stays full (never cut), and every object of both arrives byte-identical in its own account.
TEST_F(WriteBackTest, AThrottlingAccountSlowsOnlyItsOwnUploads) {
  testing::Azurite west;
  ASSERT_TRUE(west.Start().ok());
  testing::FaultProxy west_proxy;
  testing::FaultConfig faults;
  faults.error_rate = 0.5;
  faults.seed = 11;
  ASSERT_TRUE(west_proxy.Start("http://127.0.0.1:" + std::to_string(west.port()), faults).ok());
  const std::string container = "wbaccounts";
  auto east_store = testing::Servers().azurite.Store(container);
  auto west_store = west.Store(container);
  ASSERT_TRUE(east_store->CreateBucket().ok());
  ASSERT_TRUE(west_store->CreateBucket().ok());

  testing::TempDir tmp;
  const int kFiles = 6;
  const uint64_t kSize = (3ull << 20) + 17;  // four parts of 1 MiB chunks
  for (const char* account : {"east", "west"}) {
    fs::create_directories(tmp.path() + "/" + account);
    for (int i = 0; i < kFiles; i++) {
      ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/" + account + "/f" + std::to_string(i), 80 + i, kSize));
    }
  }
  Shoald node;
  node.SetEnv({{"SHOAL_AZ_EAST_AZURE_STORAGE_CONNECTION_STRING", testing::Servers().azurite.ConnectionString()},
               {"SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING", west.ConnectionString(west_proxy.port())}});
  ASSERT_TRUE(node.Start(proxy_.port(), {"--chunk-size", "1MiB", "--upload-concurrency", "8"}).ok()) << node.Log();
  auto url = [&](const char* account) { return "az://" + container + "@" + account + "/run/"; };
  CommandResult cp_east, cp_west;
  std::thread writer([&] {
    cp_west = Shoal({"cp", "-r", "-q", "--cache", node.Endpoint(), tmp.path() + "/west", url("west")});
  });
  cp_east = Shoal({"cp", "-r", "-q", "--cache", node.Endpoint(), tmp.path() + "/east", url("east")});
  writer.join();
  ASSERT_EQ(cp_east.exit_code, 0) << cp_east.err;
  ASSERT_EQ(cp_west.exit_code, 0) << cp_west.err;
  auto flush = Shoal({"flush", "--wait", "--timeout", "600", "--cache", node.Endpoint()});
  ASSERT_EQ(flush.exit_code, 0) << flush.err << node.Log();

  for (int i = 0; i < kFiles; i++) {
    std::string key = "run/f" + std::to_string(i);
    EXPECT_EQ(testing::ObjectSha256(*east_store, key), testing::PatternSha256(80 + i, kSize)) << "east " << key;
    EXPECT_EQ(testing::ObjectSha256(*west_store, key), testing::PatternSha256(80 + i, kSize)) << "west " << key;
  }
  auto injected = west_proxy.Stats();
  ASSERT_TRUE(injected.ok());
  ASSERT_GT(injected->injected_errors, 0u);
  auto m = testing::NodeMetrics(node.Endpoint());
  auto of = [&](const std::string& family, const char* account) {
    auto it = m.find("shoal_" + family + "{account=\"az@" + account + "\"}");
    return it == m.end() ? UINT64_MAX : it->second;
  };
  EXPECT_EQ(of("account_store_throttles_total", "west"), injected->injected_errors);
  EXPECT_EQ(of("account_store_throttles_total", "east"), 0u);
  EXPECT_EQ(m["shoal_store_throttles_total"], injected->injected_errors);
  EXPECT_GE(of("account_upload_window_cuts_total", "west"), 1u);
  EXPECT_LE(of("account_upload_window_min", "west"), 4u);
  EXPECT_EQ(of("account_upload_window_cuts_total", "east"), 0u);
  EXPECT_EQ(of("account_upload_window_min", "east"), 8u);
  EXPECT_EQ(of("account_upload_window", "east"), 8u);
  EXPECT_EQ(of("account_uploads_total", "east"), static_cast<uint64_t>(kFiles));
  EXPECT_EQ(of("account_uploads_total", "west"), static_cast<uint64_t>(kFiles));
  EXPECT_EQ(of("account_store_put_bytes_total", "east"), kFiles * kSize);
  EXPECT_EQ(of("account_upload_failures_total", "east"), 0u);
  auto status = Shoal({"status", "--cache", node.Endpoint()});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  // Each account's own line: its uploads, its window and its 503s (the store line above them
  // prints the node's total in the same words, so the lines are taken apart).
  auto line_of = [&](const char* account) {
    std::istringstream lines(status.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(std::string("account az@") + account + " ") != std::string::npos) return line;
    }
    return std::string();
  };
  const std::string east_line = line_of("east"), west_line = line_of("west");
  EXPECT_NE(east_line.find(std::to_string(kFiles) + " objects; window 8 parts (smallest 8, cut 0 times)"),
            std::string::npos) << status.out;
  EXPECT_NE(east_line.find("; 0 answered 429/503"), std::string::npos) << status.out;
  EXPECT_NE(west_line.find(std::to_string(kFiles) + " objects; window"), std::string::npos) << status.out;
  EXPECT_NE(west_line.find("; " + std::to_string(injected->injected_errors) + " answered 429/503"), std::string::npos)
      << status.out;
  EXPECT_EQ(west_line.find("cut 0 times"), std::string::npos) << status.out;
}

// Twice the staged-bytes cap written against a slow store: the writer waits for uploads (it
// is slowed, not failed), staged bytes never pass the cap, and everything arrives.
TEST_F(WriteBackTest, WritingTwiceTheStagedCapToASlowStoreSlowsTheWriter) {
  const uint64_t cap = 32ull << 20;
  const uint64_t size = 2 * cap;
  testing::TempDir tmp;
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/big.bin", 50, size));
  testing::FaultConfig slow;
  slow.bandwidth = 8 << 20;  // per connection
  ASSERT_TRUE(proxy_.Configure(slow).ok());
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--staged-cap", "32MiB", "--upload-concurrency", "2"}).ok()) << node.Log();
  auto cp = Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/big.bin", Url("capped/big.bin")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_GT(NodeMetric(node.Endpoint(), "shoal_writer_waits_total"), 0u);
  EXPECT_LE(NodeMetric(node.Endpoint(), "shoal_staged_bytes_peak"), cap);
  auto flush = Shoal({"flush", "--wait", "--timeout", "600", "--cache", node.Endpoint()});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_EQ(StoreSha256("capped/big.bin"), testing::PatternSha256(50, size));
}

// Tiny writes bounded by their count (--staged-writes), as larger ones are by their bytes: with
// the store down, 5 are taken and the 6th waits (it is slowed, not failed); once the store is
// back, uploads make room, the 6th is acknowledged, never more than 5 were staged at once, and
// all 6 arrive. (Before the bound, every write was taken at once whatever their number.)
TEST_F(WriteBackTest, TinyWritesWaitAtTheStagedWritesBound) {
  constexpr int kBound = 5;
  testing::TempDir tmp;
  for (int i = 0; i <= kBound; i++) {
    ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/t" + std::to_string(i), 80 + i, 100 + i));
  }
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--staged-writes", std::to_string(kBound)}).ok()) << node.Log();
  StoreDown();
  auto put = [&](int i) {
    return Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/t" + std::to_string(i),
                  Url("counted/t" + std::to_string(i))});
  };
  for (int i = 0; i < kBound; i++) {
    auto cp = put(i);
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
  }
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_staged_writes"), static_cast<uint64_t>(kBound));
  auto last = std::async(std::launch::async, [&] { return put(kBound); });
  ASSERT_TRUE(testing::Until([&] { return NodeMetric(node.Endpoint(), "shoal_write_count_waits_total") == 1; },
                             std::chrono::seconds(60)))
      << node.Log();
  EXPECT_EQ(last.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "the 6th write did not wait";
  StoreUp();
  auto cp = last.get();
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_staged_writes_peak"), static_cast<uint64_t>(kBound));
  auto flush = Shoal({"flush", "--wait", "--timeout", "300", "--cache", node.Endpoint()});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_staged_writes"), 0u);
  for (int i = 0; i <= kBound; i++) {
    EXPECT_EQ(StoreSha256("counted/t" + std::to_string(i)), testing::PatternSha256(80 + i, 100 + i)) << i;
  }
}

// A read pinned to the version a write was taken as (its local version, as a stat gave it while
// the write was pending) goes on after the write's upload ends: the reader names the version
// whole (ETag and size) and the node serves that version's chunks, which it still has, instead
// of the store's new ETag, which the reader could not know to follow. One node, so the read is
// not routed, as `shoal cat` through a Unix socket reads. (Before: "... is now version ..., not
// ...: it changed; read it again".)
TEST_F(WriteBackTest, AReadOfAWritesLocalVersionGoesOnAfterItsUpload) {
  const uint64_t size = (3ull << 20) + 5;
  testing::TempDir tmp;
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/a", 90, size));
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  StoreDown();
  auto cp = Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/a", Url("pinned/a")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto url = ObjectUrl::Parse(Url("pinned/a"));
  ASSERT_TRUE(url.ok());
  auto store = client::NewCacheStore(client::CacheConfig{node.Endpoint(), "", nullptr}, *url);
  auto local = store->Head(url->key);
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  ASSERT_TRUE(proto::IsLocalVersion(local->etag)) << local->etag;
  StoreUp();
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120))) << node.Log();
  auto now = store->Head(url->key);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  ASSERT_NE(now->etag, local->etag) << "the upload gave it the store's ETag";
  testing::Sha256Stream sha;
  Status st = DownloadStream(*store, *local, [&](const char* d, size_t n) {
    sha.Update(d, n);
    return Status::Ok();
  }, TransferOptions{});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sha.HexDigest(), testing::PatternSha256(90, size));
}

// A small tmpfs as the data directory (needs root, which CI has).
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& size) {
    fs::create_directories(dir_.path() + "/mnt");
    ok_ = ::mount("tmpfs", path().c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) ::umount2(path().c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  std::string path() const { return dir_.path() + "/mnt"; }

 private:
  testing::TempDir dir_;
  bool ok_ = false;
};

// The data directory's disk fills up: the write that does not fit is refused with a message
// saying so, what was acknowledged before stays readable and is uploaded once the store is
// back, and the node takes writes again once space is free.
TEST_F(WriteBackTest, AFullDiskRefusesTheWriteAndKeepsWhatWasAcknowledged) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  Tmpfs disk("40m");
  ASSERT_TRUE(disk.ok()) << "mount tmpfs: " << std::strerror(errno);
  testing::TempDir tmp;
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/a.bin", 60, 12ull << 20));
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/b.bin", 61, 48ull << 20));
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/c.bin", 62, 6ull << 20));
  StoreDown();
  {
    Shoald node;
    ASSERT_TRUE(node.Start(proxy_.port(), {"--capacity", "1GiB"}, disk.path() + "/data").ok()) << node.Log();
    auto a = Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/a.bin", Url("full/a.bin")});
    ASSERT_EQ(a.exit_code, 0) << a.err;
    auto b = Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/b.bin", Url("full/b.bin")});
    EXPECT_EQ(b.exit_code, 1);
    EXPECT_NE(b.err.find("disk full"), std::string::npos) << b.err;
    EXPECT_NE(b.err.find("nothing of it was acknowledged"), std::string::npos) << b.err;
    EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_errors_disk_full_total"), 1u);
    auto stat = Shoal({"stat", "--cache", node.Endpoint(), Url("full/a.bin")});
    EXPECT_NE(stat.out.find("state:         local"), std::string::npos) << stat.out << stat.err;
    EXPECT_EQ(CatSha256(Url("full/a.bin"), node.Endpoint()), testing::PatternSha256(60, 12ull << 20));
    // The refused write's chunks are gone: there is room again.
    auto c = Shoal({"cp", "-q", "--cache", node.Endpoint(), tmp.path() + "/c.bin", Url("full/c.bin")});
    EXPECT_EQ(c.exit_code, 0) << c.err;
    StoreUp();
    auto flush = Shoal({"flush", "--wait", "--timeout", "300", "--cache", node.Endpoint()});
    ASSERT_EQ(flush.exit_code, 0) << flush.err;
  }
  EXPECT_EQ(StoreSha256("full/a.bin"), testing::PatternSha256(60, 12ull << 20));
  EXPECT_EQ(StoreSha256("full/c.bin"), testing::PatternSha256(62, 6ull << 20));
  EXPECT_NE(StoreSha256("full/b.bin").find("NotFound"), std::string::npos);
}

// A checkpoint written as a tree and from a pipe: `stat` shows it local. While the store is
// down, `commit --durable` waits (and gives up after its timeout), and `commit` of everything
// under the prefix cannot list the store and says so (with --expect it can: see the cluster's
// restore test). Once the store is back, `commit` marks it, and the marker reaches the store
// after the objects, naming every one with the size and ETag the store has.
TEST_F(WriteBackTest, CommitMarksACheckpointCompleteAndItsMarkerReachesTheStoreLast) {
  testing::TempDir tmp;
  fs::create_directories(tmp.path() + "/step1/optim");
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/step1/model.pt", 70, (20ull << 20) + 3));
  ASSERT_TRUE(testing::WritePatternFile(tmp.path() + "/step1/optim/shard-0.pt", 71, 9ull << 20));
  std::ofstream(tmp.path() + "/step1/optim/empty.pt");  // an empty file is an empty object
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  StoreDown();
  const std::string prefix = Url("ckpt/step1/");
  auto cp = Shoal({"cp", "-r", "-q", "--cache", node.Endpoint(), tmp.path() + "/step1", prefix});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  std::string piped(3 << 20, '\0');
  for (size_t i = 0; i < piped.size(); i++) piped[i] = static_cast<char>(i * 7 + i / 4096);
  auto in = Shoal({"cp", "-q", "--cache", node.Endpoint(), "-", prefix + "stdin.bin"}, piped);
  ASSERT_EQ(in.exit_code, 0) << in.err;

  auto stat = Shoal({"stat", "--cache", node.Endpoint(), prefix + "model.pt"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_NE(stat.out.find("state:         local"), std::string::npos) << stat.out;
  auto durable = Shoal({"commit", "-q", "--durable", "--timeout", "2", "--cache", node.Endpoint(), prefix});
  EXPECT_EQ(durable.exit_code, 1);
  EXPECT_NE(durable.err.find("not durable"), std::string::npos) << durable.err;
  // "Everything under the prefix" cannot be listed while the store is down.
  auto down = Shoal({"commit", "-q", "--cache", node.Endpoint(), prefix});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("name the shards: `shoal commit --expect N`"), std::string::npos) << down.err;
  auto store = testing::Servers().azurite.Store(kBucket);
  EXPECT_TRUE(store->Head("ckpt/step1/_SHOAL_COMMITTED").status().IsNotFound());

  StoreUp();
  auto commit = Shoal({"commit", "-q", "--cache", node.Endpoint(), prefix});
  ASSERT_EQ(commit.exit_code, 0) << commit.err;
  EXPECT_NE(commit.out.find("committed 4 objects"), std::string::npos) << commit.out;
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120))) << node.Log();
  stat = Shoal({"stat", "--cache", node.Endpoint(), prefix + "model.pt"});
  EXPECT_NE(stat.out.find("state:         durable"), std::string::npos) << stat.out;
  auto latest = Shoal({"latest", Url("ckpt/")});  // straight on the store
  EXPECT_EQ(latest.out, prefix + "\n") << latest.err;

  std::string text = ReadMarker("ckpt/step1/");
  ASSERT_FALSE(text.empty()) << "no marker";
  auto marker = nlohmann::json::parse(text);
  EXPECT_EQ(marker["prefix"], prefix);
  ASSERT_EQ(marker["contents"].size(), 4u) << text;
  for (const auto& o : marker["contents"]) {
    auto head = store->Head("ckpt/step1/" + o["key"].get<std::string>());
    ASSERT_TRUE(head.ok()) << o.dump();
    EXPECT_EQ(o["size"].get<uint64_t>(), head->size) << o.dump();
    EXPECT_EQ(o["etag"].get<std::string>(), head->etag) << o.dump();
  }
  testing::Sha256Stream h;
  h.Update(piped.data(), piped.size());
  EXPECT_EQ(StoreSha256("ckpt/step1/stdin.bin"), h.HexDigest());
  EXPECT_EQ(StoreSha256("ckpt/step1/optim/empty.pt"), testing::PatternSha256(0, 0));
}

// Checkpoint steps as a restarted job finds them: step8 and step10 committed whole, step9
// committed and then a shard replaced, step11 with no marker. `shoal latest` (and the
// binding's latest_checkpoint) names step10 (by number, not by name: "step9" > "step10" as
// text), passes over step11 and says why; once a shard of step10 changes too, step8.
TEST_F(WriteBackTest, LatestNamesTheNewestStepWhoseMarkerStillMatchesItsObjects) {
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  const std::string run = Url("latest/run1/");
  auto put = [&](const std::string& key, const std::string& data) { PutThrough(node, run + key, data); };
  auto commit = [&](const std::string& step) {
    auto r = Shoal({"commit", "-q", "--cache", node.Endpoint(), run + step + "/"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  for (const std::string step : {"step8", "step9", "step10", "step11"}) {
    put(step + "/rank-0", step + " rank 0");
    put(step + "/rank-1", step + " rank 1");
    if (step != "step11") commit(step);
  }
  put("step9/rank-1", "step9 rank 1, written again after the commit");
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120)));

  auto latest = Shoal({"latest", "--cache", node.Endpoint(), run});
  ASSERT_EQ(latest.exit_code, 0) << latest.err;
  EXPECT_EQ(latest.out, run + "step10/\n");
  auto json = Shoal({"latest", "--json", "--cache", node.Endpoint(), run});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["url"], run + "step10/");
  EXPECT_EQ(j["objects"], 2);
  EXPECT_EQ(j["steps"], 4);
  ASSERT_EQ(j["skipped"].size(), 1u) << json.out;
  EXPECT_EQ(j["skipped"][0]["url"], run + "step11/");
  EXPECT_NE(j["skipped"][0]["reason"].get<std::string>().find("no _SHOAL_COMMITTED"), std::string::npos);

  // A shard of step10 replaced after its commit too.
  put("step10/rank-0", "step10 rank 0, again");
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120)));
  json = Shoal({"latest", "--json", "--cache", node.Endpoint(), run});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["url"], run + "step8/") << json.out;
  ASSERT_EQ(j["skipped"].size(), 3u) << json.out;
  EXPECT_EQ(j["skipped"][1]["url"], run + "step10/");
  EXPECT_NE(j["skipped"][1]["reason"].get<std::string>().find("rank-0 changed after the commit"), std::string::npos)
      << json.out;
  EXPECT_EQ(j["skipped"][2]["url"], run + "step9/");
  EXPECT_NE(j["skipped"][2]["reason"].get<std::string>().find("rank-1 changed after the commit"), std::string::npos)
      << json.out;
  auto py = testing::RunCommand({"/usr/bin/python3", "-c",
                                 "import shoal, sys; print(shoal.latest_checkpoint(sys.argv[1]))", run},
                                PythonEnv(node.Endpoint()));
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, run + "step8/\n");

  // Nothing complete under a prefix: exit 3, and the reason on stderr.
  auto none = Shoal({"latest", "--cache", node.Endpoint(), run + "step11/"});
  EXPECT_EQ(none.exit_code, 3) << none.err;
  EXPECT_EQ(none.out, "");
  EXPECT_NE(none.err.find("no complete checkpoint under " + run + "step11/"), std::string::npos) << none.err;
  py = testing::RunCommand({"/usr/bin/python3", "-c",
                            "import shoal, sys; print(shoal.latest_checkpoint(sys.argv[1]))", run + "step11/"},
                           PythonEnv(node.Endpoint()));
  EXPECT_EQ(py.out, "None\n") << py.err;
}

// Four ranks' shards: with rank 3's missing, `commit --expect 4` gives up after its timeout,
// names model-00003.pt, and writes no marker. Once rank 3 writes (while a second commit
// waits), the marker names exactly the four shards, not the other file under the prefix.
TEST_F(WriteBackTest, CommitExpectingShardsWaitsForEveryRankAndNamesTheMissingOnes) {
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  const std::string prefix = Url("ranks/step1/");
  auto put = [&](const std::string& key, const std::string& data) { PutThrough(node, prefix + key, data); };
  for (int rank = 0; rank < 3; rank++) put("model-0000" + std::to_string(rank) + ".pt", "shard " + std::to_string(rank));
  put("notes.txt", "not a shard");
  const std::vector<std::string> expect = {"commit", "--expect", "4", "--shard-name", "model-{rank:5}.pt",
                                           "--cache", node.Endpoint()};
  auto args = expect;
  args.insert(args.end(), {"--timeout", "2", prefix});
  auto early = Shoal(args);
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_NE(early.err.find("1 of 4 shards are missing under " + prefix + ": model-00003.pt; no marker written"),
            std::string::npos)
      << early.err;
  auto store = testing::Servers().azurite.Store(kBucket);
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120)));
  EXPECT_TRUE(store->Head("ranks/step1/_SHOAL_COMMITTED").status().IsNotFound());

  args = expect;
  args.insert(args.end(), {"--timeout", "120", prefix});
  CommandResult waited;
  std::thread rank0([&] { waited = Shoal(args); });
  put("model-00003.pt", "shard 3");
  rank0.join();
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_NE(waited.out.find("committed 4 objects"), std::string::npos) << waited.out;
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(120)));  // the marker follows the shards
  std::string text = ReadMarker("ranks/step1/");
  ASSERT_FALSE(text.empty()) << "no marker";
  auto marker = nlohmann::json::parse(text);
  EXPECT_EQ(marker["shards"], 4);
  std::vector<std::string> keys;
  for (const auto& o : marker["contents"]) keys.push_back(o["key"]);
  EXPECT_EQ(keys, (std::vector<std::string>{"model-00000.pt", "model-00001.pt", "model-00002.pt", "model-00003.pt"}));
  auto latest = Shoal({"latest", "--cache", node.Endpoint(), Url("ranks/")});
  EXPECT_EQ(latest.out, prefix + "\n") << latest.err;
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }

namespace shoal {
namespace {

// A write's metadata through a node into Azurite and into s3rver, each behind a fault proxy
// that first refuses every request: the node answers the metadata while the write is pending,
// still after kill -9 and a restart (it is in the journal), uploads the object with it once the
// store is back (single Put and multipart alike), and the store's own SDK reads it.
TEST_F(WriteBackTest, MetadataOfAWriteIsUploadedWithItAfterAKillNineAndTheSdkReadsIt) {
  testing::FaultProxy s3_proxy;
  ASSERT_TRUE(s3_proxy.Start(testing::Servers().s3rver.Endpoint()).ok());
  ObjectMeta meta;
  meta.content_type = "text/csv; charset=utf-8";
  meta.content_language = "en-GB";
  meta.content_disposition = "attachment; filename=\"rank 0.csv\"";
  meta.cache_control = "max-age=60, public";
  meta.user = {{"author", "Ada Lovelace"}, {"step", "1200"}};
  ObjectMeta plain;  // a write without metadata reads back as the stores' default
  plain.content_type = kDefaultContentType;
  const uint64_t chunk = 5ull << 20;  // S3's smallest part: the large object is 3 parts
  std::string large(2 * chunk + 1234, '\0');
  testing::PatternSource::Fill(5, 0, large.data(), large.size());
  struct Case {
    std::string sdk, url, key, body;
    ObjectMeta meta;
  };
  std::vector<Case> cases;
  for (std::string sdk : {"azure", "s3"}) {
    std::string base = std::string(sdk == "azure" ? "az" : "s3") + "://" + kBucket + "/meta/";
    cases.push_back({sdk, base + "small.csv", "meta/small.csv", "a,b\n1,2\n", meta});
    cases.push_back({sdk, base + "large.csv", "meta/large.csv", large, meta});
    cases.push_back({sdk, base + "plain.bin", "meta/plain.bin", "plain", ObjectMeta{}});
  }
  Shoald node;
  node.SetEnv(testing::Servers().s3rver.ClientEnv(s3_proxy.port()));
  ASSERT_TRUE(node.Start(proxy_.port(), {"--chunk-size", "5MiB"}).ok()) << node.Log();
  StoreDown();
  ASSERT_TRUE(s3_proxy.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  for (const auto& c : cases) {
    Status st = testing::PutThroughNode(node.Endpoint(), c.url, c.body, c.meta);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto expected = [&](const Case& c) { return c.meta.empty() ? plain : c.meta; };
  for (const auto& c : cases) {
    auto got = testing::MetaThroughNode(node.Endpoint(), c.url);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, expected(c)) << c.url << " while pending";
  }
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  EXPECT_EQ(Pending(node), cases.size());
  for (const auto& c : cases) {
    auto got = testing::MetaThroughNode(node.Endpoint(), c.url);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, expected(c)) << c.url << " after the restart";
  }
  StoreUp();
  ASSERT_TRUE(s3_proxy.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(300))) << node.Log();
  for (const auto& c : cases) {
    auto sdk = testing::SdkObjectMeta(c.sdk, kBucket, c.key, testing::ServersClientEnv());
    ASSERT_TRUE(sdk.ok()) << sdk.status().ToString();
    EXPECT_EQ(*sdk, expected(c)) << c.url << " as the " << c.sdk << " SDK reads it";
    auto through = testing::MetaThroughNode(node.Endpoint(), c.url);
    ASSERT_TRUE(through.ok()) << through.status().ToString();
    EXPECT_EQ(*through, expected(c)) << c.url << " once durable";
    // The client library's store over the node heads the same.
    auto url = ObjectUrl::Parse(c.url);
    ASSERT_TRUE(url.ok());
    auto head = client::NewCacheStore(client::CacheConfig{node.Endpoint(), "", nullptr}, *url)->Head(url->key);
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    ASSERT_NE(head->meta, nullptr);
    EXPECT_EQ(*head->meta, expected(c)) << c.url << " through the client library";
  }
  // A node that never saw the writes answers the metadata from the store's HEAD.
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  for (const auto& c : cases) {
    auto got = testing::MetaThroughNode(node.Endpoint(), c.url);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, expected(c)) << c.url << " from the store";
  }
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().s3rver.Store(kBucket), "meta/large.csv"),
            testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "meta/large.csv"));
}

// Metadata a store could not hold is refused before the body is read, and nothing is staged.
TEST_F(WriteBackTest, AWriteWithMetadataOneApiCannotHoldIsRefused) {
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port()).ok()) << node.Log();
  ObjectMeta meta;
  meta.user["my-key"] = "v";
  Status st = testing::PutThroughNode(node.Endpoint(), Url("meta/refused"), "x", meta);
  EXPECT_NE(st.message().find("400"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("my-key"), std::string::npos) << st.ToString();
  EXPECT_EQ(Pending(node), 0u);
}

// Files in a node's journal directory (its log: one, but for a moment in a rewrite).
uint64_t JournalFiles(const Shoald& node) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(node.DataDir() + "/journal")) n += e.is_regular_file();
  return n;
}

// 100,000 small writes through one node into a local-directory store, from 8 connections:
// once every one is durable, the journal holds no record of them, on disk or in memory (a
// durable write's record is removed, not kept), and a restart replays none.
TEST_F(WriteBackTest, AHundredThousandDurableWritesLeaveTheJournalAsItWas) {
  constexpr int kWriters = 8, kEach = 12500;
  testing::TempDir store;
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--no-fsync", "--chunk-size", "1MiB", "--capacity", "256MiB", "--max-chunks",
                                         "65536"})
                  .ok())
      << node.Log();
  ASSERT_EQ(JournalFiles(node), 1u);
  ASSERT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
  const uint64_t empty_log = NodeMetric(node.Endpoint(), "shoal_journal_bytes");  // its header alone
  ASSERT_GT(empty_log, 0u);
  ASSERT_TRUE(testing::ResetPeakRss(node.Pid()));
  const long rss_before = testing::ProcStatusKib(node.Pid(), "VmRSS");
  std::atomic<int> failed{0};
  std::string first_error;
  std::mutex error_mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; w++) {
    writers.emplace_back([&, w] {
      http::Client client;
      for (int i = 0; i < kEach; i++) {
        std::string url = "file://" + store.path() + "/w" + std::to_string(w) + "/" + std::to_string(i);
        std::string body = "object " + std::to_string(w) + "/" + std::to_string(i);
        http::Request req = proto::NodeRequest("PUT", node.Endpoint(), proto::Target(proto::kObjectPath,
                                                {{proto::kUrlParam, url}}), "");
        req.body = body;
        http::Response resp;
        Status st = client.Send(req, &resp);
        if (!st.ok() || resp.status != 201) {
          if (failed++ == 0) {
            std::lock_guard<std::mutex> lock(error_mu);
            first_error = st.ok() ? std::to_string(resp.status) + " " + resp.body : st.ToString();
          }
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(failed.load(), 0) << first_error;
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(900))) << node.Log();
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_uploads_total"), uint64_t{kWriters} * kEach);
  EXPECT_EQ(JournalFiles(node), 1u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
  // 200,000 entries (a record and its removal per write) went into the log; it was rewritten
  // with its live records each time it passed 1 MiB, so at most one batch of entries more.
  EXPECT_LE(NodeMetric(node.Endpoint(), "shoal_journal_bytes"), uint64_t{2} << 20);
  // What the node keeps per write is bounded by count: aliases, cached chunks (--max-chunks:
  // a chunk costs index memory whatever its size), and the settled writes it is home of.
  EXPECT_LE(NodeMetric(node.Endpoint(), "shoal_memory_aliases"), 65536u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_cache_chunks"), 65536u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_homed_entries"), 65536u);
  const long rss_peak = testing::ProcStatusKib(node.Pid(), "VmHWM"), rss_after = testing::ProcStatusKib(node.Pid(), "VmRSS");
  // Printed: RSS depends on the allocator and on how many writes were pending at once (see
  // bench/memory_bench.sh for RSS over rounds of writes, and docs/reliability.md).
  std::printf("node RSS over 100,000 writes: %ld KiB before, peak %ld KiB, %ld KiB after\n", rss_before, rss_peak,
              rss_after);
  std::ifstream last(store.path() + "/w7/12499");
  std::string text((std::istreambuf_iterator<char>(last)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "object 7/12499");

  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_bytes"), empty_log) << "a restart rewrites the log";
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_staged_objects"), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_store_put_requests_total"), 0u) << "a restart uploads nothing again";
}

// What one PUT through curl came to.
struct PutOutcome {
  std::string key;
  uint64_t seed = 0;
  bool acknowledged = false;  // answered 201
  bool body_sent = false;     // every byte of the body went out (the answer may still be lost)
};

// SIGTERM with 4 writers (PUT /v1/object, by Content-Length and chunked, paced so each is in
// flight for a while) and 6 readers (of objects not in the cache, fetched through a slow
// store, so they wait on fetches) in flight: shoald exits 0, and after a restart every write
// that was acknowledged is in the store byte-identical, and nothing else is but writes whose
// whole body was sent (their answer lost to the stop).
TEST_F(WriteBackTest, SigtermWithReadersAndWritersInFlightExitsZeroAndKeepsEveryAcknowledgedWrite) {
  constexpr int kWriters = 4, kReaders = 6;
  constexpr uint64_t kSize = (7ull << 20) / 2;  // 3.5 chunks of 1 MiB: a multipart upload
  testing::TempDir tmp;
  // The readers' objects, in the store only: each read through the node fetches one.
  constexpr int kReadObjects = 64;
  auto direct = testing::Servers().azurite.Store(kBucket);
  std::string read_body(kSize, '\0');
  testing::PatternSource::Fill(99, 0, read_body.data(), kSize);
  for (int i = 0; i < kReadObjects; i++) {
    ASSERT_TRUE(direct->PutObject("term/r" + std::to_string(i), read_body).ok());
  }
  Shoald node;
  // Once `slow` exists, the next journal fsync takes 90 s: the stop finds a writer in its
  // Finish, on the serve pool, for longer than shoald used to wait for one (3000 sleeps of
  // 10 ms, 30 s or a little more); the other writers queue behind it. The store answers
  // after 3 s, so readers wait on fetches (on the event loop, for a chunk's first bytes) and
  // uploads are in flight.
  const std::string slow = tmp.path() + "/slow";
  node.SetEnv({{"LD_PRELOAD", testing::FaultFsLibrary()},
               {"SHOAL_FAULTFS_SLOW_FSYNC", "/journal/:90000"},
               {"SHOAL_FAULTFS_SLOW_FSYNC_ONCE", slow}});
  const std::vector<std::string> flags = {"--chunk-size", "1MiB", "--replicas", "1", "--memory-cache", "0"};
  ASSERT_TRUE(node.Start(proxy_.port(), flags).ok()) << node.Log();
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.latency_ms = 3000}).ok());
  const std::string endpoint = node.Endpoint();

  std::atomic<bool> stop{false};
  std::atomic<int> acks{0};
  std::mutex mu;
  std::vector<PutOutcome> outcomes;  // guarded by mu
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; w++) {
    threads.emplace_back([&, w] {
      for (int i = 0; !stop; i++) {
        PutOutcome o;
        o.key = "term/w" + std::to_string(w) + "-" + std::to_string(i);
        o.seed = 1000 * (w + 1) + i;
        std::string file = tmp.path() + "/w" + std::to_string(w);
        ASSERT_TRUE(testing::WritePatternFile(file, o.seed, kSize));
        std::vector<std::string> cmd = {"curl", "-sS", "--max-time", "120", "--limit-rate", "4M", "-o", "/dev/null",
                                        "-w", "%{http_code} %{size_upload}", "-X", "PUT", "--data-binary", "@" + file,
                                        "http://" + endpoint + "/v1/object?url=" + UriEncode(Url(o.key), false)};
        if (w % 2 == 1) cmd.insert(cmd.begin() + 1, {"-H", "Transfer-Encoding: chunked"});
        auto r = testing::RunCommand(cmd);
        std::istringstream answer(r.out);
        int code = 0;
        uint64_t sent = 0;
        answer >> code >> sent;
        o.acknowledged = code == 201;
        o.body_sent = sent >= kSize;
        acks += o.acknowledged;
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back(o);
      }
    });
  }
  std::atomic<int> reads_ok{0}, next_read{0};
  for (int r = 0; r < kReaders; r++) {
    threads.emplace_back([&] {
      for (int i = next_read++; !stop && i < kReadObjects; i = next_read++) {
        std::string url = Url("term/r" + std::to_string(i));
        auto got = testing::RunCommand({"curl", "-sS", "-f", "--max-time", "120", "-o", "/dev/null",
                                        "http://" + endpoint + "/v1/object?url=" + UriEncode(url, false)});
        reads_ok += got.exit_code == 0;
      }
    });
  }
  // Mid-flight: a few writes acknowledged, the writers and readers busy with the next ones,
  // and a writer in its slow journal fsync (the shim removed `slow` as it began).
  ASSERT_TRUE(Until([&] { return acks >= 2 * kWriters; }, std::chrono::seconds(300))) << node.Log();
  { std::ofstream(slow).put('1'); }
  ASSERT_TRUE(Until([&] { return !fs::exists(slow); }, std::chrono::seconds(60))) << node.Log();
  stop = true;
  int exit_code = node.Terminate(std::chrono::seconds(180));
  for (auto& t : threads) t.join();
  EXPECT_EQ(exit_code, 0) << node.Log();

  // Restarted on the same data directory: the journaled writes are uploaded.
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(300))) << node.Log();
  auto listed = ListAll(*direct, "term/w");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::set<std::string> in_store;
  for (const auto& o : *listed) in_store.insert(o.key);
  int acknowledged = 0, present = 0, unacknowledged_present = 0;
  for (const auto& o : outcomes) {
    acknowledged += o.acknowledged;
    if (!in_store.count(o.key)) {
      EXPECT_FALSE(o.acknowledged) << o.key << " was acknowledged and is not in the store";
      continue;
    }
    present++;
    EXPECT_EQ(StoreSha256(o.key), testing::PatternSha256(o.seed, kSize)) << o.key;
    if (!o.acknowledged) {
      unacknowledged_present++;
      EXPECT_TRUE(o.body_sent) << o.key << " is in the store though its body was not sent whole";
    }
  }
  EXPECT_EQ(present, static_cast<int>(in_store.size())) << "the store holds objects no writer wrote";
  EXPECT_GE(acknowledged, 2 * kWriters);
  EXPECT_EQ(present - unacknowledged_present, acknowledged);
  std::printf("writes: %zu attempted, %d acknowledged, %d in the store (%d of them not acknowledged, their answer "
              "lost to the stop); %d reads completed\n",
              outcomes.size(), acknowledged, present, unacknowledged_present, reads_ok.load());
}

// kill -9 twice in the middle of an acknowledged write's multipart upload to S3 (s3rver,
// behind a slow proxy): the journal names the upload, so each restarted node resumes it
// instead of beginning another. Once the write is durable, s3rver holds no open upload (its
// uploads directory: s3rver answers neither ListMultipartUploads nor AbortMultipartUpload)
// and the object is byte-identical.
TEST_F(WriteBackTest, KillNineMidS3MultipartUploadLeavesNoOpenUpload) {
  const uint64_t size = 48ull << 20;  // 10 parts of 5 MiB
  testing::TempDir tmp;
  std::string file = tmp.path() + "/obj.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 47, size));
  const std::string key = "kill9s3/obj.bin";
  const std::string url = "s3://" + std::string(kBucket) + "/" + key;
  auto& s3rver = testing::Servers().s3rver;
  ASSERT_EQ(s3rver.OpenUploads(kBucket), 0);
  testing::FaultProxy slow;
  ASSERT_TRUE(slow.Start(s3rver.Endpoint(), testing::FaultConfig{.bandwidth = 4ull << 20}).ok());
  Shoald node;
  node.SetEnv(s3rver.ClientEnv(slow.port()));
  ASSERT_TRUE(node.Start(proxy_.port(), {"--chunk-size", "5MiB", "--replicas", "1", "--upload-concurrency", "2"}).ok())
      << node.Log();
  auto cp = testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", node.Endpoint(), file, url},
                                testing::ServersClientEnv());
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  for (uint64_t mib : {10, 20}) {  // parts in the store, the commit not yet
    ASSERT_TRUE(Until([&] {
      uint64_t put = NodeMetric(node.Endpoint(), "shoal_store_put_bytes_total");
      return put != UINT64_MAX && put >= (mib << 20);
    })) << node.Log();
    ASSERT_EQ(s3rver.OpenUploads(kBucket), 1) << "the upload in progress, where s3rver keeps it (so the 0s here count)";
    ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
    ASSERT_EQ(Pending(node), 1u) << node.Log();
  }
  auto flush = testing::RunCommand({testing::ShoalBinary(), "flush", "--wait", "--timeout", "300", "--cache",
                                    node.Endpoint(), url}, testing::ServersClientEnv());
  ASSERT_EQ(flush.exit_code, 0) << flush.err << node.Log();
  EXPECT_EQ(testing::ObjectSha256(*s3rver.Store(kBucket), key), testing::PatternSha256(47, size));
  EXPECT_EQ(s3rver.OpenUploads(kBucket), 0) << "a multipart upload begun before a kill -9 was left open";
}

// Waits until `proxy` has no request forwarded to its store whose answer has not ended: what
// the store holds then stays as it is while the proxy refuses everything (error_rate 1).
bool StoreSettled(testing::FaultProxy& proxy) {
  return Until([&] {
    auto stats = proxy.Stats();
    return stats.ok() && stats->in_flight == 0;
  });
}

// Starts `node` (parts of `chunk` bytes, two at a time), writes `file` to `url` through it, and
// once `after` bytes were uploaded has `store` (the proxy in front of the store) refuse
// everything, waits until nothing is on its way to the store, and kills the node (-9).
void WriteAndCrashMidUpload(Shoald& node, int proxy_port, testing::FaultProxy& store, uint64_t chunk,
                            const std::string& file, const std::string& url, uint64_t after) {
  ASSERT_TRUE(node.Start(proxy_port, {"--chunk-size", std::to_string(chunk), "--replicas", "1",
                                      "--upload-concurrency", "2"}).ok())
      << node.Log();
  auto cp = Shoal({"cp", "-q", "--cache", node.Endpoint(), file, url});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  ASSERT_TRUE(Until([&] {
    uint64_t put = NodeMetric(node.Endpoint(), "shoal_store_put_bytes_total");
    return put != UINT64_MAX && put >= after;
  })) << node.Log();
  ASSERT_TRUE(store.Configure(testing::FaultConfig{.error_rate = 1.0}).ok());
  ASSERT_TRUE(StoreSettled(store));
  node.Crash();
}

// kill -9 in the middle of an acknowledged write's multipart upload to S3 (s3rver, behind the
// counting proxy) once some parts are in the store and none is on its way there. Then one of
// the parts kept is changed behind the node's back (other bytes, same size: its ETag is no
// longer the chunk's MD5). The restarted node asks for the upload's parts (ListParts) and sends
// only those the store lacks and the changed one: the part bytes that reach the store after
// the restart are exactly the object's size minus the matching parts it held, and the object is
// byte-identical. Before ListParts was asked, every part was sent again.
TEST_F(WriteBackTest, ResumedS3UploadSendsOnlyThePartsTheStoreLacks) {
  const uint64_t chunk = 5ull << 20;
  const uint64_t size = 10 * chunk + 12345;  // 11 parts, the last one short
  const uint64_t parts = 11;
  testing::TempDir tmp;
  std::string file = tmp.path() + "/obj.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 48, size));
  const std::string key = "resume-s3/obj.bin";
  const std::string url = "s3://" + std::string(kBucket) + "/" + key;
  auto& s3rver = testing::Servers().s3rver;
  testing::FaultProxy store;
  const testing::FaultConfig slow{.bandwidth = 4ull << 20};
  ASSERT_TRUE(store.Start(s3rver.Endpoint(), slow).ok());
  Shoald node;
  node.SetEnv(s3rver.ClientEnv(store.port()));
  WriteAndCrashMidUpload(node, proxy_.port(), store, chunk, file, url, 4 * chunk);
  if (HasFatalFailure()) return;

  // What s3rver holds of the upload: whole parts (those with their .md5).
  std::vector<fs::path> uploads;
  for (const auto& e : fs::directory_iterator(s3rver.UploadsDir(kBucket))) uploads.push_back(e.path());
  ASSERT_EQ(uploads.size(), 1u) << "one open upload of the write";
  std::map<uint64_t, uint64_t> held;  // part number -> size
  for (const auto& e : fs::directory_iterator(uploads[0])) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") == std::string::npos && fs::exists(e.path().string() + ".md5")) {
      held[std::stoull(name)] = fs::file_size(e.path());
    }
  }
  ASSERT_GE(held.size(), 4u);
  ASSERT_LT(held.size(), parts);
  uint64_t held_bytes = 0;
  for (const auto& [number, bytes] : held) held_bytes += bytes;
  // Part 1 changed in the store: same size, other bytes, its ETag theirs.
  const std::string changed_path = uploads[0].string() + "/1";
  ASSERT_EQ(held.count(1), 1u);
  const std::string other(held[1], 'x');
  std::ofstream(changed_path, std::ios::binary | std::ios::trunc) << other;
  std::ofstream(changed_path + ".md5", std::ios::trunc) << HexEncode(Md5(other));

  ASSERT_TRUE(store.Reset().ok());
  ASSERT_TRUE(store.Configure(testing::FaultConfig{}).ok());
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  auto flush = testing::RunCommand({testing::ShoalBinary(), "flush", "--wait", "--timeout", "300", "--cache",
                                    node.Endpoint(), url}, testing::ServersClientEnv());
  ASSERT_EQ(flush.exit_code, 0) << flush.err << node.Log();

  auto stats = store.Stats();
  ASSERT_TRUE(stats.ok());
  const uint64_t reused = held.size() - 1;
  EXPECT_EQ(stats->part_body_bytes, size - (held_bytes - chunk)) << node.Log();
  EXPECT_EQ(stats->part_requests, parts - reused);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_upload_parts_reused_total"), reused);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_upload_reused_bytes_total"), held_bytes - chunk);
  EXPECT_EQ(testing::ObjectSha256(*s3rver.Store(kBucket), key), testing::PatternSha256(48, size));
  EXPECT_EQ(s3rver.OpenUploads(kBucket), 0);
}

// The same on Azure (Azurite): the blocks a node staged before kill -9 stay in the store,
// uncommitted, under block ids that its journal names (the upload's nonce and the part's
// index). One of them is staged again behind the node's back with another size. The restarted
// node asks for the uncommitted blocks (Get Block List) and sends only the parts missing and
// the changed one, then commits every part: the part bytes that reach the store after the
// restart are exactly the object's size minus the matching blocks, the blob is byte-identical
// with one committed block per part. Before Get Block List was asked, every block was sent again.
TEST_F(WriteBackTest, ResumedAzureUploadReusesTheBlocksAlreadyStaged) {
  const uint64_t chunk = 4ull << 20;
  const uint64_t size = 10 * chunk + 777;  // 11 parts, the last one short
  const uint64_t parts = 11;
  testing::TempDir tmp;
  std::string file = tmp.path() + "/obj.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 49, size));
  const std::string key = "resume-az/obj.bin";
  const std::string sdk = testing::SourceDir() + "/tests/sdk_interop.js";
  ASSERT_TRUE(proxy_.Configure(testing::FaultConfig{.bandwidth = 4ull << 20}).ok());
  Shoald node;
  WriteAndCrashMidUpload(node, proxy_.port(), proxy_, chunk, file, Url(key), 4 * chunk);
  if (HasFatalFailure()) return;

  auto listed = testing::RunCommand({"node", sdk, "azure-uncommitted", kBucket, key}, testing::ServersClientEnv());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto blocks = nlohmann::json::parse(listed.out);
  ASSERT_GE(blocks.size(), 4u);
  ASSERT_LT(blocks.size(), parts);
  uint64_t held_bytes = 0;
  for (const auto& b : blocks) held_bytes += b["size"].get<uint64_t>();
  const std::string changed = blocks[0]["name"];
  const uint64_t changed_size = blocks[0]["size"];
  auto stage = testing::RunCommand({"node", sdk, "azure-stage", kBucket, key, changed, "1000"},
                                   testing::ServersClientEnv());
  ASSERT_EQ(stage.exit_code, 0) << stage.err;

  ASSERT_TRUE(proxy_.Reset().ok());
  StoreUp();
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  ASSERT_TRUE(testing::WaitUntilDurable(node.Endpoint(), std::chrono::seconds(300))) << node.Log();

  auto stats = proxy_.Stats();
  ASSERT_TRUE(stats.ok());
  const uint64_t reused = blocks.size() - 1;
  EXPECT_EQ(stats->part_body_bytes, size - (held_bytes - changed_size)) << node.Log();
  EXPECT_EQ(stats->part_requests, parts - reused);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_upload_parts_reused_total"), reused);
  EXPECT_EQ(StoreSha256(key), testing::PatternSha256(49, size));
  auto committed = testing::RunCommand({"node", sdk, "azure-blocklist", kBucket, key}, testing::ServersClientEnv());
  ASSERT_EQ(committed.exit_code, 0) << committed.err;
  auto ids = nlohmann::json::parse(committed.out);
  EXPECT_EQ(ids.size(), parts);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "a block was committed twice";
}

// A power cut right after writes were acknowledged, the store down so none is uploaded yet.
// The fault shim records what each fsync and fdatasync made durable (a file's bytes, a
// directory's entries: so creations and renames count only once their directory is synced);
// after kill -9 the node's directory is rebuilt from those records alone, as a disk that lost
// everything else would have it (testing::PowerCutView). A node started on what is left has
// every acknowledged write pending and uploads each byte-identical.
TEST_F(WriteBackTest, PowerCutAfterTheAcknowledgementKeepsEveryAcknowledgedWrite) {
  const std::vector<uint64_t> sizes = {1000, 1ull << 20, (5ull << 20) / 2, 5ull << 20, 0};
  testing::TempDir tmp, records, after;
  Shoald node;
  const std::string root = node.dir();  // the node's data directory is made in it
  node.SetEnv({{"LD_PRELOAD", testing::FaultFsLibrary()},
               {"SHOAL_FAULTFS_DURABLE", root + ":" + records.path() + "/synced"}});
  const std::vector<std::string> flags = {"--chunk-size", "1MiB", "--replicas", "1"};
  ASSERT_TRUE(node.Start(proxy_.port(), flags).ok()) << node.Log();
  StoreDown();
  for (size_t i = 0; i < sizes.size(); i++) {
    std::string file = tmp.path() + "/f" + std::to_string(i);
    ASSERT_TRUE(testing::WritePatternFile(file, 60 + i, sizes[i]));
    auto cp = Shoal({"cp", "-q", "--cache", node.Endpoint(), file, Url("cut/f" + std::to_string(i))});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
  }
  node.Crash();
  Status view = testing::PowerCutView(root, records.path() + "/synced", after.path() + "/node");
  ASSERT_TRUE(view.ok()) << view.ToString();
  Shoald restarted;  // the store still down: every write is still pending when counted
  ASSERT_TRUE(restarted.Start(proxy_.port(), flags, after.path() + "/node/data").ok()) << restarted.Log();
  EXPECT_EQ(Pending(restarted), sizes.size()) << restarted.Log();
  StoreUp();
  ASSERT_TRUE(testing::WaitUntilDurable(restarted.Endpoint(), std::chrono::seconds(120))) << restarted.Log();
  for (size_t i = 0; i < sizes.size(); i++) {
    EXPECT_EQ(StoreSha256("cut/f" + std::to_string(i)), testing::PatternSha256(60 + i, sizes[i])) << sizes[i];
  }
}

// The disk fails to write a chunk back and the kernel reports it only to the descriptor that
// wrote the chunk (the shim's SHOAL_FAULTFS_LOST_WRITEBACK): the write is refused, saying
// nothing of it was acknowledged, and nothing of it is pending. The node fsyncs each pinned
// chunk on that descriptor; one it opened again to sync would be told all is well.
TEST_F(WriteBackTest, AChunkWriteBackErrorRefusesTheWrite) {
  testing::TempDir tmp;
  std::string file = tmp.path() + "/lost.bin";
  ASSERT_TRUE(testing::WritePatternFile(file, 71, 3ull << 20));
  Shoald node;
  node.SetEnv({{"LD_PRELOAD", testing::FaultFsLibrary()}, {"SHOAL_FAULTFS_LOST_WRITEBACK", "/chunks/"}});
  ASSERT_TRUE(node.Start(proxy_.port(), {"--chunk-size", "1MiB", "--replicas", "1"}).ok()) << node.Log();
  auto cp = Shoal({"cp", "-q", "--cache", node.Endpoint(), file, Url("lost/obj.bin")});
  EXPECT_NE(cp.exit_code, 0);
  EXPECT_NE(cp.err.find("nothing of it was acknowledged"), std::string::npos) << cp.err;
  EXPECT_NE(cp.err.find("Input/output error"), std::string::npos) << cp.err;
  EXPECT_EQ(Pending(node), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
}

}  // namespace
}  // namespace shoal
