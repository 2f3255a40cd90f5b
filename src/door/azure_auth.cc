#include "door/azure_auth.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/strings.h"

namespace shoal::door {

const char* AzureError::name() const {
  switch (code) {
    case AzureErrorCode::kAuthenticationFailed: return "AuthenticationFailed";
    case AzureErrorCode::kAuthorizationFailure: return "AuthorizationFailure";
    case AzureErrorCode::kAuthorizationPermissionMismatch: return "AuthorizationPermissionMismatch";
    case AzureErrorCode::kAuthorizationProtocolMismatch: return "AuthorizationProtocolMismatch";
    case AzureErrorCode::kAuthorizationResourceTypeMismatch:
      return "AuthorizationResourceTypeMismatch";
    case AzureErrorCode::kAuthorizationServiceMismatch: return "AuthorizationServiceMismatch";
    case AzureErrorCode::kAuthorizationSourceIPMismatch: return "AuthorizationSourceIPMismatch";
    case AzureErrorCode::kNoAuthenticationInformation: return "NoAuthenticationInformation";
  }
  return "InternalError";
}

int AzureError::http_status() const {
  return code == AzureErrorCode::kNoAuthenticationInformation ? 401 : 403;
}

std::string RenderAzureError(const AzureError& error, std::string_view request_id,
                             std::time_t now) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Code", error.name()},
      {"Message", error.message + "\nRequestId:" + std::string(request_id) +
                      "\nTime:" + FormatIso8601(now)}};
  if (!error.detail.empty()) fields.emplace_back("AuthenticationErrorDetail", error.detail);
  return RenderErrorXml("utf-8", fields);
}

namespace {

constexpr const char* kAuthFailed =
    "Server failed to authenticate the request. Make sure the value of Authorization header is "
    "formed correctly including the signature.";

AzureError AuthFailed(std::string detail) {
  return AzureError{AzureErrorCode::kAuthenticationFailed, kAuthFailed, std::move(detail)};
}

// SAS times: "2026-12-03T16:00:00Z", with optional fraction, or a date "2026-12-03".
std::time_t ParseSasTime(std::string_view text) {
  std::string s(text);
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end != nullptr) {
    if (*end == '.') {
      end++;
      while (*end >= '0' && *end <= '9') end++;
    }
    if (std::string_view(end) != "Z") return -1;
    return timegm(&tm);
  }
  tm = std::tm{};
  end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return timegm(&tm);
}

// An IPv4 address as a number; nullopt for anything else (an IPv4-mapped IPv6 address counts
// as its IPv4 address).
std::optional<uint32_t> ParseIpv4(std::string_view text) {
  std::string s(text);
  if (StartsWith(s, "::ffff:")) s = s.substr(7);
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

struct PathParts {
  std::string account, container, blob;
  std::string raw_blob_path;  // the raw path itself
};

PathParts SplitPath(std::string_view raw_path) {
  PathParts out;
  auto decoded = PercentDecode(raw_path);
  std::string path = decoded ? *decoded : std::string(raw_path);
  if (!path.empty() && path[0] == '/') path.erase(0, 1);
  size_t s1 = path.find('/');
  out.account = path.substr(0, s1);
  if (s1 != std::string::npos) {
    std::string rest = path.substr(s1 + 1);
    size_t s2 = rest.find('/');
    out.container = rest.substr(0, s2);
    if (s2 != std::string::npos) out.blob = rest.substr(s2 + 1);
  }
  return out;
}

std::string Value(const std::vector<QueryParam>& q, std::string_view name) {
  auto v = QueryValue(q, name);
  return v ? *v : std::string();
}

std::string SignWithKey(const AccessKey& key, std::string_view to_sign) {
  return Base64Encode(HmacSha256(key.azure_key, to_sign));
}

// Shared Key's string to sign, for x-ms-version 2015-02-21 and later (Content-Length "0" is
// written empty; before 2015-02-21 it is kept).
std::string SharedKeyStringToSign(const RequestView& r, const std::vector<QueryParam>& query,
                                  const std::string& account) {
  auto h = [&](std::string_view name) {
    auto v = r.Header(name);
    return v ? Trim(*v) : std::string();
  };
  std::string length = h("content-length");
  std::string version = h("x-ms-version");
  if (length == "0" && (version.empty() || version >= "2015-02-21")) length.clear();
  std::string s = r.method + "\n" + h("content-encoding") + "\n" + h("content-language") + "\n" +
                  length + "\n" + h("content-md5") + "\n" + h("content-type") + "\n" + h("date") +
                  "\n" + h("if-modified-since") + "\n" + h("if-match") + "\n" +
                  h("if-none-match") + "\n" + h("if-unmodified-since") + "\n" + h("range") + "\n";
  std::map<std::string, std::string> ms;
  for (const auto& [name, value] : r.headers) {
    std::string n = ToLower(Trim(name));
    if (!StartsWith(n, "x-ms-")) continue;
    auto it = ms.find(n);
    if (it == ms.end()) {
      ms.emplace(n, Trim(value));
    } else {
      it->second += "," + Trim(value);
    }
  }
  for (const auto& [n, v] : ms) s += n + ":" + v + "\n";
  s += "/" + account + (r.raw_path.empty() ? "/" : r.raw_path);
  std::map<std::string, std::vector<std::string>> params;
  for (const auto& p : query) params[ToLower(p.name)].push_back(p.value);
  for (auto& [n, vs] : params) {
    std::sort(vs.begin(), vs.end());
    s += "\n" + n + ":";
    for (size_t i = 0; i < vs.size(); i++) s += (i ? "," : "") + vs[i];
  }
  return s;
}

Verdict<AzurePrincipal, AzureError> VerifySharedKey(const RequestView& r,
                                                    const std::vector<QueryParam>& query,
                                                    std::string_view header,
                                                    const Credentials& credentials,
                                                    const AzureVerifyOptions& options,
                                                    std::time_t now, AzurePrincipal p) {
  if (StartsWith(header, "SharedKeyLite ")) {
    return AuthFailed("SharedKeyLite is not supported by this door: use SharedKey");
  }
  if (!StartsWith(header, "SharedKey ")) {
    return AuthFailed("The Authorization header '" + std::string(header.substr(0, 40)) +
                      "' is not 'SharedKey ACCOUNT:SIGNATURE'");
  }
  std::string_view rest = header.substr(10);
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return AuthFailed("The Authorization header is not 'SharedKey ACCOUNT:SIGNATURE'");
  }
  std::string account = Trim(rest.substr(0, colon));
  std::string signature = Trim(rest.substr(colon + 1));
  p.key = credentials.Find(account);
  if (p.key == nullptr || !p.key->azure) {
    return AuthFailed("The account '" + account + "' is not an Azure key in this door's "
                      "credentials file");
  }
  if (account != p.account) {
    return AuthFailed("The account '" + account + "' signed the request, but the path names '" +
                      p.account + "'");
  }
  std::string date_text;
  std::time_t t = -1;
  if (auto d = r.Header("x-ms-date")) {
    date_text = Trim(*d);
  } else if (auto d2 = r.Header("date")) {
    date_text = Trim(*d2);
  }
  if (date_text.empty()) {
    return AuthFailed("The request has neither x-ms-date nor Date: Shared Key requires one");
  }
  t = ParseHttpTime(date_text);
  if (t < 0) return AuthFailed("The date '" + date_text + "' is not an RFC 1123 date");
  if (std::llabs(static_cast<long long>(now - t)) > options.max_skew_seconds) {
    return AuthFailed("Request date header too old: '" + date_text + "' is more than " +
                      std::to_string(options.max_skew_seconds) +
                      " seconds from the server's time " + FormatRfc1123(now));
  }
  std::string to_sign = SharedKeyStringToSign(r, query, account);
  std::string expected = SignWithKey(*p.key, to_sign);
  if (!ConstantTimeEquals(expected, signature)) {
    return AuthFailed("The MAC signature found in the HTTP request '" + signature +
                      "' is not the same as any computed signature. Server used following "
                      "string to sign: '" + to_sign + "'.");
  }
  p.kind = AzureAuthKind::kSharedKey;
  return p;
}

// Checks st, se, sip and spr, common to both SAS kinds.
std::optional<AzureError> CheckSasConditions(const RequestView& r,
                                             const std::vector<QueryParam>& q, std::time_t now) {
  std::string st = Value(q, "st"), se = Value(q, "se"), sip = Value(q, "sip"),
              spr = Value(q, "spr");
  if (se.empty()) return AuthFailed("Signed expiry time (se) is required in a SAS");
  std::time_t expiry = ParseSasTime(se);
  if (expiry < 0) return AuthFailed("se '" + se + "' is not an ISO 8601 UTC time");
  if (now > expiry) {
    return AuthFailed("Signed expiry time [" + FormatRfc1123(expiry) +
                      "] has to be after the current time [" + FormatRfc1123(now) + "]");
  }
  if (!st.empty()) {
    std::time_t start = ParseSasTime(st);
    if (start < 0) return AuthFailed("st '" + st + "' is not an ISO 8601 UTC time");
    if (now < start) {
      return AuthFailed("Signed start time [" + FormatRfc1123(start) +
                        "] has to be before the current time [" + FormatRfc1123(now) + "]");
    }
  }
  if (!spr.empty()) {
    if (spr != "https" && spr != "https,http" && spr != "http,https") {
      return AuthFailed("spr '" + spr + "' is not https or https,http");
    }
    if (spr == "https" && !r.is_tls) {
      return AzureError{AzureErrorCode::kAuthorizationProtocolMismatch,
                        "This request is not authorized to perform this operation using this "
                        "protocol: the SAS allows HTTPS only (spr=https).",
                        ""};
    }
  }
  if (!sip.empty()) {
    size_t dash = sip.find('-');
    auto lo = ParseIpv4(sip.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : ParseIpv4(sip.substr(dash + 1));
    if (!lo || !hi || *lo > *hi) return AuthFailed("sip '" + sip + "' is not an IPv4 address or range");
    auto client = ParseIpv4(r.client_ip);
    if (!client || *client < *lo || *client > *hi) {
      return AzureError{AzureErrorCode::kAuthorizationSourceIPMismatch,
                        "This request is not authorized to perform this operation using this "
                        "source IP " + r.client_ip + " (the SAS allows " + sip + ").",
                        ""};
    }
  }
  return std::nullopt;
}

}  // namespace

Verdict<AzurePrincipal, AzureError> VerifyAzure(const RequestView& request,
                                                const Credentials& credentials,
                                                const AzureVerifyOptions& options,
                                                std::time_t now) {
  std::vector<QueryParam> q = ParseQuery(request.raw_query);
  PathParts parts = SplitPath(request.raw_path);
  AzurePrincipal p;
  p.account = parts.account;
  p.container = parts.container;
  p.blob = parts.blob;

  if (auto auth = request.Header("authorization")) {
    return VerifySharedKey(request, q, Trim(*auth), credentials, options, now, std::move(p));
  }
  if (!QueryValue(q, "sig")) {
    return AzureError{AzureErrorCode::kNoAuthenticationInformation,
                      "Server failed to authenticate the request. Please refer to the "
                      "information in the www-authenticate header: the request has neither an "
                      "Authorization header nor a SAS.",
                      ""};
  }
  std::string sig = Value(q, "sig"), sv = Value(q, "sv"), sp = Value(q, "sp");
  if (sv.empty()) return AuthFailed("sv is mandatory. Cannot be empty");
  if (sp.empty()) return AuthFailed("sp is mandatory. Cannot be empty");
  if (!Value(q, "si").empty()) {
    return AuthFailed("stored access policies (si) are not supported by this door: sign the SAS "
                      "with its permissions and expiry");
  }
  if (QueryValue(q, "skoid")) {
    return AuthFailed("user delegation SAS (skoid) is not supported by this door: sign the SAS "
                      "with the account key");
  }
  p.key = credentials.Find(p.account);
  if (p.key == nullptr || !p.key->azure) {
    return AuthFailed("The account '" + p.account + "' is not an Azure key in this door's "
                      "credentials file");
  }
  p.permissions = sp;
  bool account_sas = QueryValue(q, "ss").has_value() || QueryValue(q, "srt").has_value();
  std::string to_sign;
  auto v = [&](const char* n) { return Value(q, n); };
  if (account_sas) {
    p.kind = AzureAuthKind::kAccountSas;
    to_sign = p.account + "\n" + sp + "\n" + v("ss") + "\n" + v("srt") + "\n" + v("st") + "\n" +
              v("se") + "\n" + v("sip") + "\n" + v("spr") + "\n" + sv + "\n";
    if (sv >= "2020-12-06") to_sign += v("ses") + "\n";
  } else {
    p.kind = AzureAuthKind::kServiceSas;
    if (sv < "2015-04-05") {
      return AuthFailed("sv " + sv + " is older than 2015-04-05, which this door does not "
                        "verify: sign with a newer version");
    }
    std::string sr = v("sr");
    std::string canonical = "/blob/" + p.account + "/" + p.container;
    std::string timestamp;
    if (sr == "b" || sr == "bs" || sr == "bv") {
      if (p.blob.empty()) return AuthFailed("sr=" + sr + " signs a blob, but the path names none");
      canonical += "/" + p.blob;
      if (sr == "bs") timestamp = v("snapshot");
      if (sr == "bv") timestamp = v("versionid");
    } else if (sr != "c") {
      return AuthFailed("sr '" + sr + "' is not b, bs, bv or c (directory SAS is not supported)");
    }
    to_sign = sp + "\n" + v("st") + "\n" + v("se") + "\n" + canonical + "\n" + v("si") + "\n" +
              v("sip") + "\n" + v("spr") + "\n" + sv + "\n";
    if (sv >= "2018-11-09") to_sign += sr + "\n" + timestamp + "\n";
    if (sv >= "2020-12-06") to_sign += v("ses") + "\n";
    to_sign += v("rscc") + "\n" + v("rscd") + "\n" + v("rsce") + "\n" + v("rscl") + "\n" +
               v("rsct");
  }
  std::string expected = SignWithKey(*p.key, to_sign);
  if (!ConstantTimeEquals(expected, sig)) {
    return AuthFailed("Signature did not match. String to sign used was " + to_sign);
  }
  if (auto e = CheckSasConditions(request, q, now)) return *e;
  if (account_sas) {
    if (v("ss").find('b') == std::string::npos) {
      return AzureError{AzureErrorCode::kAuthorizationServiceMismatch,
                        "This request is not authorized to perform this operation using this "
                        "service: the account SAS has ss=" + v("ss") + " without b (blob).",
                        ""};
    }
    char type = !p.blob.empty() ? 'o' : !p.container.empty() ? 'c' : 's';
    if (v("srt").find(type) == std::string::npos) {
      return AzureError{AzureErrorCode::kAuthorizationResourceTypeMismatch,
                        "This request is not authorized to perform this operation using this "
                        "resource type: it needs srt to include '" + std::string(1, type) +
                            "', the SAS has srt=" + v("srt") + ".",
                        ""};
    }
  }
  return p;
}

std::optional<AzureError> AuthorizeAzure(const AzurePrincipal& principal,
                                         std::string_view container, std::string_view key_path,
                                         AzureOp op) {
  char letter = static_cast<char>(op);
  if (principal.kind != AzureAuthKind::kSharedKey &&
      principal.permissions.find(letter) == std::string::npos) {
    return AzureError{AzureErrorCode::kAuthorizationPermissionMismatch,
                      "This request is not authorized to perform this operation using this "
                      "permission: it needs '" + std::string(1, letter) + "', the SAS has sp=" +
                          principal.permissions + ".",
                      ""};
  }
  Access access = (op == AzureOp::kRead || op == AzureOp::kList) ? Access::kRead : Access::kWrite;
  if (principal.key == nullptr || !principal.key->Allows(container, key_path, access)) {
    bool read_ok = principal.key != nullptr &&
                   principal.key->Allows(container, key_path, Access::kRead);
    return AzureError{access == Access::kWrite && read_ok
                          ? AzureErrorCode::kAuthorizationPermissionMismatch
                          : AzureErrorCode::kAuthorizationFailure,
                      "This request is not authorized to perform this operation: the key '" +
                          (principal.key ? principal.key->id : std::string()) + "' may not " +
                          (access == Access::kWrite ? "write" : "read") + " " +
                          std::string(container) + "/" + std::string(key_path) +
                          " (see its scopes in the credentials file).",
                      ""};
  }
  return std::nullopt;
}

}  // namespace shoal::door
