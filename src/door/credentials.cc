#include "door/credentials.h"

#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "door/request.h"

namespace shoal::door {

bool AccessKey::Allows(std::string_view bucket, std::string_view key_path, Access access) const {
  for (const Scope& s : scopes) {
    if (s.bucket != "*" && s.bucket != bucket) continue;
    if (access == Access::kWrite && s.access != Access::kWrite) continue;
    if (s.prefix.empty() || (!key_path.empty() && StartsWith(key_path, s.prefix))) return true;
  }
  return false;
}

namespace {

bool AllOf(std::string_view s, bool (*ok)(char)) {
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}
bool IsIdChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }
bool IsAzureChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsBucketChar(char c) { return IsIdChar(c); }

// A token's scope: an object URL (or prefix) split as the node matches requests, into the
// scheme and bucket ("az://data", "file://") and the key prefix; "*" is every object.
Result<Scope> ParseUrlScope(const std::string& url) {
  Scope scope;
  if (url == "*") {
    scope.bucket = "*";
    return scope;
  }
  const std::string hint = "' is not az://container[/PREFIX], s3://bucket[/PREFIX], file:///DIR or *";
  size_t sep = url.find("://");
  if (sep == std::string::npos) return Status::InvalidArgument("'" + url + hint);
  std::string scheme = url.substr(0, sep);
  std::string rest = url.substr(sep + 3);
  if (scheme == "file") {
    if (rest.empty() || rest[0] != '/') return Status::InvalidArgument("'" + url + hint);
    scope.bucket = "file://";
    scope.prefix = rest.substr(1);
    return scope;
  }
  if (scheme != "az" && scheme != "s3") return Status::InvalidArgument("'" + url + hint);
  size_t slash = rest.find('/');
  std::string bucket = rest.substr(0, slash);
  if (bucket.empty() || bucket[0] == '@') return Status::InvalidArgument("'" + url + hint);
  scope.bucket = scheme + "://" + bucket;
  if (slash != std::string::npos) scope.prefix = rest.substr(slash + 1);
  return scope;
}

Result<Credentials::Table> Parse(std::string_view text, const std::string& source) {
  Credentials::Table table;
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    line_no++;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream words(t);
    for (std::string w; words >> w;) f.push_back(w);
    auto bad = [&](int field, const std::string& what) {
      return Status::InvalidArgument(source + " line " + std::to_string(line_no) + " field " +
                                     std::to_string(field) + ": " + what +
                                     " (the form is: KIND ID SECRET NAME[/PREFIX]:read|read-write"
                                     " ..., KIND s3, azure or both; or token ID SECRET URL:read|read-write ...)");
    };
    auto key = std::make_shared<AccessKey>();
    if (f[0] == "s3") {
      key->s3 = true;
    } else if (f[0] == "azure") {
      key->azure = true;
    } else if (f[0] == "both") {
      key->s3 = key->azure = true;
    } else if (f[0] == "token") {
      key->node = true;
    } else {
      return bad(1, "kind '" + f[0] + "' is not s3, azure, both or token");
    }
    if (f.size() < 2) return bad(2, "the key id is missing");
    key->id = f[1];
    if (key->azure) {
      if (f[1].size() < 3 || f[1].size() > 24 || !AllOf(f[1], IsAzureChar)) {
        return bad(2, "the account name '" + f[1] + "' is not 3-24 lowercase letters and digits");
      }
    } else if (f[1].size() < 3 || f[1].size() > 128 || !AllOf(f[1], IsIdChar)) {
      return bad(2, "the access key id '" + f[1] +
                        "' is not 3-128 letters, digits, '-', '_' or '.'");
    }
    if (f.size() < 3) return bad(3, "the secret is missing");
    key->secret = f[2];
    if (key->node && key->secret.size() < 16) {
      return bad(3, "the secret of token '" + f[1] + "' is shorter than 16 characters (make one with: openssl rand -hex 24)");
    }
    if (key->azure) {
      auto decoded = Base64Decode(f[2]);
      size_t pad = f[2].find('=');
      bool strict = f[2].find_first_not_of(
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
                        std::string::npos &&
                    (pad == std::string::npos || (pad + 2 >= f[2].size() && pad > 0 &&
                                                  f[2].find_first_not_of('=', pad) == std::string::npos));
      if (!strict || !decoded.ok() || decoded->empty()) {
        return bad(3, "the key of '" + f[1] + "' is not base64 (an Azure account key is)");
      }
      key->azure_key = *decoded;
    }
    if (f.size() < 4) return bad(4, "no scope: a key needs at least one NAME[/PREFIX]:ACCESS");
    for (size_t i = 3; i < f.size(); i++) {
      const std::string& s = f[i];
      int field = static_cast<int>(i) + 1;
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) return bad(field, "scope '" + s + "' has no ':ACCESS'");
      Scope scope;
      std::string access = s.substr(colon + 1);
      if (access == "read") {
        scope.access = Access::kRead;
      } else if (access == "read-write") {
        scope.access = Access::kWrite;
      } else {
        return bad(field, "scope '" + s + "': access '" + access + "' is not read or read-write");
      }
      std::string target = s.substr(0, colon);
      if (key->node) {
        auto parsed = ParseUrlScope(target);
        if (!parsed.ok()) return bad(field, "scope '" + s + "': " + parsed.status().message());
        parsed->access = scope.access;
        key->scopes.push_back(std::move(parsed).value());
        continue;
      }
      size_t slash = target.find('/');
      scope.bucket = target.substr(0, slash);
      if (slash != std::string::npos) scope.prefix = target.substr(slash + 1);
      if (scope.bucket.empty() || (scope.bucket != "*" && !AllOf(scope.bucket, IsBucketChar))) {
        return bad(field, "scope '" + s + "': '" + scope.bucket +
                              "' is not a bucket or container name (or *)");
      }
      if (scope.bucket == "*" && !scope.prefix.empty()) {
        return bad(field, "scope '" + s + "': '*' (every bucket) takes no prefix");
      }
      key->scopes.push_back(std::move(scope));
    }
    std::string id = key->id;
    if (!table.emplace(id, std::move(key)).second) {
      return bad(2, "the id '" + id + "' appears twice; each key needs its own id");
    }
  }
  return table;
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::IOError("cannot read credentials file " + path + ": check it exists and is readable");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::IOError("error reading credentials file " + path);
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<Credentials>> Credentials::FromText(std::string_view text,
                                                           const std::string& source) {
  SHOAL_ASSIGN_OR_RETURN(Table t, Parse(text, source));
  return std::unique_ptr<Credentials>(
      new Credentials("", std::make_shared<const Table>(std::move(t))));
}

Result<std::unique_ptr<Credentials>> Credentials::Load(const std::string& path) {
  SHOAL_ASSIGN_OR_RETURN(std::string text, ReadWhole(path));
  SHOAL_ASSIGN_OR_RETURN(Table t, Parse(text, path));
  return std::unique_ptr<Credentials>(
      new Credentials(path, std::make_shared<const Table>(std::move(t))));
}

Status Credentials::Reload() {
  if (path_.empty()) return Status::InvalidArgument("these credentials were not read from a file");
  SHOAL_ASSIGN_OR_RETURN(std::string text, ReadWhole(path_));
  SHOAL_ASSIGN_OR_RETURN(Table t, Parse(text, path_));
  auto fresh = std::make_shared<const Table>(std::move(t));
  bool tokens = HasNodeTokens(*fresh);
  std::lock_guard<std::mutex> lock(mu_);
  table_ = std::move(fresh);
  node_tokens_ = tokens;
  return Status::Ok();
}

std::shared_ptr<const Credentials::Table> Credentials::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

std::shared_ptr<const AccessKey> Credentials::Find(std::string_view id) const {
  auto t = Snapshot();
  auto it = t->find(std::string(id));
  return it == t->end() ? nullptr : it->second;
}

bool Credentials::Allows(std::string_view id, std::string_view bucket, std::string_view key_path,
                         Access access) const {
  auto key = Find(id);
  return key != nullptr && key->Allows(bucket, key_path, access);
}

size_t Credentials::size() const { return Snapshot()->size(); }

bool Credentials::HasNodeTokens(const Table& table) {
  for (const auto& [id, key] : table) {
    if (key->node) return true;
  }
  return false;
}

bool Credentials::has_node_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return node_tokens_;
}

std::shared_ptr<const AccessKey> Credentials::FindNodeToken(std::string_view bearer) const {
  size_t colon = bearer.find(':');
  if (colon == std::string_view::npos) return nullptr;
  auto key = Find(bearer.substr(0, colon));
  if (key == nullptr || !key->node) return nullptr;
  return ConstantTimeEquals(bearer.substr(colon + 1), key->secret) ? key : nullptr;
}

}  // namespace shoal::door
