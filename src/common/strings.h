#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>
#include <string_view>

#include "common/status.h"

namespace shoal {

// "8MiB", "20GiB", "100MB", "4096" -> bytes. Binary (KiB, MiB, GiB, TiB, also K/M/G/T) and
// decimal (kB, MB, GB, TB) units; case-insensitive; one optional fraction ("1.5GiB", rounded to
// the byte). kInvalidArgument, naming the text and the accepted forms, on anything else and on
// sizes past 2^64 - 1 bytes.
Result<uint64_t> ParseSize(std::string_view text);

// "0" to "18446744073709551615" -> the number: decimal digits only, all of the text (no sign,
// space or unit). kInvalidArgument naming the text on anything else, and on overflow. For
// numbers from outside: headers, query parameters, flags, files.
Result<uint64_t> ParseU64(std::string_view text);

// A network address as the flags take it. `host` is without brackets ("::1", not "[::1]").
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port" or "[IPv6]:port" -> its host and port (0 to 65535; 0 asks for any free port
// where one listens). kInvalidArgument naming the text, what is wrong with it and the
// accepted forms when the port is missing, not a number or past 65535, the host is empty,
// or an IPv6 address has no brackets ("::1:7070").
Result<HostPort> SplitHostPort(std::string_view text);

// The inverse: "host:port", with brackets around a host that has a ':' ("[::1]:7070").
std::string JoinHostPort(std::string_view host, uint16_t port);

// 1536 -> "1.5 KiB".
std::string FormatBytes(uint64_t bytes);

// Percent-encodes everything but RFC 3986 unreserved characters; '/' is kept when keep_slash.
std::string UriEncode(std::string_view s, bool keep_slash);

std::string Base64Encode(std::string_view data);
Result<std::string> Base64Decode(std::string_view text);
std::string HexEncode(std::string_view data);

// 16 random hex digits (not for secrets): upload ids, temp-file suffixes, block-id nonces.
std::string RandomHex();

// HMAC-SHA256(key, data) and SHA-256(data), raw 32 bytes.
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256(std::string_view data);
// MD5(data), raw 16 bytes (S3's ETag of a part; not for security).
std::string Md5(std::string_view data);

// Time formats used by the object stores. All in UTC.
std::string FormatRfc1123(std::time_t t);        // "Sat, 21 Nov 2026 12:24:41 GMT"
std::string FormatIso8601Basic(std::time_t t);   // "20261121T122441Z" (SigV4)
std::string FormatIso8601(std::time_t t);        // "2026-11-21T12:24:41Z"
// Milliseconds since the Unix epoch, now (wall clock: for records that outlive the process).
int64_t UnixMillis();
// Parses RFC 1123 or ISO 8601 ("2026-11-21T12:24:41.000Z"); -1 when neither.
std::time_t ParseHttpTime(std::string_view text);

// The value of environment variable `name`, or nullptr when unset or empty.
const char* EnvValue(const char* name);

// "\"abc\"" -> "abc" (ETags come quoted); anything else unchanged.
std::string Unquote(std::string s);

bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string ToLower(std::string_view s);
std::string Trim(std::string_view s);
// The pieces of `s` between each `sep` ("a,,b" -> a, "", b; "" -> one empty piece).
std::vector<std::string> Split(std::string_view s, char sep);

}  // namespace shoal
