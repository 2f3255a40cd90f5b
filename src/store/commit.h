#pragma once

#include <string>

#include "common/status.h"
#include "store/object_store.h"

namespace shoal {

// The name of a checkpoint's "complete" marker under its prefix.
inline constexpr const char* kCommitMarker = "_SHOAL_COMMITTED";

// Writes PREFIX/_SHOAL_COMMITTED into `store`: JSON naming every object under the prefix
// (keys relative to it), with its size and ETag, as the store lists them now. The caller
// makes sure everything under the prefix is durable first (a node's write-back, a copy).
// `prefix_url` is the prefix's URL (e.g. az://ckpt/run1/step100/; a missing trailing '/'
// is added). kNotFound when nothing is under the prefix. Returns the marker's JSON.
Result<std::string> WriteCommitMarker(ObjectStore& store, const ObjectUrl& prefix_url);

}  // namespace shoal
