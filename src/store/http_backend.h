#pragma once

// What the object stores that speak HTTP (Azure, S3, the cache node's client) share on top of
// the net layer's client.

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "net/http_client.h"
#include "store/object_store.h"

namespace pugi {
class xml_node;
}

namespace shoal {

// The retries of a listing: `policy`, but at most 3 attempts when the caller can do without
// the store (ListOptions::allow_incomplete), so a listing with the store down answers in a
// fraction of a second instead of the full back-off.
inline net::RetryPolicy QuickerWhenIncomplete(net::RetryPolicy policy, const ListOptions& opts) {
  if (opts.allow_incomplete) policy.max_attempts = std::min(policy.max_attempts, 3);
  return policy;
}

// The bytes a read asks for, as the net layer's ranged GET takes them.
inline http::ByteRange RangeOf(const ReadOptions& opts) {
  static_assert(ReadOptions::kToEnd == http::ByteRange::kToEnd, "both mean: to the end");
  return http::ByteRange{opts.offset, opts.length};
}

// The number a store's XML answer gives in `node`'s child `field` (a listed size, a part
// number); kIOError "WHAT FIELD is 'TEXT', not a number" for anything else (`what` says
// whose: "ListObjectsV2 of B: K's").
Result<uint64_t> XmlNumber(const pugi::xml_node& node, const char* field, const std::string& what);

// The code and message of a store's XML error answer, <Error><Code/><Message/></Error> (S3,
// Azure), for http::ErrorFormat::describe. The code comes from the header `code_header` when
// the store sends it there (Azure's x-ms-error-code, on HEAD answers too, which have no body).
std::string DescribeXmlError(const http::Response& resp, const std::string& code_header = "");

// The metadata a HEAD answer carries: its content headers, and user metadata from the headers
// named `user_prefix` + name ("x-ms-meta-", "x-amz-meta-"), names lower-cased. A missing
// Content-Type reads as kDefaultContentType.
std::shared_ptr<const ObjectMeta> MetaFromHeaders(const http::Response& resp, std::string_view user_prefix);

// What a GET's first answer said of object `key` (ReadOptions::answered): its size, ETag,
// last-modified and metadata (MetaFromHeaders); an empty ETag when it named none.
ObjectInfo InfoOfAnswer(const std::string& key, const http::Answered& answered, std::string_view user_prefix);

}  // namespace shoal
