#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shoal {

// Writes all of `data` at `offset` (pwrite), through short writes and EINTR.
// Returns 0, or the errno of the failure for the caller to explain.
int WriteAt(int fd, std::string_view data, uint64_t offset);

// Reads `len` bytes at `offset` into `out` (pread), through short reads and EINTR. Returns 0,
// ENODATA if the file ends first, or the errno of the failure.
int ReadAt(int fd, char* out, uint64_t len, uint64_t offset);

// fsyncs a directory, which makes a rename or unlink in it durable. 0 or errno.
int SyncDirectory(const std::string& dir);

// mkdir -p `dir`; with `sync`, each directory made is durable before the next goes in it (its
// parent fsynced after the mkdir), so a power cut cannot lose a directory whose files were
// fsynced. Directories that exist are left as they are. 0 or errno.
int CreateDirectories(const std::string& dir, bool sync);

// A failed system call on the node's data directory (its chunks, its journal) as a Status that
// says what to do: disk full -> kResourceExhausted, permissions -> kPermissionDenied, else kIOError.
Status DataDirError(const std::string& what, int err);

// An exclusive flock(2) on a file holding this process's PID: one owner per directory.
// Released when destroyed, or by the kernel when the process dies (kill -9 included).
class FileLock {
 public:
  // Creates `path` if missing and locks it. kAlreadyExists naming the holder's PID (as the
  // file says it) when another process holds it; `what` names the thing locked in messages
  // ("--data-dir /nvme/shoal").
  static Result<std::unique_ptr<FileLock>> Acquire(const std::string& path, const std::string& what);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace shoal
