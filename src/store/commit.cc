#include "store/commit.h"

#include <ctime>
#include <map>

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace shoal {

Result<std::vector<std::string>> ShardNames(const std::string& name_template, uint32_t count) {
  if (count == 0) return Status::InvalidArgument("the number of shards must be at least 1");
  size_t at = name_template.find("{rank");
  size_t close = at == std::string::npos ? std::string::npos : name_template.find('}', at);
  if (close == std::string::npos) {
    return Status::InvalidArgument("the shard name '" + name_template +
                                   "' names no rank: put {rank} (or {rank:5} for 00003) where the rank goes");
  }
  std::string spec = name_template.substr(at + 5, close - at - 5);  // "" or ":W"
  size_t width = 0;
  if (!spec.empty()) {
    auto w = spec[0] == ':' ? ParseU64(spec.substr(1)) : Result<uint64_t>(Status::InvalidArgument(""));
    if (!w.ok() || *w > 20) {
      return Status::InvalidArgument("the shard name '" + name_template + "': write {rank} or {rank:W}, W a width up to 20");
    }
    width = static_cast<size_t>(*w);
  }
  std::vector<std::string> names;
  for (uint32_t rank = 0; rank < count; rank++) {
    std::string digits = std::to_string(rank);
    if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
    names.push_back(name_template.substr(0, at) + digits + name_template.substr(close + 1));
  }
  return names;
}

std::string JoinNames(const std::vector<std::string>& names, size_t max) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; i++) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += " and " + std::to_string(names.size() - max) + " more";
  return out;
}

bool IsCommitMarker(std::string_view key) {
  const std::string_view name = kCommitMarker;
  return key.size() >= name.size() && key.substr(key.size() - name.size()) == name &&
         (key.size() == name.size() || key[key.size() - name.size() - 1] == '/');
}

Result<std::string> CommitMarkerText(const std::string& where, const std::vector<ObjectInfo>& objects,
                                     const std::vector<std::string>* shards) {
  std::map<std::string, const ObjectInfo*> by_name;
  for (const auto& o : objects) {
    if (o.key != kCommitMarker) by_name[o.key] = &o;  // a commit made again replaces the old marker
  }
  std::vector<std::string> names;
  if (shards == nullptr) {
    for (const auto& [name, o] : by_name) names.push_back(name);
  } else {
    std::vector<std::string> missing;
    for (const auto& s : *shards) {
      if (by_name.count(s) == 0) missing.push_back(s);
    }
    if (!missing.empty()) {
      return Status::NotFound(std::to_string(missing.size()) + " of " + std::to_string(shards->size()) +
                              " shards missing under " + where + ": " + JoinNames(missing) + "; no marker written");
    }
    names = *shards;
  }
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0;
  for (const auto& name : names) {
    const ObjectInfo& o = *by_name[name];
    list.push_back({{"key", name}, {"size", o.size}, {"etag", o.etag}});
    bytes += o.size;
  }
  if (list.empty()) return Status::NotFound("nothing to commit: no objects under " + where);
  nlohmann::json marker = {{"prefix", where},
                           {"committed_at", FormatIso8601(std::time(nullptr))},
                           {"objects", list.size()},
                           {"bytes", bytes},
                           {"contents", list}};
  if (shards != nullptr) marker["shards"] = shards->size();
  return marker.dump(1) + "\n";
}

Result<std::string> WriteCommitMarker(ObjectStore& store, const ObjectUrl& prefix_url,
                                      const std::vector<std::string>* shards) {
  std::string prefix = prefix_url.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  std::string where = prefix_url.WithKey(prefix).ToString();
  SHOAL_ASSIGN_OR_RETURN(auto objects, ListAll(store, prefix));
  for (auto& o : objects) o.key = o.key.substr(prefix.size());
  SHOAL_ASSIGN_OR_RETURN(std::string text, CommitMarkerText(where, objects, shards));
  SHOAL_RETURN_IF_ERROR(store.PutObject(prefix + kCommitMarker, text).status().WithContext(
      "writing " + where + kCommitMarker));
  return text;
}

namespace {
Result<nlohmann::json> ParseMarker(const std::string& marker_json) {
  auto marker = nlohmann::json::parse(marker_json, nullptr, false);
  if (marker.is_discarded() || !marker.is_object() || !marker.contains("contents") || !marker["contents"].is_array()) {
    return Status::Corruption(std::string(kCommitMarker) + " is not a commit marker (no JSON \"contents\" list)");
  }
  for (const auto& entry : marker["contents"]) {
    if (!entry.is_object() || !entry.value("key", nlohmann::json()).is_string() ||
        !entry.value("etag", nlohmann::json()).is_string()) {
      return Status::Corruption(std::string(kCommitMarker) + " lists something that is not an object");
    }
  }
  return marker;
}
}  // namespace

Result<std::string> ResolveCommitMarker(const std::string& marker_json, const VersionResolver& resolve) {
  SHOAL_ASSIGN_OR_RETURN(nlohmann::json marker, ParseMarker(marker_json));
  for (auto& entry : marker["contents"]) {
    auto now = resolve(entry["key"].get<std::string>(), entry["etag"].get<std::string>());
    if (now.ok()) {
      entry["etag"] = *now;
    } else if (!now.status().IsNotFound()) {
      return now.status();
    }
  }
  return marker.dump(1) + "\n";
}

Status VerifyCommitMarker(const std::string& marker_json, const std::vector<ObjectInfo>& listed,
                          const VersionResolver& resolve) {
  SHOAL_ASSIGN_OR_RETURN(nlohmann::json marker, ParseMarker(marker_json));
  std::map<std::string, const ObjectInfo*> now;
  for (const auto& o : listed) now[o.key] = &o;
  for (const auto& entry : marker["contents"]) {
    std::string key = entry.value("key", std::string());
    uint64_t size = entry.value("size", uint64_t{0});
    std::string etag = entry.value("etag", std::string());
    auto it = now.find(key);
    if (it == now.end()) return Status::PreconditionFailed(key + " is missing");
    bool same = it->second->etag == etag;
    if (!same && resolve) {
      auto became = resolve(key, etag);
      same = became.ok() && *became == it->second->etag;
    }
    if (it->second->size != size || !same) {
      return Status::PreconditionFailed(key + " changed after the commit (now " + std::to_string(it->second->size) +
                                        " bytes, ETag " + it->second->etag + "; the marker has " + std::to_string(size) +
                                        " bytes, ETag " + etag + ")");
    }
  }
  return Status::Ok();
}

}  // namespace shoal
