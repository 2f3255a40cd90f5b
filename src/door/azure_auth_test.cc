// Shared Key and SAS verification against requests and signatures from the real SDKs
// (azure.storage.blob from Debian's python3-azure, @azure/storage-blob from npm), then
// tampered one thing at a time.
#include "door/azure_auth.h"

#include <gtest/gtest.h>

#include <pugixml.hpp>

#include "door/testdata/captures.h"

namespace shoal::door {
namespace {

using testdata::Captured;
using testdata::Replace;
using testdata::SetHeader;

class AzureAuth : public testdata::CapturedTest {
 protected:

  static std::unique_ptr<Credentials> Keys(const std::string& scopes = "data:read-write",
                                           const std::string& key = testdata::kAccountKey) {
    auto c = Credentials::FromText(
        std::string("azure ") + testdata::kAccount + " " + key + " " + scopes + "\n", "test keys");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  static Verdict<AzurePrincipal, AzureError> Verify(const Captured& c,
                                                    std::time_t now = std::time(nullptr),
                                                    const Credentials* keys = nullptr) {
    auto own = Keys();
    return VerifyAzure(c.view, keys ? *keys : *own, {}, now);
  }

  // "OK" or the Azure code.
  static std::string Check(const Captured& c, std::time_t now = std::time(nullptr),
                           const Credentials* keys = nullptr) {
    auto p = Verify(c, now, keys);
    return p.ok() ? "OK" : p.error().name();
  }
};

// --- Shared Key -----------------------------------------------------------------------------

TEST_F(AzureAuth, PythonSdkSharedKeyRequestsVerify) {
  for (const char* label : {"azpy_put", "azpy_get", "azpy_list"}) {
    Captured c = Get(label);
    auto p = Verify(c);
    ASSERT_TRUE(p.ok()) << label << ": " << p.error().detail;
    EXPECT_EQ(p->kind, AzureAuthKind::kSharedKey);
    EXPECT_EQ(p->account, "shoalacct");
    EXPECT_EQ(p->container, "data");
  }
  auto p = Verify(Get("azpy_put"));
  EXPECT_EQ(p->blob, "dir/a b+c.bin");
}

TEST_F(AzureAuth, JsSdkSharedKeyRequestVerifies) {
  Captured c = Get("azjs_put");
  auto p = Verify(c);
  ASSERT_TRUE(p.ok()) << p.error().detail;
  EXPECT_EQ(p->blob, "dir/js blob+1.bin");
}

TEST_F(AzureAuth, TamperedSharedKeyRequestsFailAuthentication) {
  Captured c = Get("azpy_put");
  Captured meta = c;
  SetHeader(&meta.view, "x-ms-meta-origin", "changed");
  EXPECT_EQ(Check(meta), "AuthenticationFailed");
  Captured type = c;
  SetHeader(&type.view, "Content-Type", "text/plain");
  EXPECT_EQ(Check(type), "AuthenticationFailed");
  Captured length = c;
  SetHeader(&length.view, "Content-Length", "1101");
  EXPECT_EQ(Check(length), "AuthenticationFailed");
  Captured path = c;
  path.view.raw_path = Replace(path.view.raw_path, "/data/", "/data2/");
  EXPECT_EQ(Check(path), "AuthenticationFailed");
  Captured query = Get("azpy_list");
  query.view.raw_query = Replace(query.view.raw_query, "prefix=dir", "prefix=di");
  EXPECT_EQ(Check(query), "AuthenticationFailed");
  auto p = Verify(meta);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().detail.find("The MAC signature found in the HTTP request"), std::string::npos);
}

TEST_F(AzureAuth, WrongKeyOrUnknownAccountFailAuthentication) {
  Captured c = Get("azpy_put");
  auto wrong = Keys("data:read-write", "b3RoZXIta2V5LW9mLXRoZS1yaWdodC1sZW5ndGgwMTI=");
  EXPECT_EQ(Check(c, std::time(nullptr), wrong.get()), "AuthenticationFailed");
  auto other = Credentials::FromText("azure otheracct c2hvYWw= data:read\n", "t");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Check(c, std::time(nullptr), other->get()), "AuthenticationFailed");
}

TEST_F(AzureAuth, SharedKeyDateOutsideTheSkewFails) {
  Captured c = Get("azpy_put");
  std::time_t t = ParseHttpTime(std::string(*c.view.Header("x-ms-date")));
  EXPECT_EQ(Check(c, t + 900), "OK");
  EXPECT_EQ(Check(c, t + 901), "AuthenticationFailed");
}

TEST_F(AzureAuth, NoCredentialsIsNoAuthenticationInformation) {
  Captured c = Get("azpy_get");
  testdata::RemoveHeader(&c.view, "Authorization");
  auto p = Verify(c);
  ASSERT_FALSE(p.ok());
  EXPECT_STREQ(p.error().name(), "NoAuthenticationInformation");
  EXPECT_EQ(p.error().http_status(), 401);
}

// --- service SAS ---------------------------------------------------------------------------

TEST_F(AzureAuth, PythonBlobSasVerifiesForItsIpAndTime) {
  Captured c = Get("azpy_blob_sas");
  auto p = Verify(c);
  ASSERT_TRUE(p.ok()) << p.error().detail;
  EXPECT_EQ(p->kind, AzureAuthKind::kServiceSas);
  EXPECT_EQ(p->permissions, "r");
  Captured other_ip = c;
  other_ip.view.client_ip = "10.1.2.3";
  EXPECT_EQ(Check(other_ip), "AuthorizationSourceIPMismatch");
  Captured mapped = c;
  mapped.view.client_ip = "::ffff:127.0.0.1";
  EXPECT_EQ(Check(mapped), "OK");
  Captured tls = c;  // spr=https,http: either is fine
  tls.view.is_tls = true;
  EXPECT_EQ(Check(tls), "OK");
}

TEST_F(AzureAuth, SasPastItsExpiryOrBeforeItsStartFails) {
  Captured c = Get("azpy_blob_sas");
  auto q = ParseQuery(c.view.raw_query);
  std::tm tm{};
  strptime(QueryValue(q, "se")->c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::time_t expiry = timegm(&tm);
  strptime(QueryValue(q, "st")->c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::time_t start = timegm(&tm);
  EXPECT_EQ(Check(c, expiry), "OK");
  EXPECT_EQ(Check(c, expiry + 1), "AuthenticationFailed");
  EXPECT_EQ(Check(c, start), "OK");
  EXPECT_EQ(Check(c, start - 1), "AuthenticationFailed");
  auto p = Verify(c, expiry + 1);
  EXPECT_NE(p.error().detail.find("Signed expiry time"), std::string::npos);
}

TEST_F(AzureAuth, TamperedSasFailsAuthentication) {
  Captured c = Get("azpy_blob_sas");
  Captured perms = c;
  perms.view.raw_query = Replace(perms.view.raw_query, "sp=r", "sp=rw");
  EXPECT_EQ(Check(perms), "AuthenticationFailed");
  Captured blob = c;  // the SAS signs one blob: another is refused
  blob.view.raw_path = Replace(blob.view.raw_path, "a%20b", "a%20c");
  EXPECT_EQ(Check(blob), "AuthenticationFailed");
  Captured ip = c;
  ip.view.raw_query = Replace(ip.view.raw_query, "sip=127.0.0.1", "sip=10.1.2.3");
  EXPECT_EQ(Check(ip), "AuthenticationFailed");
  auto wrong = Keys("data:read-write", "b3RoZXIta2V5LW9mLXRoZS1yaWdodC1sZW5ndGgwMTI=");
  EXPECT_EQ(Check(c, std::time(nullptr), wrong.get()), "AuthenticationFailed");
}

TEST_F(AzureAuth, ReadOnlySasCannotWrite) {
  auto p = Verify(Get("azpy_blob_sas"));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "dir/a b+c.bin", AzureOp::kRead).has_value());
  for (AzureOp op : {AzureOp::kWrite, AzureOp::kDelete, AzureOp::kCreate, AzureOp::kList}) {
    auto e = AuthorizeAzure(*p, "data", "dir/a b+c.bin", op);
    ASSERT_TRUE(e.has_value());
    EXPECT_STREQ(e->name(), "AuthorizationPermissionMismatch");
    EXPECT_EQ(e->http_status(), 403);
  }
}

TEST_F(AzureAuth, ContainerSasHonoursHttpsOnlyAndItsIpRange) {
  Captured c = Get("azpy_container_sas");
  EXPECT_EQ(Check(c), "AuthorizationProtocolMismatch");  // spr=https over plain HTTP
  c.view.is_tls = true;
  EXPECT_EQ(Check(c), "OK");
  c.view.client_ip = "127.0.0.255";
  EXPECT_EQ(Check(c), "OK");
  c.view.client_ip = "127.0.1.0";
  EXPECT_EQ(Check(c), "AuthorizationSourceIPMismatch");
  c.view.client_ip = "::1";
  EXPECT_EQ(Check(c), "AuthorizationSourceIPMismatch");
  c.view.client_ip = "127.0.0.9";
  auto p = Verify(c);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "dir/", AzureOp::kList).has_value());
  EXPECT_TRUE(AuthorizeAzure(*p, "data", "dir/x", AzureOp::kWrite).has_value());
}

TEST_F(AzureAuth, JsBlobSasOfTheNewestVersionVerifies) {
  Captured c = Get("azjs_blob_sas");
  auto p = Verify(c);
  ASSERT_TRUE(p.ok()) << p.error().detail;
  EXPECT_EQ(p->permissions, "rw");
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "dir/js blob+1.bin", AzureOp::kWrite).has_value());
  EXPECT_TRUE(AuthorizeAzure(*p, "data", "dir/js blob+1.bin", AzureOp::kDelete).has_value());
  Captured perms = c;
  perms.view.raw_query = Replace(perms.view.raw_query, "sp=rw", "sp=rwd");
  EXPECT_EQ(Check(perms), "AuthenticationFailed");
  Captured ip = c;
  ip.view.client_ip = "127.0.0.2";
  EXPECT_EQ(Check(ip), "AuthorizationSourceIPMismatch");
}

// --- account SAS ---------------------------------------------------------------------------

TEST_F(AzureAuth, PythonAccountSasVerifiesAndChecksResourceTypes) {
  Captured c = Get("azpy_account_sas");  // srt=o, sp=rw
  auto p = Verify(c);
  ASSERT_TRUE(p.ok()) << p.error().detail;
  EXPECT_EQ(p->kind, AzureAuthKind::kAccountSas);
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "dir/a b+c.bin", AzureOp::kWrite).has_value());
  auto del = AuthorizeAzure(*p, "data", "dir/a b+c.bin", AzureOp::kDelete);
  ASSERT_TRUE(del.has_value());
  EXPECT_STREQ(del->name(), "AuthorizationPermissionMismatch");
  Captured container = c;  // a container-level request needs srt to include c
  container.view.raw_path = "/shoalacct/data";
  EXPECT_EQ(Check(container), "AuthorizationResourceTypeMismatch");
  Captured expired = c;
  auto q = ParseQuery(c.view.raw_query);
  std::tm tm{};
  strptime(QueryValue(q, "se")->c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  EXPECT_EQ(Check(c, timegm(&tm) + 1), "AuthenticationFailed");
}

TEST_F(AzureAuth, JsAccountSasOfTheNewestVersionVerifies) {
  Captured c = Get("azjs_account_sas");  // sv 2026-10-06: with the ses line
  auto p = Verify(c);
  ASSERT_TRUE(p.ok()) << p.error().detail;
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "", AzureOp::kList).has_value());
  EXPECT_TRUE(AuthorizeAzure(*p, "data", "x", AzureOp::kWrite).has_value());
  Captured services = c;
  services.view.raw_query = Replace(services.view.raw_query, "ss=b", "ss=bq");
  EXPECT_EQ(Check(services), "AuthenticationFailed");
}

TEST_F(AzureAuth, AccountSasWithoutBlobServiceIsServiceMismatch) {
  Captured c = Get("azjs_account_sas_queue");  // ss=q: the queue service only
  EXPECT_EQ(Check(c), "AuthorizationServiceMismatch");
}

// --- key scopes and the error body ---------------------------------------------------------

TEST_F(AzureAuth, KeyScopesApplyToSharedKeyAndSas) {
  auto read_only = Keys("data:read");
  auto p = Verify(Get("azpy_put"), std::time(nullptr), read_only.get());
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(AuthorizeAzure(*p, "data", "dir/a", AzureOp::kRead).has_value());
  auto write = AuthorizeAzure(*p, "data", "dir/a", AzureOp::kWrite);
  ASSERT_TRUE(write.has_value());
  EXPECT_STREQ(write->name(), "AuthorizationPermissionMismatch");
  auto other = AuthorizeAzure(*p, "other", "dir/a", AzureOp::kRead);
  ASSERT_TRUE(other.has_value());
  EXPECT_STREQ(other->name(), "AuthorizationFailure");

  auto prefixed = Keys("data/dir/:read-write");
  auto sas = Verify(Get("azjs_blob_sas"), std::time(nullptr), prefixed.get());
  ASSERT_TRUE(sas.ok());
  EXPECT_FALSE(AuthorizeAzure(*sas, "data", "dir/js blob+1.bin", AzureOp::kWrite).has_value());
  EXPECT_TRUE(AuthorizeAzure(*sas, "data", "other/x", AzureOp::kRead).has_value());
}

TEST_F(AzureAuth, ErrorBodyIsAzuresXml) {
  Captured c = Get("azpy_put");
  SetHeader(&c.view, "x-ms-meta-origin", "changed");
  auto p = Verify(c);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().http_status(), 403);
  std::string xml = RenderAzureError(p.error(), "req-1", 1796313600);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(xml.c_str()));
  auto e = doc.child("Error");
  EXPECT_STREQ(e.child_value("Code"), "AuthenticationFailed");
  std::string message = e.child_value("Message");
  EXPECT_NE(message.find("Server failed to authenticate the request"), std::string::npos);
  EXPECT_NE(message.find("\nRequestId:req-1\nTime:2026-"), std::string::npos) << message;
  EXPECT_NE(std::string(e.child_value("AuthenticationErrorDetail")).find("MAC signature"),
            std::string::npos);
}

}  // namespace
}  // namespace shoal::door
