// Write-back through shoald (a separate process) into a real Azurite behind the fault proxy:
// crashes at many points of a 1 GiB upload, a failing store, a slow store against the
// staged-bytes cap, a full disk, and checkpoint commits.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "common/strings.h"
#include "net/http_client.h"
#include "net/node_protocol.h"
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
  auto cp = [&] { return Shoal({"cp", "-q", "--cache", node.Endpoint(), file, url}); };

  // 1. During the write, before the acknowledgement: the writer is told nothing was kept.
  CommandResult first;
  std::thread writer([&] { first = cp(); });
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
  auto acked = cp();
  ASSERT_EQ(acked.exit_code, 0) << acked.err;
  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  EXPECT_EQ(Pending(node), 1u);
  EXPECT_EQ(CatSha256(url, node.Endpoint()), want) << "reads during the upload come from the node's disk";

  // 3-9. During the upload, after more and more of it reached the store.
  int kills = 2;
  for (uint64_t mib : {32, 96, 192, 320, 448, 640, 896}) {
    ASSERT_TRUE(Until([&] {
      uint64_t put = NodeMetric(node.Endpoint(), "shoal_store_put_bytes_total");
      return put != UINT64_MAX && put >= (mib << 20);
    })) << "upload stalled before " << mib << " MiB; log:\n" << node.Log();
    ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
    kills++;
    ASSERT_EQ(Pending(node), 1u) << "the acknowledged write was lost after kill " << kills;
  }

  // 10. Once every part is in the store: at, or just around, the commit.
  ASSERT_TRUE(Until([&] {
    uint64_t put = NodeMetric(node.Endpoint(), "shoal_store_put_bytes_total");
    return put != UINT64_MAX && put >= size;
  })) << node.Log();
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
  EXPECT_NE(status.out.find("account az@east"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("account az@west"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find(std::to_string(injected->injected_errors) + " answered 429/503"), std::string::npos)
      << status.out;
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

// A checkpoint written as a tree and from a pipe: `stat` shows it local, `commit` refuses to
// mark it complete while the store is down, and once it is durable writes _SHOAL_COMMITTED
// naming every object with the size and ETag the store has.
TEST_F(WriteBackTest, CommitMarksACheckpointCompleteOnlyOnceEveryObjectIsDurable) {
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
  auto early = Shoal({"commit", "-q", "--timeout", "2", "--cache", node.Endpoint(), prefix});
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_NE(early.err.find("not durable"), std::string::npos) << early.err;
  auto store = testing::Servers().azurite.Store(kBucket);
  EXPECT_TRUE(store->Head("ckpt/step1/_SHOAL_COMMITTED").status().IsNotFound());

  StoreUp();
  auto commit = Shoal({"commit", "-q", "--cache", node.Endpoint(), prefix});
  ASSERT_EQ(commit.exit_code, 0) << commit.err;
  EXPECT_NE(commit.out.find("committed 4 objects"), std::string::npos) << commit.out;
  stat = Shoal({"stat", "--cache", node.Endpoint(), prefix + "model.pt"});
  EXPECT_NE(stat.out.find("state:         durable"), std::string::npos) << stat.out;

  std::string text;
  ASSERT_TRUE(store->Get("ckpt/step1/_SHOAL_COMMITTED", {}, [&](const char* d, size_t n) {
    text.append(d, n);
    return Status::Ok();
  }).ok());
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

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }

namespace shoal {
namespace {

// Journal records in a node's data directory, as files.
uint64_t JournalFiles(const Shoald& node) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(node.DataDir() + "/journal")) n += e.path().extension() == ".json";
  return n;
}

// 100,000 small writes through one node into a local-directory store, from 8 connections:
// once every one is durable, the journal holds no record of them, on disk or in memory (a
// durable write's record is removed, not kept), and a restart replays none.
TEST_F(WriteBackTest, AHundredThousandDurableWritesLeaveTheJournalAsItWas) {
  constexpr int kWriters = 8, kEach = 12500;
  testing::TempDir store;
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--no-fsync", "--chunk-size", "1MiB", "--capacity", "256MiB"}).ok())
      << node.Log();
  ASSERT_EQ(JournalFiles(node), 0u);
  ASSERT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
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
  EXPECT_EQ(JournalFiles(node), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
  EXPECT_LE(NodeMetric(node.Endpoint(), "shoal_memory_aliases"), 65536u);
  std::ifstream last(store.path() + "/w7/12499");
  std::string text((std::istreambuf_iterator<char>(last)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "object 7/12499");

  ASSERT_TRUE(node.Restart(proxy_.port()).ok()) << node.Log();
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_journal_records"), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_staged_objects"), 0u);
  EXPECT_EQ(NodeMetric(node.Endpoint(), "shoal_store_put_requests_total"), 0u) << "a restart uploads nothing again";
}

}  // namespace
}  // namespace shoal
