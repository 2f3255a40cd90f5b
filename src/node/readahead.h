#pragma once

// How far ahead of its readers each object is fetched. A window per object (its URL and
// version) starts at kFirst chunks (or `most`, if smaller) and doubles, up to `most`, each time
// a reader asks for a chunk that is still being fetched: it caught up with the read-ahead, so
// the store gives less than the reader takes, and a store's rate grows with the fetches at
// once (each fetch is held to a connection's rate and waits a round trip first), not with one
// fetch. A window never shrinks while its object is read; the least recently read of more
// than kObjects objects is forgotten (and starts again at kFirst).
//
// Thread-safety: every method may be called from any thread at once (one mutex, held for a
// map lookup).

#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace shoal::node {

class ReadaheadWindows {
 public:
  static constexpr int kFirst = 4;
  static constexpr size_t kObjects = 4096;

  // The window of `object`: how many chunks after the one being read to fetch. 0 when `most`
  // is 0 (no read-ahead).
  int Window(const std::string& object, int most);
  // A reader of `object` found the chunk it wants still being fetched: the window doubles
  // (up to `most`). Returns the new window.
  int CaughtUp(const std::string& object, int most);
  // Objects remembered (for tests).
  size_t size();

 private:
  struct Entry {
    int window;
    std::list<std::string>::iterator lru;
  };
  // The entry of `object`, made (at kFirst) and moved to the front of the LRU. Needs mu_.
  Entry& Touch(const std::string& object);

  std::mutex mu_;
  std::unordered_map<std::string, Entry> windows_;  // guarded by mu_
  std::list<std::string> lru_;                       // guarded by mu_; most recently read first
};

}  // namespace shoal::node
