#include "eth/eth.h"

#include <cryptopp/keccak.h>

#include <string>

namespace cce::eth {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Field(std::string_view field, std::string_view message) {
  return std::string(field) + ": " + std::string(message);
}

// Requires the "0x" prefix; returns the digits after it.
StatusOr<std::string_view> StripPrefix(std::string_view s, std::string_view field) {
  if (s.size() < 2 || s[0] != '0' || s[1] != 'x') {
    return InvalidArgument(Field(field, "expected a 0x-prefixed hex string"));
  }
  return s.substr(2);
}

// Decodes exactly out.size()*2 hex digits; errors name the offset in the
// original string (after "0x", hence + 2).
Status DecodeDigits(std::string_view digits, std::span<uint8_t> out, std::string_view field) {
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(digits[2 * i]);
    const int lo = HexValue(digits[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      const size_t at = 2 + 2 * i + (hi < 0 ? 0 : 1);
      return InvalidArgument(Field(field, "non-hex character at offset " + std::to_string(at)));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return Status::Ok();
}

template <size_t N>
StatusOr<std::array<uint8_t, N>> ParseFixed(std::string_view s, std::string_view field) {
  ASSIGN_OR_RETURN(std::string_view digits, StripPrefix(s, field));
  if (digits.size() != 2 * N) {
    return InvalidArgument(Field(field, "expected 0x and " + std::to_string(2 * N) +
                                            " hex digits, got " + std::to_string(digits.size())));
  }
  std::array<uint8_t, N> out{};
  RETURN_IF_ERROR(DecodeDigits(digits, out, field));
  return out;
}

}  // namespace

std::string ToHex(crypto::ByteSpan bytes) {
  std::string out = "0x";
  out.reserve(2 + 2 * bytes.size());
  for (uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

std::string Address::Hex() const {
  return ToHex(bytes);
}

std::string Address::Checksummed() const {
  std::string hex = Hex();
  const Hash32 h = Keccak256(std::string_view(hex).substr(2));
  for (size_t i = 0; i < 40; ++i) {
    const uint8_t nibble = (i % 2 == 0) ? h.bytes[i / 2] >> 4 : h.bytes[i / 2] & 0xf;
    char& c = hex[2 + i];
    if (c >= 'a' && c <= 'f' && nibble >= 8) c = static_cast<char>(c - 'a' + 'A');
  }
  return hex;
}

std::string Hash32::Hex() const {
  return ToHex(bytes);
}

Hash32 Keccak256(crypto::ByteSpan data) {
  CryptoPP::Keccak_256 keccak;
  keccak.Update(data.data(), data.size());
  Hash32 out;
  keccak.Final(out.bytes.data());
  return out;
}

Hash32 Keccak256(std::string_view text) {
  return Keccak256(crypto::AsBytes(text));
}

StatusOr<crypto::Bytes> ParseHex(std::string_view s, std::string_view field) {
  ASSIGN_OR_RETURN(std::string_view digits, StripPrefix(s, field));
  if (digits.size() % 2 != 0) {
    return InvalidArgument(
        Field(field, "odd number of hex digits (" + std::to_string(digits.size()) + ")"));
  }
  crypto::Bytes out(digits.size() / 2);
  RETURN_IF_ERROR(DecodeDigits(digits, out, field));
  return out;
}

StatusOr<Address> ParseAddress(std::string_view s, std::string_view field) {
  Address a;
  ASSIGN_OR_RETURN(a.bytes, ParseFixed<20>(s, field));
  bool lower = false;
  bool upper = false;
  for (char c : s.substr(2)) {
    lower |= (c >= 'a' && c <= 'f');
    upper |= (c >= 'A' && c <= 'F');
  }
  // Mixed case claims an EIP-55 checksum: it must be the right one (a typo in
  // a checksummed address is refused, never silently accepted).
  if (lower && upper && s.substr(2) != std::string_view(a.Checksummed()).substr(2)) {
    return InvalidArgument(
        Field(field, "EIP-55 checksum mismatch (expected " + a.Checksummed() + ")"));
  }
  return a;
}

StatusOr<Hash32> ParseHash32(std::string_view s, std::string_view field) {
  Hash32 h;
  ASSIGN_OR_RETURN(h.bytes, ParseFixed<32>(s, field));
  return h;
}

StatusOr<U256> ParseQuantity(std::string_view s, std::string_view field) {
  ASSIGN_OR_RETURN(std::string_view digits, StripPrefix(s, field));
  if (digits.empty()) return InvalidArgument(Field(field, "quantity has no digits"));
  if (digits.size() > 1 && digits[0] == '0') {
    return InvalidArgument(Field(field, "quantity has a leading zero"));
  }
  if (digits.size() > 64) return InvalidArgument(Field(field, "quantity exceeds 256 bits"));
  U256 v = 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    const int d = HexValue(digits[i]);
    if (d < 0) {
      return InvalidArgument(Field(field, "non-hex character at offset " + std::to_string(2 + i)));
    }
    v = (v << 4) | static_cast<unsigned>(d);
  }
  return v;
}

std::string ToQuantity(const U256& v) {
  if (v == 0) return "0x0";
  std::string digits;
  U256 x = v;
  while (x != 0) {
    digits.push_back(kHexDigits[static_cast<unsigned>(x & 0xf)]);
    x >>= 4;
  }
  return "0x" + std::string(digits.rbegin(), digits.rend());
}

StatusOr<U256> ParseDecimal(std::string_view s, std::string_view field) {
  if (s.empty()) return InvalidArgument(Field(field, "empty number"));
  if (s.size() > 1 && s[0] == '0') return InvalidArgument(Field(field, "leading zero"));
  static const U256 kMax = ~U256(0);
  U256 v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') {
      return InvalidArgument(Field(field, "non-digit at offset " + std::to_string(i)));
    }
    const unsigned d = static_cast<unsigned>(c - '0');
    if (v > (kMax - d) / 10) return InvalidArgument(Field(field, "exceeds 2^256-1"));
    v = v * 10 + d;
  }
  return v;
}

std::string ToDecimal(const U256& v) {
  return v.str();
}

std::string FormatEther(const U256& wei) {
  static const U256 kWeiPerEther("1000000000000000000");
  const U256 whole = wei / kWeiPerEther;
  std::string frac = (wei % kWeiPerEther).str();
  frac.insert(0, 18 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return whole.str() + (frac.empty() ? "" : "." + frac) + " ETH";
}

std::array<uint8_t, 32> U256ToBytes(const U256& v) {
  std::array<uint8_t, 32> out{};
  U256 x = v;
  for (size_t i = 0; i < 32; ++i) {
    out[31 - i] = static_cast<uint8_t>(x & 0xff);
    x >>= 8;
  }
  return out;
}

U256 U256FromBytes(crypto::ByteSpan big_endian) {
  if (big_endian.size() > 32) big_endian = big_endian.subspan(big_endian.size() - 32);
  U256 v = 0;
  for (uint8_t b : big_endian) v = (v << 8) | b;
  return v;
}

}  // namespace cce::eth
