#pragma once

// Whole numbers read from JSON that came from outside (a peer's view, a journal file): nlohmann's
// get<uint32_t>() converts a float with a C++ cast, undefined behaviour past the type's range
// (1e30 as a size), and wraps negative or too-large integers silently. These accept only a JSON
// integer within the type's range and throw std::domain_error, naming `what`, for anything else.
// Thread-safe.

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace shoal {

template <class T>
T JsonUnsigned(const nlohmann::json& j, std::string_view what) {
  static_assert(std::is_unsigned_v<T>);
  if (!j.is_number_unsigned() || j.get<uint64_t>() > std::numeric_limits<T>::max()) {
    throw std::domain_error(std::string(what) + " is not a whole number from 0 to " +
                            std::to_string(std::numeric_limits<T>::max()) + ": " + j.dump());
  }
  return static_cast<T>(j.get<uint64_t>());
}

inline int64_t JsonInt64(const nlohmann::json& j, std::string_view what) {
  if (j.is_number_unsigned() && j.get<uint64_t>() <= uint64_t{std::numeric_limits<int64_t>::max()}) {
    return static_cast<int64_t>(j.get<uint64_t>());
  }
  if (j.is_number_integer() && !j.is_number_unsigned()) return j.get<int64_t>();
  throw std::domain_error(std::string(what) + " is not a 64-bit whole number: " + j.dump());
}

}  // namespace shoal
