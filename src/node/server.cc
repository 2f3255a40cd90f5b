#include "node/server.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace shoal::node {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
// TCP and Unix-domain connections alike (a Unix socket is a client on this host).
using Socket = asio::generic::stream_protocol::socket;

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The value of query parameter `name` in a target like /v1/object?url=...
std::string QueryParam(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return "";
}

http::status HttpStatusOf(Code code) {
  switch (code) {
    case Code::kNotFound: return http::status::not_found;
    case Code::kInvalidArgument: return http::status::bad_request;
    case Code::kPermissionDenied: return http::status::forbidden;
    case Code::kPreconditionFailed: return http::status::precondition_failed;
    case Code::kUnavailable: return http::status::service_unavailable;
    case Code::kResourceExhausted: return http::status::insufficient_storage;
    default: return http::status::internal_server_error;
  }
}

// Parses "bytes=A-B" / "bytes=A-" / "bytes=-N" against `size`; false when unsatisfiable.
bool ParseRange(std::string_view header, uint64_t size, uint64_t* offset, uint64_t* length) {
  if (!StartsWith(header, "bytes=")) return false;
  std::string spec(header.substr(6));
  if (spec.find(',') != std::string::npos) return false;  // one range only
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return false;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  try {
    if (a.empty()) {  // suffix: the last N bytes
      uint64_t n = std::stoull(b);
      if (n == 0) return false;
      n = std::min(n, size);
      *offset = size - n;
      *length = n;
      return true;
    }
    uint64_t start = std::stoull(a);
    if (start >= size) return false;
    uint64_t last = b.empty() ? size - 1 : std::min<uint64_t>(std::stoull(b), size - 1);
    if (last < start) return false;
    *offset = start;
    *length = last - start + 1;
    return true;
  } catch (...) {
    return false;
  }
}

template <class Body>
void Prepare(http::response<Body>& res, unsigned version, bool keep_alive) {
  res.version(version);
  res.set(http::field::server, "shoald");
  res.keep_alive(keep_alive);
}

// Writes a JSON error; false if the connection is no longer usable.
bool WriteError(Socket& socket, unsigned version, bool keep_alive, http::status status,
                const Status& st, bool head = false) {
  if (head) {  // no body may follow a HEAD answer; close rather than guess a length
    http::response<http::empty_body> res{status, version};
    Prepare(res, version, false);
    res.set("X-Shoal-Error", CodeName(st.code()));
    std::string msg = st.message();
    for (char& c : msg) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    res.set("X-Shoal-Message", msg);
    beast::error_code ec;
    http::write(socket, res, ec);
    return false;
  }
  http::response<http::string_body> res{status, version};
  Prepare(res, version, keep_alive);
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"code", CodeName(st.code())}, {"message", st.message()}}.dump() + "\n";
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

bool WriteText(Socket& socket, unsigned version, bool keep_alive, const std::string& body,
               const char* type) {
  http::response<http::string_body> res{http::status::ok, version};
  Prepare(res, version, keep_alive);
  res.set(http::field::content_type, type);
  res.body() = body;
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

void CountError(Node* node, const Status& st) {
  if (st.code() == Code::kNotFound) node->metrics().errors_not_found++;
  else if (st.code() == Code::kUnavailable) node->metrics().errors_unavailable++;
  else node->metrics().errors_other++;
}

using Request = http::request<http::buffer_body>;

// Query parameter `name` of the request's target.
std::string QueryParam(const Request& req, std::string_view name) {
  return QueryParam(std::string_view(req.target().data(), req.target().size()), name);
}

// The version a peer or routing client names (X-Shoal-Etag and X-Shoal-Size), if it does.
std::optional<ObjectInfo> NamedVersion(const Request& req) {
  std::string etag(req["X-Shoal-Etag"]), size(req["X-Shoal-Size"]);
  if (etag.empty() || size.empty()) return std::nullopt;
  return ObjectInfo{"", std::strtoull(size.c_str(), nullptr, 10), etag, 0};
}

// Serves one object request; false if the connection must close.
bool ServeObject(Node* node, Socket& socket, const Request& req, bool local) {
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, "url");
  if (url.empty()) {
    return WriteError(socket, v, ka, http::status::bad_request,
                      Status::InvalidArgument("missing ?url=az://container/key"));
  }
  bool head = req.method() == http::verb::head;
  // Peers and routing clients name the mode of the read and the version they want (so no
  // HEAD goes to the store per chunk); others get the current version.
  std::string_view how(req["X-Shoal-Read"].data(), req["X-Shoal-Read"].size());
  ReadMode mode = how == "forwarded"    ? ReadMode::kForwarded
                  : how == "cache-only" ? ReadMode::kCacheOnly
                  : how == "held"       ? ReadMode::kHeld
                                        : ReadMode::kRoute;
  std::optional<ObjectInfo> named = NamedVersion(req);
  bool pinned = named.has_value();
  bool to_peer = !req["X-Shoal-From"].empty();
  node->SawEpoch(std::strtoull(std::string(req["X-Shoal-Epoch"]).c_str(), nullptr, 10));
  Result<ObjectInfo> info = pinned ? Result<ObjectInfo>(*named) : node->Stat(url);
  if (!info.ok()) {
    CountError(node, info.status());
    return WriteError(socket, v, ka, HttpStatusOf(info.status().code()), info.status(), head);
  }
  uint64_t offset = 0, length = info->size;
  http::status status = http::status::ok;
  auto range = req.find(http::field::range);
  if (range != req.end()) {
    std::string_view spec(range->value().data(), range->value().size());
    if (!ParseRange(spec, info->size, &offset, &length)) {
      http::response<http::string_body> res{http::status::range_not_satisfiable, v};
      Prepare(res, v, ka);
      res.set(http::field::content_range, "bytes */" + std::to_string(info->size));
      res.prepare_payload();
      beast::error_code ec;
      http::write(socket, res, ec);
      return !ec;
    }
    status = http::status::partial_content;
  }
  http::response<http::empty_body> res{status, v};
  Prepare(res, v, ka);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set("X-Shoal-Size", std::to_string(info->size));
  res.set("X-Shoal-State", node->Pending(url) ? "local" : "durable");
  // An upload of a write through this node: the version readers of the write had pinned.
  if (std::string as = node->ChunkVersion(url, info->etag); as != info->etag) res.set("X-Shoal-Written-As", as);
  res.set(http::field::content_type, "application/octet-stream");
  if (auto view = node->view()) res.set("X-Shoal-Epoch", std::to_string(view->epoch()));
  if (status == http::status::partial_content) {
    res.set(http::field::content_range, "bytes " + std::to_string(offset) + "-" +
                                            std::to_string(offset + length - 1) + "/" +
                                            std::to_string(info->size));
  }
  res.content_length(length);
  if (head) {
    http::response_serializer<http::empty_body> sr{res};
    beast::error_code ec;
    http::write_header(socket, sr, ec);
    return !ec;
  }
  // Fan-in: a node asking for a chunk this node is already sending to others may be sent to
  // a node that holds it instead (SwarmTracker).
  std::string swarm_chunk;
  if (to_peer && mode == ReadMode::kForwarded) {
    swarm_chunk = url + "\n" + info->etag + "\n" + std::to_string(offset / node->options().chunk_size);
    std::string failed(req["X-Shoal-Failed-Holder"]);
    if (!failed.empty()) {
      node->swarm().Forget(swarm_chunk, failed);
      node->swarm().Acquire(swarm_chunk);
    } else {
      std::string holder = node->swarm().Route(swarm_chunk, std::string(req["X-Shoal-Endpoint"]));
      if (!holder.empty()) {
        node->metrics().fan_in_redirects++;
        http::response<http::empty_body> go{http::status::temporary_redirect, v};
        Prepare(go, v, ka);
        go.set("X-Shoal-Holder", holder);
        go.set(http::field::location, "http://" + holder + std::string(req.target()));
        if (auto view = node->view()) go.set("X-Shoal-Epoch", std::to_string(view->epoch()));
        go.content_length(0);
        beast::error_code ec;
        http::write(socket, go, ec);
        return !ec;
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
  // Fetch the first chunk before the header goes out, so a store failure is still an error
  // answer rather than a cut connection.
  bool header_sent = false;
  beast::error_code wec;
  auto sink = [&](const char* d, size_t n) -> Status {
    if (!header_sent) {
      http::response_serializer<http::empty_body> sr{res};
      http::write_header(socket, sr, wec);
      if (wec) return Status::IOError("client went away: " + wec.message());
      header_sent = true;
    }
    for (size_t done = 0; done < n;) {  // in slices, so the egress limit paces the stream
      size_t piece = std::min<size_t>(n - done, 1 << 20);
      if (!local) node->egress().Acquire(piece);  // the egress limit is the host's network link
      asio::write(socket, asio::buffer(d + done, piece), wec);
      if (wec) return Status::IOError("client went away: " + wec.message());
      done += piece;
    }
    if (to_peer) node->metrics().bytes_served_peers += n;
    if (local) node->metrics().bytes_served_local += n;
    return Status::Ok();
  };
  Status st = mode == ReadMode::kHeld ? node->ReadHeld(url, *info, offset, length, sink)
                                      : node->Read(url, *info, offset, length, sink, mode);
  if (st.code() == Code::kPreconditionFailed && !pinned) {
    // The store has a newer version than the cached metadata says. Nothing sent yet: serve
    // the new version instead. Mid-body: close, and the client (pinned to the first ETag)
    // reports the change rather than stitching two versions.
    node->Invalidate(url);
    if (!header_sent) {
      auto fresh = node->Stat(url);
      if (fresh.ok() && fresh->size == info->size) {
        res.set(http::field::etag, "\"" + fresh->etag + "\"");
        st = node->Read(url, *fresh, offset, length, sink);
      } else if (fresh.ok()) {
        st = Status::PreconditionFailed(url + " changed size while being read: read it again");
      } else {
        st = fresh.status();
      }
    }
  }
  if (!st.ok()) {
    CountError(node, st);
    if (!header_sent) return WriteError(socket, v, ka, HttpStatusOf(st.code()), st);
    return false;  // mid-body: the only honest signal left is closing the connection
  }
  if (!header_sent) {  // an empty object or range
    http::response_serializer<http::empty_body> sr{res};
    http::write_header(socket, sr, wec);
  }
  return !wec;
}

// Reads `n` body bytes into `w`: those already in `buffer` first, then straight from the
// socket into the chunk being filled. False if the connection failed; a refusal by the writer
// (a full disk, say) ends the loop with *st set and returns true.
bool ReadBodyInto(Socket& socket, beast::flat_buffer& buffer, Writer& w, uint64_t n, Status* st) {
  size_t buffered = std::min<uint64_t>(buffer.size(), n);
  *st = w.Append(static_cast<const char*>(buffer.data().data()), buffered);
  buffer.consume(buffered);
  n -= buffered;
  while (st->ok() && n > 0) {
    auto [space, room] = w.Space();
    beast::error_code ec;
    size_t got = socket.read_some(asio::buffer(space, std::min<uint64_t>(room, n)), ec);
    if (ec) return false;
    *st = w.Commit(got);
    n -= got;
  }
  return true;
}

// One CRLF-ended line of a chunked body (size lines, the CRLF after data, trailers), without
// its CRLF, reading more from the socket as needed. False if the connection failed; a line
// longer than any honest client sends sets *st.
bool ReadChunkLine(Socket& socket, beast::flat_buffer& buffer, std::string* line, Status* st) {
  constexpr size_t kMaxLine = 8192;
  for (;;) {
    std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
    size_t eol = have.find("\r\n");
    if (eol != std::string_view::npos) {
      line->assign(have.substr(0, eol));
      buffer.consume(eol + 2);
      return true;
    }
    if (have.size() > kMaxLine) {
      *st = Status::InvalidArgument("malformed chunked body: a line longer than 8 KiB");
      return true;
    }
    beast::error_code ec;
    size_t got = socket.read_some(buffer.prepare(64 * 1024), ec);
    if (ec) return false;
    buffer.commit(got);
  }
}

// A chunked body (RFC 9112 7.1) decoded by hand: each chunk's data goes from the socket
// straight into `w`, as a body of known length does. Extensions and trailers are read and
// ignored. False if the connection failed; a malformed body (or a writer's refusal) sets *st.
bool ReadChunkedBody(Socket& socket, beast::flat_buffer& buffer, Writer& w, Status* st) {
  std::string line;
  while (st->ok()) {
    if (!ReadChunkLine(socket, buffer, &line, st)) return false;
    if (!st->ok()) break;
    std::string_view size_text(line);
    size_text = size_text.substr(0, size_text.find(';'));
    while (!size_text.empty() && (size_text.back() == ' ' || size_text.back() == '\t')) size_text.remove_suffix(1);
    uint64_t size = 0;
    auto [end, err] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (size_text.empty() || err != std::errc() || end != size_text.data() + size_text.size()) {
      *st = Status::InvalidArgument("malformed chunked body: chunk size '" + line.substr(0, 64) + "' is not hex");
      break;
    }
    if (size == 0) {  // the last chunk; then trailers, up to the empty line that ends the body
      do {
        if (!ReadChunkLine(socket, buffer, &line, st)) return false;
      } while (st->ok() && !line.empty());
      break;
    }
    if (!ReadBodyInto(socket, buffer, w, size, st)) return false;
    if (!st->ok()) break;
    if (!ReadChunkLine(socket, buffer, &line, st)) return false;
    if (st->ok() && !line.empty()) {
      *st = Status::InvalidArgument("malformed chunked body: a chunk's data is longer than its size line says");
    }
  }
  return true;
}

// PUT: streams the body into a Writer; answers 201 with the local version once the write
// is acknowledged (on disk, journaled). False if the connection must close.
bool ServeWrite(Node* node, Socket& socket, beast::flat_buffer& buffer,
                http::request_parser<http::buffer_body>& parser) {
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string url = QueryParam(req, "url");
  auto writer = node->BeginWrite(url);
  if (!writer.ok()) {
    WriteError(socket, v, false, HttpStatusOf(writer.status().code()), writer.status());
    return false;  // the body was not read: the connection cannot be reused
  }
  Status st;
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    beast::error_code ec;
    asio::write(socket, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), ec);
    if (ec) return false;
  }
  // The body bypasses Beast's parser, whether of known length or chunked: large reads from the
  // socket straight into the chunk being filled (the parser reads 64 KiB at a time and copies
  // once more; on loopback this halved the node's CPU per written GiB).
  bool connected = req.chunked() ? ReadChunkedBody(socket, buffer, **writer, &st)
                                 : ReadBodyInto(socket, buffer, **writer, parser.content_length().value_or(0), &st);
  if (!connected) return false;  // the client went away mid-body: nothing was acknowledged
  Result<ObjectInfo> info = st.ok() ? (*writer)->Finish() : Result<ObjectInfo>(st);
  if (!info.ok()) {
    CountError(node, info.status());
    WriteError(socket, v, false, HttpStatusOf(info.status().code()), info.status());
    return false;
  }
  http::response<http::string_body> res{http::status::created, v};
  Prepare(res, v, ka);
  res.set(http::field::etag, "\"" + info->etag + "\"");
  res.set("X-Shoal-State", "local");
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"url", url}, {"size", info->size}, {"etag", info->etag}, {"state", "local"}}.dump() + "\n";
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

// GET /v1/pending?prefix=P: the writes not yet durable under P (for `shoal flush`).
bool ServePending(Node* node, Socket& socket, const Request& req) {
  std::string prefix = QueryParam(req, "prefix");
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0, bytes_done = 0;
  std::string last_error;
  for (const auto& p : node->PendingUploads(prefix)) {
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
                         {"copies", node->CopiesUnder(prefix)}};  // held for other nodes
  return WriteText(socket, req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// DELETE /v1/object?url=URL: the object goes, and so do its writes not yet uploaded (204).
bool ServeDelete(Node* node, Socket& socket, const Request& req) {
  std::string url = QueryParam(req, "url");
  Status st = url.empty() ? Status::InvalidArgument("missing ?url=az://container/key") : node->Delete(url);
  if (!st.ok()) {
    CountError(node, st);
    return WriteError(socket, req.version(), req.keep_alive(), HttpStatusOf(st.code()), st);
  }
  http::response<http::empty_body> res{http::status::no_content, req.version()};
  Prepare(res, req.version(), req.keep_alive());
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

// POST /v1/commit?prefix=URL: writes the prefix's _SHOAL_COMMITTED marker (201 with it) once
// everything under it is durable; 412 while writes are pending.
bool ServeCommit(Node* node, Socket& socket, const Request& req) {
  auto marker = node->Commit(QueryParam(req, "prefix"));
  if (!marker.ok()) {
    CountError(node, marker.status());
    return WriteError(socket, req.version(), req.keep_alive(), HttpStatusOf(marker.status().code()), marker.status());
  }
  http::response<http::string_body> res{http::status::created, req.version()};
  Prepare(res, req.version(), req.keep_alive());
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(marker).value();
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

// Reads a body of known length (at most `limit` bytes) into *body; on a bad request answers
// 400 itself. False if the connection must close.
bool ReadBody(Socket& socket, beast::flat_buffer& buffer, http::request_parser<http::buffer_body>& parser,
              uint64_t limit, std::string* body) {
  const Request& req = parser.get();
  uint64_t length = parser.content_length().value_or(0);
  if (req.chunked() || length > limit) {
    WriteError(socket, req.version(), false, http::status::bad_request,
               Status::InvalidArgument("this request takes a body of at most " + FormatBytes(limit) +
                                       " with a Content-Length"));
    return false;
  }
  body->resize(length);
  size_t have = std::min<uint64_t>(buffer.size(), length);
  std::memcpy(body->data(), buffer.data().data(), have);
  buffer.consume(have);
  beast::error_code ec;
  if (have < length) asio::read(socket, asio::buffer(body->data() + have, length - have), ec);
  return !ec;
}

// Replication between nodes:
//   PUT  /v1/replica/chunk?id=&index=&url=   a chunk of another node's write (body)
//   POST /v1/replica/commit?id=&size=&chunk_size=&created=&origin=&url=   the copy is whole
//   POST /v1/replica/drop?id=&chunks=&url=   the origin uploaded it, or the write failed
//   GET  /v1/replica/state?id=               {"state": "pending"|"durable"|"unknown", "incarnation"}
bool ServeReplica(Node* node, Socket& socket, beast::flat_buffer& buffer,
                  http::request_parser<http::buffer_body>& parser) {
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  std::string id = QueryParam(req, "id"), url = QueryParam(req, "url");
  auto number = [&](std::string_view name) { return std::strtoull(QueryParam(req, name).c_str(), nullptr, 10); };
  auto answer = [&](const Status& st, const char* text) {
    if (!st.ok()) return WriteError(socket, v, ka, HttpStatusOf(st.code()), st);
    return WriteText(socket, v, ka, text, "text/plain");
  };
  if (id.empty()) {
    WriteError(socket, v, false, http::status::bad_request, Status::InvalidArgument("missing ?id="));
    return false;
  }
  if (StartsWith(target, "/v1/replica/chunk") && req.method() == http::verb::put) {
    std::string body;
    if (!ReadBody(socket, buffer, parser, node->options().chunk_size, &body)) return false;
    return answer(node->PutReplicaChunk(id, url, number("index"), body), "ok\n");
  }
  if (!parser.is_done()) {
    WriteError(socket, v, false, http::status::bad_request, Status::InvalidArgument("this request takes no body"));
    return false;
  }
  if (StartsWith(target, "/v1/replica/commit") && req.method() == http::verb::post) {
    engine::UploadRecord r;
    r.id = id;
    r.url = url;
    r.size = number("size");
    r.chunk_size = number("chunk_size");
    r.created_unix_ms = static_cast<int64_t>(number("created"));
    r.origin = QueryParam(req, "origin");
    r.origin_incarnation = QueryParam(req, "incarnation");
    if (r.origin.empty() || r.chunk_size == 0) {
      return answer(Status::InvalidArgument("a replica commit names its origin and chunk size"), "");
    }
    return answer(node->CommitReplica(r, QueryParam(req, "adopt") == "1"), "ok\n");
  }
  if (StartsWith(target, "/v1/replica/adopt") && req.method() == http::verb::post) {
    return answer(node->AdoptCopy(id), "ok\n");
  }
  if (StartsWith(target, "/v1/replica/drop") && req.method() == http::verb::post) {
    node->DropReplica(id, url, number("chunks"));
    return answer(Status::Ok(), "ok\n");
  }
  if (StartsWith(target, "/v1/replica/state")) {
    nlohmann::json body = {{"state", node->WriteState(id)}, {"incarnation", node->incarnation()}};
    return WriteText(socket, v, ka, body.dump() + "\n", "application/json");
  }
  return answer(Status::InvalidArgument("no such replica request"), "");
}

// POST /v1/warm?url=URL&index=I[&route=1] with X-Shoal-Etag and X-Shoal-Size: fetch that
// chunk into this node's cache (from the store, or the previous owner; route=1: through its
// owner, as a read would) and answer {"hit": bool}.
bool ServeWarm(Node* node, Socket& socket, const Request& req) {
  std::string url = QueryParam(req, "url");
  std::optional<ObjectInfo> info = NamedVersion(req);
  if (url.empty() || !info || req.method() != http::verb::post) {
    return WriteError(socket, req.version(), req.keep_alive(), http::status::bad_request,
                      Status::InvalidArgument("POST /v1/warm?url=URL&index=N with X-Shoal-Etag and X-Shoal-Size"));
  }
  auto hit = node->Warm(url, *info, std::strtoull(QueryParam(req, "index").c_str(), nullptr, 10),
                        QueryParam(req, "route") == "1");
  if (!hit.ok()) {
    CountError(node, hit.status());
    return WriteError(socket, req.version(), req.keep_alive(), HttpStatusOf(hit.status().code()), hit.status());
  }
  return WriteText(socket, req.version(), req.keep_alive(), nlohmann::json{{"hit", *hit}}.dump() + "\n",
                   "application/json");
}

// POST /v1/drain: the node leaves the cluster and hands off what it has not uploaded (202);
// GET /v1/drain: how far it got.
bool ServeDrain(Node* node, Socket& socket, const Request& req) {
  if (req.method() == http::verb::post) {
    Status st = node->StartDrain();
    if (!st.ok()) return WriteError(socket, req.version(), req.keep_alive(), HttpStatusOf(st.code()), st);
  }
  auto d = node->GetDrainState();
  nlohmann::json body = {{"state", d.state}, {"writes", d.writes}, {"write_bytes", d.write_bytes},
                         {"copies", d.copies}, {"left", d.left}, {"error", d.error}};
  if (auto v = node->view()) body["epoch"] = v->epoch();
  return WriteText(socket, req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// GET /v1/cluster: the membership as this node routes by, as JSON (for `shoal status`).
bool ServeCluster(Node* node, Socket& socket, const Request& req) {
  auto view = node->view();
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
  return WriteText(socket, req.version(), req.keep_alive(), body.dump() + "\n", "application/json");
}

// GET /v1/cluster/view[?current=1]: the placement in binary (cluster::View::Encode), for
// clients that route chunks themselves and nodes joining. POST: a peer's newer view.
bool ServeClusterView(Node* node, Socket& socket, beast::flat_buffer& buffer,
                      http::request_parser<http::buffer_body>& parser) {
  const Request& req = parser.get();
  unsigned v = req.version();
  bool ka = req.keep_alive();
  if (req.method() == http::verb::post) {
    std::string body;
    if (!ReadBody(socket, buffer, parser, 1ull << 30, &body)) return false;
    auto view = cluster::View::Decode(body);
    if (!view.ok()) return WriteError(socket, v, false, http::status::bad_request, view.status());
    bool taken = node->AdoptView(*view);
    return WriteText(socket, v, ka, taken ? "adopted\n" : "kept a newer or equal epoch\n", "text/plain");
  }
  auto view = node->view();
  if (!view) {
    return WriteError(socket, v, ka, http::status::not_found,
                      Status::NotFound("this node is not in a cluster (started without --peers)"));
  }
  http::response<http::string_body> res{http::status::ok, v};
  Prepare(res, v, ka);
  res.set(http::field::content_type, "application/octet-stream");
  res.set("X-Shoal-Chunk-Size", std::to_string(node->options().chunk_size));
  res.body() = view->Encode(QueryParam(req, "current") == "1");
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return !ec;
}

void ServeConnection(Node* node, Socket socket, bool metrics_only, bool local) {
  beast::flat_buffer buffer;
  const std::string& token = node->options().token;
  while (true) {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(16 * 1024);  // oversized headers are refused by the parser
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // streamed, never held whole
    beast::error_code ec;
    http::read_header(socket, buffer, parser, ec);
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof &&
          ec != asio::error::connection_reset) {
        WriteError(socket, 11, false, http::status::bad_request,
                   Status::InvalidArgument("malformed request: " + ec.message()));
      }
      break;
    }
    const auto& req = parser.get();
    node->metrics().requests++;
    unsigned v = req.version();
    bool ka = req.keep_alive();
    std::string_view target(req.target().data(), req.target().size());
    bool ok = true;
    if (target == "/healthz") {
      ok = WriteText(socket, v, ka, "ok\n", "text/plain");
    } else if (target == "/metrics") {
      ok = WriteText(socket, v, ka, node->MetricsText(), "text/plain; version=0.0.4");
    } else if (metrics_only) {
      ok = WriteError(socket, v, ka, http::status::not_found,
                      Status::NotFound("this is the metrics port: only /metrics and /healthz"));
    } else if (!token.empty() &&
               std::string_view(req[http::field::authorization].data(),
                                req[http::field::authorization].size()) != "Bearer " + token) {
      ok = WriteError(socket, v, ka, http::status::unauthorized,
                      Status::PermissionDenied(
                          "this node requires a token: pass --token-file FILE or set SHOAL_TOKEN_FILE"));
    } else if (StartsWith(target, "/v1/object") && req.method() == http::verb::put) {
      ok = ServeWrite(node, socket, buffer, parser);
    } else if (StartsWith(target, "/v1/replica/")) {
      ok = ServeReplica(node, socket, buffer, parser);
    } else if (StartsWith(target, "/v1/cluster/view")) {
      ok = ServeClusterView(node, socket, buffer, parser);
    } else if (!parser.is_done()) {  // a body where none belongs: refuse, and do not read it
      WriteError(socket, v, false, http::status::bad_request,
                 Status::InvalidArgument("this request takes no body"));
      ok = false;
    } else if (target == "/v1/drain") {
      ok = ServeDrain(node, socket, req);
    } else if (StartsWith(target, "/v1/warm")) {
      ok = ServeWarm(node, socket, req);
    } else if (target == "/v1/cluster") {
      ok = ServeCluster(node, socket, req);
    } else if (StartsWith(target, "/v1/pending")) {
      ok = ServePending(node, socket, req);
    } else if (StartsWith(target, "/v1/commit")) {
      ok = req.method() == http::verb::post
               ? ServeCommit(node, socket, req)
               : WriteError(socket, v, ka, http::status::method_not_allowed,
                            Status::InvalidArgument("/v1/commit takes POST"));
    } else if (StartsWith(target, "/v1/object") && req.method() == http::verb::delete_) {
      ok = ServeDelete(node, socket, req);
    } else if (StartsWith(target, "/v1/object")) {
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        ok = WriteError(socket, v, ka, http::status::method_not_allowed,
                        Status::InvalidArgument("/v1/object takes GET, HEAD, PUT and DELETE"));
      } else {
        ok = ServeObject(node, socket, req, local);
      }
    } else {
      ok = WriteError(socket, v, ka, http::status::not_found,
                      Status::NotFound("no such endpoint: " + std::string(target)));
    }
    if (!ok || !ka) break;
  }
  // Lingering close: a client still sending a body we refused would get a reset, and lose
  // our error answer with it, if we closed with its bytes unread. Stop sending, then read and
  // drop what is in flight (at most 2 s, 64 MiB) until the client closes.
  beast::error_code ec;
  socket.shutdown(Socket::shutdown_send, ec);
  timeval tv{2, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<char> sink(1 << 16);
  for (size_t drained = 0; drained < (64u << 20);) {
    // Plain recv: asio's blocking read would wait out the timeout with poll().
    ssize_t n = ::recv(socket.native_handle(), sink.data(), sink.size(), 0);
    if (n <= 0) break;  // closed, timed out, or failed
    drained += static_cast<size_t>(n);
  }
}

// Answers 503 on a connection past the node's cap, without blocking the accept loop, and
// closes it; the client retries or goes elsewhere.
void RefuseBusy(Socket& socket) {
  static const std::string kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nServer: shoald\r\nRetry-After: 1\r\nX-Shoal-Error: Busy\r\n"
      "Content-Type: application/json\r\nConnection: close\r\nContent-Length: 80\r\n\r\n"
      "{\"code\": \"Unavailable\", \"message\": \"this node is at its connection cap: retry\"}\n";
  beast::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kBusy), ec);
  socket.close(ec);
}

}  // namespace

struct Server::Impl {
  asio::io_context io;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor{io};
  std::string unix_path;  // the socket file to remove on Stop
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
};

Server::Server(Node* node) : node_(node) {}

Server::~Server() { Stop(); }

Status Server::Start(const std::string& listen, bool metrics_only) {
  impl_ = std::make_unique<Impl>();
  asio::generic::stream_protocol::endpoint ep;
  bool local = StartsWith(listen, "unix:");
  if (local) {
    impl_->unix_path = listen.substr(5);
    if (impl_->unix_path.empty()) return Status::InvalidArgument("unix: wants a socket path, e.g. unix:/run/shoal.sock");
    ::unlink(impl_->unix_path.c_str());  // a socket file left by a node that did not stop cleanly
    ep = asio::local::stream_protocol::endpoint(impl_->unix_path);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return Status::InvalidArgument("--listen wants HOST:PORT, got '" + listen + "'");
    std::string host = listen.substr(0, colon);
    int port = std::atoi(listen.c_str() + colon + 1);
    beast::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return Status::InvalidArgument("--listen: '" + host + "' is not an IP address");
    ep = tcp::endpoint(addr, static_cast<uint16_t>(port));
  }
  beast::error_code ec;
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec && !local) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + listen + ": " + ec.message());
  if (!local) {
    auto bound = impl_->acceptor.local_endpoint();
    // sin_port and sin6_port sit at the same offset
    port_ = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
  }

  Node* node = node_;
  Impl* impl = impl_.get();
  impl_->accept_thread = std::thread([node, impl, metrics_only, local] {
    while (!impl->stopping) {
      beast::error_code aec;
      Socket socket(impl->io);
      impl->acceptor.accept(socket, aec);
      if (aec) {
        if (impl->stopping) return;
        continue;
      }
      if (impl->connections >= node->options().max_connections && !metrics_only) {
        // Bounded: past the cap a node says it is busy rather than taking on another thread.
        RefuseBusy(socket);
        node->metrics().connections_refused++;
        continue;
      }
      impl->connections++;
      std::thread([node, impl, metrics_only, local, s = std::move(socket)]() mutable {
        ServeConnection(node, std::move(s), metrics_only, local);
        impl->connections--;
      }).detach();
    }
  });
  return Status::Ok();
}

void Server::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  if (!impl_->unix_path.empty()) ::unlink(impl_->unix_path.c_str());
}

}  // namespace shoal::node
