#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/object_store.h"

namespace shoal {

struct S3Config {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // optional (temporary credentials)
  std::string region = "us-east-1";
  std::string endpoint;       // custom endpoint ("http://127.0.0.1:4568"): path-style addressing
  std::string source;         // where the credentials came from, named in auth errors

  // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (or
  // AWS_DEFAULT_REGION), AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL.
  static Result<S3Config> FromEnvironment();
};

// Objects of one bucket: PutObject, multipart upload (parts >= 5 MiB; aborted when the upload
// fails, so no partial object is ever visible), ranged GetObject, HeadObject, ListObjectsV2
// with continuation, DeleteObject. Requests are signed with SigV4 (UNSIGNED-PAYLOAD).
std::shared_ptr<ObjectStore> NewS3Store(const S3Config& config, const std::string& bucket);

// SigV4 "Authorization" header value (exposed for tests). `canonical_uri` is the path as sent
// (percent-encoded once); `query` holds decoded parameters; `headers` are the headers to sign
// (host and x-amz-* at least), names in any case.
std::string SigV4Authorization(const S3Config& config, const std::string& method,
                               const std::string& canonical_uri,
                               const std::vector<std::pair<std::string, std::string>>& query,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               const std::string& payload_hash, std::time_t now,
                               const std::string& service = "s3");

}  // namespace shoal
