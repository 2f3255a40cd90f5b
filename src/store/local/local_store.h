#pragma once

#include <memory>
#include <string>

#include "store/object_store.h"

namespace shoal {

// Objects as files under `root`: key "a/b" is the file root/a/b. Writes are atomic (a hidden
// temp file in the same directory, fsync, rename). Keys that would escape the root (`..`,
// `.`, a leading '/', empty segments, NUL) are refused with kInvalidArgument. The ETag is
// derived from inode, size and modification time.
std::shared_ptr<ObjectStore> NewLocalStore(const std::string& root);

}  // namespace shoal
