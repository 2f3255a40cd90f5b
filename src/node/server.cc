#include "node/server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <limits>
#include <list>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/exchange.h"
#include "node/listing.h"
#include "node/node_auth.h"
#include "door/request.h"
#include "common/log.h"

namespace shoal::node {
namespace {

using tcp = asio::ip::tcp;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

// A handler of its own file (Beast-free: the target in, JSON or an error out) as a server handler.
template <Result<std::string> (*Serve)(Node*, std::string_view)>
TextResponse Json(Node* node, const Request& req) {
  auto body = Serve(node, std::string_view(req.target().data(), req.target().size()));
  if (!body.ok()) {
    CountError(node, body.status());
    return ErrorResponse(req.version(), req.keep_alive(), body.status());
  }
  return Text(req.version(), req.keep_alive(), std::move(body).value(), "application/json");
}

struct Listener {
  std::unique_ptr<Acceptor> acceptor;
  std::string unix_path;  // the socket file to remove on Stop
  bool metrics_only = false;
  bool local = false;
  bool tls = false;  // connections begin with a TLS handshake
};

// A server context with `cert` (and its chain) and `key`, TLS 1.2 and later; with `client_ca`,
// one that refuses a client without a certificate signed by a CA in that file.
Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext(const std::string& cert, const std::string& key,
                                                           const std::string& client_ca) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  beast::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                   ec);
  ctx->use_certificate_chain_file(cert, ec);
  if (ec) return Status::InvalidArgument("--tls-cert " + cert + ": " + ec.message() + " (want a PEM certificate)");
  ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("--tls-key " + key + ": " + ec.message() + " (want a PEM private key)");
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Status::InvalidArgument("--tls-key " + key + " is not the key of the certificate in --tls-cert " + cert);
  }
  if (!client_ca.empty()) {
    ctx->load_verify_file(client_ca, ec);
    if (ec) {
      return Status::InvalidArgument("--tls-client-ca " + client_ca + ": " + ec.message() +
                                     " (want a PEM file of the CAs that sign client certificates)");
    }
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return Status::InvalidArgument("--tls-client-ca: " + ec.message());
    // TLS 1.2, where the client's certificate is checked inside the handshake: a client
    // refused learns it before it sends anything. In TLS 1.3 the refusal comes after the
    // client's part of the handshake, while it is already sending a request and its body, and
    // shows there as a broken connection, which a client takes for a transient failure.
    SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  }
  return ctx;
}

}  // namespace

struct Server::Impl {
  ServeContext ctx;
  Node* node = nullptr;
  asio::io_context io;
  std::list<Listener> listeners;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::mutex conns_mu;
  std::list<std::weak_ptr<Conn>> conns;  // guarded by conns_mu; closed on Stop
  std::mutex tls_mu;
  std::shared_ptr<asio::ssl::context> tls;  // guarded by tls_mu; null: no TLS

  awaitable<void> Accept(Listener& l);
  awaitable<void> Session(std::shared_ptr<Conn> c, const Listener& l);
  awaitable<bool> Handle(Conn& c, Parser& parser, const Listener& l);
  awaitable<void> Linger(Conn& c);
  Status Authenticate(const Request& req, std::string_view target, bool* unknown);
  // An answer outside a route (a refusal before one is chosen).
  awaitable<bool> Write(Conn& c, TextResponse res) {
    Exchange x(c, ctx, false);
    co_return co_await x.Write(std::move(res));
  }
};

// Who sent `req` (its bearer token) and whether it may do what it asks (node_auth.h): Ok, or
// kPermissionDenied: with *unknown set when there is no token or one the node does not know
// (401), else the token's scopes do not cover the request (403).
Status Server::Impl::Authenticate(const Request& req, std::string_view target, bool* unknown) {
  const ClusterToken& token = node->options().token;
  const door::Credentials* keys = ctx.options.keys;
  const bool scoped = keys != nullptr && keys->has_node_tokens();
  if (token.empty() && !scoped) return Status::Ok();  // an open node
  std::string_view auth = Header(req, proto::kAuthorizationHeader);
  Caller caller;
  if (StartsWith(auth, "Bearer ")) {
    std::string_view bearer = auth.substr(7);
    caller.peer = token.Accepts(bearer);
    if (!caller.peer && scoped) caller.token = keys->FindNodeToken(bearer);
  }
  if (!caller.peer && !caller.token) {
    *unknown = true;
    return Status::PermissionDenied(auth.empty() ? "this node requires a token: pass --token-file FILE or set "
                                                  "SHOAL_TOKEN_FILE"
                                                : "the token is not one this node knows (a node token is ID:SECRET "
                                                  "from its credentials file)");
  }
  return Authorize(caller, NeedOf(std::string_view(req.method_string().data(), req.method_string().size()), target));
}

// One request whose header has been read. False if the connection must close.
awaitable<bool> Server::Impl::Handle(Conn& c, Parser& parser, const Listener& l) {
  const auto& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  Exchange x(c, ctx, l.local);
  // A handler that blocks (disk, store, peers), run on the serve pool.
  auto blocking = [&](TextResponse (*handler)(Node*, const Request&)) -> awaitable<bool> {
    auto handler_work = x.Offload([n = node, handler, &req] { return handler(n, req); });
    TextResponse res = co_await std::move(handler_work);
    co_return co_await x.Write(std::move(res));
  };
  if (target == proto::kHealthzPath) co_return co_await x.Write(Text(v, ka, "ok\n", "text/plain"));
  if (target == proto::kReadyzPath) co_return co_await x.Write(ServeReadyz(node, v, ka));
  if (target == proto::kMetricsPath) {
    co_return co_await x.Write(Text(v, ka, node->MetricsText(), "text/plain; version=0.0.4"));
  }
  if (l.metrics_only) {
    co_return co_await x.Write(ErrorResponse(v, ka, http::status::not_found,
                                              Status::NotFound("this is the metrics port: only /metrics, /healthz and /readyz")));
  }
  // The door authenticates its own clients (SigV4, Shared Key, SAS against --credentials), not
  // with the node's tokens.
  if (ctx.options.door && !StartsWith(target, proto::kApiPrefix)) {
    if (IsAzureRequest(*ctx.options.door, req)) co_return co_await ServeAzure(x, parser, *ctx.options.door);
    co_return co_await ServeS3(x, parser, *ctx.options.door);
  }
  {
    bool unknown = false;
    Status refused = Authenticate(req, target, &unknown);
    if (!refused.ok()) {
      node->metrics().auth_refusals++;
      Logf(LogLevel::kWarn, "refused %s %s: %s", std::string(req.method_string()).c_str(), std::string(target).c_str(),
           refused.message().c_str());
      auto code = unknown ? http::status::unauthorized : http::status::forbidden;
      TextResponse res = req.method() == http::verb::head ? HeadErrorResponse(v, code, refused)
                                                           : ErrorResponse(v, ka && parser.is_done(), code, refused);
      co_return co_await Write(c, std::move(res));
    }
  }
  if (StartsWith(target, proto::kObjectPath) && req.method() == http::verb::put) co_return co_await ServeWrite(x, parser);
  if (StartsWith(target, proto::kReplicaPrefix)) co_return co_await ServeReplica(x, parser);
  if (StartsWith(target, proto::kClusterViewPath)) co_return co_await ServeClusterView(x, parser);
  if (!parser.is_done()) {  // a body where none belongs: refuse, and do not read it
    co_await x.Write(ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("this request takes no body")));
    co_return false;
  }
  if (target == proto::kDrainPath) co_return co_await blocking(ServeDrain);
  if (StartsWith(target, proto::kWarmPath)) co_return co_await blocking(ServeWarm);
  if (target == proto::kClusterPath) co_return co_await x.Write(ServeCluster(node, req));
  if (StartsWith(target, proto::kRestartingPath)) co_return co_await x.Write(ServeRestarting(node, req));
  if (StartsWith(target, proto::kPendingPath)) co_return co_await blocking(ServePending);
  if (StartsWith(target, proto::kListPath)) co_return co_await blocking(Json<ServeList>);
  if (StartsWith(target, proto::kVersionPath)) co_return co_await blocking(ServeVersion);
  if (StartsWith(target, proto::kCommitPath)) {
    if (req.method() != http::verb::post) {
      co_return co_await x.Write(ErrorResponse(v, ka, http::status::method_not_allowed,
                                                Status::InvalidArgument("/v1/commit takes POST")));
    }
    co_return co_await blocking(ServeCommit);
  }
  if (StartsWith(target, proto::kObjectPath) && req.method() == http::verb::delete_) co_return co_await blocking(ServeDelete);
  if (StartsWith(target, proto::kObjectPath)) {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      co_return co_await x.Write(ErrorResponse(v, ka, http::status::method_not_allowed,
                                                Status::InvalidArgument("/v1/object takes GET, HEAD, PUT and DELETE")));
    }
    co_return co_await ServeObject(x, req);
  }
  co_return co_await x.Write(ErrorResponse(v, ka, http::status::not_found,
                                            Status::NotFound("no such endpoint: " + std::string(target))));
}

// Lingering close: a client still sending a body we refused would get a reset, and lose our
// error answer with it, if we closed with its bytes unread. Stop sending, then read and drop
// what is in flight (at most 2 s, 64 MiB) until the client closes.
awaitable<void> Server::Impl::Linger(Conn& c) {
  beast::error_code ec;
  c.socket.shutdown(Socket::shutdown_send, ec);
  if (ec) co_return;
  c.Arm(Phase::kLinger, std::chrono::seconds(2));
  std::vector<char> sink(1 << 16);
  for (size_t drained = 0; drained < (64u << 20);) {
    size_t n = co_await c.socket.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
    if (ec) break;  // closed, timed out, or failed
    drained += n;
  }
  c.Disarm();
}

awaitable<void> Server::Impl::Session(std::shared_ptr<Conn> c, const Listener& l) {
  auto& m = node->metrics();
  m.connections_open++;
  m.connections_accepted++;
  bool handshake_ok = true;
  if (l.tls) {
    std::shared_ptr<asio::ssl::context> context;
    {
      std::lock_guard<std::mutex> lock(tls_mu);
      context = tls;
    }
    c->stream.UseTls(std::move(context));
    beast::error_code ec;
    c->Arm(Phase::kHeader, ctx.options.header_timeout);
    co_await c->stream.tls()->async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    c->Disarm();
    if (ec) {
      m.tls_handshake_failures++;
      handshake_ok = false;  // nothing to answer or linger for: close at once
    }
  }
  while (handshake_ok) {
    beast::error_code ec;
    if (c->buffer.size() == 0 && c->stream.tls()) {
      // Idle over TLS: the socket's bytes are records, which only the TLS stream can tell
      // apart from a close; the first ones of the next request go into the buffer.
      c->Arm(Phase::kIdle, ctx.options.idle_timeout);
      size_t n = co_await c->stream.async_read_some(c->buffer.prepare(16 * 1024), asio::redirect_error(use_awaitable, ec));
      c->Disarm();
      if (ec || n == 0) break;
      c->buffer.commit(n);
    } else if (c->buffer.size() == 0) {  // idle: waiting for the first byte of the next request
      c->Arm(Phase::kIdle, ctx.options.idle_timeout);
      bool more = false;
      while (!ec) {
        co_await c->socket.async_wait(Socket::wait_read, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        // Readable may mean a byte, the client's close, or (rarely) nothing: only a byte starts
        // the header's clock.
        char byte;
        ssize_t n = ::recv(c->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) more = true;
        if (n > 0 || n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
      }
      if (!more) break;
    }
    Parser parser;
    parser.header_limit(16 * 1024);  // oversized headers are refused by the parser
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // streamed, never held whole
    c->Arm(Phase::kHeader, ctx.options.header_timeout);
    co_await http::async_read_header(c->stream, c->buffer, parser, asio::redirect_error(use_awaitable, ec));
    c->Disarm();
    if (ec) {
      if (!c->timed_out && ec != http::error::end_of_stream && ec != asio::error::eof &&
          ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
        co_await Write(*c, ErrorResponse(11, false, http::status::bad_request,
                                         Status::InvalidArgument("malformed request: " + ec.message())));
      }
      break;
    }
    m.requests++;
    // --max-connections bounds the requests being served, not the connections held open;
    // probes and metrics are always answered, and not counted.
    std::string_view target(parser.get().target().data(), parser.get().target().size());
    bool probe = target == proto::kHealthzPath || target == proto::kReadyzPath || target == proto::kMetricsPath ||
                 l.metrics_only;
    if (!probe && ++m.requests_active > static_cast<uint64_t>(node->options().max_connections)) {
      m.requests_active--;
      m.connections_refused++;
      const auto& req = parser.get();
      auto busy = ErrorResponse(req.version(), req.keep_alive() && parser.is_done(), http::status::service_unavailable,
                                Status::Unavailable("this node is serving --max-connections requests: retry"));
      busy.set(Bv(proto::kErrorHeader), Bv(proto::kBusy));
      busy.set(http::field::retry_after, "1");
      if (!co_await Write(*c, std::move(busy))) break;
      continue;
    }
    bool keep = co_await Handle(*c, parser, l);
    if (!probe) m.requests_active--;
    if (!keep || stopping) break;
  }
  if (handshake_ok && !c->timed_out && c->socket.is_open()) co_await Linger(*c);
  c->Disarm();
  beast::error_code ignored;
  c->socket.close(ignored);
  m.connections_open--;
  ctx.sessions--;
}

awaitable<void> Server::Impl::Accept(Listener& l) {
  for (;;) {
    beast::error_code ec;
    // Each connection on a strand of its own: its coroutine and its watchdog never race.
    asio::any_io_executor strand = asio::make_strand(io);
    Socket socket = co_await l.acceptor->async_accept(strand, asio::redirect_error(use_awaitable, ec));
    if (stopping || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of file descriptors, say: count it and pause rather than spin.
      node->metrics().accept_failures++;
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (!l.local) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
    }
    auto c = std::make_shared<Conn>(std::move(socket), node);
    {
      std::lock_guard<std::mutex> lock(conns_mu);
      for (auto it = conns.begin(); it != conns.end();) it = it->expired() ? conns.erase(it) : std::next(it);
      conns.push_back(c);
    }
    ctx.sessions++;
    asio::co_spawn(strand, Session(std::move(c), l), asio::detached);
  }
}

Server::Server(Node* node, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->node = node;
  impl_->ctx.node = node;
  impl_->ctx.options = options;
  if (impl_->ctx.options.io_threads <= 0) {
    impl_->ctx.options.io_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
}

Server::~Server() { Stop(); }

int Server::io_threads() const { return impl_->ctx.options.io_threads; }

Status Server::LoadTls() {
  const ServerOptions& o = impl_->ctx.options;
  if (o.tls_cert.empty() && o.tls_key.empty()) return Status::Ok();
  if (o.tls_cert.empty() || o.tls_key.empty()) return Status::InvalidArgument("--tls-cert and --tls-key go together");
  if (!o.tls_client_ca.empty() && o.tls_cert.empty()) {
    return Status::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key (client certificates are asked for in TLS)");
  }
  SHOAL_ASSIGN_OR_RETURN(auto context, MakeTlsContext(o.tls_cert, o.tls_key, o.tls_client_ca));
  std::lock_guard<std::mutex> lock(impl_->tls_mu);
  impl_->tls = std::move(context);
  return Status::Ok();
}

Result<int> Server::Listen(const std::string& listen, bool metrics_only) {
  Listener l;
  l.metrics_only = metrics_only;
  asio::generic::stream_protocol::endpoint ep;
  l.local = StartsWith(listen, "unix:");
  l.tls = !l.local && !metrics_only && !impl_->ctx.options.tls_cert.empty();
  if (l.local) {
    l.unix_path = listen.substr(5);
    if (l.unix_path.empty()) return Status::InvalidArgument("unix: wants a socket path, e.g. unix:/run/shoal.sock");
    ::unlink(l.unix_path.c_str());  // a socket file left by a node that did not stop cleanly
    ep = asio::local::stream_protocol::endpoint(l.unix_path);
  } else {
    auto at = SplitHostPort(listen);
    if (!at.ok()) return at.status();
    beast::error_code ec;
    auto addr = asio::ip::make_address(at->host, ec);
    if (ec) return Status::InvalidArgument("'" + at->host + "' is not an IP address");
    ep = tcp::endpoint(addr, at->port);
  }
  l.acceptor = std::make_unique<Acceptor>(impl_->io);
  beast::error_code ec;
  l.acceptor->open(ep.protocol(), ec);
  if (!ec && !l.local) l.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) l.acceptor->bind(ep, ec);
  if (!ec) l.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + listen + ": " + ec.message());
  int port = 0;
  if (!l.local) {
    auto bound = l.acceptor->local_endpoint();
    // sin_port and sin6_port sit at the same offset
    port = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
  }
  impl_->listeners.push_back(std::move(l));
  return port;
}

void Server::Start() {
  // Thousands of connections need thousands of descriptors: take the hard limit.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  for (auto& l : impl_->listeners) asio::co_spawn(impl_->io, impl_->Accept(l), asio::detached);
  for (int i = 0; i < impl_->ctx.options.io_threads; i++) {
    impl_->threads.emplace_back([impl = impl_.get()] { impl->io.run(); });
    pthread_setname_np(impl_->threads.back().native_handle(), "shoald-io");
  }
}

void Server::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& l : impl_->listeners) {
    asio::post(impl_->io, [a = l.acceptor.get()] {
      beast::error_code ec;
      a->close(ec);
    });
  }
  // Every connection is closed (again every 100 ms: one accepted meanwhile). A coroutine ends
  // once what it waits for comes back: a handler on the node's serve pool, a chunk being
  // fetched, a writer's last fsync. They post back to this event loop, so it runs until every
  // one has ended; a write being finished completes (journaled) though its answer is lost.
  auto started = std::chrono::steady_clock::now();
  for (int round = 0; impl_->ctx.sessions > 0 || impl_->ctx.offloads > 0; round++) {
    if (round % 10 == 0) {
      std::lock_guard<std::mutex> lock(impl_->conns_mu);
      for (auto& weak : impl_->conns) {
        if (auto c = weak.lock()) {
          asio::post(c->socket.get_executor(), [c] {
            beast::error_code ec;
            c->socket.close(ec);
          });
        }
      }
    }
    if (round > 0 && round % 1000 == 0) {
      Logf(LogLevel::kWarn, "stopping: still waiting after %lld s for %d connections and %d handlers to end\n",
           static_cast<long long>(
               std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()),
           impl_->ctx.sessions.load(), impl_->ctx.offloads.load());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  for (auto& l : impl_->listeners) {
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
  }
}

}  // namespace shoal::node
