#include "node/node.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/strings.h"
#include "store/commit.h"

namespace shoal::node {

namespace {
// What a failed write's error adds: the writer knows nothing of it was kept.
constexpr const char* kNotAcknowledged = " (nothing of it was acknowledged; earlier writes are intact)";
// Key of aliases_: an object at one of the store's ETags.
std::string AliasKey(const std::string& url, const std::string& etag) { return url + '\n' + etag; }
}  // namespace

Result<std::unique_ptr<Node>> Node::Create(const NodeOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data-dir is required");
  if (options.chunk_size < (1 << 20) || options.chunk_size > (256ull << 20)) {
    return Status::InvalidArgument("--chunk-size must be between 1MiB and 256MiB");
  }
  if (options.capacity < options.chunk_size * 4) {
    return Status::InvalidArgument("--capacity must hold at least 4 chunks (" +
                                   FormatBytes(options.chunk_size * 4) + ")");
  }
  if (options.staged_cap != 0 && (options.staged_cap < options.chunk_size || options.staged_cap > options.capacity)) {
    return Status::InvalidArgument("--staged-cap must be between one chunk (" + FormatBytes(options.chunk_size) +
                                   ") and --capacity (" + FormatBytes(options.capacity) + ")");
  }
  if (options.upload_concurrency < 1 || options.upload_concurrency > 256) {
    return Status::InvalidArgument("--upload-concurrency must be between 1 and 256");
  }
  for (int threads : {options.serve_threads, options.fetch_threads}) {
    if (threads < 0 || threads > 1024) return Status::InvalidArgument("thread counts must be between 0 (auto) and 1024");
  }
  std::unique_ptr<Node> node(new Node(options));
  if (node->options_.staged_cap == 0) node->options_.staged_cap = options.capacity / 2;
  // Before anything in the directory is read or cleaned up: a second node on it would delete
  // the first's temp files and share its chunks and journal.
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status::IOError("cannot create --data-dir " + options.data_dir + ": " + ec.message());
  SHOAL_ASSIGN_OR_RETURN(node->data_dir_lock_,
                         FileLock::Acquire(options.data_dir + "/lock", "--data-dir " + options.data_dir));
  // Threads from the core count: blocking handlers and fetches two per core each (at least 4:
  // a fetch mostly waits on the network).
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  NodeOptions& o = node->options_;
  if (o.serve_threads == 0) o.serve_threads = std::max(4, 2 * cores);
  if (o.fetch_threads == 0) o.fetch_threads = std::max(4, 2 * cores);
  node->serve_pool_ = std::make_unique<WorkerPool>(o.serve_threads, "shoald-serve");
  node->fetch_pool_ = std::make_unique<WorkerPool>(o.fetch_threads, "shoald-fetch");
  node->copy_pool_ = std::make_unique<WorkerPool>(o.fetch_threads, "shoald-copy");
  SHOAL_ASSIGN_OR_RETURN(node->chunks_,
                         engine::ChunkStore::Open({options.data_dir, options.capacity, options.sync}));
  SHOAL_ASSIGN_OR_RETURN(node->journal_, engine::Journal::Open(options.data_dir + "/journal", options.sync));
  {
    std::string path = options.data_dir + "/incarnation";
    std::ifstream in(path);
    if (!(in >> node->incarnation_)) {
      node->incarnation_ = RandomHex();
      std::ofstream(path + ".tmp") << node->incarnation_ << "\n";
      if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
        return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
      }
    }
  }
  for (const auto& bad : node->journal_->damaged()) {
    std::fprintf(stderr, "shoald: journal record unreadable, kept aside: %s\n", bad.c_str());
  }
  Node* n = node.get();
  UploadHooks hooks;
  hooks.store = [n](const std::string& url) -> Result<std::shared_ptr<ObjectStore>> {
    SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
    return n->StoreFor(parsed);
  };
  hooks.chunk = [n](const engine::UploadRecord& r, uint64_t i) {
    return n->chunks_->Get(engine::ChunkKey{r.url, LocalVersion(r.id), i});
  };
  hooks.durable = [n](const engine::UploadRecord& r, const ObjectInfo& info) { return n->Durable(r, info); };
  hooks.uploaded = [n](uint64_t bytes) { n->ReleaseStaged(bytes); };
  node->uploader_ = std::make_unique<Uploader>(
      UploaderOptions{options.upload_concurrency, options.upload_deadline}, std::move(hooks), &node->metrics_);
  SHOAL_RETURN_IF_ERROR(node->Replay());
  node->replica_thread_ = std::thread([n] { n->WatchReplicas(); });
  pthread_setname_np(node->replica_thread_.native_handle(), "shoald-replica");
  return node;
}

Node::~Node() {
  // Handlers and fetches queued or running finish first, while all they use is here.
  serve_pool_.reset();
  fetch_pool_.reset();
  copy_pool_.reset();  // after the serve pool: its writers wait for their copies
  closing_ = true;  // no new view refreshes; a drain stops between hand-offs
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    stopping_ = true;
  }
  copies_cv_.notify_all();
  if (drain_thread_.joinable()) drain_thread_.join();  // it may use etcd_
  std::thread refresh;
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);  // the refresh takes it as it ends: join unlocked
    refresh = std::move(refresh_thread_);
  }
  if (refresh.joinable()) refresh.join();
  etcd_.reset();  // no more membership callbacks (the lease is left to expire, as in a crash)
  if (replica_thread_.joinable()) replica_thread_.join();
  uploader_.reset();
}


std::string Node::ChunkVersion(const std::string& url, const std::string& etag) {
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto it = aliases_.find(AliasKey(url, etag));
  return it == aliases_.end() ? etag : it->second;
}

Status Node::Replay() {
  for (const auto& r : journal_->List()) {
    if (!r.origin.empty()) {  // a copy of another node's write: kept, uploaded only if that node is gone
      for (const auto& key : WriteChunkKeys(r)) chunks_->Pin(key, true).IgnoreError();
      std::lock_guard<std::mutex> lock(copies_mu_);
      copies_[r.id] = Copy{r, {}};
      continue;
    }
    if (r.state == engine::UploadRecord::State::kDurable) {
      std::lock_guard<std::mutex> lock(meta_mu_);
      aliases_[AliasKey(r.url, r.etag)] = LocalVersion(r.id);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(staged_mu_);
      staged_bytes_ += r.size;
    }
    for (const auto& key : WriteChunkKeys(r)) {
      Status st = chunks_->Pin(key, true);
      if (!st.ok()) {
        std::fprintf(stderr, "shoald: %s: chunk %llu of an acknowledged write is missing from %s\n",
                     r.url.c_str(), static_cast<unsigned long long>(key.index), options_.data_dir.c_str());
      }
    }
    Stage(r);
  }
  return Status::Ok();
}

ObjectInfo Node::Stage(const engine::UploadRecord& r, bool opened) {
  ObjectInfo info{"", r.size, LocalVersion(r.id), r.created_unix_ms / 1000};
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    meta_[r.url] = Meta{info, std::chrono::steady_clock::now(), true};
  }
  if (opened) {
    uploader_->Seal(r);
  } else {
    uploader_->Add(r);
  }
  return info;
}

Result<std::unique_ptr<Writer>> Node::BeginWrite(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  if (parsed.key.empty() || parsed.key.back() == '/') {
    return Status::InvalidArgument(url + " names no object to write");
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  SHOAL_RETURN_IF_ERROR(store->ValidateKey(parsed.key));  // refuse now what could never be uploaded
  if (draining_) {
    return Status::Unavailable("this node is draining (leaving the cluster): write through another node");
  }
  SHOAL_ASSIGN_OR_RETURN(auto replicas, ReplicaTargets(url));
  std::unique_ptr<Writer> writer(new Writer(this, url, RandomHex()));
  writer->replicas_ = std::move(replicas);
  writers_++;
  return writer;
}

Writer::~Writer() {
  node_->writers_--;
  if (finished_) return;
  for (auto& sent : sends_) {
    if (sent.valid()) sent.wait();  // copies in flight end before the drop (Finish may have taken one)
  }
  // chunks_ + 1: a chunk stored whose copy then failed is not counted in chunks_.
  for (const auto& peer : replicas_) {
    node_->CallPeer(peer, "POST", ReplicaDropPath(id_, url_, chunks_ + 1)).IgnoreError();
  }
  uint64_t uploaded = streaming_ ? node_->uploader_->Cancel(id_) : 0;
  for (const auto& key : WriteChunkKeys(url_, id_, chunks_ + 1)) node_->chunks_->Remove(key).IgnoreError();
  node_->ReleaseStaged(reserved_ - std::min(uploaded, reserved_));
}

Status Writer::Flush() {
  // At the staged cap the writer waits for uploads to make room: it slows, it does not fail.
  std::string_view data(buffer_.data(), fill_);
  SHOAL_RETURN_IF_ERROR(node_->ReserveStaged(fill_, url_));
  reserved_ += fill_;
  engine::ChunkKey key{url_, LocalVersion(id_), chunks_};
  Status st = node_->chunks_->Put(key, data, /*pinned=*/true);
  if (st.IsTransient()) {
    // The cache is full of chunks uploaded but not yet committed (a write larger than the
    // staged cap): wait for commits to unpin them.
    auto start = std::chrono::steady_clock::now();
    node_->metrics_.writer_waits++;
    while (st.IsTransient() && std::chrono::steady_clock::now() - start < node_->options_.writer_timeout) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      st = node_->chunks_->Put(key, data, /*pinned=*/true);
    }
    node_->metrics_.writer_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - start).count();
  }
  if (!st.ok()) {
    if (st.code() == Code::kResourceExhausted) node_->metrics_.errors_disk_full++;
    return st.WithContext("writing " + url_ + kNotAcknowledged);
  }
  if (!replicas_.empty()) {
    // A copy to every replica, in the background; a few chunks in flight at most.
    auto copy = std::make_shared<const std::string>(data);
    std::string path = ReplicaChunkPath(id_, url_, chunks_);
    for (const auto& peer : replicas_) {
      std::packaged_task<Status()> send(
          [node = node_, peer, path, copy] { return node->CallPeer(peer, "PUT", path, *copy); });
      sends_.push_back(send.get_future());
      node_->copy_pool_->Submit(std::move(send));
    }
    while (sends_.size() > 4 * replicas_.size()) {
      Status sent = sends_.front().get();
      sends_.pop_front();
      if (!sent.ok()) return sent.WithContext("copying " + url_ + " to a second node" + kNotAcknowledged);
    }
  }
  chunks_++;
  fill_ = 0;
  // From the second chunk on, the object is a multipart upload whose parts can go up while
  // the writer goes on (nothing is committed before Finish).
  if (chunks_ == 2) {
    engine::UploadRecord partial;
    partial.id = id_;
    partial.url = url_;
    partial.chunk_size = node_->options_.chunk_size;
    partial.created_unix_ms = UnixMillis();
    node_->uploader_->Open(partial);
    node_->uploader_->AddPart(id_, 0);
    streaming_ = true;
  }
  if (streaming_) node_->uploader_->AddPart(id_, chunks_ - 1);
  return Status::Ok();
}

Status Node::ReserveStaged(uint64_t n, const std::string& url) {
  auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(staged_mu_);
  auto over = [&] { return staged_bytes_ > 0 && staged_bytes_ + n > options_.staged_cap; };
  if (over()) {
    metrics_.writer_waits++;
    bool room = staged_cv_.wait_until(lock, start + options_.writer_timeout, [&] { return !over(); });
    metrics_.writer_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - start).count();
    if (!room) {
      return Status::Unavailable(
          "writing " + url + ": the node holds " + FormatBytes(staged_bytes_) +
          " not yet uploaded (--staged-cap " + FormatBytes(options_.staged_cap) + ") and uploads made no room for " +
          std::to_string(options_.writer_timeout.count() / 1000) +
          " s: the object store is not taking uploads (`shoal flush` shows why); nothing of this write was acknowledged");
    }
  }
  staged_bytes_ += n;
  if (staged_bytes_ > metrics_.staged_bytes_peak) metrics_.staged_bytes_peak = staged_bytes_;
  return Status::Ok();
}

void Node::ReleaseStaged(uint64_t n) {
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    staged_bytes_ -= std::min(n, staged_bytes_);
  }
  staged_cv_.notify_all();
}

std::pair<char*, size_t> Writer::Space() {
  const uint64_t chunk = node_->options_.chunk_size;
  if (buffer_.size() != chunk) buffer_.resize(chunk);
  return {buffer_.data() + fill_, static_cast<size_t>(chunk - fill_)};
}

Status Writer::Commit(size_t n) {
  if (size_ + n > node_->options_.capacity) {
    return Status::ResourceExhausted("writing " + url_ + ": it is larger than this node's --capacity (" +
                                     FormatBytes(node_->options_.capacity) +
                                     "), so it cannot be staged here; write it without --cache, or raise "
                                     "--capacity (nothing of it was acknowledged)");
  }
  fill_ += n;
  size_ += n;
  if (fill_ == node_->options_.chunk_size) return Flush();
  return Status::Ok();
}

Status Writer::Append(const char* data, size_t len) {
  while (len > 0) {
    auto [space, room] = Space();
    size_t n = std::min(len, room);
    std::memcpy(space, data, n);
    SHOAL_RETURN_IF_ERROR(Commit(n));
    data += n;
    len -= n;
  }
  return Status::Ok();
}

Result<ObjectInfo> Writer::Finish() {
  if (fill_ > 0) SHOAL_RETURN_IF_ERROR(Flush());
  SHOAL_RETURN_IF_ERROR(
      node_->chunks_->Sync(WriteChunkKeys(url_, id_, chunks_)).WithContext("writing " + url_ + kNotAcknowledged));
  engine::UploadRecord r;
  r.id = id_;
  r.url = url_;
  r.size = size_;
  r.chunk_size = node_->options_.chunk_size;
  r.created_unix_ms = UnixMillis();
  // Every copy complete and fsynced on its node before the acknowledgement.
  for (; !sends_.empty(); sends_.pop_front()) {
    Status sent = sends_.front().get();
    if (!sent.ok()) return sent.WithContext("copying " + url_ + " to a second node" + kNotAcknowledged);
  }
  for (const auto& peer : replicas_) {
    SHOAL_RETURN_IF_ERROR(node_->CallPeer(peer, "POST", ReplicaCommitPath(r, node_->id(), node_->incarnation(), false))
                              .WithContext("copying " + url_ + " to node " + peer.member.id + kNotAcknowledged));
    r.replicas.push_back(peer.member.id);
  }
  SHOAL_RETURN_IF_ERROR(node_->journal_->Put(r).WithContext("journaling " + url_ + kNotAcknowledged));
  finished_ = true;  // acknowledged from here on
  node_->metrics_.bytes_written += size_;
  return node_->Stage(r, streaming_);
}

bool Node::Pending(const std::string& url) {
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto it = meta_.find(url);
  return it != meta_.end() && it->second.local;
}

std::vector<UploadProgress> Node::PendingUploads(const std::string& prefix) {
  return uploader_->Pending(prefix);
}

Result<std::string> Node::Commit(const std::string& prefix_url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(prefix_url));
  if (!parsed.key.empty() && parsed.key.back() != '/') parsed.key += '/';
  std::string prefix = parsed.ToString();
  auto pending = PendingUploads(prefix);
  if (uint64_t copies = CopiesUnder(prefix)) {  // their origin may be gone, before a take-over
    return Status::PreconditionFailed(std::to_string(copies) + " objects under " + prefix + " are held here as copies "
                                      "of other nodes' writes not yet durable: `shoal commit` waits for them");
  }
  if (!pending.empty()) {
    uint64_t bytes = 0;
    for (const auto& p : pending) bytes += p.record.size;
    return Status::PreconditionFailed(std::to_string(pending.size()) + " objects (" + FormatBytes(bytes) +
                                      ") under " + prefix + " are not durable yet: `shoal commit` waits for "
                                      "them (or run `shoal flush --wait " + prefix + "` first)");
  }
  // A checkpoint's files may have been written through any node of the cluster.
  if (auto v = view()) {
    for (const auto& peer : v->peers()) {
      if (peer.member.id == id()) continue;
      std::string body;
      Status st = CallPeer(peer, "GET", proto::Target(proto::kPendingPath, {{proto::kPrefixParam, prefix}}), {}, &body);
      if (!st.ok()) {
        return Status::Unavailable("cannot tell whether node " + peer.member.id + " still has writes under " + prefix +
                                   " to upload: " + st.message());
      }
      auto j = nlohmann::json::parse(body, nullptr, false);
      uint64_t objects = j.is_object() ? j.value("objects", 0ull) + j.value("copies", 0ull) : 1;
      if (objects > 0) {
        return Status::PreconditionFailed(std::to_string(objects) + " objects under " + prefix + " written through node " +
                                          peer.member.id + " are not durable yet: `shoal commit` waits for them");
      }
    }
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  SHOAL_ASSIGN_OR_RETURN(std::string marker, WriteCommitMarker(*store, parsed));
  Invalidate(prefix + kCommitMarker);
  return marker;
}

Status Node::Durable(const engine::UploadRecord& r, const ObjectInfo& done) {
  engine::UploadRecord durable = r;
  durable.state = engine::UploadRecord::State::kDurable;
  durable.etag = done.etag;
  SHOAL_RETURN_IF_ERROR(journal_->Put(durable));
  // The copies on other nodes have done their job. One that misses this asks us later.
  if (auto v = view()) {
    std::string drop = ReplicaDropPath(r.id, r.url, ChunkCount(r.size, r.chunk_size));
    for (const auto& id : r.replicas) {
      std::string endpoint = v->EndpointOf(id);
      if (!endpoint.empty()) CallPeer(cluster::Peer{{id, 0, ""}, endpoint}, "POST", drop).IgnoreError();
    }
  }
  for (const auto& key : WriteChunkKeys(r)) chunks_->Pin(key, false).IgnoreError();
  std::string version = LocalVersion(r.id);
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    aliases_[AliasKey(r.url, done.etag)] = version;
    auto it = meta_.find(r.url);
    if (it != meta_.end() && it->second.info.etag == version) {  // not overwritten meanwhile
      it->second = Meta{ObjectInfo{"", r.size, done.etag, done.last_modified},
                        std::chrono::steady_clock::now(), false};
    }
  }
  return Status::Ok();  // its staged bytes were released part by part (hooks.uploaded)
}

Result<std::shared_ptr<ObjectStore>> Node::StoreFor(const ObjectUrl& url) {
  std::string id = url.scheme + "://" + url.bucket;
  std::lock_guard<std::mutex> lock(stores_mu_);
  auto it = stores_.find(id);
  if (it != stores_.end()) return it->second;
  SHOAL_ASSIGN_OR_RETURN(auto store, OpenObjectStore(url));
  stores_[id] = store;
  return store;
}

Result<ObjectInfo> Node::Stat(const std::string& url) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(meta_mu_);
    auto it = meta_.find(url);
    // Written here and not yet in the store: only this node has it.
    if (it != meta_.end() && it->second.local) return it->second.info;
    if (!options_.validate && it != meta_.end() && now - it->second.fetched < options_.metadata_ttl) {
      return it->second.info;
    }
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  if (parsed.key.empty()) return Status::InvalidArgument(url + " names no object");
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  metrics_.store_head_requests++;
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, store->Head(parsed.key));
  std::lock_guard<std::mutex> lock(meta_mu_);
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.local) return it->second.info;  // a write won the race
  meta_[url] = Meta{info, now, false};
  return info;
}

void Node::Invalidate(const std::string& url) {
  std::lock_guard<std::mutex> lock(meta_mu_);
  meta_.erase(url);
}

size_t ChunkFill::filled() {
  std::lock_guard<std::mutex> lock(mu_);
  return filled_;
}

bool ChunkFill::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

bool ChunkFill::Append(const char* d, size_t n) {
  size_t at;
  {
    std::lock_guard<std::mutex> lock(mu_);
    at = filled_;
  }
  if (n > data_.size() - at) return false;
  std::memcpy(data_.data() + at, d, n);  // past filled_: no reader looks there yet
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    filled_ = at + n;
    auto past = std::partition(waiters_.begin(), waiters_.end(), [&](const auto& w) { return w.first >= filled_; });
    for (auto it = past; it != waiters_.end(); ++it) ready.push_back(std::move(it->second));
    waiters_.erase(past, waiters_.end());
  }
  for (auto& r : ready) r();
  return true;
}

void ChunkFill::Finish() {
  std::vector<std::pair<size_t, std::function<void()>>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    ready.swap(waiters_);
  }
  for (auto& r : ready) r.second();
}

void ChunkFill::WhenPast(size_t pos, std::function<void()> ready) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_ <= pos && !done_) {
      waiters_.emplace_back(pos, std::move(ready));
      return;
    }
  }
  ready();
}

Result<std::shared_ptr<const std::string>> Node::Fetch(const std::string& url, const ObjectInfo& info,
                                                       uint64_t index, ReadMode mode,
                                                       const std::shared_ptr<ChunkFill>& fill) {
  auto from_peer = FetchFromCluster(url, info, index, mode, fill);
  if (from_peer.ok() || from_peer.status().code() != Code::kNotFound) return from_peer;
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  const uint64_t have = fill->filled();  // from a peer that failed midway
  if (have < fill->length()) {
    ReadOptions ro;
    ro.offset = index * options_.chunk_size + have;
    ro.length = fill->length() - have;
    ro.if_match = info.etag;
    metrics_.store_get_requests++;
    SHOAL_RETURN_IF_ERROR(store->Get(parsed.key, ro, [&](const char* d, size_t n) {
      if (!fill->Append(d, n)) {
        return Status::Corruption(url + ": chunk " + std::to_string(index) + " came back longer than " +
                                  std::to_string(fill->length()) + " bytes");
      }
      return Status::Ok();
    }));
    metrics_.store_get_bytes += fill->filled() - have;
  }
  if (fill->filled() != fill->length()) {
    return Status::Corruption(url + ": chunk " + std::to_string(index) + " came back with " +
                              std::to_string(fill->filled()) + " bytes, not " + std::to_string(fill->length()));
  }
  auto data = ChunkFill::Whole(fill);
  // Cache it; a full cache (pinned data) only means this chunk is not kept.
  chunks_->Put(engine::ChunkKey{url, ChunkVersion(url, info.etag), index}, *data, false).IgnoreError();
  return data;
}

Node::Inflight Node::JoinFetch(const engine::ChunkKey& key, const ObjectInfo& info, bool* lead) {
  std::string id = key.Id();
  std::lock_guard<std::mutex> lock(inflight_mu_);
  auto it = inflight_.find(id);
  if (it != inflight_.end()) {
    *lead = false;
    metrics_.coalesced_waits++;
    return it->second;
  }
  *lead = true;
  metrics_.chunk_misses++;
  Inflight job;
  job.id = id;
  job.promise = std::make_shared<std::promise<ChunkResult>>();
  job.result = job.promise->get_future().share();
  job.fill = std::make_shared<ChunkFill>(std::min(options_.chunk_size, info.size - key.index * options_.chunk_size));
  inflight_[id] = job;
  return job;
}

void Node::RunFetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                    const Inflight& job) {
  ChunkResult result = Fetch(url, info, index, mode, job.fill);
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    if (!result.ok()) {  // kept for readers that followed the fill and found it short
      if (fetch_errors_.emplace(job.id, result.status()).second) fetch_error_order_.push_back(job.id);
      while (fetch_error_order_.size() > 1024) {
        fetch_errors_.erase(fetch_error_order_.front());
        fetch_error_order_.pop_front();
      }
    } else {
      fetch_errors_.erase(job.id);
    }
  }
  if (result.ok()) hot_.Put(job.id, *result);
  job.fill->Finish();
  job.promise->set_value(result);
  std::lock_guard<std::mutex> lock(inflight_mu_);
  inflight_.erase(job.id);
}

Result<std::shared_ptr<const std::string>> Node::Chunk(const std::string& url,
                                                       const ObjectInfo& info, uint64_t index, ReadMode mode) {
  engine::ChunkKey key{url, ChunkVersion(url, info.etag), index};
  auto cached = chunks_->Get(key);
  if (cached.ok()) {
    metrics_.chunk_hits++;
    return std::make_shared<const std::string>(std::move(cached).value());
  }
  // kNotFound, or kCorruption (already dropped): fetch it again.
  if (mode == ReadMode::kCacheOnly) return Status::NotFound(key.ToString() + " is not cached here");
  bool lead = false;
  Inflight job = JoinFetch(key, info, &lead);
  if (lead) RunFetch(url, info, index, mode, job);
  return job.result.get();
}

Result<ChunkSource> Node::OpenChunk(const std::string& url, const ObjectInfo& info, uint64_t index,
                                    ReadMode mode) {
  if (index >= ChunkCount(info.size, options_.chunk_size)) {
    return Status::InvalidArgument(url + " has no chunk " + std::to_string(index));
  }
  engine::ChunkKey key{url, ChunkVersion(url, info.etag), index};
  const std::string id = key.Id();
  for (int look = 0; look < 2; look++) {
    if (auto hot = hot_.Get(id)) {
      metrics_.chunk_hits++;
      return ChunkSource{std::move(hot), nullptr};
    }
    auto cached = chunks_->Get(key);
    if (cached.ok()) {
      metrics_.chunk_hits++;
      auto data = std::make_shared<const std::string>(std::move(cached).value());
      hot_.Put(id, data);
      return ChunkSource{std::move(data), nullptr};
    }
    if (mode == ReadMode::kCacheOnly) return Status::NotFound(key.ToString() + " is not cached here");
    if (mode != ReadMode::kHeld) break;
    // Fan-in: follow this node's own fetch of it, if one is under way; never start one.
    {
      std::lock_guard<std::mutex> lock(inflight_mu_);
      auto it = inflight_.find(id);
      if (it != inflight_.end()) {
        metrics_.coalesced_waits++;
        return ChunkSource{nullptr, it->second.fill};
      }
    }
    // Neither: the fetch may have finished between the two looks; look once more.
  }
  if (mode == ReadMode::kHeld) return Status::NotFound(key.ToString() + " is neither held nor being fetched here");
  bool lead = false;
  Inflight job = JoinFetch(key, info, &lead);
  if (lead) fetch_pool_->Submit([this, url, info, index, mode, job] { RunFetch(url, info, index, mode, job); });
  return ChunkSource{nullptr, job.fill};
}

Status Node::FetchError(const std::string& url, const ObjectInfo& info, uint64_t index) {
  std::string id = engine::ChunkKey{url, ChunkVersion(url, info.etag), index}.Id();
  std::lock_guard<std::mutex> lock(inflight_mu_);
  auto it = fetch_errors_.find(id);
  if (it != fetch_errors_.end()) return it->second;
  return Status::Unavailable("the fetch of " + url + " chunk " + std::to_string(index) + " failed before it was whole");
}

Result<bool> Node::Warm(const std::string& url, const ObjectInfo& info, uint64_t index, bool route) {
  if (index >= ChunkCount(info.size, options_.chunk_size)) {
    return Status::InvalidArgument(url + " has no chunk " + std::to_string(index));
  }
  if (chunks_->Contains(engine::ChunkKey{url, ChunkVersion(url, info.etag), index})) return true;
  SHOAL_RETURN_IF_ERROR(Chunk(url, info, index, route ? ReadMode::kRoute : ReadMode::kForwarded).status());
  return false;
}

void Node::Prefetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode) {
  if (mode == ReadMode::kCacheOnly || mode == ReadMode::kHeld) return;
  uint64_t chunks = ChunkCount(info.size, options_.chunk_size);
  // A routed read (from a peer, or a client that fetches from every owner itself) reads
  // ahead only the chunks this node owns: the rest are being fetched from their owners.
  auto v = mode == ReadMode::kRoute ? nullptr : view();
  for (int k = 1; k <= options_.readahead; k++) {
    uint64_t next = index + k;
    if (next >= chunks) return;
    if (v && v->RouteOf(url, next, 1).replicas[0].member.id != id()) continue;
    engine::ChunkKey key{url, ChunkVersion(url, info.etag), next};
    if (chunks_->Contains(key)) continue;
    bool lead = false;
    {
      std::lock_guard<std::mutex> lock(inflight_mu_);
      if (inflight_.count(key.Id())) continue;
    }
    Inflight job = JoinFetch(key, info, &lead);
    if (!lead) continue;
    metrics_.readahead_chunks++;
    fetch_pool_->Submit([this, url, info, next, mode, job] { RunFetch(url, info, next, mode, job); });
  }
}

std::string Node::MetricsText() {
  std::ostringstream out;
  auto metric = [&](const char* type, const char* name, const char* help, uint64_t v) {
    out << "# HELP shoal_" << name << " " << help << "\n# TYPE shoal_" << name << " " << type
        << "\nshoal_" << name << " " << v << "\n";
  };
  auto counter = [&](const char* name, const char* help, uint64_t v) { metric("counter", name, help, v); };
  auto gauge = [&](const char* name, const char* help, uint64_t v) { metric("gauge", name, help, v); };
  auto seconds = [&](const char* name, const char* type, const char* help, double v) {
    out << "# HELP shoal_" << name << " " << help << "\n# TYPE shoal_" << name << " " << type << "\nshoal_" << name
        << " " << std::fixed << std::setprecision(3) << v << std::defaultfloat << "\n";
  };
  counter("requests_total", "Client requests received.", metrics_.requests);
  counter("chunk_hits_total", "Chunk reads served from local disk.", metrics_.chunk_hits);
  counter("chunk_misses_total", "Chunk reads not on local disk.", metrics_.chunk_misses);
  counter("coalesced_waits_total", "Readers that waited for another reader's fetch.",
          metrics_.coalesced_waits);
  counter("store_get_requests_total", "Chunk GETs sent to the object store.", metrics_.store_get_requests);
  counter("store_get_bytes_total", "Bytes read from the object store.", metrics_.store_get_bytes);
  counter("store_head_requests_total", "HEADs sent to the object store.", metrics_.store_head_requests);
  counter("bytes_served_total", "Object bytes sent to clients.", metrics_.bytes_served);
  counter("readahead_chunks_total", "Chunks fetched ahead of sequential readers.", metrics_.readahead_chunks);
  counter("errors_not_found_total", "Requests for objects that do not exist.", metrics_.errors_not_found);
  counter("errors_unavailable_total", "Requests failed by an unavailable store.", metrics_.errors_unavailable);
  counter("errors_other_total", "Requests failed otherwise.", metrics_.errors_other);
  counter("bytes_written_total", "Object bytes accepted from writers.", metrics_.bytes_written);
  counter("uploads_total", "Objects made durable in the object store.", metrics_.uploads_done);
  counter("upload_failures_total", "Upload attempts that failed (retried).", metrics_.upload_failures);
  counter("store_put_bytes_total", "Bytes uploaded to the object store.", metrics_.store_put_bytes);
  counter("store_put_requests_total", "Parts and whole objects sent to the object store.",
          metrics_.store_put_requests);
  counter("store_throttles_total", "Upload requests the store answered 429 or 503.", metrics_.store_throttles);
  counter("upload_window_cuts_total", "Times the upload concurrency was halved for a throttling store.",
          metrics_.upload_window_cuts);
  counter("writer_waits_total", "Chunks whose writer waited at the staged-bytes cap.", metrics_.writer_waits);
  seconds("writer_wait_seconds_total", "counter", "Time writers waited at the staged-bytes cap.",
          static_cast<double>(metrics_.writer_wait_ns.load()) / 1e9);
  counter("errors_disk_full_total", "Writes refused because the data directory's disk is full.",
          metrics_.errors_disk_full);
  counter("peer_fetches_total", "Chunks got from their owner, another node.", metrics_.peer_fetches);
  counter("peer_fetch_bytes_total", "Bytes got from other nodes.", metrics_.peer_fetch_bytes);
  counter("previous_owner_hits_total", "Chunks got from their owner before the last membership change.",
          metrics_.previous_owner_hits);
  counter("peer_failures_total", "Requests to other nodes that failed.", metrics_.peer_failures);
  counter("bytes_served_peers_total", "Object bytes sent to other nodes (part of bytes_served).",
          metrics_.bytes_served_peers);
  counter("bytes_served_local_total", "Object bytes sent over the Unix socket, to clients on this host (part of "
          "bytes_served; not paced by --egress-limit).", metrics_.bytes_served_local);
  counter("connections_refused_total", "Requests answered 503 Busy at once: the node was serving --max-connections.",
          metrics_.connections_refused);
  gauge("connections_open", "Client and peer connections open (idle keep-alive ones included).",
        metrics_.connections_open);
  counter("connections_accepted_total", "Connections accepted.", metrics_.connections_accepted);
  gauge("requests_active", "Requests being served now, /healthz and /metrics aside (what --max-connections bounds).",
        metrics_.requests_active);
  out << "# HELP shoal_connection_timeouts_total Connections closed by a timeout, by what they were doing.\n"
         "# TYPE shoal_connection_timeouts_total counter\n"
      << "shoal_connection_timeouts_total{phase=\"idle\"} " << metrics_.timeouts_idle << "\n"
      << "shoal_connection_timeouts_total{phase=\"header\"} " << metrics_.timeouts_header << "\n"
      << "shoal_connection_timeouts_total{phase=\"io\"} " << metrics_.timeouts_io << "\n";
  out << "# HELP shoal_operation_duration_seconds Latency of the node's operations: hit and miss (a GET from "
         "its header to its last byte, served from disk or after a fetch), peer (a chunk fetched from another node), "
         "write_ack (a PUT to its acknowledgement), upload_part (a part uploaded to the store).\n"
         "# TYPE shoal_operation_duration_seconds histogram\n";
  for (auto [op, h] : {std::pair<const char*, const Histogram*>{"hit", &metrics_.op_hit}, {"miss", &metrics_.op_miss},
                       {"peer", &metrics_.op_peer}, {"write_ack", &metrics_.op_write_ack},
                       {"upload_part", &metrics_.op_upload_part}}) {
    h->Write(out, "shoal_operation_duration_seconds", std::string("op=\"") + op + "\"");
  }
  counter("accept_failures_total", "Connections that could not be accepted (out of file descriptors, say).",
          metrics_.accept_failures);
  counter("memory_cache_hits_total", "Chunk reads served from the chunks kept in memory (--memory-cache).", hot_.hits());
  gauge("memory_cache_bytes", "Chunk bytes kept in memory (--memory-cache).", hot_.bytes());
  gauge("serve_queue", "Blocking request work waiting for a serve thread.", serve_pool_ ? serve_pool_->queued() : 0);
  counter("peer_busy_total", "Peers that answered busy (at their connection cap); the chunk was asked again.",
          metrics_.peer_busy);
  counter("fan_in_redirects_total", "Nodes asking for a chunk this node was already sending that it sent to a "
          "holder instead.", metrics_.fan_in_redirects);
  counter("fan_in_fetches_total", "Chunks got from a holder another node sent this one to.", metrics_.fan_in_fetches);
  counter("fan_in_fetch_bytes_total", "Bytes got from holders.", metrics_.fan_in_fetch_bytes);
  counter("fan_in_fallbacks_total", "Holders that could not pass a chunk on (it was then got from its owner).",
          metrics_.fan_in_fallbacks);
  counter("replica_bytes_total", "Bytes of other nodes' writes copied here.", metrics_.replica_bytes);
  counter("replica_takeovers_total", "Copies uploaded here because the node that took the write was gone.",
          metrics_.replica_takeovers);
  counter("handoffs_received_total", "Writes a draining node handed to this one to upload.", metrics_.handoffs_received);
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    gauge("replica_objects", "Copies of other nodes' writes held here, not yet durable.", copies_.size());
  }
  if (auto v = view()) {
    gauge("cluster_epoch", "The membership epoch this node routes by.", v->epoch());
    gauge("cluster_members", "Members of the cluster as this node sees it.", v->placement().members().size());
  }
  {
    auto pending = PendingUploads("");
    int64_t oldest = 0;
    uint64_t overdue = 0;
    for (const auto& p : pending) {
      if (oldest == 0 || p.record.created_unix_ms < oldest) oldest = p.record.created_unix_ms;
      overdue += p.overdue;
    }
    uint64_t staged;
    {
      std::lock_guard<std::mutex> lock(staged_mu_);
      staged = staged_bytes_;
    }
    gauge("staged_bytes", "Bytes written here and not yet durable in the store (writes in progress too).", staged);
    gauge("staged_bytes_peak", "Most staged bytes at once since start.", metrics_.staged_bytes_peak);
    gauge("staged_cap_bytes", "The staged-bytes cap (--staged-cap).", options_.staged_cap);
    gauge("staged_objects", "Objects written here and not yet durable.", pending.size());
    gauge("uploads_overdue", "Objects not durable within --upload-deadline.", overdue);
    seconds("upload_lag_seconds", "gauge", "Age of the oldest write not yet durable.",
            oldest ? static_cast<double>(UnixMillis() - oldest) / 1000 : 0.0);
    gauge("upload_window", "Part uploads allowed in flight now (adapts to 429/503).",
          static_cast<uint64_t>(uploader_->window()));
  }
  auto s = chunks_->stats();
  gauge("cache_bytes", "Chunk bytes on local disk.", s.bytes);
  gauge("cache_chunks", "Chunks on local disk.", s.chunks);
  gauge("cache_pinned_bytes", "Chunk bytes not yet uploaded (not evictable).", s.pinned_bytes);
  counter("cache_evictions_total", "Chunks evicted.", s.evictions);
  counter("cache_corruptions_total", "Chunks that failed their checksum.", s.corruptions);
  return out.str();
}

}  // namespace shoal::node
