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
#include <optional>
#include <sstream>
#include <xxhash.h>

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

namespace {

// A log starts with this; then entries: payload length (4 bytes), XXH3-64 of the payload (8),
// the payload: an op ('P': a record's JSON, 'R': an id removed) and its body.
constexpr char kLogMagic[8] = {'S', 'H', 'O', 'A', 'L', 'J', 'L', '1'};
constexpr size_t kFrameHead = 12;
constexpr uint32_t kMaxEntry = 16u << 20;
constexpr uint64_t kMinRewriteBytes = 1u << 20;
constexpr char kLogPrefix[] = "log-";

std::string Frame(char op, const std::string& body) {
  std::string payload;
  payload.reserve(1 + body.size());
  payload += op;
  payload += body;
  const uint32_t len = static_cast<uint32_t>(payload.size());
  const uint64_t hash = XXH3_64bits(payload.data(), payload.size());
  std::string out(kFrameHead, '\0');
  std::memcpy(out.data(), &len, 4);
  std::memcpy(out.data() + 4, &hash, 8);
  return out + payload;
}

// The n of a log's file name, or 0 for a name that is not a log's.
uint64_t LogIndex(const std::string& name) {
  if (name.rfind(kLogPrefix, 0) != 0 || name.size() == sizeof(kLogPrefix) - 1 || name.size() > 24) return 0;
  uint64_t n = 0;
  for (size_t i = sizeof(kLogPrefix) - 1; i < name.size(); i++) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return 0;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return n;
}

}  // namespace

struct Journal::Batch {
  struct Entry {
    char op;
    std::string body;
    std::optional<UploadRecord> record;  // for 'P'
  };
  std::vector<Entry> entries;
  bool done = false;
  Status status;
};

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, bool sync) {
  // Made durable in its parent before any record is written in it.
  if (int err = CreateDirectories(dir, sync); err != 0) return DataDirError("creating journal directory " + dir, err);
  std::error_code ec;
  std::unique_ptr<Journal> j(new Journal(dir, sync));
  j->batch_ = std::make_shared<Batch>();
  std::vector<std::string> legacy;  // record files of the older layout, folded into the log
  std::vector<uint64_t> logs;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos) {  // a replacement a crash interrupted
      fs::remove(e.path(), ec);
      continue;
    }
    if (uint64_t n = LogIndex(name); n != 0) {
      logs.push_back(n);
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
    legacy.push_back(e.path().string());
    j->ApplyLocked('P', r->Encode(), &*r);
  }
  if (ec) return DataDirError("reading journal directory " + dir, ec.value());
  std::sort(logs.begin(), logs.end());
  // Only the newest log counts: an older one is left by a crash before its removal, and every
  // record it holds was written into the newer one first.
  uint64_t valid_end = 0;
  std::string last;
  // The newest log had bytes past its last valid entry: once the new log is in place it is
  // kept as *.bad for a look, not removed (a torn tail is what a power cut leaves of entries
  // never synced, but bytes damaged on the disk look the same).
  bool keep_aside = false;
  if (!logs.empty()) {
    j->log_index_ = logs.back();
    last = dir + "/" + kLogPrefix + std::to_string(logs.back());
    std::ifstream in(last, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.eof() && in.fail()) return DataDirError("reading journal " + last, EIO);
    size_t at = 0;
    if (text.size() >= sizeof(kLogMagic) && std::memcmp(text.data(), kLogMagic, sizeof(kLogMagic)) == 0) {
      at = sizeof(kLogMagic);
      while (text.size() - at >= kFrameHead) {
        uint32_t len = 0;
        uint64_t hash = 0;
        std::memcpy(&len, text.data() + at, 4);
        std::memcpy(&hash, text.data() + at + 4, 8);
        if (len == 0 || len > kMaxEntry || text.size() - at - kFrameHead < len) break;
        const char* payload = text.data() + at + kFrameHead;
        if (XXH3_64bits(payload, len) != hash) break;
        const char op = payload[0];
        std::string body(payload + 1, len - 1);
        if (op == 'P') {
          auto r = UploadRecord::Decode(body);
          if (r.ok()) {
            j->ApplyLocked('P', body, &*r);
          } else {
            j->damaged_.push_back(last + " at byte " + std::to_string(at) + ": " + r.status().message());
          }
        } else if (op == 'R') {
          j->ApplyLocked('R', body, nullptr);
        } else {
          j->damaged_.push_back(last + " at byte " + std::to_string(at) + ": an entry of unknown kind");
        }
        at += kFrameHead + len;
      }
    }
    valid_end = at;
    if (at == 0 && !text.empty()) {
      // Not a log: its header (synced before it was renamed into place) is gone.
      j->damaged_.push_back(last + ": not a journal log (its header is damaged); kept aside as " + last + ".bad");
    } else {
      j->torn_tail_bytes_ = text.size() - at;
    }
    keep_aside = text.size() > at;
  }
  // The live records into a new log; the older logs and record files go once it is in place.
  std::lock_guard<std::mutex> lock(j->mu_);
  Status rewritten = j->RewriteLocked({});
  if (!rewritten.ok()) {
    // No room for a new log: go on appending to the newest, cut where its valid entries end.
    if (!legacy.empty() || last.empty() || valid_end < sizeof(kLogMagic)) return rewritten;
    int fd = ::open(last.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return rewritten;
    if (::ftruncate(fd, static_cast<off_t>(valid_end)) != 0 || (sync && ::fdatasync(fd) != 0)) {
      ::close(fd);
      return rewritten;
    }
    j->fd_ = fd;
    j->log_bytes_ = valid_end;
    logs.pop_back();
  }
  for (uint64_t n : logs) {
    if (n == j->log_index_) continue;
    const std::string path = dir + "/" + kLogPrefix + std::to_string(n);
    if (keep_aside && path == last) {
      fs::rename(path, path + ".bad", ec);
    } else {
      fs::remove(path, ec);
    }
  }
  for (const auto& path : legacy) fs::remove(path, ec);
  if (sync && (!logs.empty() || !legacy.empty())) SyncDirectory(dir);
  return j;
}

void Journal::ApplyLocked(char op, const std::string& body, const UploadRecord* record) {
  const std::string& id = op == 'P' ? record->id : body;
  auto it = records_.find(id);
  if (it != records_.end()) {
    live_bytes_ -= kFrameHead + 1 + it->second.text.size();
    if (op == 'R') {
      records_.erase(it);
      return;
    }
  }
  if (op != 'P') return;
  Live& live = records_[id];
  live.record = *record;
  live.text = body;
  live_bytes_ += kFrameHead + 1 + body.size();
}

Status Journal::RewriteLocked(const std::vector<std::pair<char, std::string>>& pending) {
  const uint64_t n = log_index_ + 1;
  const std::string path = dir_ + "/" + kLogPrefix + std::to_string(n);
  const std::string tmp = path + ".tmp";
  std::string text(kLogMagic, sizeof(kLogMagic));
  {
    std::lock_guard<std::mutex> lock(records_mu_);
    text.reserve(text.size() + live_bytes_);
    for (const auto& [id, live] : records_) text += Frame('P', live.text);
  }
  for (const auto& [op, body] : pending) text += Frame(op, body);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return DataDirError("creating journal " + tmp, errno);
  int err = WriteAt(fd, text, 0);
  if (err == 0 && sync_ && ::fdatasync(fd) != 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return DataDirError("writing journal " + tmp, err);
  }
  if (sync_) {
    if (int derr = SyncDirectory(dir_); derr != 0) {
      // In place but maybe not durable in the directory: the older log stays the live one, so
      // this one must not be found by a restart (the next sync rewrites again).
      ::close(fd);
      ::unlink(path.c_str());
      return DataDirError("syncing journal directory " + dir_, derr);
    }
  }
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink((dir_ + "/" + kLogPrefix + std::to_string(log_index_)).c_str());
  }
  fd_ = fd;
  log_index_ = n;
  log_bytes_ = text.size();
  rewrite_ = false;
  return Status::Ok();
}

Status Journal::Append(char op, const std::string& body, const UploadRecord* record) {
  const std::string entry = Frame(op, body);
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<Batch> mine = batch_;
  if (!rewrite_) {
    if (WriteAt(fd_, entry, log_bytes_) == 0) {  // at the end: only here, under mu_, does it grow
      log_bytes_ += entry.size();
    } else {
      rewrite_ = true;  // a partial entry may end the log: nothing more goes after it
    }
  }
  mine->entries.push_back({op, body, record ? std::optional<UploadRecord>(*record) : std::nullopt});
  while (!mine->done) {
    if (syncing_) {
      synced_cv_.wait(lock);
      continue;
    }
    // Sync every entry appended so far, for every caller waiting on one.
    syncing_ = true;
    std::shared_ptr<Batch> b = std::move(batch_);
    batch_ = std::make_shared<Batch>();
    Status st;
    if (rewrite_) {  // the log's tail is in doubt, or it outgrew its records: write it anew
      std::vector<std::pair<char, std::string>> pending;
      for (const auto& e : b->entries) pending.emplace_back(e.op, e.body);
      st = RewriteLocked(pending);
    } else if (sync_) {
      const int fd = fd_;  // only the caller syncing replaces it
      lock.unlock();
      int rc = ::fdatasync(fd);
      int err = errno;
      lock.lock();
      if (rc != 0) {
        st = DataDirError("syncing journal " + dir_, err);
        rewrite_ = true;  // what reached the disk is unknown: the next sync writes the log anew
      }
    }
    if (st.ok()) {
      std::lock_guard<std::mutex> records(records_mu_);
      for (const auto& e : b->entries) ApplyLocked(e.op, e.body, e.record ? &*e.record : nullptr);
      if (log_bytes_ > std::max(kMinRewriteBytes, 4 * live_bytes_)) rewrite_ = true;
    }
    b->status = st;
    b->done = true;
    syncing_ = false;
    synced_cv_.notify_all();
  }
  return mine->status;
}

Status Journal::Put(const UploadRecord& record) {
  if (!ValidId(record.id)) return Status::InvalidArgument("journal record id '" + record.id + "' is not valid");
  return Append('P', record.Encode(), &record);
}

Status Journal::Remove(const std::string& id) {
  return Append('R', id, nullptr);
}

size_t Journal::size() {
  std::lock_guard<std::mutex> lock(records_mu_);
  return records_.size();
}

uint64_t Journal::log_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return log_bytes_;
}

Result<UploadRecord> Journal::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(records_mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return Status::NotFound("no journal record " + id);
  return it->second.record;
}

std::vector<UploadRecord> Journal::List() {
  std::lock_guard<std::mutex> lock(records_mu_);
  std::vector<UploadRecord> out;
  for (const auto& [id, live] : records_) out.push_back(live.record);
  std::sort(out.begin(), out.end(), [](const UploadRecord& a, const UploadRecord& b) {
    return a.created_unix_ms != b.created_unix_ms ? a.created_unix_ms < b.created_unix_ms : a.id < b.id;
  });
  return out;
}

}  // namespace shoal::engine
