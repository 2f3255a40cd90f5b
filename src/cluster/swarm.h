#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace shoal::cluster {

// Fan-in: where a node that asks for a hot chunk gets it.
//
// The node that serves a chunk to other nodes (its owner) sends `direct` copies of it itself
// per burst of askers (a burst ends when nobody asked for `idle`). A further node asking is
// sent to a holder instead: a node that got the chunk, or is getting it, and has been given
// fewer than `per_holder` nodes to pass it on to.
// The asker becomes a holder in turn. So each chunk travels as a tree of fan-out `per_holder`
// rooted at the owner, chunk by chunk; a holder waits for its own copy before passing it on.
//
// Among holders with room, the shallowest are preferred (hops from the owner: each hop costs
// a chunk's transfer time, so the tree must stay about log(askers) deep), and among the first
// few of those, the one given the fewest askers so far over all chunks, so passing on spreads
// over every reader instead of falling on the first to arrive each time.
//
// Only holders with room are kept (a full one can take nobody more), in FIFO order per depth,
// so a choice costs O(1) whatever the number of askers. Memory is bounded: at most max_chunks
// chunks (least recently asked forgotten first), and at most max_holders holders with room
// per chunk (the tree then grows narrower: about max_holders x per_holder askers per hop).
// Thread-safe.
class SwarmTracker {
 public:
  struct Options {
    int direct = 4;      // copies of one chunk sent per burst before askers go to holders; 0: never spread
    int per_holder = 2;  // askers sent to one holder of one chunk
    size_t max_chunks = 1024;
    size_t max_holders = 4096;  // per chunk: about 64 bytes each
    size_t max_nodes = 65536;   // nodes whose load is remembered
    std::chrono::milliseconds idle{std::chrono::seconds(30)};  // a chunk nobody asked for this long starts afresh
  };
  explicit SwarmTracker(Options options) : options_(options) {}

  // Node `from` (the HOST:PORT it serves at) asks for chunk `chunk`. Returns the holder to send
  // it to, or "" to send it from here: then call Release(chunk) once it is sent.
  std::string Route(const std::string& chunk, const std::string& from);
  // Counts a copy sent from here without asking (an asker whose holder failed it).
  void Acquire(const std::string& chunk);
  void Release(const std::string& chunk);
  // `holder` failed an asker: it is not sent any more for `chunk`.
  void Forget(const std::string& chunk, const std::string& holder);

  // For tests: the holders of `chunk` that can still take askers, shallowest first, and the
  // copies being sent from here.
  std::vector<std::string> Holders(const std::string& chunk);
  int Sending(const std::string& chunk);

 private:
  struct Holder {
    std::string endpoint;
    int given = 0;  // askers sent to it for this chunk
  };
  struct Chunk {
    int sending = 0;  // copies being sent from here
    int sent = 0;     // copies sent from here this burst
    std::chrono::steady_clock::time_point asked;
    std::map<int, std::deque<Holder>> room;  // hops from here -> holders with room, oldest first
    size_t holders = 0;                      // in `room`
    std::list<std::string>::iterator lru;
  };
  Chunk& Touch(const std::string& chunk);  // mu_ held
  void AddHolder(Chunk& c, const std::string& endpoint, int depth);

  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Chunk> chunks_;  // guarded by mu_
  std::list<std::string> lru_;                     // most recent first; guarded by mu_
  std::unordered_map<std::string, uint64_t> load_;  // endpoint -> askers sent to it; guarded by mu_
};

}  // namespace shoal::cluster
