#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "engine/chunk_store.h"
#include "engine/journal.h"
#include "node/metrics.h"
#include "node/options.h"
#include "node/routing.h"
#include "node/write_back.h"

namespace shoal::node {

// Copies and drain: the copies this node holds of other nodes' writes (replicated
// write-back), and handing everything off when the node leaves the cluster.
//
// A copy's chunks arrive one by one (PutChunk), then Commit fsyncs and journals it. A watcher
// thread asks each copy's origin about its write every half second: "pending" keeps the copy;
// "unknown" under the origin's incarnation of the time drops it (durable, never acknowledged,
// or handed off), under another one (the origin lost its disk) takes it over; an origin
// unreachable for --down-grace has its copy taken over: uploaded here as this node's own write
// (WriteBack::Own).
//
// Drain (`shoal drain`): leaves the membership, then hands every own write not yet uploaded to
// a node that stays (its copy's holder, else the object's new owner) and every copy held here
// to another node, on a thread of its own.
//
// Thread-safety: every method may be called from any thread. A copy's journal record changes
// only under its id's lock (IdLock: one of 64 stripes), taken before copies_mu_, which guards
// the map of copies and is never held across the journal: copies committed at once share the
// journal's syncs. drain_mu_ guards the drain's state. No other node is called under any of
// them. The destructor stops the watcher and the drain and joins them.
class Replicas {
 public:
  Replicas(const NodeOptions& options, NodeMetrics* metrics, engine::ChunkStore* chunks, engine::Journal* journal,
           ObjectCatalog* objects, ClusterRouting* cluster, WriteBack* writes);
  ~Replicas();
  // Starts the watcher (after Restore).
  void Start();

  // A copy found in the journal at start: its chunks pinned again, watched.
  void Restore(const engine::UploadRecord& r);
  // Chunk `index` of write `id` (of `url`) taken by another node.
  Status PutChunk(const std::string& id, const std::string& url, uint64_t index, std::string_view data);
  // The whole copy `r` (r.origin names the node that took the write): checked complete,
  // fsynced and journaled; when this node is one of the object's homes, the write is
  // recorded as pending there too (WriteDirectory::RecordCopy; *homed = true). `adopt`: not a
  // copy but a write handed off by a draining node, which this node uploads.
  Status Commit(const engine::UploadRecord& r, bool adopt = false, bool* homed = nullptr);
  // A draining origin hands this node the write its copy is of: the copy becomes this node's
  // own write to upload. kNotFound if no such copy is held here.
  Status Adopt(const std::string& id);
  // The origin made the write durable, or abandoned it: the copy (`chunks` chunks of `url`)
  // is no longer a copy. With `stored` (the ETag the store holds the write's bytes as), a
  // whole copy's chunks stay, unpinned, as cached chunks of that version (ObjectCatalog's
  // alias): a reader of the object through this node, or sent here as their owner, costs the
  // store nothing. Else they go, as do chunks of a copy never completed; with `held_only`,
  // only those of a copy still held (the watcher's: a copy dropped and kept meanwhile stays).
  // An entry this node made as a home with the copy (WriteDirectory::RecordCopy), that no
  // announcement changed since, goes with it (RetractCopy: the write was never acknowledged,
  // or its end is announced elsewhere).
  void Drop(const std::string& id, const std::string& url, uint64_t chunks, const std::string& stored = "",
            bool held_only = false);
  // Copies held here of writes under `prefix` (not yet durable anywhere).
  uint64_t CopiesUnder(const std::string& prefix);
  // The records of those copies (each names its origin).
  std::vector<engine::UploadRecord> HeldUnder(const std::string& prefix);
  size_t count();

  Status StartDrain();
  struct DrainState {
    std::string state;  // "", "draining", "done" or "failed"
    uint64_t writes = 0, write_bytes = 0;  // own writes handed off
    uint64_t copies = 0;                   // copies moved to another holder
    uint64_t left = 0;                     // writes and copies still to go
    std::string error;
  };
  DrainState GetDrainState();

 private:
  struct Copy {
    engine::UploadRecord record;
    std::chrono::steady_clock::time_point origin_down_since{};  // zero while it answers
    bool taking_over = false;  // TakeOver is making it this node's own write
  };
  void Watch();
  Status TakeOver(const std::string& id, const std::string& why);
  void Drain();
  // Sends write `r`'s chunks to `peer` and completes it there (a copy, or `adopt`ed).
  Status SendWrite(const cluster::Peer& peer, const engine::UploadRecord& r, bool adopt);

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  engine::ChunkStore* chunks_;
  engine::Journal* journal_;
  ObjectCatalog* objects_;
  ClusterRouting* cluster_;
  WriteBack* writes_;
  std::atomic<bool> closing_{false};  // the destructor has begun: a drain stops between hand-offs
  // The lock of a copy's journal record (Commit, Drop, TakeOver), taken before copies_mu_.
  std::mutex& IdLock(const std::string& id) { return id_mu_[std::hash<std::string>{}(id) % id_mu_.size()]; }
  std::array<std::mutex, 64> id_mu_;
  std::mutex copies_mu_;
  std::map<std::string, Copy> copies_;  // write id -> copy held for another node; guarded
  std::condition_variable copies_cv_;
  bool stopping_ = false;  // guarded by copies_mu_
  std::thread watcher_;
  std::mutex drain_mu_;
  DrainState drain_;  // guarded by drain_mu_
  std::thread drain_thread_;
};

}  // namespace shoal::node
