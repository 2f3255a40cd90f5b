#pragma once

#include "net/http_client.h"

namespace shoal::http {

// How a shoald answers errors, for the requests of clients and of other nodes: a JSON body
// {"code": "NotFound", "message": "..."}, or, on a HEAD answer (no body), the headers
// X-Shoal-Error (the code) and X-Shoal-Message (net/node_protocol.h). Its describe quotes the
// message (and the header's code); its code is the one the answer names (proto::CodeOfAnswer),
// so a node's final error is never retried as a transient one. Thread-safe; the same object
// for every caller.
const ErrorFormat& NodeErrors();

}  // namespace shoal::http
