#pragma once

// GET /v1/list (net/node_protocol.h): the store's listing of a prefix as the node's clients see
// it, so a client lists through the node without the store's credentials. Split from server.cc:
// the handler works on the request's target and answers JSON, without Beast.

#include <string>
#include <string_view>

#include "common/status.h"
#include "node/node.h"

namespace shoal::node {

// One page of GET /v1/list?url=SCHEME://BUCKET&prefix=P[&delimiter=D][&continuation=C][&max_keys=N]:
// the store's page of keys starting with P (grouped at D into "prefixes"), with this node's
// writes under P that are acknowledged and not yet uploaded merged in (their local size and
// version, "state": "local"; they replace the store's entry of the same key). A write deleted
// through the node is gone from both (WriteBack::Delete cancels it). Writes pending on other
// nodes of a cluster are not merged. The continuation the answer names resumes after this page
// and also tells the next page which pending writes this one already showed.
// Answer: {"objects": [{"key", "size", "etag", "last_modified", "state"}], "prefixes": [...],
// "next_continuation": "" on the last page}. kInvalidArgument for a bad URL or parameter.
// Thread-safe (the store's List, the catalog and the uploader are). Blocks on the store.
Result<std::string> ServeList(Node* node, std::string_view target);

}  // namespace shoal::node
