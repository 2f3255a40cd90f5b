#pragma once

#include <memory>
#include <string>

#include "store/object_store.h"

namespace shoal {

// Objects as files under `root`: key "a/b" is the file root/a/b. Writes are atomic (a hidden
// temp file in the same directory, fsync, rename). Keys that would escape the root (`..`,
// `.`, a leading '/', empty segments, NUL) are refused with kInvalidArgument. The ETag is
// derived from inode, size and modification time.
//
// Metadata (ObjectMeta) lives in user extended attributes of the object's file:
// user.shoal.content_type (and content_encoding, content_language, content_disposition,
// cache_control) and user.shoal.meta.NAME. They are set on the temp file before its rename,
// so bytes and metadata appear together and leave together (delete, rename, cp --preserve=xattr)
// with no second file to keep in step, and `getfattr -d` shows them. On a filesystem without
// user extended attributes (tmpfs without user_xattr, some NFS and FUSE mounts) a write with
// metadata fails with kInvalidArgument saying so, never dropping it in silence; writes without
// metadata work as before, and Head answers no metadata there.
struct LocalStoreOptions {
  // fsync each written file and its directory before a write returns (an object store's
  // durability). Off, a write is still atomic (rename) but may sit in the page cache, as
  // with cp: the CLI uses that for plain local paths.
  bool sync = true;
};

std::shared_ptr<ObjectStore> NewLocalStore(const std::string& root, LocalStoreOptions options = {});

}  // namespace shoal
