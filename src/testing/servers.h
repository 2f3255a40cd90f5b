#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/object_store.h"
#include "testing/process.h"

namespace shoal::testing {

using Env = std::map<std::string, std::string>;

// An Azurite blob service on a free loopback port, with its data in a temp dir. Stopped (by
// PID) on destruction. Start() fails with a message saying how to install it.
class Azurite {
 public:
  Status Start();
  int port() const { return port_; }
  // http://127.0.0.1:PORT/devstoreaccount1, or the same through `via_port` (a proxy).
  std::string Endpoint(int via_port = 0) const;
  std::string ConnectionString(int via_port = 0) const;
  // AZURE_STORAGE_CONNECTION_STRING for a child process.
  Env ClientEnv(int via_port = 0) const;
  std::shared_ptr<ObjectStore> Store(const std::string& container, int via_port = 0) const;

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
};

// An s3rver on a free loopback port (credentials S3RVER/S3RVER).
class S3rver {
 public:
  Status Start();
  int port() const { return port_; }
  std::string Endpoint(int via_port = 0) const;
  // AWS_* variables for a child process.
  Env ClientEnv(int via_port = 0) const;
  std::shared_ptr<ObjectStore> Store(const std::string& bucket, int via_port = 0) const;

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
};

// src/testing/fault_proxy.js in front of one upstream: latency, per-connection bandwidth,
// injected 503/429, connections dropped mid-body; counts what the upstream served.
struct FaultConfig {
  int latency_ms = 0;
  uint64_t bandwidth = 0;  // bytes/s per connection; 0 = unlimited
  double error_rate = 0;
  std::string error_codes = "503";
  int retry_after = -1;    // seconds; <0: no Retry-After
  double drop_rate = 0;
  int seed = -1;           // >= 0: restart the proxy's fault sequence from this seed
};

struct ProxyStats {
  uint64_t requests = 0;
  uint64_t forwarded = 0;
  uint64_t injected_errors = 0;
  uint64_t dropped = 0;
  uint64_t upstream_response_bytes = 0;  // body bytes the upstream sent
  uint64_t get_requests = 0;
};

class FaultProxy {
 public:
  Status Start(const std::string& upstream, const FaultConfig& config = {});
  int port() const { return port_; }
  Status Configure(const FaultConfig& config);
  Result<ProxyStats> Stats();
  Status Reset();

 private:
  TempDir dir_;
  Subprocess proc_;
  int port_ = 0;
};

// A single-node etcd (Debian's etcd-server) on free loopback client and peer ports, with its
// data in a temp dir. Stopped (by PID) on destruction. Start() fails with a message saying how
// to install it. Short heartbeat and election times, so a lease may be as short as 1 s.
class Etcd {
 public:
  Status Start();
  // Kills it (SIGKILL, as a crash) and starts it again on the same ports and data.
  Status Restart();
  void Kill() { proc_.Kill(); }
  int port() const { return port_; }
  std::string Endpoint() const;  // http://127.0.0.1:PORT

 private:
  Status Launch();

  TempDir dir_;
  Subprocess proc_;
  std::string name_;
  int port_ = 0;
  int peer_port_ = 0;
};

// Path of a tool in testenv/node_modules/.bin, or "" if it is not installed.
std::string NodeTool(const std::string& name);

}  // namespace shoal::testing
