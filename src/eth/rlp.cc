#include "eth/rlp.h"

#include <string>

namespace cce::eth {
namespace {

constexpr int kMaxDepth = 16;

// Minimal big-endian bytes of n (none for 0).
crypto::Bytes MinimalBytes(uint64_t n) {
  crypto::Bytes out;
  while (n != 0) {
    out.insert(out.begin(), static_cast<uint8_t>(n & 0xff));
    n >>= 8;
  }
  return out;
}

// The header for a payload of `len` bytes: short_base (0x80 or 0xc0) + len,
// or short_base + 55 + len-of-len followed by len.
crypto::Bytes Header(uint8_t short_base, size_t len) {
  if (len <= 55) return {static_cast<uint8_t>(short_base + len)};
  crypto::Bytes len_bytes = MinimalBytes(len);
  crypto::Bytes out = {static_cast<uint8_t>(short_base + 55 + len_bytes.size())};
  out.insert(out.end(), len_bytes.begin(), len_bytes.end());
  return out;
}

Status Error(size_t offset, std::string_view what) {
  return InvalidArgument("rlp: byte " + std::to_string(offset) + ": " + std::string(what));
}

class Decoder {
 public:
  explicit Decoder(crypto::ByteSpan in) : in_(in) {}

  // Decodes the item at `pos` (which must end by `end`), advancing pos.
  StatusOr<RlpItem> Item(size_t& pos, size_t end, int depth) {
    if (pos >= end) return Error(pos, "truncated: expected an item");
    const size_t start = pos;
    const uint8_t b = in_[pos++];
    RlpItem item;
    if (b < 0x80) {
      item.bytes = {b};
      return item;
    }
    const bool is_list = b >= 0xc0;
    const uint8_t base = is_list ? 0xc0 : 0x80;
    size_t len = 0;
    if (b - base <= 55) {
      len = static_cast<size_t>(b - base);
    } else {
      const size_t len_of_len = static_cast<size_t>(b - base - 55);
      if (len_of_len > end - pos) return Error(start, "truncated length");
      if (in_[pos] == 0) return Error(start, "length has a leading zero byte (non-canonical)");
      if (len_of_len > sizeof(size_t)) return Error(start, "length does not fit in memory");
      for (size_t i = 0; i < len_of_len; ++i) len = (len << 8) | in_[pos++];
      if (len <= 55) return Error(start, "long form used for a length <= 55 (non-canonical)");
    }
    if (len > end - pos) {
      return Error(start, "truncated: item of " + std::to_string(len) + " bytes, " +
                              std::to_string(end - pos) + " left");
    }
    const size_t item_end = pos + len;
    if (!is_list) {
      if (len == 1 && in_[pos] < 0x80) {
        return Error(start, "single byte below 0x80 encoded as a string (non-canonical)");
      }
      item.bytes.assign(in_.begin() + static_cast<std::ptrdiff_t>(pos),
                        in_.begin() + static_cast<std::ptrdiff_t>(item_end));
      pos = item_end;
      return item;
    }
    if (depth >= kMaxDepth) return Error(start, "lists nested deeper than 16");
    item.is_list = true;
    while (pos < item_end) {
      ASSIGN_OR_RETURN(RlpItem child, Item(pos, item_end, depth + 1));
      item.items.push_back(std::move(child));
    }
    return item;
  }

 private:
  crypto::ByteSpan in_;
};

}  // namespace

crypto::Bytes RlpBytes(crypto::ByteSpan b) {
  if (b.size() == 1 && b[0] < 0x80) return {b[0]};
  crypto::Bytes out = Header(0x80, b.size());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

crypto::Bytes RlpUint(const U256& v) {
  const std::array<uint8_t, 32> be = U256ToBytes(v);
  size_t first = 0;
  while (first < be.size() && be[first] == 0) ++first;
  return RlpBytes(crypto::ByteSpan(be).subspan(first));
}

crypto::Bytes RlpList(const std::vector<crypto::Bytes>& encoded_items) {
  size_t len = 0;
  for (const auto& item : encoded_items) len += item.size();
  crypto::Bytes out = Header(0xc0, len);
  out.reserve(out.size() + len);
  for (const auto& item : encoded_items) out.insert(out.end(), item.begin(), item.end());
  return out;
}

StatusOr<RlpItem> RlpDecode(crypto::ByteSpan in) {
  Decoder decoder(in);
  size_t pos = 0;
  ASSIGN_OR_RETURN(RlpItem item, decoder.Item(pos, in.size(), 0));
  if (pos != in.size()) {
    return Error(pos, std::to_string(in.size() - pos) + " trailing bytes after the item");
  }
  return item;
}

StatusOr<U256> RlpItemUint(const RlpItem& item, size_t max_bytes, std::string_view field) {
  const std::string f(field);
  if (item.is_list) return InvalidArgument(f + ": expected an integer, got a list");
  if (max_bytes > 32) max_bytes = 32;  // U256
  if (item.bytes.size() > max_bytes) {
    return InvalidArgument(f + ": integer of " + std::to_string(item.bytes.size()) +
                           " bytes exceeds " + std::to_string(max_bytes));
  }
  if (!item.bytes.empty() && item.bytes[0] == 0) {
    return InvalidArgument(f + ": integer has a leading zero byte (non-canonical)");
  }
  return U256FromBytes(item.bytes);
}

}  // namespace cce::eth
