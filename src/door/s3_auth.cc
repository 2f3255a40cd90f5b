#include "door/s3_auth.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "common/strings.h"

namespace shoal::door {

const char* S3Error::name() const {
  switch (code) {
    case S3ErrorCode::kAccessDenied: return "AccessDenied";
    case S3ErrorCode::kAuthorizationHeaderMalformed: return "AuthorizationHeaderMalformed";
    case S3ErrorCode::kAuthorizationQueryParametersError: return "AuthorizationQueryParametersError";
    case S3ErrorCode::kBadDigest: return "BadDigest";
    case S3ErrorCode::kIncompleteBody: return "IncompleteBody";
    case S3ErrorCode::kInvalidAccessKeyId: return "InvalidAccessKeyId";
    case S3ErrorCode::kInvalidArgument: return "InvalidArgument";
    case S3ErrorCode::kMissingSecurityHeader: return "MissingSecurityHeader";
    case S3ErrorCode::kRequestTimeTooSkewed: return "RequestTimeTooSkewed";
    case S3ErrorCode::kSignatureDoesNotMatch: return "SignatureDoesNotMatch";
    case S3ErrorCode::kXAmzContentSHA256Mismatch: return "XAmzContentSHA256Mismatch";
  }
  return "InternalError";
}

int S3Error::http_status() const {
  switch (code) {
    case S3ErrorCode::kAccessDenied:
    case S3ErrorCode::kInvalidAccessKeyId:
    case S3ErrorCode::kRequestTimeTooSkewed:
    case S3ErrorCode::kSignatureDoesNotMatch:
      return 403;
    default:
      return 400;
  }
}

std::string RenderS3Error(const S3Error& error, std::string_view resource,
                          std::string_view request_id) {
  std::vector<std::pair<std::string, std::string>> fields = {{"Code", error.name()},
                                                             {"Message", error.message}};
  if (!error.string_to_sign.empty()) fields.emplace_back("StringToSign", error.string_to_sign);
  if (!error.canonical_request.empty()) {
    fields.emplace_back("CanonicalRequest", error.canonical_request);
  }
  fields.emplace_back("Resource", std::string(resource));
  fields.emplace_back("RequestId", std::string(request_id));
  return RenderErrorXml("UTF-8", fields);
}

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr int64_t kMaxPresignSeconds = 604800;

S3Error Err(S3ErrorCode code, std::string message) { return S3Error{code, std::move(message), "", ""}; }

// "20130524T000000Z" -> time; -1 when not that form.
std::time_t ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return -1;
  std::tm tm{};
  std::string copy(s);
  const char* end = strptime(copy.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (end == nullptr || *end != '\0') return -1;
  return timegm(&tm);
}

bool IsLowerHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

std::string SigningKey(const std::string& secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = HmacSha256("AWS4" + secret, date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  return HmacSha256(k, "aws4_request");
}

// The path as SigV4 canonicalizes it for S3: each segment decoded once and encoded again
// (everything but the unreserved characters), so a "%2F" inside a segment stays "%2F"; no
// normalization of "." or "//", no double encoding.
std::string CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t slash = raw_path.find('/', pos);
    std::string_view seg = raw_path.substr(pos, slash == std::string_view::npos ? raw_path.npos
                                                                                 : slash - pos);
    auto decoded = PercentDecode(seg);
    out += UriEncode(decoded ? *decoded : std::string(seg), /*keep_slash=*/false);
    if (slash == std::string_view::npos) break;
    out += '/';
    pos = slash + 1;
  }
  return out;
}

std::string CanonicalQuery(const std::vector<QueryParam>& params, bool skip_signature) {
  std::vector<std::pair<std::string, std::string>> enc;
  for (const auto& p : params) {
    if (skip_signature && p.name == "X-Amz-Signature") continue;
    enc.emplace_back(UriEncode(p.name, false), UriEncode(p.value, false));
  }
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [n, v] : enc) {
    if (!out.empty()) out += '&';
    out += n + "=" + v;
  }
  return out;
}

// Trimmed, with every run of whitespace inside made one space.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

struct SignedParts {
  std::string access_key;
  std::string date;     // yyyymmdd of the scope
  std::string region;
  std::string service;
  std::string terminal;
  std::vector<std::string> signed_headers;
  std::string signature;
};

// "AKID/20130524/us-east-1/s3/aws4_request" into `out`; false when not five parts.
bool SplitCredential(std::string_view cred, SignedParts* out) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = cred.find('/', pos);
    parts.emplace_back(cred.substr(pos, slash == std::string_view::npos ? cred.npos : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (parts.size() != 5) return false;
  out->access_key = parts[0];
  out->date = parts[1];
  out->region = parts[2];
  out->service = parts[3];
  out->terminal = parts[4];
  return true;
}

std::vector<std::string> SplitList(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t at = s.find(sep, pos);
    if (at == std::string_view::npos) at = s.size();
    out.push_back(Trim(s.substr(pos, at - pos)));
    pos = at + 1;
  }
  return out;
}

// Checks what the scope names; `malformed` is the code for a wrong form.
std::optional<S3Error> CheckScope(const SignedParts& sp, std::string_view amz_date,
                                  const S3VerifyOptions& options, S3ErrorCode malformed) {
  if (sp.date.size() != 8 || amz_date.substr(0, 8) != sp.date) {
    return Err(malformed, "Invalid credential date '" + sp.date +
                              "': it is not the date of X-Amz-Date '" + std::string(amz_date) + "'");
  }
  if (!options.region.empty() && sp.region != options.region) {
    return Err(malformed, "the region '" + sp.region + "' is wrong; expecting '" +
                              options.region + "'");
  }
  if (sp.service != "s3") {
    return Err(malformed, "the service '" + sp.service + "' in the credential is not 's3'");
  }
  if (sp.terminal != "aws4_request") {
    return Err(malformed, "the credential must end in 'aws4_request', not '" + sp.terminal + "'");
  }
  return std::nullopt;
}

}  // namespace

Verdict<S3Principal, S3Error> VerifyS3(const RequestView& request, const Credentials& credentials,
                                       const S3VerifyOptions& options, std::time_t now) {
  std::vector<QueryParam> query = ParseQuery(request.raw_query);
  auto auth_header = request.Header("authorization");
  auto algorithm_param = QueryValue(query, "X-Amz-Algorithm");
  S3Principal p;
  SignedParts sp;
  std::string amz_date;
  std::string payload_hash;

  if (auth_header) {
    if (algorithm_param) {
      return Err(S3ErrorCode::kInvalidArgument,
                 "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or "
                 "the Authorization header should be specified");
    }
    std::string_view h = *auth_header;
    if (!StartsWith(h, std::string(kAlgorithm) + " ")) {
      return Err(S3ErrorCode::kInvalidArgument,
                 "The authorization mechanism you have provided is not supported; use "
                 "AWS4-HMAC-SHA256 (Signature Version 4)");
    }
    std::map<std::string, std::string> fields;
    for (const std::string& item : SplitList(h.substr(kAlgorithm.size() + 1), ',')) {
      size_t eq = item.find('=');
      if (eq == std::string::npos) {
        return Err(S3ErrorCode::kAuthorizationHeaderMalformed,
                   "The authorization header is malformed; '" + item + "' is not NAME=VALUE");
      }
      fields[item.substr(0, eq)] = item.substr(eq + 1);
    }
    for (const char* need : {"Credential", "SignedHeaders", "Signature"}) {
      if (fields.count(need) == 0) {
        return Err(S3ErrorCode::kAuthorizationHeaderMalformed,
                   std::string("The authorization header is malformed; it has no ") + need);
      }
    }
    if (!SplitCredential(fields["Credential"], &sp)) {
      return Err(S3ErrorCode::kAuthorizationHeaderMalformed,
                 "The authorization header is malformed; the Credential '" + fields["Credential"] +
                     "' is not KEY/DATE/REGION/s3/aws4_request");
    }
    sp.signed_headers = SplitList(fields["SignedHeaders"], ';');
    sp.signature = fields["Signature"];
    auto content_sha = request.Header("x-amz-content-sha256");
    if (!content_sha) {
      return Err(S3ErrorCode::kMissingSecurityHeader,
                 "Your request is missing a required header: x-amz-content-sha256");
    }
    payload_hash = Trim(*content_sha);
    std::time_t t = -1;
    if (auto d = request.Header("x-amz-date")) {
      amz_date = Trim(*d);
      t = ParseAmzDate(amz_date);
      if (t < 0) {
        return Err(S3ErrorCode::kAccessDenied,
                   "AWS authentication requires a valid Date or x-amz-date header; '" + amz_date +
                       "' is not YYYYMMDDTHHMMSSZ");
      }
    } else if (auto date = request.Header("date")) {
      t = ParseHttpTime(*date);
      if (t < 0) {
        return Err(S3ErrorCode::kAccessDenied,
                   "AWS authentication requires a valid Date or x-amz-date header");
      }
      amz_date = FormatIso8601Basic(t);
    } else {
      return Err(S3ErrorCode::kMissingSecurityHeader,
                 "Your request is missing a required header: x-amz-date (or Date)");
    }
    if (std::llabs(static_cast<long long>(now - t)) > options.max_skew_seconds) {
      return Err(S3ErrorCode::kRequestTimeTooSkewed,
                 "The difference between the request time (" + FormatIso8601(t) +
                     ") and the server's time (" + FormatIso8601(now) + ") is more than " +
                     std::to_string(options.max_skew_seconds) + " seconds: correct the clock");
    }
    if (auto e = CheckScope(sp, amz_date, options, S3ErrorCode::kAuthorizationHeaderMalformed)) {
      return *e;
    }
    // Every x-amz-* header must be signed, so none can be added on the way.
    for (const auto& [name, value] : request.headers) {
      std::string n = ToLower(name);
      if (StartsWith(n, "x-amz-") &&
          std::find(sp.signed_headers.begin(), sp.signed_headers.end(), n) ==
              sp.signed_headers.end()) {
        return Err(S3ErrorCode::kAccessDenied,
                   "There were headers present in the request which were not signed: " + n);
      }
    }
  } else if (algorithm_param) {
    p.presigned = true;
    auto bad = [](std::string m) {
      return Err(S3ErrorCode::kAuthorizationQueryParametersError, std::move(m));
    };
    if (*algorithm_param != kAlgorithm) {
      return bad("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
    }
    for (const char* need : {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                             "X-Amz-SignedHeaders", "X-Amz-Signature"}) {
      if (!QueryValue(query, need)) {
        return bad(std::string("Query-string authentication version 4 requires the "
                               "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                               "X-Amz-SignedHeaders, and X-Amz-Expires parameters; ") +
                   need + " is missing");
      }
    }
    std::string cred = *QueryValue(query, "X-Amz-Credential");
    if (!SplitCredential(cred, &sp)) {
      return bad("the X-Amz-Credential '" + cred + "' is not KEY/DATE/REGION/s3/aws4_request");
    }
    amz_date = *QueryValue(query, "X-Amz-Date");
    std::time_t t = ParseAmzDate(amz_date);
    if (t < 0) return bad("X-Amz-Date '" + amz_date + "' is not YYYYMMDDTHHMMSSZ");
    std::string expires_text = *QueryValue(query, "X-Amz-Expires");
    auto expires = ParseU64(expires_text);
    if (!expires.ok()) return bad("X-Amz-Expires '" + expires_text + "' is not a number of seconds");
    if (*expires > static_cast<uint64_t>(kMaxPresignSeconds)) {
      return bad("X-Amz-Expires must be less than a week (in seconds) that is 604800");
    }
    if (auto e = CheckScope(sp, amz_date, options, S3ErrorCode::kAuthorizationQueryParametersError)) {
      return *e;
    }
    if (t - now > options.max_skew_seconds) {
      return Err(S3ErrorCode::kAccessDenied, "Request is not valid yet: X-Amz-Date " + amz_date +
                                                 " is in the future");
    }
    if (now > t + static_cast<std::time_t>(*expires)) {
      return Err(S3ErrorCode::kAccessDenied,
                 "Request has expired: signed at " + amz_date + " for " + expires_text +
                     " seconds; it expired at " + FormatIso8601(t + static_cast<std::time_t>(*expires)));
    }
    sp.signed_headers = SplitList(*QueryValue(query, "X-Amz-SignedHeaders"), ';');
    sp.signature = *QueryValue(query, "X-Amz-Signature");
    auto content_sha = request.Header("x-amz-content-sha256");
    payload_hash = content_sha ? Trim(*content_sha) : std::string(kUnsignedPayload);
  } else if (QueryValue(query, "AWSAccessKeyId")) {
    return Err(S3ErrorCode::kInvalidArgument,
               "Signature Version 2 presigned URLs are not supported; presign with Signature "
               "Version 4 (boto3: Config(signature_version='s3v4'))");
  } else {
    return Err(S3ErrorCode::kAccessDenied,
               "Access Denied: the request is not signed (anonymous access is not allowed); sign "
               "it with an access key of this door");
  }

  // Who signed it.
  p.key = credentials.Find(sp.access_key);
  if (p.key == nullptr || !p.key->s3) {
    return Err(S3ErrorCode::kInvalidAccessKeyId,
               "The AWS Access Key Id you provided does not exist in our records: '" +
                   sp.access_key + "' is not an S3 key in this door's credentials file");
  }
  if (std::find(sp.signed_headers.begin(), sp.signed_headers.end(), "host") ==
      sp.signed_headers.end()) {
    return Err(p.presigned ? S3ErrorCode::kAuthorizationQueryParametersError
                           : S3ErrorCode::kAuthorizationHeaderMalformed,
               "SignedHeaders must include host");
  }

  // The payload mode.
  if (payload_hash == kUnsignedPayload) {
    p.payload = S3Payload::kUnsigned;
  } else if (payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
    p.payload = S3Payload::kSignedChunks;
  } else if (payload_hash == "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
    p.payload = S3Payload::kUnsignedChunksTrailer;
  } else if (payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") {
    p.payload = S3Payload::kSignedChunksTrailer;
  } else if (IsLowerHex(ToLower(payload_hash), 64)) {
    p.payload = S3Payload::kSha256;
    p.content_sha256 = ToLower(payload_hash);
  } else {
    return Err(S3ErrorCode::kInvalidArgument,
               "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
               "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or "
               "a SHA-256 in hex; got '" + payload_hash + "'");
  }
  bool chunked = p.payload == S3Payload::kSignedChunks ||
                 p.payload == S3Payload::kUnsignedChunksTrailer ||
                 p.payload == S3Payload::kSignedChunksTrailer;
  if (chunked) {
    auto dl = request.Header("x-amz-decoded-content-length");
    if (!dl) {
      return Err(S3ErrorCode::kMissingSecurityHeader,
                 "Your request is missing a required header: x-amz-decoded-content-length "
                 "(needed with " + payload_hash + ")");
    }
    auto n = ParseU64(Trim(*dl));
    if (!n.ok()) {
      return Err(S3ErrorCode::kInvalidArgument,
                 "x-amz-decoded-content-length '" + std::string(*dl) + "' is not a number");
    }
    p.decoded_length = *n;
  }
  if (p.payload == S3Payload::kUnsignedChunksTrailer || p.payload == S3Payload::kSignedChunksTrailer) {
    auto tr = request.Header("x-amz-trailer");
    if (tr) p.trailer = ToLower(Trim(*tr));
    if (!p.trailer.empty() &&
        (!StartsWith(p.trailer, "x-amz-checksum-") || !Checksum::Make(p.trailer.substr(15)))) {
      return Err(S3ErrorCode::kInvalidArgument,
                 "x-amz-trailer '" + p.trailer + "' is not an x-amz-checksum-* this door computes "
                 "(crc32, crc32c, crc64nvme, sha1, sha256)");
    }
  }
  for (const char* alg : {"crc32", "crc32c", "crc64nvme", "sha1", "sha256"}) {
    if (auto v = request.Header(std::string("x-amz-checksum-") + alg)) {
      p.header_checksum = alg;
      p.header_checksum_b64 = Trim(*v);
    }
  }
  if (p.header_checksum.empty()) {
    if (auto md5 = request.Header("content-md5")) {
      p.header_checksum = "md5";
      p.header_checksum_b64 = Trim(*md5);
    }
  }

  // The canonical request and the string to sign, as the client built them.
  std::map<std::string, std::string> values;
  for (const auto& [name, value] : request.headers) {
    std::string n = ToLower(name);
    auto it = values.find(n);
    std::string v = CanonicalHeaderValue(value);
    if (it == values.end()) {
      values.emplace(n, v);
    } else {
      it->second += "," + v;
    }
  }
  std::string canonical = request.method + "\n" + CanonicalUri(request.raw_path) + "\n" +
                          CanonicalQuery(query, p.presigned) + "\n";
  for (const std::string& h : sp.signed_headers) {
    auto it = values.find(h);
    if (it == values.end()) {
      return Err(p.presigned ? S3ErrorCode::kAuthorizationQueryParametersError
                             : S3ErrorCode::kAuthorizationHeaderMalformed,
                 "the signed header '" + h + "' is not in the request");
    }
    canonical += h + ":" + it->second + "\n";
  }
  std::string signed_list;
  for (const std::string& h : sp.signed_headers) signed_list += (signed_list.empty() ? "" : ";") + h;
  canonical += "\n" + signed_list + "\n" + payload_hash;
  std::string scope = sp.date + "/" + sp.region + "/" + sp.service + "/" + sp.terminal;
  std::string to_sign = std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" +
                        HexEncode(Sha256(canonical));
  std::string key = SigningKey(p.key->secret, sp.date, sp.region, sp.service);
  std::string expected = HexEncode(HmacSha256(key, to_sign));
  if (!ConstantTimeEquals(expected, ToLower(sp.signature))) {
    S3Error e = Err(S3ErrorCode::kSignatureDoesNotMatch,
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.");
    e.string_to_sign = to_sign;
    e.canonical_request = canonical;
    return e;
  }
  p.signing_key = key;
  p.amz_date = amz_date;
  p.scope = scope;
  p.seed_signature = expected;
  return p;
}

std::optional<S3Error> AuthorizeS3(const S3Principal& principal, std::string_view bucket,
                                   std::string_view key_path, Access access) {
  if (principal.key != nullptr && principal.key->Allows(bucket, key_path, access)) {
    return std::nullopt;
  }
  return Err(S3ErrorCode::kAccessDenied,
             "Access Denied: key '" + (principal.key ? principal.key->id : std::string()) +
                 "' may not " + (access == Access::kWrite ? "write" : "read") + " " +
                 std::string(bucket) + "/" + std::string(key_path) +
                 " (see its scopes in the credentials file)");
}

// --- the body ------------------------------------------------------------------------------

namespace {
constexpr size_t kMaxLine = 4096;
}  // namespace

S3BodyDecoder::S3BodyDecoder(const S3Principal& principal)
    : p_(principal), prev_signature_(principal.seed_signature) {
  switch (p_.payload) {
    case S3Payload::kUnsigned:
    case S3Payload::kSha256:
      state_ = State::kPlain;
      break;
    default:
      state_ = State::kChunkHeader;
  }
  if (p_.payload == S3Payload::kSha256) body_hash_ = Checksum::Make("sha256");
  if (!p_.trailer.empty()) {
    checksum_ = Checksum::Make(p_.trailer.substr(std::string_view("x-amz-checksum-").size()));
  } else if (!p_.header_checksum.empty()) {
    checksum_ = Checksum::Make(p_.header_checksum);
  }
}

S3BodyDecoder::~S3BodyDecoder() = default;

std::optional<S3Error> S3BodyDecoder::Fail(S3ErrorCode code, std::string message) {
  error_ = Err(code, std::move(message));
  return error_;
}

std::optional<S3Error> S3BodyDecoder::Feed(std::string_view raw, std::string* out) {
  if (error_) return error_;
  while (!raw.empty()) {
    switch (state_) {
      case State::kPlain: {
        if (body_hash_) body_hash_->Update(raw);
        if (checksum_) checksum_->Update(raw);
        out->append(raw);
        payload_bytes_ += raw.size();
        return std::nullopt;
      }
      case State::kChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, raw.size()));
        std::string_view data = raw.substr(0, n);
        if (chunk_hash_) chunk_hash_->Update(data);
        if (checksum_) checksum_->Update(data);
        out->append(data);
        payload_bytes_ += n;
        chunk_left_ -= n;
        raw.remove_prefix(n);
        if (payload_bytes_ > p_.decoded_length) {
          return Fail(S3ErrorCode::kInvalidArgument,
                      "the aws-chunked body holds more than x-amz-decoded-content-length (" +
                          std::to_string(p_.decoded_length) + ") bytes");
        }
        if (chunk_left_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kDone:
        return Fail(S3ErrorCode::kInvalidArgument,
                    "bytes follow the end of the aws-chunked body");
      case State::kChunkHeader:
      case State::kChunkDataEnd:
      case State::kTrailer: {
        // Gather one line up to its CRLF.
        size_t nl = raw.find('\n');
        size_t take = nl == std::string_view::npos ? raw.size() : nl + 1;
        line_.append(raw.substr(0, take));
        raw.remove_prefix(take);
        if (line_.size() > kMaxLine) {
          return Fail(S3ErrorCode::kInvalidArgument,
                      "an aws-chunked chunk header or trailer line is longer than " +
                          std::to_string(kMaxLine) + " bytes");
        }
        if (nl == std::string_view::npos) break;
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
          return Fail(S3ErrorCode::kInvalidArgument,
                      "an aws-chunked line does not end in CRLF");
        }
        std::string line = line_.substr(0, line_.size() - 2);
        line_.clear();
        std::optional<S3Error> e;
        if (state_ == State::kChunkHeader) {
          e = OnChunkHeader(line);
        } else if (state_ == State::kChunkDataEnd) {
          if (!line.empty()) {
            return Fail(S3ErrorCode::kInvalidArgument,
                        "an aws-chunked chunk's data is longer than its declared size");
          }
          e = OnChunkEnd();
        } else {
          e = OnTrailerLine(line);
        }
        if (e) return e;
        break;
      }
    }
  }
  return std::nullopt;
}

std::optional<S3Error> S3BodyDecoder::OnChunkHeader(std::string_view line) {
  size_t semi = line.find(';');
  std::string_view size_hex = line.substr(0, semi);
  if (size_hex.empty() || size_hex.size() > 15 ||
      size_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
    return Fail(S3ErrorCode::kInvalidArgument,
                "malformed aws-chunked chunk header '" + std::string(line.substr(0, 80)) + "'");
  }
  chunk_left_ = std::strtoull(std::string(size_hex).c_str(), nullptr, 16);
  chunk_signature_.clear();
  bool signed_mode = p_.payload != S3Payload::kUnsignedChunksTrailer;
  if (semi != std::string_view::npos) {
    std::string_view ext = line.substr(semi + 1);
    constexpr std::string_view kSig = "chunk-signature=";
    if (StartsWith(ext, kSig)) chunk_signature_ = std::string(ext.substr(kSig.size()));
  }
  if (signed_mode && chunk_signature_.empty()) {
    return Fail(S3ErrorCode::kSignatureDoesNotMatch,
                "an aws-chunked chunk has no chunk-signature, which " +
                    std::string(p_.payload == S3Payload::kSignedChunks
                                    ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
                                    : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") +
                    " requires");
  }
  if (signed_mode) chunk_hash_ = Checksum::Make("sha256");
  if (chunk_left_ == 0) {
    last_chunk_ = true;
    // The final chunk has no data and, in trailer modes, no CRLF of its own: the trailer
    // follows at once.
    if (signed_mode) {
      if (auto e = OnChunkEnd()) return e;
    }
    // Without a trailer, "0;chunk-signature=...\r\n" is followed by one empty line.
    state_ = (p_.payload == S3Payload::kSignedChunks) ? State::kChunkDataEnd : State::kTrailer;
    return std::nullopt;
  }
  state_ = State::kChunkData;
  return std::nullopt;
}

std::optional<S3Error> S3BodyDecoder::OnChunkEnd() {
  bool signed_mode = p_.payload != S3Payload::kUnsignedChunksTrailer;
  if (signed_mode && chunk_hash_) {
    std::string to_sign = "AWS4-HMAC-SHA256-PAYLOAD\n" + p_.amz_date + "\n" + p_.scope + "\n" +
                          prev_signature_ + "\n" + HexEncode(Sha256("")) + "\n" +
                          HexEncode(chunk_hash_->Final());
    chunk_hash_.reset();
    std::string expected = HexEncode(HmacSha256(p_.signing_key, to_sign));
    if (!ConstantTimeEquals(expected, ToLower(chunk_signature_))) {
      return Fail(S3ErrorCode::kSignatureDoesNotMatch,
                  "The request signature we calculated does not match the signature you "
                  "provided: the signature of the aws-chunked chunk ending at payload byte " +
                      std::to_string(payload_bytes_) + " is wrong");
    }
    prev_signature_ = expected;
  }
  if (last_chunk_ && state_ == State::kChunkDataEnd) {
    state_ = State::kDone;
  } else if (!last_chunk_) {
    state_ = State::kChunkHeader;
  }
  return std::nullopt;
}

std::optional<S3Error> S3BodyDecoder::OnTrailerLine(std::string_view line) {
  if (line.empty()) {
    state_ = State::kDone;
    return std::nullopt;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Fail(S3ErrorCode::kInvalidArgument,
                "malformed aws-chunked trailer line '" + std::string(line.substr(0, 80)) + "'");
  }
  std::string name = ToLower(Trim(line.substr(0, colon)));
  std::string value = Trim(line.substr(colon + 1));
  if (name == "x-amz-trailer-signature") {
    trailer_signature_ = value;
    return std::nullopt;
  }
  trailer_text_ += name + ":" + value + "\n";
  if (name == p_.trailer) trailer_value_ = value;
  return std::nullopt;
}

std::optional<S3Error> S3BodyDecoder::CheckTrailer() {
  if (p_.payload == S3Payload::kSignedChunksTrailer) {
    std::string to_sign = "AWS4-HMAC-SHA256-TRAILER\n" + p_.amz_date + "\n" + p_.scope + "\n" +
                          prev_signature_ + "\n" + HexEncode(Sha256(trailer_text_));
    std::string expected = HexEncode(HmacSha256(p_.signing_key, to_sign));
    if (!ConstantTimeEquals(expected, ToLower(trailer_signature_))) {
      return Fail(S3ErrorCode::kSignatureDoesNotMatch,
                  "The request signature we calculated does not match the signature you "
                  "provided: the aws-chunked trailer's x-amz-trailer-signature is wrong");
    }
  }
  if (!p_.trailer.empty()) {
    if (trailer_value_.empty()) {
      return Fail(S3ErrorCode::kIncompleteBody,
                  "the body ended without the trailer " + p_.trailer + " that x-amz-trailer declared");
    }
    std::string got = Base64Encode(checksum_->Final());
    if (got != trailer_value_) {
      return Fail(S3ErrorCode::kBadDigest,
                  "The " + p_.trailer.substr(15) + " you specified (" + trailer_value_ +
                      ") did not match the calculated checksum (" + got + ")");
    }
  }
  return std::nullopt;
}

std::optional<S3Error> S3BodyDecoder::Finish() {
  if (error_) return error_;
  if (state_ == State::kPlain) {
    if (body_hash_) {
      std::string got = HexEncode(body_hash_->Final());
      if (got != p_.content_sha256) {
        return Fail(S3ErrorCode::kXAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed: "
                    "declared " + p_.content_sha256 + ", body has " + got);
      }
    }
  } else {
    if (state_ != State::kDone) {
      return Fail(S3ErrorCode::kIncompleteBody,
                  "the aws-chunked body ended before its final chunk (" +
                      std::to_string(payload_bytes_) + " payload bytes received)");
    }
    if (payload_bytes_ != p_.decoded_length) {
      return Fail(S3ErrorCode::kIncompleteBody,
                  "You did not provide the number of bytes specified by "
                  "x-amz-decoded-content-length: " + std::to_string(p_.decoded_length) +
                      " declared, " + std::to_string(payload_bytes_) + " sent");
    }
    if (auto e = CheckTrailer()) return e;
  }
  if (p_.trailer.empty() && checksum_) {
    std::string got = Base64Encode(checksum_->Final());
    if (got != p_.header_checksum_b64) {
      std::string what = p_.header_checksum == "md5" ? "Content-MD5" : p_.header_checksum;
      return Fail(S3ErrorCode::kBadDigest, "The " + what + " you specified (" +
                                               p_.header_checksum_b64 +
                                               ") did not match the calculated checksum (" + got + ")");
    }
  }
  return std::nullopt;
}

}  // namespace shoal::door
