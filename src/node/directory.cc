#include "node/directory.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "common/log.h"
#include "common/strings.h"
#include "net/node_errors.h"

namespace shoal::node {

namespace {
// How long a home remembers that a write became durable or was deleted, so that a late
// announcement of it (a copy's holder announcing again) does not bring it back, and what it
// became (ResolveVersion); at most kSettledMax of them (WriteDirectory), the oldest going
// first, so that a node taking writes fast keeps minutes of them in bounded memory.
constexpr auto kSettledKept = std::chrono::minutes(10);

// Whether `ids` names `id`.
bool Names(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// What readers get of pending write `w`: its local version.
ObjectInfo PendingInfo(const proto::Announcement& w) {
  return ObjectInfo{"", w.size, LocalVersion(w.id), static_cast<std::time_t>(w.modified),
                    std::make_shared<const ObjectMeta>(w.meta)};
}
}  // namespace

WriteDirectory::Announcement WriteDirectory::PendingOf(const engine::UploadRecord& r, std::vector<std::string> holders,
                                                       const std::string& from) {
  Announcement a;
  a.change = Announcement::Change::kPending;
  a.id = r.id;
  a.url = r.url;
  a.from = from;
  a.size = r.size;
  a.created_unix_ms = r.created_unix_ms;
  a.modified = r.created_unix_ms / 1000;
  a.holders = std::move(holders);
  a.meta = r.meta;
  return a;
}

std::vector<cluster::Peer> WriteDirectory::Homes(const std::string& url, bool live_only) {
  std::vector<cluster::Peer> out;
  auto v = cluster_->view();
  if (!v || v->placement().members().size() < 2) return out;
  // The route's first few members are enough (two live ones are wanted): ranking all of a
  // large cluster on every open would cost more than the request it saves.
  const auto ranked = static_cast<uint32_t>(std::min<size_t>(v->placement().members().size(), 4));
  for (const auto& p : v->RouteOf(url, 0, ranked).replicas) {
    if (live_only && p.member.id != options_.node_id && cluster_->PeerDown(p.member.id)) continue;
    out.push_back(p);
    if (out.size() == 2) break;
  }
  return out;
}

bool WriteDirectory::Tell(const cluster::Peer& home, const Announcement& a) {
  if (home.member.id == options_.node_id) {
    Record(a);
    return true;
  }
  metrics_->announcements_sent++;
  Status st = cluster_->Call(home, "POST", proto::Target(proto::kReplicaAnnouncePath, {{proto::kIdParam, a.id}}),
                             proto::AnnouncementBody(a), nullptr, std::chrono::seconds(5));
  if (st.code() == Code::kUnavailable) return false;
  if (!st.ok()) {
    Logf(LogLevel::kWarn, "telling node %s, the home of %s, of write %s: %s", home.member.id.c_str(), a.url.c_str(),
         a.id.c_str(), st.message().c_str());
  }
  return true;
}

std::vector<std::string> WriteDirectory::TellAll(const std::vector<cluster::Peer>& homes, const Announcement& a,
                                                 const std::vector<std::string>& told) {
  std::vector<std::string> now;
  for (const auto& home : homes) {
    const bool before = Names(told, home.member.id);
    if (before || Tell(home, a)) now.push_back(home.member.id);
  }
  return now;
}

void WriteDirectory::Announce(const Announcement& a, const std::vector<std::string>& already) {
  const bool pending = a.change == Announcement::Change::kPending;
  if (!pending) Settle(a.id);
  auto homes = Homes(a.url);
  std::vector<std::string> told;
  if (homes.empty()) {
    Record(a);  // alone (or no view yet): this node is the home; Refresh tells a later one
  } else if (told = TellAll(homes, a, already); told.empty()) {
    Logf(LogLevel::kWarn, "no home of %s could be told of write %s: it is read through node %s until it is uploaded",
         a.url.c_str(), a.id.c_str(), a.holders.empty() ? a.from.c_str() : a.holders[0].c_str());
  }
  // A settled write not told to one of its homes (down, or skipped as down) is told when that
  // home is live again: else it would keep the write as pending.
  const bool every_home = pending || homes.empty() || EveryHomeTold(a.url, told);
  std::lock_guard<std::mutex> lock(mu_);
  if (pending) {
    mine_[a.id] = Kept{a, told};
  } else if (!every_home) {
    KeepSettled(a, told);
  }
}

bool WriteDirectory::EveryHomeTold(const std::string& url, const std::vector<std::string>& told) {
  for (const auto& home : Homes(url, false)) {
    if (home.member.id != options_.node_id && !Names(told, home.member.id)) {
      return false;
    }
  }
  return true;
}

void WriteDirectory::KeepSettled(const Announcement& a, const std::vector<std::string>& told) {
  if (mine_.insert_or_assign(a.id, Kept{a, told, std::chrono::steady_clock::now() + kSettledTellFor}).second) {
    settled_kept_.push_back(a.id);
  }
  // Bounded: the oldest go (an id whose announcement was told to all since is a stale item).
  while (settled_kept_.size() > kSettledTellMax) {
    auto it = mine_.find(settled_kept_.front());
    if (it != mine_.end() && it->second.write.change != Announcement::Change::kPending) mine_.erase(it);
    settled_kept_.pop_front();
  }
}

void WriteDirectory::Remember(const Announcement& a, const std::vector<std::string>& told) {
  std::lock_guard<std::mutex> lock(mu_);
  mine_.emplace(a.id, Kept{a, told});
}

void WriteDirectory::Settle(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  mine_.erase(id);
}

void WriteDirectory::CatchUp() {
  std::lock_guard<std::mutex> lock(catch_up_mu_);
  if (caught_up_) return;
  auto v = cluster_->view();
  if (!v) return;  // no membership yet: nothing to ask, nothing homed here
  const auto now = std::chrono::steady_clock::now();
  if (catch_up_began_ == std::chrono::steady_clock::time_point{}) catch_up_began_ = now;
  size_t asked = 0, waiting = 0;
  std::string last_error;
  for (const auto& peer : v->peers()) {
    if (peer.member.id == options_.node_id) continue;
    if (cluster_->PeerDown(peer.member.id)) continue;  // its writes' copies are held by members asked here
    asked++;
    // Not Call: a member not started yet is not to be skipped as down for it (all the members
    // of a new cluster start within seconds of each other).
    http::Request req = proto::NodeRequest(
        "POST", peer.endpoint, proto::Target(proto::kReplicaRetellPath, {{proto::kIdParam, options_.node_id}}),
        options_.token);
    req.timeout = std::chrono::seconds(10);
    http::Response resp;
    Status st = cluster_->Send(req, &resp);
    if (st.ok() && resp.status / 100 == 2) continue;
    // Nothing listens there: not running, it keeps nothing in memory, and announces what its
    // journal keeps when it starts (its first Refresh tells every home).
    if (!st.ok() && st.detail() == Detail::kConnectFailed) continue;
    if (!st.ok()) {
      cluster_->PeerFailed(peer.member.id, st);  // a reset or a timeout: counted, as any request's
      if (cluster_->PeerDown(peer.member.id)) continue;  // its writes' copies are held by members asked here
    } else {
      st = http::StatusFromResponse(resp, "POST " + std::string(proto::kReplicaRetellPath) + " at node " + peer.member.id,
                                   http::NodeErrors());
    }
    waiting++;
    last_error = peer.member.id + ": " + st.message();
  }
  if (waiting == 0) {
    caught_up_ = true;
    if (asked > 0) Logf(LogLevel::kInfo, "caught up: every other member (%zu) announced again the writes homed here", asked);
  } else if (now - catch_up_began_ > kCatchUpMax) {
    caught_up_ = true;
    Logf(LogLevel::kWarn, "%zu members did not announce again the writes homed here within %llds (the last: %s); "
         "answering from what this node was told", waiting, static_cast<long long>(kCatchUpMax.count()),
         last_error.c_str());
  }
}

bool WriteDirectory::Retell(const std::string& member_id) {
  cluster_->PeerHeard(member_id);  // it is up: a live home again
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, k] : mine_) std::erase(k.told, member_id);
  }
  // Not Refresh: a member catching up itself must not ask back from here.
  const std::vector<std::string> untold = TellKept();
  return !Names(untold, member_id);
}

void WriteDirectory::Refresh() {
  if (!caught_up_) CatchUp();
  TellKept();
}

std::vector<std::string> WriteDirectory::TellKept() {
  std::vector<std::string> untold;
  std::vector<Kept> kept;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, k] : mine_) kept.push_back(k);
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& k : kept) {
    const bool settled = k.write.change != Announcement::Change::kPending;
    auto homes = Homes(k.write.url);
    const bool all_told = std::all_of(homes.begin(), homes.end(), [&](const cluster::Peer& h) {
      return Names(k.told, h.member.id);
    });
    if (all_told && !settled) continue;  // (none, too, when there are no homes)
    std::vector<std::string> told = k.told;
    if (!all_told) {
      told = TellAll(homes, k.write, k.told);
      if (settled) {  // one told before stays told (a pending write's are the homes it has now)
        for (const auto& id : k.told) {
          if (!Names(told, id)) told.push_back(id);
        }
      }
      for (const auto& h : homes) {
        if (!Names(told, h.member.id)) untold.push_back(h.member.id);
      }
    }
    // A settled write is kept until both of its homes know (a home down meanwhile is told
    // once it is live again), or for kSettledTellFor.
    const bool done = settled && (now >= k.until || EveryHomeTold(k.write.url, told));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mine_.find(k.write.id);
    if (it == mine_.end() || it->second.write.change != k.write.change) continue;  // replaced meanwhile
    if (done) {
      mine_.erase(it);
    } else {
      it->second.told = told;
    }
  }
  return untold;
}

bool WriteDirectory::RecordCopy(const engine::UploadRecord& r) {
  bool home = false;
  for (const auto& p : Homes(r.url)) home = home || p.member.id == options_.node_id;
  if (!home) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(r.url)) return false;  // a write of it known here: the origin's announcement decides
  Entry& e = entries_[r.url];
  e.pending = true;
  e.write = std::make_unique<Announcement>(PendingOf(r, {r.origin, options_.node_id}, r.origin));
  e.from_copy = true;
  return true;
}

void WriteDirectory::RetractCopy(const std::string& id, const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(url);
  if (it != entries_.end() && it->second.from_copy && it->second.pending && it->second.write->id == id) {
    entries_.erase(it);
  }
}

void WriteDirectory::Record(const Announcement& a) {
  const std::string version = LocalVersion(a.id);
  bool learned_store = false, forget = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[a.url];
    e.from_copy = false;  // an announcement came: the entry is the cluster's now
    switch (a.change) {
      case Announcement::Change::kPending:
        // The newest write wins; one already durable or deleted never comes back. The same
        // write told by another of its holders adds that holder.
        if (e.pending && e.write->id == a.id) {
          for (const auto& h : a.holders) {
            if (!Names(e.write->holders, h)) {
              e.write->holders.push_back(h);
            }
          }
          break;
        }
        if (e.pending && e.write->created_unix_ms > a.created_unix_ms) break;
        if (!e.pending && a.created_unix_ms <= e.floor_ms) break;
        e.pending = true;
        e.checked = false;
        e.write = std::make_unique<Announcement>(a);
        break;
      case Announcement::Change::kDurable:
      case Announcement::Change::kGone:
        e.floor_ms = std::max(e.floor_ms, a.created_unix_ms);
        if (!e.pending) {
          learned_store = a.change == Announcement::Change::kDurable;
          forget = !learned_store;
        } else if (LocalVersion(e.write->id) == version) {
          // A deletion from a node that no longer holds it (it handed the write off) is not
          // this write's end: the node it went to announced it since.
          if (a.change == Announcement::Change::kGone && !e.write->holders.empty() && e.write->holders[0] != a.from) break;
          e.pending = false;
          learned_store = a.change == Announcement::Change::kDurable;
          forget = !learned_store;
        }
        if (learned_store) {
          e.durable_version = version;
          e.durable_etag = a.stored_etag;
        }
        if (!e.pending) Settled(a.url, e);
        break;
    }
    Prune();  // after: at most kSettledMax settled entries stay (`e` may go with them)
  }
  if (learned_store) {
    // Newer than a write of it this node took itself and has not uploaded yet, if any: the
    // entry took this one over it (its stamp is later), so readers here, and every member
    // asking this home, get it rather than that older write.
    objects_->Fresh(a.url,
                    ObjectInfo{"", a.size, a.stored_etag, static_cast<std::time_t>(a.modified),
                               std::make_shared<const ObjectMeta>(a.meta)},
                    static_cast<int64_t>(a.created_unix_ms));
  } else if (forget) {
    objects_->Invalidate(a.url);
  }
}

void WriteDirectory::Settled(const std::string& url, Entry& e) {
  e.pending = false;
  e.write.reset();  // a settled entry keeps its floor and what it became, not the write
  e.settled = std::chrono::steady_clock::now();
  settled_order_.emplace_back(url, e.settled);
}

void WriteDirectory::Prune() {
  auto now = std::chrono::steady_clock::now();
  while (!settled_order_.empty()) {
    const auto& [url, when] = settled_order_.front();
    if (now - when < kSettledKept && settled_order_.size() <= kSettledMax) break;
    // Only the entry's latest settling takes it away (an earlier one of a url settled again
    // since is a stale item here), and never once it is pending again.
    auto it = entries_.find(url);
    if (it != entries_.end() && !it->second.pending && it->second.settled == when) entries_.erase(it);
    settled_order_.pop_front();
  }
}

size_t WriteDirectory::homed() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [url, e] : entries_) n += e.pending;
  return n;
}

size_t WriteDirectory::entries() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void WriteDirectory::Learn(const std::string& url, const std::string& version, std::vector<std::string> holders) {
  auto [it, added] = learned_.insert_or_assign(url, Learned{version, std::move(holders)});
  if (!added) return;
  learned_order_.push_back(url);
  if (learned_order_.size() > kLearnedKept) {
    learned_.erase(learned_order_.front());
    learned_order_.pop_front();
  }
}

Result<ObjectInfo> WriteDirectory::AskHome(const cluster::Peer& home, const std::string& url, bool first_chunk,
                                           bool pending_only) {
  metrics_->home_lookups++;
  http::Request req = proto::NodeRequest("HEAD", home.endpoint, proto::Target(proto::kObjectPath, {{proto::kUrlParam, url}}),
                                         options_.token);
  req.headers.push_back({std::string(proto::kReadHeader),
                         std::string(pending_only ? proto::kReadPending : proto::kReadForwarded)});
  if (first_chunk) req.headers.push_back({std::string(proto::kFirstChunkHeader), std::string(proto::kFlagOn)});
  req.headers.push_back({std::string(proto::kFromHeader), options_.node_id});
  req.timeout = std::chrono::seconds(5);
  http::Response resp;
  Status st = cluster_->Send(req, &resp);
  if (!st.ok()) {
    cluster_->PeerFailed(home.member.id, st);
    return Status::Unavailable("node " + home.member.id + ": " + st.message());
  }
  cluster_->PeerAnswered(home.member.id);
  if (resp.status == 404) {
    if (pending_only) return Status::NotFound("no write of " + url + " is pending at node " + home.member.id);
    return Status::NotFound(url + " is neither in the object store nor written through the cluster (asked node " +
                            home.member.id + ")");
  }
  if (resp.status != 200) {
    return Status::Unavailable("node " + home.member.id + " answered " + std::to_string(resp.status));
  }
  auto size = resp.NumberHeader(proto::kSizeHeader);
  if (!size.ok()) return size.status().WithContext("node " + home.member.id + " answering for " + url);
  ObjectInfo info{"", *size, Unquote(resp.Header("etag")),
                  static_cast<std::time_t>(resp.NumberHeader(proto::kModifiedHeader).value_or(0))};
  auto meta = proto::MetaOfAnswer(resp);
  if (meta.ok()) info.meta = std::make_shared<const ObjectMeta>(std::move(meta).value());
  if (IsLocalVersion(info.etag)) {
    std::vector<std::string> holders;
    std::istringstream list(resp.Header(proto::kHoldersHeader));
    for (std::string id; std::getline(list, id, ',');) {
      if (!id.empty()) holders.push_back(id);
    }
    std::lock_guard<std::mutex> lock(mu_);
    Learn(url, info.etag, std::move(holders));
  }
  return info;
}

Result<ObjectInfo> WriteDirectory::Stat(const std::string& url, bool forwarded,
                                        const ObjectCatalog::FirstChunk* first) {
  const bool catching_up = !caught_up_;
  if (forwarded && catching_up) {
    // Asked as the home before every member told this node again what it keeps: a write
    // pending here may be unknown yet, and the other home was told with it.
    for (const auto& home : Homes(url)) {
      if (home.member.id == options_.node_id) continue;
      Result<ObjectInfo> got = AskHome(home, url, false, true);
      if (got.ok()) return got;
    }
  } else if (!forwarded) {
    bool home_here = false;
    for (const auto& home : Homes(url)) {
      // This node is the home: its entries answer; but a node that started has not yet been
      // told again of the writes homed here: the next home was told with it.
      if (home.member.id == options_.node_id && !catching_up) break;
      if (home.member.id == options_.node_id) {
        home_here = true;
        continue;
      }
      if (home_here) {
        // Only a write pending there is taken from the next home. Otherwise this node answers
        // as the home it is: its question to the store (with the first chunk, whose owner
        // it is but for failures) is the one its askers share, so that chunk is fetched once.
        Result<ObjectInfo> got = AskHome(home, url, false, true);
        if (got.ok()) return got;
        break;
      }
      Result<ObjectInfo> got = AskHome(home, url, first != nullptr);
      if (got.ok()) return got;
      if (got.status().code() == Code::kNotFound) {
        // Not announced there: a write of this node's own not yet announced (it restarted
        // before its view came), or nothing at all.
        if (objects_->IsLocal(url)) break;
        return got;
      }
      if (got.status().code() != Code::kUnavailable) break;
    }
  }
  std::optional<Announcement> unchecked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(url);
    if (it != entries_.end() && it->second.pending) {
      const Announcement& w = *it->second.write;
      if (it->second.checked || w.created_unix_ms >= started_unix_ms_) return PendingInfo(w);
      unchecked = w;
    }
  }
  if (unchecked) return CheckPending(*unchecked, first);
  return objects_->Stat(url, first);
}

Result<WriteDirectory::HomeAnswer> WriteDirectory::AnswerAsHome(const std::string& url,
                                                                const ObjectCatalog::FirstChunk* first) {
  Result<ObjectInfo> info = Stat(url, true, first);
  if (!info.ok()) return info.status();
  HomeAnswer out{std::move(info).value(), {}};
  // As this Stat left them (never asking again: another node waits on this answer; a write
  // settled meanwhile has none, and its readers are sent to what it became).
  if (IsLocalVersion(out.info.etag)) out.holders = HoldersKnown(url, out.info.etag);
  return out;
}

Result<WriteDirectory::HomeAnswer> WriteDirectory::PendingHere(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(url);
  if (it == entries_.end() || !it->second.pending) {
    return Status::NotFound("no write of " + url + " is pending at node " + options_.node_id);
  }
  return HomeAnswer{PendingInfo(*it->second.write), it->second.write->holders};
}

Result<ObjectInfo> WriteDirectory::CheckPending(const Announcement& w, const ObjectCatalog::FirstChunk* first) {
  Result<ObjectInfo> newer = objects_->StoreNewer(w.url, w.created_unix_ms);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(w.url);
    if (it != entries_.end() && it->second.pending) {
      Entry& e = it->second;
      if (e.write->id != w.id) return PendingInfo(*e.write);  // a newer write was announced meanwhile
      if (!newer.ok()) {
        if (newer.status().code() == Code::kNotFound) e.checked = true;  // else asked again next time
        return PendingInfo(w);
      }
      // Replaced in the store: this write, and any older, is no longer what readers get.
      Logf(LogLevel::kInfo, "%s: the store holds a newer write than %s, pending since before this node started",
           w.url.c_str(), w.id.c_str());
      e.floor_ms = std::max(e.floor_ms, w.created_unix_ms);
      Settled(w.url, e);
      Prune();
      return newer;
    }
  }
  // Settled meanwhile.
  return newer.ok() ? newer : objects_->Stat(w.url, first);
}

Result<std::string> WriteDirectory::ResolveHere(const std::string& url, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(url);
  if (it != entries_.end()) {
    const Entry& e = it->second;
    if (e.pending && LocalVersion(e.write->id) == version) {
      return Status::Unavailable(url + " as " + version + " is not uploaded yet");
    }
    if (e.durable_version == version) return e.durable_etag;
  }
  return Status::NotFound(url + " as " + version + " is not a write this node knows");
}

Result<std::string> WriteDirectory::ResolveVersion(const std::string& url, const std::string& version, bool forwarded) {
  if (!IsLocalVersion(version)) return version;
  if (!forwarded) {
    const auto homes = Homes(url);
    bool here = homes.empty();  // alone: this node is every object's home
    for (const auto& home : homes) {
      if (home.member.id == options_.node_id) {
        here = true;
        break;
      }
      std::string body;
      Status st = cluster_->Call(home, "GET",
                                 proto::Target(proto::kVersionPath, {{proto::kUrlParam, url},
                                                                     {proto::kVersionParam, version},
                                                                     {proto::kForwardedParam, proto::kFlagOn}}),
                                 {}, &body, std::chrono::seconds(5));
      if (st.code() == Code::kUnavailable) continue;  // unreachable: the next home
      if (!st.ok()) return st;
      return proto::ParseVersionAnswer(body, url, version);
    }
    if (!here) return Status::Unavailable("no home of " + url + " can be asked about " + version);
  }
  Result<std::string> known = ResolveHere(url, version);
  if (known.ok()) return known;
  const std::string id = version.substr(proto::kLocalVersionPrefix.size());
  if (known.status().code() == Code::kUnavailable) return AskStoreOfPending(url, id, known.status());
  if (known.status().code() != Code::kNotFound) return known;
  // Not known here (this node restarted since, or the entry settled long ago): the store's
  // write stamp says whether what it holds is that write.
  Result<ObjectInfo> stored = objects_->StoredAs(url, id);
  if (stored.ok()) return stored->etag;
  return known;
}

Result<std::string> WriteDirectory::AskStoreOfPending(const std::string& url, const std::string& id, Status pending) {
  Announcement durable;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(url);
    if (it == entries_.end() || !it->second.pending || it->second.write->id != id) return pending;
    const auto now = std::chrono::steady_clock::now();
    if (now - it->second.store_asked < kStoreAskEvery) return pending;
    it->second.store_asked = now;
    durable = *it->second.write;
  }
  Result<ObjectInfo> stored = objects_->StoredAs(url, id);
  if (!stored.ok()) return pending;  // not uploaded yet (or the store cannot say now)
  Logf(LogLevel::kInfo, "%s: write %s, pending here, is in the store as %s (its announcement did not reach this node)",
       url.c_str(), id.c_str(), stored->etag.c_str());
  durable.change = Announcement::Change::kDurable;
  durable.size = stored->size;
  durable.stored_etag = stored->etag;
  durable.modified = stored->last_modified;
  Record(durable);
  return stored->etag;
}

std::vector<std::string> WriteDirectory::HoldersKnown(const std::string& url, const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(url);
  if (it != entries_.end() && it->second.pending && LocalVersion(it->second.write->id) == version) {
    return it->second.write->holders;
  }
  auto learned = learned_.find(url);
  if (learned != learned_.end() && learned->second.version == version) return learned->second.holders;
  return {};
}

std::vector<std::string> WriteDirectory::HoldersOf(const std::string& url, const std::string& version) {
  std::vector<std::string> holders = HoldersKnown(url, version);
  if (!holders.empty()) return holders;
  (void)Stat(url);  // not known here: the home knows
  return HoldersKnown(url, version);
}

}  // namespace shoal::node
