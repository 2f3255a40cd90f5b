#include "cluster/membership.h"

#include <set>

#include "common/strings.h"

namespace shoal::cluster {

Result<std::vector<Peer>> ParsePeers(const std::string& text) {
  std::vector<Peer> out;
  std::set<std::string> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string entry = Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (entry.empty()) continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("--peers entry '" + entry + "': " + why +
                                     " (want id=host:port[:weight[:domain]])");
    };
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) return bad("no id");
    Peer p;
    p.member.id = entry.substr(0, eq);
    std::vector<std::string> parts;
    for (size_t pos = eq + 1;;) {
      size_t colon = entry.find(':', pos);
      parts.push_back(entry.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
      if (colon == std::string::npos) break;
      pos = colon + 1;
    }
    if (parts.size() < 2 || parts.size() > 4 || parts[0].empty()) return bad("no host:port");
    char* end = nullptr;
    unsigned long port = std::strtoul(parts[1].c_str(), &end, 10);
    if (parts[1].empty() || *end != '\0' || port == 0 || port > 65535) return bad("bad port '" + parts[1] + "'");
    p.endpoint = parts[0] + ":" + parts[1];
    if (parts.size() >= 3) {
      unsigned long w = std::strtoul(parts[2].c_str(), &end, 10);
      if (parts[2].empty() || *end != '\0' || w == 0 || w > 1000000) return bad("weight must be 1 to 1000000");
      p.member.weight = static_cast<uint32_t>(w);
    }
    p.member.domain = parts.size() == 4 && !parts[3].empty() ? parts[3] : p.member.id;
    if (!ids.insert(p.member.id).second) return bad("id " + p.member.id + " appears twice");
    out.push_back(std::move(p));
  }
  if (out.empty()) return Status::InvalidArgument("--peers lists no members");
  return out;
}

}  // namespace shoal::cluster
