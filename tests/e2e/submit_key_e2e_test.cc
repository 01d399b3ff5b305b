// `cce job submit -f` given a key file by mistake: the CLI refuses it before
// anything is sent, and whatever reaches the plane, its error never quotes
// key material (issue 10, finding 7).
#include <gtest/gtest.h>

#include <string>

#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

// True if `text` contains any 8 consecutive hex digits of `hex`.
bool ShowsPartOf(const std::string& text, const std::string& hex) {
  for (size_t i = 0; i + 8 <= hex.size(); ++i) {
    if (text.find(hex.substr(i, 8)) != std::string::npos) return true;
  }
  return false;
}

TEST(JobSubmitSecrets, KeyFileIsRefusedAndNeverEchoed) {
  PlaneFixture plane;
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  ASSERT_TRUE(plane.Login(plane.AddUser("carol", "consumer")));
  ASSERT_EQ(plane.Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  const std::string key_text = ReadFile(t / "claims.key");
  const std::string hex = key_text.substr(key_text.find(' ') + 1, 64);

  auto r = plane.Cce({"job", "submit", "-f", t / "claims.key"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("cce4long key file, not a job spec; refusing to send it"), std::string::npos)
      << r.err;
  EXPECT_FALSE(ShowsPartOf(r.out + r.err, hex)) << r.out << r.err;

  // The same through stdin, with leading blank lines.
  auto piped = RunCommand({BinPath("cce"), "job", "submit", "-f", "-"}, "\n\n" + key_text);
  EXPECT_EQ(piped.exit_code, 2) << piped.err;
  EXPECT_NE(piped.err.find("refusing to send it"), std::string::npos) << piped.err;
  EXPECT_FALSE(ShowsPartOf(piped.out + piped.err, hex)) << piped.err;

  // A PEM private key is refused too.
  WriteFile(t / "tls.key",
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
            "-----END PRIVATE KEY-----\n");
  auto pem = plane.Cce({"job", "submit", "-f", t / "tls.key"});
  EXPECT_EQ(pem.exit_code, 2) << pem.err;
  EXPECT_NE(pem.err.find("PEM private key"), std::string::npos) << pem.err;

  // A spec that carries a secret-looking value still gets a short error from
  // the plane without it.
  WriteFile(t / "job.yaml",
            "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: " + hex + "}\nspec: {}\n");
  auto spec = plane.Cce({"job", "submit", "-f", t / "job.yaml"});
  EXPECT_EQ(spec.exit_code, 2) << spec.err;
  EXPECT_NE(spec.err.find("metadata.name"), std::string::npos) << spec.err;
  EXPECT_FALSE(ShowsPartOf(spec.out + spec.err, hex)) << spec.err;
}

}  // namespace
}  // namespace cce::e2e
