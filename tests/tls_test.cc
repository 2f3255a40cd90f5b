// TLS on the node's links: shoald processes serving HTTPS (--tls-cert/--tls-key) in a static
// cluster on loopback in front of a real Azurite (through the counting proxy), peers calling
// each other over HTTPS checked against --tls-ca, `shoal` reaching them with --cache
// https://... and a CA file. Certificates are made by the test with openssl.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::Shoald;
using testing::Until;
constexpr const char* kBucket = "tlstest";

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(proxy_.Start("http://127.0.0.1:" + std::to_string(testing::Servers().azurite.port())).ok());
    std::filesystem::create_directories(dir_.path() + "/ca");
    std::filesystem::create_directories(dir_.path() + "/wrong");
    auto tls = testing::MakeSelfSignedCertificate(dir_.path() + "/ca");  // its own CA
    ASSERT_TRUE(tls.ok()) << tls.status().ToString();
    tls_ = *tls;
    auto wrong = testing::MakeSelfSignedCertificate(dir_.path() + "/wrong");
    ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
    wrong_ = *wrong;
    for (int i = 0; i < 2; i++) ports_.push_back(testing::FreePort());
    for (int i = 0; i < 2; i++) metrics_.push_back(testing::FreePort());
  }

  std::string Endpoint(int i) const { return "127.0.0.1:" + std::to_string(ports_[i]); }
  std::string Metrics(int i) const { return "127.0.0.1:" + std::to_string(metrics_[i]); }

  // Nodes 0..n-1 of a static cluster, each serving HTTPS with the test's certificate, calling
  // its peers over HTTPS checked against `peer_ca`, and plain /metrics on a port of its own.
  void StartCluster(int n, const std::string& peer_ca, std::vector<std::string> extra = {},
                    const testing::TlsFiles* cert = nullptr) {
    if (cert == nullptr) cert = &tls_;
    std::string peers;
    for (int i = 0; i < n; i++) peers += (i ? "," : "") + ("n" + std::to_string(i)) + "=" + Endpoint(i);
    for (int i = 0; i < n; i++) {
      nodes_.push_back(std::make_unique<Shoald>());
      std::vector<std::string> flags = {"--listen", Endpoint(i), "--peers", peers, "--metrics", Metrics(i),
                                        "--tls-cert", cert->cert, "--tls-key", cert->key, "--tls-ca", peer_ca};
      flags.insert(flags.end(), extra.begin(), extra.end());
      Status st = nodes_.back()->Start(proxy_.port(), flags);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }

  // `shoal ARGS` through node i over HTTPS, checked against `ca`.
  testing::CommandResult Shoal(int i, const std::string& ca, std::vector<std::string> args) {
    args.insert(args.begin(), testing::ShoalBinary());
    args.insert(args.begin() + 2, {"--cache", "https://" + Endpoint(i), "--tls-ca", ca});
    return testing::RunCommand(args, testing::Servers().azurite.ClientEnv());
  }

  std::string Url(const std::string& key) const { return std::string("az://") + kBucket + "/" + key; }

  testing::TempDir dir_;
  testing::FaultProxy proxy_;
  testing::TlsFiles tls_, wrong_;
  std::vector<int> ports_, metrics_;
  std::vector<std::unique_ptr<Shoald>> nodes_;
};

// A write through node 0 with a copy on node 1 (a peer call over HTTPS), read back through
// both: every byte right, each node's peers verified (no failed peer request, no failed
// handshake), and the store saw the object's bytes once each way.
TEST_F(TlsTest, AClusterServesAndCopiesOverHttpsWithVerifiedPeers) {
  StartCluster(2, tls_.cert, {"--replicas", "2"});
  ASSERT_TRUE(Until([&] { return testing::NodeMetric(Metrics(1), "shoal_cluster_members") == 2; },
                    std::chrono::seconds(30)));
  const uint64_t size = (20ull << 20) + 5;  // 3 chunks: the two nodes own some each
  std::string file = dir_.path() + "/payload";
  ASSERT_TRUE(testing::WritePatternFile(file, 7, size));
  auto cp = Shoal(0, tls_.cert, {"cp", "-q", file, Url("tls/obj")});
  ASSERT_EQ(cp.exit_code, 0) << cp.err << nodes_[0]->Log();
  EXPECT_EQ(testing::NodeMetric(Metrics(1), "shoal_replica_bytes_total"), size) << "the copy went to node 1";
  ASSERT_TRUE(Until([&] { return testing::NodeMetric(Metrics(0), "shoal_staged_objects") == 0; },
                    std::chrono::seconds(60)));
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "tls/obj"), testing::FileSha256(file));
  for (int i = 0; i < 2; i++) {
    auto cat = testing::RunCommand({"bash", "-c", testing::ShoalBinary() + " cat --cache https://" + Endpoint(i) +
                                                      " --tls-ca " + tls_.cert + " " + Url("tls/obj") + " | sha256sum"},
                                   testing::Servers().azurite.ClientEnv());
    EXPECT_EQ(cat.out.substr(0, 64), testing::FileSha256(file)) << cat.err;
    EXPECT_EQ(testing::NodeMetric(Metrics(i), "shoal_peer_failures_total"), 0u) << nodes_[i]->Log();
    EXPECT_EQ(testing::NodeMetric(Metrics(i), "shoal_tls_handshake_failures_total"), 0u);
  }
}

// sendfile sends a chunk file's bytes as they are, so a TLS connection gets its bytes read into
// memory and encrypted: a warm read over HTTPS sends none with sendfile, while the same node's
// Unix socket (plain) sends every byte with it.
TEST_F(TlsTest, AWarmReadOverTlsIsNotSentWithSendfileButThePlainSocketIs) {
  const std::string socket = dir_.path() + "/node.sock";
  StartCluster(1, tls_.cert, {"--socket", socket});
  const uint64_t size = (20ull << 20) + 5;
  std::string file = dir_.path() + "/payload";
  ASSERT_TRUE(testing::WritePatternFile(file, 9, size));
  auto cp = testing::RunCommand({testing::ShoalBinary(), "cp", "-q", file, Url("tls/plain")},
                                testing::Servers().azurite.ClientEnv());
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  const std::string want = testing::FileSha256(file);
  auto cat = [&](const std::string& cache) {
    auto r = testing::RunCommand({"bash", "-c", testing::ShoalBinary() + " cat --cache " + cache + " --tls-ca " +
                                                    tls_.cert + " " + Url("tls/plain") + " | sha256sum"},
                                 testing::Servers().azurite.ClientEnv());
    return r.out.substr(0, 64) + r.err;
  };
  ASSERT_EQ(cat("https://" + Endpoint(0)), want) << nodes_[0]->Log();  // cold: fetched
  ASSERT_TRUE(Until([&] { return testing::NodeMetric(Metrics(0), "shoal_cache_bytes") == size; },
                    std::chrono::seconds(30)));
  uint64_t served = testing::NodeMetric(Metrics(0), "shoal_bytes_served_total");
  EXPECT_EQ(cat("https://" + Endpoint(0)), want);
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_bytes_served_total") - served, size);
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_sendfile_bytes_total"), 0u) << "TLS: read into memory, encrypted";
  served = testing::NodeMetric(Metrics(0), "shoal_bytes_served_total");
  EXPECT_EQ(cat("unix:" + socket), want);
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_bytes_served_total") - served, size);
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_sendfile_bytes_total"), size) << "the plain socket: sendfile";
}

// A client that does not trust the node's certificate, or speaks plain HTTP to it, gets
// nothing: an error that says what to do, a handshake failure counted, nothing written.
TEST_F(TlsTest, AWrongCaOrPlainHttpIsRefusedAndWritesNothing) {
  StartCluster(1, tls_.cert);
  std::string file = dir_.path() + "/small";
  std::ofstream(file) << "must not arrive";
  auto failures = [&] { return testing::NodeMetric(Metrics(0), "shoal_tls_handshake_failures_total"); };
  // A certificate refusal is final: one handshake, no retry.
  auto wrong = Shoal(0, wrong_.cert, {"cp", "-q", file, Url("tls/refused")});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("certificate was checked against " + wrong_.cert), std::string::npos) << wrong.err;
  EXPECT_EQ(failures(), 1u);
  auto curl = testing::RunCommand({"curl", "-sS", "--max-time", "10", "https://" + Endpoint(0) + "/healthz"});
  EXPECT_NE(curl.exit_code, 0) << "the system's bundle does not trust the test's CA";
  EXPECT_EQ(failures(), 2u);
  // Plain HTTP to the TLS port: the connection is closed, which a client takes as transient.
  auto plain = testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", Endpoint(0), file, Url("tls/refused")},
                                   testing::Servers().azurite.ClientEnv());
  EXPECT_NE(plain.exit_code, 0);
  EXPECT_GT(failures(), 2u);
  EXPECT_EQ(testing::Servers().azurite.Store(kBucket)->Head("tls/refused").status().code(), Code::kNotFound);
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_staged_objects"), 0u);
  auto ok = testing::RunCommand({"curl", "-sS", "--cacert", tls_.cert, "https://" + Endpoint(0) + "/healthz"});
  EXPECT_EQ(ok.out, "ok\n") << ok.err;
}

// Peers verify each other: with --tls-ca naming another CA, node 0 cannot place a copy on
// node 1, so a write that needs two copies fails and nothing is acknowledged.
TEST_F(TlsTest, APeerWithAnUntrustedCertificateGetsNoCopies) {
  StartCluster(2, wrong_.cert, {"--replicas", "2"});
  std::string file = dir_.path() + "/small";
  std::ofstream(file) << std::string(100000, 'x');
  auto cp = Shoal(0, tls_.cert, {"cp", "-q", file, Url("tls/one-copy")});
  EXPECT_NE(cp.exit_code, 0) << "acknowledged with one copy";
  EXPECT_EQ(testing::NodeMetric(Metrics(1), "shoal_replica_bytes_total"), 0u);
  EXPECT_GT(testing::NodeMetric(Metrics(1), "shoal_tls_handshake_failures_total"), 0u);
}

// With --tls-client-ca, a node asks every TLS client for a certificate: peers present their own
// (--tls-cert), so the copy is placed; `shoal` with SHOAL_TLS_CERT/KEY of one signed by that CA
// gets in; without one, or with one the CA did not sign, it is refused at the handshake (final,
// no retry, a message that says what to set), counted, and nothing is written. Plain
// /metrics asks nothing.
TEST_F(TlsTest, WithClientCertificatesAskedForOnlyClientsHoldingOneSignedByTheCaGetIn) {
  StartCluster(2, tls_.cert, {"--replicas", "2", "--tls-client-ca", tls_.cert});
  ASSERT_TRUE(Until([&] { return testing::NodeMetric(Metrics(1), "shoal_cluster_members") == 2; },
                    std::chrono::seconds(30)));
  std::string file = dir_.path() + "/payload";
  ASSERT_TRUE(testing::WritePatternFile(file, 11, (3ull << 20) + 1));
  auto cp = [&](const std::string& key, const testing::TlsFiles* client) {
    testing::Env env = testing::Servers().azurite.ClientEnv();
    if (client != nullptr) {
      env["SHOAL_TLS_CERT"] = client->cert;
      env["SHOAL_TLS_KEY"] = client->key;
    }
    return testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", "https://" + Endpoint(0), "--tls-ca",
                                tls_.cert, file, Url(key)},
                               env);
  };
  auto failures = [&] { return testing::NodeMetric(Metrics(0), "shoal_tls_handshake_failures_total"); };
  auto none = cp("mtls/none", nullptr);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("client certificate (shoald --tls-client-ca)"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("SHOAL_TLS_CERT"), std::string::npos) << none.err;
  EXPECT_EQ(failures(), 1u) << "refused once, not retried: " << none.err;
  auto wrong = cp("mtls/wrong", &wrong_);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("refused the client certificate " + wrong_.cert), std::string::npos) << wrong.err;
  EXPECT_EQ(failures(), 2u) << wrong.err;
  for (const char* key : {"mtls/none", "mtls/wrong"}) {
    EXPECT_EQ(testing::Servers().azurite.Store(kBucket)->Head(key).status().code(), Code::kNotFound) << key;
  }
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_staged_objects"), 0u);
  auto half = testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", "https://" + Endpoint(0), "--tls-ca",
                                   tls_.cert, file, Url("mtls/half")},
                                  {{"SHOAL_TLS_CERT", tls_.cert}});
  EXPECT_NE(half.exit_code, 0) << half.err;
  EXPECT_NE(half.err.find("go together"), std::string::npos) << half.err;

  auto good = cp("mtls/good", &tls_);
  ASSERT_EQ(good.exit_code, 0) << good.err << nodes_[0]->Log();
  EXPECT_EQ(testing::NodeMetric(Metrics(1), "shoal_replica_bytes_total"), (3ull << 20) + 1)
      << "node 0 presented its certificate to node 1: the copy is there";
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_peer_failures_total"), 0u) << nodes_[0]->Log();
  EXPECT_EQ(testing::NodeMetric(Metrics(1), "shoal_tls_handshake_failures_total"), 0u);
  // The Python binding takes the same variables.
  auto python = [&](bool with_certificate) {
    testing::Env env = {{"PYTHONPATH", testing::BinaryDir() + "/python"},
                        {"SHOAL_CACHE", "https://" + Endpoint(1)},
                        {"SHOAL_TLS_CA", tls_.cert}};
    if (with_certificate) {
      env["SHOAL_TLS_CERT"] = tls_.cert;
      env["SHOAL_TLS_KEY"] = tls_.key;
    }
    return testing::RunCommand({"/usr/bin/python3", "-c",
                                "import hashlib, shoal, sys\n"
                                "with shoal.Client().open(sys.argv[1]) as f: print(hashlib.sha256(f.read()).hexdigest())",
                                Url("mtls/good")},
                               env);
  };
  auto py = python(true);
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, testing::FileSha256(file) + "\n") << py.err;
  auto py_none = python(false);
  EXPECT_NE(py_none.exit_code, 0);
  EXPECT_NE(py_none.err.find("SHOAL_TLS_CERT"), std::string::npos) << py_none.err;
  auto bare = testing::RunCommand({"curl", "-sS", "--cacert", tls_.cert, "https://" + Endpoint(0) + "/healthz"});
  EXPECT_NE(bare.out, "ok\n") << "curl without a certificate got in";
  auto held = testing::RunCommand({"curl", "-sS", "--cacert", tls_.cert, "--cert", tls_.cert, "--key", tls_.key,
                                   "https://" + Endpoint(0) + "/healthz"});
  EXPECT_EQ(held.out, "ok\n") << held.err;
  // A node cannot ask for client certificates without serving TLS.
  Shoald plain;
  EXPECT_FALSE(plain.Start(proxy_.port(), {"--tls-client-ca", tls_.cert}).ok());
  EXPECT_NE(plain.Log().find("--tls-client-ca needs --tls-cert"), std::string::npos) << plain.Log();
}

// Nodes reached at addresses their certificates do not name (on Kubernetes, hosts' IPs that
// cert-manager's CSI driver cannot put in a certificate), all of whose certificates name one
// DNS name (the Service over them): with --tls-name the nodes check each other against that
// name, and clients with SHOAL_TLS_NAME; without it a client is refused, told what to set, and
// nothing is written. The certificate is the one deploy-overlays/tls-secret's make-certs.sh
// makes for a Secret: one for every node, signed by a CA of its own.
TEST_F(TlsTest, NodesWhoseCertificatesNameOneDnsNameAreCheckedAgainstIt) {
  const std::string certs = dir_.path() + "/named";
  auto made = testing::RunCommand(
      {testing::SourceDir() + "/deploy-overlays/tls-secret/make-certs.sh", certs, "shoal-nodes.test"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const testing::TlsFiles node_cert{certs + "/tls.crt", certs + "/tls.key"};
  const std::string ca = certs + "/ca.crt";
  StartCluster(2, ca, {"--replicas", "2", "--tls-name", "shoal-nodes.test"}, &node_cert);
  ASSERT_TRUE(Until([&] { return testing::NodeMetric(Metrics(1), "shoal_cluster_members") == 2; },
                    std::chrono::seconds(30)));
  const std::string file = dir_.path() + "/payload";
  const uint64_t size = (3ull << 20) + 5;
  ASSERT_TRUE(testing::WritePatternFile(file, 12, size));
  auto cp = [&](const std::string& key, const char* name) {
    testing::Env env = testing::Servers().azurite.ClientEnv();
    if (name != nullptr) env["SHOAL_TLS_NAME"] = name;
    return testing::RunCommand({testing::ShoalBinary(), "cp", "-q", "--cache", "https://" + Endpoint(0), "--tls-ca",
                                ca, file, Url(key)},
                               env);
  };
  auto unnamed = cp("named/unnamed", nullptr);
  EXPECT_NE(unnamed.exit_code, 0);
  EXPECT_NE(unnamed.err.find("does not name the address"), std::string::npos) << unnamed.err;
  EXPECT_NE(unnamed.err.find("SHOAL_TLS_NAME"), std::string::npos) << unnamed.err;
  auto other = cp("named/other", "other.test");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("does not name the name it was checked against"), std::string::npos) << other.err;
  for (const char* key : {"named/unnamed", "named/other"}) {
    EXPECT_EQ(testing::Servers().azurite.Store(kBucket)->Head(key).status().code(), Code::kNotFound) << key;
  }
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_bytes_written_total"), 0u);

  auto good = cp("named/good", "shoal-nodes.test");
  ASSERT_EQ(good.exit_code, 0) << good.err << nodes_[0]->Log();
  EXPECT_EQ(testing::NodeMetric(Metrics(1), "shoal_replica_bytes_total"), size)
      << "node 0 reached node 1 at its address and checked it against the name: the copy is there";
  EXPECT_EQ(testing::NodeMetric(Metrics(0), "shoal_peer_failures_total"), 0u) << nodes_[0]->Log();
  auto flush = testing::RunCommand({testing::ShoalBinary(), "flush", "--wait", "-q", "--cache",
                                    "https://" + Endpoint(1), "--tls-ca", ca, Url("named/")},
                                   {{"SHOAL_TLS_NAME", "shoal-nodes.test"}});
  ASSERT_EQ(flush.exit_code, 0) << flush.err;
  EXPECT_EQ(testing::ObjectSha256(*testing::Servers().azurite.Store(kBucket), "named/good"), testing::FileSha256(file));
  // The Python binding takes the same variable.
  auto py = testing::RunCommand({"/usr/bin/python3", "-c",
                                 "import hashlib, shoal, sys\n"
                                 "with shoal.Client().open(sys.argv[1]) as f: print(hashlib.sha256(f.read()).hexdigest())",
                                 Url("named/good")},
                                {{"PYTHONPATH", testing::BinaryDir() + "/python"},
                                 {"SHOAL_CACHE", "https://" + Endpoint(1)},
                                 {"SHOAL_TLS_CA", ca},
                                 {"SHOAL_TLS_NAME", "shoal-nodes.test"}});
  EXPECT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, testing::FileSha256(file) + "\n") << py.err;
  auto bad = cp("named/bad", "shoal nodes");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is not a DNS name"), std::string::npos) << bad.err;
  // What a node refuses to start with.
  Shoald plain;
  EXPECT_FALSE(plain.Start(proxy_.port(), {"--tls-name", "shoal-nodes.test"}).ok());
  EXPECT_NE(plain.Log().find("--tls-name names what peers' certificates are checked against: it needs TLS"),
            std::string::npos)
      << plain.Log();
}

// A certificate rotated on disk and SIGHUP: new connections get the new one, a connection
// opened before keeps working (its requests are answered), and a bad file keeps the old one.
TEST_F(TlsTest, ACertificateReloadedOnSighupServesNewConnectionsAndKeepsOpenOnes) {
  StartCluster(1, tls_.cert);
  std::filesystem::create_directories(dir_.path() + "/next");
  auto next = testing::MakeSelfSignedCertificate(dir_.path() + "/next");
  ASSERT_TRUE(next.ok());
  std::string bundle = dir_.path() + "/bundle.pem";
  {
    std::ofstream out(bundle);
    out << std::ifstream(tls_.cert).rdbuf() << std::ifstream(next->cert).rdbuf();
  }
  // A client that keeps one connection open across the rotation and prints the fingerprint of
  // the certificate each connection saw.
  const std::string flag = dir_.path() + "/rotated";
  const std::string script = R"(
import hashlib, http.client, os, ssl, sys, time
port, bundle, flag = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=bundle)
def fingerprint(conn):
    return hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
old = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
old.request("GET", "/healthz"); assert old.getresponse().read() == b"ok\n"
print("before", fingerprint(old), flush=True)
for _ in range(300):
    if os.path.exists(flag): break
    time.sleep(0.1)
old.request("GET", "/healthz"); print("kept", old.getresponse().read() == b"ok\n", fingerprint(old), flush=True)
new = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
new.request("GET", "/healthz"); assert new.getresponse().read() == b"ok\n"
print("new", fingerprint(new), flush=True)
)";
  std::ofstream(dir_.path() + "/client.py") << script;
  auto fingerprint = [](const std::string& cert) {
    auto r = testing::RunCommand({"bash", "-c", "openssl x509 -in " + cert + " -outform DER | sha256sum"});
    return r.out.substr(0, 64);
  };
  testing::Subprocess client;
  ASSERT_TRUE(client.Start({"/usr/bin/python3", dir_.path() + "/client.py", std::to_string(ports_[0]), bundle, flag},
                           {}, dir_.path() + "/client.out"));
  auto out = [&] {
    std::ifstream in(dir_.path() + "/client.out");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  ASSERT_TRUE(Until([&] { return out().find("before") != std::string::npos; }, std::chrono::seconds(30))) << out();
  // A broken file first: SIGHUP keeps the certificate in use, and says why.
  std::filesystem::copy_file(tls_.cert, dir_.path() + "/ca/cert.orig");
  std::ofstream(tls_.cert) << "not a certificate\n";
  ::kill(nodes_[0]->Pid(), SIGHUP);
  ASSERT_TRUE(Until([&] { return nodes_[0]->Log().find("SIGHUP: TLS certificate kept") != std::string::npos; },
                    std::chrono::seconds(30)));
  auto still = testing::RunCommand({"curl", "-sS", "--cacert", bundle, "https://" + Endpoint(0) + "/healthz"});
  EXPECT_EQ(still.out, "ok\n") << still.err;
  // Now the next certificate, in place of the old one.
  std::filesystem::copy_file(next->cert, tls_.cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(next->key, tls_.key, std::filesystem::copy_options::overwrite_existing);
  ::kill(nodes_[0]->Pid(), SIGHUP);
  ASSERT_TRUE(Until([&] { return nodes_[0]->Log().find("SIGHUP: TLS certificate reloaded") != std::string::npos; },
                    std::chrono::seconds(30)));
  std::ofstream(flag) << "1";
  ASSERT_TRUE(Until([&] { return out().find("new") != std::string::npos; }, std::chrono::seconds(30))) << out();
  EXPECT_TRUE(Until([&] { return !client.running(); }, std::chrono::seconds(30))) << out();
  const std::string was = fingerprint(dir_.path() + "/ca/cert.orig"), now = fingerprint(next->cert);
  EXPECT_NE(out().find("before " + was), std::string::npos) << out();
  EXPECT_NE(out().find("kept True " + was), std::string::npos) << out();
  EXPECT_NE(out().find("new " + now), std::string::npos) << out();
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBucket); }
