// http: the plane's HTTPS front. An event-driven HTTP/1.1 server over TLS
// (Boost.Beast + Asio + OpenSSL) built to stay up under hostile clients:
// every limit is enforced before bytes are buffered, every phase of every
// connection has a deadline, and connections are capped per address and in
// total. Routes run on a bounded worker pool, never on the I/O threads
// (but for Route::admit_quick, an in-memory check that must not block).
// The server knows nothing of the plane: it routes bytes to callbacks.
#pragma once

#include <sys/types.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cce::http {

struct Header {
  std::string name;
  std::string value;
};

// Where a BodyPolicy::kToSink route's body goes as it arrives, so a large
// upload is never held whole (or written to disk in plaintext) by the
// server: each piece is handed over as soon as it is read, in order, never
// concurrently, on the connection's I/O thread (so Write must not block
// for long: sealing and writing a segment is fine, waiting on a network is
// not). An error stops the body: nothing more is read, Route::handle runs
// with Request::body_status set to it, and the connection is closed after
// the response. A sink destroyed before handle ran saw an incomplete body.
class UploadSink {
 public:
  virtual ~UploadSink() = default;
  virtual Status Write(std::span<const uint8_t> piece) = 0;
};

// One request as a route sees it. Header and query lookups are
// case-insensitive for names (headers) and exact for query keys.
struct Request {
  std::string method;                 // "GET", "POST", "PUT", "DELETE"; "HEAD" when a GET
                                      // route serves a HEAD (the server drops the body);
                                      // any method on a proxy route
  std::string path;                   // without the query, percent-decoding not applied
  std::vector<std::string> captures;  // the route pattern's groups, in order
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded
  std::vector<Header> headers;
  std::string remote_addr;  // peer IP address, no port
  std::string body;         // BodyPolicy::kBuffered: the whole body
  int body_fd = -1;         // BodyPolicy::kToFile: the body, at offset 0; server-owned
  uint64_t body_size = 0;   // bytes received (any policy)
  // BodyPolicy::kToSink: the sink Route::open_sink made (null if it failed),
  // and why the body was not taken whole (OK when it was): open_sink's or a
  // Write's error. handle always runs and answers either way.
  std::shared_ptr<UploadSink> body_sink;
  Status body_status;
  // Whatever Route::admit wants Route::handle to have (the authenticated
  // caller, say): admit sees the request as const, so this is mutable.
  mutable std::any context;

  std::optional<std::string> HeaderValue(std::string_view name) const;
  std::optional<std::string> QueryValue(std::string_view key) const;
};

// A response body produced piece by piece, for bodies too large to hold
// (output downloads). The server asks for the next piece on the worker pool
// only once the previous one is written, into one buffer per connection of
// kStreamPieceBytes that it wipes when the response ends: memory per
// download is bounded whatever the body's size.
class BodySource {
 public:
  static constexpr size_t kStreamPieceBytes = 256 * 1024;
  virtual ~BodySource() = default;
  virtual uint64_t size() const = 0;  // sent as Content-Length
  // Fills a prefix of `out` (never empty while bytes remain) and returns its
  // length. An error, or a body shorter or longer than size(), closes the
  // connection mid-body: the client sees fewer bytes than announced.
  virtual StatusOr<size_t> Read(std::span<uint8_t> out) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<Header> headers;
  bool close = false;  // send Connection: close and close after the write
  // When set, the body comes from here (and `body` must be empty).
  std::shared_ptr<BodySource> stream;
};

// Where a proxy route (Route::proxy) sends a request, and how the request
// is rewritten on the way. docs/explore/proxy.md has the whole contract.
struct ProxyTarget {
  // Exactly one of: an absolute Unix-domain socket path, or host (a name or
  // an address) and port; either way plain HTTP/1.1 upstream.
  std::string unix_socket;
  std::string host;
  int port = 0;
  // Added to the request (replacing client fields of the same name), e.g.
  // {"Authorization", "token ..."} for the session's Jupyter.
  std::vector<Header> set_headers;
  // Client fields never sent upstream (names, case-insensitive).
  std::vector<std::string> remove_headers;
  // Cookies (exact names) taken out of the client's Cookie field before it
  // goes upstream (the others, Jupyter's _xsrf say, are kept); Set-Cookie
  // fields from upstream that would set one of them are dropped too.
  std::vector<std::string> remove_cookies;
  std::chrono::milliseconds connect_timeout{10'000};  // else 504
  // Upstream silent this long (accepting the request, before its head, or
  // mid-body): 504 before the head, else the connection closes.
  std::chrono::milliseconds response_timeout{120'000};
  // A WebSocket tunnel that moves no byte either way for this long closes.
  std::chrono::milliseconds tunnel_idle_timeout{3'600'000};
};

enum class BodyPolicy {
  kNone,      // a body is refused with 413 (GET-like routes)
  kBuffered,  // Content-Length bodies, at most max_body_bytes (413); chunked: 413;
              // a POST or PUT with neither: 411 (other methods: an empty body)
  kToFile,    // Content-Length or chunked; streamed into an anonymous file
              // under body_dir, at most max_body_bytes (413)
  kToSink,    // Content-Length or chunked, at most max_body_bytes (413); streamed
              // piece by piece into the UploadSink that Route::open_sink makes
};

struct Route {
  std::string method;   // "GET", "POST", "PUT", "DELETE"; "*" (proxy routes only): any
  std::string pattern;  // ECMAScript regex, matched against the whole path
  BodyPolicy body = BodyPolicy::kNone;
  uint64_t max_body_bytes = 0;  // 0: Limits::max_body_bytes
  std::string body_dir;         // kToFile only
  // Buffered bodies nested deeper than this ('[' / '{' outside JSON strings)
  // are refused with 400 before any callback sees them. 0: no check.
  int max_nesting = 32;
  // Runs after the headers and before a single body byte is read (on the
  // worker pool): a response here (401, 403, 429) is sent instead, and the
  // unread body is not read (the connection is closed if one was announced).
  std::function<std::optional<Response>(const Request&)> admit;
  // Optional fast path for admit: runs on the connection's I/O thread, so it
  // must not block (no store, no network, no disk; an in-memory check under
  // a short lock is fine) and should take microseconds. true admits the
  // request without running admit, which saves the two thread hand-offs
  // (I/O thread -> worker -> I/O thread) admit costs; false runs admit on
  // the worker pool as usual, which then decides. So a route's decision is
  // always admit's: admit_quick may only say "admit" where admit would.
  // open_sink (kToSink) still runs on the worker pool. Not for proxy routes.
  std::function<bool(const Request&)> admit_quick;
  // kToSink only (required): runs on the worker pool after admit accepted
  // the request and before a single body byte is read. An error is put in
  // Request::body_status and handle runs at once (the body is not read).
  std::function<StatusOr<std::shared_ptr<UploadSink>>(Request&)> open_sink;
  // Runs once the whole body is in (on the worker pool). Exceptions become
  // a 500 with a generic message; the server logs their text.
  std::function<Response(Request&)> handle;
  // Set: the route is a reverse proxy and handle, body, body_dir, open_sink
  // and max_nesting are unused. After admit accepted the request (admit
  // runs first and may answer 401/403/303 itself: nothing has been sent
  // upstream then), proxy runs on the worker pool and names the upstream.
  // Its error is the client's answer: kNotFound 404, kUnauthenticated 401,
  // kPermissionDenied 403, kUnavailable or kFailedPrecondition 503, else 502, with
  // the Status message (so it must not carry secrets). The server then
  // connects (ProxyTarget::connect_timeout; refused: 502, no answer: 504),
  // sends the rewritten head, streams the body (Content-Length or chunked,
  // at most max_body_bytes, never held whole) and streams the response
  // back (a malformed or oversized upstream head: 502). A WebSocket
  // upgrade that upstream answers with 101 becomes a byte tunnel both ways
  // until either side closes, tunnel_idle_timeout passes, or Stop().
  std::function<StatusOr<ProxyTarget>(const Request&)> proxy;
};

struct Limits {
  size_t max_request_line_bytes = 8 * 1024;
  size_t max_header_bytes = 16 * 1024;  // request line + all header fields
  size_t max_header_count = 64;
  uint64_t max_body_bytes = 1 << 20;  // default for routes that set 0
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds header_timeout{10'000};  // from first byte to end of headers
  std::chrono::milliseconds body_timeout{60'000};    // whole body (kToFile: per 1 MiB received)
  std::chrono::milliseconds write_timeout{60'000};
  std::chrono::milliseconds idle_timeout{30'000};  // keep-alive wait for the next request
  size_t max_connections = 20'000;
  size_t max_connections_per_address = 2'000;  // IPv6 peers are counted per /64
  size_t io_threads = 2;
  size_t worker_threads = 16;
  size_t max_queued_requests = 4'096;  // beyond: 503 without running the route
  // All kBuffered bodies being received or handled at once, reserved by
  // their Content-Length before the first body byte; beyond: 503. Bounds
  // memory when many clients upload at max_body_bytes together.
  uint64_t max_buffered_body_bytes = 64ull << 20;
};

struct ServerOptions {
  std::string tls_cert_chain_file;  // PEM
  std::string tls_key_file;         // PEM
  Limits limits;
  // Called for each finished request (worker or I/O thread): route pattern
  // ("" when no route matched), status, seconds from headers to response.
  std::function<void(const Request&, std::string_view route, int status, double seconds)>
      on_request;
  // Called with a short event name and details for transport events worth
  // logging (limit hit, timeout, TLS failure, exception text).
  std::function<void(std::string_view event, std::string_view detail)> on_event;
};

// Transport counters, for /metrics and tests.
struct ServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;  // served (not counting refused ones)
  uint64_t connections_refused = 0;   // over a connection cap, closed before TLS
  uint64_t timeouts = 0;
  uint64_t limit_refusals = 0;  // 411/413/414/415/431/501/400-nesting
  uint64_t requests = 0;
  uint64_t tunnels_open = 0;       // proxied WebSocket connections now open
  uint64_t upstream_failures = 0;  // proxy: connect/resolve failed, bad or no response
};

class Server {
 public:
  // Loads the certificate and key; TLS 1.3, and TLS 1.2 with ECDHE AEAD
  // suites only. Errors name the file.
  static StatusOr<std::unique_ptr<Server>> Create(ServerOptions options, std::vector<Route> routes);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (SO_REUSEADDR, backlog 1024). port 0 picks one; returns
  // the bound port. Errors carry the OS reason.
  StatusOr<int> Listen(const std::string& host, int port);
  // Also (or only) serves on a Unix-domain stream socket at `path` (absolute,
  // shorter than sun_path), created with exactly `mode` (set before
  // listen(), so no peer ever connects through looser permissions): same
  // TLS, routes, limits and deadlines as TCP. A peer is named
  // "unix:pid=<pid>" (SO_PEERCRED) in Request::remote_addr and for the
  // per-address cap. A socket file left at `path` by an earlier run is
  // replaced; the file is removed when the Server is destroyed.
  // Errors: kInvalidArgument (path, mode), kFailedPrecondition (already
  // listening on a Unix path; `path` exists and is not a socket, or a live
  // server answers there), kIo (socket/bind/chmod/listen, with the OS reason).
  Status ListenUnix(const std::string& path, mode_t mode);
  // Serves until Stop(); then stops accepting, lets in-flight requests
  // finish (up to write_timeout), closes the rest and returns. Returns at
  // once if called again. Must have returned before the Server is destroyed.
  void Run();
  // Thread-safe and idempotent; may be called before Run().
  void Stop();
  ServerStats Stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// JSON error body used for transport-level refusals:
// {"error":{"code":"payload_too_large","message":"..."}}.
std::string ErrorJson(std::string_view code, std::string_view message);

}  // namespace cce::http
