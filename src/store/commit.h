#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/object_store.h"

namespace shoal {

// The name of a checkpoint's "complete" marker under its prefix.
inline constexpr const char* kCommitMarker = "_SHOAL_COMMITTED";

// The names (relative to a checkpoint's prefix) of `count` ranks' shards: `name_template` with
// "{rank}" replaced by 0 .. count-1, or "{rank:W}" by the rank zero-padded to W digits
// ("model-{rank:5}.pt" -> model-00003.pt). kInvalidArgument when the template names no rank,
// or count is 0.
Result<std::vector<std::string>> ShardNames(const std::string& name_template, uint32_t count);

// Writes PREFIX/_SHOAL_COMMITTED into `store`: JSON naming every object under the prefix
// (keys relative to it), with its size and ETag, as the store lists them now. With `shards`
// (names relative to the prefix, from ShardNames), the marker names exactly those, and when any
// is missing no marker is written: kNotFound naming every missing one. The caller makes sure
// everything under the prefix is durable first (a node's write-back, a copy). `prefix_url` is
// the prefix's URL (e.g. az://ckpt/run1/step100/; a missing trailing '/' is added). kNotFound
// when nothing is under the prefix. Returns the marker's JSON.
Result<std::string> WriteCommitMarker(ObjectStore& store, const ObjectUrl& prefix_url,
                                      const std::vector<std::string>* shards = nullptr);

// "a, b, c" for up to `max` names, then "and N more".
std::string JoinNames(const std::vector<std::string>& names, size_t max = 10);

// Whether a checkpoint's objects, as listed now, are the ones its marker names: Ok when every
// object the marker (`marker_json`, the text WriteCommitMarker wrote) lists is in `listed`
// (keys relative to the prefix) with the size and ETag the marker recorded; else
// kPreconditionFailed saying which object is missing or changed, and kCorruption when the marker
// is not such JSON. Objects in `listed` that the marker does not name are ignored.
Status VerifyCommitMarker(const std::string& marker_json, const std::vector<ObjectInfo>& listed);

}  // namespace shoal
