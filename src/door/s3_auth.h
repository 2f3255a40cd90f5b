#pragma once

// S3 Signature Version 4, verified as S3 does it, against the door's own keys.
//
// How a server uses it, per request:
//   1. Fill a RequestView from the parsed request line and headers (before the body).
//   2. auto p = VerifyS3(view, credentials, options, time(nullptr));
//      if (!p.ok()) -> answer p.error().http_status() with RenderS3Error(p.error(), ...).
//   3. Map the path to bucket and key, then AuthorizeS3(*p, bucket, key, Access::kRead or
//      kWrite); an error is AccessDenied.
//   4. For a request with a body: S3BodyDecoder body(*p); feed every slice of the raw body as
//      it arrives (body.Feed(slice, &payload)) and write `payload` to staging; at the end
//      body.Finish(). Only when every Feed and Finish returned no error may the data be
//      committed: until then it is unverified (a bad chunk signature or hash is found only
//      after its bytes were handed out). The decoder handles every x-amz-content-sha256 mode,
//      so the server never looks at it.
// Nothing here blocks or does I/O; everything is thread-safe (no shared state).

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "door/checksum.h"
#include "door/credentials.h"
#include "door/request.h"

namespace shoal::door {

// The error codes of S3 that authentication and body checks answer with.
enum class S3ErrorCode : uint8_t {
  kAccessDenied,                      // 403: no signature, out of scope, presigned URL expired
  kAuthorizationHeaderMalformed,      // 400: Authorization or its credential scope malformed
  kAuthorizationQueryParametersError, // 400: a presigned URL's X-Amz-* parameters malformed
  kBadDigest,                         // 400: Content-MD5 or x-amz-checksum-* does not match
  kIncompleteBody,                    // 400: the body ended early (or its decoded length differs)
  kInvalidAccessKeyId,                // 403: no such key (or it is not an S3 key)
  kInvalidArgument,                   // 400: unsupported algorithm or payload mode, bad chunking
  kMissingSecurityHeader,             // 400: x-amz-content-sha256, x-amz-date or a length missing
  kRequestTimeTooSkewed,              // 403: x-amz-date more than the skew window from now
  kSignatureDoesNotMatch,             // 403: the signature (or a chunk's) is wrong
  kXAmzContentSHA256Mismatch,         // 400: the body's SHA-256 is not the declared one
};

struct S3Error {
  S3ErrorCode code;
  std::string message;
  // For kSignatureDoesNotMatch, what the door signed (S3 returns both, to help a client find
  // its mistake; neither contains a secret).
  std::string string_to_sign;
  std::string canonical_request;

  const char* name() const;  // "SignatureDoesNotMatch"
  int http_status() const;   // 403
};

// S3's XML error body: <Error><Code/><Message/><Resource/><RequestId/></Error> (and
// StringToSign/CanonicalRequest when set).
std::string RenderS3Error(const S3Error& error, std::string_view resource,
                          std::string_view request_id);

// What x-amz-content-sha256 says of the body.
enum class S3Payload : uint8_t {
  kUnsigned,               // UNSIGNED-PAYLOAD (and every presigned URL without the header)
  kSha256,                 // a hex SHA-256 of the body
  kSignedChunks,           // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
  kUnsignedChunksTrailer,  // STREAMING-UNSIGNED-PAYLOAD-TRAILER (the JS SDK v3's default)
  kSignedChunksTrailer,    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
};

// Who signed a request, and what its body must then satisfy.
struct S3Principal {
  std::shared_ptr<const AccessKey> key;
  bool presigned = false;
  S3Payload payload = S3Payload::kUnsigned;
  std::string content_sha256;       // kSha256: the lowercase hex digest the body must have
  uint64_t decoded_length = 0;      // chunked modes: x-amz-decoded-content-length
  std::string trailer;              // trailer modes: x-amz-trailer, lowercase ("x-amz-checksum-crc32")
  std::string header_checksum;      // "crc32" when an x-amz-checksum-crc32 header came, or "md5"
  std::string header_checksum_b64;  //   for Content-MD5; its base64 value
  // What chunk signatures chain from (signed chunked modes).
  std::string signing_key;     // raw 32 bytes
  std::string amz_date;        // "20130524T000000Z"
  std::string scope;           // "20130524/us-east-1/s3/aws4_request"
  std::string seed_signature;  // the request's own signature, hex
};

struct S3VerifyOptions {
  std::string region;        // the region signatures must name; "" accepts any
  int64_t max_skew_seconds = 900;
};

// Verifies the request's signature (Authorization header or presigned query) against
// `credentials`, as of `now`. Does not look at the body: see S3BodyDecoder.
Verdict<S3Principal, S3Error> VerifyS3(const RequestView& request, const Credentials& credentials,
                                       const S3VerifyOptions& options, std::time_t now);

// AccessDenied unless the principal's key may `access` key_path in bucket (AccessKey::Allows).
std::optional<S3Error> AuthorizeS3(const S3Principal& principal, std::string_view bucket,
                                   std::string_view key_path, Access access);

// Turns the raw body into the object's bytes and checks it on the way, for every payload
// mode: the SHA-256 of x-amz-content-sha256; aws-chunked framing with each chunk's signature
// chained from the seed signature; the trailing checksum (and its signature); Content-MD5 and
// x-amz-checksum-* headers (crc32, crc32c, crc64nvme, sha1, sha256 are all computed);
// x-amz-decoded-content-length. Feed takes the body in slices of any size, in order. Errors
// are sticky: after one, every call returns it. Not thread-safe; one per request.
class S3BodyDecoder {
 public:
  explicit S3BodyDecoder(const S3Principal& principal);
  ~S3BodyDecoder();
  // Appends the payload bytes in `raw` to *out (unverified until Finish returns no error).
  std::optional<S3Error> Feed(std::string_view raw, std::string* out);
  // The raw body has ended: checks it is complete and every digest and checksum.
  std::optional<S3Error> Finish();
  uint64_t payload_bytes() const { return payload_bytes_; }

 private:
  enum class State : uint8_t { kPlain, kChunkHeader, kChunkData, kChunkDataEnd, kTrailer, kDone };
  std::optional<S3Error> Fail(S3ErrorCode code, std::string message);
  std::optional<S3Error> OnChunkHeader(std::string_view line);
  std::optional<S3Error> OnChunkEnd();
  std::optional<S3Error> OnTrailerLine(std::string_view line);
  std::optional<S3Error> CheckTrailer();

  const S3Principal& p_;
  State state_;
  std::optional<S3Error> error_;
  std::string line_;                 // a chunk header, CRLF or trailer line being gathered
  uint64_t chunk_left_ = 0;          // bytes of the current chunk's data still to come
  std::string chunk_signature_;      // the current chunk's declared signature
  std::string prev_signature_;       // the chain's last verified signature
  std::unique_ptr<Checksum> chunk_hash_;    // SHA-256 of the current chunk (signed modes)
  std::unique_ptr<Checksum> body_hash_;     // SHA-256 of the whole payload (kSha256)
  std::unique_ptr<Checksum> checksum_;      // the trailer's or the header's algorithm
  std::string trailer_text_;         // "name:value\n" of each trailer line, for its signature
  std::string trailer_value_;        // the checksum value the trailer declared
  std::string trailer_signature_;
  bool last_chunk_ = false;
  uint64_t payload_bytes_ = 0;
};

}  // namespace shoal::door
