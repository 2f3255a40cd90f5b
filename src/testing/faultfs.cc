// A fault-injection shim for tests, loaded into a process with LD_PRELOAD. It changes nothing
// unless its variable is set:
//   SHOAL_FAULTFS_SLOW_FSYNC=SUBSTRING:MS   fsync and fdatasync of a file whose path contains
//                                           SUBSTRING wait MS milliseconds first (a slow disk
//                                           at one place, to hold a race's window open).
//   SHOAL_FAULTFS_SLOW_FSYNC_ONCE=PATH      ... only once: the first such fsync after PATH is
//                                           created removes PATH and waits, the others do not
//                                           (a test knows the slow one began when PATH is gone).
// Test-only: nothing in the product loads it.
#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

namespace {

void MaybeSlow(int fd) {
  const char* spec = std::getenv("SHOAL_FAULTFS_SLOW_FSYNC");
  if (spec == nullptr) return;
  std::string_view s(spec);
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return;
  char path[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), path, sizeof path);
  if (n <= 0) return;
  if (std::string_view(path, static_cast<size_t>(n)).find(s.substr(0, colon)) == std::string_view::npos) return;
  const char* once = std::getenv("SHOAL_FAULTFS_SLOW_FSYNC_ONCE");
  if (once != nullptr && ::unlink(once) != 0) return;  // not armed, or another fsync took it
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(spec + colon + 1)));
}

template <typename F>
F Real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  static auto real = Real<int (*)(int)>("fsync");
  MaybeSlow(fd);
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  static auto real = Real<int (*)(int)>("fdatasync");
  MaybeSlow(fd);
  return real(fd);
}
