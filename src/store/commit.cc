#include "store/commit.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace shoal {

Result<std::string> WriteCommitMarker(ObjectStore& store, const ObjectUrl& prefix_url) {
  std::string prefix = prefix_url.key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  SHOAL_ASSIGN_OR_RETURN(auto objects, ListAll(store, prefix));
  nlohmann::json list = nlohmann::json::array();
  uint64_t bytes = 0;
  for (const auto& o : objects) {
    std::string name = o.key.substr(prefix.size());
    if (name == kCommitMarker) continue;  // a commit made again replaces the old marker
    list.push_back({{"key", name}, {"size", o.size}, {"etag", o.etag}});
    bytes += o.size;
  }
  std::string where = prefix_url.WithKey(prefix).ToString();
  if (list.empty()) return Status::NotFound("nothing to commit: no objects under " + where);
  nlohmann::json marker = {{"prefix", where},
                           {"committed_at", FormatIso8601(std::time(nullptr))},
                           {"objects", list.size()},
                           {"bytes", bytes},
                           {"contents", list}};
  std::string text = marker.dump(1) + "\n";
  SHOAL_RETURN_IF_ERROR(store.PutObject(prefix + kCommitMarker, text).status().WithContext(
      "writing " + where + kCommitMarker));
  return text;
}

}  // namespace shoal
