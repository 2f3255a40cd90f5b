#include "engine/journal.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace shoal::engine {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-journal-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static UploadRecord Record(const std::string& id, int64_t created) {
    UploadRecord r;
    r.id = id;
    r.url = "az://ckpt/run1/" + id;
    r.size = 3 * (8 << 20) + 5;
    r.chunk_size = 8 << 20;
    r.created_unix_ms = created;
    return r;
  }
  // The journal's files, by name.
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  // The one log in the directory.
  std::string Log() const {
    auto files = Files();
    EXPECT_EQ(files.size(), 1u);
    return files.empty() ? "" : dir_ + "/" + files[0];
  }
  std::string dir_;
};

TEST_F(JournalTest, MetadataSurvivesReopenAndRecordsWithoutItHaveNone) {
  UploadRecord r = Record("m", 100);
  r.meta.content_type = "text/csv";
  r.meta.cache_control = "no-cache";
  r.meta.user = {{"author", "Ada Lovelace"}, {"run_id", "42"}};
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->Put(r).ok());
    ASSERT_TRUE((*j)->Put(Record("plain", 200)).ok());
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  auto got = (*j)->Get("m");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->meta, r.meta);
  auto plain = (*j)->Get("plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->meta.empty());
  // A record without metadata is written as before: no "meta" field.
  EXPECT_EQ(Record("plain", 200).Encode().find("meta"), std::string::npos);
}

TEST_F(JournalTest, RecordsSurviveReopenInFifoOrder) {
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->Put(Record("b", 200)).ok());
    ASSERT_TRUE((*j)->Put(Record("a", 100)).ok());
    UploadRecord c = Record("c", 300);
    c.state = UploadRecord::State::kDurable;
    c.etag = "0x8D";
    c.store_upload_id = "upload-1";
    c.replicas = {"node-b", "node-c"};
    ASSERT_TRUE((*j)->Put(c).ok());
    UploadRecord copy = Record("d", 400);
    copy.origin = "node-a";
    copy.origin_incarnation = "5eed";
    ASSERT_TRUE((*j)->Put(copy).ok());
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  auto all = (*j)->List();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].id, "a");
  EXPECT_EQ(all[1].id, "b");
  EXPECT_EQ(all[2].state, UploadRecord::State::kDurable);
  EXPECT_EQ(all[2].etag, "0x8D");
  EXPECT_EQ(all[2].store_upload_id, "upload-1");
  EXPECT_EQ(all[0].size, 3u * (8 << 20) + 5);
  EXPECT_EQ(all[2].replicas, (std::vector<std::string>{"node-b", "node-c"}));
  EXPECT_TRUE(all[0].replicas.empty());
  EXPECT_EQ(all[3].origin, "node-a");
  EXPECT_TRUE(all[0].origin.empty());
  auto d = (*j)->Get("d");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->origin, "node-a");
  EXPECT_EQ(d->origin_incarnation, "5eed");
  EXPECT_EQ((*j)->Get("zz").status().code(), Code::kNotFound);
  EXPECT_TRUE((*j)->damaged().empty());
}

TEST_F(JournalTest, ReplacingARecordKeepsOneVersionAndRemoveForgetsIt) {
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  UploadRecord r = Record("x", 1);
  ASSERT_TRUE((*j)->Put(r).ok());
  r.state = UploadRecord::State::kDurable;
  ASSERT_TRUE((*j)->Put(r).ok());
  ASSERT_EQ((*j)->List().size(), 1u);
  EXPECT_EQ((*j)->List()[0].state, UploadRecord::State::kDurable);
  ASSERT_TRUE((*j)->Remove("x").ok());
  EXPECT_TRUE((*j)->List().empty());
  EXPECT_TRUE(Journal::Open(dir_).value()->List().empty());
}

TEST_F(JournalTest, AnInterruptedReplacementLeavesTheOldVersion) {
  auto j = Journal::Open(dir_);
  ASSERT_TRUE((*j)->Put(Record("x", 1)).ok());
  // A crash between writing the temp file and the rename.
  std::ofstream(dir_ + "/x.json.tmp") << "{\"id\": \"x\", \"state\": \"dur";
  auto again = Journal::Open(dir_);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ((*again)->List().size(), 1u);
  EXPECT_EQ((*again)->List()[0].state, UploadRecord::State::kStaged);
  EXPECT_FALSE(fs::exists(dir_ + "/x.json.tmp"));
}

TEST_F(JournalTest, ADamagedRecordIsReportedAndKeptAside) {
  std::ofstream(dir_ + "/bad.json") << "not json at all";
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE((*j)->List().empty());
  ASSERT_EQ((*j)->damaged().size(), 1u);
  EXPECT_NE((*j)->damaged()[0].find("bad.json"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ + "/bad.json.bad"));
}

// Found by tests/fuzz/journal_fuzz: a float or negative number where the record has a whole
// number was converted by a C++ cast (undefined for 1e30, a wrap for -1) and the record loaded.
TEST_F(JournalTest, ARecordWithNumbersOutsideTheirTypeIsDamaged) {
  const std::string head = R"({"id":"r1","url":"az://c/k","state":"staged",)";
  for (const std::string numbers : {R"("size":1e30,"chunk_size":8)", R"("size":-1,"chunk_size":8)",
                                    R"("size":8,"chunk_size":8,"created_unix_ms":1.7e21)",
                                    R"("size":8,"chunk_size":8,"created_unix_ms":9223372036854775808)"}) {
    EXPECT_EQ(UploadRecord::Decode(head + numbers + "}").status().code(), Code::kCorruption) << numbers;
  }
  auto ok = UploadRecord::Decode(head + R"("size":8,"chunk_size":8,"created_unix_ms":-5})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->created_unix_ms, -5);
}

TEST_F(JournalTest, IdsThatCouldEscapeTheDirectoryAreRefused) {
  auto j = Journal::Open(dir_);
  EXPECT_EQ((*j)->Put(Record("../evil", 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ((*j)->Put(Record("", 1)).code(), Code::kInvalidArgument);
}

// A record file of the older layout (one <id>.json per upload) is read and folded into the log.
TEST_F(JournalTest, RecordFilesOfTheOlderLayoutAreFoldedIntoTheLog) {
  std::ofstream(dir_ + "/old.json") << Record("old", 7).Encode() << "\n";
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ASSERT_EQ((*j)->List().size(), 1u);
    EXPECT_EQ((*j)->List()[0].id, "old");
    EXPECT_EQ(Files(), std::vector<std::string>{"log-1"});
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  ASSERT_EQ((*j)->List().size(), 1u);
  EXPECT_EQ((*j)->List()[0].url, "az://ckpt/run1/old");
  EXPECT_EQ(Files(), std::vector<std::string>{"log-2"});
}

// A crash leaves the log's last entries torn or unsynced garbage: everything before them is
// replayed, the rest dropped and counted, and the journal goes on after it.
TEST_F(JournalTest, ATornTailIsDroppedAndEveryEntryBeforeItReplayed) {
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE((*j)->Put(Record("a", 1)).ok());
    ASSERT_TRUE((*j)->Put(Record("b", 2)).ok());
    ASSERT_TRUE((*j)->Remove("a").ok());
    ASSERT_TRUE((*j)->Put(Record("c", 3)).ok());
  }
  const std::string log = Log();
  const auto whole = fs::file_size(log);
  // The last entry cut in the middle, then bytes a later page wrote before the crash.
  fs::resize_file(log, whole - 5);
  std::ofstream(log, std::ios::app | std::ios::binary) << std::string(300, '\x7f');
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    auto all = (*j)->List();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, "b");
    EXPECT_GT((*j)->torn_tail_bytes(), 300u);
    EXPECT_TRUE((*j)->damaged().empty());
    EXPECT_TRUE(fs::exists(log + ".bad")) << "the log with the torn tail is kept aside";
    ASSERT_TRUE((*j)->Put(Record("d", 4)).ok());
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  auto all = (*j)->List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, "b");
  EXPECT_EQ(all[1].id, "d");
  EXPECT_EQ((*j)->torn_tail_bytes(), 0u);
}

// An entry whose bytes changed fails its checksum: it and what follows are not replayed.
TEST_F(JournalTest, AnEntryThatFailsItsChecksumEndsTheReplay) {
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE((*j)->Put(Record("a", 1)).ok());
    ASSERT_TRUE((*j)->Put(Record("b", 2)).ok());
  }
  const std::string log = Log();
  std::string text;
  {
    std::ifstream in(log, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t at = text.find("\"id\":\"b\"");
  ASSERT_NE(at, std::string::npos);
  text[at + 6] = 'z';  // "b" -> "z" in b's entry
  std::ofstream(log, std::ios::binary | std::ios::trunc) << text;
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  auto all = (*j)->List();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, "a");
  EXPECT_GT((*j)->torn_tail_bytes(), 0u);
  EXPECT_TRUE(fs::exists(log + ".bad"));
}

// A log whose header is damaged is not a log: reported, kept aside, and a new one begun.
TEST_F(JournalTest, ALogWithADamagedHeaderIsReportedAndKeptAside) {
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE((*j)->Put(Record("a", 1)).ok());
  }
  const std::string log = Log();
  {
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "XXXX";
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE((*j)->List().empty());
  ASSERT_EQ((*j)->damaged().size(), 1u);
  EXPECT_NE((*j)->damaged()[0].find("header"), std::string::npos) << (*j)->damaged()[0];
  EXPECT_TRUE(fs::exists(log + ".bad"));
  ASSERT_TRUE((*j)->Put(Record("b", 2)).ok());
  EXPECT_EQ(Journal::Open(dir_).value()->List().size(), 1u);
}

// Concurrent writers share syncs; every record they were told is durable is replayed, and the
// log, rewritten as it outgrows its live records, stays bounded by them.
TEST_F(JournalTest, ConcurrentPutsAndRemovesAreAllDurableAndTheLogStaysBounded) {
  constexpr int kThreads = 8, kEach = 3000;
  {
    auto j = Journal::Open(dir_, /*sync=*/false);
    ASSERT_TRUE(j.ok());
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; i++) {
          const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
          if (!(*j)->Put(Record(id, i)).ok()) failed++;
          // Every record but each thread's last ten is removed again.
          if (i >= 10 && !(*j)->Remove("t" + std::to_string(t) + "-" + std::to_string(i - 10)).ok()) failed++;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ((*j)->size(), size_t{kThreads} * 10);
    // 48,000 entries of about 150 bytes were appended; at most 1 MiB of them stay.
    EXPECT_LE((*j)->log_bytes(), uint64_t{1} << 20);
    EXPECT_EQ(Files().size(), 1u);
  }
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  auto all = (*j)->List();
  ASSERT_EQ(all.size(), size_t{kThreads} * 10);
  for (const auto& r : all) EXPECT_GE(r.created_unix_ms, kEach - 10) << r.id;
  EXPECT_EQ((*j)->torn_tail_bytes(), 0u);
}

// Two logs are left when a crash came between a rewrite's rename and the older log's removal:
// the newer holds every record, and the older is removed at the next start.
TEST_F(JournalTest, AnOlderLogLeftByACrashIsIgnoredAndRemoved) {
  {
    auto j = Journal::Open(dir_);
    ASSERT_TRUE((*j)->Put(Record("a", 1)).ok());
  }
  const std::string saved = dir_ + ".log-with-a";
  fs::copy_file(Log(), saved);  // log-1: "a" put
  {
    auto j = Journal::Open(dir_);  // log-2: "a", then its removal
    ASSERT_TRUE((*j)->Remove("a").ok());
  }
  fs::rename(saved, dir_ + "/log-1");  // the older log still naming "a"
  auto j = Journal::Open(dir_);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE((*j)->List().empty());
  EXPECT_EQ(Files().size(), 1u);
}

}  // namespace
}  // namespace shoal::engine
