#define FUSE_USE_VERSION 312
#include "mount/mount.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sys/uio.h>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/strings.h"
#include "common/worker_pool.h"

namespace shoal::mount {

constexpr int kReadAheadKiB = 4096;
// Files this large and larger are read with direct_io unless --kernel-cache (DirectRead).
constexpr uint64_t kDirectReadMinBytes = 32ull << 20;
void RaiseReadAhead(const std::string& mountpoint);
Status UnmountNow(const std::string& mountpoint);
// How often `shoal unmount` says it is still waiting for a mount's files.
constexpr std::chrono::seconds kUnmountProgressEvery{10};

// FUSE_INIT flag (kernel 6.6+, protocol 7.39): shared mmap of a file opened with direct_io.
// libfuse 3.14 (Debian 12) neither knows nor forwards it, so InitPatch adds it to the reply.
constexpr uint64_t kDirectIoAllowMmap = 1ULL << 36;

// Reads and writes /dev/fuse for libfuse (fuse_session_custom_io), and on the way adds
// FUSE_DIRECT_IO_ALLOW_MMAP to the INIT reply when the kernel offers it. Every other message
// passes untouched. One per process (a process serves one mount): libfuse's callbacks get no
// pointer of ours that every libfuse version agrees on.
class InitPatch {
 public:
  // True once the kernel has agreed: files may then be opened with direct_io and still be
  // mmap-ed (MAP_SHARED), as safetensors and NumPy's memmap do.
  bool direct_io_mmap() const { return agreed_.load(std::memory_order_acquire); }

  static InitPatch& Get() {
    static InitPatch patch;
    return patch;
  }

  static ssize_t Read(int fd, void* buf, size_t len, void*) {
    ssize_t n = ::read(fd, buf, len);
    InitPatch* p = &Get();
    if (n >= static_cast<ssize_t>(sizeof(fuse_in_header) + offsetof(fuse_init_in, flags2) + 4) &&
        p->init_unique_.load(std::memory_order_relaxed) == 0) {
      auto* in = static_cast<const fuse_in_header*>(buf);
      if (in->opcode == FUSE_INIT) {
        fuse_init_in init;
        std::memcpy(&init, static_cast<const char*>(buf) + sizeof(fuse_in_header),
                    offsetof(fuse_init_in, flags2) + 4);
        p->offered_ = (init.flags & FUSE_INIT_EXT) && (init.flags2 & (kDirectIoAllowMmap >> 32));
        p->init_unique_.store(in->unique, std::memory_order_release);
      }
    }
    return n;
  }

  static ssize_t Writev(int fd, iovec* iov, int count, void*) {
    InitPatch* p = &Get();
    uint64_t unique = p->init_unique_.load(std::memory_order_acquire);
    if (unique != 0 && unique != kDone && count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header) &&
        static_cast<const fuse_out_header*>(iov[0].iov_base)->unique == unique) {
      auto* out = static_cast<fuse_out_header*>(iov[0].iov_base);
      if (p->offered_ && out->error == 0 && iov[1].iov_len >= offsetof(fuse_init_out, flags2) + 4) {
        auto* init = static_cast<fuse_init_out*>(iov[1].iov_base);
        init->flags |= FUSE_INIT_EXT;
        init->flags2 |= static_cast<uint32_t>(kDirectIoAllowMmap >> 32);
        p->agreed_.store(true, std::memory_order_release);
      }
      p->init_unique_.store(kDone, std::memory_order_release);
    }
    return ::writev(fd, iov, count);
  }

 private:
  static constexpr uint64_t kDone = ~0ULL;
  std::atomic<uint64_t> init_unique_{0};  // the INIT request's id, kDone once answered
  bool offered_ = false;                  // written before init_unique_ is published
  std::atomic<bool> agreed_{false};
};

namespace {

using Clock = std::chrono::steady_clock;
// An open to read takes a file's size and ETag learned this recently as they are (ResolveToOpen).
constexpr std::chrono::milliseconds kOpenReuse{1000};
// Lookups of unknown names in one directory, within the TTL, after which it is listed; and the
// most names such a listing takes (Fs::ListForLookups).
constexpr int kListAfterMisses = 4;
constexpr size_t kListForLookupsMax = 10000;
// Files up to this size are opened with their bytes in the open's one request (OpenToRead).
constexpr uint64_t kOpenWithBytesMax = 1ull << 20;
constexpr size_t kLookupsKept = 4096;  // directories whose lookups are counted, before idle ones are forgotten
// --async-close: files whose node acknowledgement is awaited in the background at once; a close
// past them waits for a slot. The node takes a few writes at a time (its serve threads), so
// more would only queue there.
constexpr size_t kClosingMax = 16;

int ErrnoOf(const Status& st) {
  switch (st.code()) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kPermissionDenied: return EACCES;
    case Code::kResourceExhausted: return ENOSPC;
    case Code::kPreconditionFailed: return ESTALE;
    case Code::kAlreadyExists: return EEXIST;
    default: return EIO;
  }
}

// A caller as the kernel tells of it: `tid` is what FUSE names (fuse_req_ctx's pid, a thread).
struct Caller {
  pid_t group = 0;   // its process (thread group)
  int killed_by = 0;  // the signal it is exiting by, 0 if it is not exiting by one
};

// Looks `tid` up in /proc. A task killed by a signal closes its files from exit, after the
// kernel has set its exit code (do_exit sets it before exit_files): a flush sent then finds
// PF_EXITING in its flags and the signal in the code's low 7 bits. A task that exits
// normally, with any status, has 0 there.
Caller LookAt(pid_t tid) {
  Caller c;
  const std::string dir = "/proc/" + std::to_string(tid);
  std::ifstream status(dir + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Tgid:", 0) == 0) {
      c.group = static_cast<pid_t>(std::strtol(line.c_str() + 5, nullptr, 10));
      break;
    }
  }
  std::ifstream stat_file(dir + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) return c;
  std::istringstream fields(stat.substr(name_end + 1));
  std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
  // f[0] is field 3 (state): flags are field 9, the exit code field 52.
  constexpr unsigned long kExiting = 0x4;  // PF_EXITING
  if (f.size() < 50) return c;
  const unsigned long flags = std::strtoul(f[6].c_str(), nullptr, 10);
  const long code = std::strtol(f[49].c_str(), nullptr, 10);
  if ((flags & kExiting) != 0) c.killed_by = static_cast<int>(code & 0x7f);
  return c;
}

struct Inode {
  std::string path;  // below the mount's root: "" (the root), "a", "a/b"
  bool dir = false;
  uint64_t nlookup = 0;
};

// One open file: a reader (a version of the object), or a writer (a new version of it).
struct Handle {
  std::string path;
  std::mutex mu;
  std::unique_ptr<client::Reader> reader;
  std::unique_ptr<client::Writer> writer;
  pid_t opener = 0;          // the thread that opened it
  pid_t opener_group = 0;    // and its process, for a writer (LookAt): its closes complete the object
  bool existing = false;     // opened for writing an object that exists, without O_TRUNC
  bool fsync_asked = false;  // fsync while writing: the close waits as fsync would
  Status failed;             // the writer failed: reported by write, flush and close
};

struct DirHandle {
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  std::set<std::string> names;
  std::string continuation;
  bool listed = false;  // the store's pages are all in entries
  bool done = false;    // and the extras (files and directories this mount is making) too
};

class Fs {
 public:
  Fs(const MountOptions& o, std::unique_ptr<client::Client> c, ObjectUrl root)
      : opt_(o), client_(std::move(c)), root_(std::move(root)), started_(std::time(nullptr)) {
    inodes_[FUSE_ROOT_ID] = Inode{"", true, 1};
    by_path_[""] = FUSE_ROOT_ID;
  }

  // The mount point, canonical (resolved before mounting: resolving it from inside the file
  // system would ask this very file system).
  void SetMountpoint(std::string canonical) { mountpoint_ = std::move(canonical); }
  // Once, at the first request after the kernel's INIT: the read-ahead can only be raised then
  // (INIT keeps the smaller of the kernel's value and the file system's), and the closer's
  // threads start (after the mount detached: a fork keeps no threads).
  void AfterInit() {
    std::call_once(after_init_, [this] {
      RaiseReadAhead(mountpoint_);
      if (opt_.async_close) closer_ = std::make_unique<WorkerPool>(kClosingMax, "shoal-close");
    });
  }

  // --- paths ---------------------------------------------------------------------------------
  std::string Url(const std::string& path) const { return root_.WithKey(root_.key + path).ToString(); }
  std::string DirUrl(const std::string& path) const {
    return root_.WithKey(root_.key + (path.empty() ? "" : path + "/")).ToString();
  }
  static std::string Join(const std::string& dir, const char* name) { return dir.empty() ? name : dir + "/" + name; }
  static std::string Parent(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? "" : path.substr(0, slash);
  }

  bool PathOf(fuse_ino_t ino, std::string* path, bool* dir = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return false;
    *path = it->second.path;
    if (dir) *dir = it->second.dir;
    return true;
  }

  // --- attributes ----------------------------------------------------------------------------
  // What every inode has: owner, times, I/O size (cp and friends move st_blksize per call).
  struct stat BaseStat(fuse_ino_t ino, mode_t mode, std::time_t mtime) const {
    struct stat st {};
    st.st_ino = ino;
    st.st_mode = mode;
    st.st_uid = opt_.uid;
    st.st_gid = opt_.gid;
    st.st_mtime = st.st_ctime = st.st_atime = mtime ? mtime : started_;
    st.st_blksize = 1 << 20;
    return st;
  }
  struct stat DirStat(fuse_ino_t ino) const {
    struct stat st = BaseStat(ino, S_IFDIR | (opt_.read_only ? 0555 : 0755), 0);
    st.st_nlink = 2;
    return st;
  }
  struct stat FileStat(fuse_ino_t ino, uint64_t size, std::time_t mtime) const {
    struct stat st = BaseStat(ino, S_IFREG | (opt_.read_only ? 0444 : 0644), mtime);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(size);
    st.st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
    return st;
  }

  // What `path` is: a file (its info), a directory, or nothing (kNotFound). `fresh`: ask the
  // store/node even if a cached answer is still within the TTL.
  struct Found {
    bool dir = false;
    bool writing = false;
    ObjectInfo info;
  };
  // A file's size and ETag, or that `path` is a directory, learned within the TTL; mu_ held.
  std::optional<Found> KnownWithinTtl(const std::string& path) {
    auto a = attrs_.find(path);
    if (a != attrs_.end() && a->second.second > Clock::now()) return Found{false, false, a->second.first};
    auto d = dirs_.find(path);
    if (d != dirs_.end() && d->second > Clock::now()) return Found{true, false, {}};
    return std::nullopt;
  }
  Result<Found> Resolve(const std::string& path, bool fresh = false) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto w = writing_.find(path);
      if (w != writing_.end()) return Found{false, true, ObjectInfo{path, w->second->writer->size(), "", std::time(nullptr)}};
      auto c = closing_.find(path);
      if (c != closing_.end()) return Found{false, true, ObjectInfo{path, c->second, "", std::time(nullptr)}};
      if (!fresh) {
        if (auto known = KnownWithinTtl(path)) return *known;
      }
      if (made_dirs_.count(path)) return Found{true, false, {}};
      // A directory this mount made, found empty then: within the TTL, a name under it is
      // what this mount put there (above), else nothing (cp -r asks about every file first).
      if (!fresh) {
        auto e = empty_dirs_.find(Parent(path));
        if (e != empty_dirs_.end() && e->second > Clock::now() && !path.empty()) return Status::NotFound(path);
      }
    }
    if (!fresh && !path.empty() && ListForLookups(Parent(path))) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto known = KnownWithinTtl(path)) return *known;
    }
    auto f = client_->Stat(Url(path));
    if (f.ok()) {
      if (f->info.last_modified == 0) f->info.last_modified = std::time(nullptr);
      RememberFile(path, f->info);
      return Found{false, false, f->info};
    }
    if (f.status().code() != Code::kNotFound) return f.status();
    // A directory is a prefix with something under it.
    SHOAL_ASSIGN_OR_RETURN(bool any, DirHasEntries(path));
    if (!any) return Status::NotFound(path);
    std::lock_guard<std::mutex> lock(mu_);
    dirs_[path] = Clock::now() + Ttl();
    return Found{true, false, {}};
  }

  // What `path` is, for an open to read: as Resolve(path, true), except that a file's size and
  // ETag learned in the last kOpenReuse (the lookup just before this open, a listing) are not
  // asked again. The node trusts what it knows for its own --metadata-ttl anyway.
  Result<Found> ResolveToOpen(const std::string& path) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto a = attrs_.find(path);
      const auto now = Clock::now();
      if (a != attrs_.end() && !writing_.count(path) && a->second.second > now && a->second.second - Ttl() > now - kOpenReuse) {
        return Found{false, false, a->second.first};
      }
    }
    return Resolve(path, true);
  }

  // Whether anything is under directory `path`: listed (its own marker object aside; with a
  // node, its writes not yet uploaded too), or being written or made by this mount.
  Result<bool> DirHasEntries(const std::string& path) {
    const std::string prefix = root_.key + (path.empty() ? "" : path + "/");
    SHOAL_ASSIGN_OR_RETURN(shoal::ListPage page, client_->List(DirUrl(path), false, "", 2));
    if (!page.prefixes.empty()) return true;
    for (const auto& o : page.objects) {
      if (o.key != prefix) return true;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto under = [&](const std::string& p) { return p != path && Names(path, p, /*under=*/true); };
    for (const auto& [p, h] : writing_) {
      if (under(p)) return true;
    }
    for (const auto& [p, size] : closing_) {
      if (under(p)) return true;
    }
    for (const auto& p : made_dirs_) {
      if (under(p)) return true;
    }
    return false;
  }

  // A listing page of directory `path`: its files' sizes and ETags, and that its prefixes are
  // directories, answer lookups for --metadata-ttl (find, ls -R, a data loader's opens by name).
  void RememberPage(const std::string& path, const shoal::ListPage& page) {
    const std::string prefix = root_.key + (path.empty() ? "" : path + "/");
    const auto until = Clock::now() + Ttl();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& o : page.objects) {
      if (o.key.size() > prefix.size()) attrs_[o.key.substr(root_.key.size())] = {o, until};
    }
    for (const auto& p : page.prefixes) {
      if (p.size() > prefix.size() + 1 && p.back() == '/') dirs_[p.substr(root_.key.size(), p.size() - root_.key.size() - 1)] = until;
    }
  }

  // Lookups of names in a directory that was not listed: from the kListAfterMisses-th within
  // the TTL, the directory is listed once (at most kListForLookupsMax names; one listing at a
  // time per directory, the others wait for it), so a program that opens files by name (a data
  // loader's file list) costs the node one listing per directory instead of a HEAD per file. A
  // name the listing does not have is still asked: a file made elsewhere since. True when a
  // listing was made, or waited for, now.
  bool ListForLookups(const std::string& dir) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto now = Clock::now();
    Lookups* l = &lookups_[dir];
    if (l->listed_until > now) return false;
    if (l->listing) {
      lookups_cv_.wait(lock, [&] { return !lookups_[dir].listing; });
      return true;
    }
    if (l->window_until <= now) {
      l->misses = 0;
      l->window_until = now + Ttl();
    }
    if (++l->misses < kListAfterMisses) return false;
    l->listing = true;
    if (lookups_.size() > kLookupsKept) {  // forget directories not asked about within the TTL
      for (auto it = lookups_.begin(); it != lookups_.end();) {
        const bool idle = !it->second.listing && it->second.window_until <= now && it->second.listed_until <= now;
        it = idle ? lookups_.erase(it) : std::next(it);
      }
    }
    lock.unlock();
    size_t names = 0;
    std::string continuation;
    while (names < kListForLookupsMax) {
      auto page = client_->List(DirUrl(dir), false, continuation);
      if (!page.ok()) break;  // the lookups go on asking one by one
      RememberPage(dir, *page);
      names += page->objects.size() + page->prefixes.size();
      continuation = page->next_continuation;
      if (continuation.empty()) break;
    }
    lock.lock();
    l = &lookups_[dir];
    l->listing = false;
    // Listed in part (too many names, or a failure): not again within the TTL either.
    l->listed_until = Clock::now() + Ttl();
    lookups_cv_.notify_all();
    return true;
  }

  std::chrono::milliseconds Ttl() const {
    return std::chrono::milliseconds(static_cast<int64_t>(opt_.metadata_ttl * 1000));
  }
  void RememberFile(const std::string& path, const ObjectInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    attrs_[path] = {info, Clock::now() + Ttl()};
  }
  void Forget(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    attrs_.erase(path);
    dirs_.erase(path);
  }

  fuse_ino_t InodeFor(const std::string& path, bool dir) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end()) {
      Inode& node = inodes_[it->second];
      if (node.dir == dir) {
        node.nlookup++;
        return it->second;
      }
    }
    fuse_ino_t ino = next_ino_++;
    inodes_[ino] = Inode{path, dir, 1};
    by_path_[path] = ino;
    return ino;
  }

  // The inode a path has if the kernel knows it, else a stand-in (readdir's d_ino; a zero one
  // makes readdir(3) skip the entry). No lookup is counted.
  fuse_ino_t KnownInode(const std::string& path, off_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_path_.find(path);
    return it != by_path_.end() ? it->second : (fuse_ino_t{1} << 62) + static_cast<fuse_ino_t>(index);
  }

  void ReplyEntry(fuse_req_t req, const std::string& path, const Found& f) {
    fuse_entry_param e{};
    e.ino = InodeFor(path, f.dir);
    e.attr = f.dir ? DirStat(e.ino) : FileStat(e.ino, f.info.size, f.info.last_modified);
    double ttl = f.writing ? 0 : opt_.metadata_ttl;
    e.attr_timeout = ttl;
    e.entry_timeout = ttl;
    fuse_reply_entry(req, &e);
  }

  // --- operations ----------------------------------------------------------------------------
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    std::string dir;
    if (!PathOf(parent, &dir)) return (void)fuse_reply_err(req, ENOENT);
    std::string path = Join(dir, name);
    auto f = Resolve(path);
    if (!f.ok()) return Fail(req, "lookup " + path, f.status(), f.status().code() == Code::kNotFound);
    ReplyEntry(req, path, *f);
  }

  void Forget(fuse_ino_t ino, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end() || ino == FUSE_ROOT_ID) return;
    it->second.nlookup -= std::min(n, it->second.nlookup);
    if (it->second.nlookup == 0) {
      auto p = by_path_.find(it->second.path);
      if (p != by_path_.end() && p->second == ino) by_path_.erase(p);
      inodes_.erase(it);
    }
  }

  void GetAttr(fuse_req_t req, fuse_ino_t ino) {
    std::string path;
    bool dir = false;
    if (!PathOf(ino, &path, &dir)) return (void)fuse_reply_err(req, ENOENT);
    if (dir) {
      struct stat st = DirStat(ino);
      return (void)fuse_reply_attr(req, &st, opt_.metadata_ttl);
    }
    auto f = Resolve(path);
    if (!f.ok()) return Fail(req, "getattr " + path, f.status(), f.status().code() == Code::kNotFound);
    struct stat st = FileStat(ino, f->info.size, f->info.last_modified);
    fuse_reply_attr(req, &st, f->writing ? 0 : opt_.metadata_ttl);
  }

  void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    std::string path;
    bool dir = false;
    if (!PathOf(ino, &path, &dir)) return (void)fuse_reply_err(req, ENOENT);
    if (dir) return GetAttr(req, ino);
    if (to_set & FUSE_SET_ATTR_SIZE) {
      if (opt_.read_only) return (void)fuse_reply_err(req, EROFS);
      uint64_t want = static_cast<uint64_t>(attr->st_size);
      Handle* h = fi ? reinterpret_cast<Handle*>(fi->fh) : nullptr;
      if (h != nullptr) {
        std::lock_guard<std::mutex> lock(h->mu);
        Status st;
        if (h->existing) st = StartWriter(h, /*append=*/want != 0);  // the object is written anew from here
        if (st.ok() && (!h->writer || h->writer->closed())) st = Status::InvalidArgument("the file is not open for writing");
        if (st.ok()) st = h->writer->Truncate(want);
        if (!st.ok()) return Fail(req, "truncate " + path, st);
      } else {
        AwaitCloses(path);
        auto f = Resolve(path, true);
        if (!f.ok()) return Fail(req, "truncate " + path, f.status(), f.status().code() == Code::kNotFound);
        if (f->info.size != want) {
          if (want != 0 || f->writing) return Unsupported(req, path, "truncate to " + std::to_string(want) + " bytes");
          auto w = client_->OpenWrite(Url(path), /*rewritable=*/false);  // truncate to 0: an empty object
          if (!w.ok()) return Fail(req, "truncate " + path, w.status());
          auto info = (*w)->Close();
          if (!info.ok()) return Fail(req, "truncate " + path, info.status());
          info->last_modified = std::time(nullptr);
          RememberFile(path, *info);
        }
      }
    }
    // Modes, owners and times are the mount's (--uid, --gid): changes to them are accepted and
    // not kept, as on other object-store mounts.
    GetAttr(req, ino);
  }

  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    std::string path;
    bool dir = false;
    if (!PathOf(ino, &path, &dir)) return (void)fuse_reply_err(req, ENOENT);
    if (!dir) return (void)fuse_reply_err(req, ENOTDIR);
    auto h = std::make_unique<DirHandle>();
    DirHandle* const handle = h.get();
    fi->fh = reinterpret_cast<uint64_t>(handle);
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_dirs_.emplace(handle, std::move(h));
    }
    // A reply the kernel did not take (the opendir was interrupted) is never released.
    if (fuse_reply_open(req, fi) != 0) CloseDir(handle);
  }

  void ReleaseDir(fuse_req_t req, fuse_file_info* fi) {
    CloseDir(reinterpret_cast<DirHandle*>(fi->fh));
    fuse_reply_err(req, 0);
  }

  void CloseDir(DirHandle* handle) {
    std::lock_guard<std::mutex> lock(mu_);
    open_dirs_.erase(handle);
  }

  // Adds the next page of the listing (or, once its pages are done, what this mount is making
  // and nobody lists yet) to `d`.
  Status ListMore(const std::string& path, DirHandle* d) {
    const std::string prefix = root_.key + (path.empty() ? "" : path + "/");
    auto add = [&](const std::string& key, bool dir) {
      if (key.size() <= prefix.size()) return;  // the prefix's own marker object
      std::string name = key.substr(prefix.size());
      if (dir && !name.empty() && name.back() == '/') name.pop_back();
      if (name.empty() || name.find('/') != std::string::npos) return;
      if (d->names.insert(name).second) d->entries.emplace_back(name, dir);
    };
    if (!d->listed) {
      SHOAL_ASSIGN_OR_RETURN(shoal::ListPage page, client_->List(DirUrl(path), false, d->continuation));
      for (const auto& o : page.objects) add(o.key, false);
      for (const auto& p : page.prefixes) add(p, true);
      RememberPage(path, page);
      d->continuation = page.next_continuation;
      d->listed = d->continuation.empty();
      if (d->listed) {  // every name: lookups of others in it are asked one by one (ListForLookups)
        std::lock_guard<std::mutex> lock(mu_);
        lookups_[path].listed_until = Clock::now() + Ttl();
      }
      return Status::Ok();
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [p, h] : writing_) {
      if (Parent(p) == path) add(root_.key + p, false);
    }
    for (const auto& [p, size] : closing_) {
      if (Parent(p) == path) add(root_.key + p, false);
    }
    for (const auto& p : made_dirs_) {
      if (!p.empty() && Parent(p) == path) add(root_.key + p + "/", true);
    }
    d->done = true;
    return Status::Ok();
  }

  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    std::string path;
    if (!PathOf(ino, &path)) return (void)fuse_reply_err(req, ENOENT);
    auto* d = reinterpret_cast<DirHandle*>(fi->fh);
    std::vector<char> buf(size);
    size_t used = 0;
    // Offsets: 1 ".", 2 "..", then entry i at i + 3.
    for (off_t next = off;; next++) {
      std::string name;
      struct stat st {};
      if (next == 0 || next == 1) {
        name = next == 0 ? "." : "..";
        st.st_mode = S_IFDIR;
      } else {
        size_t i = static_cast<size_t>(next - 2);
        while (i >= d->entries.size() && !d->done) {
          Status s = ListMore(path, d);
          if (!s.ok()) {
            if (used > 0) break;  // what we have now; the error comes with the next call
            return Fail(req, "readdir " + path, s);
          }
        }
        if (i >= d->entries.size()) break;
        name = d->entries[i].first;
        st.st_mode = d->entries[i].second ? S_IFDIR : S_IFREG;
      }
      st.st_ino = KnownInode(path.empty() ? name : path + "/" + name, next);  // the kernel looks the name up
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, next + 1);
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  }

  // A writer of the handle's object: a new one, or with `append` one that starts with the
  // object's current bytes.
  Status StartWriter(Handle* h, bool append = false) {
    AwaitCloses(h->path);  // the version before this one is acknowledged first: writes stay in order
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto w = writing_.find(h->path);
      if (w != writing_.end() && w->second != h) {
        return Status::AlreadyExists(h->path + " is being written by another open file");
      }
    }
    if (append) {
      SHOAL_ASSIGN_OR_RETURN(h->writer, client_->OpenAppend(Url(h->path)));
    } else {
      SHOAL_ASSIGN_OR_RETURN(h->writer, client_->OpenWrite(Url(h->path)));
    }
    h->existing = false;
    std::lock_guard<std::mutex> lock(mu_);
    writing_[h->path] = h;
    // A version of it is known: should this write be abandoned, that one is still there.
    if (attrs_.erase(h->path) > 0) empty_dirs_.erase(Parent(h->path));
    return Status::Ok();
  }

  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    std::string path;
    bool dir = false;
    if (!PathOf(ino, &path, &dir)) return (void)fuse_reply_err(req, ENOENT);
    if (dir) return (void)fuse_reply_err(req, EISDIR);
    AwaitCloses(path);  // a file closed early is opened once the node has it
    int mode = fi->flags & O_ACCMODE;
    auto h = std::make_unique<Handle>();
    h->path = path;
    h->opener = fuse_req_ctx(req)->pid;
    if (mode != O_RDONLY) {
      if (opt_.read_only) return (void)fuse_reply_err(req, EROFS);
      h->opener_group = LookAt(h->opener).group;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (writing_.count(path)) return (void)fuse_reply_err(req, EBUSY);
      }
      if (fi->flags & O_TRUNC) {
        Status st = StartWriter(h.get());
        if (!st.ok()) return Fail(req, "open " + path, st);
      } else {
        auto f = Resolve(path, true);
        if (!f.ok()) return Fail(req, "open " + path, f.status(), f.status().code() == Code::kNotFound);
        if (f->info.size == 0) {
          Status st = StartWriter(h.get());
          if (!st.ok()) return Fail(req, "open " + path, st);
        } else {
          h->existing = true;  // its bytes are read into a writer at the first write or truncate
        }
      }
      fi->direct_io = 0;
      fi->keep_cache = 0;
    }
    if (mode != O_WRONLY && !h->writer) {
      // The version current now (its ETag pins every read); the kernel keeps its cached pages
      // when the version is the one it cached.
      uint64_t told = 0;  // the size the kernel was told
      auto r = OpenToRead(path, &told);
      if (!r.ok()) return Fail(req, "open " + path, r.status(), r.status().code() == Code::kNotFound);
      h->reader = std::move(r).value();
      const ObjectInfo& info = h->reader->info();
      std::lock_guard<std::mutex> lock(mu_);
      auto& seen = etags_[ino];
      if (DirectRead(info.size) || (info.size != told && InitPatch::Get().direct_io_mmap())) {
        // (A size other than the kernel's: it would cut reads at its own. Only where such a
        // file can still be mapped.)
        fi->direct_io = 1;
        fi->keep_cache = 0;
      } else {
        fi->keep_cache = seen == info.etag;
      }
      seen = info.etag;
    }
    fi->fh = reinterpret_cast<uint64_t>(h.release());
    if (fuse_reply_open(req, fi) != 0) {
      // The opener went away (interrupted): nothing will release it.
      CloseHandle(reinterpret_cast<Handle*>(fi->fh), true);
    }
  }

  // A reader of `path`'s version current now, for an open; *told: the size the kernel was
  // told. A file known to be small (its lookup or a listing said so) is opened with its bytes in
  // the same GET: the open asks nothing else and still gets the version current now (a data
  // loader's open of a small file costs the node one request). Others as ResolveToOpen says.
  Result<std::unique_ptr<client::Reader>> OpenToRead(const std::string& path, uint64_t* told) {
    const Status being_written = Status::NotFound(path + " is being written: it appears whole at its close");
    std::optional<ObjectInfo> known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_.count(path)) return being_written;
      auto a = attrs_.find(path);
      if (a != attrs_.end() && a->second.second > Clock::now()) known = a->second.first;
    }
    if (known && known->size > 0 && known->size <= kOpenWithBytesMax && client_->has_cache()) {
      *told = known->size;
      auto r = client_->OpenReadFirst(Url(path), kOpenWithBytesMax);
      if (r.ok() && *r) {
        ObjectInfo now = (*r)->info();
        now.key = path;
        now.last_modified = now.etag == known->etag && known->last_modified != 0 ? known->last_modified : std::time(nullptr);
        RememberFile(path, now);
        return r;
      }
      if (!r.ok() && r.status().code() == Code::kNotFound) Forget(path);
      // Not for this way (an empty object now, a node that does not say the version): asked below.
      if (!r.ok() && r.status().code() != Code::kInvalidArgument) return r.status();
    }
    auto f = ResolveToOpen(path);
    if (!f.ok()) return f.status();
    if (f->writing) return being_written;
    *told = known ? known->size : f->info.size;
    return client_->OpenRead(Url(path), f->info);
  }

  // Whether a file of this size is read around the kernel's page cache (see docs/mount.md):
  // each read call then goes to the mount, which answers from the Reader's fetched-ahead
  // blocks straight into the caller's buffer. Only where the kernel still allows a shared mmap.
  bool DirectRead(uint64_t size) const {
    return !opt_.kernel_cache && size >= kDirectReadMinBytes && InitPatch::Get().direct_io_mmap();
  }

  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    if (!S_ISREG(mode) && (mode & S_IFMT) != 0) return (void)fuse_reply_err(req, EOPNOTSUPP);
    std::string path;
    if (!PathToChange(req, parent, name, &path)) return;
    auto h = std::make_unique<Handle>();
    h->path = path;
    h->opener = fuse_req_ctx(req)->pid;
    h->opener_group = LookAt(h->opener).group;
    Status st = StartWriter(h.get());
    if (!st.ok()) return Fail(req, "create " + path, st, false, st.code() == Code::kAlreadyExists ? EBUSY : 0);
    fuse_entry_param e{};
    e.ino = InodeFor(path, false);
    e.attr = FileStat(e.ino, 0, std::time(nullptr));
    e.attr_timeout = 0;
    e.entry_timeout = 0;
    fi->direct_io = 0;
    fi->keep_cache = 0;
    fi->fh = reinterpret_cast<uint64_t>(h.release());
    if (fuse_reply_create(req, &e, fi) != 0) CloseHandle(reinterpret_cast<Handle*>(fi->fh), true);
  }

  void Read(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi) {
    auto* h = reinterpret_cast<Handle*>(fi->fh);
    if (!h->reader) return Unsupported(req, h->path, "reading a file open for writing");
    // The bytes go to the kernel from where the Reader fetched them: no copy of our own.
    auto pieces = h->reader->Pieces(static_cast<uint64_t>(off), size);
    if (!pieces.ok()) return Fail(req, "read " + h->path, pieces.status());
    std::vector<iovec> iov;
    iov.reserve(pieces->size());
    for (const auto& p : *pieces) iov.push_back(iovec{const_cast<char*>(p.data), p.size});
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  }

  void Write(fuse_req_t req, const char* data, size_t size, off_t off, fuse_file_info* fi) {
    auto* h = reinterpret_cast<Handle*>(fi->fh);
    std::lock_guard<std::mutex> lock(h->mu);
    if (!h->failed.ok()) return Fail(req, "write " + h->path, h->failed);
    if (h->existing) {  // an existing object opened without O_TRUNC: a new version that starts with its bytes
      Status st = StartWriter(h, /*append=*/true);
      if (!st.ok()) return Fail(req, "write " + h->path, st);
    }
    if (!h->writer || h->writer->closed()) return (void)fuse_reply_err(req, EBADF);
    Status st = h->writer->WriteAt(static_cast<uint64_t>(off), data, size);
    if (!st.ok()) {
      h->failed = st;
      return Fail(req, "write " + h->path, st);
    }
    fuse_reply_write(req, size);
  }

  // Completes the object of a handle being written. Ok when there is nothing to complete.
  Status Finish(Handle* h) {
    if (!h->failed.ok()) return h->failed;
    if (!h->writer || h->writer->closed()) return Status::Ok();
    if (CloseEarly(h)) return Status::Ok();
    auto info = h->writer->Close();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto w = writing_.find(h->path);
      if (w != writing_.end() && w->second == h) writing_.erase(w);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      Closed(h->path, &info);
    }
    if (!info.ok()) return h->failed = info.status();
    if (h->fsync_asked && opt_.fsync_durable) return client_->Flush(Url(h->path));
    return Status::Ok();
  }

  // What the close of a write of `path` leaves known, closed early or not: the version it
  // published (and that its directory has a file now), or, when it failed, that an earlier
  // version may be there. mu_ held.
  void Closed(const std::string& path, Result<ObjectInfo>* info) {
    if (!info->ok()) {
      empty_dirs_.erase(Parent(path));  // ask from now on
      return;
    }
    (*info)->key = path;
    (*info)->last_modified = std::time(nullptr);
    attrs_[path] = {**info, Clock::now() + Ttl()};
    dirs_.erase(Parent(path));  // a directory listed empty before has this file now
  }

  // --- early closes (--async-close) ---------------------------------------------------------
  // With --async-close and no fsync asked: hands the handle's writer, which holds every byte of
  // the file, to a closer thread that waits for the node's acknowledgement, and returns true.
  // Until then the file is listed and looked up with its size (closing_), and whatever needs
  // the object itself waits for it (AwaitCloses). False (the close waits, as without the flag)
  // while a failed early close has not been reported by an fsync: the writer then hears of
  // failures (a full disk on the node) at close again. h->mu held.
  bool CloseEarly(Handle* h) {
    if (!closer_ || h->fsync_asked) return false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!close_failed_.empty()) return false;
      closing_cv_.wait(lock, [&] { return closing_.size() < kClosingMax; });
      auto w = writing_.find(h->path);
      if (w != writing_.end() && w->second == h) writing_.erase(w);
      closing_[h->path] = h->writer->size();  // in the same step: the name is never unknown
      dirs_.erase(Parent(h->path));
    }
    closer_->Submit([this, path = h->path, writer = std::move(h->writer)]() mutable {
      auto info = writer->Close();
      writer.reset();
      std::lock_guard<std::mutex> lock(mu_);
      closing_.erase(path);
      Closed(path, &info);
      if (!info.ok()) {
        close_failed_[path] = info.status();
        attrs_.erase(path);
        std::fprintf(stderr, "shoal mount: %s: not written (after its close returned): %s\n", path.c_str(),
                     info.status().ToString().c_str());
      }
      closing_cv_.notify_all();
    });
    return true;
  }

  // Whether `p` is `path`, or with `under` below directory `path` too.
  static bool Names(const std::string& path, const std::string& p, bool under) {
    if (p == path) return true;
    return under && (path.empty() || (p.size() > path.size() && p.compare(0, path.size(), path) == 0 && p[path.size()] == '/'));
  }
  // Waits until no early close of `path` (with `under`, of a file below it too) is in flight.
  void AwaitCloses(const std::string& path, bool under = false) {
    if (!closer_) return;
    std::unique_lock<std::mutex> lock(mu_);
    closing_cv_.wait(lock, [&] {
      for (const auto& [p, size] : closing_) {
        if (Names(path, p, under)) return false;
      }
      return true;
    });
  }
  // As AwaitCloses, then the failure of such a close not reported yet (for fsync), which is
  // then forgotten; Ok when there is none.
  Status AwaitClosesAndReport(const std::string& path, bool under) {
    AwaitCloses(path, under);
    std::lock_guard<std::mutex> lock(mu_);
    Status failed;
    for (auto it = close_failed_.begin(); it != close_failed_.end();) {
      if (!Names(path, it->first, under)) {
        ++it;
        continue;
      }
      if (failed.ok()) failed = it->second.WithContext("writing " + it->first + " after its close returned");
      it = close_failed_.erase(it);
    }
    return failed;
  }
  // At unmount: every early close ends (the closer runs what is queued, then joins).
  void AwaitAllCloses() { closer_.reset(); }

  void Flush(fuse_req_t req, fuse_file_info* fi) {
    auto* h = reinterpret_cast<Handle*>(fi->fh);
    std::lock_guard<std::mutex> lock(h->mu);
    // Every close(2) of a descriptor flushes, dups too (a shell's `> file` closes one before
    // writing). The object is completed at a close by the process that opened it, by any of
    // its threads, once something was written; other flushes (a child that inherited the
    // descriptor) leave it to the last close (release).
    if (h->writer && !h->writer->closed()) {
      const pid_t tid = fuse_req_ctx(req)->pid;
      // The writer's process killed by a signal before it closed the file (this flush comes
      // from its exit): an abandoned write, never published; the previous version stays.
      const Caller caller = LookAt(tid);
      if (caller.killed_by != 0 && caller.group == h->opener_group) {
        h->writer->Abort();
        h->failed = Status::IOError("its writer (process " + std::to_string(caller.group) + ") was killed by signal " +
                                    std::to_string(caller.killed_by) + " before it closed the file: nothing of " +
                                    "this write is published, any earlier version stays");
        return (void)fuse_reply_err(req, EIO);  // CloseHandle says why
      }
      if (h->writer->size() == 0 || caller.group != h->opener_group) return (void)fuse_reply_err(req, 0);
    }
    Status st = Finish(h);
    if (!st.ok()) return Fail(req, "close " + h->path, st);
    fuse_reply_err(req, 0);
  }

  void CloseHandle(Handle* h, bool abandon) {
    {
      std::lock_guard<std::mutex> lock(h->mu);
      if (abandon && h->writer && !h->writer->closed()) h->writer->Abort();
      Status st = Finish(h);  // normally done at flush already
      if (!st.ok()) std::fprintf(stderr, "shoal mount: %s: %s\n", h->path.c_str(), st.ToString().c_str());
      std::lock_guard<std::mutex> g(mu_);
      auto w = writing_.find(h->path);
      if (w != writing_.end() && w->second == h) writing_.erase(w);
    }
    delete h;
  }

  void Release(fuse_req_t req, fuse_file_info* fi) {
    CloseHandle(reinterpret_cast<Handle*>(fi->fh), false);
    fuse_reply_err(req, 0);
  }

  void Fsync(fuse_req_t req, fuse_file_info* fi) {
    auto* h = reinterpret_cast<Handle*>(fi->fh);
    std::lock_guard<std::mutex> lock(h->mu);
    if (!h->failed.ok()) return Fail(req, "fsync " + h->path, h->failed);
    if (h->writer && !h->writer->closed()) {
      // An object appears whole or not at all: fsync before close cannot make part of it
      // durable. It is remembered, and the close then waits as fsync would have.
      h->fsync_asked = true;
      return (void)fuse_reply_err(req, 0);
    }
    Status early = AwaitClosesAndReport(h->path, false);  // closed early by another descriptor
    if (!early.ok()) return Fail(req, "fsync " + h->path, early);
    if (opt_.fsync_durable) {
      Status st = client_->Flush(Url(h->path));
      if (!st.ok()) return Fail(req, "fsync " + h->path, st);
    }
    fuse_reply_err(req, 0);
  }

  // fsync of a directory (`sync DIR`, and `shoal unmount` on the root): waits for the early
  // closes of files below it (--async-close) and reports one that failed.
  void FsyncDir(fuse_req_t req, fuse_ino_t ino) {
    std::string path;
    if (!PathOf(ino, &path)) return (void)fuse_reply_err(req, ENOENT);
    Status st = AwaitClosesAndReport(path, true);
    if (!st.ok()) return Fail(req, "fsync " + (path.empty() ? std::string("/") : path), st);
    fuse_reply_err(req, 0);
  }

  // The path of `name` in directory `parent`, for a change; false once it has answered the
  // request with the error (no such directory, a read-only mount).
  bool PathToChange(fuse_req_t req, fuse_ino_t parent, const char* name, std::string* path) {
    std::string dir;
    if (!PathOf(parent, &dir)) return fuse_reply_err(req, ENOENT), false;
    if (opt_.read_only) return fuse_reply_err(req, EROFS), false;
    *path = Join(dir, name);
    return true;
  }

  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    std::string path;
    if (!PathToChange(req, parent, name, &path)) return;
    AwaitCloses(path);
    auto f = Resolve(path, true);
    if (!f.ok()) return Fail(req, "unlink " + path, f.status(), f.status().code() == Code::kNotFound);
    if (f->dir) return (void)fuse_reply_err(req, EISDIR);
    if (f->writing) return (void)fuse_reply_err(req, EBUSY);
    Status st = client_->Delete(Url(path));
    if (!st.ok()) return Fail(req, "unlink " + path, st);
    Forget(path);
    fuse_reply_err(req, 0);
  }

  void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    std::string path;
    if (!PathToChange(req, parent, name, &path)) return;
    auto f = Resolve(path, true);
    if (f.ok()) return (void)fuse_reply_err(req, EEXIST);
    if (f.status().code() != Code::kNotFound) return Fail(req, "mkdir " + path, f.status());
    {
      std::lock_guard<std::mutex> lock(mu_);
      made_dirs_.insert(path);
      empty_dirs_[path] = Clock::now() + Ttl();  // nothing was under it: no object, no key below
    }
    ReplyEntry(req, path, Found{true, false, {}});
  }


  void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    std::string path;
    if (!PathToChange(req, parent, name, &path)) return;
    auto f = Resolve(path, true);
    if (!f.ok()) return Fail(req, "rmdir " + path, f.status(), f.status().code() == Code::kNotFound);
    if (!f->dir) return (void)fuse_reply_err(req, ENOTDIR);
    auto any = DirHasEntries(path);
    if (!any.ok()) return Fail(req, "rmdir " + path, any.status());
    if (*any) return (void)fuse_reply_err(req, ENOTEMPTY);
    std::lock_guard<std::mutex> lock(mu_);
    made_dirs_.erase(path);
    dirs_.erase(path);
    empty_dirs_.erase(path);
    fuse_reply_err(req, 0);
  }

  // A file is renamed by copying it to the new name through the node (or the store), then
  // deleting the old one: objects have no rename. A directory only while it is empty.
  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
              unsigned int flags) {
    std::string dir, newdir;
    if (!PathOf(parent, &dir) || !PathOf(newparent, &newdir)) return (void)fuse_reply_err(req, ENOENT);
    if (opt_.read_only) return (void)fuse_reply_err(req, EROFS);
    if (flags & RENAME_EXCHANGE) return (void)fuse_reply_err(req, EINVAL);
    std::string from = Join(dir, name), to = Join(newdir, newname);
    if (from == to) return (void)fuse_reply_err(req, 0);
    AwaitCloses(from);
    AwaitCloses(to);
    auto f = Resolve(from, true);
    if (!f.ok()) return Fail(req, "rename " + from, f.status(), f.status().code() == Code::kNotFound);
    if (f->writing) return (void)fuse_reply_err(req, EBUSY);
    auto target = Resolve(to, true);
    if (target.ok() && (flags & RENAME_NOREPLACE)) return (void)fuse_reply_err(req, EEXIST);
    if (!target.ok() && target.status().code() != Code::kNotFound) return Fail(req, "rename " + to, target.status());
    if (f->dir) {
      if (target.ok()) return (void)fuse_reply_err(req, target->dir ? ENOTEMPTY : ENOTDIR);
      auto any = DirHasEntries(from);
      if (!any.ok()) return Fail(req, "rename " + from, any.status());
      if (*any) return (void)fuse_reply_err(req, EXDEV);  // mv then copies the tree itself
      std::lock_guard<std::mutex> lock(mu_);
      made_dirs_.erase(from);
      dirs_.erase(from);
      empty_dirs_.erase(from);
      made_dirs_.insert(to);
      Move(from, to);
      return (void)fuse_reply_err(req, 0);
    }
    if (target.ok() && target->dir) return (void)fuse_reply_err(req, EISDIR);
    Status st = CopyObject(from, f->info, to);
    if (!st.ok()) return Fail(req, "rename " + from + " to " + to, st);
    st = client_->Delete(Url(from));
    if (!st.ok()) return Fail(req, "rename: delete " + from + " after copying it to " + to, st);
    {
      std::lock_guard<std::mutex> lock(mu_);
      attrs_.erase(from);
      Move(from, to);
    }
    fuse_reply_err(req, 0);
  }

  Status CopyObject(const std::string& from, const ObjectInfo& info, const std::string& to) {
    SHOAL_ASSIGN_OR_RETURN(auto reader, client_->OpenRead(Url(from), info));
    SHOAL_ASSIGN_OR_RETURN(auto writer, client_->OpenWrite(Url(to), /*rewritable=*/false));
    std::string buf(8 << 20, '\0');
    for (uint64_t at = 0; at < info.size;) {
      SHOAL_ASSIGN_OR_RETURN(size_t n, reader->ReadAt(at, buf.data(), buf.size()));
      if (n == 0) return Status::IOError("short read of " + from);
      SHOAL_RETURN_IF_ERROR(writer->Write(buf.data(), n));
      at += n;
    }
    SHOAL_ASSIGN_OR_RETURN(ObjectInfo done, writer->Close());
    done.key = to;
    done.last_modified = std::time(nullptr);
    RememberFile(to, done);
    return Status::Ok();
  }

  // The inode of `from` is now `to` (mu_ held).
  void Move(const std::string& from, const std::string& to) {
    auto it = by_path_.find(from);
    by_path_.erase(to);  // a file replaced there keeps its inode until forgotten, unnamed
    if (it == by_path_.end()) return;
    fuse_ino_t ino = it->second;
    by_path_.erase(it);
    inodes_[ino].path = to;
    by_path_[to] = ino;
    etags_.erase(ino);
  }

  void StatFs(fuse_req_t req) {
    struct statvfs st {};
    st.f_bsize = 1 << 20;
    st.f_frsize = 1 << 20;
    st.f_blocks = st.f_bfree = st.f_bavail = 1ull << 30;  // an object store has no fixed size
    st.f_files = st.f_ffree = st.f_favail = 1ull << 30;
    st.f_namemax = 1024;
    fuse_reply_statfs(req, &st);
  }

  void Fail(fuse_req_t req, const std::string& what, const Status& st, bool quiet = false, int err = 0) {
    if (!quiet) std::fprintf(stderr, "shoal mount: %s: %s\n", what.c_str(), st.ToString().c_str());
    fuse_reply_err(req, err ? err : ErrnoOf(st));
  }
  void Unsupported(fuse_req_t req, const std::string& path, const std::string& what) {
    std::fprintf(stderr,
                 "shoal mount: %s: %s is not supported: objects are read, or written whole at close "
                 "(EOPNOTSUPP; see docs/mount.md)\n",
                 path.c_str(), what.c_str());
    fuse_reply_err(req, EOPNOTSUPP);
  }

  // Abandons the files still being written (the mount is going away): nothing of them appears.
  void AbandonWrites() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [path, h] : writing_) {
      std::fprintf(stderr, "shoal mount: %s was still being written at unmount: abandoned, not stored\n", path.c_str());
      h->writer->Abort();
    }
    writing_.clear();
  }

 private:
  MountOptions opt_;
  std::unique_ptr<client::Client> client_;
  ObjectUrl root_;  // its key is "" or ends in '/'
  std::time_t started_;
  std::mutex mu_;
  std::unordered_map<fuse_ino_t, Inode> inodes_;
  std::unordered_map<std::string, fuse_ino_t> by_path_;
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;
  std::unordered_map<std::string, std::pair<ObjectInfo, Clock::time_point>> attrs_;  // files
  std::unordered_map<std::string, Clock::time_point> dirs_;                         // directories seen
  std::set<std::string> made_dirs_;                                                 // mkdir here, nothing under yet
  std::unordered_map<std::string, Clock::time_point> empty_dirs_;                   // mkdir here, found empty: until
  std::unordered_map<std::string, Handle*> writing_;                                // files being written
  // Directories open (OpenDir until ReleaseDir); any still open when the mount ends go with it.
  std::unordered_map<DirHandle*, std::unique_ptr<DirHandle>> open_dirs_;
  // --async-close: files closed whose acknowledgement is awaited (their size), and closes that
  // failed and no fsync reported yet; closing_cv_ tells of each close that ends.
  std::unordered_map<std::string, uint64_t> closing_;
  std::map<std::string, Status> close_failed_;
  std::condition_variable closing_cv_;
  struct Lookups {  // of names in one directory (ListForLookups)
    int misses = 0;
    Clock::time_point window_until, listed_until;
    bool listing = false;
  };
  std::map<std::string, Lookups> lookups_;  // by directory
  std::condition_variable lookups_cv_;
  std::unordered_map<fuse_ino_t, std::string> etags_;                               // version last opened
  std::string mountpoint_;
  std::once_flag after_init_;
  std::unique_ptr<WorkerPool> closer_;  // --async-close: waits for the node's acknowledgements
};

Fs* FsOf(fuse_req_t req) {
  Fs* fs = static_cast<Fs*>(fuse_req_userdata(req));
  fs->AfterInit();
  return fs;
}

fuse_lowlevel_ops Ops() {
  fuse_lowlevel_ops ops{};
  ops.init = [](void*, fuse_conn_info* conn) {
    conn->max_write = 1 << 20;  // writes of up to 1 MiB per request
    conn->max_readahead = kReadAheadKiB << 10;
    if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  };
  ops.lookup = [](fuse_req_t r, fuse_ino_t p, const char* n) { FsOf(r)->Lookup(r, p, n); };
  ops.forget = [](fuse_req_t r, fuse_ino_t i, uint64_t n) {
    FsOf(r)->Forget(i, n);
    fuse_reply_none(r);
  };
  ops.forget_multi = [](fuse_req_t r, size_t count, fuse_forget_data* f) {
    for (size_t i = 0; i < count; i++) FsOf(r)->Forget(f[i].ino, f[i].nlookup);
    fuse_reply_none(r);
  };
  ops.getattr = [](fuse_req_t r, fuse_ino_t i, fuse_file_info*) { FsOf(r)->GetAttr(r, i); };
  ops.setattr = [](fuse_req_t r, fuse_ino_t i, struct stat* a, int s, fuse_file_info* fi) {
    FsOf(r)->SetAttr(r, i, a, s, fi);
  };
  ops.opendir = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) { FsOf(r)->OpenDir(r, i, fi); };
  ops.readdir = [](fuse_req_t r, fuse_ino_t i, size_t s, off_t o, fuse_file_info* fi) {
    FsOf(r)->ReadDir(r, i, s, o, fi);
  };
  ops.releasedir = [](fuse_req_t r, fuse_ino_t, fuse_file_info* fi) { FsOf(r)->ReleaseDir(r, fi); };
  ops.open = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) { FsOf(r)->Open(r, i, fi); };
  ops.create = [](fuse_req_t r, fuse_ino_t p, const char* n, mode_t m, fuse_file_info* fi) {
    FsOf(r)->Create(r, p, n, m, fi);
  };
  ops.read = [](fuse_req_t r, fuse_ino_t, size_t s, off_t o, fuse_file_info* fi) { FsOf(r)->Read(r, s, o, fi); };
  ops.write = [](fuse_req_t r, fuse_ino_t, const char* b, size_t s, off_t o, fuse_file_info* fi) {
    FsOf(r)->Write(r, b, s, o, fi);
  };
  ops.flush = [](fuse_req_t r, fuse_ino_t, fuse_file_info* fi) { FsOf(r)->Flush(r, fi); };
  ops.release = [](fuse_req_t r, fuse_ino_t, fuse_file_info* fi) { FsOf(r)->Release(r, fi); };
  ops.fsync = [](fuse_req_t r, fuse_ino_t, int, fuse_file_info* fi) { FsOf(r)->Fsync(r, fi); };
  ops.fsyncdir = [](fuse_req_t r, fuse_ino_t i, int, fuse_file_info*) { FsOf(r)->FsyncDir(r, i); };
  ops.unlink = [](fuse_req_t r, fuse_ino_t p, const char* n) { FsOf(r)->Unlink(r, p, n); };
  ops.mkdir = [](fuse_req_t r, fuse_ino_t p, const char* n, mode_t) { FsOf(r)->MkDir(r, p, n); };
  ops.rmdir = [](fuse_req_t r, fuse_ino_t p, const char* n) { FsOf(r)->RmDir(r, p, n); };
  ops.rename = [](fuse_req_t r, fuse_ino_t p, const char* n, fuse_ino_t np, const char* nn, unsigned int f) {
    FsOf(r)->Rename(r, p, n, np, nn, f);
  };
  ops.statfs = [](fuse_req_t r, fuse_ino_t) { FsOf(r)->StatFs(r); };
  return ops;
}

}  // namespace

// Raises the kernel's read-ahead for the mount (its bdi; 128 KiB by default, so a sequential
// reader would ask for 128 KiB at a time) to kReadAheadKiB. Measured with dd of 1 GiB: 128 KiB
// 0.93-1.13 s, 1 MiB 0.86-1.00, 4 MiB 0.92-0.97, 16 MiB 1.39-1.60. Needs root (sysfs);
// otherwise the default stays, and the mount says so. The last mount on the path is ours.
void RaiseReadAhead(const std::string& mountpoint) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line, dev;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mp;
    fields >> id >> parent >> device >> root >> mp;
    if (mp == mountpoint) dev = device;
  }
  if (dev.empty()) return;
  std::ofstream ra("/sys/class/bdi/" + dev + "/read_ahead_kb");
  ra << kReadAheadKiB;
  ra.flush();
  if (!ra) std::fprintf(stderr, "shoal mount: could not raise read-ahead (not root?): sequential reads go 128 KiB at a time\n");
}

int Run(const MountOptions& options) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "shoal mount: %s\n", m.c_str());
    return 1;
  };
  auto root = ObjectUrl::Parse(options.url);
  if (!root.ok()) return fail(root.status().ToString());
  if (!root->key.empty() && root->key.back() != '/') root->key += '/';
  client::ClientOptions client_options = options.client;
  client_options.reader.huge_pages = true;  // replies pin the Reader's buffers (client.cc)
  auto client = client::Client::Open(client_options);
  if (!client.ok()) return fail(client.status().ToString());
  // Fail now, with a clear message, rather than at the first ls: the store (or the node) must
  // answer. One key, without a delimiter: grouping keys into prefixes for a one-entry page made
  // Azurite scan for minutes under 20,000 keys (smallfiles_bench --files 20000).
  auto probe = (*client)->List(root->ToString(), true, "", 1);
  if (!probe.ok()) return fail("cannot list " + root->ToString() + ": " + probe.status().ToString());

  std::error_code ec;
  const std::string canonical = std::filesystem::weakly_canonical(options.mountpoint, ec).string();
  std::string fsopts = "fsname=shoal:" + root->ToString() + ",subtype=shoal,default_permissions";
  if (options.allow_other) fsopts += ",allow_other";
  if (options.read_only) fsopts += ",ro";
  std::vector<std::string> argv_s = {"shoal", "-o", fsopts};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  Fs fs(options, std::move(client).value(), *root);
  fs.SetMountpoint(canonical);
  fuse_lowlevel_ops ops = Ops();
  // libfuse copies argv into memory of its own when it adds an argument: freed on return (a
  // leak AddressSanitizer found, once per mount).
  struct FreeArgs {
    fuse_args* args;
    ~FreeArgs() { fuse_opt_free_args(args); }
  } free_args{&args};
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
  if (se == nullptr) return fail("could not start a FUSE session (is /dev/fuse there? install fuse3)");
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, options.mountpoint.c_str()) == 0) {
      std::fprintf(stderr, "shoal mount: %s on %s%s\n", root->ToString().c_str(), options.mountpoint.c_str(),
                   options.read_only ? " (read-only)" : "");
      // From here libfuse reads and writes /dev/fuse through InitPatch (INIT has not been
      // read yet: the loop below reads it).
      fuse_custom_io io{};
      io.read = InitPatch::Read;
      io.writev = InitPatch::Writev;
      if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) != 0) {
        std::fprintf(stderr, "shoal mount: libfuse refused custom I/O: every file is read through the page cache\n");
      }
      // Detaching points stdin, stdout and stderr at /dev/null. A stderr that is a file (`shoal
      // mount ... 2>> mount.log`) is kept: the mount's messages (a write that failed after an
      // --async-close, a writer killed) go there. A terminal or a pipe is not: the caller's
      // terminal is no place for them, and a pipe's reader would wait for the mount to end.
      int kept_stderr = -1;
      struct stat err_stat {};
      if (!options.foreground && ::fstat(STDERR_FILENO, &err_stat) == 0 && S_ISREG(err_stat.st_mode)) {
        kept_stderr = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
      }
      fuse_daemonize(options.foreground ? 1 : 0);
      if (kept_stderr >= 0) {
        ::dup2(kept_stderr, STDERR_FILENO);
        ::close(kept_stderr);
      }
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, 64);
      rc = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
      fuse_loop_cfg_destroy(cfg);
      fs.AbandonWrites();
      fs.AwaitAllCloses();
      fuse_session_unmount(se);
    } else {
      fail("could not mount on " + options.mountpoint +
           " (libfuse's reason is on the line above: does the directory exist and is it empty? may this user "
           "open /dev/fuse, or run fusermount3?)");
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return rc;
}

Status Unmount(const std::string& mountpoint, int timeout_s) {
  // First an fsync of the root (FsyncDir): a --async-close mount's files not yet acknowledged
  // are waited for, and one that failed is told. (A mount that is gone cannot be opened.) In a
  // child process: a mount whose process is stopped or hung never answers, and a wait without
  // a word would look like a hang of this command; when it gives up, the child is killed (a
  // thread left blocked on the mount would hold this process's exit: AddressSanitizer's leak
  // check at exit stops every thread first, and waited for it).
  const pid_t child = ::fork();
  if (child < 0) return Status::IOError(std::string("fork, to wait for the mount: ") + std::strerror(errno));
  if (child == 0) {  // only async-signal-safe calls here
    int err = 0;
    int root = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root >= 0) {
      if (::fsync(root) != 0) err = errno;
      ::close(root);
    }
    ::_exit(err & 0xff);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto give_up = start + std::chrono::seconds(timeout_s);
  auto next_word = start + kUnmountProgressEvery;
  int fsync_err = 0;
  for (;;) {
    int wstatus = 0;
    const pid_t got = ::waitpid(child, &wstatus, WNOHANG);
    if (got == child) {
      fsync_err = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : EIO;
      break;
    }
    if (got < 0 && errno != EINTR) return Status::IOError(std::string("waiting for the mount: ") + std::strerror(errno));
    const auto now = std::chrono::steady_clock::now();
    if (timeout_s > 0 && now >= give_up) {
      ::kill(child, SIGKILL);  // reaped below if it can die now; else by init once this command ends
      ::waitpid(child, nullptr, WNOHANG);
      return Status::Unavailable(
          "the mount at " + mountpoint + " did not answer within " + std::to_string(timeout_s) +
          " s (is its process stopped or hung? `ps -o pid,stat,args -C shoal`); nothing was unmounted. Wait longer "
          "(--timeout 0 waits as long as it takes), or detach it at once with `fusermount3 -uz " + mountpoint +
          "`, losing what it has not sent to the node");
    }
    if (now >= next_word) {
      std::fprintf(stderr,
                   "shoal unmount: waiting for %s to finish the files written through it (%lld s); "
                   "Ctrl-C leaves it mounted\n",
                   mountpoint.c_str(),
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(now - start).count()));
      next_word += kUnmountProgressEvery;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Status written;
  if (fsync_err != 0) {
    written = Status::IOError("a file written through " + mountpoint + " was not stored after its close returned (" +
                              std::strerror(fsync_err) +
                              "); the mount logged which on its stderr (with --foreground, or when that is a file)");
  }
  Status unmounted = UnmountNow(mountpoint);
  if (written.ok() || unmounted.ok()) return written.ok() ? unmounted : written;
  return Status::IOError(written.message() + "; and then: " + unmounted.message());  // both told
}

Status UnmountNow(const std::string& mountpoint) {
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), 0) == 0) return Status::Ok();
    int e = errno;
    if (e == EBUSY) {
      return Status::Unavailable(mountpoint + " is busy: a process has a file or directory open there "
                                 "(see `fuser -vm " + mountpoint + "`)");
    }
    if (e == EINVAL) return Status::InvalidArgument(mountpoint + " is not a mount point: nothing is mounted there");
    return Status::InvalidArgument("cannot unmount " + mountpoint + ": " + std::strerror(e));
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("fusermount3", "fusermount3", "-u", mountpoint.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "shoal unmount: cannot run fusermount3 (install fuse3): %s\n", std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status::InvalidArgument("fusermount3 -u " + mountpoint + " failed");
}

}  // namespace shoal::mount
