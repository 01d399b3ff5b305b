// Fuzzes ParseLinkMessage and CheckLinkMessage (wallet_message.h): the
// plane's wallet challenge is outside text the CLI parses before it signs
// anything. Invariants checked independently of the parser: an accepted
// message is at most 1024 bytes of 7 lines, starts with the fixed first
// line, has no control character, and re-rendered from its parsed fields is
// byte for byte the input (so nothing in it was skipped or normalized). A
// message CheckLinkMessage accepts for the parsed fields themselves is one
// ParseLinkMessage accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>

#include "cli/wallet_message.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string Utc(int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = cce::cli::ParseLinkMessage(text);
  if (!m.ok()) {
    Check(m.status().code() == cce::StatusCode::kInternal);
    Check(!m.status().message().empty());
    return 0;
  }
  Check(size <= 1024);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    Check(u == '\n' || (u >= 0x20 && u != 0x7f));
  }
  const std::string rendered = "cce4long wallet link\nplane: " + m->plane_id.Hex() +
                               "\nchain: " + std::to_string(m->chain_id) + "\nuser: " + m->user +
                               "\naddress: " + m->address.Checksummed() + "\nnonce: " + m->nonce +
                               "\nexpires: " + Utc(m->expires);
  Check(rendered == text);
  cce::cli::ExpectedLink want{.plane_id = m->plane_id,
                              .chain_id = m->chain_id,
                              .user = m->user,
                              .address = m->address,
                              .nonce = m->nonce,
                              .now = m->expires - 60};
  Check(cce::cli::CheckLinkMessage(text, want).ok());
  want.now = m->expires;  // expired
  Check(!cce::cli::CheckLinkMessage(text, want).ok());
  return 0;
}
