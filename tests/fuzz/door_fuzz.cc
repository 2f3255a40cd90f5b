// libFuzzer target over the door's parsing and signature code: the credentials parser (node
// tokens too), the request verifiers (S3 header and presigned, Azure Shared Key and SAS), the
// Put Block List body and the aws-chunked body decoder in every mode, on arbitrary bytes. Built with clang++ and ASan/UBSan
// (tests/fuzz/CMakeLists.txt) and run for a bounded count by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "door/azure_auth.h"
#include "door/azure_blocks.h"
#include "door/credentials.h"
#include "door/s3_auth.h"

namespace {

using namespace shoal::door;

const Credentials& Keys() {
  static auto keys = Credentials::FromText(
      "both fuzzacct c2hvYWwtZnV6ei1rZXk= *:read-write\ns3 AKIDFUZZ secret a/b:read\n", "fuzz");
  return **keys;
}

// Input: lines "METHOD", "PATH", "QUERY", then "Name: value" headers up to an empty line; the
// rest is the body.
RequestView ParseRequest(std::string_view in, std::string_view* body) {
  RequestView r;
  auto line = [&]() {
    size_t nl = in.find('\n');
    std::string_view l = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    return std::string(l);
  };
  r.method = line();
  r.raw_path = line();
  r.raw_query = line();
  r.client_ip = "127.0.0.1";
  while (!in.empty()) {
    std::string h = line();
    if (h.empty()) break;
    size_t colon = h.find(':');
    r.headers.emplace_back(h.substr(0, colon),
                           colon == std::string::npos ? "" : h.substr(colon + 1));
  }
  *body = in;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint8_t mode = data[0];
  if (mode % 4 == 0) {
    if (mode & 4) {  // a Put Block List body
      BlockListResult r = ParseBlockList(in);
      if (r.error_code.empty() && r.entries.size() > kMaxBlockListEntries) __builtin_trap();
      return 0;
    }
    auto c = Credentials::FromText(in, "fuzz");
    if (c.ok()) {
      (*c)->Allows("x", "y", "z", Access::kWrite);
      (void)(*c)->FindNodeToken(in.substr(0, in.find('\n')));
      (void)(*c)->has_node_tokens();
    }
    return 0;
  }
  std::string_view body;
  RequestView r = ParseRequest(in, &body);
  r.is_tls = (mode & 8) != 0;
  const std::time_t now = 1796313600;
  if (mode % 4 == 1) {
    auto p = VerifyAzure(r, Keys(), {}, now);
    if (p.ok()) AuthorizeAzure(*p, "c", "k", AzureOp::kWrite).has_value();
    return 0;
  }
  auto p = VerifyS3(r, Keys(), {}, now);
  (void)RenderS3Error(p.ok() ? S3Error{S3ErrorCode::kAccessDenied, "m", "", ""} : p.error(), "/r",
                      "id");
  // The body decoder in every mode, whatever the signature said, with slices of the body.
  S3Principal principal;
  principal.key = Keys().Find("fuzzacct");
  principal.payload = static_cast<S3Payload>((mode >> 4) % 5);
  principal.content_sha256 = std::string(64, '0');
  principal.decoded_length = body.size() / 2;
  principal.trailer = (mode & 2) ? "x-amz-checksum-crc32c" : "";
  principal.signing_key = std::string(32, 'k');
  principal.amz_date = "20261203T000000Z";
  principal.scope = "20261203/us-east-1/s3/aws4_request";
  principal.seed_signature = std::string(64, 'a');
  S3BodyDecoder decoder(principal);
  std::string out;
  size_t slice = 1 + (mode >> 2) % 17;
  for (size_t off = 0; off < body.size(); off += slice) {
    if (decoder.Feed(body.substr(off, slice), &out)) break;
  }
  (void)decoder.Finish();
  return 0;
}
