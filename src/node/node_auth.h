#pragma once

// Who may use the node's own API (/v1/...), and for what.
//
// A node is open unless it has a token: the cluster's token (--token-file), which the members
// send each other and which may do everything, and node tokens (KIND token in --credentials,
// door/credentials.h), each limited to object URL prefixes, read or read-write. A client
// sends either as `Authorization: Bearer TOKEN`; a node token is `ID:SECRET`.
//
// What each request needs (NeedOf):
//   GET|HEAD /v1/object?url=U, POST /v1/warm?url=U         read U
//   PUT|DELETE /v1/object?url=U                            write U
//   GET /v1/list?url=B[&prefix=P], GET /v1/pending?prefix=P  read the prefix
//   POST /v1/commit?prefix=P                               write the prefix
//   GET /v1/cluster                                        any token
//   /v1/replica/*, /v1/cluster/view, /v1/drain, the rest   the cluster's token only
// A prefix is covered only by a scope that holds all of it (a token for az://d/a/ cannot list
// az://d/); an empty prefix (everything) only by `*`.
//
// Pure functions of their arguments: thread-safe.

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "door/credentials.h"

namespace shoal::node {

struct Caller {
  bool peer = false;                              // the cluster's token, or an open node
  std::shared_ptr<const door::AccessKey> token;   // a node token; null for the peer
  std::string Name() const { return token ? "token " + token->id : "the cluster's token"; }
};

struct Need {
  enum class Kind : uint8_t { kPeer, kAny, kObject, kPrefix } kind = Kind::kPeer;
  door::Access access = door::Access::kRead;
  std::string url;  // kObject: the object's URL; kPrefix: a URL prefix ("" = everything)
};

// What `method target` (a /v1/ request) needs.
Need NeedOf(std::string_view method, std::string_view target);

// Ok, or kPermissionDenied naming the caller, the request and what the token lacks.
Status Authorize(const Caller& caller, const Need& need);

}  // namespace shoal::node
