#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/placement.h"
#include "common/status.h"

namespace shoal::cluster {

// A member and where to reach it.
struct Peer {
  Member member;
  std::string endpoint;  // HOST:PORT of its shoald
};

// Parses a static membership, as --peers takes it:
//   id=host:port[:weight[:domain]],id=host:port[:weight[:domain]],...
// e.g. "a=10.0.0.1:7070,b=10.0.0.2:7070:200:rack2". Weight defaults to 100, the domain to the
// member's own id (every node its own failure domain). kInvalidArgument naming the bad entry.
Result<std::vector<Peer>> ParsePeers(const std::string& text);

}  // namespace shoal::cluster
