#include "node/uploader.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "common/log.h"
#include "common/strings.h"

namespace shoal::node {

using Clock = std::chrono::steady_clock;

// One account's window and counts (AccountUploads); guarded by mu_.
struct Uploader::Lane {
  AccountUploads stats;
  Clock::time_point last_cut{};
  std::deque<std::pair<Clock::time_point, uint64_t>> recent;  // parts done in the last 10 s

  static constexpr std::chrono::seconds kRateSpan{10};
  void Prune(Clock::time_point now) {
    while (!recent.empty() && now - recent.front().first > kRateSpan) recent.pop_front();
  }
};

struct Uploader::Job {
  engine::UploadRecord record;
  Lane* lane = nullptr;                      // its account's
  uint64_t parts = 0;                        // chunks; 0 or 1: one Put of the whole object
  std::unique_ptr<MultipartUpload> upload;   // multipart, once begun
  bool beginning = false;                    // a worker is starting the upload
  std::deque<uint64_t> todo;                 // parts not yet sent (or to send again)
  uint64_t in_flight = 0;
  uint64_t done = 0;
  bool committing = false;                   // a worker runs the Put or the commit
  bool sealed = true;                        // acknowledged: size and parts final
  bool look_first = false;                   // given whole (Add): look at the store before beginning
  bool settled = false;                      // that look found it, or a newer write, in the store
  bool cancelled = false;                    // the write failed: drop once idle
  bool lost = false;                         // the store no longer has its upload (kNotFound)
  int failures = 0;                          // consecutive
  std::string last_error;
  Clock::time_point not_before{};            // backed off until then
  Clock::time_point last_failure{};
  bool warned_overdue = false;
  std::vector<bool> reported;                // parts already reported through hooks.uploaded
  uint64_t reported_bytes = 0;

  bool whole() const { return sealed && parts <= 1; }  // one Put, no multipart upload
  bool Overdue(int64_t now_ms, std::chrono::milliseconds deadline) const {
    return now_ms - record.created_unix_ms > deadline.count();
  }
  void Restart() {
    todo.clear();
    for (uint64_t i = 0; i < parts; i++) todo.push_back(i);
    done = 0;
  }
};

Uploader::Uploader(UploaderOptions options, UploadHooks hooks, NodeMetrics* metrics)
    : options_(options), hooks_(std::move(hooks)), metrics_(metrics), max_concurrency_(std::max(1, options.max_concurrency)),
      pool_(std::make_unique<WorkerPool>(max_concurrency_, "shoald-upload")) {
  scheduler_ = std::thread([this] { Schedule(); });
  pthread_setname_np(scheduler_.native_handle(), "shoald-upsched");
}

Uploader::~Uploader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  scheduler_.join();
  pool_.reset();  // the tasks handed out finish; nothing new starts
  // What the journal names stays open in the store, for the restarted node to resume.
  for (const auto& job : jobs_) {
    if (job->upload && job->sealed && !job->record.store_upload_id.empty()) job->upload->Keep();
  }
}

namespace {
uint64_t PartCount(const engine::UploadRecord& r) {
  return r.chunk_size == 0 ? 0 : (r.size + r.chunk_size - 1) / r.chunk_size;
}
}  // namespace

Uploader::Lane* Uploader::LaneLocked(const std::string& url) {
  auto parsed = ObjectUrl::Parse(url);
  std::string account = parsed.ok() ? parsed->AccountLabel() : "?";  // fails in Run, with the reason
  auto& lane = lanes_[account];
  if (!lane) {
    lane = std::make_unique<Lane>();
    lane->stats.account = account;
    lane->stats.window = lane->stats.min_window = max_concurrency_;
  }
  return lane.get();
}

void Uploader::Add(const engine::UploadRecord& record) {
  auto job = std::make_shared<Job>();
  job->record = record;
  job->parts = PartCount(record);
  job->look_first = true;
  job->Restart();
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->lane = LaneLocked(record.url);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void Uploader::Open(const engine::UploadRecord& partial) {
  auto job = std::make_shared<Job>();
  job->record = partial;
  job->sealed = false;
  std::lock_guard<std::mutex> lock(mu_);
  job->lane = LaneLocked(partial.url);
  jobs_.push_back(std::move(job));
}

std::shared_ptr<Uploader::Job> Uploader::FindLocked(const std::string& id) {
  for (const auto& job : jobs_) {
    if (job->record.id == id) return job;
  }
  return nullptr;
}

void Uploader::AddPart(const std::string& id, uint64_t index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto job = FindLocked(id);
    if (!job || job->sealed) return;
    job->todo.push_back(index);
    job->parts = std::max(job->parts, index + 1);
  }
  cv_.notify_all();
}

void Uploader::Seal(const engine::UploadRecord& record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto job = FindLocked(record.id);
    if (!job) return;
    uint64_t added = job->parts;  // parts [0, added) were handed over by AddPart
    std::string upload_id = job->record.store_upload_id;  // begun meanwhile: the journal may not say yet
    job->record = record;
    if (job->record.store_upload_id.empty()) job->record.store_upload_id = upload_id;
    job->parts = PartCount(record);
    for (uint64_t i = added; i < job->parts; i++) job->todo.push_back(i);
    job->sealed = true;
  }
  cv_.notify_all();
}

uint64_t Uploader::Cancel(const std::string& id) {
  std::unique_ptr<MultipartUpload> abandoned;
  uint64_t reported = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto job = FindLocked(id);
    if (!job) return 0;
    job->cancelled = true;
    if (job->sealed) changes_++;  // out of Pending
    job->todo.clear();
    reported = job->reported_bytes;
    abandoned = ReapLocked(*job);
  }
  return reported;  // `abandoned` is destroyed here, unlocked: aborts the upload (best effort)
}

bool Uploader::Gone(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(id) == nullptr;
}

std::unique_ptr<MultipartUpload> Uploader::DropLostLocked(Job& job) {
  if (!job.lost || job.in_flight > 0 || job.committing) return nullptr;
  Logf(LogLevel::kWarn, "the store no longer has the upload of %s begun earlier: starting it again\n",
       job.record.url.c_str());
  job.lost = false;
  job.record.store_upload_id.clear();
  job.Restart();
  return std::move(job.upload);
}

std::unique_ptr<MultipartUpload> Uploader::ReapLocked(Job& job) {
  if (!job.cancelled || job.in_flight > 0) return nullptr;
  auto upload = std::move(job.upload);
  jobs_.erase(std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& j) { return j.get() == &job; }));
  return upload;
}

void Uploader::SetMaxConcurrency(int parts) {
  parts = std::max(1, parts);
  pool_->Grow(static_cast<size_t>(parts));
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int was = max_concurrency_;
    max_concurrency_ = parts;
    // A window at the old limit (no throttling holding it down) moves to the new one at once;
    // one cut by throttling keeps growing back as before, now up to the new limit.
    for (auto& [name, lane] : lanes_) {
      AccountUploads& account = lane->stats;
      account.window = account.window >= was ? parts : std::min<double>(account.window, parts);
      account.min_window = std::min(account.min_window, account.window);
    }
  }
  cv_.notify_all();
}

int Uploader::max_concurrency() {
  std::lock_guard<std::mutex> lock(mu_);
  return max_concurrency_;
}

double Uploader::window() {
  std::lock_guard<std::mutex> lock(mu_);
  double smallest = max_concurrency_;
  for (const auto& [name, lane] : lanes_) smallest = std::min(smallest, lane->stats.window);
  return smallest;
}

std::vector<AccountUploads> Uploader::Accounts() {
  std::vector<AccountUploads> out;
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, lane] : lanes_) {
    lane->Prune(now);
    uint64_t recent = 0;
    for (const auto& [at, bytes] : lane->recent) recent += bytes;
    out.push_back(lane->stats);
    out.back().rate = static_cast<double>(recent) / Lane::kRateSpan.count();
  }
  return out;
}

std::vector<UploadProgress> Uploader::Pending(const std::string& prefix, uint64_t* changes) {
  std::vector<UploadProgress> out;
  int64_t now_ms = UnixMillis();
  std::lock_guard<std::mutex> lock(mu_);
  if (changes) *changes = changes_;
  for (const auto& job : jobs_) {
    if (!job->sealed || job->cancelled || !StartsWith(job->record.url, prefix)) continue;
    UploadProgress p;
    p.record = job->record;
    p.parts = std::max<uint64_t>(job->parts, 1);
    p.parts_done = job->whole() ? 0 : job->done;
    p.failures = job->failures;
    p.last_error = job->last_error;
    p.overdue = job->Overdue(now_ms, options_.deadline);
    out.push_back(std::move(p));
  }
  return out;
}

bool Uploader::NextTaskLocked(Task* task, Clock::time_point* wake) {
  if (in_flight_ >= max_concurrency_) return false;
  auto now = Clock::now();
  // Objects with an older write still here (queued, uploading, or cancelled with a request in
  // flight): a newer write of one may send its parts, but commits only once the older is gone,
  // so the store ends with the newest (a small overwrite would otherwise land before a large
  // original and be overwritten by it).
  std::unordered_set<std::string> older;
  for (const auto& job : jobs_) {
    const bool after_older = !older.insert(job->record.url).second;
    if (job->cancelled) continue;
    if (job->lane->stats.in_flight >= static_cast<int>(job->lane->stats.window)) continue;
    if (job->not_before > now) {
      *wake = std::min(*wake, job->not_before);
      continue;
    }
    if (job->whole()) {
      if (job->committing || after_older) continue;
      job->committing = true;
      *task = Task{Task::Kind::kPutWhole, job};
      return true;
    }
    if (!job->upload) {
      if (job->beginning) continue;
      job->beginning = true;
      *task = Task{Task::Kind::kBegin, job};
      return true;
    }
    if (!job->todo.empty()) {
      *task = Task{Task::Kind::kPart, job, job->todo.front()};
      job->todo.pop_front();
      return true;
    }
    if (job->sealed && job->in_flight == 0 && job->done == job->parts && !job->committing && !after_older) {
      job->committing = true;
      *task = Task{Task::Kind::kComplete, job};
      return true;
    }
  }
  return false;
}

Result<std::unique_ptr<MultipartUpload>> Uploader::Resume(const engine::UploadRecord& r, uint64_t parts,
                                                          ObjectStore& store, const std::string& key,
                                                          const std::string& id) {
  auto resumed = store.ResumeUpload(key, id, StoredMeta(r));
  if (!resumed.ok()) return std::unique_ptr<MultipartUpload>();  // a store that cannot resume: begin anew
  std::unique_ptr<MultipartUpload> upload = std::move(resumed).value();
  auto stored = upload->FindStoredParts();
  if (stored.status().IsNotFound()) {
    Logf(LogLevel::kWarn, "the store no longer has the upload of %s begun earlier: starting it again\n",
         r.url.c_str());
    return std::unique_ptr<MultipartUpload>();  // destroyed: its abort finds nothing to discard
  }
  if (!stored.ok()) {
    upload->Keep();  // asked again at the next attempt: the parts stay in the store
    return Status(stored.status().code(), "resuming the upload of " + r.url + ": " + stored.status().message());
  }
  Logf(LogLevel::kInfo, "resuming the upload of %s: the store holds %u of its %llu parts; those that match are not sent again\n",
       r.url.c_str(), *stored, static_cast<unsigned long long>(parts));
  return upload;
}

ObjectMeta StoredMeta(const engine::UploadRecord& r) {
  ObjectMeta meta = r.meta;
  meta.user[std::string(kWriteStampMeta)] = r.Stamp();
  return meta;
}

Result<Uploader::Look> Uploader::LookBeforeCommit(ObjectStore& store, const std::string& key,
                                                  const engine::UploadRecord& r) {
  Look look;
  auto held = store.Head(key);
  if (held.status().IsNotFound()) {
    look.only_if.if_absent = true;
    return look;
  }
  if (!held.ok()) return Status(held.status().code(), "asking the store what it holds of " + r.url + " before committing: " +
                                                          held.status().message());
  if (held->write_stamp.empty() || held->write_stamp < r.Stamp()) {
    look.only_if.if_match = held->etag;
  } else {
    look.settled_by = std::move(held).value();
  }
  return look;
}

Status Uploader::Settle(const engine::UploadRecord& r, const ObjectInfo& held) {
  if (held.write_stamp == r.Stamp()) {
    metrics_->uploads_found_stored++;
    Logf(LogLevel::kInfo, "%s is in the store already (write %s): not uploaded again\n", r.url.c_str(), r.id.c_str());
    return hooks_.durable(r, held);
  }
  metrics_->uploads_superseded++;
  Logf(LogLevel::kInfo, "%s: the store holds a newer write of it (stamp %s, this one %s): this write is not uploaded\n",
       r.url.c_str(), held.write_stamp.c_str(), r.Stamp().c_str());
  return hooks_.superseded(r, held);
}

Status Uploader::Run(const Task& task, uint64_t* throttles, uint64_t* bytes, bool* reused) {
  // A copy: Seal and a begun upload assign the job's record under mu_ while its parts run
  // (ThreadSanitizer found the hooks reading its url unlocked as Seal assigned it).
  engine::UploadRecord r;
  uint64_t parts = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r = task.job->record;
    parts = task.job->parts;
  }
  SHOAL_ASSIGN_OR_RETURN(ObjectUrl url, ObjectUrl::Parse(r.url));
  SHOAL_ASSIGN_OR_RETURN(auto store, hooks_.store(r.url));
  // This task's own requests only: other tasks on other threads share the store's counter.
  const uint64_t throttles_before = StoreStats::ThreadThrottles();
  auto note_throttles = [&] { *throttles = StoreStats::ThreadThrottles() - throttles_before; };
  switch (task.kind) {
    case Task::Kind::kBegin: {
      if (r.chunk_size < store->Limits().min_part_size) {
        return Status::InvalidArgument(store->Describe() + " needs parts of at least " +
                                       FormatBytes(store->Limits().min_part_size) +
                                       ": restart shoald with a larger --chunk-size");
      }
      std::unique_ptr<MultipartUpload> upload;
      const std::string& resume = r.store_upload_id;
      if (task.job->look_first) {
        // A write replayed or taken over was often uploaded already, or replaced by a newer
        // one meanwhile: one Head now rather than all of its parts before the look at commit
        // (which is still made: a newer write may land while this one uploads).
        auto look = LookBeforeCommit(*store, url.key, r);
        note_throttles();
        if (!look.ok()) return look.status();
        if (look->settled_by) {
          if (!resume.empty()) {  // begun before a restart: its parts are never committed
            auto begun = store->ResumeUpload(url.key, resume, StoredMeta(r));
            if (begun.ok()) (*begun)->Abort();
          }
          *bytes = r.size;  // the staged bytes it releases, none of them sent
          Status st = Settle(r, *look->settled_by);
          std::lock_guard<std::mutex> lock(mu_);
          task.job->settled = st.ok();
          return st;
        }
      }
      if (!resume.empty()) {
        auto resumed = Resume(r, parts, *store, url.key, resume);
        note_throttles();
        if (!resumed.ok()) return resumed.status();
        upload = std::move(resumed).value();
      }
      if (!upload) {
        auto begun = store->BeginUpload(url.key, StoredMeta(r));
        note_throttles();
        if (!begun.ok()) return begun.status();
        upload = std::move(begun).value();
        if (!upload->id().empty() && hooks_.begun) hooks_.begun(r, upload->id());
      }
      std::lock_guard<std::mutex> lock(mu_);
      task.job->record.store_upload_id = upload->id();
      task.job->upload = std::move(upload);
      return Status::Ok();
    }
    case Task::Kind::kPart: {
      SHOAL_ASSIGN_OR_RETURN(std::string data, hooks_.chunk(r, task.part));
      *bytes = data.size();
      if (task.job->upload->ReusePart(static_cast<uint32_t>(task.part), data)) {
        *reused = true;
        metrics_->upload_parts_reused++;
        metrics_->upload_reused_bytes += data.size();
        return Status::Ok();
      }
      metrics_->store_put_requests++;
      auto started = std::chrono::steady_clock::now();
      Status st = task.job->upload->PutPart(static_cast<uint32_t>(task.part), task.part * r.chunk_size, data);
      note_throttles();
      if (st.IsNotFound()) {
        // NoSuchUpload: one resumed after a restart that the store expired or aborted meanwhile.
        std::lock_guard<std::mutex> lock(mu_);
        task.job->lost = true;
      }
      if (st.ok()) metrics_->op_upload_part.Observe(std::chrono::steady_clock::now() - started);
      if (st.ok()) metrics_->store_put_bytes += data.size();
      return st;
    }
    case Task::Kind::kPutWhole: {
      std::string data;
      if (parts == 1) {
        SHOAL_ASSIGN_OR_RETURN(data, hooks_.chunk(r, 0));
      }
      auto put = [&](const WriteCondition& only_if) {
        metrics_->store_put_requests++;
        auto started = std::chrono::steady_clock::now();
        auto info = store->PutObject(url.key, data, StoredMeta(r), only_if);
        note_throttles();
        if (info.ok()) metrics_->op_upload_part.Observe(std::chrono::steady_clock::now() - started);
        return info;
      };
      // A new object (a checkpoint's shard, a dataset's file) goes up at once, on condition that
      // the store holds none (If-None-Match: *): one request. Only when it holds one does the
      // look come first (its stamp decides whether this write replaces it), then the put. A
      // store that may ignore the condition is looked at first.
      const bool at_once = store->HonoursIfAbsent();
      Result<ObjectInfo> info = Status::PreconditionFailed("");
      if (at_once) info = put(WriteCondition{.if_absent = true});
      if (!info.ok() && info.status().code() == Code::kPreconditionFailed) {
        if (at_once) metrics_->uploads_over_existing++;
        auto look = LookBeforeCommit(*store, url.key, r);
        note_throttles();
        if (!look.ok()) return look.status();
        if (look->settled_by) {
          *reused = true;   // nothing sent
          *bytes = r.size;  // the staged bytes it releases
          return Settle(r, *look->settled_by);
        }
        info = put(look->only_if);
      }
      if (!info.ok()) return info.status();
      metrics_->store_put_bytes += data.size();
      *bytes = r.size;  // the staged bytes it releases (a rewritten commit marker's differ from data's)
      ObjectInfo stored = *info;
      stored.size = data.size();  // what went up (a commit marker's may differ from the record's)
      return hooks_.durable(r, stored);
    }
    case Task::Kind::kComplete: {
      auto look = LookBeforeCommit(*store, url.key, r);
      note_throttles();
      if (!look.ok()) return look.status();
      if (look->settled_by) {
        task.job->upload->Abort();  // its parts are never committed
        return Settle(r, *look->settled_by);
      }
      auto info = task.job->upload->Complete(static_cast<uint32_t>(parts), look->only_if);
      note_throttles();
      if (!info.ok()) return info.status();
      return hooks_.durable(r, *info);
    }
  }
  return Status::Ok();
}

std::unique_ptr<MultipartUpload> Uploader::FinishLocked(const Task& task, const Status& st, uint64_t throttles,
                                                        uint64_t bytes, bool reused, Clock::time_point started) {
  Job& job = *task.job;
  Lane& lane = *job.lane;
  AccountUploads& account = lane.stats;
  in_flight_--;
  account.in_flight--;
  job.in_flight--;
  const bool sent = (task.kind == Task::Kind::kPart || task.kind == Task::Kind::kPutWhole) && !reused;
  if (sent) account.put_requests++;
  if (task.kind == Task::Kind::kBegin) job.beginning = false;
  metrics_->store_throttles += throttles;
  account.throttles += throttles;
  if (job.cancelled) return ReapLocked(job);
  auto now = Clock::now();
  if (throttles > 0) {
    if (started > lane.last_cut) {  // once per round trip: parts started before the cut saw the old load
      account.window = std::max(1.0, account.window / 2);
      account.min_window = std::min(account.min_window, account.window);
      lane.last_cut = now;
      account.window_cuts++;
      metrics_->upload_window_cuts++;
    }
  } else if (st.ok() && task.kind == Task::Kind::kPart && sent) {
    account.window = std::min<double>(max_concurrency_, account.window + 1.0 / account.window);
  }
  if (st.ok() && sent) {
    account.put_bytes += bytes;
    lane.recent.emplace_back(now, bytes);
    lane.Prune(now);
  }
  if (st.ok() && (task.kind == Task::Kind::kPart || task.kind == Task::Kind::kPutWhole || job.settled)) {
    // The staged-bytes cap counts bytes not yet in the store: each part once per job, even
    // when a failed commit sends it again.
    if (job.reported.size() <= task.part) job.reported.resize(task.part + 1);
    if (!job.reported[task.part]) {
      job.reported[task.part] = true;
      job.reported_bytes += bytes;
      hooks_.uploaded(bytes);
    }
  }
  if (st.ok()) {
    job.failures = 0;
    job.last_error.clear();
    switch (task.kind) {
      case Task::Kind::kPart: job.done++; return DropLostLocked(job);
      case Task::Kind::kBegin:
        if (!job.settled) break;
        [[fallthrough]];  // settled by its look: done, nothing begun
      case Task::Kind::kPutWhole:
      case Task::Kind::kComplete:
        jobs_.erase(std::find(jobs_.begin(), jobs_.end(), task.job));
        changes_++;  // in the store, and out of Pending, at once for a reader of both
        metrics_->uploads_done++;
        account.uploads++;
        break;
    }
    return nullptr;
  }
  if ((task.kind == Task::Kind::kPutWhole || task.kind == Task::Kind::kComplete) &&
      st.code() == Code::kPreconditionFailed) {
    // Not yet: the object waits for others (hooks.chunk), or another node committed the object
    // since this one looked (the next look settles it): no failure of the store, and the
    // parts stay for the next commit.
    job.committing = false;
    job.last_error = st.message();
    job.not_before = now + kWaitingRetry;
    return nullptr;
  }
  std::unique_ptr<MultipartUpload> abandoned;
  switch (task.kind) {
    case Task::Kind::kBegin: break;
    case Task::Kind::kPart:
      job.todo.push_front(task.part);
      abandoned = DropLostLocked(job);
      break;
    case Task::Kind::kPutWhole: job.committing = false; break;
    case Task::Kind::kComplete:
      // The store refused the commit (a part it lost, an upload it expired): start the object
      // again under a fresh upload; the old one's parts are never named in a commit.
      job.committing = false;
      abandoned = std::move(job.upload);  // the caller aborts it (best effort), unlocked
      job.Restart();
      break;
  }
  job.last_error = st.ToString();
  metrics_->upload_failures++;
  account.failures++;
  // Parts in flight together fail together (the store went away): one back-off step for
  // all of them, not one each.
  if (started < job.last_failure) return abandoned;
  job.last_failure = now;
  job.failures++;
  auto delay = std::min<int64_t>(30000, int64_t{200} << std::min(job.failures - 1, 10));
  job.not_before = now + std::chrono::milliseconds(delay);
  if ((job.failures & (job.failures - 1)) == 0) {  // 1st, 2nd, 4th, 8th... failure in a row
    Logf(LogLevel::kWarn, "upload of %s failed (%d times in a row), retrying in %.1fs: %s\n",
                 job.record.url.c_str(), job.failures, delay / 1000.0, job.last_error.c_str());
  }
  return abandoned;
}

void Uploader::WarnOverdueLocked() {
  int64_t now_ms = UnixMillis();
  for (const auto& job : jobs_) {
    if (!job->sealed || job->warned_overdue || !job->Overdue(now_ms, options_.deadline)) continue;
    job->warned_overdue = true;
    Logf(LogLevel::kWarn, "%s is still not durable %lld s after it was written (--upload-deadline %lld s)%s%s\n",
                 job->record.url.c_str(), static_cast<long long>((now_ms - job->record.created_unix_ms) / 1000),
                 static_cast<long long>(options_.deadline.count() / 1000),
                 job->last_error.empty() ? "" : "; last error: ", job->last_error.c_str());
  }
}

void Uploader::Schedule() {
  std::unique_lock<std::mutex> lock(mu_);
  auto overdue_checked = Clock::time_point{};
  while (!stopping_) {
    // Once a second, not per part: it looks at every object queued (a node may hold 100,000).
    if (Clock::now() - overdue_checked >= std::chrono::seconds(1)) {
      WarnOverdueLocked();
      overdue_checked = Clock::now();
    }
    Task task;
    auto wake = Clock::time_point::max();
    if (!NextTaskLocked(&task, &wake)) {
      cv_.wait_until(lock, std::min(wake, Clock::now() + std::chrono::seconds(1)));
      continue;
    }
    in_flight_++;
    task.job->lane->stats.in_flight++;
    task.job->in_flight++;
    pool_->Submit([this, task, started = Clock::now()] { RunTask(task, started); });
  }
}

void Uploader::RunTask(const Task& task, Clock::time_point started) {
  // Background work yields the CPU to the node's readers and writers (nice 10 for this
  // thread only: Linux applies setpriority to a thread id; every pool thread runs only this).
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  uint64_t throttles = 0;
  uint64_t bytes = 0;
  bool reused = false;
  Status st = Run(task, &throttles, &bytes, &reused);
  std::unique_ptr<MultipartUpload> abandoned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned = FinishLocked(task, st, throttles, bytes, reused, started);
  }
  cv_.notify_all();
  // `abandoned` is destroyed here, unlocked: aborts the upload (best effort).
}

}  // namespace shoal::node
