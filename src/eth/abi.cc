#include "eth/abi.h"

#include <algorithm>
#include <string>

namespace cce::eth {
namespace {

std::string Field(std::string_view field, std::string_view message) {
  return std::string(field) + ": " + std::string(message);
}

}  // namespace

std::array<uint8_t, 4> Selector(std::string_view signature) {
  const Hash32 h = Keccak256(signature);
  return {h.bytes[0], h.bytes[1], h.bytes[2], h.bytes[3]};
}

Hash32 EventTopic(std::string_view signature) {
  return Keccak256(signature);
}

AbiEncoder::AbiEncoder(std::string_view function_signature) {
  if (!function_signature.empty()) {
    const auto sel = Selector(function_signature);
    out_.assign(sel.begin(), sel.end());
  }
}

AbiEncoder& AbiEncoder::Uint(const U256& v) {
  const auto word = U256ToBytes(v);
  out_.insert(out_.end(), word.begin(), word.end());
  return *this;
}

AbiEncoder& AbiEncoder::Addr(const Address& a) {
  out_.insert(out_.end(), 12, 0);
  out_.insert(out_.end(), a.bytes.begin(), a.bytes.end());
  return *this;
}

AbiEncoder& AbiEncoder::Bytes32(const Hash32& h) {
  out_.insert(out_.end(), h.bytes.begin(), h.bytes.end());
  return *this;
}

AbiEncoder& AbiEncoder::Bool(bool b) {
  return Uint(b ? 1 : 0);
}

crypto::Bytes AbiEncoder::Finish() const {
  return out_;
}

StatusOr<std::vector<Word>> AbiWords(crypto::ByteSpan data, size_t min_words,
                                     std::string_view field) {
  if (data.size() % 32 != 0) {
    return InvalidArgument(Field(
        field, std::to_string(data.size()) + " bytes is not a whole number of 32-byte words"));
  }
  if (data.size() / 32 < min_words) {
    return InvalidArgument(Field(field, "expected at least " + std::to_string(min_words) +
                                            " words, got " + std::to_string(data.size() / 32)));
  }
  std::vector<Word> words(data.size() / 32);
  for (size_t i = 0; i < words.size(); ++i) {
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(32 * i), 32, words[i].begin());
  }
  return words;
}

StatusOr<U256> WordUint(const Word& w, unsigned bits, std::string_view field) {
  if (bits == 0 || bits > 256 || bits % 8 != 0) {
    return InvalidArgument(Field(field, "uint" + std::to_string(bits) + " is not an ABI type"));
  }
  const size_t high = 32 - bits / 8;
  if (!std::all_of(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(high),
                   [](uint8_t b) { return b == 0; })) {
    return InvalidArgument(Field(field, "value does not fit in uint" + std::to_string(bits)));
  }
  return U256FromBytes(w);
}

StatusOr<Address> WordAddress(const Word& w, std::string_view field) {
  if (!std::all_of(w.begin(), w.begin() + 12, [](uint8_t b) { return b == 0; })) {
    return InvalidArgument(Field(field, "address word has non-zero high bytes"));
  }
  Address a;
  std::copy(w.begin() + 12, w.end(), a.bytes.begin());
  return a;
}

StatusOr<bool> WordBool(const Word& w, std::string_view field) {
  ASSIGN_OR_RETURN(U256 v, WordUint(w, 8, field));
  if (v > 1) return InvalidArgument(Field(field, "bool word is neither 0 nor 1"));
  return v == 1;
}

Hash32 WordHash(const Word& w) {
  Hash32 h;
  h.bytes = w;
  return h;
}

}  // namespace cce::eth
