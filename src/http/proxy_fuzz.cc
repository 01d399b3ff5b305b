// libFuzzer target for the proxy's upstream response path (docs/fuzzing.md):
// internal::ParseUpstreamResponse, the same Beast parser, limits, interim
// response handling and client head building a proxied connection runs,
// without sockets or TLS. Upstream is a session's Jupyter server, code its
// user controls, so its bytes are as hostile as a client's.
//
// Input: byte 0 flags (bit 0: a HEAD request, bit 1: the client asked for a
// WebSocket upgrade, bit 2: an HTTP/1.0 client, bit 3: upstream closes after
// the bytes); byte 1 the read size (1..255, 0: 16 KiB); the rest is what
// upstream sends. Beyond "no crash, no sanitizer report" it checks what the
// client relies on: the head it would be sent is well formed (CRLF only at
// line ends, one framing, re-parses to the same status), never sets the
// plane's cookie, frames a Content-Length body exactly, a 101 only follows
// an upgrade request, and the outcome does not depend on how the bytes were
// split into reads (a parser that did would be a response-splitting risk).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/proxy.h"
#include "http/server.h"

namespace {

using cce::http::ProxyTarget;
using cce::http::internal::ClientFraming;
using cce::http::internal::ClientHeadParams;
using cce::http::internal::ParseUpstreamResponse;
using cce::http::internal::UpstreamParseOutcome;

constexpr const char* kPlaneCookie = "cce_session";

[[noreturn]] void Fail() {
  std::abort();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

void CheckHead(const UpstreamParseOutcome& o, const ClientHeadParams& params,
               const ProxyTarget& proxy) {
  const std::string& head = o.client.head;
  if (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) Fail();
  if (head.rfind("HTTP/1.1 " + std::to_string(o.status) + " ", 0) != 0) Fail();
  if (o.status < 100 || o.status > 599) Fail();
  if (o.status < 200 && o.status != 101) Fail();  // interim responses are dropped
  if (o.client.tunnel != (o.status == 101)) Fail();
  if (o.client.tunnel && !params.upgrade_requested) Fail();
  int content_length = 0;
  int transfer_encoding = 0;
  size_t start = 0;
  for (;;) {
    size_t end = head.find("\r\n", start);
    if (end == std::string::npos) Fail();
    std::string_view line(head.data() + start, end - start);
    if (line.empty()) {
      if (end + 2 != head.size()) Fail();
      break;
    }
    for (char c : line) {
      if (c == '\r' || c == '\n' || c == '\0') Fail();
    }
    const std::string lower = Lower(line);
    if (lower.rfind("content-length:", 0) == 0) ++content_length;
    if (lower.rfind("transfer-encoding:", 0) == 0) ++transfer_encoding;
    if (lower.rfind("set-cookie:", 0) == 0) {
      std::string_view v = line.substr(11);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      if (v.rfind(std::string(kPlaneCookie) + "=", 0) == 0) Fail();
    }
    start = end + 2;
  }
  if (content_length > 1 || transfer_encoding > 1) Fail();
  switch (o.client.framing) {
    case ClientFraming::kChunked:
      if (transfer_encoding != 1 || content_length != 0 || params.client_version != 11) Fail();
      break;
    case ClientFraming::kLength:
      if (content_length != 1 || transfer_encoding != 0) Fail();
      break;
    case ClientFraming::kUntilClose:
      if (content_length != 0 || transfer_encoding != 0 || !o.client.close) Fail();
      break;
    case ClientFraming::kNone:
      if (transfer_encoding != 0) Fail();
      break;
  }
  // The head the client gets parses back (as a HEAD answer: no body) to the
  // same status. Our framing and Connection fields may take a head that was
  // just under the upstream limits over them: only those refusals pass.
  ClientHeadParams again = params;
  again.head_request = true;
  UpstreamParseOutcome re = ParseUpstreamResponse(head, false, proxy, again, head.size());
  const bool over_limit = re.error.find("more than") != std::string::npos ||
                          re.error.find("larger than") != std::string::npos;
  if (over_limit) return;
  if (!re.error.empty() || !re.head_done || re.status != o.status) Fail();
}

// Split and whole reads must agree once both have an outcome. (Before that
// they may differ in when: Beast, once it needed more bytes in a head,
// waits for the head's end before parsing again, so a bad status line in a
// head cut short is refused at once when whole and only later when split.)
void CheckSame(const UpstreamParseOutcome& a, const UpstreamParseOutcome& b) {
  const bool a_final = !a.error.empty() || a.done;
  const bool b_final = !b.error.empty() || b.done;
  if (a_final && b_final) {
    if (a.error.empty() != b.error.empty()) Fail();
    if (a.error.empty() &&
        (a.status != b.status || a.client.head != b.client.head || a.body != b.body)) {
      Fail();
    }
  }
  if (a.error.empty() && b.error.empty() && a.head_done && b.head_done &&
      (a.status != b.status || a.client.head != b.client.head)) {
    Fail();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ClientHeadParams params;
  params.head_request = (data[0] & 1) != 0;
  params.upgrade_requested = (data[0] & 2) != 0;
  params.client_version = (data[0] & 4) != 0 ? 10 : 11;
  const bool eof = (data[0] & 8) != 0;
  const size_t read_size = data[1] == 0 ? 16 * 1024 : data[1];
  std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  ProxyTarget proxy;
  proxy.remove_cookies = {kPlaneCookie};

  UpstreamParseOutcome o = ParseUpstreamResponse(bytes, eof, proxy, params, read_size);
  // (A refused parse does not count what it consumed; its body is dropped.)
  if (o.consumed > bytes.size() || (o.error.empty() && o.body.size() > o.consumed)) Fail();
  if (o.error.empty() && o.head_done) {
    CheckHead(o, params, proxy);
    if (o.done && o.client.framing == ClientFraming::kLength) {
      const std::string lower = Lower(o.client.head);
      size_t at = lower.find("\r\ncontent-length: ");
      if (at == std::string::npos) Fail();
      if (std::strtoull(lower.c_str() + at + 18, nullptr, 10) != o.body.size()) Fail();
    }
    if (o.client.framing == ClientFraming::kNone && !o.body.empty()) Fail();
  }
  if (!o.error.empty() && o.error.rfind("upstream response: ", 0) != 0) Fail();
  UpstreamParseOutcome whole = ParseUpstreamResponse(bytes, eof, proxy, params, 16 * 1024);
  CheckSame(o, whole);
  return 0;
}
