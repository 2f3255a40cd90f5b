#include "node/objects.h"

#include <gtest/gtest.h>

#include <fstream>

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

}  // namespace
}  // namespace shoal::node
