#include "testing/shoald.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/strings.h"
#include "net/http_client.h"
#include "net/node_protocol.h"
#include "testing/servers_environment.h"

namespace shoal::testing {

Status Shoald::Start(int proxy_port, const std::vector<std::string>& extra, const std::string& data_dir) {
  extra_ = extra;
  data_dir_ = data_dir.empty() ? dir_.path() + "/data" : data_dir;
  std::vector<std::string> args = {BinaryDir() + "/bin/shoald", "--data-dir", data_dir_, "--port-file",
                                   dir_.path() + "/port"};
  if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
    args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  }
  if (std::find(extra.begin(), extra.end(), "--capacity") == extra.end()) {
    args.insert(args.end(), {"--capacity", "2GiB"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  auto env = Servers().azurite.ClientEnv(proxy_port);
  for (const auto& [k, v] : env_) env[k] = v;
  if (!proc_.Start(args, env, dir_.path() + "/log")) {
    return Status::IOError("could not start shoald");
  }
  for (int i = 0; i < 400 && port_ == 0 && proc_.running(); i++) {  // until it listens, or exits
    std::ifstream in(dir_.path() + "/port");
    if (!(in >> port_)) port_ = 0;
    if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port_ == 0) return Status::Unavailable("shoald did not start; log: " + Log());
  return Status::Ok();
}

Status Shoald::Restart(int proxy_port) {
  proc_.Kill();
  std::filesystem::remove(dir_.path() + "/port");
  port_ = 0;
  return Start(proxy_port, extra_, data_dir_);
}

Status Shoald::RestartGracefully(int proxy_port) {
  const int code = proc_.Terminate(std::chrono::seconds(30));
  if (code != 0) {
    return Status::IOError("shoald did not end by itself within 30 s of SIGTERM (exit code " + std::to_string(code) +
                            ", -1: killed): an orderly stop that needs a kill is a crash; log: " + Log());
  }
  return StartAgain(proxy_port);
}

Status Shoald::StartAgain(int proxy_port) {
  std::filesystem::remove(dir_.path() + "/port");
  port_ = 0;
  return Start(proxy_port, extra_, data_dir_);
}

int Shoald::Connect() const {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

std::string Shoald::Log() const {
  std::ifstream in(dir_.path() + "/log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, uint64_t> NodeMetrics(const std::string& endpoint) {
  auto r = RunCommand({"curl", "-sS", "--max-time", "10", "http://" + endpoint + "/metrics"});
  std::map<std::string, uint64_t> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    size_t space = line.find(' ');
    if (line.empty() || line[0] == '#' || space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stoull(line.substr(space + 1));
  }
  return out;
}

uint64_t NodeMetric(const std::string& endpoint, const std::string& name) {
  auto all = NodeMetrics(endpoint);
  auto it = all.find(name);
  return it == all.end() ? UINT64_MAX : it->second;
}

Status PutThroughNode(const std::string& endpoint, const std::string& url, std::string_view body,
                      const ObjectMeta& meta) {
  http::Client client;
  http::Request req =
      proto::NodeRequest("PUT", endpoint, proto::Target(proto::kObjectPath, {{proto::kUrlParam, url}}), "");
  for (auto& h : proto::MetaHeaders(meta)) req.headers.push_back(std::move(h));
  req.body = body;
  http::Response resp;
  SHOAL_RETURN_IF_ERROR(client.Send(req, &resp));
  if (resp.status != 201) return Status::IOError("PUT " + url + ": " + std::to_string(resp.status) + " " + resp.body);
  return Status::Ok();
}

namespace {
Result<http::Response> HeadThroughNode(const std::string& endpoint, const std::string& url) {
  http::Client client;
  http::Request req =
      proto::NodeRequest("HEAD", endpoint, proto::Target(proto::kObjectPath, {{proto::kUrlParam, url}}), "");
  http::Response resp;
  SHOAL_RETURN_IF_ERROR(client.Send(req, &resp));
  if (resp.status != 200) {
    return Status::IOError("HEAD " + url + ": " + std::to_string(resp.status) + " " + resp.Header(proto::kMessageHeader));
  }
  return resp;
}
}  // namespace

Result<ObjectMeta> MetaThroughNode(const std::string& endpoint, const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, HeadThroughNode(endpoint, url));
  return proto::MetaOfAnswer(resp);
}

Result<std::string> EtagThroughNode(const std::string& endpoint, const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(http::Response resp, HeadThroughNode(endpoint, url));
  std::string etag = Unquote(resp.Header("ETag"));
  if (etag.empty()) return Status::IOError("HEAD " + url + " through " + endpoint + ": no ETag");
  return etag;
}

bool WaitUntilDurable(const std::string& endpoint, std::chrono::seconds limit, const std::string& token) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<std::string> curl = {"curl", "-sS", "--max-time", "10", "http://" + endpoint + "/v1/pending"};
  if (!token.empty()) curl.insert(curl.end(), {"-H", "Authorization: Bearer " + token});
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = RunCommand(curl);
    if (r.exit_code == 0 && r.out.find("\"objects\":0") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

std::string ShoalBinary() { return BinaryDir() + "/bin/shoal"; }

std::string FaultFsLibrary() { return BinaryDir() + "/lib/libshoal_faultfs.so"; }

namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rebuilds directory record `key` (DEV-INO) as `out`.
Status RebuildDirectory(const std::string& records, const std::string& key, const std::string& out) {
  std::error_code ec;
  std::filesystem::create_directory(out, ec);
  if (ec) return Status::IOError("cannot create " + out + ": " + ec.message());
  std::ifstream listing(records + "/dirs/" + key);
  std::string line;
  while (std::getline(listing, line)) {
    std::vector<std::string> fields;
    for (size_t at = 0;;) {
      size_t tab = line.find('\t', at);
      fields.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    if (fields.size() != 5) return Status::Corruption("bad directory record line: " + line);
    const std::string& name = fields[0];
    const std::string& entry = fields[1];
    if (fields[2] == "d") {
      SHOAL_RETURN_IF_ERROR(RebuildDirectory(records, entry, out + "/" + name));
      continue;
    }
    // The file (the inode the directory names) as its last sync left it: its bytes and size
    // are the inode's, durable by fsync or fdatasync of the file whether its directory was
    // synced before or after (a log appended to after its creation was synced). Never synced:
    // empty.
    std::string synced = ReadWhole(records + "/files/" + entry);
    size_t eol = synced.find('\n');
    std::string bytes;
    if (eol != std::string::npos) bytes = synced.substr(eol + 1);
    std::ofstream(out + "/" + name, std::ios::binary) << bytes;
  }
  return Status::Ok();
}

}  // namespace

Status PowerCutView(const std::string& root, const std::string& records, const std::string& out) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return Status::NotFound("no directory " + root);
  std::string key = std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino);
  if (!std::filesystem::exists(records + "/dirs/" + key)) {
    return Status::NotFound("nothing in " + root + " was made durable (no fsync of it recorded)");
  }
  return RebuildDirectory(records, key, out);
}

CommandResult CatThroughNode(const std::string& url, const std::string& endpoint, const std::string& extra) {
  std::string cmd = "set -o pipefail; '" + ShoalBinary() + "' cat --cache " + endpoint + " " + extra + " '" + url +
                    "' | sha256sum | cut -d' ' -f1";
  return RunCommand({"bash", "-c", cmd}, Servers().azurite.ClientEnv());
}

}  // namespace shoal::testing

namespace shoal::testing {

CommandResult Shoal(std::vector<std::string> args, const std::string& input) {
  args.insert(args.begin(), ShoalBinary());
  return RunCommand(args, Servers().azurite.ClientEnv(), input);
}

std::string CatSha256(const std::string& url, const std::string& endpoint) {
  auto r = CatThroughNode(url, endpoint);
  return r.exit_code == 0 ? Trim(r.out) : "cat failed: " + r.err;
}

}  // namespace shoal::testing
