#include "net/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
