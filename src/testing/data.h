#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <string>

#include "store/transfer.h"

namespace shoal::testing {

// Deterministic pseudo-random bytes: the same (seed, offset) always gives the same byte, so a
// test can stream gigabytes without keeping them and check what comes back.
class PatternSource final : public ByteSource {
 public:
  PatternSource(uint64_t seed, uint64_t size) : seed_(seed), size_(size) {}
  Result<size_t> Read(char* buf, size_t len) override;
  // Fills buf with bytes [offset, offset + len) of the pattern.
  static void Fill(uint64_t seed, uint64_t offset, char* buf, size_t len);

 private:
  uint64_t seed_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Incremental SHA-256, hex digest.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  void Update(const char* data, size_t len);
  std::string HexDigest();

 private:
  EVP_MD_CTX* ctx_;
};

// SHA-256 of `size` bytes of the pattern with `seed`.
std::string PatternSha256(uint64_t seed, uint64_t size);

// Writes `size` pattern bytes to a file.
bool WritePatternFile(const std::string& path, uint64_t seed, uint64_t size);
std::string FileSha256(const std::string& path);
// sha256 of object `key` in `store`, or the error's text (so a test's EXPECT_EQ shows it).
std::string ObjectSha256(ObjectStore& store, const std::string& key);
// Puts objects key_of(0) .. key_of(count - 1), each holding "x", from 8 threads at once (a
// listing's fixture); how many failed.
int PutMany(ObjectStore& store, int count, const std::function<std::string(int)>& key_of);

}  // namespace shoal::testing
