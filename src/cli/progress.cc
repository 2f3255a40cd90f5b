#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "common/strings.h"

namespace shoal::cli {

Progress::Progress(std::string label, uint64_t total, bool enabled, Unit unit)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      unit_(unit),
      start_(std::chrono::steady_clock::now()) {
  if (!enabled_) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return done_; })) Draw(false);
  });
}

bool Progress::StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

double Progress::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (enabled_) Draw(true);
}

void Progress::Draw(bool final) {
  uint64_t done = bytes_.load(), total = total_.load();
  double secs = Seconds();
  double rate = secs > 0 ? done / secs : 0;
  int pct = total > 0 ? static_cast<int>(100.0 * done / total) : 100;
  if (pct > 100) pct = 100;
  constexpr int kWidth = 24;
  int filled = pct * kWidth / 100;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::string eta;
  if (!final && rate > 0 && total > done) {
    eta = "  ETA " + std::to_string(static_cast<int>((total - done) / rate + 0.5)) + "s";
  }
  char took[32] = "";
  if (final) std::snprintf(took, sizeof(took), "  in %.1fs\n", secs);
  auto format = [this](uint64_t n) { return unit_ == Unit::kBytes ? FormatBytes(n) : std::to_string(n); };
  std::fprintf(stderr, "\r\033[K%s [%s] %3d%%  %s / %s  %s/s%s%s", label_.c_str(), bar.c_str(), pct,
               format(done).c_str(), format(total).c_str(), format(static_cast<uint64_t>(rate)).c_str(), eta.c_str(),
               took);
  std::fflush(stderr);
}

}  // namespace shoal::cli
