#include "common/strings.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace shoal {

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string kForms = ": write a whole or decimal number with an optional unit, like 4096, 1.5GiB, "
                             "8MiB or 20GiB (units B, KiB, MiB, GiB, TiB, or kB, MB, GB, TB)";
  auto not_a_size = [&] { return Status::InvalidArgument("'" + std::string(text) + "' is not a size" + kForms); };
  std::string t = Trim(text);
  size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) i++;
  size_t int_end = i;
  size_t frac_begin = i, frac_end = i;
  if (i < t.size() && t[i] == '.') {
    frac_begin = ++i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) i++;
    frac_end = i;
    if (frac_end == frac_begin) return not_a_size();  // "1." or "."
  }
  if (int_end == 0) return not_a_size();  // no leading digit: "", ".5", "lots"
  std::string unit = ToLower(Trim(t.substr(i)));
  uint64_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib") mult = 1ull << 10;
  else if (unit == "m" || unit == "mib") mult = 1ull << 20;
  else if (unit == "g" || unit == "gib") mult = 1ull << 30;
  else if (unit == "t" || unit == "tib") mult = 1ull << 40;
  else if (unit == "kb") mult = 1000ull;
  else if (unit == "mb") mult = 1000ull * 1000;
  else if (unit == "gb") mult = 1000ull * 1000 * 1000;
  else if (unit == "tb") mult = 1000ull * 1000 * 1000 * 1000;
  else if (!unit.empty() && (std::isdigit(static_cast<unsigned char>(unit[0])) || unit[0] == '.')) {
    return not_a_size();  // "1.2.3", "1 2"
  } else {
    return Status::InvalidArgument("'" + std::string(text) + "' has an unknown unit '" + unit +
                                   "': use B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB)");
  }
  auto too_big = [&] {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is more than the largest size, 18446744073709551615 bytes (16 EiB)" + kForms);
  };
  uint64_t whole = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + int_end, whole);
  if (ec == std::errc::result_out_of_range) return too_big();
  // The fraction to 18 digits (finer than a byte of 1 TiB), rounded half up with the product.
  uint64_t frac = 0, scale = 1;
  for (size_t k = frac_begin; k < frac_end && scale < 1000000000000000000ull; k++) {
    frac = frac * 10 + static_cast<uint64_t>(t[k] - '0');
    scale *= 10;
  }
  unsigned __int128 bytes = static_cast<unsigned __int128>(whole) * mult +
                            (static_cast<unsigned __int128>(frac) * mult + scale / 2) / scale;
  if (bytes > UINT64_MAX) return too_big();
  return static_cast<uint64_t>(bytes);
}

Result<uint64_t> ParseU64(std::string_view text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("'" + std::string(text) + "' is past the largest number, 18446744073709551615");
  }
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a whole number: write decimal digits only");
  }
  return n;
}

Result<HostPort> SplitHostPort(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not an address: " + why +
                                   "; write HOST:PORT or [IPV6]:PORT, like 127.0.0.1:7070, "
                                   "node1:7070 or [::1]:7070");
  };
  HostPort out;
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("no ']' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    if (out.host.empty()) return bad("the brackets hold no address");
    if (out.host.find_first_of("[]") != std::string::npos) return bad("brackets inside brackets");
    if (close + 1 == text.size()) return bad("no port after ']'");
    if (text[close + 1] != ':') return bad("':' must follow ']'");
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
    if (out.host.find_first_of("[]") != std::string::npos) return bad("a stray bracket");
    if (out.host.empty()) return bad("no host before the ':'");
  }
  std::string_view port = text.substr(colon + 1);
  if (port.empty()) return bad("no port after the ':'");
  if (port.find_first_not_of("0123456789") != std::string_view::npos) {
    return bad("the port '" + std::string(port) + "' is not a number");
  }
  auto n = ParseU64(port);  // digits only: fails only past 2^64
  if (!n.ok() || *n > 65535) return bad("the port " + std::string(port) + " is past 65535");
  out.port = static_cast<uint16_t>(*n);
  return out;
}

std::string JoinHostPort(std::string_view host, uint16_t port) {
  std::string h(host);
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(n);
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string t = Trim(text);
  if (t.size() % 4 != 0) return Status::InvalidArgument("base64 text has a length not divisible by 4");
  std::string out(3 * t.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(t.data()),
                          static_cast<int>(t.size()));
  if (n < 0) return Status::InvalidArgument("text is not valid base64");
  size_t pad = 0;
  if (!t.empty() && t.back() == '=') pad++;
  if (t.size() > 1 && t[t.size() - 2] == '=') pad++;
  out.resize(n - pad);
  return out;
}

std::string HexEncode(std::string_view data) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string RandomHex() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string Md5(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

namespace {
std::string FormatTime(std::time_t t, const char* fmt) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), fmt, &tm);
  return std::string(buf, n);
}
}  // namespace

std::string FormatRfc1123(std::time_t t) { return FormatTime(t, "%a, %d %b %Y %H:%M:%S GMT"); }
std::string FormatIso8601Basic(std::time_t t) { return FormatTime(t, "%Y%m%dT%H%M%SZ"); }
std::string FormatIso8601(std::time_t t) { return FormatTime(t, "%Y-%m-%dT%H:%M:%SZ"); }

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::time_t ParseHttpTime(std::string_view text) {
  std::string s(Trim(text));
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) {
    tm = std::tm{};
    end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  }
  if (end == nullptr) return -1;
  return timegm(&tm);
}

const char* EnvValue(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

}  // namespace shoal
