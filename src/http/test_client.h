// Test support (library cce_http_test_client; tests and benchmarks only): a
// terse HTTPS client for assertions — Get/Post/Put/Delete returning an
// optional reply (empty when the request did not complete; error() says
// why). Built on http::Client, so tests exercise the production client.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/client.h"

namespace cce::http::testing {

using Headers = std::multimap<std::string, std::string>;

struct Reply {
  int status = 0;
  std::string body;
  std::vector<Header> headers;
  // "" when absent; names are case-insensitive.
  std::string get_header_value(std::string_view name) const;
};
using Result = std::optional<Reply>;
using BodyReader = std::function<StatusOr<size_t>(std::span<uint8_t> buf)>;

class TestClient {
 public:
  // https://host:port, trusting ca_file (empty: the system store).
  TestClient(int port, std::string ca_file, std::string host = "127.0.0.1");
  explicit TestClient(ClientOptions options) : options_(std::move(options)) {}

  Result Get(const std::string& target, const Headers& headers = {});
  Result Delete(const std::string& target, const Headers& headers = {});
  Result Post(const std::string& target, const std::string& body, const std::string& content_type);
  Result Post(const std::string& target, const Headers& headers, const std::string& body,
              const std::string& content_type);
  Result Put(const std::string& target, const Headers& headers, const std::string& body,
             const std::string& content_type);
  // Streamed (chunked) bodies.
  Result Post(const std::string& target, const Headers& headers, BodyReader reader,
              const std::string& content_type);
  Result Put(const std::string& target, const Headers& headers, BodyReader reader,
             const std::string& content_type);
  // Any method.
  Result Send(ClientRequest request);

  // Why the last request did not complete.
  const Status& error() const { return error_; }

 private:
  ClientOptions options_;
  std::optional<Client> client_;  // created on first use, kept for keep-alive
  Status error_;
};

}  // namespace cce::http::testing
