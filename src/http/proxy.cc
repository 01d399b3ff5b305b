// The reverse proxy's pure parts (proxy.h): header rewriting both ways and
// Beast's response parser with our limits.
#include "http/proxy.h"

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <cstring>
#include <limits>

namespace cce::http::internal {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

using ErrorCode = boost::system::error_code;

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IStartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IsFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// Whether a comma-separated list field value holds `token` (case-insensitive).
bool ListHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (IEquals(Trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool AnyFieldHas(const std::vector<Header>& fields, std::string_view name, std::string_view token) {
  return std::any_of(fields.begin(), fields.end(), [&](const Header& h) {
    return IEquals(h.name, name) && ListHas(h.value, token);
  });
}

// Hop-by-hop fields (RFC 9110 7.6.1) plus the fields a Connection field
// names: they describe one connection and never cross the proxy.
bool IsHopByHop(std::string_view name, const std::vector<Header>& fields) {
  static constexpr std::string_view kFixed[] = {"connection", "keep-alive",        "te",
                                                "trailer",    "transfer-encoding", "upgrade"};
  for (std::string_view f : kFixed) {
    if (IEquals(name, f)) return true;
  }
  if (IStartsWith(name, "proxy-")) return true;
  return AnyFieldHas(fields, "connection", name);
}

bool InList(std::string_view name, const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return IEquals(n, name); });
}

bool CookieNamed(std::string_view name, const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n == name; });
}

// The cookie-pairs of a Cookie field value without those named in `drop`.
void KeepCookies(std::string_view value, const std::vector<std::string>& drop, std::string* out) {
  while (!value.empty()) {
    size_t semi = value.find(';');
    std::string_view pair = Trim(value.substr(0, semi));
    value = semi == std::string_view::npos ? std::string_view() : value.substr(semi + 1);
    if (pair.empty()) continue;
    std::string_view name = Trim(pair.substr(0, pair.find('=')));
    if (CookieNamed(name, drop)) continue;
    if (!out->empty()) *out += "; ";
    *out += pair;
  }
}

std::string Hex(uint64_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[n & 0xf]);
    n >>= 4;
  } while (n != 0);
  return s;
}

std::string_view ToStd(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string_view Reason(int status) {
  auto s = bhttp::int_to_status(static_cast<unsigned>(status));
  if (s == bhttp::status::unknown) return "Status";
  return ToStd(bhttp::obsolete_reason(s));
}

Status Refused(std::string what) {
  return DataLoss("upstream response: " + std::move(what));
}

}  // namespace

bool IsWebSocketUpgrade(const Request& req, int http_version) {
  return http_version == 11 && req.method == "GET" &&
         AnyFieldHas(req.headers, "connection", "upgrade") &&
         AnyFieldHas(req.headers, "upgrade", "websocket");
}

void AppendChunk(std::string_view piece, std::string* out) {
  if (piece.empty()) return;  // an empty chunk would end the body
  *out += Hex(piece.size());
  *out += "\r\n";
  *out += piece;
  *out += "\r\n";
}

StatusOr<std::string> BuildUpstreamRequestHead(const Request& req, std::string_view target,
                                               const ProxyTarget& proxy, bool upgrade,
                                               BodyFraming framing, uint64_t content_length) {
  for (size_t i = 0; i < proxy.set_headers.size(); ++i) {
    const Header& h = proxy.set_headers[i];
    if (!IsToken(h.name) || !IsFieldValue(h.value)) {
      return InvalidArgument("proxy target: set_headers[" + std::to_string(i) +
                             "]: not a valid header field");
    }
  }
  static constexpr std::string_view kDropped[] = {
      "content-length",    "expect",           "forwarded",        "x-forwarded-for",
      "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"};
  std::string head;
  head.reserve(1024);
  head += req.method;
  head += ' ';
  head += target;
  head += " HTTP/1.1\r\n";
  std::string cookies;
  std::optional<std::string> host;
  for (const Header& h : req.headers) {
    if (IsHopByHop(h.name, req.headers)) continue;
    if (std::any_of(std::begin(kDropped), std::end(kDropped),
                    [&](std::string_view d) { return IEquals(h.name, d); })) {
      continue;
    }
    if (InList(h.name, proxy.remove_headers)) continue;
    if (std::any_of(proxy.set_headers.begin(), proxy.set_headers.end(),
                    [&](const Header& s) { return IEquals(s.name, h.name); })) {
      continue;
    }
    if (IEquals(h.name, "cookie")) {
      KeepCookies(h.value, proxy.remove_cookies, &cookies);
      continue;
    }
    if (IEquals(h.name, "host")) {
      if (host) continue;  // Beast takes one Host; a second is dropped, not guessed at
      host = h.value;
    }
    head += h.name;
    head += ": ";
    head += h.value;
    head += "\r\n";
  }
  if (!host) {
    std::string upstream =
        proxy.unix_socket.empty() ? proxy.host + ":" + std::to_string(proxy.port) : "localhost";
    head += "Host: " + upstream + "\r\n";
  }
  if (!cookies.empty()) head += "Cookie: " + cookies + "\r\n";
  for (const Header& h : proxy.set_headers) head += h.name + ": " + h.value + "\r\n";
  head += "X-Forwarded-For: " + req.remote_addr + "\r\n";
  head += "X-Forwarded-Proto: https\r\n";
  if (host) head += "X-Forwarded-Host: " + *host + "\r\n";
  switch (framing) {
    case BodyFraming::kNone:
      if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
        head += "Content-Length: 0\r\n";
      }
      break;
    case BodyFraming::kLength:
      head += "Content-Length: " + std::to_string(content_length) + "\r\n";
      break;
    case BodyFraming::kChunked: head += "Transfer-Encoding: chunked\r\n"; break;
  }
  if (upgrade) {
    head += "Connection: Upgrade\r\nUpgrade: websocket\r\n";
  } else {
    head += "Connection: close\r\n";
  }
  head += "\r\n";
  return head;
}

// --- The response parser ---------------------------------------------------------

namespace {

// Beast's response parser with our callbacks: field count, transfer coding
// and where decoded body bytes go.
class BeastResponseParser final : public bhttp::basic_parser<false> {
 public:
  explicit BeastResponseParser(bool head_request) {
    header_limit(static_cast<uint32_t>(kMaxUpstreamHeadBytes));
    body_limit(std::numeric_limits<uint64_t>::max());
    skip(head_request);
  }

  // put() plus the head's byte total (see RequestParser::Put in server.cc:
  // Beast's header_limit alone bounds only bytes not yet consumed).
  size_t Put(std::string_view bytes, std::string* body, ErrorCode& ec) {
    body_ = body;
    const bool in_header = !is_header_done();
    const size_t used = put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
    if (in_header) {
      header_bytes_ += used;
      if (header_bytes_ > kMaxUpstreamHeadBytes && (!ec || ec == bhttp::error::need_more)) {
        ec = bhttp::error::header_limit;
      }
    }
    body_ = nullptr;
    return used;
  }

  int status_code() const { return status_; }
  int version_number() const { return version_; }
  std::vector<Header>& fields() { return fields_; }
  const std::string& refusal() const { return refusal_; }
  size_t transfer_encoding_fields() const { return te_fields_; }
  const std::string& transfer_encoding() const { return te_value_; }

 private:
  void Stop(ErrorCode& ec, std::string why) {
    refusal_ = std::move(why);
    ec = boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
  }

  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int,
                       ErrorCode& ec) override {
    Stop(ec, "not a response");  // unreachable: this parses responses
  }

  void on_response_impl(int code, beast::string_view, int version, ErrorCode& ec) override {
    if (version != 10 && version != 11) {
      Stop(ec, "HTTP version " + std::to_string(version / 10) + "." + std::to_string(version % 10) +
                   " (expected 1.0 or 1.1)");
      return;
    }
    if (code < 100 || code > 599) {
      Stop(ec, "status " + std::to_string(code) + " out of range");
      return;
    }
    status_ = code;
    version_ = version;
  }

  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     ErrorCode& ec) override {
    if (++field_count_ > kMaxUpstreamHeaderCount) {
      Stop(ec, "more than " + std::to_string(kMaxUpstreamHeaderCount) + " header fields");
      return;
    }
    if (is_header_done()) return;  // trailers are dropped
    if (name == bhttp::field::transfer_encoding) {
      ++te_fields_;
      te_value_.assign(value.data(), value.size());
    }
    fields_.push_back(Header{std::string(name_string.data(), name_string.size()),
                             std::string(value.data(), value.size())});
  }

  void on_header_impl(ErrorCode& ec) override {
    if (te_fields_ > 0 && !(te_fields_ == 1 && IEquals(Trim(te_value_), "chunked"))) {
      Stop(ec, "transfer-encoding: only a lone \"chunked\" is accepted");
      return;
    }
    if (te_fields_ > 0 && content_length()) {
      Stop(ec, "both Content-Length and Transfer-Encoding");
    }
  }

  void on_body_init_impl(const boost::optional<uint64_t>&, ErrorCode&) override {}

  size_t on_body_impl(beast::string_view piece, ErrorCode& ec) override {
    return Absorb(piece, ec);
  }

  void on_chunk_header_impl(uint64_t, beast::string_view, ErrorCode&) override {}

  size_t on_chunk_body_impl(uint64_t, beast::string_view piece, ErrorCode& ec) override {
    return Absorb(piece, ec);
  }

  void on_finish_impl(ErrorCode&) override {}

  size_t Absorb(beast::string_view piece, ErrorCode& ec) {
    if (body_ == nullptr) {
      Stop(ec, "body without a sink");
      return 0;
    }
    body_->append(piece.data(), piece.size());
    return piece.size();
  }

  std::string* body_ = nullptr;
  int status_ = 0;
  int version_ = 11;
  std::vector<Header> fields_;
  size_t field_count_ = 0;
  size_t header_bytes_ = 0;
  size_t te_fields_ = 0;
  std::string te_value_;
  std::string refusal_;
};

std::string DescribeError(const BeastResponseParser& p, const ErrorCode& ec) {
  if (!p.refusal().empty()) return p.refusal();
  if (ec == bhttp::error::header_limit) {
    return "head larger than " + std::to_string(kMaxUpstreamHeadBytes) + " bytes";
  }
  if (ec == bhttp::error::partial_message) return "cut short by the upstream closing";
  return "malformed (" + ec.message() + ")";
}

}  // namespace

struct UpstreamResponseParser::Impl {
  explicit Impl(bool head)
      : head_request(head), parser(std::make_unique<BeastResponseParser>(head)) {}
  bool head_request;
  std::unique_ptr<BeastResponseParser> parser;
  int interim = 0;
  bool final_head = false;
};

UpstreamResponseParser::UpstreamResponseParser(bool head_request)
    : impl_(std::make_unique<Impl>(head_request)) {}
UpstreamResponseParser::~UpstreamResponseParser() = default;

StatusOr<size_t> UpstreamResponseParser::Put(std::string_view bytes, std::string* body) {
  size_t total = 0;
  while (!bytes.empty() && !done()) {
    ErrorCode ec;
    size_t used = impl_->parser->Put(bytes, body, ec);
    total += used;
    bytes.remove_prefix(used);
    if (ec == bhttp::error::need_more) return total;
    if (ec) return Refused(DescribeError(*impl_->parser, ec));
    if (!impl_->parser->is_header_done()) return total;
    const int status = impl_->parser->status_code();
    if (status >= 100 && status < 200 && status != 101) {
      // An interim response (100 Continue, 103 Early Hints): dropped.
      if (++impl_->interim > kMaxInterimResponses) {
        return Refused("more than " + std::to_string(kMaxInterimResponses) +
                       " interim (1xx) responses");
      }
      impl_->parser = std::make_unique<BeastResponseParser>(impl_->head_request);
      continue;
    }
    impl_->final_head = true;
    if (used == 0 && !impl_->parser->is_done()) return total;
  }
  return total;
}

Status UpstreamResponseParser::PutEof() {
  BeastResponseParser& p = *impl_->parser;
  if (!p.got_some()) return Refused("the upstream closed the connection before a response");
  ErrorCode ec;
  p.put_eof(ec);
  if (ec) return Refused(DescribeError(p, ec));
  return Status::Ok();
}

bool UpstreamResponseParser::header_done() const {
  return impl_->final_head;
}
bool UpstreamResponseParser::done() const {
  return impl_->final_head && impl_->parser->is_done();
}
int UpstreamResponseParser::status() const {
  return impl_->parser->status_code();
}
int UpstreamResponseParser::version() const {
  return impl_->parser->version_number();
}
const std::vector<Header>& UpstreamResponseParser::fields() const {
  return impl_->parser->fields();
}
std::optional<uint64_t> UpstreamResponseParser::content_length() const {
  auto n = impl_->parser->content_length();
  if (!n) return std::nullopt;
  return *n;
}
bool UpstreamResponseParser::chunked() const {
  return impl_->parser->chunked();
}
int UpstreamResponseParser::interim_responses() const {
  return impl_->interim;
}

// --- The client's response head ---------------------------------------------------

StatusOr<ClientHead> BuildClientResponseHead(const UpstreamResponseParser& parser,
                                             const ProxyTarget& proxy,
                                             const ClientHeadParams& params) {
  ClientHead out;
  const int status = parser.status();
  const std::vector<Header>& fields = parser.fields();
  if (status == 101) {
    if (!params.upgrade_requested) return Refused("101 to a request that asked for no upgrade");
    if (!AnyFieldHas(fields, "upgrade", "websocket")) {
      return Refused("101 without \"Upgrade: websocket\"");
    }
    out.tunnel = true;
  }
  std::string& head = out.head;
  head.reserve(1024);
  head += "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head += Reason(status);
  head += "\r\n";
  for (const Header& h : fields) {
    if (!IsToken(h.name) || !IsFieldValue(h.value)) {
      return Refused("header field '" + (IsToken(h.name) ? h.name : std::string("?")) +
                     "': not a valid field");
    }
    if (IsHopByHop(h.name, fields) || IEquals(h.name, "content-length")) continue;
    if (IEquals(h.name, "set-cookie")) {
      std::string_view v = h.value;
      std::string_view name = Trim(v.substr(0, v.find('=')));
      if (CookieNamed(name, proxy.remove_cookies)) continue;
    }
    head += h.name;
    head += ": ";
    head += h.value;
    head += "\r\n";
  }
  bool close = params.close;
  if (out.tunnel) {
    head += "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    out.framing = ClientFraming::kNone;
    return out;
  }
  const bool no_body = params.head_request || status == 204 || status == 304;
  if (no_body) {
    out.framing = ClientFraming::kNone;
    // A HEAD or 304 answer may say how long the body would be.
    if (status != 204) {
      if (auto n = parser.content_length())
        head += "Content-Length: " + std::to_string(*n) + "\r\n";
    }
  } else if (auto n = parser.content_length()) {
    out.framing = ClientFraming::kLength;
    head += "Content-Length: " + std::to_string(*n) + "\r\n";
  } else if (params.client_version == 11) {
    out.framing = ClientFraming::kChunked;
    head += "Transfer-Encoding: chunked\r\n";
  } else {
    out.framing = ClientFraming::kUntilClose;
    close = true;
  }
  if (close) {
    head += "Connection: close\r\n";
  } else if (params.client_version == 10) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  out.close = close;
  return out;
}

UpstreamParseOutcome ParseUpstreamResponse(std::string_view bytes, bool eof,
                                           const ProxyTarget& proxy, const ClientHeadParams& params,
                                           size_t read_size) {
  UpstreamParseOutcome out;
  UpstreamResponseParser parser(params.head_request);
  beast::flat_buffer buffer(kUpstreamBufferBytes);
  read_size = std::max<size_t>(read_size, 1);
  size_t offset = 0;
  auto finish_head = [&]() -> bool {
    out.head_done = true;
    out.status = parser.status();
    auto head = BuildClientResponseHead(parser, proxy, params);
    if (!head.ok()) {
      out.error = head.status().message();
      return false;
    }
    out.client = std::move(*head);
    return true;
  };
  // Mirrors the connection's ProxyPump: parse what is buffered, read more.
  for (;;) {
    if (buffer.size() > 0 && !parser.done()) {
      auto data = buffer.data();
      auto used = parser.Put(std::string_view(static_cast<const char*>(data.data()), data.size()),
                             &out.body);
      if (!used.ok()) {
        out.error = used.status().message();
        return out;
      }
      buffer.consume(*used);
      out.consumed += *used;
      if (!out.head_done && parser.header_done() && !finish_head()) return out;
      if (parser.done()) break;
      if (*used > 0 && buffer.size() > 0) continue;
    }
    if (parser.done()) break;
    if (offset == bytes.size()) {
      if (!eof) return out;
      Status s = parser.PutEof();
      if (!s.ok()) {
        out.error = s.message();
        return out;
      }
      if (!out.head_done && parser.header_done() && !finish_head()) return out;
      break;
    }
    size_t room = buffer.max_size() - buffer.size();
    if (room == 0) {
      out.error = "upstream response: a chunk header line too long";
      return out;
    }
    size_t n = std::min({room, read_size, kUpstreamReadChunk, bytes.size() - offset});
    auto dst = buffer.prepare(n);
    std::memcpy(dst.data(), bytes.data() + offset, n);
    buffer.commit(n);
    offset += n;
  }
  out.done = parser.done();
  return out;
}

}  // namespace cce::http::internal
