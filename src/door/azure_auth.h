#pragma once

// Azure Blob authentication, verified as Azure Storage does it, against the door's own keys:
// Shared Key (Authorization: SharedKey ACCOUNT:SIGNATURE) and shared access signatures
// (service SAS for a blob or a container, account SAS).
//
// How a server uses it, per request to /ACCOUNT/CONTAINER[/BLOB]:
//   1. Fill a RequestView (method, raw path and query, headers, client IP, TLS or not).
//   2. auto p = VerifyAzure(view, credentials, options, time(nullptr));
//      if (!p.ok()) -> answer p.error().http_status(), header x-ms-error-code: p.error().name(),
//      body RenderAzureError(p.error(), request_id, now).
//   3. AuthorizeAzure(*p, container, key_path, op) with the operation's permission (Get Blob:
//      kRead; List Blobs: kList with the listing's prefix as key_path; Put Blob/Block/Block
//      List, Set Metadata: kWrite; Delete Blob: kDelete; Create Container: kCreate).
// The body is not signed by either scheme (Content-MD5/x-ms-content-crc64 are the server's).
// Nothing here blocks or does I/O; thread-safe (no shared state).

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "door/credentials.h"
#include "door/request.h"

namespace shoal::door {

enum class AzureErrorCode : uint8_t {
  kAuthenticationFailed,               // 403: bad signature, expired/not yet valid, malformed
  kAuthorizationFailure,               // 403: the key's scopes do not cover the container/prefix
  kAuthorizationPermissionMismatch,    // 403: the SAS (or a read-only key) lacks the permission
  kAuthorizationProtocolMismatch,      // 403: spr=https over plain HTTP
  kAuthorizationResourceTypeMismatch,  // 403: account SAS srt lacks the resource type
  kAuthorizationServiceMismatch,       // 403: account SAS ss lacks b (blob)
  kAuthorizationSourceIPMismatch,      // 403: the client is outside sip
  kNoAuthenticationInformation,        // 401: neither Authorization nor a SAS
};

struct AzureError {
  AzureErrorCode code;
  std::string message;
  std::string detail;  // AuthenticationErrorDetail (kAuthenticationFailed), else empty

  const char* name() const;  // "AuthenticationFailed": also the x-ms-error-code header
  int http_status() const;
};

// Azure's XML error body: <Error><Code/><Message>...\nRequestId:..\nTime:..</Message>
// [<AuthenticationErrorDetail/>]</Error>.
std::string RenderAzureError(const AzureError& error, std::string_view request_id,
                             std::time_t now);

enum class AzureAuthKind : uint8_t { kSharedKey, kServiceSas, kAccountSas };

struct AzurePrincipal {
  std::shared_ptr<const AccessKey> key;
  AzureAuthKind kind = AzureAuthKind::kSharedKey;
  std::string account;      // the path's first segment
  std::string container;    // the second ("" for service-level requests), decoded
  std::string blob;         // the rest, decoded ("" for container-level requests)
  std::string permissions;  // a SAS's sp ("rl", "racwd"...); "" for Shared Key
};

struct AzureVerifyOptions {
  int64_t max_skew_seconds = 900;  // Shared Key: x-ms-date (or Date) this close to now
};

// Verifies Shared Key or the SAS in the query as of `now`: the signature; for a SAS also st,
// se, sip against client_ip and spr against is_tls, and for an account SAS ss and srt.
Verdict<AzurePrincipal, AzureError> VerifyAzure(const RequestView& request,
                                                const Credentials& credentials,
                                                const AzureVerifyOptions& options,
                                                std::time_t now);

// What an operation needs: a SAS must carry the letter; the key's scopes must allow read
// (kRead, kList) or write (the others).
enum class AzureOp : char {
  kRead = 'r',
  kList = 'l',
  kWrite = 'w',
  kCreate = 'c',
  kAdd = 'a',
  kDelete = 'd',
};
std::optional<AzureError> AuthorizeAzure(const AzurePrincipal& principal,
                                         std::string_view container, std::string_view key_path,
                                         AzureOp op);

}  // namespace shoal::door
