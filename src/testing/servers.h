#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/object_store.h"
#include "testing/process.h"

namespace shoal::testing {

using Env = std::map<std::string, std::string>;

// A self-signed certificate for `alt_names` (its subjectAltName: "IP:127.0.0.1" by default,
// "DNS:name" for a name), made with the openssl command; `cert` is also the CA file a client is
// given (SHOAL_CA_FILE).
struct TlsFiles {
  std::string cert;  // PEM
  std::string key;   // PEM, unencrypted
};
Result<TlsFiles> MakeSelfSignedCertificate(const std::string& dir, const std::string& alt_names = "IP:127.0.0.1");

// An Azurite blob service on a free loopback port, with its data in a temp dir. Stopped (by
// PID) on destruction. Start() fails with a message saying how to install it.
class Azurite {
 public:
  Status Start();
  // Over HTTPS with `tls`, checking bearer tokens (--oauth basic: the claims aud, iss, nbf and
  // exp, not the signature); Shared Key and SAS work as well.
  Status StartHttpsOAuth(const TlsFiles& tls);
  int port() const { return port_; }
  // http://127.0.0.1:PORT/devstoreaccount1 (https:// when started so), or the same through
  // `via_port` (a proxy).
  std::string Endpoint(int via_port = 0) const;
  std::string ConnectionString(int via_port = 0) const;
  // AZURE_STORAGE_CONNECTION_STRING for a child process.
  Env ClientEnv(int via_port = 0) const;
  std::shared_ptr<ObjectStore> Store(const std::string& container, int via_port = 0) const;

 private:
  Status Launch(const std::vector<std::string>& extra);

  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
  bool https_ = false;
};

// An s3rver on a free loopback port (credentials S3RVER/S3RVER), with ListParts, which s3rver
// lacks, answered from its own store of the upload (src/testing/s3rver.js).
class S3rver {
 public:
  Status Start();
  int port() const { return port_; }
  std::string Endpoint(int via_port = 0) const;
  // AWS_* variables for a child process.
  Env ClientEnv(int via_port = 0) const;
  std::shared_ptr<ObjectStore> Store(const std::string& bucket, int via_port = 0) const;
  // Multipart uploads begun in `bucket` and neither completed nor aborted, as s3rver keeps
  // them: one directory each under BUCKET/._S3rver_uploads (it answers neither
  // ListMultipartUploads nor AbortMultipartUpload). -1 if that cannot be read.
  int OpenUploads(const std::string& bucket) const;
  // Where s3rver keeps its objects (it takes every directory in it for a bucket); its log is
  // beside it, in the same temporary directory.
  std::string DataDir() const { return dir_.path() + "/data"; }
  // Where s3rver keeps the open uploads of `bucket`: UPLOAD_ID/PART_NUMBER, and
  // PART_NUMBER.md5 once the part is whole.
  std::string UploadsDir(const std::string& bucket) const { return DataDir() + "/" + bucket + "/._S3rver_uploads"; }

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
};

// src/testing/fault_proxy.js in front of one upstream: latency, per-connection bandwidth,
// injected 503/429, connections dropped mid-body; counts what the upstream served.
struct FaultConfig {
  int latency_ms = 0;
  uint64_t bandwidth = 0;  // bytes/s per connection; 0 = unlimited
  double error_rate = 0;
  std::string error_codes = "503";
  std::string error_methods = "";  // "PUT,POST": errors only for these methods; "" = every method
  int retry_after = -1;    // seconds; <0: no Retry-After
  double drop_rate = 0;
  int seed = -1;           // >= 0: restart the proxy's fault sequence from this seed
  int error_first = 0;     // the next N requests (of error_methods) get an error whatever error_rate says
};

struct ProxyStats {
  uint64_t requests = 0;
  uint64_t forwarded = 0;
  uint64_t injected_errors = 0;
  uint64_t dropped = 0;
  uint64_t upstream_response_bytes = 0;  // body bytes the upstream sent
  uint64_t get_requests = 0;
  // Parts uploaded (S3 UploadPart, Azure Put Block) forwarded since the last Reset, and their
  // body bytes passed on to the store: a request older than the Reset never counts.
  uint64_t part_requests = 0;
  uint64_t part_body_bytes = 0;
  uint64_t in_flight = 0;  // requests forwarded whose answer has not ended (never reset)
  uint64_t most_in_flight = 0;  // the most of them at once since the last Reset
};

class FaultProxy {
 public:
  Status Start(const std::string& upstream, const FaultConfig& config = {});
  // Serving HTTPS with `tls` (its control endpoints too: the caller trusts tls.cert, as
  // SHOAL_CA_FILE), and trusting tls.cert for an https:// upstream.
  Status StartTls(const std::string& upstream, const TlsFiles& tls, const FaultConfig& config = {});
  int port() const { return port_; }
  Status Configure(const FaultConfig& config);
  Result<ProxyStats> Stats();
  Status Reset();

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
  std::string scheme_ = "http";
};

// src/testing/token_server.js: an Entra ID token endpoint (client credentials with a federated
// assertion or a secret), IMDS and App Service's managed identity endpoint, all on one loopback
// port; it checks what each request presents and counts the tokens it issues.
struct TokenServerConfig {
  std::string tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  std::string client_id;        // the app of workload identity and client secrets
  std::string assertion;        // the federated token it accepts
  std::string secret;           // the client secret it accepts
  std::string identity_header;  // App Service's X-IDENTITY-HEADER
  std::string msi_client_id;    // the user-assigned identity it serves; "": system-assigned
  int expires_in = 3600;        // what the answers say
  int jwt_lifetime = -1;        // the tokens' exp claim minus now; <0: expires_in
  std::string audience = "https://storage.azure.com";
  bool revoked = false;         // refuse every request
};

struct TokenServerStats {
  uint64_t issued = 0;
  uint64_t refused = 0;
  uint64_t workload_identity = 0, client_secret = 0, imds = 0, app_service = 0;  // issued by way
  std::string last_refusal;  // "AADSTS70021", "Identity not found", ...
};

class TokenServer {
 public:
  Status Start(const TokenServerConfig& config);
  Status Configure(const TokenServerConfig& config);
  Result<TokenServerStats> Stats();
  // http://127.0.0.1:PORT: AZURE_AUTHORITY_HOST and AZURE_POD_IDENTITY_AUTHORITY_HOST.
  std::string Base() const;
  // IDENTITY_ENDPOINT.
  std::string AppServiceEndpoint() const { return Base() + "/msi/token"; }

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
};

// A single-node etcd (Debian's etcd-server) on free loopback client and peer ports, with its
// data in a temp dir. Stopped (by PID) on destruction. Start() fails with a message saying how
// to install it. Short heartbeat and election times, so a lease may be as short as 1 s.
class Etcd {
 public:
  Status Start();
  // Kills it (SIGKILL, as a crash) and starts it again on the same ports and data.
  Status Restart();
  void Kill() { proc_.Kill(); }
  int port() const { return port_; }
  std::string Endpoint() const;  // http://127.0.0.1:PORT

 private:
  Status Launch();

  TempDir dir_;
  Subprocess proc_;
  std::string name_;
  int port_ = 0;
  int peer_port_ = 0;
};

// Path of a tool in testenv/node_modules/.bin, or "" if it is not installed.
std::string NodeTool(const std::string& name);

// The content headers and user metadata of object `key` in `bucket` as the official SDK of
// `sdk` ("azure": @azure/storage-blob's getProperties, "s3": @aws-sdk/client-s3's
// HeadObject) reads them, through tests/sdk_interop.js with the credentials in `env`. The
// stamp a node stores with each object it uploads (kWriteStampMeta) is left out, as
// ObjectStore::Head leaves it out of the metadata.
Result<ObjectMeta> SdkObjectMeta(const std::string& sdk, const std::string& bucket,
                                 const std::string& key, const Env& env);

}  // namespace shoal::testing
