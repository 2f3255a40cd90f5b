#include "engine/chunk_pack.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/file.h"

namespace shoal::engine {

Result<std::shared_ptr<ChunkPack>> ChunkPack::Create(const std::string& path, bool sync) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return DataDirError("creating pack " + path, errno);
  if (sync) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (int err = SyncDirectory(dir); err != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return DataDirError("syncing directory " + dir, err);
    }
  }
  return std::shared_ptr<ChunkPack>(new ChunkPack(path, fd, 0, true));
}

Result<std::shared_ptr<ChunkPack>> ChunkPack::OpenExisting(const std::string& path, uint64_t end) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return DataDirError("opening pack " + path, errno);
  return std::shared_ptr<ChunkPack>(new ChunkPack(path, fd, end, false));
}

ChunkPack::~ChunkPack() {
  ::close(fd_);
  if (!keep_) ::unlink(path_.c_str());
}

Result<uint64_t> ChunkPack::Append(std::string_view head, std::string_view payload, uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!writable_) return Status::Unavailable("pack " + path_ + " takes no more entries");
  const uint64_t offset = Aligned(end_);
  const uint64_t size = head.size() + payload.size();
  if (offset + size > limit && end_ > 0) return Status::Unavailable("pack " + path_ + " is full");
  int err = WriteAt(fd_, head, offset);
  if (err == 0) err = WriteAt(fd_, payload, offset + head.size());
  if (err != 0) {
    // Cut the partial entry off, so the next one follows the last whole one; if that fails,
    // take no more here (a later entry after garbage would never be read back).
    if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) writable_ = false;
    return DataDirError("writing pack " + path_, err);
  }
  end_ = offset + size;
  return offset;
}

Status ChunkPack::SyncTo(uint64_t end) {
  std::unique_lock<std::mutex> lock(mu_);
  while (synced_ < end) {
    if (sync_error_ != 0) return DataDirError("syncing pack " + path_, sync_error_);
    if (syncing_) {
      synced_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    const uint64_t target = end_;
    lock.unlock();
    const int rc = ::fdatasync(fd_);
    const int err = errno;
    lock.lock();
    syncing_ = false;
    if (rc == 0) {
      synced_ = std::max(synced_, target);
    } else {
      sync_error_ = err;
      writable_ = false;
    }
    synced_cv_.notify_all();
  }
  return Status::Ok();
}

void ChunkPack::Kill(uint64_t offset, uint64_t keep, uint64_t span, const char dead_magic[8]) {
  if (keep_) return;
  if (WriteAt(fd_, std::string_view(dead_magic, 8), offset) != 0) return;
  const uint64_t from = offset + Aligned(keep);
  if (span > from - offset) {
    ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                static_cast<off_t>(offset + span - from));
  }
}

Status ChunkPack::Read(uint64_t offset, char* out, uint64_t len) const {
  const int err = ReadAt(fd_, out, len, offset);
  if (err == ENODATA) return Status::Corruption("pack " + path_ + " is truncated");
  return err == 0 ? Status::Ok() : DataDirError("reading pack " + path_, err);
}

bool ChunkPack::writable() {
  std::lock_guard<std::mutex> lock(mu_);
  return writable_;
}

}  // namespace shoal::engine
