#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "node/node.h"

namespace shoal::door {
class Credentials;
}  // namespace shoal::door

namespace shoal::node {

class Door;

struct ServerOptions {
  // The S3 front door (door.h), when the node serves buckets; owned by the caller, outliving
  // the server. Requests outside /v1 and the probes go to it.
  const Door* door = nullptr;
  // The keys file (--credentials), owned by the caller: its node tokens (KIND token) may use
  // the node's API within their scopes (node_auth.h). Null: only the cluster's token.
  const door::Credentials* keys = nullptr;
  // Threads running the event loop (0: one per core). They never block: disk work and
  // fetches run on the node's pools (Node::serve_pool, ReadPath's fetch pool).
  int io_threads = 0;
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // From a request's first byte to the end of its header.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // A body read or an answer write that makes no progress for this long ends the connection.
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
  // TLS on the TCP listeners that are not metrics_only (--tls-cert, --tls-key: PEM files, the
  // certificate with its chain). Empty: plain HTTP. Unix sockets are always plain.
  std::string tls_cert;
  std::string tls_key;
  // With TLS: every client must present a certificate signed by a CA in this PEM file, or its
  // handshake fails (--tls-client-ca). Empty: no client certificate asked for.
  std::string tls_client_ca;
};

// The node's HTTP/1.1 front end: Beast on Asio, a fixed number of event-loop threads, one
// coroutine per connection (an idle or slow connection costs memory, never a thread).
// It serves the /v1 protocol of net/node_protocol.h, which defines every endpoint, header and
// error code (docs/node.md describes them); client/cache_store.cc and node/routing.cc, read_path.cc
// are the other side. Requests must carry "Authorization: Bearer TOKEN" when the node has a
// token. Errors are JSON {"code", "message"} with the HTTP status proto::kCodeTable gives the
// code; a request past --max-connections active ones is answered 503 with X-Shoal-Error: Busy.
// Timeouts (ServerOptions) close a connection and count it (shoal_connection_timeouts_total).
//
// With TLS (ServerOptions::tls_cert) its TCP listeners speak HTTPS; a failed handshake closes
// the connection and is counted (shoal_tls_handshake_failures_total).
//
// Thread-safety: Listen and Start before serving, Stop once, from one thread; LoadTls any time.
class Server {
 public:
  Server(Node* node, ServerOptions options = {});
  ~Server();
  // Adds a listener: "HOST:PORT" or "[V6]:PORT" (port 0: any free one), or "unix:PATH" (a
  // client on this host: its bytes are not paced by the egress limit). A `metrics_only`
  // listener answers /metrics and /healthz and nothing else (--metrics). Returns the port
  // bound (0 for a Unix socket).
  Result<int> Listen(const std::string& listen, bool metrics_only = false);
  // Reads ServerOptions::tls_cert and tls_key (again): connections accepted from now on use
  // them, those open keep the certificate they began with. Called before Start, and on SIGHUP
  // (rotation); on error (naming the file and what is wrong) the certificate in use stays.
  // Thread-safe. Ok and nothing done when the server has no TLS.
  Status LoadTls();
  // Starts the event-loop threads.
  void Start();
  // Stops accepting, closes every connection and joins the threads once every connection's
  // coroutine has ended: what one waits for (a handler on the node's serve pool, a chunk
  // being fetched) posts back to the event loop, so it runs until then, however long. After
  // it nothing of the server runs, and the node may be destroyed.
  void Stop();
  int io_threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::node
