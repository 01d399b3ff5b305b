// ByteReader: bounds-checked little-endian reads over a byte span, private to
// src/attest. Every failure names the absolute offset and the field, so a
// parse error reads "quote offset 632: signature data length: needs 4 bytes,
// 2 left".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest::internal {

class ByteReader {
 public:
  // base_offset: where data starts in the enclosing object, for messages.
  ByteReader(crypto::ByteSpan data, std::string_view what, size_t base_offset = 0)
      : data_(data), what_(what), base_(base_offset) {}

  size_t offset() const { return base_ + pos_; }  // absolute
  size_t remaining() const { return data_.size() - pos_; }

  Status Error(size_t at, std::string_view field, std::string_view message) const {
    return InvalidArgument(what_ + " offset " + std::to_string(at) + ": " + std::string(field) +
                           ": " + std::string(message));
  }

  StatusOr<crypto::ByteSpan> Take(size_t n, std::string_view field) {
    if (n > remaining()) {
      return Error(offset(), field,
                   "truncated (needs " + std::to_string(n) + " bytes, " +
                       std::to_string(remaining()) + " left)");
    }
    crypto::ByteSpan out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  template <size_t N>
  StatusOr<std::array<uint8_t, N>> Array(std::string_view field) {
    ASSIGN_OR_RETURN(crypto::ByteSpan s, Take(N, field));
    std::array<uint8_t, N> out{};
    for (size_t i = 0; i < N; ++i) out[i] = s[i];
    return out;
  }

  StatusOr<uint8_t> U8(std::string_view field) {
    ASSIGN_OR_RETURN(crypto::ByteSpan s, Take(1, field));
    return s[0];
  }
  StatusOr<uint16_t> U16(std::string_view field) {
    ASSIGN_OR_RETURN(crypto::ByteSpan s, Take(2, field));
    return static_cast<uint16_t>(s[0] | (s[1] << 8));
  }
  StatusOr<uint32_t> U32(std::string_view field) {
    ASSIGN_OR_RETURN(crypto::ByteSpan s, Take(4, field));
    return LoadU32(s);
  }
  StatusOr<uint64_t> U64(std::string_view field) {
    ASSIGN_OR_RETURN(crypto::ByteSpan s, Take(8, field));
    return uint64_t{LoadU32(s)} | (uint64_t{LoadU32(s.subspan(4))} << 32);
  }

 private:
  static uint32_t LoadU32(crypto::ByteSpan s) {
    return uint32_t{s[0]} | (uint32_t{s[1]} << 8) | (uint32_t{s[2]} << 16) | (uint32_t{s[3]} << 24);
  }

  crypto::ByteSpan data_;
  std::string what_;
  size_t base_;
  size_t pos_ = 0;
};

}  // namespace cce::attest::internal
