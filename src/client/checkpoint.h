#pragma once

// Checkpoints as training jobs write and restart from them: a step is a prefix (PREFIX/step100/)
// holding the ranks' files and, once complete, its _SHOAL_COMMITTED marker (store/commit.h).
// Commit waits for every rank's shard before writing the marker; Latest finds the newest step
// a restarted job can load whole. Both go through a Client: with a cache node, every listing,
// stat and read is the node's (the store's credentials are not needed here).
// The functions are thread-safe as far as Client is (every Client call is).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace shoal::client {

// What `commit --expect N` waits for: N shards named by `name` ({rank} or {rank:W} in it;
// store/commit.h ShardNames). count 0: no shards, every object under the prefix is committed.
struct ShardSpec {
  uint32_t count = 0;
  std::string name = "rank-{rank}";
};

// Progress of a commit's wait: shards present of those expected (and up to a few missing), or
// writes still to upload.
struct CommitProgress {
  uint32_t shards = 0, shards_present = 0;
  std::vector<std::string> missing;  // names relative to the prefix
  std::string pending;               // DescribePending of writes not yet durable; "" when none
};

// Writes PREFIX/_SHOAL_COMMITTED: first waits for every shard of `shards` to be under the prefix
// (as the node lists it, writes not yet uploaded included), then writes the marker naming
// exactly the shards (or, without shards, everything). Through a cache node the marker is
// written as the shards are: acknowledged once on the cluster's nodes, readable through every
// member at once, and uploaded after every object it names (node/node.h Node::Commit); with
// `durable`, the commit first waits for everything under the prefix to be in the store, and
// then for the marker too. Without a node the marker goes to the store. `timeout_s` bounds the
// waits together (0: no limit); past it kUnavailable naming the missing shards (or what is
// still uploading), and no marker. `each_poll` is called at every poll. Returns the marker's
// JSON.
Result<std::string> CommitCheckpoint(Client& client, const std::string& prefix_url, const ShardSpec& shards,
                                     int timeout_s,
                                     const std::function<void(const CommitProgress&)>& each_poll = nullptr,
                                     bool durable = false);

struct SkippedStep {
  std::string url;     // the step's prefix
  std::string reason;  // "no _SHOAL_COMMITTED marker", "rank-2 changed after the commit (...)"
};
struct LatestCheckpoint {
  bool found = false;
  std::string url;           // the newest complete step's prefix URL (ends in '/')
  std::string marker;        // its marker's JSON
  std::vector<SkippedStep> skipped;  // newer steps passed over, newest first, with why
  size_t steps = 0;          // steps (prefixes) under the checkpoint prefix
  // Set (why) when the store could not be listed and only what the cluster holds was looked
  // at: a step already uploaded whole may then be missing or passed over.
  std::string incomplete;
};

// The newest step under `prefix_url` whose marker exists and whose objects are all still the
// ones the marker names (size and ETag; through a node, an object the marker names by its
// local version matches the store's ETag that version was uploaded as). Steps are the prefixes one level below, ordered by the
// last number in their name (step100 after step99), then by name. found is false when no step
// is complete (an error is a listing or read that failed, not an incomplete step).
Result<LatestCheckpoint> FindLatestCheckpoint(Client& client, const std::string& prefix_url);

// Orders step names newest first: by the last run of digits in each (as a number), then by name.
bool NewerStep(const std::string& a, const std::string& b);

}  // namespace shoal::client
