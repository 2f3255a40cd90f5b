#include "node/metrics.h"

#include <cstdio>

namespace shoal::node {

void Histogram::Observe(std::chrono::steady_clock::duration d) {
  const double seconds = std::chrono::duration<double>(d).count();
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) i++;
  buckets_[i]++;
  sum_ns_ += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  count_++;
}

void Histogram::Write(std::ostream& out, const std::string& family, const std::string& labels) const {
  uint64_t cumulative = 0;
  char le[32];
  for (size_t i = 0; i <= kBounds.size(); i++) {
    cumulative += buckets_[i].load();
    if (i < kBounds.size()) {
      std::snprintf(le, sizeof(le), "%g", kBounds[i]);
    } else {
      std::snprintf(le, sizeof(le), "+Inf");
    }
    out << family << "_bucket{" << labels << ",le=\"" << le << "\"} " << cumulative << "\n";
  }
  char sum[48];
  std::snprintf(sum, sizeof(sum), "%.9f", static_cast<double>(sum_ns_.load()) / 1e9);
  out << family << "_sum{" << labels << "} " << sum << "\n";
  out << family << "_count{" << labels << "} " << count_.load() << "\n";
}

}  // namespace shoal::node
