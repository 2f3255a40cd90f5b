#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shoal {

// Writes all of `data` at `offset` (pwrite), through short writes and EINTR.
// Returns 0, or the errno of the failure for the caller to explain.
int WriteAt(int fd, std::string_view data, uint64_t offset);

// fsyncs a directory, which makes a rename or unlink in it durable. 0 or errno.
int SyncDirectory(const std::string& dir);

}  // namespace shoal
