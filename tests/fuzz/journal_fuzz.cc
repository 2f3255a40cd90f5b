// Fuzz target: the write-back journal's reader. The input is one record file's bytes:
// UploadRecord::Decode on it, then Journal::Open (the replay at start) over a directory holding
// it as a record file of the older layout. Invariants: a decoded record re-encodes to one that
// decodes equal; the replay either loads the record (the one it decoded) or reports it damaged
// and keeps it aside as *.bad, never both, never neither, and never fails to open.
// Then the same bytes as the entries of a log (after its header): the replay opens, counts
// what it dropped within the bytes given, and the journal goes on after them (a record put
// then is found by the next replay).

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/journal.h"
#include "fuzz_check.h"

using shoal::engine::Journal;
using shoal::engine::UploadRecord;
namespace fs = std::filesystem;

namespace {

bool Same(const UploadRecord& a, const UploadRecord& b) {
  return a.id == b.id && a.url == b.url && a.size == b.size && a.chunk_size == b.chunk_size &&
         a.state == b.state && a.store_upload_id == b.store_upload_id && a.etag == b.etag &&
         a.created_unix_ms == b.created_unix_ms && a.replicas == b.replicas && a.origin == b.origin &&
         a.origin_incarnation == b.origin_incarnation && a.meta == b.meta;
}

const std::string& Dir() { return FuzzScratchDir("shoal-journal-fuzz"); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto record = UploadRecord::Decode(text);
  if (record.ok()) {
    auto again = UploadRecord::Decode(record->Encode());
    FUZZ_CHECK(again.ok(), again.status().message().c_str());
    FUZZ_CHECK(Same(*record, *again), "a decoded record re-encodes differently");
  }

  // The replay: the bytes as the record file of the id they name (or of another id).
  const std::string& dir = Dir();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path(), ec);
  const std::string id = record.ok() ? record->id : "not-its-id";
  {
    std::ofstream out(dir + "/" + id + ".json", std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  auto journal = Journal::Open(dir, /*sync=*/false);
  FUZZ_CHECK(journal.ok(), journal.status().message().c_str());
  auto loaded = (*journal)->List();
  const auto& damaged = (*journal)->damaged();
  FUZZ_CHECK(loaded.size() + damaged.size() == 1, "a record file neither loaded nor reported damaged");
  if (record.ok()) {
    FUZZ_CHECK(loaded.size() == 1 && Same(loaded[0], *record), "the replay loads another record than it decodes");
  } else {
    FUZZ_CHECK(fs::exists(dir + "/" + id + ".json.bad"), "a damaged record is not kept aside");
  }

  // The bytes as a log's entries.
  journal.value().reset();
  for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path(), ec);
  {
    std::ofstream out(dir + "/log-1", std::ios::binary);
    out << "SHOALJL1";
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  auto log = Journal::Open(dir, /*sync=*/false);
  FUZZ_CHECK(log.ok(), log.status().message().c_str());
  FUZZ_CHECK((*log)->torn_tail_bytes() <= text.size(), "the replay dropped more than the log held");
  const size_t before = (*log)->size();
  UploadRecord after;
  after.id = "after-the-replay";
  const bool had = (*log)->Get(after.id).ok();
  after.url = "az://c/after";
  FUZZ_CHECK((*log)->Put(after).ok(), "a put after the replay failed");
  log.value().reset();
  auto again = Journal::Open(dir, /*sync=*/false);
  FUZZ_CHECK(again.ok(), again.status().message().c_str());
  FUZZ_CHECK((*again)->Get(after.id).ok(), "a record put after the replay is lost");
  FUZZ_CHECK((*again)->size() == before + (had ? 0 : 1), "the replay after a put found other records");
  return 0;
}
