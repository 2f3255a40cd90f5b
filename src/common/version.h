#pragma once

namespace shoal {

// The build's version: the CMake project version, then `git describe` of the source tree at
// build time when there is one, e.g. "0.1.0 (git b5bd889-dirty)". Defined in a file the build
// generates (cmake/version.cmake, library shoal_version); link shoal_version to use it.
// Thread-safe (a constant).
const char* Version();

}  // namespace shoal
