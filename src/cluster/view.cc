#include "cluster/view.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/json_numbers.h"

namespace shoal::cluster {

namespace {
constexpr std::string_view kMagic = "SHOALVIEW1\n";

nlohmann::json MembersJson(const Placement& p, const std::unordered_map<std::string, std::string>& endpoints) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : p.members()) {
    auto it = endpoints.find(m.id);
    out.push_back({{"id", m.id}, {"endpoint", it == endpoints.end() ? "" : it->second},
                   {"weight", m.weight}, {"domain", m.domain}});
  }
  return out;
}

void AppendOwners(const Placement& p, std::string* out) {
  size_t at = out->size();
  out->resize(at + p.owners().size() * 4);
  char* d = out->data() + at;
  for (uint32_t o : p.owners()) {  // little-endian whatever the host
    for (int b = 0; b < 4; b++) *d++ = static_cast<char>((o >> (8 * b)) & 0xff);
  }
}

// One table of a decoded view: its members from the header, its owners from `*body`.
Result<Placement> ReadTable(const nlohmann::json& header, uint32_t bits, std::string_view* body,
                            std::unordered_map<std::string, std::string>* endpoints) {
  std::vector<Member> members;
  for (const auto& m : header.at("members")) {
    members.push_back(Member{m.at("id").get<std::string>(), JsonUnsigned<uint32_t>(m.at("weight"), "a member's weight"),
                             m.at("domain").get<std::string>()});
    (*endpoints)[members.back().id] = m.at("endpoint").get<std::string>();
  }
  size_t slots = size_t{1} << bits;
  if (body->size() < slots * 4) return Status::Corruption("a cluster view is cut short");
  std::vector<uint32_t> owners(slots);
  const auto* d = reinterpret_cast<const unsigned char*>(body->data());
  for (size_t s = 0; s < slots; s++, d += 4) {
    owners[s] = uint32_t{d[0]} | uint32_t{d[1]} << 8 | uint32_t{d[2]} << 16 | uint32_t{d[3]} << 24;
  }
  body->remove_prefix(slots * 4);
  return Placement::FromOwners(bits, std::move(members), std::move(owners), JsonUnsigned<uint64_t>(header.at("epoch"), "epoch"));
}
}  // namespace

uint32_t ChunkSlot(const Placement& placement, std::string_view url, uint64_t index) {
  uint32_t first = placement.SlotOf(XXH3_64bits(url.data(), url.size()));
  return static_cast<uint32_t>((first + index) & (placement.slots() - 1));
}

Result<std::shared_ptr<const View>> View::Build(const View* prev, const std::vector<Peer>& peers, uint64_t epoch,
                                                uint32_t slot_bits) {
  std::optional<Placement> before;
  if (prev) {
    before = prev->current_;
    if (epoch <= prev->epoch()) {
      return Status::InvalidArgument("epoch " + std::to_string(epoch) + " does not follow " +
                                     std::to_string(prev->epoch()));
    }
  }
  SHOAL_ASSIGN_OR_RETURN(Placement next, prev ? Result<Placement>(prev->current_) : Placement::Create(slot_bits));
  std::vector<Member> members;
  for (const auto& p : peers) members.push_back(p.member);
  SHOAL_RETURN_IF_ERROR(next.Apply(members, epoch).status());
  std::shared_ptr<View> view(new View(std::move(next), std::move(before)));
  if (prev) {
    for (const auto& m : view->previous_->members()) view->endpoints_[m.id] = prev->EndpointOf(m.id);
  }
  for (const auto& p : peers) view->endpoints_[p.member.id] = p.endpoint;
  return std::shared_ptr<const View>(std::move(view));
}

std::string View::Encode(bool current_only) const {
  nlohmann::json header = {{"epoch", epoch()}, {"slot_bits", current_.slot_bits()},
                           {"members", MembersJson(current_, endpoints_)}};
  bool with_previous = previous_ && !current_only;
  if (with_previous) {
    header["previous"] = {{"epoch", previous_->epoch()}, {"members", MembersJson(*previous_, endpoints_)}};
  }
  std::string out(kMagic);
  out += header.dump();
  out += '\n';
  AppendOwners(current_, &out);
  if (with_previous) AppendOwners(*previous_, &out);
  return out;
}

Result<std::shared_ptr<const View>> View::Decode(std::string_view bytes) {
  if (bytes.substr(0, kMagic.size()) != kMagic) return Status::Corruption("not a cluster view");
  bytes.remove_prefix(kMagic.size());
  size_t nl = bytes.find('\n');
  if (nl == std::string_view::npos) return Status::Corruption("a cluster view has no header");
  try {
    auto header = nlohmann::json::parse(bytes.substr(0, nl));
    bytes.remove_prefix(nl + 1);
    uint32_t bits = JsonUnsigned<uint32_t>(header.at("slot_bits"), "slot_bits");
    if (bits < 10 || bits > 26) return Status::Corruption("a cluster view has 2^" + std::to_string(bits) + " slots");
    std::unordered_map<std::string, std::string> endpoints;
    std::optional<Placement> previous;
    SHOAL_ASSIGN_OR_RETURN(Placement current, ReadTable(header, bits, &bytes, &endpoints));
    if (header.contains("previous")) {
      std::unordered_map<std::string, std::string> prev_endpoints;
      SHOAL_ASSIGN_OR_RETURN(previous, ReadTable(header["previous"], bits, &bytes, &prev_endpoints));
      for (auto& [id, ep] : prev_endpoints) endpoints.emplace(id, ep);  // current endpoints win
    }
    std::shared_ptr<View> view(new View(std::move(current), std::move(previous)));
    view->endpoints_ = std::move(endpoints);
    return std::shared_ptr<const View>(std::move(view));
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("a cluster view's header is malformed: ") + e.what());
  } catch (const std::domain_error& e) {  // common/json_numbers.h
    return Status::Corruption(std::string("a cluster view's header is malformed: ") + e.what());
  }
}

Peer View::PeerOf(const Placement& p, uint32_t index) const {
  Peer peer{p.members()[index], ""};
  peer.endpoint = EndpointOf(peer.member.id);
  return peer;
}

Route View::RouteOf(std::string_view url, uint64_t index, uint32_t replicas) const {
  Route r;
  if (current_.members().empty()) return r;
  uint32_t slot = ChunkSlot(current_, url, index);
  for (uint32_t m : current_.Replicas(slot, std::max<uint32_t>(replicas, 1))) r.replicas.push_back(PeerOf(current_, m));
  if (previous_ && !previous_->members().empty()) {
    Peer before = PeerOf(*previous_, previous_->Owner(slot));
    if (before.member.id != r.replicas[0].member.id) r.previous = std::move(before);
  }
  return r;
}

std::vector<Peer> View::peers() const {
  std::vector<Peer> out;
  for (uint32_t i = 0; i < current_.members().size(); i++) out.push_back(PeerOf(current_, i));
  return out;
}

std::string View::EndpointOf(const std::string& id) const {
  auto it = endpoints_.find(id);
  return it == endpoints_.end() ? std::string() : it->second;
}

bool View::SameMembers(const std::vector<Peer>& peers) const {
  if (peers.size() != current_.members().size()) return false;
  for (const auto& p : peers) {
    auto it = std::lower_bound(current_.members().begin(), current_.members().end(), p.member.id,
                               [](const Member& m, const std::string& id) { return m.id < id; });
    if (it == current_.members().end() || it->id != p.member.id || it->weight != p.member.weight ||
        it->domain != p.member.domain || EndpointOf(p.member.id) != p.endpoint) {
      return false;
    }
  }
  return true;
}

}  // namespace shoal::cluster
