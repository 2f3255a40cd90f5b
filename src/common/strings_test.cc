#include "common/strings.h"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("8MiB").value(), 8u << 20);
  EXPECT_EQ(ParseSize("20GiB").value(), 20ull << 30);
  EXPECT_EQ(ParseSize("100MB").value(), 100000000u);
  EXPECT_EQ(ParseSize("1.5k").value(), 1536u);
}

TEST(ParseSize, RejectsGarbageWithAHint) {
  auto r = ParseSize("lots");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("8MiB"), std::string::npos);
  EXPECT_FALSE(ParseSize("12XB").ok());
}

// Regression: "1.2.3" was read as 1.2 and values past 2^64 wrapped to garbage.
TEST(ParseSize, RefusesTwoDecimalPointsAndOverflowNamingTheText) {
  for (const char* text : {"1.2.3", "1..5MiB", ".", "1.", "18446744073709551616",
                           "99999999999999999999999", "20000000TiB", "17179869184GiB"}) {
    auto r = ParseSize(text);
    ASSERT_FALSE(r.ok()) << text << " -> " << r.value();
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("8MiB"), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(ParseSize("18446744073709551615").value(), UINT64_MAX);
  EXPECT_EQ(ParseSize("16777215TiB").value(), 16777215ull << 40);
  EXPECT_EQ(ParseSize("0.5").value(), 1u);
  EXPECT_EQ(ParseSize(" 2 GiB ").value(), 2ull << 30);
}

TEST(ParseU64, AcceptsDigitsUpToTheLargest) {
  EXPECT_EQ(ParseU64("0").value(), 0u);
  EXPECT_EQ(ParseU64("0042").value(), 42u);
  EXPECT_EQ(ParseU64("18446744073709551615").value(), UINT64_MAX);
}

TEST(ParseU64, RefusesSignsSpacesUnitsAndOverflowNamingTheText) {
  for (const char* text : {"", "-1", "+1", " 1", "1 ", "1k", "0x10", "1.0", "18446744073709551616",
                           "99999999999999999999999"}) {
    auto r = ParseU64(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "' -> " << r.value();
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("'" + std::string(text) + "'"), std::string::npos) << r.status().message();
  }
}

TEST(SplitHostPort, AcceptsHostPortAndBracketedIpv6) {
  auto hp = SplitHostPort("127.0.0.1:7070");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7070);
  hp = SplitHostPort("node-1.example:0");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "node-1.example");
  EXPECT_EQ(hp->port, 0);
  hp = SplitHostPort("[::1]:65535");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 65535);
  hp = SplitHostPort("[fe80::1%lo]:80");
  ASSERT_TRUE(hp.ok()) << hp.status().ToString();
  EXPECT_EQ(hp->host, "fe80::1%lo");
}

// Regression: the address was cut at its last ':' and the port read with atoi, so "::1:7070"
// was taken as host "::1", "[::1]:7070" as host "[::1]", and port 70000 became 4464.
TEST(SplitHostPort, RefusesMalformedAddressesNamingTheTextAndTheForms) {
  for (const char* text : {"", "localhost", "localhost:", ":7070", "host:70000", "host:99999999999999999999",
                           "host:http", "host:-1", "host:+80", "host:80x", "::1:7070", "::1", "[::1]",
                           "[::1]7070", "[::1:7070", "[]:7070", "[::1]:", "a]:80", "[[::1]]:80"}) {
    auto hp = SplitHostPort(text);
    ASSERT_FALSE(hp.ok()) << "'" << text << "' -> " << hp->host << " port " << hp->port;
    EXPECT_EQ(hp.status().code(), Code::kInvalidArgument);
    EXPECT_NE(hp.status().message().find("'" + std::string(text) + "'"), std::string::npos)
        << hp.status().message();
    EXPECT_NE(hp.status().message().find("[::1]:7070"), std::string::npos) << hp.status().message();
  }
  EXPECT_NE(SplitHostPort("::1:7070").status().message().find("brackets"), std::string::npos);
  EXPECT_NE(SplitHostPort("host:70000").status().message().find("65535"), std::string::npos);
}

TEST(JoinHostPort, BracketsIpv6Only) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 7070), "127.0.0.1:7070");
  EXPECT_EQ(JoinHostPort("::1", 0), "[::1]:0");
  EXPECT_EQ(SplitHostPort(JoinHostPort("fe80::2", 9)).value().host, "fe80::2");
}

TEST(Split, KeepsEmptyPieces) {
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(Split("h:1,", ','), (std::vector<std::string>{"h:1", ""}));
}

TEST(UriEncode, KeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(UriEncode("a b/c~d", true), "a%20b/c~d");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xc3\xa9", true), "%C3%A9");
}

TEST(Base64, RoundTrips) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto enc = Base64Encode(s);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(dec.value(), s);
  }
  EXPECT_FALSE(Base64Decode("abc").ok());
}

TEST(HttpTime, ParsesBothFormats) {
  EXPECT_EQ(ParseHttpTime("Thu, 01 Jan 1970 00:01:40 GMT"), 100);
  EXPECT_EQ(ParseHttpTime("1970-01-01T00:01:40.000Z"), 100);
  EXPECT_EQ(ParseHttpTime("yesterday"), -1);
  EXPECT_EQ(FormatRfc1123(100), "Thu, 01 Jan 1970 00:01:40 GMT");
}

TEST(Sha256, MatchesKnownDigest) {
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace shoal
