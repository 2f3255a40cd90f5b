#include "node/write_back.h"

#include <algorithm>
#include <cstring>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "common/strings.h"
#include "net/node_protocol.h"
#include "store/commit.h"

namespace shoal::node {

namespace {
// What a failed write's error adds: the writer knows nothing of it was kept.
constexpr const char* kNotAcknowledged = " (nothing of it was acknowledged; earlier writes are intact)";
// A writer's first chunk buffer (Writer::Space); it doubles from there.
constexpr uint64_t kFirstBuffer = 256 << 10;
}  // namespace

using proto::ReplicaChunkPath;
using proto::ReplicaDropPath;

WriteBack::WriteBack(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks,
                     engine::Journal* journal, ObjectCatalog* objects, ClusterRouting* cluster,
                     WriteDirectory* directory, const std::string& incarnation)
    : options_(options),
      metrics_(metrics),
      chunks_(chunks),
      journal_(journal),
      objects_(objects),
      cluster_(cluster),
      directory_(directory),
      incarnation_(incarnation) {
  UploadHooks hooks;
  hooks.store = [objects](const std::string& url) { return objects->StoreFor(url); };
  hooks.chunk = [this](const engine::UploadRecord& r, uint64_t i) { return UploadBytes(r, i); };
  hooks.durable = [this](const engine::UploadRecord& r, const ObjectInfo& info) { return Durable(r, info); };
  hooks.superseded = [this](const engine::UploadRecord& r, const ObjectInfo& newer) { return Superseded(r, newer); };
  hooks.uploaded = [this](uint64_t bytes) { ReleaseStaged(bytes); };
  hooks.begun = [this](const engine::UploadRecord& r, const std::string& id) { UploadBegun(r, id); };
  uploader_ = std::make_unique<Uploader>(UploaderOptions{options.upload_concurrency, options.upload_deadline},
                                         std::move(hooks), metrics);
  copy_pool_ = WorkerPool::Elastic(options.fetch_threads_kept, options.fetch_threads, "shoald-copy");
}

WriteBack::~WriteBack() {
  copy_pool_.reset();  // writers are gone (they ran on the server's pool): their copies end
  uploader_.reset();
}

void WriteBack::Restore(const engine::UploadRecord& r) {
  for (const auto& key : WriteChunkKeys(r)) {
    Status st = chunks_->Pin(key, true);
    if (!st.ok()) {
      Logf(LogLevel::kWarn, "%s: chunk %llu of an acknowledged write is missing from %s\n",
                   r.url.c_str(), static_cast<unsigned long long>(key.index), options_.data_dir.c_str());
    }
  }
  Own(r);
}

void WriteBack::Own(const engine::UploadRecord& r) {
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    staged_bytes_ += r.size;
  }
  CountWrite();
  Stage(r, false, true);
}

uint64_t WriteBack::staged_bytes() {
  std::lock_guard<std::mutex> lock(staged_mu_);
  return staged_bytes_;
}

uint64_t WriteBack::staged_writes() {
  std::lock_guard<std::mutex> lock(staged_mu_);
  return staged_writes_;
}

namespace {
proto::ReplicaCommit CommitOf(const engine::UploadRecord& r, const std::string& origin, const std::string& incarnation,
                              bool adopt) {
  return proto::ReplicaCommit{.id = r.id,
                              .url = r.url,
                              .origin = origin,
                              .incarnation = incarnation,
                              .size = r.size,
                              .chunk_size = r.chunk_size,
                              .created_unix_ms = r.created_unix_ms,
                              .begun_unix_us = r.begun_unix_us,
                              .adopt = adopt};
}
}  // namespace

std::string ReplicaCommitPath(const engine::UploadRecord& r, const std::string& origin, const std::string& incarnation,
                              bool adopt) {
  return proto::ReplicaCommitPath(CommitOf(r, origin, incarnation, adopt));
}

void WriteBack::Untrack(const engine::UploadRecord& r) {
  auto it = staged_ids_.find(r.url);
  if (it == staged_ids_.end()) return;
  it->second.erase(r.id);
  if (it->second.empty()) staged_ids_.erase(it);
}

ObjectInfo WriteBack::Stage(const engine::UploadRecord& r, bool opened, bool taken_before,
                            const std::vector<std::string>& told) {
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    staged_ids_[r.url].insert(r.id);
  }
  ObjectInfo info{"", r.size, LocalVersion(r.id), r.created_unix_ms / 1000, std::make_shared<const ObjectMeta>(r.meta)};
  objects_->SetLocal(r.url, info, static_cast<int64_t>(r.created_unix_ms), taken_before);
  // Readers through every member get it from here on (before the acknowledgement, and before
  // its upload can end and announce it durable).
  std::vector<std::string> holders{options_.node_id};
  for (const auto& id : r.replicas) {
    if (std::find(holders.begin(), holders.end(), id) == holders.end()) holders.push_back(id);
  }
  directory_->Announce(WriteDirectory::PendingOf(r, std::move(holders), options_.node_id), told);
  if (opened) {
    uploader_->Seal(r);
  } else {
    uploader_->Add(r);
  }
  return info;
}

Result<std::unique_ptr<Writer>> WriteBack::BeginWrite(const std::string& url, const ObjectMeta& meta, bool stream) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  if (parsed.key.empty() || parsed.key.back() == '/') {
    return Status::InvalidArgument(url + " names no object to write");
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, objects_->StoreFor(parsed));
  SHOAL_RETURN_IF_ERROR(store->ValidateWrite(parsed.key, meta));  // refuse now what could never be uploaded
  if (draining_) {
    return Status::Unavailable("this node is draining (leaving the cluster): write through another node");
  }
  SHOAL_ASSIGN_OR_RETURN(auto replicas, ReplicaTargets(url));
  std::unique_ptr<Writer> writer(new Writer(this, url, RandomHex(), meta));
  writer->replicas_ = std::move(replicas);
  writer->stream_ = stream;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    live_.insert(writer->id_);
  }
  writers_++;
  return writer;
}

Writer::~Writer() {
  wb_->writers_--;
  {
    std::lock_guard<std::mutex> lock(wb_->ids_mu_);
    wb_->live_.erase(id_);
  }
  if (finished_) return;
  {
    std::lock_guard<std::mutex> lock(wb_->upload_ids_mu_);
    wb_->begun_uploads_.erase(id_);
  }
  for (auto& sent : sends_) {
    if (sent.result.valid()) sent.result.wait();  // copies in flight end before the drop (Finish may have taken one)
  }
  // chunks_ + 1: a chunk stored whose copy then failed is not counted in chunks_.
  for (const auto& peer : replicas_) {
    wb_->cluster_->Call(peer, "POST", ReplicaDropPath(id_, url_, chunks_ + 1)).IgnoreError();
  }
  uint64_t uploaded = streaming_ ? wb_->uploader_->Cancel(id_) : 0;
  for (const auto& key : WriteChunkKeys(url_, id_, chunks_ + 1)) wb_->chunks_->Remove(key).IgnoreError();
  wb_->ReleaseStaged(reserved_ - std::min(uploaded, reserved_));
}

Status Writer::Flush() {
  // At the staged cap the writer waits for uploads to make room: it slows, it does not fail.
  std::string_view data(buffer_.data(), fill_);
  SHOAL_RETURN_IF_ERROR(wb_->ReserveStaged(fill_, url_));
  reserved_ += fill_;
  engine::ChunkKey key{url_, LocalVersion(id_), chunks_};
  Status st = wb_->chunks_->Put(key, data, /*pinned=*/true);
  if (st.IsTransient()) {
    // The cache is full of chunks uploaded but not yet committed (a write larger than the
    // staged cap): wait for commits to unpin them.
    auto start = std::chrono::steady_clock::now();
    wb_->metrics_->writer_waits++;
    while (st.IsTransient() && std::chrono::steady_clock::now() - start < wb_->options_.writer_timeout) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      st = wb_->chunks_->Put(key, data, /*pinned=*/true);
    }
    wb_->metrics_->writer_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - start).count();
  }
  if (!st.ok()) {
    if (st.code() == Code::kResourceExhausted) wb_->metrics_->errors_disk_full++;
    return st.WithContext("writing " + url_ + kNotAcknowledged);
  }
  stored_ = chunks_ + 1;
  if (!replicas_.empty() && whole_next_) {
    // The write's only chunk: sent with the commit (Acknowledge), in one request per holder.
    whole_ = std::make_shared<const std::string>(data);
  } else if (!replicas_.empty()) {
    // A copy to every replica, in the background; a few chunks in flight at most.
    auto copy = std::make_shared<const std::string>(data);
    std::string path = ReplicaChunkPath(id_, url_, chunks_);
    for (const auto& peer : replicas_) {
      std::packaged_task<Status()> send(
          [cluster = wb_->cluster_, peer, path, copy] { return cluster->Call(peer, "PUT", path, *copy); });
      sends_.push_back(Send{peer.member.id, send.get_future()});
      wb_->copy_pool_->Submit(std::move(send));
    }
    while (sends_.size() > 4 * replicas_.size()) {
      Status sent = Collect(sends_.front());
      sends_.pop_front();
      if (!sent.ok()) return sent;
    }
  }
  chunks_++;
  fill_ = 0;
  // From the second chunk on, the object is a multipart upload whose parts can go up while
  // the writer goes on (nothing is committed before Finish).
  if (chunks_ == 2 && stream_) {
    engine::UploadRecord partial;
    partial.id = id_;
    partial.url = url_;
    partial.chunk_size = wb_->options_.chunk_size;
    partial.created_unix_ms = UnixMillis();
    partial.begun_unix_us = begun_unix_us_;
    partial.meta = meta_;  // the multipart upload begins now, with the object's metadata
    wb_->uploader_->Open(partial);
    wb_->uploader_->AddPart(id_, 0);
    streaming_ = true;
  }
  if (streaming_) wb_->uploader_->AddPart(id_, chunks_ - 1);
  return Status::Ok();
}

Status Writer::Collect(Send& send) {
  Status sent = send.result.get();
  bool current = false;
  for (const auto& p : replicas_) current |= p.member.id == send.holder;
  if (sent.ok() || !current) return Status::Ok();  // a holder replaced already: its sends do not count
  if (sent.code() != Code::kUnavailable) {
    return sent.WithContext("copying " + url_ + " to node " + send.holder + kNotAcknowledged);
  }
  return ReplaceHolder(send.holder, sent);
}

Status Writer::ReplaceHolder(const std::string& dead, const Status& why) {
  auto failed = [&](const std::string& what) {
    return why.WithContext("copying " + url_ + " to node " + dead + " (" + what + ")" + kNotAcknowledged);
  };
  std::vector<std::string> skip{wb_->options_.node_id};
  for (const auto& p : replicas_) skip.push_back(p.member.id);
  auto next = wb_->NextHolder(url_, skip);
  if (!next) return failed("no other live member to hold the copy");
  // The new holder gets every chunk stored so far, from this node's disk, before the write goes on.
  for (uint64_t i = 0; i < stored_; i++) {
    auto chunk = wb_->chunks_->Get(engine::ChunkKey{url_, LocalVersion(id_), i});
    if (!chunk.ok()) return failed("reading chunk " + std::to_string(i) + " back: " + chunk.status().message());
    Status sent = wb_->cluster_->Call(*next, "PUT", ReplicaChunkPath(id_, url_, i), *chunk);
    if (!sent.ok()) return failed("and then to node " + next->member.id + ": " + sent.message());
  }
  for (auto& p : replicas_) {
    if (p.member.id == dead) p = *next;
  }
  wb_->metrics_->copy_holders_replaced++;
  Logf(LogLevel::kWarn, "writing %s: node %s cannot be reached (%s); its copy goes to node %s instead",
       url_.c_str(), dead.c_str(), why.message().c_str(), next->member.id.c_str());
  return Status::Ok();
}

std::optional<cluster::Peer> WriteBack::NextHolder(const std::string& url, const std::vector<std::string>& skip) {
  auto v = cluster_->view();
  if (!v) return std::nullopt;
  const auto members = static_cast<uint32_t>(v->placement().members().size());
  for (const auto& p : v->RouteOf(url, 0, members).replicas) {
    if (std::find(skip.begin(), skip.end(), p.member.id) != skip.end() || cluster_->PeerDown(p.member.id)) continue;
    return p;
  }
  return std::nullopt;
}

bool WriteBack::WaitForRoom(std::unique_lock<std::mutex>& lock, const std::function<bool()>& full,
                            std::atomic<uint64_t>& waits) {
  if (!full()) return true;
  const auto start = std::chrono::steady_clock::now();
  waits++;
  bool room = staged_cv_.wait_until(lock, start + options_.writer_timeout, [&] { return !full(); });
  metrics_->writer_wait_ns +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  return room;
}

// Why a writer that waited for room got none.
static std::string NoRoom(const std::string& url, const std::string& held, const std::chrono::milliseconds& waited) {
  return "writing " + url + ": the node holds " + held + " and uploads made no room for " +
         std::to_string(waited.count() / 1000) +
         " s: the object store is not taking uploads (`shoal flush` shows why); nothing of this write was acknowledged";
}

Status WriteBack::ReserveStaged(uint64_t n, const std::string& url) {
  std::unique_lock<std::mutex> lock(staged_mu_);
  if (!WaitForRoom(lock, [&] { return staged_bytes_ > 0 && staged_bytes_ + n > options_.staged_cap; },
                   metrics_->writer_waits)) {
    return Status::Unavailable(NoRoom(url, FormatBytes(staged_bytes_) + " not yet uploaded (--staged-cap " +
                                               FormatBytes(options_.staged_cap) + ")",
                                      options_.writer_timeout));
  }
  staged_bytes_ += n;
  if (staged_bytes_ > metrics_->staged_bytes_peak) metrics_->staged_bytes_peak = staged_bytes_;
  return Status::Ok();
}

void WriteBack::ReleaseStaged(uint64_t n) {
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    staged_bytes_ -= std::min(n, staged_bytes_);
  }
  staged_cv_.notify_all();
}

Status WriteBack::ReserveWrite(const std::string& url) {
  std::unique_lock<std::mutex> lock(staged_mu_);
  if (!WaitForRoom(lock, [&] { return staged_writes_ >= options_.staged_writes; }, metrics_->write_count_waits)) {
    return Status::Unavailable(NoRoom(url, std::to_string(staged_writes_) + " writes not yet uploaded (--staged-writes " +
                                               std::to_string(options_.staged_writes) + ")",
                                      options_.writer_timeout));
  }
  CountWriteLocked();
  return Status::Ok();
}

void WriteBack::CountWrite() {
  std::lock_guard<std::mutex> lock(staged_mu_);
  CountWriteLocked();
}

void WriteBack::CountWriteLocked() {
  staged_writes_++;
  if (staged_writes_ > metrics_->staged_writes_peak) metrics_->staged_writes_peak = staged_writes_;
}

void WriteBack::ReleaseWrite() {
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    if (staged_writes_ > 0) staged_writes_--;
  }
  staged_cv_.notify_all();
}

std::pair<char*, size_t> Writer::Space() {
  // The chunk's buffer grows as its bytes come, doubling up to a chunk: a small object costs
  // what it holds, not a whole chunk allocated (and zeroed) per write.
  const uint64_t chunk = wb_->options_.chunk_size;
  if (fill_ == buffer_.size() && buffer_.size() < chunk) {
    buffer_.resize(static_cast<size_t>(std::min<uint64_t>(chunk, std::max<uint64_t>(kFirstBuffer, 2 * buffer_.size()))));
  }
  return {buffer_.data() + fill_, buffer_.size() - fill_};
}

Status Writer::Commit(size_t n) {
  if (size_ + n > wb_->options_.capacity) {
    return Status::ResourceExhausted("writing " + url_ + ": it is larger than this node's --capacity (" +
                                     FormatBytes(wb_->options_.capacity) +
                                     "), so it cannot be staged here; write it without --cache, or raise "
                                     "--capacity (nothing of it was acknowledged)");
  }
  fill_ += n;
  size_ += n;
  if (fill_ == wb_->options_.chunk_size) return Flush();
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

uint64_t Writer::NextBegunUnixMicros() {
  static std::atomic<uint64_t> last{0};
  const uint64_t now = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  uint64_t prev = last.load();
  uint64_t next;
  do {
    next = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, next));
  return next;
}

Result<ObjectInfo> Writer::Finish() {
  SHOAL_RETURN_IF_ERROR(wb_->ReserveWrite(url_));
  Result<ObjectInfo> done = Acknowledge();
  if (!done.ok()) wb_->ReleaseWrite();  // never staged
  return done;
}

Result<ObjectInfo> Writer::Acknowledge() {
  whole_next_ = chunks_ == 0 && fill_ > 0;
  if (fill_ > 0) SHOAL_RETURN_IF_ERROR(Flush());
  engine::UploadRecord r;
  r.id = id_;
  r.url = url_;
  r.size = size_;
  r.chunk_size = wb_->options_.chunk_size;
  r.created_unix_ms = UnixMillis();
  r.begun_unix_us = begun_unix_us_;
  r.meta = meta_;
  for (const auto& peer : replicas_) r.replicas.push_back(peer.member.id);
  // With copies to make, this node's part runs beside them: its chunks are synced, and a write
  // whose upload has not begun (no multipart upload to name in its record) is journaled, while
  // every copy is completed and synced on its node. The write is acknowledged once both are
  // done; a record journaled for a write whose copies then fail is removed.
  const bool early = !replicas_.empty() && !streaming_;
  auto local = [this, keys = WriteChunkKeys(url_, id_, chunks_), r, early]() -> Status {
    SHOAL_RETURN_IF_ERROR(wb_->chunks_->Sync(keys).WithContext("writing " + url_ + kNotAcknowledged));
    if (early) SHOAL_RETURN_IF_ERROR(wb_->journal_->Put(r).WithContext("journaling " + url_ + kNotAcknowledged));
    return Status::Ok();
  };
  std::future<Status> local_done;  // on the copy pool, whose tasks wait for none of its own
  if (replicas_.empty()) {
    SHOAL_RETURN_IF_ERROR(local());
  } else {
    std::packaged_task<Status()> task(std::move(local));
    local_done = task.get_future();
    wb_->copy_pool_->Submit(std::move(task));
  }
  // Every copy complete and fsynced on its node before the acknowledgement. A holder that is
  // one of the object's homes records the pending write with its one copy (it answers
  // proto::kCopyRecordedAnswer): not announced to it again.
  std::vector<std::string> told;
  auto complete_copies = [&]() -> Status {
    for (; !sends_.empty(); sends_.pop_front()) SHOAL_RETURN_IF_ERROR(Collect(sends_.front()));
    const std::string meta = proto::ReplicaCommitBody(r.meta);
    for (size_t i = 0; i < replicas_.size(); i++) {
      const cluster::Peer peer = replicas_[i];
      const proto::ReplicaCommit commit = CommitOf(r, wb_->options_.node_id, wb_->incarnation_, false);
      Status committed;
      std::string reply;
      if (whole_) {  // the one chunk and the commit in one request
        committed = wb_->cluster_->Call(peer, "POST", proto::ReplicaWholePath(commit, meta.size()), meta + *whole_, &reply);
        if (committed.code() == Code::kInvalidArgument) {  // a node of an older version: the two apart
          committed = wb_->cluster_->Call(peer, "PUT", ReplicaChunkPath(id_, url_, 0), *whole_);
          if (committed.ok()) committed = wb_->cluster_->Call(peer, "POST", proto::ReplicaCommitPath(commit), meta);
        }
      } else {
        committed = wb_->cluster_->Call(peer, "POST", proto::ReplicaCommitPath(commit), meta, &reply);
      }
      if (committed.code() == Code::kUnavailable) {  // died since its chunks went: another node takes its place
        SHOAL_RETURN_IF_ERROR(ReplaceHolder(peer.member.id, committed));
        i--;  // commit on the node now at i
        continue;
      }
      SHOAL_RETURN_IF_ERROR(committed.WithContext("copying " + url_ + " to node " + peer.member.id + kNotAcknowledged));
      if (replicas_.size() == 1 && reply == proto::kCopyRecordedAnswer) told.push_back(peer.member.id);
    }
    return Status::Ok();
  };
  Status copies = complete_copies();
  if (local_done.valid()) {
    Status st = local_done.get();
    if (early && st.ok() && !copies.ok()) wb_->journal_->Remove(id_).IgnoreError();  // never acknowledged
    SHOAL_RETURN_IF_ERROR(st);
  }
  SHOAL_RETURN_IF_ERROR(copies);
  std::vector<std::string> holders;
  for (const auto& peer : replicas_) holders.push_back(peer.member.id);
  if (early) {
    if (holders != r.replicas) {  // a holder was replaced meanwhile: the record names the new one
      r.replicas = holders;
      SHOAL_RETURN_IF_ERROR(wb_->journal_->Put(r).WithContext("journaling " + url_ + kNotAcknowledged));
    }
  } else {
    // The upload its parts went to so far, if it began: named in the record, so a restart
    // resumes it rather than leaving it open in the store.
    std::lock_guard<std::mutex> lock(wb_->upload_ids_mu_);
    auto begun = wb_->begun_uploads_.find(id_);
    if (begun != wb_->begun_uploads_.end()) {
      r.store_upload_id = begun->second;
      wb_->begun_uploads_.erase(begun);
    }
    SHOAL_RETURN_IF_ERROR(wb_->journal_->Put(r).WithContext("journaling " + url_ + kNotAcknowledged));
  }
  finished_ = true;  // acknowledged from here on
  wb_->metrics_->bytes_written += size_;
  return wb_->Stage(r, streaming_, false, told);
}

Result<std::string> WriteBack::UploadBytes(const engine::UploadRecord& r, uint64_t index) {
  SHOAL_ASSIGN_OR_RETURN(std::string bytes, chunks_->Get(engine::ChunkKey{r.url, LocalVersion(r.id), index}));
  if (!IsCommitMarker(r.url) || r.size > r.chunk_size) return bytes;
  // A commit marker written back (Node::Commit) names writes by their local versions: it goes
  // to the store once every one of them is there, naming them as the store does.
  const std::string prefix = r.url.substr(0, r.url.size() - std::string_view(kCommitMarker).size());
  auto resolved = ResolveCommitMarker(bytes, [&](const std::string& key, const std::string& etag) {
    return directory_->ResolveVersion(prefix + key, etag);
  });
  if (resolved.status().code() == Code::kCorruption) return bytes;  // not a marker this node wrote: as it is
  if (resolved.status().code() == Code::kUnavailable) {  // the uploader asks again soon
    return Status::PreconditionFailed("waiting for what the marker names to be uploaded: " + resolved.status().message());
  }
  return resolved;
}

void WriteBack::RememberDurable(const std::string& id, const ObjectInfo& stored) {
  if (!durable_.emplace(id, stored).second) return;
  durable_order_.push_back(id);
  if (durable_order_.size() > kDurableKept) {
    durable_.erase(durable_order_.front());
    durable_order_.pop_front();
  }
}

void WriteBack::DropCopies(const engine::UploadRecord& r, const std::string& stored) {
  // The copies on other nodes have done their job. One that misses this asks us later.
  if (auto v = cluster_->view()) {
    std::string drop = ReplicaDropPath(r.id, r.url, ChunkCount(r.size, r.chunk_size), stored);
    for (const auto& id : r.replicas) {
      std::string endpoint = v->EndpointOf(id);
      if (!endpoint.empty()) cluster_->Call(cluster::Peer{{id, 0, ""}, endpoint}, "POST", drop).IgnoreError();
    }
  }
  for (const auto& key : WriteChunkKeys(r)) chunks_->Pin(key, false).IgnoreError();
}

Status WriteBack::Superseded(const engine::UploadRecord& r, const ObjectInfo& newer) {
  // Readers get the store's (newer) object, never this write's chunks.
  objects_->ForgetLocal(r.url, LocalVersion(r.id));
  {
    WriteDirectory::Announcement a = WriteDirectory::PendingOf(r, {}, options_.node_id);
    a.change = WriteDirectory::Announcement::Change::kGone;
    directory_->Announce(a);
  }
  DropCopies(r);  // once the homes know: until then they name the copies' holders
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    Untrack(r);
    // A client waiting for this write to be durable is told it is settled: the object is in
    // the store, as a newer write.
    RememberDurable(r.id, ObjectInfo{"", newer.size, newer.etag, newer.last_modified});
  }
  ReleaseWrite();
  return journal_->Remove(r.id);
}

Status WriteBack::Durable(const engine::UploadRecord& r, const ObjectInfo& done) {
  std::string version = LocalVersion(r.id);
  // A commit marker went up with other bytes than its chunks' (UploadBytes): readers get the
  // store's, never these chunks under its ETag.
  const bool rewritten = IsCommitMarker(r.url) && done.size != r.size;
  const uint64_t size = rewritten ? done.size : r.size;
  ObjectInfo stored{"", size, done.etag, done.last_modified, std::make_shared<const ObjectMeta>(r.meta)};
  if (rewritten) {
    objects_->ForgetLocal(r.url, version);
    objects_->Fresh(r.url, stored);
  } else {
    objects_->SetDurable(r.url, version, stored);
  }
  {
    WriteDirectory::Announcement a = WriteDirectory::PendingOf(r, {}, options_.node_id);
    a.change = WriteDirectory::Announcement::Change::kDurable;
    a.size = size;
    a.stored_etag = done.etag;
    a.modified = done.last_modified;
    directory_->Announce(a);
  }
  // Once the homes know (until then they name the copies' holders): the holders keep the
  // chunks, as this node does, as the stored version's (a commit marker's bytes may have been
  // rewritten on the way up: theirs go).
  DropCopies(r, IsCommitMarker(r.url) ? "" : done.etag);
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    Untrack(r);
    RememberDurable(r.id, ObjectInfo{"", size, done.etag, done.last_modified});
  }
  ReleaseWrite();
  // Nothing is left to recover: the record goes (a crash before this uploads it again). Its
  // chunks stay in the cache, readable under the alias while this process runs.
  return journal_->Remove(r.id);  // its staged bytes were released part by part (hooks.uploaded)
}

void WriteBack::UploadBegun(const engine::UploadRecord& r, const std::string& upload_id) {
  std::lock_guard<std::mutex> lock(upload_ids_mu_);
  auto journaled = journal_->Get(r.id);
  if (!journaled.ok()) {
    // A writer still at work (its Finish writes the id), or a write forgotten meanwhile (its
    // writer's end, or Forget, drops the entry).
    if (WriteState(r.id) == "pending") begun_uploads_[r.id] = upload_id;
    return;
  }
  if (!journaled->origin.empty() || journaled->store_upload_id == upload_id) return;
  journaled->store_upload_id = upload_id;
  Status st = journal_->Put(*journaled);
  if (!st.ok()) {
    Logf(LogLevel::kError, "%s: cannot journal the id of its upload in the store (after a crash the upload "
         "would be begun again, this one left open): %s\n", r.url.c_str(), st.ToString().c_str());
  }
}

Result<std::vector<cluster::Peer>> WriteBack::ReplicaTargets(const std::string& url) {
  std::vector<cluster::Peer> out;
  auto v = cluster_->view();
  if (!v || options_.replicas < 2) return out;
  size_t members = v->placement().members().size();
  size_t want = std::min<size_t>(options_.replicas, members) - 1;
  if (want == 0) return out;
  // The object's first chunk's replica set, this node left out, skipping nodes known down:
  // the holders NextHolder picks one after the other (as it picks a dead one's replacement).
  std::vector<std::string> skip{options_.node_id};
  while (out.size() < want) {
    auto next = NextHolder(url, skip);
    if (!next) break;
    skip.push_back(next->member.id);
    out.push_back(*std::move(next));
  }
  if (out.size() < want) {
    std::string down;
    for (const auto& p : v->RouteOf(url, 0, static_cast<uint32_t>(members)).replicas) {
      if (cluster_->PeerDown(p.member.id)) down += (down.empty() ? "" : ", ") + p.member.id;
    }
    return Status::Unavailable("writing " + url + ": " + std::to_string(options_.replicas) +
                               " copies are wanted (--replicas) but nodes are down (" + down +
                               "); nothing of this write was acknowledged. Retry in a few seconds, take a "
                               "dead node out with `shoal drain`, or run the nodes with fewer --replicas");
  }
  return out;
}

std::string WriteBack::WriteState(const std::string& id) {
  auto r = journal_->Get(id);
  if (r.ok()) return r->origin.empty() ? "pending" : "unknown";  // "unknown": a copy held here
  // Not journaled: a writer still at work (its copies are committed before its record is
  // written, so a holder may ask in between: its copy must stay), else never acknowledged
  // here, uploaded (records of durable writes are removed), or handed off.
  std::lock_guard<std::mutex> lock(ids_mu_);
  return live_.count(id) ? "pending" : "unknown";
}

WriteBack::Outcome WriteBack::OutcomeOf(const std::string& version, ObjectInfo* stored) {
  const std::string prefix = LocalVersion("");
  if (!StartsWith(version, prefix)) return Outcome::kGone;
  const std::string id = version.substr(prefix.size());
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    auto it = durable_.find(id);
    if (it != durable_.end()) {
      *stored = it->second;
      return Outcome::kDurable;
    }
  }
  // Durable() records the id before it removes the journal record: asked in this order, a
  // write that becomes durable in between is never taken for gone.
  if (WriteState(id) == "pending") return Outcome::kPending;
  std::lock_guard<std::mutex> lock(ids_mu_);
  auto it = durable_.find(id);
  if (it == durable_.end()) return Outcome::kGone;
  *stored = it->second;
  return Outcome::kDurable;
}

Status WriteBack::Delete(const std::string& url, bool forwarded) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, objects_->StoreFor(parsed));
  SHOAL_RETURN_IF_ERROR(store->ValidateKey(parsed.key));
  // A write of it acknowledged by another member and not yet uploaded would be uploaded after
  // this delete and bring the object back: the member that took it deletes it. When that
  // member cannot be reached, the delete fails, changing nothing here either.
  bool deleted_there = false;
  if (!forwarded) {
    std::string origin = PendingElsewhere(url);
    if (!origin.empty()) {
      SHOAL_RETURN_IF_ERROR(ForwardDelete(origin, url));
      deleted_there = true;
    }
  }
  // A write of it taken here too (the same key through two members at once) may have been
  // uploaded after the other member's delete: the store's delete then comes again.
  if (DeleteOwnWrites(url) == 0 && deleted_there) return Status::Ok();
  objects_->Invalidate(url);
  Status deleted = store->Delete(parsed.key);
  deletes_++;  // done, or maybe done: listings of the store made before are not to be trusted
  return deleted;
}

std::vector<UploadProgress> WriteBack::PendingUploads(const std::string& prefix, std::string* generation) {
  uint64_t changes = 0;
  auto pending = uploader_->Pending(prefix, &changes);
  if (generation) *generation = run_ + "." + std::to_string(changes) + "." + std::to_string(deletes_.load());
  return pending;
}

std::string WriteBack::PendingElsewhere(const std::string& url) {
  auto v = cluster_->view();
  if (!v || v->placement().members().size() < 2) return "";  // alone: no other member
  auto info = directory_->Stat(url);
  if (!info.ok() || !IsLocalVersion(info->etag)) return "";
  auto holders = directory_->HoldersOf(url, info->etag);
  if (holders.empty() || holders[0] == options_.node_id) return "";
  return holders[0];
}

Status WriteBack::ForwardDelete(const std::string& origin, const std::string& url) {
  auto v = cluster_->view();
  std::string endpoint = v ? v->EndpointOf(origin) : "";
  Status st = endpoint.empty()
                  ? Status::Unavailable("node " + origin + " is not a member")
                  : cluster_->Call(cluster::Peer{{origin, 0, ""}, endpoint}, "DELETE",
                                   proto::Target(proto::kObjectPath, {{proto::kUrlParam, url},
                                                                      {proto::kForwardedParam, proto::kFlagOn}}),
                                   {}, nullptr, std::chrono::minutes(5));
  if (st.code() == Code::kUnavailable) {
    return Status::Unavailable(url + " has a write not yet uploaded on node " + origin +
                               ", which cannot be reached to cancel it (" + st.message() +
                               "); nothing was deleted: try again once it is back or its copy's holder took it over");
  }
  objects_->Invalidate(url);
  return st;
}

size_t WriteBack::DeleteOwnWrites(const std::string& url) {
  // Writes of it taken here and not yet uploaded: out of the upload queue first, then looked at
  // again (one that became durable meanwhile is deleted from the store below).
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    auto it = staged_ids_.find(url);
    if (it != staged_ids_.end()) ids.assign(it->second.begin(), it->second.end());
  }
  for (const auto& id : ids) {
    uint64_t uploaded = uploader_->Cancel(id);
    auto now = journal_->Get(id);
    if (!now.ok() || now->state != engine::UploadRecord::State::kStaged) continue;
    Forget(*now, uploaded);
    DropCopiesOf(*now);  // the copies other nodes hold of it are not needed now
    WriteDirectory::Announcement gone = WriteDirectory::PendingOf(*now, {}, options_.node_id);
    gone.change = WriteDirectory::Announcement::Change::kGone;
    directory_->Announce(gone);
  }
  // A PUT of it already in flight would land after the delete and bring the object back: the
  // delete waits for it (bounded: a store that never answers is the store's timeout's to end).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  for (const auto& id : ids) {
    while (!uploader_->Gone(id) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return ids.size();
}

void WriteBack::DropCopiesOf(const engine::UploadRecord& r, const std::string& except) {
  auto v = cluster_->view();
  if (!v) return;
  for (const auto& holder : r.replicas) {
    std::string endpoint = v->EndpointOf(holder);
    if (endpoint.empty() || holder == except) continue;
    cluster_->Call(cluster::Peer{{holder, 0, ""}, endpoint}, "POST", ReplicaDropPath(r.id, r.url, ChunkCount(r.size, r.chunk_size)))
        .IgnoreError();  // a holder that missed it asks later, sees "unknown" under our incarnation, and drops it
  }
}

void WriteBack::Forget(const engine::UploadRecord& r, uint64_t uploaded) {
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    Untrack(r);
  }
  {
    std::lock_guard<std::mutex> lock(upload_ids_mu_);
    begun_uploads_.erase(r.id);
    journal_->Remove(r.id).IgnoreError();
  }
  for (const auto& key : WriteChunkKeys(r)) chunks_->Remove(key).IgnoreError();
  objects_->ForgetLocal(r.url, LocalVersion(r.id));
  directory_->Settle(r.id);
  ReleaseStaged(r.size - std::min(uploaded, r.size));
  ReleaseWrite();
}

}  // namespace shoal::node
