#pragma once

// What the object stores that speak HTTP (Azure, S3, the cache node's client) share on top of
// the net layer's client.

#include "net/http_client.h"
#include "store/object_store.h"

namespace shoal {

// The bytes a read asks for, as the net layer's ranged GET takes them.
inline http::ByteRange RangeOf(const ReadOptions& opts) {
  static_assert(ReadOptions::kToEnd == http::ByteRange::kToEnd, "both mean: to the end");
  return http::ByteRange{opts.offset, opts.length};
}

}  // namespace shoal
