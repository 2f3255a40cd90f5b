#include "node/daemon.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/strings.h"
#include "common/version.h"
#include "node/node.h"
#include "node/door.h"
#include "net/node_protocol.h"
#include "node/server.h"

namespace shoal::node {
namespace {

// Settings a SIGHUP applies while shoald runs (docs/node.md, `shoald --help`); every other
// change in the config file waits for a restart.
const char* const kReloadable[] = {"egress-limit", "log-format",  "max-connections",   "metadata-ttl",
                                   "readahead",    "token-grace", "upload-concurrency", "validate"};

// What shoald's flags and config file say.
struct DaemonFlags {
  NodeOptions o;
  ServerOptions so;
  DoorOptions door;
  std::string advertise, socket_path, token_file, port_file, metrics, log_format = "text";
  std::string tls_ca;  // --tls-ca
  std::string tls_name;  // --tls-name
  HostPort listen_at, metrics_at;
  double idle_timeout = 120, header_timeout = 10;
  int token_grace = 300;  // --token-grace: seconds a token dropped from --token-file is still accepted
  bool check_config = false;
  std::string config_file;                    // --config, "" without one
  std::map<std::string, std::string> given;   // each option's value as given (flag or file), by name
  std::string error;                          // why the flags were refused
};

// Parses the command line and the --config file it names into *f. Returns -1 when shoald
// should go on, else its exit code: 0 after --help or --version (printed), 2 for a usage
// error and 1 for a bad value (f->error says which, without the "shoald: " prefix).
int ParseFlags(int argc, char** argv, DaemonFlags* f) {
  NodeOptions& o = f->o;
  ServerOptions& so = f->so;
  std::string &advertise = f->advertise, &socket_path = f->socket_path, &token_file = f->token_file,
              &port_file = f->port_file, &metrics = f->metrics;
  bool& check_config = f->check_config;
  CLI::App app{
      "shoald: the Shoal cache node. Serves objects from Azure Blob (az://), S3 (s3://) and\n"
      "local directories (file://) out of a chunk cache on local disk, fetching each missing\n"
      "chunk from the object store once however many clients ask for it.\n"
      "Object-store credentials come from the same environment variables as `shoal`.\n"
      "Every flag can also be set in a config file (--config), one `name = value` per line.",
      "shoald"};
  std::string capacity = "20GiB", chunk_size = "8MiB", pack_below = "1MiB", staged_cap, peers, egress;
  int ttl = 60, deadline = 900, max_connections = 1024, readahead = 32;
  double down_grace = 30;
  bool no_fsync = false, validate = false;
  app.set_version_flag("--version", std::string("shoald ") + Version());
  app.add_flag("--check-config", check_config,
               "Check the flags and the --config file (names and values) and exit: 0 and `config ok` "
               "when shoald would start with them, 2 or 1 and what is wrong when not. Opens nothing: "
               "files the flags name (--token-file, --data-dir) are not read");
  app.set_config("--config", "", "Read flags from this file (name = value lines; an unknown name is refused)");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a typo ("capasity") is no silent default
  app.add_option("--listen", o.listen, "HOST:PORT to serve clients on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "Directory for the chunk cache (created if missing)")->required();
  app.add_option("--capacity", capacity, "Most chunk bytes kept on disk, e.g. 20GiB (each chunk counted in whole disk blocks, as it takes them)")->capture_default_str();
  app.add_option("--max-chunks", o.max_chunks,
                 "Most chunks kept on disk, whatever their size (each holds about 450 bytes of memory in the "
                 "index: the default bounds it near 1.9 GiB however small the objects; writes not yet uploaded "
                 "are kept beyond it)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{16}, uint64_t{1} << 40));
  app.add_option("--chunk-size", chunk_size, "Size of a cached chunk (1MiB-256MiB)")->capture_default_str();
  app.add_option("--pack-below", pack_below,
                 "Chunks smaller than this (small objects, an object's last chunk) are appended to shared pack "
                 "files under DATA_DIR/chunks/packs instead of a file each: no inode per chunk, one sync per "
                 "batch of writes (0: a file each)")
      ->capture_default_str();
  app.add_option("--node-id", o.node_id,
                 "This node's name in the cluster (default: the --peers entry whose HOST:PORT is --listen)");
  app.add_option("--peers", peers,
                 "The cluster, this node included: id=host:port[:weight[:domain]],... Every member "
                 "gets a share of chunks by weight (default 100); replicas prefer distinct domains "
                 "(default: the id). A node not yet in the running cluster joins it (it takes the "
                 "table from a live member, moves the fewest chunks, and tells the others); a member "
                 "follows the running cluster whatever its list says; nodes leave by `shoal drain`");
  app.add_option("--etcd", o.etcd,
                 "Keep the membership in etcd instead of --peers: http://HOST:PORT[,...]. The node "
                 "registers under --etcd-prefix with a lease of --down-grace and follows every change");
  app.add_option("--etcd-prefix", o.etcd_prefix, "Key prefix of this cluster in etcd")->capture_default_str();
  app.add_option("--advertise", advertise,
                 "HOST:PORT other nodes and clients reach this node at (default: --listen)");
  app.add_option("--weight", o.weight, "With --etcd: this node's share of chunks (default 100)");
  app.add_option("--domain", o.domain, "With --etcd: this node's failure domain (default: its id)");
  app.add_option("--replicas", o.replicas,
                 "Write-back: a write is acknowledged once it is on this many nodes (default 2; "
                 "1: this node only). If this node dies before uploading, a copy's holder uploads it")
      ->capture_default_str();
  app.add_option("--down-grace", down_grace,
                 "Seconds a node may be unreachable before the holders of copies of its writes "
                 "upload them themselves (default 30)");
  app.add_option("--egress-limit", egress,
                 "Most object bytes per second this node sends to clients and peers, e.g. 100MiB "
                 "(default: no limit); lets one machine show what a cluster's links would do");
  app.add_option("--peer-connections", o.peer_connections,
                 "Most connections this node opens to any one other node; its calls to that node beyond "
                 "them wait for one to be free (0: no bound)")
      ->capture_default_str();
  app.add_option("--socket", socket_path,
                 "Also serve clients on this host at a Unix socket (clients: --cache unix:PATH). Bytes "
                 "sent there are not paced by --egress-limit: they never cross the network");
  app.add_flag("--reader", o.reader,
               "Follow the cluster (--peers or --etcd) without joining it: own no chunks and hold no "
               "copies of writes; chunks this node reads come through the members, and it passes "
               "them on to other nodes (fan-in). For hosts that read but should not own; needs --node-id");
  app.add_option("--fan-in-direct", o.fan_in_direct,
                 "Fan-in: copies of one chunk this node sends to other nodes itself when many ask at once; "
                 "a further node asking is sent to a node that has it or is getting it (0: never, every "
                 "asker is served here)")
      ->capture_default_str();
  app.add_option("--fan-in-fanout", o.fan_in_fanout,
                 "Fan-in: nodes sent to one holder of a chunk (the fan-out of each chunk's tree)")
      ->capture_default_str();
  app.add_option("--max-connections", max_connections,
                 "Requests served at once (idle keep-alive connections do not count); past it a request "
                 "is answered 503 (busy) at once and the client asks again")
      ->capture_default_str();
  double &idle_timeout = f->idle_timeout, &header_timeout = f->header_timeout, io_timeout = 60;
  app.add_option("--io-threads", so.io_threads,
                 "Threads of the event loop that holds every connection (default: one per core); they "
                 "never block");
  app.add_option("--serve-threads", o.serve_threads,
                 "Threads for the blocking part of requests: disk reads and writes, fsyncs (default: "
                 "2 per core, at least 4)");
  std::string memory_cache = "128MiB";
  app.add_option("--memory-cache", memory_cache,
                 "Whole chunks kept in memory after a read or fetch, so small reads of a warm object do "
                 "not read a chunk file each (0: none)")
      ->capture_default_str();
  app.add_option("--sendfile", o.sendfile,
                 "Send chunks on disk to plain-HTTP clients and peers with sendfile(2), from the page cache "
                 "(false: read into memory and written, as for TLS)")
      ->capture_default_str();
  app.add_option("--fetch-threads", o.fetch_threads,
                 "Chunks fetched from peers and the object store at once, at most; each holds a thread while "
                 "it lasts, and threads beyond one per core (at least 4) end after 10 s idle (default: 32, or "
                 "2 per core on larger hosts). Writers' chunk copies to other nodes have a pool as large");
  app.add_option("--idle-timeout", idle_timeout,
                 "Seconds a keep-alive connection may stay silent between requests before it is closed")
      ->capture_default_str();
  app.add_option("--header-timeout", header_timeout,
                 "Seconds from a request's first byte to the end of its header; a slower client is "
                 "closed and counted (shoal_connection_timeouts_total{phase=\"header\"})")
      ->capture_default_str();
  app.add_option("--io-timeout", io_timeout,
                 "Seconds a request body or an answer may make no progress before the connection is closed")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "File holding the cluster's token: members send it to each other, and a client "
                 "with it may do everything; without it (and without node tokens in --credentials) "
                 "the node accepts unauthenticated requests. One token a line: the first is sent, "
                 "every one is accepted. SIGHUP reads it again (rotation, docs/node.md Tokens)");
  app.add_option("--token-grace", f->token_grace,
                 "Seconds a token removed from --token-file (then SIGHUP) is still accepted, so "
                 "members not yet signalled, and clients, are not refused meanwhile; 0: refused at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--tls-cert", so.tls_cert,
                 "Serve HTTPS on --listen with this PEM certificate (and its chain); needs --tls-key. "
                 "The node then calls its peers over HTTPS too. SIGHUP reads it again (rotation)");
  app.add_option("--tls-key", so.tls_key, "The PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", so.tls_client_ca,
                 "Ask every TLS client of --listen (peers, shoal, the front door's SDKs) for a certificate "
                 "signed by a CA in this PEM file, and refuse the connection without one (counted in "
                 "shoal_tls_handshake_failures_total). The node presents its --tls-cert to its peers, so "
                 "peers need a certificate from such a CA; clients set SHOAL_TLS_CERT and SHOAL_TLS_KEY. "
                 "SIGHUP reads it again");
  app.add_option("--tls-name", f->tls_name,
                 "Check every peer's certificate against this DNS name instead of the address the peer "
                 "is reached at, for nodes reached by addresses their certificates do not name (on "
                 "Kubernetes, the hosts' IPs): each node's certificate then names it (e.g. the Service "
                 "over the nodes); clients set SHOAL_TLS_NAME to it");
  app.add_option("--tls-ca", f->tls_ca,
                 "Check the certificates of the peers this node calls against the CAs in this PEM file "
                 "(default: the system's bundle); implies HTTPS to peers");
  app.add_option("--metadata-ttl", ttl,
                 "Seconds an object's size and ETag, that a name is no object in the store, and a listing page "
                 "of the store that nothing in the cluster changed since, are trusted (default 60)");
  app.add_flag("--validate", validate, "Check the object's ETag with the store on every open");
  app.add_option("--readahead", readahead,
                 "Most chunks fetched ahead of a sequential reader (default 32; 0: none). Each object's "
                 "window starts at 4 and doubles each time a reader finds the chunk it wants still being "
                 "fetched; read-aheads never wait for a fetch thread (--fetch-threads)");
  app.add_option("--staged-cap", staged_cap,
                 "Write-back: most bytes written here and not yet uploaded (default: half of "
                 "--capacity); at the cap, writers slow down to the upload rate instead of failing");
  app.add_option("--staged-writes", o.staged_writes,
                 "Write-back: most writes taken here and not yet uploaded, whatever their size (default "
                 "262144, about 1.5 KiB of memory each); at the bound, writers slow down to the upload rate");
  app.add_option("--upload-concurrency", o.upload_concurrency,
                 "Write-back: part uploads in flight at most (default 8); fewer while the store "
                 "answers 429/503");
  app.add_option("--upload-deadline", deadline,
                 "Write-back: seconds within which a write should be durable; later ones are "
                 "logged, counted (shoal_uploads_overdue) and flagged by `shoal flush` (default 900)");
  app.add_flag("--no-fsync", no_fsync,
               "Acknowledge writes once in the page cache, without fsync: survives a crash of "
               "shoald, not of the machine");
  app.add_option("--metrics", metrics,
                 "Also serve Prometheus metrics (and only them) on HOST:PORT; they are always at "
                 "/metrics on --listen too");
  DoorOptions& door_options = f->door;
  app.add_option("--bucket", door_options.buckets,
                 "Serve this bucket on the S3 front door: NAME=URL, URL az://container[/prefix], "
                 "s3://bucket[/prefix] or file:///dir (repeat for more; in --config: bucket = \"NAME=URL\"). "
                 "S3 clients reach it at http://THIS-NODE/NAME/KEY (docs/front-door.md)");
  app.add_option("--credentials", door_options.credentials_file,
                 "Keys: `KIND ID SECRET SCOPE...` lines. The front door's (s3, azure, both: clients sign "
                 "with them, never with the store's credentials; docs/front-door-auth.md) and node tokens "
                 "(token: `Bearer ID:SECRET` on the node's API, scoped to URL prefixes; docs/node.md). "
                 "SIGHUP reloads it");
  app.add_flag("--door-open", door_options.open,
               "Serve --bucket without --credentials: anyone who reaches the port may read and write them");
  app.add_option("--door-region", door_options.region,
                 "The region the front door's buckets say they are in (GetBucketLocation)")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the port we listen on to this file (for scripts)");
  app.add_option("--log-format", f->log_format,
                 "text: one line per event, `TIME LEVEL COMPONENT: message`; json: one JSON object per "
                 "line (ts, level, component, msg) for a log pipeline")
      ->capture_default_str();
  app.footer(
      "SIGHUP reloads the --config file (flags on the command line keep their values) and applies "
      "egress-limit, log-format, max-connections, metadata-ttl, readahead, token-grace, upload-concurrency and "
      "validate "
      "at once; any other key that "
      "changed is logged and waits for a restart. A file that does not parse, or a value that is "
      "refused, is logged and the running settings are kept.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help passes through; a bad command line or config file is a usage error: exit 2.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string what = e.what();
    if (dynamic_cast<const CLI::ConfigError*>(&e) != nullptr) {
      const std::string kExtra = "INI was not able to parse ";  // CLI11's words for an unknown key
      std::string key = StartsWith(what, kExtra) ? what.substr(kExtra.size()) : "";
      if (EndsWith(key, ".++")) {  // how CLI11 reports a [section] line
        what = "a section [" + key.substr(0, key.size() - 3) + "]: the file has name = value lines only";
      } else if (!key.empty()) {
        what = "unknown key '" + key + "': a key is a flag's name without its dashes, e.g. capacity = 20GiB";
      }
      what = "--config " + app.get_config_ptr()->as<std::string>() + ": " + what;
    }
    f->error = what;
    return 2;
  }
  auto fail = [f](const std::string& what) {
    f->error = what;
    return 1;
  };
  if (app.get_config_ptr()->count() > 0) f->config_file = app.get_config_ptr()->as<std::string>();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_lnames().empty() || opt->count() == 0) continue;
    std::string value;
    for (const auto& r : opt->results()) value += (value.empty() ? "" : " ") + r;
    f->given[opt->get_lnames().front()] = value;
  }
  LogFormat format;
  if (!ParseLogFormat(f->log_format, &format)) return fail("--log-format wants text or json, not '" + f->log_format + "'");
  if (readahead < 0) return fail("--readahead wants >= 0");
  if (o.upload_concurrency < 1 || o.upload_concurrency > kMaxUploadConcurrency) {
    return fail("--upload-concurrency wants 1 to " + std::to_string(kMaxUploadConcurrency));
  }
  if (ttl < 0) return fail("--metadata-ttl wants seconds >= 0");
  o.max_connections = max_connections;
  o.readahead = readahead;
  o.validate = validate;
  auto cap = ParseSize(capacity);
  if (!cap.ok()) return fail("--capacity: " + cap.status().message());
  auto cs = ParseSize(chunk_size);
  if (!cs.ok()) return fail("--chunk-size: " + cs.status().message());
  auto mc = ParseSize(memory_cache);
  if (!mc.ok()) return fail("--memory-cache: " + mc.status().message());
  o.memory_cache = *mc;
  o.capacity = *cap;
  o.chunk_size = *cs;
  auto pb = ParseSize(pack_below);
  if (!pb.ok()) return fail("--pack-below: " + pb.status().message());
  o.pack_below = *pb;
  o.metadata_ttl = std::chrono::seconds(ttl);
  o.upload_deadline = std::chrono::seconds(deadline);
  o.down_grace = std::chrono::milliseconds(static_cast<int64_t>(down_grace * 1000));
  o.sync = !no_fsync;
  if (!staged_cap.empty()) {
    auto sc = ParseSize(staged_cap);
    if (!sc.ok()) return fail("--staged-cap: " + sc.status().message());
    o.staged_cap = *sc;
  }
  if (!egress.empty()) {
    auto e = ParseSize(egress);
    if (!e.ok()) return fail("--egress-limit: " + e.status().message());
    o.egress_limit = *e;
  }
  // Server::Start takes the text as written; checked here so a bad address is refused by name
  // before anything is opened.
  auto listen_at = SplitHostPort(o.listen);
  if (!listen_at.ok()) return fail("--listen: " + listen_at.status().message());
  f->listen_at = *listen_at;
  if (!metrics.empty()) {
    auto m = SplitHostPort(metrics);
    if (!m.ok()) return fail("--metrics: " + m.status().message());
    f->metrics_at = *m;
  }
  if (!advertise.empty()) {
    auto a = SplitHostPort(advertise);
    if (!a.ok()) return fail("--advertise: " + a.status().message());
  }
  if (!f->tls_name.empty()) {
    if (Status st = proto::CheckTlsName("--tls-name ", f->tls_name); !st.ok()) return fail(st.message());
  }
  if (!f->tls_name.empty() && so.tls_cert.empty() && f->tls_ca.empty()) {
    return fail("--tls-name names what peers' certificates are checked against: it needs TLS (--tls-cert or --tls-ca)");
  }
  if (!peers.empty() && !o.etcd.empty()) return fail("--peers and --etcd are two ways to say the same: pick one");
  if (!o.etcd.empty() && o.node_id.empty()) return fail("--etcd needs --node-id (a name unique in the cluster)");
  if (o.reader && peers.empty() && o.etcd.empty()) return fail("--reader follows a cluster: pass --peers or --etcd");
  if (o.reader && o.node_id.empty()) return fail("--reader needs --node-id (a name unique among the cluster's nodes)");
  if (o.fan_in_direct < 0 || o.fan_in_fanout < 1) return fail("--fan-in-direct wants >= 0 and --fan-in-fanout >= 1");
  if (o.peer_connections < 0) return fail("--peer-connections wants >= 0 (0: no bound)");
  if (o.max_connections < 1) return fail("--max-connections wants >= 1");
  for (double t : {idle_timeout, header_timeout, io_timeout}) {
    if (!(t > 0)) return fail("--idle-timeout, --header-timeout and --io-timeout want seconds > 0");
  }
  auto ms = [](double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)); };
  so.idle_timeout = ms(idle_timeout);
  so.header_timeout = ms(header_timeout);
  so.io_timeout = ms(io_timeout);
  if (so.io_threads < 0 || so.io_threads > 256) return fail("--io-threads wants 0 (one per core) to 256");
  if (!door_options.buckets.empty() && door_options.credentials_file.empty() && !door_options.open) {
    return fail("--bucket needs --credentials FILE (the keys clients sign with; docs/front-door-auth.md), or "
                "--door-open to let anyone who reaches the port read and write the buckets");
  }
  if (door_options.buckets.empty() && door_options.open) {
    return fail("--door-open is for the front door: name its buckets with --bucket NAME=URL");
  }

  if (!peers.empty()) {
    auto parsed = cluster::ParsePeers(peers);
    if (!parsed.ok()) return fail(parsed.status().message());
    o.peers = *parsed;
    if (o.node_id.empty()) {
      for (const auto& p : o.peers) {
        if (p.endpoint == JoinHostPort(listen_at->host, listen_at->port)) o.node_id = p.member.id;
      }
      if (o.node_id.empty()) return fail("--peers: no entry is --listen " + o.listen + ": pass --node-id");
    }
  }
  return -1;
}

// SIGHUP: reads the flags and the config file again; applies what kReloadable names, logs
// every other change as waiting for a restart, and keeps everything when they are refused.
void Reload(int argc, char** argv, DaemonFlags* running, const NodeOptions& live, RateLimiter* egress,
            WriteBack* writes) {
  if (running->config_file.empty()) {
    Logf(LogLevel::kWarn, "SIGHUP: no --config file to reload; the flags stay as they are (the files they name are read again)");
    return;
  }
  DaemonFlags next;
  int rc = ParseFlags(argc, argv, &next);
  if (rc >= 0) {
    Logf(LogLevel::kError, "SIGHUP: %s; kept the running settings", next.error.c_str());
    return;
  }
  std::set<std::string> names;
  for (const auto& [name, v] : running->given) names.insert(name);
  for (const auto& [name, v] : next.given) names.insert(name);
  int applied = 0, waiting = 0;
  for (const auto& name : names) {
    auto was = running->given.count(name) ? running->given[name] : "(default)";
    auto now = next.given.count(name) ? next.given[name] : "(default)";
    if (was == now) continue;
    bool reloadable = std::find(std::begin(kReloadable), std::end(kReloadable), name) != std::end(kReloadable);
    if (reloadable) {
      Logf(LogLevel::kInfo, "SIGHUP: %s %s -> %s", name.c_str(), was.c_str(), now.c_str());
      applied++;
    } else {
      Logf(LogLevel::kWarn, "SIGHUP: %s %s -> %s takes effect at the next restart; still %s", name.c_str(),
           was.c_str(), now.c_str(), was.c_str());
      waiting++;
      continue;
    }
    running->given[name] = now;
    if (now == "(default)") running->given.erase(name);
  }
  LogFormat format;
  ParseLogFormat(next.log_format, &format);
  SetLogFormat(format);
  running->log_format = next.log_format;
  for (const NodeOptions* o : {static_cast<const NodeOptions*>(&running->o), &live}) {
    o->max_connections.set(next.o.max_connections);
    o->metadata_ttl.set(next.o.metadata_ttl);
    o->readahead.set(next.o.readahead);
    o->validate.set(next.o.validate);
  }
  running->token_grace = next.token_grace;  // the same SIGHUP's token rotation uses it
  if (next.o.egress_limit != running->o.egress_limit) {
    running->o.egress_limit = next.o.egress_limit;
    egress->SetRate(next.o.egress_limit);
  }
  if (next.o.upload_concurrency != running->o.upload_concurrency) {
    running->o.upload_concurrency = next.o.upload_concurrency;
    writes->SetUploadConcurrency(next.o.upload_concurrency);
  }
  Logf(LogLevel::kInfo, "SIGHUP: reloaded %s: %d settings applied, %d waiting for a restart",
       running->config_file.c_str(), applied, waiting);
}

// SIGHUP: reads --token-file again into the node's token. Kept as it was, and logged, when
// the file cannot be read or is empty (a node is never opened up by a SIGHUP).
void RotateClusterToken(const std::string& token_file, std::chrono::seconds grace, const NodeOptions& live) {
  auto tokens = ReadClusterTokens(token_file);
  if (!tokens.ok()) {
    Logf(LogLevel::kError, "SIGHUP: cluster token kept: %s", tokens.status().message().c_str());
    return;
  }
  size_t count = tokens->size();
  ClusterToken::Change change = live.token.Rotate(std::move(tokens).value(), grace);
  if (!change.sent_changed && change.added == 0 && change.retired == 0) {
    Logf(LogLevel::kInfo, "SIGHUP: cluster token unchanged in %s", token_file.c_str());
    return;
  }
  std::string retired = change.retired == 0 ? "none"
                        : grace.count() == 0 ? std::to_string(change.retired) + ", refused from now on"
                                             : std::to_string(change.retired) + ", still accepted for " +
                                                   std::to_string(grace.count()) + " s (--token-grace)";
  Logf(LogLevel::kInfo, "SIGHUP: cluster token reloaded from %s: %zu accepted (%zu new), %s sent to the members; retired: %s",
       token_file.c_str(), count, change.added, change.sent_changed ? "another one" : "the same one", retired.c_str());
}

}  // namespace

int RunDaemon(int argc, char** argv) {
  DaemonFlags flags;
  int rc = ParseFlags(argc, argv, &flags);
  if (rc >= 0) {
    if (rc == 2) std::fprintf(stderr, "shoald: %s\nRun `shoald --help` for its flags.\n", flags.error.c_str());
    else if (rc != 0) std::fprintf(stderr, "shoald: %s\n", flags.error.c_str());
    return rc;
  }
  LogFormat format;
  ParseLogFormat(flags.log_format, &format);
  SetLogFormat(format);
  NodeOptions& o = flags.o;  // the node keeps its own copy; a SIGHUP changes both
  std::string advertise = flags.advertise;
  const std::string &socket_path = flags.socket_path, &token_file = flags.token_file, &port_file = flags.port_file,
                    &metrics = flags.metrics;
  const HostPort &listen_at = flags.listen_at, &metrics_at = flags.metrics_at;
  auto fail = [](const std::string& what) {
    Logf(LogLevel::kError, "%s", what.c_str());
    return 1;
  };
  if (flags.check_config) {
    std::string cluster = "standalone";
    if (!o.etcd.empty()) cluster = "node " + o.node_id + ", membership in etcd " + o.etcd;
    if (!o.peers.empty()) cluster = "node " + o.node_id + " of " + std::to_string(o.peers.size()) + " peers";
    std::printf("config ok: %s%s, listening on %s, data in %s, capacity %s\n", o.reader ? "reader " : "",
                cluster.c_str(), o.listen.c_str(), o.data_dir.c_str(), FormatBytes(o.capacity).c_str());
    return 0;
  }
  if (!token_file.empty()) {
    auto tokens = ReadClusterTokens(token_file);
    if (!tokens.ok()) return fail(tokens.status().message());
    o.token = ClusterToken(std::move(tokens).value());
  }
  if (flags.so.tls_cert.empty() != flags.so.tls_key.empty()) return fail("--tls-cert and --tls-key go together");
  if (!flags.tls_ca.empty() && !std::ifstream(flags.tls_ca)) return fail("cannot read --tls-ca " + flags.tls_ca);
  if (!flags.so.tls_client_ca.empty() && flags.so.tls_cert.empty()) {
    return fail("--tls-client-ca needs --tls-cert and --tls-key (client certificates are asked for in TLS)");
  }
  if (!flags.so.tls_cert.empty() || !flags.tls_ca.empty()) {
    // A TLS cluster: peers too, each presenting its own certificate to the peers that ask.
    proto::SetNodeTls(proto::NodeTls{.on = true,
                                     .ca_file = flags.tls_ca,
                                     .cert_file = flags.so.tls_cert,
                                     .key_file = flags.so.tls_key,
                                     .name = flags.tls_name});
  }
  // One keys file for the front door's keys and the node's tokens, loaded once, shared by
  // both, and reloaded on SIGHUP.
  if (const std::string& keys_file = flags.door.credentials_file; !keys_file.empty()) {
    auto keys = door::Credentials::Load(keys_file);
    if (!keys.ok()) return fail(keys.status().message());
    flags.door.credentials = std::move(keys).value();
    flags.so.keys = flags.door.credentials.get();
    if (flags.door.buckets.empty() && !flags.so.keys->has_node_tokens()) {
      return fail("--credentials " + keys_file + " has no `token` lines, and no --bucket uses its keys: add node "
                  "tokens (docs/node.md, Tokens) or name the front door's buckets with --bucket NAME=URL");
    }
    if (flags.so.keys->has_node_tokens() && o.token.empty()) {
      return fail("the node tokens in " + keys_file + " need --token-file FILE too: the token the cluster's members "
                  "send each other, which may do everything (docs/node.md, Tokens)");
    }
  }

  // Signals are taken by sigwait below, never by a handler in another thread.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  flags.door.uploads_dir = o.data_dir + "/door-uploads";
  auto door = Door::Make(flags.door);
  if (!door.ok()) return fail(door.status().message());
  flags.so.door = door->get();
  auto node = Node::Create(o);
  if (!node.ok()) return fail(node.status().message());
  // One server, one event loop, for every listener.
  Server server(node->get(), flags.so);
  if (Status tls = server.LoadTls(); !tls.ok()) return fail(tls.message());
  auto port = server.Listen(o.listen);
  if (!port.ok()) return fail("--listen: " + port.status().message());
  if (!socket_path.empty()) {
    auto st = server.Listen("unix:" + socket_path);
    if (!st.ok()) return fail("--socket: " + st.status().message());
    Logf(LogLevel::kInfo, "clients on this host: unix:%s\n", socket_path.c_str());
  }
  if (!metrics.empty()) {
    auto mport = server.Listen(metrics, /*metrics_only=*/true);
    if (!mport.ok()) return fail("--metrics: " + mport.status().message());
    Logf(LogLevel::kInfo, "metrics on %s/metrics\n", JoinHostPort(metrics_at.host, static_cast<uint16_t>(*mport)).c_str());
  }
  server.Start();
  std::string bound = JoinHostPort(listen_at.host, static_cast<uint16_t>(*port));
  Logf(LogLevel::kInfo, "listening on %s%s, data in %s, capacity %s, chunks of %s\n",
       flags.so.tls_cert.empty() ? "" : "https://", bound.c_str(),
               o.data_dir.c_str(), FormatBytes(o.capacity).c_str(), FormatBytes(o.chunk_size).c_str());
  // As docs/layout.md lists them: the copy pool is as large as the fetch pool; uploads have a
  // pool of --upload-concurrency and one scheduler; copies held for others one watcher.
  const NodeOptions& run = (*node)->options();
  Logf(LogLevel::kInfo, "threads: %d event loop, %d serve, %d peer, %d fetch and %d copy at rest (up to %d each), "
               "%d upload + 1 scheduler, 1 replica watcher; timeouts: idle %.0f s, header %.0f s\n",
               server.io_threads(), run.serve_threads, static_cast<int>((*node)->peer_pool().threads()),
               run.fetch_threads_kept, run.fetch_threads_kept, run.fetch_threads, run.upload_concurrency,
               flags.idle_timeout, flags.header_timeout);
  Logf(LogLevel::kInfo, "write-back: up to %s and %llu writes staged, %d part uploads at once, writes %s\n",
               FormatBytes((*node)->options().staged_cap).c_str(), static_cast<unsigned long long>(o.staged_writes),
               o.upload_concurrency,
               o.sync ? "fsynced before they are acknowledged" : "NOT fsynced (--no-fsync)");
  if (o.token.empty()) {
    Logf(LogLevel::kWarn, "no --token-file: accepting unauthenticated requests\n");
  }
  if (*door) {
    std::string names;
    for (const auto& b : (*door)->buckets()) names += (names.empty() ? "" : ", ") + b.name + " = " + b.base.ToString();
    Logf(LogLevel::kInfo, "front door (S3, and Azure Blob at /ACCOUNT/) at http://%s/ serving %s; %s", bound.c_str(), names.c_str(),
         (*door)->open() ? "OPEN to anyone (--door-open)" : ("keys from " + flags.door.credentials_file).c_str());
  }
  if (advertise.empty()) advertise = bound;
  Status st = (*node)->cluster().Join(advertise);
  if (!st.ok()) return fail(st.message());
  if (auto view = (*node)->cluster().view()) {
    Logf(LogLevel::kInfo, "%s %s of %zu, epoch %llu%s\n", o.reader ? "reader" : "node", o.node_id.c_str(),
                 view->placement().members().size(),
                 static_cast<unsigned long long>(view->epoch()),
                 o.egress_limit ? (", egress limited to " + FormatBytes(o.egress_limit) + "/s").c_str() : "");
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << *port << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
    Reload(argc, argv, &flags, (*node)->options(), &(*node)->egress(), &(*node)->writes());
    if (!flags.so.tls_cert.empty()) {
      Status tls = server.LoadTls();
      if (tls.ok()) Logf(LogLevel::kInfo, "SIGHUP: TLS certificate reloaded from %s (new connections use it)", flags.so.tls_cert.c_str());
      else Logf(LogLevel::kError, "SIGHUP: TLS certificate kept: %s", tls.message().c_str());
    }
    if (!token_file.empty()) RotateClusterToken(token_file, std::chrono::seconds(flags.token_grace), (*node)->options());
    if (flags.door.credentials) {  // the door's keys and the node tokens: one file, one swap
      Status reloaded = flags.door.credentials->Reload();
      if (reloaded.ok()) Logf(LogLevel::kInfo, "SIGHUP: keys and tokens reloaded from %s", flags.door.credentials_file.c_str());
      else Logf(LogLevel::kError, "SIGHUP: keys and tokens kept: %s", reloaded.message().c_str());
    }
  }
  Logf(LogLevel::kInfo, "stopping (signal %d)\n", sig);
  // Not a drain: the node keeps its membership (with etcd, its lease) and comes back on its data
  // directory. Until then the others wait for it rather than read its chunks from the store.
  (*node)->cluster().AnnounceRestart();
  server.Stop();
  if (*door) (*door)->assemblies()->Close();  // early writes of uploads never completed: before the node goes
  return 0;
}

}  // namespace shoal::node
