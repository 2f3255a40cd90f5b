#include "node/door_uploads.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cstring>
#include <sstream>

#include "common/file.h"
#include "common/json_numbers.h"
#include "common/strings.h"
#include "door/checksum.h"

namespace shoal::node {
namespace {

namespace fs = std::filesystem;

constexpr const char* kInfoFile = "upload.json";

std::string PartFile(uint32_t number) { return "part-" + std::to_string(number); }

Result<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + " is not a JSON object");
  return j;
}

Status WriteJson(const std::string& path, const nlohmann::json& j) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump();
    if (!out.flush()) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

Result<StagedUpload> UploadOf(const nlohmann::json& j, const std::string& id) {
  StagedUpload u;
  u.id = id;
  if (!j.contains("bucket") || !j["bucket"].is_string() || !j.contains("key") || !j["key"].is_string() ||
      !j.contains("created") || !j["created"].is_number_integer() || j["created"].is_number_float()) {
    return Status::Corruption("upload " + id + ": its record lacks bucket, key or created");
  }
  u.bucket = j["bucket"];
  u.key = j["key"];
  u.created = j["created"].get<int64_t>();
  if (j.contains("meta")) {
    try {
      u.meta = j["meta"].get<ObjectMeta>();
    } catch (const std::exception& e) {
      return Status::Corruption("upload " + id + ": its metadata is damaged: " + e.what());
    }
  }
  return u;
}

// An upload id: hex only, so it is a safe directory name (a client names ids in requests).
bool IsUploadId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

class FilePartWriter final : public DoorUploads::PartWriter {
 public:
  FilePartWriter(std::string dir, uint32_t number)
      : dir_(std::move(dir)), number_(number), md5_(door::Checksum::Make("md5")) {
    tmp_ = dir_ + "/" + PartFile(number_) + "." + RandomHex() + ".tmp";
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~FilePartWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(tmp_.c_str());
  }
  bool opened() const { return fd_ >= 0; }
  Status Append(std::string_view data) override {
    if (int err = WriteAt(fd_, data, size_); err != 0) {
      return Status(err == ENOSPC ? Code::kResourceExhausted : Code::kIOError,
                    "cannot write part " + std::to_string(number_) + " to " + tmp_ + ": " + std::strerror(err));
    }
    md5_->Update(data);
    size_ += data.size();
    return Status::Ok();
  }
  Result<StagedPart> Finish() override {
    StagedPart p;
    p.number = number_;
    p.size = size_;
    p.etag = HexEncode(md5_->Final());
    p.modified = std::time(nullptr);
    ::close(fd_);
    fd_ = -1;
    std::string final_path = dir_ + "/" + PartFile(number_);
    SHOAL_RETURN_IF_ERROR(WriteJson(final_path + ".json", {{"size", p.size}, {"etag", p.etag}, {"modified", p.modified}}));
    if (::rename(tmp_.c_str(), final_path.c_str()) != 0) {
      return Status::IOError("cannot rename " + tmp_ + ": " + std::strerror(errno));
    }
    done_ = true;
    return p;
  }

 private:
  std::string dir_, tmp_;
  uint32_t number_;
  std::unique_ptr<door::Checksum> md5_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool done_ = false;
};

}  // namespace

Result<std::unique_ptr<DoorUploads>> DoorUploads::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  return std::unique_ptr<DoorUploads>(new DoorUploads(dir));
}

Result<StagedUpload> DoorUploads::Create(const std::string& bucket, const std::string& key, const ObjectMeta& meta) {
  StagedUpload u{RandomHex() + RandomHex(), bucket, key, std::time(nullptr), meta};
  std::error_code ec;
  fs::create_directories(DirOf(u.id), ec);
  if (ec) return Status::IOError("cannot create " + DirOf(u.id) + ": " + ec.message());
  SHOAL_RETURN_IF_ERROR(WriteJson(DirOf(u.id) + "/" + kInfoFile, {{"bucket", bucket}, {"key", key}, {"created", u.created}, {"meta", meta}}));
  return u;
}

Result<StagedUpload> DoorUploads::Find(const std::string& id, const std::string& bucket, const std::string& key) const {
  auto missing = Status::NotFound("The specified multipart upload does not exist (" + id.substr(0, 64) +
                                  "): it was completed, aborted, or lost with its node");
  if (!IsUploadId(id)) return missing;
  auto j = ReadJson(DirOf(id) + "/" + kInfoFile);
  if (!j.ok()) return missing;
  auto u = UploadOf(*j, id);
  if (!u.ok()) return u.status();
  if (u->bucket != bucket || u->key != key) return missing;
  return u;
}

std::vector<StagedUpload> DoorUploads::List(const std::string& bucket) const {
  std::vector<StagedUpload> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string id = e.path().filename();
    if (!IsUploadId(id)) continue;
    auto j = ReadJson(e.path().string() + "/" + kInfoFile);
    if (!j.ok()) continue;
    auto u = UploadOf(*j, id);
    if (u.ok() && u->bucket == bucket) out.push_back(*u);
  }
  std::sort(out.begin(), out.end(), [](const StagedUpload& a, const StagedUpload& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Result<std::unique_ptr<DoorUploads::PartWriter>> DoorUploads::WritePart(const StagedUpload& upload, uint32_t number) {
  auto w = std::make_unique<FilePartWriter>(DirOf(upload.id), number);
  if (!w->opened()) {
    return Status::NotFound("The specified multipart upload does not exist (" + upload.id + "): it was completed or aborted");
  }
  return std::unique_ptr<PartWriter>(std::move(w));
}

Result<std::vector<StagedPart>> DoorUploads::Parts(const StagedUpload& upload) const {
  std::vector<StagedPart> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(DirOf(upload.id), ec)) {
    std::string name = e.path().filename();
    if (!StartsWith(name, "part-") || !EndsWith(name, ".json")) continue;
    auto n = ParseU64(name.substr(5, name.size() - 10));
    if (!n.ok() || *n == 0 || *n > 10000) continue;
    if (!fs::exists(DirOf(upload.id) + "/" + PartFile(static_cast<uint32_t>(*n)))) continue;
    auto j = ReadJson(e.path().string());
    if (!j.ok()) continue;
    StagedPart p;
    try {
      p = StagedPart{static_cast<uint32_t>(*n), JsonUnsigned<uint64_t>(j->value("size", nlohmann::json()), "size"),
                     j->value("etag", ""), static_cast<std::time_t>(JsonInt64(j->value("modified", nlohmann::json()), "modified"))};
    } catch (const std::exception& ex) {
      return Status::Corruption("part record " + e.path().string() + " is damaged (" + ex.what() + "): abort the upload");
    }
    out.push_back(std::move(p));
  }
  if (ec) return Status::NotFound("The specified multipart upload does not exist (" + upload.id + ")");
  std::sort(out.begin(), out.end(), [](const StagedPart& a, const StagedPart& b) { return a.number < b.number; });
  return out;
}

Status DoorUploads::ReadPart(const StagedUpload& upload, uint32_t number, size_t piece,
                             const std::function<Status(std::string_view)>& sink) const {
  std::string path = DirOf(upload.id) + "/" + PartFile(number);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("part " + std::to_string(number) + " of upload " + upload.id + " is gone");
  std::string buf(piece, '\0');
  Status st;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Status::IOError("cannot read " + path + ": " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    st = sink(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!st.ok()) break;
  }
  ::close(fd);
  return st;
}

Status DoorUploads::Remove(const StagedUpload& upload) {
  std::error_code ec;
  fs::remove_all(DirOf(upload.id), ec);
  if (ec) return Status::IOError("cannot remove " + DirOf(upload.id) + ": " + ec.message());
  return Status::Ok();
}

}  // namespace shoal::node
