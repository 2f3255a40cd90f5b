#include "node/exchange.h"

#include <sys/sendfile.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "net/node_protocol.h"
#include "node/request_parse.h"

namespace shoal::node {

std::string QueryParam(const Request& req, std::string_view name) {
  return QueryParam(std::string_view(req.target().data(), req.target().size()), name);
}

std::string_view Header(const Request& req, std::string_view name) {
  auto v = req[beast::string_view(name.data(), name.size())];
  return std::string_view(v.data(), v.size());
}

http::status HttpStatusOf(Code code) { return static_cast<http::status>(proto::HttpStatusOf(code)); }

TextResponse Text(unsigned version, bool keep_alive, std::string body, const char* type, http::status status) {
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

TextResponse HeadErrorResponse(unsigned version, http::status status, const Status& st) {
  auto res = ErrorResponse(version, false, status, st);
  std::string msg = st.message();
  for (char& ch : msg) {
    if (ch == '\r' || ch == '\n') ch = ' ';
  }
  res.set(Bv(proto::kErrorHeader), CodeName(st.code()));
  res.set(Bv(proto::kMessageHeader), msg);
  res.body().clear();
  return res;
}

TextResponse ErrorResponse(unsigned version, bool keep_alive, const Status& st) {
  return ErrorResponse(version, keep_alive, HttpStatusOf(st.code()), st);
}

void CountError(Node* node, const Status& st) {
  if (st.code() == Code::kNotFound) node->metrics().errors_not_found++;
  else if (st.code() == Code::kUnavailable) node->metrics().errors_unavailable++;
  else node->metrics().errors_other++;
}

void Conn::Arm(Phase phase, std::chrono::milliseconds after) {
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

void Conn::Disarm() {
  ++generation;
  timer.cancel();
}

awaitable<void> Exchange::WaitPast(const std::shared_ptr<ChunkFill>& fill, size_t pos) {
  ChunkFill* f = fill.get();
  ServeContext* ctx = &ctx_;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [f, pos, ctx](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        // Counted as an offload: the fetch thread that wakes it posts to this event loop, and
        // Stop must not end the loop (and free it) while that thread is still inside the post.
        ctx->offloads++;
        f->WhenPast(pos, [ex, h, ctx]() mutable {
          {
            // The executor and the handler go before the count does: once it is 0, Stop may end the loop.
            auto strand = std::move(ex);
            auto waiting = std::move(h);
            asio::post(strand, [waiting] { std::move(*waiting)(); });
          }
          ctx->offloads--;
        });
      },
      use_awaitable);
}

awaitable<bool> Exchange::Write(TextResponse res) {
  beast::error_code ec;
  c_.Arm(Phase::kIo, options().io_timeout);
  co_await http::async_write(c_.stream, res, asio::redirect_error(use_awaitable, ec));
  c_.Disarm();
  co_return !ec && res.keep_alive();
}

awaitable<bool> Exchange::WriteHeader(http::response<http::empty_body>& res) {
  beast::error_code ec;
  http::response_serializer<http::empty_body> sr{res};
  c_.Arm(Phase::kIo, options().io_timeout);
  co_await http::async_write_header(c_.stream, sr, asio::redirect_error(use_awaitable, ec));
  c_.Disarm();
  co_return !ec;
}

awaitable<bool> Exchange::ContinueIfAsked(const Request& req) {
  if (!beast::iequals(req[http::field::expect], "100-continue")) co_return true;
  beast::error_code ec;
  c_.Arm(Phase::kIo, options().io_timeout);
  co_await asio::async_write(c_.stream, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")),
                             asio::redirect_error(use_awaitable, ec));
  c_.Disarm();
  co_return !ec;
}

awaitable<size_t> Exchange::Pace(size_t left, bool paced) {
  if (!paced) co_return left;
  const size_t piece = std::min<size_t>(left, 1 << 20);  // slices pace the stream
  auto wait = node->egress().Reserve(piece);
  if (wait.count() > 0) {
    asio::steady_timer t(c_.socket.get_executor(), wait);
    beast::error_code ignored;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  co_return piece;
}

awaitable<bool> Exchange::SendBytes(const char* d, size_t n, bool paced) {
  paced = paced && node->egress().rate() > 0;
  for (size_t done = 0; done < n;) {
    const size_t piece = co_await Pace(n - done, paced);
    beast::error_code ec;
    c_.Arm(Phase::kIo, options().io_timeout);
    co_await asio::async_write(c_.stream, asio::buffer(d + done, piece), asio::redirect_error(use_awaitable, ec));
    c_.Disarm();
    if (ec) co_return false;
    done += piece;
  }
  co_return true;
}

awaitable<bool> Exchange::SendFile(int fd, uint64_t offset, size_t n, bool paced, uint64_t* sent) {
  paced = paced && node->egress().rate() > 0;
  *sent = 0;
  beast::error_code ec;
  if (!c_.socket.native_non_blocking()) {
    c_.socket.native_non_blocking(true, ec);
    if (ec) co_return false;
  }
  for (size_t done = 0; done < n;) {
    const size_t piece = co_await Pace(n - done, paced);
    c_.Arm(Phase::kIo, options().io_timeout);
    for (size_t left = piece; left > 0;) {
      off_t at = static_cast<off_t>(offset + done);
      ssize_t r = ::sendfile(c_.socket.native_handle(), fd, &at, left);
      if (r > 0) {
        done += r;
        left -= r;
        *sent += r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        co_await c_.socket.async_wait(Socket::wait_write, asio::redirect_error(use_awaitable, ec));
        if (!ec) continue;
      }
      // Closed (by the watchdog, or the peer), or the file ended early (r == 0): either way the
      // answer is cut, and the connection must close.
      c_.Disarm();
      co_return false;
    }
    c_.Disarm();
  }
  co_return true;
}

awaitable<bool> Exchange::ReadSome(char* into, size_t max, size_t* got) {
  *got = 0;
  if (max == 0) co_return true;
  if (c_.buffer.size() > 0) {
    *got = std::min(c_.buffer.size(), max);
    std::memcpy(into, c_.buffer.data().data(), *got);
    c_.buffer.consume(*got);
    co_return true;
  }
  beast::error_code ec;
  c_.Arm(Phase::kIo, options().io_timeout);
  *got = co_await c_.stream.async_read_some(asio::buffer(into, max), asio::redirect_error(use_awaitable, ec));
  c_.Disarm();
  co_return !ec;
}

awaitable<bool> Exchange::ReadBodyInto(Writer& w, uint64_t n, Status* st) {
  size_t buffered = std::min<uint64_t>(c_.buffer.size(), n);
  if (buffered > 0) {
    auto append = Offload([&w, d = static_cast<const char*>(c_.buffer.data().data()), buffered] {
      return w.Append(d, buffered);
    });
    *st = co_await std::move(append);
    c_.buffer.consume(buffered);
    n -= buffered;
  }
  while (st->ok() && n > 0) {
    auto [space, room] = w.Space();
    size_t want = std::min<uint64_t>(room, n);
    beast::error_code ec;
    c_.Arm(Phase::kIo, options().io_timeout);
    size_t got = co_await c_.stream.async_read_some(asio::buffer(space, want), asio::redirect_error(use_awaitable, ec));
    c_.Disarm();
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

awaitable<bool> Exchange::ReadChunkLine(std::string* line, Status* st) {
  for (;;) {
    std::string_view have(static_cast<const char*>(c_.buffer.data().data()), c_.buffer.size());
    size_t consumed = 0;
    ChunkLine scan = ScanChunkLine(have, line, &consumed);
    if (scan == ChunkLine::kLine) {
      c_.buffer.consume(consumed);
      co_return true;
    }
    if (scan == ChunkLine::kTooLong) {
      *st = Status::InvalidArgument("malformed chunked body: a line longer than 8 KiB");
      co_return true;
    }
    beast::error_code ec;
    c_.Arm(Phase::kIo, options().io_timeout);
    size_t got = co_await c_.stream.async_read_some(c_.buffer.prepare(64 * 1024), asio::redirect_error(use_awaitable, ec));
    c_.Disarm();
    if (ec) co_return false;
    c_.buffer.commit(got);
  }
}

awaitable<bool> Exchange::ReadChunkedBody(Writer& w, Status* st) {
  std::string line;
  while (st->ok()) {
    if (!co_await ReadChunkLine(&line, st)) co_return false;
    if (!st->ok()) break;
    auto parsed = ParseChunkSize(line);
    if (!parsed.ok()) {
      *st = parsed.status();
      break;
    }
    const uint64_t size = *parsed;
    if (size == 0) {  // the last chunk; then trailers, up to the empty line that ends the body
      do {
        if (!co_await ReadChunkLine(&line, st)) co_return false;
      } while (st->ok() && !line.empty());
      break;
    }
    if (!co_await ReadBodyInto(w, size, st)) co_return false;
    if (!st->ok()) break;
    if (!co_await ReadChunkLine(&line, st)) co_return false;
    if (st->ok() && !line.empty()) {
      *st = Status::InvalidArgument("malformed chunked body: a chunk's data is longer than its size line says");
    }
  }
  co_return true;
}

awaitable<bool> Exchange::ReadWholeBody(Parser& parser, Writer& w, Status* st) {
  // The body bypasses Beast's parser, whether of known length or chunked: large reads from the
  // socket straight into the chunk being filled (the parser reads 64 KiB at a time and copies
  // once more; on loopback this halved the node's CPU per written GiB).
  if (parser.get().chunked()) co_return co_await ReadChunkedBody(w, st);
  co_return co_await ReadBodyInto(w, parser.content_length().value_or(0), st);
}

awaitable<Result<ObjectInfo>> Exchange::EndWrite(std::shared_ptr<Writer> w, bool connected, Status st) {
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
  co_return info;
}

awaitable<bool> Exchange::ReadBody(Parser& parser, uint64_t limit, std::string* body) {
  const Request& req = parser.get();
  uint64_t length = parser.content_length().value_or(0);
  if (req.chunked() || length > limit) {
    co_await Write(ErrorResponse(req.version(), false, http::status::bad_request,
                                 Status::InvalidArgument("this request takes a body of at most " + FormatBytes(limit) +
                                                         " with a Content-Length")));
    co_return false;
  }
  body->resize(length);
  size_t have = std::min<uint64_t>(c_.buffer.size(), length);
  std::memcpy(body->data(), c_.buffer.data().data(), have);
  c_.buffer.consume(have);
  beast::error_code ec;
  if (have < length) {
    c_.Arm(Phase::kIo, options().io_timeout);
    co_await asio::async_read(c_.stream, asio::buffer(body->data() + have, length - have),
                              asio::redirect_error(use_awaitable, ec));
    c_.Disarm();
  }
  co_return !ec;
}

}  // namespace shoal::node
