#include "node/node_auth.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "door/request.h"
#include "net/node_protocol.h"
#include "node/request_parse.h"
#include "store/object_store.h"

namespace shoal::node {

namespace {

// An object URL split as token scopes are (door::Scope): "az://c", "s3://b" or "file://", and
// the key (or key prefix) in it.
Result<std::pair<std::string, std::string>> ScopeOf(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(url));
  if (u.scheme == "file") return std::make_pair(std::string("file://"), u.key);
  return std::make_pair(u.scheme + "://" + u.bucket, u.key);
}

}  // namespace

Need NeedOf(std::string_view method, std::string_view target) {
  Need need;
  std::string_view path = target.substr(0, target.find('?'));
  auto object = [&](door::Access access) {
    need.kind = Need::Kind::kObject;
    need.access = access;
    need.url = QueryParam(target, proto::kUrlParam);
    return need;
  };
  auto prefix = [&](door::Access access, std::string url) {
    need.kind = Need::Kind::kPrefix;
    need.access = access;
    need.url = std::move(url);
    return need;
  };
  if (path == proto::kObjectPath) {
    // A forwarded delete skips the member that holds the write: only members send it.
    if (method == "DELETE" && QueryParam(target, proto::kForwardedParam) == proto::kFlagOn) return need;  // kPeer
    return object(method == "GET" || method == "HEAD" ? door::Access::kRead : door::Access::kWrite);
  }
  if (path == proto::kWarmPath) return object(door::Access::kRead);
  if (path == proto::kVersionPath) {
    if (QueryParam(target, proto::kForwardedParam) == proto::kFlagOn) return need;  // kPeer: a member's hop
    return object(door::Access::kRead);
  }
  if (path == proto::kListPath) {
    // url=az://c[/prefix], or url=az://c&prefix=KEYPREFIX (listing.cc takes both).
    std::string url = QueryParam(target, proto::kUrlParam);
    std::string key_prefix = QueryParam(target, proto::kPrefixParam);
    if (!key_prefix.empty()) {
      auto parsed = ObjectUrl::Parse(url);
      if (parsed.ok()) url = parsed->WithKey(key_prefix).ToString();
    }
    return prefix(door::Access::kRead, url);
  }
  if (path == proto::kPendingPath) return prefix(door::Access::kRead, QueryParam(target, proto::kPrefixParam));
  if (path == proto::kCommitPath) {
    // The marker goes under PREFIX/ (Node::Commit adds the '/').
    std::string url = QueryParam(target, proto::kPrefixParam);
    auto parsed = ObjectUrl::Parse(url);
    if (parsed.ok() && !parsed->key.empty() && parsed->key.back() != '/') url += '/';
    return prefix(door::Access::kWrite, url);
  }
  if (path == proto::kClusterPath && method == "GET") {
    need.kind = Need::Kind::kAny;
    return need;
  }
  return need;  // kPeer
}

Status Authorize(const Caller& caller, const Need& need) {
  if (caller.peer) return Status::Ok();
  if (!caller.token) return Status::PermissionDenied("no token");
  const char* verb = need.access == door::Access::kWrite ? "write" : "read";
  switch (need.kind) {
    case Need::Kind::kAny:
      return Status::Ok();
    case Need::Kind::kPeer:
      return Status::PermissionDenied(caller.Name() + " is not the cluster's token, which this endpoint needs");
    case Need::Kind::kObject:
    case Need::Kind::kPrefix: {
      std::string bucket, key;
      if (!need.url.empty() || need.kind == Need::Kind::kObject) {
        auto scope = ScopeOf(need.url);
        if (!scope.ok()) return Status::PermissionDenied(caller.Name() + ": " + scope.status().message());
        bucket = scope->first;
        key = scope->second;
      }
      // An object needs a scope holding its key; a prefix, one holding the whole prefix (an
      // empty key is the whole bucket: only a scope without a prefix grants it).
      if (caller.token->Allows(bucket, key, need.access)) return Status::Ok();
      std::string what = need.url.empty() ? std::string("every object") : need.url;
      return Status::PermissionDenied(caller.Name() + " may not " + verb + " " + what +
                                      ": its scopes in the credentials file do not cover it");
    }
  }
  return Status::PermissionDenied("unknown need");
}

ClusterToken::ClusterToken(const ClusterToken& other) {
  std::lock_guard<std::mutex> lock(other.mu_);
  tokens_ = other.tokens_;
  retiring_ = other.retiring_;
}

ClusterToken& ClusterToken::operator=(const ClusterToken& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mu_, other.mu_);
  tokens_ = other.tokens_;
  retiring_ = other.retiring_;
  return *this;
}

std::string ClusterToken::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.empty() ? std::string() : tokens_.front();
}

bool ClusterToken::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_.empty();
}

bool ClusterToken::Accepts(std::string_view bearer) const {
  std::lock_guard<std::mutex> lock(mu_);
  bool found = false;  // every token compared, so the time says nothing of which matched
  for (const auto& t : tokens_) found |= door::ConstantTimeEquals(bearer, t);
  const auto now = Clock::now();
  for (const auto& [t, until] : retiring_) found |= now < until && door::ConstantTimeEquals(bearer, t);
  return found;
}

ClusterToken::Change ClusterToken::Rotate(std::vector<std::string> tokens, std::chrono::seconds grace) const {
  std::lock_guard<std::mutex> lock(mu_);
  Change change;
  const auto now = Clock::now();
  auto in = [](const std::vector<std::string>& list, const std::string& t) {
    return std::find(list.begin(), list.end(), t) != list.end();
  };
  change.sent_changed = tokens_.empty() || tokens.empty() || tokens_.front() != tokens.front();
  // Expired retirements go; a token taken back into the file is no longer retiring.
  std::erase_if(retiring_, [&](const auto& r) { return r.second <= now || in(tokens, r.first); });
  for (const auto& t : tokens_) {
    if (in(tokens, t)) continue;
    change.retired++;
    if (grace.count() > 0) retiring_.emplace_back(t, now + grace);
  }
  for (const auto& t : tokens) change.added += in(tokens_, t) ? 0 : 1;
  tokens_ = std::move(tokens);
  return change;
}

Result<std::vector<std::string>> ReadClusterTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read --token-file " + path);
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (!t.empty()) tokens.push_back(std::move(t));
  }
  if (in.bad()) return Status::IOError("cannot read --token-file " + path);
  if (tokens.empty()) return Status::InvalidArgument("--token-file " + path + " is empty");
  return tokens;
}

}  // namespace shoal::node
