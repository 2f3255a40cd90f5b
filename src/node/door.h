#pragma once

// The front door: the S3 API and the Azure Blob API served by every node on its own port, so
// unmodified tools reach the cache by changing one endpoint. This file holds what the door is
// configured with: the buckets it serves (each a name in front of a backend URL prefix, so an
// S3 bucket may front an Azure container, and an Azure container an S3 bucket) and the keys
// that may use it (door/credentials.h). The routes are in door_s3.cc and door_azure.cc;
// docs/front-door.md describes what is served and what is refused.
//
// Thread-safety: a Door is immutable after Make, except its Credentials, which reload
// atomically (door/credentials.h), and its uploads and assemblies (thread-safe themselves).
// Shared by every connection.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "door/credentials.h"
#include "node/door_assembly.h"
#include "node/door_uploads.h"
#include "store/object_store.h"

namespace shoal::node {

// One name the door serves.
struct DoorBucket {
  std::string name;  // what clients call it: an S3 bucket name, and the Azure container's
  ObjectUrl base;    // where its objects live: base.key is "" or a prefix ending in '/'
  // The backend URL of `key` in this bucket.
  std::string UrlOf(std::string_view key) const;
};

struct DoorOptions {
  // "NAME=URL" each (--bucket): URL is az://container[/prefix], s3://bucket[/prefix] or
  // file:///dir.
  std::vector<std::string> buckets;
  std::string credentials_file;  // --credentials
  // The keys, when the caller has loaded them already (the daemon shares them with the node's
  // tokens and reloads them on SIGHUP); else Make loads credentials_file.
  std::shared_ptr<door::Credentials> credentials;
  bool open = false;             // --door-open: no keys file, anyone may use the door
  std::string region = "us-east-1";  // what GetBucketLocation answers and SigV4 scopes name
  std::string uploads_dir;  // where multipart uploads and blocks are staged (DATA_DIR/door-uploads)
};

class Door {
 public:
  // kInvalidArgument naming the bad entry: a malformed NAME=URL, a name S3 does not allow or
  // the node uses itself (metrics, healthz, readyz), a name given twice; a keys file that
  // does not load; no keys file and not open. Nullptr (and Ok) when no bucket is configured:
  // the node has no door.
  static Result<std::unique_ptr<Door>> Make(const DoorOptions& options);

  // The bucket called `name`, or nullptr.
  const DoorBucket* Find(std::string_view name) const;
  const std::vector<DoorBucket>& buckets() const { return buckets_; }
  // Nullptr when the door is open.
  const door::Credentials* credentials() const { return credentials_.get(); }
  bool open() const { return credentials_ == nullptr; }
  const std::string& region() const { return region_; }
  // Multipart uploads and Azure blocks being staged (thread-safe itself).
  DoorUploads* uploads() const { return uploads_.get(); }
  // Multipart uploads' parts joined into their write as they arrive (thread-safe itself). Its
  // Close() must run before the node (its write-back) is destroyed: the daemon does it once the
  // server has stopped.
  DoorAssemblies* assemblies() const { return assemblies_.get(); }

 private:
  std::vector<DoorBucket> buckets_;
  std::shared_ptr<door::Credentials> credentials_;
  std::string region_;
  std::unique_ptr<DoorUploads> uploads_;
  std::unique_ptr<DoorAssemblies> assemblies_;  // after uploads_: it reads the staged parts
};

// Whether `name` is a bucket name S3 accepts (3-63 of a-z 0-9 . -, starting and ending with a
// letter or digit).
bool IsS3BucketName(std::string_view name);

}  // namespace shoal::node
