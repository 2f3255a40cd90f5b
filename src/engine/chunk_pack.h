#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shoal::engine {

// One pack file: small chunks appended one after another at 4 KiB-aligned offsets, so a burst
// of small chunks costs the file system one file, not one inode each, and the disk one sync per
// batch of writers (SyncTo is a group commit), not one per chunk plus its directory.
//
// An entry is what ChunkStore puts there (header, key, payload); the pack sees bytes. Appends
// are written in order, one at a time, and a failed append is cut off again (or, if that fails
// too, the pack takes no more), so what a sync makes durable is always a prefix of the file:
// Rebuild reads entries from the start until the first that is not whole.
//
// Kill(offset, keep, span) marks a dead entry by rewriting its first 8 bytes (the header's magic)
// and punches out its blocks past the first `keep` (the header's), which frees its disk space
// at once on ext4, xfs and tmpfs (elsewhere, when the pack goes). A pack is deleted when its
// last user lets go of it (the store's active pack, and every live entry's slot) unless
// Keep() was called (the store is closing: nothing is deleted or marked then).
//
// Thread-safety: every method may be called from any thread; mu_ guards the append end and
// the sync state. Append holds it while it writes (appends are serial); SyncTo's fdatasync
// runs outside it, once for every waiter whose bytes it covers.
class ChunkPack {
 public:
  static constexpr uint64_t kAlign = 4096;
  static uint64_t Aligned(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

  // Creates pack file `path` (its directory fsynced when `sync`, so a synced entry's file is
  // found after a crash).
  static Result<std::shared_ptr<ChunkPack>> Create(const std::string& path, bool sync);
  // An existing pack (at start), `end` bytes long as Rebuild read it: entries are only read
  // and killed there, never appended.
  static Result<std::shared_ptr<ChunkPack>> OpenExisting(const std::string& path, uint64_t end);
  ~ChunkPack();
  ChunkPack(const ChunkPack&) = delete;
  ChunkPack& operator=(const ChunkPack&) = delete;

  // Appends `head` then `payload` at the next aligned offset, unless that would take the file
  // past `limit` bytes or the pack takes no more (then kUnavailable and nothing written: the
  // caller starts a new pack).
  // Returns the entry's offset. Not durable until SyncTo(offset + size).
  Result<uint64_t> Append(std::string_view head, std::string_view payload, uint64_t limit);
  // Waits until bytes [0, end) are on disk. A failed sync fails this and every later one that
  // needs bytes not synced before it (the page cache's state is unknown after it).
  Status SyncTo(uint64_t end);
  // Marks the entry at `offset` dead (writes `dead_magic` over its first 8 bytes) and frees its
  // blocks in [offset + Aligned(keep), offset + span). Best effort: a pack that is gone or a file
  // system without hole punching only keeps the space until the pack is deleted.
  void Kill(uint64_t offset, uint64_t keep, uint64_t span, const char dead_magic[8]);
  // Reads `len` bytes at `offset`.
  Status Read(uint64_t offset, char* out, uint64_t len) const;
  // The pack's descriptor (valid while this object lives): dup() it to hand it out.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Whether Append may still be tried (not a pack opened at start, not failed).
  bool writable();
  // Leaves the file as it is when this object goes (the store is closing).
  void Keep() { keep_ = true; }

 private:
  ChunkPack(std::string path, int fd, uint64_t end, bool writable)
      : path_(std::move(path)), fd_(fd), end_(end), synced_(end), writable_(writable) {}

  const std::string path_;
  const int fd_;
  std::mutex mu_;
  std::condition_variable synced_cv_;
  uint64_t end_;         // bytes written; guarded by mu_
  uint64_t synced_;      // bytes known durable; guarded by mu_
  bool syncing_ = false; // a caller is in fdatasync; guarded by mu_
  int sync_error_ = 0;   // errno of a failed sync (then nothing more is synced); guarded by mu_
  bool writable_;        // guarded by mu_
  std::atomic<bool> keep_{false};
};

}  // namespace shoal::engine
