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
    // host:port, or [v6]:port, then [:weight[:domain]]
    std::string rest = entry.substr(eq + 1);
    size_t host_end = rest.find(rest.compare(0, 1, "[") == 0 ? ']' : ':');
    if (host_end == std::string::npos) return bad("no host:port");
    if (rest[host_end] == ']') host_end++;
    std::vector<std::string> parts = {rest.substr(0, host_end)};
    for (size_t pos = host_end; pos < rest.size();) {
      if (rest[pos] != ':') return bad("'" + rest.substr(pos) + "' after the host");
      size_t colon = rest.find(':', pos + 1);
      parts.push_back(rest.substr(pos + 1, colon == std::string::npos ? std::string::npos : colon - pos - 1));
      pos = colon;
    }
    if (parts.size() < 2 || parts.size() > 4 || parts[0].empty()) return bad("no host:port");
    auto hp = SplitHostPort(parts[0] + ":" + parts[1]);
    if (!hp.ok()) return bad(hp.status().message());
    if (hp->port == 0) return bad("port 0: a member needs the port it listens on");
    p.endpoint = JoinHostPort(hp->host, hp->port);
    if (parts.size() >= 3) {
      auto w = ParseU64(parts[2]);
      if (!w.ok() || *w == 0 || *w > 1000000) return bad("weight '" + parts[2] + "' must be 1 to 1000000");
      p.member.weight = static_cast<uint32_t>(*w);
    }
    p.member.domain = parts.size() == 4 && !parts[3].empty() ? parts[3] : p.member.id;
    if (!ids.insert(p.member.id).second) return bad("id " + p.member.id + " appears twice");
    out.push_back(std::move(p));
  }
  if (out.empty()) return Status::InvalidArgument("--peers lists no members");
  return out;
}

}  // namespace shoal::cluster
