#include "net/http_client.h"

#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "common/strings.h"
#include "net/node_protocol.h"

namespace shoal::http {
namespace {

constexpr size_t kMaxBufferedBody = 16 << 20;

struct Transfer {
  Response* resp;
  const ByteSink* sink;
  CURL* curl;
  Status sink_status;
  uint64_t received = 0;
};

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * nmemb);
  if (StartsWith(line, "HTTP/")) {
    t->resp->headers.clear();  // a new response (after 100 Continue or a redirect)
    return size * nmemb;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers[ToLower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return size * nmemb;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  t->resp->status = code;  // a sink may look at the answer's status and headers (they are in)
  if (code >= 200 && code < 300 && t->sink != nullptr) {
    Status st = (*t->sink)(data, n);
    if (!st.ok()) {
      t->sink_status = std::move(st);
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->received += n;
    return n;
  }
  if (t->resp->body.size() + n > kMaxBufferedBody) {
    t->sink_status = Status::IOError("response body larger than 16 MiB where a small one was expected");
    return 0;
  }
  t->resp->body.append(data, n);
  t->received += n;
  return n;
}

curl_socket_t OpenSocket(void* user, curlsocktype, curl_sockaddr* addr) {
  auto* cancel = static_cast<Canceller*>(user);
  int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  if (!cancel->Register(fd)) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

int CloseSocket(void* user, curl_socket_t fd) {
  static_cast<Canceller*>(user)->Unregister(fd);
  return close(fd);
}

// Which server a request goes to: its Unix socket, else the URL's scheme and authority.
std::string ServerKey(const Request& req) {
  if (!req.unix_socket.empty()) return "unix:" + req.unix_socket;
  size_t start = req.url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = req.url.find_first_of("/?#", start);
  std::string key = ToLower(req.url.substr(0, end));
  return req.connect_to.empty() ? key : key + " at " + ToLower(req.connect_to);
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

void Canceller::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  // shutdown, not close: the fd stays curl's to close, so its number cannot be reused under it.
  for (int fd : fds_) shutdown(fd, SHUT_RDWR);
}

bool Canceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool Canceller::Register(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  fds_.push_back(fd);
  return true;
}

void Canceller::Unregister(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase(fds_, fd);
}

Result<uint64_t> Response::NumberHeader(std::string_view name) const {
  std::string text = Header(name);
  auto n = ParseU64(text);
  if (!n.ok()) {
    return Status::IOError("the answer's " + std::string(name) + " header is " +
                           (text.empty() ? std::string("missing") : "'" + text.substr(0, 64) + "'") +
                           ", not a number of bytes or a count");
  }
  return n;
}

Client::Client(int max_per_server) : max_per_server_(max_per_server) {
  GlobalInit();
  if (const char* ca = EnvValue(kCaFileVariable)) ca_file_ = ca;
}

Client::~Client() {
  for (auto& [key, server] : servers_) {
    for (void* h : server.idle) curl_easy_cleanup(static_cast<CURL*>(h));
  }
}

void* Client::Acquire(const std::string& key, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  Server& server = servers_[key];
  bool waited = false;
  while (server.idle.empty() && max_per_server_ > 0 && server.open >= max_per_server_) {
    if (!waited) waits_++;
    waited = true;
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      freed_.wait(lock);
    } else if (freed_.wait_until(lock, deadline) == std::cv_status::timeout &&
               server.idle.empty() && server.open >= max_per_server_) {
      return nullptr;
    }
  }
  if (!server.idle.empty()) {
    void* h = server.idle.back();
    server.idle.pop_back();
    return h;
  }
  CURL* h = curl_easy_init();
  if (h != nullptr) server.open++;
  return h;
}

void Client::Release(const std::string& key, void* handle, bool reuse) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Server& server = servers_[key];
    if (reuse) {
      server.idle.push_back(handle);
    } else {
      server.open--;
    }
  }
  if (!reuse) curl_easy_cleanup(static_cast<CURL*>(handle));
  freed_.notify_all();
}

uint64_t Client::waits() {
  std::lock_guard<std::mutex> lock(mu_);
  return waits_;
}

Status Client::Send(const Request& req, Response* resp, const ByteSink* sink) {
  if (req.cancel != nullptr && req.cancel->cancelled()) {
    return Status::Unavailable(req.method + " " + req.url.substr(0, req.url.find('?')) +
                               ": cancelled");
  }
  const std::string key = ServerKey(req);
  const auto deadline = req.timeout.count() > 0 ? std::chrono::steady_clock::now() + req.timeout
                                                : std::chrono::steady_clock::time_point::max();
  CURL* curl = static_cast<CURL*>(Acquire(key, deadline));
  if (curl == nullptr && max_per_server_ > 0 && std::chrono::steady_clock::now() >= deadline) {
    return Status::Unavailable(req.method + " " + req.url.substr(0, req.url.find('?')) + ": all " +
                               std::to_string(max_per_server_) + " connections to " + key +
                               " stayed busy for the request's whole timeout")
        .WithDetail(Detail::kConnectionsBusy);
  }
  if (curl == nullptr) return Status::IOError("could not create an HTTP handle (out of memory?)");
  curl_easy_reset(curl);  // keeps the live connection
  curl_easy_setopt(curl, CURLOPT_MAXCONNECTS, 1L);  // one server per handle: one connection
  *resp = Response();
  Transfer t{resp, sink, curl, Status::Ok()};

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  if (!req.unix_socket.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str());
  // "::HOST:PORT": whatever the URL names, connect there.
  curl_slist* connect_to = req.connect_to.empty() ? nullptr : curl_slist_append(nullptr, ("::" + req.connect_to).c_str());
  if (connect_to != nullptr) curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   req.connect_timeout.count() > 0 ? static_cast<long>(req.connect_timeout.count()) : 10000L);
  const std::string& ca_file = req.ca_file.empty() ? ca_file_ : req.ca_file;
  if (!ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  if (!req.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, req.cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, req.key_file.c_str());
  }
  char error_text[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  if (req.cancel == nullptr) {
    // A connection that moves less than 1 KiB/s for 60 s (or req.silent_limit) is dead: fail
    // and let the caller retry.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     req.silent_limit.count() > 0 ? static_cast<long>(req.silent_limit.count()) : 60L);
  } else {
    // A connection of its own, whose socket Cancel() can shut down.
    curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, req.cancel);
    curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, CloseSocket);
    curl_easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, req.cancel);
  }
  if (req.timeout.count() > 0) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  }
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);

  if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.body_reader) {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, +[](char* buf, size_t size, size_t n, void* user) -> size_t {
      return (*static_cast<const std::function<size_t(char*, size_t)>*>(user))(buf, size * n);
    });
    curl_easy_setopt(curl, CURLOPT_READDATA, &req.body_reader);
    // Large reads from the source: fewer callbacks and send() calls than the 64 KiB default.
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
    if (req.body_length >= 0) {
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_length));
    }
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.method == "PUT" || req.method == "POST") {
      // POSTFIELDS does not copy: the body is sent straight from the caller's buffer.
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data() ? req.body.data() : "");
    }
  }

  curl_slist* headers = nullptr;
  bool has_content_type = false;
  for (const auto& [name, value] : req.headers) {
    if (ToLower(name) == "content-type") has_content_type = true;
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  if (!has_content_type) headers = curl_slist_append(headers, "Content-Type:");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(curl);
  // The buffer lives in this frame, the handle in the pool: curl must not write to it once this
  // call returns (closing a pooled connection later may report an error).
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
  curl_slist_free_all(headers);
  if (connect_to != nullptr) {
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, nullptr);
    curl_slist_free_all(connect_to);
  }

  Status result;
  if (!t.sink_status.ok()) {
    result = t.sink_status;
  } else if (rc != CURLE_OK) {
    // Without the query: a SAS token travels there and must never reach a message.
    std::string what = req.method + " " + req.url.substr(0, req.url.find('?')) +
                       (req.connect_to.empty() ? "" : " (at " + req.connect_to + ")") + ": " + curl_easy_strerror(rc);
    const std::string_view said(error_text);
    const bool refused_handshake = said.find("alert handshake failure") != std::string_view::npos;
    if (said.find("alert certificate required") != std::string_view::npos ||
        said.find("alert bad certificate") != std::string_view::npos ||
        said.find("alert unknown ca") != std::string_view::npos || refused_handshake ||
        rc == CURLE_SSL_CERTPROBLEM) {
      // Not transient either: the server refused this client's certificate, or its lack of one
      // (a TLS 1.2 server says "handshake failure" for that, as for no protocol or cipher in
      // common: the same handshake would be refused again).
      result = Status::PermissionDenied(
          what + " (" + std::string(said) + "): " +
          (rc == CURLE_SSL_CERTPROBLEM ? "cannot use the client certificate " + req.cert_file + " with its key " +
                                             req.key_file + " (readable PEM files of one pair?)"
           : req.cert_file.empty()
               ? std::string(refused_handshake ? "the server refused the handshake; if it asks for a client "
                                                 "certificate (shoald --tls-client-ca), set "
                                               : "the server asks for a client certificate (shoald "
                                                 "--tls-client-ca): set ") +
                     proto::kTlsCertVariable + " and " + proto::kTlsKeyVariable +
                     " to PEM files of one signed by a CA it trusts"
               : "the server refused the client certificate " + req.cert_file +
                     ": is it signed by a CA of the node's --tls-client-ca?"));
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION && (said.find("does not match target host name") != std::string_view::npos ||
                                                        said.find("matches target host name") != std::string_view::npos)) {
      // Signed by a trusted CA, for another name: the same answer again.
      result = Status::PermissionDenied(
          what + " (" + std::string(said) + "): " +
          (req.connect_to.empty()
               ? "the server's certificate does not name the address it was reached at; if the nodes' "
                 "certificates name one DNS name instead (shoald --tls-name), set " +
                     std::string(proto::kTlsNameVariable) + " to it"
               : "the server's certificate does not name the name it was checked against (" +
                     std::string(proto::kTlsNameVariable) + ", shoald --tls-name): is it the name the "
                     "nodes' certificates carry?"));
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      // Not transient: the same certificate will be refused again.
      result = Status::PermissionDenied(
          what + (!req.ca_file.empty()
                      ? ": the server's certificate was checked against " + req.ca_file +
                            "; is it the CA that signed it, and a readable PEM file?"
                  : ca_file_.empty()
                      ? ": the server's certificate is not signed by a CA of the system's bundle; "
                        "set " + std::string(kCaFileVariable) + " to a PEM file of the CA that signed it (for "
                        "a shoald serving TLS: shoal --tls-ca FILE, or SHOAL_TLS_CA)"
                      : ": the server's certificate was checked against " + std::string(kCaFileVariable) +
                            "=" + ca_file_ + "; is it the CA that signed it, and a readable PEM file?"));
    } else {
      result = Status::Unavailable(what);
      if (rc == CURLE_COULDNT_CONNECT) {
        result = result.WithDetail(Detail::kConnectFailed);
        if (on_connect_failed_) on_connect_failed_(req);
      }
    }
  }
  // A failed transfer leaves its connection in an unknown state: not reused.
  Release(key, curl, rc == CURLE_OK);
  return result;
}

Status Call(Client* client, const net::RetryPolicy& policy, net::RequestStats* stats,
            const std::function<Request()>& build, Response* resp, const std::string& what,
            const ErrorFormat& format) {
  return net::RunWithRetry(policy, stats, [&](std::chrono::milliseconds* retry_after) {
    Request req = build();
    SHOAL_RETURN_IF_ERROR(client->Send(req, resp));
    if (resp->status >= 200 && resp->status < 300) {
      if (format.failed_2xx && format.failed_2xx(req, *resp)) {
        resp->status = 500;
        return StatusFromResponse(*resp, what, format);
      }
      if (stats != nullptr) stats->bytes_written += req.body.size();
      return Status::Ok();
    }
    *retry_after = RetryAfter(*resp);
    CountThrottle(stats, *resp);
    return StatusFromResponse(*resp, what, format);
  });
}

void CountThrottle(net::RequestStats* stats, const Response& resp) {
  if (stats != nullptr && (resp.status == 429 || resp.status == 503)) stats->CountThrottle();
}

std::chrono::milliseconds RetryAfter(const Response& resp) {
  constexpr int64_t kMaxSeconds = net::kMaxRetryAfter.count() / 1000;
  std::string v = resp.Header("retry-after");
  if (v.empty()) return std::chrono::milliseconds(0);
  int64_t seconds = 0;
  if (v.front() >= '0' && v.front() <= '9') {
    // Delay-seconds: digits only. More than an int64 holds is "very long", hence the cap.
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
    if (ec == std::errc::result_out_of_range) return net::kMaxRetryAfter;
    if (ec != std::errc() || end != v.data() + v.size()) return std::chrono::milliseconds(0);
  } else {
    seconds = static_cast<int64_t>(ParseHttpTime(v)) - static_cast<int64_t>(std::time(nullptr));
  }
  if (seconds <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::min(seconds, kMaxSeconds) * 1000);
}

std::string ErrorDetail(const std::string& code, const std::string& message) {
  std::string text = Trim(std::string_view(message).substr(0, message.find('\n')));
  if (text.empty()) return code;
  return code.empty() ? "(" + text + ")" : code + " (" + text + ")";
}

namespace {
Code CodeOfHttpStatus(long s) {
  if (s == 404) return Code::kNotFound;
  if (s == 401 || s == 403) return Code::kPermissionDenied;
  if (s == 412) return Code::kPreconditionFailed;
  if (s == 507) return Code::kResourceExhausted;  // a shoald whose disk is full
  if (s == 408 || s == 429 || s >= 500) return Code::kUnavailable;
  if (s >= 400) return Code::kInvalidArgument;
  return Code::kIOError;
}
}  // namespace

Status StatusFromResponse(const Response& resp, const std::string& what, const ErrorFormat& format) {
  std::string detail = what + ": HTTP " + std::to_string(resp.status);
  std::string described = format.describe ? format.describe(resp) : "";
  if (!described.empty()) detail += " " + described;

  std::optional<Code> named = format.code ? format.code(resp) : std::nullopt;
  Code code = named && *named != Code::kOk ? *named : CodeOfHttpStatus(resp.status);
  switch (code) {
    case Code::kNotFound: return Status::NotFound(detail + ": it does not exist");
    case Code::kPreconditionFailed: return Status(code, detail + ": the object changed; read it again");
    case Code::kIOError:
      if (resp.status < 400) return Status::IOError(detail + ": unexpected answer");
      return Status::IOError(detail);
    default: return Status(code, detail);
  }
}

}  // namespace shoal::http

namespace shoal::http {

std::string RangeHeader(uint64_t offset, uint64_t length) {
  if (offset == 0 && length == ByteRange::kToEnd) return "";
  std::string r = "bytes=" + std::to_string(offset) + "-";
  if (length != ByteRange::kToEnd) r += std::to_string(offset + length - 1);
  return r;
}

Result<ContentRange> ParseContentRange(std::string_view header) {
  auto bad = [&] { return Status::InvalidArgument("Content-Range '" + std::string(header) + "' is not bytes FIRST-LAST/TOTAL"); };
  std::string_view text = header;
  if (!StartsWith(text, "bytes ")) return bad();
  text.remove_prefix(6);
  const size_t dash = text.find('-'), slash = text.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return bad();
  ContentRange r;
  auto first = ParseU64(text.substr(0, dash)), last = ParseU64(text.substr(dash + 1, slash - dash - 1));
  if (!first.ok() || !last.ok() || *first > *last) return bad();
  r.first = *first;
  r.last = *last;
  if (text.substr(slash + 1) != "*") {
    auto total = ParseU64(text.substr(slash + 1));
    if (!total.ok() || *last >= *total) return bad();
    r.total = *total;
  }
  return r;
}

Status ResumableGet(Client* client, const net::RetryPolicy& policy, net::RequestStats* stats,
                    const ByteRange& range, const std::string& if_match,
                    const RangeRequestBuilder& build, const ByteSink& sink, const std::string& what,
                    const ErrorFormat& format, uint64_t if_size, Answered* answered) {
  uint64_t delivered = 0;
  std::string etag = if_match;
  uint64_t size_said = ContentRange::kUnknownTotal;  // the resource's size, as an answer gave it
  return net::RunWithRetry(policy, stats, [&](std::chrono::milliseconds* retry_after) -> Status {
    uint64_t offset = range.offset + delivered;
    uint64_t length = range.length == ByteRange::kToEnd ? range.length : range.length - delivered;
    if (range.length != ByteRange::kToEnd && length == 0) return Status::Ok();
    bool resumed = delivered > 0;
    Request req = build(offset, length, etag);
    Response resp;
    bool checked = false, complete = false;
    uint64_t this_attempt = 0;
    // Checks the headers before the first byte reaches the caller's sink: the version must be
    // the pinned one (even where a store ignores If-Match) and the range must start where asked.
    // A store that sends more than the range asked for is cut off at the range's end.
    ByteSink guarded = [&](const char* data, size_t len) -> Status {
      if (complete) return Status::IOError("more bytes than the range");  // aborts; see below
      if (!checked) {
        checked = true;
        std::string got = Unquote(resp.Header("etag"));
        if (!etag.empty() && !got.empty() && got != etag) {
          return Status::PreconditionFailed(what + " is now version " + got + ", not " + etag +
                                            ": it changed; read it again");
        }
        if (etag.empty()) etag = got;
        if (resp.status == 200 && offset > 0) {
          return Status::IOError(what + ": the store ignored the Range header");
        }
        const std::string cr = resp.Header("content-range");
        uint64_t total = ContentRange::kUnknownTotal;  // the resource's size, as the answer gives it
        if (resp.status == 206 && !cr.empty()) {
          auto answered = ParseContentRange(cr);
          if (!answered.ok() || answered->first != offset) {
            return Status::IOError(what + ": asked for bytes from " + std::to_string(offset) +
                                   ", the store answered Content-Range " + cr);
          }
          total = answered->total;
        } else if (resp.status == 200) {
          total = resp.NumberHeader("content-length").value_or(ContentRange::kUnknownTotal);
        }
        if (total != ContentRange::kUnknownTotal) size_said = total;
        if (answered != nullptr && answered->etag.empty()) *answered = Answered{etag, total, resp.headers};
        if (if_size != UINT64_MAX && total != ContentRange::kUnknownTotal) {
          auto size = Result<uint64_t>(total);
          if (size.ok() && *size != if_size) {
            return Status::PreconditionFailed(what + " is " + std::to_string(*size) + " bytes, not " +
                                              std::to_string(if_size) + " as the reader said");
          }
        }
      }
      bool last = length != ByteRange::kToEnd && this_attempt + len >= length;
      if (last) len = static_cast<size_t>(length - this_attempt);
      SHOAL_RETURN_IF_ERROR(sink(data, len));
      delivered += len;
      this_attempt += len;
      if (stats != nullptr) stats->bytes_read += len;
      complete = last;
      return Status::Ok();
    };
    Status sent = client->Send(req, &resp, &guarded);
    if (complete) return Status::Ok();  // every byte asked for arrived (an overshoot was cut)
    if (!sent.ok()) return sent;  // transient: the next attempt resumes after `delivered`
    if (resp.status >= 200 && resp.status < 300) {
      // (A range past the end is answered up to the end, as HTTP clamps it.)
      const bool at_end = size_said != ContentRange::kUnknownTotal && range.offset + delivered >= size_said;
      if (length != ByteRange::kToEnd && this_attempt < length && !at_end) {
        return Status::Unavailable(what + ": the answer ended early");
      }
      return Status::Ok();
    }
    if (resp.status == 412 && resumed && if_match.empty()) {
      return Status::PreconditionFailed(what + " was replaced while it was being read: read it again");
    }
    if (resp.status == 416) {
      return Status::InvalidArgument(what + ": the range starts past the end of the object");
    }
    *retry_after = RetryAfter(resp);
    CountThrottle(stats, resp);
    return StatusFromResponse(resp, "GET " + what, format);
  });
}

}  // namespace shoal::http
