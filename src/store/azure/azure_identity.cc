#include "store/azure/azure_identity.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "common/strings.h"
#include "net/http_client.h"
#include "net/retry.h"

namespace shoal {

namespace {

using std::chrono::seconds;

// Azure Storage's resource, as Entra ID (a v2 scope) and the managed identity endpoints (a v1
// resource) name it.
constexpr const char* kScope = "https://storage.azure.com/.default";
constexpr const char* kResource = "https://storage.azure.com/";
constexpr const char* kDefaultAuthority = "https://login.microsoftonline.com";
constexpr const char* kImdsAddress = "http://169.254.169.254";
constexpr std::chrono::seconds kRetryAfterFailure{5};
constexpr std::chrono::minutes kMaxRefreshMargin{5};

// Token endpoints answer 400 or 401 to a wrong secret, a refused assertion or an unknown
// identity: none will pass on a retry. 408, 429 and 5xx are transient.
const http::ErrorFormat kTokenErrors{
    .describe = [](const http::Response& r) { return DescribeTokenError(r.body); },
    .code = [](const http::Response& r) -> std::optional<Code> {
      if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429) {
        return Code::kPermissionDenied;
      }
      return std::nullopt;
    },
    .failed_2xx = nullptr};

// A few attempts: the endpoints are local (IMDS, App Service) or highly available, and a
// caller waits on the fetch.
net::RetryPolicy TokenRetryPolicy() {
  net::RetryPolicy p;
  p.max_attempts = 4;
  p.base = std::chrono::milliseconds(500);
  p.max_delay = std::chrono::milliseconds(4000);
  return p;
}

// A JSON number, or a string of digits (IMDS sends "3599").
std::optional<int64_t> JsonSeconds(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) return static_cast<int64_t>(it->get<double>());
  if (it->is_string()) {
    auto n = ParseU64(Trim(it->get<std::string>()));
    if (n.ok()) return static_cast<int64_t>(n.value());
  }
  return std::nullopt;
}

Result<AccessToken> ParseTokenAnswer(const std::string& body, const std::string& what) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::IOError(what + ": the answer is not a JSON object");
  }
  auto token = j.find("access_token");
  if (token == j.end() || !token->is_string() || token->get<std::string>().empty()) {
    return Status::IOError(what + ": the answer has no access_token");
  }
  AccessToken t;
  t.token = token->get<std::string>();
  if (auto in = JsonSeconds(j, "expires_in")) {
    t.lifetime = seconds(*in);
  } else if (auto on = JsonSeconds(j, "expires_on")) {
    t.lifetime = seconds(*on - static_cast<int64_t>(std::time(nullptr)));
  } else {
    return Status::IOError(what + ": the answer says neither expires_in nor expires_on");
  }
  return t;
}

// The scheme and host of a URL: "http", "127.0.0.1".
std::pair<std::string, std::string> SchemeAndHost(const std::string& url) {
  size_t s = url.find("://");
  if (s == std::string::npos) return {"", ""};
  std::string rest = url.substr(s + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string host = rest[0] == '[' ? rest.substr(1, rest.find(']') - 1) : rest.substr(0, rest.find(':'));
  return {ToLower(url.substr(0, s)), ToLower(host)};
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || StartsWith(host, "127.");
}

std::string StripSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// The federated token, read for every exchange: the kubelet rotates the file.
Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::PermissionDenied("cannot read AZURE_FEDERATED_TOKEN_FILE=" + path + ": " +
                                    std::strerror(errno) +
                                    "; is the service account token volume mounted in the pod?");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = Trim(ss.str());
  if (token.empty()) {
    return Status::PermissionDenied("AZURE_FEDERATED_TOKEN_FILE=" + path + " is empty");
  }
  return token;
}

// Fetches tokens from one EntraConfig's endpoint.
class EntraFetcher {
 public:
  explicit EntraFetcher(EntraConfig config) : config_(std::move(config)), retry_(TokenRetryPolicy()) {}

  Result<AccessToken> Fetch() {
    std::string what = "Entra ID token from " + config_.Describe();
    Result<AccessToken> r = FetchFrom(what);
    if (r.ok()) return r;
    const std::string& message = r.status().message();
    // Answers' errors start with `what`; a connection's and the token file's do not.
    return Status(r.status().code(), (StartsWith(message, what) ? message : what + ": " + message) +
                                         ": " + config_.Hint());
  }

 private:
  Result<AccessToken> FetchFrom(const std::string& what) {
    http::Request req;
    std::string form;  // outlives every attempt: req.body points into it
    req.timeout = std::chrono::seconds(30);
    req.connect_timeout = std::chrono::seconds(5);
    req.headers = {{"Accept", "application/json"}};
    std::string client_id = config_.client_id.empty() ? "" : "&client_id=" + UriEncode(config_.client_id, false);
    switch (config_.kind) {
      case EntraConfig::Kind::kClientSecret:
      case EntraConfig::Kind::kWorkloadIdentity: {
        form = "grant_type=client_credentials" + client_id + "&scope=" + UriEncode(kScope, false);
        if (config_.kind == EntraConfig::Kind::kClientSecret) {
          form += "&client_secret=" + UriEncode(config_.client_secret, false);
        } else {
          SHOAL_ASSIGN_OR_RETURN(std::string assertion, ReadTokenFile(config_.token_file));
          form += "&client_assertion_type=" +
                  UriEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer", false) +
                  "&client_assertion=" + UriEncode(assertion, false);
        }
        req.method = "POST";
        req.url = config_.authority + "/" + UriEncode(config_.tenant_id, false) + "/oauth2/v2.0/token";
        req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
        req.body = form;
        break;
      }
      case EntraConfig::Kind::kAppService:
        req.url = config_.endpoint + (config_.endpoint.find('?') == std::string::npos ? "?" : "&") +
                  "api-version=2019-08-01&resource=" + UriEncode(kResource, false) + client_id;
        req.headers.push_back({"X-IDENTITY-HEADER", config_.identity_header});
        break;
      case EntraConfig::Kind::kImds:
        req.url = config_.endpoint + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
                  UriEncode(kResource, false) + client_id;
        req.headers.push_back({"Metadata", "true"});
        break;
    }
    http::Response resp;
    SHOAL_RETURN_IF_ERROR(http::Call(&client_, retry_, nullptr, [&] { return req; }, &resp, what, kTokenErrors));
    return ParseTokenAnswer(resp.body, what);
  }

  const EntraConfig config_;
  const net::RetryPolicy retry_;
  http::Client client_;
};

}  // namespace

// --- TokenCredential ---------------------------------------------------------------------------

TokenCredential::TokenCredential(std::string source, Fetch fetch, Clock clock)
    : source_(std::move(source)),
      fetch_(std::move(fetch)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

std::chrono::steady_clock::duration TokenCredential::RefreshMargin(seconds lifetime) {
  std::chrono::steady_clock::duration half = std::chrono::duration_cast<std::chrono::steady_clock::duration>(lifetime) / 2;
  return std::min<std::chrono::steady_clock::duration>(half, kMaxRefreshMargin);
}

Result<std::string> TokenCredential::Token() {
  std::unique_lock<std::mutex> lock(mu_);
  TimePoint now = clock_();
  if (!token_.empty() && now < expires_at_) {
    // Still valid: only one caller refreshes it, and not again right after a failure.
    if (now < refresh_at_ || fetching_ || now < next_try_) return token_;
    Result<std::string> fresh = FetchLocked(lock, false);
    if (!fresh.ok() && !token_.empty() && clock_() < expires_at_) return token_;
    return fresh;
  }
  return FetchLocked(lock, false);
}

Result<std::string> TokenCredential::Refresh(const std::string& rejected) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!token_.empty() && token_ != rejected && clock_() < expires_at_) return token_;
  if (token_ == rejected) token_.clear();  // no caller may be handed it again
  return FetchLocked(lock, true);
}

Result<std::string> TokenCredential::FetchLocked(std::unique_lock<std::mutex>& lock, bool forced) {
  if (fetching_) {
    uint64_t generation = generation_;
    fetched_.wait(lock, [&] { return generation_ != generation; });
    if (!last_error_.ok()) return last_error_;
    return token_;
  }
  fetching_ = true;
  lock.unlock();
  Result<AccessToken> fetched = fetch_();
  TimePoint arrived = clock_();
  lock.lock();
  fetching_ = false;
  generation_++;
  fetched_.notify_all();
  if (!fetched.ok()) {
    stats_.failures++;
    last_error_ = fetched.status();
    if (!token_.empty()) next_try_ = std::min<TimePoint>(arrived + kRetryAfterFailure, expires_at_);
    return last_error_;
  }
  seconds lifetime = std::max(fetched.value().lifetime, seconds(0));
  token_ = std::move(fetched.value().token);
  expires_at_ = arrived + lifetime;
  refresh_at_ = expires_at_ - RefreshMargin(lifetime);
  next_try_ = TimePoint{};
  last_error_ = Status::Ok();
  stats_.fetches++;
  if (forced) stats_.forced_refreshes++;
  return token_;
}

TokenStats TokenCredential::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// --- EntraConfig -------------------------------------------------------------------------------

Result<EntraConfig> EntraConfig::FromEnvironment() {
  auto env = [](const char* name) -> std::string {
    const char* v = EnvValue(name);
    return v ? Trim(v) : "";
  };
  EntraConfig c;
  c.tenant_id = env("AZURE_TENANT_ID");
  c.client_id = env("AZURE_CLIENT_ID");
  c.client_secret = env("AZURE_CLIENT_SECRET");
  c.token_file = env("AZURE_FEDERATED_TOKEN_FILE");
  if (!c.client_secret.empty() || !c.token_file.empty()) {
    c.kind = c.client_secret.empty() ? Kind::kWorkloadIdentity : Kind::kClientSecret;
    const char* set = c.client_secret.empty() ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET";
    for (const auto& [name, value] : {std::pair{"AZURE_TENANT_ID", c.tenant_id}, {"AZURE_CLIENT_ID", c.client_id}}) {
      if (value.empty()) {
        return Status::InvalidArgument(std::string(set) + " is set but " + name +
                                       " is not: an Entra ID app needs AZURE_TENANT_ID and AZURE_CLIENT_ID");
      }
    }
    std::string authority = env("AZURE_AUTHORITY_HOST");
    if (authority.empty()) authority = kDefaultAuthority;
    if (authority.find("://") == std::string::npos) authority = "https://" + authority;
    c.authority = StripSlashes(authority);
    auto [scheme, host] = SchemeAndHost(c.authority);
    if (scheme != "https" && !(scheme == "http" && IsLoopback(host))) {
      return Status::InvalidArgument("AZURE_AUTHORITY_HOST=" + c.authority +
                                     " must be https (plain http only to a loopback address)");
    }
    return c;
  }
  std::string endpoint = env("IDENTITY_ENDPOINT");
  if (!endpoint.empty()) {
    c.identity_header = env("IDENTITY_HEADER");
    if (c.identity_header.empty()) {
      return Status::InvalidArgument(
          "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not: the managed identity endpoint of "
          "App Service and Container Apps needs both");
    }
    c.kind = Kind::kAppService;
    c.endpoint = endpoint;
    return c;
  }
  c.kind = Kind::kImds;
  std::string imds = env("AZURE_POD_IDENTITY_AUTHORITY_HOST");
  c.endpoint = StripSlashes(imds.empty() ? kImdsAddress : imds);
  return c;
}

std::string EntraConfig::Describe() const {
  std::string user_assigned = client_id.empty() ? "" : ", AZURE_CLIENT_ID=" + client_id;
  switch (kind) {
    case Kind::kClientSecret:
      return "client secret (AZURE_CLIENT_ID=" + client_id + ", AZURE_TENANT_ID=" + tenant_id +
             ", AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST=" + authority + ")";
    case Kind::kWorkloadIdentity:
      return "workload identity (AZURE_CLIENT_ID=" + client_id + ", AZURE_TENANT_ID=" + tenant_id +
             ", AZURE_FEDERATED_TOKEN_FILE=" + token_file + ", AZURE_AUTHORITY_HOST=" + authority + ")";
    case Kind::kAppService:
      return "managed identity (IDENTITY_ENDPOINT=" + endpoint + ", IDENTITY_HEADER" + user_assigned + ")";
    case Kind::kImds:
      return "managed identity (IMDS at " + endpoint + user_assigned + ")";
  }
  return "";
}

std::string EntraConfig::Hint() const {
  switch (kind) {
    case Kind::kClientSecret:
      return "check AZURE_CLIENT_SECRET (the secret's value, not its id, and not expired), "
             "AZURE_CLIENT_ID (the app's client id) and AZURE_TENANT_ID";
    case Kind::kWorkloadIdentity:
      return "check that the app AZURE_CLIENT_ID has a federated credential whose issuer is the "
             "cluster's OIDC issuer and whose subject is the pod's service account "
             "(system:serviceaccount:NAMESPACE:NAME), and that AZURE_FEDERATED_TOKEN_FILE is that "
             "service account's projected token";
    case Kind::kAppService:
      return "check that a managed identity is assigned to the app (and with several, that "
             "AZURE_CLIENT_ID names one of them)";
    case Kind::kImds:
      return "IMDS answers only on Azure VMs and node pools: check that a managed identity is "
             "assigned to the VM or node pool (with several user-assigned ones, set AZURE_CLIENT_ID "
             "to the one to use); elsewhere set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, or "
             "AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE";
  }
  return "";
}

std::shared_ptr<TokenCredential> EntraCredential(const EntraConfig& config) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<TokenCredential>> credentials;  // Guarded by mu.
  std::string key = std::to_string(static_cast<int>(config.kind));
  for (const std::string* part : {&config.tenant_id, &config.client_id, &config.client_secret,
                                  &config.token_file, &config.authority, &config.endpoint,
                                  &config.identity_header}) {
    key += '\n' + *part;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = credentials[key];
  if (!slot) {
    auto fetcher = std::make_shared<EntraFetcher>(config);
    slot = std::make_shared<TokenCredential>(config.Describe(), [fetcher] { return fetcher->Fetch(); });
  }
  return slot;
}

std::string DescribeTokenError(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto text = [](const nlohmann::json& o, const char* name) -> std::string {
    auto it = o.find(name);
    return it != o.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto error = j.find("error");
  if (error != j.end() && error->is_object()) {  // {"error": {"code", "message"}}
    return http::ErrorDetail(text(*error, "code"), text(*error, "message"));
  }
  std::string description = text(j, "error_description");
  if (description.empty()) description = text(j, "message");  // App Service
  return http::ErrorDetail(text(j, "error"), description);
}

}  // namespace shoal
