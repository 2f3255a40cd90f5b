#pragma once

// The /v1 protocol of shoald: every path, header, query parameter and error code a node
// serves, and what callers send it. The node's server (src/node/server.cc), the client
// library (src/client/) and the node's own requests to other nodes (src/node/routing.cc, read_path.cc)
// all use these names; docs/node.md describes what each request does.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/object_meta.h"
#include "common/status.h"
#include "net/http_client.h"

namespace shoal::proto {

// ---- paths ---------------------------------------------------------------------------------
// Every path of the node's own protocol starts with this; anything else (but the probes) is the
// S3 front door's, when the node serves buckets (node/door.h).
inline constexpr std::string_view kApiPrefix = "/v1/";
inline constexpr std::string_view kObjectPath = "/v1/object";      // GET|HEAD|PUT|DELETE ?url=
inline constexpr std::string_view kPendingPath = "/v1/pending";    // GET ?prefix=
// GET ?url=SCHEME://BUCKET&prefix=&delimiter=&continuation=&max_keys= (JSON pages, node/listing.h)
inline constexpr std::string_view kListPath = "/v1/list";
inline constexpr std::string_view kCommitPath = "/v1/commit";      // POST ?prefix=[&expect=&shard=]
// GET ?url=&version=LOCAL[&forwarded=1]: what a write not yet in the store became (VersionAnswer)
inline constexpr std::string_view kVersionPath = "/v1/version";
inline constexpr std::string_view kWarmPath = "/v1/warm";          // POST ?url=&index=[&route=1]
inline constexpr std::string_view kDrainPath = "/v1/drain";        // GET|POST
inline constexpr std::string_view kClusterPath = "/v1/cluster";    // GET (JSON)
inline constexpr std::string_view kClusterViewPath = "/v1/cluster/view";  // GET[?current=1]|POST
// POST ?id=NODE&within=MS: NODE stops to restart in place and is to be back within MS
inline constexpr std::string_view kRestartingPath = "/v1/cluster/restarting";
// Copies of writes between nodes; every one names the write's ?id=.
inline constexpr std::string_view kReplicaPrefix = "/v1/replica/";
inline constexpr std::string_view kReplicaChunkPath = "/v1/replica/chunk";    // PUT ?id=&index=&url=
inline constexpr std::string_view kReplicaCommitPath = "/v1/replica/commit";  // POST, see ReplicaCommit
// POST ?(kReplicaCommitPath's)&meta=N: a write of one chunk sent whole: the body is the commit's
// metadata (ReplicaCommitBody, N bytes) then the chunk's bytes, stored and committed at once
// (one request, not a chunk PUT and a commit). A node of an older version answers it 400 (no
// such replica request): the origin then sends the two.
inline constexpr std::string_view kReplicaWholePath = "/v1/replica/whole";
inline constexpr std::string_view kReplicaAdoptPath = "/v1/replica/adopt";    // POST ?id=
inline constexpr std::string_view kReplicaDropPath = "/v1/replica/drop";      // POST ?id=&chunks=&url=[&stored=]
inline constexpr std::string_view kReplicaStatePath = "/v1/replica/state";    // GET ?id=
// POST ?id=, body AnnouncementBody: a write not yet in the store, told to its object's home.
inline constexpr std::string_view kReplicaAnnouncePath = "/v1/replica/announce";
// POST ?id=MEMBER: MEMBER (re)started knowing no write homed at it; announce to it again every
// write kept here of which it is a home, before answering (kUnavailable if it could not be told).
inline constexpr std::string_view kReplicaRetellPath = "/v1/replica/retell";
inline constexpr std::string_view kMetricsPath = "/metrics";  // Prometheus text
inline constexpr std::string_view kHealthzPath = "/healthz";  // "ok"
// "ready", or 503 while a node in a cluster (--peers, --etcd) has no view of its membership yet
inline constexpr std::string_view kReadyzPath = "/readyz";

// ---- query parameters ----------------------------------------------------------------------
inline constexpr std::string_view kUrlParam = "url";          // the object, az://c/k
inline constexpr std::string_view kPrefixParam = "prefix";    // pending, commit
inline constexpr std::string_view kExpectParam = "expect";    // commit: the number of shards
inline constexpr std::string_view kShardParam = "shard";      // commit: their name, with {rank}
inline constexpr std::string_view kDelimiterParam = "delimiter";        // list
inline constexpr std::string_view kContinuationParam = "continuation";  // list: the last page's
inline constexpr std::string_view kMaxKeysParam = "max_keys";          // list: 1 to 1000
inline constexpr std::string_view kVersionParam = "version";  // version: a write's local version
inline constexpr std::string_view kPartialParam = "partial";  // list: "1" = without the store if it is down
inline constexpr std::string_view kClusterParam = "cluster";  // pending: "1" = count every member's too
inline constexpr std::string_view kIndexParam = "index";      // warm, replica/chunk: chunk number
inline constexpr std::string_view kRouteParam = "route";      // warm: "1" = through the owner
inline constexpr std::string_view kCurrentParam = "current";  // cluster/view: "1" = no history
inline constexpr std::string_view kWithinParam = "within";    // cluster/restarting: milliseconds
inline constexpr std::string_view kIdParam = "id";            // replica/*: the write's id; cluster/restarting: the node's
inline constexpr std::string_view kSizeParam = "size";        // replica/commit: object bytes
inline constexpr std::string_view kChunkSizeParam = "chunk_size";
inline constexpr std::string_view kCreatedParam = "created";  // replica/commit: unix ms
inline constexpr std::string_view kBegunParam = "begun";      // replica/commit: unix us (UploadRecord::begun_unix_us)
inline constexpr std::string_view kOriginParam = "origin";    // replica/commit: writing node
inline constexpr std::string_view kIncarnationParam = "incarnation";
inline constexpr std::string_view kAdoptParam = "adopt";      // replica/commit: "1" = adopted
inline constexpr std::string_view kMetaParam = "meta";        // replica/whole: metadata bytes before the chunk
inline constexpr std::string_view kChunksParam = "chunks";    // replica/drop: chunks to drop
// replica/drop: the store's ETag of the upload of the write, whose bytes are the copy's: the
// copy's chunks stay as cached chunks of that version (absent: they go)
inline constexpr std::string_view kStoredParam = "stored";
inline constexpr std::string_view kForwardedParam = "forwarded";  // object DELETE: "1" = from the member asked, no further hop
inline constexpr std::string_view kFlagOn = "1";  // the value of route, current, adopt, forwarded, partial

// ---- headers -------------------------------------------------------------------------------
// One spelling; HTTP header names are case-insensitive, and http::Response::Header and
// Beast's lookups compare them so.
inline constexpr std::string_view kAuthorizationHeader = "Authorization";  // "Bearer TOKEN"
// Requests for an object's bytes from peers and routing clients:
inline constexpr std::string_view kReadHeader = "X-Shoal-Read";    // a ReadMode value below
// On a HEAD of an object (a node asking the object's home, or a routing client asking its
// entry node): the asker reads the object's first chunk next ("1"). A node that must ask the
// store about the object then fetches that chunk with its metadata, one GET, not a HEAD and
// then a GET, and keeps it.
inline constexpr std::string_view kFirstChunkHeader = "X-Shoal-First-Chunk";
inline constexpr std::string_view kEtagHeader = "X-Shoal-Etag";    // the version wanted (with
inline constexpr std::string_view kSizeHeader = "X-Shoal-Size";    // its size); also answered
inline constexpr std::string_view kFromHeader = "X-Shoal-From";    // the asking node's id
inline constexpr std::string_view kEndpointHeader = "X-Shoal-Endpoint";  // where it serves
inline constexpr std::string_view kFailedHolderHeader = "X-Shoal-Failed-Holder";  // fan-in
// Both ways: the newest cluster epoch the sender knows.
inline constexpr std::string_view kEpochHeader = "X-Shoal-Epoch";
// Answers:
inline constexpr std::string_view kStateHeader = "X-Shoal-State";  // kStateLocal|kStateDurable
inline constexpr std::string_view kWrittenAsHeader = "X-Shoal-Written-As";  // pinned version
inline constexpr std::string_view kHolderHeader = "X-Shoal-Holder";  // 307: a node that has it
// A forwarded HEAD's answer (the object's home): the ids of the nodes holding a write not yet in
// the store, comma-separated, and the object's time (unix seconds).
inline constexpr std::string_view kHoldersHeader = "X-Shoal-Holders";
inline constexpr std::string_view kModifiedHeader = "X-Shoal-Modified";
inline constexpr std::string_view kChunkSizeHeader = "X-Shoal-Chunk-Size";  // cluster/view
// An error answer's code (a CodeName, or kBusy) and message, for HEAD answers that carry no
// body, and on 503 Busy.
inline constexpr std::string_view kErrorHeader = "X-Shoal-Error";
inline constexpr std::string_view kMessageHeader = "X-Shoal-Message";

// An object's metadata (ObjectMeta), on PUT /v1/object and on the answers to GET|HEAD of it:
// the content headers by their own names (Content-Type, Content-Encoding, Content-Language,
// Content-Disposition, Cache-Control; kContentFields) and user metadata as X-Shoal-Meta-NAME
// (NAME lower-cased on the way in). The answers always carry a Content-Type.
inline constexpr std::string_view kMetaHeaderPrefix = "X-Shoal-Meta-";

// X-Shoal-Read values; without the header a read is routed (the node asks the chunk's owner).
inline constexpr std::string_view kReadForwarded = "forwarded";  // no further hop
inline constexpr std::string_view kReadCacheOnly = "cache-only";  // never the object store
inline constexpr std::string_view kReadHeld = "held";  // of a chunk the node holds or is getting
// A HEAD asking only for a write pending at the node as the object's home, answered from its
// memory (never the store or another node; 404 when none): what a home catching up after a
// restart asks the other home (node/directory.h).
inline constexpr std::string_view kReadPending = "pending";
// A write not yet in the store is served under its local version, "local-" and the write's
// id, in place of an ETag (node/objects.h LocalVersion).
inline constexpr std::string_view kLocalVersionPrefix = "local-";
inline bool IsLocalVersion(std::string_view etag) { return etag.substr(0, kLocalVersionPrefix.size()) == kLocalVersionPrefix; }
// X-Shoal-State values.
inline constexpr std::string_view kStateLocal = "local";      // not yet in the object store
inline constexpr std::string_view kStateDurable = "durable";  // in the object store
// X-Shoal-Error on a 503 from a node at --max-connections (the body's code is Unavailable).
inline constexpr std::string_view kBusy = "Busy";

// ---- errors --------------------------------------------------------------------------------
// An error answer's body: {"code": CodeName(code), "message": "..."}.
inline constexpr std::string_view kCodeField = "code";
inline constexpr std::string_view kMessageField = "message";

// The one table of codes and HTTP statuses: the node answers a Status with its row's HTTP
// status and its CodeName; a caller reads the name first (exact), and only without one the
// status. Every Code has one row.
struct CodeRow {
  Code code;
  int http_status;
};
inline constexpr CodeRow kCodeTable[] = {
    {Code::kOk, 200},
    {Code::kNotFound, 404},
    {Code::kInvalidArgument, 400},
    {Code::kPermissionDenied, 403},
    {Code::kPreconditionFailed, 412},
    {Code::kUnavailable, 503},  // the only transient one: the caller backs off and retries
    {Code::kCorruption, 500},
    {Code::kIOError, 500},
    {Code::kResourceExhausted, 507},  // the node's disk is full
    {Code::kAlreadyExists, 409},
};

// The HTTP status a node answers `code` with (500 for a code missing from the table).
int HttpStatusOf(Code code);
// The code whose CodeName is `name`; nullopt for any other text ("Busy", "").
std::optional<Code> CodeFromName(std::string_view name);
// The code of the one row with `http_status`; nullopt when no row or several have it (500:
// a proxy's 500 says nothing; the caller's generic mapping decides).
std::optional<Code> CodeFromHttpStatus(int http_status);
// The code a node's error answer names: its body's "code", else its X-Shoal-Error header,
// else its HTTP status as the table has it; nullopt when none says (then the generic HTTP
// mapping applies, see http::StatusFromResponse).
std::optional<Code> CodeOfAnswer(const http::Response& resp);

// ---- requests to a node --------------------------------------------------------------------
// An endpoint "unix:PATH" is a node's Unix socket on this host; others are HOST:PORT
// ("[v6]:PORT").
inline constexpr std::string_view kUnixPrefix = "unix:";
inline bool IsUnixEndpoint(std::string_view endpoint) { return endpoint.substr(0, kUnixPrefix.size()) == kUnixPrefix; }

// PATH?name=value&..., each value URI-encoded (slashes too).
std::string Target(std::string_view path,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> params = {});
std::string Target(std::string_view path, const std::vector<std::pair<std::string_view, std::string_view>>& params);

// How this process reaches nodes over TCP: plain HTTP, or (`on`) HTTPS, each node's
// certificate checked against the CAs in `ca_file` (the system's bundle, or SHOAL_CA_FILE, when
// empty). A Unix socket is always plain. Set once at start, before any request: by shoald
// from --tls-cert/--tls-ca (a cluster is TLS throughout), by clients from an https:// node
// (client::CacheConfig::Resolve, with --tls-ca or SHOAL_TLS_CA). Thread-safe.
// `cert_file` and `key_file`: the certificate this process presents when a node asks for one
// (--tls-client-ca): a node's own --tls-cert, a client's SHOAL_TLS_CERT and SHOAL_TLS_KEY.
// `name`: when set, every node's certificate is checked against this DNS name rather than the
// address the node is reached at (a node's --tls-name, a client's SHOAL_TLS_NAME): where nodes
// are reached by addresses their certificates cannot name (a Kubernetes host's IP), they all
// carry one name, e.g. the Service over them.
struct NodeTls {
  bool on = false;
  std::string ca_file;
  std::string cert_file, key_file;
  std::string name;
};
void SetNodeTls(NodeTls tls);
// Whether `name` can be NodeTls::name: a DNS name (letters, digits, '-' and '.'), not empty.
// kInvalidArgument naming it as `named_by` says it ("--tls-name ", "SHOAL_TLS_NAME=") if not.
Status CheckTlsName(std::string_view named_by, std::string_view name);
NodeTls GetNodeTls();
inline constexpr const char* kTlsCaVariable = "SHOAL_TLS_CA";
inline constexpr const char* kTlsCertVariable = "SHOAL_TLS_CERT";
inline constexpr const char* kTlsKeyVariable = "SHOAL_TLS_KEY";
inline constexpr const char* kTlsNameVariable = "SHOAL_TLS_NAME";

// METHOD `target` at the node at `endpoint`, with the bearer token unless `token` is empty,
// over HTTPS when GetNodeTls().on. The one builder of requests to a node, for clients and
// nodes alike.
http::Request NodeRequest(std::string_view method, std::string_view endpoint, std::string_view target,
                          const std::string& token);
// The endpoint a request made by NodeRequest goes to (HOST:PORT or unix:PATH), whatever name
// its URL gives (NodeTls::name).
std::string EndpointOf(const http::Request& req);

// GET of bytes [first, last] of version (etag, size) of `url` read as `mode` (kReadForwarded
// ...), naming `epoch` when not 0: how peers and routing clients ask a node for a chunk.
struct ChunkRead {
  std::string_view url;
  std::string_view etag;
  uint64_t size = 0;
  uint64_t first = 0;
  uint64_t last = 0;
  std::string_view mode;
  uint64_t epoch = 0;
};
http::Request ChunkRequest(std::string_view endpoint, const std::string& token, const ChunkRead& read);

// Adds X-Shoal-Etag and X-Shoal-Size: the version a request is about.
void SetVersion(http::Request* req, std::string_view etag, uint64_t size);

// The headers that carry `meta` (see kMetaHeaderPrefix), with a Content-Type of
// kDefaultContentType when it names none: for a write's request and a read's answer.
std::vector<std::pair<std::string, std::string>> MetaHeaders(const ObjectMeta& meta);
// The metadata in a request's headers (names in any case; user metadata under `user_prefix`,
// which the S3 front door gives as "x-amz-meta-"); other headers are ignored.
// kInvalidArgument when it fails ObjectMeta::Validate, or a name comes twice.
Result<ObjectMeta> MetaFromHeaders(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                                   std::string_view user_prefix = kMetaHeaderPrefix);
// The metadata of a node's answer to GET or HEAD of an object (MetaFromHeaders over it).
Result<ObjectMeta> MetaOfAnswer(const http::Response& resp);

// Targets (path and query) of the replication requests: a node's copies of another node's write.
std::string ReplicaChunkPath(std::string_view id, std::string_view url, uint64_t index);
struct ReplicaCommit {
  std::string_view id, url, origin, incarnation;
  uint64_t size = 0, chunk_size = 0;
  int64_t created_unix_ms = 0;
  uint64_t begun_unix_us = 0;
  bool adopt = false;  // a draining origin hands the write over: no incarnation
};
std::string ReplicaCommitPath(const ReplicaCommit& c);
// A replica commit's (or whole copy's) answer when the holder is one of the object's homes and
// recorded the write as pending with the copy (a plain "ok\n" otherwise, as older nodes answer).
inline constexpr std::string_view kCopyRecordedAnswer = "ok home\n";
// kReplicaWholePath with c's parameters, and the metadata's length in the body.
std::string ReplicaWholePath(const ReplicaCommit& c, uint64_t meta_bytes);
// The body of a replica commit: the write's metadata as JSON (ObjectMeta's to_json), "" when
// it has none; and back (kInvalidArgument when it is not such JSON).
std::string ReplicaCommitBody(const ObjectMeta& meta);
Result<ObjectMeta> ParseReplicaCommitBody(std::string_view body);
// `stored`: the ETag the write was uploaded as (its holders keep the copy's chunks as a
// cache of that version), "" when the copy is to go with its chunks.
std::string ReplicaDropPath(std::string_view id, std::string_view url, uint64_t chunks, std::string_view stored = "");

// A write not yet in the object store, as the node that took it (or holds it) tells the
// object's home (POST kReplicaAnnouncePath): it is pending with its chunks on `holders`
// (member ids, the one that uploads it first), durable in the store as `stored_etag`, or
// gone (deleted).
struct Announcement {
  enum class Change { kPending, kDurable, kGone };
  Change change = Change::kPending;
  std::string id, url, from;  // `from`: the announcing node
  uint64_t size = 0;
  int64_t created_unix_ms = 0;
  int64_t modified = 0;  // unix seconds: the write's, or the stored object's
  std::vector<std::string> holders;
  std::string stored_etag;  // kDurable
  ObjectMeta meta;
};
std::string AnnouncementBody(const Announcement& a);
// The answer to GET kVersionPath from what the node resolved (WriteDirectory::ResolveVersion):
// {"state": "durable", "etag": E} for a value, {"state": "pending"} for kUnavailable,
// {"state": "unknown"} for kNotFound; "" for any other error (answered as that error).
std::string VersionAnswer(const Result<std::string>& resolved);
// Back from such an answer: E, kUnavailable (pending) or kNotFound (unknown), naming `url`
// and `version`; kIOError for anything else.
Result<std::string> ParseVersionAnswer(std::string_view body, const std::string& url, const std::string& version);
// kInvalidArgument when `body` is not one (fields missing, bad metadata).
Result<Announcement> ParseAnnouncement(std::string_view body);

}  // namespace shoal::proto
