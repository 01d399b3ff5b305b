// http server: Beast's HTTP/1.1 parser and Asio's event loop driving OpenSSL
// on non-blocking sockets.
//
// How it holds up (the reasons behind the shape of this file):
// - A connection is a small state machine on its own strand. At most one
//   socket wait and one deadline timer are pending for it at any time, and
//   every phase (handshake, header, body, write, keep-alive idle) has its own
//   deadline; a timer that fires closes the socket, which aborts the wait.
// - TLS is SSL_do_handshake/SSL_read/SSL_write on the socket's fd, resumed by
//   readiness waits, rather than asio::ssl::stream: that stream allocates
//   34 KiB of record buffers per connection for its whole life, while OpenSSL
//   with SSL_MODE_RELEASE_BUFFERS holds none between records. Idle and slow
//   connections are exactly what an attacker multiplies, so an idle
//   connection here holds no read buffer at all, and a connection that has
//   not sent a byte yet has no SSL object either.
// - Bytes go into one bounded flat_buffer per connection and are handed to
//   Beast's basic_parser, whose callbacks (RequestParser) enforce the request
//   line, field count and body limits as they parse. Beast's header_limit
//   bounds the header bytes. Nothing is buffered beyond those bounds.
// - Routing and limit checks run on the I/O strand (cheap, no user code);
//   admit and handle run on a WorkerPool with a bounded queue, so a slow
//   route never stalls I/O and overload is a fast 503.
// - kToSink bodies: the route's open_sink runs on the worker pool right after
//   admit, before any body byte is read; each piece is then handed to its
//   UploadSink as the parser yields it (on the I/O strand, like kToFile's
//   file writes), so an upload is never held whole; a sink error stops the
//   read and handle answers with Request::body_status.
// - Proxy routes (Route::proxy): after admit and proxy ran on the worker
//   pool, the connection opens its own upstream socket on its strand and
//   moves bytes in bounded steps: a client body piece is parsed (and
//   re-framed) into one buffer and written upstream before the next read;
//   an upstream read is parsed (proxy.h) and written to the client before
//   the next. Each side thus waits for the other (backpressure) and a
//   connection holds at most its read buffer plus kUpstreamBufferBytes. A
//   101 turns the connection into a tunnel: two pumps on the same strand,
//   client->upstream through buffer_ and upstream->client through the
//   upstream buffer, and one timer checking the time of the last byte.
// - Error responses that leave request bytes unread close the connection
//   after a short "lingering close" (TCP half-close, discard a bounded amount
//   for a bounded time) so the client can read the response before the RST
//   that closing a socket with unread data would cause.
//
// Transport refusals (JSON bodies via ErrorJson; messages never echo request
// bytes): 400 malformed request, bad query escape, or a buffered body nested
// deeper than max_nesting; 411 chunked body on a kBuffered route; 413 body on
// a kNone route, Content-Length over the cap (from the header) or a streamed
// body passing it; 414 request line over max_request_line_bytes (431 if it
// also passes max_header_bytes, which Beast checks first); 415
// Content-Encoding other than identity; 431 header bytes or field count; 501
// a transfer coding other than a lone "chunked"; 503 worker queue full or
// buffered-body budget spent. A refusal that leaves request bytes unread
// closes the connection.
#include "http/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <unordered_map>

#include "base/fd.h"
#include "http/proxy.h"
#include "http/request_parse.h"

namespace cce::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using Strand = net::strand<net::io_context::executor_type>;
// A Connection only waits for readiness, hands the fd to OpenSSL, reads,
// shuts down and closes: nothing protocol-specific. So TCP and Unix-domain
// connections share one socket type (Asio moves either into it).
using Socket = net::basic_stream_socket<net::generic::stream_protocol, Strand>;
using TcpSocket = net::basic_stream_socket<net::ip::tcp, Strand>;
using UnixSocket = net::basic_stream_socket<net::local::stream_protocol, Strand>;
using Timer = net::basic_waitable_timer<Clock, net::wait_traits<Clock>, Strand>;

// Header reads start small so a slow client holds little (the buffer doubles
// as a header grows); body reads match the largest TLS record.
constexpr size_t kHeaderReadChunk = 1024;
constexpr size_t kBodyReadChunk = 16 * 1024;
// One connection moves at most this much per turn before it yields its I/O
// thread to the others.
constexpr size_t kIoBudgetPerTurn = 256 * 1024;
// kToFile bodies get a fresh body_timeout per MiB received.
constexpr uint64_t kBodyDeadlineStride = 1 << 20;
// Lingering close: how long and how much we discard before closing. Enough
// for a client that sends a refused body before reading to see the answer;
// discarding is a raw read, no decryption.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerMaxBytes = 1 << 20;
constexpr int kListenBacklog = 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

// TLS 1.2: forward-secret key exchange and AEAD only. TLS 1.3 suites are all
// AEAD and keep OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view ToStd(beast::string_view s) {
  return {s.data(), s.size()};
}

// The OpenSSL error queue of this thread as text (and emptied): it is
// per-thread and connections move between threads, so it is never left full.
std::string TakeOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// A key may be encrypted; the server must never prompt on a terminal.
int RefusePassphrase(char*, int, int, void*) {
  return 0;
}

StatusOr<SslCtxPtr> MakeTlsContext(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty()) return InvalidArgument("tls_cert_chain_file: not set");
  if (key_file.empty()) return InvalidArgument("tls_key_file: not set");
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("SSL_CTX_new: " + TakeOpenSslErrors());
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) {
    return Internal("TLS settings: " + TakeOpenSslErrors());
  }
  // No compression (CRIME), no renegotiation of any kind, our suite order,
  // and a peer's EOF without close_notify is an ordinary close: we never
  // read a body up to EOF, so truncation cannot be mistaken for data.
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_clear_options(c, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  // RELEASE_BUFFERS: no record buffers while idle. The write modes let a
  // write resume after EAGAIN from wherever the string now lives.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Resumption works through stateless tickets; a server-side session cache
  // would be memory a flood of handshakes could fill.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  // TLS 1.3 sends tickets after every full handshake (OpenSSL: two). Most
  // of the plane's peers never resume (a job's VM connects once per boot;
  // each CLI run is a new process), and each ticket is a session copy, an
  // encryption and a MAC on the handshake's critical path: one is enough
  // for the clients that do resume (browsers, a long-lived agent).
  SSL_CTX_set_num_tickets(c, 1);
  SSL_CTX_set_default_passwd_cb(c, RefusePassphrase);
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1) {
    return InvalidArgument("tls_cert_chain_file '" + cert_file + "': " + TakeOpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("tls_key_file '" + key_file + "': " + TakeOpenSslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    return InvalidArgument("tls_key_file '" + key_file + "': does not match the certificate in '" +
                           cert_file + "'");
  }
  return ctx;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query component decoding as HTML forms do ('+' is a space, as cpp-httplib
// did). Malformed escapes and NUL bytes are refused rather than guessed at.
std::optional<std::string> DecodeQueryComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexDigit(s[i + 1]);
      int lo = HexDigit(s[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto key = DecodeQueryComponent(part.substr(0, eq));
    auto value = DecodeQueryComponent(eq == std::string_view::npos ? std::string_view()
                                                                   : part.substr(eq + 1));
    if (!key || !value) return false;
    out->emplace_back(std::move(*key), std::move(*value));
  }
  return true;
}

bool IsTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// Field values a route sets: no control characters but HTAB (CR/LF would
// let a value forge headers or a second response).
bool IsFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string_view ReasonPhrase(int status) {
  auto s = bhttp::int_to_status(static_cast<unsigned>(status));
  if (s == bhttp::status::unknown) return "Status";
  return ToStd(bhttp::obsolete_reason(s));
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.body = ErrorJson(code, message);
  return r;
}

Response InternalErrorResponse() {
  return ErrorResponse(500, "internal", "internal error");
}

// The connection caps count IPv6 peers per /64: one host is routinely given
// a whole /64, so counting single addresses would not cap it at all.
std::string AddressKey(const net::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return a.to_v6().to_v4().to_string();
  }
  if (a.is_v6()) {
    auto bytes = a.to_v6().to_bytes();
    std::string key = "v6/64:";
    for (size_t i = 0; i < 8; ++i) {
      key += "0123456789abcdef"[bytes[i] >> 4];
      key += "0123456789abcdef"[bytes[i] & 0xf];
    }
    return key;
  }
  return a.to_string();
}

std::string AddressText(const net::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return a.to_v6().to_v4().to_string();
  return a.to_string();
}

// Anonymous file for a kToFile body: O_TMPFILE where the filesystem has it,
// else a named temporary file unlinked at once. Either way nothing is left
// behind if the process dies.
StatusOr<UniqueFd> OpenAnonymousFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return ErrnoStatus("body_dir '" + dir + "': open(O_TMPFILE)", errno);
  }
  std::string path = dir + "/.cce-body-XXXXXX";
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("body_dir '" + dir + "': mkostemp", errno);
  UniqueFd file(fd);
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("body_dir '" + dir + "': unlink", errno);
  return file;
}

// Counts '[' and '{' outside JSON strings across the pieces of a body.
class NestingScanner {
 public:
  // False once the depth exceeds `limit`.
  bool Scan(std::string_view data, int limit) {
    for (char c : data) {
      if (in_string_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      switch (c) {
        case '"': in_string_ = true; break;
        case '[':
        case '{':
          if (++depth_ > limit) return false;
          break;
        case ']':
        case '}':
          if (depth_ > 0) --depth_;
          break;
        default: break;
      }
    }
    return true;
  }

 private:
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

// Why a parse stopped early: the response to send (and, for a server-side
// failure, the detail for on_event).
struct Refusal {
  int status = 400;
  std::string code;
  std::string message;
  std::string detail;
  bool limit = true;  // counts in Stats().limit_refusals
};

// The error a RequestParser callback sets to stop the parse; the reason is in
// refusal().
ErrorCode ParseStopped() {
  return boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
}

// Beast's request parser with the callbacks that enforce our limits while it
// parses: the request line and the field count here (header bytes are
// Beast's header_limit), and, once a route has picked a body policy, the
// body cap, JSON nesting and where the body bytes go.
class RequestParser final : public bhttp::basic_parser<true> {
 public:
  // Where body bytes go; set after routing, before the first body byte.
  struct BodySink {
    uint64_t cap = 0;
    int max_nesting = 0;            // 0: not scanned
    std::string* buffer = nullptr;  // kBuffered
    int fd = -1;                    // kToFile
    UploadSink* upload = nullptr;   // kToSink
  };

  explicit RequestParser(const Limits& limits) : limits_(limits) {
    header_limit(static_cast<uint32_t>(
        std::min<size_t>(limits.max_header_bytes, std::numeric_limits<uint32_t>::max())));
    // Body caps depend on the route, known only once the header is in; they
    // are enforced by the body callbacks (Beast's default would refuse any
    // Content-Length over 1 MiB while still parsing the header). Not
    // boost::none: Beast 1.74 compares `len > body_limit_`, which an empty
    // optional makes true for every length.
    body_limit(std::numeric_limits<uint64_t>::max());
  }

  void SetBodySink(const BodySink& sink) { sink_ = sink; }

  // put() plus the header's byte total. Beast's header_limit bounds only
  // the bytes it has not consumed yet, and Beast 1.74 consumes the request
  // line, then each complete field, as it arrives: a header delivered a
  // field per read (or in one read) would pass max_header_bytes by up to
  // max_header_count times. Without eager parsing put() stops at the end of
  // the header, so the bytes it takes until then are exactly the header's.
  size_t Put(net::const_buffer buffer, ErrorCode& ec) {
    const bool in_header = !is_header_done();
    const size_t used = put(buffer, ec);
    if (in_header) {
      header_bytes_ += used;
      if (header_bytes_ > limits_.max_header_bytes && (!ec || ec == bhttp::error::need_more)) {
        Refuse(ec, 431, "headers_too_large",
               "headers: larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
      }
    }
    return used;
  }

  const std::string& method_text() const { return method_; }
  const std::string& target_text() const { return target_; }
  int http_version() const { return version_; }
  std::vector<Header>& fields() { return fields_; }
  size_t transfer_encoding_fields() const { return te_fields_; }
  const std::string& transfer_encoding() const { return te_value_; }
  uint64_t body_received() const { return received_; }
  const std::optional<Refusal>& refusal() const { return refusal_; }
  // Why an UploadSink refused a piece (the parse stopped there), else OK.
  const Status& upload_error() const { return upload_error_; }

 private:
  void Refuse(ErrorCode& ec, int status, std::string code, std::string message,
              std::string detail = {}) {
    refusal_ = Refusal{status, std::move(code), std::move(message), std::move(detail)};
    ec = ParseStopped();
  }

  void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                       int version, ErrorCode& ec) override {
    // method SP request-target SP HTTP/x.y CRLF
    size_t line = method.size() + 1 + target.size() + 1 + 8 + 2;
    if (line > limits_.max_request_line_bytes) {
      Refuse(
          ec, 414, "uri_too_long",
          "request line: longer than " + std::to_string(limits_.max_request_line_bytes) + " bytes");
      return;
    }
    method_.assign(method.data(), method.size());
    target_.assign(target.data(), target.size());
    version_ = version;
  }

  void on_response_impl(int, beast::string_view, int, ErrorCode& ec) override {
    ec = ParseStopped();  // unreachable: this parses requests
  }

  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     ErrorCode& ec) override {
    if (++field_count_ > limits_.max_header_count) {
      Refuse(ec, 431, "headers_too_large",
             "headers: more than " + std::to_string(limits_.max_header_count) + " fields");
      return;
    }
    // Trailers of a chunked body are counted but dropped: admit has already
    // judged the headers, and a trailer must not add to them afterwards.
    if (is_header_done()) return;
    if (name == bhttp::field::transfer_encoding) {
      ++te_fields_;
      te_value_.assign(value.data(), value.size());
    }
    fields_.push_back(Header{std::string(name_string.data(), name_string.size()),
                             std::string(value.data(), value.size())});
  }

  void on_header_impl(ErrorCode&) override {}
  void on_body_init_impl(const boost::optional<uint64_t>&, ErrorCode&) override {}

  size_t on_body_impl(beast::string_view body, ErrorCode& ec) override { return Absorb(body, ec); }

  void on_chunk_header_impl(uint64_t size, beast::string_view, ErrorCode& ec) override {
    // Refuse an oversized chunk from its header, before any of it arrives.
    if (size > sink_.cap - received_) RefuseTooLarge(ec);
  }

  size_t on_chunk_body_impl(uint64_t, beast::string_view body, ErrorCode& ec) override {
    return Absorb(body, ec);
  }

  void on_finish_impl(ErrorCode&) override {}

  void RefuseTooLarge(ErrorCode& ec) {
    Refuse(ec, 413, "payload_too_large",
           "body: larger than " + std::to_string(sink_.cap) + " bytes");
  }

  size_t Absorb(beast::string_view piece, ErrorCode& ec) {
    // Invariant: received_ <= sink_.cap.
    if (piece.size() > sink_.cap - received_) {
      RefuseTooLarge(ec);
      return 0;
    }
    std::string_view data = ToStd(piece);
    if (sink_.max_nesting > 0 && !nesting_.Scan(data, sink_.max_nesting)) {
      Refuse(ec, 400, "invalid_argument",
             "body: nested deeper than " + std::to_string(sink_.max_nesting) + " levels");
      return 0;
    }
    if (sink_.upload != nullptr) {
      Status s = sink_.upload->Write({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
      if (!s.ok()) {
        upload_error_ = std::move(s);
        ec = ParseStopped();
        return 0;
      }
    } else if (sink_.fd >= 0) {
      Status s = WriteFull(sink_.fd, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
      if (!s.ok()) {
        Refuse(ec, 500, "internal", "internal error", "body file: " + s.message());
        return 0;
      }
    } else if (sink_.buffer != nullptr) {
      sink_.buffer->append(data);
    } else {
      // A body where the route takes none; routing refuses these first.
      Refuse(ec, 413, "payload_too_large", "body: not accepted by this route");
      return 0;
    }
    received_ += data.size();
    return data.size();
  }

  const Limits& limits_;
  std::string method_;
  std::string target_;
  int version_ = 11;
  std::vector<Header> fields_;
  size_t field_count_ = 0;
  size_t te_fields_ = 0;
  std::string te_value_;
  BodySink sink_;
  uint64_t received_ = 0;
  size_t header_bytes_ = 0;  // request line and fields consumed so far
  NestingScanner nesting_;
  std::optional<Refusal> refusal_;
  Status upload_error_;
};

// The refusal for a parse that stopped with `ec` (need_more excluded).
Refusal ParseErrorRefusal(const RequestParser& p, const ErrorCode& ec, const Limits& limits) {
  if (const auto& r = p.refusal()) {
    Refusal out = *r;
    out.limit = r->status != 500;
    return out;
  }
  if (ec == bhttp::error::header_limit) {
    return {431, "headers_too_large",
            "headers: larger than " + std::to_string(limits.max_header_bytes) + " bytes", "", true};
  }
  // Anything else Beast refuses (bad method, target, field, version,
  // conflicting Content-Length/Transfer-Encoding, bad chunk) leaves the
  // stream unsynchronised: answer and close.
  return {400, "invalid_argument", "malformed request", ec.message(), false};
}

// The checks on a parsed header before routing; fills req's path and query.
// A 501 (transfer coding) leaves the body's length unknown.
std::optional<Refusal> CheckRequestHead(const RequestParser& p, Request* req) {
  std::string_view target = p.target_text();
  if (target.empty() || target.front() != '/') {
    return Refusal{400, "invalid_argument", "request target: must be a path", "", false};
  }
  size_t q = target.find('?');
  req->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos && !ParseQuery(target.substr(q + 1), &req->query)) {
    return Refusal{400, "invalid_argument", "query: invalid percent-encoding", "", false};
  }
  // Transfer codings other than a lone "chunked" would make the body's
  // length a matter of interpretation (request smuggling); Beast treats an
  // unknown coding as "no body", so it is refused here.
  if (p.transfer_encoding_fields() > 0 && !(p.transfer_encoding_fields() == 1 && p.chunked() &&
                                            IEquals(Trim(p.transfer_encoding()), "chunked"))) {
    return Refusal{501, "not_implemented", "transfer-encoding: only chunked is supported", "",
                   true};
  }
  return std::nullopt;
}

bool BodyAnnounced(const RequestParser& p) {
  return p.chunked() || p.content_length().value_or(0) > 0;
}

// After routing: whether the body the header announces (or fails to) suits
// the route's policy and cap.
std::optional<Refusal> CheckBodyAnnouncement(const RequestParser& p, const Request& req,
                                             BodyPolicy policy, uint64_t max_body_bytes) {
  // A POST or PUT to a route that takes a buffered body must say how long
  // it is. Without Content-Length HTTP/1.1 would read it as empty and the
  // rest of the stream as the next request; asking for the length (411)
  // and closing is clearer for the client and reads nothing.
  if (!BodyAnnounced(p) && policy == BodyPolicy::kBuffered &&
      (req.method == "POST" || req.method == "PUT") && !p.content_length()) {
    return Refusal{411, "length_required", "body: Content-Length required", "", true};
  }
  if (!BodyAnnounced(p)) return std::nullopt;
  for (const Header& h : req.headers) {
    if (IEquals(h.name, "content-encoding") && !IEquals(Trim(h.value), "identity")) {
      return Refusal{415, "unsupported_media_type",
                     "content-encoding: encoded bodies are not accepted", "", true};
    }
  }
  auto length = p.content_length();
  switch (policy) {
    case BodyPolicy::kNone:
      return Refusal{413, "payload_too_large", "body: not accepted by this route", "", true};
    case BodyPolicy::kBuffered:
      if (!length) {
        // Chunked: unbounded until it ends. Only routes that stream to a
        // file take it (the image blob upload).
        return Refusal{413, "payload_too_large",
                       "body: chunked bodies are accepted only by routes that stream them; send "
                       "Content-Length",
                       "", true};
      }
      [[fallthrough]];
    case BodyPolicy::kToFile:
    case BodyPolicy::kToSink:
      if (length && *length > max_body_bytes) {
        return Refusal{413, "payload_too_large",
                       "body: larger than " + std::to_string(max_body_bytes) + " bytes", "", true};
      }
      break;
  }
  return std::nullopt;
}

// A fixed set of threads that run route callbacks. The queue of waiting tasks
// is bounded so that overload becomes a fast 503, never a backlog.
class WorkerPool {
 public:
  explicit WorkerPool(size_t max_queued) : max_queued_(max_queued) {}
  ~WorkerPool() { Shutdown(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Called by Server::Run only.
  void Start(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }

  // False when the queue is full or the pool is shut down.
  bool TryPost(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

  // Joins the threads; tasks still queued are dropped (by then no connection
  // is left to answer, see ServerCore::Run).
  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dropped.swap(queue_);
    }
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !queue_.empty(); });
        if (shutdown_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        task();
      } catch (...) {
        // Tasks catch their callbacks' exceptions; anything here (bad_alloc
        // while posting the result) drops the connection, whose destructor
        // closes it.
      }
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool shutdown_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;         // Start/Shutdown only (the Run thread)
};

// Route patterns run on the I/O threads against paths the client chose.
// libstdc++'s default regex executor backtracks: it recurses once per input
// character (a 32 KiB path overflows an 8 MiB stack) and can take
// exponential time. Its Thompson-NFA mode (__polynomial, a libstdc++
// extension) is linear in the path with a stack bounded by the pattern. It
// refuses back-references, which routes have no use for: Create then fails
// naming the pattern.
#if defined(__GLIBCXX__)
constexpr std::regex::flag_type kRouteRegexFlags =
    std::regex::ECMAScript | std::regex_constants::__polynomial;
#else
#error "route matching relies on libstdc++'s linear-time regex mode"
#endif

struct CompiledRoute {
  Route route;
  std::regex regex;
  uint64_t max_body_bytes = 0;
};

class Connection;

// The server's shared state: what Server::Impl is (Connection needs to name
// it, and Impl is private to Server).
struct ServerCore {
  ServerCore(ServerOptions opts, std::vector<CompiledRoute> compiled, SslCtxPtr ctx)
      : options(std::move(opts)),
        limits(options.limits),
        routes(std::move(compiled)),
        ssl_ctx(std::move(ctx)),
        ioc(static_cast<int>(limits.io_threads)),
        accept_strand(net::make_strand(ioc)),
        acceptor(accept_strand),
        unix_acceptor(accept_strand),
        accept_retry_timer(accept_strand),
        unix_accept_retry_timer(accept_strand),
        stop_timer(accept_strand),
        pool(limits.max_queued_requests) {}
  ~ServerCore();

  void Run();
  void Stop();
  void DoAccept();
  void OnAccept(const ErrorCode& ec, TcpSocket socket);
  void DoUnixAccept();
  void OnUnixAccept(const ErrorCode& ec, UnixSocket socket);
  // Counts an accepted socket and starts its Connection (or closes it).
  void Admit(Socket socket, const std::string& key, const std::string& text);
  void BeginShutdown();
  void ForEachConnection(void (Connection::*fn)());

  // Connection accounting. TryAddConnection counts an accepted socket against
  // the caps; the Connection's destructor calls RemoveConnection.
  bool TryAddConnection(const std::string& key);
  void RemoveConnection(const Connection* c, const std::string& key);
  bool ReserveBufferedBody(uint64_t bytes);
  void ReleaseBufferedBody(uint64_t bytes) { buffered_body_bytes.fetch_sub(bytes); }

  // User callbacks never throw into the transport.
  void Event(std::string_view name, std::string_view detail) noexcept {
    if (!options.on_event) return;
    try {
      options.on_event(name, detail);
    } catch (...) {
    }
  }

  // Declared before ioc: connections destroyed with ioc's pending handlers
  // use these in their destructors, so they must outlive it.
  const ServerOptions options;
  const Limits& limits;
  const std::vector<CompiledRoute> routes;
  const SslCtxPtr ssl_ctx;

  std::atomic<uint64_t> open_count{0};  // mirrors live.size() for Stats()
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> limit_refusals{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> tunnels_open{0};
  std::atomic<uint64_t> upstream_failures{0};
  std::atomic<uint64_t> buffered_body_bytes{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> tearing_down{false};  // ~Impl: ioc is going away
  std::atomic<bool> ran{false};

  std::mutex conn_mu;
  // Live connections by address (the caps) and by identity (Stop reaches
  // them through this), guarded by conn_mu.
  std::unordered_map<std::string, size_t> per_address;
  std::unordered_map<const Connection*, std::weak_ptr<Connection>> live;
  size_t counted = 0;  // sockets counted against the caps, guarded by conn_mu

  net::io_context ioc;
  Strand accept_strand;  // the acceptors, their retry timers and stop_timer live on it
  net::basic_socket_acceptor<net::ip::tcp, Strand> acceptor;
  net::basic_socket_acceptor<net::local::stream_protocol, Strand> unix_acceptor;
  Timer accept_retry_timer;
  Timer unix_accept_retry_timer;
  // The Unix socket file ListenUnix made (removed again in ~ServerCore if it
  // is still that inode), guarded by being set before Run and read after.
  std::string unix_path;
  dev_t unix_dev = 0;
  ino_t unix_ino = 0;
  Timer stop_timer;
  WorkerPool pool;
};

// A proxied request's upstream side (Route::proxy). Owned by its Connection
// and shared with the upstream socket's pending handlers, which keep the
// buffers they use alive and compare it with Connection::proxy_ to tell a
// stale completion (after a 502, or a later request) from a current one.
struct ProxyState {
  explicit ProxyState(const Strand& ex) : upstream(ex), in(internal::kUpstreamBufferBytes) {}
  ProxyTarget target;
  std::vector<net::generic::stream_protocol::endpoint> endpoints;  // resolved on the worker
  size_t next_endpoint = 0;
  std::string where;  // "unix:/path" or "host:port", for events only
  Socket upstream;
  bool upgrade = false;          // the client asked for a WebSocket
  bool request_chunked = false;  // the client body is re-chunked upstream
  std::string out;               // being written upstream (head, or a body piece)
  std::string piece;             // decoded body bytes on their way (either direction)
  beast::flat_buffer in;         // upstream bytes not yet parsed (tunnel: not yet sent)
  std::optional<internal::UpstreamResponseParser> response;
  internal::ClientFraming framing = internal::ClientFraming::kNone;
  bool head_sent = false;  // the client has (or is being sent) the response head
  bool upstream_eof = false;
  bool upstream_error = false;  // the upstream read ended in an error, not an EOF
  bool tunnel = false;          // counted in ServerCore::tunnels_open
  Clock::time_point last_activity;
};

// One client connection. All members are used on the connection's strand
// only, except req_, route_, body_file_, *proxy_ (PrepareProxy fills it) and
// the response a worker builds: the strand hands those to a worker (phase
// kWorker, no I/O pending) and takes them back through a post, which orders
// the accesses.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& server, Socket socket, std::string address_key, std::string remote_addr)
      : server_(server),
        limits_(server.limits),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        address_key_(std::move(address_key)),
        remote_addr_(std::move(remote_addr)),
        buffer_(std::max<size_t>(limits_.max_header_bytes, 4096) + kBodyReadChunk) {}

  ~Connection() {
    EndTunnelCount();
    server_.RemoveConnection(this, address_key_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Strand executor() { return socket_.get_executor(); }

  // The entry points below run on the connection's strand.
  void Start() {
    Guarded([&] {
      phase_ = Phase::kAwaitTls;
      ArmDeadline(Deadline::kHandshake, limits_.handshake_timeout);
      // No SSL object until the client has sent something: a connection
      // that only opened a socket costs a socket.
      WaitFor(net::socket_base::wait_read, &Connection::BeginHandshake);
    });
  }

  // Server stopping: connections between requests (or still sending a
  // header) are closed; a request already admitted is let finish.
  void OnServerStopping() {
    Guarded([&] {
      if (phase_ == Phase::kAwaitTls || phase_ == Phase::kHandshake || phase_ == Phase::kIdle ||
          phase_ == Phase::kHeader || phase_ == Phase::kLinger || phase_ == Phase::kTunnel) {
        Close();
      }
    });
  }

  void ForceClose() { Close(); }

 private:
  enum class Phase {
    kAwaitTls,
    kHandshake,
    kIdle,
    kHeader,
    kWorker,
    kBody,
    kWrite,
    kLinger,
    kProxyConnect,   // connecting upstream
    kProxySend,      // writing the request head upstream
    kProxyResponse,  // reading the upstream response (and writing it: kWrite)
    kTunnel,         // a WebSocket tunnel
    kClosed
  };
  enum class Deadline {
    kNone,
    kHandshake,
    kFirstRequest,
    kIdle,
    kHeader,
    kBody,
    kWrite,
    kLinger,
    kProxyConnect,   // ProxyTarget::connect_timeout
    kProxyUpstream,  // ProxyTarget::response_timeout
    kTunnelIdle,     // ProxyTarget::tunnel_idle_timeout since the last byte
  };
  enum class AfterWrite { kReadBody, kStream, kFinish, kProxyBody, kProxyResponse, kTunnel };
  enum class SslResult { kWantRead, kWantWrite, kClosed, kFailed };

  // Runs `f`, turning any exception into a closed connection: no exception
  // leaves an Asio handler.
  template <class F>
  void Guarded(F&& f) noexcept {
    try {
      f();
    } catch (const std::exception& e) {
      server_.Event("internal.exception", e.what());
      Close();
    } catch (...) {
      server_.Event("internal.exception", "non-standard exception");
      Close();
    }
  }

  void Close() noexcept {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    ++deadline_gen_;
    // Freed before the fd is closed: the fd number may be reused at once by
    // another accept, and this SSL must never touch it again.
    ssl_.reset();
    ErrorCode ec;
    socket_.close(ec);
    if (proxy_) proxy_->upstream.close(ec);
    EndTunnelCount();
    try {
      timer_.cancel();
    } catch (...) {
    }
  }

  void EndTunnelCount() noexcept {
    if (proxy_ && proxy_->tunnel) {
      proxy_->tunnel = false;
      --server_.tunnels_open;
    }
  }

  // Resumes `next` once the socket is ready (or closes on error/abort).
  void WaitFor(net::socket_base::wait_type type, void (Connection::*next)()) {
    socket_.async_wait(type, [self = shared_from_this(), next](const ErrorCode& ec) {
      self->Guarded([&] {
        if (self->phase_ == Phase::kClosed) return;
        if (ec) {
          self->Close();
          return;
        }
        (self.get()->*next)();
      });
    });
  }

  // Gives the I/O thread to other connections, then resumes `next`.
  void Yield(void (Connection::*next)()) {
    net::post(socket_.get_executor(), [self = shared_from_this(), next] {
      self->Guarded([&] {
        if (self->phase_ != Phase::kClosed) (self.get()->*next)();
      });
    });
  }

  void ArmDeadline(Deadline kind, std::chrono::milliseconds after) {
    deadline_ = kind;
    uint64_t gen = ++deadline_gen_;
    timer_.expires_after(after);  // cancels the previous wait
    timer_.async_wait([self = shared_from_this(), gen](const ErrorCode& ec) {
      self->Guarded([&] {
        if (ec || gen != self->deadline_gen_ || self->phase_ == Phase::kClosed) return;
        self->OnDeadline();
      });
    });
  }

  void DisarmDeadline() {
    ++deadline_gen_;
    deadline_ = Deadline::kNone;
    timer_.cancel();
  }

  void OnDeadline() {
    if (deadline_ == Deadline::kProxyConnect || deadline_ == Deadline::kProxyUpstream ||
        deadline_ == Deadline::kTunnelIdle) {
      OnProxyDeadline();
      return;
    }
    const char* what = nullptr;
    switch (deadline_) {
      case Deadline::kHandshake: what = "timeout.handshake"; break;
      case Deadline::kFirstRequest:
      case Deadline::kHeader: what = "timeout.header"; break;
      case Deadline::kBody: what = "timeout.body"; break;
      case Deadline::kWrite: what = "timeout.write"; break;
      case Deadline::kIdle:  // keep-alive expiry is routine
      case Deadline::kLinger:
      case Deadline::kProxyConnect:
      case Deadline::kProxyUpstream:
      case Deadline::kTunnelIdle:
      case Deadline::kNone: break;
    }
    if (what != nullptr) {
      ++server_.timeouts;
      server_.Event(what, remote_addr_);
    }
    // A 408 is not attempted: the peer that let a deadline pass is not
    // reading, and the write could only hold the connection longer.
    Close();
  }

  SslResult Classify(int ret) {
    int saved_errno = errno;
    int err = SSL_get_error(ssl_.get(), ret);
    switch (err) {
      case SSL_ERROR_WANT_READ: return SslResult::kWantRead;
      case SSL_ERROR_WANT_WRITE: return SslResult::kWantWrite;
      case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return SslResult::kClosed;
      case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 &&
            (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE)) {
          return SslResult::kClosed;
        }
        ssl_error_ = saved_errno != 0 ? std::strerror(saved_errno) : TakeOpenSslErrors();
        ERR_clear_error();
        return SslResult::kFailed;
      default: ssl_error_ = TakeOpenSslErrors(); return SslResult::kFailed;
    }
  }

  // Resumes `retry` when the SSL call asks for readiness; else closes.
  void OnSslStall(SslResult r, void (Connection::*retry)(), const char* failure_event) {
    switch (r) {
      case SslResult::kWantRead: WaitFor(net::socket_base::wait_read, retry); return;
      case SslResult::kWantWrite: WaitFor(net::socket_base::wait_write, retry); return;
      case SslResult::kClosed: Close(); return;
      case SslResult::kFailed:
        if (failure_event != nullptr) server_.Event(failure_event, ssl_error_);
        Close();
        return;
    }
  }

  // --- TLS handshake -------------------------------------------------------

  void BeginHandshake() {
    ssl_.reset(SSL_new(server_.ssl_ctx.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1) {
      server_.Event("tls.setup_failed", TakeOpenSslErrors());
      Close();
      return;
    }
    SSL_set_accept_state(ssl_.get());
    phase_ = Phase::kHandshake;
    HandshakeStep();
  }

  void HandshakeStep() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
      WaitForRequest(/*first=*/true);
      return;
    }
    OnSslStall(Classify(r), &Connection::HandshakeStep, "tls.handshake_failed");
  }

  // --- Reading a request ---------------------------------------------------

  void WaitForRequest(bool first) {
    phase_ = Phase::kIdle;
    if (server_.stopping) {
      Close();
      return;
    }
    if (buffer_.size() > 0 || SSL_has_pending(ssl_.get()) == 1) {
      BeginHeader();  // pipelined: the next request is already here
      return;
    }
    // Idle connections hold no read buffer.
    buffer_.shrink_to_fit();
    // A fresh connection gets header_timeout to start its first request (it
    // has no reason to wait); a kept-alive one idle_timeout.
    if (first) {
      ArmDeadline(Deadline::kFirstRequest, limits_.header_timeout);
    } else {
      ArmDeadline(Deadline::kIdle, limits_.idle_timeout);
    }
    WaitFor(net::socket_base::wait_read, &Connection::BeginHeader);
  }

  // The first bytes of a request are readable: header_timeout runs from now
  // to the end of its header, however slowly they come.
  void BeginHeader() {
    phase_ = Phase::kHeader;
    ArmDeadline(Deadline::kHeader, limits_.header_timeout);
    parser_.emplace(limits_);
    read_chunk_ = kHeaderReadChunk;
    ReadLoop();
  }

  // Feeds buffered bytes to the parser and reads more until the parser has a
  // header (kHeader) or a whole body (kBody).
  void ReadLoop() {
    size_t budget = kIoBudgetPerTurn;
    for (;;) {
      if (buffer_.size() > 0) {
        ErrorCode ec;
        size_t used = parser_->Put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == bhttp::error::need_more) ec = {};
        if (ec) {
          OnParseError(ec);
          return;
        }
        if (phase_ == Phase::kHeader && parser_->is_header_done()) {
          OnHeader();
          return;
        }
        if (phase_ == Phase::kBody) {
          MaybeExtendBodyDeadline();
          if (proxy_ && (!proxy_->piece.empty() || parser_->is_done())) {
            FlushBodyUpstream();
            return;
          }
          if (parser_->is_done()) {
            OnBodyDone();
            return;
          }
        }
        if (used > 0 && buffer_.size() > 0) continue;
      }
      if (budget == 0) {
        Yield(&Connection::ReadLoop);
        return;
      }
      size_t room = buffer_.max_size() - buffer_.size();
      if (room == 0) {
        // Beast's header_limit is below the buffer size, so this is a chunk
        // header line that does not fit.
        Refuse(400, "invalid_argument", "body: malformed chunked encoding", /*limit=*/false);
        return;
      }
      auto dst = buffer_.prepare(std::min(room, read_chunk_));
      ERR_clear_error();
      int n = SSL_read(ssl_.get(), dst.data(), static_cast<int>(dst.size()));
      if (n > 0) {
        buffer_.commit(static_cast<size_t>(n));
        budget -= std::min(budget, static_cast<size_t>(n));
        continue;
      }
      OnSslStall(Classify(n), &Connection::ReadLoop, nullptr);
      return;
    }
  }

  void OnParseError(const ErrorCode& ec) {
    if (!parser_->upload_error().ok()) {
      // The route's sink refused the body: the route answers (and the
      // connection closes, the rest of the body unread).
      DisarmDeadline();
      req_.body_status = parser_->upload_error();
      req_.body_size = parser_->body_received();
      Offload(&Connection::RunHandle);
      return;
    }
    const Refusal r = ParseErrorRefusal(*parser_, ec, limits_);
    if (parser_->refusal()) {
      if (!r.detail.empty()) server_.Event("body.write_failed", r.detail);
    } else if (!r.detail.empty()) {
      server_.Event("request.malformed", r.detail);
    }
    Refuse(r.status, r.code, r.message, r.limit);
  }

  void OnHeader() {
    DisarmDeadline();
    header_done_at_ = Clock::now();
    ++server_.requests;
    RequestParser& p = *parser_;
    keep_alive_ = p.keep_alive();
    body_announced_ = BodyAnnounced(p);
    body_complete_ = !body_announced_;

    req_.method = p.method_text();
    req_.headers = std::move(p.fields());
    req_.remote_addr = remote_addr_;
    head_ = req_.method == "HEAD";

    if (auto r = CheckRequestHead(p, &req_)) {
      if (r->status == 501) body_complete_ = false;  // unknown length: the connection must close
      Refuse(r->status, r->code, r->message, r->limit);
      return;
    }
    if (p.http_version() == 11) {
      for (const Header& h : req_.headers) {
        if (IEquals(h.name, "expect") && IEquals(Trim(h.value), "100-continue")) {
          expect_continue_ = true;
        }
      }
    }
    if (!SelectRoute()) return;
    if (route_->route.proxy) {
      BeginProxy();
      return;
    }
    if (auto r = CheckBodyAnnouncement(p, req_, route_->route.body, route_->max_body_bytes)) {
      Refuse(r->status, r->code, r->message, r->limit);
      return;
    }

    admitted_quickly_ = route_->route.admit && AdmittedQuickly();
    if (route_->route.body == BodyPolicy::kToSink || (route_->route.admit && !admitted_quickly_)) {
      Offload(&Connection::RunAdmit);
    } else {
      StartBody();
    }
  }

  // Route::admit_quick on this I/O thread: true only when it admitted the
  // request (admit is then not run); an exception counts as "ask admit".
  bool AdmittedQuickly() noexcept {
    if (!route_->route.admit_quick) return false;
    try {
      return route_->route.admit_quick(req_);
    } catch (const std::exception& e) {
      server_.Event("handler.exception", e.what());
    } catch (...) {
      server_.Event("handler.exception", "non-standard exception");
    }
    return false;
  }

  // Picks the route for req_ (filling captures) or answers 404/405.
  bool SelectRoute() {
    std::string allowed;
    std::smatch m;
    for (const CompiledRoute& r : server_.routes) {
      if (!std::regex_match(req_.path, m, r.regex)) continue;
      bool method_ok = r.route.method == req_.method || (head_ && r.route.method == "GET") ||
                       (r.route.proxy && r.route.method == "*");
      if (method_ok) {
        route_ = &r;
        for (size_t i = 1; i < m.size(); ++i) req_.captures.push_back(m[i].str());
        return true;
      }
      if (allowed.find(r.route.method) == std::string::npos) {
        if (!allowed.empty()) allowed += ", ";
        allowed += r.route.method;
        if (r.route.method == "GET") allowed += ", HEAD";
      }
    }
    // The request's path is never echoed (server_test): a client knows what it asked for.
    if (allowed.empty()) {
      Respond(ErrorResponse(404, "not_found", "no such resource"));
    } else {
      Response r = ErrorResponse(
          405, "method_not_allowed",
          "method not allowed for this resource (allowed: " + allowed + ")");
      r.headers.push_back({"Allow", allowed});
      Respond(std::move(r));
    }
    return false;
  }

  // Runs a route callback on the worker pool; a full queue is a 503.
  void Offload(void (Connection::*task)()) {
    phase_ = Phase::kWorker;
    bool queued =
        server_.pool.TryPost([self = shared_from_this(), task] { (self.get()->*task)(); });
    if (!queued) {
      server_.Event("worker.queue_full", remote_addr_);
      Respond(ErrorResponse(503, "unavailable", "server busy, retry later"));
    }
  }

  // Hands a worker's result back to the strand.
  void PostResult(void (Connection::*next)(std::optional<Response>), std::optional<Response> r) {
    net::post(socket_.get_executor(),
              [self = shared_from_this(), next, r = std::move(r)]() mutable {
                self->Guarded([&] {
                  if (self->phase_ != Phase::kClosed) (self.get()->*next)(std::move(r));
                });
              });
  }

  // Worker thread.
  void RunAdmit() {
    std::optional<Response> verdict;
    try {
      if (route_->route.admit && !admitted_quickly_) verdict = route_->route.admit(req_);
      if (!verdict) OpenUploadSink();
    } catch (const std::exception& e) {
      server_.Event("handler.exception", e.what());
      verdict = InternalErrorResponse();
    } catch (...) {
      server_.Event("handler.exception", "non-standard exception");
      verdict = InternalErrorResponse();
    }
    PostResult(&Connection::OnAdmitted, std::move(verdict));
  }

  // Worker thread, after admit (or instead of it): a kToSink route's sink
  // is made before the first body byte is read. A failure is kept in
  // body_status for handle to answer.
  void OpenUploadSink() {
    if (route_->route.body != BodyPolicy::kToSink) return;
    auto sink = route_->route.open_sink(req_);
    if (!sink.ok()) {
      req_.body_status = sink.status();
    } else if (*sink == nullptr) {
      req_.body_status = Internal("open_sink returned no sink");
    } else {
      req_.body_sink = std::move(*sink);
    }
  }

  void OnAdmitted(std::optional<Response> verdict) {
    if (verdict) {
      Respond(std::move(*verdict));
    } else {
      StartBody();
    }
  }

  void StartBody() {
    RequestParser::BodySink sink;
    sink.cap = route_->max_body_bytes;
    if (route_->route.body == BodyPolicy::kToFile) {
      // Created even for an empty body, so the route always gets a file.
      auto file = OpenAnonymousFile(route_->route.body_dir);
      if (!file.ok()) {
        server_.Event("body.tmpfile_failed", file.status().message());
        Respond(InternalErrorResponse());
        return;
      }
      body_file_ = std::move(file).value();
      sink.fd = body_file_.get();
    } else if (route_->route.body == BodyPolicy::kToSink) {
      if (!req_.body_status.ok()) {
        // open_sink failed: the route answers without the body.
        OnBodyRefused();
        return;
      }
      sink.upload = req_.body_sink.get();
    } else if (route_->route.body == BodyPolicy::kBuffered && body_announced_) {
      uint64_t length = parser_->content_length().value_or(0);
      if (!server_.ReserveBufferedBody(length)) {
        server_.Event("body.budget_exhausted", remote_addr_);
        Respond(ErrorResponse(503, "unavailable", "server busy, retry later"));
        return;
      }
      reserved_body_bytes_ = length;
      req_.body.reserve(length);
      sink.buffer = &req_.body;
      sink.max_nesting = route_->route.max_nesting;
    }
    if (!body_announced_) {
      OnBodyDone();
      return;
    }
    parser_->SetBodySink(sink);
    if (expect_continue_) {
      // Only now, with admit passed, is the client invited to send.
      segments_[0] = "HTTP/1.1 100 Continue\r\n\r\n";
      segments_[1].clear();
      StartWrite(AfterWrite::kReadBody);
      return;
    }
    ReadBody();
  }

  void OnBodyRefused() {
    DisarmDeadline();
    Offload(&Connection::RunHandle);
  }

  void ReadBody() {
    phase_ = Phase::kBody;
    ArmDeadline(Deadline::kBody, limits_.body_timeout);
    body_deadline_mark_ = parser_->body_received();
    read_chunk_ = kBodyReadChunk;
    ReadLoop();
  }

  void MaybeExtendBodyDeadline() {
    if (!proxy_ && route_->route.body != BodyPolicy::kToFile &&
        route_->route.body != BodyPolicy::kToSink) {
      return;
    }
    uint64_t received = parser_->body_received();
    if (received - body_deadline_mark_ >= kBodyDeadlineStride) {
      body_deadline_mark_ = received;
      ArmDeadline(Deadline::kBody, limits_.body_timeout);
    }
  }

  void OnBodyDone() {
    DisarmDeadline();
    body_complete_ = true;
    req_.body_size = parser_->body_received();
    if (body_file_.valid()) {
      if (::lseek(body_file_.get(), 0, SEEK_SET) != 0) {
        server_.Event("body.write_failed", ErrnoStatus("body file: lseek", errno).message());
        Respond(InternalErrorResponse());
        return;
      }
      req_.body_fd = body_file_.get();
    }
    Offload(&Connection::RunHandle);
  }

  // Worker thread.
  void RunHandle() {
    Response resp;
    try {
      resp = route_->route.handle(req_);
    } catch (const std::exception& e) {
      server_.Event("handler.exception", e.what());
      resp = InternalErrorResponse();
    } catch (...) {
      server_.Event("handler.exception", "non-standard exception");
      resp = InternalErrorResponse();
    }
    body_file_.reset();
    req_.body_fd = -1;
    req_.body_sink.reset();  // handle has finished with it (or abandoned it)
    PostResult(&Connection::OnHandled, std::move(resp));
  }

  void OnHandled(std::optional<Response> resp) { Respond(std::move(*resp)); }

  // --- Proxying (Route::proxy) ----------------------------------------------

  // After routing: the body announcement against the cap, then admit and
  // proxy on the worker pool. Nothing reaches upstream before both passed.
  void BeginProxy() {
    RequestParser& p = *parser_;
    auto px = std::make_shared<ProxyState>(executor());
    px->upgrade = internal::IsWebSocketUpgrade(req_, p.http_version());
    if (body_announced_) {
      if (px->upgrade) {
        Refuse(400, "invalid_argument", "a WebSocket upgrade request carries no body",
               /*limit=*/false);
        return;
      }
      auto length = p.content_length();
      if (length && *length > route_->max_body_bytes) {
        Refuse(413, "payload_too_large",
               "body: larger than " + std::to_string(route_->max_body_bytes) + " bytes",
               /*limit=*/true);
        return;
      }
      px->request_chunked = !length;
    }
    proxy_ = std::move(px);
    Offload(&Connection::RunProxyAdmit);
  }

  // Worker thread.
  void RunProxyAdmit() {
    std::optional<Response> verdict;
    try {
      if (route_->route.admit) verdict = route_->route.admit(req_);
      if (!verdict) verdict = PrepareProxy();
    } catch (const std::exception& e) {
      server_.Event("handler.exception", e.what());
      verdict = InternalErrorResponse();
    } catch (...) {
      server_.Event("handler.exception", "non-standard exception");
      verdict = InternalErrorResponse();
    }
    PostResult(&Connection::OnProxyAdmitted, std::move(verdict));
  }

  static Response ProxyTargetError(const Status& s) {
    switch (s.code()) {
      case StatusCode::kNotFound: return ErrorResponse(404, "not_found", s.message());
      case StatusCode::kUnauthenticated: return ErrorResponse(401, "unauthenticated", s.message());
      case StatusCode::kPermissionDenied:
        return ErrorResponse(403, "permission_denied", s.message());
      case StatusCode::kUnavailable:
      case StatusCode::kFailedPrecondition: return ErrorResponse(503, "unavailable", s.message());
      default: return ErrorResponse(502, "bad_gateway", s.message());
    }
  }

  // A route's ProxyTarget that cannot be used is a bug in the route: 500.
  Response BadProxyTarget(std::string_view why) {
    server_.Event("proxy.bad_target", why);
    return InternalErrorResponse();
  }

  // Worker thread: names, checks and resolves the upstream and builds the
  // head it is sent. A response is the answer instead.
  std::optional<Response> PrepareProxy() {
    ProxyState& px = *proxy_;
    StatusOr<ProxyTarget> target = route_->route.proxy(req_);
    if (!target.ok()) return ProxyTargetError(target.status());
    px.target = std::move(*target);
    const ProxyTarget& t = px.target;
    if (t.unix_socket.empty() == t.host.empty()) {
      return BadProxyTarget("exactly one of unix_socket and host must be set");
    }
    if (t.connect_timeout.count() <= 0 || t.response_timeout.count() <= 0 ||
        t.tunnel_idle_timeout.count() <= 0) {
      return BadProxyTarget("timeouts must be positive");
    }
    if (!t.unix_socket.empty()) {
      sockaddr_un probe{};
      if (t.unix_socket.front() != '/' || t.unix_socket.size() >= sizeof(probe.sun_path)) {
        return BadProxyTarget("unix_socket: not an absolute path shorter than sun_path");
      }
      px.where = "unix:" + t.unix_socket;
      px.endpoints.emplace_back(net::local::stream_protocol::endpoint(t.unix_socket));
    } else {
      if (t.port < 1 || t.port > 65535) return BadProxyTarget("port out of range");
      px.where = t.host + ":" + std::to_string(t.port);
      net::ip::tcp::resolver resolver(server_.ioc);
      ErrorCode ec;
      auto results = resolver.resolve(t.host, std::to_string(t.port),
                                      net::ip::resolver_base::numeric_service, ec);
      if (ec || results.empty()) {
        ++server_.upstream_failures;
        server_.Event("proxy.resolve_failed",
                      px.where + ": " + (ec ? ec.message() : std::string("no address")));
        return ErrorResponse(502, "bad_gateway", "session upstream: its address does not resolve");
      }
      for (const auto& r : results) px.endpoints.emplace_back(r.endpoint());
    }
    const internal::BodyFraming framing = !body_announced_     ? internal::BodyFraming::kNone
                                          : px.request_chunked ? internal::BodyFraming::kChunked
                                                               : internal::BodyFraming::kLength;
    auto head = internal::BuildUpstreamRequestHead(req_, parser_->target_text(), t, px.upgrade,
                                                   framing, parser_->content_length().value_or(0));
    if (!head.ok()) return BadProxyTarget(head.status().message());
    px.out = std::move(*head);
    return std::nullopt;
  }

  void OnProxyAdmitted(std::optional<Response> verdict) {
    if (verdict) {
      Respond(std::move(*verdict));
      return;
    }
    phase_ = Phase::kProxyConnect;
    ArmDeadline(Deadline::kProxyConnect, proxy_->target.connect_timeout);
    ConnectNextEndpoint();
  }

  // Whether a completion for `px` in `phase` is still the current one.
  bool ProxyCurrent(const std::shared_ptr<ProxyState>& px, Phase phase) const {
    return phase_ == phase && proxy_ == px;
  }

  void ConnectNextEndpoint() {
    auto px = proxy_;
    if (px->next_endpoint == px->endpoints.size()) {
      ++server_.upstream_failures;
      ProxyFail(502, "bad_gateway", "session upstream: not reachable");
      return;
    }
    ErrorCode ignored;
    px->upstream.close(ignored);
    const auto& endpoint = px->endpoints[px->next_endpoint++];
    px->upstream.async_connect(endpoint, [self = shared_from_this(), px](const ErrorCode& ec) {
      self->Guarded([&] {
        if (!self->ProxyCurrent(px, Phase::kProxyConnect)) return;
        if (ec) {
          self->server_.Event("proxy.connect_failed", px->where + ": " + ec.message());
          self->ConnectNextEndpoint();
          return;
        }
        self->OnUpstreamConnected();
      });
    });
  }

  void OnUpstreamConnected() {
    ProxyState& px = *proxy_;
    if (px.target.unix_socket.empty()) {
      int one = 1;
      (void)::setsockopt(px.upstream.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    phase_ = Phase::kProxySend;
    ArmDeadline(Deadline::kProxyUpstream, px.target.response_timeout);
    WriteUpstream(&Connection::OnUpstreamHeadSent);
  }

  // Writes proxy_->out upstream, then resumes `next` (in the same phase).
  void WriteUpstream(void (Connection::*next)()) {
    auto px = proxy_;
    const Phase phase = phase_;
    net::async_write(px->upstream, net::buffer(px->out),
                     [self = shared_from_this(), px, phase, next](const ErrorCode& ec, size_t) {
                       self->Guarded([&] {
                         if (!self->ProxyCurrent(px, phase)) return;
                         px->out.clear();
                         if (ec) {
                           self->OnUpstreamWriteFailed(ec);
                           return;
                         }
                         (self.get()->*next)();
                       });
                     });
  }

  // Upstream stopped taking the request (it may have answered early, a 413
  // say): its answer, if any, is still read; the client connection closes
  // after it, since the rest of its body is unread.
  void OnUpstreamWriteFailed(const ErrorCode& ec) {
    server_.Event("proxy.upstream_write_failed", proxy_->where + ": " + ec.message());
    force_close_ = true;
    AwaitUpstreamResponse();
  }

  void OnUpstreamHeadSent() {
    if (!body_announced_) {
      AwaitUpstreamResponse();
      return;
    }
    RequestParser::BodySink sink;
    sink.cap = route_->max_body_bytes;
    sink.buffer = &proxy_->piece;
    parser_->SetBodySink(sink);
    if (expect_continue_) {
      // Only now, with admit passed and upstream connected, is the client
      // invited to send (Expect itself is not forwarded).
      segments_[0] = "HTTP/1.1 100 Continue\r\n\r\n";
      segments_[1].clear();
      StartWrite(AfterWrite::kProxyBody);
      return;
    }
    ReadBody();
  }

  // ReadLoop (phase kBody) parsed a piece of the client's body, or its end:
  // the piece goes upstream before another byte is read from the client.
  void FlushBodyUpstream() {
    ProxyState& px = *proxy_;
    px.out.clear();
    if (px.request_chunked) {
      internal::AppendChunk(px.piece, &px.out);
    } else {
      px.out.swap(px.piece);
    }
    px.piece.clear();
    const bool last = parser_->is_done();
    if (last && px.request_chunked) px.out += "0\r\n\r\n";
    WriteUpstream(last ? &Connection::OnProxyBodySent : &Connection::ReadLoop);
  }

  void OnProxyBodySent() {
    body_complete_ = true;
    req_.body_size = parser_->body_received();
    AwaitUpstreamResponse();
  }

  void AwaitUpstreamResponse() {
    phase_ = Phase::kProxyResponse;
    proxy_->response.emplace(head_);
    ProxyPump();
  }

  // Parses what upstream sent, writes what the client is owed, and reads
  // upstream again only once that is written.
  void ProxyPump() {
    ProxyState& px = *proxy_;
    internal::UpstreamResponseParser& rp = *px.response;
    for (;;) {
      size_t used = 0;
      if (px.in.size() > 0 && !rp.done()) {
        auto data = px.in.data();
        auto n =
            rp.Put(std::string_view(static_cast<const char*>(data.data()), data.size()), &px.piece);
        if (!n.ok()) {
          UpstreamResponseFailed(n.status());
          return;
        }
        used = *n;
        px.in.consume(used);
      }
      if (used == 0 && px.upstream_eof && !rp.done()) {
        Status s =
            px.upstream_error ? DataLoss("upstream response: the connection failed") : rp.PutEof();
        if (!s.ok()) {
          UpstreamResponseFailed(s);
          return;
        }
      }
      if (!px.head_sent && rp.header_done() && !SendProxyHead()) return;
      if (px.head_sent && (!px.piece.empty() || rp.done() || !segments_[0].empty())) {
        WriteProxyPiece();
        return;
      }
      if (used > 0 && (px.in.size() > 0 || px.upstream_eof)) continue;
      ReadUpstream();
      return;
    }
  }

  // Puts the client's response head in segments_[0]; false when the pump
  // must stop (a refused head, or a 101 whose head is being written).
  bool SendProxyHead() {
    ProxyState& px = *proxy_;
    internal::ClientHeadParams params;
    params.head_request = head_;
    params.upgrade_requested = px.upgrade;
    params.client_version = parser_->http_version();
    params.close =
        force_close_ || !keep_alive_ || server_.stopping || (body_announced_ && !body_complete_);
    auto head = internal::BuildClientResponseHead(*px.response, px.target, params);
    if (!head.ok()) {
      UpstreamResponseFailed(head.status());
      return false;
    }
    status_ = px.response->status();
    px.head_sent = true;
    px.framing = head->framing;
    close_after_write_ = head->close;
    segments_[0] = std::move(head->head);
    segments_[1].clear();
    if (head->tunnel) {
      StartWrite(AfterWrite::kTunnel);
      return false;
    }
    return true;
  }

  void WriteProxyPiece() {
    ProxyState& px = *proxy_;
    const bool last = px.response->done();
    std::string& body = segments_[1];
    body.clear();
    switch (px.framing) {
      case internal::ClientFraming::kChunked:
        internal::AppendChunk(px.piece, &body);
        if (last) body += "0\r\n\r\n";
        break;
      case internal::ClientFraming::kLength:
      case internal::ClientFraming::kUntilClose: body.swap(px.piece); break;
      case internal::ClientFraming::kNone: break;
    }
    px.piece.clear();
    StartWrite(last ? AfterWrite::kFinish : AfterWrite::kProxyResponse);
  }

  void ReadUpstream() {
    auto px = proxy_;
    const size_t room = px->in.max_size() - px->in.size();
    if (px->upstream_eof || room == 0) {
      UpstreamResponseFailed(DataLoss(px->upstream_eof
                                          ? "upstream response: cut short by the upstream closing"
                                          : "upstream response: a line longer than the buffer"));
      return;
    }
    phase_ = Phase::kProxyResponse;  // after a write (kWrite) to the client
    ArmDeadline(Deadline::kProxyUpstream, px->target.response_timeout);
    px->upstream.async_read_some(px->in.prepare(std::min(room, internal::kUpstreamReadChunk)),
                                 [self = shared_from_this(), px](const ErrorCode& ec, size_t n) {
                                   self->Guarded([&] {
                                     if (!self->ProxyCurrent(px, Phase::kProxyResponse)) return;
                                     px->in.commit(n);
                                     if (ec) {
                                       px->upstream_eof = true;
                                       px->upstream_error = ec != net::error::eof;
                                       if (px->upstream_error) {
                                         self->server_.Event("proxy.upstream_read_failed",
                                                             px->where + ": " + ec.message());
                                       }
                                     }
                                     self->ProxyPump();
                                   });
                                 });
  }

  void UpstreamResponseFailed(const Status& s) {
    ++server_.upstream_failures;
    server_.Event("proxy.bad_response", proxy_->where + ": " + s.message());
    if (proxy_->head_sent) {
      Close();  // the client sees the body end early
      return;
    }
    ProxyFail(502, "bad_gateway", "session upstream: " + s.message());
  }

  // Answers the client before any of upstream's response reached it.
  void ProxyFail(int status, std::string_view code, std::string_view message) {
    ErrorCode ignored;
    proxy_->upstream.close(ignored);
    Respond(ErrorResponse(status, code, message));
  }

  void OnProxyDeadline() {
    if (deadline_ == Deadline::kTunnelIdle) {
      const auto idle = Clock::now() - proxy_->last_activity;
      const auto limit = proxy_->target.tunnel_idle_timeout;
      if (idle < limit) {
        ArmDeadline(Deadline::kTunnelIdle,
                    std::chrono::ceil<std::chrono::milliseconds>(limit - idle));
        return;
      }
      server_.Event("tunnel.idle_timeout", remote_addr_);
      CloseTunnel();
      return;
    }
    ++server_.timeouts;
    ++server_.upstream_failures;
    const bool connect = deadline_ == Deadline::kProxyConnect;
    server_.Event(connect ? "timeout.upstream_connect" : "timeout.upstream", proxy_->where);
    if (proxy_->head_sent) {
      Close();
      return;
    }
    const auto ms = connect ? proxy_->target.connect_timeout : proxy_->target.response_timeout;
    ProxyFail(504, "gateway_timeout",
              std::string("session upstream: ") + (connect ? "no connection" : "no response") +
                  " within " + std::to_string(ms.count()) + " ms");
  }

  // --- The WebSocket tunnel ----------------------------------------------------
  // Two pumps on the strand: client -> upstream through buffer_ (TLS read,
  // then an upstream write of what was read) and upstream -> client through
  // proxy_->in (upstream read, then TLS writes). Each reads only once its
  // last read is written. One timer closes the tunnel once no byte moved
  // for tunnel_idle_timeout.

  void StartTunnel() {
    ProxyState& px = *proxy_;
    ReportRequest();
    req_ = Request();
    segments_[0] = std::string();
    segments_[1] = std::string();
    px.response.reset();
    px.piece = std::string();
    px.out = std::string();
    px.tunnel = true;
    ++server_.tunnels_open;
    phase_ = Phase::kTunnel;
    if (server_.stopping) {
      CloseTunnel();
      return;
    }
    px.last_activity = Clock::now();
    ArmDeadline(Deadline::kTunnelIdle, px.target.tunnel_idle_timeout);
    TunnelClientToUpstream();
    TunnelUpstreamToClient();
  }

  void TunnelClientToUpstream() {
    if (phase_ != Phase::kTunnel) return;
    auto px = proxy_;
    if (buffer_.size() > 0) {
      net::async_write(px->upstream, buffer_.data(),
                       [self = shared_from_this(), px](const ErrorCode& ec, size_t n) {
                         self->Guarded([&] {
                           if (!self->ProxyCurrent(px, Phase::kTunnel)) return;
                           if (ec) {
                             self->CloseTunnel();
                             return;
                           }
                           self->buffer_.consume(n);
                           px->last_activity = Clock::now();
                           self->TunnelClientToUpstream();
                         });
                       });
      return;
    }
    auto dst = buffer_.prepare(kBodyReadChunk);
    ERR_clear_error();
    int n = SSL_read(ssl_.get(), dst.data(), static_cast<int>(dst.size()));
    if (n > 0) {
      buffer_.commit(static_cast<size_t>(n));
      px->last_activity = Clock::now();
      TunnelClientToUpstream();
      return;
    }
    switch (Classify(n)) {
      case SslResult::kWantRead:
        WaitFor(net::socket_base::wait_read, &Connection::TunnelClientToUpstream);
        return;
      case SslResult::kWantWrite:
        WaitFor(net::socket_base::wait_write, &Connection::TunnelClientToUpstream);
        return;
      case SslResult::kClosed:
      case SslResult::kFailed: Close(); return;  // the client is gone
    }
  }

  void TunnelUpstreamToClient() {
    if (phase_ != Phase::kTunnel) return;
    auto px = proxy_;
    while (px->in.size() > 0) {
      auto data = px->in.data();
      const size_t len = std::min<size_t>(data.size(), kBodyReadChunk * 4);
      ERR_clear_error();
      int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(len));
      if (n > 0) {
        px->in.consume(static_cast<size_t>(n));
        px->last_activity = Clock::now();
        continue;
      }
      switch (Classify(n)) {
        case SslResult::kWantRead:
          WaitFor(net::socket_base::wait_read, &Connection::TunnelUpstreamToClient);
          return;
        case SslResult::kWantWrite:
          WaitFor(net::socket_base::wait_write, &Connection::TunnelUpstreamToClient);
          return;
        case SslResult::kClosed:
        case SslResult::kFailed: Close(); return;
      }
    }
    if (px->upstream_eof) {
      CloseTunnel();  // upstream closed and all it sent is delivered
      return;
    }
    px->upstream.async_read_some(px->in.prepare(internal::kUpstreamReadChunk),
                                 [self = shared_from_this(), px](const ErrorCode& ec, size_t n) {
                                   self->Guarded([&] {
                                     if (!self->ProxyCurrent(px, Phase::kTunnel)) return;
                                     px->in.commit(n);
                                     if (n > 0) px->last_activity = Clock::now();
                                     if (ec) px->upstream_eof = true;
                                     self->TunnelUpstreamToClient();
                                   });
                                 });
  }

  // One attempt at close_notify (no waiting for the peer's), then close.
  void CloseTunnel() {
    if (ssl_) {
      ERR_clear_error();
      SSL_shutdown(ssl_.get());
      ERR_clear_error();
    }
    Close();
  }

  // --- Streaming a body (Response::stream) ---------------------------------
  // One piece at a time: filled on the worker pool while the strand leaves
  // stream_ and piece_ alone (phase kWorker), then written like any segment.

  void FillNextPiece() {
    phase_ = Phase::kWorker;
    if (!piece_.data) piece_.data = std::make_unique<uint8_t[]>(BodySource::kStreamPieceBytes);
    bool queued = server_.pool.TryPost([self = shared_from_this()] { self->RunFill(); });
    if (!queued) AbortStream("worker queue full");
  }

  // Worker thread.
  void RunFill() {
    StatusOr<size_t> n = Internal("no piece");
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(stream_left_, BodySource::kStreamPieceBytes));
    try {
      n = stream_->Read(std::span<uint8_t>(piece_.data.get(), want));
    } catch (const std::exception& e) {
      n = Internal(std::string("exception: ") + e.what());
    } catch (...) {
      n = Internal("non-standard exception");
    }
    net::post(socket_.get_executor(), [self = shared_from_this(), n = std::move(n)]() mutable {
      self->Guarded([&] {
        if (self->phase_ != Phase::kClosed) self->OnPieceFilled(std::move(n));
      });
    });
  }

  void OnPieceFilled(StatusOr<size_t> n) {
    if (!n.ok()) {
      AbortStream(n.status().message());
      return;
    }
    if (*n == 0 || *n > stream_left_ || *n > BodySource::kStreamPieceBytes) {
      AbortStream("body source returned " + std::to_string(*n) + " bytes with " +
                  std::to_string(stream_left_) + " to go");
      return;
    }
    stream_left_ -= *n;
    piece_.len = *n;
    segments_[0].clear();
    segments_[1].clear();
    StartWrite(AfterWrite::kStream);
  }

  // The head (and Content-Length) are out: all the client can be told is
  // that the body ends early.
  void AbortStream(std::string_view why) {
    server_.Event("stream.aborted", why);
    ReleaseStream();
    Close();
  }

  void ReleaseStream() noexcept {
    stream_.reset();
    stream_left_ = 0;
    piece_.Release();
  }

  // --- Writing a response --------------------------------------------------

  // A transport-level refusal. `limit` counts it in Stats().limit_refusals.
  // Unless the whole request has been read, the connection closes after it.
  void Refuse(int status, std::string_view code, std::string_view message, bool limit) {
    if (limit) ++server_.limit_refusals;
    force_close_ = true;
    Respond(ErrorResponse(status, code, message));
  }

  // Checks what a route returned; a malformed response is a server error,
  // never bytes on the wire.
  bool ValidResponse(const Response& r, std::string* why) {
    if (r.status < 200 || r.status > 599) {
      *why = "status " + std::to_string(r.status);
      return false;
    }
    if (!IsFieldValue(r.content_type)) {
      *why = "content type";
      return false;
    }
    for (const Header& h : r.headers) {
      if (!IsToken(h.name) || !IsFieldValue(h.value)) {
        *why = "header field";
        return false;
      }
    }
    if (r.stream && !r.body.empty()) {
      *why = "both a body and a stream";
      return false;
    }
    return true;
  }

  void Respond(Response resp) {
    std::string why;
    if (!ValidResponse(resp, &why)) {
      server_.Event("handler.bad_response", why);
      resp = InternalErrorResponse();
    }
    bool close = resp.close || force_close_ || !keep_alive_ || server_.stopping ||
                 (body_announced_ && !body_complete_);
    status_ = resp.status;
    bool no_body = resp.status == 204 || resp.status == 304;
    const uint64_t length = resp.stream ? resp.stream->size() : resp.body.size();

    std::string& head = segments_[0];
    head.clear();
    head += "HTTP/1.1 ";
    head += std::to_string(resp.status);
    head += ' ';
    head += ReasonPhrase(resp.status);
    head += "\r\n";
    if (!no_body) {
      if ((length > 0 || resp.stream) && !resp.content_type.empty()) {
        head += "Content-Type: " + resp.content_type + "\r\n";
      }
      head += "Content-Length: " + std::to_string(length) + "\r\n";
    }
    for (const Header& h : resp.headers) {
      // The server frames the message itself.
      if (IEquals(h.name, "content-length") || IEquals(h.name, "transfer-encoding") ||
          IEquals(h.name, "connection")) {
        continue;
      }
      head += h.name + ": " + h.value + "\r\n";
    }
    if (close) {
      head += "Connection: close\r\n";
    } else if (parser_ && parser_->http_version() == 10) {
      head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    segments_[1].clear();
    if (!no_body && !head_) {
      // Small bodies go in the same TLS record as the head.
      if (resp.body.size() <= kBodyReadChunk) {
        head += resp.body;
      } else {
        segments_[1] = std::move(resp.body);
      }
    }
    close_after_write_ = close;
    ReleaseStream();
    if (!no_body && !head_ && resp.stream && length > 0) {
      stream_ = std::move(resp.stream);
      stream_left_ = length;
      StartWrite(AfterWrite::kStream);
      return;
    }
    StartWrite(AfterWrite::kFinish);
  }

  void StartWrite(AfterWrite after) {
    phase_ = Phase::kWrite;
    after_write_ = after;
    segment_ = 0;
    offset_ = 0;
    ArmDeadline(Deadline::kWrite, limits_.write_timeout);
    WriteLoop();
  }

  void WriteLoop() {
    size_t budget = kIoBudgetPerTurn;
    for (;;) {
      if (segment_ == segments_.size() + 1) {
        OnWriteDone();
        return;
      }
      // Index segments_.size() is the streamed piece (empty unless streaming).
      const std::string_view s =
          segment_ < segments_.size()
              ? std::string_view(segments_[segment_])
              : std::string_view(reinterpret_cast<const char*>(piece_.data.get()), piece_.len);
      if (offset_ == s.size()) {
        ++segment_;
        offset_ = 0;
        continue;
      }
      if (budget == 0) {
        Yield(&Connection::WriteLoop);
        return;
      }
      size_t len = std::min<size_t>(s.size() - offset_, 1 << 20);
      ERR_clear_error();
      int n = SSL_write(ssl_.get(), s.data() + offset_, static_cast<int>(len));
      if (n > 0) {
        offset_ += static_cast<size_t>(n);
        budget -= std::min(budget, static_cast<size_t>(n));
        continue;
      }
      OnSslStall(Classify(n), &Connection::WriteLoop, nullptr);
      return;
    }
  }

  void OnWriteDone() {
    DisarmDeadline();
    piece_.len = 0;
    switch (after_write_) {
      case AfterWrite::kReadBody:
      case AfterWrite::kProxyBody: ReadBody(); return;
      case AfterWrite::kProxyResponse:
        segments_[0].clear();
        segments_[1].clear();
        ProxyPump();
        return;
      case AfterWrite::kTunnel: StartTunnel(); return;
      case AfterWrite::kStream:
      case AfterWrite::kFinish: break;
    }
    if (after_write_ == AfterWrite::kStream) {
      if (stream_left_ > 0) {
        FillNextPiece();
        return;
      }
      ReleaseStream();
    }
    ReportRequest();
    bool close = close_after_write_;
    EndRequest();
    if (close) {
      LingeringClose();
    } else {
      WaitForRequest(/*first=*/false);
    }
  }

  void ReportRequest() noexcept {
    if (!server_.options.on_request) return;
    try {
      double seconds = 0;
      if (header_done_at_ != Clock::time_point()) {
        seconds = std::chrono::duration<double>(Clock::now() - header_done_at_).count();
      }
      server_.options.on_request(req_, route_ != nullptr ? route_->route.pattern : "", status_,
                                 seconds);
    } catch (...) {
    }
  }

  // Frees what the request held so a kept-alive connection carries nothing.
  void EndRequest() {
    ReleaseStream();
    server_.ReleaseBufferedBody(reserved_body_bytes_);
    reserved_body_bytes_ = 0;
    body_file_.reset();
    req_ = Request();
    route_ = nullptr;
    proxy_.reset();  // closes the upstream socket
    parser_.reset();
    segments_[0] = std::string();
    segments_[1] = std::string();
    header_done_at_ = Clock::time_point();
    head_ = body_announced_ = body_complete_ = expect_continue_ = keep_alive_ = false;
    admitted_quickly_ = false;
    force_close_ = false;
    status_ = 0;
  }

  // Half-closes and discards what the client still sends, for a moment, so
  // it can read our response before the close turns into a reset.
  void LingeringClose() {
    if (server_.stopping) {
      Close();
      return;
    }
    phase_ = Phase::kLinger;
    ERR_clear_error();
    SSL_shutdown(ssl_.get());  // one attempt at close_notify; no waiting for the peer's
    ERR_clear_error();
    ssl_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();
    ErrorCode ec;
    socket_.shutdown(net::socket_base::shutdown_send, ec);
    linger_discarded_ = 0;
    ArmDeadline(Deadline::kLinger, std::min(kLingerTime, limits_.write_timeout));
    LingerLoop();
  }

  void LingerLoop() {
    size_t budget = kIoBudgetPerTurn;
    for (;;) {
      std::array<char, 4096> scratch;
      ErrorCode ec;
      size_t n = socket_.read_some(net::buffer(scratch), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        WaitFor(net::socket_base::wait_read, &Connection::LingerLoop);
        return;
      }
      linger_discarded_ += n;
      if (ec || linger_discarded_ > kLingerMaxBytes) {
        Close();
        return;
      }
      budget -= std::min(budget, n);
      if (budget == 0) {
        Yield(&Connection::LingerLoop);
        return;
      }
    }
  }

  ServerCore& server_;
  const Limits& limits_;
  Socket socket_;  // declared before ssl_: the SSL is freed first
  Timer timer_;
  SslPtr ssl_;
  const std::string address_key_;
  const std::string remote_addr_;
  beast::flat_buffer buffer_;
  size_t read_chunk_ = kHeaderReadChunk;

  Phase phase_ = Phase::kAwaitTls;
  Deadline deadline_ = Deadline::kNone;
  uint64_t deadline_gen_ = 0;  // a fired timer whose generation is stale is ignored
  std::string ssl_error_;

  // The current request.
  std::optional<RequestParser> parser_;
  Request req_;
  const CompiledRoute* route_ = nullptr;
  UniqueFd body_file_;
  uint64_t reserved_body_bytes_ = 0;
  uint64_t body_deadline_mark_ = 0;
  Clock::time_point header_done_at_;
  bool head_ = false;
  bool body_announced_ = false;
  bool body_complete_ = false;
  bool expect_continue_ = false;
  bool admitted_quickly_ = false;  // this request: Route::admit_quick said yes
  bool keep_alive_ = false;
  bool force_close_ = false;
  int status_ = 0;
  // The current request's upstream side (proxy routes; the tunnel after a 101).
  std::shared_ptr<ProxyState> proxy_;

  // A streamed body's piece: wiped when released (end of the response, or
  // the connection's destruction), since it holds plaintext a route chose
  // to stream.
  struct PieceBuffer {
    std::unique_ptr<uint8_t[]> data;
    size_t len = 0;
    void Release() noexcept {
      if (data) OPENSSL_cleanse(data.get(), BodySource::kStreamPieceBytes);
      data.reset();
      len = 0;
    }
    ~PieceBuffer() { Release(); }
  };

  // The response being written: head (with a small body), a large body, and
  // a streamed body's current piece (segment index 2 in WriteLoop).
  std::shared_ptr<BodySource> stream_;
  uint64_t stream_left_ = 0;  // bytes of stream_ not yet read into piece_
  PieceBuffer piece_;
  std::array<std::string, 2> segments_;
  size_t segment_ = 0;
  size_t offset_ = 0;
  AfterWrite after_write_ = AfterWrite::kFinish;
  bool close_after_write_ = false;
  size_t linger_discarded_ = 0;
};

// --- ServerCore ---------------------------------------------------------------

ServerCore::~ServerCore() {
  stopping = true;
  tearing_down = true;
  pool.Shutdown();
  ErrorCode ec;
  acceptor.close(ec);
  unix_acceptor.close(ec);
  struct stat st {};
  if (!unix_path.empty() && ::lstat(unix_path.c_str(), &st) == 0 && st.st_dev == unix_dev &&
      st.st_ino == unix_ino) {
    (void)::unlink(unix_path.c_str());
  }
  // ioc, declared after the accounting members, is destroyed before them;
  // destroying its pending handlers destroys the last connections.
}

bool ServerCore::TryAddConnection(const std::string& key) {
  std::lock_guard<std::mutex> lock(conn_mu);
  if (counted >= limits.max_connections) return false;
  size_t& n = per_address[key];
  if (n >= limits.max_connections_per_address) return false;
  ++n;
  ++counted;
  ++open_count;
  return true;
}

void ServerCore::RemoveConnection(const Connection* c, const std::string& key) {
  bool drained = false;
  {
    std::lock_guard<std::mutex> lock(conn_mu);
    if (c != nullptr) live.erase(c);
    auto it = per_address.find(key);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
    --counted;
    --open_count;
    drained = counted == 0;
  }
  if (drained && stopping && !tearing_down) ioc.stop();
}

bool ServerCore::ReserveBufferedBody(uint64_t bytes) {
  uint64_t cur = buffered_body_bytes.load();
  do {
    if (bytes > limits.max_buffered_body_bytes || cur > limits.max_buffered_body_bytes - bytes) {
      return false;
    }
  } while (!buffered_body_bytes.compare_exchange_weak(cur, cur + bytes));
  return true;
}

void ServerCore::DoAccept() {
  acceptor.async_accept(
      net::make_strand(ioc),
      net::bind_executor(accept_strand, [this](const ErrorCode& ec, TcpSocket socket) {
        try {
          OnAccept(ec, std::move(socket));
        } catch (const std::exception& e) {
          Event("internal.exception", e.what());
        } catch (...) {
          Event("internal.exception", "non-standard exception");
        }
      }));
}

void ServerCore::OnAccept(const ErrorCode& ec, TcpSocket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Usually EMFILE/ENFILE: retry shortly rather than spin.
    Event("accept.failed", ec.message());
    accept_retry_timer.expires_after(kAcceptRetryDelay);
    accept_retry_timer.async_wait([this](const ErrorCode& wait_ec) {
      if (!wait_ec && acceptor.is_open()) DoAccept();
    });
    return;
  }
  ErrorCode peer_ec;
  auto peer = socket.remote_endpoint(peer_ec);
  if (peer_ec || stopping) {
    DoAccept();
    return;  // the socket closes as it goes out of scope
  }
  ErrorCode opt_ec;
  socket.set_option(net::ip::tcp::no_delay(true), opt_ec);
  if (opt_ec) {
    DoAccept();
    return;
  }
  // DoAccept first: Admit may throw (allocation), and accepting must go on.
  DoAccept();
  Admit(Socket(std::move(socket)), AddressKey(peer.address()), AddressText(peer.address()));
}

void ServerCore::DoUnixAccept() {
  unix_acceptor.async_accept(
      net::make_strand(ioc),
      net::bind_executor(accept_strand, [this](const ErrorCode& ec, UnixSocket socket) {
        try {
          OnUnixAccept(ec, std::move(socket));
        } catch (const std::exception& e) {
          Event("internal.exception", e.what());
        } catch (...) {
          Event("internal.exception", "non-standard exception");
        }
      }));
}

void ServerCore::OnUnixAccept(const ErrorCode& ec, UnixSocket socket) {
  if (ec == net::error::operation_aborted || !unix_acceptor.is_open()) return;
  if (ec) {
    Event("accept.failed", ec.message());
    unix_accept_retry_timer.expires_after(kAcceptRetryDelay);
    unix_accept_retry_timer.async_wait([this](const ErrorCode& wait_ec) {
      if (!wait_ec && unix_acceptor.is_open()) DoUnixAccept();
    });
    return;
  }
  DoUnixAccept();
  if (stopping) return;
  // A Unix peer has no address: it is named by its process (SO_PEERCRED, as
  // seen from the server's PID namespace), which is what the per-address cap
  // and the plane's per-address failure limits then count.
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  const std::string name = "unix:pid=" + std::to_string(cred.pid);
  Admit(Socket(std::move(socket)), name, name);
}

void ServerCore::Admit(Socket socket, const std::string& key, const std::string& text) {
  if (!TryAddConnection(key)) {
    ++refused;
    Event("connection.refused", text);
    return;
  }
  ErrorCode opt_ec;
  socket.non_blocking(true, opt_ec);
  if (opt_ec) {
    RemoveConnection(nullptr, key);
    return;
  }
  ++accepted;
  std::shared_ptr<Connection> conn;
  try {
    conn = std::make_shared<Connection>(*this, std::move(socket), key, text);
  } catch (...) {
    RemoveConnection(nullptr, key);
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(conn_mu);
    live.emplace(conn.get(), conn);
  }
  net::post(conn->executor(), [conn] { conn->Start(); });
}

void ServerCore::ForEachConnection(void (Connection::*fn)()) {
  std::vector<std::weak_ptr<Connection>> snapshot;
  {
    std::lock_guard<std::mutex> lock(conn_mu);
    snapshot.reserve(live.size());
    for (auto& [ptr, weak] : live) snapshot.push_back(weak);
  }
  for (auto& weak : snapshot) {
    if (auto c = weak.lock()) net::post(c->executor(), [c, fn] { (c.get()->*fn)(); });
  }
}

void ServerCore::BeginShutdown() {
  ErrorCode ec;
  acceptor.close(ec);
  unix_acceptor.close(ec);
  accept_retry_timer.cancel();
  unix_accept_retry_timer.cancel();
  ForEachConnection(&Connection::OnServerStopping);
  // In-flight requests get write_timeout to finish; then everything closes.
  stop_timer.expires_after(limits.write_timeout);
  stop_timer.async_wait([this](const ErrorCode& wait_ec) {
    if (!wait_ec) ForEachConnection(&Connection::ForceClose);
  });
  bool drained = false;
  {
    std::lock_guard<std::mutex> lock(conn_mu);
    drained = counted == 0;
  }
  if (drained) ioc.stop();
}

void ServerCore::Stop() {
  if (stopping.exchange(true)) return;
  net::post(accept_strand, [this] {
    try {
      BeginShutdown();
    } catch (...) {
      ioc.stop();
    }
  });
}

void ServerCore::Run() {
  if (ran.exchange(true)) return;
  auto work = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  try {
    pool.Start(limits.worker_threads);
    for (size_t i = 0; i < limits.io_threads; ++i) {
      threads.emplace_back([this] {
        // OpenSSL writes to sockets with write(2); a peer that has gone
        // away must be an EPIPE here, not a SIGPIPE for the process.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        for (;;) {
          try {
            ioc.run();
            return;
          } catch (const std::exception& e) {
            Event("internal.exception", e.what());
          } catch (...) {
            Event("internal.exception", "non-standard exception");
          }
        }
      });
    }
  } catch (const std::exception& e) {
    Event("server.thread_start_failed", e.what());
    Stop();
    if (threads.empty()) ioc.stop();
  }
  for (auto& t : threads) t.join();
  pool.Shutdown();
}

}  // namespace

struct Server::Impl final : ServerCore {
  using ServerCore::ServerCore;
};

// --- Server ------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options, std::vector<Route> routes) {
  const Limits& l = options.limits;
  if (l.io_threads == 0) return InvalidArgument("limits.io_threads: must be at least 1");
  if (l.worker_threads == 0) return InvalidArgument("limits.worker_threads: must be at least 1");
  if (l.max_queued_requests == 0) {
    return InvalidArgument("limits.max_queued_requests: must be at least 1");
  }
  if (l.max_header_bytes < 256) return InvalidArgument("limits.max_header_bytes: below 256");
  if (l.max_connections == 0 || l.max_connections_per_address == 0) {
    return InvalidArgument("limits.max_connections*: must be at least 1");
  }
  std::vector<CompiledRoute> compiled;
  compiled.reserve(routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    Route& r = routes[i];
    std::string where = "route " + std::to_string(i) + " '" + r.method + " " + r.pattern + "'";
    if (!IsToken(r.method)) return InvalidArgument(where + ": method is not an HTTP token");
    if (!r.handle && !r.proxy) return InvalidArgument(where + ": handle is not set");
    if (r.method == "*" && !r.proxy) {
      return InvalidArgument(where + ": method \"*\" is for proxy routes only");
    }
    if (r.body == BodyPolicy::kToFile && r.body_dir.empty()) {
      return InvalidArgument(where + ": body_dir is required for BodyPolicy::kToFile");
    }
    if (r.body == BodyPolicy::kToSink && !r.open_sink) {
      return InvalidArgument(where + ": open_sink is required for BodyPolicy::kToSink");
    }
    CompiledRoute c;
    try {
      c.regex = std::regex(r.pattern, kRouteRegexFlags);
    } catch (const std::regex_error& e) {
      return InvalidArgument(where + ": pattern: " + e.what());
    }
    c.max_body_bytes = r.max_body_bytes != 0 ? r.max_body_bytes : l.max_body_bytes;
    c.route = std::move(r);
    compiled.push_back(std::move(c));
  }
  ASSIGN_OR_RETURN(SslCtxPtr ctx,
                   MakeTlsContext(options.tls_cert_chain_file, options.tls_key_file));
  return std::unique_ptr<Server>(
      new Server(std::make_unique<Impl>(std::move(options), std::move(compiled), std::move(ctx))));
}

StatusOr<int> Server::Listen(const std::string& host, int port) {
  Impl& s = *impl_;
  std::string where = "listen on " + host + ":" + std::to_string(port);
  if (port < 0 || port > 65535) return InvalidArgument(where + ": port out of range");
  if (s.acceptor.is_open()) return FailedPrecondition(where + ": already listening");
  ErrorCode ec;
  net::ip::address addr = net::ip::make_address(host, ec);
  if (ec) {
    net::ip::tcp::resolver resolver(s.ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return Status(StatusCode::kIo, where + ": resolve: " + (ec ? ec.message() : "no address"));
    }
    addr = results.begin()->endpoint().address();
  }
  net::ip::tcp::endpoint endpoint(addr, static_cast<unsigned short>(port));
  auto fail = [&](const char* step) {
    ErrorCode close_ec;
    s.acceptor.close(close_ec);
    return Status(StatusCode::kIo, where + ": " + step + ": " + ec.message());
  };
  s.acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("socket");
  // SO_REUSEADDR only: restarts need not wait out TIME_WAIT. Never
  // SO_REUSEPORT, which would let a second process share the port.
  s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  s.acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  s.acceptor.listen(kListenBacklog, ec);
  if (ec) return fail("listen");
  auto local = s.acceptor.local_endpoint(ec);
  if (ec) return fail("getsockname");
  net::post(s.accept_strand, [&s] {
    try {
      s.DoAccept();
    } catch (const std::exception& e) {
      s.Event("internal.exception", e.what());
    }
  });
  return static_cast<int>(local.port());
}

Status Server::ListenUnix(const std::string& path, mode_t mode) {
  Impl& s = *impl_;
  const std::string where = "listen on unix:" + path;
  sockaddr_un probe{};
  if (path.empty() || path.front() != '/' || path.size() >= sizeof(probe.sun_path)) {
    return InvalidArgument(where + ": expected an absolute path shorter than " +
                           std::to_string(sizeof(probe.sun_path)) + " bytes");
  }
  if ((mode & ~static_cast<mode_t>(0777)) != 0) {
    return InvalidArgument(where + ": mode must be permission bits only");
  }
  if (s.unix_acceptor.is_open()) return FailedPrecondition(where + ": already listening");
  // A socket file left by a previous run is replaced; one a live server
  // answers on, or anything that is not a socket, is not.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPrecondition(where + ": the path exists and is not a socket");
    }
    UniqueFd probe_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe_fd.valid()) return ErrnoStatus(where + ": socket", errno);
    probe.sun_family = AF_UNIX;
    std::memcpy(probe.sun_path, path.data(), path.size());
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
    const auto* addr = reinterpret_cast<const sockaddr*>(&probe);
    if (::connect(probe_fd.get(), addr, sizeof(probe)) == 0) {
      return FailedPrecondition(where + ": another server is listening on it");
    }
    if (::unlink(path.c_str()) != 0) return ErrnoStatus(where + ": unlink stale socket", errno);
  } else if (errno != ENOENT) {
    return ErrnoStatus(where + ": lstat", errno);
  }
  ErrorCode ec;
  auto fail = [&](const char* step) {
    ErrorCode close_ec;
    s.unix_acceptor.close(close_ec);
    return Status(StatusCode::kIo, where + ": " + step + ": " + ec.message());
  };
  const net::local::stream_protocol::endpoint endpoint(path);
  s.unix_acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("socket");
  s.unix_acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  // The mode is set before listen(): until then a connect is refused, so no
  // peer can get in through the permissions bind() left (umask-dependent).
  if (::chmod(path.c_str(), mode) != 0 || ::lstat(path.c_str(), &st) != 0) {
    ec.assign(errno, boost::system::system_category());
    (void)::unlink(path.c_str());
    return fail("chmod");
  }
  s.unix_acceptor.listen(kListenBacklog, ec);
  if (ec) {
    (void)::unlink(path.c_str());
    return fail("listen");
  }
  s.unix_path = path;
  s.unix_dev = st.st_dev;
  s.unix_ino = st.st_ino;
  net::post(s.accept_strand, [&s] {
    try {
      s.DoUnixAccept();
    } catch (const std::exception& e) {
      s.Event("internal.exception", e.what());
    }
  });
  return Status::Ok();
}

void Server::Run() {
  impl_->Run();
}

void Server::Stop() {
  impl_->Stop();
}

ServerStats Server::Stats() const {
  const Impl& s = *impl_;
  ServerStats st;
  st.connections_open = s.open_count.load();
  st.connections_accepted = s.accepted.load();
  st.connections_refused = s.refused.load();
  st.timeouts = s.timeouts.load();
  st.limit_refusals = s.limit_refusals.load();
  st.requests = s.requests.load();
  st.tunnels_open = s.tunnels_open.load();
  st.upstream_failures = s.upstream_failures.load();
  return st;
}

// --- Request, ErrorJson --------------------------------------------------------

std::optional<std::string> Request::HeaderValue(std::string_view name) const {
  for (const Header& h : headers) {
    if (IEquals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::optional<std::string> Request::QueryValue(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::string ErrorJson(std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// --- The parsing path without a socket (request_parse.h) ----------------------

namespace internal {

// Mirrors Connection: ReadLoop's feeding, OnParseError, OnHeader's checks and
// StartBody's sink, in one pass.
ParseOutcome ParseRequest(std::string_view bytes, const Limits& limits, const ParseRoute& route,
                          size_t read_size) {
  ParseOutcome out;
  auto refused = [&out](const Refusal& r) {
    out.status = r.status;
    out.code = r.code;
    out.message = r.message;
    return out;
  };
  RequestParser p(limits);
  beast::flat_buffer buffer(std::max<size_t>(limits.max_header_bytes, 4096) + kBodyReadChunk);
  const uint64_t cap = route.max_body_bytes == 0 ? limits.max_body_bytes : route.max_body_bytes;
  bool header_done = false;
  size_t offset = 0;
  read_size = std::max<size_t>(read_size, 1);
  for (;;) {
    if (buffer.size() > 0) {
      ErrorCode ec;
      size_t used = p.Put(buffer.data(), ec);
      buffer.consume(used);
      out.consumed += used;
      if (ec == bhttp::error::need_more) ec = {};
      if (ec) return refused(ParseErrorRefusal(p, ec, limits));
      if (!header_done && p.is_header_done()) {
        header_done = true;
        out.request.method = p.method_text();
        out.request.headers = p.fields();
        if (auto r = CheckRequestHead(p, &out.request)) return refused(*r);
        if (auto r = CheckBodyAnnouncement(p, out.request, route.body, cap)) return refused(*r);
        if (!BodyAnnounced(p)) {
          out.complete = true;
          return out;
        }
        RequestParser::BodySink sink;
        sink.cap = cap;
        sink.buffer = &out.request.body;
        if (route.body == BodyPolicy::kBuffered) sink.max_nesting = route.max_nesting;
        p.SetBodySink(sink);
      }
      if (header_done && p.is_done()) {
        out.complete = true;
        out.request.body_size = p.body_received();
        return out;
      }
      if (used > 0 && buffer.size() > 0) continue;
    }
    if (offset == bytes.size()) return out;  // needs more bytes
    size_t room = buffer.max_size() - buffer.size();
    if (room == 0) {
      return refused({400, "invalid_argument", "body: malformed chunked encoding", "", false});
    }
    size_t n = std::min(
        {room, read_size, header_done ? kBodyReadChunk : kHeaderReadChunk, bytes.size() - offset});
    auto dst = buffer.prepare(n);
    std::memcpy(dst.data(), bytes.data() + offset, n);
    buffer.commit(n);
    offset += n;
  }
}

}  // namespace internal

}  // namespace cce::http
