// Private to src/plane: finding one cookie in a browser's Cookie header, the
// way the Explore proxy finds its login cookie (cce_explore) before it lets a
// request through to a session's Jupyter server.
#pragma once

#include <optional>
#include <string_view>

namespace cce::plane {

// The value of cookie `name` in `header`, the value of one Cookie header
// field: an RFC 6265 section 4.2.1 cookie-string ("a=1; b=2"). The returned
// view points into `header`.
//
// Rules (what the plane has always done; a caller relies on each):
// - The header is split at every ';' into cookie-pairs; spaces (' ' only)
//   before a pair are skipped; nothing else is trimmed, so trailing spaces
//   or tabs stay in the value.
// - A pair matches when it starts with exactly `name` followed by '='
//   (case-sensitive), so "xcce_explore=" and "cce_explore_x=" are other
//   cookies. A pair "name" without '=' is not a match.
// - The value is every byte after that '=' up to the next ';' or the end,
//   as is: double quotes are not removed (RFC 6265 keeps them as part of
//   the cookie-value) and no byte is decoded.
// - The FIRST matching pair wins; later pairs of the same name are ignored
//   (not refused). The plane's own cookie values are base64url, so a value
//   an attacker planted before it fails the hash check and is refused, never
//   mistaken for another user's login.
// - A present but empty value ("name=") is returned as an empty view; the
//   caller decides what empty means (the Explore proxy treats it as absent).
// Returns nullopt if no pair matches, or if `name` is empty or not an RFC
// 2616 token (control bytes, spaces and separators such as ';' and '='
// can never name a cookie).
std::optional<std::string_view> FindCookie(std::string_view header, std::string_view name);

}  // namespace cce::plane
