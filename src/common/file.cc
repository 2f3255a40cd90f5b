#include "common/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace shoal {

Status DataDirError(const std::string& what, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status::ResourceExhausted(what + ": disk full; free space or lower --capacity");
  }
  if (err == EACCES || err == EPERM || err == EROFS) {
    return Status::PermissionDenied(what + ": " + std::strerror(err) + " (check the data directory's permissions)");
  }
  return Status::IOError(what + ": " + std::strerror(err));
}

int WriteAt(int fd, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

int ReadAt(int fd, char* out, uint64_t len, uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pread(fd, out, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENODATA;
    out += n;
    len -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

int SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int CreateDirectories(const std::string& dir, bool sync) {
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) == 0) return 0;
  std::string parent = dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  size_t slash = parent.rfind('/');
  parent = slash == std::string::npos ? "." : slash == 0 ? "/" : parent.substr(0, slash);
  if (int err = CreateDirectories(parent, sync); err != 0) return err;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno;
  return sync ? SyncDirectory(parent) : 0;
}

Result<std::unique_ptr<FileLock>> FileLock::Acquire(const std::string& path, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open " + path + " to lock " + what + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return Status::IOError("cannot lock " + path + " for " + what + ": " + std::strerror(err));
    }
    // The holder writes its PID just after it takes the lock: give it a moment to.
    std::string pid;
    for (int i = 0; i < 20 && pid.empty(); i++) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      for (ssize_t k = 0; k < n && buf[k] >= '0' && buf[k] <= '9'; k++) pid.push_back(buf[k]);
      if (pid.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::close(fd);
    return Status::AlreadyExists(what + " is in use by " + (pid.empty() ? "another process" : "PID " + pid) +
                                 ", which holds the lock on " + path +
                                 ": stop it first, or give this process a directory of its own");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || WriteAt(fd, pid, 0) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError("cannot write this process's PID into " + path + ": " + std::strerror(err));
  }
  return std::unique_ptr<FileLock>(new FileLock(fd));
}

FileLock::~FileLock() { ::close(fd_); }

}  // namespace shoal
