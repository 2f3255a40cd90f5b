#include "client/entry.h"

#include <algorithm>

#include "net/node_protocol.h"

namespace shoal::client {

EntryNodes::EntryNodes(std::vector<std::string> configured) {
  for (auto& e : configured) nodes_.push_back(Node{std::move(e), {}});
}

std::string EntryNodes::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (nodes_.empty()) return "";
  const auto now = std::chrono::steady_clock::now();
  const Node* oldest = &nodes_[0];
  for (const auto& n : nodes_) {
    if (n.down_until <= now) return n.endpoint;
    if (n.down_until < oldest->down_until) oldest = &n;
  }
  return oldest->endpoint;
}

bool EntryNodes::Failed(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  bool other = false;
  for (auto& n : nodes_) {
    if (n.endpoint == endpoint) {
      n.down_until = now + kDownFor;
    } else if (n.down_until <= now) {
      other = true;
    }
  }
  return other;
}

void EntryNodes::Learn(const std::vector<std::string>& members) {
  std::lock_guard<std::mutex> lock(mu_);
  if (nodes_.empty() || proto::IsUnixEndpoint(nodes_[0].endpoint)) return;
  for (const auto& m : members) {
    if (m.empty()) continue;
    bool known = std::any_of(nodes_.begin(), nodes_.end(), [&](const Node& n) { return n.endpoint == m; });
    if (!known) nodes_.push_back(Node{m, {}});
  }
}

std::vector<std::string> EntryNodes::All() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n.endpoint);
  return out;
}

size_t EntryNodes::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.size();
}

}  // namespace shoal::client
