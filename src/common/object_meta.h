#pragma once

// What an object carries besides its bytes and that every store keeps with it: the content
// headers Azure Blob and S3 both store, and the user's metadata (Azure's x-ms-meta-*, S3's
// x-amz-meta-*). In common/ so that the stores, the node's journal and its protocol share one
// definition and one set of rules.

#include <cstddef>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace shoal {

// What a store answers for an object written without a content type (Azure and S3 default to
// it; the local directory answers it too), so every backend reads back alike.
inline constexpr std::string_view kDefaultContentType = "application/octet-stream";

// Room for user metadata: S3's limit (names without x-amz-meta- plus values, in bytes), the
// smaller of the two APIs' (Azure allows 8 KiB).
inline constexpr size_t kMaxUserMetaBytes = 2048;

// The user-metadata name under which a cache node stores, with each object it uploads, the
// stamp of the write that object is (node/uploader.h: WriteStamp), so that no node ever
// commits an older write of an object over a newer one. Reads through the stores' Head give
// it as ObjectInfo::write_stamp, never among the user's metadata; a user's own value under
// this name is replaced by the node's. Validate keeps kWriteStampMetaBytes free for it.
inline constexpr std::string_view kWriteStampMeta = "shoal_write";
inline constexpr size_t kWriteStampMetaBytes = 64;

struct ObjectMeta {
  // The content headers; empty means not set.
  std::string content_type;
  std::string content_encoding;
  std::string content_language;
  std::string content_disposition;
  std::string cache_control;
  // User metadata: name -> value. Names are lower-case (S3 folds them, Azure compares them
  // without case). Content-MD5 is not here: S3 keeps none (it only checks a body against it)
  // and Azure computes its own on Put Blob.
  std::map<std::string, std::string> user;

  bool empty() const;
  bool operator==(const ObjectMeta&) const = default;

  // Checks that both APIs can hold this metadata byte-exact, before any I/O:
  //  - user names are [a-z_][a-z0-9_]* and no C# keyword (Azure wants C# identifiers; S3 any
  //    header token, folded to lower case), so `my-key` and `Key` are refused: a name one API
  //    cannot hold is never renamed or dropped in silence;
  //  - every value is printable ASCII (0x20-0x7E), not empty (an empty header is not sent),
  //    without leading or trailing spaces (HTTP trims them);
  //  - user names and values together take at most kMaxUserMetaBytes, less the
  //    kWriteStampMetaBytes kept for kWriteStampMeta (when the user's metadata does not
  //    already hold it).
  // kInvalidArgument naming the field and the rule otherwise.
  Status Validate() const;
};

// One content header and the field that holds it, for code that maps every field to its
// header (the stores, the node's protocol, the journal).
struct ContentField {
  std::string_view header;  // as sent over HTTP: "Content-Type"
  std::string_view azure;   // Azure's request header that sets it: "x-ms-blob-content-type"
  std::string_view name;    // a plain lower-case name for records and files: "content_type"
  std::string ObjectMeta::*member;
};
inline constexpr ContentField kContentFields[] = {
    {"Content-Type", "x-ms-blob-content-type", "content_type", &ObjectMeta::content_type},
    {"Content-Encoding", "x-ms-blob-content-encoding", "content_encoding", &ObjectMeta::content_encoding},
    {"Content-Language", "x-ms-blob-content-language", "content_language", &ObjectMeta::content_language},
    {"Content-Disposition", "x-ms-blob-content-disposition", "content_disposition",
     &ObjectMeta::content_disposition},
    {"Cache-Control", "x-ms-blob-cache-control", "cache_control", &ObjectMeta::cache_control},
};

// As JSON (the journal's records, the node's replica commits): {"content_type": ..., "user":
// {name: value}}, set fields only. from_json throws nlohmann's exceptions on a wrong type, as
// the library's conversions do; it does not validate (records hold what was validated).
void to_json(nlohmann::json& j, const ObjectMeta& meta);
void from_json(const nlohmann::json& j, ObjectMeta& meta);
// The JSON form, for messages and test failures.
std::ostream& operator<<(std::ostream& os, const ObjectMeta& meta);

// The HTTP headers that carry `meta` in one API: each content field set under its
// `header_of` name (&ContentField::header, or ::azure for Azure's writes), with
// kDefaultContentType when it names no content type, then `user_prefix` + name per user entry
// ("x-amz-meta-", "x-ms-meta-", "X-Shoal-Meta-").
std::vector<std::pair<std::string, std::string>> MetaHeaders(const ObjectMeta& meta,
                                                             std::string_view ContentField::*header_of,
                                                             std::string_view user_prefix);

// Whether `name` may name user metadata (the first rule of ObjectMeta::Validate).
bool ValidUserMetaName(std::string_view name);

}  // namespace shoal
