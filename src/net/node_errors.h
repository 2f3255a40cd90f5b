#pragma once

#include "net/http_client.h"

namespace shoal::http {

// How a shoald answers errors, for the requests of clients and of other nodes: a JSON body
// {"code": "NotFound", "message": "..."}, or, on a HEAD answer (no body), the headers
// X-Shoal-Error (the code) and X-Shoal-Message. Its describe quotes the message (and the
// header's code). Thread-safe; the same object for every caller.
const ErrorFormat& NodeErrors();

}  // namespace shoal::http
