// libFuzzer target for the text parsers of src/eth/eth.h (docs/fuzzing.md):
// the input as a string through ParseAddress, ParseHash32, ParseHex,
// ParseQuantity and ParseDecimal. Checks: whatever is accepted formats back
// to the input (lowercased where case is free; an EIP-55 mixed-case address
// must equal its checksummed form), and every refusal names the field.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "eth/eth.h"

namespace {

namespace eth = cce::eth;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void CheckError(const cce::Status& s) {
  if (s.ok() || s.message().rfind("f: ", 0) != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::string lower = Lower(in);

  if (auto a = eth::ParseAddress(in, "f"); a.ok()) {
    if (a->Hex() != lower) std::abort();
    const std::string digits = in.substr(2);
    const bool mixed =
        std::any_of(digits.begin(), digits.end(), [](char c) { return c >= 'a' && c <= 'f'; }) &&
        std::any_of(digits.begin(), digits.end(), [](char c) { return c >= 'A' && c <= 'F'; });
    if (mixed && a->Checksummed() != in) std::abort();
    auto again = eth::ParseAddress(a->Checksummed(), "f");
    if (!again.ok() || *again != *a) std::abort();
  } else {
    CheckError(a.status());
  }

  if (auto h = eth::ParseHash32(in, "f"); h.ok()) {
    if (h->Hex() != lower) std::abort();
  } else {
    CheckError(h.status());
  }

  if (auto b = eth::ParseHex(in, "f"); b.ok()) {
    if (eth::ToHex(*b) != lower) std::abort();
  } else {
    CheckError(b.status());
  }

  if (auto q = eth::ParseQuantity(in, "f"); q.ok()) {
    if (eth::ToQuantity(*q) != lower) std::abort();
  } else {
    CheckError(q.status());
  }

  if (auto d = eth::ParseDecimal(in, "f"); d.ok()) {
    if (eth::ToDecimal(*d) != in) std::abort();
    // FormatEther is exact: "W.F ETH" read back as W * 10^18 + F is the value.
    const std::string ether = eth::FormatEther(*d);
    if (ether.size() < 5 || ether.substr(ether.size() - 4) != " ETH") std::abort();
    const std::string number = ether.substr(0, ether.size() - 4);
    const size_t dot = number.find('.');
    std::string frac = dot == std::string::npos ? "" : number.substr(dot + 1);
    if (frac.size() > 18 || (!frac.empty() && frac.back() == '0')) std::abort();
    frac.append(18 - frac.size(), '0');
    std::string wei = number.substr(0, dot) + frac;
    wei.erase(0, std::min(wei.find_first_not_of('0'), wei.size() - 1));
    auto back = eth::ParseDecimal(wei, "f");
    if (!back.ok() || *back != *d) std::abort();
  } else {
    CheckError(d.status());
  }
  return 0;
}
