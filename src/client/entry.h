#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace shoal::client {

// The nodes a client may send its data requests to (reads, writes, stats, listings, deletes,
// commits, waits for durability): any member of a cluster serves them alike (a write through
// one is read through another), so when the node a client uses cannot be reached (restarting,
// or gone) the client turns to the next one instead of failing. In order: the nodes of
// --cache A,B,... (the first preferred: the node on the client's own host), then, with a TCP
// first node, the members of its cluster once the client has seen its view (Learn).
//
// A node whose connection was refused (nothing was sent to it, so the request may go elsewhere
// whatever it was) is passed over for kDownFor; then it is tried first again, so a client
// returns to its own host's node once that node is back. Requests that must reach one node
// (drain, metrics, readiness, status) never go through here.
//
// Thread-safe.
class EntryNodes {
 public:
  static constexpr std::chrono::seconds kDownFor{5};

  // `configured`: at least one endpoint (HOST:PORT or unix:PATH).
  explicit EntryNodes(std::vector<std::string> configured);

  // The node to send to now: the first one not passed over; when every one is, the one
  // passed over longest ago.
  std::string Current();
  // A connection to `endpoint` could not be made: it is passed over for kDownFor. True when
  // some other node is not passed over (worth sending the request there).
  bool Failed(const std::string& endpoint);
  // The cluster's members, tried after the configured nodes (those already known are kept,
  // with what is known of them). Ignored when the first configured node is a Unix socket: a
  // client on the socket may not reach the members' addresses.
  void Learn(const std::vector<std::string>& members);
  // Every node known, in order.
  std::vector<std::string> All();
  size_t size();

 private:
  struct Node {
    std::string endpoint;
    std::chrono::steady_clock::time_point down_until{};  // passed over until then
  };
  std::mutex mu_;
  std::vector<Node> nodes_;  // guarded by mu_: the configured ones first
};

}  // namespace shoal::client
