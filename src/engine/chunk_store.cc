#include "engine/chunk_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "common/file.h"
#include "common/strings.h"

namespace shoal::engine {
namespace {

namespace fs = std::filesystem;

// On-disk chunk: fixed header, then the key, then the payload. Little-endian.
constexpr char kMagic[8] = {'S', 'H', 'O', 'A', 'L', 'C', 'K', '1'};
struct Header {
  char magic[8];
  uint64_t payload_len;
  uint64_t checksum;  // XXH3-64 of the payload
  uint32_t key_len;
  uint32_t reserved;
};
static_assert(sizeof(Header) == 32);

Status ReadAll(int fd, char* data, size_t len, uint64_t offset, const std::string& path) {
  const int err = ReadAt(fd, data, len, offset);
  if (err == ENODATA) return Status::Corruption(path + " is truncated");
  return err == 0 ? Status::Ok() : DataDirError("reading " + path, err);
}

// A packed chunk: the same header with its own magic (and kPackDead once it is gone), and
// `reserved` holding the low 32 bits of PackHeadCheck.
constexpr char kPackMagic[8] = {'S', 'H', 'O', 'A', 'L', 'P', 'K', '1'};
constexpr char kPackDead[8] = {'S', 'H', 'O', 'A', 'L', 'P', 'K', '0'};

// A check of a packed entry's header fields and key (not its magic, which Kill rewrites), so a
// header torn by a crash is not taken for an entry.
uint32_t PackHeadCheck(const Header& h, std::string_view encoded) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, &h.payload_len, sizeof(h.payload_len));
  XXH3_64bits_update(st, &h.checksum, sizeof(h.checksum));
  XXH3_64bits_update(st, &h.key_len, sizeof(h.key_len));
  XXH3_64bits_update(st, encoded.data(), encoded.size());
  const uint64_t v = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return static_cast<uint32_t>(v);
}

std::string EncodeKey(const ChunkKey& key) {
  return key.object + '\0' + key.version + '\0' + std::to_string(key.index);
}

// The object of an encoded key of chunk 0 (EncodeKey), "" for any other chunk.
std::string_view FirstChunkOf(std::string_view encoded) {
  const size_t object_end = encoded.find('\0');
  const size_t index_at = encoded.rfind('\0');
  if (object_end == std::string_view::npos || index_at == object_end || encoded.substr(index_at + 1) != "0") return "";
  return encoded.substr(0, object_end);
}

int64_t CtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
}

// Whether every page of bytes [offset, offset + len) of the open file `fd` (`size` bytes) is in
// the page cache. False when it cannot tell.
bool Resident(int fd, uint64_t size, uint64_t offset, uint64_t len) {
  if (len == 0) return true;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return false;
  const uint64_t first = offset / page * page;
  const uint64_t pages = (offset + len - first + page - 1) / page;
  std::vector<unsigned char> in(pages);
  bool all = ::mincore(static_cast<char*>(map) + first, offset + len - first, in.data()) == 0;
  for (size_t i = 0; all && i < pages; i++) all = (in[i] & 1) != 0;
  ::munmap(map, size);
  return all;
}

// The id of the chunk whose encoded key is `encoded` (ChunkKey::Id).
std::string IdOf(std::string_view encoded) {
  XXH128_hash_t h = XXH3_128bits(encoded.data(), encoded.size());
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

// A chunk's header and key, as stored before its payload (`magic` says where).
std::string MakeHead(const char magic[8], std::string_view encoded, std::string_view data) {
  Header h{};
  std::memcpy(h.magic, magic, 8);
  h.payload_len = data.size();
  h.checksum = XXH3_64bits(data.data(), data.size());
  h.key_len = static_cast<uint32_t>(encoded.size());
  if (std::memcmp(magic, kPackMagic, 8) == 0) h.reserved = PackHeadCheck(h, encoded);
  std::string head(reinterpret_cast<const char*>(&h), sizeof(h));
  head += encoded;
  return head;
}

}  // namespace

std::string ChunkKey::Id() const { return IdOf(EncodeKey(*this)); }

// A packed chunk's place: its pack, where its entry starts, its header and key's bytes
// (`head`) and the entry's bytes (`len`, header to payload's end). The entry is marked dead,
// and its space freed, when the last holder lets go: the index, and any ChunkFile sending it.
struct ChunkStore::PackSlot {
  std::shared_ptr<ChunkPack> pack;
  uint64_t offset = 0, head = 0, len = 0;
  uint64_t span() const { return ChunkPack::Aligned(len); }
  ~PackSlot() {
    if (pack) pack->Kill(offset, head, span(), kPackDead);
  }
};

std::string ChunkKey::ToString() const {
  return object + "@" + version + "#" + std::to_string(index);
}

ChunkStore::ChunkStore(ChunkStoreOptions options)
    : options_(std::move(options)), policy_(options_.capacity, options_.max_chunks) {}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const ChunkStoreOptions& options) {
  if (options.capacity == 0) return Status::InvalidArgument("the chunk store needs a capacity above 0");
  if (int err = CreateDirectories(options.dir + "/chunks/packs", options.sync); err != 0) {
    return DataDirError("creating " + options.dir + "/chunks/packs", err);
  }
  std::string probe = options.dir + "/chunks/.probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return DataDirError("data directory " + options.dir + " is not writable", errno);
  ::close(fd);
  ::unlink(probe.c_str());
  std::unique_ptr<ChunkStore> store(new ChunkStore(options));
  store->block_ = options.block;
  if (store->block_ == 0) {
    struct statvfs fs {};
    store->block_ = ::statvfs((options.dir + "/chunks").c_str(), &fs) == 0 && fs.f_frsize > 0 ? fs.f_frsize : 4096;
  }
  SHOAL_RETURN_IF_ERROR(store->Rebuild());
  return store;
}

ChunkStore::~ChunkStore() {
  // Closing is not removing: every pack stays as it is on disk, and its entries live.
  for (auto& [id, e] : index_) {
    if (e.fd >= 0) ::close(e.fd);
    if (e.slot) e.slot->pack->Keep();
  }
  if (active_pack_) active_pack_->Keep();
}

Status ChunkStore::DropCorrupt(const ChunkKey& key, const std::string& id, uint64_t gen, const std::string& why) {
  Tombstones tombstones;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it != index_.end() && it->second.gen == gen) DropLocked(id, &tombstones);
    stats_.corruptions++;
  }
  UnlinkAll(tombstones);
  return Status::Corruption("chunk " + key.ToString() + " failed its check (" + why + "); it was dropped: fetch it again");
}

std::string ChunkStore::PathOf(const std::string& id) const {
  return options_.dir + "/chunks/" + id.substr(0, 2) + "/" + id;
}

Status ChunkStore::Rebuild() {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(options_.dir + "/chunks", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() == 0 && it->path().filename() == "packs") {  // RebuildPacks reads those
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    std::string path = it->path().string();
    if (name.size() != 32) {  // a temp file a crash left behind
      fs::remove(it->path(), ec);
      continue;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    Header h{};
    struct stat st {};
    bool ok = ReadAll(fd, reinterpret_cast<char*>(&h), sizeof(h), 0, path).ok() &&
              std::memcmp(h.magic, kMagic, 8) == 0 && ::fstat(fd, &st) == 0 &&
              static_cast<uint64_t>(st.st_size) == sizeof(h) + h.key_len + h.payload_len && h.key_len <= 65536;
    // The key (object \0 version \0 index): a chunk 0 is indexed by its object too.
    std::string encoded(ok ? h.key_len : 0, '\0');
    ok = ok && ReadAll(fd, encoded.data(), encoded.size(), sizeof(h), path).ok();
    ::close(fd);
    if (!ok) {  // damaged beyond use: drop it; a read would refetch it anyway
      fs::remove(it->path(), ec);
      stats_.corruptions++;
      continue;
    }
    Entry e{h.payload_len, true, next_gen_++};
    if (std::string_view object = FirstChunkOf(encoded); !object.empty()) e.first_of = NameHash(object);
    IndexLocked(name, std::move(e));  // (alone: Open has not returned the store yet)
    policy_.Insert(name, Footprint(h.payload_len), false);
  }
  if (ec) return DataDirError("scanning " + options_.dir + "/chunks", ec.value());
  return RebuildPacks();
}

std::string ChunkStore::PackPath(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof(name), "pack-%010llu", static_cast<unsigned long long>(number));
  return options_.dir + "/chunks/packs/" + name;
}

Status ChunkStore::RebuildPacks() {
  const std::string dir = options_.dir + "/chunks/packs";
  std::map<uint64_t, std::string> packs;  // by number: a later pack's entry of a key wins
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    char* end = nullptr;
    const unsigned long long n = name.rfind("pack-", 0) == 0 ? std::strtoull(name.c_str() + 5, &end, 10) : 0;
    if (n == 0 || end == nullptr || *end != '\0') continue;
    packs[n] = it->path().string();
  }
  if (ec) return DataDirError("scanning " + dir, ec.value());
  for (const auto& [number, path] : packs) {
    next_pack_ = std::max<uint64_t>(next_pack_, number + 1);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return DataDirError("opening pack " + path, errno);
    struct stat st {};
    const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    struct Found {
      uint64_t offset;
      Header h;
      std::string encoded;
    };
    std::vector<Found> live;
    // Entries follow one another at aligned offsets; the first that is not whole ends the pack
    // (it was never synced, and nothing after it was: appends are written in order).
    uint64_t at = 0;
    while (at + sizeof(Header) <= size) {
      Found f{at, {}, {}};
      if (!ReadAll(fd, reinterpret_cast<char*>(&f.h), sizeof(f.h), at, path).ok()) break;
      const bool alive = std::memcmp(f.h.magic, kPackMagic, 8) == 0;
      if (!alive && std::memcmp(f.h.magic, kPackDead, 8) != 0) break;
      if (f.h.key_len > 65536 || f.h.payload_len > size) break;
      const uint64_t len = sizeof(Header) + f.h.key_len + f.h.payload_len;
      if (at + len > size) break;
      f.encoded.resize(f.h.key_len);
      if (!ReadAll(fd, f.encoded.data(), f.encoded.size(), at + sizeof(Header), path).ok()) break;
      if (PackHeadCheck(f.h, f.encoded) != f.h.reserved) break;
      if (alive) live.push_back(std::move(f));
      at = ChunkPack::Aligned(at + len);
    }
    ::close(fd);
    if (live.empty()) {
      ::unlink(path.c_str());
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(std::shared_ptr<ChunkPack> pack, ChunkPack::OpenExisting(path, std::min(at, size)));
    for (auto& f : live) {
      auto slot = std::make_shared<PackSlot>();
      slot->pack = pack;
      slot->offset = f.offset;
      slot->head = sizeof(Header) + f.h.key_len;
      slot->len = slot->head + f.h.payload_len;
      const std::string id = IdOf(f.encoded);
      if (index_.count(id)) continue;  // held twice (a crash between a replacement's steps): the same bytes
      Entry e{f.h.payload_len, true, next_gen_++};
      if (std::string_view object = FirstChunkOf(f.encoded); !object.empty()) e.first_of = NameHash(object);
      e.slot = std::move(slot);
      const uint64_t footprint = e.slot->span();
      IndexLocked(id, std::move(e));  // (alone: Open has not returned the store yet)
      policy_.Insert(id, footprint, false);
    }
  }
  return Status::Ok();
}

Result<std::shared_ptr<ChunkStore::PackSlot>> ChunkStore::AppendToPack(std::string_view head, std::string_view data) {
  std::lock_guard<std::mutex> lock(pack_mu_);
  for (int attempt = 0;; attempt++) {
    if (!active_pack_ || !active_pack_->writable()) {
      SHOAL_ASSIGN_OR_RETURN(active_pack_, ChunkPack::Create(PackPath(next_pack_++), options_.sync));
    }
    Result<uint64_t> offset = active_pack_->Append(head, data, options_.pack_bytes);
    if (offset.ok()) {
      auto slot = std::make_shared<PackSlot>();
      slot->pack = active_pack_;
      slot->offset = *offset;
      slot->head = head.size();
      slot->len = head.size() + data.size();
      return slot;
    }
    // Full (a new pack takes it), or failed (said as it is).
    if (offset.status().code() != Code::kUnavailable || attempt > 0) return offset.status();
    active_pack_.reset();
  }
}

Status ChunkStore::Put(const ChunkKey& key, std::string_view data, bool pinned) {
  const std::string encoded = EncodeKey(key);
  const std::string id = IdOf(encoded);
  const bool packed = data.size() < options_.pack_below;
  Tombstones tombstones;
  bool room = true;
  uint64_t gen = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.count(id)) DropLocked(id, &tombstones);
    const uint64_t footprint =
        packed ? ChunkPack::Aligned(sizeof(Header) + encoded.size() + data.size()) : Footprint(data.size());
    for (const auto& v : policy_.EvictFor(footprint)) {
      ForgetLocked(v, &tombstones);
      stats_.evictions++;
    }
    room = policy_.used() + footprint <= options_.capacity;
    if (room) {  // reserve the space now so concurrent Puts cannot overcommit
      gen = next_gen_++;
      Entry e{data.size(), false, gen};
      if (key.index == 0) e.first_of = NameHash(key.object);
      e.pinned = pinned;
      IndexLocked(id, std::move(e));
      policy_.Insert(id, footprint, pinned);
    }
  }
  UnlinkAll(tombstones);
  if (!room) {
    std::lock_guard<std::mutex> lock(mu_);
    return Status::Unavailable("cache full of chunks not yet uploaded (" +
                               FormatBytes(policy_.pinned_bytes()) + " pinned of " +
                               FormatBytes(options_.capacity) +
                               "): wait for uploads or raise --capacity");
  }

  // Drops our reservation, unless another Put or a Remove has replaced it already.
  auto fail = [&](Status st) {
    Tombstones none;  // not ready: no file in place
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it != index_.end() && it->second.gen == gen) DropLocked(id, &none);
    return st;
  };
  if (packed) {
    Result<std::shared_ptr<PackSlot>> slot = AppendToPack(MakeHead(kPackMagic, encoded, data), data);
    if (!slot.ok()) return fail(slot.status().WithContext("storing chunk " + key.ToString()));
    // Indexed only while our reservation stands; else the slot goes as this returns (after
    // the lock), and the entry is marked dead.
    std::shared_ptr<PackSlot> placed = std::move(slot).value();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it != index_.end() && it->second.gen == gen) {
      it->second.ready = true;
      it->second.slot = std::move(placed);
      packed_++;
    }
    return Status::Ok();
  }
  const std::string path = PathOf(id);
  std::string parent = fs::path(path).parent_path().string();
  if (int err = CreateDirectories(parent, options_.sync); err != 0) return fail(DataDirError("creating " + parent, err));
  std::string tmp = path + ".tmp" + RandomHex();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(DataDirError("creating " + tmp, errno));
  const std::string head = MakeHead(kMagic, encoded, data);
  int err = WriteAt(fd, head, 0);
  if (err == 0) err = WriteAt(fd, data, head.size());
  Status st = err == 0 ? Status::Ok() : DataDirError("writing " + tmp, err);
  // Only chunks the object store does not have yet must survive a crash; a clean chunk lost
  // or torn by one fails its checksum and is fetched again. A pinned chunk's write-back
  // starts now, without waiting for it; Sync() waits, once per write.
  // Its descriptor stays open for Sync, which must fsync the one that wrote it.
  const bool keep = st.ok() && options_.sync && pinned;
  if (keep) {
    ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  } else {
    ::close(fd);
  }
  if (st.ok()) {
    // Into place only while our reservation stands; evicted, removed or replaced by a later
    // Put meanwhile, this file is not the chunk's any more.
    std::unique_lock<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end() || it->second.gen != gen) {
      lock.unlock();
      if (keep) ::close(fd);
      ::unlink(tmp.c_str());
      return Status::Ok();
    }
    if (::rename(tmp.c_str(), path.c_str()) == 0) {
      it->second.ready = true;
      if (keep) it->second.fd = fd;
      // Its pages in memory are the bytes just hashed (the ctime after the rename).
      struct stat placed {};
      if (::stat(path.c_str(), &placed) == 0) {
        it->second.checked_ino = placed.st_ino;
        it->second.checked_ctime = CtimeNs(placed);
      }
      return Status::Ok();
    }
    st = DataDirError("renaming " + tmp, errno);
  }
  if (keep) ::close(fd);
  ::unlink(tmp.c_str());
  return fail(st.WithContext("storing chunk " + key.ToString()));
}

Status ChunkStore::Sync(const std::vector<ChunkKey>& keys) {
  if (!options_.sync) return Status::Ok();
  std::set<std::string> dirs;
  std::map<std::shared_ptr<ChunkPack>, uint64_t> packs;  // each pack: the end to sync to
  for (const auto& key : keys) {
    std::string id = key.Id();
    std::string path = PathOf(id);
    int fd = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(id);
      if (it != index_.end() && it->second.slot) {
        const PackSlot& slot = *it->second.slot;
        uint64_t& end = packs[slot.pack];
        end = std::max(end, slot.offset + slot.len);
        continue;
      }
      if (it != index_.end()) std::swap(fd, it->second.fd);
    }
    // Not open any more: synced by an earlier Sync, or stored before a restart.
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return DataDirError("opening " + path + " to sync it", errno);
    int rc = ::fdatasync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return DataDirError("syncing " + path, err);
    dirs.insert(fs::path(path).parent_path().string());
  }
  for (const auto& dir : dirs) {
    if (int err = SyncDirectory(dir); err != 0) return DataDirError("syncing directory " + dir, err);
  }
  for (const auto& [pack, end] : packs) SHOAL_RETURN_IF_ERROR(pack->SyncTo(end));
  return Status::Ok();
}

Result<std::string> ChunkStore::ReadPacked(const ChunkKey& key, const std::string& id, uint64_t gen,
                                           const PackSlot& slot) {
  Result<std::string> data = CheckPacked(key, slot);
  if (!data.ok() && data.status().code() == Code::kCorruption) return DropCorrupt(key, id, gen, data.status().message());
  return data;
}

Result<std::string> ChunkStore::CheckPacked(const ChunkKey& key, const PackSlot& slot) {
  std::string entry(slot.len, '\0');
  Status st = slot.pack->Read(slot.offset, entry.data(), entry.size());
  if (!st.ok()) return st;
  Header h{};
  std::memcpy(&h, entry.data(), sizeof(h));
  const std::string_view encoded(entry.data() + sizeof(h), slot.head - sizeof(h));
  if (std::memcmp(h.magic, kPackMagic, 8) != 0) return Status::Corruption("bad magic");
  if (sizeof(h) + h.key_len != slot.head || slot.head + h.payload_len != slot.len) {
    return Status::Corruption("its header's lengths changed");
  }
  if (PackHeadCheck(h, encoded) != h.reserved) return Status::Corruption("its header fails its check");
  if (encoded != EncodeKey(key)) return Status::Corruption("holds another chunk");
  if (XXH3_64bits(entry.data() + slot.head, h.payload_len) != h.checksum) return Status::Corruption("checksum mismatch");
  return entry.substr(slot.head);
}

Result<std::string> ChunkStore::Get(const ChunkKey& key) {
  std::string id = key.Id();
  uint64_t gen = 0;
  std::shared_ptr<PackSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end() || !it->second.ready) {
      stats_.misses++;
      return Status::NotFound("chunk " + key.ToString() + " is not cached");
    }
    gen = it->second.gen;
    slot = it->second.slot;
    policy_.Touch(id);
  }
  if (slot) {
    Result<std::string> data = ReadPacked(key, id, gen, *slot);
    if (!data.ok()) return data.status();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.hits++;
    stats_.checks++;
    return data;
  }
  std::string path = PathOf(id);
  // The file opened may be a later Put's of the same key (the same bytes) or, once open, one
  // evicted since (still whole: only its name went). A file missing is corruption only if the
  // entry we looked up still stands; else it was evicted or removed meanwhile: a miss.
  auto corrupt = [&](const std::string& why) { return DropCorrupt(key, id, gen, why); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) return DataDirError("opening " + path, errno);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(id);
      bool stands = it != index_.end() && it->second.gen == gen;
      if (!stands) {
        stats_.misses++;
        return Status::NotFound("chunk " + key.ToString() + " is not cached");
      }
    }
    return corrupt("its file is missing");
  }
  Header h{};
  Status st = ReadAll(fd, reinterpret_cast<char*>(&h), sizeof(h), 0, path);
  std::string encoded;
  std::string data;
  if (st.ok() && std::memcmp(h.magic, kMagic, 8) != 0) st = Status::Corruption("bad magic");
  if (st.ok() && h.key_len > 65536) st = Status::Corruption("bad key length");
  if (st.ok()) {
    encoded.resize(h.key_len);
    st = ReadAll(fd, encoded.data(), encoded.size(), sizeof(h), path);
  }
  if (st.ok() && encoded != EncodeKey(key)) st = Status::Corruption("holds another chunk");
  if (st.ok() && h.payload_len > (1ull << 32)) st = Status::Corruption("bad length");
  if (st.ok()) {
    data.resize(h.payload_len);
    st = ReadAll(fd, data.data(), data.size(), sizeof(h) + h.key_len, path);
  }
  if (st.ok() && XXH3_64bits(data.data(), data.size()) != h.checksum) {
    st = Status::Corruption("checksum mismatch");
  }
  struct stat fst {};
  const bool stat_ok = st.ok() && ::fstat(fd, &fst) == 0;
  ::close(fd);
  if (!st.ok()) {
    if (st.code() == Code::kCorruption) return corrupt(st.message());
    return st;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.hits++;
  stats_.checks++;
  if (stat_ok) {
    auto it = index_.find(id);
    if (it != index_.end() && it->second.gen == gen) {
      it->second.checked_ino = fst.st_ino;
      it->second.checked_ctime = CtimeNs(fst);
    }
  }
  return data;
}

ChunkFile::~ChunkFile() { ::close(fd); }

Result<std::unique_ptr<ChunkFile>> ChunkStore::OpenFile(const ChunkKey& key, uint64_t from, uint64_t len) {
  std::string id = key.Id();
  uint64_t gen = 0, checked_ino = 0;
  int64_t checked_ctime = 0;
  std::shared_ptr<PackSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end() || !it->second.ready) {  // (not counted: the caller asks Get next)
      return Status::NotFound("chunk " + key.ToString() + " is not cached");
    }
    gen = it->second.gen;
    checked_ino = it->second.checked_ino;
    checked_ctime = it->second.checked_ctime;
    slot = it->second.slot;
    policy_.Touch(id);
  }
  if (slot) {  // checked every time (small: hashing it costs less than telling its pages apart)
    Result<std::string> data = ReadPacked(key, id, gen, *slot);
    if (!data.ok()) return data.status();
    const int fd = ::dup(slot->pack->fd());
    if (fd < 0) return DataDirError("opening " + slot->pack->path(), errno);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.hits++;
    stats_.checks++;
    return std::make_unique<ChunkFile>(fd, slot->offset + slot->head, data->size(), slot);
  }
  std::string path = PathOf(id);
  auto corrupt = [&](const std::string& why) { return DropCorrupt(key, id, gen, why); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) return DataDirError("opening " + path, errno);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(id);
      if (it == index_.end() || it->second.gen != gen) {
        return Status::NotFound("chunk " + key.ToString() + " is not cached");
      }
    }
    return corrupt("its file is missing");
  }
  struct Closer {  // closes fd on every return but the last
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  Header h{};
  struct stat fst {};
  Status st = ReadAll(fd, reinterpret_cast<char*>(&h), sizeof(h), 0, path);
  if (st.ok() && ::fstat(fd, &fst) != 0) st = DataDirError("checking " + path, errno);
  if (st.ok() && std::memcmp(h.magic, kMagic, 8) != 0) st = Status::Corruption("bad magic");
  if (st.ok() && h.key_len > 65536) st = Status::Corruption("bad key length");
  std::string encoded;
  if (st.ok()) {
    encoded.resize(h.key_len);
    st = ReadAll(fd, encoded.data(), encoded.size(), sizeof(h), path);
  }
  if (st.ok() && encoded != EncodeKey(key)) st = Status::Corruption("holds another chunk");
  if (st.ok() && static_cast<uint64_t>(fst.st_size) != sizeof(h) + h.key_len + h.payload_len) {
    st = Status::Corruption("its size is not its header's");
  }
  if (st.ok()) {  // a range past the payload: its pages are not the reader's concern, its length is
    from = std::min<uint64_t>(from, h.payload_len);
    len = std::min<uint64_t>(len, h.payload_len - from);
  }
  const uint64_t payload = sizeof(h) + h.key_len;
  const bool trusted = st.ok() && checked_ino != 0 && fst.st_ino == checked_ino && CtimeNs(fst) == checked_ctime &&
                       Resident(fd, fst.st_size, payload + from, len);
  if (st.ok() && !trusted) {
    // Read and check the whole payload, as Get does; it is in the page cache afterwards.
    std::string data(h.payload_len, '\0');
    st = ReadAll(fd, data.data(), data.size(), payload, path);
    if (st.ok() && XXH3_64bits(data.data(), data.size()) != h.checksum) st = Status::Corruption("checksum mismatch");
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.checks++;
      auto it = index_.find(id);
      if (it != index_.end() && it->second.gen == gen) {
        it->second.checked_ino = fst.st_ino;
        it->second.checked_ctime = CtimeNs(fst);
      }
    }
  }
  if (!st.ok()) {
    if (st.code() == Code::kCorruption) return corrupt(st.message());
    return st;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.hits++;
  }
  closer.fd = -1;
  return std::make_unique<ChunkFile>(fd, payload, h.payload_len);
}

bool ChunkStore::Contains(const ChunkKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key.Id());
  return it != index_.end() && it->second.ready;
}

Status ChunkStore::Pin(const ChunkKey& key, bool pinned) {
  Tombstones tombstones;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = key.Id();
    auto it = index_.find(id);
    if (it == index_.end()) return Status::NotFound("chunk " + key.ToString() + " is not cached");
    policy_.Pin(id, pinned);
    if (it->second.pinned != pinned) {
      it->second.pinned = pinned;
      if (pinned) {
        pinned_payload_ += it->second.size;
      } else {
        pinned_payload_ -= it->second.size;
      }
    }
    // Chunks kept beyond max_chunks while pinned go once they may (not only at the next Put).
    if (!pinned) {
      for (const auto& v : policy_.EvictFor(0, 0)) {
        ForgetLocked(v, &tombstones);
        stats_.evictions++;
      }
    }
  }
  UnlinkAll(tombstones);
  return Status::Ok();
}

Status ChunkStore::Remove(const ChunkKey& key) {
  Tombstones tombstones;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DropLocked(key.Id(), &tombstones);
  }
  UnlinkAll(tombstones);
  return Status::Ok();
}

void ChunkStore::DropLocked(const std::string& id, Tombstones* tombstones) {
  ForgetLocked(id, tombstones);
  policy_.Erase(id);
}

void ChunkStore::ForgetLocked(const std::string& id, Tombstones* tombstones) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  if (it->second.slot) {
    tombstones->slots.push_back(std::move(it->second.slot));
    packed_--;
  } else if (it->second.ready) {
    // A rename, not an unlink: cheap under the lock, and the name is free at once for the
    // next Put of this key. Rebuild deletes a tombstone a crash leaves (not a 32-digit name).
    std::string path = PathOf(id);
    std::string tombstone = path + ".dead" + RandomHex();
    if (::rename(path.c_str(), tombstone.c_str()) == 0) {
      tombstones->paths.push_back(std::move(tombstone));
    } else if (errno != ENOENT) {
      ::unlink(path.c_str());  // a rename in one directory fails only when the disk does
    }
  }
  if (it->second.fd >= 0) ::close(it->second.fd);
  if (it->second.first_of != 0) {
    auto f = firsts_.find(it->second.first_of);
    if (f != firsts_.end() && --f->second == 0) firsts_.erase(f);
  }
  payload_ -= it->second.size;
  if (it->second.pinned) pinned_payload_ -= it->second.size;
  index_.erase(it);
}

void ChunkStore::IndexLocked(const std::string& id, Entry e) {
  if (e.first_of != 0) firsts_[e.first_of]++;
  if (e.slot) packed_++;
  payload_ += e.size;
  if (e.pinned) pinned_payload_ += e.size;
  index_[id] = std::move(e);
}

uint64_t ChunkStore::NameHash(std::string_view object) {
  uint64_t h = XXH3_64bits(object.data(), object.size());
  return h == 0 ? 1 : h;
}

bool ChunkStore::HoldsFirstChunk(const std::string& object) {
  const uint64_t h = NameHash(object);
  std::lock_guard<std::mutex> lock(mu_);
  return firsts_.count(h) > 0;
}

void ChunkStore::UnlinkAll(Tombstones& tombstones) {
  for (const auto& p : tombstones.paths) ::unlink(p.c_str());
  tombstones.paths.clear();
  tombstones.slots.clear();  // each marked dead in its pack, unless a ChunkFile still sends it
}

ChunkStoreStats ChunkStore::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  ChunkStoreStats s = stats_;
  s.chunks = index_.size();
  s.bytes = payload_;
  s.pinned_bytes = pinned_payload_;
  s.disk_bytes = policy_.used();
  s.packed = packed_;
  return s;
}

}  // namespace shoal::engine
