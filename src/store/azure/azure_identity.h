#pragma once

// Microsoft Entra ID access tokens for Azure Storage (Blob requests carry
// "Authorization: Bearer TOKEN"), from the same environment variables the Azure SDKs'
// DefaultAzureCredential and azcopy read. The sources, in the order they are chosen
// (docs/azure-identity.md):
//   1. client secret      AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
//   2. workload identity  AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE
//                         (the federated token, read again for every exchange: it rotates)
//      Both post to AZURE_AUTHORITY_HOST (default https://login.microsoftonline.com)
//      /TENANT/oauth2/v2.0/token with scope https://storage.azure.com/.default.
//   3. managed identity   IDENTITY_ENDPOINT with IDENTITY_HEADER (App Service, Container Apps,
//                         Arc), else the instance metadata service (IMDS) at
//                         http://169.254.169.254, or AZURE_POD_IDENTITY_AUTHORITY_HOST;
//                         AZURE_CLIENT_ID picks a user-assigned identity.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace shoal {

// A token as a token endpoint issued it.
struct AccessToken {
  std::string token;
  // How long it is valid from when it arrived (expires_in, or expires_on minus now); <= 0 when
  // the endpoint said it has already expired.
  std::chrono::seconds lifetime{0};
};

struct TokenStats {
  uint64_t fetches = 0;           // tokens fetched from the endpoint
  uint64_t failures = 0;          // fetches that failed
  uint64_t forced_refreshes = 0;  // fetches because the service refused a token (Refresh)
};

// Cached tokens of one source, refreshed before they expire.
//
// Policy: a token of lifetime L is used until min(L / 2, 5 min) before it expires; the first
// caller after that point fetches a new one while the others go on with the cached token,
// which is still valid. Callers that have no valid token (the first call, or after expiry or
// Refresh) wait for the one fetch in flight: there is never more than one fetch at a time.
// A failed fetch fails the callers that waited for it; when the cached token is still valid,
// callers keep getting it and the next fetch is tried no sooner than 5 s later (or at expiry).
// A token that arrives already expired is still handed to the callers that waited for it, once.
//
// Thread-safe. The fetch runs without the lock held.
class TokenCredential {
 public:
  using Fetch = std::function<Result<AccessToken>()>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `source` names where tokens come from in messages ("workload identity (AZURE_CLIENT_ID=…)").
  // `clock` is steady_clock::now unless a test passes its own.
  TokenCredential(std::string source, Fetch fetch, Clock clock = nullptr);

  // A valid token, from the cache or fetched; the fetch's error otherwise (kPermissionDenied
  // when the endpoint refused, kUnavailable when it could not be reached), naming the source.
  Result<std::string> Token();

  // The service refused `rejected` (a 401, or an expired token it caught before we did): drops
  // it and fetches a new one, unless the cache already holds a different token (another caller
  // refreshed meanwhile), which is returned as is. Counts one forced refresh per fetch.
  Result<std::string> Refresh(const std::string& rejected);

  const std::string& source() const { return source_; }
  TokenStats stats() const;

  // How long before expiry a token of `lifetime` is refreshed: min(lifetime / 2, 5 min).
  static std::chrono::steady_clock::duration RefreshMargin(std::chrono::seconds lifetime);

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Waits for or runs the fetch; `lock` is held on entry and on return.
  Result<std::string> FetchLocked(std::unique_lock<std::mutex>& lock, bool forced);

  const std::string source_;
  const Fetch fetch_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::condition_variable fetched_;
  std::string token_;         // "" when none. Guarded by mu_.
  TimePoint refresh_at_{};    // Guarded by mu_.
  TimePoint expires_at_{};    // Guarded by mu_.
  TimePoint next_try_{};      // no proactive fetch before this (after a failure). Guarded by mu_.
  bool fetching_ = false;     // Guarded by mu_.
  uint64_t generation_ = 0;   // fetches finished, good or bad. Guarded by mu_.
  Status last_error_;         // of the last finished fetch. Guarded by mu_.
  TokenStats stats_;          // Guarded by mu_.
};

// Where tokens come from, as read from the environment.
struct EntraConfig {
  enum class Kind { kClientSecret, kWorkloadIdentity, kAppService, kImds };
  Kind kind = Kind::kImds;
  std::string tenant_id;
  std::string client_id;      // the app (1, 2) or the user-assigned identity (3; may be empty)
  std::string client_secret;  // kClientSecret
  std::string token_file;     // kWorkloadIdentity: the federated token's file
  std::string authority;      // 1, 2: "https://login.microsoftonline.com", no trailing '/'
  std::string endpoint;       // kAppService: IDENTITY_ENDPOINT; kImds: "http://169.254.169.254"
  std::string identity_header;  // kAppService: IDENTITY_HEADER

  // The source chosen by the order above; kInvalidArgument, naming the variables, when one
  // is set but not its companions (AZURE_CLIENT_SECRET without AZURE_TENANT_ID...) or the
  // authority is plain http on a host that is not loopback. With none set: IMDS.
  static Result<EntraConfig> FromEnvironment();

  // "workload identity (AZURE_CLIENT_ID=…, AZURE_TENANT_ID=…, AZURE_FEDERATED_TOKEN_FILE=…,
  // AZURE_AUTHORITY_HOST=…)", never the secret.
  std::string Describe() const;
  // What to check when this source's endpoint refuses.
  std::string Hint() const;
};

// A credential that fetches from `config`'s endpoint. Credentials of equal configs are one
// object per process, so every store of the process shares one token cache.
std::shared_ptr<TokenCredential> EntraCredential(const EntraConfig& config);

// The error of a token endpoint's answer (Entra ID's {"error", "error_description"}, IMDS's,
// App Service's {"message"}), as http::ErrorDetail puts it: "invalid_client (AADSTS70021: No
// matching federated identity record found for presented assertion.)". Exposed for tests.
std::string DescribeTokenError(const std::string& body);

}  // namespace shoal
