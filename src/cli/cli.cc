#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <type_traits>

#include "cli/progress.h"
#include "client/cache_store.h"
#include "client/checkpoint.h"
#include "client/client.h"
#include "common/parallel.h"
#include "common/strings.h"
#include "common/version.h"
#include "mount/mount.h"
#include "net/retry.h"
#include "store/commit.h"
#include "store/local/local_store.h"
#include "store/object_store.h"
#include "store/transfer.h"

namespace shoal::cli {
namespace {

namespace fs = std::filesystem;

// Flags several commands share. Every command's options hold one; each command adds the flags
// it takes (AddTransferFlags, AddCacheFlags, AddQuietFlag).
struct Common {
  std::string part_size = "8MiB";
  int concurrency = 8;
  bool quiet = false;
  bool no_progress = false;
  std::string cache;       // HOST:PORT of a shoald to read through (or SHOAL_CACHE)
  std::string token_file;  // its shared secret (or SHOAL_TOKEN_FILE)
  std::string tls_ca;      // CA file for an https:// node (or SHOAL_TLS_CA)

  Result<TransferOptions> Transfer() const {
    TransferOptions t;
    SHOAL_ASSIGN_OR_RETURN(t.part_size, ParseSize(part_size));
    if (t.part_size == 0) return Status::InvalidArgument("--part-size must be more than 0");
    if (concurrency < 1 || concurrency > 256) {
      return Status::InvalidArgument("--concurrency must be between 1 and 256");
    }
    t.concurrency = concurrency;
    return t;
  }
  bool ShowProgress() const { return !quiet && !no_progress && Progress::StderrIsTerminal(); }
};

// One side of a copy: a store and key, or stdin/stdout ("-").
struct Location {
  bool stdio = false;
  bool local = false;           // a local path (the store is the file system)
  std::string text;             // as the user wrote it
  ObjectUrl url;                // scheme/bucket/key (file: key is the absolute path minus '/')
  std::shared_ptr<ObjectStore> store;

  std::string Name(const std::string& key) const {
    if (local) return "/" + key;
    return url.WithKey(key).ToString();
  }
};

// `fsync`: whether files written to a plain local path are synced before cp returns (file://
// URLs are the local-directory object store and always are). With a `cache` endpoint, URLs
// are read through that shoald.
Result<Location> Resolve(const std::string& text, bool fsync = false,
                         const client::CacheConfig* cache = nullptr) {
  Location loc;
  loc.text = text;
  if (text == "-") {
    loc.stdio = true;
    return loc;
  }
  std::string lower = ToLower(text.substr(0, 5));
  if (!ObjectUrl::IsUrl(text) && (StartsWith(lower, "az:") || StartsWith(lower, "s3:") || StartsWith(lower, "file:"))) {
    std::string scheme = lower.substr(0, lower.find(':'));
    return Status::InvalidArgument("'" + text + "' is not a URL: write " + scheme + "://" +
                                   (scheme == "file" ? "/dir/key" : scheme == "az" ? "container/key" : "bucket/key") +
                                   " (two slashes), or ./" + text + " for a local path of that name");
  }
  if (ObjectUrl::IsUrl(text) || text.find("://") != std::string::npos) {
    SHOAL_ASSIGN_OR_RETURN(loc.url, ObjectUrl::Parse(text));
    loc.local = loc.url.scheme == "file";
  } else {
    if (text.empty()) return Status::InvalidArgument("an empty path");
    std::error_code ec;
    fs::path abs = fs::absolute(text, ec).lexically_normal();
    if (ec) return Status::InvalidArgument("cannot resolve path '" + text + "': " + ec.message());
    std::string s = abs.string();
    if (text.back() == '/' && s.back() != '/') s += '/';
    loc.url = ObjectUrl{"file", "", s.substr(1)};
    loc.local = true;
    loc.store = NewLocalStore("/", LocalStoreOptions{.sync = fsync});
    return loc;
  }
  if (cache != nullptr && !cache->endpoint.empty()) {
    loc.store = client::NewCacheStore(*cache, loc.url);
    return loc;
  }
  SHOAL_ASSIGN_OR_RETURN(loc.store, OpenObjectStore(loc.url));
  return loc;
}

std::string BaseName(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

bool IsLocalDir(const Location& loc) {
  std::error_code ec;
  return loc.local && fs::is_directory("/" + loc.url.key, ec);
}

// "dir" -> "dir/", "" stays "" (the whole bucket).
std::string AsPrefix(std::string key) {
  if (!key.empty() && key.back() != '/') key += '/';
  return key;
}

Status WriteFd(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("writing to stdout: ") + std::strerror(errno));
    }
    data += n;
    len -= n;
  }
  return Status::Ok();
}

Status CopyOne(const Location& src, const Location& dst, const Common& common) {
  SHOAL_ASSIGN_OR_RETURN(TransferOptions topts, common.Transfer());
  if (src.stdio && dst.stdio) return Status::InvalidArgument("cp - -: one side must be a path or URL");
  if (src.stdio) {
    std::string key = dst.url.key;
    if (key.empty() || key.back() == '/' || IsLocalDir(dst)) {
      return Status::InvalidArgument("cp - " + dst.text + ": name the object to write, like " +
                                     dst.text + (key.empty() || key.back() == '/' ? "" : "/") + "name");
    }
    Progress progress("upload", 0, common.ShowProgress());
    topts.progress = progress.bytes();
    FdSource in(STDIN_FILENO, "stdin");
    SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, UploadStream(in, *dst.store, key, topts));
    progress.AddTotal(info.size);
    return Status::Ok();
  }
  Result<ObjectInfo> head = src.store->HeadToRead(src.url.key);
  if (!head.ok()) {
    if (IsLocalDir(src)) return Status::InvalidArgument(src.text + " is a directory: use cp -r");
    if (head.status().IsNotFound() && !src.local) {
      return Status::NotFound(src.text + " does not exist (to copy a prefix, use cp -r)");
    }
    return head.status();
  }
  ObjectInfo info = head.value();
  Progress progress(BaseName(info.key), info.size, common.ShowProgress());
  topts.progress = progress.bytes();
  if (dst.stdio) {
    return DownloadStream(*src.store, info, [](const char* d, size_t n) { return WriteFd(STDOUT_FILENO, d, n); }, topts);
  }
  std::string key = dst.url.key;
  if (key.empty() || key.back() == '/' || IsLocalDir(dst)) key = AsPrefix(key) + BaseName(info.key);
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo out, CopyObject(*src.store, info, *dst.store, key, topts));
  if (out.size != info.size) {
    return Status::Corruption("copied " + std::to_string(out.size) + " bytes to " + dst.Name(key) +
                              " but the source has " + std::to_string(info.size));
  }
  return Status::Ok();
}

Status CopyRecursive(const Location& src, const Location& dst, const Common& common) {
  if (src.stdio || dst.stdio) return Status::InvalidArgument("cp -r cannot read stdin or write stdout");
  SHOAL_ASSIGN_OR_RETURN(TransferOptions topts, common.Transfer());
  std::string prefix = AsPrefix(src.url.key);
  SHOAL_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListAll(*src.store, prefix));
  if (objects.empty()) return Status::NotFound("nothing under " + src.text + " to copy");
  uint64_t total = 0;
  for (const auto& o : objects) total += o.size;
  Progress progress(std::to_string(objects.size()) + " objects", total, common.ShowProgress());
  topts.progress = progress.bytes();
  std::string dst_prefix = AsPrefix(dst.url.key);
  // Small objects go several at a time; large ones one at a time, each in parallel parts (on
  // this thread, while the small ones go).
  std::vector<const ObjectInfo*> small, large;
  for (const auto& o : objects) (o.size <= topts.part_size ? small : large).push_back(&o);
  ErrorSlot error;  // the first failure, of either; nothing starts after it
  auto copy = [&](const ObjectInfo& o, const TransferOptions& opts) {
    if (error.failed()) return;
    Status st = CopyObject(*src.store, o, *dst.store, dst_prefix + o.key.substr(prefix.size()), opts).status();
    if (!st.ok()) error.Set(st.WithContext("copying " + src.Name(o.key)));
  };
  std::thread small_copies([&] {
    TransferOptions one_part = topts;
    one_part.concurrency = 1;
    ForEachAtOnce(small.size(), static_cast<size_t>(topts.concurrency), OnFailure::kStop, [&](size_t i, size_t) {
      copy(*small[i], one_part);
      return Status::Ok();
    });
  });
  for (const ObjectInfo* o : large) copy(*o, topts);
  small_copies.join();
  return error.Get();
}

// One file (or stdin, "-") written through the node. A regular file refused as unavailable
// (nothing of it was acknowledged: the node, or the node it copies to, was restarting) is sent
// again from its start, up to 5 times over about 6 s (progress then counts its bytes again); a
// pipe cannot be, and fails at once.
Status WriteFileThrough(const std::string& path, const std::string& url, const client::CacheConfig& cache,
                        std::atomic<uint64_t>* progress) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound(path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  const bool regular = S_ISREG(st.st_mode);
  uint64_t size = regular ? static_cast<uint64_t>(st.st_size) : client::kUnknownSize;
  FdSource source(fd, path == "-" ? "stdin" : path);
  Result<ObjectInfo> r = client::WriteWithResends(
      [&] { return client::WriteThroughCache(cache, url, source, size, progress); },
      [&] { return regular && ::lseek(fd, 0, SEEK_SET) == 0; });
  if (fd != STDIN_FILENO) ::close(fd);
  return r.status().WithContext(path == "-" ? "stdin" : path);
}

// cp FILE|-|DIR URL --cache: the node takes the writes (write-back) and uploads them later.
Status WriteThrough(const std::string& src, const std::string& dst, bool recursive,
                    const Common& common, const client::CacheConfig& cache) {
  if (ObjectUrl::IsUrl(src)) {
    return Status::InvalidArgument("through the cache, cp writes local files, not " + src +
                                   " (copy between stores without --cache)");
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl url, ObjectUrl::Parse(dst));
  std::error_code ec;
  bool dir = src != "-" && fs::is_directory(src, ec);
  if (dir && !recursive) return Status::InvalidArgument(src + " is a directory: use cp -r");
  if (!dir) {
    if (url.key.empty() || url.key.back() == '/') {
      if (src == "-") return Status::InvalidArgument("cp - needs a full object URL, not the prefix " + dst);
      url.key += BaseName(src);
    }
    uint64_t size = 0;
    if (src != "-") size = fs::file_size(src, ec);
    Progress progress(BaseName(url.key), ec ? 0 : size, common.ShowProgress());
    return WriteFileThrough(src, url.ToString(), cache, progress.bytes());
  }
  // A tree: every regular file, at its relative path under the destination prefix, several
  // files at a time (each one streamed in one PUT).
  std::vector<std::pair<std::string, uint64_t>> files;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(src, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    files.emplace_back(it->path().string(), it->file_size());
    total += files.back().second;
  }
  if (ec) return Status::IOError("listing " + src + ": " + ec.message());
  if (files.empty()) return Status::NotFound("no files under " + src + " to copy");
  std::string prefix = AsPrefix(url.key);
  Progress progress(std::to_string(files.size()) + " files", total, common.ShowProgress());
  return ForEachAtOnce(files.size(), static_cast<size_t>(common.concurrency), OnFailure::kStop, [&](size_t i, size_t) {
           std::string rel = fs::relative(files[i].first, src).generic_string();
           return WriteFileThrough(files[i].first, url.WithKey(prefix + rel).ToString(), cache, progress.bytes());
         })
      .first;
}

// A line of progress on stderr while a command waits: redrawn on a terminal, else printed
// every 10 s; nothing with quiet.
class StatusLine {
 public:
  explicit StatusLine(bool quiet) : quiet_(quiet), tty_(Progress::StderrIsTerminal() && !quiet) {}
  ~StatusLine() { Clear(); }
  void Show(const std::string& line) {
    auto now = std::chrono::steady_clock::now();
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line.substr(0, 160).c_str());
      shown_ = true;
    } else if (!quiet_ && now - last_ >= std::chrono::seconds(10)) {
      std::fprintf(stderr, "%s\n", line.c_str());
      last_ = now;
    }
  }
  void Clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool quiet_, tty_, shown_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Polls the node until nothing under `prefix` is pending, in the cluster or (`whole_cluster`
// false) on the node (or `timeout_s` passes, when not 0), showing progress on stderr.
Status WaitDurable(const client::CacheConfig& cache, const std::string& prefix, int timeout_s, bool quiet,
                   bool whole_cluster) {
  StatusLine line(quiet);
  return client::WaitDurable(
      cache, prefix, timeout_s, [&](const client::PendingWrites& p) { line.Show("waiting: " + client::DescribePending(p)); },
      whole_cluster);
}

std::string FormatTime(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// `shoal drain NODE`: starts the node's drain and follows it to the end.
Status DrainNode(const client::CacheConfig& cache, const std::string& name, int timeout_s, bool quiet) {
  client::CacheConfig node = cache;
  node.endpoint = name;
  // unix:PATH is the node's --socket on this host (how a preStop hook reaches its own node).
  if (name.find_first_of(":[") != std::string::npos) {  // HOST:PORT, [V6]:PORT or unix:PATH
    auto hp = StartsWith(name, "unix:") ? Result<HostPort>(HostPort{}) : SplitHostPort(name);
    if (!hp.ok()) return Status::InvalidArgument("NODE: " + hp.status().message() + ", or a node id");
  } else {  // an id: find its endpoint in the cluster
    if (cache.endpoint.empty()) return Status::InvalidArgument("to name a node by id, say which cluster: --cache HOST:PORT");
    SHOAL_ASSIGN_OR_RETURN(client::ClusterInfo c, client::FetchCluster(cache));
    node.endpoint.clear();
    for (const auto& m : c.members) {
      if (m.id == name) node.endpoint = m.endpoint;
    }
    if (node.endpoint.empty()) return Status::NotFound("no member " + name + " in the cluster of " + cache.endpoint);
  }
  SHOAL_ASSIGN_OR_RETURN(client::DrainProgress d, client::Drain(node, /*start=*/true));
  auto start = std::chrono::steady_clock::now();
  auto last_line = start;
  while (d.state == "draining") {
    if (timeout_s > 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout_s)) {
      return Status::Unavailable("the drain of " + node.endpoint + " goes on (" + std::to_string(d.left) +
                                 " writes and copies left); `shoal drain` again follows it");
    }
    if (!quiet && std::chrono::steady_clock::now() - last_line >= std::chrono::seconds(2)) {
      std::fprintf(stderr, "draining %s: %llu handed off, %llu left\n", node.endpoint.c_str(),
                   static_cast<unsigned long long>(d.writes + d.copies), static_cast<unsigned long long>(d.left));
      last_line = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    SHOAL_ASSIGN_OR_RETURN(d, client::Drain(node, false));
  }
  if (d.state != "done") return Status::Unavailable("the drain of " + node.endpoint + " failed: " + d.error);
  if (!quiet) {
    std::printf("drained %s: it left the cluster (now epoch %llu) and handed off %llu writes (%s) and %llu copies; "
                "stop it now\n",
                node.endpoint.c_str(), static_cast<unsigned long long>(d.epoch), static_cast<unsigned long long>(d.writes),
                FormatBytes(d.write_bytes).c_str(), static_cast<unsigned long long>(d.copies));
  }
  return Status::Ok();
}

// `shoal status` for a cluster: the membership as the asked node sees it, and each member's
// traffic from its own /metrics.
void PrintCluster(const client::CacheConfig& cache, const client::ClusterInfo& c) {
  std::printf("cluster       epoch %llu, %zu members, %llu slots, chunks of %s (as %s sees it)\n",
              static_cast<unsigned long long>(c.epoch), c.members.size(), static_cast<unsigned long long>(c.slots),
              FormatBytes(c.chunk_size).c_str(), c.self.c_str());
  std::printf("  %-12s %-22s %6s %6s %10s %10s %10s %10s %10s  %s\n", "member", "endpoint", "weight", "share",
              "served", "to peers", "from store", "from peers", "copies", "state");  // copies: held for others now
  for (const auto& m : c.members) {
    client::CacheConfig member = cache;
    member.endpoint = m.endpoint;
    auto metrics = client::FetchMetrics(member);
    double share = c.slots ? 100.0 * m.slots / c.slots : 0;
    if (!metrics.ok()) {
      std::printf("  %-12s %-22s %6u %5.1f%% %10s %10s %10s %10s %10s  down: %s\n", m.id.c_str(), m.endpoint.c_str(),
                  m.weight, share, "-", "-", "-", "-", "-", metrics.status().message().c_str());
      continue;
    }
    auto g = [&](const char* name) { return static_cast<uint64_t>((*metrics)[std::string("shoal_") + name]); };
    uint64_t epoch = g("cluster_epoch");
    std::string state = epoch == c.epoch ? "up" : "up, at epoch " + std::to_string(epoch);
    std::printf("  %-12s %-22s %6u %5.1f%% %10s %10s %10s %10s %10s  %s\n", m.id.c_str(), m.endpoint.c_str(), m.weight,
                share, FormatBytes(g("bytes_served_total")).c_str(), FormatBytes(g("bytes_served_peers_total")).c_str(),
                FormatBytes(g("store_get_bytes_total")).c_str(), FormatBytes(g("peer_fetch_bytes_total")).c_str(),
                std::to_string(g("replica_objects")).c_str(), state.c_str());
  }
}

int Fail(const std::string& command, const Status& st) {
  std::fprintf(stderr, "shoal %s: %s\n", command.c_str(), st.message().c_str());
  return 1;
}

// A command line CLI11 refused: one line naming the command and what is wrong, a pointer to
// its --help, and exit 2 (1 is for operations that failed). --help and --version pass through.
int UsageError(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
  std::string command = "shoal";
  std::string what = e.what();
  auto parsed = app.get_subcommands();
  if (!parsed.empty()) {
    command += " " + parsed.front()->get_name();
  } else if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
    what = "unknown command '" + std::string(argv[1]) + "'; the commands are " + names;
  } else if (argc > 1) {  // the only flags before a command are --help and --version
    what = "unknown option '" + std::string(argv[1]) + "' before the command";
  } else {
    what = "a command is required (cp, cat, ls, ...)";
  }
  std::fprintf(stderr, "%s: %s\nRun `%s --help` for its usage.\n", command.c_str(), what.c_str(), command.c_str());
  return 2;
}

// --- the commands: each one an options struct (what CLI11 fills) and one function ---------------
// The function runs once its command line is parsed; `cache` is the node from --cache /
// --token-file or SHOAL_CACHE / SHOAL_TOKEN_FILE (endpoint empty: none).

void AddTransferFlags(CLI::App* cmd, Common& common) {
  cmd->add_option("--part-size", common.part_size,
                  "Size of each part moved in parallel (default 8MiB; S3 needs >= 5MiB)");
  cmd->add_option("-j,--concurrency", common.concurrency, "Parts in flight at once (default 8)");
  cmd->add_flag("-q,--quiet", common.quiet, "No progress bar");
  cmd->add_flag("--no-progress", common.no_progress, "No progress bar");
}

void AddCacheFlags(CLI::App* cmd, Common& common) {
  cmd->add_option("--cache", common.cache,
                  "Go through the shoald at HOST:PORT (https://HOST:PORT for a node serving TLS), or at "
                  "unix:PATH on this host (shoald "
                  "--socket; that node then fetches every chunk for this host and passes it on to "
                  "other nodes) (default: $SHOAL_CACHE): reads are served "
                  "from its cache; cp FILE URL is acknowledged once on the node's disk and "
                  "uploaded in the background (see shoal flush). Several nodes, comma-separated "
                  "(unix:/run/shoal/shoal.sock,10.0.0.7:7070): the first is used, the next while the "
                  "first cannot be reached (restarting, or gone); status asks the first alone");
  cmd->add_option("--token-file", common.token_file,
                  "File with the cache node's token: the cluster's, or a scoped ID:SECRET "
                  "(default: $SHOAL_TOKEN_FILE)");
  cmd->add_option("--tls-ca", common.tls_ca,
                  "With --cache https://HOST:PORT: check the nodes' certificates against the CAs in "
                  "this PEM file (default: $SHOAL_TLS_CA, else the system's bundle); against the DNS "
                  "name $SHOAL_TLS_NAME instead of the address when set (shoald --tls-name); with "
                  "$SHOAL_TLS_CERT and $SHOAL_TLS_KEY, present that certificate (shoald --tls-client-ca)");
}

// The commands that only wait or report take -q alone.
void AddQuietFlag(CLI::App* cmd, Common& common) { cmd->add_flag("-q,--quiet", common.quiet, "No progress"); }

struct CpOptions {
  static constexpr const char* kHelp =
      "Copy an object or a file. SRC and DST are each a URL, a local path, or - (stdin/stdout).\n"
      "A DST that ends in / (or is a directory) gets SRC's file name. Large objects move in\n"
      "parallel parts; nothing appears at DST until the copy is complete.\n"
      "Examples:\n"
      "  shoal cp model.bin az://models/llama/model.bin\n"
      "  shoal cp s3://data/shard-0001 ./shards/\n"
      "  shoal cp -r ./checkpoint az://ckpt/run1/step100\n"
      "  tar c dir | shoal cp - az://backups/dir.tar";
  std::string src, dst;
  bool recursive = false;
  bool fsync = false;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("SRC", src, "Source URL, path or -")->required();
    cmd->add_option("DST", dst, "Destination URL, path or -")->required();
    cmd->add_flag("-r,--recursive", recursive, "Copy every object under SRC (a prefix or directory)");
    cmd->add_flag("--fsync", fsync,
                  "fsync files written to a local path before returning (as file:// URLs always "
                  "are); by default they are renamed into place atomically, like cp");
    AddTransferFlags(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

Status Cp(const CpOptions& o, const client::CacheConfig& cache) {
  if (!cache.endpoint.empty() && ObjectUrl::IsUrl(o.dst)) {
    return WriteThrough(o.src, o.dst, o.recursive, o.common, cache);
  }
  SHOAL_ASSIGN_OR_RETURN(Location src, Resolve(o.src, false, &cache));
  SHOAL_ASSIGN_OR_RETURN(Location dst, Resolve(o.dst, o.fsync));
  return o.recursive ? CopyRecursive(src, dst, o.common) : CopyOne(src, dst, o.common);
}

struct CatOptions {
  static constexpr const char* kHelp = "Write an object to stdout.\nExample: shoal cat az://c/config.json | jq .";
  std::string url;
  uint64_t offset = 0;
  int64_t length = -1;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("URL", url, "Object URL or path")->required();
    const CLI::Validator bytes(
        [](std::string& text) {
          return ParseU64(text).ok() ? std::string() : "wants a number of bytes, 0 or more, got '" + text + "'";
        },
        "BYTES");
    cmd->add_option("--offset", offset, "First byte to write (default 0; past the end: nothing)")->check(bytes);
    cmd->add_option("--length", length, "Bytes to write at most (default: to the end)")->check(bytes);
    AddTransferFlags(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

Status Cat(const CatOptions& o, const client::CacheConfig& cache) {
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.url, false, &cache));
  SHOAL_ASSIGN_OR_RETURN(TransferOptions topts, o.common.Transfer());
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info,
                         o.offset == 0 ? loc.store->HeadToRead(loc.url.key) : loc.store->Head(loc.url.key));
  auto sink = [](const char* d, size_t n) { return WriteFd(STDOUT_FILENO, d, n); };
  if (o.offset == 0 && o.length < 0) return DownloadStream(*loc.store, info, sink, topts);
  // Clamped to the object, as an HTTP range is, whatever the store: the bytes that are there,
  // nothing from the end on (no request then, so no store answers a range past the end its
  // own way).
  ReadOptions ro;
  ro.offset = std::min(o.offset, info.size);
  ro.length = info.size - ro.offset;
  if (o.length >= 0) ro.length = std::min(ro.length, static_cast<uint64_t>(o.length));
  if (ro.length == 0) return Status::Ok();
  ro.if_match = info.etag;
  return loc.store->Get(loc.url.key, ro, sink);
}

struct LsOptions {
  static constexpr const char* kHelp =
      "List objects under a URL prefix. Without -r, keys are grouped at '/' like directories\n"
      "(PRE lines). Columns: last-modified (UTC), size in bytes, key. With --cache, the node\n"
      "lists (no store credentials needed here), with the writes acknowledged through any\n"
      "member and not yet uploaded; if the store cannot be reached, only those, and a warning.\n"
      "Example: shoal ls az://ckpt/run1/";
  std::string url;
  bool recursive = false;
  bool long_format = false;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("URL", url, "URL prefix (az://container/prefix, s3://bucket/prefix, path)")->required();
    cmd->add_flag("-r,--recursive", recursive, "List every key under the prefix, without grouping");
    cmd->add_flag("-l,--long", long_format, "Also show each object's ETag");
    AddCacheFlags(cmd, common);
  }
};

Status Ls(const LsOptions& o, const client::CacheConfig& cache) {
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.url, false, &cache));
  ListOptions lo;
  lo.prefix = loc.url.key;
  if (loc.local && IsLocalDir(loc)) lo.prefix = AsPrefix(lo.prefix);
  if (!o.recursive) lo.delimiter = "/";
  lo.allow_incomplete = true;  // through a node whose store is down: what the cluster holds
  std::string incomplete;
  while (true) {
    SHOAL_ASSIGN_OR_RETURN(ListPage page, loc.store->List(lo));
    if (!page.incomplete.empty()) incomplete = page.incomplete;
    // Keys as the store names them; local files as absolute paths.
    std::string lead = loc.local ? "/" : "";
    for (const auto& p : page.prefixes) {
      std::printf("%19s %12s  %s%s\n", "", "PRE", lead.c_str(), p.c_str());
    }
    for (const auto& obj : page.objects) {
      std::printf("%s %12llu  %s%s%s%s\n", FormatTime(obj.last_modified).c_str(),
                  static_cast<unsigned long long>(obj.size), lead.c_str(), obj.key.c_str(),
                  o.long_format ? "  " : "", o.long_format ? obj.etag.c_str() : "");
    }
    if (page.next_continuation.empty()) break;
    lo.continuation = page.next_continuation;
  }
  if (!incomplete.empty()) std::fprintf(stderr, "shoal ls: warning: %s\n", incomplete.c_str());
  return Status::Ok();
}

struct StatOptions {
  static constexpr const char* kHelp = "Show an object's size, ETag and last-modified time.";
  std::string url;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("URL", url, "Object URL or path")->required();
    AddCacheFlags(cmd, common);
  }
};

Status Stat(const StatOptions& o, const client::CacheConfig& cache) {
  if (!cache.endpoint.empty() && ObjectUrl::IsUrl(o.url)) {
    SHOAL_ASSIGN_OR_RETURN(auto obj, client::StatThroughCache(cache, o.url));
    std::printf("url:           %s\nsize:          %llu (%s)\netag:          %s\nstate:         %s\n",
                o.url.c_str(), static_cast<unsigned long long>(obj.info.size), FormatBytes(obj.info.size).c_str(),
                obj.info.etag.c_str(),
                obj.state == "local" ? "local (on the disks of the nodes that took it; upload to the store pending)"
                                     : "durable (in the object store)");
    return Status::Ok();
  }
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.url, false, &cache));
  SHOAL_ASSIGN_OR_RETURN(ObjectInfo info, loc.store->Head(loc.url.key));
  std::printf("url:           %s\nsize:          %llu (%s)\netag:          %s\nlast-modified: %s\n",
              loc.Name(info.key).c_str(), static_cast<unsigned long long>(info.size),
              FormatBytes(info.size).c_str(), info.etag.c_str(), FormatIso8601(info.last_modified).c_str());
  return Status::Ok();
}

struct RmOptions {
  static constexpr const char* kHelp =
      "Delete an object, or with -r every object under a prefix (16 at once, with a count on a\n"
      "terminal; one that cannot be deleted is reported at the end, and running the command again\n"
      "deletes what is left). With --cache, through the node: its writes of the object not yet\n"
      "uploaded are cancelled too.";
  std::string url;
  bool recursive = false;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("URL", url, "Object URL or prefix")->required();
    cmd->add_flag("-r,--recursive", recursive, "Delete every object under the prefix");
    AddQuietFlag(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

// Deletes `all`, kDeletesAtOnce at a time: each is one request to the store or the node, so one
// by one a prefix costs its object count times the store's latency (500 objects behind a store
// 20 ms away: 12.0 s one by one, 0.85 s 16 at once).
// Goes on past a failure, then says how many could not be deleted and why the first could not;
// an object already gone counts as deleted.
constexpr size_t kDeletesAtOnce = 16;
Status DeleteAll(ObjectStore& store, const std::vector<ObjectInfo>& all, const std::string& prefix, bool progress_shown) {
  Progress progress(std::to_string(all.size()) + " objects", all.size(), progress_shown, Progress::Unit::kCount);
  ForEachResult r = ForEachAtOnce(all.size(), kDeletesAtOnce, OnFailure::kGoOn, [&](size_t i, size_t) {
    Status st = store.Delete(all[i].key);
    if (st.code() == Code::kNotFound) st = Status::Ok();
    if (st.ok()) progress.bytes()->fetch_add(1);
    return st.WithContext(all[i].key);
  });
  progress.Finish();
  const uint64_t deleted = progress.bytes()->load();
  if (!r.ok()) {
    return r.first.WithContext("deleted " + std::to_string(deleted) + " of " + std::to_string(all.size()) +
                               " objects under " + prefix + "; " + std::to_string(r.failed) +
                               " could not be deleted (the same command again deletes what is left); the first");
  }
  std::fprintf(stderr, "deleted %llu objects\n", static_cast<unsigned long long>(deleted));
  return Status::Ok();
}

Status Rm(const RmOptions& o, const client::CacheConfig& cache) {
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.url, false, &cache));
  if (!o.recursive) {
    SHOAL_RETURN_IF_ERROR(loc.store->Head(loc.url.key).status());
    return loc.store->Delete(loc.url.key);
  }
  SHOAL_ASSIGN_OR_RETURN(std::vector<ObjectInfo> all, ListAll(*loc.store, AsPrefix(loc.url.key)));
  return DeleteAll(*loc.store, all, o.url, o.common.ShowProgress());
}

struct StatusOptions {
  static constexpr const char* kHelp =
      "Show a cache node's state for people: cache use, hits and misses, object-store "
      "traffic, errors.\nExample: shoal status --cache 127.0.0.1:7070";
  Common common;
  void Define(CLI::App* cmd) { AddCacheFlags(cmd, common); }
};

Status ShowStatus(const StatusOptions&, const client::CacheConfig& cache) {
  if (cache.endpoint.empty()) return Status::InvalidArgument("name the node: --cache HOST:PORT (or set SHOAL_CACHE)");
  SHOAL_ASSIGN_OR_RETURN(auto m, client::FetchMetrics(cache));
  auto g = [&](const char* name) { return static_cast<uint64_t>(m[std::string("shoal_") + name]); };
  auto seconds = [&](const char* name) { return m[std::string("shoal_") + name]; };
  uint64_t hits = g("chunk_hits_total"), misses = g("chunk_misses_total");
  std::printf("node          %s\n", cache.endpoint.c_str());
  std::printf("cache         %s in %llu chunks (%s not yet uploaded), %s of --capacity %s counted in disk "
              "blocks; %llu evicted, %llu corrupt dropped\n",
              FormatBytes(g("cache_bytes")).c_str(), static_cast<unsigned long long>(g("cache_chunks")),
              FormatBytes(g("cache_pinned_bytes")).c_str(), FormatBytes(g("cache_disk_bytes")).c_str(),
              FormatBytes(g("cache_capacity_bytes")).c_str(),
              static_cast<unsigned long long>(g("cache_evictions_total")),
              static_cast<unsigned long long>(g("cache_corruptions_total")));
  std::printf("reads         %llu requests, %s served; chunk hits %llu, misses %llu (%.0f%% hit), "
              "coalesced waits %llu, read ahead %llu\n",
              static_cast<unsigned long long>(g("requests_total")), FormatBytes(g("bytes_served_total")).c_str(),
              static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses),
              hits + misses > 0 ? 100.0 * hits / (hits + misses) : 0.0,
              static_cast<unsigned long long>(g("coalesced_waits_total")),
              static_cast<unsigned long long>(g("readahead_chunks_total")));
  auto u = [&](const char* name) { return static_cast<unsigned long long>(g(name)); };
  std::printf("object store  %llu GETs (%s), %llu HEADs; %llu PUTs (%s); %llu answered 429/503\n",
              u("store_get_requests_total"), FormatBytes(g("store_get_bytes_total")).c_str(),
              u("store_head_requests_total"), u("store_put_requests_total"),
              FormatBytes(g("store_put_bytes_total")).c_str(), u("store_throttles_total"));
  std::printf("write-back    %s written; %llu objects (%s) not yet durable, oldest %.1f s, %llu overdue; "
              "%llu uploaded; staged cap %s (peak %s), writers waited %llu times (%.1f s); "
              "upload window %llu parts (cut %llu times), %llu failed attempts\n",
              FormatBytes(g("bytes_written_total")).c_str(), u("staged_objects"),
              FormatBytes(g("staged_bytes")).c_str(), seconds("upload_lag_seconds"), u("uploads_overdue"),
              u("uploads_total"), FormatBytes(g("staged_cap_bytes")).c_str(),
              FormatBytes(g("staged_bytes_peak")).c_str(), u("writer_waits_total"),
              seconds("writer_wait_seconds_total"), u("upload_window"), u("upload_window_cuts_total"),
              u("upload_failures_total"));
  // One line per storage account uploaded to (shoal_account_*{account="..."}).
  const std::string kWindow = "shoal_account_upload_window{account=\"";
  for (auto it = m.lower_bound(kWindow); it != m.end() && StartsWith(it->first, kWindow); ++it) {
    std::string labels = it->first.substr(it->first.find('{'));
    auto a = [&](const char* family) { return m[std::string("shoal_") + family + labels]; };
    std::string account = labels.substr(kWindow.size() - kWindow.find('{'));
    account = account.substr(0, account.find('"'));
    std::printf("  account %-12s %s/s now, %s uploaded, %llu objects; window %.0f parts (smallest %.0f, cut %llu "
                "times), %llu in flight; %llu answered 429/503, %llu failed attempts\n",
                account.c_str(), FormatBytes(static_cast<uint64_t>(a("account_upload_rate_bytes"))).c_str(),
                FormatBytes(static_cast<uint64_t>(a("account_store_put_bytes_total"))).c_str(),
                static_cast<unsigned long long>(a("account_uploads_total")), a("account_upload_window"),
                a("account_upload_window_min"), static_cast<unsigned long long>(a("account_upload_window_cuts_total")),
                static_cast<unsigned long long>(a("account_parts_in_flight")),
                static_cast<unsigned long long>(a("account_store_throttles_total")),
                static_cast<unsigned long long>(a("account_upload_failures_total")));
  }
  std::printf("fan-in        %llu askers sent to holders; %llu chunks (%s) got from holders, %llu holders "
              "failed; %s to this host's processes (unix socket); %llu connections refused (busy)\n",
              u("fan_in_redirects_total"), u("fan_in_fetches_total"),
              FormatBytes(g("fan_in_fetch_bytes_total")).c_str(), u("fan_in_fallbacks_total"),
              FormatBytes(g("bytes_served_local_total")).c_str(), u("connections_refused_total"));
  std::printf("serving       %s by sendfile; %llu chunk reads checked against their checksum; %llu calls to "
              "other nodes waited for a connection (--peer-connections)\n",
              FormatBytes(g("sendfile_bytes_total")).c_str(), u("cache_checks_total"),
              u("peer_connection_waits_total"));
  std::printf("cluster       %llu opens asked the object's home; %llu chunks of writes not yet uploaded got from "
              "their holders; %llu writes homed here not yet uploaded\n",
              u("home_lookups_total"), u("holder_fetches_total"), u("homed_writes"));
  std::printf("errors        %llu not found, %llu store unavailable, %llu disk full, %llu other\n",
              u("errors_not_found_total"), u("errors_unavailable_total"), u("errors_disk_full_total"),
              u("errors_other_total"));
  Status ready = client::FetchReadiness(cache);
  std::printf("readiness     %s\n", ready.ok() ? "ready" : ready.message().c_str());
  if (m.count("shoal_membership_ok") > 0) {
    std::printf("membership    %s; etcd renewals unanswered %llu, leases lost %llu\n",
                g("membership_ok") ? "seen (etcd answers, lease held)" : "NOT SEEN (see readiness)",
                u("etcd_failed_renewals_total"), u("etcd_lease_losses_total"));
  }
  auto cluster = client::FetchCluster(cache);
  if (cluster.ok() && cluster->epoch > 0) PrintCluster(cache, *cluster);
  return Status::Ok();
}

struct FlushOptions {
  static constexpr const char* kHelp =
      "Show what a cache node still has to upload (under PREFIX), and how many writes the\n"
      "cluster has not made durable (copies of a dead node's writes included); with --wait,\n"
      "block until all of it is durable in the object store, showing progress.\n"
      "Example: shoal flush --wait --cache 127.0.0.1:7070 az://ckpt/run1/step100/";
  std::string prefix;
  bool wait = false;
  int timeout_s = 0;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("PREFIX", prefix, "URL prefix (default: everything)");
    cmd->add_flag("--wait", wait, "Wait until nothing under PREFIX is pending");
    cmd->add_option("--timeout", timeout_s, "With --wait: give up (exit 1) after this many seconds (default: never)");
    AddQuietFlag(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

Status Flush(const FlushOptions& o, const client::CacheConfig& cache) {
  if (cache.endpoint.empty()) return Status::InvalidArgument("name the node: --cache HOST:PORT (or set SHOAL_CACHE)");
  if (o.wait) {
    SHOAL_RETURN_IF_ERROR(WaitDurable(cache, o.prefix, o.timeout_s, o.common.quiet, /*whole_cluster=*/true));
  } else {
    SHOAL_ASSIGN_OR_RETURN(client::PendingWrites p, client::FetchPending(cache, o.prefix));
    if (p.cluster_objects > 0) {
      std::printf("pending: %s\n", client::DescribePending(p).c_str());
      return Status::Ok();
    }
  }
  std::printf("durable: nothing under '%s' is waiting for upload\n", o.prefix.c_str());
  return Status::Ok();
}

struct CommitOptions {
  static constexpr const char* kHelp =
      "Mark a checkpoint complete: write PREFIX/_SHOAL_COMMITTED, JSON naming every object\n"
      "under PREFIX with its size and ETag. Readers that find the marker know the checkpoint\n"
      "is whole (see shoal latest). With --cache, the marker is written as the objects were:\n"
      "it returns once the marker is on the cluster's nodes (--replicas of them), every member\n"
      "reads it at once, and it reaches the store only after every object it names (until\n"
      "then it names objects not yet uploaded by their local versions). --durable waits for\n"
      "all of it to be in the store instead. Without --cache, PREFIX is listed and marked in\n"
      "the object store directly.\n"
      "With --expect N (run by rank 0 once its own shard is written), first wait for the shards\n"
      "of ranks 0..N-1, named by --shard-name, to appear under PREFIX; the marker then names\n"
      "exactly those N shards. If --timeout passes first, no marker is written and the missing\n"
      "shards are named.\n"
      "Examples: shoal commit --cache 127.0.0.1:7070 az://ckpt/run1/step100/\n"
      "          shoal commit --expect 8 --shard-name 'model-{rank:5}.pt' --timeout 600 az://ckpt/run1/step100/";
  std::string prefix;
  int timeout_s = 0;
  uint32_t expect = 0;
  std::string shard_name = client::ShardSpec().name;
  bool durable = false;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("PREFIX", prefix, "URL prefix of the checkpoint")->required();
    cmd->add_flag("--durable", durable,
                  "With --cache: return only once every object under PREFIX, and the marker, are in the object store");
    cmd->add_option("--timeout", timeout_s, "Give up (exit 1) after waiting this many seconds (default: never)");
    cmd->add_option("--expect", expect, "Wait for this many ranks' shards; the marker names exactly them")
        ->check(CLI::Range(1u, 1000000u));
    cmd->add_option("--shard-name", shard_name,
                    "With --expect: each rank's shard, relative to PREFIX, {rank} (or {rank:W}, zero-padded "
                    "to W digits) standing for the rank (default rank-{rank})");
    AddQuietFlag(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

// A client (the binding's and the mount's) of the node `cache` (endpoint empty: the store direct).
std::unique_ptr<client::Client> OpenClient(const client::CacheConfig& cache) {
  return client::Client::Open(client::ClientOptions{}, cache);
}

// A URL for the client: a plain path as its file:// URL.
Result<std::string> AsUrl(const std::string& text) {
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(text));
  if (loc.stdio) return Status::InvalidArgument("- is not a prefix");
  return loc.local ? "file:///" + loc.url.key : loc.url.ToString();
}

Status Commit(const CommitOptions& o, const client::CacheConfig& cache) {
  if (o.timeout_s < 0) return Status::InvalidArgument("--timeout must be 0 or more");
  SHOAL_ASSIGN_OR_RETURN(std::string prefix, AsUrl(o.prefix));
  // A local directory is marked directly, never through a node.
  auto c = OpenClient(ObjectUrl::IsUrl(o.prefix) ? cache : client::CacheConfig{});
  StatusLine line(o.common.quiet);
  client::ShardSpec shards{o.expect, o.shard_name};
  auto marker = client::CommitCheckpoint(
      *c, prefix, shards, o.timeout_s,
      [&](const client::CommitProgress& p) {
        if (!p.pending.empty()) {
          line.Show("waiting: " + p.pending);
        } else {
          line.Show("waiting for shards: " + std::to_string(p.shards_present) + " of " + std::to_string(p.shards) +
                    " under " + prefix + "; missing " + JoinNames(p.missing, 5));
        }
      },
      o.durable);
  line.Clear();
  SHOAL_RETURN_IF_ERROR(marker.status());
  auto j = nlohmann::json::parse(*marker, nullptr, false);
  if (j.is_discarded()) return Status::IOError("the commit marker is not JSON");
  std::printf("committed %llu %s (%s) under %s: %s%s\n", static_cast<unsigned long long>(j.value("objects", 0ull)),
              j.value("objects", 0ull) == 1 ? "object" : "objects",
              FormatBytes(j.value("bytes", 0ull)).c_str(), j.value("prefix", std::string()).c_str(),
              j.value("prefix", std::string()).c_str(), kCommitMarker);
  return Status::Ok();
}

struct LatestOptions {
  static constexpr const char* kHelp =
      "Print the URL of the newest complete checkpoint step under PREFIX: the newest step\n"
      "(PREFIX/<step>/, ordered by the last number in its name) whose _SHOAL_COMMITTED marker\n"
      "exists and whose objects are all still the ones the marker names (same size and ETag).\n"
      "A step being written, or one whose files changed after its commit, is passed over.\n"
      "Exit status: 0 found (its URL on stdout); 3 no step under PREFIX is complete; 1 the\n"
      "listing or a read failed; 2 usage.\n"
      "Example: shoal latest --cache 127.0.0.1:7070 az://ckpt/run1/";
  std::string prefix;
  bool json = false;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("PREFIX", prefix, "URL prefix whose subprefixes are the steps")->required();
    cmd->add_flag("--json", json,
                  "Print JSON instead: url (null when none), objects, bytes, committed_at, and skipped "
                  "(each newer step passed over, with why)");
    AddCacheFlags(cmd, common);
  }
};

inline constexpr int kNoCompleteCheckpoint = 3;

Result<int> Latest(const LatestOptions& o, const client::CacheConfig& cache) {
  SHOAL_ASSIGN_OR_RETURN(std::string prefix, AsUrl(o.prefix));
  auto c = OpenClient(ObjectUrl::IsUrl(o.prefix) ? cache : client::CacheConfig{});
  SHOAL_ASSIGN_OR_RETURN(client::LatestCheckpoint latest, client::FindLatestCheckpoint(*c, prefix));
  if (!latest.incomplete.empty()) std::fprintf(stderr, "shoal latest: warning: %s\n", latest.incomplete.c_str());
  if (o.json) {
    nlohmann::json out = {{"url", nullptr}, {"steps", latest.steps}, {"skipped", nlohmann::json::array()}};
    if (!latest.incomplete.empty()) out["incomplete"] = latest.incomplete;
    for (const auto& s : latest.skipped) out["skipped"].push_back({{"url", s.url}, {"reason", s.reason}});
    if (latest.found) {
      auto marker = nlohmann::json::parse(latest.marker, nullptr, false);
      out["url"] = latest.url;
      out["objects"] = marker.value("objects", 0ull);
      out["bytes"] = marker.value("bytes", 0ull);
      out["committed_at"] = marker.value("committed_at", std::string());
      if (marker.contains("shards")) out["shards"] = marker["shards"];
    }
    std::printf("%s\n", out.dump(1).c_str());
  } else if (latest.found) {
    std::printf("%s\n", latest.url.c_str());
  }
  if (latest.found) return 0;
  if (!o.json) {
    std::string why;
    for (size_t i = 0; i < latest.skipped.size() && i < 5; i++) {
      why += (i ? "; " : "") + latest.skipped[i].url + ": " + latest.skipped[i].reason;
    }
    std::fprintf(stderr, "shoal latest: no complete checkpoint under %s (%zu steps%s%s)\n", prefix.c_str(),
                 latest.steps, why.empty() ? "" : ": ", why.c_str());
  }
  return kNoCompleteCheckpoint;
}

struct WarmupOptions {
  static constexpr const char* kHelp =
      "Fill the cache with every object under PREFIX before a job reads it: each chunk is\n"
      "fetched from the object store by the node that owns it, every node at once.\n"
      "--broadcast puts a copy on every member (a model all nodes load at job start): each\n"
      "chunk still leaves the store once, and nodes pass it on to each other.\n"
      "Example: shoal warmup --cache 127.0.0.1:7070 az://datasets/imagenet/train/";
  std::string prefix;
  bool broadcast = false;
  int per_node = 4;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("PREFIX", prefix, "URL prefix (or one object)")->required();
    cmd->add_flag("--broadcast", broadcast, "Every member of the cluster keeps a copy, not only each chunk's owner");
    cmd->add_option("-j,--per-node", per_node, "Chunks fetched at once on each node (default 4)");
    AddQuietFlag(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

Status Warmup(const WarmupOptions& o, const client::CacheConfig& cache) {
  if (cache.endpoint.empty()) {
    return Status::InvalidArgument("name a node of the cluster: --cache HOST:PORT (or set SHOAL_CACHE)");
  }
  if (o.per_node < 1 || o.per_node > 64) return Status::InvalidArgument("--per-node must be 1 to 64");
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.prefix, false, &cache));  // listed by the node
  SHOAL_ASSIGN_OR_RETURN(std::vector<ObjectInfo> listed, ListAll(*loc.store, loc.url.key));
  // Writes not yet uploaded are on the node that took them already, and not in the store.
  SHOAL_ASSIGN_OR_RETURN(client::PendingWrites pending, client::FetchPending(cache, loc.url.ToString()));
  std::set<std::string> local;
  for (const auto& p : pending.list) local.insert(p.key);
  std::vector<std::pair<std::string, ObjectInfo>> objects;
  uint64_t total = 0;
  for (const auto& obj : listed) {
    if (local.count(loc.url.WithKey(obj.key).ToString())) continue;
    objects.push_back({loc.url.WithKey(obj.key).ToString(), obj});
    total += obj.size;
  }
  uint64_t copies = 1;
  if (o.broadcast) {
    SHOAL_ASSIGN_OR_RETURN(client::ClusterInfo cluster, client::FetchCluster(cache));
    copies = std::max<uint64_t>(1, cluster.members.size());
  }
  Progress progress(std::to_string(objects.size()) + " objects" +
                        (copies > 1 ? " x " + std::to_string(copies) + " nodes" : ""),
                    total * copies, o.common.ShowProgress());
  client::WarmupProgress done(progress.bytes());
  Status st = client::WarmUp(cache, objects, o.per_node, &done, o.broadcast);
  progress.Finish();
  const double seconds = progress.Seconds();
  const uint64_t warmed = progress.bytes()->load();
  SHOAL_RETURN_IF_ERROR(st);
  if (!o.common.quiet) {
    std::printf("warmed %zu objects (%s in %llu chunks%s) in %.1f s: %s fetched now, %s already cached\n",
                objects.size(), FormatBytes(total).c_str(), static_cast<unsigned long long>(done.chunks.load()),
                copies > 1 ? (" over " + std::to_string(copies) + " nodes").c_str() : "", seconds,
                FormatBytes(done.fetched.load()).c_str(), FormatBytes(warmed - done.fetched.load()).c_str());
  }
  return Status::Ok();
}

struct DrainOptions {
  static constexpr const char* kHelp =
      "Take a node out of its cluster for good: it leaves the membership (its slots move to\n"
      "the others), then hands every write it has not uploaded yet to a node that stays (the\n"
      "holder of its copy, which has the bytes already, else the object's new owner) and moves\n"
      "the copies it holds for others. Waits until it is done; then the node can be stopped.\n"
      "Example: shoal drain 10.0.0.7:7070   (or unix:/run/shoal/shoal.sock on the node's host, or a\n"
      "node id, with --cache naming any member)";
  std::string node;
  int timeout_s = 0;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("NODE", node,
                    "HOST:PORT of the node, unix:PATH (its --socket, on its host), or its id (looked up "
                    "through --cache)")
        ->required();
    cmd->add_option("--timeout", timeout_s, "Give up (exit 1) after this many seconds (default: never)");
    AddQuietFlag(cmd, common);
    AddCacheFlags(cmd, common);
  }
};

Status Drain(const DrainOptions& o, const client::CacheConfig& cache) {
  return DrainNode(cache, o.node, o.timeout_s, o.common.quiet);
}

struct MbOptions {
  static constexpr const char* kHelp = "Create a container or bucket (ok if it exists).\nExample: shoal mb az://models";
  std::string url;
  Common common;
  void Define(CLI::App* cmd) { cmd->add_option("URL", url, "az://container or s3://bucket")->required(); }
};

Status Mb(const MbOptions& o, const client::CacheConfig&) {
  SHOAL_ASSIGN_OR_RETURN(Location loc, Resolve(o.url));
  return loc.store->CreateBucket();
}

struct MountCommandOptions {
  static constexpr const char* kHelp =
      "Mount the objects under URL_PREFIX as files at MOUNTPOINT (FUSE). With --cache, reads\n"
      "come from the node's cache and a file written there is acknowledged at close once it is\n"
      "on the node (write-back; see shoal flush; --async-close moves that wait to fsync and\n"
      "`sync DIR`); without, straight to the object store.\n"
      "A file being written may be rewritten anywhere, truncated and appended to (a new version\n"
      "of the object, kept in a spool file in $TMPDIR); it appears whole at close. rename copies\n"
      "(objects have no rename).\n"
      "See docs/mount.md. Detaches once mounted unless --foreground; `shoal unmount` ends it.\n"
      "Example: shoal mount --cache 127.0.0.1:7070 az://ckpt/run1/ /mnt/ckpt";
  mount::MountOptions mount;
  std::string fsync_waits = "replicated";
  Common common;
  MountCommandOptions() {
    mount.uid = ::getuid();
    mount.gid = ::getgid();
  }
  void Define(CLI::App* cmd) {
    cmd->add_option("URL_PREFIX", mount.url, "az://container/prefix/, s3://bucket/prefix/ or file:///dir/")->required();
    cmd->add_option("MOUNTPOINT", mount.mountpoint, "An empty directory")->required();
    cmd->add_flag("--read-only", mount.read_only, "Refuse every change (EROFS)");
    cmd->add_flag("--allow-other", mount.allow_other,
                  "Let other users use the mount (as root, or with user_allow_other in /etc/fuse.conf)");
    cmd->add_option("--uid", mount.uid, "Owner of every file and directory (default: yours)");
    cmd->add_option("--gid", mount.gid, "Group of every file and directory (default: yours)");
    cmd->add_option("--metadata-ttl", mount.metadata_ttl,
                    "Seconds sizes, ETags and listings are trusted before they are asked again (default 60; "
                    "0: every time)");
    cmd->add_option("--fsync-waits", fsync_waits,
                    "What fsync waits for: replicated (the default: on the node, and on its copies' nodes in a "
                    "cluster, as close) or durable (in the object store)")
        ->check(CLI::IsMember({"replicated", "durable"}));
    cmd->add_flag("--kernel-cache", mount.kernel_cache,
                  "Keep every file's data in the kernel's page cache. By default files of 32 MiB and more "
                  "bypass it (direct I/O): large reads are faster and the data is not held in memory twice, "
                  "but each read call goes to the mount, so programs that read big files in small pieces "
                  "(dd bs=4k, tar) are faster with this flag, as are repeated reads of the same file");
    cmd->add_flag("--async-close", mount.async_close,
                  "close returns once the mount holds the file's bytes, not once the node acknowledged it; "
                  "up to 16 files are acknowledged at once in the background, so a serial writer of many small "
                  "files (cp -r) does not wait for each. fsync of the file, or of a directory above it (`sync "
                  "DIR`), waits for the acknowledgement and reports a failure, as does `shoal unmount`; a later "
                  "open of the file waits for it. A file not yet acknowledged when the mount is killed (-9) is "
                  "lost");
    cmd->add_flag("-f,--foreground", mount.foreground,
                  "Stay in the foreground (logs on stderr). Detached, the mount logs on only into a stderr that "
                  "is a file (2>> mount.log)");
    AddCacheFlags(cmd, common);
  }
};

// Returns mount::Run's exit code (it reports its own errors), or a usage error.
Result<int> Mount(const MountCommandOptions& o, const client::CacheConfig&) {
  mount::MountOptions mo = o.mount;
  mo.client.cache = o.common.cache;
  mo.client.token_file = o.common.token_file;
  mo.client.tls_ca = o.common.tls_ca;
  mo.fsync_durable = o.fsync_waits == "durable";
  if (mo.metadata_ttl < 0) return Status::InvalidArgument("--metadata-ttl must be 0 or more");
  return mount::Run(mo);
}

struct UnmountOptions {
  static constexpr const char* kHelp =
      "Unmount a `shoal mount`, once the files written through it are on the node (an --async-close\n"
      "mount's closes return before that): exit 1, naming the failure, if one of them could not be\n"
      "stored. While it waits it says so every 10 s. A mount whose process is stopped or hung never\n"
      "answers: --timeout gives up (nothing unmounted); `fusermount3 -uz DIR` detaches it at once.\n"
      "Example: shoal unmount /mnt/ckpt";
  std::string mountpoint;
  int timeout = 0;
  Common common;
  void Define(CLI::App* cmd) {
    cmd->add_option("MOUNTPOINT", mountpoint, "Where it is mounted")->required();
    cmd->add_option("--timeout", timeout,
                    "Seconds to wait for the mount's files before giving up, unmounting nothing (0: as long as "
                    "it takes)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
  }
};

Status Unmount(const UnmountOptions& o, const client::CacheConfig&) { return mount::Unmount(o.mountpoint, o.timeout); }

// A parsed command's run: the node from its --cache / --token-file (or the environment), then
// the command; the exit code (1 and a message naming the command when it failed).
using Runner = std::function<int()>;

// Adds the command `name` to `app`: its options (O::Define, O::kHelp) and `run`, which returns
// Status (exit 0 or 1) or Result<int> (the exit code, or 1).
template <class O, class R>
std::pair<CLI::App*, Runner> Add(CLI::App& app, const std::string& name,
                                 R (*run)(const O&, const client::CacheConfig&)) {
  auto options = std::make_shared<O>();
  CLI::App* cmd = app.add_subcommand(name, O::kHelp);
  options->Define(cmd);
  return {cmd, [options, name, run]() -> int {
            auto cache = client::CacheConfig::Resolve(options->common.cache, options->common.token_file,
                                                     options->common.tls_ca);
            if (!cache.ok()) return Fail(name, cache.status());
            auto r = run(*options, *cache);
            if constexpr (std::is_same_v<R, Status>) {
              return r.ok() ? 0 : Fail(name, r);
            } else {
              return r.ok() ? *r : Fail(name, r.status());
            }
          }};
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{
      "shoal: copy, list and inspect objects in Azure Blob (az://container/key), S3\n"
      "(s3://bucket/key) and local directories (file:///dir/key or a plain path).\n\n"
      "Credentials come from the environment, as the Azure and AWS tools take them:\n"
      "  AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY,\n"
      "  AZURE_STORAGE_SAS_TOKEN or an Entra ID identity (AZURE_TENANT_ID and AZURE_CLIENT_ID\n"
      "  with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, else a managed identity;\n"
      "  docs/azure-identity.md) (AZURE_STORAGE_BLOB_ENDPOINT for a custom endpoint);\n"
      "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,\n"
      "  AWS_ENDPOINT_URL (a custom endpoint, addressed path-style).",
      "shoal"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("shoal ") + Version());
  // Every command, in the order --help lists them.
  const std::vector<std::pair<CLI::App*, Runner>> commands = {
      Add(app, "cp", Cp),
      Add(app, "cat", Cat),
      Add(app, "ls", Ls),
      Add(app, "stat", Stat),
      Add(app, "rm", Rm),
      Add(app, "status", ShowStatus),
      Add(app, "flush", Flush),
      Add(app, "commit", Commit),
      Add(app, "latest", Latest),
      Add(app, "warmup", Warmup),
      Add(app, "drain", Drain),
      Add(app, "mb", Mb),
      Add(app, "mount", Mount),
      Add(app, "unmount", Unmount),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return UsageError(app, e, argc, argv);
  }
  for (const auto& [cmd, run] : commands) {
    if (cmd->parsed()) return run();
  }
  return 2;
}

}  // namespace shoal::cli
