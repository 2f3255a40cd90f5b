#pragma once

#include <sys/types.h>

#include <string>

#include "client/client.h"
#include "common/status.h"

namespace shoal::mount {

// `shoal mount URL_PREFIX MOUNTPOINT`: the objects under a prefix as files (FUSE, libfuse3's
// low-level API). docs/mount.md says what each file operation means.
struct MountOptions {
  std::string url;          // az://container/prefix/ (the mount's root)
  std::string mountpoint;
  client::ClientOptions client;
  bool read_only = false;
  bool allow_other = false;  // other users may use the mount (needs user_allow_other in /etc/fuse.conf unless root)
  bool foreground = false;   // stay in the foreground (else detach once mounted)
  uid_t uid = 0;             // owner of every file and directory
  gid_t gid = 0;
  double metadata_ttl = 60;  // seconds sizes, ETags and listings are trusted (kernel and mount)
  bool fsync_durable = false;  // fsync waits until the data is in the object store
  bool kernel_cache = false;   // read every file through the kernel's page cache (else files of
                               // 32 MiB and more are read with direct_io; docs/mount.md)
  // close(2) of a written file returns once the mount holds all of its bytes; the node's
  // acknowledgement is waited for in the background (a few files at once) and by fsync of the
  // file or of a directory above it, by a later open, unlink or rename of it, and by unmount.
  bool async_close = false;
};

// Mounts and serves until unmounted (or SIGINT/SIGTERM); the process's exit code.
int Run(const MountOptions& options);

// Unmounts MOUNTPOINT (umount2 as root, else fusermount3 -u), once an fsync of its root has
// waited for the files an --async-close mount has not had acknowledged yet; kIOError (after
// unmounting) when one of them failed. Says on stderr every 10 s that it is still waiting;
// with `timeout_s` > 0, gives up after that long with kUnavailable, unmounting nothing (a
// mount whose process is stopped or hung never answers).
Status Unmount(const std::string& mountpoint, int timeout_s = 0);

}  // namespace shoal::mount
