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
//   GET /v1/version?url=U                                  read U (forwarded=1: the cluster's token)
//   PUT|DELETE /v1/object?url=U                            write U (DELETE with forwarded=1:
//                                                          the cluster's token)
//   GET /v1/list?url=B[&prefix=P], GET /v1/pending?prefix=P  read the prefix
//   POST /v1/commit?prefix=P                               write the prefix
//   GET /v1/cluster                                        any token
//   /v1/replica/*, /v1/cluster/view, /v1/drain, the rest   the cluster's token only
// A prefix is covered only by a scope that holds all of it (a token for az://d/a/ cannot list
// az://d/); an empty prefix (everything) only by `*`.
//
// NeedOf and Authorize are pure functions of their arguments: thread-safe. ClusterToken says
// its own.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "door/credentials.h"

namespace shoal::node {

// The cluster's token (--token-file), which the members send each other and which may do
// everything. The file holds one token a line: this node sends the first, and accepts every
// one (a second line lets every member accept a new token before any member sends it). A
// SIGHUP reads the file again (Rotate): a token no longer in it is still accepted for the
// grace given, then refused. Empty (no file): an open node.
//
// Thread-safe: a SIGHUP rotates it in place, through the node's const NodeOptions&, while
// requests read it; copying takes its state at that moment.
class ClusterToken {
 public:
  ClusterToken() = default;
  // `tokens`: the file's, the one sent first (ReadClusterTokens).
  explicit ClusterToken(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  ClusterToken(const ClusterToken& other);
  ClusterToken& operator=(const ClusterToken& other);

  // The token sent to the other members; "" for an open node. Read at each use.
  std::string get() const;
  // So that `options_.token` reads as the token sent wherever a string is wanted.
  operator std::string() const { return get(); }  // NOLINT
  bool empty() const;
  // Whether `bearer` is one of the tokens, or one retired less than its grace ago. Compares
  // in constant time.
  bool Accepts(std::string_view bearer) const;

  struct Change {
    bool sent_changed = false;  // the token sent is another one
    size_t added = 0;           // tokens not accepted before
    size_t retired = 0;         // tokens no longer in the file, accepted for the grace
  };
  // Takes `tokens` (the file read again): the first is sent from now on; those dropped stay
  // accepted for `grace` (0: refused at once). `tokens` must not be empty.
  Change Rotate(std::vector<std::string> tokens, std::chrono::seconds grace) const;

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mu_;
  mutable std::vector<std::string> tokens_;                            // guarded by mu_
  mutable std::vector<std::pair<std::string, Clock::time_point>> retiring_;  // until when; guarded by mu_
};

// The tokens of a --token-file, one a line (blank lines and surrounding spaces ignored), in
// order. kInvalidArgument when it holds none, kIOError when it cannot be read; both name it.
Result<std::vector<std::string>> ReadClusterTokens(const std::string& path);

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
