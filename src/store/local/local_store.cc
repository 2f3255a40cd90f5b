#include "store/local/local_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/file.h"
#include "common/strings.h"

namespace shoal {
namespace {

namespace fs = std::filesystem;

// Files being written are hidden until renamed; listing skips them, keys may not use them.
constexpr std::string_view kTempPrefix = ".shoal-tmp-";

Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(what + " does not exist");
  if (err == EACCES || err == EPERM || err == EROFS) {
    return Status::PermissionDenied(msg + " (check the directory's permissions)");
  }
  if (err == ENOSPC || err == EDQUOT) return Status::IOError(msg + " (free some space)");
  return Status::IOError(msg);
}

std::string EtagOf(const struct stat& st) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%lx-%lx-%lx%09lx", static_cast<unsigned long>(st.st_ino),
                static_cast<unsigned long>(st.st_size), static_cast<unsigned long>(st.st_mtim.tv_sec),
                static_cast<unsigned long>(st.st_mtim.tv_nsec));
  return buf;
}

ObjectInfo InfoOf(const std::string& key, const struct stat& st) {
  return ObjectInfo{key, static_cast<uint64_t>(st.st_size), EtagOf(st), st.st_mtim.tv_sec};
}

// Metadata lives in user extended attributes of the file: user.shoal.content_type and the
// other content fields by their ContentField::name, user.shoal.meta.NAME for user metadata.
// Set on the temp file before its rename, so an object and its metadata appear together.
constexpr std::string_view kXattrPrefix = "user.shoal.";
constexpr std::string_view kXattrUserPrefix = "user.shoal.meta.";

Status SetMeta(int fd, const std::string& tmp, const std::string& path, const ObjectMeta& meta) {
  auto set = [&](const std::string& name, const std::string& value) -> Status {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) == 0) return Status::Ok();
    int err = errno;
    if (err == ENOTSUP) {
      return Status::InvalidArgument("cannot keep metadata with " + path +
                                     ": its filesystem holds no user extended attributes "
                                     "(mount it with user_xattr, use ext4/xfs/btrfs, or write "
                                     "without metadata)");
    }
    if (err == ENOSPC || err == E2BIG) {
      return Status::InvalidArgument("the metadata of " + path + " does not fit in its file's "
                                     "extended attributes (" + std::strerror(err) + "): make it smaller");
    }
    return ErrnoStatus("setting " + name + " on " + tmp, err);
  };
  for (const auto& f : kContentFields) {
    const std::string& value = meta.*f.member;
    if (!value.empty()) SHOAL_RETURN_IF_ERROR(set(std::string(kXattrPrefix) + std::string(f.name), value));
  }
  for (const auto& [name, value] : meta.user) {
    SHOAL_RETURN_IF_ERROR(set(std::string(kXattrUserPrefix) + name, value));
  }
  return Status::Ok();
}

// The metadata in the extended attributes of open file `fd`; none (only the default content
// type) when the filesystem has no extended attributes.
Result<std::shared_ptr<const ObjectMeta>> GetMeta(int fd, const std::string& path) {
  auto meta = std::make_shared<ObjectMeta>();
  std::string names(256, '\0');
  ssize_t n;
  while ((n = ::flistxattr(fd, names.data(), names.size())) < 0 && errno == ERANGE) {
    names.resize(names.size() * 4);
  }
  if (n < 0 && errno != ENOTSUP) return ErrnoStatus("listing the extended attributes of " + path, errno);
  std::string value;
  for (size_t pos = 0; n > 0 && pos < static_cast<size_t>(n);) {
    std::string name(names.data() + pos);
    pos += name.size() + 1;
    if (!StartsWith(name, kXattrPrefix)) continue;
    ssize_t len = ::fgetxattr(fd, name.c_str(), nullptr, 0);  // its size, then its value
    if (len >= 0) {
      value.resize(static_cast<size_t>(len));
      len = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    }
    if (len < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      return ErrnoStatus("reading " + name + " of " + path, errno);
    }
    std::string v = value.substr(0, static_cast<size_t>(len));
    if (StartsWith(name, kXattrUserPrefix)) {
      meta->user[name.substr(kXattrUserPrefix.size())] = v;
      continue;
    }
    for (const auto& f : kContentFields) {
      if (name.substr(kXattrPrefix.size()) == f.name) meta.get()->*f.member = v;
    }
  }
  if (meta->content_type.empty()) meta->content_type = kDefaultContentType;
  return std::shared_ptr<const ObjectMeta>(std::move(meta));
}

Status MakeParents(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return ErrnoStatus("creating directory " + parent.string(), ec.value());
  return Status::Ok();
}

Status SyncDir(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  int err = SyncDirectory(dir);
  return err == 0 ? Status::Ok() : ErrnoStatus("syncing directory " + dir, err);
}

Status WriteAll(int fd, std::string_view data, uint64_t offset, const std::string& path) {
  int err = WriteAt(fd, data, offset);
  return err == 0 ? Status::Ok() : ErrnoStatus("writing " + path, err);
}

// Whether `path` is as `only_if` says (kPreconditionFailed naming what it is otherwise).
Status CheckCondition(const std::string& path, const WriteCondition& only_if) {
  if (only_if.empty()) return Status::Ok();
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (only_if.if_absent && exists) return Status::PreconditionFailed(path + " exists (written meanwhile)");
  if (!only_if.if_match.empty() && (!exists || EtagOf(st) != only_if.if_match)) {
    return Status::PreconditionFailed(path + (exists ? " changed (ETag " + EtagOf(st) + ")" : " is gone") +
                                      ", not ETag " + only_if.if_match);
  }
  return Status::Ok();
}

// Makes the temp file `tmp` the object at `path`: fsync (when `sync`), rename (only if
// `only_if` holds, checked under a lock of the directory), fsync the directory (when `sync`).
Result<ObjectInfo> Publish(int fd, const std::string& tmp, const std::string& path,
                           const std::string& key, bool sync, const WriteCondition& only_if) {
  if (sync && ::fsync(fd) != 0) return ErrnoStatus("syncing " + tmp, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + tmp, errno);
  // The check and the rename as one step for every writer of the directory (other processes
  // too): an exclusive lock on the directory itself.
  struct DirLock {
    int fd = -1;
    ~DirLock() {
      if (fd >= 0) ::close(fd);  // releases the flock
    }
  } dir_lock;
  if (!only_if.empty()) {
    dir_lock.fd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_lock.fd < 0) return ErrnoStatus("opening the directory of " + path, errno);
    if (::flock(dir_lock.fd, LOCK_EX) != 0) return ErrnoStatus("locking the directory of " + path, errno);
    SHOAL_RETURN_IF_ERROR(CheckCondition(path, only_if));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
      return Status::InvalidArgument("cannot write " + path + ": a directory of that name exists");
    }
    return ErrnoStatus("renaming " + tmp + " to " + path, err);
  }
  if (sync) SHOAL_RETURN_IF_ERROR(SyncDir(path));
  return InfoOf(key, st);
}

class LocalUpload final : public MultipartUpload {
 public:
  LocalUpload(int fd, std::string tmp, std::string path, std::string key, bool sync)
      : fd_(fd), tmp_(std::move(tmp)), path_(std::move(path)), key_(std::move(key)), sync_(sync) {}
  ~LocalUpload() override { Abort(); }

  Status PutPart(uint32_t /*index*/, uint64_t offset, std::string_view data) override {
    // Buffered writes to one file serialize on its inode lock in the kernel, where waiting
    // threads spin (measured: a fifth of a download's CPU). Waiting here sleeps instead.
    std::lock_guard<std::mutex> lock(write_mu_);
    return WriteAll(fd_, data, offset, tmp_);
  }

  Result<ObjectInfo> Complete(uint32_t /*num_parts*/, const WriteCondition& only_if) override {
    if (fd_ < 0) return Status::InvalidArgument("upload of " + path_ + " already finished");
    auto info = Publish(fd_, tmp_, path_, key_, sync_, only_if);
    if (info.status().code() == Code::kPreconditionFailed) return info;  // kept for another attempt
    if (info.ok()) tmp_.clear();
    Abort();
    return info;
  }

  bool positional() const override { return true; }

  void Reserve(uint64_t size) override {
    if (fd_ >= 0 && size > 0) ::fallocate(fd_, 0, 0, static_cast<off_t>(size));  // a hint only
  }

  void Abort() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
  }

 private:
  int fd_;
  std::string tmp_;  // empty once published or removed
  std::string path_;
  std::string key_;
  bool sync_;
  std::mutex write_mu_;
};

class LocalStore final : public ObjectStore {
 public:
  LocalStore(std::string root, LocalStoreOptions options)
      : root_(std::move(root)), options_(options) {
    if (root_.empty() || root_.back() != '/') root_ += '/';
  }

  std::string Describe() const override { return "file://" + root_; }
  bool HonoursIfAbsent() const override { return true; }  // checked under the directory's lock

 protected:
  Status ValidateKey(const std::string& key) const override {
    SHOAL_RETURN_IF_ERROR(ObjectStore::ValidateKey(key));
    if (key.front() == '/') {
      return Status::InvalidArgument("key '" + key + "' is absolute: keys are relative to " + root_);
    }
    size_t start = 0;
    while (start <= key.size()) {
      size_t end = key.find('/', start);
      if (end == std::string::npos) end = key.size();
      std::string_view seg(key.data() + start, end - start);
      if (seg.empty() || seg == "." || seg == "..") {
        return Status::InvalidArgument("key '" + key +
                                       "' has an empty, '.' or '..' segment, which could escape " +
                                       root_ + ": use a plain relative key like a/b/c");
      }
      if (StartsWith(seg, kTempPrefix)) {
        return Status::InvalidArgument("key '" + key + "' uses the reserved name prefix " +
                                       std::string(kTempPrefix));
      }
      start = end + 1;
    }
    return Status::Ok();
  }

  Status GetImpl(const std::string& key, const ReadOptions& opts, const ByteSink& sink) override {
    std::string path = root_ + key;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(Describe() + key, errno);
    struct stat st {};
    Status result;
    if (::fstat(fd, &st) != 0) {
      result = ErrnoStatus("stat " + path, errno);
    } else if (S_ISDIR(st.st_mode)) {
      result = Status::NotFound(path + " is a directory, not an object");
    } else if (!opts.if_match.empty() && opts.if_match != EtagOf(st)) {
      result = Status::PreconditionFailed(path + " changed (ETag " + EtagOf(st) +
                                          ", expected " + opts.if_match + "): read it again");
    } else if (opts.if_size != ReadOptions::kAnySize && static_cast<uint64_t>(st.st_size) != opts.if_size) {
      result = Status::PreconditionFailed(path + " is " + std::to_string(st.st_size) + " bytes, not " +
                                          std::to_string(opts.if_size) + " as the reader said");
    } else if (opts.answered != nullptr) {
      auto info = HeadOf(fd, key, path);  // the same open file: the bytes' own size and metadata
      result = info.ok() ? Stream(fd, path, st, opts, sink) : info.status();
      if (result.ok()) *opts.answered = std::move(info).value();
    } else {
      result = Stream(fd, path, st, opts, sink);
    }
    ::close(fd);
    return result;
  }

  Result<ObjectInfo> HeadImpl(const std::string& key) override {
    std::string path = root_ + key;
    // Size and metadata of one file: the open file, even if renamed over meanwhile.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // never waits on a FIFO
    if (fd < 0) return ErrnoStatus(Describe() + key, errno);
    Result<ObjectInfo> info = HeadOf(fd, key, path);
    ::close(fd);
    return info;
  }

  static Result<ObjectInfo> HeadOf(int fd, const std::string& key, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + path, errno);
    if (S_ISDIR(st.st_mode)) return Status::NotFound(path + " is a directory, not an object");
    SHOAL_ASSIGN_OR_RETURN(auto meta, GetMeta(fd, path));
    ObjectInfo info = InfoOf(key, st);
    info.meta = std::move(meta);
    return info;
  }

  Result<ListPage> ListImpl(const ListOptions& opts) override {
    // The deepest directory the prefix names; everything listed lies below it.
    size_t last_slash = opts.prefix.rfind('/');
    std::string dir_key = last_slash == std::string::npos ? "" : opts.prefix.substr(0, last_slash + 1);
    std::vector<ObjectInfo> objects;
    std::vector<std::string> prefixes;
    std::error_code ec;
    fs::path dir = fs::path(root_ + dir_key);
    if (!fs::is_directory(dir, ec)) return ListPage{};
    if (opts.delimiter == "/") {
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        std::string name = entry.path().filename().string();
        if (StartsWith(name, kTempPrefix)) continue;
        std::string key = dir_key + name;
        if (!StartsWith(key, opts.prefix)) continue;
        if (entry.is_directory(ec)) {
          if (HasObjects(entry.path())) prefixes.push_back(key + "/");
        } else if (entry.is_regular_file(ec)) {
          AddObject(key, entry.path(), &objects);
        }
      }
    } else {
      auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
      for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (StartsWith(name, kTempPrefix) || !it->is_regular_file(ec)) continue;
        std::string key = it->path().string().substr(root_.size());
        if (StartsWith(key, opts.prefix)) AddObject(key, it->path(), &objects);
      }
    }
    if (ec) return ErrnoStatus("listing " + dir.string(), ec.value());
    return Paginate(std::move(objects), std::move(prefixes), opts);
  }

  Status DeleteImpl(const std::string& key) override {
    std::string path = root_ + key;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(path + " is a directory, not an object");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("deleting " + path, errno);
    return Status::Ok();
  }

  Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data,
                                   const ObjectMeta& meta, const WriteCondition& only_if) override {
    SHOAL_ASSIGN_OR_RETURN(auto upload, BeginUploadImpl(key, meta));
    SHOAL_RETURN_IF_ERROR(upload->PutPart(0, 0, data));
    return upload->Complete(1, only_if);
  }

  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key,
                                                           const ObjectMeta& meta) override {
    std::string path = root_ + key;
    SHOAL_RETURN_IF_ERROR(MakeParents(path));
    fs::path p(path);
    std::string tmp = (p.parent_path() / (std::string(kTempPrefix) + RandomHex())).string();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("creating " + tmp, errno);
    if (Status st = SetMeta(fd, tmp, path, meta); !st.ok()) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    return std::unique_ptr<MultipartUpload>(new LocalUpload(fd, tmp, path, key, options_.sync));
  }

  Status CreateBucketImpl() override {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) return ErrnoStatus("creating " + root_, ec.value());
    return Status::Ok();
  }

 private:
  Status Stream(int fd, const std::string& path, const struct stat& st, const ReadOptions& opts,
                const ByteSink& sink) {
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (opts.offset > size || (opts.offset == size && size > 0 && opts.length != ReadOptions::kToEnd)) {
      return Status::InvalidArgument("range starts at " + std::to_string(opts.offset) +
                                     ", past the end of " + path + " (" + std::to_string(size) +
                                     " bytes)");
    }
    uint64_t end = opts.length == ReadOptions::kToEnd ? size : std::min(size, opts.offset + opts.length);
    std::string buf(std::min<uint64_t>(1 << 20, std::max<uint64_t>(end - opts.offset, 1)), '\0');
    uint64_t pos = opts.offset;
    while (pos < end) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("reading " + path, errno);
      }
      if (n == 0) return Status::Corruption(path + " is shorter than its size: it changed during the read");
      SHOAL_RETURN_IF_ERROR(sink(buf.data(), static_cast<size_t>(n)));
      stats_.bytes_read += n;
      pos += n;
    }
    return Status::Ok();
  }

  static bool HasObjects(const fs::path& dir) {
    std::error_code ec;
    auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!StartsWith(it->path().filename().string(), kTempPrefix) && it->is_regular_file(ec)) return true;
    }
    return false;
  }

  static void AddObject(const std::string& key, const fs::path& path, std::vector<ObjectInfo>* out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) out->push_back(InfoOf(key, st));
  }

  static ListPage Paginate(std::vector<ObjectInfo> objects, std::vector<std::string> prefixes,
                           const ListOptions& opts) {
    // Objects and prefixes share one key order; a page ends after max_keys entries of either.
    std::sort(objects.begin(), objects.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    std::sort(prefixes.begin(), prefixes.end());
    ListPage page;
    size_t oi = 0, pi = 0;
    while (oi < objects.size() && objects[oi].key <= opts.continuation) oi++;
    while (pi < prefixes.size() && prefixes[pi] <= opts.continuation) pi++;
    uint32_t n = 0;
    std::string last;
    while ((oi < objects.size() || pi < prefixes.size()) && n < opts.max_keys) {
      bool take_object = pi >= prefixes.size() || (oi < objects.size() && objects[oi].key < prefixes[pi]);
      if (take_object) {
        last = objects[oi].key;
        page.objects.push_back(std::move(objects[oi++]));
      } else {
        last = prefixes[pi];
        page.prefixes.push_back(prefixes[pi++]);
      }
      n++;
    }
    if (oi < objects.size() || pi < prefixes.size()) page.next_continuation = last;
    return page;
  }

  std::string root_;  // ends with '/'
  LocalStoreOptions options_;
};

}  // namespace

std::shared_ptr<ObjectStore> NewLocalStore(const std::string& root, LocalStoreOptions options) {
  return std::make_shared<LocalStore>(root, options);
}

}  // namespace shoal
