#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shoal::testing {

// A child process started by a test, stopped by its PID (SIGTERM, then SIGKILL) when the
// object goes away. The child also dies if the test process dies (PR_SET_PDEATHSIG).
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess() { Stop(); }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts argv[0] (looked up in PATH) with the extra environment `env`; stdout and stderr go
  // to `log_path` (or are inherited when empty). Returns false if it could not start.
  bool Start(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
             const std::string& log_path = "");
  void Stop();
  // Sends SIGKILL (a crash) and reaps the child.
  void Kill();
  // Sends SIGTERM and waits up to `grace` for the child to exit: its exit code, 128 + the
  // signal that ended it, or -1 if it was still running then (it is then killed).
  int Terminate(std::chrono::seconds grace);
  pid_t pid() const { return pid_; }
  bool running();

 private:
  pid_t pid_ = -1;
};

// The result of running a command to completion.
struct CommandResult {
  int exit_code = -1;     // -1 when killed by a signal or not started
  std::string out;        // stdout
  std::string err;        // stderr
  long max_rss_kib = 0;   // peak resident set size of the child
};

// Runs argv with `input` on stdin and extra `env`, waiting at most `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {},
                         const std::string& input = "",
                         std::chrono::seconds timeout = std::chrono::seconds(600));

// Memory of a running process from /proc/PID/status, in KiB ("VmRSS", "VmHWM": its peak);
// -1 when it cannot be read. ResetPeakRss makes VmHWM the current VmRSS (/proc/PID/clear_refs),
// so a peak read afterwards is the peak of what came since.
long ProcStatusKib(pid_t pid, const std::string& field);
bool ResetPeakRss(pid_t pid);

// A port on 127.0.0.1 that was free a moment ago, below the ephemeral range (so the client
// sockets a test opens do not take it before its server binds it).
int FreePort();
// Waits until something accepts connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

// A fresh directory under $SHOAL_TEST_TMPDIR (ctest sets /dev/shm, a tmpfs, for the tests
// marked TMPFS in CMakeLists.txt) or /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets variables of this process (a value "" unsets one) until it goes away, then puts back
// what they were. For code that reads its configuration from the environment; not
// thread-safe with other threads reading the environment meanwhile.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// The source tree and build tree (from the SHOAL_SOURCE_DIR / SHOAL_BINARY_DIR that ctest
// sets), for finding test servers and the built binaries.
std::string SourceDir();
std::string BinaryDir();

}  // namespace shoal::testing
