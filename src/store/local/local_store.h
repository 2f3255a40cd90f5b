#pragma once

#include <memory>
#include <string>

#include "store/object_store.h"

namespace shoal {

// Objects as files under `root`: key "a/b" is the file root/a/b. Writes are atomic (a hidden
// temp file in the same directory, fsync, rename). Keys that would escape the root (`..`,
// `.`, a leading '/', empty segments, NUL) are refused with kInvalidArgument. The ETag is
// derived from inode, size and modification time.
struct LocalStoreOptions {
  // fsync each written file and its directory before a write returns (an object store's
  // durability). Off, a write is still atomic (rename) but may sit in the page cache, as
  // with cp: the CLI uses that for plain local paths.
  bool sync = true;
};

std::shared_ptr<ObjectStore> NewLocalStore(const std::string& root, LocalStoreOptions options = {});

}  // namespace shoal
