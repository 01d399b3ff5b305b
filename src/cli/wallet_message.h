// Private to src/cli: the wallet-link message a plane asks `cce wallet link`
// to sign (POST /api/v1/wallet/challenge, docs/ledger.md). The CLI signs a
// plane's text with the user's Ethereum key only after checking that it is
// exactly this message, for this plane, chain, user and address: a plane (or
// anyone who can answer for it) must not get a personal_sign signature over
// text of its choosing, such as another site's login message.
//
//   cce4long wallet link
//   plane: 0x<64 hex>
//   chain: <decimal>
//   user: <plane user name>
//   address: <EIP-55 address>
//   nonce: <32 hex>
//   expires: 2026-12-06T16:00:00Z
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "eth/eth.h"

namespace cce::cli {

struct LinkMessage {
  eth::Hash32 plane_id;
  uint64_t chain_id = 0;
  std::string user;
  eth::Address address;
  std::string nonce;    // 32 lowercase hex digits
  int64_t expires = 0;  // unix seconds
};

// Parses the seven lines above (no trailing newline, nothing else: no extra
// line, no carriage return, no control character, at most 1024 bytes).
// Errors: kInternal "the plane's wallet challenge: line N (...): ..." naming
// the line and what is wrong (the text is the plane's, not the user's).
StatusOr<LinkMessage> ParseLinkMessage(std::string_view message);

// What the CLI knows independently of the message.
struct ExpectedLink {
  eth::Hash32 plane_id;  // GET /api/v1/ledger
  uint64_t chain_id = 0;
  std::string user;      // GET /api/v1/whoami
  eth::Address address;  // the key's, or --address
  std::string nonce;     // the challenge's `nonce` field
  int64_t now = 0;       // unix seconds
};

// ParseLinkMessage, then each field compared with `want`; the expiry must be
// after `now` and at most 1 hour ahead of it.
// Errors: kInternal as ParseLinkMessage; kFailedPrecondition "the plane's
// wallet challenge is for FIELD X, expected Y: refusing to sign it".
Status CheckLinkMessage(std::string_view message, const ExpectedLink& want);

// "2026-12-06T16:00:00Z" (exactly this form, UTC) -> unix seconds.
// Errors: kInvalidArgument "FIELD: expected YYYY-MM-DDTHH:MM:SSZ".
StatusOr<int64_t> ParseUtcTimestamp(std::string_view text, std::string_view field);

}  // namespace cce::cli
