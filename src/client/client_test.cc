#include "client/client.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "client/cache_store.h"
#include "store/local/local_store.h"

namespace shoal::client {
namespace {

// The Reader over the local-directory backend, with small blocks so that a few MiB span
// many blocks, buffer reuses and read-ahead windows.
class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-client-XXXXXX";
    root_ = mkdtemp(tmpl);
    store_ = NewLocalStore(root_);
    std::mt19937_64 rng(7);
    data_.resize((3u << 20) + 12345);
    for (auto& c : data_) c = static_cast<char>(rng());
    auto put = store_->PutObject("obj", data_);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    info_ = *put;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<Reader> Open() {
    ReaderOptions o;
    o.block_size = 64 << 10;
    o.readahead = 3;
    return std::make_unique<Reader>(store_, "obj", info_, o);
  }

  std::string root_;
  std::shared_ptr<ObjectStore> store_;
  std::string data_;
  ObjectInfo info_;
};

TEST_F(ReaderTest, ReadsAtRandomOffsetsAndLengthsEqualTheObject) {
  auto reader = Open();
  std::mt19937_64 rng(11);
  std::string buf;
  for (int i = 0; i < 200; i++) {
    uint64_t off = rng() % (data_.size() + 100);  // some past the end
    size_t n = 1 + rng() % (300 << 10);             // up to several blocks
    buf.assign(n, '\0');
    auto got = reader->ReadAt(off, buf.data(), n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    size_t want = off >= data_.size() ? 0 : std::min<uint64_t>(n, data_.size() - off);
    ASSERT_EQ(*got, want) << "read " << i << " at " << off;
    ASSERT_EQ(buf.compare(0, want, data_, off, want), 0) << "read " << i << " at " << off;
  }
}

// Pieces point into the Reader's block buffers, which it reuses: a piece still held must keep
// its bytes while the Reader recycles buffers for later blocks, and after it is gone.
TEST_F(ReaderTest, PiecesKeepTheirBytesWhileBuffersAreReusedAndAfterTheReaderIsGone) {
  auto reader = Open();
  std::vector<std::pair<uint64_t, Piece>> held;
  const size_t step = 48 << 10;  // reads that straddle block edges
  for (uint64_t off = 0; off < data_.size(); off += step) {
    auto pieces = reader->Pieces(off, step);
    ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
    uint64_t at = off;
    for (auto& p : *pieces) {
      held.emplace_back(at, p);
      at += p.size;
    }
    ASSERT_EQ(at, std::min<uint64_t>(off + step, data_.size()));
  }
  ASSERT_GT(held.size(), 60u);
  reader.reset();
  for (const auto& [at, p] : held) {
    ASSERT_EQ(std::string_view(p.data, p.size), std::string_view(data_).substr(at, p.size)) << "piece at " << at;
  }
}

// The object replaced in the store after the Reader pinned its version: reads fail with
// kPreconditionFailed rather than mixing bytes of two versions.
TEST_F(ReaderTest, AReplacedObjectIsRefusedNotMixed) {
  auto reader = Open();
  char first[100];
  ASSERT_TRUE(reader->ReadAt(0, first, sizeof(first)).ok());
  ASSERT_TRUE(store_->PutObject("obj", std::string(data_.size(), 'x')).ok());
  std::string buf(1 << 20, '\0');
  auto got = reader->ReadAt(2 << 20, buf.data(), buf.size());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kPreconditionFailed) << got.status().ToString();
}

TEST(CacheStore, ANodeThatIsNotRunningIsNamedAsSuch) {
  CacheConfig config;
  config.endpoint = "unix:/nonexistent/shoald.sock";
  auto store = NewCacheStore(config, *ObjectUrl::Parse("az://c"));
  auto r = store->Head("k");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsConnectFailed()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("cannot reach the cache node at unix:/nonexistent/shoald.sock: "
                                      "is shoald running there?"),
            std::string::npos)
      << r.status().message();
}

TEST(EntryNodes, ANodeThatCannotBeReachedIsPassedOverForTheNextThenTriedFirstAgain) {
  EntryNodes entry({"a:1", "b:2"});
  EXPECT_EQ(entry.Current(), "a:1");
  EXPECT_TRUE(entry.Failed("a:1"));  // b is there to try
  EXPECT_EQ(entry.Current(), "b:2");
  entry.Learn({"b:2", "c:3"});  // b kept once, c after it
  EXPECT_EQ(entry.All(), (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_TRUE(entry.Failed("b:2"));
  EXPECT_EQ(entry.Current(), "c:3");
  EXPECT_FALSE(entry.Failed("c:3"));  // none left
  EXPECT_EQ(entry.Current(), "a:1");  // every one passed over: the one passed over longest ago
}

TEST(EntryNodes, AClientOnAUnixSocketLearnsNoMembers) {
  EntryNodes entry({"unix:/run/shoal/shoal.sock"});
  entry.Learn({"10.0.0.1:7070"});
  EXPECT_EQ(entry.All(), (std::vector<std::string>{"unix:/run/shoal/shoal.sock"}));
  EXPECT_FALSE(entry.Failed("unix:/run/shoal/shoal.sock"));
}

TEST(CacheConfig, SeveralNodesAreTakenInOrderAndMixedSchemesAreRefused) {
  auto c = CacheConfig::Resolve("unix:/run/shoal/shoal.sock, http://10.0.0.1:7070", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->endpoint, "unix:/run/shoal/shoal.sock");
  ASSERT_NE(c->entry, nullptr);
  EXPECT_EQ(c->entry->All(), (std::vector<std::string>{"unix:/run/shoal/shoal.sock", "10.0.0.1:7070"}));
  EXPECT_EQ(c->Describe(), "unix:/run/shoal/shoal.sock or 10.0.0.1:7070");
  auto mixed = CacheConfig::Resolve("https://a:1,http://b:2", "");
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("all serve TLS or none"), std::string::npos) << mixed.status().message();
  auto empty = CacheConfig::Resolve("a:1,", "");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("several of them comma-separated, got ''"), std::string::npos)
      << empty.status().message();
}

// Neither node listens: both were tried (each is passed over now) and the message names them.
// (cli_test shows a request going on to a node that runs.)
TEST(CacheStore, WhenNoNodeCanBeReachedEachWasTriedAndIsNamed) {
  CacheConfig config;
  config.endpoint = "unix:/nonexistent/shoald.sock";
  config.entry = std::make_shared<EntryNodes>(std::vector<std::string>{config.endpoint, "unix:/nonexistent/other.sock"});
  auto store = NewCacheStore(config, *ObjectUrl::Parse("az://c"));
  auto r = store->Head("k");
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(config.entry->Failed("none"));  // both passed over
  EXPECT_TRUE(r.status().IsConnectFailed()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("cannot reach the cache node at unix:/nonexistent/shoald.sock or "
                                      "unix:/nonexistent/other.sock"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace shoal::client
