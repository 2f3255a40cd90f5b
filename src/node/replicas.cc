#include "node/replicas.h"

#include <pthread.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/strings.h"
#include "net/node_protocol.h"
#include "store/commit.h"

namespace shoal::node {

using proto::ReplicaChunkPath;

Replicas::Replicas(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks,
                   engine::Journal* journal, ObjectCatalog* objects, ClusterRouting* cluster, WriteBack* writes)
    : options_(options),
      metrics_(metrics),
      chunks_(chunks),
      journal_(journal),
      objects_(objects),
      cluster_(cluster),
      writes_(writes) {}

Replicas::~Replicas() {
  closing_ = true;
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    stopping_ = true;
  }
  copies_cv_.notify_all();
  if (drain_thread_.joinable()) drain_thread_.join();
  if (watcher_.joinable()) watcher_.join();
}

void Replicas::Start() {
  watcher_ = std::thread([this] { Watch(); });
  pthread_setname_np(watcher_.native_handle(), "shoald-replica");
}

void Replicas::Restore(const engine::UploadRecord& r) {
  for (const auto& key : WriteChunkKeys(r)) chunks_->Pin(key, true).IgnoreError();
  writes_->directory().Remember(WriteDirectory::PendingOf(r, {r.origin, options_.node_id}, options_.node_id));
  std::lock_guard<std::mutex> lock(copies_mu_);
  copies_[r.id] = Copy{r, {}};
}

size_t Replicas::count() {
  std::lock_guard<std::mutex> lock(copies_mu_);
  return copies_.size();
}

Status Replicas::PutChunk(const std::string& id, const std::string& url, uint64_t index, std::string_view data) {
  return chunks_->Put(engine::ChunkKey{url, LocalVersion(id), index}, data, /*pinned=*/true)
      .WithContext("keeping a copy of " + url);
}

Status Replicas::Commit(const engine::UploadRecord& r, bool adopt, bool* homed) {
  if (writes_->draining()) return Status::Unavailable("this node is draining (leaving the cluster): send the copy elsewhere");
  std::vector<engine::ChunkKey> keys = WriteChunkKeys(r);
  for (const auto& key : keys) {
    if (!chunks_->Contains(key)) {
      return Status::PreconditionFailed("the copy of " + r.url + " lacks chunk " + std::to_string(key.index));
    }
  }
  SHOAL_RETURN_IF_ERROR(chunks_->Sync(keys).WithContext("keeping a copy of " + r.url));
  std::lock_guard<std::mutex> id_lock(IdLock(r.id));  // a copy's record changes only under it
  if (adopt) {
    engine::UploadRecord own = r;
    own.origin.clear();
    own.origin_incarnation.clear();
    own.replicas.clear();
    SHOAL_RETURN_IF_ERROR(journal_->Put(own).WithContext("journaling " + r.url));
    {
      std::lock_guard<std::mutex> lock(copies_mu_);
      copies_.erase(r.id);
    }
    metrics_->handoffs_received++;
    writes_->Own(own);
    return Status::Ok();
  }
  SHOAL_RETURN_IF_ERROR(journal_->Put(r).WithContext("journaling a copy of " + r.url));
  // Announced by its origin (recorded here when this node is a home); kept to announce again
  // should the object's homes change, or one restart. The origin knows it: not told. The other
  // home is told from here too at the next refresh, although the origin told it before it
  // acknowledged: the origin skips a home it sees as down, and may die before it tells it
  // later; a copy handed here by a drain was never announced with this node as its holder.
  const bool recorded = writes_->directory().RecordCopy(r);
  if (recorded) metrics_->copies_recorded++;
  if (homed) *homed = recorded;
  std::vector<std::string> told{r.origin};
  if (recorded) told.push_back(options_.node_id);
  writes_->directory().Remember(WriteDirectory::PendingOf(r, {r.origin, options_.node_id}, options_.node_id), told);
  metrics_->replica_bytes += r.size;
  std::lock_guard<std::mutex> lock(copies_mu_);
  copies_[r.id] = Copy{r, {}};
  return Status::Ok();
}

void Replicas::Drop(const std::string& id, const std::string& url, uint64_t chunks, const std::string& stored,
                    bool held_only) {
  std::lock_guard<std::mutex> id_lock(IdLock(id));
  bool held = false;
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    held = copies_.count(id) > 0;
  }
  if (held_only && !held) return;
  auto r = journal_->Get(id);
  if (r.ok() && r->origin.empty()) return;  // taken over or adopted: it is this node's write now
  // A copy whose write went up as these bytes: kept as a cache of the stored version, as the
  // origin keeps its own chunks (the alias first, so a reader never finds neither).
  const bool keep = !stored.empty() && !IsCommitMarker(url) && held && r.ok() && r->url == url &&
                    ChunkCount(r->size, r->chunk_size) == chunks;
  if (keep) {
    objects_->AddAlias(url, stored, LocalVersion(id));
    metrics_->copies_kept_cached++;
  }
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    copies_.erase(id);
  }
  writes_->directory().Settle(id);
  writes_->directory().RetractCopy(id, url);
  if (r.ok()) journal_->Remove(id).IgnoreError();
  // Unpinned (kept) or gone, with chunks of a copy never completed (its write failed midway).
  for (const auto& key : WriteChunkKeys(url, id, chunks)) {
    (keep ? chunks_->Pin(key, false) : chunks_->Remove(key)).IgnoreError();
  }
}

uint64_t Replicas::CopiesUnder(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(copies_mu_);
  uint64_t n = 0;
  for (const auto& [id, c] : copies_) n += StartsWith(c.record.url, prefix);
  return n;
}

std::vector<engine::UploadRecord> Replicas::HeldUnder(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(copies_mu_);
  std::vector<engine::UploadRecord> out;
  for (const auto& [id, c] : copies_) {
    if (StartsWith(c.record.url, prefix)) out.push_back(c.record);
  }
  return out;
}

Status Replicas::Adopt(const std::string& id) {
  Status st = TakeOver(id, "a draining node handed over its write");
  if (st.ok()) metrics_->handoffs_received++;
  return st;
}

Status Replicas::TakeOver(const std::string& id, const std::string& why) {
  engine::UploadRecord r;
  {
    std::lock_guard<std::mutex> id_lock(IdLock(id));
    {
      std::lock_guard<std::mutex> lock(copies_mu_);
      auto it = copies_.find(id);
      if (it == copies_.end()) return Status::NotFound("no copy of write " + id + " is held here");
      if (it->second.taking_over) return Status::Ok();  // another caller is at it
      r = it->second.record;
    }
    Logf(LogLevel::kInfo, "%s (%s from node %s): uploading this node's copy\n", why.c_str(), r.url.c_str(),
                 r.origin.c_str());
    r.origin.clear();
    r.origin_incarnation.clear();
    SHOAL_RETURN_IF_ERROR(journal_->Put(r).WithContext("taking over " + r.url));  // retried next round
    std::lock_guard<std::mutex> lock(copies_mu_);
    auto it = copies_.find(id);
    if (it != copies_.end()) it->second.taking_over = true;
  }
  // Listed as this node's own write before it stops being listed as a copy, so a `flush` or a
  // listing that asks meanwhile never finds it in neither (a flush said "durable" so).
  writes_->Own(r);
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    copies_.erase(id);
  }
  // Counted once done: whoever sees the count sees the write among this node's own, pending.
  metrics_->replica_takeovers++;
  return Status::Ok();
}

void Replicas::Watch() {
  std::unique_lock<std::mutex> lock(copies_mu_);
  while (!stopping_) {
    copies_cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) return;
    lock.unlock();
    writes_->directory().Refresh();  // a new epoch may have moved objects' homes
    lock.lock();
    std::vector<Copy> copies;
    for (const auto& [id, c] : copies_) copies.push_back(c);
    lock.unlock();
    auto v = cluster_->view();
    auto now = std::chrono::steady_clock::now();
    std::map<std::string, Status> unreachable;  // this round: origins that did not answer
    for (auto& c : copies) {
      if (closing_) break;
      const std::string& origin = c.record.origin;
      std::string endpoint = v ? v->EndpointOf(origin) : "";
      std::string answer;
      Status st = unreachable.count(origin) ? unreachable[origin]
                  : endpoint.empty()        ? Status::Unavailable("not a member")
                                            : cluster_->Call(cluster::Peer{{origin, 0, ""}, endpoint}, "GET",
                                                       proto::Target(proto::kReplicaStatePath, {{proto::kIdParam, c.record.id}}), {}, &answer,
                                                       std::chrono::seconds(2));
      auto j = nlohmann::json::parse(answer, nullptr, false);
      std::string state = st.ok() && j.is_object() ? j.value("state", "") : "";
      if (state == "durable") {
        Drop(c.record.id, c.record.url, ChunkCount(c.record.size, c.record.chunk_size), "", true);
      } else if (state == "unknown") {
        if (!c.record.origin_incarnation.empty() && j.value("incarnation", "") == c.record.origin_incarnation) {
          // Its disk is intact and the write is not on it: never acknowledged, uploaded (its
          // drop, which keeps the chunks, came or is lost), or handed off.
          Drop(c.record.id, c.record.url, ChunkCount(c.record.size, c.record.chunk_size), "", true);
        } else {
          TakeOver(c.record.id, "node " + origin + " lost its disk").IgnoreError();
        }
      } else if (!st.ok()) {
        unreachable.emplace(origin, st);
        bool gone = false;
        {
          std::lock_guard<std::mutex> relock(copies_mu_);
          auto it = copies_.find(c.record.id);
          if (it == copies_.end()) continue;
          if (it->second.origin_down_since == std::chrono::steady_clock::time_point{}) {
            it->second.origin_down_since = now;
          } else {
            gone = now - it->second.origin_down_since >= options_.down_grace;
          }
        }
        if (gone) TakeOver(c.record.id, "node " + origin + " is gone with a write not yet uploaded").IgnoreError();
      } else {
        std::lock_guard<std::mutex> relock(copies_mu_);
        auto it = copies_.find(c.record.id);
        if (it != copies_.end()) it->second.origin_down_since = {};
      }
    }
    lock.lock();
  }
}

Status Replicas::StartDrain() {
  auto v = cluster_->view();
  if (!v) return Status::InvalidArgument("this node is not in a cluster: `shoal flush --wait` is how it empties");
  if (v->placement().members().size() < 2 && !writes_->draining()) {
    return Status::PreconditionFailed("the last member of a cluster has nobody to hand its writes to: "
                                      "run `shoal flush --wait` and stop it");
  }
  std::lock_guard<std::mutex> lock(drain_mu_);
  if (drain_.state == "draining") return Status::Ok();
  if (drain_thread_.joinable()) drain_thread_.join();
  drain_ = DrainState{};
  drain_.state = "draining";
  writes_->SetDraining();
  drain_thread_ = std::thread([this] { Drain(); });
  return Status::Ok();
}

Replicas::DrainState Replicas::GetDrainState() {
  std::lock_guard<std::mutex> lock(drain_mu_);
  return drain_;
}

Status Replicas::SendWrite(const cluster::Peer& peer, const engine::UploadRecord& r, bool adopt) {
  for (const auto& key : WriteChunkKeys(r)) {
    SHOAL_ASSIGN_OR_RETURN(std::string data, chunks_->Get(key));
    SHOAL_RETURN_IF_ERROR(cluster_->Call(peer, "PUT", ReplicaChunkPath(r.id, r.url, key.index), data));
  }
  return cluster_->Call(peer, "POST", ReplicaCommitPath(r, adopt ? options_.node_id : r.origin, r.origin_incarnation, adopt),
                        proto::ReplicaCommitBody(r.meta));
}

void Replicas::Drain() {
  auto set = [&](auto&& change) {
    std::lock_guard<std::mutex> lock(drain_mu_);
    change(drain_);
  };
  auto fail = [&](const Status& st) {
    Logf(LogLevel::kWarn, "drain failed: %s\n", st.ToString().c_str());
    set([&](DrainState& d) {
      d.state = "failed";
      d.error = st.message() + " (the node has left the cluster; run `shoal drain` again to hand off the rest)";
    });
  };
  Status st = cluster_->Leave();
  if (!st.ok()) return fail(st);
  Logf(LogLevel::kInfo, "left the cluster; handing off what is not yet uploaded\n");
  // Until nothing is left: writes that were in progress when the drain began end meanwhile.
  for (int round = 0;; round++) {
    std::vector<engine::UploadRecord> todo;
    for (const auto& r : journal_->List()) {
      if (r.state == engine::UploadRecord::State::kStaged) todo.push_back(r);
    }
    set([&](DrainState& d) { d.left = todo.size(); });
    if (todo.empty() && writes_->writers() == 0) break;
    if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto v = cluster_->view();
    for (const auto& listed : todo) {
      if (closing_) return fail(Status::Unavailable("shoald is stopping"));
      // Take it out of the upload queue first, then look again: it may have become durable.
      bool own = listed.origin.empty();
      uint64_t uploaded = own ? writes_->CancelUpload(listed.id) : 0;
      auto now = journal_->Get(listed.id);
      if (!now.ok() || now->state != engine::UploadRecord::State::kStaged) continue;
      const engine::UploadRecord& r = *now;
      // Own writes: to a holder of the copy (it has every chunk), else to the object's nodes
      // in the new epoch. Copies held for others: to another node (never back to the origin).
      struct Target {
        cluster::Peer peer;
        bool holder;
      };
      std::vector<Target> targets;
      if (own) {
        for (const auto& holder : r.replicas) {
          std::string endpoint = v->EndpointOf(holder);
          if (!endpoint.empty()) targets.push_back({cluster::Peer{{holder, 0, ""}, endpoint}, true});
        }
      }
      for (const auto& p : v->RouteOf(r.url, 0, static_cast<uint32_t>(v->placement().members().size())).replicas) {
        if (p.member.id != options_.node_id && p.member.id != r.origin) targets.push_back({p, false});
      }
      Status done = Status::Unavailable("no node to hand " + r.url + " to");
      std::string taker;
      for (const auto& t : targets) {
        done = t.holder ? cluster_->Call(t.peer, "POST", proto::Target(proto::kReplicaAdoptPath, {{proto::kIdParam, r.id}})) : SendWrite(t.peer, r, own);
        taker = t.peer.member.id;
        if (done.ok()) break;
        Logf(LogLevel::kInfo, "drain: %s to %s: %s\n", r.url.c_str(), t.peer.member.id.c_str(),
                     done.ToString().c_str());
      }
      if (!done.ok()) {
        if (own) writes_->Requeue(r);  // still ours: upload it after all
        return fail(done);
      }
      if (own) {
        writes_->Forget(r, uploaded);
        writes_->DropCopiesOf(r, taker);  // other holders of copies: theirs is not needed now
        set([&](DrainState& d) {
          d.writes++;
          d.write_bytes += r.size;
        });
      } else {
        Drop(r.id, r.url, ChunkCount(r.size, r.chunk_size));
        set([&](DrainState& d) { d.copies++; });
      }
    }
  }
  set([&](DrainState& d) {
    d.state = "done";
    Logf(LogLevel::kInfo, "drained: %llu writes (%s) and %llu copies handed off; this node can be stopped\n",
                 static_cast<unsigned long long>(d.writes), FormatBytes(d.write_bytes).c_str(),
                 static_cast<unsigned long long>(d.copies));
  });
}

}  // namespace shoal::node
