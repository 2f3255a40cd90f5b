#include "cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/progress.h"
#include "client/cache_store.h"
#include "mount/mount.h"
#include "common/strings.h"
#include "store/commit.h"
#include "store/local/local_store.h"
#include "store/object_store.h"
#include "store/transfer.h"

namespace shoal::cli {
namespace {

namespace fs = std::filesystem;

// Flags shared by the commands that move data.
struct Common {
  std::string part_size = "8MiB";
  int concurrency = 8;
  bool quiet = false;
  bool no_progress = false;
  bool fsync = false;
  std::string cache;       // HOST:PORT of a shoald to read through (or SHOAL_CACHE)
  std::string token_file;  // its shared secret (or SHOAL_TOKEN_FILE)

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
  Result<ObjectInfo> head = src.store->Head(src.url.key);
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
  // Small objects go several at a time; large ones one at a time, each in parallel parts.
  std::mutex mu;
  size_t next = 0;
  Status first_error;
  auto worker = [&] {
    TransferOptions small = topts;
    small.concurrency = 1;
    while (true) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.ok()) return;
        while (next < objects.size() && objects[next].size > topts.part_size) next++;
        if (next >= objects.size()) return;
        i = next++;
      }
      const ObjectInfo& o = objects[i];
      auto r = CopyObject(*src.store, o, *dst.store, dst_prefix + o.key.substr(prefix.size()), small);
      if (!r.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = r.status().WithContext("copying " + src.Name(o.key));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < topts.concurrency; i++) threads.emplace_back(worker);
  for (const auto& o : objects) {
    if (o.size <= topts.part_size) continue;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!first_error.ok()) break;
    }
    auto r = CopyObject(*src.store, o, *dst.store, dst_prefix + o.key.substr(prefix.size()), topts);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = r.status().WithContext("copying " + src.Name(o.key));
    }
  }
  for (auto& t : threads) t.join();
  return first_error;
}

// One file (or stdin, "-") written through the node.
Status WriteFileThrough(const std::string& path, const std::string& url, const client::CacheConfig& cache,
                        std::atomic<uint64_t>* progress) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound(path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  uint64_t size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : client::kUnknownSize;
  FdSource source(fd, path == "-" ? "stdin" : path);
  auto r = client::WriteThroughCache(cache, url, source, size, progress);
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
  std::mutex mu;
  size_t next = 0;
  Status first_error;
  auto worker = [&] {
    while (true) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.ok() || next >= files.size()) return;
        i = next++;
      }
      std::string rel = fs::relative(files[i].first, src).generic_string();
      Status st = WriteFileThrough(files[i].first, url.WithKey(prefix + rel).ToString(), cache, progress.bytes());
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min<int>(common.concurrency, static_cast<int>(files.size())); i++) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return first_error;
}

// Polls the node until nothing under `prefix` is pending (or `timeout_s` passes, when not 0),
// showing progress on stderr: redrawn on a terminal, a line every 10 s otherwise.
Status WaitDurable(const client::CacheConfig& cache, const std::string& prefix, int timeout_s, bool quiet) {
  bool tty = Progress::StderrIsTerminal() && !quiet;
  auto last_line = std::chrono::steady_clock::now();
  Status st = client::WaitDurable(cache, prefix, timeout_s, [&](const client::PendingWrites& p) {
    std::string line = "waiting: " + client::DescribePending(p);
    auto now = std::chrono::steady_clock::now();
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s", line.substr(0, 160).c_str());
    } else if (!quiet && now - last_line >= std::chrono::seconds(10)) {
      std::fprintf(stderr, "%s\n", line.c_str());
      last_line = now;
    }
  });
  if (tty) std::fprintf(stderr, "\r\033[K");
  return st;
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
  if (name.find_first_of(":[") != std::string::npos) {  // HOST:PORT or [V6]:PORT
    auto hp = SplitHostPort(name);
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
    auto g = [&](const char* name) { return (*metrics)[std::string("shoal_") + name]; };
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

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{
      "shoal: copy, list and inspect objects in Azure Blob (az://container/key), S3\n"
      "(s3://bucket/key) and local directories (file:///dir/key or a plain path).\n\n"
      "Credentials come from the environment, as the Azure and AWS tools take them:\n"
      "  AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY\n"
      "  or AZURE_STORAGE_SAS_TOKEN (AZURE_STORAGE_BLOB_ENDPOINT for a custom endpoint);\n"
      "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,\n"
      "  AWS_ENDPOINT_URL (a custom endpoint, addressed path-style).",
      "shoal"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "shoal 0.1.0");
  Common common;
  auto add_transfer_flags = [&](CLI::App* cmd) {
    cmd->add_option("--part-size", common.part_size,
                    "Size of each part moved in parallel (default 8MiB; S3 needs >= 5MiB)");
    cmd->add_option("-j,--concurrency", common.concurrency, "Parts in flight at once (default 8)");
    cmd->add_flag("-q,--quiet", common.quiet, "No progress bar");
    cmd->add_flag("--no-progress", common.no_progress, "No progress bar");
  };
  auto add_cache_flags = [&](CLI::App* cmd) {
    cmd->add_option("--cache", common.cache,
                    "Go through the shoald at HOST:PORT, or at unix:PATH on this host (shoald "
                    "--socket; that node then fetches every chunk for this host and passes it on to "
                    "other nodes) (default: $SHOAL_CACHE): reads are served "
                    "from its cache; cp FILE URL is acknowledged once on the node's disk and "
                    "uploaded in the background (see shoal flush)");
    cmd->add_option("--token-file", common.token_file,
                    "File with the cache node's shared secret (default: $SHOAL_TOKEN_FILE)");
  };

  std::string src, dst, url;
  bool recursive = false, long_format = false;
  uint64_t offset = 0;
  int64_t length = -1;

  CLI::App* cp = app.add_subcommand(
      "cp",
      "Copy an object or a file. SRC and DST are each a URL, a local path, or - (stdin/stdout).\n"
      "A DST that ends in / (or is a directory) gets SRC's file name. Large objects move in\n"
      "parallel parts; nothing appears at DST until the copy is complete.\n"
      "Examples:\n"
      "  shoal cp model.bin az://models/llama/model.bin\n"
      "  shoal cp s3://data/shard-0001 ./shards/\n"
      "  shoal cp -r ./checkpoint az://ckpt/run1/step100\n"
      "  tar c dir | shoal cp - az://backups/dir.tar");
  cp->add_option("SRC", src, "Source URL, path or -")->required();
  cp->add_option("DST", dst, "Destination URL, path or -")->required();
  cp->add_flag("-r,--recursive", recursive, "Copy every object under SRC (a prefix or directory)");
  cp->add_flag("--fsync", common.fsync,
               "fsync files written to a local path before returning (as file:// URLs always "
               "are); by default they are renamed into place atomically, like cp");
  add_transfer_flags(cp);
  add_cache_flags(cp);

  CLI::App* cat = app.add_subcommand("cat", "Write an object to stdout.\nExample: shoal cat az://c/config.json | jq .");
  cat->add_option("URL", url, "Object URL or path")->required();
  const CLI::Validator bytes(
      [](std::string& text) {
        return ParseU64(text).ok() ? std::string() : "wants a number of bytes, 0 or more, got '" + text + "'";
      },
      "BYTES");
  cat->add_option("--offset", offset, "First byte to write (default 0)")->check(bytes);
  cat->add_option("--length", length, "Bytes to write (default: to the end)")->check(bytes);
  add_transfer_flags(cat);
  add_cache_flags(cat);

  CLI::App* ls = app.add_subcommand(
      "ls",
      "List objects under a URL prefix. Without -r, keys are grouped at '/' like directories\n"
      "(PRE lines). Columns: last-modified (UTC), size in bytes, key.\n"
      "Example: shoal ls az://ckpt/run1/");
  ls->add_option("URL", url, "URL prefix (az://container/prefix, s3://bucket/prefix, path)")->required();
  ls->add_flag("-r,--recursive", recursive, "List every key under the prefix, without grouping");
  ls->add_flag("-l,--long", long_format, "Also show each object's ETag");

  CLI::App* stat = app.add_subcommand("stat", "Show an object's size, ETag and last-modified time.");
  stat->add_option("URL", url, "Object URL or path")->required();
  add_cache_flags(stat);

  CLI::App* rm = app.add_subcommand("rm", "Delete an object, or with -r every object under a prefix.");
  rm->add_option("URL", url, "Object URL or prefix")->required();
  rm->add_flag("-r,--recursive", recursive, "Delete every object under the prefix");

  CLI::App* status = app.add_subcommand(
      "status", "Show a cache node's state for people: cache use, hits and misses, object-store "
                "traffic, errors.\nExample: shoal status --cache 127.0.0.1:7070");
  add_cache_flags(status);

  bool wait = false;
  std::string prefix;
  CLI::App* flush = app.add_subcommand(
      "flush",
      "Show what a cache node still has to upload (under PREFIX); with --wait, block until\n"
      "all of it is durable in the object store, showing progress.\n"
      "Example: shoal flush --wait --cache 127.0.0.1:7070 az://ckpt/run1/step100/");
  flush->add_option("PREFIX", prefix, "URL prefix (default: everything)");
  int timeout_s = 0;
  flush->add_flag("--wait", wait, "Wait until nothing under PREFIX is pending");
  flush->add_option("--timeout", timeout_s, "With --wait: give up (exit 1) after this many seconds (default: never)");
  flush->add_flag("-q,--quiet", common.quiet, "No progress");
  add_cache_flags(flush);

  CLI::App* commit = app.add_subcommand(
      "commit",
      "Mark a checkpoint complete: wait until everything under PREFIX is durable, then write\n"
      "PREFIX/_SHOAL_COMMITTED, JSON naming every object under PREFIX with its size and ETag.\n"
      "Readers that find the marker know the checkpoint is whole. Without --cache, PREFIX is\n"
      "listed and marked in the object store directly.\n"
      "Example: shoal commit --cache 127.0.0.1:7070 az://ckpt/run1/step100/");
  commit->add_option("PREFIX", prefix, "URL prefix of the checkpoint")->required();
  commit->add_option("--timeout", timeout_s, "Give up (exit 1) after waiting this many seconds (default: never)");
  commit->add_flag("-q,--quiet", common.quiet, "No progress");
  add_cache_flags(commit);

  int per_node = 4;
  bool broadcast = false;
  CLI::App* warmup = app.add_subcommand(
      "warmup",
      "Fill the cache with every object under PREFIX before a job reads it: each chunk is\n"
      "fetched from the object store by the node that owns it, every node at once.\n"
      "--broadcast puts a copy on every member (a model all nodes load at job start): each\n"
      "chunk still leaves the store once, and nodes pass it on to each other.\n"
      "Example: shoal warmup --cache 127.0.0.1:7070 az://datasets/imagenet/train/");
  warmup->add_option("PREFIX", prefix, "URL prefix (or one object)")->required();
  warmup->add_flag("--broadcast", broadcast, "Every member of the cluster keeps a copy, not only each chunk's owner");
  warmup->add_option("-j,--per-node", per_node, "Chunks fetched at once on each node (default 4)");
  warmup->add_flag("-q,--quiet", common.quiet, "No progress");
  add_cache_flags(warmup);

  std::string node_name;
  CLI::App* drain = app.add_subcommand(
      "drain",
      "Take a node out of its cluster for good: it leaves the membership (its slots move to\n"
      "the others), then hands every write it has not uploaded yet to a node that stays (the\n"
      "holder of its copy, which has the bytes already, else the object's new owner) and moves\n"
      "the copies it holds for others. Waits until it is done; then the node can be stopped.\n"
      "Example: shoal drain 10.0.0.7:7070   (or a node id, with --cache naming any member)");
  drain->add_option("NODE", node_name, "HOST:PORT of the node, or its id (looked up through --cache)")->required();
  drain->add_option("--timeout", timeout_s, "Give up (exit 1) after this many seconds (default: never)");
  drain->add_flag("-q,--quiet", common.quiet, "No progress");
  add_cache_flags(drain);

  CLI::App* mb = app.add_subcommand("mb", "Create a container or bucket (ok if it exists).\nExample: shoal mb az://models");
  mb->add_option("URL", url, "az://container or s3://bucket")->required();

  mount::MountOptions mo;
  mo.uid = ::getuid();
  mo.gid = ::getgid();
  std::string fsync_waits = "replicated";
  CLI::App* mnt = app.add_subcommand(
      "mount",
      "Mount the objects under URL_PREFIX as files at MOUNTPOINT (FUSE). With --cache, reads\n"
      "come from the node's cache and a file written there is acknowledged at close once it is\n"
      "on the node (write-back; see shoal flush); without, straight to the object store.\n"
      "Files are written front to back and appear whole at close; writing into the middle of\n"
      "an existing file fails with EOPNOTSUPP. rename copies (objects have no rename).\n"
      "See docs/mount.md. Detaches once mounted unless --foreground; `shoal unmount` ends it.\n"
      "Example: shoal mount --cache 127.0.0.1:7070 az://ckpt/run1/ /mnt/ckpt");
  mnt->add_option("URL_PREFIX", url, "az://container/prefix/, s3://bucket/prefix/ or file:///dir/")->required();
  mnt->add_option("MOUNTPOINT", mo.mountpoint, "An empty directory")->required();
  mnt->add_flag("--read-only", mo.read_only, "Refuse every change (EROFS)");
  mnt->add_flag("--allow-other", mo.allow_other,
                "Let other users use the mount (as root, or with user_allow_other in /etc/fuse.conf)");
  mnt->add_option("--uid", mo.uid, "Owner of every file and directory (default: yours)");
  mnt->add_option("--gid", mo.gid, "Group of every file and directory (default: yours)");
  mnt->add_option("--metadata-ttl", mo.metadata_ttl,
                  "Seconds sizes, ETags and listings are trusted before they are asked again (default 60; "
                  "0: every time)");
  mnt->add_option("--fsync-waits", fsync_waits,
                  "What fsync waits for: replicated (the default: on the node, and on its copies' nodes in a "
                  "cluster, as close) or durable (in the object store)")
      ->check(CLI::IsMember({"replicated", "durable"}));
  mnt->add_flag("--kernel-cache", mo.kernel_cache,
                "Keep every file's data in the kernel's page cache. By default files of 32 MiB and more "
                "bypass it (direct I/O): large reads are faster and the data is not held in memory twice, "
                "but each read call goes to the mount, so programs that read big files in small pieces "
                "(dd bs=4k, tar) are faster with this flag, as are repeated reads of the same file");
  mnt->add_flag("-f,--foreground", mo.foreground, "Stay in the foreground (logs on stderr)");
  add_cache_flags(mnt);

  std::string mountpoint;
  CLI::App* umnt = app.add_subcommand("unmount", "Unmount a `shoal mount`.\nExample: shoal unmount /mnt/ckpt");
  umnt->add_option("MOUNTPOINT", mountpoint, "Where it is mounted")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return UsageError(app, e, argc, argv);
  }

  // The cache node from --cache/--token-file or SHOAL_CACHE/SHOAL_TOKEN_FILE.
  auto cache = client::CacheConfig::Resolve(common.cache, common.token_file);
  if (!cache.ok()) return Fail(app.get_subcommands().front()->get_name(), cache.status());
  if (mnt->parsed()) {
    mo.url = url;
    mo.client.cache = common.cache;
    mo.client.token_file = common.token_file;
    mo.fsync_durable = fsync_waits == "durable";
    if (mo.metadata_ttl < 0) return Fail("mount", Status::InvalidArgument("--metadata-ttl must be 0 or more"));
    return mount::Run(mo);
  }
  if (umnt->parsed()) {
    Status st = mount::Unmount(mountpoint);
    return st.ok() ? 0 : Fail("unmount", st);
  }
  if (cp->parsed()) {
    if (!cache->endpoint.empty() && ObjectUrl::IsUrl(dst)) {
      Status st = WriteThrough(src, dst, recursive, common, *cache);
      return st.ok() ? 0 : Fail("cp", st);
    }
    auto s = Resolve(src, false, &*cache);
    if (!s.ok()) return Fail("cp", s.status());
    auto d = Resolve(dst, common.fsync);
    if (!d.ok()) return Fail("cp", d.status());
    Status st = recursive ? CopyRecursive(*s, *d, common) : CopyOne(*s, *d, common);
    return st.ok() ? 0 : Fail("cp", st);
  }
  if (cat->parsed()) {
    auto loc = Resolve(url, false, &*cache);
    if (!loc.ok()) return Fail("cat", loc.status());
    auto topts = common.Transfer();
    if (!topts.ok()) return Fail("cat", topts.status());
    auto info = loc->store->Head(loc->url.key);
    if (!info.ok()) return Fail("cat", info.status());
    auto sink = [](const char* d, size_t n) { return WriteFd(STDOUT_FILENO, d, n); };
    Status st;
    if (offset == 0 && length < 0) {
      st = DownloadStream(*loc->store, *info, sink, *topts);
    } else {
      ReadOptions ro;
      ro.offset = offset;
      if (length >= 0) ro.length = static_cast<uint64_t>(length);
      ro.if_match = info->etag;
      st = loc->store->Get(loc->url.key, ro, sink);
    }
    return st.ok() ? 0 : Fail("cat", st);
  }
  if (ls->parsed()) {
    auto loc = Resolve(url);
    if (!loc.ok()) return Fail("ls", loc.status());
    ListOptions lo;
    lo.prefix = loc->url.key;
    if (loc->local && IsLocalDir(*loc)) lo.prefix = AsPrefix(lo.prefix);
    if (!recursive) lo.delimiter = "/";
    while (true) {
      auto page = loc->store->List(lo);
      if (!page.ok()) return Fail("ls", page.status());
      // Keys as the store names them; local files as absolute paths.
      std::string lead = loc->local ? "/" : "";
      for (const auto& p : page->prefixes) {
        std::printf("%19s %12s  %s%s\n", "", "PRE", lead.c_str(), p.c_str());
      }
      for (const auto& o : page->objects) {
        std::printf("%s %12llu  %s%s%s%s\n", FormatTime(o.last_modified).c_str(),
                    static_cast<unsigned long long>(o.size), lead.c_str(), o.key.c_str(),
                    long_format ? "  " : "", long_format ? o.etag.c_str() : "");
      }
      if (page->next_continuation.empty()) break;
      lo.continuation = page->next_continuation;
    }
    return 0;
  }
  if (stat->parsed()) {
    if (!cache->endpoint.empty() && ObjectUrl::IsUrl(url)) {
      auto o = client::StatThroughCache(*cache, url);
      if (!o.ok()) return Fail("stat", o.status());
      std::printf("url:           %s\nsize:          %llu (%s)\netag:          %s\nstate:         %s\n",
                  url.c_str(), static_cast<unsigned long long>(o->info.size), FormatBytes(o->info.size).c_str(),
                  o->info.etag.c_str(),
                  o->state == "local" ? "local (on the node's disk; upload to the store pending)"
                                      : "durable (in the object store)");
      return 0;
    }
    auto loc = Resolve(url, false, &*cache);
    if (!loc.ok()) return Fail("stat", loc.status());
    auto info = loc->store->Head(loc->url.key);
    if (!info.ok()) return Fail("stat", info.status());
    std::printf("url:           %s\nsize:          %llu (%s)\netag:          %s\nlast-modified: %s\n",
                loc->Name(info->key).c_str(), static_cast<unsigned long long>(info->size),
                FormatBytes(info->size).c_str(), info->etag.c_str(),
                FormatIso8601(info->last_modified).c_str());
    return 0;
  }
  if (rm->parsed()) {
    auto loc = Resolve(url);
    if (!loc.ok()) return Fail("rm", loc.status());
    if (!recursive) {
      auto info = loc->store->Head(loc->url.key);
      if (!info.ok()) return Fail("rm", info.status());
      Status st = loc->store->Delete(loc->url.key);
      return st.ok() ? 0 : Fail("rm", st);
    }
    auto all = ListAll(*loc->store, AsPrefix(loc->url.key));
    if (!all.ok()) return Fail("rm", all.status());
    for (const auto& o : *all) {
      Status st = loc->store->Delete(o.key);
      if (!st.ok()) return Fail("rm", st);
    }
    std::fprintf(stderr, "deleted %zu objects\n", all->size());
    return 0;
  }
  if (status->parsed()) {
    if (cache->endpoint.empty()) {
      return Fail("status", Status::InvalidArgument("name the node: --cache HOST:PORT (or set SHOAL_CACHE)"));
    }
    auto m = client::FetchMetrics(*cache);
    if (!m.ok()) return Fail("status", m.status());
    auto g = [&](const char* name) { return (*m)[std::string("shoal_") + name]; };
    uint64_t hits = g("chunk_hits_total"), misses = g("chunk_misses_total");
    std::printf("node          %s\n", cache->endpoint.c_str());
    std::printf("cache         %s in %llu chunks (%s not yet uploaded); %llu evicted, %llu corrupt dropped\n",
                FormatBytes(g("cache_bytes")).c_str(), static_cast<unsigned long long>(g("cache_chunks")),
                FormatBytes(g("cache_pinned_bytes")).c_str(),
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
                FormatBytes(g("staged_bytes")).c_str(), g("upload_lag_ms") / 1000.0, u("uploads_overdue"),
                u("uploads_total"), FormatBytes(g("staged_cap_bytes")).c_str(),
                FormatBytes(g("staged_bytes_peak")).c_str(), u("writer_waits_total"),
                g("writer_wait_ms_total") / 1000.0, u("upload_window"), u("upload_window_cuts_total"),
                u("upload_failures_total"));
    std::printf("fan-in        %llu askers sent to holders; %llu chunks (%s) got from holders, %llu holders "
                "failed; %s to this host's processes (unix socket); %llu connections refused (busy)\n",
                u("fan_in_redirects_total"), u("fan_in_fetches_total"),
                FormatBytes(g("fan_in_fetch_bytes_total")).c_str(), u("fan_in_fallbacks_total"),
                FormatBytes(g("bytes_served_local_total")).c_str(), u("connections_refused_total"));
    std::printf("errors        %llu not found, %llu store unavailable, %llu disk full, %llu other\n",
                u("errors_not_found_total"), u("errors_unavailable_total"), u("errors_disk_full_total"),
                u("errors_other_total"));
    auto cluster = client::FetchCluster(*cache);
    if (cluster.ok() && cluster->epoch > 0) PrintCluster(*cache, *cluster);
    return 0;
  }
  if (drain->parsed()) {
    Status st = DrainNode(*cache, node_name, timeout_s, common.quiet);
    return st.ok() ? 0 : Fail("drain", st);
  }
  if (warmup->parsed()) {
    if (cache->endpoint.empty()) {
      return Fail("warmup", Status::InvalidArgument("name a node of the cluster: --cache HOST:PORT (or set SHOAL_CACHE)"));
    }
    if (per_node < 1 || per_node > 64) return Fail("warmup", Status::InvalidArgument("--per-node must be 1 to 64"));
    auto loc = Resolve(prefix);
    if (!loc.ok()) return Fail("warmup", loc.status());
    auto listed = ListAll(*loc->store, loc->url.key);
    if (!listed.ok()) return Fail("warmup", listed.status());
    std::vector<std::pair<std::string, ObjectInfo>> objects;
    uint64_t total = 0;
    for (const auto& o : *listed) {
      objects.push_back({loc->url.WithKey(o.key).ToString(), o});
      total += o.size;
    }
    uint64_t copies = 1;
    if (broadcast) {
      auto cluster = client::FetchCluster(*cache);
      if (!cluster.ok()) return Fail("warmup", cluster.status());
      copies = std::max<uint64_t>(1, cluster->members.size());
    }
    Progress progress(std::to_string(objects.size()) + " objects" +
                          (copies > 1 ? " x " + std::to_string(copies) + " nodes" : ""),
                      total * copies, common.ShowProgress());
    client::WarmupProgress done(progress.bytes());
    Status st = client::WarmUp(*cache, objects, per_node, &done, broadcast);
    progress.Finish();
    const double seconds = progress.Seconds();
    const uint64_t warmed = progress.bytes()->load();
    if (!st.ok()) return Fail("warmup", st);
    if (!common.quiet) {
      std::printf("warmed %zu objects (%s in %llu chunks%s) in %.1f s: %s fetched now, %s already cached\n",
                  objects.size(), FormatBytes(total).c_str(), static_cast<unsigned long long>(done.chunks.load()),
                  copies > 1 ? (" over " + std::to_string(copies) + " nodes").c_str() : "", seconds,
                  FormatBytes(done.fetched.load()).c_str(), FormatBytes(warmed - done.fetched.load()).c_str());
    }
    return 0;
  }
  if (flush->parsed()) {
    if (cache->endpoint.empty()) {
      return Fail("flush", Status::InvalidArgument("name the node: --cache HOST:PORT (or set SHOAL_CACHE)"));
    }
    if (wait) {
      Status st = WaitDurable(*cache, prefix, timeout_s, common.quiet);
      if (!st.ok()) return Fail("flush", st);
    } else {
      auto p = client::FetchPending(*cache, prefix);
      if (!p.ok()) return Fail("flush", p.status());
      if (p->objects > 0) {
        std::printf("pending: %llu objects, %s of %s uploaded%s%s\n", static_cast<unsigned long long>(p->objects),
                    FormatBytes(p->uploaded).c_str(), FormatBytes(p->bytes).c_str(),
                    p->last_error.empty() ? "" : "; retrying after: ", p->last_error.c_str());
        return 0;
      }
    }
    std::printf("durable: nothing under '%s' is waiting for upload\n", prefix.c_str());
    return 0;
  }
  if (commit->parsed()) {
    std::string marker;
    if (cache->endpoint.empty() || !ObjectUrl::IsUrl(prefix)) {
      auto loc = Resolve(prefix);
      if (!loc.ok()) return Fail("commit", loc.status());
      auto m = WriteCommitMarker(*loc->store, loc->url);
      if (!m.ok()) return Fail("commit", m.status());
      marker = *m;
    } else {
      // A write may land under the prefix between the wait and the commit: the node refuses
      // (412) and we wait again.
      for (int attempt = 0;; attempt++) {
        Status st = WaitDurable(*cache, prefix, timeout_s, common.quiet);
        if (!st.ok()) return Fail("commit", st);
        auto m = client::CommitThroughCache(*cache, prefix);
        if (m.ok()) {
          marker = *m;
          break;
        }
        if (m.status().code() != Code::kPreconditionFailed || attempt >= 10) return Fail("commit", m.status());
      }
    }
    auto j = nlohmann::json::parse(marker, nullptr, false);
    if (j.is_discarded()) return Fail("commit", Status::IOError("the commit marker is not JSON"));
    std::printf("committed %llu %s (%s) under %s: %s%s\n", static_cast<unsigned long long>(j.value("objects", 0ull)),
                j.value("objects", 0ull) == 1 ? "object" : "objects",
                FormatBytes(j.value("bytes", 0ull)).c_str(), j.value("prefix", std::string()).c_str(),
                j.value("prefix", std::string()).c_str(), kCommitMarker);
    return 0;
  }
  if (mb->parsed()) {
    auto loc = Resolve(url);
    if (!loc.ok()) return Fail("mb", loc.status());
    Status st = loc->store->CreateBucket();
    return st.ok() ? 0 : Fail("mb", st);
  }
  return 2;
}

}  // namespace shoal::cli
