#include "testing/data.h"

#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "common/strings.h"

namespace shoal::testing {

namespace {
inline uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void PatternSource::Fill(uint64_t seed, uint64_t offset, char* buf, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint64_t word_index = (offset + i) / 8;
    uint64_t w = Mix(seed * 0x100000001b3ull + word_index);
    size_t in_word = (offset + i) % 8;
    size_t n = std::min<size_t>(8 - in_word, len - i);
    std::memcpy(buf + i, reinterpret_cast<char*>(&w) + in_word, n);
    i += n;
  }
}

Result<size_t> PatternSource::Read(char* buf, size_t len) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(len, size_ - pos_));
  Fill(seed_, pos_, buf, n);
  pos_ += n;
  return n;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
void Sha256Stream::Update(const char* data, size_t len) { EVP_DigestUpdate(ctx_, data, len); }
std::string Sha256Stream::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_, md, &n);
  return HexEncode(std::string(reinterpret_cast<char*>(md), n));
}

std::string PatternSha256(uint64_t seed, uint64_t size) {
  Sha256Stream h;
  std::vector<char> buf(1 << 20);
  for (uint64_t off = 0; off < size; off += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    PatternSource::Fill(seed, off, buf.data(), n);
    h.Update(buf.data(), n);
  }
  return h.HexDigest();
}

bool WritePatternFile(const std::string& path, uint64_t seed, uint64_t size) {
  std::ofstream out(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  for (uint64_t off = 0; off < size; off += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    PatternSource::Fill(seed, off, buf.data(), n);
    out.write(buf.data(), static_cast<std::streamsize>(n));
  }
  return static_cast<bool>(out);
}

std::string FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Sha256Stream h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.Update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.HexDigest();
}

std::string ObjectSha256(ObjectStore& store, const std::string& key) {
  Sha256Stream h;
  Status st = store.Get(key, {}, [&](const char* d, size_t n) {
    h.Update(d, n);
    return Status::Ok();
  });
  return st.ok() ? h.HexDigest() : st.ToString();
}

int PutMany(ObjectStore& store, int count, const std::function<std::string(int)>& key_of) {
  std::vector<std::thread> writers;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; t++) {
    writers.emplace_back([&, t] {
      for (int i = t; i < count; i += 8) {
        if (!store.PutObject(key_of(i), "x").ok()) failed++;
      }
    });
  }
  for (auto& w : writers) w.join();
  return failed;
}

}  // namespace shoal::testing
