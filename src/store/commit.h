#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
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

// Whether `key` (or a URL) names a commit marker (its last part is _SHOAL_COMMITTED).
bool IsCommitMarker(std::string_view key);

// What a marker's entry's ETag is now: `etag` itself, or what it became. For a write not yet
// in the store, named by its local version (a cache node's "local-..."): the store's ETag once
// it is uploaded; kUnavailable while it is still to be uploaded; kNotFound when that write is
// not known (replaced, deleted, or forgotten). `key` is relative to the marker's prefix.
using VersionResolver = std::function<Result<std::string>(const std::string& key, const std::string& etag)>;

// The text of PREFIX/_SHOAL_COMMITTED for `objects` (keys relative to the prefix; an entry
// named _SHOAL_COMMITTED is left out), as WriteCommitMarker writes it; `where` is the
// prefix's URL. With `shards`, exactly those, or kNotFound naming the missing ones.
Result<std::string> CommitMarkerText(const std::string& where, const std::vector<ObjectInfo>& objects,
                                     const std::vector<std::string>* shards = nullptr);

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
// With `resolve`, an entry whose ETag differs from the listed one still matches when
// resolve(key, its ETag) names the listed ETag (a marker written through a cache node before
// the upload of its objects).
Status VerifyCommitMarker(const std::string& marker_json, const std::vector<ObjectInfo>& listed,
                          const VersionResolver& resolve = nullptr);

// `marker_json` with each entry's ETag replaced by resolve(key, ETag), so that it names what
// the store holds (a cache node's marker, as it is uploaded): kUnavailable (the resolver's)
// while an entry's write is still to be uploaded; an entry whose write is not known
// (kNotFound) keeps its ETag, so the marker does not verify against the store. kCorruption
// when it is not a marker.
Result<std::string> ResolveCommitMarker(const std::string& marker_json, const VersionResolver& resolve);

}  // namespace shoal
