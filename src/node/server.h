#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "node/node.h"

namespace shoal::node {

// The node's HTTP/1.1 front end (keep-alive; one thread per connection):
//   GET  /v1/object?url=URL   bytes of the object; Range: bytes=A-B honoured (206)
//   HEAD /v1/object?url=URL   Content-Length and ETag only
//   GET  /v1/cluster          the membership this node routes by (JSON)
//   GET  /v1/cluster/view     the placement table (binary, cluster::View); POST: a newer one
//   GET  /metrics             Prometheus text
//   GET  /healthz             "ok"
// Object responses carry ETag (the version served) and X-Shoal-Size. Requests must carry
// "Authorization: Bearer TOKEN" when the node has a token. Errors are JSON:
// {"code": "NotFound", "message": "..."} with 400/401/404/412/416/503/500.
class Server {
 public:
  explicit Server(Node* node);
  ~Server();
  // Binds HOST:PORT (port 0: any free one) and starts accepting. A `metrics_only` server
  // answers /metrics and /healthz and nothing else (for --metrics).
  Status Start(const std::string& listen, bool metrics_only = false);
  int port() const { return port_; }
  // Stops accepting and closes the listening socket; open connections finish their request.
  void Stop();

 private:
  struct Impl;
  Node* node_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace shoal::node
