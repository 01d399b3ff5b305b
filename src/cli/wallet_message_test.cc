#include "cli/wallet_message.h"

#include <gtest/gtest.h>

#include <string>

namespace cce::cli {
namespace {

// 2026-12-06T16:00:00Z
constexpr int64_t kExpires = 1796572800;
constexpr char kPlane[] = "0x1111111111111111111111111111111111111111111111111111111111111111";
// Anvil's account 2 (EIP-55).
constexpr char kAddress[] = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
constexpr char kNonce[] = "0123456789abcdef0123456789abcdef";

std::string Message(const std::string& address = kAddress) {
  return std::string("cce4long wallet link\nplane: ") + kPlane +
         "\nchain: 31337\nuser: alice\naddress: " + address + "\nnonce: " + kNonce +
         "\nexpires: 2026-12-06T16:00:00Z";
}

ExpectedLink Want() {
  ExpectedLink w;
  w.plane_id = *eth::ParseHash32(kPlane, "plane");
  w.chain_id = 31337;
  w.user = "alice";
  w.address = *eth::ParseAddress(kAddress, "address");
  w.nonce = kNonce;
  w.now = kExpires - 300;
  return w;
}

TEST(WalletMessage, ParsesTheSevenLines) {
  ASSERT_EQ(ParseUtcTimestamp("2026-12-06T16:00:00Z", "t").value(), kExpires);
  auto m = ParseLinkMessage(Message());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->plane_id.Hex(), kPlane);
  EXPECT_EQ(m->chain_id, 31337u);
  EXPECT_EQ(m->user, "alice");
  EXPECT_EQ(m->address.Checksummed(), kAddress);
  EXPECT_EQ(m->nonce, kNonce);
  EXPECT_EQ(m->expires, kExpires);
  EXPECT_TRUE(CheckLinkMessage(Message(), Want()).ok());
}

TEST(WalletMessage, RefusesAnythingElseNamingTheLine) {
  struct Case {
    std::string message;
    std::string expected;
  };
  const std::string m = Message();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = m;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  for (const Case& c : std::vector<Case>{
           {m + "\n", "8 lines"},
           {m + "\nextra: 1", "8 lines"},
           {"Sign in to example.com\nnonce: 1", "2 lines"},
           {replace("cce4long wallet link", "cce4long wallet linK"), "line 1"},
           {replace("\nplane: ", "\nPlane: "), "line 2 (plane)"},
           {replace(kPlane, std::string(kPlane).substr(0, 65)), "line 2 (plane)"},
           {replace("chain: 31337", "chain: 031337"), "line 3 (chain)"},
           {replace("chain: 31337", "chain: -1"), "line 3 (chain)"},
           {replace("user: alice", "user: "), "line 4 (user): empty"},
           {replace(kAddress, "0x3c44CdDdB6a900fa2b585dd299e03d12FA4293BC"), "line 5 (address)"},
           {replace(kAddress, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"),
            "line 5 (address): expected the EIP-55 form"},
           {replace(kNonce, "0123456789ABCDEF0123456789abcdef"), "line 6 (nonce)"},
           {replace("2026-12-06T16:00:00Z", "2026-02-30T16:00:00Z"), "line 7 (expires)"},
           {replace("2026-12-06T16:00:00Z", "2026-12-06 16:00:00Z"), "line 7 (expires)"},
           {replace("user: alice", "user: al\rice"), "control character"},
           {replace("user: alice", "user: al\tice"), "control character"},
           {replace("user: alice", "user: " + std::string(1100, 'a')), "1024"},
       }) {
    auto r = ParseLinkMessage(c.message);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), StatusCode::kInternal);
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << r.status().message() << " / " << c.expected;
    EXPECT_FALSE(CheckLinkMessage(c.message, Want()).ok());
  }
}

// Each binding is checked: a message for another plane, chain, user,
// address or nonce, or an expired one, is not signed.
TEST(WalletMessage, EveryFieldMustBeTheExpectedOne) {
  auto refused = [](const ExpectedLink& w, const std::string& part) {
    Status s = CheckLinkMessage(Message(), w);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("refusing to sign"), std::string::npos) << s.message();
  };
  ExpectedLink w = Want();
  w.plane_id.bytes[31] ^= 1;
  refused(w, "plane 0x1111");
  w = Want();
  w.chain_id = 1;
  refused(w, "chain 31337, expected 1");
  w = Want();
  w.user = "bob";
  refused(w, "user 'alice', expected 'bob'");
  w = Want();
  w.address = *eth::ParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "a");
  refused(w, "address 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC, expected 0x7099");
  w = Want();
  w.nonce = "ffffffffffffffffffffffffffffffff";
  refused(w, "nonce 0123");
  w = Want();
  w.now = kExpires;
  refused(w, "expired");
  w = Want();
  w.now = kExpires - 3601;
  refused(w, "60 minutes");
}

}  // namespace
}  // namespace cce::cli
