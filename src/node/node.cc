#include "node/node.h"

#include <fcntl.h>
#include <unistd.h>

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

#include "common/log.h"
#include "common/file.h"
#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/listing.h"
#include "store/commit.h"

namespace shoal::node {

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
  if (options.staged_writes < 1) return Status::InvalidArgument("--staged-writes must be at least 1");
  if (options.upload_concurrency < 1 || options.upload_concurrency > kMaxUploadConcurrency) {
    return Status::InvalidArgument("--upload-concurrency must be between 1 and 256");
  }
  for (int threads : {options.serve_threads, options.fetch_threads}) {
    if (threads < 0 || threads > 1024) return Status::InvalidArgument("thread counts must be between 0 (auto) and 1024");
  }
  std::unique_ptr<Node> node(new Node(options));
  if (node->options_.staged_cap == 0) node->options_.staged_cap = options.capacity / 2;
  // Before anything in the directory is read or cleaned up: a second node on it would delete
  // the first's temp files and share its chunks and journal.
  if (int err = CreateDirectories(options.data_dir, options.sync); err != 0) {
    return Status::IOError("cannot create --data-dir " + options.data_dir + ": " + std::strerror(err));
  }
  SHOAL_ASSIGN_OR_RETURN(node->data_dir_lock_,
                         FileLock::Acquire(options.data_dir + "/lock", "--data-dir " + options.data_dir));
  // Threads from the core count: blocking handlers two per core (at least 4); fetches, which
  // mostly wait on the network and each hold a thread while they last, up to 32 at once (2
  // per core on larger hosts), with as many threads kept at rest as there are cores (at
  // least 4).
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  NodeOptions& o = node->options_;
  if (o.serve_threads == 0) o.serve_threads = std::max(4, 2 * cores);
  if (o.fetch_threads == 0) o.fetch_threads = std::max(32, 2 * cores);
  o.fetch_threads_kept = std::min(o.fetch_threads, std::max(4, cores));
  SHOAL_ASSIGN_OR_RETURN(node->chunks_, engine::ChunkStore::Open({options.data_dir, options.capacity, options.sync,
                                                                  options.max_chunks, /*block=*/0, options.pack_below}));
  SHOAL_ASSIGN_OR_RETURN(node->journal_, engine::Journal::Open(options.data_dir + "/journal", options.sync));
  {
    std::string path = options.data_dir + "/incarnation";
    std::ifstream in(path);
    if (!(in >> node->incarnation_)) {
      // Durable before any copy is sent under it: the file fsynced, renamed, the directory
      // fsynced (a power cut must not bring a second incarnation for the same disk).
      node->incarnation_ = RandomHex();
      std::string tmp = path + ".tmp";
      int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int err = fd < 0 ? errno : WriteAt(fd, node->incarnation_ + "\n", 0);
      if (err == 0 && options.sync && ::fsync(fd) != 0) err = errno;
      if (fd >= 0) ::close(fd);
      if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
      if (err == 0 && options.sync) err = SyncDirectory(options.data_dir);
      if (err != 0) return Status::IOError("cannot write " + path + ": " + std::strerror(err));
    }
  }
  for (const auto& bad : node->journal_->damaged()) {
    Logf(LogLevel::kWarn, "journal record unreadable, kept aside: %s\n", bad.c_str());
  }
  if (uint64_t torn = node->journal_->torn_tail_bytes(); torn > 0) {
    Logf(LogLevel::kInfo,
         "journal: dropped the last %llu bytes of its log, written before a crash and never synced (no write "
         "they name was acknowledged); that log is kept as journal/log-<n>.bad\n",
         static_cast<unsigned long long>(torn));
  }
  node->objects_ = std::make_unique<ObjectCatalog>(o, &node->metrics_);
  // What this node's uploaded writes (and kept copies) are cached under, across restarts.
  node->objects_->PersistAliases(options.data_dir + "/aliases").IgnoreError();  // logged; memory only then
  node->cluster_ = std::make_unique<ClusterRouting>(o, &node->metrics_);
  node->directory_ = std::make_unique<WriteDirectory>(o, &node->metrics_, node->objects_.get(), node->cluster_.get());
  node->writes_ = std::make_unique<WriteBack>(o, &node->metrics_, node->chunks_.get(), node->journal_.get(),
                                              node->objects_.get(), node->cluster_.get(), node->directory_.get(),
                                              node->incarnation_);
  node->replicas_ = std::make_unique<Replicas>(o, &node->metrics_, node->chunks_.get(), node->journal_.get(),
                                               node->objects_.get(), node->cluster_.get(), node->writes_.get());
  node->reads_ = std::make_unique<ReadPath>(o, &node->metrics_, node->chunks_.get(), node->objects_.get(),
                                            node->cluster_.get(), node->directory_.get());
  node->serve_pool_ = std::make_unique<WorkerPool>(o.serve_threads, "shoald-serve");
  node->peer_pool_ = std::make_unique<WorkerPool>(std::max(2, o.serve_threads / 2), "shoald-peer");
  node->Replay();
  node->replicas_->Start();
  return node;
}

Node::~Node() {
  // The parts go in reverse order of their making (node.h): the serve pool's handlers first,
  // while all they use is here; then fetches; the copies' watcher and a drain; the writers'
  // copies and the uploads; the cluster's refresh and etcd watch.
  peer_pool_.reset();
  serve_pool_.reset();
  reads_.reset();
  replicas_.reset();
  writes_.reset();
  directory_.reset();
  cluster_.reset();
}

void Node::Replay() {
  for (const auto& r : journal_->List()) {
    if (!r.origin.empty()) {  // a copy of another node's write: kept, uploaded only if that node is gone
      replicas_->Restore(r);
    } else if (r.state == engine::UploadRecord::State::kDurable) {
      // Written by a version that kept records of durable writes: nothing to recover.
      objects_->AddAlias(r.url, r.etag, LocalVersion(r.id));
      journal_->Remove(r.id).IgnoreError();
    } else {
      writes_->Restore(r);
    }
  }
}

Result<std::string> Node::Commit(const std::string& prefix_url, const std::vector<std::string>* shards) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(prefix_url));
  if (!parsed.key.empty() && parsed.key.back() != '/') parsed.key += '/';
  const std::string prefix = parsed.ToString();
  std::vector<std::string> unreachable;
  const uint64_t pending = PendingInCluster(prefix, &unreachable);
  if (!unreachable.empty()) {
    return Status::Unavailable("cannot tell what node " + unreachable.front() + " still has under " + prefix +
                               " to upload: `shoal commit` waits for it");
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, objects_->StoreFor(parsed));
  if (pending == 0) {  // everything is in the store: so is the marker, at once
    SHOAL_ASSIGN_OR_RETURN(std::string marker, WriteCommitMarker(*store, parsed, shards));
    objects_->Invalidate(prefix + kCommitMarker);
    return marker;
  }
  // Writes under the prefix are acknowledged and not all uploaded: the marker names them as
  // the cluster lists them (their local versions) and is written back like them, so every
  // member reads it at once; its upload waits for theirs (WriteBack::UploadBytes).
  // With the store down, the writes the cluster holds are all that can be listed: enough when
  // they are every shard the marker is to name, never for "everything under the prefix".
  std::vector<ObjectInfo> objects;
  ListOptions lo;
  lo.prefix = parsed.key;
  lo.allow_incomplete = shards != nullptr;
  do {
    // Fresh: a shard written to the store around the cluster must be named too.
    auto listed = ListWithPending(this, parsed, lo, "", /*whole_cluster=*/true, /*fresh=*/true);
    if (!listed.ok()) {
      return listed.status().WithContext("listing " + prefix + " for its marker (with the store down, name the shards: "
                                         "`shoal commit --expect N`)");
    }
    const ListedPage& page = *listed;
    for (const auto& o : page.objects) {
      objects.push_back(ObjectInfo{o.key.substr(parsed.key.size()), o.size, o.etag,
                                   static_cast<std::time_t>(o.last_modified)});
    }
    lo.continuation = page.next_continuation;
  } while (!lo.continuation.empty());
  SHOAL_ASSIGN_OR_RETURN(std::string marker, CommitMarkerText(prefix, objects, shards));
  ObjectMeta meta;
  meta.content_type = "application/json";
  SHOAL_ASSIGN_OR_RETURN(auto writer, writes_->BeginWrite(prefix + kCommitMarker, meta, /*stream=*/false));
  SHOAL_RETURN_IF_ERROR(writer->Append(marker.data(), marker.size()));
  SHOAL_RETURN_IF_ERROR(writer->Finish().status());
  return marker;
}

Result<uint64_t> Node::PendingAt(const cluster::Peer& peer, const std::string& prefix) {
  std::string body;
  SHOAL_RETURN_IF_ERROR(
      cluster_->Call(peer, "GET", proto::Target(proto::kPendingPath, {{proto::kPrefixParam, prefix}}), {}, &body));
  auto j = nlohmann::json::parse(body, nullptr, false);
  return j.is_object() ? j.value("objects", 0ull) + j.value("copies", 0ull) : 1;  // unreadable: not known durable
}

uint64_t Node::PendingInCluster(const std::string& prefix, std::vector<std::string>* unreachable) {
  // Copies first: one taken over meanwhile is already among the own writes (Replicas::TakeOver).
  uint64_t n = replicas_->CopiesUnder(prefix);
  n += writes_->PendingUploads(prefix).size();
  if (auto v = cluster_->view()) {
    for (const auto& peer : v->peers()) {
      if (peer.member.id == options_.node_id) continue;
      auto at = PendingAt(peer, prefix);
      if (at.ok()) {
        n += *at;
      } else {
        unreachable->push_back(peer.member.id);
      }
    }
  }
  return n;
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
  counter("store_gets_for_others_total",
          "Of the chunk GETs sent to the object store, those for chunks another member owns (it was down, "
          "restarting past --down-grace, or failed to answer): each is a chunk the cluster may fetch twice.",
          metrics_.store_gets_for_others);
  counter("store_get_bytes_total", "Bytes read from the object store.", metrics_.store_get_bytes);
  counter("store_head_requests_total", "HEADs sent to the object store.", metrics_.store_head_requests);
  counter("store_first_chunk_gets_total",
          "Objects not seen before whose size, ETag and metadata came with a GET of their first chunk (a reader's), "
          "not a HEAD (counted in store_get_requests_total too).",
          metrics_.store_first_chunk_gets);
  counter("coalesced_stats_total", "Asks for an object's metadata that shared the object store's answer to another.",
          metrics_.coalesced_stats);
  counter("store_list_requests_total", "Listing pages asked of the object store for the node's listings.",
          metrics_.store_list_requests);
  counter("list_cache_hits_total",
          "Listing pages of the object store answered from the node's listing cache (nothing changed through the "
          "cluster since, within --metadata-ttl).",
          metrics_.list_cache_hits);
  gauge("list_cache_bytes", "What the listing cache holds (its bound: 16 MiB).", listings_.bytes());
  counter("bytes_served_total", "Object bytes sent to clients.", metrics_.bytes_served);
  counter("readahead_chunks_total", "Chunks fetched ahead of sequential readers.", metrics_.readahead_chunks);
  counter("errors_not_found_total", "Requests for objects that do not exist.", metrics_.errors_not_found);
  counter("errors_unavailable_total", "Requests failed by an unavailable store.", metrics_.errors_unavailable);
  counter("errors_other_total", "Requests failed otherwise.", metrics_.errors_other);
  counter("bytes_written_total", "Object bytes accepted from writers.", metrics_.bytes_written);
  counter("uploads_total", "Objects made durable in the object store.", metrics_.uploads_done);
  counter("uploads_superseded_total",
          "Writes not uploaded because the store already held a newer write of their object.",
          metrics_.uploads_superseded);
  counter("uploads_found_stored_total",
          "Writes found already in the store before their commit (a copy's holder or an earlier attempt put them).",
          metrics_.uploads_found_stored);
  counter("uploads_over_existing_total",
          "Single-chunk uploads put on condition that the store held no such object, refused because it did: "
          "looked at (a HEAD) and put again.",
          metrics_.uploads_over_existing);
  counter("upload_failures_total", "Upload attempts that failed (retried).", metrics_.upload_failures);
  counter("store_put_bytes_total", "Bytes uploaded to the object store.", metrics_.store_put_bytes);
  counter("store_put_requests_total", "Parts and whole objects sent to the object store.",
          metrics_.store_put_requests);
  counter("upload_parts_reused_total", "Parts of uploads resumed after a restart that the store already held, "
          "checked and not sent again.", metrics_.upload_parts_reused);
  counter("upload_reused_bytes_total", "Bytes of those parts.", metrics_.upload_reused_bytes);
  counter("store_throttles_total", "Upload requests the store answered 429 or 503.", metrics_.store_throttles);
  counter("upload_window_cuts_total", "Times the upload concurrency was halved for a throttling store.",
          metrics_.upload_window_cuts);
  counter("writer_waits_total", "Chunks whose writer waited at the staged-bytes cap.", metrics_.writer_waits);
  counter("write_count_waits_total", "Writes that waited at the staged-writes bound (--staged-writes).",
          metrics_.write_count_waits);
  seconds("writer_wait_seconds_total", "counter", "Time writers waited at the staged-bytes cap.",
          static_cast<double>(metrics_.writer_wait_ns.load()) / 1e9);
  counter("door_early_bytes_total",
          "Bytes of the front door's multipart uploads and block lists written before their Complete "
          "(joined as their parts arrived) and committed by it.",
          metrics_.door_early_bytes);
  counter("errors_disk_full_total", "Writes refused because the data directory's disk is full.",
          metrics_.errors_disk_full);
  counter("peer_fetches_total", "Chunks got from their owner, another node.", metrics_.peer_fetches);
  counter("peer_fetch_bytes_total", "Bytes got from other nodes.", metrics_.peer_fetch_bytes);
  counter("previous_owner_hits_total", "Chunks got from their owner before the last membership change.",
          metrics_.previous_owner_hits);
  counter("tls_handshake_failures_total", "TLS connections whose handshake failed or timed out (a client that "
          "does not trust this node's certificate, or speaks plain HTTP to it).", metrics_.tls_handshake_failures);
  counter("copy_holders_replaced_total", "Writes whose copy holder could not be reached, so another member took "
          "its place (and every chunk so far) while the write went on.", metrics_.copy_holders_replaced);
  counter("auth_refusals_total", "Requests to the node's API refused: no token, an unknown one, or one whose "
          "scopes do not cover the request (each is logged).", metrics_.auth_refusals);
  counter("peer_failures_total", "Requests to other nodes that failed.", metrics_.peer_failures);
  counter("announcements_total", "Writes not yet uploaded (and their uploads and deletions) told to the object's home "
          "node, when another node is that home.", metrics_.announcements_sent);
  counter("home_lookups_total", "Opens whose object metadata was asked of the object's home node (read-your-writes "
          "across the cluster).", metrics_.home_lookups);
  counter("holder_fetches_total", "Chunks of writes not yet uploaded fetched from the nodes holding them.",
          metrics_.holder_fetches);
  counter("uploaded_write_fetches_total", "Chunks of a write that a reader began reading before its upload and "
          "that its holders no longer had: read from the store, as the write was uploaded.",
          metrics_.uploaded_write_fetches);
  counter("peer_retries_total", "Chunks asked of a peer again after one failed request (rather than of the store).",
          metrics_.peer_retries);
  counter("peers_marked_down_total", "Times a peer was skipped for a few seconds: nothing listened there, or "
          "several requests in a row failed.", metrics_.peers_marked_down);
  counter("stale_forwards_total", "Reads forwarded here by a node or client routing by an older membership, routed "
          "again here (not read from the store as a stand-in).", metrics_.stale_forwards);
  counter("peer_restart_waits_total", "Chunk reads that waited for their owner, restarting in place, to come back "
          "(rather than read the store).", metrics_.restart_waits);
  counter("bytes_served_peers_total", "Object bytes sent to other nodes (part of bytes_served).",
          metrics_.bytes_served_peers);
  counter("sendfile_bytes_total", "Object bytes sent from chunk files by sendfile (part of bytes_served; plain "
          "connections only, never TLS).", metrics_.sendfile_bytes);
  counter("bytes_served_local_total", "Object bytes sent over the Unix socket, to clients on this host (part of "
          "bytes_served; not paced by --egress-limit).", metrics_.bytes_served_local);
  counter("connections_refused_total", "Requests answered 503 Busy at once: the node was serving --max-connections.",
          metrics_.connections_refused);
  gauge("max_connections", "Requests served at once at most (--max-connections; a SIGHUP may change it).",
        static_cast<uint64_t>(options_.max_connections.get()));
  gauge("egress_limit_bytes", "Object bytes per second this node sends at most over TCP (--egress-limit; 0: no "
        "limit; a SIGHUP may change it).", egress_.rate());
  gauge("connections_open", "Client and peer connections open (idle keep-alive ones included).",
        metrics_.connections_open);
  counter("connections_accepted_total", "Connections accepted.", metrics_.connections_accepted);
  gauge("homed_writes", "Writes not yet uploaded that this node knows of as their object's home.",
        static_cast<uint64_t>(directory_->homed()));
  gauge("homed_entries", "Writes this node keeps as their object's home: not yet uploaded, and uploaded or "
        "deleted lately (at most 65536 of those, for 10 minutes).", static_cast<uint64_t>(directory_->entries()));
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
  counter("memory_cache_hits_total", "Chunk reads served from the chunks kept in memory (--memory-cache).", reads_->hot().hits());
  gauge("memory_cache_bytes", "Chunk bytes kept in memory (--memory-cache).", reads_->hot().bytes());
  gauge("serve_queue", "Blocking request work waiting for a serve thread.", serve_pool_ ? serve_pool_->queued() : 0);
  counter("peer_connection_waits_total", "Calls to another node that waited for one of the --peer-connections "
          "connections to it to be free.", cluster_->connection_waits());
  counter("peer_busy_total", "Peers that answered busy (at their connection cap); the chunk was asked again.",
          metrics_.peer_busy);
  counter("fan_in_redirects_total", "Nodes asking for a chunk this node was already sending that it sent to a "
          "holder instead.", metrics_.fan_in_redirects);
  counter("fan_in_fetches_total", "Chunks got from a holder another node sent this one to.", metrics_.fan_in_fetches);
  counter("fan_in_fetch_bytes_total", "Bytes got from holders.", metrics_.fan_in_fetch_bytes);
  counter("fan_in_fallbacks_total", "Holders that could not pass a chunk on (it was then got from its owner).",
          metrics_.fan_in_fallbacks);
  counter("replica_bytes_total", "Bytes of other nodes' writes copied here.", metrics_.replica_bytes);
  counter("replica_whole_total", "Copies of writes of one chunk that came in one request with their commit.",
          metrics_.replica_whole);
  counter("copies_recorded_total",
          "Copies of other nodes' writes recorded here as pending writes with the copy (this node a home of theirs), "
          "so that their origin did not announce them here.",
          metrics_.copies_recorded);
  counter("replica_takeovers_total", "Copies uploaded here because the node that took the write was gone.",
          metrics_.replica_takeovers);
  counter("copies_kept_cached_total",
          "Copies of other nodes' writes kept as cached chunks once their write was uploaded as their bytes.",
          metrics_.copies_kept_cached);
  counter("handoffs_received_total", "Writes a draining node handed to this one to upload.", metrics_.handoffs_received);
  gauge("journal_records", "Records in the write-back journal: writes taken here or copies held here, not yet "
        "durable.", journal_->size());
  gauge("journal_bytes", "Bytes of the write-back journal's log on disk (rewritten with only its live records "
        "once it holds four times their bytes and at least 1 MiB).", journal_->log_bytes());
  gauge("memory_aliases", "Uploaded writes whose chunks are read under their local version (at most 65536).",
        objects_->aliases());
  gauge("replica_objects", "Copies of other nodes' writes held here, not yet durable.", replicas_->count());
  if (!options_.etcd.empty()) {
    auto health = cluster_->MembershipHealth();
    gauge("membership_ok", "1 while this node can see and renew its membership in etcd; 0 when etcd does not answer "
          "or the lease was lost (GET /readyz says why).", health.problem.empty() ? 1 : 0);
    counter("etcd_failed_renewals_total", "Lease renewals etcd did not answer.", health.failed_renewals);
    counter("etcd_lease_losses_total", "Times this node's lease in etcd was found expired (it registered again).",
            health.lease_losses);
  }
  if (auto v = cluster_->view()) {
    gauge("cluster_epoch", "The membership epoch this node routes by.", v->epoch());
    gauge("cluster_members", "Members of the cluster as this node sees it.", v->placement().members().size());
  }
  {
    auto pending = writes_->PendingUploads("");
    int64_t oldest = 0;
    uint64_t overdue = 0;
    for (const auto& p : pending) {
      if (oldest == 0 || p.record.created_unix_ms < oldest) oldest = p.record.created_unix_ms;
      overdue += p.overdue;
    }
    uint64_t staged = writes_->staged_bytes();
    gauge("staged_bytes", "Bytes written here and not yet durable in the store (writes in progress too).", staged);
    gauge("staged_bytes_peak", "Most staged bytes at once since start.", metrics_.staged_bytes_peak);
    gauge("staged_writes", "Writes taken here and not yet durable.", writes_->staged_writes());
    gauge("staged_writes_peak", "Most writes staged at once since start (--staged-writes bounds it).",
          metrics_.staged_writes_peak);
    gauge("staged_cap_bytes", "The staged-bytes cap (--staged-cap).", options_.staged_cap);
    gauge("staged_objects", "Objects written here and not yet durable.", pending.size());
    gauge("uploads_overdue", "Objects not durable within --upload-deadline.", overdue);
    seconds("upload_lag_seconds", "gauge", "Age of the oldest write not yet durable.",
            oldest ? static_cast<double>(UnixMillis() - oldest) / 1000 : 0.0);
    gauge("upload_concurrency", "Part uploads allowed in flight at most (--upload-concurrency; SIGHUP changes it).",
          static_cast<uint64_t>(writes_->upload_concurrency()));
    gauge("upload_window", "Part uploads allowed in flight now for the most throttled account (each adapts to its "
          "429/503s).", static_cast<uint64_t>(writes_->upload_window()));
  }
  WriteAccountMetrics(out, writes_->upload_accounts());
  auto s = chunks_->stats();
  gauge("cache_bytes", "Chunk bytes on local disk.", s.bytes);
  gauge("cache_disk_bytes", "What the chunks count against --capacity: each one's bytes rounded up to the disk's block.",
        s.disk_bytes);
  gauge("cache_capacity_bytes", "--capacity.", options_.capacity);
  gauge("cache_chunks", "Chunks on local disk.", s.chunks);
  gauge("cache_pinned_bytes", "Chunk bytes not yet uploaded (not evictable).", s.pinned_bytes);
  counter("cache_evictions_total", "Chunks evicted.", s.evictions);
  counter("cache_corruptions_total", "Chunks that failed their checksum.", s.corruptions);
  counter("cache_checks_total", "Chunk payloads read from disk and checked against their checksum.", s.checks);
  return out.str();
}

}  // namespace shoal::node
