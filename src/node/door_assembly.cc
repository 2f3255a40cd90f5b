#include "node/door_assembly.h"

namespace shoal::node {
namespace {
constexpr size_t kPiece = 8 << 20;  // bytes of a staged piece read and appended at a time
}  // namespace

DoorAssemblies::DoorAssemblies(DoorUploads* uploads) : uploads_(uploads), joiner_([this] { Join(); }) {}

DoorAssemblies::~DoorAssemblies() { Close(); }

void DoorAssemblies::Staged(WriteBack* writes, uint64_t staged_cap, const std::string& url, const StagedUpload& upload,
                            const StagedPart& part, std::optional<uint64_t> position) {
  const std::string name = upload.blocks ? part.block_id : std::to_string(part.number);
  std::unique_ptr<Writer> discard;  // destroyed last, outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  auto& a = by_id_[upload.id];
  if (!a) {
    a = std::make_shared<Assembly>();
    a->writes = writes;
    a->staged_cap = staged_cap;
    a->url = url;
    a->upload = upload;
    a->next = upload.blocks ? 0 : 1;  // the first block is at offset 0; the first part is 1
  }
  a->touched = std::chrono::steady_clock::now();
  if (a->broken) return;
  if (!a->seen.insert(name).second) {
    // Staged again: the early write may hold the bytes it replaces.
    a->broken = true;
    if (!a->appending) discard = std::move(a->writer);
    return;
  }
  if (!position) return;  // never joined early: nor is anything after it
  a->waiting[*position] = part;
  cv_.notify_all();
}

void DoorAssemblies::Join() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    std::shared_ptr<Assembly> a;
    for (const auto& [id, each] : by_id_) {
      if (!each->broken && each->waiting.count(each->next)) {
        a = each;
        break;
      }
    }
    if (!a) {
      std::vector<std::shared_ptr<Assembly>> idle;
      const auto now = std::chrono::steady_clock::now();
      for (auto it = by_id_.begin(); it != by_id_.end();) {
        if (now - it->second->touched >= kIdle) {
          idle.push_back(std::move(it->second));
          it = by_id_.erase(it);
        } else {
          ++it;
        }
      }
      lock.unlock();
      idle.clear();  // their writers: discarded
      lock.lock();
      if (!closed_) cv_.wait_for(lock, std::chrono::seconds(5));
      continue;
    }
    auto it = a->waiting.find(a->next);
    const StagedPart piece = it->second;
    a->waiting.erase(it);
    a->appending = true;
    lock.unlock();
    Status st;
    if (a->writes->staged_bytes() + piece.size > a->staged_cap) {
      st = Status::Unavailable("no room under --staged-cap to join a piece early");
    } else if (!a->writer) {
      auto begun = a->writes->BeginWrite(a->url, a->upload.meta, /*stream=*/false);  // nothing goes up before Complete
      st = begun.status();
      if (begun.ok()) a->writer = std::move(*begun);
    }
    if (st.ok()) {
      Writer* w = a->writer.get();
      auto append = [w](std::string_view d) { return w->Append(d.data(), d.size()); };
      st = a->upload.blocks ? uploads_->ReadBlock(a->upload, piece.block_id, kPiece, append)
                            : uploads_->ReadPart(a->upload, piece.number, kPiece, append);
    }
    lock.lock();
    a->appending = false;
    a->touched = std::chrono::steady_clock::now();
    if (st.ok()) {
      a->next += a->upload.blocks ? piece.size : 1;
      a->joined.push_back(piece);
    } else {
      a->broken = true;  // Complete writes from the staged pieces, and meets the error itself if it lasts
    }
    std::unique_ptr<Writer> discard;
    if (a->broken) discard = std::move(a->writer);
    cv_.notify_all();
    lock.unlock();
    discard.reset();
    a.reset();
    lock.lock();
  }
}

DoorAssemblies::Joined DoorAssemblies::Take(const std::string& id) {
  std::shared_ptr<Assembly> a;  // a broken one's writer is destroyed with it, outside the lock
  std::unique_lock<std::mutex> lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return {};
  a = it->second;
  // Once the joiner has joined every piece it can (the Complete would append them itself).
  cv_.wait(lock, [&] { return closed_ || (!a->appending && (a->broken || !a->waiting.count(a->next))); });
  by_id_.erase(id);  // the joiner picks it no more
  if (a->broken || closed_) return {};
  return Joined{std::move(a->writer), std::move(a->joined)};
}

Result<DoorAssemblies::Resumed> DoorAssemblies::Resume(
    WriteBack* writes, const std::string& id, const std::string& url, const ObjectMeta& meta,
    const std::function<bool(const std::vector<StagedPart>&)>& usable) {
  Joined joined = Take(id);
  if (joined.writer && usable(joined.parts)) {
    Resumed out{std::move(joined.writer), joined.parts.size(), 0};
    for (const auto& p : joined.parts) out.bytes += p.size;
    return out;
  }
  joined.writer.reset();  // it holds other bytes than the list names: discarded
  SHOAL_ASSIGN_OR_RETURN(std::unique_ptr<Writer> fresh, writes->BeginWrite(url, meta));
  return Resumed{std::move(fresh), 0, 0};
}

void DoorAssemblies::Drop(const std::string& id) {
  Joined gone = Take(id);  // the writer is destroyed here, outside the lock
}

void DoorAssemblies::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    cv_.notify_all();
  }
  if (joiner_.joinable()) joiner_.join();  // after the append in progress
  std::map<std::string, std::shared_ptr<Assembly>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(by_id_);
  }
  gone.clear();  // their writers: discarded
}

}  // namespace shoal::node
