#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/object_meta.h"
#include "common/status.h"
#include "testing/process.h"

namespace shoal::testing {

// One shoald process on loopback reaching Azurite (of Servers()) through a proxy port, with
// its own data directory. Stopped by PID when destroyed.
class Shoald {
 public:
  // Starts shoald with `extra` flags (--capacity 2GiB and --listen 127.0.0.1:0 unless they
  // say); `data_dir` empty:
  // a directory of its own.
  Status Start(int proxy_port, const std::vector<std::string>& extra = {}, const std::string& data_dir = "");
  // More environment for the next Start (e.g. LD_PRELOAD of FaultFsLibrary()).
  void SetEnv(std::map<std::string, std::string> env) { env_ = std::move(env); }
  // kill -9, as a crash would.
  void Crash() { proc_.Kill(); }
  bool Running() { return proc_.running(); }
  // SIGTERM, as an orderly stop: the exit code (Subprocess::Terminate).
  int Terminate(std::chrono::seconds grace) { return proc_.Terminate(grace); }
  pid_t Pid() const { return proc_.pid(); }
  // SIGSTOP / SIGCONT: a node that hangs without dying.
  void Pause() { ::kill(proc_.pid(), SIGSTOP); }
  void Resume() { ::kill(proc_.pid(), SIGCONT); }
  // kill -9, then starts again on the same data directory and flags (a new port).
  Status Restart(int proxy_port);
  // SIGTERM (as Kubernetes stops a pod), waits up to 30 s for the node to end by itself, then
  // starts it again on the same data directory and flags. An error when it did not exit with
  // code 0 in that time (it is then killed: that stop was a crash, not a rolling restart's).
  Status RestartGracefully(int proxy_port);
  // Starts a node stopped by Terminate again, on the same data directory and flags.
  Status StartAgain(int proxy_port);
  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  // A new TCP connection to the node (a raw socket, for tests of the protocol itself); -1 if
  // it could not be made. The caller closes it.
  int Connect() const;
  const std::string& DataDir() const { return data_dir_; }
  std::string Log() const;
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  Subprocess proc_;
  std::vector<std::string> extra_;
  std::map<std::string, std::string> env_;
  std::string data_dir_;
  int port_ = 0;
};

// Every counter and gauge of a node's /metrics, in one read; empty when it cannot be read.
std::map<std::string, uint64_t> NodeMetrics(const std::string& endpoint);
// One of them; UINT64_MAX when it cannot be read.
uint64_t NodeMetric(const std::string& endpoint, const std::string& name);

// Waits (bounded) until the node at `endpoint` has nothing left to upload.
bool WaitUntilDurable(const std::string& endpoint, std::chrono::seconds limit, const std::string& token = "");

// `shoal cat --cache ENDPOINT [extra] URL | sha256sum` in a shell (with Azurite's
// credentials): the digest on stdout, or the error output.
CommandResult CatThroughNode(const std::string& url, const std::string& endpoint, const std::string& extra = "");

// The digest CatThroughNode printed, or "cat failed: " and why.
std::string CatSha256(const std::string& url, const std::string& endpoint);

// PUT /v1/object of `url` with `body` and `meta` (net/node_protocol.h's headers) to the node
// at `endpoint`; ok once it answered 201 (the write is acknowledged), else its answer.
Status PutThroughNode(const std::string& endpoint, const std::string& url, std::string_view body,
                      const ObjectMeta& meta);
// The metadata the node at `endpoint` answers a HEAD of `url` with.
Result<ObjectMeta> MetaThroughNode(const std::string& endpoint, const std::string& url);
// The version (ETag, unquoted) the node at `endpoint` answers a HEAD of `url` with: the store's
// ETag, or `local-...` for a write not yet uploaded.
Result<std::string> EtagThroughNode(const std::string& endpoint, const std::string& url);

// Polls `what` every 20 ms until it holds (true) or `limit` passes (false).
template <typename F>
bool Until(F what, std::chrono::seconds limit = std::chrono::seconds(300)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (what()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// The fault-injection shim (src/testing/faultfs.cc), for LD_PRELOAD.
std::string FaultFsLibrary();

// What a power cut would have left of directory `root`, from what the shim recorded of the
// syncs of a process run with SHOAL_FAULTFS_DURABLE=ROOT:RECORDS, rebuilt as directory `out`:
// a directory holds the entries it had when it was last fsynced (none if it never was; `root`
// included); a file (the inode its directory names), the bytes it had when it was last synced
// (fsync or fdatasync, before or after its directory's sync), else none (an empty file: its
// data never reached the disk). kNotFound when nothing of `root` was ever made durable.
Status PowerCutView(const std::string& root, const std::string& records, const std::string& out);

// `shoal` from the build tree.
std::string ShoalBinary();

// Runs `shoal ARGS` (with Azurite's credentials), `input` on its stdin.
CommandResult Shoal(std::vector<std::string> args, const std::string& input = "");

}  // namespace shoal::testing
