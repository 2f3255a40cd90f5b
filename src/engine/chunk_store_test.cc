#include "engine/chunk_store.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace shoal::engine {
namespace {

namespace fs = std::filesystem;

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-chunks-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Counted in bytes (block 1), so a few hundred bytes of capacity hold a few chunks.
  std::unique_ptr<ChunkStore> Open(uint64_t capacity = 1 << 20) {
    auto s = ChunkStore::Open({dir_, capacity, /*sync=*/false, UINT64_MAX, /*block=*/1});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static ChunkKey Key(uint64_t index, std::string version = "etag1") {
    return ChunkKey{"az://c/model.bin", std::move(version), index};
  }
  std::string FileOf(const ChunkKey& k) {
    std::string id = k.Id();
    return dir_ + "/chunks/" + id.substr(0, 2) + "/" + id;
  }
  std::string dir_;
};

TEST_F(ChunkStoreTest, PutThenGetReturnsTheBytes) {
  auto store = Open();
  ASSERT_TRUE(store->Put(Key(0), "chunk zero", false).ok());
  auto got = store->Get(Key(0));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "chunk zero");
  EXPECT_EQ(store->Get(Key(1)).status().code(), Code::kNotFound);
  EXPECT_EQ(store->stats().hits, 1u);
  EXPECT_EQ(store->stats().misses, 1u);
}

TEST_F(ChunkStoreTest, SyncWaitsForPinnedChunksAndReportsAMissingOne) {
  auto opened = ChunkStore::Open({dir_, 1 << 20, /*sync=*/true});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = *opened;
  ASSERT_TRUE(store->Put(Key(0), "part zero", true).ok());
  ASSERT_TRUE(store->Put(Key(1), "part one", true).ok());
  EXPECT_TRUE(store->Sync({Key(0), Key(1)}).ok());
  fs::remove(FileOf(Key(1)));
  Status st = store->Sync({Key(0), Key(1)});
  EXPECT_EQ(st.code(), Code::kIOError) << st.ToString();
  EXPECT_NE(st.message().find(Key(1).Id()), std::string::npos) << st.ToString();
}

TEST_F(ChunkStoreTest, VersionsAreDistinctChunks) {
  auto store = Open();
  ASSERT_TRUE(store->Put(Key(0, "v1"), "old", false).ok());
  ASSERT_TRUE(store->Put(Key(0, "v2"), "new", false).ok());
  EXPECT_EQ(*store->Get(Key(0, "v1")), "old");
  EXPECT_EQ(*store->Get(Key(0, "v2")), "new");
}

TEST_F(ChunkStoreTest, ACorruptedChunkIsDetectedDroppedAndReportedAsCorruption) {
  auto store = Open();
  std::string data(4096, 'a');
  ASSERT_TRUE(store->Put(Key(3), data, false).ok());
  {  // flip one byte of the payload on disk
    std::fstream f(FileOf(Key(3)), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    f.put('b');
  }
  auto got = store->Get(Key(3));
  EXPECT_EQ(got.status().code(), Code::kCorruption) << got.status().ToString();
  EXPECT_FALSE(store->Contains(Key(3)));
  EXPECT_FALSE(fs::exists(FileOf(Key(3))));
  EXPECT_EQ(store->stats().corruptions, 1u);
  // Fetched again, it reads back fine.
  ASSERT_TRUE(store->Put(Key(3), data, false).ok());
  EXPECT_EQ(*store->Get(Key(3)), data);
}

// OpenFile gives the payload's place in the file; pages Put wrote, in memory since, are not
// hashed again, but a chunk reopened after a restart is (checked once), and one written into
// behind the store's back (its ctime moves) is checked and dropped.
TEST_F(ChunkStoreTest, OpenFileChecksWhatItHasNotWrittenOrCheckedAndDropsACorruptChunk) {
  auto store = Open();
  std::string data(100000, 'a');
  data[5] = 'b';
  ASSERT_TRUE(store->Put(Key(0), data, false).ok());
  auto read_back = [](const ChunkFile& f) {
    std::string got(f.length, '\0');
    EXPECT_EQ(::pread(f.fd, got.data(), got.size(), static_cast<off_t>(f.offset)), static_cast<ssize_t>(got.size()));
    return got;
  };
  {
    auto f = store->OpenFile(Key(0), 0, data.size());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ((*f)->length, data.size());
    EXPECT_TRUE(read_back(**f) == data);
    EXPECT_EQ(store->stats().checks, 0u) << "written by Put and still in memory";
  }
  EXPECT_EQ(store->OpenFile(Key(1), 0, 1).status().code(), Code::kNotFound);

  store.reset();
  store = Open();  // a restart: nothing checked yet
  ASSERT_TRUE(store->OpenFile(Key(0), 0, data.size()).ok());
  EXPECT_EQ(store->stats().checks, 1u);
  ASSERT_TRUE(store->OpenFile(Key(0), 10, 10).ok());
  EXPECT_EQ(store->stats().checks, 1u) << "checked once";

  {  // flip one byte of the payload on disk (the page cache holds the flipped byte)
    std::fstream f(FileOf(Key(0)), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    f.put('c');
  }
  auto got = store->OpenFile(Key(0), 0, 10);
  EXPECT_EQ(got.status().code(), Code::kCorruption) << got.status().ToString();
  EXPECT_FALSE(store->Contains(Key(0)));
  EXPECT_EQ(store->stats().corruptions, 1u);
}

TEST_F(ChunkStoreTest, ATruncatedChunkIsCorruption) {
  auto store = Open();
  ASSERT_TRUE(store->Put(Key(1), std::string(1000, 'x'), false).ok());
  fs::resize_file(FileOf(Key(1)), 500);
  EXPECT_EQ(store->Get(Key(1)).status().code(), Code::kCorruption);
}

TEST_F(ChunkStoreTest, TheIndexIsRebuiltOnReopenAndDamagedFilesAreDropped) {
  {
    auto store = Open();
    for (uint64_t i = 0; i < 10; i++) ASSERT_TRUE(store->Put(Key(i), "data" + std::to_string(i), false).ok());
  }
  fs::resize_file(FileOf(Key(7)), 10);                              // damaged header
  std::ofstream(dir_ + "/chunks/ab/leftover.tmp123") << "partial";  // a crash mid-write
  auto store = Open();
  auto stats = store->stats();
  EXPECT_EQ(stats.chunks, 9u);
  EXPECT_EQ(stats.corruptions, 1u);
  EXPECT_EQ(*store->Get(Key(4)), "data4");
  EXPECT_FALSE(store->Contains(Key(7)));
  EXPECT_FALSE(fs::exists(dir_ + "/chunks/ab/leftover.tmp123"));
}

// Whether chunk 0 of an object is held at some version: while any version's chunk 0 is (other
// chunks do not count), through replacement, removal and eviction, and after a reopen (from
// the files' keys).
TEST_F(ChunkStoreTest, ItKnowsWhetherAnObjectsFirstChunkIsHeldAtAnyVersion) {
  auto store = Open(64);
  const ChunkKey other{"az://c/model.bin.1", "etag1", 0};  // a longer name, same prefix
  EXPECT_FALSE(store->HoldsFirstChunk("az://c/model.bin"));
  ASSERT_TRUE(store->Put(Key(1), "one", false).ok());
  ASSERT_TRUE(store->Put(Key(10), "ten", false).ok());
  EXPECT_FALSE(store->HoldsFirstChunk("az://c/model.bin")) << "chunks 1 and 10 are not the first";
  ASSERT_TRUE(store->Put(Key(0, "etag1"), "zero", false).ok());
  ASSERT_TRUE(store->Put(Key(0, "etag2"), "zero2", false).ok());
  ASSERT_TRUE(store->Put(Key(0, "etag2"), "zero2", false).ok());  // replaced: counted once
  EXPECT_TRUE(store->HoldsFirstChunk("az://c/model.bin"));
  ASSERT_TRUE(store->Remove(Key(0, "etag1")).ok());
  EXPECT_TRUE(store->HoldsFirstChunk("az://c/model.bin")) << "etag2's is still here";
  ASSERT_TRUE(store->Put(other, "x", false).ok());
  store.reset();

  store = Open(64);
  EXPECT_TRUE(store->HoldsFirstChunk("az://c/model.bin")) << "rebuilt from the files";
  EXPECT_TRUE(store->HoldsFirstChunk(other.object));
  ASSERT_TRUE(store->Remove(Key(0, "etag2")).ok());
  EXPECT_FALSE(store->HoldsFirstChunk("az://c/model.bin"));
  // Evicted: 64 bytes of capacity, filled by other chunks.
  ASSERT_TRUE(store->Put(Key(0, "etag3"), "zero3", false).ok());
  for (int i = 0; i < 20; i++) ASSERT_TRUE(store->Put(Key(100 + i), std::string(16, 'e'), false).ok());
  EXPECT_FALSE(store->HoldsFirstChunk("az://c/model.bin"));
  EXPECT_GT(store->stats().evictions, 0u);
}

TEST_F(ChunkStoreTest, EvictionKeepsUnderCapacityAndSparesPinnedChunks) {
  auto store = Open(10 * 1000);
  for (uint64_t i = 0; i < 5; i++) ASSERT_TRUE(store->Put(Key(i), std::string(1000, 'p'), true).ok());
  for (uint64_t i = 5; i < 50; i++) ASSERT_TRUE(store->Put(Key(i), std::string(1000, 'c'), false).ok());
  auto stats = store->stats();
  EXPECT_LE(stats.bytes, 10u * 1000);
  EXPECT_EQ(stats.pinned_bytes, 5u * 1000);
  EXPECT_GE(stats.evictions, 40u);
  for (uint64_t i = 0; i < 5; i++) EXPECT_TRUE(store->Contains(Key(i))) << i;
  size_t files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_ + "/chunks")) files += e.is_regular_file();
  EXPECT_EQ(files, stats.chunks);
}

// Tiny chunks far under the capacity in bytes: at most max_chunks stay, on disk as in the
// index; pinned ones beyond it go once unpinned.
TEST_F(ChunkStoreTest, MaxChunksBoundsManyTinyChunksAndUnpinningEvictsTheExcess) {
  auto s = ChunkStore::Open({dir_, 1 << 30, /*sync=*/false, /*max_chunks=*/20});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto& store = *s;
  for (uint64_t i = 0; i < 100; i++) ASSERT_TRUE(store->Put(Key(i), "x", false).ok());
  EXPECT_EQ(store->stats().chunks, 20u);
  for (uint64_t i = 100; i < 130; i++) ASSERT_TRUE(store->Put(Key(i), "p", true).ok());
  EXPECT_EQ(store->stats().chunks, 30u) << "pinned chunks are kept beyond max_chunks";
  for (uint64_t i = 100; i < 130; i++) ASSERT_TRUE(store->Pin(Key(i), false).ok());
  EXPECT_EQ(store->stats().chunks, 20u);
  size_t files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_ + "/chunks")) files += e.is_regular_file();
  EXPECT_EQ(files, 20u);
}

// A chunk of 100 bytes takes a block of the file system, not 100 bytes: counted so, a
// capacity of 1 MiB holds 256 of them (4 KiB blocks), and the files' blocks on disk (st_blocks)
// stay within it. Counted by payload, 1,000 were kept, taking about 4 MiB of disk.
TEST_F(ChunkStoreTest, ManySmallChunksFillTheCapacityByTheBlocksTheyTakeOnDisk) {
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(dir_.c_str(), &vfs), 0);
  const uint64_t block = vfs.f_frsize, capacity = 1 << 20;
  auto s = ChunkStore::Open({dir_, capacity, /*sync=*/false});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto& store = *s;
  for (uint64_t i = 0; i < 1000; i++) ASSERT_TRUE(store->Put(Key(i), std::string(100, 'c'), false).ok());
  auto stats = store->stats();
  EXPECT_EQ(stats.chunks, capacity / block);
  EXPECT_EQ(stats.bytes, stats.chunks * 100);
  EXPECT_EQ(stats.disk_bytes, stats.chunks * block);
  EXPECT_GT(stats.evictions, 0u);
  uint64_t on_disk = 0, files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_ + "/chunks")) {
    struct stat st {};
    if (!e.is_regular_file() || ::stat(e.path().c_str(), &st) != 0) continue;
    files++;
    on_disk += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  EXPECT_EQ(files, stats.chunks);
  EXPECT_LE(on_disk, capacity);
  // Pinned chunks are counted the same way: the capacity holds as many pinned ones, no more.
  for (uint64_t i = 0; i < capacity / block; i++) ASSERT_TRUE(store->Put(Key(2000 + i), "p", true).ok());
  EXPECT_EQ(store->stats().pinned_bytes, capacity / block);
  EXPECT_EQ(store->Put(Key(9999), "p", true).code(), Code::kUnavailable);
  ASSERT_TRUE(store->Pin(Key(2000), false).ok());
  EXPECT_EQ(store->stats().pinned_bytes, capacity / block - 1);
  EXPECT_TRUE(store->Put(Key(9999), "p", true).ok());
}

TEST_F(ChunkStoreTest, AStoreFullOfPinnedChunksRefusesWithUnavailable) {
  auto store = Open(3000);
  for (uint64_t i = 0; i < 3; i++) ASSERT_TRUE(store->Put(Key(i), std::string(1000, 'p'), true).ok());
  Status st = store->Put(Key(9), std::string(1000, 'x'), false);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("not yet uploaded"), std::string::npos);
  ASSERT_TRUE(store->Pin(Key(0), false).ok());
  EXPECT_TRUE(store->Put(Key(9), std::string(1000, 'x'), false).ok());
  EXPECT_FALSE(store->Contains(Key(0)));
}

// Regression: a reader racing a Put used to find the index entry before the file existed,
// take the chunk for corrupt and drop it.
TEST_F(ChunkStoreTest, ReadersRacingWritersNeverSeeCorruption) {
  auto store = Open(64 << 20);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; w++) {
    threads.emplace_back([&, w] {
      for (uint64_t i = 0; i < 200; i++) {
        if (!store->Put(Key(w * 1000 + i), std::string(64 << 10, 'a' + w), false).ok()) bad++;
      }
    });
  }
  for (int r = 0; r < 2; r++) {
    threads.emplace_back([&, r] {
      while (!done) {
        for (uint64_t i = 0; i < 200; i++) {
          auto got = store->Get(Key((i % 2) * 1000 + i));
          if (!got.ok() && got.status().code() != Code::kNotFound) bad++;
          if (got.ok() && got->size() != (64u << 10)) bad++;
        }
      }
      (void)r;
    });
  }
  threads[0].join();
  threads[1].join();
  done = true;
  for (size_t i = 2; i < threads.size(); i++) threads[i].join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store->stats().corruptions, 0u);
  EXPECT_EQ(store->stats().chunks, 400u);
}

// Regression: eviction and Remove unlinked a chunk's file after dropping the lock, so a Put
// of the same key in between lost its new file (indexed, no file: its next Get was
// "corruption"), and a Get that opened the file just after an eviction reported corruption
// (and dropped the entry of a Put that had just landed) instead of a miss.
TEST_F(ChunkStoreTest, EvictionRacingGetAndPutOfTheSameKeysLosesNoFileAndShowsNoCorruption) {
  constexpr uint64_t kChunk = 4096;
  constexpr int kKeys = 24;
  auto store = Open(8 * kChunk);  // a third of the keys fit: nearly every Put evicts
  auto bytes_of = [&](uint64_t i) { return std::string(kChunk - i, static_cast<char>('a' + i)); };
  std::atomic<int> wrong{0};
  std::mutex mu;
  std::string first_wrong;
  auto report = [&](const std::string& what) {
    if (wrong++ == 0) {
      std::lock_guard<std::mutex> lock(mu);
      first_wrong = what;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      uint64_t x = 0x9e3779b97f4a7c15ull * (t + 1);
      for (int n = 0; n < 6000; n++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift: a fixed, thread-local sequence
        uint64_t i = x % kKeys;
        switch ((x >> 32) % 8) {
          case 0: case 1: case 2: {
            Status st = store->Put(Key(i), bytes_of(i), false);
            if (!st.ok()) report("Put " + std::to_string(i) + ": " + st.ToString());
            break;
          }
          case 3: {
            Status st = store->Remove(Key(i));
            if (!st.ok()) report("Remove " + std::to_string(i) + ": " + st.ToString());
            break;
          }
          default: {
            auto got = store->Get(Key(i));
            if (got.ok() && *got != bytes_of(i)) report("Get " + std::to_string(i) + ": other bytes");
            if (!got.ok() && got.status().code() != Code::kNotFound) {
              report("Get " + std::to_string(i) + ": " + got.status().ToString());
            }
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0) << "first: " << first_wrong;
  EXPECT_EQ(store->stats().corruptions, 0u);
  // The index and the directory agree: a file for every chunk indexed, and no other file
  // (no chunk the index forgot, no temp file, no tombstone).
  std::set<std::string> indexed, on_disk;
  for (int i = 0; i < kKeys; i++) {
    if (store->Contains(Key(i))) indexed.insert(Key(i).Id());
  }
  for (const auto& e : fs::recursive_directory_iterator(dir_ + "/chunks")) {
    if (e.is_regular_file()) on_disk.insert(e.path().filename().string());
  }
  EXPECT_EQ(indexed, on_disk);
  EXPECT_EQ(store->stats().chunks, indexed.size());
  for (const auto& id : indexed) {
    for (int i = 0; i < kKeys; i++) {
      if (Key(i).Id() != id) continue;
      auto got = store->Get(Key(i));
      EXPECT_TRUE(got.ok() && *got == bytes_of(i)) << i << ": " << got.status().ToString();
    }
  }
}

TEST_F(ChunkStoreTest, ADataDirThatCannotBeCreatedIsAClearError) {
  std::ofstream(dir_ + "/a-file") << "x";
  auto s = ChunkStore::Open({dir_ + "/a-file/data", 1000, false});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(dir_ + "/a-file/data"), std::string::npos) << s.status().ToString();
}

// --- Packs: chunks below pack_below share pack files ---------------------------------------

class PackTest : public ChunkStoreTest {
 protected:
  // Chunks below 1 MiB packed; packs of `pack_bytes` at most; synced as the node does.
  std::unique_ptr<ChunkStore> OpenPacked(uint64_t capacity = 1ull << 30, uint64_t pack_bytes = 256ull << 20) {
    ChunkStoreOptions o{dir_, capacity, /*sync=*/true};
    o.pack_below = 1 << 20;
    o.pack_bytes = pack_bytes;
    auto s = ChunkStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static std::string Payload(uint64_t i, size_t size) {
    std::string d(size, '\0');
    for (size_t j = 0; j < size; j++) d[j] = static_cast<char>('a' + (i * 7 + j) % 26);
    return d;
  }
  static ChunkKey Small(uint64_t i) { return ChunkKey{"az://c/small/" + std::to_string(i), "v1", 0}; }
  // Regular files under chunks/ (packs included), and under chunks/packs/ alone.
  std::pair<int, int> Files() {
    int all = 0, packs = 0;
    for (auto& e : fs::recursive_directory_iterator(dir_ + "/chunks")) {
      if (!e.is_regular_file()) continue;
      all++;
      packs += e.path().parent_path().filename() == "packs";
    }
    return {all, packs};
  }
  // Bytes the packs take on disk (their allocated blocks).
  uint64_t PackDiskBytes() {
    uint64_t bytes = 0;
    for (auto& e : fs::directory_iterator(dir_ + "/chunks/packs")) {
      struct stat st {};
      if (::stat(e.path().c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    return bytes;
  }
  // Bytes [0, len) of a ChunkFile's payload, read from its descriptor as sendfile would.
  static std::string ReadFile(const ChunkFile& f) {
    std::string out(f.length, '\0');
    EXPECT_EQ(::pread(f.fd, out.data(), out.size(), static_cast<off_t>(f.offset)), static_cast<ssize_t>(f.length));
    return out;
  }
};

TEST_F(PackTest, SmallChunksShareOnePackAndReadBackThroughGetAndOpenFile) {
  auto store = OpenPacked();
  std::vector<ChunkKey> keys;
  for (uint64_t i = 0; i < 100; i++) {
    keys.push_back(Small(i));
    ASSERT_TRUE(store->Put(keys.back(), Payload(i, 10000 + i), true).ok());
  }
  ASSERT_TRUE(store->Put(Key(0), Payload(1000, 1 << 20), true).ok());  // at pack_below: a file
  keys.push_back(Key(0));
  ASSERT_TRUE(store->Sync(keys).ok());
  EXPECT_EQ(Files(), std::make_pair(2, 1)) << "one pack for 100 chunks, one file for the large one";
  EXPECT_EQ(store->stats().packed, 100u);
  EXPECT_EQ(store->stats().chunks, 101u);
  for (uint64_t i = 0; i < 100; i++) {
    auto got = store->Get(Small(i));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, Payload(i, 10000 + i)) << i;
    auto file = store->OpenFile(Small(i), 0, UINT64_MAX);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(ReadFile(**file), Payload(i, 10000 + i)) << i;
  }
  // Each counts its header, key and payload rounded up to 4 KiB.
  EXPECT_EQ(store->stats().disk_bytes % 4096, 0u);
}

TEST_F(PackTest, AReopenedStoreHasItsPackedChunksAndNotTheRemovedOnes) {
  {
    auto store = OpenPacked();
    std::vector<ChunkKey> keys;
    for (uint64_t i = 0; i < 50; i++) {
      keys.push_back(Small(i));
      ASSERT_TRUE(store->Put(Small(i), Payload(i, 5000), true).ok());
    }
    ASSERT_TRUE(store->Sync(keys).ok());
    for (uint64_t i = 0; i < 50; i += 2) ASSERT_TRUE(store->Remove(Small(i)).ok());
    ASSERT_TRUE(store->Put(Small(1), Payload(999, 7000), false).ok());  // replaced: the later one stands
  }
  auto store = OpenPacked();
  EXPECT_EQ(store->stats().chunks, 25u);
  EXPECT_EQ(store->stats().packed, 25u);
  EXPECT_EQ(store->stats().pinned_bytes, 0u) << "rebuilt entries are unpinned";
  for (uint64_t i = 0; i < 50; i++) {
    auto got = store->Get(Small(i));
    if (i % 2 == 0) {
      EXPECT_EQ(got.status().code(), Code::kNotFound) << i;
    } else {
      ASSERT_TRUE(got.ok()) << i << " " << got.status().ToString();
      EXPECT_EQ(*got, i == 1 ? Payload(999, 7000) : Payload(i, 5000)) << i;
    }
  }
  EXPECT_TRUE(store->HoldsFirstChunk("az://c/small/3"));
  EXPECT_FALSE(store->HoldsFirstChunk("az://c/small/4"));
  // New chunks go to a new pack: the old one is only read now.
  ASSERT_TRUE(store->Put(Small(100), Payload(100, 5000), true).ok());
  EXPECT_EQ(Files().second, 2);
}

TEST_F(PackTest, ARemovedChunkFreesItsBlocksAndAnEmptiedPackIsDeleted) {
  // Packs of 200 KiB: two 64 KiB chunks each.
  auto store = OpenPacked(1ull << 30, 200 << 10);
  for (uint64_t i = 0; i < 10; i++) ASSERT_TRUE(store->Put(Small(i), Payload(i, 64 << 10), false).ok());
  EXPECT_EQ(Files().second, 5);
  const uint64_t before = PackDiskBytes();
  ASSERT_TRUE(store->Remove(Small(0)).ok());
  // All of its 68 KiB but the block that keeps its (dead) header.
  EXPECT_EQ(before - PackDiskBytes(), (68u << 10) - 4096);
  ASSERT_TRUE(store->Remove(Small(1)).ok());
  EXPECT_EQ(Files().second, 4) << "the first pack, emptied, is gone";
  for (uint64_t i = 2; i < 10; i++) ASSERT_TRUE(store->Remove(Small(i)).ok());
  EXPECT_EQ(Files().second, 1) << "only the pack still being appended to stays";
  EXPECT_EQ(store->stats().chunks, 0u);
  EXPECT_EQ(store->stats().disk_bytes, 0u);
}

TEST_F(PackTest, EvictionOfPackedChunksKeepsTheCapacity) {
  auto store = OpenPacked(/*capacity=*/10 * (68 << 10));
  for (uint64_t i = 0; i < 40; i++) ASSERT_TRUE(store->Put(Small(i), Payload(i, 64 << 10), false).ok());
  auto st = store->stats();
  EXPECT_LE(st.disk_bytes, 10u * (68 << 10));
  EXPECT_EQ(st.evictions, 40u - st.chunks);
  // What the packs take: the live chunks, and one block per evicted one (its dead header).
  EXPECT_LE(PackDiskBytes(), st.disk_bytes + st.evictions * 4096);
}

TEST_F(PackTest, AnOpenChunkFileKeepsItsBytesAfterTheChunkIsRemoved) {
  auto store = OpenPacked();
  ASSERT_TRUE(store->Put(Small(0), Payload(0, 64 << 10), false).ok());
  {
    auto file = store->OpenFile(Small(0), 0, UINT64_MAX);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE(store->Remove(Small(0)).ok());
    EXPECT_EQ(store->Get(Small(0)).status().code(), Code::kNotFound);
    ASSERT_TRUE(store->Put(Small(1), Payload(1, 64 << 10), false).ok());
    EXPECT_EQ(ReadFile(**file), Payload(0, 64 << 10)) << "still whole while open";
  }
  store.reset();
  store = OpenPacked();  // its header was marked dead once the file closed
  EXPECT_EQ(store->Get(Small(0)).status().code(), Code::kNotFound);
  EXPECT_EQ(*store->Get(Small(1)), Payload(1, 64 << 10));
}

TEST_F(PackTest, ACorruptPackedChunkIsDroppedAndATornPackEndsAtItsLastWholeEntry) {
  std::string pack;
  {
    auto store = OpenPacked();
    for (uint64_t i = 0; i < 4; i++) ASSERT_TRUE(store->Put(Small(i), Payload(i, 64 << 10), false).ok());
  }
  for (auto& e : fs::directory_iterator(dir_ + "/chunks/packs")) pack = e.path();
  ASSERT_FALSE(pack.empty());
  const uint64_t span = 68 << 10;  // each entry: header, key and 64 KiB, in 4 KiB blocks
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(span + 4096 + 10));  // chunk 1's payload
    f.put('#');
  }
  fs::resize_file(pack, 3 * span + 100);  // chunk 3 torn
  auto store = OpenPacked();
  EXPECT_EQ(store->stats().chunks, 3u);
  auto bad = store->Get(Small(1));
  EXPECT_EQ(bad.status().code(), Code::kCorruption) << bad.status().ToString();
  EXPECT_EQ(store->stats().corruptions, 1u);
  EXPECT_EQ(store->Get(Small(1)).status().code(), Code::kNotFound);
  EXPECT_EQ(*store->Get(Small(0)), Payload(0, 64 << 10));
  EXPECT_EQ(*store->Get(Small(2)), Payload(2, 64 << 10));
  EXPECT_EQ(store->Get(Small(3)).status().code(), Code::kNotFound);
  // A damaged header ends the pack there (what follows is not read).
  store.reset();
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(2 * span + 40));  // chunk 2's key
    f.put('#');
  }
  store = OpenPacked();
  EXPECT_EQ(store->stats().chunks, 1u);
  EXPECT_EQ(*store->Get(Small(0)), Payload(0, 64 << 10));
}

TEST_F(PackTest, ConcurrentWritersShareSyncsAndEveryChunkSurvivesAReopen) {
  constexpr int kThreads = 8, kEach = 200;
  {
    auto store = OpenPacked();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; i++) {
          const uint64_t n = static_cast<uint64_t>(t * kEach + i);
          if (!store->Put(Small(n), Payload(n, 4000 + n % 5000), true).ok() || !store->Sync({Small(n)}).ok()) {
            failures++;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(Files().second, 1);
  }
  auto store = OpenPacked();
  ASSERT_EQ(store->stats().chunks, static_cast<uint64_t>(kThreads * kEach));
  for (uint64_t n = 0; n < kThreads * kEach; n++) {
    auto got = store->Get(Small(n));
    ASSERT_TRUE(got.ok()) << n << " " << got.status().ToString();
    ASSERT_EQ(*got, Payload(n, 4000 + n % 5000)) << n;
  }
}

}  // namespace
}  // namespace shoal::engine
