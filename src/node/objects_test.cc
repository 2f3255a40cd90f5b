#include "node/objects.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "testing/process.h"

namespace shoal::node {
namespace {

// A catalog over file:// objects in a temporary directory: what the store has is what is on
// disk, and each HEAD it sends is counted (NodeMetrics::store_head_requests).
class ObjectCatalogTest : public ::testing::Test {
 protected:
  std::string Url(const std::string& name) { return "file://" + dir_.path() + "/" + name; }
  void Put(const std::string& name, const std::string& bytes) { std::ofstream(dir_.path() + "/" + name) << bytes; }
  uint64_t Heads() { return metrics_.store_head_requests.load(); }

  testing::TempDir dir_;
  NodeOptions options_;
  NodeMetrics metrics_;
};

// A name the store does not have (a directory's, looked up by a mount) is remembered as absent
// for --metadata-ttl like an object's size: asking again costs no HEAD, even once the object
// appears in the store behind the node's back. What the cluster tells of the name replaces it.
TEST_F(ObjectCatalogTest, ANameTheStoreDoesNotHaveIsRememberedUntilTheClusterChangesIt) {
  options_.metadata_ttl.set(std::chrono::seconds(3600));
  ObjectCatalog catalog(options_, &metrics_);
  EXPECT_EQ(catalog.Stat(Url("dir")).status().code(), Code::kNotFound);
  EXPECT_EQ(Heads(), 1u);
  Put("dir", "written by another tool");
  EXPECT_EQ(catalog.Stat(Url("dir")).status().code(), Code::kNotFound) << "within the TTL";
  EXPECT_EQ(Heads(), 1u);

  catalog.Invalidate(Url("dir"));  // a delete or a write gone elsewhere: ask again
  auto found = catalog.Stat(Url("dir"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->size, 23u);
  EXPECT_EQ(Heads(), 2u);

  EXPECT_EQ(catalog.Stat(Url("gone")).status().code(), Code::kNotFound);
  catalog.Fresh(Url("gone"), ObjectInfo{"", 7, "etag-7", 0});  // a write through the cluster went up
  auto fresh = catalog.Stat(Url("gone"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->etag, "etag-7");
  catalog.SetLocal(Url("new"), ObjectInfo{"", 3, "local-1", 0});
  EXPECT_TRUE(catalog.Stat(Url("new")).ok());
  EXPECT_EQ(Heads(), 3u);
}

// A write replayed or taken over here that is older than one this node knows of the same name
// (uploaded: its announcement's time; or pending here) does not replace it: readers keep the
// newer, and the older's upload will find the newer in the store. A newer write does.
TEST_F(ObjectCatalogTest, AWriteOlderThanOneKnownDoesNotReplaceIt) {
  options_.metadata_ttl.set(std::chrono::seconds(3600));
  ObjectCatalog catalog(options_, &metrics_);
  catalog.Fresh(Url("ckpt"), ObjectInfo{"", 7, "etag-newer", 0}, 2000);
  EXPECT_FALSE(catalog.SetLocal(Url("ckpt"), ObjectInfo{"", 3, "local-older", 0}, 1000));
  EXPECT_FALSE(catalog.IsLocal(Url("ckpt")));
  EXPECT_EQ(catalog.Stat(Url("ckpt"))->etag, "etag-newer");
  EXPECT_TRUE(catalog.SetLocal(Url("ckpt"), ObjectInfo{"", 4, "local-newest", 0}, 3000));
  EXPECT_EQ(catalog.Stat(Url("ckpt"))->etag, "local-newest");
  EXPECT_FALSE(catalog.SetLocal(Url("ckpt"), ObjectInfo{"", 3, "local-older", 0}, 1000)) << "a newer pending here";
  EXPECT_EQ(catalog.Stat(Url("ckpt"))->etag, "local-newest");
  // Uploaded, it keeps its time: an older write still does not replace it.
  catalog.SetDurable(Url("ckpt"), "local-newest", ObjectInfo{"", 4, "etag-newest", 0});
  EXPECT_FALSE(catalog.SetLocal(Url("ckpt"), ObjectInfo{"", 3, "local-older", 0}, 2500));
  EXPECT_EQ(catalog.Stat(Url("ckpt"))->etag, "etag-newest");
  EXPECT_EQ(Heads(), 0u);
}

// A reader of an object's first chunk learns a new name's size, ETag and metadata from one GET
// of that chunk, whose bytes it is handed to keep: no HEAD. A name seen before (expired here)
// is asked with a HEAD: its chunks are likely cached already.
TEST_F(ObjectCatalogTest, AReaderOfTheFirstChunkLearnsANewNameFromItsGetNotAHead) {
  options_.metadata_ttl.set(std::chrono::seconds(3600));
  ObjectCatalog catalog(options_, &metrics_);
  Put("small", std::string(100, 's'));
  Put("big", std::string(3000, 'b'));
  Put("empty", "");
  std::map<std::string, std::string> kept;
  ObjectCatalog::FirstChunk first{1024, [&](const ObjectInfo& info, std::string bytes) {
                                    kept[info.etag + "/" + std::to_string(info.size)] = std::move(bytes);
                                  },
                                  nullptr};
  auto small = catalog.Stat(Url("small"), &first);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->size, 100u);
  ASSERT_TRUE(small->meta != nullptr) << "the metadata comes with the GET's answer";
  EXPECT_EQ(small->meta->content_type, kDefaultContentType);
  EXPECT_EQ(kept[small->etag + "/100"], std::string(100, 's'));
  auto big = catalog.Stat(Url("big"), &first);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->size, 3000u);
  EXPECT_EQ(kept[big->etag + "/3000"], std::string(1024, 'b')) << "the first chunk only";
  auto empty = catalog.Stat(Url("empty"), &first);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->size, 0u);
  EXPECT_EQ(catalog.Stat(Url("absent"), &first).status().code(), Code::kNotFound);
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(Heads(), 0u);
  EXPECT_EQ(metrics_.store_first_chunk_gets.load(), 4u);
  EXPECT_EQ(metrics_.store_get_requests.load(), 4u);
  EXPECT_EQ(metrics_.store_get_bytes.load(), 1124u);

  // Within the TTL: from memory, whatever the asker reads.
  EXPECT_TRUE(catalog.Stat(Url("small"), &first).ok());
  EXPECT_EQ(catalog.Stat(Url("absent"), &first).status().code(), Code::kNotFound);
  EXPECT_EQ(metrics_.store_first_chunk_gets.load() + Heads(), 4u);
  // Expired: a HEAD, not the chunk again.
  options_.metadata_ttl.set(std::chrono::seconds(0));
  auto again = catalog.Stat(Url("big"), &first);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->etag, big->etag);
  EXPECT_EQ(Heads(), 1u);
  EXPECT_EQ(metrics_.store_first_chunk_gets.load(), 4u);
  EXPECT_EQ(kept.size(), 2u);

  // A first chunk that would not come from the store here (held at some version, or another
  // node's): a HEAD, even for a new name.
  options_.metadata_ttl.set(std::chrono::seconds(3600));
  Put("held", std::string(10, 'h'));
  ObjectCatalog::FirstChunk held = first;
  held.from_store = [] { return false; };
  EXPECT_TRUE(catalog.Stat(Url("held"), &held).ok());
  EXPECT_EQ(Heads(), 2u);
  EXPECT_EQ(metrics_.store_first_chunk_gets.load(), 4u);
  EXPECT_EQ(kept.size(), 2u);
}

TEST_F(ObjectCatalogTest, WithValidateOrAnExpiredTtlTheStoreIsAskedAgain) {
  options_.validate.set(true);
  ObjectCatalog catalog(options_, &metrics_);
  EXPECT_EQ(catalog.Stat(Url("x")).status().code(), Code::kNotFound);
  Put("x", "now");
  EXPECT_TRUE(catalog.Stat(Url("x")).ok());
  EXPECT_EQ(Heads(), 2u);

  options_.validate.set(false);
  options_.metadata_ttl.set(std::chrono::seconds(0));
  EXPECT_EQ(catalog.Stat(Url("y")).status().code(), Code::kNotFound);
  EXPECT_EQ(catalog.Stat(Url("y")).status().code(), Code::kNotFound);
  EXPECT_EQ(Heads(), 4u);
}

// Names looked at are remembered up to the bound (expired ones dropped first, then any), and a
// write taken here and not yet durable is never dropped.
TEST_F(ObjectCatalogTest, ItRemembersAtMostItsBoundAndNeverDropsAWriteTakenHere) {
  options_.metadata_ttl.set(std::chrono::seconds(3600));
  ObjectCatalog catalog(options_, &metrics_, /*max_entries=*/100);
  catalog.SetLocal(Url("mine"), ObjectInfo{"", 5, "local-9", 0});
  for (int i = 0; i < 1000; i++) {
    EXPECT_EQ(catalog.Stat(Url("absent-" + std::to_string(i))).status().code(), Code::kNotFound);
    ASSERT_LE(catalog.entries(), 100u);
  }
  EXPECT_GE(catalog.entries(), 75u);
  auto mine = catalog.Stat(Url("mine"));
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->etag, "local-9");
  EXPECT_EQ(Heads(), 1000u);
}

// Far under the bound, names past their TTL are swept out each time the names kept have
// doubled (from 65,536): a node writing or reading many objects holds about what the TTL
// keeps, not every name it ever saw. Writes taken here stay.
TEST_F(ObjectCatalogTest, ExpiredNamesAreSweptLongBeforeTheBound) {
  options_.metadata_ttl.set(std::chrono::seconds(0));  // every name expired at once
  ObjectCatalog catalog(options_, &metrics_);
  catalog.SetLocal(Url("mine"), ObjectInfo{"", 5, "local-9", 0});
  for (int i = 0; i < 100000; i++) catalog.Fresh(Url("n" + std::to_string(i)), ObjectInfo{"", 1, "e", 0});
  // The sweep at 65,536 names (the local write and 65,535 others) kept the write alone; the
  // next is at 65,536 again.
  EXPECT_EQ(catalog.entries(), 1u + (100000 - 65535));
  EXPECT_TRUE(catalog.IsLocal(Url("mine")));
}

// A write taken here and not yet uploaded yields to a newer one taken through another node once
// that one is in the store (its home learns it: WriteDirectory::Record); an older one, or one
// whose age is not said, does not replace it.
TEST_F(ObjectCatalogTest, AWriteTakenHereYieldsOnlyToANewerOneInTheStore) {
  ObjectCatalog catalog(options_, &metrics_);
  catalog.SetLocal(Url("x"), ObjectInfo{"", 5, "local-1", 0}, /*written_ms=*/2000);
  catalog.Fresh(Url("x"), ObjectInfo{"", 7, "etag-older", 0}, 1000);
  catalog.Fresh(Url("x"), ObjectInfo{"", 7, "etag-unsaid", 0});
  EXPECT_EQ(catalog.Stat(Url("x"))->etag, "local-1");
  EXPECT_TRUE(catalog.IsLocal(Url("x")));
  catalog.Fresh(Url("x"), ObjectInfo{"", 9, "etag-newer", 0}, 3000);
  auto got = catalog.Stat(Url("x"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->etag, "etag-newer");
  EXPECT_EQ(got->size, 9u);
  EXPECT_FALSE(catalog.IsLocal(Url("x")));
  catalog.ForgetLocal(Url("x"), "local-1");  // the older write, dropped once its upload sees the newer
  EXPECT_EQ(catalog.Stat(Url("x"))->etag, "etag-newer");
  EXPECT_EQ(Heads(), 0u);
}

// Uploads heard of out of order (two writes through other nodes, the newer's announcement
// first): the older one's does not replace what readers get; one whose age is not said does
// (it is what the store said last).
TEST_F(ObjectCatalogTest, AnOlderUploadHeardOfAfterANewerOneDoesNotReplaceIt) {
  ObjectCatalog catalog(options_, &metrics_);
  catalog.Fresh(Url("x"), ObjectInfo{"", 9, "etag-newer", 0}, 3000);
  catalog.Fresh(Url("x"), ObjectInfo{"", 7, "etag-older", 0}, 1000);
  EXPECT_EQ(catalog.Stat(Url("x"))->etag, "etag-newer");
  catalog.Fresh(Url("x"), ObjectInfo{"", 8, "etag-unsaid", 0});
  EXPECT_EQ(catalog.Stat(Url("x"))->etag, "etag-unsaid");
  EXPECT_EQ(Heads(), 0u);
}

// The aliases outlast the catalog (a restart): a new one over the same file maps the store's
// ETags to the same local versions; a torn last line (a crash mid-append) is skipped, and the
// file is compacted to one line per alias at start.
TEST_F(ObjectCatalogTest, AliasesKeptInTheirFileOutlastARestart) {
  const std::string path = dir_.path() + "/aliases";
  {
    ObjectCatalog catalog(options_, &metrics_);
    ASSERT_TRUE(catalog.PersistAliases(path).ok());
    catalog.SetDurable(Url("a"), "local-1", ObjectInfo{"", 3, "etag-a", 0});
    catalog.AddAlias(Url("tab\tand\nnewline"), "etag-b", "local-2");
    catalog.AddAlias(Url("a"), "etag-a", "local-3");  // the same ETag again: the newest counts
  }
  std::ofstream(path, std::ios::app) << "{\"k\": \"torn";
  ObjectCatalog again(options_, &metrics_);
  ASSERT_TRUE(again.PersistAliases(path).ok());
  EXPECT_EQ(again.aliases(), 2u);
  EXPECT_EQ(again.ChunkVersion(Url("a"), "etag-a"), "local-3");
  EXPECT_EQ(again.ChunkVersion(Url("tab\tand\nnewline"), "etag-b"), "local-2");
  EXPECT_EQ(again.ChunkVersion(Url("a"), "etag-other"), "etag-other");
  std::ifstream in(path);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) lines++;
  EXPECT_EQ(lines, 2u) << "compacted";
}

}  // namespace
}  // namespace shoal::node
