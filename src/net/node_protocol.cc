#include "net/node_protocol.h"

#include <algorithm>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace shoal::proto {

int HttpStatusOf(Code code) {
  for (const CodeRow& row : kCodeTable) {
    if (row.code == code) return row.http_status;
  }
  return 500;
}

std::optional<Code> CodeFromName(std::string_view name) {
  for (const CodeRow& row : kCodeTable) {
    if (name == CodeName(row.code)) return row.code;
  }
  return std::nullopt;
}

std::optional<Code> CodeFromHttpStatus(int http_status) {
  std::optional<Code> found;
  for (const CodeRow& row : kCodeTable) {
    if (row.http_status != http_status) continue;
    if (found) return std::nullopt;  // shared by several codes: the status alone cannot say
    found = row.code;
  }
  return found;
}

std::optional<Code> CodeOfAnswer(const http::Response& resp) {
  std::optional<Code> named;
  if (!resp.body.empty() && resp.body.front() == '{') {
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    auto field = std::string(kCodeField);
    if (j.is_object() && j.contains(field) && j[field].is_string()) {
      named = CodeFromName(j[field].get<std::string>());
    }
  }
  if (!named) named = CodeFromName(resp.Header(kErrorHeader));
  if (!named) named = CodeFromHttpStatus(static_cast<int>(resp.status));
  return named;
}

std::string Target(std::string_view path,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> params) {
  return Target(path, std::vector<std::pair<std::string_view, std::string_view>>(params));
}

std::string Target(std::string_view path, const std::vector<std::pair<std::string_view, std::string_view>>& params) {
  std::string target(path);
  char sep = '?';
  for (const auto& [name, value] : params) {
    target += sep;
    target += name;
    target += '=';
    target += UriEncode(value, false);
    sep = '&';
  }
  return target;
}

namespace {
std::mutex tls_mu;
NodeTls tls_settings;  // guarded by tls_mu
}  // namespace

Status CheckTlsName(std::string_view named_by, std::string_view name) {
  const bool dns = !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if (dns) return Status::Ok();
  return Status::InvalidArgument(std::string(named_by) + std::string(name) +
                                 " is not a DNS name (letters, digits, '-' and '.')");
}

void SetNodeTls(NodeTls tls) {
  std::lock_guard<std::mutex> lock(tls_mu);
  tls_settings = std::move(tls);
}

NodeTls GetNodeTls() {
  std::lock_guard<std::mutex> lock(tls_mu);
  return tls_settings;
}

http::Request NodeRequest(std::string_view method, std::string_view endpoint, std::string_view target,
                          const std::string& token) {
  http::Request req;
  req.method = std::string(method);
  if (IsUnixEndpoint(endpoint)) {
    req.unix_socket = std::string(endpoint.substr(kUnixPrefix.size()));
    req.url = "http://localhost" + std::string(target);
  } else if (NodeTls tls = GetNodeTls(); tls.on) {
    if (tls.name.empty()) {
      req.url = "https://" + std::string(endpoint) + std::string(target);
    } else {  // the name at the endpoint's port, connected to the endpoint
      const size_t colon = endpoint.rfind(':');
      const std::string_view port = colon == std::string_view::npos ? std::string_view() : endpoint.substr(colon);
      req.url = "https://" + tls.name + std::string(port) + std::string(target);
      req.connect_to = std::string(endpoint);
    }
    req.ca_file = std::move(tls.ca_file);
    req.cert_file = std::move(tls.cert_file);
    req.key_file = std::move(tls.key_file);
  } else {
    req.url = "http://" + std::string(endpoint) + std::string(target);
  }
  if (!token.empty()) req.headers.push_back({std::string(kAuthorizationHeader), "Bearer " + token});
  return req;
}

std::string EndpointOf(const http::Request& req) {
  if (!req.unix_socket.empty()) return std::string(kUnixPrefix) + req.unix_socket;
  if (!req.connect_to.empty()) return req.connect_to;
  std::string_view url = req.url;
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  return std::string(url.substr(0, url.find('/')));
}

void SetVersion(http::Request* req, std::string_view etag, uint64_t size) {
  req->headers.push_back({std::string(kEtagHeader), std::string(etag)});
  req->headers.push_back({std::string(kSizeHeader), std::to_string(size)});
}

http::Request ChunkRequest(std::string_view endpoint, const std::string& token, const ChunkRead& read) {
  http::Request req = NodeRequest("GET", endpoint, Target(kObjectPath, {{kUrlParam, read.url}}), token);
  req.headers.push_back({"Range", "bytes=" + std::to_string(read.first) + "-" + std::to_string(read.last)});
  SetVersion(&req, read.etag, read.size);
  req.headers.push_back({std::string(kReadHeader), std::string(read.mode)});
  if (read.epoch != 0) req.headers.push_back({std::string(kEpochHeader), std::to_string(read.epoch)});
  return req;
}

std::string ReplicaChunkPath(std::string_view id, std::string_view url, uint64_t index) {
  return Target(kReplicaChunkPath, {{kIdParam, id}, {kIndexParam, std::to_string(index)}, {kUrlParam, url}});
}

namespace {
std::string CommitTarget(std::string_view path, const ReplicaCommit& c, std::string_view meta_bytes = "") {
  std::string size = std::to_string(c.size), chunk = std::to_string(c.chunk_size),
              created = std::to_string(c.created_unix_ms), begun = std::to_string(c.begun_unix_us);
  // An adopted copy is the adopter's own write: it names no incarnation of the origin.
  std::vector<std::pair<std::string_view, std::string_view>> params{
      {kIdParam, c.id},
      {kSizeParam, size},
      {kChunkSizeParam, chunk},
      {kCreatedParam, created},
      {kBegunParam, begun},
      {kOriginParam, c.origin},
      {c.adopt ? kAdoptParam : kIncarnationParam, c.adopt ? kFlagOn : c.incarnation}};
  if (!meta_bytes.empty()) params.emplace_back(kMetaParam, meta_bytes);
  params.emplace_back(kUrlParam, c.url);
  return Target(path, params);
}
}  // namespace

std::string ReplicaCommitPath(const ReplicaCommit& c) { return CommitTarget(kReplicaCommitPath, c); }

std::string ReplicaWholePath(const ReplicaCommit& c, uint64_t meta_bytes) {
  return CommitTarget(kReplicaWholePath, c, std::to_string(meta_bytes));
}

std::string ReplicaDropPath(std::string_view id, std::string_view url, uint64_t chunks, std::string_view stored) {
  if (!stored.empty()) {
    return Target(kReplicaDropPath,
                  {{kIdParam, id}, {kChunksParam, std::to_string(chunks)}, {kUrlParam, url}, {kStoredParam, stored}});
  }
  return Target(kReplicaDropPath, {{kIdParam, id}, {kChunksParam, std::to_string(chunks)}, {kUrlParam, url}});
}

namespace {
constexpr std::pair<Announcement::Change, std::string_view> kChanges[] = {
    {Announcement::Change::kPending, "pending"},
    {Announcement::Change::kDurable, "durable"},
    {Announcement::Change::kGone, "gone"},
};
}  // namespace

std::string AnnouncementBody(const Announcement& a) {
  std::string change;
  for (const auto& [c, name] : kChanges) {
    if (c == a.change) change = name;
  }
  nlohmann::json j = {{"change", change},   {"id", a.id},           {"url", a.url},
                      {"from", a.from},     {"size", a.size},       {"created", a.created_unix_ms},
                      {"modified", a.modified}, {"holders", a.holders}, {"stored_etag", a.stored_etag}};
  if (!a.meta.empty()) j["meta"] = a.meta;
  return j.dump();
}

std::string VersionAnswer(const Result<std::string>& resolved) {
  if (resolved.ok()) return nlohmann::json{{"state", "durable"}, {"etag", *resolved}}.dump();
  if (resolved.status().code() == Code::kUnavailable) return nlohmann::json{{"state", "pending"}}.dump();
  if (resolved.status().IsNotFound()) return nlohmann::json{{"state", "unknown"}}.dump();
  return "";
}

Result<std::string> ParseVersionAnswer(std::string_view body, const std::string& url, const std::string& version) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string state = j.is_object() ? j.value("state", std::string()) : "";
  if (state == "durable" && j.value("etag", nlohmann::json()).is_string()) return j["etag"].get<std::string>();
  if (state == "pending") return Status::Unavailable(url + " as " + version + " is not uploaded yet");
  if (state == "unknown") return Status::NotFound(url + " as " + version + " is not a write the cluster knows");
  return Status::IOError("a node's answer about " + url + " as " + version + " is not one: " +
                         std::string(body.substr(0, 200)));
}

Result<Announcement> ParseAnnouncement(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("an announcement is a JSON object");
  Announcement a;
  try {
    std::string change = j.at("change").get<std::string>();
    bool known = false;
    for (const auto& [c, name] : kChanges) {
      if (name == change) a.change = c, known = true;
    }
    if (!known) return Status::InvalidArgument("an announcement's change is pending, durable or gone, not " + change);
    a.id = j.at("id").get<std::string>();
    a.url = j.at("url").get<std::string>();
    a.from = j.at("from").get<std::string>();
    a.size = j.at("size").get<uint64_t>();
    a.created_unix_ms = j.at("created").get<int64_t>();
    a.modified = j.value("modified", int64_t{0});
    a.holders = j.value("holders", std::vector<std::string>{});
    a.stored_etag = j.value("stored_etag", std::string());
    if (j.contains("meta")) {
      a.meta = j["meta"].get<ObjectMeta>();
      SHOAL_RETURN_IF_ERROR(a.meta.Validate());
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("a malformed announcement: ") + e.what());
  }
  if (a.id.empty() || a.url.empty() || a.from.empty()) {
    return Status::InvalidArgument("an announcement names its write's id, URL and the node announcing it");
  }
  if (a.change == Announcement::Change::kPending && a.holders.empty()) {
    return Status::InvalidArgument("a pending write's announcement names the nodes holding it");
  }
  if (a.change == Announcement::Change::kDurable && a.stored_etag.empty()) {
    return Status::InvalidArgument("a durable write's announcement names its ETag in the store");
  }
  return a;
}

std::vector<std::pair<std::string, std::string>> MetaHeaders(const ObjectMeta& meta) {
  return shoal::MetaHeaders(meta, &ContentField::header, kMetaHeaderPrefix);
}

Result<ObjectMeta> MetaFromHeaders(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                                   std::string_view user_prefix) {
  ObjectMeta meta;
  const std::string prefix = ToLower(user_prefix);
  for (const auto& [name, value] : headers) {
    std::string lower = ToLower(name);
    std::string* field = nullptr;
    if (StartsWith(lower, prefix)) {
      std::string user = lower.substr(prefix.size());
      if (meta.user.count(user)) return Status::InvalidArgument("metadata '" + user + "' is given twice");
      field = &meta.user[user];
    } else {
      for (const auto& f : kContentFields) {
        if (lower != ToLower(f.header)) continue;
        field = &(meta.*f.member);
        if (!field->empty()) return Status::InvalidArgument(std::string(f.header) + " is given twice");
      }
    }
    if (field != nullptr) *field = std::string(value);
  }
  SHOAL_RETURN_IF_ERROR(meta.Validate());
  return meta;
}

Result<ObjectMeta> MetaOfAnswer(const http::Response& resp) {
  std::vector<std::pair<std::string_view, std::string_view>> headers(resp.headers.begin(), resp.headers.end());
  return MetaFromHeaders(headers);
}

std::string ReplicaCommitBody(const ObjectMeta& meta) {
  return meta.empty() ? std::string() : nlohmann::json(meta).dump();
}

Result<ObjectMeta> ParseReplicaCommitBody(std::string_view body) {
  if (body.empty()) return ObjectMeta{};
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("a replica commit's body is not the write's metadata as JSON");
  try {
    ObjectMeta meta = j.get<ObjectMeta>();
    SHOAL_RETURN_IF_ERROR(meta.Validate());
    return meta;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("a replica commit's metadata: ") + e.what());
  }
}

}  // namespace shoal::proto
