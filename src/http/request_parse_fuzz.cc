// libFuzzer target for the server's request parsing path (docs/fuzzing.md):
// internal::ParseRequest, the same Beast parser, limits, header checks and
// JSON nesting check a connection runs, without sockets or TLS.
//
// Input: byte 0 picks the route's body policy (bits 0-1: none, buffered, to
// file) and the limits (bit 2: small limits that the fuzzer reaches easily,
// else the defaults); byte 1 the read size (1..255, 0: 16 KiB); the rest is
// the bytes a client sends. Beyond "no crash, no sanitizer report" it checks
// what the routes rely on: an accepted request respects every limit (header
// bytes, field count, body cap, nesting depth, a lone "chunked" transfer
// coding), a refusal is one of the documented statuses, and the result does
// not depend on how the bytes were split into reads (a parser that did would
// be a request-smuggling risk).
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/request_parse.h"
#include "http/server.h"

namespace {

using cce::http::BodyPolicy;
using cce::http::Limits;
using cce::http::Request;
using cce::http::internal::ParseOutcome;
using cce::http::internal::ParseRequest;
using cce::http::internal::ParseRoute;

[[noreturn]] void Fail() {
  std::abort();
}

// Depth of '[' / '{' outside JSON strings, as the route's contract states it.
int MaxDepth(std::string_view body) {
  int depth = 0;
  int max = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max = std::max(max, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool SameRequest(const Request& a, const Request& b) {
  if (a.method != b.method || a.path != b.path || a.query != b.query || a.body != b.body ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

void CheckOutcome(const ParseOutcome& o, std::string_view bytes, const Limits& limits,
                  const ParseRoute& route) {
  if (o.consumed > bytes.size()) Fail();
  if (o.complete) {
    if (o.status != 0) Fail();
    const Request& r = o.request;
    if (r.method.empty() || r.path.empty() || r.path.front() != '/') Fail();
    if (r.headers.size() > limits.max_header_count) Fail();
    // Beast takes CRLF line endings only, so the header ends at the first
    // empty line; with the request line it is at most max_header_bytes.
    const size_t end = bytes.find("\r\n\r\n");
    if (end == std::string_view::npos || end + 4 > limits.max_header_bytes) Fail();
    const uint64_t cap = route.max_body_bytes == 0 ? limits.max_body_bytes : route.max_body_bytes;
    if (r.body.size() > cap || r.body_size != r.body.size()) Fail();
    if (route.body == BodyPolicy::kNone && !r.body.empty()) Fail();
    // No transfer coding but a single "chunked" (request smuggling).
    size_t codings = 0;
    for (const auto& h : r.headers) {
      if (IEquals(h.name, "transfer-encoding") &&
          (++codings > 1 || !IEquals(Trim(h.value), "chunked"))) {
        Fail();
      }
    }
    if (route.body == BodyPolicy::kBuffered && MaxDepth(r.body) > route.max_nesting) Fail();
    return;
  }
  if (o.status == 0) return;  // needs more bytes
  switch (o.status) {
    case 400:
    case 411:
    case 413:
    case 414:
    case 415:
    case 431:
    case 501: break;
    default: Fail();
  }
  if (o.code.empty() || o.message.empty()) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ParseRoute route;
  switch (data[0] & 3) {
    case 0: route.body = BodyPolicy::kNone; break;
    case 1: route.body = BodyPolicy::kBuffered; break;
    default: route.body = BodyPolicy::kToFile; break;
  }
  Limits limits;
  if ((data[0] & 4) != 0) {
    limits.max_request_line_bytes = 64;
    limits.max_header_bytes = 256;
    limits.max_header_count = 4;
    limits.max_body_bytes = 64;
    route.max_nesting = 3;
  }
  const size_t read_size = data[1] == 0 ? 16 * 1024 : data[1];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  const ParseOutcome split = ParseRequest(bytes, limits, route, read_size);
  CheckOutcome(split, bytes, limits, route);
  const ParseOutcome whole = ParseRequest(bytes, limits, route, bytes.size() + 1);
  CheckOutcome(whole, bytes, limits, route);
  // Beast notices some errors (a bare LF, say) as soon as it sees the bytes
  // after them, so on a prefix one run may still wait for more while the
  // other has refused; only outcomes both runs reached must agree. Which
  // refusal a request that breaks two rules gets (431 or 400) may depend on
  // the reads; that it is refused may not.
  const bool split_final = split.complete || split.status != 0;
  const bool whole_final = whole.complete || whole.status != 0;
  if (split_final && whole_final) {
    if (split.complete != whole.complete) Fail();
    if (split.complete && !SameRequest(split.request, whole.request)) Fail();
  }
  return 0;
}
