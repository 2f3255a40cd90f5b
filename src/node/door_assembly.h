#pragma once

// Staged uploads joined while their pieces arrive: S3 multipart uploads' parts and Azure
// blobs' blocks. Without it, CompleteMultipartUpload (or Put Block List) reads every staged
// piece back and writes the whole object through write-back at once: the client waits for a
// second write of every byte after its last piece. Here each piece, once staged, is appended
// to the upload's write-back write ("early write") as soon as every piece before it has
// been, so the chunks go to disk (and to the copy holders) while the client is still
// sending. Which piece comes next is known before the list is: an S3 part's number (parts 1,
// 2, 3, ...), or an Azure block's offset in the blob when its id names one (the Azure SDKs
// for Python name each block base64 of its zero-padded offset; door_azure.cc BlockOffset):
// the next block is the one at the bytes joined so far. A block with another id is never
// joined early.
//
// Complete then takes the early write, checks that what it holds is the start of the list it
// was given (the same pieces with the same ETags and sizes, and for a blob the same metadata)
// and appends the rest and Finishes it: the object is acknowledged, as before, only once
// Finish has made it durable on this node and its copies. Anything else (a list that skips a
// joined piece, a piece staged again once seen, a failed append) discards the early write,
// and the object is written from the staged pieces as before.
//
// The early write is the node's own until Complete: never visible to readers, and nothing of
// it goes to the store before Complete (BeginWrite's stream = false), so one discarded cost
// the store nothing. An upload left without
// a Complete or an Abort keeps its early write (its chunks pinned, its bytes counted against
// --staged-cap, and a drain waiting for it) for at most kIdle after its last piece; then it
// is dropped, and a later Complete writes from the staged pieces.
//
// The appends run on one thread of the assemblies' own (the joiner), not on the thread that
// staged the piece: a part's answer never waits for them. Complete waits for the joiner to
// join every staged piece that can be (work it would do itself otherwise), then appends the
// rest.
//
// Thread-safety: every method may be called from any thread at once. mu_ guards the table and
// every Assembly's fields but `writer`, which only the joiner touches while `appending` is
// set, and only the taker once the assembly is out of the table; no append, and no Writer's
// destruction, runs under mu_.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "node/door_uploads.h"
#include "node/write_back.h"

namespace shoal::node {

class DoorAssemblies {
 public:
  static constexpr std::chrono::seconds kIdle{60};

  explicit DoorAssemblies(DoorUploads* uploads);
  // Close()s.
  ~DoorAssemblies();

  // Piece `part` of `upload` is staged (its file whole): the joiner appends it, and the staged
  // pieces that follow it, to the early write of `url` through `writes` (begun with
  // upload.meta) once every piece before it is joined. `position`: where the piece goes, an S3
  // part's number or an Azure block's offset (nullopt: unknown, the piece is never joined
  // early, nor anything after it). A piece that would take the node's bytes not yet uploaded
  // past `staged_cap` is not joined (the early write is dropped rather than wait at the cap).
  // Returns at once.
  void Staged(WriteBack* writes, uint64_t staged_cap, const std::string& url, const StagedUpload& upload,
              const StagedPart& part, std::optional<uint64_t> position);

  // The write a Complete (or Put Block List) of upload `id` goes on with: its early write,
  // taken out (once every staged piece that can join has), when `usable` says the pieces it holds (in
  // order) are the first ones of the list; else a new write of `url` with `meta`, the early
  // one discarded. The caller appends the rest and Finishes it.
  struct Resumed {
    std::unique_ptr<Writer> writer;
    size_t pieces = 0;   // pieces it holds already: the list's first ones
    uint64_t bytes = 0;  // their bytes
  };
  Result<Resumed> Resume(WriteBack* writes, const std::string& id, const std::string& url, const ObjectMeta& meta,
                         const std::function<bool(const std::vector<StagedPart>&)>& usable);
  // Drops the early write of upload `id`, if any (Abort).
  void Drop(const std::string& id);

  // Drops every early write and joins no more: before the node's write-back goes away.
  void Close();

 private:
  struct Assembly {
    WriteBack* writes = nullptr;  // what the early write is begun with (from the first piece)
    uint64_t staged_cap = 0;
    std::string url;
    StagedUpload upload;
    std::unique_ptr<Writer> writer;
    std::map<uint64_t, StagedPart> waiting;  // by position: staged, not yet joined
    std::vector<StagedPart> joined;
    uint64_t next = 0;           // the position that joins next: part number, or block offset
    std::set<std::string> seen;  // every piece staged so far (part number or block id)
    bool appending = false;      // the joiner is appending to writer
    bool broken = false;         // discarded: Complete writes from the staged pieces
    std::chrono::steady_clock::time_point touched;
  };
  // What an upload's early write holds: the pieces appended, in order.
  struct Joined {
    std::unique_ptr<Writer> writer;  // nullptr when there is none
    std::vector<StagedPart> parts;
  };
  // Takes the early write of upload `id` out, once the joiner has joined every piece it can.
  Joined Take(const std::string& id);
  // The joiner: appends the pieces that can join, drops assemblies idle for kIdle, until Close.
  void Join();

  DoorUploads* const uploads_;
  std::mutex mu_;
  std::condition_variable cv_;  // a piece staged, an append ended, or closing
  std::map<std::string, std::shared_ptr<Assembly>> by_id_;  // guarded by mu_
  bool closed_ = false;                                     // guarded by mu_
  std::thread joiner_;
};

}  // namespace shoal::node
