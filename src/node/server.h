#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "node/node.h"

namespace shoal::node {

struct ServerOptions {
  // Threads running the event loop (0: one per core). They never block: disk work and
  // fetches run on the node's pools (Node::serve_pool, OpenChunk's fetch pool).
  int io_threads = 0;
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // From a request's first byte to the end of its header.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // A body read or an answer write that makes no progress for this long ends the connection.
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
};

// The node's HTTP/1.1 front end: Beast on Asio, a fixed number of event-loop threads, one
// coroutine per connection (an idle or slow connection costs memory, never a thread).
// Endpoints (the protocol clients and peers speak; client/cache_store.cc and
// node/cluster_node.cc are the other side):
//   GET|HEAD /v1/object?url=URL  bytes of the object; Range: bytes=A-B honoured (206).
//                                X-Shoal-Read (forwarded|cache-only|held), X-Shoal-Etag and
//                                X-Shoal-Size (the version wanted), X-Shoal-From/-Endpoint (a
//                                peer), X-Shoal-Epoch; answers ETag, X-Shoal-Size,
//                                X-Shoal-State (local|durable), X-Shoal-Written-As, or 307
//                                with X-Shoal-Holder (fan-in)
//   PUT    /v1/object?url=URL    write-back (body of known length or chunked): 201 once
//                                acknowledged
//   DELETE /v1/object?url=URL    204
//   GET    /v1/pending?prefix=P  writes not yet durable under P (JSON)
//   POST   /v1/commit?prefix=P   writes P/_SHOAL_COMMITTED once everything under P is durable
//   POST   /v1/warm?url=&index=[&route=1]  fetch one chunk into this node's cache
//   GET|POST /v1/drain           leave the cluster, handing off writes and copies
//   GET    /v1/cluster           the membership this node routes by (JSON)
//   GET|POST /v1/cluster/view    the placement table (binary, cluster::View)
//   PUT|POST|GET /v1/replica/{chunk,commit,adopt,drop,state}  copies of writes between nodes
//   GET    /metrics              Prometheus text;  GET /healthz  "ok"
// Requests must carry "Authorization: Bearer TOKEN" when the node has a token. Errors are
// JSON {"code": "NotFound", "message": "..."} with 400/401/404/405/412/416/503/507/500; a
// request past --max-connections active ones is answered 503 with X-Shoal-Error: Busy.
// Timeouts (ServerOptions) close a connection and count it (shoal_connection_timeouts_total).
//
// Thread-safety: Listen and Start before serving, Stop once, from one thread.
class Server {
 public:
  Server(Node* node, ServerOptions options = {});
  ~Server();
  // Adds a listener: "HOST:PORT" or "[V6]:PORT" (port 0: any free one), or "unix:PATH" (a
  // client on this host: its bytes are not paced by the egress limit). A `metrics_only`
  // listener answers /metrics and /healthz and nothing else (--metrics). Returns the port
  // bound (0 for a Unix socket).
  Result<int> Listen(const std::string& listen, bool metrics_only = false);
  // Starts the event-loop threads.
  void Start();
  // Stops accepting, ends every connection and joins the threads; handlers running on the
  // node's pools finish first.
  void Stop();
  int io_threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::node
