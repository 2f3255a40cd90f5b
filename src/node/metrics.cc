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

void WriteAccountMetrics(std::ostream& out, const std::vector<AccountUploads>& accounts) {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const AccountUploads&);
  };
  static const Family kFamilies[] = {
      {"account_upload_window", "gauge", "Part uploads allowed in flight now to this account (halved on its 429/503s).",
       [](const AccountUploads& a) { return a.window; }},
      {"account_upload_window_min", "gauge", "The smallest this account's upload window has been since start.",
       [](const AccountUploads& a) { return a.min_window; }},
      {"account_upload_window_cuts_total", "counter", "Times this account's upload window was halved.",
       [](const AccountUploads& a) { return static_cast<double>(a.window_cuts); }},
      {"account_parts_in_flight", "gauge", "Part uploads to this account in flight now.",
       [](const AccountUploads& a) { return static_cast<double>(a.in_flight); }},
      {"account_store_throttles_total", "counter", "Upload requests this account answered 429 or 503.",
       [](const AccountUploads& a) { return static_cast<double>(a.throttles); }},
      {"account_store_put_requests_total", "counter", "Parts and whole objects sent to this account (attempts).",
       [](const AccountUploads& a) { return static_cast<double>(a.put_requests); }},
      {"account_store_put_bytes_total", "counter", "Bytes uploaded to this account.",
       [](const AccountUploads& a) { return static_cast<double>(a.put_bytes); }},
      {"account_uploads_total", "counter", "Objects made durable in this account.",
       [](const AccountUploads& a) { return static_cast<double>(a.uploads); }},
      {"account_upload_failures_total", "counter", "Upload attempts to this account that failed (retried).",
       [](const AccountUploads& a) { return static_cast<double>(a.failures); }},
      {"account_upload_rate_bytes", "gauge", "Bytes per second that reached this account over the last 10 s.",
       [](const AccountUploads& a) { return a.rate; }},
  };
  if (accounts.empty()) return;
  for (const auto& f : kFamilies) {
    out << "# HELP shoal_" << f.name << " " << f.help << "\n# TYPE shoal_" << f.name << " " << f.type << "\n";
    for (const auto& a : accounts) {
      char value[48];
      std::snprintf(value, sizeof(value), "%.17g", f.value(a));
      out << "shoal_" << f.name << "{account=\"" << a.account << "\"} " << value << "\n";
    }
  }
}

}  // namespace shoal::node
