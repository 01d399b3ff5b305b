// Finding a cookie in a Cookie header (cookie.h).
#include "plane/cookie.h"

#include <algorithm>

namespace cce::plane {
namespace {

// An RFC 2616 section 2.2 token byte: a visible ASCII byte that is not a
// separator.
bool IsTokenByte(char c) {
  static constexpr std::string_view kSeparators = "()<>@,;:\\\"/[]?={} \t";
  return c > 0x20 && c < 0x7f && kSeparators.find(c) == std::string_view::npos;
}

}  // namespace

std::optional<std::string_view> FindCookie(std::string_view header, std::string_view name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenByte)) return std::nullopt;
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
        pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace cce::plane
