// Fuzz target: cluster::View::Decode, as a node decodes a view a peer POSTs to
// /v1/cluster/view (and a client the view it GETs). Invariants: a decoded view re-encodes to
// bytes that decode to an equal view (the same encoding again, with and without history); every
// route it gives names its members, with endpoints the view knows.

#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/view.h"
#include "fuzz_check.h"

using shoal::cluster::View;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto view = View::Decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!view.ok()) return 0;
  const View& v = **view;
  for (bool current_only : {false, true}) {
    std::string once = v.Encode(current_only);
    auto again = View::Decode(once);
    FUZZ_CHECK(again.ok(), again.status().message().c_str());
    FUZZ_CHECK((*again)->Encode(current_only) == once, "a decoded view re-encodes differently");
    FUZZ_CHECK((*again)->epoch() == v.epoch(), "the epoch changed through an encoding");
  }
  auto peers = v.peers();
  for (uint64_t index = 0; index < 4; index++) {
    auto route = v.RouteOf("az://container/some/key", index, 3);
    FUZZ_CHECK(route.replicas.size() <= peers.size(), "more replicas than members");
    if (!peers.empty()) FUZZ_CHECK(!route.replicas.empty(), "a chunk without an owner");
    for (const auto& r : route.replicas) {
      FUZZ_CHECK(v.EndpointOf(r.member.id) == r.endpoint, "a route's endpoint is not the view's");
    }
  }
  return 0;
}
