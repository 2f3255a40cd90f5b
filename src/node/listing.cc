#include "node/listing.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>

#include "net/node_protocol.h"
#include "node/objects.h"
#include "node/replicas.h"
#include "node/request_parse.h"
#include "node/write_back.h"

namespace shoal::node {
namespace {

// The node's continuation: the last name its page showed, a newline, the store's continuation
// (store tokens hold no newline; a key may). The name tells the next page which pending writes
// this one already showed.
std::string Continuation(const std::string& last_name, const std::string& store_token) {
  return last_name + "\n" + store_token;
}

// The writes under `prefix_url` that the other members of the cluster acknowledged and have
// not yet uploaded (their GET /v1/pending), `key` holding each one's URL. A member that does
// not answer within a second is left out, and its writes are listed from the copies other
// members hold of them (until a holder takes one over and lists it as its own). This node's
// own copies count too.
// `generations` gets every other member's generation ("id=generation;" in id order), or
// nullopt when one did not answer (ListingCache: nothing is cached then).
std::vector<ListedObject> PendingOnOtherMembers(Node* node, const std::string& prefix_url,
                                                std::optional<std::string>* generations) {
  std::vector<ListedObject> out;
  *generations = "";
  auto view = node->cluster().view();
  if (!view) return out;
  std::map<std::string, std::string> by_member;
  auto listed = [](const nlohmann::json& w) {
    return ListedObject{w.value("url", ""), w.value("size", 0ull), w.value("etag", ""),
                        w.value("written_unix_ms", int64_t{0}) / 1000, true};
  };
  std::set<std::string> silent;                              // members that did not answer
  std::vector<std::pair<std::string, ListedObject>> held;  // copies, by their origin
  for (const auto& r : node->replicas().HeldUnder(prefix_url)) {
    held.emplace_back(r.origin, ListedObject{r.url, r.size, LocalVersion(r.id), r.created_unix_ms / 1000, true});
  }
  for (const auto& peer : view->peers()) {
    if (peer.member.id == node->id()) continue;
    if (node->cluster().PeerDown(peer.member.id)) {
      silent.insert(peer.member.id);
      continue;
    }
    std::string body;
    Status st = node->cluster().Call(peer, "GET", proto::Target(proto::kPendingPath, {{proto::kPrefixParam, prefix_url}}),
                                     {}, &body, std::chrono::seconds(1));
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!st.ok() || !j.is_object() || !j["pending"].is_array()) {
      silent.insert(peer.member.id);
      continue;
    }
    by_member[peer.member.id] = j.value("generation", "");
    for (const auto& w : j["pending"]) {
      if (w.is_object()) out.push_back(listed(w));
    }
    if (!j["held"].is_array()) continue;
    for (const auto& w : j["held"]) {
      if (w.is_object()) held.emplace_back(w.value("origin", ""), listed(w));
    }
  }
  for (auto& [origin, o] : held) {
    if (silent.count(origin) > 0) out.push_back(std::move(o));
  }
  for (const auto& [id, generation] : by_member) {
    if (generation.empty()) *generations = std::nullopt;  // a member that does not say
    if (*generations) **generations += id + "=" + generation + ";";
  }
  if (!silent.empty()) *generations = std::nullopt;
  return out;
}

// The store's page for `lo`: from the listing cache when the cluster changed nothing since it
// was listed (`cluster_generation`, and this node's, read with its pending writes just before),
// else from the store, kept for the next listing. No cache without a cluster generation.
Result<ListPage> StorePage(Node* node, ObjectStore& store, const ObjectUrl& bucket, const ListOptions& lo,
                           const std::optional<std::string>& cluster_generation, const std::string& own_generation) {
  const auto ttl = node->options().validate.get() ? std::chrono::seconds(0) : node->options().metadata_ttl.get();
  const bool cacheable = cluster_generation.has_value() && ttl.count() > 0;
  const std::string key = bucket.ToString() + "\n" + lo.prefix + "\n" + lo.delimiter + "\n" +
                          std::to_string(lo.max_keys) + "\n" + lo.continuation;
  const std::string generation = cacheable ? own_generation + "|" + *cluster_generation : "";
  if (cacheable) {
    if (auto page = node->listings().Get(key, generation, ttl)) {
      node->metrics().list_cache_hits++;
      return std::move(*page);
    }
  }
  const auto asked = ListingCache::Clock::now();
  node->metrics().store_list_requests++;
  Result<ListPage> listed = store.List(lo);
  if (cacheable && listed.ok() && listed->incomplete.empty()) node->listings().Put(key, generation, *listed, asked);
  return listed;
}

// One page of ListWithPending from one page of the store: at most lo.max_keys names, maybe
// fewer (the store's page ends where it ends). `others`: the other members' pending writes.
Result<ListedPage> OnePage(Node* node, const ObjectUrl& bucket, ListOptions lo, const std::string& start_after,
                           std::vector<ListedObject> others, const std::optional<std::string>& cluster_generation) {
  std::string after = start_after;  // names at or before it are not shown
  if (!lo.continuation.empty()) {
    size_t nl = lo.continuation.rfind('\n');
    if (nl == std::string::npos) return Status::InvalidArgument("the continuation is not one this node gave");
    after = std::max(after, lo.continuation.substr(0, nl));
    lo.continuation = lo.continuation.substr(nl + 1);
  }
  SHOAL_ASSIGN_OR_RETURN(auto store, node->objects().StoreFor(bucket));
  // The pending writes first: one uploaded while the store lists is in one or the other.
  std::string own_generation;
  std::vector<UploadProgress> pending =
      node->writes().PendingUploads(bucket.WithKey(lo.prefix).ToString(), &own_generation);
  Result<ListPage> listed = StorePage(node, *store, bucket, lo, cluster_generation, own_generation);
  std::string incomplete;
  if (!listed.ok()) {
    const Code code = listed.status().code();
    if (!lo.allow_incomplete || (code != Code::kUnavailable && code != Code::kIOError)) return listed.status();
    incomplete = "the object store could not be listed (" + listed.status().message() +
                 "): only writes the cluster holds that are not yet uploaded are shown";
    listed = ListPage{};
  }
  ListPage page = std::move(listed).value();

  std::map<std::string, ListedObject> objects;
  std::set<std::string> prefixes;
  std::string last;  // the last name of the store's page
  for (const auto& o : page.objects) {
    last = std::max(last, o.key);
    if (!after.empty() && o.key <= after) continue;
    objects[o.key] = ListedObject{o.key, o.size, o.etag, static_cast<int64_t>(o.last_modified), false};
  }
  for (const auto& p : page.prefixes) {
    last = std::max(last, p);
    if (!after.empty() && p <= after) continue;
    prefixes.insert(p);
  }
  const bool more = !page.next_continuation.empty();
  // Pending writes whose name (key, or its common prefix) falls in this page's range.
  // The name a pending write of `url` shows as on this page (its key, or its common prefix,
  // which goes in `prefixes`); "" when it is not for this page, or shown as a prefix.
  auto name_here = [&](const std::string& url_text) -> std::string {
    auto url = ObjectUrl::Parse(url_text);
    if (!url.ok() || url->scheme != bucket.scheme || url->bucket != bucket.bucket) return "";
    const std::string& key = url->key;
    if (key.compare(0, lo.prefix.size(), lo.prefix) != 0) return "";
    std::string name = key;
    if (!lo.delimiter.empty()) {
      size_t at = key.find(lo.delimiter, lo.prefix.size());
      if (at != std::string::npos) name = key.substr(0, at + lo.delimiter.size());
    }
    if ((!after.empty() && name <= after) || (more && name > last)) return "";
    if (name != key) {
      prefixes.insert(name);
      return "";
    }
    return key;
  };
  // Other members' first: this node's own write of a key, if any, replaces theirs below.
  for (auto& o : others) {
    const std::string key = name_here(o.key);
    if (key.empty()) continue;
    o.key = key;
    objects[key] = std::move(o);
  }
  for (const auto& p : pending) {
    const std::string key = name_here(p.record.url);
    if (key.empty()) continue;
    // The newest write of it taken here, or, uploaded meanwhile, what the store has now (the
    // catalog knows it); deleted meanwhile, nothing.
    const bool local = node->writes().Pending(p.record.url);
    auto info = node->objects().Stat(p.record.url);
    if (!info.ok()) continue;
    if (local) {
      objects[key] = ListedObject{key, info->size, info->etag, p.record.created_unix_ms / 1000, true};
    } else if (!objects.count(key)) {
      objects[key] = ListedObject{key, info->size, info->etag, static_cast<int64_t>(info->last_modified), false};
    }
  }
  // Pending writes may take a page past max_keys: it ends at its max_keys-th name, and the
  // next page lists the same page of the store again from past that name.
  std::string cut;  // the last name shown when the page is cut short
  if (objects.size() + prefixes.size() > lo.max_keys && lo.max_keys > 0) {
    auto o = objects.begin();
    auto p = prefixes.begin();
    for (uint32_t shown = 0; shown < lo.max_keys; shown++) {
      if (p == prefixes.end() || (o != objects.end() && o->first < *p)) {
        cut = (o++)->first;
      } else {
        cut = *p++;
      }
    }
    objects.erase(o, objects.end());
    prefixes.erase(p, prefixes.end());
  }
  ListedPage out;
  out.incomplete = std::move(incomplete);
  for (auto& [key, o] : objects) out.objects.push_back(std::move(o));
  out.prefixes.assign(prefixes.begin(), prefixes.end());
  if (!cut.empty()) {
    out.next_continuation = Continuation(cut, lo.continuation);
  } else if (more) {
    out.next_continuation = Continuation(std::max(last, after), page.next_continuation);
  }
  return out;
}

}  // namespace

Result<ListedPage> ListWithPending(Node* node, const ObjectUrl& bucket_url, ListOptions lo, const std::string& after,
                                   bool whole_cluster, bool fresh) {
  ObjectUrl bucket = bucket_url;
  bucket.key.clear();
  std::vector<ListedObject> others;
  std::optional<std::string> generations;  // every other member's, when each said (ListingCache)
  if (whole_cluster) {
    others = PendingOnOtherMembers(node, bucket.WithKey(lo.prefix).ToString(), &generations);
  } else if (auto v = node->cluster().view(); !v || v->placement().members().size() < 2) {
    generations = "";  // alone: this node's generation is the cluster's
  }
  if (fresh) generations = std::nullopt;
  // The store's pages, one after another, until this one holds max_keys names or the store has
  // no more: a page cut short by pending writes, or left short by `after`, is filled.
  ListedPage out;
  const uint32_t max_keys = lo.max_keys;
  do {
    lo.max_keys = static_cast<uint32_t>(max_keys - out.objects.size() - out.prefixes.size());
    SHOAL_ASSIGN_OR_RETURN(ListedPage part, OnePage(node, bucket, lo, after, others, generations));
    for (auto& o : part.objects) out.objects.push_back(std::move(o));
    for (auto& p : part.prefixes) out.prefixes.push_back(std::move(p));
    if (!part.incomplete.empty()) out.incomplete = std::move(part.incomplete);
    out.next_continuation = lo.continuation = part.next_continuation;
  } while (!out.next_continuation.empty() && out.objects.size() + out.prefixes.size() < max_keys);
  std::sort(out.prefixes.begin(), out.prefixes.end());
  out.prefixes.erase(std::unique(out.prefixes.begin(), out.prefixes.end()), out.prefixes.end());
  return out;
}

Result<std::string> ServeList(Node* node, std::string_view target) {
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl bucket, ObjectUrl::Parse(QueryParam(target, proto::kUrlParam)));
  ListOptions lo;
  lo.prefix = QueryParam(target, proto::kPrefixParam);
  if (lo.prefix.empty()) lo.prefix = bucket.key;  // url=az://c/prefix works too
  lo.delimiter = QueryParam(target, proto::kDelimiterParam);
  std::string max_keys = QueryParam(target, proto::kMaxKeysParam);
  if (!max_keys.empty()) {
    auto n = ParseNumber(max_keys);
    if (!n || *n == 0 || *n > 1000) return Status::InvalidArgument("?max_keys= wants 1 to 1000, got " + max_keys);
    lo.max_keys = static_cast<uint32_t>(*n);
  }
  lo.continuation = QueryParam(target, proto::kContinuationParam);
  lo.allow_incomplete = QueryParam(target, proto::kPartialParam) == proto::kFlagOn;
  SHOAL_ASSIGN_OR_RETURN(ListedPage page, ListWithPending(node, bucket, lo, "", /*whole_cluster=*/true));
  nlohmann::json body = {{"objects", nlohmann::json::array()},
                         {"prefixes", page.prefixes},
                         {"next_continuation", page.next_continuation}};
  if (!page.incomplete.empty()) body["incomplete"] = page.incomplete;
  for (const auto& o : page.objects) {
    body["objects"].push_back({{"key", o.key}, {"size", o.size}, {"etag", o.etag}, {"last_modified", o.last_modified},
                               {"state", o.local ? proto::kStateLocal : proto::kStateDurable}});
  }
  return body.dump() + "\n";
}

}  // namespace shoal::node
