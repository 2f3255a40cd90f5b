#include "engine/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file.h"
#include "common/json_numbers.h"

namespace shoal::engine {
namespace {

namespace fs = std::filesystem;

bool ValidId(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

}  // namespace

std::string UploadRecord::Stamp() const {
  uint64_t us = begun_unix_us != 0 ? begun_unix_us : static_cast<uint64_t>(std::max<int64_t>(created_unix_ms, 0)) * 1000;
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(us));
  return std::string(digits) + "-" + id;
}

std::string UploadRecord::Encode() const {
  nlohmann::json j = {{"id", id},
                      {"url", url},
                      {"size", size},
                      {"chunk_size", chunk_size},
                      {"state", state == State::kStaged ? "staged" : "durable"},
                      {"store_upload_id", store_upload_id},
                      {"etag", etag},
                      {"created_unix_ms", created_unix_ms}};
  if (!replicas.empty()) j["replicas"] = replicas;
  if (!origin.empty()) j["origin"] = origin;
  if (!origin_incarnation.empty()) j["origin_incarnation"] = origin_incarnation;
  if (!meta.empty()) j["meta"] = meta;
  if (begun_unix_us != 0) j["begun_unix_us"] = begun_unix_us;
  return j.dump();
}

Result<UploadRecord> UploadRecord::Decode(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("a journal record is not JSON");
  try {
    UploadRecord r;
    r.id = j.at("id").get<std::string>();
    r.url = j.at("url").get<std::string>();
    r.size = JsonUnsigned<uint64_t>(j.at("size"), "size");
    r.chunk_size = JsonUnsigned<uint64_t>(j.at("chunk_size"), "chunk_size");
    std::string state = j.at("state").get<std::string>();
    if (state == "staged") r.state = State::kStaged;
    else if (state == "durable") r.state = State::kDurable;
    else return Status::Corruption("journal record " + r.id + " has unknown state '" + state + "'");
    r.store_upload_id = j.value("store_upload_id", "");
    r.etag = j.value("etag", "");
    r.replicas = j.value("replicas", std::vector<std::string>{});
    r.origin = j.value("origin", "");
    r.origin_incarnation = j.value("origin_incarnation", "");
    if (j.contains("meta")) r.meta = j["meta"].get<ObjectMeta>();
    r.created_unix_ms = j.contains("created_unix_ms") ? JsonInt64(j["created_unix_ms"], "created_unix_ms") : 0;
    if (j.contains("begun_unix_us")) r.begun_unix_us = JsonUnsigned<uint64_t>(j["begun_unix_us"], "begun_unix_us");
    if (!ValidId(r.id)) return Status::Corruption("journal record has a bad id");
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("journal record misses a field: ") + e.what());
  }
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, bool sync) {
  // Made durable in its parent before any record is written in it.
  if (int err = CreateDirectories(dir, sync); err != 0) return DataDirError("creating journal directory " + dir, err);
  std::error_code ec;
  std::unique_ptr<Journal> j(new Journal(dir, sync));
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos) {  // a replacement a crash interrupted
      fs::remove(e.path(), ec);
      continue;
    }
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = UploadRecord::Decode(ss.str());
    if (!r.ok() || e.path().stem().string() != r->id) {
      j->damaged_.push_back(e.path().string() + ": " +
                            (r.ok() ? "file name and id differ" : r.status().message()));
      fs::rename(e.path(), e.path().string() + ".bad", ec);
      continue;
    }
    j->records_[r->id] = std::move(r).value();
  }
  if (ec) return DataDirError("reading journal directory " + dir, ec.value());
  return j;
}

Status Journal::Put(const UploadRecord& record) {
  if (!ValidId(record.id)) return Status::InvalidArgument("journal record id '" + record.id + "' is not valid");
  std::string path = PathOf(record.id);
  std::string tmp = path + ".tmp";
  std::string text = record.Encode() + "\n";
  std::lock_guard<std::mutex> write(write_mu_);  // one writer at a time: the .tmp name is per record
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return DataDirError("writing journal record " + tmp, errno);
  if (int err = WriteAt(fd, text, 0); err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return DataDirError("writing journal record " + tmp, err);
  }
  if (sync_ && ::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return DataDirError("syncing journal record " + tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return DataDirError("renaming journal record " + tmp, errno);
  if (sync_) {
    if (int err = SyncDirectory(dir_); err != 0) return DataDirError("syncing " + dir_, err);
  }
  std::lock_guard<std::mutex> lock(mu_);
  records_[record.id] = record;
  return Status::Ok();
}

Status Journal::Remove(const std::string& id) {
  {
    std::lock_guard<std::mutex> write(write_mu_);
    if (::unlink(PathOf(id).c_str()) != 0 && errno != ENOENT) return DataDirError("removing journal record " + id, errno);
    std::lock_guard<std::mutex> lock(mu_);
    records_.erase(id);
  }
  // Best effort (the record is gone either way), and outside write_mu_: a Put (a write
  // waiting for its acknowledgement) does not wait behind this sync.
  if (sync_) SyncDirectory(dir_);
  return Status::Ok();
}

size_t Journal::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.size();
}

Result<UploadRecord> Journal::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return Status::NotFound("no journal record " + id);
  return it->second;
}

std::vector<UploadRecord> Journal::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<UploadRecord> out;
  for (const auto& [id, r] : records_) out.push_back(r);
  std::sort(out.begin(), out.end(), [](const UploadRecord& a, const UploadRecord& b) {
    return a.created_unix_ms != b.created_unix_ms ? a.created_unix_ms < b.created_unix_ms : a.id < b.id;
  });
  return out;
}

}  // namespace shoal::engine
