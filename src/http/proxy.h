// Private to src/http: the pure parts of the server's reverse proxy (Route::
// proxy), as functions of bytes and headers so that the connection and the
// fuzz target (proxy_fuzz.cc) run the same code: which request headers go
// upstream and which are added, the incremental parser of the upstream's
// response (a parser of outside bytes: the session's Jupyter is code its
// user controls), and the response head the client is sent. Sockets, TLS,
// deadlines and the tunnel live in server.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "http/server.h"

namespace cce::http::internal {

// An upstream response head larger than this (status line and fields) or
// with more fields is refused (502): Jupyter's heads are a few KiB.
constexpr size_t kMaxUpstreamHeadBytes = 64 * 1024;
constexpr size_t kMaxUpstreamHeaderCount = 128;
// 1xx responses other than 101 are dropped (the client is not sent them);
// more than this many before the final response is a refusal.
constexpr int kMaxInterimResponses = 8;
// The connection's upstream read buffer: a whole head fits, plus one read.
constexpr size_t kUpstreamReadChunk = 16 * 1024;
constexpr size_t kUpstreamBufferBytes = kMaxUpstreamHeadBytes + kUpstreamReadChunk;

// True for a request that asks to become a WebSocket: HTTP/1.1 GET whose
// Connection lists "upgrade" and whose Upgrade lists "websocket".
bool IsWebSocketUpgrade(const Request& req, int http_version);

// How a request body is framed upstream: none, Content-Length, or chunked
// (a chunked client body is re-chunked, never passed through raw, so what
// upstream sees as the body is exactly what the server's parser read).
enum class BodyFraming { kNone, kLength, kChunked };

// The request line and header block sent upstream ("...\r\n\r\n"):
// `target` (the original path and query) over HTTP/1.1; the client's
// headers minus hop-by-hop ones (Connection and the fields it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade unless
// `upgrade`), Content-Length, Expect, client-sent X-Forwarded-*/Forwarded/
// X-Real-IP, target.remove_headers, and the cookies named in
// target.remove_cookies (the Cookie field is rebuilt from the rest, or
// dropped when none is left); then target.set_headers (replacing fields of
// the same name), X-Forwarded-For/-Proto (https)/-Host, the framing, and
// "Connection: Upgrade" + "Upgrade: websocket" or "Connection: close" (one
// upstream connection per request). A missing Host is set to the upstream.
// Errors: kInvalidArgument naming a set_headers entry that is not a valid
// field (a route bug: CR/LF in a value would forge headers).
StatusOr<std::string> BuildUpstreamRequestHead(const Request& req, std::string_view target,
                                               const ProxyTarget& proxy, bool upgrade,
                                               BodyFraming framing, uint64_t content_length);

// Incremental parser of an upstream response (Beast's, with our limits):
// interim 1xx responses (but 101) are skipped, the final head is checked
// (HTTP/1.0 or 1.1, status 100-599, at most kMaxUpstreamHeadBytes and
// kMaxUpstreamHeaderCount, no transfer coding but a lone "chunked", not
// both Content-Length and Transfer-Encoding) and the body is decoded
// (Content-Length, chunked, or until the upstream closes). All errors are
// kDataLoss with a message naming what was wrong ("upstream response: ...").
class UpstreamResponseParser {
 public:
  // head_request: the response has no body whatever it announces.
  explicit UpstreamResponseParser(bool head_request);
  ~UpstreamResponseParser();
  UpstreamResponseParser(const UpstreamResponseParser&) = delete;
  UpstreamResponseParser& operator=(const UpstreamResponseParser&) = delete;

  // Parses a prefix of `bytes` and returns its length (0: more bytes are
  // needed); decoded body bytes are appended to *body (at most as many as
  // were consumed). Stops at the end of the final head and of the message.
  StatusOr<size_t> Put(std::string_view bytes, std::string* body);
  // The upstream closed its side: ends a body delimited by the close;
  // anything else unfinished is an error (a head cut short, a truncated
  // Content-Length or chunked body).
  Status PutEof();

  bool header_done() const;  // the final (non-1xx, or 101) head is in
  bool done() const;         // and its body too (101: the head alone)
  int status() const;
  int version() const;  // 10 or 11
  const std::vector<Header>& fields() const;
  std::optional<uint64_t> content_length() const;
  bool chunked() const;
  int interim_responses() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// How the body is framed to the client.
enum class ClientFraming {
  kNone,        // no body (HEAD, 1xx, 204, 304)
  kLength,      // Content-Length, upstream's
  kChunked,     // upstream chunked or close-delimited, client HTTP/1.1
  kUntilClose,  // the same for an HTTP/1.0 client: the connection closes after it
};

struct ClientHeadParams {
  bool head_request = false;
  bool upgrade_requested = false;
  int client_version = 11;
  bool close = false;  // add Connection: close (and close after the response)
};

struct ClientHead {
  std::string head;  // status line and fields, "\r\n\r\n"-terminated
  ClientFraming framing = ClientFraming::kNone;
  bool close = false;   // the connection must close after the body
  bool tunnel = false;  // a 101: the connection becomes a byte tunnel
};

// The response head for the client from a parser whose header_done(): the
// status with the server's own reason phrase, upstream fields minus
// hop-by-hop ones and framing (re-framed here), and minus Set-Cookie fields
// that set a cookie named in proxy.remove_cookies (upstream must not
// replace the server's own cookies). A 101 is accepted only for a request
// that asked for a WebSocket upgrade and with "Upgrade: websocket".
// Errors: kDataLoss naming the offending part (a 101 not asked for, a field
// that is not a valid token or value).
StatusOr<ClientHead> BuildClientResponseHead(const UpstreamResponseParser& parser,
                                             const ProxyTarget& proxy,
                                             const ClientHeadParams& params);

// The whole response path without a socket, for the fuzz target: `bytes`
// fed through a buffer of kUpstreamBufferBytes in reads of at most
// `read_size` (at least 1), then an EOF if `eof`, then the client head.
struct UpstreamParseOutcome {
  std::string error;  // empty: no refusal (yet)
  bool head_done = false;
  bool done = false;
  int status = 0;
  ClientHead client;  // set once head_done without error
  std::string body;   // decoded body so far
  size_t consumed = 0;
};
UpstreamParseOutcome ParseUpstreamResponse(std::string_view bytes, bool eof,
                                           const ProxyTarget& proxy, const ClientHeadParams& params,
                                           size_t read_size);

// Chunked framing of one piece ("<hex>\r\n<piece>\r\n"), appended to *out.
void AppendChunk(std::string_view piece, std::string* out);

}  // namespace cce::http::internal
