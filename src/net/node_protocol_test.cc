#include "net/node_protocol.h"

#include <gtest/gtest.h>

#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/node_errors.h"

namespace shoal::proto {
namespace {

// Every Code there is: they are numbered from kOk up, and CodeName knows each one.
std::vector<Code> AllCodes() {
  std::vector<Code> codes;
  for (int c = 0; c < 256 && std::string(CodeName(static_cast<Code>(c))) != "Unknown"; c++) {
    codes.push_back(static_cast<Code>(c));
  }
  return codes;
}

// How a node answers `code`: its row's HTTP status and {"code", "message"} (see server.cc).
http::Response NodeAnswer(Code code) {
  http::Response resp;
  resp.status = HttpStatusOf(code);
  resp.body = nlohmann::json{{std::string(kCodeField), CodeName(code)}, {std::string(kMessageField), "m"}}.dump();
  return resp;
}

// ... and to a HEAD request, with the code in headers and no body.
http::Response NodeHeadAnswer(Code code) {
  http::Response resp;
  resp.status = HttpStatusOf(code);
  resp.headers[ToLower(kErrorHeader)] = CodeName(code);
  resp.headers[ToLower(kMessageHeader)] = "m";
  return resp;
}

TEST(NodeProtocol, EveryCodeHasExactlyOneRow) {
  ASSERT_GE(AllCodes().size(), 10u);
  for (Code code : AllCodes()) {
    int rows = 0;
    for (const CodeRow& row : kCodeTable) rows += row.code == code;
    EXPECT_EQ(rows, 1) << CodeName(code);
  }
  EXPECT_EQ(std::size(kCodeTable), AllCodes().size());
}

TEST(NodeProtocol, EveryErrorCodeRoundTripsThroughAnAnswer) {
  for (Code code : AllCodes()) {
    if (code == Code::kOk) continue;
    EXPECT_EQ(http::StatusFromResponse(NodeAnswer(code), "GET x", http::NodeErrors()).code(), code) << CodeName(code);
    EXPECT_EQ(http::StatusFromResponse(NodeHeadAnswer(code), "HEAD x", http::NodeErrors()).code(), code)
        << CodeName(code);
  }
}

TEST(NodeProtocol, OnlyUnavailableIsTransient) {
  for (Code code : AllCodes()) {
    if (code == Code::kOk) continue;
    EXPECT_EQ(http::StatusFromResponse(NodeAnswer(code), "GET x", http::NodeErrors()).IsTransient(),
              code == Code::kUnavailable)
        << CodeName(code);
  }
}

TEST(NodeProtocol, NamesRoundTrip) {
  for (Code code : AllCodes()) EXPECT_EQ(CodeFromName(CodeName(code)), code);
  EXPECT_EQ(CodeFromName("Busy"), std::nullopt);
  EXPECT_EQ(CodeFromName("notfound"), std::nullopt);  // exact
  EXPECT_EQ(CodeFromName(""), std::nullopt);
}

TEST(NodeProtocol, AFullDiskWithoutANameIsNotRetried) {
  http::Response resp;
  resp.status = 507;
  Status st = http::StatusFromResponse(resp, "PUT x", http::NodeErrors());
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_FALSE(st.IsTransient());
  resp.status = 412;
  EXPECT_EQ(http::StatusFromResponse(resp, "GET x", http::NodeErrors()).code(), Code::kPreconditionFailed);
}

TEST(NodeProtocol, BusyIsTransient) {
  http::Response resp;
  resp.status = 503;
  resp.headers[ToLower(kErrorHeader)] = std::string(kBusy);
  resp.body = R"({"code":"Unavailable","message":"this node is serving --max-connections requests: retry"})";
  EXPECT_TRUE(http::StatusFromResponse(resp, "GET x", http::NodeErrors()).IsTransient());
  resp.body.clear();  // the header alone: "Busy" is no code, the 503 decides
  EXPECT_TRUE(http::StatusFromResponse(resp, "GET x", http::NodeErrors()).IsTransient());
}

TEST(NodeProtocol, ANamelessServerErrorIsTransient) {
  // A 500 from a proxy in front of the node names no code: as for any server, retry it.
  http::Response resp;
  resp.status = 500;
  resp.body = "<html>Internal Server Error</html>";
  EXPECT_TRUE(http::StatusFromResponse(resp, "GET x", http::NodeErrors()).IsTransient());
}

TEST(NodeProtocol, ResponseHeadersAreFoundInAnyCase) {
  http::Response resp;
  resp.headers["x-shoal-size"] = "12";
  EXPECT_EQ(resp.Header(kSizeHeader), "12");
  EXPECT_EQ(resp.Header("x-shoal-size"), "12");
}

TEST(NodeProtocol, TargetEncodesEachValue) {
  EXPECT_EQ(Target(kObjectPath, {{kUrlParam, "az://c/a b"}}), "/v1/object?url=az%3A%2F%2Fc%2Fa%20b");
  EXPECT_EQ(Target(kDrainPath), "/v1/drain");
  EXPECT_EQ(ReplicaDropPath("w1", "az://c/k", 3), "/v1/replica/drop?id=w1&chunks=3&url=az%3A%2F%2Fc%2Fk");
}

TEST(NodeProtocol, ReplicaCommitNamesItsStampAndAnIncarnationUnlessAdopted) {
  ReplicaCommit c{.id = "w1", .url = "az://c/k", .origin = "n1", .incarnation = "i7", .size = 10, .chunk_size = 4,
                  .created_unix_ms = 5, .begun_unix_us = 1700000000000001, .adopt = false};
  EXPECT_EQ(ReplicaCommitPath(c),
            "/v1/replica/commit?id=w1&size=10&chunk_size=4&created=5&begun=1700000000000001&origin=n1&incarnation=i7&url=az%3A%2F%2Fc%2Fk");
  c.adopt = true;
  EXPECT_EQ(ReplicaCommitPath(c),
            "/v1/replica/commit?id=w1&size=10&chunk_size=4&created=5&begun=1700000000000001&origin=n1&adopt=1&url=az%3A%2F%2Fc%2Fk");
}

TEST(NodeProtocol, RequestsReachUnixSocketsAndV6Hosts) {
  http::Request unix_req = NodeRequest("GET", "unix:/run/shoal.sock", kClusterPath, "");
  EXPECT_EQ(unix_req.unix_socket, "/run/shoal.sock");
  EXPECT_EQ(unix_req.url, "http://localhost/v1/cluster");
  EXPECT_TRUE(unix_req.headers.empty());
  http::Request v6 = NodeRequest("POST", "[::1]:7070", kDrainPath, "t0k");
  EXPECT_EQ(v6.url, "http://[::1]:7070/v1/drain");
  EXPECT_EQ(v6.method, "POST");
  ASSERT_EQ(v6.headers.size(), 1u);
  EXPECT_EQ(v6.headers[0].first, "Authorization");
  EXPECT_EQ(v6.headers[0].second, "Bearer t0k");
  // And back: where each request goes.
  EXPECT_EQ(EndpointOf(unix_req), "unix:/run/shoal.sock");
  EXPECT_EQ(EndpointOf(v6), "[::1]:7070");
  EXPECT_EQ(EndpointOf(NodeRequest("GET", "h:1", Target(kObjectPath, {{kUrlParam, "az://c/a/b"}}), "")), "h:1");
}

// With a TLS name (shoald --tls-name, SHOAL_TLS_NAME), a TCP node's URL carries the name at the
// endpoint's port and the request connects to the endpoint; a Unix socket stays plain.
TEST(NodeProtocol, WithATlsNameTheUrlNamesItAndTheRequestConnectsToTheEndpoint) {
  const NodeTls before = GetNodeTls();
  NodeTls named;
  named.on = true;
  named.ca_file = "ca.pem";
  named.name = "shoal-nodes.test";
  SetNodeTls(named);
  http::Request v4 = NodeRequest("GET", "10.0.0.4:7070", kClusterPath, "");
  http::Request v6 = NodeRequest("GET", "[::1]:7071", kClusterPath, "");
  http::Request unix_req = NodeRequest("GET", "unix:/run/shoal.sock", kClusterPath, "");
  SetNodeTls(before);
  EXPECT_EQ(v4.url, "https://shoal-nodes.test:7070" + std::string(kClusterPath));
  EXPECT_EQ(v4.connect_to, "10.0.0.4:7070");
  EXPECT_EQ(v4.ca_file, "ca.pem");
  EXPECT_EQ(EndpointOf(v4), "10.0.0.4:7070");
  EXPECT_EQ(v6.url, "https://shoal-nodes.test:7071" + std::string(kClusterPath));
  EXPECT_EQ(EndpointOf(v6), "[::1]:7071");
  EXPECT_EQ(unix_req.url, "http://localhost" + std::string(kClusterPath));
  EXPECT_TRUE(unix_req.connect_to.empty());
  EXPECT_TRUE(CheckTlsName("--tls-name ", "shoal-nodes.shoal.svc").ok());
  for (const char* bad : {"", "shoal nodes", "a:1", "a/b", "[::1]"}) {
    Status st = CheckTlsName("--tls-name ", bad);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st.message(), "--tls-name " + std::string(bad) + " is not a DNS name (letters, digits, '-' and '.')");
  }
}

TEST(NodeProtocol, AChunkRequestNamesItsVersionModeAndEpoch) {
  http::Request req = ChunkRequest("h:1", "", ChunkRead{.url = "az://c/k", .etag = "e1", .size = 100, .first = 8,
                                                        .last = 15, .mode = kReadForwarded, .epoch = 4});
  std::map<std::string, std::string> h(req.headers.begin(), req.headers.end());
  EXPECT_EQ(req.url, "http://h:1/v1/object?url=az%3A%2F%2Fc%2Fk");
  EXPECT_EQ(h["Range"], "bytes=8-15");
  EXPECT_EQ(h["X-Shoal-Etag"], "e1");
  EXPECT_EQ(h["X-Shoal-Size"], "100");
  EXPECT_EQ(h["X-Shoal-Read"], "forwarded");
  EXPECT_EQ(h["X-Shoal-Epoch"], "4");
  req = ChunkRequest("h:1", "", ChunkRead{.url = "u", .etag = "e", .size = 1, .first = 0, .last = 0, .mode = kReadHeld,
                                          .epoch = 0});
  for (const auto& [name, value] : req.headers) EXPECT_NE(name, "X-Shoal-Epoch");  // epoch 0: none
}

TEST(NodeProtocol, MetadataHeadersRoundTripWithNamesInAnyCase) {
  ObjectMeta meta;
  meta.content_type = "text/csv";
  meta.content_disposition = "attachment; filename=\"a b.csv\"";
  meta.user = {{"author", "Ada"}, {"step_2", "7"}};
  auto headers = MetaHeaders(meta);
  std::map<std::string, std::string> h(headers.begin(), headers.end());
  EXPECT_EQ(h["Content-Type"], "text/csv");
  EXPECT_EQ(h["X-Shoal-Meta-author"], "Ada");
  EXPECT_EQ(h.count("Cache-Control"), 0u);  // not set: not sent
  std::vector<std::pair<std::string_view, std::string_view>> in(headers.begin(), headers.end());
  in.push_back({"Host", "h:1"});  // other headers are not metadata
  auto back = MetaFromHeaders(in);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  // HTTP names are case-insensitive; user names arrive lower-cased.
  auto upper = MetaFromHeaders({{"content-TYPE", "text/csv"}, {"X-SHOAL-META-Author", "Ada"}});
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->content_type, "text/csv");
  EXPECT_EQ(upper->user.at("author"), "Ada");
  // No metadata: the answer still names the default content type.
  auto none = MetaHeaders(ObjectMeta{});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].second, kDefaultContentType);
}

TEST(NodeProtocol, MetadataHeadersAreValidatedAndNotRepeated) {
  EXPECT_EQ(MetaFromHeaders({{"X-Shoal-Meta-my-key", "v"}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MetaFromHeaders({{"X-Shoal-Meta-a", "1"}, {"x-shoal-meta-A", "2"}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(MetaFromHeaders({{"Content-Type", "a/b"}, {"Content-Type", "c/d"}}).status().code(),
            Code::kInvalidArgument);
}

TEST(NodeProtocol, AReplicaCommitCarriesTheWritesMetadata) {
  ObjectMeta meta;
  meta.cache_control = "no-store";
  meta.user = {{"rank", "0"}};
  auto back = ParseReplicaCommitBody(ReplicaCommitBody(meta));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  EXPECT_EQ(ReplicaCommitBody(ObjectMeta{}), "");  // none: the commit has no body, as before
  EXPECT_TRUE(ParseReplicaCommitBody("")->empty());
  EXPECT_EQ(ParseReplicaCommitBody("[1]").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseReplicaCommitBody("{\"user\": 3}").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::proto
