// EtcdMembership against a real etcd on loopback (Debian's etcd-server).
#include "cluster/etcd.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/strings.h"
#include "net/http_client.h"
#include "testing/process.h"
#include "testing/servers.h"

namespace shoal::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

Peer MakePeer(const std::string& id, uint32_t weight = 100, const std::string& domain = "") {
  Peer p;
  p.member.id = id;
  p.member.weight = weight;
  p.member.domain = domain;
  p.endpoint = "host-" + id + ":7070";
  return p;
}

// "rev [a@host-a:7070/100/a b@...]" (+ " resync"): events compare as strings.
std::string Describe(const MembershipEvent& ev) {
  std::string s = std::to_string(ev.revision) + " [";
  for (size_t i = 0; i < ev.peers.size(); i++) {
    const Peer& p = ev.peers[i];
    s += (i ? " " : "") + p.member.id + "@" + p.endpoint + "/" + std::to_string(p.member.weight) +
         "/" + p.member.domain;
  }
  return s + "]" + (ev.resync ? " resync" : "");
}

std::string Ids(const MembershipEvent& ev) {
  std::string s;
  for (const Peer& p : ev.peers) s += (s.empty() ? "" : ",") + p.member.id;
  return s;
}

// Collects the events of one watch.
class Recorder {
 public:
  std::function<void(const MembershipEvent&)> Callback() {
    return [this](const MembershipEvent& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(ev);
      cv_.notify_all();
    };
  }
  // The first `n` events, once there are that many (within 10 s; fewer if not).
  std::vector<MembershipEvent> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, seconds(10), [&] { return events_.size() >= n; });
    return events_;
  }
  std::vector<MembershipEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MembershipEvent> events_;
};

std::vector<std::string> Described(const std::vector<MembershipEvent>& events) {
  std::vector<std::string> out;
  for (const auto& ev : events) out.push_back(Describe(ev));
  return out;
}

// One etcd for the suite; each test works under a prefix of its own.
class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    etcd_ = new testing::Etcd();
    Status st = etcd_->Start();
    if (!st.ok()) {
      delete etcd_;
      etcd_ = nullptr;
      FAIL() << st.ToString();
    }
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(etcd_, nullptr) << "etcd did not start"; }

  std::string Prefix() {
    return "/shoal/" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "/";
  }

  std::unique_ptr<EtcdMembership> Connect(const std::string& endpoints = "") {
    auto m = EtcdMembership::Connect(endpoints.empty() ? etcd_->Endpoint() : endpoints, Prefix());
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(m).value() : nullptr;
  }

  // A node that has joined as `id`.
  std::unique_ptr<EtcdMembership> Joined(const std::string& id, seconds ttl = seconds(10)) {
    auto m = Connect();
    Status st = m->Join(MakePeer(id), ttl);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m;
  }

  // A client watching the prefix from revision 0 into `rec` (which must outlive it).
  std::unique_ptr<EtcdMembership> Watching(Recorder* rec) {
    auto m = Connect();
    Status st = m->Watch(0, rec->Callback());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m;
  }

  // A raw call to etcd's gateway (for writes a member would not make).
  nlohmann::json EtcdCall(const std::string& path, const nlohmann::json& body) {
    http::Client client;
    http::Request req;
    req.method = "POST";
    req.url = etcd_->Endpoint() + path;
    std::string text = body.dump();
    req.body = text;
    http::Response resp;
    Status st = client.Send(req, &resp);
    EXPECT_TRUE(st.ok() && resp.status == 200)
        << st.ToString() << " " << resp.status << " " << resp.body;
    return nlohmann::json::parse(resp.body, nullptr, false);
  }
  void Put(const std::string& key, const std::string& value) {
    EtcdCall("/v3/kv/put", {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}});
  }

  static testing::Etcd* etcd_;
};

testing::Etcd* EtcdTest::etcd_ = nullptr;

TEST_F(EtcdTest, JoinsAreSeenInOrderWithIncreasingRevisions) {
  Recorder rec;
  auto watcher = Watching(&rec);
  auto a = Joined("a");
  auto b = Connect();
  ASSERT_TRUE(b->Join(MakePeer("b", 250, "rack2"), seconds(10)).ok());
  auto c = Joined("c");

  auto events = rec.WaitFor(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(Ids(events[0]), "a");
  EXPECT_EQ(Ids(events[1]), "a,b");
  EXPECT_EQ(Ids(events[2]), "a,b,c");
  for (size_t i = 0; i < events.size(); i++) {
    EXPECT_FALSE(events[i].resync);
    if (i > 0) {
      EXPECT_GT(events[i].revision, events[i - 1].revision);
    }
  }
  const Peer& pb = events[2].peers[1];
  EXPECT_EQ(pb.endpoint, "host-b:7070");
  EXPECT_EQ(pb.member.weight, 250u);
  EXPECT_EQ(pb.member.domain, "rack2");
  EXPECT_EQ(events[2].peers[0].member.domain, "a");  // the default: every node its own domain
}

TEST_F(EtcdTest, TwoWatchersFromZeroSeeTheSameSequence) {
  Recorder early;
  auto watcher = Watching(&early);
  auto a = Joined("a");
  auto b = Joined("b");
  ASSERT_TRUE(a->Leave().ok());
  Put("/shoal/unrelated", "x");  // not under the prefix: no event
  // Two members in one transaction: one revision, one event.
  auto put = [&](const std::string& id) {
    std::string value = R"({"endpoint":"host-)" + id + R"(:1"})";
    return nlohmann::json{{"request_put", nlohmann::json{{"key", Base64Encode(Prefix() + id)},
                                                         {"value", Base64Encode(value)}}}};
  };
  nlohmann::json txn{{"success", nlohmann::json::array({put("d"), put("e")})}};
  EtcdCall("/v3/kv/txn", txn);

  auto first = early.WaitFor(4);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(Ids(first[2]), "b");
  EXPECT_EQ(Ids(first[3]), "b,d,e");

  Recorder late;  // a newcomer, after all of it, replays the same steps
  auto newcomer = Watching(&late);
  auto second = late.WaitFor(4);
  EXPECT_EQ(Described(second), Described(first));
  std::this_thread::sleep_for(milliseconds(200));  // nothing more arrives
  EXPECT_EQ(early.events().size(), 4u);
  EXPECT_EQ(late.events().size(), 4u);
}

TEST_F(EtcdTest, WatchFromARevisionStartsAfterIt) {
  auto a = Joined("a");
  auto b = Joined("b");
  auto now = a->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  auto c = Joined("c");
  Recorder rec;
  ASSERT_TRUE(a->Watch(now->revision, rec.Callback()).ok());
  auto events = rec.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(Ids(events[0]), "a,b,c");
  EXPECT_GT(events[0].revision, now->revision);

  Status future = a->Watch(now->revision + 1000, rec.Callback());
  EXPECT_EQ(future.code(), Code::kInvalidArgument) << future.ToString();
}

TEST_F(EtcdTest, LeaveRemovesTheMemberAtOnce) {
  auto a = Joined("a");
  auto b = Joined("b");
  ASSERT_TRUE(a->Leave().ok());
  auto now = b->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(Ids(*now), "b");
  EXPECT_TRUE(a->Leave().ok());  // twice is fine
  // And it may join again.
  ASSERT_TRUE(a->Join(MakePeer("a"), seconds(10)).ok());
  EXPECT_EQ(Ids(b->Current().value()), "a,b");
}

TEST_F(EtcdTest, MemberWhoseKeepAliveStopsDisappearsAfterItsTtl) {
  auto kept = Joined("kept", seconds(1));
  auto crashed = Joined("crashed", seconds(1));
  // Renewals keep a 1 s lease alive well past its ttl.
  std::this_thread::sleep_for(milliseconds(2000));
  auto now = kept->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(Ids(*now), "crashed,kept");

  crashed.reset();  // no Leave: as if the process died
  auto stopped = Clock::now();
  EXPECT_EQ(Ids(kept->Current().value()), "crashed,kept");  // the key outlives the process...
  std::string ids;
  while (Clock::now() - stopped < seconds(5)) {  // ...until its lease expires
    ids = Ids(kept->Current().value());
    if (ids == "kept") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(ids, "kept");
  EXPECT_GE(Clock::now() - stopped, milliseconds(500));
}

TEST_F(EtcdTest, MemberWhoseLeaseIsLostRegistersAgain) {
  auto a = Joined("a", seconds(1));
  auto range = EtcdCall("/v3/kv/range", {{"key", Base64Encode(Prefix() + "a")}});
  std::string lease = range["kvs"][0]["lease"].get<std::string>();
  EtcdCall("/v3/lease/revoke", {{"ID", lease}});  // as if etcd had let it expire
  EXPECT_EQ(Ids(a->Current().value()), "");
  std::string again;
  for (auto start = Clock::now(); Clock::now() - start < seconds(5);) {
    range = EtcdCall("/v3/kv/range", {{"key", Base64Encode(Prefix() + "a")}});
    if (range.contains("kvs")) {
      again = range["kvs"][0]["lease"].get<std::string>();
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_FALSE(again.empty()) << "the member did not register again";
  EXPECT_NE(again, lease);
  ASSERT_TRUE(a->Leave().ok());  // revokes the new lease
  EXPECT_EQ(Ids(a->Current().value()), "");
}

// A member's process gone without Leave (a restart in place) and back within its lease, as the
// same peer, takes that lease over: the membership's epoch does not move. Another value, or a
// lease that is gone, is not taken over.
TEST_F(EtcdTest, AMemberBackWithinItsLeaseTakesItOver) {
  auto first = Joined("a", seconds(10));
  int64_t lease = first->lease_id();
  ASSERT_NE(lease, 0);
  uint64_t epoch = first->Current().value().revision;
  first.reset();  // no Leave
  auto again = Connect();
  ASSERT_TRUE(again->Join(MakePeer("a"), seconds(10), lease).ok());
  EXPECT_EQ(again->lease_id(), lease);
  EXPECT_EQ(again->Current().value().revision, epoch) << "taking the lease over changed the membership";
  again.reset();

  auto other = Connect();  // a different address: not the same peer, so it waits for the key
  Peer moved = MakePeer("a");
  moved.endpoint = "elsewhere:7070";
  EXPECT_EQ(other->Join(moved, seconds(10), lease).code(), Code::kAlreadyExists);
  EtcdCall("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
  ASSERT_TRUE(other->Join(MakePeer("a"), seconds(10), lease).ok());  // gone: a new lease
  EXPECT_NE(other->lease_id(), lease);
  ASSERT_TRUE(other->Leave().ok());
}

TEST_F(EtcdTest, DuplicateIdIsRejected) {
  auto first = Joined("a");
  auto second = Connect();
  Status st = second->Join(MakePeer("a"), seconds(10));
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("host-a:7070"), std::string::npos) << st.message();
  EXPECT_EQ(Ids(second->Current().value()), "a");
  ASSERT_TRUE(first->Leave().ok());
  st = second->Join(MakePeer("a"), seconds(10));
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(second->Join(MakePeer("b"), seconds(10)).code(),
            Code::kInvalidArgument);  // joined already
}

TEST_F(EtcdTest, CurrentMatchesTheLastEvent) {
  Recorder rec;
  auto watcher = Watching(&rec);
  auto a = Joined("a");
  auto b = Joined("b");
  auto c = Joined("c");
  ASSERT_TRUE(b->Leave().ok());  // the last change is a delete: no key carries its revision
  auto events = rec.WaitFor(4);
  ASSERT_EQ(events.size(), 4u);
  auto now = watcher->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(Describe(*now), Describe(events.back()));
  EXPECT_EQ(Ids(*now), "a,c");

  Put("/shoal/elsewhere", "x");  // writes outside the prefix leave the epoch alone
  Put("/shoal/elsewhere", "y");
  auto later = watcher->Current();
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_EQ(Describe(*later), Describe(events.back()));
}

TEST_F(EtcdTest, CompactedHistoryResyncsWithTheCurrentState) {
  auto a = Joined("a");
  auto b = Joined("b");
  auto now = a->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  Put("/shoal/elsewhere", "z");
  auto header = EtcdCall("/v3/kv/range", {{"key", Base64Encode("/")}});
  uint64_t rev = std::stoull(header["header"]["revision"].get<std::string>());
  EtcdCall("/v3/kv/compaction", {{"revision", std::to_string(rev)}});

  Recorder rec;
  ASSERT_TRUE(a->Watch(0, rec.Callback()).ok());
  auto events = rec.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].resync);
  EXPECT_EQ(Ids(events[0]), "a,b");
  EXPECT_GE(events[0].revision, now->revision);
  auto c = Joined("c");  // and it goes on live
  events = rec.WaitFor(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[1].resync);
  EXPECT_EQ(Ids(events[1]), "a,b,c");
  EXPECT_GT(events[1].revision, events[0].revision);
}

TEST_F(EtcdTest, WatchFromACompactedRevisionResyncs) {
  auto a = Joined("a");
  auto first = a->Current();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto b = Joined("b");
  Put("/shoal/elsewhere", "z");
  auto header = EtcdCall("/v3/kv/range", {{"key", Base64Encode("/")}});
  uint64_t rev = std::stoull(header["header"]["revision"].get<std::string>());
  EtcdCall("/v3/kv/compaction", {{"revision", std::to_string(rev)}});

  Recorder rec;
  Status st = a->Watch(first->revision, rec.Callback());
  ASSERT_TRUE(st.ok()) << "a compacted start is resynced, not refused: " << st.ToString();
  auto events = rec.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].resync);
  EXPECT_EQ(Ids(events[0]), "a,b");
}

TEST_F(EtcdTest, ErrorsSayWhatIsWrong) {
  int dead = testing::FreePort();
  std::string endpoint = "http://127.0.0.1:" + std::to_string(dead);
  auto m = EtcdMembership::Connect(endpoint, "/shoal/members/");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kUnavailable);
  EXPECT_NE(m.status().message().find(endpoint), std::string::npos) << m.status().message();

  for (const char* prefix : {"", "shoal/", "/shoal", "/a b/"}) {
    auto bad = EtcdMembership::Connect(etcd_->Endpoint(), prefix);
    EXPECT_EQ(bad.status().code(), Code::kInvalidArgument) << prefix;
  }
  EXPECT_EQ(EtcdMembership::Connect("", "/shoal/").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(EtcdMembership::Connect("127.0.0.1:2379", "/shoal/").status().code(),
            Code::kInvalidArgument);

  auto good = Connect();
  EXPECT_EQ(good->Join(MakePeer("a/b"), seconds(10)).code(), Code::kInvalidArgument);
  EXPECT_EQ(good->Join(MakePeer("a"), seconds(0)).code(), Code::kInvalidArgument);
}

TEST_F(EtcdTest, DeadEndpointIsSkipped) {
  std::string dead = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  auto m = Connect(dead + "," + etcd_->Endpoint());
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Join(MakePeer("a"), seconds(10)).ok());
  Recorder rec;
  ASSERT_TRUE(m->Watch(0, rec.Callback()).ok());
  EXPECT_EQ(Ids(rec.WaitFor(1).at(0)), "a");
}

TEST_F(EtcdTest, DestructionStopsWatchesPromptly) {
  auto m = Connect();
  Recorder rec;
  ASSERT_TRUE(m->Watch(0, rec.Callback()).ok());
  ASSERT_TRUE(m->Join(MakePeer("a"), seconds(30)).ok());
  rec.WaitFor(1);
  auto start = Clock::now();
  m.reset();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
}

// An etcd nothing was ever written to is at revision 1, which has no event: Current() answers
// at once (no members, epoch 0) rather than wait for the history to reach it.
TEST(EtcdEmptyTest, CurrentOfAnEmptyEtcdAnswersAtOnce) {
  testing::Etcd etcd;
  ASSERT_TRUE(etcd.Start().ok());
  auto m = EtcdMembership::Connect(etcd.Endpoint(), "/m/");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto now = (*m)->Current();
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_EQ(now->revision, 0u);
  EXPECT_TRUE(now->peers.empty());
}

// Its own etcd, killed and started again on the same ports and data.
TEST(EtcdRestartTest, WatchSurvivesAnEtcdRestart) {
  testing::Etcd etcd;
  Status st = etcd.Start();
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto watcher = EtcdMembership::Connect(etcd.Endpoint(), "/m/");
  ASSERT_TRUE(watcher.ok()) << watcher.status().ToString();
  Recorder rec;
  ASSERT_TRUE((*watcher)->Watch(0, rec.Callback()).ok());
  auto a = std::move(EtcdMembership::Connect(etcd.Endpoint(), "/m/")).value();
  ASSERT_TRUE(a->Join(MakePeer("a"), seconds(30)).ok());
  ASSERT_EQ(rec.WaitFor(1).size(), 1u);

  st = etcd.Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto b = std::move(EtcdMembership::Connect(etcd.Endpoint(), "/m/")).value();
  ASSERT_TRUE(b->Join(MakePeer("b"), seconds(30)).ok());
  ASSERT_TRUE(a->Leave().ok());
  auto events = rec.WaitFor(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(Ids(events[1]), "a,b");
  EXPECT_EQ(Ids(events[2]), "b");

  Recorder fresh;  // the same history, read in one go
  ASSERT_TRUE(b->Watch(0, fresh.Callback()).ok());
  EXPECT_EQ(Described(fresh.WaitFor(3)), Described(events));
}

}  // namespace
}  // namespace shoal::cluster
