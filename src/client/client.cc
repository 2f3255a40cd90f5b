#include "client/client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

namespace shoal::client {

// --- Reader -----------------------------------------------------------------------------------

// Asks for transparent huge pages under a new block buffer (the 2 MiB-aligned part of it),
// before its pages are first touched. The mount hands these buffers to the kernel, which pins
// their pages for every reply: 512 times fewer to pin with huge pages. A 1 GiB read through
// the mount (direct I/O, dd bs=1M) took 0.35-0.40 s with this and 0.39-0.51 without, 6 runs
// each. Only the mount asks (ReaderOptions::huge_pages): the Python binding, which copies out
// of the buffers, gained nothing and varied more (0.30-0.41 s against 0.34-0.35). A no-op
// where THP is off.
static void AskForHugePages(char* data, size_t size) {
  constexpr uintptr_t kHuge = 2u << 20;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// Spare block buffers, their capacity kept. A buffer returns here when the last piece of its
// block is dropped, whoever drops it.
struct Reader::BufferPool {
  std::mutex mu;
  std::vector<std::unique_ptr<std::string>> spare;
  size_t max_spare;

  explicit BufferPool(size_t max) : max_spare(max) {}
  static std::shared_ptr<std::string> Take(const std::shared_ptr<BufferPool>& pool, size_t capacity, bool huge) {
    std::unique_ptr<std::string> buf;
    {
      std::lock_guard<std::mutex> lock(pool->mu);
      if (!pool->spare.empty()) {
        buf = std::move(pool->spare.back());
        pool->spare.pop_back();
      }
    }
    bool fresh = !buf;
    if (!buf) buf = std::make_unique<std::string>();
    buf->clear();
    buf->reserve(capacity);
    if (fresh && huge) AskForHugePages(buf->data(), buf->capacity());
    return std::shared_ptr<std::string>(buf.release(), [pool](std::string* b) {
      std::unique_ptr<std::string> owned(b);
      std::lock_guard<std::mutex> lock(pool->mu);
      if (pool->spare.size() < pool->max_spare) pool->spare.push_back(std::move(owned));
    });
  }
};

Reader::Reader(std::shared_ptr<ObjectStore> store, std::string key, ObjectInfo info, ReaderOptions options,
               Revalidate still)
    : store_(std::move(store)), key_(std::move(key)), info_(std::move(info)), options_(options), still_(std::move(still)) {
  options_.block_size = options_.Block();
  if (options_.readahead < 0) options_.readahead = 0;
  pool_ = std::make_shared<BufferPool>(2);  // a sequential reader drops one block as it fetches one
}

Reader::~Reader() {
  // Fetches in flight hold the store, not the reader; wait for them so none outlives it.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [index, block] : blocks_) block.first.wait();
}

void Reader::Prime(std::string first_block) {
  std::promise<Result<std::shared_ptr<const std::string>>> ready;
  ready.set_value(std::make_shared<const std::string>(std::move(first_block)));
  std::lock_guard<std::mutex> lock(mu_);
  blocks_[0] = {ready.get_future().share(), ++clock_};
}

Reader::Block Reader::Fetch(uint64_t index) {
  auto it = blocks_.find(index);
  if (it != blocks_.end()) {
    it->second.second = ++clock_;
    return it->second.first;
  }
  // At most readahead + 2 blocks kept (the one being read, the one before it for reads that
  // straddle, and those ahead): the least recently used finished one goes.
  size_t keep = static_cast<size_t>(options_.readahead) + 2;
  while (blocks_.size() >= keep) {
    auto victim = blocks_.end();
    for (auto b = blocks_.begin(); b != blocks_.end(); ++b) {
      bool ready = b->second.first.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      if (ready && (victim == blocks_.end() || b->second.second < victim->second.second)) victim = b;
    }
    if (victim == blocks_.end()) break;
    blocks_.erase(victim);
  }
  uint64_t offset = index * options_.block_size;
  uint64_t length = std::min(options_.block_size, info_.size - offset);
  auto store = store_;
  auto pool = pool_;
  std::string key = key_, etag = info_.etag;
  const uint64_t size = info_.size;
  const bool huge = options_.huge_pages;
  Block block = std::async(std::launch::async, [store, pool, key, etag, size, offset, length, huge]()
                               -> Result<std::shared_ptr<const std::string>> {
                  std::shared_ptr<std::string> data = BufferPool::Take(pool, length, huge);
                  ReadOptions ro;
                  ro.offset = offset;
                  ro.length = length;
                  ro.if_match = etag;
                  ro.if_size = size;
                  Status st = store->Get(key, ro, [&](const char* d, size_t n) {
                    data->append(d, n);
                    return Status::Ok();
                  });
                  if (!st.ok()) return st;
                  if (data->size() != length) {
                    return Status::IOError("short read of " + key + " at " + std::to_string(offset));
                  }
                  return std::shared_ptr<const std::string>(std::move(data));
                }).share();
  blocks_.emplace(index, std::make_pair(block, ++clock_));
  return block;
}

Result<size_t> Reader::ReadAt(uint64_t offset, char* dst, size_t n) {
  SHOAL_ASSIGN_OR_RETURN(std::vector<Piece> pieces, Pieces(offset, n));
  size_t done = 0;
  for (const Piece& p : pieces) {
    std::memcpy(dst + done, p.data, p.size);
    done += p.size;
  }
  return done;
}

Result<std::vector<Piece>> Reader::Pieces(uint64_t offset, size_t n) {
  std::vector<Piece> pieces;
  if (offset >= info_.size || n == 0) return pieces;
  n = static_cast<size_t>(std::min<uint64_t>(n, info_.size - offset));
  const uint64_t bs = options_.block_size;
  const uint64_t blocks = (info_.size + bs - 1) / bs;
  size_t done = 0;
  int revalidations = 0;
  while (done < n) {
    uint64_t at = offset + done;
    uint64_t index = at / bs;
    Block block;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A read in or just after the window of the last one is sequential: fetch ahead.
      bool sequential = last_index_ != UINT64_MAX && index >= last_index_ &&
                        index <= last_index_ + static_cast<uint64_t>(options_.readahead) + 1;
      block = Fetch(index);
      if (sequential || index == 0) {
        for (uint64_t i = index + 1; i <= index + static_cast<uint64_t>(options_.readahead) && i < blocks; i++) {
          Fetch(i);
        }
      }
      last_index_ = index;
    }
    const auto& data = block.get();
    if (!data.ok() && data.status().code() == Code::kPreconditionFailed && still_ && revalidations++ < 3) {
      // The version changed under the reader: the same bytes (its own upload), or an error.
      std::lock_guard<std::mutex> lock(mu_);
      ObjectInfo pinned = info_;
      SHOAL_ASSIGN_OR_RETURN(ObjectInfo now, still_(pinned));
      info_.etag = now.etag;
      for (auto it = blocks_.begin(); it != blocks_.end();) {  // failed fetches go; good ones stay
        bool failed = it->second.first.wait_for(std::chrono::seconds(0)) == std::future_status::ready &&
                      !it->second.first.get().ok();
        it = failed ? blocks_.erase(it) : std::next(it);
      }
      continue;
    }
    if (!data.ok()) return data.status();
    size_t in_block = static_cast<size_t>(at - index * bs);
    size_t take = std::min(n - done, (*data)->size() - in_block);
    pieces.push_back(Piece{*data, (*data)->data() + in_block, take});
    done += take;
  }
  return pieces;
}

// --- BytePipe ---------------------------------------------------------------------------------

Result<size_t> BytePipe::Read(char* buf, size_t len) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || finished_ || aborted_; });
  if (aborted_) return Status::IOError("the writer abandoned the object");
  size_t done = 0;
  while (done < len && !queue_.empty()) {
    std::string& front = queue_.front();
    size_t take = std::min(len - done, front.size() - front_pos_);
    std::memcpy(buf + done, front.data() + front_pos_, take);
    done += take;
    front_pos_ += take;
    queued_ -= take;
    if (front_pos_ == front.size()) {
      queue_.pop_front();
      front_pos_ = 0;
    }
  }
  cv_.notify_all();
  return done;
}

bool BytePipe::Push(std::string data) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return queued_ < cap_ || stopped_; });
  if (stopped_) return false;
  queued_ += data.size();
  queue_.push_back(std::move(data));
  cv_.notify_all();
  return true;
}

void BytePipe::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  finished_ = true;
  cv_.notify_all();
}

void BytePipe::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = stopped_ = true;
  cv_.notify_all();
}

void BytePipe::StopReading() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

// --- Writer -----------------------------------------------------------------------------------

namespace {
constexpr size_t kWriteBuffer = 1 << 20;  // bytes gathered before they go to the upload's thread
constexpr size_t kPipeCap = 16 << 20;     // bytes queued for it at most
}  // namespace

// Reads the spool file from its start to `size`.
class SpoolSource final : public ByteSource {
 public:
  SpoolSource(int fd, uint64_t size) : fd_(fd), left_(size) {}
  Result<size_t> Read(char* buf, size_t len) override {
    len = static_cast<size_t>(std::min<uint64_t>(len, left_));
    if (len == 0) return size_t{0};
    ssize_t n;
    do {
      n = ::pread(fd_, buf, len, static_cast<off_t>(at_));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return Status::IOError(std::string("reading the spool file: ") + (n < 0 ? std::strerror(errno) : "short"));
    at_ += static_cast<uint64_t>(n);
    left_ -= static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }

 private:
  int fd_;
  uint64_t at_ = 0, left_;
};

Status Writer::Start(std::function<Result<ObjectInfo>(ByteSource&)> upload, bool rewritable) {
  if (rewritable) {
    const char* env = std::getenv("TMPDIR");
    std::string dir = env != nullptr && *env != '\0' ? env : "/tmp";
    spool_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (spool_ < 0) {
      return Status::IOError("cannot make a spool file in " + dir + " (" + std::strerror(errno) +
                             "): set TMPDIR to a writable directory with room for the file");
    }
  }
  upload_ = std::move(upload);
  pipe_ = std::make_unique<BytePipe>(kPipeCap);
  result_ = std::async(std::launch::async, [this] {
    Result<ObjectInfo> r = upload_(*pipe_);
    pipe_->StopReading();
    return r;
  });
  return Status::Ok();
}

Writer::~Writer() {
  if (!closed_) Abort();
  if (spool_ >= 0) ::close(spool_);
}

void Writer::StopStreaming() {
  if (!streaming_) return;
  streaming_ = false;
  buffer_.clear();
  buffer_.shrink_to_fit();
  pipe_->Abort();  // the streamed upload fails: nothing of it is committed
  result_.wait();
}

Status Writer::SendBuffer() {
  if (buffer_.empty()) return Status::Ok();
  if (!pipe_->Push(std::move(buffer_))) {
    // The upload ended before its bytes did: it failed, and says why.
    Status st = result_.get().status();
    if (st.ok()) st = Status::IOError("the upload ended before the data did");
    if (spool_ >= 0 && st.code() == Code::kUnavailable) {
      // Its node went away (nothing was acknowledged): the spool holds every byte, and Close
      // sends it, to the next node if need be.
      streaming_ = false;
      buffer_.clear();
      buffer_.shrink_to_fit();
      return Status::Ok();
    }
    failed_ = st;
    closed_ = true;
    return failed_;
  }
  buffer_.clear();
  buffer_.reserve(kWriteBuffer);
  return Status::Ok();
}

Status Writer::Write(const char* data, size_t n) { return WriteAt(size_, data, n); }

Status Writer::WriteAt(uint64_t offset, const char* data, size_t n) {
  if (!failed_.ok()) return failed_;
  if (closed_) return Status::InvalidArgument("write after close");
  if (spool_ < 0 && offset != size_) {
    return Status::InvalidArgument("a write at byte " + std::to_string(offset) + " of an object written front to back (now " +
                                   std::to_string(size_) + " bytes)");
  }
  if (spool_ >= 0) {
    for (size_t done = 0; done < n;) {
      ssize_t w = ::pwrite(spool_, data + done, n - done, static_cast<off_t>(offset + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        return Status::IOError(std::string("writing the spool file: ") + std::strerror(errno) +
                               " (is $TMPDIR full?)");
      }
      done += static_cast<size_t>(w);
    }
    if (offset != size_) StopStreaming();
    if (!streaming_) {
      size_ = std::max<uint64_t>(size_, offset + n);
      return Status::Ok();
    }
  }
  const uint64_t end = offset + n;
  while (n > 0) {
    size_t take = std::min(n, kWriteBuffer - buffer_.size());
    buffer_.append(data, take);
    data += take;
    n -= take;
    size_ += take;
    if (buffer_.size() == kWriteBuffer) {
      SHOAL_RETURN_IF_ERROR(SendBuffer());
      if (!streaming_) {  // the upload went away: the spool (written above) has the rest
        size_ = end;
        return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

Status Writer::Truncate(uint64_t size) {
  if (!failed_.ok()) return failed_;
  if (closed_) return Status::InvalidArgument("truncate after close");
  if (size == size_) return Status::Ok();
  if (spool_ < 0) return Status::InvalidArgument("an object written front to back cannot be truncated");
  if (::ftruncate(spool_, static_cast<off_t>(size)) != 0) {
    return Status::IOError(std::string("truncating the spool file: ") + std::strerror(errno));
  }
  StopStreaming();
  size_ = size;
  return Status::Ok();
}

Result<ObjectInfo> Writer::Close() {
  if (!failed_.ok()) return failed_;
  if (closed_) return Status::InvalidArgument("already closed");
  Result<ObjectInfo> r = Status::Unavailable("not sent");
  if (streaming_) {
    SHOAL_RETURN_IF_ERROR(SendBuffer());
  }
  if (streaming_) {
    pipe_->Finish();
    r = result_.get();
    // Unavailable: nothing was acknowledged (its node went away); the spool is sent instead.
    if (r.ok() || r.status().code() != Code::kUnavailable || spool_ < 0) {
      closed_ = true;
      if (!r.ok()) failed_ = r.status();
      return r;
    }
    streaming_ = false;
  }
  // The spool is the object. A send refused as unavailable (its node, or the node it copies
  // to, restarting) is sent again, as `shoal cp` sends a file again: up to 5 times over about
  // 6 s, each to the node current then.
  closed_ = true;
  r = WriteWithResends(
      [&] {
        SpoolSource source(spool_, size_);
        return upload_(source);
      },
      [] { return true; });  // each send reads the spool from its start
  if (!r.ok()) failed_ = r.status();
  return r;
}

void Writer::Abort() {
  if (closed_) return;
  closed_ = true;
  failed_ = Status::IOError("the write was abandoned");
  if (!streaming_) return;  // nothing was sent: the spool is dropped with the writer
  pipe_->Abort();  // the upload's source fails: its PUT or multipart upload is abandoned, nothing committed
  result_.wait();
}

// --- Client -----------------------------------------------------------------------------------

namespace {
std::string BucketOf(const ObjectUrl& url) { return url.scheme + "://" + url.bucket; }
}  // namespace

Result<std::unique_ptr<Client>> Client::Open(const ClientOptions& options) {
  std::unique_ptr<Client> c(new Client(options));
  SHOAL_ASSIGN_OR_RETURN(c->cache_, CacheConfig::Resolve(options.cache, options.token_file, options.tls_ca));
  return c;
}

std::unique_ptr<Client> Client::Open(const ClientOptions& options, const CacheConfig& cache) {
  std::unique_ptr<Client> c(new Client(options));
  c->cache_ = cache;
  return c;
}

Result<std::shared_ptr<ObjectStore>> Client::DirectStore(const ObjectUrl& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& store = direct_[BucketOf(url)];
  if (!store) {
    SHOAL_ASSIGN_OR_RETURN(store, OpenObjectStore(url));
  }
  return store;
}

Result<std::shared_ptr<ObjectStore>> Client::ReadStore(const ObjectUrl& url) {
  if (!has_cache()) return DirectStore(url);
  std::lock_guard<std::mutex> lock(mu_);
  auto& store = cached_[BucketOf(url)];
  if (!store) store = NewCacheStore(cache_, url.WithKey(""));
  return store;
}

Result<FileInfo> Client::Stat(const std::string& url) { return StatFor(url, false); }

Result<FileInfo> Client::StatToRead(const std::string& url) { return StatFor(url, true); }

Result<FileInfo> Client::StatFor(const std::string& url, bool to_read) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  if (has_cache()) {
    SHOAL_ASSIGN_OR_RETURN(CachedObject o, StatThroughCache(cache_, url, to_read));
    o.info.key = u.key;
    return FileInfo{o.info, o.state, o.written_as};
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, DirectStore(u));
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, store->Head(u.key));
  return FileInfo{info, "", ""};
}

Result<shoal::ListPage> Client::List(const std::string& prefix_url, bool recursive, const std::string& continuation,
                                     uint32_t max_keys, bool allow_incomplete) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(prefix_url));
  SHOAL_ASSIGN_OR_RETURN(auto store, ReadStore(u));  // the node's listing has its pending writes
  ListOptions lo;
  lo.prefix = u.key;
  lo.delimiter = recursive ? "" : "/";
  lo.continuation = continuation;
  lo.max_keys = max_keys;
  lo.allow_incomplete = allow_incomplete;
  return store->List(lo);
}

Result<std::vector<ObjectInfo>> Client::ListAll(const std::string& prefix_url, bool recursive,
                                                std::vector<std::string>* prefixes, std::string* incomplete) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(prefix_url));
  std::map<std::string, ObjectInfo> objects;
  std::set<std::string> dirs;
  std::string continuation;
  if (incomplete) incomplete->clear();
  do {
    SHOAL_ASSIGN_OR_RETURN(shoal::ListPage page, List(prefix_url, recursive, continuation, 1000, incomplete != nullptr));
    if (incomplete && !page.incomplete.empty()) *incomplete = page.incomplete;
    for (auto& o : page.objects) objects[o.key] = std::move(o);
    dirs.insert(page.prefixes.begin(), page.prefixes.end());
    continuation = page.next_continuation;
  } while (!continuation.empty());
  std::vector<ObjectInfo> out;
  for (auto& [key, o] : objects) out.push_back(std::move(o));
  if (prefixes) prefixes->assign(dirs.begin(), dirs.end());
  return out;
}

Status Client::Delete(const std::string& url) {
  if (has_cache()) return DeleteThroughCache(cache_, url);
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, DirectStore(u));
  return store->Delete(u.key);
}

Result<std::unique_ptr<Reader>> Client::OpenRead(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(FileInfo f, StatToRead(url));
  return OpenRead(url, f.info);
}

Reader::Revalidate Client::StillTheSame(const std::string& url) {
  if (!has_cache()) return nullptr;
  return [this, url](const ObjectInfo& pinned) -> Result<ObjectInfo> {
    SHOAL_ASSIGN_OR_RETURN(FileInfo now, Stat(url));
    if (now.info.etag == pinned.etag || (now.written_as == pinned.etag && now.info.size == pinned.size)) {
      return now.info;
    }
    return Status::PreconditionFailed(url + " changed while it was read (ETag " + now.info.etag + ", was " +
                                      pinned.etag + "): open it again");
  };
}

Result<std::unique_ptr<Reader>> Client::OpenRead(const std::string& url, const ObjectInfo& info) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, ReadStore(u));
  return std::make_unique<Reader>(store, u.key, info, options_.reader, StillTheSame(url));
}

Result<std::unique_ptr<Reader>> Client::OpenReadFirst(const std::string& url, uint64_t first) {
  if (!has_cache()) return std::unique_ptr<Reader>();
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, ReadStore(u));
  const uint64_t block = options_.reader.Block();
  ObjectInfo version;
  ReadOptions ro;
  ro.length = std::max<uint64_t>(1, std::min(first, block));
  ro.answered = &version;
  std::string data;
  SHOAL_RETURN_IF_ERROR(store->Get(u.key, ro, [&](const char* d, size_t n) {
    data.append(d, n);
    return Status::Ok();
  }));
  if (version.etag.empty() || version.size == ReadOptions::kAnySize) return std::unique_ptr<Reader>();
  version.key = u.key;
  auto reader = std::make_unique<Reader>(store, u.key, version, options_.reader, StillTheSame(url));
  if (data.size() == std::min(block, version.size)) reader->Prime(std::move(data));
  return reader;
}

Result<std::unique_ptr<Writer>> Client::OpenWrite(const std::string& url, bool rewritable) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  if (u.key.empty() || u.key.back() == '/') return Status::InvalidArgument(url + " names no object (a key is needed)");
  std::unique_ptr<Writer> w(new Writer());
  if (has_cache()) {
    CacheConfig cache = cache_;
    SHOAL_RETURN_IF_ERROR(w->Start(
        [cache, url](ByteSource& source) { return WriteThroughCache(cache, url, source, kUnknownSize); }, rewritable));
  } else {
    SHOAL_ASSIGN_OR_RETURN(auto store, DirectStore(u));
    SHOAL_RETURN_IF_ERROR(store->ValidateKey(u.key));
    TransferOptions topts = options_.transfer;
    topts.progress = nullptr;
    SHOAL_RETURN_IF_ERROR(w->Start(
        [store, key = u.key, topts](ByteSource& source) { return UploadStream(source, *store, key, topts); },
        rewritable));
  }
  return w;
}

Result<std::unique_ptr<Writer>> Client::OpenAppend(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto w, OpenWrite(url, /*rewritable=*/true));
  auto now = Stat(url);
  if (!now.ok() && !now.status().IsNotFound()) return now.status();
  if (!now.ok() || now->info.size == 0) return w;
  // The current bytes, streamed into the new version as they come (they are its start).
  SHOAL_ASSIGN_OR_RETURN(auto store, ReadStore(u));
  ReadOptions ro;
  ro.if_match = now->info.etag;
  Writer* writer = w.get();
  SHOAL_RETURN_IF_ERROR(store->Get(u.key, ro, [writer](const char* d, size_t n) { return writer->Write(d, n); })
                            .WithContext("reading " + url + " to append to it"));
  return w;
}

Status Client::Flush(const std::string& prefix_url, int timeout_s) {
  if (!has_cache()) return Status::Ok();
  return WaitDurable(cache_, prefix_url, timeout_s);
}

}  // namespace shoal::client
