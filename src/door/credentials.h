#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace shoal::door {

// What a request does to the data it names.
enum class Access : uint8_t { kRead, kWrite };

// One thing a key may touch: every key under `prefix` in bucket (or container) `bucket`
// ("*" is every bucket), read-only or read-write (which includes read). For a node token the
// bucket is the backend's, with its scheme: "az://container" (or "az://container@ACCOUNT"),
// "s3://bucket", or "file://" for the local directory backend (its prefix is the path
// without the leading '/'), so a scope names exactly the objects an object URL names.
struct Scope {
  std::string bucket;
  std::string prefix;  // "" is the whole bucket
  Access access = Access::kRead;
};

// One key from the credentials file.
struct AccessKey {
  std::string id;          // S3 access key id and/or Azure account name
  std::string secret;      // S3: the secret access key, as written in the file
  std::string azure_key;   // Azure: the account key, base64-decoded (empty for s3-only keys)
  bool s3 = false;         // usable with SigV4
  bool azure = false;      // usable with Shared Key and SAS
  bool node = false;       // a token for the node's own API (/v1/...): `Bearer ID:SECRET`
  std::vector<Scope> scopes;

  // Whether a scope grants `access` to `key_path` in `bucket`. key_path "" means the bucket
  // as a whole (HeadBucket, a listing without prefix): only a scope with an empty prefix
  // grants it. A listing with a prefix passes that prefix as key_path.
  bool Allows(std::string_view bucket, std::string_view key_path, Access access) const;
};

// The keys of the door, read from the file given with `--credentials FILE`. The format (one
// key per line; documented in docs/front-door-auth.md):
//
//   # KIND  ID  SECRET  SCOPE [SCOPE ...]
//   s3     AKIDTRAINER0001   s3cr3t/Key+anything        models:read  ckpt/job7/:read-write
//   azure  shoalacct         <base64 account key>       data:read-write
//   both   trainer           <base64 key>               *:read
//   token  loader-job7       <16+ characters>           az://data/train/:read  s3://ckpt/job7/:read-write
//
// KIND is s3, azure, both or token. SCOPE is NAME[/PREFIX]:read|read-write for the door's
// keys, and URL:read|read-write (az://container[@ACCOUNT][/PREFIX], s3://bucket[/PREFIX],
// file:///DIR, or *) for a token, which the node's own API takes as `Authorization: Bearer
// ID:SECRET` and the door never does. Load refuses a file with a malformed line (naming the
// file, the line and the field), a duplicate id, a secret that is not base64 for an azure or
// both key, a token secret shorter than 16 characters, or no scope.
//
// Thread-safe. Lookups take a snapshot of the keys; Reload parses the file again and swaps
// the whole set in at once, so a request sees either the old keys or the new ones, never a
// mix. A Reload that fails leaves the keys in use unchanged.
class Credentials {
 public:
  static Result<std::unique_ptr<Credentials>> Load(const std::string& path);
  // The same from text (tests, or keys given inline); `source` names it in errors.
  static Result<std::unique_ptr<Credentials>> FromText(std::string_view text,
                                                       const std::string& source);

  // The key with this id, or nullptr. The key stays valid after a Reload drops it.
  std::shared_ptr<const AccessKey> Find(std::string_view id) const;
  // Find(id) && key->Allows(...): false for an unknown id.
  bool Allows(std::string_view id, std::string_view bucket, std::string_view key_path,
              Access access) const;
  // Re-reads the file Load was given. On error (naming what is wrong) the old keys stay.
  Status Reload();
  size_t size() const;
  // Whether any key is a node token (KIND token): then the node's API takes tokens.
  bool has_node_tokens() const;
  // The node token `bearer` ("ID:SECRET") names, when its secret is right (compared in
  // constant time); nullptr otherwise.
  std::shared_ptr<const AccessKey> FindNodeToken(std::string_view bearer) const;

  using Table = std::unordered_map<std::string, std::shared_ptr<const AccessKey>>;

 private:
  Credentials(std::string path, std::shared_ptr<const Table> table)
      : path_(std::move(path)), table_(std::move(table)), node_tokens_(HasNodeTokens(*table_)) {}
  static bool HasNodeTokens(const Table& table);
  std::shared_ptr<const Table> Snapshot() const;

  const std::string path_;  // "" when made FromText
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_;  // Guarded by mu_ (the pointer; the table is immutable).
  bool node_tokens_;                    // HasNodeTokens(*table_); guarded by mu_
};

}  // namespace shoal::door
