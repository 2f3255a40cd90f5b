#include "net/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "net/node_errors.h"

namespace shoal::http {
namespace {

using std::chrono::milliseconds;

TEST(RetryAfter, ReadsSecondsAndAbsenceIsZero) {
  Response r;
  EXPECT_EQ(RetryAfter(r).count(), 0);
  r.headers["retry-after"] = "3";
  EXPECT_EQ(RetryAfter(r), milliseconds(3000));
}

TEST(RetryAfter, AHugeNumberOfSecondsIsCappedNotAnException) {
  Response r;
  r.headers["retry-after"] = "99999999999999999999";  // more than an int64 holds
  EXPECT_EQ(RetryAfter(r), net::kMaxRetryAfter);
  r.headers["retry-after"] = "86400";
  EXPECT_EQ(RetryAfter(r), net::kMaxRetryAfter);
}

TEST(RetryAfter, ADateIsTheWaitUntilThenCapped) {
  Response r;
  r.headers["retry-after"] = FormatRfc1123(std::time(nullptr) + 3600);
  EXPECT_EQ(RetryAfter(r), net::kMaxRetryAfter);
  r.headers["retry-after"] = FormatRfc1123(std::time(nullptr) - 10);
  EXPECT_EQ(RetryAfter(r).count(), 0);
}

TEST(RetryAfter, GarbageIsAbsent) {
  Response r;
  for (const char* v : {"abc", "-5", "3s", "1.5", "0x10"}) {
    r.headers["retry-after"] = v;
    EXPECT_EQ(RetryAfter(r).count(), 0) << v;
  }
}

// A number in an answer's header is taken only when it is all digits and fits: "12x" was 12,
// "x" was 0, and a size of 0 taken from a lying or broken server reads as an empty object.
TEST(ContentRange, OnlyTheWholeFormWithOrderedNumbersIsTaken) {
  auto r = ParseContentRange("bytes 8-15/100");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first, 8u);
  EXPECT_EQ(r->last, 15u);
  EXPECT_EQ(r->total, 100u);
  auto unknown = ParseContentRange("bytes 0-0/*");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->total, ContentRange::kUnknownTotal);
  for (const char* bad : {"", "bytes */100", "bytes 8-15", "bytes 15-8/100", "bytes 8-100/100", "bytes -1-5/9",
                          "bytes 8 -15/100", "items 8-15/100", "bytes 8-15/1e3", "bytes 8-15/99999999999999999999"}) {
    auto got = ParseContentRange(bad);
    EXPECT_FALSE(got.ok()) << bad;
    if (!got.ok()) {
      EXPECT_NE(got.status().message().find(std::string("'") + bad + "'"), std::string::npos) << bad;
    }
  }
}

TEST(NumberHeader, OnlyWholeDecimalNumbersAreTaken) {
  Response r;
  r.headers = {{"content-length", "1048576"}, {"x-shoal-size", "12x"}, {"x-shoal-epoch", "-3"},
               {"x-big", "18446744073709551616"}, {"x-space", " 7"}};
  ASSERT_TRUE(r.NumberHeader("Content-Length").ok());
  EXPECT_EQ(*r.NumberHeader("Content-Length"), 1048576u);
  for (const char* name : {"x-shoal-size", "x-shoal-epoch", "x-big", "x-space", "x-absent"}) {
    auto n = r.NumberHeader(name);
    ASSERT_FALSE(n.ok()) << name;
    EXPECT_EQ(n.status().code(), Code::kIOError) << name;
    EXPECT_NE(n.status().message().find(name), std::string::npos) << n.status().ToString();
  }
  EXPECT_NE(r.NumberHeader("x-absent").status().message().find("missing"), std::string::npos);
  EXPECT_EQ(r.NumberHeader("x-absent").value_or(9), 9u);
}

TEST(StatusFromResponse, MapsStatusesByWhatTheCallerDoesNext) {
  auto code = [](long status) {
    Response r;
    r.status = status;
    return StatusFromResponse(r, "GET x").code();
  };
  EXPECT_EQ(code(404), Code::kNotFound);
  EXPECT_EQ(code(403), Code::kPermissionDenied);
  EXPECT_EQ(code(401), Code::kPermissionDenied);
  EXPECT_EQ(code(412), Code::kPreconditionFailed);
  EXPECT_EQ(code(408), Code::kUnavailable);
  EXPECT_EQ(code(429), Code::kUnavailable);
  EXPECT_EQ(code(500), Code::kUnavailable);
  EXPECT_EQ(code(503), Code::kUnavailable);
  EXPECT_EQ(code(400), Code::kInvalidArgument);
}

TEST(StatusFromResponse, KnowsNoServersErrorFormatOfItsOwn) {
  Response r;
  r.status = 403;
  r.headers["x-ms-error-code"] = "AuthenticationFailed";
  r.body = "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code></Error>";
  EXPECT_EQ(StatusFromResponse(r, "Put Blob az://c/k").message(), "Put Blob az://c/k: HTTP 403");
}

TEST(StatusFromResponse, QuotesWhatTheCallersFormatReads) {
  Response r;
  r.status = 503;
  ErrorFormat format;
  format.describe = [](const Response& resp) {
    return ErrorDetail(resp.Header("x-code"), "Busy now.\nRequestId:1");
  };
  r.headers["x-code"] = "ServerBusy";
  Status st = StatusFromResponse(r, "GET x", format);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "GET x: HTTP 503 ServerBusy (Busy now.)");
}

TEST(ErrorDetail, PutsTheCodeFirstAndTheMessagesFirstLineInParentheses) {
  EXPECT_EQ(ErrorDetail("", ""), "");
  EXPECT_EQ(ErrorDetail("NoSuchKey", ""), "NoSuchKey");
  EXPECT_EQ(ErrorDetail("", " held here as copies \nmore"), "(held here as copies)");
  EXPECT_EQ(ErrorDetail("NoSuchKey", "The key does not exist."), "NoSuchKey (The key does not exist.)");
}

TEST(NodeErrors, QuotesAShoaldsJsonMessageOrItsHeadHeaders) {
  Response json;
  json.status = 409;
  json.body = R"({"code":"InvalidArgument","message":"3 objects under \"ckpt/\" are held here as copies"})";
  EXPECT_EQ(StatusFromResponse(json, "POST /v1/commit", NodeErrors()).message(),
            "POST /v1/commit: HTTP 409 (3 objects under \"ckpt/\" are held here as copies)");
  Response head;
  head.status = 404;
  head.headers["x-shoal-error"] = "NotFound";
  head.headers["x-shoal-message"] = "az://c/k is not in the store";
  EXPECT_EQ(StatusFromResponse(head, "HEAD az://c/k", NodeErrors()).message(),
            "HEAD az://c/k: HTTP 404 NotFound (az://c/k is not in the store): it does not exist");
}

TEST(RangeHeader, WholeObjectHasNoRange) {
  EXPECT_EQ(RangeHeader(0, ByteRange::kToEnd), "");
  EXPECT_EQ(RangeHeader(10, ByteRange::kToEnd), "bytes=10-");
  EXPECT_EQ(RangeHeader(0, 1), "bytes=0-0");
  EXPECT_EQ(RangeHeader(5, 10), "bytes=5-14");
}

// A loopback port of the test's own. Listening, it takes connections (into its backlog) and
// never answers; bound but not listening, connecting to it is refused.
class LoopbackPort {
 public:
  explicit LoopbackPort(bool listening) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), len);
    if (listening) listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackPort() { close(fd_); }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/watch"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(Client, ARefusedConnectionIsConnectFailed) {
  LoopbackPort port(/*listening=*/false);
  Client client;
  Request req;
  req.url = port.Url();
  Response resp;
  Status st = client.Send(req, &resp);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_TRUE(st.IsConnectFailed()) << st.ToString();
}

TEST(Client, AMissingUnixSocketIsConnectFailed) {
  Client client;
  Request req;
  req.url = "http://localhost/x";
  req.unix_socket = "/nonexistent/shoald.sock";
  Response resp;
  EXPECT_TRUE(client.Send(req, &resp).IsConnectFailed());
}

TEST(Call, ConnectFailedOutlastsTheRetries) {
  LoopbackPort port(/*listening=*/false);
  Client client;
  net::RetryPolicy policy;
  policy.max_attempts = 2;
  policy.sleep = [](milliseconds) {};
  Response resp;
  Status st = Call(&client, policy, nullptr, [&] {
    Request req;
    req.url = port.Url();
    return req;
  }, &resp, "GET x");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_TRUE(st.IsConnectFailed()) << st.ToString();
  EXPECT_NE(st.message().find("after 2 attempts"), std::string::npos) << st.message();
}

TEST(Canceller, EndsARequestWaitingOnASilentServerAtOnce) {
  LoopbackPort server(/*listening=*/true);
  Client client;
  Canceller cancel;
  Request req;
  req.url = server.Url();
  req.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    cancel.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  Response resp;
  Status st = client.Send(req, &resp);
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_LT(took, milliseconds(2000));
  // And a request sent after Cancel() fails before it connects.
  EXPECT_EQ(client.Send(req, &resp).code(), Code::kUnavailable);
}

// A keep-alive HTTP server on loopback that answers every request "ok" after `delay`, and
// counts the connections it accepted.
class CountingServer {
 public:
  explicit CountingServer(milliseconds delay) : delay_(delay) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), len);
    listen(fd_, 64);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted_++;
        std::lock_guard<std::mutex> lock(mu_);
        conns_.push_back(c);
        workers_.emplace_back([this, c] { Serve(c); });
      }
    });
  }
  ~CountingServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : conns_) shutdown(c, SHUT_RDWR);
    for (auto& w : workers_) w.join();
    for (int c : conns_) close(c);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  int accepted() const { return accepted_; }

 private:
  void Serve(int c) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) return;
        in.append(buf, n);
      }
      in.erase(0, end + 4);
      std::this_thread::sleep_for(delay_);
      std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (write(c, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) return;
    }
  }
  milliseconds delay_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;            // guarded by mu_
  std::vector<std::thread> workers_;  // guarded by mu_
};

// 8 threads x 5 requests at once through a client bound to 2 connections per server: the
// server accepts exactly 2, the other requests wait for them; unbounded, it accepts more.
TEST(Client, AtMostMaxPerServerConnectionsAreOpenedAndReused) {
  for (int bound : {2, 0}) {
    CountingServer server(milliseconds(20));
    Client client(bound);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
      threads.emplace_back([&] {
        for (int i = 0; i < 5; i++) {
          Request req;
          req.url = server.Url();
          Response resp;
          if (client.Send(req, &resp).ok() && resp.status == 200 && resp.body == "ok") ok++;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 40) << bound;
    if (bound == 2) {
      EXPECT_EQ(server.accepted(), 2);
      EXPECT_GT(client.waits(), 0u);
    } else {
      EXPECT_GT(server.accepted(), 2) << "a connection per request in flight";
      EXPECT_EQ(client.waits(), 0u);
    }
  }
}

// A request with a timeout that finds every connection busy for all of it fails as
// unavailable, saying so; the busy one completes.
TEST(Client, ARequestWaitingForABusyServerGivesUpAtItsTimeout) {
  CountingServer server(milliseconds(500));
  Client client(1);
  std::thread busy([&] {
    Request req;
    req.url = server.Url();
    Response resp;
    EXPECT_TRUE(client.Send(req, &resp).ok());
  });
  while (server.accepted() == 0) std::this_thread::sleep_for(milliseconds(1));
  Request req;
  req.url = server.Url();
  req.timeout = milliseconds(100);
  Response resp;
  Status st = client.Send(req, &resp);
  busy.join();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("stayed busy"), std::string::npos) << st.ToString();
  EXPECT_EQ(st.detail(), Detail::kConnectionsBusy);
  EXPECT_EQ(server.accepted(), 1);
}

TEST(Request, TimeoutBoundsTheWholeRequest) {
  LoopbackPort server(/*listening=*/true);
  Client client;
  Request req;
  req.url = server.Url();
  req.timeout = milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  Response resp;
  Status st = client.Send(req, &resp);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_FALSE(st.IsConnectFailed()) << "it connected, then timed out: " << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
}

}  // namespace
}  // namespace shoal::http
