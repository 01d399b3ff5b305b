#include "cli/wallet_message.h"

#include <ctime>
#include <vector>

namespace cce::cli {
namespace {

constexpr size_t kMaxMessageBytes = 1024;
constexpr int64_t kMaxExpirySeconds = 3600;
constexpr const char* kWhere = "the plane's wallet challenge";

Status Bad(size_t line, std::string_view key, const std::string& what) {
  std::string m = std::string(kWhere) + ": line " + std::to_string(line + 1);
  if (!key.empty()) m += " (" + std::string(key) + ")";
  return Internal(m + ": " + what);
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// "key: value" on line `i`; the value is returned.
StatusOr<std::string_view> Field(const std::vector<std::string_view>& lines, size_t i,
                                 std::string_view key) {
  const std::string_view line = lines[i];
  const std::string prefix = std::string(key) + ": ";
  if (!line.starts_with(prefix)) {
    return Bad(i, key, "expected '" + prefix + "...'");
  }
  std::string_view value = line.substr(prefix.size());
  if (value.empty()) return Bad(i, key, "empty");
  return value;
}

int Int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

StatusOr<int64_t> ParseUtcTimestamp(std::string_view text, std::string_view field) {
  const Status bad = InvalidArgument(std::string(field) + ": '" + std::string(text.substr(0, 40)) +
                                     "': expected YYYY-MM-DDTHH:MM:SSZ");
  // 2026-12-06T16:00:00Z
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return bad;
  }
  for (size_t at : {0, 5, 8, 11, 14, 17}) {
    if (!IsDigits(text.substr(at, at == 0 ? 4 : 2))) return bad;
  }
  if (Int(text.substr(0, 4)) < 1970) return bad;
  std::tm tm{};
  tm.tm_year = Int(text.substr(0, 4)) - 1900;
  tm.tm_mon = Int(text.substr(5, 2)) - 1;
  tm.tm_mday = Int(text.substr(8, 2));
  tm.tm_hour = Int(text.substr(11, 2));
  tm.tm_min = Int(text.substr(14, 2));
  tm.tm_sec = Int(text.substr(17, 2));
  const std::tm asked = tm;
  const time_t t = timegm(&tm);
  // timegm normalizes 02-30 to 03-02: a date that moved was not a date.
  if (t == static_cast<time_t>(-1) || tm.tm_year != asked.tm_year || tm.tm_mon != asked.tm_mon ||
      tm.tm_mday != asked.tm_mday || tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min ||
      tm.tm_sec != asked.tm_sec) {
    return bad;
  }
  return static_cast<int64_t>(t);
}

StatusOr<LinkMessage> ParseLinkMessage(std::string_view message) {
  if (message.size() > kMaxMessageBytes) {
    return Internal(std::string(kWhere) + ": " + std::to_string(message.size()) +
                    " bytes, more than the " + std::to_string(kMaxMessageBytes) +
                    " a link message has");
  }
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i <= message.size(); ++i) {
    if (i == message.size() || message[i] == '\n') {
      lines.push_back(message.substr(start, i - start));
      start = i + 1;
      continue;
    }
    const auto c = static_cast<unsigned char>(message[i]);
    if (c < 0x20 || c == 0x7f) {
      return Internal(std::string(kWhere) + ": byte " + std::to_string(i) +
                      " is a control character (" + std::to_string(c) + ")");
    }
  }
  if (lines.size() != 7) {
    return Internal(std::string(kWhere) + ": " + std::to_string(lines.size()) +
                    " lines, expected the 7 of a cce4long wallet link message"
                    " (no trailing newline)");
  }
  if (lines[0] != "cce4long wallet link") {
    return Bad(0, "", "expected 'cce4long wallet link'");
  }
  LinkMessage out;
  ASSIGN_OR_RETURN(std::string_view plane, Field(lines, 1, "plane"));
  if (plane.size() != 66 || !plane.starts_with("0x") || !IsLowerHex(plane.substr(2))) {
    return Bad(1, "plane", "expected 0x + 64 lowercase hex digits");
  }
  ASSIGN_OR_RETURN(out.plane_id, eth::ParseHash32(plane, "plane"));

  ASSIGN_OR_RETURN(std::string_view chain, Field(lines, 2, "chain"));
  if (!IsDigits(chain) || chain.size() > 19 || (chain.size() > 1 && chain[0] == '0')) {
    return Bad(2, "chain", "expected a decimal chain id");
  }
  out.chain_id = std::stoull(std::string(chain));

  ASSIGN_OR_RETURN(std::string_view user, Field(lines, 3, "user"));
  out.user = std::string(user);

  ASSIGN_OR_RETURN(std::string_view address, Field(lines, 4, "address"));
  auto a = eth::ParseAddress(address, "address");
  if (!a.ok()) return Bad(4, "address", a.status().message());
  // Shown as users see addresses: EIP-55, so a wallet displays the same text.
  if (a->Checksummed() != address) return Bad(4, "address", "expected the EIP-55 form");
  out.address = *a;

  ASSIGN_OR_RETURN(std::string_view nonce, Field(lines, 5, "nonce"));
  if (nonce.size() != 32 || !IsLowerHex(nonce)) {
    return Bad(5, "nonce", "expected 32 lowercase hex digits");
  }
  out.nonce = std::string(nonce);

  ASSIGN_OR_RETURN(std::string_view expires, Field(lines, 6, "expires"));
  auto t = ParseUtcTimestamp(expires, "expires");
  if (!t.ok()) return Bad(6, "expires", t.status().message());
  out.expires = *t;
  return out;
}

Status CheckLinkMessage(std::string_view message, const ExpectedLink& want) {
  ASSIGN_OR_RETURN(LinkMessage got, ParseLinkMessage(message));
  auto refuse = [](std::string_view field, const std::string& got_value,
                   const std::string& want_value) {
    return FailedPrecondition(std::string(kWhere) + " is for " + std::string(field) + " " +
                              got_value + ", expected " + want_value + ": refusing to sign it");
  };
  if (got.plane_id != want.plane_id) {
    return refuse("plane", got.plane_id.Hex(), want.plane_id.Hex());
  }
  if (got.chain_id != want.chain_id) {
    return refuse("chain", std::to_string(got.chain_id), std::to_string(want.chain_id));
  }
  if (got.user != want.user) return refuse("user", "'" + got.user + "'", "'" + want.user + "'");
  if (got.address != want.address) {
    return refuse("address", got.address.Checksummed(), want.address.Checksummed());
  }
  if (got.nonce != want.nonce) return refuse("nonce", got.nonce, want.nonce);
  if (got.expires <= want.now) {
    return FailedPrecondition(std::string(kWhere) +
                              " has already expired (check this machine's clock): refusing "
                              "to sign it");
  }
  if (got.expires > want.now + kMaxExpirySeconds) {
    return FailedPrecondition(std::string(kWhere) + " expires more than " +
                              std::to_string(kMaxExpirySeconds / 60) +
                              " minutes from now: refusing to sign it");
  }
  return Status::Ok();
}

}  // namespace cce::cli
