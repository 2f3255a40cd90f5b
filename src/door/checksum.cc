#include "door/checksum.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

namespace shoal::door {
namespace {

// A reflected table-driven CRC (CRC-32, CRC-32C and CRC-64/NVME are all reflected, with the
// register and the output inverted), width 32 or 64.
template <typename T, T kPoly>
class ReflectedCrc final : public Checksum {
 public:
  void Update(std::string_view data) override {
    static const std::array<T, 256> table = [] {
      std::array<T, 256> t{};
      for (unsigned i = 0; i < 256; i++) {
        T c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
        t[i] = c;
      }
      return t;
    }();
    for (unsigned char b : data) crc_ = table[(crc_ ^ b) & 0xff] ^ (crc_ >> 8);
  }
  std::string Final() override {
    T v = ~crc_;
    std::string out(sizeof(T), '\0');
    for (size_t i = 0; i < sizeof(T); i++) {
      out[sizeof(T) - 1 - i] = static_cast<char>(v & 0xff);
      v >>= 8;
    }
    return out;
  }

 private:
  T crc_ = ~T{0};
};

class Digest final : public Checksum {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~Digest() override { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(std::string_view data) override { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string Final() override {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, buf, &n);
    return std::string(reinterpret_cast<char*>(buf), n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::unique_ptr<Checksum> Checksum::Make(std::string_view name) {
  if (name == "crc32") return std::make_unique<ReflectedCrc<uint32_t, 0xEDB88320u>>();
  if (name == "crc32c") return std::make_unique<ReflectedCrc<uint32_t, 0x82F63B78u>>();
  if (name == "crc64nvme") {
    return std::make_unique<ReflectedCrc<uint64_t, 0x9A6C9329AC4BC9B5ull>>();
  }
  if (name == "sha1") return std::make_unique<Digest>(EVP_sha1());
  if (name == "sha256") return std::make_unique<Digest>(EVP_sha256());
  if (name == "md5") return std::make_unique<Digest>(EVP_md5());
  return nullptr;
}

}  // namespace shoal::door
