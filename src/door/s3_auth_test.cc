// SigV4 verification against requests signed by the real SDKs (boto3/botocore from Debian,
// @aws-sdk/client-s3 and @smithy/signature-v4 from npm), then tampered one thing at a time.
#include "door/s3_auth.h"

#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <set>

#include "door/testdata/captures.h"

namespace shoal::door {
namespace {

using testdata::Captured;
using testdata::RemoveHeader;
using testdata::Replace;
using testdata::SetHeader;

class S3Auth : public testdata::CapturedTest {
 protected:
  void SetUp() override { ASSERT_FALSE(HasFatalFailure()); }

  static std::unique_ptr<Credentials> Keys(const std::string& scopes = "models/dir/:read-write") {
    auto c = Credentials::FromText(std::string("s3 ") + testdata::kS3Key + " " +
                                       testdata::kS3Secret + " " + scopes + "\n",
                                   "test keys");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  // "OK" or the S3 code of the first failure: the signature, then the body fed in slices of
  // `slice` bytes; the decoded payload goes to *payload.
  static std::string Check(const Captured& c, std::time_t now = std::time(nullptr),
                           size_t slice = 4096, std::string* payload = nullptr,
                           const Credentials* keys = nullptr, S3VerifyOptions options = {}) {
    auto own = Keys();
    auto p = VerifyS3(c.view, keys ? *keys : *own, options, now);
    if (!p.ok()) return p.error().name();
    S3BodyDecoder body(*p);
    std::string out;
    for (size_t off = 0; off < c.body.size(); off += slice) {
      if (auto e = body.Feed(std::string_view(c.body).substr(off, slice), &out)) return e->name();
    }
    if (auto e = body.Finish()) return e->name();
    if (payload) *payload = out;
    return "OK";
  }

  static std::time_t DateOf(const Captured& c) {
    std::string d;
    if (auto h = c.view.Header("x-amz-date")) d = std::string(*h);
    auto q = ParseQuery(c.view.raw_query);
    if (auto v = QueryValue(q, "X-Amz-Date")) d = *v;
    std::tm tm{};
    strptime(d.c_str(), "%Y%m%dT%H%M%SZ", &tm);
    return timegm(&tm);
  }
};

std::string JsData(size_t n) {
  std::string d(n, '\0');
  for (size_t i = 0; i < n; i++) d[i] = static_cast<char>((i * 7 + 3) & 0xff);
  return d;
}

// --- header-signed requests from boto3 -------------------------------------------------------

TEST_F(S3Auth, BotoPutWithSha256PayloadVerifiesInAnySlices) {
  Captured c = Get("boto_put");
  for (size_t slice : {size_t{1}, size_t{7}, size_t{4096}, c.body.size()}) {
    std::string payload;
    EXPECT_EQ(Check(c, std::time(nullptr), slice, &payload), "OK") << slice;
    EXPECT_EQ(payload, c.body);
  }
}

TEST_F(S3Auth, BodyByteChangedIsContentSha256Mismatch) {
  Captured c = Get("boto_put");
  c.body[100] ^= 1;
  EXPECT_EQ(Check(c), "XAmzContentSHA256Mismatch");
}

TEST_F(S3Auth, ShortBodyIsContentSha256Mismatch) {
  Captured c = Get("boto_put");
  c.body.pop_back();
  EXPECT_EQ(Check(c), "XAmzContentSHA256Mismatch");
}

TEST_F(S3Auth, BotoPutWithCrc32HeaderVerifiesAndChecksTheCrc) {
  Captured c = Get("boto_put_crc32");
  EXPECT_EQ(Check(c), "OK");
  auto keys = Keys();
  auto p = VerifyS3(c.view, *keys, {}, std::time(nullptr));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->header_checksum, "crc32");
  // The declared CRC is signed; a wrong one can only come with a body the client hashed: feed
  // the right body but a principal whose declared CRC differs, as a lying client would.
  S3Principal lying = *p;
  lying.header_checksum_b64 = "AAAAAA==";
  S3BodyDecoder body(lying);
  std::string out;
  EXPECT_FALSE(body.Feed(c.body, &out).has_value());
  auto e = body.Finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(std::string(e->name()), "BadDigest");
}

TEST_F(S3Auth, BotoGetVerifiesAndTamperingFails) {
  Captured c = Get("boto_get");
  EXPECT_EQ(Check(c), "OK");
  Captured range = c;
  SetHeader(&range.view, "Range", "bytes=0-99");
  EXPECT_EQ(Check(range), "SignatureDoesNotMatch");
  Captured path = c;
  path.view.raw_path = Replace(path.view.raw_path, "models", "models2");
  EXPECT_EQ(Check(path), "SignatureDoesNotMatch");
  Captured method = c;
  method.view.method = "DELETE";
  EXPECT_EQ(Check(method), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, BotoListWithQueryVerifiesAndAnAddedParameterFails) {
  Captured c = Get("boto_list");
  EXPECT_EQ(Check(c), "OK");
  c.view.raw_query += "&max-keys=1000";
  EXPECT_EQ(Check(c), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, HeaderValueWhitespaceIsCanonicalized) {
  // boto3 signed "x-amz-meta-origin: test  two  spaces" with its runs collapsed; a proxy that
  // collapses them too must not break the signature.
  Captured c = Get("boto_put");
  SetHeader(&c.view, "x-amz-meta-origin", "  test two\tspaces ");
  EXPECT_EQ(Check(c), "OK");
  SetHeader(&c.view, "x-amz-meta-origin", "test two spaces!");
  EXPECT_EQ(Check(c), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, PathEncodingVariantsOfTheSameBytesVerify) {
  // boto3 sent "/models/dir/a%20b%2Bc~%21%28x%29.bin"; lowercase hex and an unencoded '('
  // name the same key, and S3 accepts them.
  Captured c = Get("boto_put");
  c.view.raw_path = Replace(c.view.raw_path, "%28x%29", "(x%29");
  c.view.raw_path = Replace(c.view.raw_path, "%2B", "%2b");
  EXPECT_EQ(Check(c), "OK");
  // An encoded slash is a different key from a real one.
  Captured slash = Get("boto_put");
  slash.view.raw_path = Replace(slash.view.raw_path, "dir/", "dir%2F");
  EXPECT_EQ(Check(slash), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, AnUnsignedAmzHeaderIsRefused) {
  Captured c = Get("boto_get");
  c.view.headers.emplace_back("x-amz-meta-added", "by a proxy");
  EXPECT_EQ(Check(c), "AccessDenied");
}

TEST_F(S3Auth, WrongSecretIsSignatureDoesNotMatch) {
  Captured c = Get("boto_get");
  auto keys = Credentials::FromText(std::string("s3 ") + testdata::kS3Key + " other *:read\n", "t");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(Check(c, std::time(nullptr), 4096, nullptr, keys->get()), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, UnknownKeyIsInvalidAccessKeyId) {
  Captured c = Get("boto_get");
  auto keys = Credentials::FromText("s3 AKIDSOMEONEELSE x *:read\n", "t");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(Check(c, std::time(nullptr), 4096, nullptr, keys->get()), "InvalidAccessKeyId");
  // An Azure-only key with the same id is not an S3 key.
  auto azure = Credentials::FromText("azure akidshoal c2hvYWw= *:read\n", "t");
  ASSERT_TRUE(azure.ok());
}

TEST_F(S3Auth, ClockSkewPastFifteenMinutesIsRequestTimeTooSkewed) {
  Captured c = Get("boto_get");
  std::time_t t = DateOf(c);
  EXPECT_EQ(Check(c, t + 900), "OK");
  EXPECT_EQ(Check(c, t + 901), "RequestTimeTooSkewed");
  EXPECT_EQ(Check(c, t - 901), "RequestTimeTooSkewed");
}

TEST_F(S3Auth, ConfiguredRegionMustMatch) {
  Captured c = Get("boto_get");
  S3VerifyOptions same;
  same.region = "us-east-1";
  EXPECT_EQ(Check(c, std::time(nullptr), 4096, nullptr, nullptr, same), "OK");
  S3VerifyOptions other;
  other.region = "eu-west-1";
  EXPECT_EQ(Check(c, std::time(nullptr), 4096, nullptr, nullptr, other),
            "AuthorizationHeaderMalformed");
}

TEST_F(S3Auth, MissingOrMalformedHeadersHaveTheirCodes) {
  Captured c = Get("boto_get");
  Captured no_sha = c;
  RemoveHeader(&no_sha.view, "x-amz-content-sha256");
  EXPECT_EQ(Check(no_sha), "MissingSecurityHeader");
  Captured no_date = c;
  RemoveHeader(&no_date.view, "x-amz-date");
  EXPECT_EQ(Check(no_date), "MissingSecurityHeader");
  Captured malformed = c;
  SetHeader(&malformed.view, "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDSHOALTEST01/20261203/us-east-1/s3, "
            "SignedHeaders=host, Signature=00");
  EXPECT_EQ(Check(malformed), "AuthorizationHeaderMalformed");
  Captured v2 = c;
  SetHeader(&v2.view, "Authorization", "AWS AKIDSHOALTEST01:c2lnbmF0dXJl");
  EXPECT_EQ(Check(v2), "InvalidArgument");
  Captured anonymous = c;
  RemoveHeader(&anonymous.view, "Authorization");
  EXPECT_EQ(Check(anonymous), "AccessDenied");
}

// --- presigned URLs from boto3 ----------------------------------------------------------------

TEST_F(S3Auth, BotoPresignedGetVerifiesUntilItExpires) {
  Captured c = Get("boto_presigned_get");
  std::time_t t = DateOf(c);
  EXPECT_EQ(Check(c), "OK");
  EXPECT_EQ(Check(c, t + 3600), "OK");
  EXPECT_EQ(Check(c, t + 3601), "AccessDenied");
  auto keys = Keys();
  auto p = VerifyS3(c.view, *keys, {}, t + 3601);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("Request has expired"), std::string::npos);
}

TEST_F(S3Auth, TamperedPresignedUrlIsRefused) {
  Captured c = Get("boto_presigned_get");
  Captured longer = c;
  longer.view.raw_query = Replace(longer.view.raw_query, "X-Amz-Expires=3600", "X-Amz-Expires=7200");
  EXPECT_EQ(Check(longer), "SignatureDoesNotMatch");
  Captured week = c;
  week.view.raw_query = Replace(week.view.raw_query, "X-Amz-Expires=3600", "X-Amz-Expires=604801");
  EXPECT_EQ(Check(week), "AuthorizationQueryParametersError");
  Captured path = c;
  path.view.raw_path = Replace(path.view.raw_path, "p%20q", "p%20r");
  EXPECT_EQ(Check(path), "SignatureDoesNotMatch");
  Captured sig = c;
  std::string q = sig.view.raw_query;
  size_t at = q.find("X-Amz-Signature=") + 16;
  q[at] = q[at] == 'a' ? 'b' : 'a';
  sig.view.raw_query = q;
  EXPECT_EQ(Check(sig), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, BotoPresignedPutTakesAnUnsignedBody) {
  Captured c = Get("boto_presigned_put");
  std::string payload;
  EXPECT_EQ(Check(c, std::time(nullptr), 5, &payload), "OK");
  EXPECT_EQ(payload, "presigned body");
  auto keys = Keys();
  auto p = VerifyS3(c.view, *keys, {}, std::time(nullptr));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->presigned);
  EXPECT_EQ(p->payload, S3Payload::kUnsigned);
}

// --- aws-chunked bodies from the JS SDK --------------------------------------------------------

TEST_F(S3Auth, JsStreamingPutWithUnsignedTrailerDecodesInAnySlices) {
  Captured c = Get("js_put_stream");
  auto keys = Keys();
  auto p = VerifyS3(c.view, *keys, {}, std::time(nullptr));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->payload, S3Payload::kUnsignedChunksTrailer);
  EXPECT_EQ(p->trailer, "x-amz-checksum-crc32");
  for (size_t slice : {size_t{1}, size_t{13}, size_t{65536}, c.body.size()}) {
    std::string payload;
    EXPECT_EQ(Check(c, std::time(nullptr), slice, &payload), "OK") << slice;
    EXPECT_EQ(payload, JsData(200000)) << slice;
  }
}

TEST_F(S3Auth, JsStreamingPutWithAChangedByteIsBadDigest) {
  Captured c = Get("js_put_stream");
  c.body[1000] ^= 0x40;
  EXPECT_EQ(Check(c), "BadDigest");
}

TEST_F(S3Auth, JsStreamingPutCutShortIsIncompleteBody) {
  Captured c = Get("js_put_stream");
  c.body.resize(c.body.size() / 2);
  EXPECT_EQ(Check(c), "IncompleteBody");
}

TEST_F(S3Auth, JsPutWithBufferBodyVerifies) {
  Captured c = Get("js_put_buffer");
  std::string payload;
  EXPECT_EQ(Check(c, std::time(nullptr), 4096, &payload), "OK");
  EXPECT_EQ(payload, JsData(5000));
  EXPECT_EQ(Check(Get("js_get")), "OK");
}

TEST_F(S3Auth, SignedChunksDecodeAndVerifyEachChunk) {
  Captured c = Get("js_signed_chunks");
  for (size_t slice : {size_t{1}, size_t{100}, size_t{65536 + 90}, c.body.size()}) {
    std::string payload;
    EXPECT_EQ(Check(c, std::time(nullptr), slice, &payload), "OK") << slice;
    EXPECT_EQ(payload, JsData(150000));
  }
}

TEST_F(S3Auth, SignedChunkWithAChangedSignatureIsRefused) {
  Captured c = Get("js_signed_chunks");
  // The second chunk's signature.
  size_t at = c.body.find("chunk-signature=", 100) + 16;
  c.body[at] = c.body[at] == 'a' ? 'b' : 'a';
  EXPECT_EQ(Check(c), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, SignedChunkWithAChangedDataByteIsRefused) {
  Captured c = Get("js_signed_chunks");
  c.body[70000] ^= 1;
  EXPECT_EQ(Check(c), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, SignedChunksCutShortOrWrongLengthAreRefused) {
  Captured cut = Get("js_signed_chunks");
  cut.body.resize(cut.body.size() - 90);  // the final chunk gone
  EXPECT_EQ(Check(cut), "IncompleteBody");
  Captured length = Get("js_signed_chunks");
  SetHeader(&length.view, "x-amz-decoded-content-length", "150001");
  EXPECT_EQ(Check(length), "SignatureDoesNotMatch");  // it is signed
}

TEST_F(S3Auth, SignedChunksWithSignedTrailerVerifyTheTrailer) {
  Captured c = Get("js_signed_chunks_trailer");
  std::string payload;
  EXPECT_EQ(Check(c, std::time(nullptr), 333, &payload), "OK");
  EXPECT_EQ(payload, JsData(150000));
  Captured sig = c;
  size_t at = sig.body.find("x-amz-trailer-signature:") + 24;
  sig.body[at] = sig.body[at] == 'a' ? 'b' : 'a';
  EXPECT_EQ(Check(sig), "SignatureDoesNotMatch");
  Captured value = c;
  at = value.body.find("x-amz-checksum-crc32c:") + 22;
  value.body[at] = value.body[at] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Check(value), "SignatureDoesNotMatch");
}

TEST_F(S3Auth, WrongContentMd5OnAnUnsignedBodyIsBadDigest) {
  Captured c = Get("boto_presigned_put");
  EXPECT_EQ(Check(c), "OK");
  SetHeader(&c.view, "Content-MD5", Base64Encode(std::string(16, 'x')));
  EXPECT_EQ(Check(c), "BadDigest");
}

TEST_F(S3Auth, BytesAfterTheEndOfAChunkedBodyAreRefused) {
  Captured c = Get("js_put_stream");
  c.body += "junk";
  EXPECT_EQ(Check(c), "InvalidArgument");
  Captured framing = Get("js_put_stream");
  framing.body[0] = 'x';  // the first chunk's size is not hex
  EXPECT_EQ(Check(framing), "InvalidArgument");
}

// Bodies cut and corrupted at every kind of place end in an S3 error, never a crash or a
// success with the wrong bytes.
TEST_F(S3Auth, CorruptedChunkedBodiesNeverDecodeToWrongBytes) {
  const std::set<std::string> expected = {"InvalidArgument", "IncompleteBody", "BadDigest",
                                          "SignatureDoesNotMatch"};
  for (const char* label : {"js_put_stream", "js_signed_chunks", "js_signed_chunks_trailer"}) {
    Captured original = Get(label);
    std::string want;
    ASSERT_EQ(Check(original, std::time(nullptr), 4096, &want), "OK");
    uint64_t seed = 12345;
    int refused = 0;
    for (int i = 0; i < 300; i++) {
      Captured c = original;
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = (seed >> 20) % c.body.size();
      if (i % 3 == 0) {
        c.body.resize(at);
      } else {
        c.body[at] = static_cast<char>(c.body[at] ^ (1 + (seed >> 50) % 255));
      }
      std::string payload;
      std::string result = Check(c, std::time(nullptr), 1 + (seed >> 40) % 70000, &payload);
      if (result == "OK") {
        // Only a change the format allows (a hex digit's case) may pass, with the same bytes.
        EXPECT_EQ(payload, want) << label << " " << i;
        continue;
      }
      refused++;
      EXPECT_TRUE(expected.count(result)) << label << " " << i << ": " << result;
    }
    EXPECT_GE(refused, 290) << label;
  }
}

// --- scopes and the error body ---------------------------------------------------------------

TEST_F(S3Auth, ScopesDecideWhatAVerifiedKeyMayDo) {
  Captured c = Get("boto_put");
  auto read_only = Keys("models:read");
  auto p = VerifyS3(c.view, *read_only, {}, std::time(nullptr));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(AuthorizeS3(*p, "models", "dir/a", Access::kRead).has_value());
  auto e = AuthorizeS3(*p, "models", "dir/a", Access::kWrite);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(std::string(e->name()), "AccessDenied");
  EXPECT_EQ(e->http_status(), 403);
  EXPECT_TRUE(AuthorizeS3(*p, "other", "dir/a", Access::kRead).has_value());

  auto prefixed = Keys("models/dir/:read-write");
  auto q = VerifyS3(c.view, *prefixed, {}, std::time(nullptr));
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(AuthorizeS3(*q, "models", "dir/x", Access::kWrite).has_value());
  EXPECT_TRUE(AuthorizeS3(*q, "models", "other/x", Access::kRead).has_value());
  EXPECT_TRUE(AuthorizeS3(*q, "bucketb", "dir/x", Access::kRead).has_value());
}

TEST_F(S3Auth, ErrorBodyIsS3sXml) {
  Captured c = Get("boto_get");
  auto keys = Credentials::FromText(std::string("s3 ") + testdata::kS3Key + " other *:read\n", "t");
  ASSERT_TRUE(keys.ok());
  auto p = VerifyS3(c.view, **keys, {}, std::time(nullptr));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().http_status(), 403);
  std::string xml = RenderS3Error(p.error(), "/models/dir/a b.bin", "REQ123");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(xml.c_str()));
  auto e = doc.child("Error");
  EXPECT_STREQ(e.child_value("Code"), "SignatureDoesNotMatch");
  EXPECT_STREQ(e.child_value("Resource"), "/models/dir/a b.bin");
  EXPECT_STREQ(e.child_value("RequestId"), "REQ123");
  EXPECT_NE(std::string(e.child_value("Message")).find("does not match"), std::string::npos);
  EXPECT_NE(std::string(e.child_value("StringToSign")).find("AWS4-HMAC-SHA256\n"), std::string::npos);
}

TEST(S3ErrorStatus, EachCodeCarriesS3sStatus) {
  auto status = [](S3ErrorCode code) { return S3Error{code, "", "", ""}.http_status(); };
  EXPECT_EQ(status(S3ErrorCode::kSignatureDoesNotMatch), 403);
  EXPECT_EQ(status(S3ErrorCode::kInvalidAccessKeyId), 403);
  EXPECT_EQ(status(S3ErrorCode::kAccessDenied), 403);
  EXPECT_EQ(status(S3ErrorCode::kRequestTimeTooSkewed), 403);
  EXPECT_EQ(status(S3ErrorCode::kXAmzContentSHA256Mismatch), 400);
  EXPECT_EQ(status(S3ErrorCode::kAuthorizationHeaderMalformed), 400);
  EXPECT_EQ(status(S3ErrorCode::kMissingSecurityHeader), 400);
  EXPECT_EQ(status(S3ErrorCode::kIncompleteBody), 400);
  EXPECT_EQ(status(S3ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(status(S3ErrorCode::kBadDigest), 400);
}

}  // namespace
}  // namespace shoal::door
