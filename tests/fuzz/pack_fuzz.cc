// Fuzz target: the chunk store's reading of its pack files at start. The input is one pack's
// bytes (DIR/chunks/packs/pack-0000000001). Invariants: Open succeeds whatever they are; a
// chunk it indexed reads back (Get) checked, or as kCorruption (and is then gone), never as
// another error; the store goes on after them: a chunk put then goes to a new pack, and the
// next Open finds it with its bytes, beside what the first Open indexed and no Get dropped.
// The seeds (corpus/pack) hold chunks of the keys Key(0..3).

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/chunk_store.h"
#include "fuzz_check.h"

using shoal::Code;
using shoal::engine::ChunkKey;
using shoal::engine::ChunkStore;
using shoal::engine::ChunkStoreOptions;
namespace fs = std::filesystem;

namespace {

const std::string& Dir() { return FuzzScratchDir("shoal-pack-fuzz"); }

ChunkKey Key(int i) { return ChunkKey{"az://f/" + std::to_string(i), "v", 0}; }

std::unique_ptr<ChunkStore> Open() {
  ChunkStoreOptions o{Dir(), 1ull << 30, /*sync=*/false, UINT64_MAX, /*block=*/1};
  o.pack_below = 1 << 20;
  auto store = ChunkStore::Open(o);
  FUZZ_CHECK(store.ok(), store.status().message().c_str());
  return std::move(store).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::error_code ec;
  fs::remove_all(Dir() + "/chunks", ec);
  fs::create_directories(Dir() + "/chunks/packs");
  {
    std::ofstream out(Dir() + "/chunks/packs/pack-0000000001", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto store = Open();
  const uint64_t indexed = store->stats().chunks;
  FUZZ_CHECK(store->stats().packed == indexed, "a pack's chunk indexed as a file");
  uint64_t read = 0;
  for (int i = 0; i < 4; i++) {
    auto got = store->Get(Key(i));
    FUZZ_CHECK(got.ok() || got.status().code() == Code::kNotFound || got.status().code() == Code::kCorruption,
               got.status().ToString().c_str());
    if (got.ok()) read++;
    if (!got.ok()) FUZZ_CHECK(!store->Contains(Key(i)), "a chunk that failed its check is still indexed");
  }
  FUZZ_CHECK(read <= indexed, "more chunks read than indexed");
  const uint64_t kept = store->stats().chunks;
  const std::string after(5000, 'z');
  FUZZ_CHECK(store->Put(Key(100), after, true).ok(), "a put after the reopen failed");
  FUZZ_CHECK(store->Sync({Key(100)}).ok(), "a sync after the reopen failed");
  store.reset();
  auto again = Open();
  auto got = again->Get(Key(100));
  FUZZ_CHECK(got.ok() && *got == after, "a chunk put after the reopen is lost");
  FUZZ_CHECK(again->stats().chunks == kept + 1, "the next reopen found other chunks");
  return 0;
}
