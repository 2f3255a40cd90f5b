#include "door/request.h"

#include <openssl/crypto.h>

#include <pugixml.hpp>

#include <sstream>

#include "common/strings.h"

namespace shoal::door {

std::optional<std::string_view> RequestView::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n.size() == name.size() && ToLower(n) == ToLower(name)) return std::string_view(v);
  }
  return std::nullopt;
}

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    int hi = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
    int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::vector<QueryParam> ParseQuery(std::string_view raw_query) {
  std::vector<QueryParam> out;
  size_t pos = 0;
  while (pos <= raw_query.size()) {
    size_t amp = raw_query.find('&', pos);
    if (amp == std::string_view::npos) amp = raw_query.size();
    std::string_view item = raw_query.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view n = item.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    // An undecodable item is kept raw: the signature check then fails on it, which is the
    // error the client should see.
    auto dn = PercentDecode(n);
    auto dv = PercentDecode(v);
    out.push_back({dn ? *dn : std::string(n), dv ? *dv : std::string(v)});
  }
  return out;
}

std::optional<std::string> QueryValue(const std::vector<QueryParam>& params,
                                      std::string_view name) {
  for (const auto& p : params) {
    if (p.name == name) return p.value;
  }
  return std::nullopt;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RenderErrorXml(std::string_view encoding,
                           const std::vector<std::pair<std::string, std::string>>& fields) {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = std::string(encoding).c_str();
  auto e = doc.append_child("Error");
  for (const auto& [name, value] : fields) e.append_child(name.c_str()).text().set(value.c_str());
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

}  // namespace shoal::door
