#include "node/node_auth.h"

#include "common/strings.h"
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
    return object(method == "GET" || method == "HEAD" ? door::Access::kRead : door::Access::kWrite);
  }
  if (path == proto::kWarmPath) return object(door::Access::kRead);
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

}  // namespace shoal::node
