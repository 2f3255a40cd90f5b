// The node's front end under many connections: shoald as a separate process in front of a real
// Azurite (through the fault proxy), with thousands of idle and slow sockets opened by the test
// itself. Every count asserted is exact (connections, timeouts, threads); nothing is timed.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::Shoald;
constexpr const char* kBucket = "conntest";

// Whether the peer has closed `fd` (EOF or reset), without waiting.
bool ClosedByPeer(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// Sends `request` on `fd` and reads the answer until `want` shows up, the peer closes, or 10 s
// pass; what was read.
std::string Ask(int fd, const std::string& request, const std::string& want) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return "";
  std::string got;
  char buf[4096];
  for (int i = 0; i < 100 && got.find(want) == std::string::npos; i++) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

int Threads(int pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return -1;
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

uint64_t Metric(const Shoald& node, const std::string& name) { return testing::NodeMetric(node.Endpoint(), name); }

class ConnectionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rlimit lim{};  // thousands of sockets on this side too
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      lim.rlim_cur = lim.rlim_max;
      setrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  void SetUp() override {
    ASSERT_TRUE(proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
  }
  // `n` connections to `node`, kept until the test ends.
  std::vector<int> Open(const Shoald& node, int n) {
    std::vector<int> out;
    for (int i = 0; i < n; i++) {
      int fd = node.Connect();
      if (fd < 0) break;
      out.push_back(fd);
      fds_.push_back(fd);
    }
    return out;
  }
  std::string PutObject(const std::string& key, uint64_t seed, uint64_t size) {
    testing::PatternSource source(seed, size);
    auto r = UploadStream(source, *testing::Servers().azurite.Store(kBucket), key, TransferOptions{});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return "az://" + std::string(kBucket) + "/" + key;
  }

  testing::FaultProxy proxy_;
  std::vector<int> fds_;
};

TEST_F(ConnectionsTest, IdleAndSlowConnectionsCostNoThreadAndSlowOnesAreClosedByTheHeaderTimeout) {
  constexpr int kIdle = 2000, kSlow = 200;
  Shoald node;
  // --fetch-threads 4: a fetch pool of 4 at rest and at most (the default keeps 4 at rest here
  // but starts more while fetches wait, and ends them 10 s later: the counts below would then
  // depend on when they are taken).
  ASSERT_TRUE(node.Start(proxy_.port(), {"--header-timeout", "2", "--idle-timeout", "600", "--fetch-threads", "4"}).ok());
  std::string url = PutObject("warm/a.bin", 3, 32ull << 20);
  std::string want = testing::PatternSha256(3, 32ull << 20);
  ASSERT_EQ(testing::CatSha256(url, node.Endpoint()), want);  // warm: every chunk on the node's disk
  const int threads_before = Threads(node.Pid());
  ASSERT_GT(threads_before, 0);

  std::vector<int> idle = Open(node, kIdle);
  std::vector<int> slow = Open(node, kSlow);
  ASSERT_EQ(idle.size(), static_cast<size_t>(kIdle));
  ASSERT_EQ(slow.size(), static_cast<size_t>(kSlow));
  ASSERT_TRUE(testing::Until([&] { return Metric(node, "shoal_connections_open") >= kIdle + kSlow; },
                             std::chrono::seconds(60)))
      << Metric(node, "shoal_connections_open");
  // The slow ones send their header a byte at a time, every 0.5 s, until the node closes them
  // (bounded: 40 s); meanwhile a reader reads the warm object.
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: " + std::string(200, 'x') + "\r\n\r\n";
  std::thread trickle([&] {
    std::vector<bool> closed(slow.size(), false);
    size_t left = slow.size();
    for (size_t step = 0; step < 80 && left > 0; step++) {
      for (size_t i = 0; i < slow.size(); i++) {
        if (closed[i]) continue;
        if (ClosedByPeer(slow[i]) || ::send(slow[i], &header[step % header.size()], 1, MSG_NOSIGNAL) < 0) {
          closed[i] = true;
          left--;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  auto read = testing::CatThroughNode(url, node.Endpoint());
  const int threads_during = Threads(node.Pid());
  trickle.join();
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_EQ(Trim(read.out), want);
  // No thread per connection: 2,200 connections and a reader, and not one thread more.
  EXPECT_EQ(threads_during, threads_before);
  for (size_t i = 0; i < slow.size(); i++) EXPECT_TRUE(ClosedByPeer(slow[i])) << "slow connection " << i << " still open";
  EXPECT_EQ(Metric(node, "shoal_connection_timeouts_total{phase=\"header\"}"), static_cast<uint64_t>(kSlow));
  EXPECT_EQ(Metric(node, "shoal_connection_timeouts_total{phase=\"idle\"}"), 0u);
  // The idle ones are still held, and still served.
  for (int i = 0; i < kIdle; i += 20) {
    std::string answer = Ask(idle[i], "GET /healthz HTTP/1.1\r\nHost: idle\r\n\r\n", "\r\n\r\nok\n");
    EXPECT_NE(answer.find("200 OK"), std::string::npos) << "idle connection " << i << ": " << answer;
  }
  EXPECT_EQ(Metric(node, "shoal_connections_open"), static_cast<uint64_t>(kIdle) + 1);  // + the metrics read
}

TEST_F(ConnectionsTest, AKeepAliveConnectionSilentForTheIdleTimeoutIsClosedAndCounted) {
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--idle-timeout", "1"}).ok());
  std::vector<int> fds = Open(node, 50);
  ASSERT_EQ(fds.size(), 50u);
  // One of them asks first: the idle timeout runs from the end of its answer.
  std::string answer = Ask(fds[0], "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n\r\nok\n");
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  EXPECT_TRUE(testing::Until(
      [&] { return std::all_of(fds.begin(), fds.end(), [](int fd) { return ClosedByPeer(fd); }); },
      std::chrono::seconds(30)));
  // The metrics read itself opens a connection that the node has not yet timed out.
  EXPECT_EQ(Metric(node, "shoal_connection_timeouts_total{phase=\"idle\"}"), 50u);
  EXPECT_EQ(Metric(node, "shoal_connection_timeouts_total{phase=\"header\"}"), 0u);
}

TEST_F(ConnectionsTest, MaxConnectionsCountsRequestsBeingServedNotIdleSockets) {
  Shoald node;
  ASSERT_TRUE(node.Start(proxy_.port(), {"--max-connections", "4"}).ok());
  std::vector<int> idle = Open(node, 100);  // far more sockets than the cap, all silent
  ASSERT_EQ(idle.size(), 100u);
  std::string missing = "GET /v1/object?url=az://conntest/no-such-object HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string answer = Ask(idle[0], missing, "\"code\"");
  EXPECT_NE(answer.find("404 Not Found"), std::string::npos) << answer;
  // The answer is read before the node's side of it ends: until then it is still being served.
  ASSERT_TRUE(testing::Until([&] { return Metric(node, "shoal_requests_active") == 0; }, std::chrono::seconds(30)));
  // Four writes whose bodies stall: four requests being served.
  std::vector<int> writers = Open(node, 4);
  for (size_t i = 0; i < writers.size(); i++) {
    std::string put = "PUT /v1/object?url=az://conntest/stalled" + std::to_string(i) +
                      " HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n0123456789";
    ASSERT_EQ(::send(writers[i], put.data(), put.size(), MSG_NOSIGNAL), static_cast<ssize_t>(put.size()));
  }
  ASSERT_TRUE(testing::Until([&] { return Metric(node, "shoal_requests_active") == 4; }, std::chrono::seconds(30)))
      << Metric(node, "shoal_requests_active");
  answer = Ask(idle[1], missing, "\"code\"");
  EXPECT_NE(answer.find("503 Service Unavailable"), std::string::npos) << answer;
  EXPECT_NE(answer.find("X-Shoal-Error: Busy"), std::string::npos) << answer;
  EXPECT_EQ(Metric(node, "shoal_connections_refused_total"), 1u);
  // Probes are never refused.
  answer = Ask(idle[2], "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "\r\n\r\nok\n");
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  // The writers go away mid-body: nothing of theirs was acknowledged, and the node serves again
  // on the same connection that was refused.
  for (int fd : writers) ::shutdown(fd, SHUT_RDWR);
  ASSERT_TRUE(testing::Until([&] { return Metric(node, "shoal_requests_active") == 0; }, std::chrono::seconds(30)));
  answer = Ask(idle[1], missing, "\"code\"");
  EXPECT_NE(answer.find("404 Not Found"), std::string::npos) << answer;
  ListOptions prefix;
  prefix.prefix = "stalled";
  auto listed = testing::Servers().azurite.Store(kBucket)->List(prefix);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->objects.empty());
  EXPECT_EQ(Metric(node, "shoal_bytes_written_total"), 0u);
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }
