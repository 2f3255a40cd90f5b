#pragma once

// Listings as the node's clients see them: the store's page of a prefix with the writes any
// member of the cluster acknowledged and has not yet uploaded merged in, so a key is listed as soon as its write is acknowledged. ListWithPending is the merge; GET /v1/list (net/node_protocol.h)
// answers it as JSON, and the S3 front door (door_s3.cc) as ListObjects XML. Split from
// server.cc: nothing here uses Beast.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/node.h"

namespace shoal::node {

// One object of a listing: the store's, or a write acknowledged here and not yet uploaded
// (`local`: its local size and version).
struct ListedObject {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  int64_t last_modified = 0;
  bool local = false;
};

struct ListedPage {
  std::vector<ListedObject> objects;  // in key order
  std::vector<std::string> prefixes;  // in order
  // Where the next page starts (ListContinuation): "" on the last page.
  std::string next_continuation;
  // Set (why) when the store could not be listed and lo.allow_incomplete took the pending
  // writes alone (ListPage::incomplete).
  std::string incomplete;
};

// One page of `lo` (lo.prefix, lo.delimiter, lo.max_keys; lo.continuation: ListContinuation's,
// or "") in the bucket of `bucket` (its key is ignored): the store's page with this node's
// writes under lo.prefix that are acknowledged and not yet uploaded merged in (they replace
// the store's entry of the same key; a pending key beyond a page's range waits for its page).
// lo.max_keys names, fewer only on the last page: the store is listed page after page until
// they are there (pending writes may take a store's page past them: the next page lists that
// store's page again from past the last name shown). A write deleted through the node is gone
// from both (WriteBack::Delete cancels it). With `whole_cluster`, the writes pending on the
// other members of the cluster too (each member's GET /v1/pending, asked once a page; a member
// that does not answer within a second is left out, and copies held for a dead member are
// listed once taken over); else only this node's. Names (keys, or common prefixes) at or
// before `after` are left out (a start-after). kInvalidArgument for a continuation this node
// did not give. With lo.allow_incomplete, a store that cannot be reached (kUnavailable,
// kIOError) lists as empty and the page says so in `incomplete`; otherwise its error is the
// listing's. Thread-safe (the store's List, the catalog and the uploader are). Blocks on
// the store and the members. The store's pages come from the node's ListingCache when nothing
// changed through the cluster since they were listed (within --metadata-ttl); with `fresh`,
// or without `whole_cluster` in a cluster, always from the store.
Result<ListedPage> ListWithPending(Node* node, const ObjectUrl& bucket, ListOptions lo, const std::string& after = "",
                                   bool whole_cluster = false, bool fresh = false);

// GET /v1/list?url=SCHEME://BUCKET&prefix=P[&delimiter=D][&continuation=C][&max_keys=N][&partial=1]:
// ListWithPending of the whole cluster as JSON: {"objects": [{"key", "size", "etag",
// "last_modified", "state"}], "prefixes": [...], "next_continuation": "" on the last page,
// "incomplete": why, only when partial=1 and the store could not be listed}; "state" is
// "local" for a pending write, else "durable". kInvalidArgument for a bad URL or parameter.
Result<std::string> ServeList(Node* node, std::string_view target);

}  // namespace shoal::node
