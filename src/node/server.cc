#include "node/server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <limits>
#include <list>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/request_parse.h"

namespace shoal::node {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
// TCP and Unix-domain connections alike (a Unix socket is a client on this host).
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using asio::awaitable;
using asio::use_awaitable;
using Request = http::request<http::buffer_body>;
using Parser = http::request_parser<http::buffer_body>;

// ---- parsing what a client sends ----------------------------------------------------------

// (request_parse.h's, qualified: this overload would hide it.)
std::string QueryParam(const Request& req, std::string_view name) {
  return ::shoal::node::QueryParam(std::string_view(req.target().data(), req.target().size()), name);
}

std::string_view Header(const Request& req, std::string_view name) {
  auto v = req[beast::string_view(name.data(), name.size())];
  return std::string_view(v.data(), v.size());
}

// For Beast's calls: a header name or value of net/node_protocol.h.
beast::string_view Bv(std::string_view s) { return beast::string_view(s.data(), s.size()); }

// The protocol's one table of codes and statuses (net/node_protocol.h).
http::status HttpStatusOf(Code code) { return static_cast<http::status>(proto::HttpStatusOf(code)); }

template <class Body>
void Prepare(http::response<Body>& res, unsigned version, bool keep_alive) {
  res.version(version);
  res.set(http::field::server, "shoald");
  res.keep_alive(keep_alive);
}

using TextResponse = http::response<http::string_body>;

TextResponse Text(unsigned version, bool keep_alive, std::string body, const char* type,
                  http::status status = http::status::ok) {
  TextResponse res{status, version};
  Prepare(res, version, keep_alive);
  res.set(http::field::content_type, type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

TextResponse ErrorResponse(unsigned version, bool keep_alive, http::status status, const Status& st) {
  return Text(version, keep_alive,
              nlohmann::json{{proto::kCodeField, CodeName(st.code())}, {proto::kMessageField, st.message()}}.dump() + "\n",
              "application/json", status);
}

TextResponse ErrorResponse(unsigned version, bool keep_alive, const Status& st) {
  return ErrorResponse(version, keep_alive, HttpStatusOf(st.code()), st);
}

void CountError(Node* node, const Status& st) {
  if (st.code() == Code::kNotFound) node->metrics().errors_not_found++;
  else if (st.code() == Code::kUnavailable) node->metrics().errors_unavailable++;
  else node->metrics().errors_other++;
}

// ---- the connection ----------------------------------------------------------------------

enum class Phase { kIdle, kHeader, kIo, kLinger };

// One client connection: its socket, what was read past the last request, and the watchdog
// that closes it when a phase outlasts its timeout. Lives on its own strand: the coroutine
// serving it and the watchdog never run at once.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Socket s, Node* n) : socket(std::move(s)), timer(socket.get_executor()), node(n) {}
  Socket socket;
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  Node* node;
  uint64_t generation = 0;  // of the armed watchdog; a stale expiry is ignored
  bool timed_out = false;

  void Arm(Phase phase, std::chrono::milliseconds after) {
    uint64_t gen = ++generation;
    timer.expires_after(after);
    timer.async_wait([self = shared_from_this(), gen, phase](beast::error_code ec) {
      if (ec || gen != self->generation) return;
      self->timed_out = true;
      auto& m = self->node->metrics();
      if (phase == Phase::kIdle) m.timeouts_idle++;
      if (phase == Phase::kHeader) m.timeouts_header++;
      if (phase == Phase::kIo) m.timeouts_io++;
      beast::error_code ignored;
      self->socket.close(ignored);  // ends the operation the coroutine waits in
    });
  }
  void Disarm() {
    ++generation;
    timer.cancel();
  }
};

struct Listener {
  std::unique_ptr<Acceptor> acceptor;
  std::string unix_path;  // the socket file to remove on Stop
  bool metrics_only = false;
  bool local = false;
};

}  // namespace

struct Server::Impl {
  Node* node;
  ServerOptions options;
  asio::io_context io;
  std::list<Listener> listeners;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<int> offloads{0};  // tasks on the node's pools that will post back here
  std::mutex conns_mu;
  std::list<std::weak_ptr<Conn>> conns;  // guarded by conns_mu; closed on Stop

  awaitable<void> Accept(Listener& l);
  awaitable<void> Session(std::shared_ptr<Conn> c, const Listener& l);
  awaitable<bool> Handle(Conn& c, Parser& parser, const Listener& l);
  awaitable<bool> ServeObject(Conn& c, const Request& req, bool local);
  awaitable<bool> ServeWrite(Conn& c, Parser& parser);
  awaitable<bool> ServeReplica(Conn& c, Parser& parser);
  awaitable<bool> ServeClusterView(Conn& c, Parser& parser);

  // Runs `f` on the node's serve pool and resumes with its result on this connection's strand.
  template <class F>
  awaitable<std::invoke_result_t<F>> Offload(F f);
  // Resumes once `fill` has bytes past `pos` or its fetch is over.
  awaitable<void> WaitPast(const std::shared_ptr<ChunkFill>& fill, size_t pos);

  awaitable<bool> Write(Conn& c, TextResponse res);
  awaitable<bool> WriteHeader(Conn& c, http::response<http::empty_body>& res);
  // Sends `n` body bytes; `paced`: under the node's egress limit, waiting on a timer, never in
  // a thread.
  awaitable<bool> SendBytes(Conn& c, const char* d, size_t n, bool paced);
  awaitable<bool> ReadBodyInto(Conn& c, Writer& w, uint64_t n, Status* st);
  awaitable<bool> ReadChunkLine(Conn& c, std::string* line, Status* st);
  awaitable<bool> ReadChunkedBody(Conn& c, Writer& w, Status* st);
  awaitable<bool> ReadBody(Conn& c, Parser& parser, uint64_t limit, std::string* body);
  awaitable<void> Linger(Conn& c);
};

// (Callers build the awaitable in a statement of its own, then co_await it: g++ 12 mishandles a
// lambda temporary inside a co_await expression, seen as garbage captures.)
// Offload and WaitPast hand asio's initiation only trivially destructible values (raw
// pointers): Boost 1.74's use_awaitable copies initiation arguments into a coroutine frame,
// and g++ 12 destroys non-trivial ones twice there (a double free, seen).
template <class F>
awaitable<std::invoke_result_t<F>> Server::Impl::Offload(F f) {
  using R = std::invoke_result_t<F>;
  F* job = new F(std::move(f));  // owned by the pool task from here
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
      [this, job](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        offloads++;
        node->serve_pool().Submit([this, ex, handler = std::move(handler), job]() mutable {
          R r = std::unique_ptr<F>(job)->operator()();
          asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable { std::move(handler)(std::move(r)); });
          offloads--;
        });
      },
      use_awaitable);
}

// The caller keeps `fill` alive until this resumes.
awaitable<void> Server::Impl::WaitPast(const std::shared_ptr<ChunkFill>& fill, size_t pos) {
  ChunkFill* f = fill.get();
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [f, pos](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        f->WhenPast(pos, [ex, h] { asio::post(ex, [h] { std::move(*h)(); }); });
      },
      use_awaitable);
}

awaitable<bool> Server::Impl::Write(Conn& c, TextResponse res) {
  beast::error_code ec;
  c.Arm(Phase::kIo, options.io_timeout);
  co_await http::async_write(c.socket, res, asio::redirect_error(use_awaitable, ec));
  c.Disarm();
  co_return !ec && res.keep_alive();
}

awaitable<bool> Server::Impl::WriteHeader(Conn& c, http::response<http::empty_body>& res) {
  beast::error_code ec;
  http::response_serializer<http::empty_body> sr{res};
  c.Arm(Phase::kIo, options.io_timeout);
  co_await http::async_write_header(c.socket, sr, asio::redirect_error(use_awaitable, ec));
  c.Disarm();
  co_return !ec;
}

awaitable<bool> Server::Impl::SendBytes(Conn& c, const char* d, size_t n, bool paced) {
  paced = paced && node->egress().rate() > 0;
  for (size_t done = 0; done < n;) {
    size_t piece = paced ? std::min<size_t>(n - done, 1 << 20) : n - done;  // slices pace the stream
    if (paced) {
      auto wait = node->egress().Reserve(piece);
      if (wait.count() > 0) {
        asio::steady_timer t(c.socket.get_executor(), wait);
        beast::error_code ignored;
        co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
      }
    }
    beast::error_code ec;
    c.Arm(Phase::kIo, options.io_timeout);
    co_await asio::async_write(c.socket, asio::buffer(d + done, piece), asio::redirect_error(use_awaitable, ec));
    c.Disarm();
    if (ec) co_return false;
    done += piece;
  }
  co_return true;
}

// The version a peer or routing client names (X-Shoal-Etag and X-Shoal-Size), if it does;
// kInvalidArgument for a size that is not a number.
Result<std::optional<ObjectInfo>> NamedVersion(const Request& req) {
  std::string etag(Header(req, proto::kEtagHeader));
  std::string_view size = Header(req, proto::kSizeHeader);
  if (etag.empty() || size.empty()) return std::optional<ObjectInfo>();
  auto n = ParseNumber(size);
  if (!n) return Status::InvalidArgument("X-Shoal-Size '" + std::string(size.substr(0, 32)) + "' is not a size");
  return std::optional<ObjectInfo>(ObjectInfo{"", *n, etag, 0});
}

// GET|HEAD /v1/object. False if the connection must close.
awaitable<bool> Server::Impl::ServeObject(Conn& c, const Request& req, bool local) {
  const auto started = std::chrono::steady_clock::now();
  bool fetched = false;  // some of it waited for a fetch: a miss
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, proto::kUrlParam);
  bool head = req.method() == http::verb::head;
  auto fail = [&](const Status& st) -> TextResponse {
    CountError(node, st);
    auto res = ErrorResponse(v, ka && !head, st);
    if (head) {  // no body may follow a HEAD answer: the error goes in headers
      std::string msg = st.message();
      for (char& ch : msg) {
        if (ch == '\r' || ch == '\n') ch = ' ';
      }
      res.set(Bv(proto::kErrorHeader), CodeName(st.code()));
      res.set(Bv(proto::kMessageHeader), msg);
      res.body().clear();
      res.keep_alive(false);
    }
    return res;
  };
  if (url.empty()) co_return co_await Write(c, fail(Status::InvalidArgument("missing ?url=az://container/key")));
  // Peers and routing clients name the mode of the read and the version they want (so no
  // HEAD goes to the store per chunk); others get the current version.
  std::string_view how = Header(req, proto::kReadHeader);
  ReadMode mode = how == proto::kReadForwarded   ? ReadMode::kForwarded
                  : how == proto::kReadCacheOnly ? ReadMode::kCacheOnly
                  : how == proto::kReadHeld      ? ReadMode::kHeld
                                                 : ReadMode::kRoute;
  auto named = NamedVersion(req);
  if (!named.ok()) co_return co_await Write(c, fail(named.status()));
  bool pinned = named->has_value();
  bool to_peer = !Header(req, proto::kFromHeader).empty();
  if (auto epoch = ParseNumber(Header(req, proto::kEpochHeader))) node->cluster().SawEpoch(*epoch);
  // (No co_await inside ?: here and below: g++ 12 miscompiles it.)
  Result<ObjectInfo> info = Status::Unavailable("");
  if (pinned) {
    info = **named;
  } else {
    auto stat = Offload([n = node, url] { return n->objects().Stat(url); });
    info = co_await std::move(stat);
  }
  if (!info.ok()) co_return co_await Write(c, fail(info.status()));
  uint64_t offset = 0, length = info->size;
  http::status status = http::status::ok;
  auto range = req.find(http::field::range);
  if (range != req.end()) {
    std::string_view spec(range->value().data(), range->value().size());
    if (!ParseRange(spec, info->size, &offset, &length)) {
      auto res = Text(v, ka, "", "application/json", http::status::range_not_satisfiable);
      res.set(http::field::content_range, "bytes */" + std::to_string(info->size));
      co_return co_await Write(c, std::move(res));
    }
    status = http::status::partial_content;
  }
  const uint64_t chunk_size = node->options().chunk_size;
  if (mode == ReadMode::kHeld && (offset % chunk_size) + length > chunk_size) {
    co_return co_await Write(c, fail(Status::InvalidArgument("a held read is of one chunk's bytes")));
  }
  http::response<http::empty_body> res{status, v};
  Prepare(res, v, ka);
  auto set_version = [&](const ObjectInfo& at) {
    res.set(http::field::etag, "\"" + at.etag + "\"");
    // An upload of a write through this node: the version readers of the write had pinned.
    if (std::string as = node->objects().ChunkVersion(url, at.etag); as != at.etag) res.set(Bv(proto::kWrittenAsHeader), as);
  };
  set_version(*info);
  res.set(Bv(proto::kSizeHeader), std::to_string(info->size));
  res.set(Bv(proto::kStateHeader), Bv(node->writes().Pending(url) ? proto::kStateLocal : proto::kStateDurable));
  res.set(http::field::content_type, "application/octet-stream");
  if (auto view = node->cluster().view()) res.set(Bv(proto::kEpochHeader), std::to_string(view->epoch()));
  if (status == http::status::partial_content) {
    res.set(http::field::content_range, "bytes " + std::to_string(offset) + "-" +
                                            std::to_string(offset + length - 1) + "/" +
                                            std::to_string(info->size));
  }
  res.content_length(length);
  if (head) co_return co_await WriteHeader(c, res) && ka;

  // Fan-in: a node asking for a chunk this node is already sending to others may be sent to
  // a node that holds it instead (SwarmTracker).
  std::string swarm_chunk;
  if (to_peer && mode == ReadMode::kForwarded) {
    swarm_chunk = url + "\n" + info->etag + "\n" + std::to_string(offset / chunk_size);
    std::string failed(Header(req, proto::kFailedHolderHeader));
    if (!failed.empty()) {
      node->swarm().Forget(swarm_chunk, failed);
      node->swarm().Acquire(swarm_chunk);
    } else {
      std::string holder = node->swarm().Route(swarm_chunk, std::string(Header(req, proto::kEndpointHeader)));
      if (!holder.empty()) {
        node->metrics().fan_in_redirects++;
        auto go = Text(v, ka, "", "application/octet-stream", http::status::temporary_redirect);
        go.set(Bv(proto::kHolderHeader), holder);
        go.set(http::field::location, "http://" + holder + std::string(req.target()));
        if (auto view = node->cluster().view()) go.set(Bv(proto::kEpochHeader), std::to_string(view->epoch()));
        co_return co_await Write(c, std::move(go));
      }
    }
  }
  struct Sent {  // the copy counted by Route/Acquire is done, however this returns
    Node* node;
    const std::string& chunk;
    ~Sent() {
      if (!chunk.empty()) node->swarm().Release(chunk);
    }
  } sent{node, swarm_chunk};

  // The header goes out with the first bytes, so a failure before them (the store's, say)
  // is still an error answer rather than a cut connection.
  bool header_sent = false, broken = false;
  auto send = [&](const char* d, size_t n) -> awaitable<bool> {
    if (!header_sent) {
      if (!co_await WriteHeader(c, res)) co_return false;
      header_sent = true;
    }
    if (!co_await SendBytes(c, d, n, !local)) co_return false;
    node->metrics().bytes_served += n;
    if (to_peer) node->metrics().bytes_served_peers += n;
    if (local) node->metrics().bytes_served_local += n;
    co_return true;
  };
  Status st;
  for (int attempt = 0; attempt < 2; attempt++) {
    uint64_t pos = offset;
    const uint64_t end = offset + length;
    while (st.ok() && !broken && pos < end) {
      const uint64_t index = pos / chunk_size, base = index * chunk_size;
      const ObjectInfo at = *info;
      Node* n = node;
      auto open = Offload([n, url, at, index, mode] {
        auto r = n->reads().OpenChunk(url, at, index, mode);
        if (r.ok()) n->reads().Prefetch(url, at, index, mode);
        return r;
      });
      Result<ChunkSource> src = co_await std::move(open);
      if (!src.ok()) {
        st = src.status();
        break;
      }
      if (src->data) {
        const std::string& data = *src->data;
        if (pos - base >= data.size()) {
          st = Status::Corruption(url + ": chunk " + std::to_string(index) + " on disk is shorter than the object says");
          break;
        }
        uint64_t n = std::min<uint64_t>(data.size() - (pos - base), end - pos);
        broken = !co_await send(data.data() + (pos - base), n);
        pos += n;
        continue;
      }
      // Following the chunk's fetch as its bytes arrive.
      fetched = true;
      const std::shared_ptr<ChunkFill> fill = src->fill;
      const uint64_t upto = std::min(end, base + fill->length());
      while (pos < upto && !broken) {
        co_await WaitPast(fill, pos - base);
        uint64_t filled = base + fill->filled();
        if (filled <= pos) {
          st = node->reads().FetchError(url, *info, index);
          break;
        }
        uint64_t n = std::min(filled, upto) - pos;
        broken = !co_await send(fill->data() + (pos - base), n);
        pos += n;
      }
    }
    if (broken) co_return false;
    if (st.code() != Code::kPreconditionFailed || pinned || header_sent || attempt > 0) break;
    // The store has a newer version than the cached metadata says, and nothing was sent:
    // serve the new version instead. Mid-body a client pinned to the first ETag closes and
    // reports the change rather than stitching two versions.
    node->objects().Invalidate(url);
    auto restat = Offload([n = node, url] { return n->objects().Stat(url); });
    Result<ObjectInfo> fresh = co_await std::move(restat);
    if (!fresh.ok()) {
      st = fresh.status();
    } else if (fresh->size != info->size) {
      st = Status::PreconditionFailed(url + " changed size while being read: read it again");
    } else {
      info = fresh;
      set_version(*info);
      st = Status::Ok();
      continue;
    }
    break;
  }
  if (!st.ok()) {
    if (!header_sent) co_return co_await Write(c, fail(st));
    CountError(node, st);
    co_return false;  // mid-body: the only honest signal left is closing the connection
  }
  bool ok = header_sent || co_await WriteHeader(c, res);  // an empty object or range: the header alone
  (fetched ? node->metrics().op_miss : node->metrics().op_hit).Observe(std::chrono::steady_clock::now() - started);
  co_return ok && ka;
}

// Reads `n` body bytes into `w`: those already buffered first, then straight from the socket
// into the chunk being filled; a read that fills a chunk stores it on the serve pool. False if
// the connection failed; a refusal by the writer (a full disk, say) ends it with *st set.
awaitable<bool> Server::Impl::ReadBodyInto(Conn& c, Writer& w, uint64_t n, Status* st) {
  size_t buffered = std::min<uint64_t>(c.buffer.size(), n);
  if (buffered > 0) {
    auto append = Offload([&w, d = static_cast<const char*>(c.buffer.data().data()), buffered] {
      return w.Append(d, buffered);
    });
    *st = co_await std::move(append);
    c.buffer.consume(buffered);
    n -= buffered;
  }
  while (st->ok() && n > 0) {
    auto [space, room] = w.Space();
    size_t want = std::min<uint64_t>(room, n);
    beast::error_code ec;
    c.Arm(Phase::kIo, options.io_timeout);
    size_t got = co_await c.socket.async_read_some(asio::buffer(space, want), asio::redirect_error(use_awaitable, ec));
    c.Disarm();
    if (ec) co_return false;
    n -= got;
    if (got == room) {
      auto commit = Offload([&w, got] { return w.Commit(got); });
      *st = co_await std::move(commit);  // a whole chunk: to disk and copies
    } else {
      *st = w.Commit(got);  // only counts the bytes
    }
  }
  co_return true;
}

// One CRLF-ended line of a chunked body (size lines, the CRLF after data, trailers), without
// its CRLF. False if the connection failed; a line longer than any honest client sends sets *st.
awaitable<bool> Server::Impl::ReadChunkLine(Conn& c, std::string* line, Status* st) {
  for (;;) {
    std::string_view have(static_cast<const char*>(c.buffer.data().data()), c.buffer.size());
    size_t consumed = 0;
    ChunkLine scan = ScanChunkLine(have, line, &consumed);
    if (scan == ChunkLine::kLine) {
      c.buffer.consume(consumed);
      co_return true;
    }
    if (scan == ChunkLine::kTooLong) {
      *st = Status::InvalidArgument("malformed chunked body: a line longer than 8 KiB");
      co_return true;
    }
    beast::error_code ec;
    c.Arm(Phase::kIo, options.io_timeout);
    size_t got = co_await c.socket.async_read_some(c.buffer.prepare(64 * 1024), asio::redirect_error(use_awaitable, ec));
    c.Disarm();
    if (ec) co_return false;
    c.buffer.commit(got);
  }
}

// A chunked body (RFC 9112 7.1) decoded by hand: each chunk's data goes from the socket
// straight into `w`, as a body of known length does. Extensions and trailers are read and
// ignored. False if the connection failed; a malformed body (or a writer's refusal) sets *st.
awaitable<bool> Server::Impl::ReadChunkedBody(Conn& c, Writer& w, Status* st) {
  std::string line;
  while (st->ok()) {
    if (!co_await ReadChunkLine(c, &line, st)) co_return false;
    if (!st->ok()) break;
    auto parsed = ParseChunkSize(line);
    if (!parsed.ok()) {
      *st = parsed.status();
      break;
    }
    const uint64_t size = *parsed;
    if (size == 0) {  // the last chunk; then trailers, up to the empty line that ends the body
      do {
        if (!co_await ReadChunkLine(c, &line, st)) co_return false;
      } while (st->ok() && !line.empty());
      break;
    }
    if (!co_await ReadBodyInto(c, w, size, st)) co_return false;
    if (!st->ok()) break;
    if (!co_await ReadChunkLine(c, &line, st)) co_return false;
    if (st->ok() && !line.empty()) {
      *st = Status::InvalidArgument("malformed chunked body: a chunk's data is longer than its size line says");
    }
  }
  co_return true;
}

// PUT /v1/object: streams the body into a Writer; answers 201 with the local version once the
// write is acknowledged (on disk, journaled). False if the connection must close.
awaitable<bool> Server::Impl::ServeWrite(Conn& c, Parser& parser) {
  const auto started = std::chrono::steady_clock::now();
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, proto::kUrlParam);
  auto begin = Offload([n = node, url] { return n->writes().BeginWrite(url); });
  auto begun = co_await std::move(begin);
  if (!begun.ok()) {
    co_await Write(c, ErrorResponse(v, false, begun.status()));
    co_return false;  // the body was not read: the connection cannot be reused
  }
  std::shared_ptr<Writer> w = std::move(*begun);
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    beast::error_code ec;
    c.Arm(Phase::kIo, options.io_timeout);
    co_await asio::async_write(c.socket, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")),
                               asio::redirect_error(use_awaitable, ec));
    c.Disarm();
    if (ec) co_return false;
  }
  // The body bypasses Beast's parser, whether of known length or chunked: large reads from the
  // socket straight into the chunk being filled (the parser reads 64 KiB at a time and copies
  // once more; on loopback this halved the node's CPU per written GiB).
  Status st;
  bool connected;
  if (req.chunked()) {
    connected = co_await ReadChunkedBody(c, *w, &st);
  } else {
    connected = co_await ReadBodyInto(c, *w, parser.content_length().value_or(0), &st);
  }
  Result<ObjectInfo> info = Status::Unavailable("the client went away mid-body: nothing was acknowledged");
  if (!st.ok()) {
    info = st;
  } else if (connected) {
    auto finish = Offload([w] { return w->Finish(); });
    info = co_await std::move(finish);
  }
  // An unfinished writer discards its chunks: disk work, so on the pool too.
  auto discard = Offload([w = std::move(w)]() mutable {
    w.reset();
    return 0;
  });
  co_await std::move(discard);
  if (!connected) co_return false;
  if (!info.ok()) {
    CountError(node, info.status());
    co_await Write(c, ErrorResponse(v, false, info.status()));
    co_return false;
  }
  auto res = Text(v, ka,
                  nlohmann::json{{"url", url}, {"size", info->size}, {"etag", info->etag}, {"state", proto::kStateLocal}}.dump() + "\n",
                  "application/json", http::status::created);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set(Bv(proto::kStateHeader), Bv(proto::kStateLocal));
  bool ok = co_await Write(c, std::move(res));
  node->metrics().op_write_ack.Observe(std::chrono::steady_clock::now() - started);
  co_return ok;
}

// Reads a body of known length (at most `limit` bytes) into *body; on a bad request answers
// 400 itself. False if the connection must close.
awaitable<bool> Server::Impl::ReadBody(Conn& c, Parser& parser, uint64_t limit, std::string* body) {
  const Request& req = parser.get();
  uint64_t length = parser.content_length().value_or(0);
  if (req.chunked() || length > limit) {
    co_await Write(c, ErrorResponse(req.version(), false, http::status::bad_request,
                                    Status::InvalidArgument("this request takes a body of at most " +
                                                            FormatBytes(limit) + " with a Content-Length")));
    co_return false;
  }
  body->resize(length);
  size_t have = std::min<uint64_t>(c.buffer.size(), length);
  std::memcpy(body->data(), c.buffer.data().data(), have);
  c.buffer.consume(have);
  beast::error_code ec;
  if (have < length) {
    c.Arm(Phase::kIo, options.io_timeout);
    co_await asio::async_read(c.socket, asio::buffer(body->data() + have, length - have),
                              asio::redirect_error(use_awaitable, ec));
    c.Disarm();
  }
  co_return !ec;
}

// GET /v1/pending?prefix=P: the writes not yet durable under P (for `shoal flush`).
TextResponse ServePending(Node* node, const Request& req) {
  std::string prefix = QueryParam(req, proto::kPrefixParam);
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0, bytes_done = 0;
  std::string last_error;
  for (const auto& p : node->writes().PendingUploads(prefix)) {
    uint64_t done = std::min(p.record.size, p.parts_done * p.record.chunk_size);
    list.push_back({{"url", p.record.url}, {"size", p.record.size}, {"uploaded", done},
                    {"written_unix_ms", p.record.created_unix_ms}, {"overdue", p.overdue},
                    {"failures", p.failures}, {"last_error", p.last_error}});
    bytes += p.record.size;
    bytes_done += done;
    if (!p.last_error.empty()) last_error = p.last_error;
  }
  nlohmann::json body = {{"objects", list.size()}, {"bytes", bytes}, {"uploaded", bytes_done},
                         {"last_error", last_error}, {"pending", list},
                         {"copies", node->replicas().CopiesUnder(prefix)}};  // held for other nodes
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// DELETE /v1/object?url=URL: the object goes, and so do its writes not yet uploaded (204).
TextResponse ServeDelete(Node* node, const Request& req) {
  std::string url = QueryParam(req, proto::kUrlParam);
  Status st = url.empty() ? Status::InvalidArgument("missing ?url=az://container/key") : node->writes().Delete(url);
  if (!st.ok()) {
    CountError(node, st);
    return ErrorResponse(req.version(), req.keep_alive(), st);
  }
  TextResponse res{http::status::no_content, req.version()};
  Prepare(res, req.version(), req.keep_alive());
  return res;
}

// POST /v1/commit?prefix=URL: writes the prefix's _SHOAL_COMMITTED marker (201 with it) once
// everything under it is durable; 412 while writes are pending.
TextResponse ServeCommit(Node* node, const Request& req) {
  auto marker = node->Commit(QueryParam(req, proto::kPrefixParam));
  if (!marker.ok()) {
    CountError(node, marker.status());
    return ErrorResponse(req.version(), req.keep_alive(), marker.status());
  }
  return Text(req.version(), req.keep_alive(), std::move(marker).value(), "application/json", http::status::created);
}

// POST /v1/warm?url=URL&index=I[&route=1] with X-Shoal-Etag and X-Shoal-Size: fetch that
// chunk into this node's cache (from the store, or the previous owner; route=1: through its
// owner, as a read would) and answer {"hit": bool}.
TextResponse ServeWarm(Node* node, const Request& req) {
  std::string url = QueryParam(req, proto::kUrlParam);
  auto info = NamedVersion(req);
  auto index = ParseNumber(QueryParam(req, proto::kIndexParam));
  if (url.empty() || !info.ok() || !info->has_value() || !index || req.method() != http::verb::post) {
    return ErrorResponse(req.version(), req.keep_alive(), http::status::bad_request,
                         Status::InvalidArgument("POST /v1/warm?url=URL&index=N with X-Shoal-Etag and X-Shoal-Size"));
  }
  auto hit = node->reads().Warm(url, **info, *index, QueryParam(req, proto::kRouteParam) == proto::kFlagOn);
  if (!hit.ok()) {
    CountError(node, hit.status());
    return ErrorResponse(req.version(), req.keep_alive(), hit.status());
  }
  return Text(req.version(), req.keep_alive(), nlohmann::json{{"hit", *hit}}.dump() + "\n", "application/json");
}

// POST /v1/drain: the node leaves the cluster and hands off what it has not uploaded (202);
// GET /v1/drain: how far it got.
TextResponse ServeDrain(Node* node, const Request& req) {
  if (req.method() == http::verb::post) {
    Status st = node->replicas().StartDrain();
    if (!st.ok()) return ErrorResponse(req.version(), req.keep_alive(), st);
  }
  auto d = node->replicas().GetDrainState();
  nlohmann::json body = {{"state", d.state}, {"writes", d.writes}, {"write_bytes", d.write_bytes},
                         {"copies", d.copies}, {"left", d.left}, {"error", d.error}};
  if (auto v = node->cluster().view()) body["epoch"] = v->epoch();
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// GET /readyz: 503 while this node is in a cluster (--peers, --etcd) and holds no view of its
// membership yet (joining, or etcd not reached), or, with etcd, cannot see it now (etcd does
// not answer, or the lease was lost), with why; "ready" otherwise.
TextResponse ServeReadyz(Node* node, unsigned version, bool keep_alive) {
  const NodeOptions& o = node->options();
  if ((!o.peers.empty() || !o.etcd.empty()) && !node->cluster().view()) {
    std::string where = o.etcd.empty() ? "from the members of --peers" : "in etcd " + o.etcd;
    return ErrorResponse(version, keep_alive, http::status::service_unavailable,
                         Status::Unavailable("not ready: no view of the cluster's membership yet (looked for it " +
                                             where + "); see this node's log"));
  }
  auto health = node->cluster().MembershipHealth();
  if (!health.problem.empty()) {
    return ErrorResponse(version, keep_alive, http::status::service_unavailable,
                         Status::Unavailable("not ready: cannot see the membership: " + health.problem));
  }
  return Text(version, keep_alive, "ready\n", "text/plain");
}

// GET /v1/cluster: the membership as this node routes by, as JSON (for `shoal status`).
TextResponse ServeCluster(Node* node, const Request& req) {
  auto view = node->cluster().view();
  nlohmann::json body = {{"self", node->id()}, {"chunk_size", node->options().chunk_size}};
  if (!view) {
    body["epoch"] = 0;
    body["members"] = nlohmann::json::array();
  } else {
    auto counts = view->placement().SlotCounts();
    auto peers = view->peers();
    body["epoch"] = view->epoch();
    body["slots"] = view->placement().slots();
    for (size_t i = 0; i < peers.size(); i++) {
      body["members"].push_back({{"id", peers[i].member.id}, {"endpoint", peers[i].endpoint},
                                 {"weight", peers[i].member.weight}, {"domain", peers[i].member.domain},
                                 {"slots", counts[i]}});
    }
  }
  return Text(req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// Replication between nodes:
//   PUT  /v1/replica/chunk?id=&index=&url=   a chunk of another node's write (body)
//   POST /v1/replica/commit?id=&size=&chunk_size=&created=&origin=&url=   the copy is whole
//   POST /v1/replica/adopt?id=               a draining origin hands the write over
//   POST /v1/replica/drop?id=&chunks=&url=   the origin uploaded it, or the write failed
//   GET  /v1/replica/state?id=               {"state": "pending"|"unknown", "incarnation"}
awaitable<bool> Server::Impl::ServeReplica(Conn& c, Parser& parser) {
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  std::string id = QueryParam(req, proto::kIdParam), url = QueryParam(req, proto::kUrlParam);
  auto answer = [&](const Status& st) {
    return st.ok() ? Text(v, ka, "ok\n", "text/plain") : ErrorResponse(v, ka, st);
  };
  if (id.empty()) {
    co_await Write(c, ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("missing ?id=")));
    co_return false;
  }
  if (StartsWith(target, proto::kReplicaChunkPath) && req.method() == http::verb::put) {
    auto index = ParseNumber(QueryParam(req, proto::kIndexParam));
    std::string body;
    if (!co_await ReadBody(c, parser, node->options().chunk_size, &body)) co_return false;
    if (!index) co_return co_await Write(c, answer(Status::InvalidArgument("a replica chunk names its ?index=")));
    auto put_chunk = Offload([n = node, id, url, i = *index, &body] { return n->replicas().PutChunk(id, url, i, body); });
    Status st = co_await std::move(put_chunk);
    co_return co_await Write(c, answer(st));
  }
  if (!parser.is_done()) {
    co_await Write(c, ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("this request takes no body")));
    co_return false;
  }
  if (StartsWith(target, proto::kReplicaCommitPath) && req.method() == http::verb::post) {
    engine::UploadRecord r;
    r.id = id;
    r.url = url;
    auto size = ParseNumber(QueryParam(req, proto::kSizeParam)),
         chunk = ParseNumber(QueryParam(req, proto::kChunkSizeParam)),
         created = ParseNumber(QueryParam(req, proto::kCreatedParam));
    r.origin = QueryParam(req, proto::kOriginParam);
    r.origin_incarnation = QueryParam(req, proto::kIncarnationParam);
    if (r.origin.empty() || !size || !chunk || *chunk == 0 || !created) {
      co_return co_await Write(c, answer(Status::InvalidArgument(
                                      "a replica commit names its origin, size, chunk size and creation time")));
    }
    r.size = *size;
    r.chunk_size = *chunk;
    r.created_unix_ms = static_cast<int64_t>(*created);
    bool adopt = QueryParam(req, proto::kAdoptParam) == proto::kFlagOn;
    auto commit_copy = Offload([n = node, r, adopt] { return n->replicas().Commit(r, adopt); });
    Status st = co_await std::move(commit_copy);
    co_return co_await Write(c, answer(st));
  }
  if (StartsWith(target, proto::kReplicaAdoptPath) && req.method() == http::verb::post) {
    auto adopt_copy = Offload([n = node, id] { return n->replicas().Adopt(id); });
    Status st = co_await std::move(adopt_copy);
    co_return co_await Write(c, answer(st));
  }
  if (StartsWith(target, proto::kReplicaDropPath) && req.method() == http::verb::post) {
    auto chunks = ParseNumber(QueryParam(req, proto::kChunksParam));
    if (!chunks) co_return co_await Write(c, answer(Status::InvalidArgument("a replica drop names its ?chunks=")));
    auto drop = Offload([n = node, id, url, k = *chunks] {
      n->replicas().Drop(id, url, k);
      return 0;
    });
    co_await std::move(drop);
    co_return co_await Write(c, answer(Status::Ok()));
  }
  if (StartsWith(target, proto::kReplicaStatePath)) {
    auto ask_state = Offload([n = node, id] { return n->writes().WriteState(id); });
    std::string state = co_await std::move(ask_state);
    nlohmann::json body = {{"state", state}, {"incarnation", node->incarnation()}};
    co_return co_await Write(c, Text(v, ka, body.dump() + "\n", "application/json"));
  }
  co_return co_await Write(c, answer(Status::InvalidArgument("no such replica request")));
}

// GET /v1/cluster/view[?current=1]: the placement in binary (cluster::View::Encode), for
// clients that route chunks themselves and nodes joining. POST: a peer's newer view.
awaitable<bool> Server::Impl::ServeClusterView(Conn& c, Parser& parser) {
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  if (req.method() == http::verb::post) {
    std::string body;
    if (!co_await ReadBody(c, parser, 1ull << 30, &body)) co_return false;
    auto view = cluster::View::Decode(body);
    if (!view.ok()) {
      co_await Write(c, ErrorResponse(v, false, http::status::bad_request, view.status()));
      co_return false;
    }
    auto adopt_view = Offload([n = node, vw = *view] { return n->cluster().AdoptView(vw); });
    bool taken = co_await std::move(adopt_view);
    co_return co_await Write(c, Text(v, ka, taken ? "adopted\n" : "kept a newer or equal epoch\n", "text/plain"));
  }
  auto view = node->cluster().view();
  if (!view) {
    co_return co_await Write(c, ErrorResponse(v, ka, http::status::not_found,
                                              Status::NotFound("this node is not in a cluster (started without --peers)")));
  }
  auto res = Text(v, ka, view->Encode(QueryParam(req, proto::kCurrentParam) == proto::kFlagOn), "application/octet-stream");
  res.set(Bv(proto::kChunkSizeHeader), std::to_string(node->options().chunk_size));
  co_return co_await Write(c, std::move(res));
}

// One request whose header has been read. False if the connection must close.
awaitable<bool> Server::Impl::Handle(Conn& c, Parser& parser, const Listener& l) {
  const auto& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  const std::string& token = node->options().token;
  // A handler that blocks (disk, store, peers), run on the serve pool.
  auto blocking = [&](TextResponse (*handler)(Node*, const Request&)) -> awaitable<bool> {
    auto handler_work = Offload([n = node, handler, &req] { return handler(n, req); });
    TextResponse res = co_await std::move(handler_work);
    co_return co_await Write(c, std::move(res));
  };
  if (target == proto::kHealthzPath) co_return co_await Write(c, Text(v, ka, "ok\n", "text/plain"));
  if (target == proto::kReadyzPath) co_return co_await Write(c, ServeReadyz(node, v, ka));
  if (target == proto::kMetricsPath) {
    co_return co_await Write(c, Text(v, ka, node->MetricsText(), "text/plain; version=0.0.4"));
  }
  if (l.metrics_only) {
    co_return co_await Write(c, ErrorResponse(v, ka, http::status::not_found,
                                              Status::NotFound("this is the metrics port: only /metrics, /healthz and /readyz")));
  }
  if (!token.empty() && Header(req, proto::kAuthorizationHeader) != "Bearer " + token) {
    co_return co_await Write(
        c, ErrorResponse(v, ka && parser.is_done(), http::status::unauthorized,
                         Status::PermissionDenied("this node requires a token: pass --token-file FILE or set SHOAL_TOKEN_FILE")));
  }
  if (StartsWith(target, proto::kObjectPath) && req.method() == http::verb::put) co_return co_await ServeWrite(c, parser);
  if (StartsWith(target, proto::kReplicaPrefix)) co_return co_await ServeReplica(c, parser);
  if (StartsWith(target, proto::kClusterViewPath)) co_return co_await ServeClusterView(c, parser);
  if (!parser.is_done()) {  // a body where none belongs: refuse, and do not read it
    co_await Write(c, ErrorResponse(v, false, http::status::bad_request, Status::InvalidArgument("this request takes no body")));
    co_return false;
  }
  if (target == proto::kDrainPath) co_return co_await blocking(ServeDrain);
  if (StartsWith(target, proto::kWarmPath)) co_return co_await blocking(ServeWarm);
  if (target == proto::kClusterPath) co_return co_await Write(c, ServeCluster(node, req));
  if (StartsWith(target, proto::kPendingPath)) co_return co_await blocking(ServePending);
  if (StartsWith(target, proto::kCommitPath)) {
    if (req.method() != http::verb::post) {
      co_return co_await Write(c, ErrorResponse(v, ka, http::status::method_not_allowed,
                                                Status::InvalidArgument("/v1/commit takes POST")));
    }
    co_return co_await blocking(ServeCommit);
  }
  if (StartsWith(target, proto::kObjectPath) && req.method() == http::verb::delete_) co_return co_await blocking(ServeDelete);
  if (StartsWith(target, proto::kObjectPath)) {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      co_return co_await Write(c, ErrorResponse(v, ka, http::status::method_not_allowed,
                                                Status::InvalidArgument("/v1/object takes GET, HEAD, PUT and DELETE")));
    }
    co_return co_await ServeObject(c, req, l.local);
  }
  co_return co_await Write(c, ErrorResponse(v, ka, http::status::not_found,
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
  for (;;) {
    beast::error_code ec;
    if (c->buffer.size() == 0) {  // idle: waiting for the first byte of the next request
      c->Arm(Phase::kIdle, options.idle_timeout);
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
    c->Arm(Phase::kHeader, options.header_timeout);
    co_await http::async_read_header(c->socket, c->buffer, parser, asio::redirect_error(use_awaitable, ec));
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
  if (!c->timed_out && c->socket.is_open()) co_await Linger(*c);
  c->Disarm();
  beast::error_code ignored;
  c->socket.close(ignored);
  m.connections_open--;
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
    asio::co_spawn(strand, Session(std::move(c), l), asio::detached);
  }
}

Server::Server(Node* node, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->node = node;
  impl_->options = options;
  if (impl_->options.io_threads <= 0) {
    impl_->options.io_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
}

Server::~Server() { Stop(); }

int Server::io_threads() const { return impl_->options.io_threads; }

Result<int> Server::Listen(const std::string& listen, bool metrics_only) {
  Listener l;
  l.metrics_only = metrics_only;
  asio::generic::stream_protocol::endpoint ep;
  l.local = StartsWith(listen, "unix:");
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
  for (int i = 0; i < impl_->options.io_threads; i++) {
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
  {
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
  // Handlers on the node's pools post back here when they end: wait for them, then stop.
  for (int i = 0; i < 3000 && impl_->offloads > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  for (auto& l : impl_->listeners) {
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
  }
}

}  // namespace shoal::node
