// http client: HTTPS requests over libcurl with keep-alive, used by the `cce`
// CLI, the agent, tests and benchmarks. One Client holds one connection (not
// thread-safe: one per thread). Transport failures become kUnavailable with
// the cause in words and what to check; HTTP statuses are returned as is.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "http/server.h"  // Header

namespace cce::http {

struct ClientOptions {
  std::string base_url;  // https://HOST:PORT (no trailing slash)
  std::string ca_file;   // PEM bundle to trust; empty: the system store
  // Set: connect to this Unix-domain socket instead of HOST:PORT. base_url
  // still names the server, and its host is what the certificate must match
  // (for the plane's agent socket: https://localhost, a name `cce-plane
  // init` always puts in the certificate). docs/provisioners.md.
  std::string unix_socket_path;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{0};  // whole request; 0: none
  // Added with client.cc: a request that moves no byte either way for this
  // long fails (what a socket read timeout gives, but good for a download of
  // any length); 0: never. Rounded up to whole seconds.
  std::chrono::milliseconds stall_timeout{0};
  // Added with client.cc: a body kept in ClientResponse::body larger than
  // this fails with kDataLoss (bodies given to body_sink are not limited).
  uint64_t max_response_bytes = uint64_t{256} << 20;
};

struct ClientRequest {
  std::string method = "GET";
  std::string target;  // path and query, e.g. "/api/v1/jobs?limit=10"
  std::vector<Header> headers;
  std::string body;
  // Set for a streamed upload (sent chunked): fills a prefix of buf, 0 at the
  // end; an error aborts the request and is returned by Send.
  std::function<StatusOr<size_t>(std::span<uint8_t> buf)> body_reader;
  // With body_reader: the body's exact length, sent as Content-Length instead
  // of chunked (the reader must then yield exactly this many bytes).
  std::optional<uint64_t> body_size;
  // Set for a streamed download of a 2xx body: gets it piece by piece (not
  // stored in ClientResponse::body); an error aborts and is returned.
  std::function<Status(std::span<const uint8_t> piece)> body_sink;
};

struct ClientResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;
  std::optional<std::string> HeaderValue(std::string_view name) const;  // case-insensitive
};

class Client {
 public:
  static StatusOr<Client> Create(ClientOptions options);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  StatusOr<ClientResponse> Send(const ClientRequest& request);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query value or path segment (RFC 3986 unreserved kept).
std::string UrlEncode(std::string_view s);

// A URL for messages: user:password@ in the authority is replaced by ***@,
// so a credential someone put into a configured URL never reaches a log.
std::string RedactUrl(std::string_view url);
// Text a server or a library chose (error headers, libcurl/OpenSSL details)
// made safe for a message: at most `max` bytes, non-printables as '?'.
std::string Printable(std::string_view s, size_t max);

}  // namespace cce::http
