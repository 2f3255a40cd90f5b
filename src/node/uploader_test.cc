// The uploader against an in-memory store (one module's unit test; the real-store proofs are
// tests/writeback_test.cc).
#include "node/uploader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>

namespace shoal::node {
namespace {

class FakeStore;

class FakeUpload final : public MultipartUpload {
 public:
  FakeUpload(FakeStore* store, std::string key, ObjectMeta meta)
      : store_(store), key_(std::move(key)), meta_(std::move(meta)) {}
  ~FakeUpload() override;
  Status PutPart(uint32_t index, uint64_t, std::string_view data) override;
  Result<ObjectInfo> Complete(uint32_t num_parts, const WriteCondition& only_if) override;
  void Abort() override;

 private:
  FakeStore* store_;
  std::string key_;
  ObjectMeta meta_;
  std::mutex mu_;
  std::map<uint32_t, std::string> parts_;
  bool completed_ = false, aborted_ = false;
};

// Objects in a map; can answer the next PutParts or Completes with 503.
class FakeStore final : public ObjectStore {
 public:
  std::string Describe() const override { return "fake://"; }
  std::mutex mu;
  std::map<std::string, std::string> objects;
  std::map<std::string, ObjectMeta> metas;  // what each object was stored with
  std::map<std::string, int> versions;      // each write of an object gets a new ETag
  std::function<void()> before_commit;      // runs (unlocked) at the start of every Put and commit
  std::string EtagLocked(const std::string& key, bool next) {
    return "etag-" + key + "-" + std::to_string(next ? ++versions[key] : versions[key]);
  }
  Status CheckLocked(const std::string& key, const WriteCondition& only_if) {
    bool exists = objects.count(key) > 0;
    if (only_if.if_absent && exists) return Status::PreconditionFailed("exists");
    if (!only_if.if_match.empty() && (!exists || EtagLocked(key, false) != only_if.if_match)) {
      return Status::PreconditionFailed("changed");
    }
    return Status::Ok();
  }
  int throttle_parts = 0;     // the next this many PutParts fail with a 503
  int fail_completes = 0;     // the next this many Completes fail
  int begun = 0, aborted = 0, parts_put = 0;
  int heads = 0, puts = 0;          // Heads and PutObjects asked (refused ones too)
  bool honours_if_absent = false;   // ObjectStore::HonoursIfAbsent (it does, in CheckLocked)
  bool HonoursIfAbsent() const override { return honours_if_absent; }
  std::chrono::milliseconds part_time{0};  // each PutPart takes this long
  int parts_in_flight = 0, most_parts_in_flight = 0;

  std::string Object(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = objects.find(key);
    return it == objects.end() ? "<none>" : it->second;
  }

 protected:
  Status GetImpl(const std::string&, const ReadOptions&, const ByteSink&) override { return Status::NotFound("x"); }
  Result<ObjectInfo> HeadImpl(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu);
    heads++;
    auto it = objects.find(key);
    if (it == objects.end()) return Status::NotFound("x");
    return ObjectInfo{key, it->second.size(), EtagLocked(key, false), 0, std::make_shared<const ObjectMeta>(metas[key])};
  }
  Result<ListPage> ListImpl(const ListOptions&) override { return ListPage{}; }
  Status DeleteImpl(const std::string&) override { return Status::Ok(); }
  Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data, const ObjectMeta& meta,
                                   const WriteCondition& only_if) override {
    if (before_commit) before_commit();
    std::lock_guard<std::mutex> lock(mu);
    puts++;
    SHOAL_RETURN_IF_ERROR(CheckLocked(key, only_if));
    objects[key] = std::string(data);
    metas[key] = meta;
    return ObjectInfo{key, data.size(), EtagLocked(key, true), 0};
  }
  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key, const ObjectMeta& meta) override {
    std::lock_guard<std::mutex> lock(mu);
    begun++;
    return std::unique_ptr<MultipartUpload>(new FakeUpload(this, key, meta));
  }
  Status CreateBucketImpl() override { return Status::Ok(); }
  friend class FakeUpload;
};

// An upload is aborted once: by Abort, or (never completed) when it is dropped.
void FakeUpload::Abort() {
  std::lock_guard<std::mutex> lock(store_->mu);
  if (!completed_ && !aborted_) store_->aborted++;
  aborted_ = true;
}

FakeUpload::~FakeUpload() { Abort(); }

Status FakeUpload::PutPart(uint32_t index, uint64_t, std::string_view data) {
  {
    std::lock_guard<std::mutex> lock(store_->mu);
    if (store_->throttle_parts > 0) {
      store_->throttle_parts--;
      store_->stats().CountThrottle();
      return Status::Unavailable("503 SlowDown");
    }
    store_->parts_put++;
    store_->most_parts_in_flight = std::max(store_->most_parts_in_flight, ++store_->parts_in_flight);
  }
  std::this_thread::sleep_for(store_->part_time);
  {
    std::lock_guard<std::mutex> lock(store_->mu);
    store_->parts_in_flight--;
  }
  std::lock_guard<std::mutex> lock(mu_);
  parts_[index] = std::string(data);
  return Status::Ok();
}

Result<ObjectInfo> FakeUpload::Complete(uint32_t num_parts, const WriteCondition& only_if) {
  if (store_->before_commit) store_->before_commit();
  std::lock_guard<std::mutex> lock(store_->mu);
  SHOAL_RETURN_IF_ERROR(store_->CheckLocked(key_, only_if));
  if (store_->fail_completes > 0) {
    store_->fail_completes--;
    return Status::InvalidArgument("InvalidBlockList");
  }
  std::string all;
  for (uint32_t i = 0; i < num_parts; i++) all += parts_.at(i);
  store_->objects[key_] = all;
  store_->metas[key_] = meta_;
  completed_ = true;
  return ObjectInfo{key_, all.size(), store_->EtagLocked(key_, true), 0};
}

// Chunk i of every write is `chunk_size` copies of the letter 'a' + i.
struct Harness {
  explicit Harness(int concurrency = 4) {
    UploadHooks hooks;
    hooks.store = [this](const std::string&) -> Result<std::shared_ptr<ObjectStore>> { return std::shared_ptr<ObjectStore>(store); };
    hooks.chunk = [](const engine::UploadRecord& r, uint64_t i) -> Result<std::string> {
      uint64_t n = std::min(r.chunk_size, (r.size ? r.size : UINT64_MAX) - i * r.chunk_size);
      return std::string(n, static_cast<char>('a' + i % 26));
    };
    hooks.durable = [this](const engine::UploadRecord& r, const ObjectInfo&) {
      std::lock_guard<std::mutex> lock(mu);
      durable.push_back(r.url);
      return Status::Ok();
    };
    hooks.superseded = [this](const engine::UploadRecord& r, const ObjectInfo&) {
      std::lock_guard<std::mutex> lock(mu);
      superseded.push_back(r.id);
      return Status::Ok();
    };
    hooks.uploaded = [this](uint64_t n) { uploaded += n; };
    uploader = std::make_unique<Uploader>(UploaderOptions{concurrency, std::chrono::minutes(1)}, hooks, &metrics);
  }
  static engine::UploadRecord Record(const std::string& id, uint64_t size, uint64_t chunk) {
    engine::UploadRecord r;
    r.id = id;
    r.url = "file:///fake/" + id;  // any parsable URL: hooks.store ignores it
    r.size = size;
    r.chunk_size = chunk;
    r.created_unix_ms = 1;
    return r;
  }
  bool WaitDurable(size_t n) {
    for (int i = 0; i < 1000; i++) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (durable.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::shared_ptr<FakeStore> store = std::make_shared<FakeStore>();
  NodeMetrics metrics;
  std::mutex mu;
  std::vector<std::string> durable;
  std::vector<std::string> superseded;
  std::atomic<uint64_t> uploaded{0};
  std::unique_ptr<Uploader> uploader;
};

TEST(UploaderTest, StreamedPartsGoUpBeforeTheWriteEndsButNothingIsCommittedUntilSeal) {
  Harness h;
  auto r = Harness::Record("w1", 0, 4);
  h.uploader->Open(r);
  h.uploader->AddPart("w1", 0);
  h.uploader->AddPart("w1", 1);
  for (int i = 0; i < 500 && h.uploaded < 8; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(h.uploaded.load(), 8u);
  EXPECT_EQ(h.store->Object("fake/w1"), "<none>");
  EXPECT_TRUE(h.uploader->Pending("").empty()) << "a write in progress is not an acknowledged one";
  r.size = 10;  // the last chunk holds 2 bytes
  h.uploader->Seal(r);
  ASSERT_TRUE(h.WaitDurable(1));
  EXPECT_EQ(h.store->Object("fake/w1"), "aaaabbbbcc");
  EXPECT_EQ(h.uploaded.load(), 10u);
  EXPECT_EQ(h.store->begun, 1);
}

// Writes of one object taken by different nodes go up in any order: the store keeps the newer
// (by stamp) whichever commits last, and a write the store already holds (its copy's holder,
// or an earlier attempt, put it) is not committed again.
TEST(UploaderTest, AnOlderWriteOfAnObjectNeverReplacesANewerOneInTheStore) {
  Harness h;
  auto newer = Harness::Record("w11", 6, 4);  // two chunks: a multipart upload, "aaaabb"
  newer.url = "file:///fake/obj";
  newer.begun_unix_us = 2000;
  auto older = Harness::Record("w10", 3, 4);  // one chunk: one Put, "aaa"
  older.url = newer.url;
  older.begun_unix_us = 1000;
  h.uploader->Add(newer);
  ASSERT_TRUE(h.WaitDurable(1));
  EXPECT_EQ(h.store->Object("fake/obj"), "aaaabb");
  EXPECT_EQ(h.store->metas["fake/obj"].user.at(std::string(kWriteStampMeta)), newer.Stamp());

  h.uploader->Add(older);  // its node was slower, or down, or it is a copy taken over late
  for (int i = 0; i < 500 && !h.uploader->Pending("").empty(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(h.uploader->Pending("").empty());
  EXPECT_EQ(h.metrics.uploads_superseded.load(), 1u);
  EXPECT_EQ(h.store->Object("fake/obj"), "aaaabb") << "the older write replaced the newer";
  {
    std::lock_guard<std::mutex> lock(h.mu);
    EXPECT_EQ(h.superseded, std::vector<std::string>{"w10"});
    EXPECT_EQ(h.durable.size(), 1u);
  }

  // The same write again, streamed as a writer does (Open, AddPart, Seal): its parts go up as
  // they come; found in the store at the commit, its upload aborted.
  h.uploader->Open(newer);
  h.uploader->AddPart(newer.id, 0);
  h.uploader->AddPart(newer.id, 1);
  h.uploader->Seal(newer);
  ASSERT_TRUE(h.WaitDurable(2));
  EXPECT_EQ(h.metrics.uploads_found_stored.load(), 1u);
  EXPECT_EQ(h.store->aborted, 1);
  EXPECT_EQ(h.store->Object("fake/obj"), "aaaabb");

  auto newest = Harness::Record("w12", 2, 4);  // a newer write still goes up
  newest.url = newer.url;
  newest.begun_unix_us = 3000;
  h.uploader->Add(newest);
  ASSERT_TRUE(h.WaitDurable(3));
  EXPECT_EQ(h.store->Object("fake/obj"), "aa");
}

// On a store that refuses If-None-Match: * over an object (Azure, a local directory), a new
// one-chunk object costs one Put and no Head; a write over an existing object is refused,
// looked at, then put over what was seen (or settled: older, or in the store already). Before,
// every one-chunk upload was a Head and a Put.
TEST(UploaderTest, OnAStoreThatRefusesAPutOverAnObjectANewObjectCostsOnePutAndNoHead) {
  Harness h;
  h.store->honours_if_absent = true;
  auto first = Harness::Record("w41", 3, 4);
  first.url = "file:///fake/one";
  first.begun_unix_us = 2000;
  h.uploader->Add(first);
  ASSERT_TRUE(h.WaitDurable(1));
  EXPECT_EQ(h.store->Object("fake/one"), "aaa");
  EXPECT_EQ(h.store->heads, 0);
  EXPECT_EQ(h.store->puts, 1);

  auto older = Harness::Record("w40", 2, 4);  // replayed late: must not replace the newer
  older.url = first.url;
  older.begun_unix_us = 1000;
  h.uploader->Add(older);
  for (int i = 0; i < 500 && !h.uploader->Pending("").empty(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(h.metrics.uploads_superseded.load(), 1u);
  EXPECT_EQ(h.store->Object("fake/one"), "aaa");
  EXPECT_EQ(h.store->heads, 1);
  EXPECT_EQ(h.store->puts, 2);  // the refused one

  auto newer = Harness::Record("w42", 1, 4);
  newer.url = first.url;
  newer.begun_unix_us = 3000;
  h.uploader->Add(newer);
  ASSERT_TRUE(h.WaitDurable(2));
  EXPECT_EQ(h.store->Object("fake/one"), "a");
  EXPECT_EQ(h.store->heads, 2);
  EXPECT_EQ(h.store->puts, 4);  // refused, then over the version seen

  h.uploader->Add(newer);  // the same write again (replayed): found in the store
  ASSERT_TRUE(h.WaitDurable(3));
  EXPECT_EQ(h.metrics.uploads_found_stored.load(), 1u);
  EXPECT_EQ(h.store->heads, 3);
  EXPECT_EQ(h.store->puts, 5);
  EXPECT_EQ(h.metrics.uploads_over_existing.load(), 3u);
  EXPECT_EQ(h.metrics.store_put_requests.load(), 5u);
}

// A multipart write given whole (replayed after a restart, or a copy's holder taking it over)
// whose object the store holds as written, or as written later: settled before its upload
// begins, so not one part is sent. Before, every part went up and the look at the commit
// dropped them.
TEST(UploaderTest, AReplayedWriteAlreadyInTheStoreOrReplacedSendsNoPart) {
  Harness h;
  auto newer = Harness::Record("w31", 10, 4);  // three chunks: "aaaabbbbcc"
  newer.url = "file:///fake/replayed";
  newer.begun_unix_us = 2000;
  h.uploader->Add(newer);
  ASSERT_TRUE(h.WaitDurable(1));
  ASSERT_EQ(h.store->parts_put, 3);
  ASSERT_EQ(h.store->begun, 1);
  const uint64_t uploaded = h.uploaded;

  auto older = Harness::Record("w30", 9, 4);
  older.url = newer.url;
  older.begun_unix_us = 1000;
  h.uploader->Add(older);  // replaced since
  h.uploader->Add(newer);  // uploaded before its node restarted
  ASSERT_TRUE(h.WaitDurable(2));
  for (int i = 0; i < 500 && !h.uploader->Pending("").empty(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(h.uploader->Pending("").empty());
  EXPECT_EQ(h.metrics.uploads_superseded.load(), 1u);
  EXPECT_EQ(h.metrics.uploads_found_stored.load(), 1u);
  EXPECT_EQ(h.store->parts_put, 3) << "a settled write sent parts";
  EXPECT_EQ(h.store->begun, 1) << "a settled write began an upload";
  EXPECT_EQ(h.uploaded - uploaded, 9u + 10u) << "their staged bytes are released";
  EXPECT_EQ(h.store->Object("fake/replayed"), "aaaabbbbcc");
  std::lock_guard<std::mutex> lock(h.mu);
  EXPECT_EQ(h.superseded, std::vector<std::string>{"w30"});
}

// Another node commits a newer write of the object between this write's look at the store and
// its commit: the commit is conditional on what the look saw, so it fails, and the next look
// drops this write. The newer stays.
TEST(UploaderTest, AWriteCommittedByAnotherNodeWhileThisOneCommitsIsNotOverwritten) {
  Harness h;
  auto older = Harness::Record("w20", 3, 4);
  older.url = "file:///fake/raced";
  older.begun_unix_us = 1000;
  auto newer = older;
  newer.id = "w21";
  newer.begun_unix_us = 2000;
  std::atomic<int> commits{0};
  h.store->before_commit = [&] {
    if (commits++ != 0) return;
    std::lock_guard<std::mutex> lock(h.store->mu);  // the other node's commit lands first
    h.store->objects["fake/raced"] = "zz";
    h.store->metas["fake/raced"].user[std::string(kWriteStampMeta)] = newer.Stamp();
    h.store->EtagLocked("fake/raced", true);
  };
  h.uploader->Add(older);
  for (int i = 0; i < 500 && h.metrics.uploads_superseded == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(h.metrics.uploads_superseded.load(), 1u);
  EXPECT_EQ(h.store->Object("fake/raced"), "zz") << "the older write's commit replaced the newer";
  EXPECT_EQ(commits.load(), 1) << "one commit tried, refused; the next look settled the write";
  EXPECT_EQ(h.metrics.upload_failures.load(), 0u) << "a refused condition is no failure of the store";
}

TEST(UploaderTest, ACancelledWriteIsNeverCommittedAndItsUploadIsAborted) {
  Harness h;
  h.uploader->Open(Harness::Record("w2", 0, 4));
  h.uploader->AddPart("w2", 0);
  h.uploader->AddPart("w2", 1);
  for (int i = 0; i < 500 && h.uploaded < 8; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(h.uploader->Cancel("w2"), 8u);
  h.uploader.reset();
  EXPECT_EQ(h.store->Object("fake/w2"), "<none>");
  EXPECT_EQ(h.store->aborted, 1);
}

TEST(UploaderTest, PartsInFlightFillButNeverExceedTheWindow) {
  Harness h(3);
  h.store->part_time = std::chrono::milliseconds(20);
  h.uploader->Add(Harness::Record("w5", 24 * 2, 2));  // 24 parts
  h.uploader->Add(Harness::Record("w6", 24 * 2, 2));
  ASSERT_TRUE(h.WaitDurable(2));
  std::lock_guard<std::mutex> lock(h.store->mu);
  EXPECT_EQ(h.store->parts_put, 48);
  EXPECT_EQ(h.store->most_parts_in_flight, 3) << "the window (3 parts, never cut here) across both objects";
}

// --upload-concurrency changed while running (shoald's SIGHUP): raised from 2 to 6 midway
// through 60 parts, the parts after it go 6 at once (the pool grows to 6 threads); lowered to
// 1, one at a time once those in flight finish.
TEST(UploaderTest, TheConcurrencyCanBeRaisedAndLoweredWhileUploading) {
  Harness h(2);
  h.store->part_time = std::chrono::milliseconds(30);
  h.uploader->Add(Harness::Record("w8", 60 * 2, 2));  // 60 parts
  auto parts_put = [&] {
    std::lock_guard<std::mutex> lock(h.store->mu);
    return h.store->parts_put;
  };
  for (int i = 0; i < 3000 && parts_put() < 6; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(parts_put(), 6);
  {
    std::lock_guard<std::mutex> lock(h.store->mu);
    EXPECT_EQ(h.store->most_parts_in_flight, 2);
  }
  h.uploader->SetMaxConcurrency(6);
  EXPECT_EQ(h.uploader->max_concurrency(), 6);
  EXPECT_DOUBLE_EQ(h.uploader->window(), 6.0) << "a window at the old limit moves to the new one";
  ASSERT_TRUE(h.WaitDurable(1));
  {
    std::lock_guard<std::mutex> lock(h.store->mu);
    EXPECT_EQ(h.store->parts_put, 60);
    EXPECT_EQ(h.store->most_parts_in_flight, 6);
    h.store->most_parts_in_flight = 0;
  }
  h.uploader->SetMaxConcurrency(1);
  h.uploader->Add(Harness::Record("w9", 20 * 2, 2));
  ASSERT_TRUE(h.WaitDurable(2));
  std::lock_guard<std::mutex> lock(h.store->mu);
  EXPECT_EQ(h.store->most_parts_in_flight, 1);
  EXPECT_EQ(h.store->objects["fake/w8"].size(), 120u);
  EXPECT_EQ(h.store->objects["fake/w9"].size(), 40u);
}

TEST(UploaderTest, ThrottlingHalvesTheWindowAndCleanPartsGrowItBack) {
  Harness h(8);
  h.store->throttle_parts = 3;
  h.uploader->Add(Harness::Record("w3", 64 * 2, 2));  // 64 parts
  ASSERT_TRUE(h.WaitDurable(1));
  EXPECT_GE(h.metrics.upload_window_cuts.load(), 1u);
  EXPECT_EQ(h.metrics.store_throttles.load(), 3u);
  EXPECT_EQ(h.store->Object("fake/w3").size(), 128u);
  EXPECT_EQ(h.uploaded.load(), 128u) << "each part counted once, retries or not";
  // Clean parts grow the window back by one per window of parts: 64 of them take even a window
  // cut to 1 back to 8. (The first object's clean parts may finish before or after its cuts.)
  h.uploader->Add(Harness::Record("w4", 64 * 2, 2));
  ASSERT_TRUE(h.WaitDurable(2));
  EXPECT_EQ(h.metrics.store_throttles.load(), 3u);
  EXPECT_DOUBLE_EQ(h.uploader->window(), 8.0);
}

TEST(UploaderTest, AFailedCommitStartsTheObjectAgainUnderAFreshUpload) {
  Harness h;
  h.store->fail_completes = 1;
  h.uploader->Add(Harness::Record("w4", 12, 4));
  h.uploader->Add(Harness::Record("w5", 3, 4));  // one chunk: a single Put
  ASSERT_TRUE(h.WaitDurable(2));
  EXPECT_EQ(h.store->Object("fake/w4"), "aaaabbbbcccc");
  EXPECT_EQ(h.store->Object("fake/w5"), "aaa");
  EXPECT_EQ(h.store->begun, 2);
  EXPECT_EQ(h.store->parts_put, 6);
  EXPECT_EQ(h.uploaded.load(), 15u);
  EXPECT_EQ(h.metrics.upload_failures.load(), 1u);
}

// A small overwrite acknowledged while the original is still uploading must not be overwritten
// by it: the newer write commits only after the older one.
TEST(UploaderTest, ANewerWriteOfAnObjectCommitsAfterTheOlder) {
  Harness h(4);
  h.store->part_time = std::chrono::milliseconds(10);
  auto v1 = Harness::Record("v1", 24 * 2, 2);  // 24 parts, slow
  auto v2 = Harness::Record("v2", 3, 4);       // one chunk: a single Put
  v1.url = v2.url = "file:///fake/same";
  h.uploader->Add(v1);
  h.uploader->Add(v2);
  ASSERT_TRUE(h.WaitDurable(2));
  EXPECT_EQ(h.store->Object("fake/same"), "aaa");
  std::lock_guard<std::mutex> lock(h.mu);
  EXPECT_EQ(h.durable, (std::vector<std::string>{"file:///fake/same", "file:///fake/same"}));
}

}  // namespace
}  // namespace shoal::node
