#include "testing/servers.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "net/http_client.h"
#include "store/azure/azure_store.h"
#include "store/s3/s3_store.h"

namespace shoal::testing {
namespace {

constexpr const char* kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

// The end of a server's log, for a message.
std::string ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  return log.size() > 4000 ? "..." + log.substr(log.size() - 4000) : log;
}

Status StartAndWait(Subprocess* proc, const std::vector<std::string>& argv, int port,
                    const std::string& log, const std::string& what, const Env& env = {}) {
  if (!proc->Start(argv, env, log)) return Status::IOError("could not start " + what);
  if (!WaitForPort(port, std::chrono::seconds(60))) {
    proc->Stop();
    return Status::Unavailable(what + " did not listen on port " + std::to_string(port) +
                               " within 60 s; its log:\n" + ReadLog(log));
  }
  return Status::Ok();
}

std::string Missing(const std::string& tool) {
  return tool + " is not installed in testenv/node_modules: run `make deps`";
}

}  // namespace

std::string NodeTool(const std::string& name) {
  std::string path = SourceDir() + "/testenv/node_modules/.bin/" + name;
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

Result<ObjectMeta> SdkObjectMeta(const std::string& sdk, const std::string& bucket,
                                 const std::string& key, const Env& env) {
  CommandResult r = RunCommand(
      {"node", SourceDir() + "/tests/sdk_interop.js", sdk + "-meta", bucket, key, "-"}, env);
  if (r.exit_code != 0) return Status::IOError(sdk + " SDK reading the metadata of " + key + ": " + r.err);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object()) return Status::IOError(sdk + " SDK: not JSON: " + r.out);
  ObjectMeta meta;
  for (const auto& f : kContentFields) meta.*f.member = j.value(std::string(f.name), "");
  meta.user = j.value("user", std::map<std::string, std::string>{});
  meta.user.erase(std::string(kWriteStampMeta));  // a node's upload stamp, as ObjectStore::Head takes it out
  return meta;
}

Result<TlsFiles> MakeSelfSignedCertificate(const std::string& dir, const std::string& alt_names) {
  TlsFiles tls{dir + "/cert.pem", dir + "/key.pem"};
  CommandResult r = RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-keyout", tls.key, "-out", tls.cert, "-days", "2", "-subj",
                                "/CN=127.0.0.1", "-addext", "subjectAltName=" + alt_names},
                               {}, "", std::chrono::seconds(60));
  if (r.exit_code != 0) {
    return Status::IOError("openssl could not make a certificate (is the openssl package "
                           "installed? `make deps-test`): " + r.err);
  }
  return tls;
}

Status Azurite::Start() { return Launch({}); }

Status Azurite::StartHttpsOAuth(const TlsFiles& tls) {
  https_ = true;
  return Launch({"--oauth", "basic", "--cert", tls.cert, "--key", tls.key});
}

Status Azurite::Launch(const std::vector<std::string>& extra) {
  std::string bin = NodeTool("azurite-blob");
  if (bin.empty()) return Status::NotFound(Missing("azurite"));
  for (int attempt = 0; attempt < 3; attempt++) {
    port_ = FreePort();
    std::vector<std::string> argv = {bin, "--blobHost", "127.0.0.1", "--blobPort", std::to_string(port_),
                                     "--location", dir_.path(), "--silent", "--skipApiVersionCheck",
                                     "--loose", "--disableTelemetry"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Status st = StartAndWait(&proc_, argv, port_, dir_.path() + "/azurite.log", "azurite");
    if (st.ok()) return st;
  }
  return Status::Unavailable("azurite did not start; see " + dir_.path() + "/azurite.log");
}

std::string Azurite::Endpoint(int via_port) const {
  return std::string(https_ ? "https" : "http") + "://127.0.0.1:" +
         std::to_string(via_port ? via_port : port_) + "/devstoreaccount1";
}

std::string Azurite::ConnectionString(int via_port) const {
  return std::string("DefaultEndpointsProtocol=") + (https_ ? "https" : "http") +
         ";AccountName=devstoreaccount1;AccountKey=" + kDevKey + ";BlobEndpoint=" +
         Endpoint(via_port) + ";";
}

Env Azurite::ClientEnv(int via_port) const {
  return {{"AZURE_STORAGE_CONNECTION_STRING", ConnectionString(via_port)}};
}

std::shared_ptr<ObjectStore> Azurite::Store(const std::string& container, int via_port) const {
  auto config = AzureConfig::FromConnectionString(ConnectionString(via_port), "test");
  return NewAzureStore(config.value(), container);
}

Status S3rver::Start() {
  if (NodeTool("s3rver").empty()) return Status::NotFound(Missing("s3rver"));
  // s3rver with ListParts added (src/testing/s3rver.js), in pages of at most 2 parts, so that
  // a resumed upload of a few parts reads several pages (S3's own pages hold 1,000).
  const std::string script = SourceDir() + "/src/testing/s3rver.js";
  for (int attempt = 0; attempt < 3; attempt++) {
    port_ = FreePort();
    Status st = StartAndWait(&proc_,
                             {"node", script, "--directory", DataDir(), "--address", "127.0.0.1", "--port",
                              std::to_string(port_), "--silent", "--list-parts-page", "2"},
                             port_, dir_.path() + "/s3rver.log", "s3rver",
                             // s3rver's ListObjectsV2 continuation tokens use DES, which
                             // OpenSSL 3 only offers through its legacy provider.
                             {{"NODE_OPTIONS", "--openssl-legacy-provider"}});
    if (st.ok()) return st;
  }
  return Status::Unavailable("s3rver did not start");
}

std::string S3rver::Endpoint(int via_port) const {
  return "http://127.0.0.1:" + std::to_string(via_port ? via_port : port_);
}

Env S3rver::ClientEnv(int via_port) const {
  return {{"AWS_ACCESS_KEY_ID", "S3RVER"},
          {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
          {"AWS_REGION", "us-east-1"},
          {"AWS_ENDPOINT_URL", Endpoint(via_port)}};
}

int S3rver::OpenUploads(const std::string& bucket) const {
  std::error_code ec;
  std::string dir = UploadsDir(bucket);
  if (!std::filesystem::exists(dir, ec)) return ec ? -1 : 0;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    n += it->is_directory();
  }
  return ec ? -1 : n;
}

std::shared_ptr<ObjectStore> S3rver::Store(const std::string& bucket, int via_port) const {
  S3Config c;
  c.access_key = "S3RVER";
  c.secret_key = "S3RVER";
  c.endpoint = Endpoint(via_port);
  c.source = "test";
  return NewS3Store(c, bucket);
}

namespace {
nlohmann::json ToJson(const FaultConfig& c) {
  nlohmann::json codes = nlohmann::json::array();
  std::stringstream ss(c.error_codes);
  std::string code;
  while (std::getline(ss, code, ',')) codes.push_back(std::stoi(code));
  nlohmann::json j = {{"latencyMs", c.latency_ms}, {"bandwidth", c.bandwidth},
                      {"errorRate", c.error_rate},  {"errorCodes", codes},
                      {"dropRate", c.drop_rate}};
  nlohmann::json methods = nlohmann::json::array();
  std::stringstream ms(c.error_methods);
  for (std::string m; std::getline(ms, m, ',');) {
    if (!m.empty()) methods.push_back(m);
  }
  j["errorMethods"] = methods;
  j["retryAfter"] = c.retry_after >= 0 ? nlohmann::json(c.retry_after) : nlohmann::json(nullptr);
  if (c.seed >= 0) j["seed"] = c.seed;
  j["errorFirst"] = c.error_first;
  return j;
}

// A JSON call to a test server's control endpoint (the fault proxy's, the token server's).
Result<std::string> ControlCall(int port, const std::string& method, const std::string& path,
                                const std::string& body, const std::string& scheme = "http") {
  http::Client client;
  http::Request req;
  req.method = method;
  req.url = scheme + "://127.0.0.1:" + std::to_string(port) + path;
  req.body = body;
  if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
  http::Response resp;
  SHOAL_RETURN_IF_ERROR(client.Send(req, &resp));
  if (resp.status != 200) {
    return Status::IOError("control call " + path + ": HTTP " + std::to_string(resp.status) + " " + resp.body);
  }
  return resp.body;
}

Status ControlPost(int port, const std::string& path, const std::string& body, const std::string& scheme = "http") {
  auto r = ControlCall(port, "POST", path, body, scheme);
  return r.ok() ? Status::Ok() : r.status();
}

// A control endpoint's JSON answer to a GET; `what` names it in errors.
Result<nlohmann::json> ControlJson(int port, const std::string& path, const std::string& what,
                                   const std::string& scheme = "http") {
  SHOAL_ASSIGN_OR_RETURN(std::string body, ControlCall(port, "GET", path, "", scheme));
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::IOError(what + " are not JSON: " + body);
  return j;
}

// Starts `node script args... --listen 127.0.0.1:0 --port-file F` with its log in `dir`, and
// reads the port it bound from F.
Result<int> StartNodeScript(Subprocess* proc, const std::string& script,
                            std::vector<std::string> args, const std::string& dir) {
  std::string path = SourceDir() + "/src/testing/" + script;
  std::string port_file = dir + "/port";
  std::string log = dir + "/" + script + ".log";
  args.insert(args.begin(), {"node", path});
  args.insert(args.end(), {"--listen", "127.0.0.1:0", "--port-file", port_file});
  if (!proc->Start(args, {}, log)) return Status::IOError("could not start node " + path);
  for (int i = 0; i < 300; i++) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return port;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Unavailable(script + " did not start; its log:\n" + ReadLog(log));
}
}  // namespace

Status FaultProxy::Start(const std::string& upstream, const FaultConfig& config) {
  SHOAL_ASSIGN_OR_RETURN(port_, StartNodeScript(&proc_, "fault_proxy.js", {"--upstream", upstream}, dir_.path()));
  return Configure(config);
}

Status FaultProxy::StartTls(const std::string& upstream, const TlsFiles& tls, const FaultConfig& config) {
  SHOAL_ASSIGN_OR_RETURN(port_, StartNodeScript(&proc_, "fault_proxy.js",
                                                {"--upstream", upstream, "--tls-cert", tls.cert, "--tls-key", tls.key,
                                                 "--ca", tls.cert},
                                                dir_.path()));
  scheme_ = "https";
  return Configure(config);
}

Status FaultProxy::Configure(const FaultConfig& config) {
  return ControlPost(port_, "/__proxy/config", ToJson(config).dump(), scheme_);
}

Result<ProxyStats> FaultProxy::Stats() {
  SHOAL_ASSIGN_OR_RETURN(nlohmann::json j, ControlJson(port_, "/__proxy/stats", "fault proxy stats", scheme_));
  ProxyStats s;
  s.requests = j.value("requests", 0ull);
  s.forwarded = j.value("forwarded", 0ull);
  s.injected_errors = j.value("injected_errors", 0ull);
  s.dropped = j.value("dropped", 0ull);
  s.upstream_response_bytes = j.value("upstream_response_bytes", 0ull);
  if (j.contains("by_method")) s.get_requests = j["by_method"].value("GET", 0ull);
  s.part_requests = j.value("part_requests", 0ull);
  s.part_body_bytes = j.value("part_body_bytes", 0ull);
  s.in_flight = j.value("in_flight", 0ull);
  s.most_in_flight = j.value("most_in_flight", 0ull);
  return s;
}

Status FaultProxy::Reset() { return ControlPost(port_, "/__proxy/reset", "{}", scheme_); }

Status TokenServer::Start(const TokenServerConfig& config) {
  SHOAL_ASSIGN_OR_RETURN(port_, StartNodeScript(&proc_, "token_server.js", {}, dir_.path()));
  return Configure(config);
}

Status TokenServer::Configure(const TokenServerConfig& c) {
  nlohmann::json j = {{"tenant", c.tenant},
                      {"clientId", c.client_id},
                      {"assertion", c.assertion},
                      {"secret", c.secret},
                      {"identityHeader", c.identity_header},
                      {"msiClientId", c.msi_client_id},
                      {"expiresIn", c.expires_in},
                      {"audience", c.audience},
                      {"revoked", c.revoked}};
  j["jwtLifetime"] = c.jwt_lifetime >= 0 ? nlohmann::json(c.jwt_lifetime) : nlohmann::json(nullptr);
  return ControlPost(port_, "/__control/config", j.dump());
}

Result<TokenServerStats> TokenServer::Stats() {
  SHOAL_ASSIGN_OR_RETURN(nlohmann::json j, ControlJson(port_, "/__control/stats", "token server stats"));
  TokenServerStats s;
  s.issued = j.value("issued", 0ull);
  s.refused = j.value("refused", 0ull);
  s.last_refusal = j.value("last_refusal", "");
  const nlohmann::json& by = j["by_source"];
  s.workload_identity = by.value("workload_identity", 0ull);
  s.client_secret = by.value("client_secret", 0ull);
  s.imds = by.value("imds", 0ull);
  s.app_service = by.value("app_service", 0ull);
  return s;
}

std::string TokenServer::Base() const { return "http://127.0.0.1:" + std::to_string(port_); }

namespace {

std::string EtcdBinary() {
  for (const char* path : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

}  // namespace

Status Etcd::Start() {
  if (EtcdBinary().empty()) {
    return Status::NotFound("etcd is not installed (no /usr/bin/etcd): run `make deps-test` or "
                            "`apt-get install etcd-server`");
  }
  static int count = 0;
  name_ = "shoal-test-" + std::to_string(getpid()) + "-" + std::to_string(count++);
  Status st;
  for (int attempt = 0; attempt < 3; attempt++) {
    port_ = FreePort();
    peer_port_ = FreePort();
    if (peer_port_ == port_) continue;
    st = Launch();
    if (st.ok()) return st;
  }
  return st;
}

Status Etcd::Restart() {
  proc_.Kill();
  return Launch();
}

std::string Etcd::Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

Status Etcd::Launch() {
  std::string client = Endpoint();
  std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::string log = dir_.path() + "/etcd.log";
  if (!proc_.Start({EtcdBinary(), "--name", name_, "--data-dir", dir_.path() + "/data",
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", name_ + "=" + peer, "--initial-cluster-state", "new",
                    "--heartbeat-interval", "50", "--election-timeout", "250",
                    "--log-level", "warn"},
                   {}, log)) {
    return Status::IOError("could not start etcd");
  }
  // Ready when /health says so: the member has a leader (itself) and serves requests.
  http::Client http;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && proc_.running()) {
    http::Request req;
    req.url = client + "/health";
    req.timeout = std::chrono::seconds(2);
    http::Response resp;
    if (http.Send(req, &resp).ok() && resp.status == 200 &&
        resp.body.find("\"true\"") != std::string::npos) {
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  proc_.Kill();
  return Status::Unavailable("etcd did not become healthy at " + client +
                             " within 30 s; its log:\n" + ReadLog(log));
}

}  // namespace shoal::testing
