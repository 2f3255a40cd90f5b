#include "client/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "net/retry.h"
#include "store/commit.h"

namespace shoal::client {
namespace {

std::string AsPrefix(std::string key) {
  if (!key.empty() && key.back() != '/') key += '/';
  return key;
}

// Seconds left before `deadline` for a wait that takes whole seconds, 0 meaning no limit: at
// least 1 while any time is left.
int SecondsLeft(std::chrono::steady_clock::time_point deadline, bool bounded) {
  if (!bounded) return 0;
  auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now()).count();
  return static_cast<int>(std::max<int64_t>(1, left));
}

}  // namespace

bool NewerStep(const std::string& a, const std::string& b) {
  // The last run of digits, without leading zeros; "" when there is none.
  auto number = [](const std::string& s) {
    size_t end = s.find_last_of("0123456789");
    if (end == std::string::npos) return std::string();
    size_t begin = s.find_last_not_of("0123456789", end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    size_t first = s.find_first_not_of('0', begin);
    return first == std::string::npos || first > end ? std::string("0") : s.substr(first, end - first + 1);
  };
  std::string na = number(a), nb = number(b);
  if (na.size() != nb.size()) return na.size() > nb.size();
  if (na != nb) return na > nb;
  return a > b;
}

Result<std::string> CommitCheckpoint(Client& client, const std::string& prefix_url, const ShardSpec& shards,
                                     int timeout_s, const std::function<void(const CommitProgress&)>& each_poll,
                                     bool durable) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(prefix_url));
  u.key = AsPrefix(u.key);
  const std::string prefix = u.ToString();
  const bool bounded = timeout_s > 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::vector<std::string> names;
  if (shards.count > 0) {
    SHOAL_ASSIGN_OR_RETURN(names, ShardNames(shards.name, shards.count));
    net::Backoff backoff(std::chrono::milliseconds(250), std::chrono::milliseconds(2000));
    std::string incomplete;  // the store down: the shards the cluster holds are enough
    while (true) {
      SHOAL_ASSIGN_OR_RETURN(auto listed, client.ListAll(prefix, /*recursive=*/true, nullptr, &incomplete));
      std::set<std::string> present;
      for (const auto& o : listed) present.insert(o.key.substr(u.key.size()));
      CommitProgress p;
      p.shards = shards.count;
      for (const auto& n : names) {
        if (present.count(n)) {
          p.shards_present++;
        } else {
          p.missing.push_back(n);
        }
      }
      if (p.missing.empty()) break;
      if (bounded && std::chrono::steady_clock::now() >= deadline) {
        return Status::Unavailable("after " + std::to_string(timeout_s) + " s, " + std::to_string(p.missing.size()) +
                                   " of " + std::to_string(shards.count) + " shards are missing under " + prefix +
                                   ": " + JoinNames(p.missing) + "; no marker written");
      }
      if (each_poll) each_poll(p);
      std::this_thread::sleep_for(backoff.Next());
    }
  }
  if (!client.has_cache()) {  // every write is in the store once closed
    SHOAL_ASSIGN_OR_RETURN(auto store, client.DirectStore(u));
    return WriteCommitMarker(*store, u, names.empty() ? nullptr : &names);
  }
  auto wait_durable = [&] {
    return WaitDurable(client.cache(), prefix, SecondsLeft(deadline, bounded), [&](const PendingWrites& pending) {
      if (!each_poll) return;
      CommitProgress p;
      p.shards = p.shards_present = shards.count;
      p.pending = DescribePending(pending);
      each_poll(p);
    });
  };
  if (durable) SHOAL_RETURN_IF_ERROR(wait_durable());
  SHOAL_ASSIGN_OR_RETURN(std::string marker, CommitThroughCache(client.cache(), prefix, shards.count, shards.name));
  if (durable) SHOAL_RETURN_IF_ERROR(wait_durable());  // the marker, if a write landed meanwhile
  return marker;
}

Result<LatestCheckpoint> FindLatestCheckpoint(Client& client, const std::string& prefix_url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl u, ObjectUrl::Parse(prefix_url));
  u.key = AsPrefix(u.key);
  std::vector<std::string> steps;
  // With the store down, what the cluster holds: steps written and committed through it.
  std::string incomplete;
  SHOAL_RETURN_IF_ERROR(client.ListAll(u.ToString(), /*recursive=*/false, &steps, &incomplete).status());
  std::sort(steps.begin(), steps.end(), NewerStep);
  SHOAL_ASSIGN_OR_RETURN(auto store, client.ReadStore(u));
  LatestCheckpoint latest;
  latest.steps = steps.size();
  for (const auto& step : steps) {
    const std::string url = u.WithKey(step).ToString();
    std::string marker;
    Status got = store->Get(step + kCommitMarker, {}, [&](const char* d, size_t n) {
      marker.append(d, n);
      return Status::Ok();
    });
    if (got.IsNotFound()) {
      latest.skipped.push_back({url, std::string("no ") + kCommitMarker + " marker"});
      continue;
    }
    SHOAL_RETURN_IF_ERROR(got.WithContext("reading " + url + kCommitMarker));
    std::string step_incomplete;
    SHOAL_ASSIGN_OR_RETURN(auto listed, client.ListAll(url, /*recursive=*/true, nullptr, &step_incomplete));
    if (incomplete.empty()) incomplete = step_incomplete;
    for (auto& o : listed) o.key = o.key.substr(step.size());
    VersionResolver resolve = nullptr;
    if (client.has_cache()) {  // a marker written through the cluster names its writes' local versions
      resolve = [&](const std::string& key, const std::string& etag) {
        return ResolveThroughCache(client.cache(), url + key, etag);
      };
    }
    Status verified = VerifyCommitMarker(marker, listed, resolve);
    if (!verified.ok()) {
      latest.skipped.push_back({url, verified.message()});
      continue;
    }
    latest.found = true;
    latest.url = url;
    latest.marker = std::move(marker);
    break;
  }
  latest.incomplete = std::move(incomplete);
  return latest;
}

}  // namespace shoal::client
