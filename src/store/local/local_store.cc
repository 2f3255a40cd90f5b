#include "store/local/local_store.h"

#include <fcntl.h>
#include <sys/stat.h>
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

// Makes the temp file `tmp` the object at `path`: fsync (when `sync`), rename, fsync the
// directory (when `sync`).
Result<ObjectInfo> Publish(int fd, const std::string& tmp, const std::string& path,
                           const std::string& key, bool sync) {
  if (sync && ::fsync(fd) != 0) return ErrnoStatus("syncing " + tmp, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat " + tmp, errno);
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

  Result<ObjectInfo> Complete(uint32_t /*num_parts*/) override {
    if (fd_ < 0) return Status::InvalidArgument("upload of " + path_ + " already finished");
    auto info = Publish(fd_, tmp_, path_, key_, sync_);
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
    } else {
      result = Stream(fd, path, st, opts, sink);
    }
    ::close(fd);
    return result;
  }

  Result<ObjectInfo> HeadImpl(const std::string& key) override {
    std::string path = root_ + key;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(Describe() + key, errno);
    if (S_ISDIR(st.st_mode)) return Status::NotFound(path + " is a directory, not an object");
    return InfoOf(key, st);
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

  Result<ObjectInfo> PutObjectImpl(const std::string& key, std::string_view data) override {
    SHOAL_ASSIGN_OR_RETURN(auto upload, BeginUploadImpl(key));
    SHOAL_RETURN_IF_ERROR(upload->PutPart(0, 0, data));
    return upload->Complete(1);
  }

  Result<std::unique_ptr<MultipartUpload>> BeginUploadImpl(const std::string& key) override {
    std::string path = root_ + key;
    SHOAL_RETURN_IF_ERROR(MakeParents(path));
    fs::path p(path);
    std::string tmp = (p.parent_path() / (std::string(kTempPrefix) + RandomHex())).string();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("creating " + tmp, errno);
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
