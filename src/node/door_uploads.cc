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

constexpr const char* kCommittedFile = "committed.json";
constexpr const char* kBlockKind = "blocks";  // upload.json's "kind" of an Azure block area

std::string PartFile(uint32_t number) { return "part-" + std::to_string(number); }
std::string BlockFile(std::string_view block_id) { return "block-" + HexEncode(block_id); }

Result<nlohmann::json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + " is not a JSON object");
  return j;
}

// Replaces `path` whole. Writers of one path at once (the first Put Blocks of a blob, all
// making its area) each write a temporary file of their own: the last rename wins, never a mix.
Status WriteJson(const std::string& path, const nlohmann::json& j) {
  std::string tmp = path + "." + RandomHex() + ".tmp";
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
  u.blocks = j.value("kind", "") == kBlockKind;
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
  // Writes `file` in `dir`; `part` says which part or block it is.
  FilePartWriter(std::string dir, std::string file, StagedPart part)
      : dir_(std::move(dir)), file_(std::move(file)), part_(std::move(part)), md5_(door::Checksum::Make("md5")) {
    tmp_ = dir_ + "/" + file_ + "." + RandomHex() + ".tmp";
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
                    "cannot write " + file_ + " to " + tmp_ + ": " + std::strerror(err));
    }
    md5_->Update(data);
    size_ += data.size();
    return Status::Ok();
  }
  Result<StagedPart> Finish() override {
    StagedPart p = part_;
    p.size = size_;
    p.etag = HexEncode(md5_->Final());
    p.modified = std::time(nullptr);
    ::close(fd_);
    fd_ = -1;
    std::string final_path = dir_ + "/" + file_;
    nlohmann::json record = {{"size", p.size}, {"etag", p.etag}, {"modified", p.modified}};
    if (!p.block_id.empty()) record["block"] = Base64Encode(p.block_id);
    SHOAL_RETURN_IF_ERROR(WriteJson(final_path + ".json", record));
    if (::rename(tmp_.c_str(), final_path.c_str()) != 0) {
      return Status::IOError("cannot rename " + tmp_ + ": " + std::strerror(errno));
    }
    done_ = true;
    return p;
  }

 private:
  std::string dir_, file_, tmp_;
  StagedPart part_;
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
  if (u->blocks || u->bucket != bucket || u->key != key) return missing;
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
    if (u.ok() && !u->blocks && u->bucket == bucket) out.push_back(*u);
  }
  std::sort(out.begin(), out.end(), [](const StagedUpload& a, const StagedUpload& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Result<std::unique_ptr<DoorUploads::PartWriter>> DoorUploads::WritePart(const StagedUpload& upload, uint32_t number) {
  StagedPart part;
  part.number = number;
  auto w = std::make_unique<FilePartWriter>(DirOf(upload.id), PartFile(number), part);
  if (!w->opened()) {
    return Status::NotFound("The specified multipart upload does not exist (" + upload.id + "): it was completed or aborted");
  }
  return std::unique_ptr<PartWriter>(std::move(w));
}

Result<std::vector<StagedPart>> DoorUploads::Parts(const StagedUpload& upload) const { return Staged(upload, false); }

Result<std::vector<StagedPart>> DoorUploads::Staged(const StagedUpload& upload, bool blocks) const {
  std::vector<StagedPart> out;
  std::error_code ec;
  const std::string kind = blocks ? "block-" : "part-";
  for (const auto& e : fs::directory_iterator(DirOf(upload.id), ec)) {
    std::string name = e.path().filename();
    if (!StartsWith(name, kind) || !EndsWith(name, ".json")) continue;
    const std::string file = name.substr(0, name.size() - 5);
    if (!fs::exists(DirOf(upload.id) + "/" + file)) continue;
    StagedPart p;
    if (!blocks) {
      auto n = ParseU64(file.substr(kind.size()));
      if (!n.ok() || *n == 0 || *n > 10000) continue;
      p.number = static_cast<uint32_t>(*n);
    }
    auto j = ReadJson(e.path().string());
    if (!j.ok()) continue;
    try {
      p.size = JsonUnsigned<uint64_t>(j->value("size", nlohmann::json()), "size");
      p.etag = j->value("etag", "");
      p.modified = static_cast<std::time_t>(JsonInt64(j->value("modified", nlohmann::json()), "modified"));
      if (blocks) {
        auto id = Base64Decode(j->value("block", ""));
        if (!id.ok() || id->empty() || BlockFile(*id) != file) throw std::runtime_error("its block id is not its file's");
        p.block_id = *id;
      }
    } catch (const std::exception& ex) {
      return Status::Corruption("part record " + e.path().string() + " is damaged (" + ex.what() + "): abort the upload");
    }
    out.push_back(std::move(p));
  }
  if (ec) return Status::NotFound("The specified multipart upload does not exist (" + upload.id + ")");
  std::sort(out.begin(), out.end(), [](const StagedPart& a, const StagedPart& b) {
    return a.number != b.number ? a.number < b.number : a.block_id < b.block_id;
  });
  return out;
}

Status DoorUploads::ReadPart(const StagedUpload& upload, uint32_t number, size_t piece,
                             const std::function<Status(std::string_view)>& sink) const {
  return ReadFile(upload, PartFile(number), piece, sink);
}

Status DoorUploads::ReadFile(const StagedUpload& upload, const std::string& name, size_t piece,
                             const std::function<Status(std::string_view)>& sink) const {
  std::string path = DirOf(upload.id) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound(name + " of upload " + upload.id + " is gone");
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

Result<StagedUpload> DoorUploads::BlockArea(const std::string& bucket, const std::string& key, bool create) {
  auto md5 = door::Checksum::Make("md5");
  md5->Update(std::string(kBlockKind) + '\n' + bucket + '\n' + key);
  const std::string id = HexEncode(md5->Final());
  auto j = ReadJson(DirOf(id) + "/" + kInfoFile);
  if (j.ok()) {
    auto u = UploadOf(*j, id);
    if (!u.ok()) return u.status();
    if (u->blocks && u->bucket == bucket && u->key == key) return u;
    return Status::Corruption("block area " + id + " is not " + bucket + "/" + key + "'s: remove " + DirOf(id));
  }
  if (!create) return Status::NotFound(bucket + "/" + key + " has no blocks staged or committed here");
  StagedUpload u{id, bucket, key, std::time(nullptr), {}, true};
  std::error_code ec;
  fs::create_directories(DirOf(id), ec);
  if (ec) return Status::IOError("cannot create " + DirOf(id) + ": " + ec.message());
  SHOAL_RETURN_IF_ERROR(WriteJson(DirOf(id) + "/" + kInfoFile,
                                  {{"kind", kBlockKind}, {"bucket", bucket}, {"key", key}, {"created", u.created}}));
  return u;
}

Result<std::unique_ptr<DoorUploads::PartWriter>> DoorUploads::WriteBlock(const StagedUpload& area, std::string_view block_id) {
  if (block_id.empty() || block_id.size() > 64) {
    return Status::InvalidArgument("a block id is 1 to 64 bytes (before base64), not " + std::to_string(block_id.size()));
  }
  StagedPart part;
  part.block_id = std::string(block_id);
  auto w = std::make_unique<FilePartWriter>(DirOf(area.id), BlockFile(block_id), part);
  if (!w->opened()) return Status::NotFound("the blocks of " + area.bucket + "/" + area.key + " were removed meanwhile: stage them again");
  return std::unique_ptr<PartWriter>(std::move(w));
}

Result<std::vector<StagedPart>> DoorUploads::Blocks(const StagedUpload& area) const { return Staged(area, true); }

Status DoorUploads::ReadBlock(const StagedUpload& area, std::string_view block_id, size_t piece,
                              const std::function<Status(std::string_view)>& sink) const {
  return ReadFile(area, BlockFile(block_id), piece, sink);
}

Result<std::vector<StagedPart>> DoorUploads::Committed(const StagedUpload& area) const {
  std::vector<StagedPart> out;
  auto j = ReadJson(DirOf(area.id) + "/" + kCommittedFile);
  if (!j.ok()) return out;  // none committed through Put Block List
  try {
    for (const auto& b : j->at("blocks")) {
      StagedPart p;
      auto id = Base64Decode(b.at("id").get<std::string>());
      if (!id.ok()) throw std::runtime_error("a block id is not base64");
      p.block_id = *id;
      p.size = JsonUnsigned<uint64_t>(b.at("size"), "size");
      out.push_back(std::move(p));
    }
  } catch (const std::exception& e) {
    return Status::Corruption(DirOf(area.id) + "/" + kCommittedFile + " is damaged (" + e.what() +
                              "): delete the blob or upload it again with Put Blob");
  }
  return out;
}

Status DoorUploads::SetCommitted(const StagedUpload& area, const std::vector<StagedPart>& committed) {
  nlohmann::json blocks = nlohmann::json::array();
  for (const auto& p : committed) blocks.push_back({{"id", Base64Encode(p.block_id)}, {"size", p.size}});
  SHOAL_RETURN_IF_ERROR(WriteJson(DirOf(area.id) + "/" + kCommittedFile, {{"blocks", blocks}}));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(DirOf(area.id), ec)) {
    if (StartsWith(e.path().filename().string(), "block-")) fs::remove(e.path(), ec);
  }
  return Status::Ok();
}

}  // namespace shoal::node
