#pragma once

// What the node's server takes from a request, parsed without any I/O: query parameters,
// numbers in headers and parameters (X-Shoal-Size, X-Shoal-Epoch, ?index=), Range headers, and
// the lines of a chunked body. Split from server.cc so the fuzz targets (tests/fuzz/) run the
// same code the server does. Pure functions of their arguments: thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace shoal::node {

// %XX and '+' decoded (application/x-www-form-urlencoded); a '%' not followed by two hex
// digits is kept as it is. The result is never longer than `s`.
std::string PercentDecode(std::string_view s);

// The decoded value of query parameter `name` in a target like /v1/object?url=...; empty when
// absent or without '='.
std::string QueryParam(std::string_view target, std::string_view name);

// A whole decimal number (common/strings.h's ParseU64); nullopt otherwise.
std::optional<uint64_t> ParseNumber(std::string_view text);

// Parses "bytes=A-B" / "bytes=A-" / "bytes=-N" against `size`; false when unsatisfiable (or
// not one range). When true, 0 < *length and *offset + *length <= size.
bool ParseRange(std::string_view header, uint64_t size, uint64_t* offset, uint64_t* length);

// ---- chunked bodies (RFC 9112 7.1) ----------------------------------------------------------

// The longest line of a chunked body (size line, the CRLF after data, a trailer) a client may send.
inline constexpr size_t kMaxChunkLine = 8192;

enum class ChunkLine { kLine, kNeedMore, kTooLong };

// Looks for one CRLF-ended line at the start of `have`: kLine sets *line (without its CRLF)
// and *consumed (its length with the CRLF); kNeedMore when no CRLF is there yet; kTooLong when
// more than kMaxChunkLine bytes came without one (a malformed body).
ChunkLine ScanChunkLine(std::string_view have, std::string* line, size_t* consumed);

// The size of a chunk from its size line: hex digits, then optional spaces or tabs, then
// optional ";extensions" (ignored). kInvalidArgument for anything else.
Result<uint64_t> ParseChunkSize(std::string_view line);

}  // namespace shoal::node
