#include "cluster/etcd.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/byte_sink.h"
#include "common/log.h"
#include "common/strings.h"
#include "net/http_client.h"
#include "net/retry.h"

namespace shoal::cluster {
namespace {

using json = nlohmann::json;
using Members = std::map<std::string, Peer>;  // by id, so listing it is sorted
using Callback = std::function<void(const MembershipEvent&)>;
// Handles one watch response's "result"; sets *stop to end the stream (then Ok).
using ResultHandler = std::function<Status(const json& result, bool* stop)>;

// One unary call to one endpoint: etcd answers in milliseconds, or is not there.
constexpr std::chrono::milliseconds kCallTimeout{5000};
// Current()'s replay of the history since the newest member key.
constexpr std::chrono::milliseconds kReplayTimeout{30000};
// The back-off of a watch that failed or could not resync (net::Backoff: full jitter).
constexpr std::chrono::milliseconds kMinBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

// An int64 field of etcd's JSON (proto3 sends them as strings: "42"); 0 when absent or not a
// whole number.
uint64_t U64(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_string()) return ParseU64(it->get_ref<const std::string&>()).value_or(0);
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return static_cast<uint64_t>(it->get<int64_t>());
  return 0;
}

std::string Decoded(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return "";
  auto r = Base64Decode(it->get_ref<const std::string&>());
  return r.ok() ? *r : "";
}

std::string Joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// A node id as a key suffix: printable, no '/', not empty.
bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 200) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c != '/' && c != 0x7f; });
}

std::string MemberValue(const Peer& p) {
  return json{{"endpoint", p.endpoint}, {"weight", p.member.weight}, {"domain", p.member.domain}}
      .dump();
}

// The member a key's value describes; nullopt when it is not a valid one.
std::optional<Peer> ParseMember(const std::string& id, const std::string& value) {
  json j = json::parse(value, nullptr, false);
  if (!j.is_object() || !ValidId(id)) return std::nullopt;
  Peer p;
  p.member.id = id;
  auto endpoint = j.find("endpoint");
  if (endpoint == j.end() || !endpoint->is_string() || endpoint->get<std::string>().empty()) {
    return std::nullopt;
  }
  p.endpoint = endpoint->get<std::string>();
  auto weight = j.find("weight");
  if (weight != j.end()) {
    if (!weight->is_number_unsigned() || *weight == 0 || *weight > 1000000) return std::nullopt;
    p.member.weight = weight->get<uint32_t>();
  }
  auto domain = j.find("domain");
  p.member.domain = domain != j.end() && domain->is_string() && !domain->get<std::string>().empty()
                        ? domain->get<std::string>()
                        : id;
  return p;
}

std::vector<Peer> Sorted(const Members& members) {
  std::vector<Peer> out;
  out.reserve(members.size());
  for (const auto& [id, peer] : members) out.push_back(peer);
  return out;
}

// Why etcd refused to read at a revision: it is compacted away, or not there yet.
enum class RevisionRefusal { kNone, kCompacted, kFuture };

// The gateway answers both as gRPC OutOfRange, {"error", "message", "code": 11}, with no field
// that tells them apart: only the message does (mvcc's ErrCompacted, "required revision has
// been compacted", and ErrFutureRev, "required revision is a future revision"). This is the one
// place that reads etcd's text, on the answer itself rather than on a Status message.
RevisionRefusal RevisionRefusalOf(const json& answer) {
  if (!answer.is_object()) return RevisionRefusal::kNone;
  auto code = answer.find("code");
  auto message = answer.find("message");
  if (code == answer.end() || !code->is_number_integer() || *code != 11 ||
      message == answer.end() || !message->is_string()) {
    return RevisionRefusal::kNone;
  }
  const std::string& text = message->get_ref<const std::string&>();
  if (text.find("required revision has been compacted") != std::string::npos) {
    return RevisionRefusal::kCompacted;
  }
  if (text.find("required revision is a future revision") != std::string::npos) {
    return RevisionRefusal::kFuture;
  }
  return RevisionRefusal::kNone;
}

// An etcd error answer ({"error", "message", "code": a gRPC code}) as a Status; *refusal (when
// given) says whether it refused a revision.
Status EtcdError(const http::Response& resp, const std::string& what,
                 RevisionRefusal* refusal = nullptr) {
  json j = json::parse(resp.body, nullptr, false);
  if (refusal != nullptr) *refusal = RevisionRefusalOf(j);
  auto code_field = j.is_object() ? j.find("code") : j.end();
  int code = j.is_object() && code_field != j.end() && code_field->is_number_integer()
                 ? code_field->get<int>()
                 : 0;
  std::string text = what + ": HTTP " + std::to_string(resp.status) + ": " +
                     (j.is_object() ? j.value("message", resp.body) : resp.body.substr(0, 500));
  switch (code) {
    case 3: return Status::InvalidArgument(text);
    case 5: return Status::NotFound(text);  // a lease that is gone
    case 6: return Status::AlreadyExists(text);
    case 7: case 16: return Status::PermissionDenied(text);
    case 9: return Status::PreconditionFailed(text);
    case 11: return Status::NotFound(text);  // OutOfRange: a compacted or a future revision
    case 4: case 8: case 10: case 14: return Status::Unavailable(text);  // deadline, overload,
                                                                        // no leader, unavailable
  }
  if (resp.status >= 500 || resp.status == 429 || resp.status == 408) {
    return Status::Unavailable(text);
  }
  return Status::IOError(text);
}

}  // namespace

struct EtcdMembership::Impl {
  struct Lease {
    int64_t id = 0;
    uint64_t ttl = 0;  // seconds, as granted
  };
  // The state of the prefix as one range read it.
  struct Snapshot {
    Members members;
    uint64_t epoch = 0;          // the revision of the latest change under the prefix
    uint64_t read_revision = 0;  // etcd's revision when it was read
  };
  struct Watcher {
    http::Canceller cancel;
    std::thread thread;
  };

  std::vector<std::string> endpoints;
  std::string prefix;
  std::string prefix_end;  // the end of the prefix's key range
  http::Client http;
  std::atomic<size_t> preferred{0};  // the endpoint that answered last

  std::mutex join_mu;  // serializes Join and Leave
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                              // Guarded by mu.
  bool keepalive_stop = false;                        // Guarded by mu.
  bool joined = false;                                // Guarded by mu.
  Peer self;                                          // Guarded by mu.
  std::chrono::seconds ttl{0};                        // Guarded by mu.
  Lease lease;                                        // Guarded by mu.
  EtcdHealth health;                                  // Guarded by mu.
  std::unique_ptr<http::Canceller> keepalive_cancel;  // Guarded by mu.
  std::thread keepalive;                              // Started and joined under join_mu.
  std::list<Watcher> watchers;  // Guarded by mu; a list, so that threads keep their Watcher.

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      keepalive_stop = true;
      if (keepalive_cancel) keepalive_cancel->Cancel();
      for (auto& w : watchers) w.cancel.Cancel();
    }
    cv.notify_all();
    if (keepalive.joinable()) keepalive.join();
    for (auto& w : watchers) w.thread.join();
  }

  // Waits backoff's next delay before another attempt; false if the object is being
  // destroyed meanwhile.
  bool Wait(net::Backoff* backoff) {
    auto delay = backoff->Next();
    std::unique_lock<std::mutex> lock(mu);
    return !cv.wait_for(lock, delay, [&] { return stopping; });
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stopping;
  }

  Status Unreachable(const std::vector<std::string>& errors) const {
    return Status::Unavailable("etcd unreachable at " + Joined(endpoints) + " (" + Joined(errors) +
                               "): check that etcd runs there, or list other endpoints");
  }

  // POSTs `body` to `path` on the endpoints in turn, from the one that answered last, until one
  // answers: its 2xx JSON, or its (final) error, with *refusal (when given) set if it refused a
  // revision. kUnavailable naming them all when none answers.
  Result<json> Call(const std::string& path, const json& body, http::Canceller* cancel,
                    RevisionRefusal* refusal = nullptr) {
    std::string text = body.dump();
    std::vector<std::string> errors;
    size_t n = endpoints.size();
    size_t first = preferred.load();
    for (size_t k = 0; k < n; k++) {
      size_t i = (first + k) % n;
      http::Request req;
      req.method = "POST";
      req.url = endpoints[i] + path;
      req.headers = {{"Content-Type", "application/json"}};
      req.body = text;
      req.timeout = kCallTimeout;
      req.cancel = cancel;
      http::Response resp;
      Status st = http.Send(req, &resp);
      if (st.ok()) {
        if (resp.status >= 200 && resp.status < 300) {
          json j = json::parse(resp.body, nullptr, false);
          if (!j.is_object()) {
            return Status::IOError(
                "etcd " + req.url +
                " answered with something that is not JSON: " + resp.body.substr(0, 200));
          }
          preferred = i;
          return j;
        }
        st = EtcdError(resp, "etcd " + req.url, refusal);
        if (!st.IsTransient()) {
          preferred = i;
          return st;
        }
      }
      if (cancel != nullptr && cancel->cancelled()) return st;
      errors.push_back(st.message());
    }
    return Unreachable(errors);
  }

  // Opens a watch (`create`: a WatchCreateRequest) on the endpoints in turn, from the one that
  // answered last, and hands each response's "result" to `on_result` until it sets *stop (Ok),
  // the stream fails or ends (kUnavailable; a stream that never opened fails over to the next
  // endpoint) or `cancel` cuts it. `timeout`: for the whole stream, 0 for none.
  Status StreamWatch(const json& create, http::Canceller* cancel, std::chrono::milliseconds timeout,
                     const ResultHandler& on_result) {
    std::string body = json{{"create_request", create}}.dump();
    size_t n = endpoints.size();
    size_t first = preferred.load();
    std::vector<std::string> errors;
    for (size_t k = 0; k < n; k++) {
      size_t i = (first + k) % n;
      std::string buffer;
      bool opened = false;
      bool stop = false;
      Status handler_status;
      ByteSink sink = [&](const char* data, size_t len) -> Status {
        buffer.append(data, len);
        size_t start = 0;
        for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(buffer.data() + start, nl - start);
          if (Trim(line).empty()) continue;
          json j = json::parse(line, nullptr, false);
          if (!j.is_object()) {
            handler_status =
                Status::IOError("etcd " + endpoints[i] + " sent an unreadable watch response: " +
                                std::string(line.substr(0, 200)));
          } else if (j.contains("error")) {
            handler_status = Status::Unavailable("etcd " + endpoints[i] +
                                                 " ended the watch: " + j["error"].dump());
          } else {
            opened = true;
            handler_status = on_result(j.value("result", json::object()), &stop);
            if (handler_status.ok() && stop) handler_status = Status::Unavailable("stopped");
          }
          if (!handler_status.ok()) return handler_status;  // ends the transfer
        }
        buffer.erase(0, start);
        return Status::Ok();
      };
      http::Request req;
      req.method = "POST";
      req.url = endpoints[i] + "/v3/watch";
      req.headers = {{"Content-Type", "application/json"}};
      req.body = body;
      req.timeout = timeout;
      req.cancel = cancel;
      http::Response resp;
      Status st = http.Send(req, &resp, &sink);
      if (stop) {
        preferred = i;
        return Status::Ok();
      }
      if (st.ok()) {
        st = resp.status >= 200 && resp.status < 300
                 ? Status::Unavailable("etcd " + req.url + " closed the watch stream")
                 : EtcdError(resp, "etcd " + req.url);
      }
      if (opened || !st.IsTransient() || (cancel != nullptr && cancel->cancelled())) {
        if (opened) preferred = i;
        return st;
      }
      errors.push_back(st.message());
    }
    return Unreachable(errors);
  }

  // Applies one watch event (or a range's kv: `deleted` false) to `members`.
  void Apply(Members* members, const json& kv, bool deleted) {
    std::string key = Decoded(kv, "key");
    if (!StartsWith(key, prefix)) return;
    std::string id = key.substr(prefix.size());
    std::optional<Peer> peer = deleted ? std::nullopt : ParseMember(id, Decoded(kv, "value"));
    if (peer) {
      (*members)[id] = std::move(*peer);
    } else {
      members->erase(id);
    }
  }

  json PrefixRange() const {
    return json{{"key", Base64Encode(prefix)}, {"range_end", Base64Encode(prefix_end)}};
  }

  // The prefix as of `revision` (0: now); its epoch is only the newest key's mod_revision.
  // *refusal (when given) says whether etcd refused the revision: compacted, or in the future.
  Result<Snapshot> Read(uint64_t revision, http::Canceller* cancel,
                        RevisionRefusal* refusal = nullptr) {
    json req = PrefixRange();
    if (revision > 0) req["revision"] = std::to_string(revision);
    SHOAL_ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", req, cancel, refusal));
    Snapshot snap;
    snap.read_revision = U64(r.value("header", json::object()), "revision");
    for (const json& kv : r.value("kvs", json::array())) {
      Apply(&snap.members, kv, false);
      snap.epoch = std::max(snap.epoch, U64(kv, "mod_revision"));
    }
    return snap;
  }

  // The prefix now, with its true epoch: the newest key's mod_revision, or a later delete found
  // in the history up to the read (see Current() in the header).
  Result<Snapshot> ReadCurrent(http::Canceller* cancel) {
    SHOAL_ASSIGN_OR_RETURN(Snapshot snap, Read(0, cancel));
    uint64_t until = snap.read_revision;
    uint64_t start = snap.epoch + 1;
    auto deadline = std::chrono::steady_clock::now() + kReplayTimeout;
    // Every revision but an empty etcd's first (1) has at least one event somewhere in the
    // keyspace, so a watch of all keys from `start` reaches `until` and can stop there: no
    // waiting on a silence.
    while (start <= until && until > 1) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return Status::Unavailable("etcd's history from revision " + std::to_string(start) +
                                   " to " + std::to_string(until) + " took longer than " +
                                   std::to_string(kReplayTimeout.count() / 1000) + " s to read");
      }
      uint64_t compacted = 0;
      json all{{"key", Base64Encode(std::string(1, '\0'))},
               {"range_end", Base64Encode(std::string(1, '\0'))},
               {"start_revision", std::to_string(start)}};
      Status st = StreamWatch(all, cancel, left, [&](const json& r, bool* stop) -> Status {
        if (r.value("canceled", false)) {
          compacted = U64(r, "compact_revision");
          *stop = compacted > 0;
          return compacted > 0 ? Status::Ok()
                               : Status::Unavailable("etcd cancelled a watch: " +
                                                     r.value("cancel_reason", ""));
        }
        for (const json& ev : r.value("events", json::array())) {
          const json kv = ev.value("kv", json::object());
          uint64_t rev = U64(kv, "mod_revision");
          *stop = rev >= until;
          if (rev > until) break;
          std::string key = Decoded(kv, "key");
          if (StartsWith(key, prefix)) snap.epoch = std::max(snap.epoch, rev);
        }
        return Status::Ok();
      });
      if (!st.ok()) return st.WithContext("reading etcd's history for the epoch of " + prefix);
      if (compacted == 0) break;
      // What changed before the compaction is gone: the epoch is at least the compaction's.
      snap.epoch = std::max(snap.epoch, compacted);
      start = compacted + 1;
    }
    return snap;
  }

  // The lease of this member's previous run, when it is still alive and holds the member's key
  // with the same value: renewed once and taken over, so the membership does not change.
  std::optional<Lease> Resume(const Peer& p, int64_t id) {
    auto range = Call("/v3/kv/range", json{{"key", Base64Encode(prefix + p.member.id)}}, nullptr);
    if (!range.ok()) return std::nullopt;
    bool ours = false;
    for (const json& kv : range->value("kvs", json::array())) {
      ours = U64(kv, "lease") == static_cast<uint64_t>(id) && Decoded(kv, "value") == MemberValue(p);
    }
    if (!ours) return std::nullopt;
    auto r = Call("/v3/lease/keepalive", json{{"ID", std::to_string(id)}}, nullptr);
    if (!r.ok() || r->contains("error")) return std::nullopt;
    uint64_t ttl = U64(r->value("result", json::object()), "TTL");
    if (ttl == 0) return std::nullopt;
    return Lease{id, ttl};
  }

  Status Revoke(int64_t id, http::Canceller* cancel) {
    auto r = Call("/v3/lease/revoke", json{{"ID", std::to_string(id)}}, cancel);
    return r.ok() ? Status::Ok() : r.status();
  }

  // Grants a lease and creates prefix + id under it, unless the key exists.
  Result<Lease> Register(const Peer& p, std::chrono::seconds want_ttl, http::Canceller* cancel) {
    SHOAL_ASSIGN_OR_RETURN(json grant,
                           Call("/v3/lease/grant", json{{"TTL", want_ttl.count()}}, cancel));
    Lease granted{static_cast<int64_t>(U64(grant, "ID")), U64(grant, "TTL")};
    if (granted.id == 0 || granted.ttl == 0) {
      return Status::IOError("etcd granted no lease for " + prefix + p.member.id + ": " +
                             grant.dump());
    }
    std::string key = Base64Encode(prefix + p.member.id);
    json txn{
        {"compare",
         json::array({json{
             {"target", "CREATE"}, {"key", key}, {"create_revision", "0"}, {"result", "EQUAL"}}})},
        {"success",
         json::array({json{{"request_put", json{{"key", key},
                                                {"value", Base64Encode(MemberValue(p))},
                                                {"lease", std::to_string(granted.id)}}}}})},
        {"failure", json::array({json{{"request_range", json{{"key", key}}}}})}};
    auto r = Call("/v3/kv/txn", txn, cancel);
    if (r.ok() && r->value("succeeded", false)) return granted;
    Revoke(granted.id, cancel).IgnoreError();  // best effort: it would expire anyway
    if (!r.ok()) return r.status().WithContext("registering " + prefix + p.member.id);
    std::string holder;
    for (const json& resp : r->value("responses", json::array())) {
      for (const json& kv :
           resp.value("response_range", json::object()).value("kvs", json::array())) {
        holder = Decoded(kv, "value");
      }
    }
    return Status::AlreadyExists("node id '" + p.member.id + "' is already registered at " +
                                 prefix + p.member.id + " by a live member (" + holder +
                                 "): give this node another id, or, if that is this node's "
                                 "previous run, wait for its lease to expire");
  }

  void RunKeepAlive() {
    for (;;) {
      Peer me;
      std::chrono::seconds want_ttl;
      int64_t id;
      http::Canceller* cancel;
      {
        std::unique_lock<std::mutex> lock(mu);
        auto period = std::max(std::chrono::milliseconds(100),
                               std::chrono::milliseconds(lease.ttl * 1000 / 3));
        cv.wait_for(lock, period, [&] { return stopping || keepalive_stop; });
        if (stopping || keepalive_stop) return;
        me = self;
        want_ttl = ttl;
        id = lease.id;
        cancel = keepalive_cancel.get();
      }
      // The keep-alive is a stream in etcd's API; one request line, then the body ends, and
      // the gateway answers {"result": {"ID", "TTL"}}, without TTL when the lease is gone.
      auto r = Call("/v3/lease/keepalive", json{{"ID", std::to_string(id)}}, cancel);
      if (cancel->cancelled()) return;
      if (!r.ok() || r->contains("error")) {  // the lease outlives a missed renewal or two
        Unhealthy(/*lost=*/false, "etcd (" + Joined(endpoints) + ") did not answer the renewal of " + prefix +
                                      me.member.id + ": " + (r.ok() ? r->dump() : r.status().ToString()));
        continue;
      }
      if (U64(r->value("result", json::object()), "TTL") > 0) {
        Healthy();
        continue;
      }
      // The lease expired (etcd out of reach for longer than the ttl): register anew.
      Unhealthy(/*lost=*/true, "lost the lease of " + prefix + me.member.id +
                                   " (etcd was out of reach for longer than its ttl): registering again");
      auto renewed = Register(me, want_ttl, cancel);
      if (!renewed.ok()) {
        if (!cancel->cancelled()) {
          Unhealthy(/*lost=*/true, "lost the lease of " + prefix + me.member.id + " and could not register again: " +
                                       renewed.status().ToString());
        }
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        lease = *renewed;
      }
      Healthy();
    }
  }

  // The keep-alive's findings; each change of problem is logged once.
  void Unhealthy(bool lost, const std::string& problem) {
    std::lock_guard<std::mutex> lock(mu);
    if (lost) {
      if (health.lease_held) health.lease_losses++;
      health.lease_held = false;
    } else {
      health.failed_renewals++;
      health.reachable = false;
    }
    // The first words say what it is; the error's details may change at every attempt.
    bool news = health.problem.empty() || health.problem.substr(0, 20) != problem.substr(0, 20);
    health.problem = problem;
    if (news) LogEvent(lost ? LogLevel::kError : LogLevel::kWarn, "etcd", problem);
  }
  void Healthy() {
    std::lock_guard<std::mutex> lock(mu);
    if (health.problem.empty()) return;
    LogEvent(LogLevel::kInfo, "etcd",
             "membership " + prefix + self.member.id + " renewed again" +
                 (health.lease_held ? "" : " under a new lease") + "; etcd answers (was: " + health.problem + ")");
    health.reachable = health.lease_held = true;
    health.problem.clear();
  }

  void StopKeepAlive() {
    {
      std::lock_guard<std::mutex> lock(mu);
      keepalive_stop = true;
      if (keepalive_cancel) keepalive_cancel->Cancel();
    }
    cv.notify_all();
    if (keepalive.joinable()) keepalive.join();
  }

  // Where one Watch() is in the history.
  struct WatchState {
    Members members;    // the membership after revision next - 1
    uint64_t next = 1;  // the first revision not delivered yet
    bool resync = false;
  };

  // Delivers the steps of one watch response; a compacted history ends the stream (*stop) and
  // asks for a resync.
  Status OnWatchResult(const json& r, bool* stop, WatchState* w, const Callback& on_change) {
    if (r.value("canceled", false)) {
      if (U64(r, "compact_revision") == 0) {
        return Status::Unavailable("etcd cancelled the watch of " + prefix + ": " +
                                   r.value("cancel_reason", ""));
      }
      w->resync = true;
      *stop = true;
      return Status::Ok();
    }
    // Events come in revision order, all those of one revision in one response.
    const json events = r.value("events", json::array());
    for (size_t i = 0; i < events.size();) {
      uint64_t rev = U64(events[i].value("kv", json::object()), "mod_revision");
      for (; i < events.size(); i++) {
        const json kv = events[i].value("kv", json::object());
        if (U64(kv, "mod_revision") != rev) break;
        // Below `next`: delivered before the stream was reopened.
        if (rev >= w->next) Apply(&w->members, kv, events[i].value("type", "") == "DELETE");
      }
      if (rev < w->next) continue;
      MembershipEvent ev;
      ev.revision = rev;
      ev.peers = Sorted(w->members);
      on_change(ev);
      w->next = rev + 1;
    }
    return Status::Ok();
  }

  void RunWatch(http::Canceller* cancel, WatchState w, const Callback& on_change) {
    net::Backoff backoff(kMinBackoff, kMaxBackoff);
    while (!Stopping()) {
      if (w.resync) {
        auto snap = ReadCurrent(cancel);
        if (!snap.ok()) {
          if (!Wait(&backoff)) return;
          continue;
        }
        w.members = std::move(snap->members);
        MembershipEvent ev;
        ev.revision = snap->epoch;
        ev.peers = Sorted(w.members);
        ev.resync = true;
        on_change(ev);
        w.next = snap->read_revision + 1;
        w.resync = false;
      }
      json create = PrefixRange();
      create["start_revision"] = std::to_string(w.next);
      bool opened = false;
      Status st =
          StreamWatch(create, cancel, std::chrono::milliseconds(0), [&](const json& r, bool* stop) {
            opened = true;
            return OnWatchResult(r, stop, &w, on_change);
          });
      if (Stopping()) return;
      if (st.ok()) continue;  // a compaction: resync
      if (opened) backoff.Reset();
      if (!Wait(&backoff)) return;
    }
  }
};

EtcdMembership::EtcdMembership(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EtcdMembership::~EtcdMembership() = default;

Result<std::unique_ptr<EtcdMembership>> EtcdMembership::Connect(const std::string& endpoints,
                                                                const std::string& prefix) {
  auto impl = std::make_unique<Impl>();
  size_t start = 0;
  while (start <= endpoints.size()) {
    size_t comma = endpoints.find(',', start);
    std::string e = Trim(
        endpoints.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? endpoints.size() + 1 : comma + 1;
    if (e.empty()) continue;
    while (EndsWith(e, "/")) e.pop_back();
    if ((!StartsWith(e, "http://") && !StartsWith(e, "https://")) ||
        e.find("://") + 3 == e.size()) {
      return Status::InvalidArgument("etcd endpoint '" + e +
                                     "' is not a URL like http://127.0.0.1:2379");
    }
    impl->endpoints.push_back(e);
  }
  if (impl->endpoints.empty()) {
    return Status::InvalidArgument("no etcd endpoints in '" + endpoints +
                                   "' (want http://host:port[,...])");
  }
  bool printable =
      std::all_of(prefix.begin(), prefix.end(), [](char c) { return c > ' ' && c != 0x7f; });
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() != '/' || !printable) {
    return Status::InvalidArgument("etcd membership prefix '" + prefix +
                                   "' must start and end with '/' and have no spaces or control "
                                   "characters, like /shoal/members/");
  }
  impl->prefix = prefix;
  impl->prefix_end = prefix;
  impl->prefix_end.back() = '/' + 1;
  json probe = impl->PrefixRange();
  probe["count_only"] = true;
  auto r = impl->Call("/v3/kv/range", probe, nullptr);
  if (!r.ok()) return r.status().WithContext("connecting to etcd for the membership at " + prefix);
  return std::unique_ptr<EtcdMembership>(new EtcdMembership(std::move(impl)));
}

Status EtcdMembership::Join(const Peer& self, std::chrono::seconds ttl, int64_t previous_lease) {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> join_lock(s.join_mu);
  if (!ValidId(self.member.id)) {
    return Status::InvalidArgument("node id '" + self.member.id +
                                   "' cannot be an etcd member key: use 1 to 200 printable "
                                   "characters without '/' or spaces");
  }
  if (self.endpoint.empty() || self.member.weight == 0 || self.member.weight > 1000000) {
    return Status::InvalidArgument("member " + self.member.id +
                                   " needs an endpoint and a weight of 1 to 1000000");
  }
  if (ttl.count() < 1)
    return Status::InvalidArgument("a membership lease needs a ttl of at least 1 s");
  Peer me = self;
  if (me.member.domain.empty()) me.member.domain = me.member.id;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.joined) {
      return Status::InvalidArgument("already joined " + s.prefix + " as " + s.self.member.id +
                                     ": Leave() first");
    }
  }
  std::optional<Impl::Lease> kept = previous_lease != 0 ? s.Resume(me, previous_lease) : std::nullopt;
  Impl::Lease lease;
  if (kept) {
    lease = *kept;
  } else {
    SHOAL_ASSIGN_OR_RETURN(lease, s.Register(me, ttl, nullptr));
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.joined = true;
    s.self = me;
    s.ttl = ttl;
    s.lease = lease;
    s.keepalive_stop = false;
    s.keepalive_cancel = std::make_unique<http::Canceller>();
  }
  s.keepalive = std::thread([&s] { s.RunKeepAlive(); });
  return Status::Ok();
}

Status EtcdMembership::Leave() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> join_lock(s.join_mu);
  s.StopKeepAlive();
  int64_t id;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.joined) return Status::Ok();
    s.joined = false;
    id = s.lease.id;
    key = s.prefix + s.self.member.id;
  }
  Status st = s.Revoke(id, nullptr);
  if (st.ok() || st.IsNotFound()) return Status::Ok();  // NotFound: expired, the key with it
  return st.WithContext("leaving " + key + " (the key goes when its lease expires)");
}

int64_t EtcdMembership::lease_id() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->joined ? impl_->lease.id : 0;
}

EtcdHealth EtcdMembership::Health() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  EtcdHealth h = impl_->health;
  h.joined = impl_->joined;
  return h;
}

Result<MembershipEvent> EtcdMembership::Current() {
  SHOAL_ASSIGN_OR_RETURN(Impl::Snapshot snap, impl_->ReadCurrent(nullptr));
  MembershipEvent ev;
  ev.revision = snap.epoch;
  ev.peers = Sorted(snap.members);
  return ev;
}

Status EtcdMembership::Watch(uint64_t from_revision,
                             std::function<void(const MembershipEvent&)> on_change) {
  Impl& s = *impl_;
  Impl::WatchState w;
  w.next = from_revision + 1;
  if (from_revision > 0) {
    RevisionRefusal refusal = RevisionRefusal::kNone;
    auto snap = s.Read(from_revision, nullptr, &refusal);
    if (!snap.ok() && refusal == RevisionRefusal::kFuture) {
      return Status::InvalidArgument("cannot watch " + s.prefix + " from revision " +
                                     std::to_string(from_revision) + ": etcd is not there yet (" +
                                     snap.status().message() + ")");
    }
    if (!snap.ok() && refusal == RevisionRefusal::kCompacted) {
      w.resync = true;
    } else if (!snap.ok()) {
      return snap.status().WithContext("reading " + s.prefix + " at revision " +
                                       std::to_string(from_revision));
    } else {
      w.members = std::move(snap->members);
    }
  }
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.stopping) return Status::Unavailable("the membership of " + s.prefix + " is shutting down");
  Impl::Watcher* watcher = &s.watchers.emplace_back();
  watcher->thread = std::thread([&s, watcher, w = std::move(w), on_change = std::move(on_change)] {
    s.RunWatch(&watcher->cancel, w, on_change);
  });
  return Status::Ok();
}

}  // namespace shoal::cluster
