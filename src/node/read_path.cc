#include "node/read_path.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "net/node_protocol.h"
#include "net/retry.h"

namespace shoal::node {

namespace {
// Times a chunk is asked again of a peer that answered 503 Busy (at its connection cap), and
// the back-off between (about 13 s in all before the store is asked instead).
constexpr int kBusyRetries = 20;
constexpr std::chrono::milliseconds kBusyBackoff{250};
constexpr std::chrono::milliseconds kBusyMaxBackoff{1500};
// How long a fetch waits for the node's first view of the cluster (it serves from its disk while
// it joins) before it takes the chunk from the store.
constexpr std::chrono::seconds kJoinWait{10};
}  // namespace

ReadPath::ReadPath(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks,
                   ObjectCatalog* objects, ClusterRouting* cluster, WriteDirectory* directory)
    : options_(options),
      metrics_(metrics),
      chunks_(chunks),
      objects_(objects),
      cluster_(cluster),
      directory_(directory),
      fetch_pool_(WorkerPool::Elastic(options.fetch_threads_kept, options.fetch_threads, "shoald-fetch")) {}

ReadPath::~ReadPath() {
  closing_ = true;  // fetches waiting for a restarting owner end now, with its error
  fetch_pool_.reset();
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

Status ReadPath::GetChunk(const std::string& endpoint, const std::string& url, const ObjectInfo& info, uint64_t index,
                      std::string_view how, const std::string& failed_holder, ChunkFill* fill, http::Response* resp) {
  uint64_t first = index * options_.chunk_size + fill->filled();
  uint64_t last = index * options_.chunk_size + fill->length() - 1;
  auto v = cluster_->view();
  http::Request req = proto::ChunkRequest(endpoint, options_.token,
                                          proto::ChunkRead{.url = url,
                                                           .etag = info.etag,
                                                           .size = info.size,
                                                           .first = first,
                                                           .last = last,
                                                           .mode = how,
                                                           .epoch = v ? v->epoch() : 0});
  req.headers.push_back({std::string(proto::kFromHeader), options_.node_id});
  // Where this node serves: the asked node may send others here for this chunk (fan-in).
  if (!cluster_->advertise().empty()) req.headers.push_back({std::string(proto::kEndpointHeader), cluster_->advertise()});
  if (!failed_holder.empty()) req.headers.push_back({std::string(proto::kFailedHolderHeader), failed_holder});
  ByteSink sink = [&](const char* d, size_t n) {
    return fill->Append(d, n) ? Status::Ok() : Status::Corruption("node at " + endpoint + " sent more than asked");
  };
  Status st = cluster_->Send(req, resp, &sink);
  if (st.ok()) {
    if (auto epoch = resp->NumberHeader(proto::kEpochHeader); epoch.ok()) cluster_->SawEpoch(*epoch);  // else none said
  }
  return st;
}

ReadPath::ChunkResult ReadPath::FetchFromPeer(const cluster::Peer& peer, const std::string& url,
                                                               const ObjectInfo& info, uint64_t index,
                                                               bool cache_only, const std::shared_ptr<ChunkFill>& fill) {
  struct Timed {  // the fetch's latency, for every return that leaves the chunk whole
    Histogram& latency;
    ChunkFill& fill;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    ~Timed() {
      if (fill.filled() == fill.length()) latency.Observe(std::chrono::steady_clock::now() - started);
    }
  } timed{metrics_->op_peer, *fill};
  const uint64_t before = fill->filled();
  http::Response resp;
  Status st;
  net::Backoff busy_backoff(kBusyBackoff, kBusyMaxBackoff);
  for (int busy = 0, failed = 0;;) {
    resp = http::Response{};
    st = GetChunk(peer.endpoint, url, info, index, cache_only ? proto::kReadCacheOnly : proto::kReadForwarded, "",
                  fill.get(), &resp);
    if (!st.ok()) {
      // One failed request (a reset, a timeout) is not a dead peer: ask once more after a
      // moment, for the rest of the chunk, unless it is now known down (nothing listens).
      cluster_->PeerFailed(peer.member.id, st);
      if (failed++ > 0 || cluster_->PeerDown(peer.member.id)) break;
      metrics_->peer_retries++;
      std::this_thread::sleep_for(busy_backoff.Next());
      continue;
    }
    cluster_->PeerAnswered(peer.member.id);
    // A peer at its connection cap says so at once: wait a moment and ask again (a few
    // times), rather than call it down and fetch from the store what it holds.
    if (resp.status != 503 || resp.Header(proto::kErrorHeader) != proto::kBusy || busy == kBusyRetries) break;
    busy++;
    metrics_->peer_busy++;
    std::this_thread::sleep_for(busy_backoff.Next());
  }
  if (st.ok() && resp.status == 307 && !cache_only) {
    // Fan-in: the owner is sending this chunk to others already and names a node that has it
    // or is getting it, which streams it on as it arrives. Failing that (midway too: the
    // bytes got are kept), the owner sends the rest after all.
    std::string holder = resp.Header(proto::kHolderHeader);
    const uint64_t held_from = fill->filled();
    // Only a 2xx body lands in the fill: what counts is whether it is whole.
    http::Response held;
    GetChunk(holder, url, info, index, proto::kReadHeld, "", fill.get(), &held).IgnoreError();
    metrics_->fan_in_fetch_bytes += fill->filled() - held_from;
    if (fill->filled() == fill->length()) {  // whole, even if the answer then ended badly
      metrics_->fan_in_fetches++;
      return ChunkFill::Whole(fill);
    }
    metrics_->fan_in_fallbacks++;
    resp = http::Response{};
    st = GetChunk(peer.endpoint, url, info, index, proto::kReadForwarded, holder, fill.get(), &resp);
  }
  if (!st.ok()) return Status::Unavailable("node " + peer.member.id + " (" + peer.endpoint + "): " + st.message());
  if (resp.status == 404) return Status::NotFound(url + " chunk " + std::to_string(index) + " is not on " + peer.member.id);
  if (resp.status == 412) return Status::PreconditionFailed(url + " changed in the object store");
  if (resp.status / 100 != 2 || fill->filled() != fill->length()) {
    metrics_->peer_failures++;
    return Status::Unavailable("node " + peer.member.id + " answered " + std::to_string(resp.status) + " for " + url +
                               " chunk " + std::to_string(index));
  }
  metrics_->peer_fetch_bytes += fill->filled() - before;
  return ChunkFill::Whole(fill);
}

ReadPath::ChunkResult ReadPath::FetchFromCluster(const std::string& url, const ObjectInfo& info,
                                                                  uint64_t index, ReadMode mode, std::string* stand_in_for,
                                                                  const std::shared_ptr<ChunkFill>& fill, bool* owner_away) {
  auto v = cluster_->AwaitView(kJoinWait);  // just restarted: the owner may be another node
  if (!v || v->placement().members().size() < 2) return Status::NotFound("not in a cluster");
  cluster::Route route = v->RouteOf(url, index, 1);
  const cluster::Peer& owner = route.replicas[0];
  Result<std::shared_ptr<const std::string>> got = Status::NotFound("");
  *stand_in_for = owner.member.id != options_.node_id ? owner.member.id : "";
  if (owner.member.id != options_.node_id) {
    // Not ours: the owner fetches it (once for the whole cluster) unless it is down. An owner
    // restarting in place is waited for, whoever asks (a stand-in too): it has the chunk.
    const bool awaited = cluster_->PeerAwaited(owner.member.id);
    if (!awaited && (mode != ReadMode::kRoute || cluster_->PeerDown(owner.member.id))) {
      return Status::NotFound(mode != ReadMode::kRoute ? "the read came here because its owner could not be reached"
                                                       : "its owner is skipped after failures");
    }
    got = FetchFromPeer(owner, url, info, index, false, fill);
    if (!got.ok() && got.status().code() == Code::kUnavailable && cluster_->PeerAway(owner.member.id)) {
      *owner_away = true;  // asked again later (RunFetch), not the store
      return got;
    }
    if (got.ok()) metrics_->peer_fetches++;
  } else if (route.previous && route.previous->member.id != options_.node_id && !cluster_->PeerDown(route.previous->member.id)) {
    // Ours since the last membership change: the previous owner may still have it.
    got = FetchFromPeer(*route.previous, url, info, index, true, fill);
    if (got.ok()) metrics_->previous_owner_hits++;
  }
  if (!got.ok()) {
    // Only a changed object is final; a missing or unreachable peer sends us to the store.
    if (got.status().code() == Code::kPreconditionFailed) return got;
    return Status::NotFound(got.status().message());
  }
  chunks_->Put(engine::ChunkKey{url, objects_->ChunkVersion(url, info.etag), index}, **got, false).IgnoreError();
  return got;
}

ReadPath::ChunkResult ReadPath::FetchFromHolders(const std::string& url, const ObjectInfo& info, uint64_t index,
                                                 const std::shared_ptr<ChunkFill>& fill) {
  auto v = cluster_->view();
  const std::vector<std::string> holders = directory_->HoldersOf(url, info.etag);
  std::string tried;  // each holder and what it answered, for the error
  auto note = [&tried](const std::string& id, const std::string& why) {
    tried += (tried.empty() ? "" : ", ") + id + " (" + why + ")";
  };
  bool missing = holders.empty();
  for (const auto& id : holders) {
    if (id == options_.node_id) {  // not on this node's disk (the caller looked)
      note(id, "this node: not on its disk");
      continue;
    }
    std::string endpoint = v ? v->EndpointOf(id) : "";
    if (endpoint.empty() || cluster_->PeerDown(id)) {
      note(id, endpoint.empty() ? "not a member" : "down");
      continue;
    }
    auto got = FetchFromPeer(cluster::Peer{{id, 0, ""}, endpoint}, url, info, index, true, fill);
    if (got.ok()) {
      metrics_->holder_fetches++;
      chunks_->Put(engine::ChunkKey{url, info.etag, index}, **got, false).IgnoreError();
      return got;
    }
    missing |= got.status().code() == Code::kNotFound;
    note(id, got.status().message());
  }
  if (missing) {
    return Status::PreconditionFailed(url + " as written (" + info.etag +
                                      ") is no longer held by the nodes that took it (" +
                                      (tried.empty() ? "none named" : tried) +
                                      "): it was uploaded or replaced since; read it again");
  }
  return Status::Unavailable(url + " is not yet in the object store, and no node holding it can be reached now (" +
                             tried + "): retry in a few seconds (a copy's holder uploads it once its writer is gone)");
}

void ReadPath::LogStandIn(const std::string& owner, const Status& why) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(stand_in_mu_);
    auto [it, first] = stand_in_logged_.try_emplace(owner, now);
    if (!first && now - it->second < kStandInLogEvery) return;
    it->second = now;
    if (stand_in_logged_.size() > 4096) stand_in_logged_.clear();  // members come and go
  }
  Logf(LogLevel::kWarn, "reading chunks node %s owns from the object store (%s): %s", owner.c_str(),
       cluster_->PeerAwaited(owner) ? "it is restarting and could not be reached" : "it is skipped or failing",
       why.message().empty() ? "not asked" : why.message().c_str());
}

ReadPath::ChunkResult ReadPath::Fetch(const std::string& url, const ObjectInfo& info,
                                                       uint64_t index, ReadMode mode,
                                                       const std::shared_ptr<ChunkFill>& fill, bool* owner_away) {
  // A write not yet in the store is only on the nodes that hold it; once uploaded, they may
  // have let it go, and the store has the same bytes under the ETag its home learned. (A write
  // replaced or deleted since is not resolved: its reader is told to read again.)
  if (IsLocalVersion(info.etag)) {
    auto held = FetchFromHolders(url, info, index, fill);
    if (held.ok() || held.status().code() != Code::kPreconditionFailed) return held;
    auto stored = directory_->ResolveVersion(url, info.etag);
    if (!stored.ok()) return held;
    // Its chunks are cached here under the version its readers name (the alias), so that their
    // next look (a read after a read ahead) and a reader naming the store's ETag find them both.
    objects_->AddAlias(url, *stored, info.etag);
    ObjectInfo as_stored = info;
    as_stored.etag = *stored;
    auto got = Fetch(url, as_stored, index, mode, fill, owner_away);
    if (got.ok()) metrics_->uploaded_write_fetches++;
    return got;
  }
  std::string stand_in_for;
  auto from_peer = FetchFromCluster(url, info, index, mode, &stand_in_for, fill, owner_away);
  if (from_peer.ok() || from_peer.status().code() != Code::kNotFound) return from_peer;
  const bool stand_in = !stand_in_for.empty();
  if (stand_in) LogStandIn(stand_in_for, from_peer.status());
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, objects_->StoreFor(parsed));
  const uint64_t have = fill->filled();  // from a peer that failed midway
  if (have < fill->length()) {
    ReadOptions ro;
    ro.offset = index * options_.chunk_size + have;
    ro.length = fill->length() - have;
    ro.if_match = info.etag;
    ro.if_size = info.size;  // a reader may have named the size: the store's answer must agree
    metrics_->store_get_requests++;
    if (stand_in) metrics_->store_gets_for_others++;
    SHOAL_RETURN_IF_ERROR(store->Get(parsed.key, ro, [&](const char* d, size_t n) {
      if (!fill->Append(d, n)) {
        return Status::Corruption(url + ": chunk " + std::to_string(index) + " came back longer than " +
                                  std::to_string(fill->length()) + " bytes");
      }
      return Status::Ok();
    }));
    metrics_->store_get_bytes += fill->filled() - have;
  }
  if (fill->filled() != fill->length()) {
    return Status::Corruption(url + ": chunk " + std::to_string(index) + " came back with " +
                              std::to_string(fill->filled()) + " bytes, not " + std::to_string(fill->length()));
  }
  auto data = ChunkFill::Whole(fill);
  // Cache it; a full cache (pinned data) only means this chunk is not kept.
  chunks_->Put(engine::ChunkKey{url, objects_->ChunkVersion(url, info.etag), index}, *data, false).IgnoreError();
  return data;
}

void ReadPath::KeepFirstChunk(const std::string& url, const ObjectInfo& info, std::string bytes) {
  if (info.size == 0 || bytes.size() != ChunkLength(info.size, options_.chunk_size, 0)) return;
  engine::ChunkKey key{url, objects_->ChunkVersion(url, info.etag), 0};
  auto data = std::make_shared<const std::string>(std::move(bytes));
  chunks_->Put(key, *data, false).IgnoreError();  // a full cache (pinned data): not kept on disk
  hot_.Put(key.Id(), data);
}

bool ReadPath::FirstChunkFromStore(const std::string& url) {
  // Joining (a restart in place replaying the membership): which chunks are whose is not known.
  if (chunks_->HoldsFirstChunk(url) || cluster_->Joining()) return false;
  auto v = cluster_->view();
  if (!v || v->placement().members().size() < 2) return true;
  cluster::Route route = v->RouteOf(url, 0, 1);
  if (route.replicas.empty() || route.replicas[0].member.id != options_.node_id) return false;
  return !route.previous || route.previous->member.id == options_.node_id;
}

std::string ReadPath::FetchId(const engine::ChunkKey& key, const ObjectInfo& info) {
  return key.Id() + "@" + std::to_string(info.size);
}

std::string ReadPath::StreamOf(const engine::ChunkKey& key, const ObjectInfo& info) {
  return key.object + "@" + key.version + "@" + std::to_string(info.size);
}

std::optional<ReadPath::Inflight> ReadPath::JoinFetch(const engine::ChunkKey& key, const ObjectInfo& info,
                                                       bool* lead) {
  std::string id = key.Id();
  std::string fetch = FetchId(key, info);
  std::lock_guard<std::mutex> lock(inflight_mu_);
  *lead = false;
  auto it = inflight_.find(fetch);
  if (it != inflight_.end()) {
    metrics_->coalesced_waits++;
    return it->second;
  }
  if (hot_.Get(id) || chunks_->Contains(key)) return std::nullopt;
  *lead = true;
  metrics_->chunk_misses++;
  Inflight job;
  job.id = id;
  job.fetch = fetch;
  job.promise = std::make_shared<std::promise<ChunkResult>>();
  job.result = job.promise->get_future().share();
  job.fill = std::make_shared<ChunkFill>(ChunkLength(info.size, options_.chunk_size, key.index));
  inflight_[fetch] = job;
  return job;
}

void ReadPath::RunFetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode,
                        const Inflight& job, bool waited) {
  bool owner_away = false;
  ChunkResult result = Fetch(url, info, index, mode, job.fill, &owner_away);
  if (owner_away && !closing_) {
    if (!waited) metrics_->restart_waits++;
    fetch_pool_->SubmitAfter(kRestartPoll,
                             [this, url, info, index, mode, job] { RunFetch(url, info, index, mode, job, true); });
    return;
  }
  EndFetch(job, result);
}

void ReadPath::EndFetch(const Inflight& job, const ChunkResult& result) {
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    if (!result.ok()) {  // kept for readers that followed the fill and found it short
      if (fetch_errors_.emplace(job.fetch, result.status()).second) fetch_error_order_.push_back(job.fetch);
      while (fetch_error_order_.size() > 1024) {
        fetch_errors_.erase(fetch_error_order_.front());
        fetch_error_order_.pop_front();
      }
    } else {
      fetch_errors_.erase(job.fetch);
    }
  }
  if (result.ok()) hot_.Put(job.id, *result);
  job.fill->Finish();
  job.promise->set_value(result);
  std::lock_guard<std::mutex> lock(inflight_mu_);
  inflight_.erase(job.fetch);
}

ReadPath::ChunkResult ReadPath::Chunk(const std::string& url,
                                                       const ObjectInfo& info, uint64_t index, ReadMode mode) {
  engine::ChunkKey key{url, objects_->ChunkVersion(url, info.etag), index};
  auto cached = chunks_->Get(key);
  if (cached.ok()) {
    metrics_->chunk_hits++;
    return std::make_shared<const std::string>(std::move(cached).value());
  }
  // kNotFound, or kCorruption (already dropped): fetch it again.
  if (mode == ReadMode::kCacheOnly) return Status::NotFound(key.ToString() + " is not cached here");
  bool lead = false;
  std::optional<Inflight> job = JoinFetch(key, info, &lead);
  if (!job) {  // fetched since the look above
    if (auto hot = hot_.Get(key.Id())) return hot;
    return Chunk(url, info, index, mode);
  }
  if (lead) RunFetch(url, info, index, mode, *job);
  return job->result.get();
}

Result<ChunkSource> ReadPath::OpenChunk(const std::string& url, const ObjectInfo& info, uint64_t index,
                                    ReadMode mode, const FileRange* as_file) {
  if (index >= ChunkCount(info.size, options_.chunk_size)) {
    return Status::InvalidArgument(url + " has no chunk " + std::to_string(index));
  }
  engine::ChunkKey key{url, objects_->ChunkVersion(url, info.etag), index};
  const std::string id = key.Id();
  // A chunk held here was checked against the store's size when it was fetched; a reader whose
  // size disagrees named a wrong one for this version, and gets an error (never a short chunk).
  const uint64_t length = ChunkLength(info.size, options_.chunk_size, index);
  auto held = [&](std::shared_ptr<const std::string> data) -> Result<ChunkSource> {
    metrics_->chunk_hits++;
    if (data->size() != length) {
      return Status::PreconditionFailed(url + " chunk " + std::to_string(index) + " is " +
                                        std::to_string(data->size()) + " bytes at version " + info.etag +
                                        ", not " + std::to_string(length) + ": the size named for it (" +
                                        std::to_string(info.size) + ") is not the object's");
    }
    return ChunkSource{std::move(data), nullptr, nullptr};
  };
  for (int look = 0; look < 2; look++) {
    if (as_file != nullptr && as_file->len < kFileMinBytes) {
      if (auto hot = hot_.Get(id)) return held(std::move(hot));
    }
    if (as_file != nullptr) {
      // From the file even when the chunk is also in memory: the bytes go from the page cache
      // to the socket without a copy through this process. Any failure (corrupt and dropped,
      // say) falls through to memory, Get and a fetch, as a failed Get does.
      auto file = chunks_->OpenFile(key, as_file->from, as_file->len);
      if (file.ok()) {
        metrics_->chunk_hits++;
        if ((*file)->length != length) {
          return Status::PreconditionFailed(url + " chunk " + std::to_string(index) + " is " +
                                            std::to_string((*file)->length) + " bytes at version " + info.etag +
                                            ", not " + std::to_string(length) + ": the size named for it (" +
                                            std::to_string(info.size) + ") is not the object's");
        }
        return ChunkSource{nullptr, nullptr, std::shared_ptr<engine::ChunkFile>(std::move(file).value())};
      }
    }
    if (auto hot = hot_.Get(id)) return held(std::move(hot));
    auto cached = chunks_->Get(key);
    if (cached.ok()) {
      auto data = std::make_shared<const std::string>(std::move(cached).value());
      hot_.Put(id, data);
      return held(std::move(data));
    }
    if (mode == ReadMode::kCacheOnly) return Status::NotFound(key.ToString() + " is not cached here");
    if (mode != ReadMode::kHeld) break;
    // Fan-in: follow this node's own fetch of it, if one is under way; never start one.
    {
      std::lock_guard<std::mutex> lock(inflight_mu_);
      auto it = inflight_.find(FetchId(key, info));
      if (it != inflight_.end()) {
        metrics_->coalesced_waits++;
        return ChunkSource{nullptr, it->second.fill, nullptr};
      }
    }
    // Neither: the fetch may have finished between the two looks; look once more.
  }
  if (mode == ReadMode::kHeld) return Status::NotFound(key.ToString() + " is neither held nor being fetched here");
  bool lead = false;
  std::optional<Inflight> job = JoinFetch(key, info, &lead);
  if (!job) return OpenChunk(url, info, index, mode, as_file);  // fetched since the looks above
  if (lead) fetch_pool_->Submit([this, url, info, index, mode, job = *job] { RunFetch(url, info, index, mode, job); });
  // A reader waiting for a fetch under way (one the read-ahead started): the store is slower
  // than this object's readers, so more of it is fetched at once.
  if (!lead && index > 0) readahead_.CaughtUp(StreamOf(key, info), options_.readahead);
  return ChunkSource{nullptr, job->fill, nullptr};
}

Status ReadPath::FetchError(const std::string& url, const ObjectInfo& info, uint64_t index) {
  std::string fetch = FetchId(engine::ChunkKey{url, objects_->ChunkVersion(url, info.etag), index}, info);
  std::lock_guard<std::mutex> lock(inflight_mu_);
  auto it = fetch_errors_.find(fetch);
  if (it != fetch_errors_.end()) return it->second;
  return Status::Unavailable("the fetch of " + url + " chunk " + std::to_string(index) + " failed before it was whole");
}

Result<bool> ReadPath::Warm(const std::string& url, const ObjectInfo& info, uint64_t index, bool route) {
  if (index >= ChunkCount(info.size, options_.chunk_size)) {
    return Status::InvalidArgument(url + " has no chunk " + std::to_string(index));
  }
  if (chunks_->Contains(engine::ChunkKey{url, objects_->ChunkVersion(url, info.etag), index})) return true;
  SHOAL_RETURN_IF_ERROR(Chunk(url, info, index, route ? ReadMode::kRoute : ReadMode::kForwarded).status());
  return false;
}

void ReadPath::Prefetch(const std::string& url, const ObjectInfo& info, uint64_t index, ReadMode mode) {
  if (mode == ReadMode::kCacheOnly || mode == ReadMode::kHeld) return;
  // Joining (just restarted): which of the next chunks are this node's is not known yet.
  if (mode != ReadMode::kRoute && cluster_->Joining()) return;
  uint64_t chunks = ChunkCount(info.size, options_.chunk_size);
  // A routed read (from a peer, or a client that fetches from every owner itself) reads
  // ahead only the chunks this node owns: the rest are being fetched from their owners.
  auto v = mode == ReadMode::kRoute ? nullptr : cluster_->view();
  const std::string version = objects_->ChunkVersion(url, info.etag);
  const int window = readahead_.Window(StreamOf(engine::ChunkKey{url, version, index}, info), options_.readahead);
  for (int k = 1; k <= window; k++) {
    uint64_t next = index + k;
    if (next >= chunks) return;
    if (v && v->RouteOf(url, next, 1).replicas[0].member.id != options_.node_id) continue;
    engine::ChunkKey key{url, version, next};
    if (chunks_->Contains(key)) continue;
    bool lead = false;
    {
      std::lock_guard<std::mutex> lock(inflight_mu_);
      // As many fetches under way as fetch threads: another would wait in the pool's queue, in
      // front of a reader's own. (Counted from the fetches, not from the queue: a fetch just
      // submitted sits in the queue until an idle thread wakes, which says nothing of how
      // busy the threads are.)
      if (inflight_.size() >= static_cast<size_t>(options_.fetch_threads)) return;
      if (inflight_.count(FetchId(key, info))) continue;
    }
    std::optional<Inflight> job = JoinFetch(key, info, &lead);
    if (!lead) continue;
    metrics_->readahead_chunks++;
    fetch_pool_->Submit([this, url, info, next, mode, job = *job] { RunFetch(url, info, next, mode, job); });
  }
}

}  // namespace shoal::node
