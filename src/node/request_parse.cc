#include "node/request_parse.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/strings.h"

namespace shoal::node {

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string QueryParam(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return "";
}

std::optional<uint64_t> ParseNumber(std::string_view text) {
  auto n = ParseU64(text);
  return n.ok() ? std::optional<uint64_t>(*n) : std::nullopt;
}

bool ParseRange(std::string_view header, uint64_t size, uint64_t* offset, uint64_t* length) {
  if (!StartsWith(header, "bytes=")) return false;
  std::string_view spec = header.substr(6);
  if (spec.find(',') != std::string_view::npos) return false;  // one range only
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return false;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {  // suffix: the last N bytes; none of an empty object
    auto n = ParseNumber(b);
    if (!n || *n == 0 || size == 0) return false;
    *length = std::min(*n, size);
    *offset = size - *length;
    return true;
  }
  auto start = ParseNumber(a);
  if (!start || *start >= size) return false;
  uint64_t last = size - 1;
  if (!b.empty()) {
    auto l = ParseNumber(b);
    if (!l) return false;
    last = std::min(*l, size - 1);
  }
  if (last < *start) return false;
  *offset = *start;
  *length = last - *start + 1;
  return true;
}

ChunkLine ScanChunkLine(std::string_view have, std::string* line, size_t* consumed) {
  size_t eol = have.find("\r\n");
  if (eol != std::string_view::npos) {
    line->assign(have.substr(0, eol));
    *consumed = eol + 2;
    return ChunkLine::kLine;
  }
  return have.size() > kMaxChunkLine ? ChunkLine::kTooLong : ChunkLine::kNeedMore;
}

Result<uint64_t> ParseChunkSize(std::string_view line) {
  std::string_view size_text = line.substr(0, line.find(';'));
  while (!size_text.empty() && (size_text.back() == ' ' || size_text.back() == '\t')) size_text.remove_suffix(1);
  uint64_t size = 0;
  auto [end, err] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
  if (size_text.empty() || err != std::errc() || end != size_text.data() + size_text.size()) {
    return Status::InvalidArgument("malformed chunked body: chunk size '" + std::string(line.substr(0, 64)) + "' is not hex");
  }
  return size;
}

}  // namespace shoal::node
