#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/chunk_pack.h"
#include "engine/s3fifo.h"

namespace shoal::engine {

// Which bytes a chunk holds: fixed-size range `index` of one version of one object. Two
// versions of an object never share chunks, so a read never stitches versions together.
struct ChunkKey {
  std::string object;   // URL, e.g. "az://models/llama/model.bin"
  std::string version;  // the object's ETag
  uint64_t index = 0;

  // Stable 32-hex-digit id: the chunk's file name and index key.
  std::string Id() const;
  // "az://c/k@etag#3", for messages.
  std::string ToString() const;
};

struct ChunkStoreOptions {
  std::string dir;          // chunks live under dir/chunks/
  // Bytes of chunks kept at most, each chunk counted as its payload rounded up to `block`:
  // what its file takes on disk (its header, 32 bytes and the key, is not counted), so many
  // small chunks fill `capacity` as they fill the disk.
  uint64_t capacity = 0;
  bool sync = true;         // pinned chunks: start their write-back in Put; Sync waits for it
  // Chunks kept at most, pinned ones aside (each costs about 450 bytes of index in memory,
  // whatever its size: a bound for many small objects).
  uint64_t max_chunks = UINT64_MAX;
  // The unit a chunk's payload is counted in: 0 = the file system's block under `dir`
  // (statvfs f_frsize; 4 KiB on ext4 and xfs); 1 = bytes.
  uint64_t block = 0;
  // Chunks whose payload is smaller than this go into pack files (chunks/packs/, ChunkPack)
  // instead of one file each; 0: none. Such a chunk counts its header, key and payload
  // rounded up to 4 KiB against `capacity`.
  uint64_t pack_below = 0;
  // A pack takes no more entries once it holds this many bytes (the next one starts).
  uint64_t pack_bytes = 256ull << 20;
};

// A chunk's payload as an open file, to send from the page cache (sendfile) without reading it
// into memory. Owns its descriptor. The file stays whole while open, even if the chunk is
// evicted meanwhile (only its name goes; a packed chunk's bytes stay until its ChunkFile goes).
struct ChunkFile {
  ChunkFile(int f, uint64_t off, uint64_t len, std::shared_ptr<void> hold = nullptr)
      : fd(f), offset(off), length(len), keep(std::move(hold)) {}
  ~ChunkFile();
  ChunkFile(const ChunkFile&) = delete;
  ChunkFile& operator=(const ChunkFile&) = delete;
  const int fd;
  const uint64_t offset;  // where the payload starts in the file
  const uint64_t length;  // payload bytes
  const std::shared_ptr<void> keep;  // what keeps the bytes in place while this is open
};

struct ChunkStoreStats {
  uint64_t chunks = 0;
  uint64_t bytes = 0;          // payload bytes stored
  uint64_t pinned_bytes = 0;   // payload bytes that may not be evicted (not yet uploaded)
  uint64_t disk_bytes = 0;     // what counts against the capacity (payloads rounded up to blocks)
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t corruptions = 0;    // chunks that failed their checksum and were dropped
  uint64_t checks = 0;         // payloads read and checked against their checksum
  uint64_t packed = 0;         // chunks held in pack files (of `chunks`)
};

// Chunks on local disk, one file each: a header (magic, payload length, XXH3-64 checksum of
// the payload, the key) and the payload, written to a temp file and renamed into place; or,
// below `pack_below` bytes, the same header (with a check of itself) and payload appended to a
// pack file (ChunkPack): one file for thousands of small chunks, and one sync per batch of
// concurrent writers. A packed chunk that goes is marked dead in its pack and its blocks past
// the first are freed at once (that block stays until the pack goes: when its last chunk does).
// Packed chunks are checked on every Get and OpenFile.
// Every Get reads the payload and checks the checksum; OpenFile (for sendfile) checks it
// unless the bytes to send are pages this process wrote or checked that never left memory
// (see there); a chunk that fails it is deleted and reported as kCorruption, so the caller
// fetches it again. Open() rebuilds the index by reading every
// chunk's header, and every pack's entries up to the first that is not whole (rebuilt entries are unpinned: the write-back journal pins what it still
// has to upload). Eviction is S3-FIFO under `capacity` and never evicts a pinned chunk.
// With sync, the directories it makes (chunks/ and its subdirectories) are fsynced into their
// parents as they are made. Thread-safe.
class ChunkStore {
 public:
  static Result<std::unique_ptr<ChunkStore>> Open(const ChunkStoreOptions& options);
  ~ChunkStore();

  // Stores a chunk (replacing one with the same key), evicting unpinned chunks to make room.
  // kUnavailable when the space is held by pinned chunks (the caller waits for uploads);
  // kResourceExhausted ("disk full") when the disk is.
  // A pinned chunk is not durable when Put returns (its write-back has started): call Sync.
  // Its file stays open until then, so Sync fsyncs the descriptor that wrote it (a write-back
  // error is reported to that descriptor; one opened later may never see it).
  Status Put(const ChunkKey& key, std::string_view data, bool pinned);
  // Makes these chunks durable (fdatasync each file, on the descriptor Put wrote it with
  // where it is still open; fsync their directories; a packed chunk's pack once for all the
  // chunks of all callers its sync covers), so a write made of many chunks waits
  // for the disk once, at its end, as `dd conv=fsync` does. A no-op when the store was
  // opened with sync = false.
  Status Sync(const std::vector<ChunkKey>& keys);
  // The chunk's bytes: kNotFound on a miss; kCorruption (and the chunk is gone) on a bad
  // checksum or a damaged file.
  Result<std::string> Get(const ChunkKey& key);
  // The chunk's payload as an open file, for sending bytes [from, from + len) of it without
  // reading them here. The file's header and key are checked every time; the payload is read
  // and checked (as Get does) unless both hold: this process wrote this file, or checked it,
  // and it has not changed since (same inode and ctime: a write into it changes the ctime),
  // and every page of [from, from + len) is in the page cache (mincore). Pages that left
  // memory come back from the disk unchecked, so a read that needs any of them checks the
  // whole payload again, which also brings it back into memory. What is skipped is only
  // hashing again pages that were hashed, or written, and never left memory. Errors as Get.
  // Reads the disk when it checks: call it on a pool, not an event loop.
  Result<std::unique_ptr<ChunkFile>> OpenFile(const ChunkKey& key, uint64_t from, uint64_t len);
  bool Contains(const ChunkKey& key);
  // Whether chunk 0 of `object` is held at some version (being stored counts): a reader that
  // learns the object's version may find its first chunk here. Kept in memory as a count per
  // hash of the object's name, for chunk 0s only (rebuilt from the files' keys at start), so
  // another object's name may answer true (one in 2^64): never false for a held chunk.
  bool HoldsFirstChunk(const std::string& object);
  // Pinned chunks are never evicted; unpin once the chunk is durable in the object store
  // (which evicts what is over max_chunks then).
  Status Pin(const ChunkKey& key, bool pinned);
  Status Remove(const ChunkKey& key);

  ChunkStoreStats stats();

 private:
  // What leaving the index frees, to let go of after unlocking mu_: files renamed to a tombstone
  // name (unlinked), and packed chunks' slots (marked dead in their pack when the last goes).
  struct PackSlot;
  struct Tombstones {
    std::vector<std::string> paths;
    std::vector<std::shared_ptr<PackSlot>> slots;
  };
  explicit ChunkStore(ChunkStoreOptions options);
  Status Rebuild();
  std::string PathOf(const std::string& id) const;
  // Drops `id` from the index and the policy. Requires mu_. A ready entry's file is renamed
  // to a tombstone name, or its pack slot moved, into `tombstones`: the caller lets go of those
  // after unlocking (UnlinkAll).
  void DropLocked(const std::string& id, Tombstones* tombstones);
  // The index entry only (the policy has dropped it already, or never had it). Requires mu_.
  void ForgetLocked(const std::string& id, Tombstones* tombstones);
  static void UnlinkAll(Tombstones& tombstones);
  std::string PackPath(uint64_t number) const;
  // Indexes the live entries of every pack (Rebuild, after the chunk files).
  Status RebuildPacks();
  // Appends a chunk's entry to the active pack (a new one when there is none, or it is full).
  Result<std::shared_ptr<PackSlot>> AppendToPack(std::string_view head, std::string_view data);
  // A packed chunk's payload, checked (its header, key and checksum): CheckPacked, and a
  // chunk that fails is dropped (DropCorrupt, if `id`'s entry is still generation `gen`).
  // Errors as Get.
  Result<std::string> ReadPacked(const ChunkKey& key, const std::string& id, uint64_t gen, const PackSlot& slot);
  static Result<std::string> CheckPacked(const ChunkKey& key, const PackSlot& slot);
  // A chunk that failed its check: dropped if `id`'s entry is still generation `gen` (not
  // replaced meanwhile), counted, and kCorruption naming `key` and `why`. Takes mu_.
  Status DropCorrupt(const ChunkKey& key, const std::string& id, uint64_t gen, const std::string& why);
  // What a payload of `size` bytes counts against the capacity: rounded up to block_.
  uint64_t Footprint(uint64_t size) const { return (size + block_ - 1) / block_ * block_; }

  ChunkStoreOptions options_;
  uint64_t block_ = 1;  // options_.block resolved (Open)
  std::mutex mu_;
  // Invariant, under mu_: a file is at PathOf(id) exactly when index_ holds id ready and not
  // packed (a packed one's entry is live in its pack while its slot is held). Files
  // are renamed into place and out of it (to a tombstone) only under mu_; the slow parts,
  // writing and unlinking, happen outside it.
  struct Entry {
    uint64_t size;
    bool ready;    // false while Put is still writing the file: readers see a miss
    uint64_t gen;  // which Put made it: a Put only completes the entry it reserved
    int fd = -1;   // a pinned chunk's writing descriptor, open until Sync (closed if it goes)
    // The file this process wrote or last checked (inode, ctime in ns); 0: none yet. OpenFile
    // trusts pages of that file still in memory.
    uint64_t checked_ino = 0;
    int64_t checked_ctime = 0;
    uint64_t first_of = 0;  // chunk 0: its object's NameHash (counted in firsts_); else 0
    bool pinned = false;    // as the policy has it (counted in pinned_payload_)
    std::shared_ptr<PackSlot> slot = nullptr;  // a packed chunk's place (when ready); else in its own file
  };
  // XXH3-64 of an object's name, never 0 (0 marks chunks other than the first).
  static uint64_t NameHash(std::string_view object);
  // Adds `e` under `id` (replacing none: the caller dropped any), counting a chunk 0 in
  // firsts_ and its payload. Requires mu_.
  void IndexLocked(const std::string& id, Entry e);

  std::unordered_map<std::string, Entry> index_;  // guarded by mu_
  std::unordered_map<uint64_t, uint32_t> firsts_;  // NameHash -> chunk 0s in index_; mu_
  uint64_t next_gen_ = 1;                         // guarded by mu_
  uint64_t payload_ = 0, pinned_payload_ = 0;     // payload bytes in index_ (all, pinned); mu_
  uint64_t packed_ = 0;                           // entries of index_ with a slot; mu_
  S3Fifo policy_;                                 // guarded by mu_
  ChunkStoreStats stats_;                         // guarded by mu_
  // Appends to packs: which one is active (taken by AppendToPack), and the next one's number.
  // Never held with mu_.
  std::mutex pack_mu_;
  std::shared_ptr<ChunkPack> active_pack_;  // guarded by pack_mu_
  uint64_t next_pack_ = 1;                  // guarded by pack_mu_ (Rebuild sets it first)
};

}  // namespace shoal::engine
