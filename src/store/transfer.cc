#include "store/transfer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/parallel.h"

namespace shoal {
namespace {

// Reads [offset, offset+len) of the source into buf (exactly len bytes).
Status ReadRange(ObjectStore& src, const ObjectInfo& info, uint64_t offset, uint64_t len,
                 std::string* buf) {
  buf->clear();
  ReadOptions ro;
  ro.offset = offset;
  ro.length = len;
  ro.if_match = info.etag;
  ro.if_size = info.size;
  SHOAL_RETURN_IF_ERROR(src.Get(info.key, ro, [&](const char* d, size_t n) {
    if (buf->size() + n > len) return Status::Corruption("the store sent more bytes than asked for");
    buf->append(d, n);
    return Status::Ok();
  }));
  if (buf->size() != len) {
    return Status::Corruption(src.Describe() + "/" + info.key + ": got " +
                              std::to_string(buf->size()) + " bytes at offset " +
                              std::to_string(offset) + " where " + std::to_string(len) +
                              " were expected; the object may have changed: copy it again");
  }
  return Status::Ok();
}

// Into a destination that writes at any offset (a file): `concurrency` long ranged reads,
// each written in place as its bytes arrive. No part buffers, and few requests: per-request
// cost, not bandwidth, is what limits many small ranged GETs.
Result<ObjectInfo> StreamIntoPlace(ObjectStore& src, const ObjectInfo& info, MultipartUpload& upload,
                                   const TransferOptions& opts) {
  const uint64_t size = info.size;
  const uint64_t workers = std::max(1, opts.concurrency);
  // Ranges of at least one part; at most 256 MiB so a retry never repeats much and the last
  // ranges still spread over every worker.
  uint64_t range = std::clamp<uint64_t>((size + workers - 1) / workers, opts.part_size, 256ull << 20);
  uint64_t ranges = (size + range - 1) / range;
  std::atomic<uint64_t> next{0};
  ErrorSlot error;
  RunWorkers(std::min(workers, ranges), [&] {
    constexpr size_t kWriteChunk = 256 << 10;
    std::string pending;
    pending.reserve(kWriteChunk + (64 << 10));
    while (!error.failed()) {
      uint64_t i = next++;
      if (i >= ranges) return;
      ReadOptions ro;
      ro.offset = i * range;
      ro.length = std::min(range, size - ro.offset);
      ro.if_match = info.etag;
      ro.if_size = info.size;
      // The HTTP layer hands over 16 KiB at a time; gather 256 KiB per write.
      uint64_t pos = ro.offset;
      auto flush = [&]() -> Status {
        if (pending.empty()) return Status::Ok();
        SHOAL_RETURN_IF_ERROR(upload.PutPart(0, pos, pending));
        pos += pending.size();
        if (opts.progress) *opts.progress += pending.size();
        pending.clear();
        return Status::Ok();
      };
      Status st = src.Get(info.key, ro, [&](const char* d, size_t n) {
        pending.append(d, n);
        return pending.size() >= kWriteChunk ? flush() : Status::Ok();
      });
      if (st.ok()) st = flush();
      if (st.ok() && pos != ro.offset + ro.length) {
        st = Status::Corruption(src.Describe() + "/" + info.key + ": a range ended " +
                                std::to_string(ro.offset + ro.length - pos) + " bytes short");
      }
      if (!st.ok()) return error.Set(st);
    }
  });
  if (error.failed()) {
    upload.Abort();
    return error.Get();
  }
  return upload.Complete(static_cast<uint32_t>(ranges));
}

}  // namespace

Result<size_t> FdSource::Read(char* buf, size_t len) {
  while (true) {
    ssize_t n = ::read(fd_, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Status::IOError("reading " + name_ + ": " + std::strerror(errno));
  }
}

uint64_t ChoosePartSize(uint64_t size, uint64_t wanted, const PartLimits& limits) {
  uint64_t part = std::max<uint64_t>(wanted, 1);
  if (limits.max_parts > 0 && size / part >= limits.max_parts) {
    part = (size + limits.max_parts - 1) / limits.max_parts;
  }
  part = std::max(part, limits.min_part_size);
  return std::min(part, limits.max_part_size);
}

Result<ObjectInfo> CopyObject(ObjectStore& src, const ObjectInfo& src_info, ObjectStore& dst,
                              const std::string& dst_key, const TransferOptions& opts) {
  uint64_t size = src_info.size;
  uint64_t part = ChoosePartSize(size, opts.part_size, dst.Limits());
  if (size <= part) {
    std::string buf;
    SHOAL_RETURN_IF_ERROR(ReadRange(src, src_info, 0, size, &buf));
    SHOAL_ASSIGN_OR_RETURN(ObjectInfo out, dst.PutObject(dst_key, buf));
    if (opts.progress) *opts.progress += size;
    return out;
  }
  SHOAL_ASSIGN_OR_RETURN(auto upload, dst.BeginUpload(dst_key));
  upload->Reserve(size);
  if (upload->positional()) return StreamIntoPlace(src, src_info, *upload, opts);
  uint32_t parts = static_cast<uint32_t>((size + part - 1) / part);
  std::atomic<uint32_t> next{0};
  ErrorSlot error;
  int workers = std::max(1, std::min<int>(opts.concurrency, static_cast<int>(parts)));
  RunWorkers(static_cast<size_t>(workers), [&] {
    std::string buf;
    buf.reserve(part);
    while (!error.failed()) {
      uint32_t i = next++;
      if (i >= parts) return;
      uint64_t off = uint64_t{i} * part;
      uint64_t len = std::min(part, size - off);
      Status st = ReadRange(src, src_info, off, len, &buf);
      if (st.ok()) st = upload->PutPart(i, off, buf);
      if (!st.ok()) return error.Set(st);
      if (opts.progress) *opts.progress += len;
    }
  });
  if (error.failed()) {
    upload->Abort();
    return error.Get();
  }
  return upload->Complete(parts);
}

Result<ObjectInfo> UploadStream(ByteSource& source, ObjectStore& dst, const std::string& key,
                                const TransferOptions& opts) {
  uint64_t part = ChoosePartSize(0, opts.part_size, dst.Limits());
  auto fill = [&](std::string* buf) -> Status {
    buf->resize(part);
    size_t got = 0;
    while (got < part) {
      SHOAL_ASSIGN_OR_RETURN(size_t n, source.Read(buf->data() + got, part - got));
      if (n == 0) break;
      got += n;
    }
    buf->resize(got);
    return Status::Ok();
  };
  std::string first;
  SHOAL_RETURN_IF_ERROR(fill(&first));
  if (first.size() < part) {
    SHOAL_ASSIGN_OR_RETURN(ObjectInfo out, dst.PutObject(key, first));
    if (opts.progress) *opts.progress += first.size();
    return out;
  }
  SHOAL_ASSIGN_OR_RETURN(auto upload, dst.BeginUpload(key));
  // The reader (this thread) fills free buffers; workers upload full ones.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<uint32_t, std::string>> ready;  // guarded by mu
  std::vector<std::string> free_bufs;                  // guarded by mu
  bool done_reading = false;                           // guarded by mu
  ErrorSlot error;
  int workers = std::max(1, opts.concurrency);
  for (int i = 0; i < workers; i++) free_bufs.emplace_back();
  ready.emplace_back(0, std::move(first));
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; w++) {
    threads.emplace_back([&] {
      while (true) {
        std::pair<uint32_t, std::string> item;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return !ready.empty() || done_reading || error.failed(); });
          if (ready.empty() || error.failed()) return;
          item = std::move(ready.front());
          ready.pop_front();
        }
        Status st = upload->PutPart(item.first, uint64_t{item.first} * part, item.second);
        if (!st.ok()) error.Set(st);
        else if (opts.progress) *opts.progress += item.second.size();
        {
          std::lock_guard<std::mutex> lock(mu);
          free_bufs.push_back(std::move(item.second));
        }
        cv.notify_all();
      }
    });
  }
  uint32_t index = 1;
  while (!error.failed()) {
    std::string buf;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !free_bufs.empty() || error.failed(); });
      if (error.failed()) break;
      buf = std::move(free_bufs.back());
      free_bufs.pop_back();
    }
    Status read = fill(&buf);
    if (!read.ok()) {
      error.Set(read);
      break;
    }
    if (buf.empty()) break;
    bool last = buf.size() < part;
    {
      std::lock_guard<std::mutex> lock(mu);
      ready.emplace_back(index++, std::move(buf));
    }
    cv.notify_all();
    if (last) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done_reading = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  if (error.failed()) {
    upload->Abort();
    return error.Get();
  }
  return upload->Complete(index);
}

Status DownloadStream(ObjectStore& src, const ObjectInfo& info, const ByteSink& sink,
                      const TransferOptions& opts) {
  uint64_t part = std::max<uint64_t>(opts.part_size, 1);
  uint64_t size = info.size;
  uint32_t parts = static_cast<uint32_t>((size + part - 1) / part);
  if (parts <= 1) {
    ReadOptions ro;
    ro.if_match = info.etag;
    ro.if_size = info.size;
    return src.Get(info.key, ro, [&](const char* d, size_t n) {
      SHOAL_RETURN_IF_ERROR(sink(d, n));
      if (opts.progress) *opts.progress += n;
      return Status::Ok();
    });
  }
  std::mutex mu;
  std::condition_variable cv;
  uint32_t next_emit = 0;  // guarded by mu
  std::atomic<uint32_t> next{0};
  ErrorSlot error;
  int workers = std::max(1, std::min<int>(opts.concurrency, static_cast<int>(parts)));
  RunWorkers(static_cast<size_t>(workers), [&] {
    std::string buf;
    while (!error.failed()) {
      uint32_t i = next++;
      if (i >= parts) return;
      uint64_t off = uint64_t{i} * part;
      uint64_t len = std::min(part, size - off);
      Status st = ReadRange(src, info, off, len, &buf);
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return next_emit == i || error.failed(); });
      if (error.failed()) return;
      if (st.ok()) st = sink(buf.data(), buf.size());
      if (!st.ok()) {
        error.Set(st);
      } else {
        if (opts.progress) *opts.progress += len;
        next_emit++;
      }
      lock.unlock();
      cv.notify_all();
    }
  });
  if (error.failed()) return error.Get();
  return Status::Ok();
}

}  // namespace shoal
