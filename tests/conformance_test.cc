// One suite, run over every ObjectStore: the local directory, Azure Blob (a real Azurite),
// S3 (a real s3rver), and both remote stores again behind the fault proxy injecting 20% 503s
// and dropped connections. Each test uses its own key prefix on shared servers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "store/azure/azure_store.h"
#include "store/local/local_store.h"
#include "store/s3/s3_store.h"
#include "store/object_store.h"
#include "store/transfer.h"
#include "testing/data.h"
#include "testing/servers_environment.h"

namespace shoal {
namespace {

using testing::Azurite;
using testing::FaultConfig;
using testing::FaultProxy;
using testing::S3rver;

constexpr const char* kBucket = "conformance";

// Servers shared by every test of this binary, started once.
// Beside the shared Azurite and s3rver: a local root and a fault proxy in front of each.
struct World {
  testing::TempDir local_root;
  Azurite& azurite = testing::Servers().azurite;
  S3rver& s3rver = testing::Servers().s3rver;
  FaultProxy azure_proxy;
  FaultProxy s3_proxy;
};
World* world = nullptr;

FaultConfig Faults() {
  FaultConfig f;
  f.error_rate = 0.2;
  f.error_codes = "503";
  f.drop_rate = 0.05;
  return f;
}

class WorldEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    world = new World();
    Status st = world->azure_proxy.Start("http://127.0.0.1:" + std::to_string(world->azurite.port()), Faults());
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = world->s3_proxy.Start(world->s3rver.Endpoint(), Faults());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override {
    delete world;
    world = nullptr;
  }
};

// The size of the large-object test: 256 MiB (32 parts of 8 MiB), so that every backend's
// multipart path, its retries and the watcher for partial objects are exercised without
// moving gigabytes through the JavaScript servers on every `make test`.
// SHOAL_CONFORMANCE_LARGE=1GiB (or 64MiB for quick runs) sets it.
uint64_t LargeSize() {
  const char* s = std::getenv("SHOAL_CONFORMANCE_LARGE");
  if (s != nullptr) {
    auto r = ParseSize(s);
    if (r.ok()) return r.value();
  }
  return 256ull << 20;
}

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& b = GetParam();
    if (b == "local") store_ = NewLocalStore(world->local_root.path());
    if (b == "azure") store_ = world->azurite.Store(kBucket);
    if (b == "s3") store_ = world->s3rver.Store(kBucket);
    if (b == "azure_faults") {
      store_ = world->azurite.Store(kBucket, world->azure_proxy.port());
      proxy_ = &world->azure_proxy;
    }
    if (b == "s3_faults") {
      store_ = world->s3rver.Store(kBucket, world->s3_proxy.port());
      proxy_ = &world->s3_proxy;
    }
    ASSERT_NE(store_, nullptr);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = b + "/" + info->name();
    prefix_ = prefix_.substr(0, prefix_.find('/', b.size() + 1)) + "/";
    if (proxy_ != nullptr) {
      ASSERT_TRUE(proxy_->Reset().ok());
    }
  }

  // Under faults, the test only proves something if faults actually happened.
  void ExpectFaultsInjected() {
    if (proxy_ == nullptr) return;
    auto stats = proxy_->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_GT(stats->injected_errors, 0u) << "no 503 was injected: the test proved nothing";
  }

  std::string ReadAll(const std::string& key, ReadOptions ro = {}) {
    std::string out;
    Status st = store_->Get(key, ro, [&](const char* d, size_t n) {
      out.append(d, n);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  std::shared_ptr<ObjectStore> store_;
  FaultProxy* proxy_ = nullptr;
  std::string prefix_;
};

TEST_P(ConformanceTest, SmallObjectRoundTrips) {
  std::string key = prefix_ + "small.txt";
  auto put = store_->PutObject(key, "hello, shoal");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, 12u);
  EXPECT_FALSE(put->etag.empty());
  EXPECT_EQ(ReadAll(key), "hello, shoal");
}

TEST_P(ConformanceTest, EmptyObjectRoundTrips) {
  std::string key = prefix_ + "empty";
  ASSERT_TRUE(store_->PutObject(key, "").ok());
  auto head = store_->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 0u);
  EXPECT_EQ(ReadAll(key), "");
  ListOptions lo;
  lo.prefix = prefix_;
  auto page = store_->List(lo);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].size, 0u);
}

TEST_P(ConformanceTest, KeysWithSpacesAndNonAsciiRoundTrip) {
  std::vector<std::string> keys = {
      prefix_ + "dir with spaces/file name.bin",
      prefix_ + "ünïcødé/ключ/日本語.txt",
      prefix_ + "odd+chars=&$,;@!'()~%20.dat",
  };
  for (const auto& k : keys) {
    auto put = store_->PutObject(k, "content of " + k);
    ASSERT_TRUE(put.ok()) << k << ": " << put.status().ToString();
  }
  for (const auto& k : keys) {
    EXPECT_EQ(ReadAll(k), "content of " + k);
    auto head = store_->Head(k);
    ASSERT_TRUE(head.ok()) << k;
    EXPECT_EQ(head->size, ("content of " + k).size());
  }
  ListOptions lo;
  lo.prefix = prefix_;
  auto page = store_->List(lo);
  ASSERT_TRUE(page.ok());
  std::vector<std::string> listed;
  for (auto& o : page->objects) listed.push_back(o.key);
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(listed, sorted);
}

TEST_P(ConformanceTest, RangedReadsReturnExactlyTheRange) {
  std::string data(100000, '\0');
  testing::PatternSource::Fill(7, 0, data.data(), data.size());
  std::string key = prefix_ + "ranged";
  ASSERT_TRUE(store_->PutObject(key, data).ok());
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 1}, {1, 99999}, {5000, 12345}, {99999, 1}}) {
    ReadOptions ro;
    ro.offset = off;
    ro.length = len;
    std::string got = ReadAll(key, ro);
    EXPECT_EQ(got.size(), len) << off << "+" << len;
    EXPECT_TRUE(got == data.substr(off, len)) << off << "+" << len;
  }
  ReadOptions tail;
  tail.offset = 90000;
  EXPECT_TRUE(ReadAll(key, tail) == data.substr(90000));
}

TEST_P(ConformanceTest, HeadGivesSizeEtagAndLastModified) {
  std::string key = prefix_ + "head";
  std::time_t before = std::time(nullptr) - 5;
  auto put = store_->PutObject(key, std::string(4321, 'x'));
  ASSERT_TRUE(put.ok());
  auto head = store_->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 4321u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_GE(head->last_modified, before);
  EXPECT_LE(head->last_modified, std::time(nullptr) + 5);
}

// Every field both APIs keep, with values HTTP must carry untouched (quotes, commas, '=').
ObjectMeta FullMeta() {
  ObjectMeta m;
  m.content_type = "text/csv; charset=utf-8";
  m.content_encoding = "identity";
  m.content_language = "en-GB";
  m.content_disposition = "attachment; filename=\"report 2026.csv\"";
  m.cache_control = "max-age=60, public";
  m.user = {{"author", "Ada Lovelace"}, {"run_id", "r-42=x;y"}, {"_v2", "1"}};
  return m;
}

TEST_P(ConformanceTest, MetadataOfSingleAndMultipartPutsHeadsBackByteExact) {
  const ObjectMeta meta = FullMeta();
  std::string single = prefix_ + "single.csv";
  ASSERT_TRUE(store_->PutObject(single, "a,b\n", meta).ok());
  // Two parts, the first as large as the backend's smallest (S3: 5 MiB).
  std::string multi = prefix_ + "multi.csv";
  uint64_t first = std::max<uint64_t>(store_->Limits().min_part_size, 1000);
  std::string part0(first, 'p');
  auto upload = store_->BeginUpload(multi, meta);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  ASSERT_TRUE((*upload)->PutPart(0, 0, part0).ok());
  ASSERT_TRUE((*upload)->PutPart(1, first, "tail").ok());
  ASSERT_TRUE((*upload)->Complete(2).ok());
  for (const auto& key : {single, multi}) {
    auto head = store_->Head(key);
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    ASSERT_NE(head->meta, nullptr) << key;
    EXPECT_EQ(*head->meta, meta) << key;
    // What the backend's own SDK reads: the same headers and metadata.
    if (GetParam() == "azure" || GetParam() == "s3") {
      auto sdk = testing::SdkObjectMeta(GetParam(), kBucket, key, testing::ServersClientEnv());
      ASSERT_TRUE(sdk.ok()) << sdk.status().ToString();
      EXPECT_EQ(*sdk, meta) << key;
    }
  }
  EXPECT_EQ(ReadAll(single), "a,b\n");
}

TEST_P(ConformanceTest, AnObjectWrittenWithoutMetadataHeadsAsTheDefaultContentType) {
  std::string key = prefix_ + "plain";
  ASSERT_TRUE(store_->PutObject(key, "x").ok());
  auto head = store_->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  ASSERT_NE(head->meta, nullptr);
  ObjectMeta expected;
  expected.content_type = kDefaultContentType;
  EXPECT_EQ(*head->meta, expected);
}

TEST_P(ConformanceTest, MetadataOneApiCannotHoldIsRefusedBeforeAnyRequest) {
  ObjectMeta meta;
  meta.user["my-key"] = "v";  // fine for S3, not an identifier for Azure
  std::string key = prefix_ + "refused";
  uint64_t requests = store_->stats().requests.load();
  auto put = store_->PutObject(key, "x", meta);
  EXPECT_EQ(put.status().code(), Code::kInvalidArgument);
  EXPECT_NE(put.status().message().find("my-key"), std::string::npos) << put.status().ToString();
  EXPECT_EQ(store_->BeginUpload(key, meta).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->stats().requests.load(), requests);
  EXPECT_EQ(store_->Head(key).status().code(), Code::kNotFound);
}

TEST_P(ConformanceTest, MissingObjectIsNotFound) {
  std::string key = prefix_ + "missing";
  EXPECT_EQ(store_->Head(key).status().code(), Code::kNotFound);
  Status st = store_->Get(key, {}, [](const char*, size_t) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
}

TEST_P(ConformanceTest, DeleteRemovesAndToleratesMissing) {
  std::string key = prefix_ + "doomed";
  ASSERT_TRUE(store_->PutObject(key, "x").ok());
  ASSERT_TRUE(store_->Delete(key).ok());
  EXPECT_EQ(store_->Head(key).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Delete(key).ok());
}

TEST_P(ConformanceTest, IfMatchOnAStaleEtagIsPreconditionFailed) {
  std::string key = prefix_ + "versioned";
  auto v1 = store_->PutObject(key, "version one");
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(store_->PutObject(key, "version two!").ok());
  ReadOptions ro;
  ro.if_match = v1->etag;
  Status st = store_->Get(key, ro, [](const char*, size_t) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kPreconditionFailed) << st.ToString();
  ro.if_match = store_->Head(key)->etag;
  std::string got;
  st = store_->Get(key, ro, [&](const char* d, size_t n) {
    got.append(d, n);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, "version two!");
}

// A write conditional on what the writer saw (WriteCondition: If-Match, If-None-Match: *)
// changes nothing when the object is otherwise, for a one-request Put and a multipart commit;
// it writes when the condition holds. The S3 test server ignores the two headers (AWS S3
// honours them), so there only the writes that should succeed are checked.
TEST_P(ConformanceTest, AConditionalWriteChangesNothingWhenTheObjectIsNotAsItSays) {
  const bool honoured = GetParam().rfind("s3", 0) != 0;
  const std::string key = prefix_ + "conditional";
  auto first = store_->PutObject(key, "first", {}, WriteCondition{.if_absent = true});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  if (honoured) {
    auto again = store_->PutObject(key, "again", {}, WriteCondition{.if_absent = true});
    EXPECT_EQ(again.status().code(), Code::kPreconditionFailed) << again.status().ToString();
    auto stale = store_->PutObject(key, "stale", {}, WriteCondition{.if_match = "0x0stale"});
    EXPECT_EQ(stale.status().code(), Code::kPreconditionFailed) << stale.status().ToString();
  }
  EXPECT_EQ(ReadAll(key), "first");
  const std::string etag = store_->Head(key)->etag;
  auto second = store_->PutObject(key, "second", {}, WriteCondition{.if_match = etag});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(ReadAll(key), "second");

  // A multipart commit: refused over a changed object, its parts kept; then committed.
  auto upload = store_->BeginUpload(key);
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  const std::string part(store_->Limits().min_part_size > 1 ? store_->Limits().min_part_size : 1024, 'p');
  ASSERT_TRUE((*upload)->PutPart(0, 0, part).ok());
  ASSERT_TRUE((*upload)->PutPart(1, part.size(), "tail").ok());
  if (honoured) {
    auto refused = (*upload)->Complete(2, WriteCondition{.if_match = etag});  // "first"'s: changed since
    EXPECT_EQ(refused.status().code(), Code::kPreconditionFailed) << refused.status().ToString();
    EXPECT_EQ(ReadAll(key), "second");
  }
  auto done = (*upload)->Complete(2, WriteCondition{.if_match = store_->Head(key)->etag});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(ReadAll(key), part + "tail");
}

TEST_P(ConformanceTest, ListPaginatesOverMoreThan5000Objects) {
  constexpr int kObjects = 5003;
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&] {
      for (int i = next++; i < kObjects && !failed; i = next++) {
        char name[32];
        std::snprintf(name, sizeof(name), "many/%05d", i);
        if (!store_->PutObject(prefix_ + name, std::to_string(i)).ok()) failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed);
  ListOptions lo;
  lo.prefix = prefix_ + "many/";
  int pages = 0, seen = 0;
  std::string last;
  while (true) {
    auto page = store_->List(lo);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    pages++;
    for (auto& o : page->objects) {
      EXPECT_LT(last, o.key);  // strictly increasing: no duplicates across pages
      last = o.key;
      seen++;
    }
    if (page->next_continuation.empty()) break;
    lo.continuation = page->next_continuation;
  }
  EXPECT_EQ(seen, kObjects);
  EXPECT_GE(pages, 6);
  // Grouping by '/' at the top gives one common prefix and no objects.
  ListOptions top;
  top.prefix = prefix_;
  top.delimiter = "/";
  auto page = store_->List(top);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());
  EXPECT_EQ(page->prefixes, std::vector<std::string>{prefix_ + "many/"});
  ExpectFaultsInjected();
}

TEST_P(ConformanceTest, MultipartUploadIsInvisibleUntilCompleteAndAbortLeavesNothing) {
  std::string key = prefix_ + "multipart";
  const uint64_t part = 5 << 20;
  std::string data(part, '\0');
  testing::PatternSource::Fill(3, 0, data.data(), data.size());
  auto up = store_->BeginUpload(key);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_TRUE((*up)->PutPart(1, part, "tail").ok());
  ASSERT_TRUE((*up)->PutPart(0, 0, data).ok());
  EXPECT_EQ(store_->Head(key).status().code(), Code::kNotFound);
  auto done = (*up)->Complete(2);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(ReadAll(key) == data + "tail");

  std::string aborted = prefix_ + "aborted";
  auto up2 = store_->BeginUpload(aborted);
  ASSERT_TRUE(up2.ok());
  ASSERT_TRUE((*up2)->PutPart(0, 0, data).ok());
  (*up2)->Abort();
  EXPECT_EQ(store_->Head(aborted).status().code(), Code::kNotFound);
}

TEST_P(ConformanceTest, FailedStreamingUploadLeavesNoObject) {
  // A source that fails after 20 MiB: the upload must be aborted, nothing visible.
  class Failing : public ByteSource {
   public:
    Result<size_t> Read(char* buf, size_t len) override {
      if (pos_ >= (20u << 20)) return Status::IOError("source broke");
      size_t n = std::min<size_t>(len, (20u << 20) - pos_);
      std::memset(buf, 'z', n);
      pos_ += n;
      return n;
    }
    size_t pos_ = 0;
  } source;
  std::string key = prefix_ + "broken";
  TransferOptions opts;
  opts.part_size = 5 << 20;
  auto r = UploadStream(source, *store_, key, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("source broke"), std::string::npos);
  EXPECT_EQ(store_->Head(key).status().code(), Code::kNotFound);
}

TEST_P(ConformanceTest, LargeObjectRoundTripsByteIdenticalAndNeverPartiallyVisible) {
  const uint64_t size = LargeSize();
  const std::string key = prefix_ + "large.bin";
  // A watcher checks, all through the upload, that the object is absent or whole.
  std::atomic<bool> stop{false};
  std::atomic<int> partial_seen{0}, polls{0};
  std::shared_ptr<ObjectStore> direct = store_;
  if (GetParam() == "azure_faults") direct = world->azurite.Store(kBucket);
  if (GetParam() == "s3_faults") direct = world->s3rver.Store(kBucket);
  std::thread watcher([&] {
    while (!stop) {
      auto h = direct->Head(key);
      if (h.ok() && h->size != size) partial_seen++;
      polls++;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  testing::PatternSource source(42, size);
  TransferOptions opts;
  auto put = UploadStream(source, *store_, key, opts);
  stop = true;
  watcher.join();
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, size);
  // s3rver assembles a completed multipart upload by streaming the parts into the final file,
  // so a HEAD racing CompleteMultipartUpload can see it growing; S3 itself commits atomically.
  // Against s3rver, MultipartUploadIsInvisibleUntilComplete checks what Shoal controls.
  if (GetParam().rfind("s3", 0) != 0) {
    EXPECT_EQ(partial_seen.load(), 0);
  }
  EXPECT_GT(polls.load(), 0);

  auto head = store_->Head(key);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, size);
  testing::Sha256Stream hash;
  uint64_t got = 0;
  Status st = DownloadStream(*store_, *head, [&](const char* d, size_t n) {
    hash.Update(d, n);
    got += n;
    return Status::Ok();
  }, opts);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, size);
  EXPECT_EQ(hash.HexDigest(), testing::PatternSha256(42, size));
  if (proxy_ != nullptr) {
    auto stats = proxy_->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_GT(stats->injected_errors, 0u);
    // At 1 GiB (about 260 requests at 5%) a run without a drop has odds of about 1e-6; a
    // smaller run may see none, and ReadsAndWritesSurviveDroppedConnections covers drops at a
    // fixed seed.
    if (size >= (512u << 20)) {
      EXPECT_GT(stats->dropped, 0u) << "no connection was dropped: the test proved nothing";
    }
  }
  ASSERT_TRUE(store_->Delete(key).ok());
}

// Drops at a fixed seed: the same requests are cut every run. Each read must still deliver
// every byte once, resuming after the cut, and uploads must retry whole parts.
TEST_P(ConformanceTest, ReadsAndWritesSurviveDroppedConnections) {
  if (proxy_ == nullptr) GTEST_SKIP() << "no HTTP to drop on this backend";
  FaultConfig drops;
  drops.drop_rate = 0.5;
  drops.seed = 7;
  ASSERT_TRUE(proxy_->Configure(drops).ok());
  const uint64_t size = 24 << 20;
  testing::PatternSource source(11, size);
  TransferOptions opts;
  opts.part_size = 8 << 20;
  opts.concurrency = 1;  // one request at a time: the seed fixes which ones are cut
  std::string key = prefix_ + "dropped.bin";
  auto put = UploadStream(source, *store_, key, opts);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  testing::Sha256Stream hash;
  uint64_t got = 0;
  Status st = store_->Get(key, {}, [&](const char* d, size_t n) {
    hash.Update(d, n);
    got += n;
    return Status::Ok();
  });
  ASSERT_TRUE(proxy_->Configure(Faults()).ok());
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, size);
  EXPECT_EQ(hash.HexDigest(), testing::PatternSha256(11, size));
  auto stats = proxy_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->dropped, 0u);
  EXPECT_GT(store_->stats().retries.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceTest,
                         ::testing::Values("local", "azure", "s3", "azure_faults", "s3_faults"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// --- credentials: errors name the account and the source, never the secret ----------------

TEST(Credentials, WrongAzureKeyIsPermissionDeniedAndNamesTheAccountNotTheKey) {
  AzureConfig c;
  c.account = "devstoreaccount1";
  c.key = Base64Encode("definitely-not-the-key");
  c.endpoint = world->azurite.Endpoint();
  c.source = "AZURE_STORAGE_KEY";
  auto store = NewAzureStore(c, kBucket);
  auto r = store->Head("anything");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("devstoreaccount1"), std::string::npos);
  EXPECT_NE(r.status().message().find("AZURE_STORAGE_KEY"), std::string::npos);
  EXPECT_EQ(r.status().message().find(c.key), std::string::npos);
}

TEST(Credentials, UnknownS3AccessKeyIsPermissionDenied) {
  S3Config c;
  c.access_key = "NOSUCHKEY";
  c.secret_key = "secret-that-must-not-leak";
  c.endpoint = world->s3rver.Endpoint();
  c.source = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
  auto store = NewS3Store(c, kBucket);
  auto r = store->Head("anything");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("NOSUCHKEY"), std::string::npos);
  EXPECT_EQ(r.status().message().find("secret-that-must-not-leak"), std::string::npos);
}

TEST(Retries, AStoreThatAlwaysAnswers503GivesUpWithUnavailable) {
  FaultProxy proxy;
  FaultConfig f;
  f.error_rate = 1.0;
  ASSERT_TRUE(proxy.Start(world->s3rver.Endpoint(), f).ok());
  auto store = world->s3rver.Store(kBucket, proxy.port());
  auto r = store->Head("anything");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  auto stats = proxy.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->requests, 12u);  // RetryPolicy::max_attempts
  EXPECT_EQ(store->stats().retries.load(), 11u);
}

TEST(Retries, AnUnreachableStoreIsUnavailable) {
  S3Config c;
  c.access_key = "S3RVER";
  c.secret_key = "S3RVER";
  c.endpoint = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  auto r = NewS3Store(c, kBucket)->Head("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Environments set up in order: the servers first, then the proxies in front of them.
  ::testing::AddGlobalTestEnvironment(new shoal::testing::StoreServersEnvironment(shoal::kBucket));
  ::testing::AddGlobalTestEnvironment(new shoal::WorldEnvironment());
  return RUN_ALL_TESTS();
}
