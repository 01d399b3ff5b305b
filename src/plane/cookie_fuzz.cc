// Fuzzes FindCookie (cookie.h): the browser sends the Cookie header the
// Explore proxy searches for its login cookie. Byte 0 picks the name: even,
// the plane's "cce_explore"; odd, the next (b >> 1) % 16 bytes (any bytes, so
// names that are not tokens are tried too). The rest is the header.
// Checked against the rules in cookie.h, stated independently of the
// scanner: a found value lies in the header right after "name=" at the start
// of a pair, runs to the next ';' or the end, and no earlier pair matches;
// nothing found means no pair starts with "name=".
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plane/cookie.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f ||
        std::string_view("()<>@,;:\\\"/[]?={}").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Whether position `p` of `header` is the start of a pair's name: only
// spaces between it and the header's start or the previous ';'.
bool AtPairStart(std::string_view header, size_t p) {
  while (p > 0 && header[p - 1] == ' ') --p;
  return p == 0 || header[p - 1] == ';';
}

// The first position before `end` where a pair starts with "name=", or npos.
size_t FirstPairAt(std::string_view header, std::string_view name, size_t end) {
  for (size_t p = header.find(name); p != std::string_view::npos && p < end;
       p = header.find(name, p + 1)) {
    const size_t eq = p + name.size();
    if (eq < header.size() && header[eq] == '=' && AtPairStart(header, p)) return p;
  }
  return std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view name = "cce_explore";
  std::string_view header = in.substr(1);
  if ((data[0] & 1) != 0) {
    const size_t n = std::min<size_t>((data[0] >> 1) % 16, header.size());
    name = header.substr(0, n);
    header.remove_prefix(n);
  }

  const auto value = cce::plane::FindCookie(header, name);
  if (!IsToken(name)) {
    Check(!value.has_value());
    return 0;
  }
  const size_t first = FirstPairAt(header, name, header.size());
  if (!value.has_value()) {
    Check(first == std::string_view::npos);
    return 0;
  }
  // The view lies inside the header, right after the first "name=".
  Check(value->data() >= header.data() &&
        value->data() + value->size() <= header.data() + header.size());
  const size_t start = static_cast<size_t>(value->data() - header.data());
  Check(first != std::string_view::npos && start == first + name.size() + 1);
  // It runs to the next ';' or the end of the header.
  const size_t end = start + value->size();
  Check(value->find(';') == std::string_view::npos);
  Check(end == header.size() || header[end] == ';');
  return 0;
}
