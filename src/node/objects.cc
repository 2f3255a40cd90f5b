#include "node/objects.h"

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

Result<ObjectInfo> ObjectCatalog::Stat(const std::string& url) {
  const auto asked = std::chrono::steady_clock::now();
  uint64_t forgets = 0;
  auto cached = [&](const Meta& m) -> Result<ObjectInfo> {
    if (m.absent) return Status::NotFound(url + " is not in the object store (asked less than --metadata-ttl ago)");
    return m.info;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = meta_.find(url);
    // Written here and not yet in the store: only this node has it.
    if (it != meta_.end() && it->second.local) return it->second.info;
    forgets = forgets_;
    if (!options_.validate && it != meta_.end() && asked - it->second.fetched < options_.metadata_ttl.get()) {
      return cached(it->second);
    }
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl parsed, ObjectUrl::Parse(url));
  if (parsed.key.empty()) return Status::InvalidArgument(url + " names no object");
  SHOAL_ASSIGN_OR_RETURN(auto store, StoreFor(parsed));
  metrics_->store_head_requests++;
  Result<ObjectInfo> info = store->Head(parsed.key);
  if (!info.ok() && info.status().code() != Code::kNotFound) return info.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(url);
  if (it != meta_.end() && it->second.local) return it->second.info;  // a write won the race
  // Learned while the store was asked (a write through the cluster went up): newer than this.
  if (it != meta_.end() && it->second.fetched > asked) return cached(it->second);
  if (forgets != forgets_) return info;  // something was forgotten meanwhile: maybe this answer
  if (info.ok()) {
    meta_[url] = Meta{*info, asked, false};
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

void ObjectCatalog::Fresh(const std::string& url, const ObjectInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  Meta& m = meta_[url];
  if (m.local) return;
  m = Meta{info, std::chrono::steady_clock::now(), false};
  Bound();
}

std::string ObjectCatalog::ChunkVersion(const std::string& url, const std::string& etag) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = aliases_.find(AliasKey(url, etag));
  return it == aliases_.end() ? etag : it->second;
}

void ObjectCatalog::SetLocal(const std::string& url, const ObjectInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  meta_[url] = Meta{info, std::chrono::steady_clock::now(), true};
  Bound();
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
                      std::chrono::steady_clock::now(), false};
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

void ObjectCatalog::PutAlias(const std::string& key, const std::string& version) {
  if (aliases_.insert_or_assign(key, version).second) alias_order_.push_back(key);
  while (alias_order_.size() > kMaxAliases) {
    aliases_.erase(alias_order_.front());
    alias_order_.pop_front();
  }
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
