#include "store/http_backend.h"

#include <gtest/gtest.h>

#include <pugixml.hpp>

namespace shoal {
namespace {

TEST(XmlNumber, TakesAWholeNumberAndNamesWhatIsNot) {
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string("<Contents><Key>k</Key><Size>42</Size><Bad>4.2</Bad></Contents>"));
  auto n = doc.child("Contents");
  auto size = XmlNumber(n, "Size", "ListObjectsV2 of b: k's");
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 42u);
  auto bad = XmlNumber(n, "Bad", "ListObjectsV2 of b: k's");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kIOError);
  EXPECT_EQ(bad.status().message(), "ListObjectsV2 of b: k's Bad is '4.2', not a number");
  EXPECT_FALSE(XmlNumber(n, "Missing", "w").ok());
}

TEST(DescribeXmlError, QuotesTheCodeAndTheMessagesFirstLine) {
  http::Response r;
  r.status = 403;
  r.body = "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code>"
           "<Message>Server failed to authenticate the request.\nRequestId:1</Message></Error>";
  EXPECT_EQ(DescribeXmlError(r), "AuthenticationFailed (Server failed to authenticate the request.)");
  http::ErrorFormat azure;
  azure.describe = [](const http::Response& resp) { return DescribeXmlError(resp); };
  EXPECT_EQ(http::StatusFromResponse(r, "Put Blob az://c/k", azure).message(),
            "Put Blob az://c/k: HTTP 403 AuthenticationFailed (Server failed to authenticate the "
            "request.)");
}

TEST(DescribeXmlError, AddsAzuresAuthenticationErrorDetail) {
  http::Response r;
  r.status = 403;
  r.body = "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code>"
           "<Message>Server failed to authenticate the request.\nRequestId:1</Message>"
           "<AuthenticationErrorDetail>Lifetime validation failed. The token is expired."
           "</AuthenticationErrorDetail></Error>";
  EXPECT_EQ(DescribeXmlError(r), "AuthenticationFailed (Server failed to authenticate the request. "
                                 "Lifetime validation failed. The token is expired.)");
}

TEST(DescribeXmlError, TakesTheCodeFromTheHeaderWhenThereIsNoBody) {
  http::Response r;
  r.status = 404;
  r.headers["x-ms-error-code"] = "BlobNotFound";
  EXPECT_EQ(DescribeXmlError(r, "x-ms-error-code"), "BlobNotFound");
  EXPECT_EQ(DescribeXmlError(r), "");
}

TEST(DescribeXmlError, AnAnswerThatIsNotAnXmlErrorSaysNothing) {
  http::Response r;
  r.status = 500;
  r.body = "upstream connect error";
  EXPECT_EQ(DescribeXmlError(r), "");
  r.body = "<ListBucketResult/>";
  EXPECT_EQ(DescribeXmlError(r), "");
}

}  // namespace
}  // namespace shoal
