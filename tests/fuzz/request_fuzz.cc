// Fuzz target: a request as the node's server reads it. The request line and headers go through
// Beast's http::request_parser<buffer_body> configured as src/node/server.cc does (16 KiB header
// limit, no body limit, header read alone); then what the server takes from the request with
// node/request_parse.h: every query parameter of the protocol, the numbers in them and in
// X-Shoal-Size / X-Shoal-Epoch, the Range header against several object sizes, and a chunked
// body after the header. The raw input is also given to ParseRange and QueryParam directly.
// Invariants: a satisfiable range is non-empty and lies inside the object; a decoded parameter
// is never longer than the target; a decoded chunked body is never longer than the input.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "chunked_decode.h"
#include "fuzz_check.h"
#include "net/node_protocol.h"
#include "node/request_parse.h"

namespace http = boost::beast::http;
namespace proto = shoal::proto;
using shoal::node::ParseNumber;
using shoal::node::ParseRange;
using shoal::node::QueryParam;

namespace {

constexpr std::string_view kParams[] = {
    proto::kUrlParam,     proto::kPrefixParam,    proto::kIndexParam,  proto::kRouteParam,
    proto::kCurrentParam, proto::kIdParam,        proto::kSizeParam,   proto::kChunkSizeParam,
    proto::kCreatedParam, proto::kOriginParam,    proto::kIncarnationParam, proto::kAdoptParam,
    proto::kChunksParam};

void CheckRange(std::string_view spec, uint64_t size) {
  uint64_t offset = 7, length = 7;
  if (!ParseRange(spec, size, &offset, &length)) return;
  FUZZ_CHECK(length > 0, "a satisfiable range is empty");
  FUZZ_CHECK(offset < size && length <= size - offset, "a range reaches past the object");
}

void CheckRanges(std::string_view spec, std::optional<uint64_t> named_size) {
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{100}, uint64_t{8} << 20, uint64_t{1} << 63,
                        std::numeric_limits<uint64_t>::max()}) {
    CheckRange(spec, size);
  }
  if (named_size) CheckRange(spec, *named_size);
}

void CheckQuery(std::string_view target) {
  for (std::string_view name : kParams) {
    std::string value = QueryParam(target, name);
    FUZZ_CHECK(value.size() <= target.size(), "a decoded parameter is longer than the target");
    if (auto n = ParseNumber(value)) FUZZ_CHECK(!value.empty(), "a number from nothing");
  }
}

std::string_view Header(const http::request<http::buffer_body>& req, std::string_view name) {
  auto v = req[boost::beast::string_view(name.data(), name.size())];
  return std::string_view(v.data(), v.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckRanges(in, std::nullopt);
  CheckQuery(in);

  // The header, as Server::Impl::Session reads it (http::async_read_header).
  http::request_parser<http::buffer_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  std::string_view rest = in;
  while (!parser.is_header_done()) {
    if (rest.empty()) return 0;  // the server would wait for more
    size_t n = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec == http::error::need_more) {
      if (n == 0) return 0;
      ec = {};
    }
    if (ec) return 0;  // answered 400 by the server
    rest.remove_prefix(n);
  }
  const auto& req = parser.get();
  std::string_view target(req.target().data(), req.target().size());
  CheckQuery(target);
  std::optional<uint64_t> named_size = ParseNumber(Header(req, proto::kSizeHeader));
  (void)ParseNumber(Header(req, proto::kEpochHeader));
  if (auto range = req.find(http::field::range); range != req.end()) {
    CheckRanges(std::string_view(range->value().data(), range->value().size()), named_size);
  }
  (void)parser.content_length();
  if (req.chunked()) {  // the body the server decodes itself (ReadChunkedBody)
    std::string body;
    size_t used = 0;
    shoal::fuzz::DecodeChunked(rest, &body, &used);
    FUZZ_CHECK(body.size() <= rest.size(), "decoded body bytes past the input");
  }
  return 0;
}
