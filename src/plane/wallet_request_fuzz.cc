// libFuzzer target: the wallet and ledger wire types as they cross the
// network -- a wallet request body as the plane reads it (strict decode of
// api::WalletChallengeRequest / api::WalletLinkRequest, then the address
// parse and the signer recovery Wallets::Link runs over a challenge
// message), and the plane's answers as `cce` reads them (lenient decode of
// api::LedgerInfo, LedgerDataset, WalletChallenge, WalletList, RentalList).
// Properties: an accepted address prints back as its lower-case input; a
// decoded value re-encodes and decodes to itself.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/wire.h"
#include "eth/eip191.h"
#include "eth/eth.h"

namespace {

using cce::api::Decode;

template <typename T>
void RoundTrip(std::string_view text, Decode mode) {
  auto v = cce::api::Parse<T>(text, mode, "body");
  if (!v.ok()) return;
  auto again = cce::api::Parse<T>(cce::api::Dump(*v), Decode::kStrict, "body");
  if (!again.ok() || cce::api::Dump(*again) != cce::api::Dump(*v)) std::abort();
}

void CheckAddress(const std::string& text) {
  auto a = cce::eth::ParseAddress(text, "body.address");
  if (!a.ok()) return;
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (a->Hex() != lower) std::abort();
  if (!cce::eth::ParseAddress(a->Checksummed(), "again").ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ch = cce::api::Parse<cce::api::WalletChallengeRequest>(text, Decode::kStrict, "body");
      ch.ok()) {
    CheckAddress(ch->address);
  }
  if (auto link = cce::api::Parse<cce::api::WalletLinkRequest>(text, Decode::kStrict, "body");
      link.ok()) {
    CheckAddress(link->address);
    (void)cce::eth::RecoverPersonalSigner(
        "cce4long wallet link\nplane: 0x00\nchain: 1\nuser: u\naddress: " + link->address +
            "\nnonce: " + link->nonce + "\nexpires: 2026-12-06T16:00:00Z",
        link->signature);
  }
  RoundTrip<cce::api::WalletChallengeRequest>(text, Decode::kStrict);
  RoundTrip<cce::api::WalletLinkRequest>(text, Decode::kStrict);
  RoundTrip<cce::api::LedgerInfo>(text, Decode::kLenient);
  RoundTrip<cce::api::LedgerDataset>(text, Decode::kLenient);
  RoundTrip<cce::api::WalletChallenge>(text, Decode::kLenient);
  RoundTrip<cce::api::WalletList>(text, Decode::kLenient);
  RoundTrip<cce::api::RentalList>(text, Decode::kLenient);
  return 0;
}
