#pragma once

// What every route of the node's server is written with: one connection (`Conn`, with its
// timeouts), and `Exchange`, the I/O a handler does on it without ever blocking an event-loop
// thread (answers, streamed bodies in and out, blocking work handed to the node's serve pool).
// server.cc accepts connections, reads request headers and dispatches; the routes live in
// object_routes.cc (/v1/object and what writes and reads objects), cluster_routes.cc (views,
// replicas, drain, probes) and the front door's files.
//
// Thread-safety: a Conn and the Exchange over it belong to one connection's coroutine, on that
// connection's strand; the watchdog timer runs on the same strand. Nothing here is shared
// between connections except the ServeContext, whose members are thread-safe.

#include <atomic>
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it
#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"
#include "node/node.h"
#include "node/server.h"

// g++ 12 reports Asio's coroutine frames (allocated by awaitable_frame_base's own operator new,
// freed by its operator delete) as mismatched new/delete when a coroutine is a free function
// it inlines differently; a false positive, silenced for the files that write routes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace shoal::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::generic::stream_protocol::socket;  // TCP and Unix-domain alike
using asio::awaitable;
using asio::use_awaitable;
using Request = http::request<http::buffer_body>;
using Parser = http::request_parser<http::buffer_body>;
using TextResponse = http::response<http::string_body>;

// ---- what a request says, and answers -----------------------------------------------------

// The decoded query parameter `name` of the request's target (request_parse.h's QueryParam).
std::string QueryParam(const Request& req, std::string_view name);
// A header's value, empty when absent.
std::string_view Header(const Request& req, std::string_view name);
// For Beast's calls: a header name or value of net/node_protocol.h.
inline beast::string_view Bv(std::string_view s) { return beast::string_view(s.data(), s.size()); }
// The protocol's one table of codes and statuses (net/node_protocol.h).
http::status HttpStatusOf(Code code);

template <class Body>
void Prepare(http::response<Body>& res, unsigned version, bool keep_alive) {
  res.version(version);
  res.set(http::field::server, "shoald");
  res.keep_alive(keep_alive);
}

TextResponse Text(unsigned version, bool keep_alive, std::string body, const char* type,
                  http::status status = http::status::ok);
// The node protocol's JSON error {"code", "message"} with `status`, or the one the code maps to.
TextResponse ErrorResponse(unsigned version, bool keep_alive, http::status status, const Status& st);
TextResponse ErrorResponse(unsigned version, bool keep_alive, const Status& st);
// The same for an answer to a HEAD, which has no body: the code and message in the
// X-Shoal-Error and X-Shoal-Message headers, and the connection closed.
TextResponse HeadErrorResponse(unsigned version, http::status status, const Status& st);
// Counts an error answered in the node's metrics (errors_not_found / unavailable / other).
void CountError(Node* node, const Status& st);

// ---- the connection -------------------------------------------------------------------------

enum class Phase { kIdle, kHeader, kIo, kLinger };

// The bytes of a connection: the socket itself, or TLS over it once UseTls is called (before
// any I/O). Reads and writes go through it; closing, shutting down and the peer's address stay
// with the socket. A stream in Asio's and Beast's sense (get_executor, async_read_some,
// async_write_some).
class ConnStream {
 public:
  using executor_type = Socket::executor_type;
  using Tls = asio::ssl::stream<Socket&>;
  explicit ConnStream(Socket& socket) : socket_(socket) {}
  executor_type get_executor() { return socket_.get_executor(); }
  // Keeps `context` (the certificate it was made with) for the connection's life, so a reload
  // of the server's certificate (Server::LoadTls) never touches connections already open.
  void UseTls(std::shared_ptr<asio::ssl::context> context) {
    context_ = std::move(context);
    tls_ = std::make_unique<Tls>(socket_, *context_);
  }
  Tls* tls() { return tls_.get(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) tls_->async_read_some(b, std::move(handler));
          else socket_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) tls_->async_write_some(b, std::move(handler));
          else socket_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

 private:
  Socket& socket_;
  std::shared_ptr<asio::ssl::context> context_;
  std::unique_ptr<Tls> tls_;
};

// One client connection: its socket, what was read past the last request, and the watchdog
// that closes it when a phase outlasts its timeout (and counts it in the node's metrics).
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Socket s, Node* n) : socket(std::move(s)), stream(socket), timer(socket.get_executor()), node(n) {}
  Socket socket;
  ConnStream stream;  // reads and writes: plain, or TLS over `socket`
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  Node* node;
  uint64_t generation = 0;  // of the armed watchdog; a stale expiry is ignored
  bool timed_out = false;

  void Arm(Phase phase, std::chrono::milliseconds after);
  void Disarm();
};

// What all connections of one server share.
struct ServeContext {
  Node* node = nullptr;
  ServerOptions options;
  // Tasks on the node's pools, and fills waited on (WaitPast), that will post back to a connection.
  std::atomic<int> offloads{0};
  std::atomic<int> sessions{0};  // connections' coroutines not yet ended (Stop waits for them)
};

// A handler's view of its connection. Every awaitable returning bool is false when the
// connection failed (or must close); a handler then returns false too.
class Exchange {
 public:
  Exchange(Conn& c, ServeContext& ctx, bool is_local) : node(ctx.node), local(is_local), c_(c), ctx_(ctx) {}

  Conn& conn() { return c_; }
  const ServerOptions& options() const { return ctx_.options; }

  // Runs `f` on the node's serve pool (or `pool`: Node::peer_pool for what peers wait on) and
  // resumes with its result on this connection's strand. (Callers build the awaitable in a
  // statement of its own, then co_await it.)
  template <class F>
  awaitable<std::invoke_result_t<F>> Offload(F f, WorkerPool* pool = nullptr);
  // Resumes once `fill` has bytes past `pos` or its fetch is over; the caller keeps `fill` alive.
  awaitable<void> WaitPast(const std::shared_ptr<ChunkFill>& fill, size_t pos);

  awaitable<bool> Write(TextResponse res);
  awaitable<bool> WriteHeader(http::response<http::empty_body>& res);
  // "100 Continue" when the client asked for it (before a body is read).
  awaitable<bool> ContinueIfAsked(const Request& req);
  // Sends `n` body bytes; `paced`: under the node's egress limit, waiting on a timer, never in
  // a thread.
  awaitable<bool> SendBytes(const char* d, size_t n, bool paced);
  // The next piece of `left` bytes to send: all of it unpaced; paced, at most 1 MiB, once the
  // egress limit allows it (waiting on a timer, never in a thread).
  awaitable<size_t> Pace(size_t left, bool paced);
  // Sends `n` bytes of the open file `fd` from `offset` with sendfile(2), on the event loop: the
  // socket is non-blocking, so each call sends what the socket takes, and the loop waits for
  // room (async_wait) between calls. Plain connections only (never TLS: its bytes are
  // encrypted here). The pages should be in memory (ChunkStore::OpenFile sees to that), or a
  // call waits for the disk. Paced as SendBytes; *sent counts what went out.
  awaitable<bool> SendFile(int fd, uint64_t offset, size_t n, bool paced, uint64_t* sent);
  // Up to `max` bytes of the body into `into`: what is buffered first, then one read from the
  // socket. 0 only on a failed connection (then it returns false).
  awaitable<bool> ReadSome(char* into, size_t max, size_t* got);
  // Reads `n` body bytes into `w`: those already buffered first, then straight from the socket
  // into the chunk being filled; a read that fills a chunk stores it on the serve pool. A
  // refusal by the writer (a full disk, say) ends it with *st set.
  awaitable<bool> ReadBodyInto(Writer& w, uint64_t n, Status* st);
  // One CRLF-ended line of a chunked body, without its CRLF; a line longer than any honest
  // client sends sets *st.
  awaitable<bool> ReadChunkLine(std::string* line, Status* st);
  // A chunked body (RFC 9112 7.1) straight into `w`; extensions and trailers are ignored. A
  // malformed body (or a writer's refusal) sets *st.
  awaitable<bool> ReadChunkedBody(Writer& w, Status* st);
  // The request's body (Content-Length or chunked) into `w`, as the two above.
  awaitable<bool> ReadWholeBody(Parser& parser, Writer& w, Status* st);
  // Ends a write whose body was read (`connected`: the client stayed; `st`: how reading went):
  // finishes it when both are fine, and drops it (its chunks discarded) otherwise; the result
  // is the acknowledged version or why there is none.
  awaitable<Result<ObjectInfo>> EndWrite(std::shared_ptr<Writer> w, bool connected, Status st);
  // A body of known length (at most `limit` bytes) into *body; on a bad request answers 400
  // itself (and returns false).
  awaitable<bool> ReadBody(Parser& parser, uint64_t limit, std::string* body);

  Node* const node;
  const bool local;  // a Unix-socket client: not paced by the egress limit

 private:
  Conn& c_;
  ServeContext& ctx_;
};

// Offload and WaitPast hand asio's initiation only trivially destructible values (raw
// pointers): Boost 1.74's use_awaitable copies initiation arguments into a coroutine frame,
// and g++ 12 destroys non-trivial ones twice there (a double free, seen). g++ 12 also
// mishandles a lambda temporary inside a co_await expression (garbage captures), hence the
// statement of its own.
template <class F>
awaitable<std::invoke_result_t<F>> Exchange::Offload(F f, WorkerPool* pool) {
  using R = std::invoke_result_t<F>;
  F* job = new F(std::move(f));  // owned by the pool task from here
  ServeContext* ctx = &ctx_;
  WorkerPool* runs_on = pool != nullptr ? pool : &ctx->node->serve_pool();
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [ctx, job, runs_on](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        ctx->offloads++;
        runs_on->Submit([ctx, ex, handler = std::move(handler), job]() mutable {
          {
            // The executor goes before the count does: once it is 0, Stop may end the loop.
            auto strand = std::move(ex);
            R r = std::unique_ptr<F>(job)->operator()();
            asio::post(strand, [handler = std::move(handler), r = std::move(r)]() mutable { std::move(handler)(std::move(r)); });
          }
          ctx->offloads--;
        });
      },
      use_awaitable);
}

// One object's bytes on their way to a client, through the read path (memory, disk, the
// owner, a fan-in holder, the store).
struct ObjectSend {
  std::string url;
  ObjectInfo info;  // the version sent; a newer one replaces it if the store moved on first
  uint64_t offset = 0, length = 0;
  ReadMode mode = ReadMode::kRoute;
  bool pinned = false;   // the client named the version: never switch to another
  bool to_peer = false;  // counted as bytes served to peers
  // Sets the version's headers (ETag...) on the answer; called again if the version changes
  // before the header went out.
  std::function<void(const ObjectInfo&, http::response<http::empty_body>&)> set_version;
};

// Sends `res` (the header, with the first bytes) and bytes [offset, offset + length) of the
// object. On a failure before the header went out, *st says why and nothing was sent (the
// caller answers the error); after it, the caller must close the connection. False if the
// connection failed. *fetched: some bytes waited for a fetch (a miss).
awaitable<bool> SendObject(Exchange& x, ObjectSend& s, http::response<http::empty_body>& res, Status* st,
                           bool* header_sent, bool* fetched);

// ---- the routes -------------------------------------------------------------------------------
// Each answers one request whose header has been read; false if the connection must close.

// object_routes.cc
awaitable<bool> ServeObject(Exchange& x, const Request& req);          // GET|HEAD /v1/object
awaitable<bool> ServeWrite(Exchange& x, Parser& parser);               // PUT /v1/object
TextResponse ServeDelete(Node* node, const Request& req);              // DELETE /v1/object
TextResponse ServeCommit(Node* node, const Request& req);              // POST /v1/commit
TextResponse ServeVersion(Node* node, const Request& req);             // GET /v1/version
TextResponse ServeWarm(Node* node, const Request& req);                // POST /v1/warm
TextResponse ServePending(Node* node, const Request& req);             // GET /v1/pending

// The front door: every request outside /v1 and the probes when the node has a door. An
// Azure Blob request (IsAzureRequest) goes to door_azure.cc, any other to door_s3.cc.
awaitable<bool> ServeS3(Exchange& x, Parser& parser, const Door& door);
awaitable<bool> ServeAzure(Exchange& x, Parser& parser, const Door& door);
// Whether a door request is Azure Blob's (/ACCOUNT/CONTAINER/BLOB): not when the Host names a
// bucket (S3 virtual-hosted) or it is signed for S3 (SigV4 header or presigned URL); yes when
// signed Shared Key or carrying a SAS (sv and sig); else yes when its first path segment is an
// Azure account of the keys file, or, on an open door, any first segment that is not a bucket.
bool IsAzureRequest(const Door& door, const Request& req);

// cluster_routes.cc
awaitable<bool> ServeReplica(Exchange& x, Parser& parser);             // /v1/replica/*
awaitable<bool> ServeClusterView(Exchange& x, Parser& parser);         // /v1/cluster/view
TextResponse ServeCluster(Node* node, const Request& req);             // GET /v1/cluster
TextResponse ServeRestarting(Node* node, const Request& req);          // POST /v1/cluster/restarting
TextResponse ServeDrain(Node* node, const Request& req);               // /v1/drain
TextResponse ServeReadyz(Node* node, unsigned version, bool keep_alive);  // GET /readyz

}  // namespace shoal::node
