#pragma once

// Test-only: requests captured from the unmodified SDKs (capture_python.py with Debian's boto3
// and azure.storage.blob; capture_js.cjs with @aws-sdk/client-s3, @smithy/signature-v4 and
// @azure/storage-blob from testenv/node_modules), run once per test binary into a temp dir.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/strings.h"
#include "door/request.h"
#include "testing/process.h"

namespace shoal::door::testdata {

inline constexpr const char* kS3Key = "AKIDSHOALTEST01";
inline constexpr const char* kS3Secret = "sEcReT/Key+with=chars01";
inline constexpr const char* kAccount = "shoalacct";
inline constexpr const char* kAccountKey = "c2hvYWwtZG9vci10ZXN0LWFjY291bnQta2V5LTAxMjM0NTY3ODk=";

struct Captured {
  RequestView view;
  std::string body;
};

class Captures {
 public:
  // Runs both capture scripts; an ASSERT failure when either fails.
  void Run() {
    std::string dir = shoal::testing::SourceDir() + "/src/door/testdata";
    auto py = shoal::testing::RunCommand(
        {"/usr/bin/python3", dir + "/capture_python.py", tmp_.path(), kS3Key, kS3Secret, kAccount,
         kAccountKey},
        {{"PYTHONDONTWRITEBYTECODE", "1"}});
    ASSERT_EQ(py.exit_code, 0) << "capture_python.py (needs python3-boto3 python3-azure): "
                               << py.err;
    auto js = shoal::testing::RunCommand(
        {"node", dir + "/capture_js.cjs", tmp_.path(), kS3Key, kS3Secret, kAccount, kAccountKey},
        {{"NODE_PATH", shoal::testing::SourceDir() + "/testenv/node_modules"}});
    ASSERT_EQ(js.exit_code, 0) << "capture_js.cjs: " << js.err;
  }

  // The first request captured under `label` ("boto_put"), as the server would see it.
  Captured Get(const std::string& label) const {
    std::ifstream f(tmp_.path() + "/" + label + "_0.json");
    EXPECT_TRUE(f.good()) << "no capture " << label;
    Captured c;
    if (!f.good()) return c;
    nlohmann::json j = nlohmann::json::parse(f);
    c.view.method = j["method"];
    c.view.raw_path = j["path"];
    c.view.raw_query = j["query"];
    for (const auto& h : j["headers"]) c.view.headers.emplace_back(h[0], h[1]);
    c.view.client_ip = "127.0.0.1";
    auto body = Base64Decode(j["body_b64"].get<std::string>());
    EXPECT_TRUE(body.ok());
    c.body = body.ok() ? *body : "";
    return c;
  }

 private:
  shoal::testing::TempDir tmp_;
};

// A suite whose tests share one capture run.
class CapturedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    captures_ = new Captures();
    captures_->Run();
  }
  static void TearDownTestSuite() {
    delete captures_;
    captures_ = nullptr;
  }
  static Captured Get(const std::string& label) { return captures_->Get(label); }

 private:
  inline static Captures* captures_ = nullptr;
};

// Sets (or adds) header `name` to `value`.
inline void SetHeader(RequestView* v, const std::string& name, const std::string& value) {
  for (auto& [n, val] : v->headers) {
    if (ToLower(n) == ToLower(name)) {
      val = value;
      return;
    }
  }
  v->headers.emplace_back(name, value);
}

inline void RemoveHeader(RequestView* v, const std::string& name) {
  std::erase_if(v->headers, [&](const auto& h) { return ToLower(h.first) == ToLower(name); });
}

// Replaces the first `from` in s with `to`; the test fails if it is absent.
inline std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << "'" << from << "' not in '" << s << "'";
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

}  // namespace shoal::door::testdata
