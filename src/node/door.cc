#include "node/door.h"

#include <set>

namespace shoal::node {

std::string DoorBucket::UrlOf(std::string_view key) const { return base.WithKey(base.key + std::string(key)).ToString(); }

bool IsS3BucketName(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return name.find("..") == std::string_view::npos;
}

Result<std::unique_ptr<Door>> Door::Make(const DoorOptions& options) {
  if (options.buckets.empty()) return std::unique_ptr<Door>();
  auto door = std::unique_ptr<Door>(new Door());
  door->region_ = options.region;
  std::set<std::string> names;
  for (const std::string& spec : options.buckets) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("--bucket '" + spec + "' is not NAME=URL (e.g. models=az://models/prefix/)");
    }
    auto trim = [](std::string s) {
      while (!s.empty() && s.back() == ' ') s.pop_back();
      while (!s.empty() && s.front() == ' ') s.erase(0, 1);
      return s;
    };
    DoorBucket b;
    b.name = trim(spec.substr(0, eq));
    std::string url = trim(spec.substr(eq + 1));
    if (!IsS3BucketName(b.name)) {
      return Status::InvalidArgument("--bucket '" + spec + "': '" + b.name +
                                     "' is not a bucket name S3 clients can use (3-63 of a-z, 0-9, '.', '-')");
    }
    if (b.name == "metrics" || b.name == "healthz" || b.name == "readyz") {
      return Status::InvalidArgument("--bucket '" + spec + "': /" + b.name + " is the node's own endpoint; choose another name");
    }
    if (!names.insert(b.name).second) return Status::InvalidArgument("--bucket " + b.name + " is given twice");
    auto parsed = ObjectUrl::Parse(url);
    if (!parsed.ok()) return Status::InvalidArgument("--bucket '" + spec + "': " + parsed.status().message());
    b.base = *parsed;
    if (!b.base.key.empty() && b.base.key.back() != '/') b.base.key += '/';
    door->buckets_.push_back(std::move(b));
  }
  auto uploads = DoorUploads::Open(options.uploads_dir);
  if (!uploads.ok()) return uploads.status();
  door->uploads_ = std::move(*uploads);
  door->assemblies_ = std::make_unique<DoorAssemblies>(door->uploads_.get());
  if (options.credentials) {
    door->credentials_ = options.credentials;
  } else if (!options.credentials_file.empty()) {
    auto creds = door::Credentials::Load(options.credentials_file);
    if (!creds.ok()) return creds.status();
    door->credentials_ = std::move(*creds);
  } else if (!options.open) {
    return Status::InvalidArgument(
        "--bucket needs --credentials FILE (the keys clients sign with; see docs/front-door-auth.md), or "
        "--door-open to let anyone who reaches the port read and write these buckets");
  }
  return door;
}

const DoorBucket* Door::Find(std::string_view name) const {
  for (const auto& b : buckets_) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

}  // namespace shoal::node
