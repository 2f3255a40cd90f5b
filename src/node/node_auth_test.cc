#include "node/node_auth.h"

#include <gtest/gtest.h>

namespace shoal::node {
namespace {

constexpr const char* kKeys = R"(
token loader   0123456789abcdef0123   az://data/train/:read
token writer   fedcba9876543210fedc   s3://ckpt/job7/:read-write  file:///srv/out/:read-write
token admin    aaaaaaaaaaaaaaaaaaaa   *:read-write
s3    AKIDS3   s3secret              models:read
)";

class NodeAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = door::Credentials::FromText(kKeys, "keys.txt");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    keys_ = std::move(c).value();
  }
  Status As(const std::string& bearer, const std::string& method, const std::string& target) {
    Caller caller;
    caller.token = keys_->FindNodeToken(bearer);
    if (!caller.token) return Status::PermissionDenied("unknown token " + bearer);
    return Authorize(caller, NeedOf(method, target));
  }
  std::unique_ptr<door::Credentials> keys_;
};

const std::string kLoader = "loader:0123456789abcdef0123";
const std::string kWriter = "writer:fedcba9876543210fedc";

TEST_F(NodeAuthTest, TokensAreFoundByIdAndSecretOnly) {
  EXPECT_TRUE(keys_->has_node_tokens());
  EXPECT_NE(keys_->FindNodeToken(kLoader), nullptr);
  EXPECT_EQ(keys_->FindNodeToken("loader:0123456789abcdef0124"), nullptr);  // wrong secret
  EXPECT_EQ(keys_->FindNodeToken("loader:0123456789abcdef012"), nullptr);   // a prefix of it
  EXPECT_EQ(keys_->FindNodeToken("0123456789abcdef0123"), nullptr);         // no id
  EXPECT_EQ(keys_->FindNodeToken("AKIDS3:s3secret"), nullptr);              // a door key is not a token
  auto plain = door::Credentials::FromText("s3 AKIDS3 s3secret models:read\n", "k");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE((*plain)->has_node_tokens());
}

TEST_F(NodeAuthTest, AReadOnlyTokenReadsButCannotWriteOrDelete) {
  EXPECT_TRUE(As(kLoader, "GET", "/v1/object?url=az%3A%2F%2Fdata%2Ftrain%2Fshard-0").ok());
  EXPECT_TRUE(As(kLoader, "HEAD", "/v1/object?url=az://data/train/shard-0").ok());
  EXPECT_TRUE(As(kLoader, "POST", "/v1/warm?url=az://data/train/shard-0&index=0").ok());
  Status put = As(kLoader, "PUT", "/v1/object?url=az://data/train/shard-0");
  EXPECT_EQ(put.code(), Code::kPermissionDenied);
  EXPECT_NE(put.message().find("token loader may not write az://data/train/shard-0"), std::string::npos) << put.message();
  EXPECT_FALSE(As(kLoader, "DELETE", "/v1/object?url=az://data/train/shard-0").ok());
  EXPECT_FALSE(As(kLoader, "POST", "/v1/commit?prefix=az://data/train/step1").ok());
}

TEST_F(NodeAuthTest, ATokenForOnePrefixCannotReachAnother) {
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=az://data/eval/x").ok());
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=az://other/train/x").ok());
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=s3://data/train/x").ok());           // another scheme
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=az://data@acct2/train/x").ok());     // another account
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=az://data/training/x").ok());        // not under train/
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=az://data").ok());                   // the container itself
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object?url=not-a-url").ok());
  EXPECT_FALSE(As(kLoader, "GET", "/v1/object").ok());                                 // no url
}

TEST_F(NodeAuthTest, ListingsAndPendingNeedTheWholePrefix) {
  EXPECT_TRUE(As(kLoader, "GET", "/v1/list?url=az://data/train/").ok());
  EXPECT_TRUE(As(kLoader, "GET", "/v1/list?url=az://data&prefix=train/a").ok());
  EXPECT_FALSE(As(kLoader, "GET", "/v1/list?url=az://data&prefix=").ok());   // the whole container
  EXPECT_FALSE(As(kLoader, "GET", "/v1/list?url=az://data&prefix=tr").ok());  // wider than train/
  EXPECT_TRUE(As(kLoader, "GET", "/v1/pending?prefix=az://data/train/").ok());
  EXPECT_FALSE(As(kLoader, "GET", "/v1/pending").ok());  // every pending write: only *
  EXPECT_TRUE(As("admin:aaaaaaaaaaaaaaaaaaaa", "GET", "/v1/pending").ok());
}

TEST_F(NodeAuthTest, AReadWriteTokenWritesCommitsAndDeletesInItsScopes) {
  EXPECT_TRUE(As(kWriter, "PUT", "/v1/object?url=s3://ckpt/job7/step3/rank0.pt").ok());
  EXPECT_TRUE(As(kWriter, "DELETE", "/v1/object?url=s3://ckpt/job7/step3/rank0.pt").ok());
  // A delete that skips the member holding the object's pending write is a member's hop only.
  Status hop = As(kWriter, "DELETE", "/v1/object?url=s3://ckpt/job7/step3/rank0.pt&forwarded=1");
  EXPECT_EQ(hop.code(), Code::kPermissionDenied);
  EXPECT_NE(hop.message().find("is not the cluster's token"), std::string::npos) << hop.message();
  EXPECT_TRUE(As(kWriter, "POST", "/v1/commit?prefix=s3://ckpt/job7/step3").ok());
  EXPECT_TRUE(As(kWriter, "POST", "/v1/commit?prefix=s3://ckpt/job7").ok());  // ckpt/job7/ is its scope
  EXPECT_FALSE(As(kWriter, "POST", "/v1/commit?prefix=s3://ckpt/job").ok());
  EXPECT_FALSE(As(kWriter, "PUT", "/v1/object?url=s3://ckpt/job8/x").ok());
  EXPECT_TRUE(As(kWriter, "PUT", "/v1/object?url=file:///srv/out/a").ok());
  EXPECT_FALSE(As(kWriter, "PUT", "/v1/object?url=file:///srv/outside").ok());
}

TEST_F(NodeAuthTest, PeerEndpointsTakeOnlyTheClustersToken) {
  for (const char* target : {"/v1/replica/chunk?id=1&index=0&url=s3://ckpt/job7/x", "/v1/replica/commit",
                             "/v1/cluster/view", "/v1/drain", "/v1/nonsense"}) {
    Status st = As("admin:aaaaaaaaaaaaaaaaaaaa", "POST", target);
    EXPECT_EQ(st.code(), Code::kPermissionDenied) << target;
    EXPECT_NE(st.message().find("cluster's token"), std::string::npos) << st.message();
  }
  EXPECT_TRUE(As(kLoader, "GET", "/v1/cluster").ok());  // any token may see the membership
  Caller peer;
  peer.peer = true;
  EXPECT_TRUE(Authorize(peer, NeedOf("POST", "/v1/replica/commit")).ok());
  EXPECT_TRUE(Authorize(peer, NeedOf("PUT", "/v1/object?url=az://anything/x")).ok());
}

TEST(NodeTokens, MalformedTokenLinesAreRefusedByName) {
  auto err = [](const std::string& text) {
    auto c = door::Credentials::FromText(text, "keys.txt");
    return c.ok() ? std::string() : c.status().message();
  };
  EXPECT_NE(err("token tok1 short az://d/:read\n").find("shorter than 16"), std::string::npos);
  EXPECT_NE(err("token tok1 0123456789abcdef0123 data/x:read\n").find("is not az://container"), std::string::npos);
  EXPECT_NE(err("token tok1 0123456789abcdef0123 gs://d/:read\n").find("is not az://container"), std::string::npos);
  EXPECT_NE(err("token tok1 0123456789abcdef0123 az://d/:write\n").find("not read or read-write"), std::string::npos);
  EXPECT_NE(err("token tok1 0123456789abcdef0123\n").find("no scope"), std::string::npos);
  EXPECT_NE(err("tokens tok1 0123456789abcdef0123 *:read\n").find("is not s3, azure, both or token"),
            std::string::npos);
}

// The cluster's token: the first line is sent, every line accepted; a rotation sends the new
// first line at once, keeps a dropped token for the grace (none: refused at once), and a copy
// is a snapshot.
TEST(ClusterTokenTest, RotationSendsTheNewTokenAndRetiresTheOldAfterTheGrace) {
  ClusterToken open;
  EXPECT_TRUE(open.empty());
  EXPECT_EQ(open.get(), "");
  EXPECT_FALSE(open.Accepts(""));

  ClusterToken token({"old-token"});
  EXPECT_EQ(std::string(token), "old-token");
  EXPECT_TRUE(token.Accepts("old-token"));
  EXPECT_FALSE(token.Accepts("new-token"));

  // Step one: the new token accepted everywhere before anyone sends it.
  auto change = token.Rotate({"old-token", "new-token"}, std::chrono::seconds(0));
  EXPECT_FALSE(change.sent_changed);
  EXPECT_EQ(change.added, 1u);
  EXPECT_EQ(change.retired, 0u);
  EXPECT_EQ(token.get(), "old-token");
  EXPECT_TRUE(token.Accepts("new-token"));

  // Step two: sent; the old one dropped with a grace, still accepted.
  const ClusterToken before = token;
  change = token.Rotate({"new-token"}, std::chrono::seconds(600));
  EXPECT_TRUE(change.sent_changed);
  EXPECT_EQ(change.added, 0u);
  EXPECT_EQ(change.retired, 1u);
  EXPECT_EQ(token.get(), "new-token");
  EXPECT_TRUE(token.Accepts("old-token"));
  EXPECT_TRUE(token.Accepts("new-token"));
  EXPECT_EQ(before.get(), "old-token");

  // Without a grace a dropped token is refused at once; one still in its grace stays
  // accepted; one taken back into the file and dropped again without a grace is refused.
  change = token.Rotate({"newer-token"}, std::chrono::seconds(0));
  EXPECT_EQ(change.retired, 1u);
  EXPECT_FALSE(token.Accepts("new-token"));
  EXPECT_TRUE(token.Accepts("old-token"));  // its own grace still runs
  EXPECT_TRUE(token.Accepts("newer-token"));
  EXPECT_FALSE(token.Accepts("newer-toke"));
  EXPECT_FALSE(token.Accepts(""));
  token.Rotate({"old-token"}, std::chrono::seconds(0));
  token.Rotate({"newest-token"}, std::chrono::seconds(0));
  EXPECT_FALSE(token.Accepts("old-token"));
  EXPECT_TRUE(token.Accepts("newest-token"));
}

}  // namespace
}  // namespace shoal::node
