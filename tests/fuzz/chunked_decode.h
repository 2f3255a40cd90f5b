#pragma once

// A chunked body decoded from memory, with the server's own line and size parsing
// (node/request_parse.h) and the steps of Server::Impl::ReadChunkedBody in src/node/server.cc:
// size line, data, the CRLF after it, and after the last chunk trailer lines up to an empty one.
// The server reads from a socket instead; what it accepts and what it writes are the same.

#include <string>
#include <string_view>

#include "common/status.h"
#include "node/request_parse.h"

namespace shoal::fuzz {

enum class Chunked { kDone, kMalformed, kNeedMore };

// Decodes `in` into *out; *used is the bytes consumed when kDone.
inline Chunked DecodeChunked(std::string_view in, std::string* out, size_t* used) {
  size_t pos = 0;
  std::string line;
  auto next_line = [&]() -> Chunked {
    size_t consumed = 0;
    node::ChunkLine scan = node::ScanChunkLine(in.substr(pos), &line, &consumed);
    if (scan == node::ChunkLine::kTooLong) return Chunked::kMalformed;
    if (scan == node::ChunkLine::kNeedMore) return Chunked::kNeedMore;
    pos += consumed;
    return Chunked::kDone;
  };
  for (;;) {
    if (Chunked r = next_line(); r != Chunked::kDone) return r;
    auto size = node::ParseChunkSize(line);
    if (!size.ok()) return Chunked::kMalformed;
    if (*size == 0) {
      do {
        if (Chunked r = next_line(); r != Chunked::kDone) return r;
      } while (!line.empty());
      *used = pos;
      return Chunked::kDone;
    }
    if (in.size() - pos < *size) return Chunked::kNeedMore;
    out->append(in.substr(pos, *size));
    pos += *size;
    if (Chunked r = next_line(); r != Chunked::kDone) return r;
    if (!line.empty()) return Chunked::kMalformed;
  }
}

}  // namespace shoal::fuzz
