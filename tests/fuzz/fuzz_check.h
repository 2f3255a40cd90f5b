#pragma once

// What the fuzz targets share: a failed invariant prints what broke and aborts, so libFuzzer
// reports it as a crash and saves the input.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#define FUZZ_CHECK(cond, what)                                                      \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, what);                                                    \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// A scratch directory for this process's inputs, on tmpfs where there is one (each input
// writes files), named `name`-XXXXXX, removed at exit.
inline const std::string& FuzzScratchDir(const char* name) {
  static const std::string* dir = [name] {  // never destroyed: the exit handler below reads it
    namespace fs = std::filesystem;
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    auto* t = new std::string((base / (std::string(name) + "-XXXXXX")).string());
    FUZZ_CHECK(::mkdtemp(t->data()) != nullptr, "cannot make a temporary directory");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(FuzzScratchDir(""), ec);
    });
    return t;
  }();
  return *dir;
}
