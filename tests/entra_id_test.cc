// Entra ID bearer tokens for the Azure backend, end to end: Azurite over HTTPS checking tokens
// (--oauth basic, a certificate made here and given to the client by SHOAL_CA_FILE) and a token
// server on loopback (src/testing/token_server.js) that checks what each source presents and
// counts the tokens it issues. Each source (workload identity, client secret, IMDS, App
// Service) reads and writes across token refreshes; a token the service refuses is refreshed
// once and the request retried once; refusals by the token endpoint say its code and source.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "net/http_client.h"
#include "store/azure/azure_store.h"
#include "testing/data.h"
#include "testing/servers.h"

namespace shoal {
namespace {

using std::chrono::milliseconds;
using testing::Env;
using testing::TokenServerConfig;

constexpr const char* kContainer = "entra";
constexpr const char* kApp = "0d1f6a43-5f8a-4e55-9b53-7a1cfb4dbd21";
constexpr const char* kManagedIdentity = "8c0f3a1b-2d4e-4f60-8a7b-9c0d1e2f3a4b";

// One Azurite for the binary, over HTTPS with a certificate every client here trusts.
struct World {
  testing::TempDir dir;
  testing::TlsFiles tls;
  testing::Azurite azurite;
};
World* world = nullptr;

class EntraEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    world = new World;
    auto tls = testing::MakeSelfSignedCertificate(world->dir.path());
    ASSERT_TRUE(tls.ok()) << tls.status().ToString();
    world->tls = tls.value();
    // Read by every http::Client made from now on, and inherited by the shoal processes.
    setenv(http::kCaFileVariable, world->tls.cert.c_str(), 1);
    Status st = world->azurite.StartHttpsOAuth(world->tls);
    ASSERT_TRUE(st.ok()) << st.ToString();
    // With the account key over HTTPS, so no test's token counts include it.
    st = world->azurite.Store(kContainer)->CreateBucket();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override { delete world; }
};

enum class Source { kWorkloadIdentity, kClientSecret, kImds, kAppService };

std::string Name(Source s) {
  switch (s) {
    case Source::kWorkloadIdentity: return "workload_identity";
    case Source::kClientSecret: return "client_secret";
    case Source::kImds: return "imds";
    case Source::kAppService: return "app_service";
  }
  return "";
}

uint64_t IssuedBy(const testing::TokenServerStats& s, Source source) {
  switch (source) {
    case Source::kWorkloadIdentity: return s.workload_identity;
    case Source::kClientSecret: return s.client_secret;
    case Source::kImds: return s.imds;
    case Source::kAppService: return s.app_service;
  }
  return 0;
}

// A token server per test (so no test sees another's tokens, and each test's credential, keyed
// by the server's address, is new).
class EntraIdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.client_id = kApp;
    config_.secret = "test-client-secret~value";
    config_.identity_header = "test-identity-header";
    config_.msi_client_id = kManagedIdentity;
    RotateAssertion();
    Status st = server_.Start(config_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // A new federated token in the file, as the kubelet writes one before the old expires; the
  // token server accepts only the new one from now on.
  void RotateAssertion() {
    config_.assertion = "eyJhbGciOiJSUzI1NiJ9.service-account-token-" + std::to_string(++assertions_) + ".sig";
    std::ofstream(token_file()) << config_.assertion << "\n";
  }

  std::string token_file() const { return tmp_.path() + "/azure-identity-token"; }

  // The variables a process would have for `source` (on AKS with workload identity, with an
  // app's secret, on a VM, on App Service); every other credential variable unset.
  Env EnvFor(Source source) const {
    Env env = {{"AZURE_STORAGE_CONNECTION_STRING", ""}, {"AZURE_STORAGE_KEY", ""},
               {"AZURE_STORAGE_SAS_TOKEN", ""},         {"AZURE_STORAGE_ACCOUNT", "devstoreaccount1"},
               {"AZURE_STORAGE_BLOB_ENDPOINT", world->azurite.Endpoint()},
               {"AZURE_TENANT_ID", ""},                 {"AZURE_CLIENT_ID", ""},
               {"AZURE_CLIENT_SECRET", ""},             {"AZURE_FEDERATED_TOKEN_FILE", ""},
               {"AZURE_AUTHORITY_HOST", ""},            {"IDENTITY_ENDPOINT", ""},
               {"IDENTITY_HEADER", ""},                 {"AZURE_POD_IDENTITY_AUTHORITY_HOST", ""}};
    switch (source) {
      case Source::kWorkloadIdentity:
        env["AZURE_TENANT_ID"] = config_.tenant;
        env["AZURE_CLIENT_ID"] = kApp;
        env["AZURE_FEDERATED_TOKEN_FILE"] = token_file();
        env["AZURE_AUTHORITY_HOST"] = server_.Base();
        break;
      case Source::kClientSecret:
        env["AZURE_TENANT_ID"] = config_.tenant;
        env["AZURE_CLIENT_ID"] = kApp;
        env["AZURE_CLIENT_SECRET"] = config_.secret;
        env["AZURE_AUTHORITY_HOST"] = server_.Base();
        break;
      case Source::kImds:
        env["AZURE_CLIENT_ID"] = kManagedIdentity;
        env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = server_.Base();
        break;
      case Source::kAppService:
        env["AZURE_CLIENT_ID"] = kManagedIdentity;
        env["IDENTITY_ENDPOINT"] = server_.AppServiceEndpoint();
        env["IDENTITY_HEADER"] = config_.identity_header;
        break;
    }
    return env;
  }

  AzureConfig ConfigFor(Source source) {
    testing::ScopedEnv env(EnvFor(source));
    auto c = AzureConfig::FromEnvironment();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_NE(c.value().token, nullptr);
    return c.value();
  }

  testing::TokenServerStats Stats() {
    auto s = server_.Stats();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s.value() : testing::TokenServerStats{};
  }

  void Configure() {
    Status st = server_.Configure(config_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  testing::TempDir tmp_;
  TokenServerConfig config_;
  testing::TokenServer server_;
  int assertions_ = 0;
};

std::string Data(uint64_t seed, size_t size) {
  std::string s(size, '\0');
  testing::PatternSource::Fill(seed, 0, s.data(), size);
  return s;
}

Result<std::string> ReadAll(ObjectStore& store, const std::string& key) {
  std::string got;
  SHOAL_RETURN_IF_ERROR(store.Get(key, ReadOptions{}, [&](const char* d, size_t n) {
    got.append(d, n);
    return Status::Ok();
  }));
  return got;
}

// Writes two objects (one Put Blob, one of three blocks) and reads back, lists and stats every
// object written so far, checking each answer.
void WriteAndReadBack(ObjectStore& store, const std::string& prefix, int round) {
  std::string small = Data(round, 1000 + round);
  auto put = store.PutObject(prefix + "/small-" + std::to_string(round), small);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  std::string large = Data(100 + round, 3 * 70000 + round);
  auto upload = store.BeginUpload(prefix + "/large-" + std::to_string(round));
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  for (uint32_t i = 0; i < 3; i++) {
    Status st = upload.value()->PutPart(i, i * 70000, std::string_view(large).substr(i * 70000, i == 2 ? std::string::npos : 70000));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto done = upload.value()->Complete(3);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  for (int r = 0; r <= round; r++) {
    auto s = ReadAll(store, prefix + "/small-" + std::to_string(r));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s.value(), Data(r, 1000 + r));
    auto l = ReadAll(store, prefix + "/large-" + std::to_string(r));
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    EXPECT_EQ(l.value(), Data(100 + r, 3 * 70000 + r));
  }
  auto head = store.Head(prefix + "/large-" + std::to_string(round));
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, large.size());
  auto listed = ListAll(store, prefix + "/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->size(), 2u * (round + 1));
}

class EntraIdSourceTest : public EntraIdTest, public ::testing::WithParamInterface<Source> {};

// Tokens that live 4 s are refreshed after 2 s; between rounds the test waits 2.5 s, so every
// round after the first needs a new token, fetched before the old one expires: the service
// never refuses one (no forced refresh) and every request succeeds. The federated token file
// is rewritten every round, and the token server takes only the newest: it is read each time.
TEST_P(EntraIdSourceTest, ReadsAndWritesAcrossTokenRefreshes) {
  config_.expires_in = 4;
  Configure();
  AzureConfig config = ConfigFor(GetParam());
  auto store = NewAzureStore(config, kContainer);
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; round++) {
    if (round > 0) {
      std::this_thread::sleep_for(milliseconds(2500));
      RotateAssertion();
      Configure();
    }
    ASSERT_NO_FATAL_FAILURE(WriteAndReadBack(*store, Name(GetParam()), round));
  }
  auto s = Stats();
  TokenStats mine = config.token->stats();
  EXPECT_GE(s.issued, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(s.issued, mine.fetches);
  EXPECT_EQ(IssuedBy(s, GetParam()), s.issued);
  EXPECT_EQ(s.refused, 0u) << s.last_refusal;
  EXPECT_EQ(mine.forced_refreshes, 0u);
  EXPECT_EQ(mine.failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sources, EntraIdSourceTest,
                         ::testing::Values(Source::kWorkloadIdentity, Source::kClientSecret,
                                           Source::kImds, Source::kAppService),
                         [](const ::testing::TestParamInfo<Source>& p) { return Name(p.param); });

// The token server says a token lives an hour, but its exp claim ends it after 3 s (a revoked
// or clock-skewed token): the next request is refused (Azurite: 403 AuthenticationFailed,
// "The token is expired"), the credential fetches exactly one new token and the request is
// sent once more. Once for a request without a body (Get Blob Properties), once for a read.
TEST_F(EntraIdTest, AnExpiredTokenIsRefreshedOnceAndTheRequestRetried) {
  config_.expires_in = 3600;
  config_.jwt_lifetime = 3;
  Configure();
  AzureConfig config = ConfigFor(Source::kWorkloadIdentity);
  auto store = NewAzureStore(config, kContainer);
  std::string data = Data(7, 50000);
  auto put = store->PutObject("expired/obj", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(Stats().issued, 1u);

  std::this_thread::sleep_for(milliseconds(4000));
  auto head = store->Head("expired/obj");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, data.size());
  EXPECT_EQ(Stats().issued, 2u);
  EXPECT_EQ(config.token->stats().forced_refreshes, 1u);

  std::this_thread::sleep_for(milliseconds(4000));
  auto got = ReadAll(*store, "expired/obj");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got.value(), data);
  auto s = Stats();
  EXPECT_EQ(s.issued, 3u);
  EXPECT_EQ(s.refused, 0u);
  TokenStats mine = config.token->stats();
  EXPECT_EQ(mine.fetches, 3u);
  EXPECT_EQ(mine.forced_refreshes, 2u);
}

// Azure Blob answers an expired or revoked bearer token with 401 InvalidAuthenticationInfo
// (Azurite answers 403, above). A proxy serving HTTPS in front of Azurite answers the first
// request 401: the credential fetches exactly one new token and the request goes once more,
// answered. Then every request 401: one refresh, one more request, then the error saying the
// fresh token was refused, and nothing more sent (counted at the proxy).
TEST_F(EntraIdTest, A401IsRefreshedOnceAndTheRequestRetried) {
  Configure();
  testing::FaultProxy proxy;
  Status st = proxy.StartTls("https://127.0.0.1:" + std::to_string(world->azurite.port()), world->tls);
  ASSERT_TRUE(st.ok()) << st.ToString();
  AzureConfig config = ConfigFor(Source::kWorkloadIdentity);
  config.endpoint = world->azurite.Endpoint(proxy.port());
  auto store = NewAzureStore(config, kContainer);
  const std::string data = Data(9, 30000);
  auto put = store->PutObject("unauthorized/obj", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(Stats().issued, 1u);

  testing::FaultConfig once;
  once.error_codes = "401";
  once.error_first = 1;
  ASSERT_TRUE(proxy.Configure(once).ok());
  ASSERT_TRUE(proxy.Reset().ok());
  auto head = store->Head("unauthorized/obj");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, data.size());
  EXPECT_EQ(Stats().issued, 2u);
  EXPECT_EQ(config.token->stats().forced_refreshes, 1u);
  auto seen = proxy.Stats();
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->requests, 2u);
  EXPECT_EQ(seen->injected_errors, 1u);

  testing::FaultConfig always;
  always.error_codes = "401";
  always.error_rate = 1;
  ASSERT_TRUE(proxy.Configure(always).ok());
  ASSERT_TRUE(proxy.Reset().ok());
  auto got = ReadAll(*store, "unauthorized/obj");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kPermissionDenied) << got.status().ToString();
  EXPECT_NE(got.status().message().find("refused a fresh Entra ID token from workload identity"), std::string::npos)
      << got.status().ToString();
  EXPECT_EQ(Stats().issued, 3u);
  EXPECT_EQ(config.token->stats().forced_refreshes, 2u);
  seen = proxy.Stats();
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->requests, 2u);
  EXPECT_EQ(seen->injected_errors, 2u);
}

// A new token the service refuses too (here: issued for another audience) is not retried
// again: one forced refresh, then the error, naming the service's reason and the source.
TEST_F(EntraIdTest, ATokenRefusedAfterItsRefreshFailsWithoutMoreRetries) {
  config_.audience = "https://management.azure.com";
  Configure();
  AzureConfig config = ConfigFor(Source::kWorkloadIdentity);
  auto store = NewAzureStore(config, kContainer);
  auto put = store->PutObject("refused/obj", "data");
  ASSERT_FALSE(put.ok());
  const Status& st = put.status();
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("Invalid token audience"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("refused a fresh Entra ID token from workload identity"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(Stats().issued, 2u);
  EXPECT_EQ(config.token->stats().forced_refreshes, 1u);
}

// What each source's endpoint says when it refuses reaches the caller: the AADSTS code (or
// the managed identity endpoint's error), which source, and what to check. A refusal is final:
// exactly one request reached the endpoint, and nothing reached the Blob service.
struct Refusal {
  Source source;
  std::vector<std::string> said;  // in the message
};

class EntraIdRefusalTest : public EntraIdTest, public ::testing::WithParamInterface<Refusal> {};

TEST_P(EntraIdRefusalTest, ARevokedIdentityFailsSayingTheCodeAndTheSource) {
  config_.revoked = true;
  Configure();
  AzureConfig config = ConfigFor(GetParam().source);
  auto store = NewAzureStore(config, kContainer);
  auto put = store->PutObject("revoked/obj", "data");
  ASSERT_FALSE(put.ok());
  const Status& st = put.status();
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("Put Blob az://entra/revoked/obj: no token for account 'devstoreaccount1'"),
            std::string::npos) << st.ToString();
  for (const auto& s : GetParam().said) EXPECT_NE(st.message().find(s), std::string::npos) << s << " in " << st.ToString();
  auto s = Stats();
  EXPECT_EQ(s.issued, 0u);
  EXPECT_EQ(s.refused, 1u);
  EXPECT_EQ(config.token->stats().failures, 1u);
  EXPECT_EQ(store->stats().requests.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Sources, EntraIdRefusalTest,
    ::testing::Values(
        Refusal{Source::kWorkloadIdentity,
                {"HTTP 400 invalid_client (AADSTS70021: No matching federated identity record",
                 "workload identity (AZURE_CLIENT_ID=", "AZURE_FEDERATED_TOKEN_FILE=",
                 "federated credential"}},
        Refusal{Source::kClientSecret,
                {"HTTP 401 invalid_client (AADSTS7000215: Invalid client secret provided",
                 "client secret (AZURE_CLIENT_ID=", "check AZURE_CLIENT_SECRET"}},
        Refusal{Source::kImds,
                {"HTTP 400 invalid_request (Identity not found)", "managed identity (IMDS at http://127.0.0.1:",
                 "AZURE_CLIENT_ID=8c0f3a1b"}},
        Refusal{Source::kAppService,
                {"HTTP 400 invalid_request (Identity not found)", "managed identity (IDENTITY_ENDPOINT="}}),
    [](const ::testing::TestParamInfo<Refusal>& p) { return Name(p.param.source); });

// `shoal cp` and `shoal cat` with only the variables AKS workload identity injects (and the
// account): one token per process.
TEST_F(EntraIdTest, TheCommandLineWritesAndReadsWithWorkloadIdentity) {
  Env env = EnvFor(Source::kWorkloadIdentity);
  std::string shoal = testing::BinaryDir() + "/bin/shoal";
  std::string data = Data(11, 300000);
  auto cp = testing::RunCommand({shoal, "cp", "-", "az://entra/cli/obj"}, env, data);
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto cat = testing::RunCommand({shoal, "cat", "az://entra/cli/obj"}, env);
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == data) << "cat gave " << cat.out.size() << " bytes";
  auto s = Stats();
  EXPECT_EQ(s.issued, 2u);
  EXPECT_EQ(s.workload_identity, 2u);
}

// Without SHOAL_CA_FILE the test's certificate is not trusted, and the message says what to
// set; with a CA file that is not there, the message names it.
TEST_F(EntraIdTest, AnUntrustedCertificateSaysToSetTheCaFile) {
  Env env = EnvFor(Source::kWorkloadIdentity);
  env[http::kCaFileVariable] = "";
  auto ls = testing::RunCommand({testing::BinaryDir() + "/bin/shoal", "ls", "az://entra/"}, env);
  EXPECT_NE(ls.exit_code, 0);
  EXPECT_NE(ls.err.find("set SHOAL_CA_FILE"), std::string::npos) << ls.err;
  env[http::kCaFileVariable] = tmp_.path() + "/no-such-ca.pem";
  ls = testing::RunCommand({testing::BinaryDir() + "/bin/shoal", "ls", "az://entra/"}, env);
  EXPECT_NE(ls.exit_code, 0);
  EXPECT_NE(ls.err.find("checked against SHOAL_CA_FILE=" + tmp_.path() + "/no-such-ca.pem"), std::string::npos)
      << ls.err;
}

TEST(EntraIdConfig, TokensAreNeverSentOverPlainHttp) {
  testing::ScopedEnv env({{"AZURE_STORAGE_CONNECTION_STRING", ""}, {"AZURE_STORAGE_KEY", ""},
                          {"AZURE_STORAGE_SAS_TOKEN", ""}, {"AZURE_STORAGE_ACCOUNT", "acct"},
                          {"AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:1/acct"},
                          {"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "a"},
                          {"AZURE_CLIENT_SECRET", "s"}, {"AZURE_AUTHORITY_HOST", "http://127.0.0.1:1"}});
  auto c = AzureConfig::FromEnvironment();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("only over https"), std::string::npos) << c.status().ToString();
}

// An explicit key wins over an identity that is also configured.
TEST(EntraIdConfig, AnAccountKeyWinsOverAnIdentity) {
  testing::ScopedEnv env({{"AZURE_STORAGE_CONNECTION_STRING", ""}, {"AZURE_STORAGE_SAS_TOKEN", ""},
                          {"AZURE_STORAGE_ACCOUNT", "acct"}, {"AZURE_STORAGE_KEY", "a2V5"},
                          {"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "a"},
                          {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"}});
  auto c = AzureConfig::FromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->token, nullptr);
  EXPECT_EQ(c->key, "a2V5");
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new shoal::EntraEnvironment);
  return RUN_ALL_TESTS();
}
