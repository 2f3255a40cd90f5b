// shoal-load: many connections to one node from one process, so scale is measured without
// thousands of processes. Holds idle keep-alive connections, trickles headers on slow ones
// (a byte per --slow-interval-ms), and runs concurrent streams that each GET a whole object
// through the node, hashing what they get. Prints one JSON summary.
#include <sys/resource.h>
#include <sys/socket.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/strings.h"
#include "net/http_client.h"
#include "net/node_protocol.h"
#include <algorithm>
#include <random>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string node;                 // HOST:PORT[,HOST:PORT...]
  std::vector<tcp::endpoint> nodes;
  int idle = 0;
  int slow = 0;
  int slow_interval_ms = 1000;
  int streams = 0;
  std::string url;
  std::string token;
  double seconds = 0;  // how long to hold connections when no stream runs
  std::string target;  // the request target (default: /v1/object?url=URL)
  int random_reads = 0;
  uint64_t read_size = 4096;
  int concurrency = 8;
};

struct Totals {
  int idle_opened = 0, slow_opened = 0, connect_failures = 0;
  int slow_closed_by_node = 0;
  int streams_ok = 0, streams_failed = 0;
  uint64_t bytes = 0;
  std::map<std::string, int> digests;  // xxh3 of each whole body -> streams that got it
  std::map<std::string, int> errors;   // first line of each failure -> count
  double first_done = 0, last_done = 0;
  std::vector<double> read_latency_us;  // random reads
  int reads_failed = 0;
};

// The p-th percentile (0-100) of `v` (sorted in place); 0 for none.
double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

awaitable<bool> Connect(tcp::socket& s, const tcp::endpoint& ep) {
  beast::error_code ec;
  co_await s.async_connect(ep, asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

// One stream: GET the whole object, hash every byte.
awaitable<void> Stream(tcp::endpoint ep, const Options* o, Totals* t, Clock::time_point start) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  std::string error;
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  uint64_t got = 0;
  if (!co_await Connect(s, ep)) {
    error = "connect failed";
  } else {
    http::request<http::empty_body> req{http::verb::get, o->target, 11};
    req.set(http::field::host, o->node);
    if (!o->token.empty()) req.set(http::field::authorization, "Bearer " + o->token);
    beast::error_code ec;
    co_await http::async_write(s, req, asio::redirect_error(use_awaitable, ec));
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (!ec) co_await http::async_read_header(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      error = "request failed: " + ec.message();
    } else if (parser.get().result_int() != 200) {
      error = "HTTP " + std::to_string(parser.get().result_int());
    } else {
      std::vector<char> chunk(256 * 1024);
      while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        co_await http::async_read(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) break;
        size_t n = chunk.size() - parser.get().body().size;
        XXH3_64bits_update(h, chunk.data(), n);
        got += n;
      }
      if (ec) error = "body failed after " + std::to_string(got) + " bytes: " + ec.message();
    }
  }
  double done = std::chrono::duration<double>(Clock::now() - start).count();
  t->bytes += got;
  if (error.empty()) {
    t->streams_ok++;
    t->digests[Hex(XXH3_64bits_digest(h)) + ":" + std::to_string(got)]++;
  } else {
    t->streams_failed++;
    t->errors[error]++;
  }
  if (t->first_done == 0 || done < t->first_done) t->first_done = done;
  t->last_done = std::max(t->last_done, done);
  XXH3_freeState(h);
}


// One connection's share of the random reads: ranged GETs of `o->read_size` bytes at random
// offsets of an object of `size` bytes, one after another on one keep-alive connection.
awaitable<void> RandomReads(tcp::endpoint ep, const Options* o, Totals* t, uint64_t size, int count, uint64_t seed) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket s(ex);
  std::mt19937_64 rng(seed);
  std::vector<char> body(o->read_size);
  beast::flat_buffer buffer;
  bool connected = co_await Connect(s, ep);
  for (int i = 0; i < count; i++) {
    if (!connected) {
      t->reads_failed++;
      continue;
    }
    uint64_t offset = size > o->read_size ? rng() % (size - o->read_size + 1) : 0;
    http::request<http::empty_body> req{http::verb::get, o->target, 11};
    req.set(http::field::host, o->node);
    req.set(http::field::range, "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + o->read_size - 1));
    if (!o->token.empty()) req.set(http::field::authorization, "Bearer " + o->token);
    auto started = Clock::now();
    beast::error_code ec;
    co_await http::async_write(s, req, asio::redirect_error(use_awaitable, ec));
    http::response_parser<http::buffer_body> parser;
    if (!ec) co_await http::async_read_header(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
    uint64_t got = 0;
    while (!ec && !parser.is_done()) {
      parser.get().body().data = body.data();
      parser.get().body().size = body.size();
      co_await http::async_read(s, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      got += body.size() - parser.get().body().size;
    }
    if (ec || parser.get().result_int() != 206 || got != std::min(o->read_size, size)) {
      t->reads_failed++;
      t->errors[ec ? "random read: " + ec.message() : "random read: HTTP " + std::to_string(parser.get().result_int())]++;
      if (ec) connected = false;
      continue;
    }
    t->read_latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
    if (!parser.keep_alive()) {
      s.close();
      s = tcp::socket(ex);
      connected = co_await Connect(s, ep);
    }
  }
}

// The object's size: the total of a one-byte ranged GET's Content-Range.
uint64_t ObjectSize(asio::io_context& io, const tcp::endpoint& ep, const Options& o) {
  tcp::socket s(io);
  beast::error_code ec;
  s.connect(ep, ec);
  if (ec) return 0;
  http::request<http::empty_body> req{http::verb::get, o.target, 11};
  req.set(http::field::host, o.node);
  req.set(http::field::range, "bytes=0-0");
  if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
  http::write(s, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(s, buffer, res, ec);
  if (ec) return 0;
  auto range = shoal::http::ParseContentRange(std::string(res[http::field::content_range]));
  return range.ok() && range->total != shoal::http::ContentRange::kUnknownTotal ? range->total : 0;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "shoal-load: many connections to one shoald from one process.\n"
      "  --idle N     keep-alive connections that never send a byte\n"
      "  --slow N     connections that send a request header one byte per --slow-interval-ms\n"
      "               (a node closes them at its --header-timeout)\n"
      "  --streams N  concurrent GETs of --url through the node, each hashed (XXH3); with several\n"
      "               --node endpoints, spread over them in turn\n"
      "  --random-reads N  ranged GETs of --read-size bytes at random offsets, over --concurrency\n"
      "               keep-alive connections: latency p50/p90/p99/max in microseconds\n"
      "Runs until every stream is done (or for --seconds without streams), then prints JSON:\n"
      "connections opened, slow ones the node closed, streams ok/failed, distinct digests\n"
      "(1 when every stream got the same bytes), bytes, and the time of the first and last stream.",
      "shoal-load"};
  Options o;
  std::string token_file;
  app.add_option("--node", o.node, "HOST:PORT of the shoald (IPv4 or [IPv6]); streams: a comma-separated list")
      ->required();
  app.add_option("--idle", o.idle, "Idle keep-alive connections to hold")->capture_default_str();
  app.add_option("--slow", o.slow, "Connections that trickle their header")->capture_default_str();
  app.add_option("--slow-interval-ms", o.slow_interval_ms, "Milliseconds between a slow connection's bytes")
      ->capture_default_str();
  app.add_option("--streams", o.streams, "Concurrent whole-object reads of --url")->capture_default_str();
  app.add_option("--url", o.url, "Object to read, e.g. az://bucket/key (as the node's ?url=)");
  app.add_option("--seconds", o.seconds, "With no streams: how long to hold the connections")->capture_default_str();
  app.add_option("--token-file", token_file, "The node's token, if it has one");
  app.add_option("--target", o.target,
                 "Request target instead of /v1/object?url=URL (to read the same object from another server, "
                 "e.g. a caching proxy's path)");
  app.add_option("--random-reads", o.random_reads, "Ranged GETs at random offsets")->capture_default_str();
  app.add_option("--read-size", o.read_size, "Bytes per random read")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Connections the random reads go over")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if ((o.streams > 0 || o.random_reads > 0) && o.url.empty() && o.target.empty()) {
    std::fprintf(stderr, "shoal-load: --streams and --random-reads need --url (or --target)\n");
    return 2;
  }
  if (o.target.empty()) o.target = shoal::proto::Target(shoal::proto::kObjectPath, {{shoal::proto::kUrlParam, o.url}});
  if (o.read_size == 0 || o.concurrency < 1) {
    std::fprintf(stderr, "shoal-load: --read-size wants bytes > 0 and --concurrency >= 1\n");
    return 2;
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::stringstream ss;
    ss << in.rdbuf();
    o.token = shoal::Trim(ss.str());
  }
  std::stringstream list(o.node);
  for (std::string one; std::getline(list, one, ',');) {
    auto at = shoal::SplitHostPort(one);
    beast::error_code ec;
    auto addr = at.ok() ? asio::ip::make_address(at->host, ec) : asio::ip::address();
    if (!at.ok() || ec || at->port == 0) {
      std::fprintf(stderr, "shoal-load: --node wants HOST:PORT with an IP address and a port, got '%s'\n", one.c_str());
      return 2;
    }
    o.nodes.emplace_back(addr, at->port);
  }
  const tcp::endpoint ep = o.nodes.front();
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }

  asio::io_context io;
  Totals t;
  std::vector<std::unique_ptr<tcp::socket>> idle, slow;
  auto connect_all = [&](int n, std::vector<std::unique_ptr<tcp::socket>>& into) {
    for (int i = 0; i < n; i++) {
      auto s = std::make_unique<tcp::socket>(io);
      beast::error_code cec;
      s->connect(ep, cec);
      if (cec) {
        t.connect_failures++;
        continue;
      }
      into.push_back(std::move(s));
    }
  };
  connect_all(o.idle, idle);
  connect_all(o.slow, slow);
  t.idle_opened = static_cast<int>(idle.size());
  t.slow_opened = static_cast<int>(slow.size());

  auto start = Clock::now();
  int running = 0;
  asio::steady_timer tick(io);  // the slow connections' trickle; cancelled when the last reader ends
  auto ended = [&running, &tick](std::exception_ptr) {
    if (--running == 0) tick.cancel();
  };
  for (int i = 0; i < o.streams; i++) {
    running++;
    asio::co_spawn(io, Stream(o.nodes[i % o.nodes.size()], &o, &t, start), ended);
  }
  uint64_t object_size = o.random_reads > 0 ? ObjectSize(io, ep, o) : 0;
  if (o.random_reads > 0 && object_size == 0) {
    std::fprintf(stderr, "shoal-load: could not learn the size of %s from %s\n", o.target.c_str(), o.node.c_str());
    return 1;
  }
  for (int c = 0; c < (o.random_reads > 0 ? o.concurrency : 0); c++) {
    int share = o.random_reads / o.concurrency + (c < o.random_reads % o.concurrency ? 1 : 0);
    running++;
    asio::co_spawn(io, RandomReads(o.nodes[c % o.nodes.size()], &o, &t, object_size, share, 1000 + c), ended);
  }
  // The slow connections' trickle, and the end of the run, on a timer.
  const std::string header = "GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: " + std::string(4000, 'x') + "\r\n\r\n";
  std::vector<bool> closed(slow.size(), false);
  size_t step = 0;
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(o.slow_interval_ms));
    tick.async_wait([&](beast::error_code tec) {
      if (tec) return;
      for (size_t i = 0; i < slow.size(); i++) {
        if (closed[i]) continue;
        char c;
        ssize_t n = ::recv(slow[i]->native_handle(), &c, 1, MSG_DONTWAIT);
        bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
                    ::send(slow[i]->native_handle(), &header[step % header.size()], 1, MSG_NOSIGNAL) < 0;
        if (gone) {
          closed[i] = true;
          t.slow_closed_by_node++;
        }
      }
      step++;
      double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      bool finished = o.streams > 0 || o.random_reads > 0 ? running == 0 : elapsed >= o.seconds;
      if (!finished) arm();
    });
  };
  arm();
  io.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  int idle_open = 0;
  for (auto& s : idle) {
    char c;
    ssize_t n = ::recv(s->native_handle(), &c, 1, MSG_DONTWAIT);
    idle_open += n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  nlohmann::json out = {{"idle_opened", t.idle_opened},
                        {"idle_open_at_end", idle_open},
                        {"slow_opened", t.slow_opened},
                        {"slow_closed_by_node", t.slow_closed_by_node},
                        {"connect_failures", t.connect_failures},
                        {"streams", o.streams},
                        {"streams_ok", t.streams_ok},
                        {"streams_failed", t.streams_failed},
                        {"distinct_digests", t.digests.size()},
                        {"digests", t.digests},
                        {"errors", t.errors},
                        {"bytes", t.bytes},
                        {"seconds", elapsed},
                        {"first_stream_done_s", t.first_done},
                        {"last_stream_done_s", t.last_done},
                        {"random_reads", t.read_latency_us.size()},
                        {"random_reads_failed", t.reads_failed},
                        {"read_size", o.read_size},
                        {"read_latency_us", {{"p50", Percentile(t.read_latency_us, 50)},
                                             {"p90", Percentile(t.read_latency_us, 90)},
                                             {"p99", Percentile(t.read_latency_us, 99)},
                                             {"max", Percentile(t.read_latency_us, 100)}}}};
  std::printf("%s\n", out.dump(2).c_str());
  return t.streams_failed == 0 && t.connect_failures == 0 && t.reads_failed == 0 ? 0 : 1;
}
