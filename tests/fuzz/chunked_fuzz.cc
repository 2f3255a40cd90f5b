// Fuzz target: a chunked request body, as the node's server decodes a PUT /v1/object body
// (node/request_parse.h's line and size parsing, ReadChunkedBody's steps). Invariants: the
// decoded bytes are never more than the input; a body decoded whole re-encodes (as one chunk)
// and decodes to the same bytes; and where Beast's own chunked parser also accepts the body,
// both decoders give the same bytes.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "chunked_decode.h"

namespace http = boost::beast::http;
using shoal::fuzz::Chunked;
using shoal::fuzz::DecodeChunked;

namespace {

// Beast's decoding of `body` sent chunked, or false if Beast refuses it or it is incomplete.
bool BeastDecode(std::string_view body, std::string* out) {
  std::string message = "PUT /v1/object?url=az://c/k HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n";
  message.append(body);
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1ull << 30);
  parser.eager(true);
  boost::beast::error_code ec;
  std::string_view rest = message;
  while (!rest.empty() && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec == http::error::need_more) return false;
    if (ec) return false;
    if (n == 0) return false;
    rest.remove_prefix(n);
  }
  if (!parser.is_done()) return false;
  *out = parser.get().body();
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string out;
  size_t used = 0;
  Chunked r = DecodeChunked(in, &out, &used);
  FUZZ_CHECK(out.size() <= in.size(), "decoded bytes past the input");
  if (r != Chunked::kDone) return 0;
  FUZZ_CHECK(used <= in.size(), "consumed past the input");

  // Re-encoded as one chunk (what a client with the bytes in hand would send), it decodes the same.
  std::string again;
  if (!out.empty()) {
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", out.size());
    again = size_line + out + "\r\n";
  }
  again += "0\r\n\r\n";
  std::string decoded;
  size_t used2 = 0;
  FUZZ_CHECK(DecodeChunked(again, &decoded, &used2) == Chunked::kDone, "a re-encoded body is refused");
  FUZZ_CHECK(decoded == out && used2 == again.size(), "a re-encoded body decodes differently");

  // Where Beast accepts the same body, it sees the same bytes.
  std::string beast;
  if (BeastDecode(in.substr(0, used), &beast)) FUZZ_CHECK(beast == out, "Beast decodes the body differently");
  return 0;
}
