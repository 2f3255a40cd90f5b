// Request signing against published examples.
#include <gtest/gtest.h>

#include "common/strings.h"
#include "store/azure/azure_store.h"
#include "store/s3/s3_store.h"

namespace shoal {
namespace {

// The "GET Object" example of the AWS SigV4 documentation (header-based auth, S3).
TEST(SigV4, MatchesTheDocumentedGetObjectExample) {
  S3Config c;
  c.access_key = "AKIAIOSFODNN7EXAMPLE";
  c.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  c.region = "us-east-1";
  std::string empty_hash = HexEncode(Sha256(""));
  std::time_t t = ParseHttpTime("2013-05-24T00:00:00Z");
  std::string auth = SigV4Authorization(
      c, "GET", "/test.txt", {},
      {{"Host", "examplebucket.s3.amazonaws.com"},
       {"Range", "bytes=0-9"},
       {"x-amz-content-sha256", empty_hash},
       {"x-amz-date", "20130524T000000Z"}},
      empty_hash, t);
  EXPECT_EQ(auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(AzureConfig, ParsesAzuriteConnectionString) {
  auto c = AzureConfig::FromConnectionString(
      "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
      "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
      "K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
      "test");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->account, "devstoreaccount1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  EXPECT_TRUE(c->sas.empty());
}

TEST(AzureConfig, BuildsTheCloudEndpointFromTheAccount) {
  auto c = AzureConfig::FromConnectionString(
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
      "test");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
}

TEST(AzureConfig, RefusesAStringWithoutCredentials) {
  auto c = AzureConfig::FromConnectionString("AccountName=acct", "MY_VAR");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("MY_VAR"), std::string::npos);
}

// Shared Key: the string to sign puts the account before the encoded path and lists decoded
// query parameters sorted by name; recomputing the HMAC by hand must give the same signature.
TEST(AzureSharedKey, SignsTheCanonicalString) {
  AzureConfig c;
  c.account = "acct";
  c.key = Base64Encode("secret");
  std::string auth = AzureSharedKeyAuthorization(
      c, "PUT", "/cont/my%20blob", {{"comp", "block"}, {"blockid", "YQ=="}},
      {{"x-ms-version", "2021-08-06"}, {"x-ms-date", "Thu, 01 Jan 1970 00:01:40 GMT"},
       {"Content-Type", "application/octet-stream"}},
      5);
  std::string to_sign =
      "PUT\n\n\n5\n\napplication/octet-stream\n\n\n\n\n\n\n"
      "x-ms-date:Thu, 01 Jan 1970 00:01:40 GMT\nx-ms-version:2021-08-06\n"
      "/acct/cont/my%20blob\nblockid:YQ==\ncomp:block";
  EXPECT_EQ(auth, "SharedKey acct:" + Base64Encode(HmacSha256("secret", to_sign)));
}

}  // namespace
}  // namespace shoal
