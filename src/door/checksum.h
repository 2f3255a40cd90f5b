#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace shoal::door {

// An incremental checksum of a body, for x-amz-checksum-* (headers and aws-chunked trailers),
// Content-MD5 and x-amz-content-sha256. Not thread-safe (one per request).
class Checksum {
 public:
  // `name` is the header's algorithm: "crc32", "crc32c", "crc64nvme", "sha1", "sha256" or
  // "md5". nullptr for anything else.
  static std::unique_ptr<Checksum> Make(std::string_view name);
  virtual ~Checksum() = default;
  virtual void Update(std::string_view data) = 0;
  // The raw digest (big-endian for the CRCs), as the headers carry it base64-encoded.
  virtual std::string Final() = 0;
};

}  // namespace shoal::door
