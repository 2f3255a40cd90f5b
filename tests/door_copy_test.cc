// The front door's copies and durable acknowledgements with an unmodified boto3
// (tests/door_copy_boto3.py): CopyObject and UploadPartCopy within and across an
// Azure-fronting and an S3-fronting bucket, their conditions and refusals; PutObject,
// CopyObject and CompleteMultipartUpload answered `x-shoal-state: durable` when asked with
// `x-shoal-wait: durable`, and then already in the backend.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "testing/data.h"
#include "testing/servers_environment.h"
#include "testing/shoald.h"

namespace shoal {
namespace {

using testing::Shoald;

constexpr const char* kBackend = "doorcopy";

class DoorCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(tmp_.path() + "/keys") << "s3 AKIDCOPYTEST0001 rw-secret data:read-write s3data:read-write\n"
                                         << "s3 AKIDCOPYREADONLY ro-secret data:read\n"
                                         << "s3 AKIDCOPYSCOPED01 scoped-secret data/team-a/:read-write\n";
    node_.SetEnv(testing::Servers().s3rver.ClientEnv());
    Status st = node_.Start(testing::Servers().azurite.port(),
                            {"--replicas", "1", "--bucket", "data=az://" + std::string(kBackend) + "/door", "--bucket",
                             "s3data=s3://" + std::string(kBackend), "--credentials", tmp_.path() + "/keys"});
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // One step of door_copy_boto3.py: the JSON line it printed last.
  nlohmann::json Step(const std::string& step, const std::vector<std::string>& args) {
    std::vector<std::string> cmd = {"/usr/bin/python3", testing::SourceDir() + "/tests/door_copy_boto3.py", step,
                                    "http://" + node_.Endpoint()};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = testing::RunCommand(cmd,
                                 {{"DOOR_KEY_RW", "AKIDCOPYTEST0001:rw-secret"}, {"DOOR_KEY_RO", "AKIDCOPYREADONLY:ro-secret"},
                                  {"DOOR_KEY_SCOPED", "AKIDCOPYSCOPED01:scoped-secret"}, {"AWS_CONFIG_FILE", "/dev/null"},
                                  {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}, {"AWS_EC2_METADATA_DISABLED", "true"}},
                                 "", std::chrono::seconds(300));
    EXPECT_EQ(r.exit_code, 0) << r.err << "\nnode log:\n" << node_.Log();
    size_t nl = r.out.rfind('\n', r.out.size() - 2);
    auto j = nlohmann::json::parse(r.out.substr(nl == std::string::npos ? 0 : nl + 1), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  testing::TempDir tmp_;
  Shoald node_;
};

// Copies within the Azure-fronting bucket, onto itself with new metadata, and across to and
// from the S3-fronting one; parts copied by range and whole into one object. What the
// backends hold is what was copied, with the metadata COPY keeps and REPLACE gives; refused
// copies write nothing.
TEST_F(DoorCopyTest, CopiesWithinAndAcrossBackends) {
  auto r = Step("copy", {"data", "s3data"});
  auto seen = r["seen"];
  EXPECT_EQ(seen["if-match-wrong"], nlohmann::json({"PreconditionFailed", 412}));
  EXPECT_EQ(seen["if-none-match-equal"], nlohmann::json({"PreconditionFailed", 412}));
  EXPECT_EQ(seen["if-match-right"], nlohmann::json({nullptr, 200}));
  EXPECT_EQ(seen["if-none-match-other"], nlohmann::json({nullptr, 200}));
  EXPECT_EQ(seen["version-id"], nlohmann::json({"NotImplemented", 501}));
  EXPECT_EQ(seen["onto-itself"], nlohmann::json({"InvalidRequest", 400}));
  EXPECT_EQ(seen["no-such-key"], nlohmann::json({"NoSuchKey", 404}));
  EXPECT_EQ(seen["no-such-bucket"], nlohmann::json({"NoSuchBucket", 404}));
  EXPECT_EQ(seen["bad-directive"], nlohmann::json({"InvalidArgument", 400}));
  EXPECT_EQ(seen["read-only-key"], nlohmann::json({"AccessDenied", 403}));
  EXPECT_EQ(seen["scoped-source-outside"], nlohmann::json({"AccessDenied", 403}));
  EXPECT_EQ(seen["scoped-inside"], nlohmann::json({nullptr, 200}));
  EXPECT_EQ(seen["bad-range"], nlohmann::json({"InvalidArgument", 400}));
  ASSERT_TRUE(testing::WaitUntilDurable(node_.Endpoint(), std::chrono::seconds(120)));
  auto az = testing::Servers().azurite.Store(kBackend);
  auto s3 = testing::Servers().s3rver.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/dst/copied.bin"), r["sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/dst/replaced.bin"), r["sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*s3, "from-az.bin"), r["sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/dst/from-s3.bin"), r["other_sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/dst/joined.bin"), r["joined_sha256"]);
  auto copied = az->Head("door/dst/copied.bin");
  ASSERT_TRUE(copied.ok() && copied->meta) << copied.status().ToString();
  EXPECT_EQ(copied->meta->content_type, "application/x-test");
  EXPECT_EQ(copied->meta->user, (std::map<std::string, std::string>{{"origin", "az"}, {"step", "one"}}));
  auto replaced = az->Head("door/dst/replaced.bin");
  ASSERT_TRUE(replaced.ok() && replaced->meta) << replaced.status().ToString();
  EXPECT_EQ(replaced->meta->user, (std::map<std::string, std::string>{{"fresh", "again"}}));
  auto from_s3 = az->Head("door/dst/from-s3.bin");
  ASSERT_TRUE(from_s3.ok() && from_s3->meta) << from_s3.status().ToString();
  EXPECT_EQ(from_s3->meta->user, (std::map<std::string, std::string>{{"side", "s3"}}));
  auto joined = az->Head("door/dst/joined.bin");
  ASSERT_TRUE(joined.ok() && joined->meta) << joined.status().ToString();
  EXPECT_EQ(joined->meta->user, (std::map<std::string, std::string>{{"joined", "3"}}));
  for (const char* key : {"door/refused/a", "door/refused/b", "door/refused/c", "door/refused/d", "door/refused/e",
                          "door/refused/f", "door/refused/g", "door/team-a/refused"}) {
    EXPECT_EQ(az->Head(key).status().code(), Code::kNotFound) << key;
  }
  EXPECT_TRUE(az->Head("door/team-a/copy").ok());
}

// Asked with x-shoal-wait: durable, PutObject, CopyObject and CompleteMultipartUpload answer
// x-shoal-state: durable, and the backend holds the object when they do (no wait here);
// without it the answer is `local`; another value is refused.
TEST_F(DoorCopyTest, WritesAnswerDurableWhenAsked) {
  auto r = Step("durable", {"data"});
  auto states = r["states"];
  EXPECT_EQ(states["put"], "durable");
  EXPECT_EQ(states["copy"], "durable");
  EXPECT_EQ(states["complete"], "durable");
  EXPECT_EQ(states["put-plain"], "local");
  EXPECT_EQ(states["bad-value"], nlohmann::json({"InvalidArgument", 400}));
  auto az = testing::Servers().azurite.Store(kBackend);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/durable/put.bin"), r["sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/durable/copy.bin"), r["sha256"]);
  EXPECT_EQ(testing::ObjectSha256(*az, "door/durable/mp.bin"), r["sha256"]);
  EXPECT_EQ(az->Head("door/durable/refused").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace shoal

int main(int argc, char** argv) { return shoal::testing::RunTestsWithServers(argc, argv, shoal::kBackend); }
