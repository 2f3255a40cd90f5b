#pragma once

// For test binaries that share one Azurite and one s3rver across all their tests:
//   int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, "bucket"); }
// and in tests, shoal::testing::Servers().azurite / .s3rver. Header-only: it needs gtest,
// which the testing library itself does not link.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "testing/servers.h"

namespace shoal::testing {

struct StoreServers {
  Azurite azurite;
  S3rver s3rver;
};

inline std::unique_ptr<StoreServers>& ServersSlot() {
  static std::unique_ptr<StoreServers> slot;
  return slot;
}

// The servers of this test binary; valid between the environment's SetUp and TearDown.
inline StoreServers& Servers() { return *ServersSlot(); }

// Starts both servers and creates `bucket` in each, once for the whole binary.
class StoreServersEnvironment : public ::testing::Environment {
 public:
  explicit StoreServersEnvironment(std::string bucket) : bucket_(std::move(bucket)) {}
  void SetUp() override {
    ServersSlot() = std::make_unique<StoreServers>();
    Status st = Servers().azurite.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = Servers().s3rver.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = Servers().azurite.Store(bucket_)->CreateBucket();
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = Servers().s3rver.Store(bucket_)->CreateBucket();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override { ServersSlot().reset(); }

 private:
  std::string bucket_;
};

// Environment for a child process that talks to both servers (optionally through proxies).
inline Env ServersClientEnv(int azure_via = 0, int s3_via = 0) {
  Env env = Servers().azurite.ClientEnv(azure_via);
  for (auto& [k, v] : Servers().s3rver.ClientEnv(s3_via)) env[k] = v;
  return env;
}

inline int RunTestsWithServers(int argc, char** argv, const std::string& bucket) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new StoreServersEnvironment(bucket));
  return RUN_ALL_TESTS();
}

}  // namespace shoal::testing
