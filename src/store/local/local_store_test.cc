#include "store/local/local_store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace shoal {
namespace {

class LocalStoreTest : public ::testing::Test {
 protected:
  // The store's root is outer_/root, so a key that escaped would land in outer_, which the
  // test owns (and can check), not in a shared directory like /tmp.
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-local-XXXXXX";
    outer_ = mkdtemp(tmpl);
    root_ = outer_ + "/root";
    std::filesystem::create_directories(root_);
    store_ = NewLocalStore(root_);
  }
  void TearDown() override { std::filesystem::remove_all(outer_); }

  std::string Read(const std::string& key, uint64_t off = 0, uint64_t len = ReadOptions::kToEnd) {
    std::string out;
    ReadOptions ro;
    ro.offset = off;
    ro.length = len;
    Status st = store_->Get(key, ro, [&](const char* d, size_t n) {
      out.append(d, n);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  std::string outer_;
  std::string root_;
  std::shared_ptr<ObjectStore> store_;
};

TEST_F(LocalStoreTest, KeysThatWouldEscapeTheRootAreRefused) {
  for (const std::string& key : std::vector<std::string>{"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a/", std::string("a\0b", 3),
                          ".shoal-tmp-1"}) {
    auto r = store_->PutObject(key, "data");
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << key;
  }
  EXPECT_FALSE(std::filesystem::exists(outer_ + "/x"));  // where "../x" and "a/../../x" lead
}

TEST_F(LocalStoreTest, ReadOfMissingKeyIsNotFound) {
  Status st = store_->Get("nope", {}, [](const char*, size_t) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(store_->Head("nope").status().code(), Code::kNotFound);
}

TEST_F(LocalStoreTest, MultipartIsInvisibleUntilComplete) {
  auto up = store_->BeginUpload("dir/obj");
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->PutPart(1, 3, "def").ok());
  ASSERT_TRUE((*up)->PutPart(0, 0, "abc").ok());
  EXPECT_EQ(store_->Head("dir/obj").status().code(), Code::kNotFound);
  auto page = store_->List({});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->objects.empty());  // the temp file is hidden
  auto info = (*up)->Complete(2);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 6u);
  EXPECT_EQ(Read("dir/obj"), "abcdef");
  EXPECT_EQ(Read("dir/obj", 2, 3), "cde");
}

TEST_F(LocalStoreTest, AbortLeavesNothing) {
  auto up = store_->BeginUpload("x");
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->PutPart(0, 0, "abc").ok());
  (*up)->Abort();
  int files = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(root_)) files += e.is_regular_file();
  EXPECT_EQ(files, 0);
}

TEST_F(LocalStoreTest, IfMatchFailsAfterOverwrite) {
  auto first = store_->PutObject("k", "one");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->PutObject("k", "two!").ok());
  ReadOptions ro;
  ro.if_match = first->etag;
  Status st = store_->Get("k", ro, [](const char*, size_t) { return Status::Ok(); });
  EXPECT_EQ(st.code(), Code::kPreconditionFailed);
}

TEST_F(LocalStoreTest, ListPaginatesInKeyOrderAndGroupsByDelimiter) {
  for (const std::string& k : std::vector<std::string>{"p/b", "p/a", "p/c/d", "p/c/e", "q"}) ASSERT_TRUE(store_->PutObject(k, k).ok());
  ListOptions lo;
  lo.prefix = "p/";
  lo.max_keys = 2;
  std::vector<std::string> keys;
  for (int pages = 0;; pages++) {
    ASSERT_LT(pages, 10);
    auto page = store_->List(lo);
    ASSERT_TRUE(page.ok());
    for (auto& o : page->objects) keys.push_back(o.key);
    if (page->next_continuation.empty()) break;
    lo.continuation = page->next_continuation;
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"p/a", "p/b", "p/c/d", "p/c/e"}));
  ListOptions delim;
  delim.prefix = "p/";
  delim.delimiter = "/";
  auto page = store_->List(delim);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->prefixes, std::vector<std::string>{"p/c/"});
}

TEST_F(LocalStoreTest, MetadataIsInUserXattrsOfTheObjectsFile) {
  ObjectMeta meta;
  meta.content_type = "text/plain";
  meta.user["author"] = "Ada";
  ASSERT_TRUE(store_->PutObject("a/b.txt", "x", meta).ok());
  char value[64];
  ssize_t n = ::getxattr((root_ + "/a/b.txt").c_str(), "user.shoal.content_type", value, sizeof(value));
  ASSERT_EQ(n, 10);
  EXPECT_EQ(std::string(value, n), "text/plain");
  n = ::getxattr((root_ + "/a/b.txt").c_str(), "user.shoal.meta.author", value, sizeof(value));
  ASSERT_EQ(n, 3);
  EXPECT_EQ(std::string(value, n), "Ada");
  // Attributes of other tools are not metadata.
  ASSERT_EQ(::setxattr((root_ + "/a/b.txt").c_str(), "user.other", "1", 1, 0), 0);
  auto head = store_->Head("a/b.txt");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head->meta, meta);
}

// ramfs keeps no user extended attributes: a write with metadata says so and leaves nothing
// (no object, no temp file); one without works, and heads as the default content type.
TEST_F(LocalStoreTest, AFilesystemWithoutXattrsRefusesMetadataNotTheWrite) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting ramfs needs root";
  std::string mnt = outer_ + "/ramfs";
  std::filesystem::create_directories(mnt);
  ASSERT_EQ(::mount("ramfs", mnt.c_str(), "ramfs", 0, nullptr), 0);
  auto store = NewLocalStore(mnt);
  ObjectMeta meta;
  meta.user["author"] = "Ada";
  auto put = store->PutObject("k", "x", meta);
  EXPECT_EQ(put.status().code(), Code::kInvalidArgument);
  EXPECT_NE(put.status().message().find("extended attributes"), std::string::npos) << put.status().ToString();
  EXPECT_TRUE(std::filesystem::is_empty(mnt));
  ASSERT_TRUE(store->PutObject("k", "x").ok());
  auto head = store->Head("k");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  ObjectMeta plain;
  plain.content_type = kDefaultContentType;
  EXPECT_EQ(*head->meta, plain);
  ::umount2(mnt.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace shoal
