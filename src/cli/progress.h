#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace shoal::cli {

// A one-line progress bar on stderr, redrawn 4 times a second from its own thread while
// enabled (stderr is a terminal and the user did not ask for quiet). Workers add to bytes()
// (bytes, or with Unit::kCount things done).
class Progress {
 public:
  enum class Unit { kBytes, kCount };  // what is counted: bytes, or things (objects deleted)
  Progress(std::string label, uint64_t total, bool enabled, Unit unit = Unit::kBytes);
  ~Progress() { Finish(); }
  std::atomic<uint64_t>* bytes() { return &bytes_; }
  void AddTotal(uint64_t n) { total_ += n; }
  // Stops redrawing and prints the final line (when enabled). Idempotent.
  void Finish();
  double Seconds() const;

  // Whether stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  void Draw(bool final);

  std::string label_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> bytes_{0};
  bool enabled_;
  Unit unit_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shoal::cli
