#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/strings.h"
#include "engine/journal.h"
#include "net/node_protocol.h"
#include "node/metrics.h"
#include "node/objects.h"
#include "node/options.h"
#include "node/routing.h"

namespace shoal::node {

// Read-your-writes across the cluster: which writes acknowledged by any member are not yet in
// the object store, and which nodes hold their chunks, so that every member serves them.
//
// Each object has a home: the first live member of its first chunk's route (so a miss on an
// ordinary object asks one node, never the whole cluster).
//  - A node that acknowledges a write announces it to both homes (the first two live members
//    of the route) before the acknowledgement (Announce, kPending), naming the holders of its
//    chunks: itself, then its copies' holders. It announces again when the upload is durable
//    (kDurable, with the store's ETag) and when the write is deleted (kGone). A home that
//    holds the write's one copy records it as pending when the copy is committed (RecordCopy)
//    and is not announced to again; the copy's drop retracts it if the write then failed
//    (RetractCopy). The second home
//    is the first one's stand-in: when the first dies, askers skip it for the second, which
//    already knows (no window in which the write is unknown).
//  - A reader's node asks the home for the object's metadata (Stat: one HEAD to one node per
//    open; none when it is the home). The home answers a pending write with its holders, else
//    from its own catalog (cached metadata or a HEAD to the store), so a write is visible
//    through every member from its acknowledgement on, and through its upload.
//  - Chunks of a pending write come from its holders (HoldersOf), never from the store; the
//    holder of a copy serves them when the origin is dead.
//  - The home's entries live in its memory only: when an object's live homes include a node
//    not told (a membership change, or a home is down), the node that took the write
//    announces it there, and so do the holders of its copies (Remember), from Refresh. So is
//    a write's end (kDurable, kGone) told to a home that was down when it came, once it is
//    live again; a home that missed it anyway (that node restarted meanwhile) asks the store
//    when a reader finds the write's holders no longer have it (ResolveVersion).
//  - A node that (re)started knows none: from its first Refresh it asks every other member to
//    announce again what it keeps (CatchUp, proto::kReplicaRetellPath, answered once told),
//    and until all have (or are down) its own readers ask each object's next home too, which
//    was told with it (a restarted home would otherwise answer the store's older version).
//    A pending write taken before it started is compared with the store before it answers
//    it (CheckPending): a newer write may have been uploaded while it was away.
// A home that cannot be reached is skipped for the next member of the route, by announcers and
// askers alike; a reader whose home is unreachable falls back to its own catalog.
//
// Thread-safety: every method may be called from any thread. mu_ guards the entries, what was
// learned from homes and what this node announced; no other node is called under it, and
// the catalog is called only outside it.
class WriteDirectory {
 public:
  using Announcement = proto::Announcement;
  WriteDirectory(const NodeOptions& options, NodeMetrics* metrics, ObjectCatalog* objects, ClusterRouting* cluster)
      : options_(options), metrics_(metrics), objects_(objects), cluster_(cluster) {}

  // The announcement of write `r` (pending, its chunks on `holders`).
  static Announcement PendingOf(const engine::UploadRecord& r, std::vector<std::string> holders, const std::string& from);

  // Tells the homes of a.url (this node itself, when it is one). A kPending announcement is kept and
  // announced again after a membership change until a kDurable or kGone one for the same id
  // (or Settle) ends it. A kDurable or kGone one that did not reach both of the route's first
  // two members (one was down, or skipped as down) is kept too, and told to each when it is
  // live again, so that a home does not keep the write as pending (sending readers to holders
  // that let it go): for kSettledTellFor at most, kSettledTellMax of them at most (the oldest
  // go first). Never fails: a home that cannot be told learns it from Refresh, and
  // meanwhile the write is read through the node that took it. `told`: homes that recorded
  // this very announcement already (a copy's holder that is a home records the pending write
  // with the copy: RecordCopy), not sent again.
  void Announce(const Announcement& a, const std::vector<std::string>& told = {});
  // Keeps `a` (a copy held here) to announce after a membership change, without telling now;
  // `told`: nodes that know it already (the write's origin, which announced it), not told
  // until they restart (Retell).
  void Remember(const Announcement& a, const std::vector<std::string>& told = {});
  // Write `id` needs no more announcing from here (handed off, or its copy dropped).
  void Settle(const std::string& id);
  // Announces each write kept to those of its live homes not yet told (call it periodically).
  // Until caught up (a node that started knows no write homed at it), first asks the other
  // members to announce again (CatchUp).
  void Refresh();
  // Member `member_id` (re)started: announces to it again each kept write of which it is a
  // home. True when every such write reached it.
  bool Retell(const std::string& member_id);

  // An announcement reached this node as the object's home.
  void Record(const Announcement& a);
  // A copy of write `r` (one copy: its holders are its origin and this node) was committed
  // here: when this node is one of the object's homes and knows nothing of the object (no
  // entry: no write of it pending or lately settled), it records the write as pending, as
  // the origin's announcement would (so the origin need not send it: one round trip less
  // before its acknowledgement). True when recorded. Visible to readers from then on, a
  // moment before the origin's acknowledgement (as a copy is taken over if its origin dies
  // then). Otherwise the origin announces it as before.
  bool RecordCopy(const engine::UploadRecord& r);
  // The copy of write `id` of `url` held here goes: an entry RecordCopy made for exactly that
  // write, and no announcement changed since, is taken away whole, as if never recorded (no
  // floor left, nothing it replaced: it replaced nothing). After the origin's announcements
  // (kDurable, kGone, or its pending one) it is not such an entry, and this does nothing; it
  // matters when the write failed after its copy was committed (never acknowledged), or when
  // this node counted itself a home and the origin's view did not (it is told nothing more).
  void RetractCopy(const std::string& id, const std::string& url);

  // The size, ETag and metadata readers through this node get for `url`: a pending write
  // (its local version), or what the store has. `forwarded`: asked by another node of which
  // this is the home, so no further hop (but while catching up, see below). `first`: the asker
  // reads the object's first chunk next (ObjectCatalog::FirstChunk); a home asked by another
  // node is told so (proto::kFirstChunkHeader), fetches that chunk with the metadata when it
  // must ask the store, and keeps it (it is, but for failures, the chunk's owner).
  // A home still catching up answers other members as it answers its own readers: it asks the
  // next home only whether a write is pending there (proto::kReadPending, answered from that
  // node's memory on its event loop, so two homes catching up at once never wait on each
  // other's threads), and otherwise answers itself.
  Result<ObjectInfo> Stat(const std::string& url, bool forwarded = false,
                          const ObjectCatalog::FirstChunk* first = nullptr);
  // What a home answers another node: the object's metadata and, for a write pending in the
  // cluster, the members holding its chunks (the uploader first).
  struct HomeAnswer {
    ObjectInfo info;
    std::vector<std::string> holders;
  };
  // Stat(url, forwarded = true, first) with the holders of a pending write.
  Result<HomeAnswer> AnswerAsHome(const std::string& url, const ObjectCatalog::FirstChunk* first);
  // The write of `url` pending at this node as its home, from memory only (never the store,
  // never another node: it may run on the event loop); kNotFound when none is.
  Result<HomeAnswer> PendingHere(const std::string& url);
  // The members holding the chunks of `url`'s pending write `version`, the uploader first;
  // empty when no such write is known (asks the home when it is not known here).
  std::vector<std::string> HoldersOf(const std::string& url, const std::string& version);

  // What write `version` (a local version) of `url` became, as its home knows: the store's
  // ETag once uploaded (remembered as long as a settled entry: 10 minutes, or until
  // kSettledMax writes settled since; past that, or when the home restarted since, the home
  // asks the store, whose write stamp names the write it holds); kUnavailable while it is
  // pending (the home asks the store then too, AskStoreOfPending, in case it missed the
  // upload's announcement), or no home can be asked; kNotFound when the home does not know it and the store
  // holds another write (one replaced it, or it was deleted) or cannot be asked.
  // `forwarded`: asked by another node of which this is the home, so no further hop.
  Result<std::string> ResolveVersion(const std::string& url, const std::string& version, bool forwarded = false);

  // Pending writes recorded here as their home (for tests and metrics).
  size_t homed();
  // Every write recorded here as its home: pending, and settled ones kept (at most
  // kSettledMax of those, for 10 minutes at most).
  size_t entries();
  static constexpr size_t kSettledMax = 65536;

 private:
  struct Entry {
    bool pending = false;
    // The newest pending write, when pending; none once settled (an entry kept then holds a
    // floor and what the write became: a fraction of the memory).
    std::unique_ptr<Announcement> write;
    int64_t floor_ms = 0;     // writes created at or before this are durable or deleted
    // The last write of it known to have become durable here: its local version and the
    // store's ETag (ResolveVersion).
    std::string durable_version, durable_etag;
    std::chrono::steady_clock::time_point settled{};  // when it stopped being pending
    // The pending write, taken before this node started, was compared with the store (Stat).
    bool checked = false;
    // When the store was last asked whether the pending write is uploaded (ResolveVersion).
    std::chrono::steady_clock::time_point store_asked{};
    // Made by RecordCopy, where there was no entry, and changed by no announcement since:
    // RetractCopy takes it away whole.
    bool from_copy = false;
  };
  struct Learned {
    std::string version;
    std::vector<std::string> holders;
  };
  // The members to tell or ask about `url`, in order: its route's first two live members
  // (this node among them, if it is one); empty outside a cluster. `live_only` false: its
  // route's first two members, whether down or not.
  std::vector<cluster::Peer> Homes(const std::string& url, bool live_only = true);
  // Sends `a` to `home`; false if it cannot be reached.
  bool Tell(const cluster::Peer& home, const Announcement& a);
  // HEAD of `url` at `home`, forwarded (`first_chunk`: saying the first chunk is read next), or
  // (`pending_only`) asking only for a write pending there (PendingHere). kUnavailable when it
  // cannot be reached or answers something else than the object or its absence.
  Result<ObjectInfo> AskHome(const cluster::Peer& home, const std::string& url, bool first_chunk,
                             bool pending_only = false);
  // Stat of pending write `w` of a name homed here, taken before this node started: a newer
  // write may have been uploaded meanwhile, and this node, whose entries are in memory only,
  // never heard of it (the store's write stamp says; ObjectCatalog::StoreNewer). The newer
  // write if so (and the entry settles), else `w` (once the store answered, not asked again).
  Result<ObjectInfo> CheckPending(const Announcement& w, const ObjectCatalog::FirstChunk* first);
  // HoldersOf from what this node knows (its entries, and what it learned from homes), never
  // asking; empty when it knows none.
  std::vector<std::string> HoldersKnown(const std::string& url, const std::string& version);
  // ResolveVersion's answer from this node's own entries.
  Result<std::string> ResolveHere(const std::string& url, const std::string& version);
  // Write `id` of `url` is pending here, as its home, and a node asks what it became (its
  // reader found none of its holders has its chunks, or a commit marker names it). This node
  // may have missed the announcement that it is durable: that node could not reach it then,
  // and restarted since (it keeps what it announces in memory only). The store's write stamp
  // says (ObjectCatalog::StoredAs; at most once per kStoreAskEvery for one write): its ETag,
  // and the entry settles, if the store holds that write; `pending` otherwise.
  Result<std::string> AskStoreOfPending(const std::string& url, const std::string& id, Status pending);
  static constexpr std::chrono::seconds kStoreAskEvery{1};
  void Learn(const std::string& url, const std::string& version, std::vector<std::string> holders);  // mu_ held
  // Announces each write kept to those of its live homes not yet told; the ids of live homes
  // that could not be told (one per write).
  std::vector<std::string> TellKept();
  // Asks each other member, not down, to Retell this node; caught up once all have. Gives up
  // waiting (and says so) after kCatchUpMax.
  void CatchUp();
  static constexpr std::chrono::seconds kCatchUpMax{30};
  std::atomic<bool> caught_up_{false};
  const int64_t started_unix_ms_ = UnixMillis();  // writes taken before may be unknown here
  std::mutex catch_up_mu_;  // held through CatchUp (which calls other nodes; mu_ is not held)
  std::chrono::steady_clock::time_point catch_up_began_{};  // guarded by catch_up_mu_
  void Settled(const std::string& url, Entry& e);  // mu_ held: `e` is no longer pending (from now)
  void Prune();  // mu_ held: entries settled long enough ago go

  const NodeOptions& options_;
  NodeMetrics* metrics_;
  ObjectCatalog* objects_;
  ClusterRouting* cluster_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // url -> as its home; guarded by mu_
  // (url, when) of each settling, oldest first: Prune drops an entry at its latest one.
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> settled_order_;
  static constexpr size_t kLearnedKept = 4096;
  std::unordered_map<std::string, Learned> learned_;  // url -> from its home; the newest kept
  std::deque<std::string> learned_order_;
  struct Kept {
    Announcement write;
    std::vector<std::string> told;  // the homes last told of it (none when none could be)
    // A kDurable or kGone one: kept until every member of Homes(url, false) is told, or until this.
    std::chrono::steady_clock::time_point until{};
  };
  std::unordered_map<std::string, Kept> mine_;  // id -> kept to announce again
  static constexpr std::chrono::minutes kSettledTellFor{10};
  static constexpr size_t kSettledTellMax = 4096;
  // Ids of the kDurable and kGone ones kept in mine_, oldest first (one told to all since, and
  // gone from mine_, stays here until it is the oldest).
  std::deque<std::string> settled_kept_;
  // Keeps settled announcement `a`, told to `told`, to tell its other homes (mu_ held).
  void KeepSettled(const Announcement& a, const std::vector<std::string>& told);
  // Whether every member of Homes(url, false) is in `told`.
  bool EveryHomeTold(const std::string& url, const std::vector<std::string>& told);
  // Tells each of `homes` that is not in `told` and can be reached; the ids of `homes` that
  // now know (told before, or now).
  std::vector<std::string> TellAll(const std::vector<cluster::Peer>& homes, const Announcement& a,
                                   const std::vector<std::string>& told);
};

// Whether `etag` is a write's local version (LocalVersion), never an ETag of the store.
inline bool IsLocalVersion(std::string_view etag) { return proto::IsLocalVersion(etag); }

}  // namespace shoal::node
