#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/byte_sink.h"
#include "common/status.h"
#include "common/strings.h"
#include "net/request_stats.h"
#include "net/retry.h"

namespace shoal::http {

// Ends requests in flight from another thread, at once: a watch stream that may stay silent for
// minutes, or the calls of a background thread being joined. Cancel() shuts down the sockets
// of the requests sent with this canceller (they fail with kUnavailable) and makes later ones
// fail before they connect. Thread-safe; must outlive the requests sent with it.
class Canceller {
 public:
  void Cancel();
  bool cancelled() const;

  // For the client: the sockets of requests in flight. Register returns false once cancelled.
  bool Register(int fd);
  void Unregister(int fd);

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;  // Guarded by mu_.
  std::vector<int> fds_;    // Guarded by mu_.
};

struct Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::string unix_socket;  // connect to this Unix socket instead of the URL's host and port
  // Connect to this HOST:PORT ("[v6]:PORT") instead of the URL's host and port, while HTTPS
  // checks the server's certificate against the URL's host (curl's CONNECT_TO): a server
  // reached at an address its certificate does not name, but a name it does.
  std::string connect_to;
  std::string ca_file;      // HTTPS: check the server against the CAs in this PEM file (else the Client's)
  // HTTPS: present this PEM certificate and key when the server asks for one (a node started
  // with --tls-client-ca); "" presents none.
  std::string cert_file, key_file;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;       // sent as is, with Content-Length; must outlive Send
  // Instead of `body`: a streamed body, pulled in pieces (0 = the end); body_length is its
  // Content-Length, or -1 to send it chunked. A streamed request cannot be retried by Call.
  std::function<size_t(char* buf, size_t len)> body_reader;
  int64_t body_length = -1;
  // The whole request, connecting included; 0: no limit.
  std::chrono::milliseconds timeout{0};
  // Connecting alone (TCP and TLS handshakes); 0: 10 s.
  std::chrono::milliseconds connect_timeout{0};
  // How long the connection may move less than 1 KiB/s before the request fails as dead (and
  // may be retried); 0: 60 s. A request whose answer comes only once the server has done long
  // work (S3's CompleteMultipartUpload: minutes for a large object) sets more.
  std::chrono::seconds silent_limit{0};
  // When set, the request has a connection of its own (never reused), which cancel->Cancel()
  // shuts down, and no low-speed limit: it may stream a silent response (a watch) for as long
  // as the server keeps it open.
  Canceller* cancel = nullptr;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;  // non-2xx bodies, and 2xx bodies when no sink was given (capped at 16 MiB)
  // The value of header `name` (in any case: names are case-insensitive); "" when absent.
  std::string Header(std::string_view name) const {
    auto it = headers.find(ToLower(name));
    return it == headers.end() ? std::string() : it->second;
  }
  // Header `name` as a whole decimal number (ParseU64: digits only, no overflow): kIOError
  // naming the header and its text when it is missing or anything else. A number another
  // program sends is never taken on trust (a strtoull would read "12x" as 12 and "x" as 0).
  Result<uint64_t> NumberHeader(std::string_view name) const;
};

// A pool of keep-alive connections (libcurl easy handles), kept per server (scheme, host and
// port, or Unix socket): a handle talks to one server only and keeps at most one connection
// open, so the handles of a server are its connections. Thread-safe; one request per handle at
// a time, handles are reused so connections stay open.
//
// `max_per_server` (0: no bound) bounds the connections open to one server at once: a request
// finding them all busy waits for one (within its `timeout`, when it has one: else kUnavailable
// saying so). Nodes bound their calls to each other this way (shoald --peer-connections); a
// caller must then never wait, while it holds a connection, for another request of its own to
// the same server.
//
// HTTPS servers' certificates are checked against the system's CA bundle, or, when the
// environment variable SHOAL_CA_FILE names a PEM file (read when the Client is made), against
// the CAs in that file instead (a private CA, a test's self-signed certificate).
class Client {
 public:
  explicit Client(int max_per_server = 0);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request, without retry. A 2xx body goes to `sink` when given. Errors:
  // kUnavailable for connection failures, resets and timeouts (with Detail::kConnectFailed
  // when no connection could be made: nothing was sent); the sink's own error if it failed.
  // Any HTTP status (even 500) is a successful Send: the caller maps it.
  Status Send(const Request& req, Response* resp, const ByteSink* sink = nullptr);

  // Requests that waited for a connection to their server to be free (at max_per_server).
  uint64_t waits();

  // Called with each request whose connection could not be made (Send's kConnectFailed),
  // before Send returns: a caller that may send to several servers passes this one over on its
  // next attempt (client::EntryNodes). Set before the first Send.
  void set_on_connect_failed(std::function<void(const Request&)> hook) { on_connect_failed_ = std::move(hook); }

 private:
  struct Server {
    std::vector<void*> idle;  // CURL*, each holding at most one open connection
    int open = 0;             // handles made for this server and not yet cleaned up
  };
  // A handle for the server `key`: an idle one, or a new one if the bound allows, else waits
  // (until `deadline`, when not max()). Null when the wait ran out (or out of memory).
  void* Acquire(const std::string& key, std::chrono::steady_clock::time_point deadline);
  // Back to the pool; `reuse` false: its connection is in an unknown state, cleaned up.
  void Release(const std::string& key, void* handle, bool reuse);

  const int max_per_server_;
  std::function<void(const Request&)> on_connect_failed_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::map<std::string, Server> servers_;  // guarded by mu_
  uint64_t waits_ = 0;                     // guarded by mu_
  std::string ca_file_;      // SHOAL_CA_FILE, or "" for the system's bundle
};

// The environment variable that names the CA file of every Client.
inline constexpr const char* kCaFileVariable = "SHOAL_CA_FILE";

// How a server's own error answers read. The net layer knows no server's format: each caller
// passes its own (the S3 and Azure backends, a cache node's client). Both hooks are optional.
struct ErrorFormat {
  // The server's error code and message in a non-2xx answer, as ErrorDetail puts them
  // ("AuthenticationFailed (Server failed to authenticate the request.)"); "" when the answer
  // says nothing beyond its HTTP status.
  std::function<std::string(const Response& resp)> describe;
  // The code the server's answer names itself, which wins over the mapping of its HTTP status
  // (a shoald's 500 may be a Corruption, final, where a 500 of unknown origin is transient);
  // nullopt: map the status.
  std::function<std::optional<Code>(const Response& resp)> code;
  // True for a 2xx answer to `req` that is a failure after all, which Call then treats as a
  // 500 (S3's CompleteMultipartUpload can answer 200 with an <Error> body).
  std::function<bool(const Request& req, const Response& resp)> failed_2xx;
};

// "CODE (first line of message)" for ErrorFormat::describe; either part may be empty.
std::string ErrorDetail(const std::string& code, const std::string& message);

// Sends the request `build` makes (built and signed anew for every attempt) with retries.
// Ok for a 2xx answer (its body in *resp); otherwise the mapped error of the last attempt,
// described by `format`. Counts request bytes sent in stats->bytes_written.
Status Call(Client* client, const net::RetryPolicy& policy, net::RequestStats* stats,
            const std::function<Request()>& build, Response* resp, const std::string& what,
            const ErrorFormat& format = {});

// The code format.code reads from the answer, else its HTTP status mapped: 404 -> kNotFound,
// 401/403 -> kPermissionDenied, 412 -> kPreconditionFailed, 507 (a full shoald) ->
// kResourceExhausted, 408/429/5xx -> kUnavailable, other 4xx -> kInvalidArgument. The
// message is "WHAT: HTTP STATUS", then what format.describe reads from the answer.
Status StatusFromResponse(const Response& resp, const std::string& what,
                          const ErrorFormat& format = {});

// Retry-After in seconds (or an HTTP date) -> delay, at most net::kMaxRetryAfter; 0 when
// absent, past or unreadable.
std::chrono::milliseconds RetryAfter(const Response& resp);
// Counts a 429 or 503 in stats->throttled (what adaptive uploaders watch).
void CountThrottle(net::RequestStats* stats, const Response& resp);

}  // namespace shoal::http

namespace shoal::http {

// Bytes [offset, offset + length) of a resource; length kToEnd: to its end.
struct ByteRange {
  static constexpr uint64_t kToEnd = UINT64_MAX;
  uint64_t offset = 0;
  uint64_t length = kToEnd;
};

// Builds (and signs) the request for one attempt of a ranged read: bytes
// [offset, offset + length) (length ByteRange::kToEnd: to the end; offset 0 with kToEnd:
// no range at all), with If-Match: "etag" when etag is not empty.
using RangeRequestBuilder =
    std::function<Request(uint64_t offset, uint64_t length, const std::string& etag)>;

// A read of `range` that survives dropped connections: each retry asks for the bytes not yet
// delivered, pinned (If-Match) to `if_match` or else to the ETag of the first answer, so `sink`
// sees every byte exactly once and never bytes of two versions. `what` names the resource in
// messages. kPreconditionFailed when the resource changed; kInvalidArgument for a range that
// starts past its end; a range that runs past it gets the bytes up to it (as HTTP clamps it).
// `if_size` (UINT64_MAX: any): kPreconditionFailed unless the resource's size, as the answer
// gives it (Content-Range's total; Content-Length of a whole answer), is this.
// `answered` (when set): the version (ETag) and size (UINT64_MAX when not given) that the first
// answer with bytes named, and that answer's headers (the object's date and metadata).
struct Answered {
  std::string etag;
  uint64_t total = UINT64_MAX;
  std::map<std::string, std::string> headers;  // names lower-cased
};
Status ResumableGet(Client* client, const net::RetryPolicy& policy, net::RequestStats* stats,
                    const ByteRange& range, const std::string& if_match,
                    const RangeRequestBuilder& build, const ByteSink& sink, const std::string& what,
                    const ErrorFormat& format = {}, uint64_t if_size = UINT64_MAX, Answered* answered = nullptr);

// "bytes=a-b" / "bytes=a-" for a range, "" for the whole object.
std::string RangeHeader(uint64_t offset, uint64_t length);

// A Content-Range header, "bytes FIRST-LAST/TOTAL" (TOTAL "*": unknown).
struct ContentRange {
  static constexpr uint64_t kUnknownTotal = UINT64_MAX;
  uint64_t first = 0, last = 0;
  uint64_t total = kUnknownTotal;
};
// kInvalidArgument, naming the text, for anything but that form with whole decimal numbers
// and first <= last (< total when it is known).
Result<ContentRange> ParseContentRange(std::string_view header);

}  // namespace shoal::http
