#include "store/azure/azure_identity.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "store/azure/azure_store.h"
#include "testing/process.h"

namespace shoal {
namespace {

using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

// A clock the test moves, and a token endpoint that counts what it issues.
struct FakeEndpoint {
  TimePoint now{std::chrono::hours(1)};
  seconds lifetime{4};
  std::atomic<int> fetches{0};
  Status fail;  // when not ok, every fetch fails with it

  std::unique_ptr<TokenCredential> Credential() {
    return std::make_unique<TokenCredential>(
        "test source",
        [this]() -> Result<AccessToken> {
          int n = ++fetches;
          if (!fail.ok()) return fail;
          return AccessToken{"t" + std::to_string(n), lifetime};
        },
        [this] { return now; });
  }
};

TEST(TokenCredential, RefreshMarginIsHalfTheLifetimeAtMostFiveMinutes) {
  EXPECT_EQ(TokenCredential::RefreshMargin(seconds(4)), seconds(2));
  EXPECT_EQ(TokenCredential::RefreshMargin(seconds(600)), seconds(300));
  EXPECT_EQ(TokenCredential::RefreshMargin(seconds(3600)), seconds(300));
  EXPECT_EQ(TokenCredential::RefreshMargin(seconds(86399)), seconds(300));
  EXPECT_EQ(TokenCredential::RefreshMargin(seconds(0)), seconds(0));
}

TEST(TokenCredential, AShortTokenIsUsedUntilHalfItsLifetime) {
  FakeEndpoint ep;
  auto cred = ep.Credential();
  EXPECT_EQ(cred->Token().value(), "t1");
  ep.now += std::chrono::milliseconds(1999);
  EXPECT_EQ(cred->Token().value(), "t1");
  EXPECT_EQ(ep.fetches, 1);
  ep.now += std::chrono::milliseconds(1);
  EXPECT_EQ(cred->Token().value(), "t2");
  EXPECT_EQ(ep.fetches, 2);
  EXPECT_EQ(cred->stats().fetches, 2u);
  EXPECT_EQ(cred->stats().forced_refreshes, 0u);
}

TEST(TokenCredential, AnHourTokenIsRefreshedFiveMinutesBeforeItExpires) {
  FakeEndpoint ep;
  ep.lifetime = seconds(3600);
  auto cred = ep.Credential();
  EXPECT_EQ(cred->Token().value(), "t1");
  ep.now += seconds(3299);
  EXPECT_EQ(cred->Token().value(), "t1");
  ep.now += seconds(1);
  EXPECT_EQ(cred->Token().value(), "t2");
  EXPECT_EQ(ep.fetches, 2);
}

TEST(TokenCredential, ManyCallersWithoutATokenShareOneFetch) {
  std::atomic<int> fetches{0}, in_fetch{0}, most_in_fetch{0}, entered{0};
  constexpr int kThreads = 8;
  TokenCredential cred("test", [&]() -> Result<AccessToken> {
    int now_in = ++in_fetch;
    most_in_fetch = std::max(most_in_fetch.load(), now_in);
    fetches++;
    // Held until every caller has asked: a credential that fetched per caller would be seen here.
    while (entered < kThreads) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    in_fetch--;
    return AccessToken{"shared", seconds(3600)};
  });
  std::vector<std::thread> threads;
  std::vector<std::string> got(kThreads);
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      entered++;
      auto t = cred.Token();
      got[i] = t.ok() ? t.value() : t.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(most_in_fetch, 1);
  for (const auto& g : got) EXPECT_EQ(g, "shared");
}

TEST(TokenCredential, OthersKeepTheValidTokenWhileOneCallerRefreshes) {
  FakeEndpoint ep;
  std::promise<void> in_fetch, release;
  std::shared_future<void> released = release.get_future().share();
  int calls = 0;
  TokenCredential cred(
      "test",
      [&]() -> Result<AccessToken> {
        if (++calls == 2) {
          in_fetch.set_value();
          released.wait();
        }
        return AccessToken{"t" + std::to_string(calls), seconds(4)};
      },
      [&] { return ep.now; });
  EXPECT_EQ(cred.Token().value(), "t1");
  ep.now += seconds(3);  // past the refresh point, not expired
  auto refresher = std::async(std::launch::async, [&] { return cred.Token(); });
  in_fetch.get_future().wait();
  EXPECT_EQ(cred.Token().value(), "t1");  // does not wait for the fetch in flight
  release.set_value();
  EXPECT_EQ(refresher.get().value(), "t2");
  EXPECT_EQ(cred.Token().value(), "t2");
  EXPECT_EQ(calls, 2);
}

TEST(TokenCredential, AFailedRefreshKeepsTheValidTokenAndWaitsBeforeTryingAgain) {
  FakeEndpoint ep;
  auto cred = ep.Credential();
  EXPECT_EQ(cred->Token().value(), "t1");
  ep.now += seconds(2);
  ep.fail = Status::Unavailable("endpoint down");
  EXPECT_EQ(cred->Token().value(), "t1");
  EXPECT_EQ(ep.fetches, 2);
  ep.now += std::chrono::milliseconds(1500);  // 0.5 s before expiry: the next try is at expiry
  EXPECT_EQ(cred->Token().value(), "t1");
  EXPECT_EQ(ep.fetches, 2);
  ep.now += std::chrono::milliseconds(500);  // expired, and the endpoint still down
  auto r = cred->Token();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "endpoint down");
  EXPECT_EQ(ep.fetches, 3);
  EXPECT_EQ(cred->stats().failures, 2u);
  ep.fail = Status::Ok();
  EXPECT_EQ(cred->Token().value(), "t4");
}

TEST(TokenCredential, ARefusedTokenIsReplacedOnceHoweverManyCallersSawItRefused) {
  FakeEndpoint ep;
  ep.lifetime = seconds(3600);
  auto cred = ep.Credential();
  EXPECT_EQ(cred->Token().value(), "t1");
  EXPECT_EQ(cred->Refresh("t1").value(), "t2");
  EXPECT_EQ(cred->Refresh("t1").value(), "t2");  // a second caller with the same refused token
  EXPECT_EQ(cred->Token().value(), "t2");
  EXPECT_EQ(ep.fetches, 2);
  EXPECT_EQ(cred->stats().forced_refreshes, 1u);
}

TEST(TokenCredential, ATokenThatArrivesExpiredIsUsedOnceThenFetchedAgain) {
  FakeEndpoint ep;
  ep.lifetime = seconds(-30);
  auto cred = ep.Credential();
  EXPECT_EQ(cred->Token().value(), "t1");
  EXPECT_EQ(cred->Token().value(), "t2");
  EXPECT_EQ(ep.fetches, 2);
}

// EntraConfig::FromEnvironment with `vars` set and every other variable of a source unset.
Result<EntraConfig> ConfigWith(std::map<std::string, std::string> vars) {
  for (const char* name : {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                           "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
                           "IDENTITY_HEADER", "AZURE_POD_IDENTITY_AUTHORITY_HOST"}) {
    vars.emplace(name, "");
  }
  testing::ScopedEnv env(vars);
  return EntraConfig::FromEnvironment();
}

TEST(EntraConfig, AClientSecretComesBeforeWorkloadIdentityAndBothBeforeManagedIdentity) {
  std::map<std::string, std::string> all = {
      {"AZURE_TENANT_ID", "tenant"},        {"AZURE_CLIENT_ID", "app"},
      {"AZURE_CLIENT_SECRET", "s3cr3t"},    {"AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"},
      {"IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"}, {"IDENTITY_HEADER", "h"}};
  auto c = ConfigWith(all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, EntraConfig::Kind::kClientSecret);
  EXPECT_EQ(c->authority, "https://login.microsoftonline.com");
  EXPECT_EQ(c->Describe().find("s3cr3t"), std::string::npos) << c->Describe();

  all.erase("AZURE_CLIENT_SECRET");
  c = ConfigWith(all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, EntraConfig::Kind::kWorkloadIdentity);
  EXPECT_EQ(c->token_file, "/var/run/token");

  all.erase("AZURE_FEDERATED_TOKEN_FILE");
  c = ConfigWith(all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, EntraConfig::Kind::kAppService);
  EXPECT_EQ(c->client_id, "app");  // the user-assigned identity to ask for

  all.erase("IDENTITY_ENDPOINT");
  c = ConfigWith(all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, EntraConfig::Kind::kImds);
  EXPECT_EQ(c->endpoint, "http://169.254.169.254");

  all["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9/";
  c = ConfigWith(all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:9");
}

TEST(EntraConfig, AnAppWithoutItsTenantIsRefusedByName) {
  auto c = ConfigWith({{"AZURE_CLIENT_ID", "app"}, {"AZURE_FEDERATED_TOKEN_FILE", "/t"}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("AZURE_FEDERATED_TOKEN_FILE is set but AZURE_TENANT_ID is not"),
            std::string::npos)
      << c.status().ToString();
}

TEST(EntraConfig, AnAuthorityOverPlainHttpIsRefusedUnlessLoopback) {
  std::map<std::string, std::string> vars = {
      {"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "a"}, {"AZURE_CLIENT_SECRET", "s"},
      {"AZURE_AUTHORITY_HOST", "http://login.example.com/"}};
  auto c = ConfigWith(vars);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("must be https"), std::string::npos) << c.status().ToString();
  vars["AZURE_AUTHORITY_HOST"] = "http://127.0.0.1:4000/";
  EXPECT_EQ(ConfigWith(vars).value().authority, "http://127.0.0.1:4000");
  vars["AZURE_AUTHORITY_HOST"] = "login.microsoftonline.us";
  EXPECT_EQ(ConfigWith(vars).value().authority, "https://login.microsoftonline.us");
}

TEST(EntraConfig, AnIdentityEndpointWithoutItsHeaderIsRefused) {
  auto c = ConfigWith({{"IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("IDENTITY_HEADER"), std::string::npos);
}

TEST(EntraCredential, EqualConfigsShareOneCache) {
  EntraConfig a;
  a.kind = EntraConfig::Kind::kImds;
  a.endpoint = "http://127.0.0.1:9";
  EntraConfig b = a;
  b.client_id = "other";
  EXPECT_EQ(EntraCredential(a), EntraCredential(a));
  EXPECT_NE(EntraCredential(a), EntraCredential(b));
}

TEST(EntraCredential, AnUnreachableEndpointIsTransientAndNamesTheSource) {
  EntraConfig c;
  c.kind = EntraConfig::Kind::kImds;
  c.endpoint = "http://127.0.0.1:" + std::to_string(testing::FreePort());  // nothing listens
  auto token = EntraCredential(c)->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), Code::kUnavailable) << token.status().ToString();
  const std::string& m = token.status().message();
  EXPECT_EQ(m.rfind("Entra ID token from managed identity (IMDS at " + c.endpoint + "): ", 0), 0u) << m;
  EXPECT_NE(m.find("IMDS answers only on Azure VMs"), std::string::npos) << m;
}

TEST(DescribeTokenError, ReadsEntraIdImdsAndAppServiceAnswers) {
  EXPECT_EQ(DescribeTokenError(R"({"error":"invalid_client","error_description":"AADSTS70021: No matching )"
                               R"(federated identity record found for presented assertion.\r\nTrace ID: x",)"
                               R"("error_codes":[70021]})"),
            "invalid_client (AADSTS70021: No matching federated identity record found for presented "
            "assertion.)");
  EXPECT_EQ(DescribeTokenError(R"({"error":"invalid_request","error_description":"Identity not found"})"),
            "invalid_request (Identity not found)");
  EXPECT_EQ(DescribeTokenError(R"({"statusCode":400,"message":"No managed identity"})"),
            "(No managed identity)");
  EXPECT_EQ(DescribeTokenError(R"({"error":{"code":"Forbidden","message":"bad header"}})"),
            "Forbidden (bad header)");
  EXPECT_EQ(DescribeTokenError("<html>bad gateway</html>"), "");
}

TEST(AzureAccounts, AnUrlNamesItsAccountAfterTheContainer) {
  auto named = ObjectUrl::Parse("az://ckpt@west/run/1");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->container(), "ckpt");
  EXPECT_EQ(named->account(), "west");
  EXPECT_EQ(named->AccountLabel(), "az@west");
  EXPECT_EQ(named->key, "run/1");
  EXPECT_EQ(named->ToString(), "az://ckpt@west/run/1");
  EXPECT_EQ(named->WithKey("x").ToString(), "az://ckpt@west/x");
  auto plain = ObjectUrl::Parse("az://ckpt/run/1");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->container(), "ckpt");
  EXPECT_EQ(plain->account(), "");
  EXPECT_EQ(plain->AccountLabel(), "az");
  EXPECT_EQ(ObjectUrl::Parse("s3://bucket/k")->AccountLabel(), "s3");
  for (const char* bad : {"az://ckpt@/k", "az://@west/k", "az://ckpt@West/k", "az://ckpt@a_b/k", "s3://b@west/k"}) {
    EXPECT_FALSE(ObjectUrl::Parse(bad).ok()) << bad;
  }
  EXPECT_NE(ObjectUrl::Parse("s3://b@west/k").status().message().find("only Azure URLs name an account"),
            std::string::npos);
}

// Every source of an account's credentials with the Entra ID variables unset.
std::map<std::string, std::string> WithoutIdentity(std::map<std::string, std::string> vars) {
  for (const char* name : {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                           "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING",
                           "SHOAL_AZ_EU_2_AZURE_STORAGE_ACCOUNT", "SHOAL_AZ_EU_2_AZURE_STORAGE_KEY"}) {
    vars.emplace(name, "");
  }
  return vars;
}

TEST(AzureAccounts, EachAccountTakesItsOwnPrefixedVariables) {
  testing::ScopedEnv env(WithoutIdentity({
      {"AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"},
      {"SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING",
       "AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1"},
      {"SHOAL_AZ_EU_2_AZURE_STORAGE_ACCOUNT", "realaccount"},
      {"SHOAL_AZ_EU_2_AZURE_STORAGE_KEY", "a2V5"},
  }));
  EXPECT_EQ(AzureConfig::AccountVariablePrefix("eu-2"), "SHOAL_AZ_EU_2_");
  auto def = AzureConfig::FromEnvironment();
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_EQ(def->endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  auto west = AzureConfig::ForAccount("west");
  ASSERT_TRUE(west.ok()) << west.status().ToString();
  EXPECT_EQ(west->endpoint, "http://127.0.0.1:1/devstoreaccount1");
  EXPECT_EQ(west->source, "SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING");
  auto eu = AzureConfig::ForAccount("eu-2");
  ASSERT_TRUE(eu.ok()) << eu.status().ToString();
  EXPECT_EQ(eu->account, "realaccount");
  EXPECT_EQ(eu->endpoint, "https://realaccount.blob.core.windows.net");
  EXPECT_EQ(eu->source, "SHOAL_AZ_EU_2_AZURE_STORAGE_KEY");
  // No variables of its own: the account of that name, with the process's identity (here IMDS).
  auto east = AzureConfig::ForAccount("east");
  ASSERT_TRUE(east.ok()) << east.status().ToString();
  EXPECT_EQ(east->account, "east");
  EXPECT_EQ(east->endpoint, "https://east.blob.core.windows.net");
  ASSERT_NE(east->token, nullptr);
  EXPECT_NE(east->source.find("IMDS"), std::string::npos) << east->source;
}

}  // namespace
}  // namespace shoal
