#include "node/listing.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "net/node_protocol.h"
#include "node/objects.h"
#include "node/request_parse.h"
#include "node/write_back.h"

namespace shoal::node {
namespace {

// The node's continuation: the last name its page showed, a newline, the store's continuation
// (store tokens hold no newline; a key may).
std::string Continuation(const std::string& last_name, const std::string& store_token) {
  return last_name + "\n" + store_token;
}

}  // namespace

Result<std::string> ServeList(Node* node, std::string_view target) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl bucket, ObjectUrl::Parse(QueryParam(target, proto::kUrlParam)));
  ListOptions lo;
  lo.prefix = QueryParam(target, proto::kPrefixParam);
  if (lo.prefix.empty()) lo.prefix = bucket.key;  // url=az://c/prefix works too
  bucket.key.clear();
  lo.delimiter = QueryParam(target, proto::kDelimiterParam);
  std::string max_keys = QueryParam(target, proto::kMaxKeysParam);
  if (!max_keys.empty()) {
    auto n = ParseNumber(max_keys);
    if (!n || *n == 0 || *n > 1000) return Status::InvalidArgument("?max_keys= wants 1 to 1000, got " + max_keys);
    lo.max_keys = static_cast<uint32_t>(*n);
  }
  std::string after;  // the previous page's last name: its pending writes were shown there
  std::string continuation = QueryParam(target, proto::kContinuationParam);
  if (!continuation.empty()) {
    size_t nl = continuation.rfind('\n');
    if (nl == std::string::npos) return Status::InvalidArgument("?continuation= is not one this node gave");
    after = continuation.substr(0, nl);
    lo.continuation = continuation.substr(nl + 1);
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, node->objects().StoreFor(bucket));
  SHOAL_ASSIGN_OR_RETURN(ListPage page, store->List(lo));

  std::map<std::string, nlohmann::json> objects;
  std::set<std::string> prefixes(page.prefixes.begin(), page.prefixes.end());
  std::string last;  // the last name of the store's page
  for (const auto& o : page.objects) {
    objects[o.key] = {{"key", o.key}, {"size", o.size}, {"etag", o.etag},
                      {"last_modified", static_cast<int64_t>(o.last_modified)}, {"state", proto::kStateDurable}};
    last = std::max(last, o.key);
  }
  if (!page.prefixes.empty()) last = std::max(last, *page.prefixes.rbegin());
  const bool more = !page.next_continuation.empty();
  // Pending writes whose name (key, or its common prefix) falls in this page's range.
  for (const auto& p : node->writes().PendingUploads(bucket.WithKey(lo.prefix).ToString())) {
    auto url = ObjectUrl::Parse(p.record.url);
    if (!url.ok() || url->scheme != bucket.scheme || url->bucket != bucket.bucket) continue;
    const std::string& key = url->key;
    if (key.compare(0, lo.prefix.size(), lo.prefix) != 0) continue;
    std::string name = key;
    if (!lo.delimiter.empty()) {
      size_t at = key.find(lo.delimiter, lo.prefix.size());
      if (at != std::string::npos) name = key.substr(0, at + lo.delimiter.size());
    }
    if ((!after.empty() && name <= after) || (more && name > last)) continue;
    if (name != key) {
      prefixes.insert(name);
      continue;
    }
    auto info = node->objects().Stat(p.record.url);  // the newest write of it taken here
    if (!info.ok() || !node->writes().Pending(p.record.url)) continue;  // uploaded or deleted meanwhile
    objects[key] = {{"key", key}, {"size", info->size}, {"etag", info->etag},
                    {"last_modified", p.record.created_unix_ms / 1000}, {"state", proto::kStateLocal}};
  }
  nlohmann::json body = {{"objects", nlohmann::json::array()},
                         {"prefixes", nlohmann::json::array()},
                         {"next_continuation", more ? Continuation(last, page.next_continuation) : ""}};
  for (auto& [key, o] : objects) body["objects"].push_back(std::move(o));
  for (const auto& p : prefixes) body["prefixes"].push_back(p);
  return body.dump() + "\n";
}

}  // namespace shoal::node
