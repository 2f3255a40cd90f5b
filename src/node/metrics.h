#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace shoal::node {

// A latency histogram with fixed buckets, in seconds, as Prometheus reads it (cumulative
// buckets, _sum and _count). Observe is lock-free and thread-safe; Write reads each counter
// once, so a scrape during Observe may see a count one ahead of a bucket (Prometheus allows it).
class Histogram {
 public:
  // 50 us to 30 s: a warm 4 KiB read to a slow upload part.
  static constexpr std::array<double, 19> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                                     2.5,     5,      10,      20,     30};
  void Observe(std::chrono::steady_clock::duration d);
  // The family's lines for one label set (e.g. `op="hit"`); the caller writes HELP and TYPE.
  void Write(std::ostream& out, const std::string& family, const std::string& labels) const;
  uint64_t count() const { return count_.load(); }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // the last: above every bound
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Counters, exported at /metrics.
struct NodeMetrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> chunk_hits{0};
  std::atomic<uint64_t> chunk_misses{0};
  std::atomic<uint64_t> coalesced_waits{0};  // readers that waited for another's fetch
  std::atomic<uint64_t> store_get_requests{0};
  std::atomic<uint64_t> store_gets_for_others{0};  // of them, for chunks another member owns
  std::atomic<uint64_t> list_cache_hits{0};    // store listing pages answered from ListingCache
  std::atomic<uint64_t> store_list_requests{0};  // listing pages asked of the store for the node's listings
  std::atomic<uint64_t> store_get_bytes{0};
  std::atomic<uint64_t> store_head_requests{0};
  std::atomic<uint64_t> store_first_chunk_gets{0};  // metadata asked with a GET of the first chunk, not a HEAD
  std::atomic<uint64_t> coalesced_stats{0};         // metadata asks that joined one under way
  std::atomic<uint64_t> bytes_served{0};
  std::atomic<uint64_t> readahead_chunks{0};
  std::atomic<uint64_t> errors_not_found{0};
  std::atomic<uint64_t> errors_unavailable{0};
  std::atomic<uint64_t> errors_other{0};
  std::atomic<uint64_t> bytes_written{0};       // object bytes accepted from writers
  std::atomic<uint64_t> uploads_done{0};
  // Writes not committed because the store already held a newer write of their object (from
  // another node, or a later write here), and writes found already committed (a copy's
  // holder, or an earlier attempt, put them).
  std::atomic<uint64_t> uploads_superseded{0};
  std::atomic<uint64_t> uploads_found_stored{0};
  std::atomic<uint64_t> uploads_over_existing{0};  // one-request puts refused: an object was there
  std::atomic<uint64_t> upload_failures{0};     // attempts that failed and will be retried
  std::atomic<uint64_t> store_put_requests{0};  // parts and whole objects sent
  std::atomic<uint64_t> store_put_bytes{0};
  std::atomic<uint64_t> upload_parts_reused{0};  // parts of resumed uploads the store already held
  std::atomic<uint64_t> upload_reused_bytes{0};  //   and their bytes (not sent again)
  std::atomic<uint64_t> store_throttles{0};     // 429/503 answers seen by uploads
  std::atomic<uint64_t> upload_window_cuts{0};  // times the upload concurrency was halved
  std::atomic<uint64_t> writer_waits{0};        // chunks whose writer waited for the staged cap
  std::atomic<uint64_t> writer_wait_ns{0};
  std::atomic<uint64_t> door_early_bytes{0};    // door uploads' bytes joined to their write before the Complete
  std::atomic<uint64_t> staged_bytes_peak{0};
  std::atomic<uint64_t> staged_writes_peak{0};  // most writes staged at once (--staged-writes)
  std::atomic<uint64_t> write_count_waits{0};   // writes that waited at --staged-writes
  std::atomic<uint64_t> errors_disk_full{0};
  std::atomic<uint64_t> peer_fetches{0};         // chunks got from their owner (another node)
  std::atomic<uint64_t> peer_fetch_bytes{0};
  std::atomic<uint64_t> previous_owner_hits{0};  // chunks got from their owner before the last change
  std::atomic<uint64_t> peer_failures{0};        // requests to peers that failed (peer_health.h decides on skipping)
  std::atomic<uint64_t> announcements_sent{0};  // writes told to their object's home (another node)
  std::atomic<uint64_t> home_lookups{0};        // objects' metadata asked of their home (another node)
  std::atomic<uint64_t> holder_fetches{0};      // chunks of writes not yet uploaded, from the nodes holding them
  std::atomic<uint64_t> uploaded_write_fetches{0};  // chunks of a write read as written, its holders gone: from the store
  std::atomic<uint64_t> peer_retries{0};         // a chunk asked of a peer again after one failed request
  std::atomic<uint64_t> peers_marked_down{0};    // peers skipped for a while (nothing listening, or failures in a row)
  std::atomic<uint64_t> restart_waits{0};        // chunk reads that waited for their owner's restart in place
  std::atomic<uint64_t> stale_forwards{0};       // forwarded reads routed by an older membership, routed again
  std::atomic<uint64_t> bytes_served_peers{0};   // of bytes_served, to other nodes
  std::atomic<uint64_t> bytes_served_local{0};   // of bytes_served, over the Unix socket (this host)
  std::atomic<uint64_t> sendfile_bytes{0};       // of bytes_served, sent from chunk files by sendfile(2)
  std::atomic<uint64_t> tls_handshake_failures{0};  // TLS connections closed before a request
  std::atomic<uint64_t> copy_holders_replaced{0};  // a write's copy holder unreachable: another took its place
  std::atomic<uint64_t> auth_refusals{0};         // /v1 requests refused: no, an unknown or an out-of-scope token
  std::atomic<uint64_t> connections_refused{0};  // requests answered 503 Busy: past --max-connections
  // The server (server.h): connections open and accepted, requests being served, and
  // connections closed by a timeout, by what they were doing then.
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> requests_active{0};
  std::atomic<uint64_t> timeouts_idle{0};    // keep-alive connections silent for --idle-timeout
  std::atomic<uint64_t> timeouts_header{0};  // a request's header not whole within --header-timeout
  std::atomic<uint64_t> timeouts_io{0};      // a body or an answer stalled for --io-timeout
  std::atomic<uint64_t> accept_failures{0};  // accept() failed (e.g. out of file descriptors)
  std::atomic<uint64_t> peer_busy{0};            // 503 Busy answers from peers (asked again)
  std::atomic<uint64_t> fan_in_redirects{0};     // askers this node sent to a holder
  std::atomic<uint64_t> fan_in_fetches{0};       // chunks this node got from a holder
  std::atomic<uint64_t> fan_in_fetch_bytes{0};
  std::atomic<uint64_t> fan_in_fallbacks{0};     // holders that failed this node (asked the owner again)
  std::atomic<uint64_t> replica_bytes{0};        // bytes of other nodes' writes copied here
  std::atomic<uint64_t> replica_whole{0};        // of those writes, of one chunk sent with its commit
  std::atomic<uint64_t> copies_recorded{0};      // copies recorded as pending writes here, a home of theirs
  std::atomic<uint64_t> replica_takeovers{0};    // copies uploaded here because their origin was gone
  std::atomic<uint64_t> copies_kept_cached{0};   // copies whose write was uploaded, kept as cached chunks
  std::atomic<uint64_t> handoffs_received{0};    // writes a draining node handed to this one

  // Latency per operation (shoal_operation_duration_seconds{op=...}):
  Histogram op_hit;          // a GET served from this node's disk, header to last byte
  Histogram op_miss;         // a GET that waited for a fetch (store or peer), header to last byte
  Histogram op_peer;         // a chunk fetched from another node
  Histogram op_write_ack;    // a PUT, header to its acknowledgement (on disk, copies made, journaled)
  Histogram op_upload_part;  // one part (or whole object) uploaded to the store
};

// One storage account's share of the uploads (ObjectUrl::AccountLabel: "az", "az@west", "s3").
struct AccountUploads {
  std::string account;
  double window = 0;             // parts allowed in flight now
  double min_window = 0;         // the smallest it has been
  int in_flight = 0;
  uint64_t throttles = 0;        // 429/503 answers to this account's upload requests
  uint64_t window_cuts = 0;
  uint64_t put_requests = 0;     // parts and whole objects sent (attempts)
  uint64_t put_bytes = 0;        // bytes that reached the store
  uint64_t uploads = 0;          // objects made durable
  uint64_t failures = 0;         // attempts that failed (retried)
  double rate = 0;               // bytes per second that reached the store over the last 10 s
};

// The shoal_account_* families, one series per account (label account="az@west").
void WriteAccountMetrics(std::ostream& out, const std::vector<AccountUploads>& accounts);

}  // namespace shoal::node
