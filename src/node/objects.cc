#include "node/objects.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/log.h"

namespace shoal::node {

namespace {
std::string AliasKey(const std::string& url, const std::string& etag) { return url + '\n' + etag; }
}  // namespace

std::vector<engine::ChunkKey> WriteChunkKeys(const std::string& url, const std::string& id, uint64_t count) {
  std::vector<engine::ChunkKey> keys;
  for (uint64_t i = 0; i < count; i++) keys.push_back(engine::ChunkKey{url, LocalVersion(id), i});
  return keys;
}

Result<std::shared_ptr<ObjectStore>> ObjectCatalog::StoreFor(const ObjectUrl& url) {
  std::string id = url.scheme + "://" + url.bucket;
  std::lock_guard<std::mutex> lock(stores_mu_);
  auto it = stores_.find(id);
  if (it != stores_.end()) return it->second;
  SHOAL_ASSIGN_OR_RETURN(auto store, OpenObjectStore(url));
  stores_[id] = store;
  return store;
}

Result<std::shared_ptr<ObjectStore>> ObjectCatalog::StoreFor(const std::string& url) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  return StoreFor(parsed);
}

namespace {
// When the write a stored object is was taken, from its write stamp (UploadRecord::Stamp:
// microseconds, then the write's id); 0 for an object no cache node wrote.
int64_t StampMs(const std::string& stamp) {
  uint64_t us = 0;
  auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), us);
  if (ec != std::errc() || end == stamp.data()) return 0;
  return static_cast<int64_t>(us / 1000);
}

// The id of the write a stored object is, from its write stamp; empty for one no cache node wrote.
std::string_view StampId(std::string_view stamp) {
  const size_t dash = stamp.find('-');
  return dash == std::string_view::npos ? std::string_view() : stamp.substr(dash + 1);
}

Result<ObjectInfo> Cached(const std::string& url, const ObjectInfo& info, bool absent) {
  if (absent) return Status::NotFound(url + " is not in the object store (asked less than --metadata-ttl ago)");
  return info;
}
}  // namespace

Result<ObjectInfo> ObjectCatalog::Stat(const std::string& url, const FirstChunk* first) {
  const auto asked = std::chrono::steady_clock::now();
  uint64_t forgets = 0;
  bool seen = false;
  std::shared_ptr<std::promise<Result<ObjectInfo>>> lead;  // this call asks the store for others too
  std::shared_future<Result<ObjectInfo>> joined;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = meta_.find(url);
    // Written here and not yet in the store: only this node has it.
    if (it != meta_.end() && it->second.local && !it->second.check_store) return it->second.info;
    if (it != meta_.end() && it->second.local) return CheckLocal(url, it->second.info, it->second.written_ms, &lock);
    forgets = forgets_;
    seen = it != meta_.end();
    if (!options_.validate && seen && asked - it->second.fetched < options_.metadata_ttl.get()) {
      return Cached(url, it->second.info, it->second.absent);
    }
    if (!options_.validate) {
      auto a = asking_.find(url);
      if (a != asking_.end()) {
        joined = a->second;
      } else {
        lead = std::make_shared<std::promise<Result<ObjectInfo>>>();
        asking_.emplace(url, lead->get_future().share());
      }
    }
  }
  if (joined.valid()) {
    metrics_->coalesced_stats++;
    return joined.get();
  }
  auto answer = [&](Result<ObjectInfo> result) {  // to the Stats that joined this one
    if (!lead) return result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      asking_.erase(url);
    }
    lead->set_value(result);
    return result;
  };
  auto parsed = ObjectUrl::Parse(url);
  if (!parsed.ok()) return answer(parsed.status());
  if (parsed->key.empty()) return answer(Status::InvalidArgument(url + " names no object"));
  auto store = StoreFor(*parsed);
  if (!store.ok()) return answer(store.status());
  std::string bytes;
  const bool with_chunk = first != nullptr && !seen && (!first->from_store || first->from_store());
  Result<ObjectInfo> info = AskStore(**store, parsed->key, with_chunk ? first : nullptr, &bytes);
  if (!info.ok() && info.status().code() != Code::kNotFound) return answer(info.status());
  // Cached before the answer is out: a reader told the version finds its first chunk here.
  if (info.ok() && !bytes.empty()) first->keep(*info, std::move(bytes));
  Result<ObjectInfo> result = info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    result = Remember(url, asked, forgets, info);
  }
  return answer(std::move(result));
}

Result<ObjectInfo> ObjectCatalog::CheckLocal(const std::string& url, ObjectInfo local, int64_t written_ms,
                                             std::unique_lock<std::mutex>* lock) {
  lock->unlock();
  Result<ObjectInfo> newer = StoreNewer(url, written_ms);
  if (newer.ok()) return newer;
  if (newer.status().code() != Code::kNotFound) return local;  // not asked: asked again next time
  lock->lock();
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.local && it->second.info.etag == local.etag) it->second.check_store = false;
  return local;
}

Result<ObjectInfo> ObjectCatalog::StoreNewer(const std::string& url, int64_t written_ms) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  metrics_->store_head_requests++;
  Result<ObjectInfo> held = store->Head(parsed.key);
  if (!held.ok()) return held.status();
  const int64_t stamp_ms = StampMs(held->write_stamp);
  if (stamp_ms <= written_ms) {
    return Status::NotFound(url + ": the store holds no write of it begun after " + std::to_string(written_ms));
  }
  Fresh(url, *held, stamp_ms);
  return held;
}

Result<ObjectInfo> ObjectCatalog::StoredAs(const std::string& url, const std::string& id) {
  auto names_it = [&id](const ObjectInfo& info) { return !id.empty() && StampId(info.write_stamp) == id; };
  {
    // Learned from the store within --metadata-ttl (a reader's Stat just now, say): no HEAD.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = meta_.find(url);
    if (it != meta_.end() && !it->second.local && !it->second.absent && names_it(it->second.info) &&
        std::chrono::steady_clock::now() - it->second.fetched < options_.metadata_ttl.get()) {
      return it->second.info;
    }
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  metrics_->store_head_requests++;
  Result<ObjectInfo> held = store->Head(parsed.key);
  if (!held.ok()) return held.status();
  if (!names_it(*held)) return Status::NotFound(url + ": the store holds another write than " + id);
  Fresh(url, *held, StampMs(held->write_stamp));
  return held;
}

Result<ObjectInfo> ObjectCatalog::AskStore(ObjectStore& store, const std::string& key, const FirstChunk* first,
                                           std::string* bytes) {
  if (first != nullptr && first->length > 0) {
    ObjectInfo got;
    ReadOptions ro;
    ro.length = first->length;
    ro.answered = &got;
    metrics_->store_get_requests++;
    metrics_->store_first_chunk_gets++;
    Status st = store.Get(key, ro, [&](const char* d, size_t n) {
      if (bytes->size() + n > first->length) return Status::Corruption(key + ": more bytes than the range asked for");
      bytes->append(d, n);
      return Status::Ok();
    });
    metrics_->store_get_bytes += bytes->size();
    if (st.ok() && !got.etag.empty() && got.size != ReadOptions::kAnySize) return got;
    bytes->clear();
    if (!st.ok() && st.code() != Code::kInvalidArgument) return st;
    // An empty object (the store refuses a range of it) or an answer that named no version.
  }
  metrics_->store_head_requests++;
  return store.Head(key);
}

Result<ObjectInfo> ObjectCatalog::Remember(const std::string& url, std::chrono::steady_clock::time_point asked,
                                           uint64_t forgets, const Result<ObjectInfo>& info) {
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.local) return it->second.info;  // a write won the race
  // Learned while the store was asked (a write through the cluster went up): newer than this.
  if (it != meta_.end() && it->second.fetched > asked) return Cached(url, it->second.info, it->second.absent);
  if (forgets != forgets_) return info;  // something was forgotten meanwhile: maybe this answer
  if (info.ok()) {
    meta_[url] = Meta{*info, asked, false, false, StampMs(info->write_stamp)};
  } else if (!options_.validate) {
    meta_[url] = Meta{ObjectInfo{}, asked, false, true};
  }
  Bound();
  return info;
}

void ObjectCatalog::Bound() {
  if (meta_.size() < sweep_at_ && meta_.size() <= max_entries_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto ttl = options_.metadata_ttl.get();
  for (auto it = meta_.begin(); it != meta_.end();) {  // expired ones first
    it = !it->second.local && now - it->second.fetched >= ttl ? meta_.erase(it) : std::next(it);
  }
  // Then any, down to three quarters, so that the next sweep is max_entries_ / 4 names away.
  for (auto it = meta_.begin(); it != meta_.end() && meta_.size() > max_entries_ * 3 / 4;) {
    it = it->second.local ? std::next(it) : meta_.erase(it);
  }
  // The next sweep once the names have doubled: each costs a pass over what is kept, so their
  // cost per name stays constant, and memory holds at most about twice what the TTL keeps.
  sweep_at_ = std::max(kFirstSweep, meta_.size() * 2);
}

void ObjectCatalog::Invalidate(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(url);
  if (it != meta_.end() && !it->second.local) meta_.erase(it);
  forgets_++;
}

void ObjectCatalog::Fresh(const std::string& url, const ObjectInfo& info, int64_t written_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Meta& m = meta_[url];
  if (m.local && (written_ms < 0 || m.written_ms >= written_ms)) return;
  // An older write's upload heard of after a newer one's (announcements cross): the newer stays.
  if (!m.local && !m.absent && written_ms >= 0 && m.written_ms > written_ms) return;
  m = Meta{info, std::chrono::steady_clock::now(), false, false, std::max<int64_t>(written_ms, 0)};
  Bound();
}

std::string ObjectCatalog::ChunkVersion(const std::string& url, const std::string& etag) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = aliases_.find(AliasKey(url, etag));
  return it == aliases_.end() ? etag : it->second;
}

bool ObjectCatalog::SetLocal(const std::string& url, const ObjectInfo& info, int64_t written_ms, bool check_store) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(url);
  if (it != meta_.end() && !it->second.absent && it->second.written_ms > written_ms) return false;
  meta_[url] = Meta{info, std::chrono::steady_clock::now(), true, false, written_ms, check_store};
  Bound();
  return true;
}

bool ObjectCatalog::IsLocal(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(url);
  return it != meta_.end() && it->second.local;
}

void ObjectCatalog::SetDurable(const std::string& url, const std::string& version, const ObjectInfo& stored) {
  std::lock_guard<std::mutex> lock(mu_);
  PutAlias(AliasKey(url, stored.etag), version);
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.info.etag == version) {  // not overwritten meanwhile
    it->second = Meta{ObjectInfo{"", stored.size, stored.etag, stored.last_modified, stored.meta},
                      std::chrono::steady_clock::now(), false, false, it->second.written_ms};
  }
}

void ObjectCatalog::AddAlias(const std::string& url, const std::string& etag, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  PutAlias(AliasKey(url, etag), version);
}

void ObjectCatalog::ForgetLocal(const std::string& url, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.info.etag == version) meta_.erase(it);
  forgets_++;
}

namespace {
std::string AliasLine(const std::string& key, const std::string& version) {
  return nlohmann::json{{"k", key}, {"v", version}}.dump() + "\n";
}
}  // namespace

void ObjectCatalog::PutAlias(const std::string& key, const std::string& version) {
  if (aliases_.insert_or_assign(key, version).second) alias_order_.push_back(key);
  while (alias_order_.size() > kMaxAliases) {
    aliases_.erase(alias_order_.front());
    alias_order_.pop_front();
  }
  if (aliases_fd_ < 0) return;
  const std::string line = AliasLine(key, version);
  if (::write(aliases_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    Logf(LogLevel::kWarn, "cannot append to %s (%s): aliases are kept in memory only from now on",
         aliases_path_.c_str(), std::strerror(errno));
    ::close(aliases_fd_);
    aliases_fd_ = -1;
    return;
  }
  if (++alias_lines_ > 2 * kMaxAliases) RewriteAliasesLocked().IgnoreError();
}

ObjectCatalog::~ObjectCatalog() {
  if (aliases_fd_ >= 0) ::close(aliases_fd_);
}

Status ObjectCatalog::PersistAliases(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  aliases_path_ = path;
  size_t skipped = 0;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("k") || !j.contains("v") || !j["k"].is_string() || !j["v"].is_string()) {
        skipped++;
        continue;
      }
      PutAlias(j["k"].get<std::string>(), j["v"].get<std::string>());
    }
  }
  if (skipped > 0) Logf(LogLevel::kWarn, "%s: %zu unreadable lines skipped", path.c_str(), skipped);
  Status st = RewriteAliasesLocked();
  if (!st.ok()) Logf(LogLevel::kWarn, "%s; aliases are kept in memory only", st.message().c_str());
  return st;
}

Status ObjectCatalog::RewriteAliasesLocked() {
  if (aliases_fd_ >= 0) ::close(aliases_fd_);
  aliases_fd_ = -1;
  std::string all;
  for (const auto& key : alias_order_) all += AliasLine(key, aliases_.at(key));
  const std::string tmp = aliases_path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = fd < 0 ? errno : WriteAt(fd, all, 0);
  if (fd >= 0) ::close(fd);
  if (err == 0 && ::rename(tmp.c_str(), aliases_path_.c_str()) != 0) err = errno;
  if (err == 0) {
    aliases_fd_ = ::open(aliases_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (aliases_fd_ < 0) err = errno;
  }
  if (err != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot write " + aliases_path_ + ": " + std::strerror(err));
  }
  alias_lines_ = alias_order_.size();
  return Status::Ok();
}

size_t ObjectCatalog::entries() {
  std::lock_guard<std::mutex> lock(mu_);
  return meta_.size();
}

size_t ObjectCatalog::aliases() {
  std::lock_guard<std::mutex> lock(mu_);
  return aliases_.size();
}

}  // namespace shoal::node
