#pragma once

#include <cstddef>
#include <functional>

#include "common/status.h"

namespace shoal {

// Receives bytes of a read, in order. Returning an error stops the read with that error.
// Called on the reading thread only; `data` is valid for the call.
using ByteSink = std::function<Status(const char* data, size_t len)>;

}  // namespace shoal
