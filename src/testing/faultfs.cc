// A fault-injection shim for tests, loaded into a process with LD_PRELOAD. It changes nothing
// unless one of its variables is set:
//   SHOAL_FAULTFS_SLOW_FSYNC=SUBSTRING:MS   fsync and fdatasync of a file whose path contains
//                                           SUBSTRING wait MS milliseconds first (a slow disk
//                                           at one place, to hold a race's window open).
//   SHOAL_FAULTFS_SLOW_FSYNC_ONCE=PATH      ... only once: the first such fsync after PATH is
//                                           created removes PATH and waits, the others do not
//                                           (a test knows the slow one began when PATH is gone).
//   SHOAL_FAULTFS_LOST_WRITEBACK=SUBSTRING  the disk fails to write back what is written
//                                           (write, pwrite) to files whose path contains
//                                           SUBSTRING, and the kernel reports it only to the
//                                           descriptor that wrote it: fsync and fdatasync there
//                                           fail with EIO; on a descriptor opened later they
//                                           succeed (as once the file's pages, and the error
//                                           with them, were dropped from memory).
//   SHOAL_FAULTFS_DURABLE=SUBSTRING:DIR     records in DIR what an fsync or fdatasync that
//                                           succeeded made durable, for paths containing
//                                           SUBSTRING, so a test can rebuild what a power cut
//                                           would have left (testing::PowerCutView):
//     DIR/files/DEV-INO   a regular file's bytes as they were when it was synced, after a
//                         first line "SIZE MTIME_NS"
//     DIR/dirs/DEV-INO    a directory's entries when it was synced: "NAME\tDEV-INO\tTYPE\tSIZE\tMTIME_NS"
//                         a line (TYPE d or f), so renames, creations and unlinks in it count
//                         from then on, and not before
//   Each record replaces the last one of its file or directory whole (written aside, renamed),
//   so a kill -9 of the process leaves every record complete. Records are written before the
//   call returns: what the process was told is durable is recorded.
//   SHOAL_FAULTNET_CUT=FILE                 the process cannot reach the TCP ports FILE lists
//                                           (numbers, one a line; read on every call, so a test
//                                           cuts and mends links while it runs): connect to one
//                                           fails with ECONNREFUSED, and send, sendto and
//                                           sendmsg on a connection to one with ECONNRESET.
//                                           Answers to connections others made are not cut: a
//                                           member cut off from another this way is still
//                                           reached by it.
// Test-only: nothing in the product loads it.
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// The path `fd` was opened at, or "".
std::string PathOf(int fd) {
  char path[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), path, sizeof path);
  return n <= 0 ? "" : std::string(path, static_cast<size_t>(n));
}

// SUBSTRING and the rest of a SUBSTRING:REST variable (split at its last colon or its first),
// or false when it is unset or malformed.
bool Spec(const char* name, std::string* substring, std::string* rest, bool last_colon) {
  const char* spec = std::getenv(name);
  if (spec == nullptr) return false;
  std::string_view s(spec);
  size_t colon = last_colon ? s.rfind(':') : s.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  *substring = std::string(s.substr(0, colon));
  *rest = std::string(s.substr(colon + 1));
  return true;
}

void MaybeSlow(int fd) {
  std::string substring, ms;
  if (!Spec("SHOAL_FAULTFS_SLOW_FSYNC", &substring, &ms, true)) return;
  if (PathOf(fd).find(substring) == std::string::npos) return;
  const char* once = std::getenv("SHOAL_FAULTFS_SLOW_FSYNC_ONCE");
  if (once != nullptr && ::unlink(once) != 0) return;  // not armed, or another fsync took it
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(ms.c_str())));
}

std::string Key(const struct stat& st) {
  return std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino);
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Writes `path` whole: aside first, then renamed over it.
void Replace(const std::string& path, const std::string& head, int content_fd) {
  static std::atomic<uint64_t> seq{0};
  std::string tmp = path + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return;
  bool ok = WriteAll(out, head.data(), head.size());
  if (ok && content_fd >= 0) {
    char buf[1 << 16];
    for (off_t off = 0;;) {
      ssize_t r = ::pread(content_fd, buf, sizeof buf, off);
      if (r < 0) ok = false;
      if (r <= 0) break;
      ok = ok && WriteAll(out, buf, static_cast<size_t>(r));
      off += r;
    }
  }
  ::close(out);
  if (ok) ::rename(tmp.c_str(), path.c_str());
  else ::unlink(tmp.c_str());
}

// After a successful sync of `fd`: records what it made durable.
void MaybeRecord(int fd) {
  std::string substring, dir;
  if (!Spec("SHOAL_FAULTFS_DURABLE", &substring, &dir, false)) return;
  std::string path = PathOf(fd);
  if (path.find(substring) == std::string::npos) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  ::mkdir(dir.c_str(), 0755);
  if (S_ISREG(st.st_mode)) {
    ::mkdir((dir + "/files").c_str(), 0755);
    // The descriptor may be write-only: read through a descriptor of our own.
    int in = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return;
    Replace(dir + "/files/" + Key(st), std::to_string(st.st_size) + " " + std::to_string(MtimeNs(st)) + "\n", in);
    ::close(in);
  } else if (S_ISDIR(st.st_mode)) {
    ::mkdir((dir + "/dirs").c_str(), 0755);
    int dfd = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR* d = ::fdopendir(dfd);
    if (d == nullptr) {
      ::close(dfd);
      return;
    }
    std::string listing;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat es {};
      if (::fstatat(::dirfd(d), e->d_name, &es, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISDIR(es.st_mode) && !S_ISREG(es.st_mode)) continue;
      listing += name + "\t" + Key(es) + "\t" + (S_ISDIR(es.st_mode) ? "d" : "f") + "\t" + std::to_string(es.st_size) +
                 "\t" + std::to_string(MtimeNs(es)) + "\n";
    }
    ::closedir(d);
    Replace(dir + "/dirs/" + Key(st), listing, -1);
  }
}

template <typename F>
F Real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

// The open files (descriptions, not descriptor numbers: those are reused) that wrote to a file
// whose write-back fails (SHOAL_FAULTFS_LOST_WRITEBACK), each held by a duplicate of its
// descriptor; kcmp(2) tells whether a descriptor refers to one of them.
std::mutex lost_mu;
std::vector<int>* lost_files = new std::vector<int>;  // never freed: used until the process ends

bool SameFile(int a, int b) {
  pid_t pid = ::getpid();
  return ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

bool LostLocked(int fd) {
  for (int held : *lost_files) {
    if (SameFile(fd, held)) return true;
  }
  return false;
}

void MaybeLose(int fd) {
  const char* substring = std::getenv("SHOAL_FAULTFS_LOST_WRITEBACK");
  if (substring == nullptr || *substring == '\0' || PathOf(fd).find(substring) == std::string::npos) return;
  std::lock_guard<std::mutex> lock(lost_mu);
  if (LostLocked(fd)) return;
  int held = ::fcntl(fd, F_DUPFD_CLOEXEC, 1000);
  if (held >= 0) lost_files->push_back(held);
}

bool Lost(int fd) {
  if (std::getenv("SHOAL_FAULTFS_LOST_WRITEBACK") == nullptr) return false;
  std::lock_guard<std::mutex> lock(lost_mu);
  return LostLocked(fd);
}

}  // namespace

extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  static auto real = Real<ssize_t (*)(int, const void*, size_t)>("write");
  ssize_t rc = real(fd, buf, n);
  if (rc > 0) MaybeLose(fd);
  return rc;
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  static auto real = Real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  ssize_t rc = real(fd, buf, n, offset);
  if (rc > 0) MaybeLose(fd);
  return rc;
}

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  static auto real = Real<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  ssize_t rc = real(fd, buf, n, offset);
  if (rc > 0) MaybeLose(fd);
  return rc;
}

namespace {

// fsync and fdatasync alike: slowed, failed or recorded as the variables say.
int Sync(int (*real)(int), int fd) {
  MaybeSlow(fd);
  int rc = real(fd);
  if (rc == 0 && Lost(fd)) {
    errno = EIO;
    return -1;
  }
  if (rc == 0) MaybeRecord(fd);
  return rc;
}

}  // namespace

extern "C" int fsync(int fd) {
  static auto real = Real<int (*)(int)>("fsync");
  return Sync(real, fd);
}

extern "C" int fdatasync(int fd) {
  static auto real = Real<int (*)(int)>("fdatasync");
  return Sync(real, fd);
}

namespace {

// Whether SHOAL_FAULTNET_CUT names a file that lists `port`.
bool Cut(int port) {
  const char* file = std::getenv("SHOAL_FAULTNET_CUT");
  if (file == nullptr || port <= 0) return false;
  int fd = ::open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  for (char* p = buf; *p != '\0';) {
    char* end = nullptr;
    long listed = std::strtol(p, &end, 10);
    if (end == p) {
      p++;
      continue;
    }
    if (listed == port) return true;
    p = end;
  }
  return false;
}

int PortOf(const struct sockaddr* a) {
  if (a == nullptr) return 0;
  if (a->sa_family == AF_INET) return ntohs(reinterpret_cast<const struct sockaddr_in*>(a)->sin_port);
  if (a->sa_family == AF_INET6) return ntohs(reinterpret_cast<const struct sockaddr_in6*>(a)->sin6_port);
  return 0;
}

// Whether a send on `fd` (to `to`, or else to its peer) is cut.
bool SendCut(int fd, const struct sockaddr* to) {
  if (std::getenv("SHOAL_FAULTNET_CUT") == nullptr) return false;
  if (to != nullptr) return Cut(PortOf(to));
  struct sockaddr_storage peer {};
  socklen_t len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &len) != 0) return false;
  return Cut(PortOf(reinterpret_cast<struct sockaddr*>(&peer)));
}

}  // namespace

extern "C" int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  static auto real = Real<int (*)(int, const struct sockaddr*, socklen_t)>("connect");
  if (std::getenv("SHOAL_FAULTNET_CUT") != nullptr && Cut(PortOf(addr))) {
    errno = ECONNREFUSED;
    return -1;
  }
  return real(fd, addr, len);
}

extern "C" ssize_t send(int fd, const void* buf, size_t n, int flags) {
  static auto real = Real<ssize_t (*)(int, const void*, size_t, int)>("send");
  if (SendCut(fd, nullptr)) {
    errno = ECONNRESET;
    return -1;
  }
  return real(fd, buf, n, flags);
}

extern "C" ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* to, socklen_t len) {
  static auto real = Real<ssize_t (*)(int, const void*, size_t, int, const struct sockaddr*, socklen_t)>("sendto");
  if (SendCut(fd, to)) {
    errno = ECONNRESET;
    return -1;
  }
  return real(fd, buf, n, flags, to, len);
}

extern "C" ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  static auto real = Real<ssize_t (*)(int, const struct msghdr*, int)>("sendmsg");
  if (SendCut(fd, msg != nullptr ? static_cast<const struct sockaddr*>(msg->msg_name) : nullptr)) {
    errno = ECONNRESET;
    return -1;
  }
  return real(fd, msg, flags);
}
