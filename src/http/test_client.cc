#include "http/test_client.h"

#include <strings.h>

namespace cce::http::testing {
namespace {

ClientRequest Make(std::string method, const std::string& target, const Headers& headers,
                   const std::string& content_type) {
  ClientRequest r;
  r.method = std::move(method);
  r.target = target;
  for (const auto& [k, v] : headers) r.headers.push_back({k, v});
  if (!content_type.empty()) r.headers.push_back({"Content-Type", content_type});
  return r;
}

}  // namespace

std::string Reply::get_header_value(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() &&
        ::strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return h.value;
    }
  }
  return "";
}

TestClient::TestClient(int port, std::string ca_file, std::string host) {
  options_.base_url = "https://" + host + ":" + std::to_string(port);
  options_.ca_file = std::move(ca_file);
  options_.connect_timeout = std::chrono::milliseconds(5000);
  options_.timeout = std::chrono::milliseconds(120'000);
}

Result TestClient::Send(ClientRequest request) {
  if (!client_) {
    auto c = Client::Create(options_);
    if (!c.ok()) {
      error_ = c.status();
      return std::nullopt;
    }
    client_.emplace(std::move(*c));
  }
  auto r = client_->Send(request);
  if (!r.ok()) {
    error_ = r.status();
    client_.reset();  // start afresh after a broken connection
    return std::nullopt;
  }
  error_ = Status::Ok();
  return Reply{r->status, std::move(r->body), std::move(r->headers)};
}

Result TestClient::Get(const std::string& target, const Headers& headers) {
  return Send(Make("GET", target, headers, ""));
}

Result TestClient::Delete(const std::string& target, const Headers& headers) {
  return Send(Make("DELETE", target, headers, ""));
}

Result TestClient::Post(const std::string& target, const std::string& body,
                        const std::string& content_type) {
  return Post(target, {}, body, content_type);
}

Result TestClient::Post(const std::string& target, const Headers& headers, const std::string& body,
                        const std::string& content_type) {
  ClientRequest r = Make("POST", target, headers, content_type);
  r.body = body;
  return Send(std::move(r));
}

Result TestClient::Put(const std::string& target, const Headers& headers, const std::string& body,
                       const std::string& content_type) {
  ClientRequest r = Make("PUT", target, headers, content_type);
  r.body = body;
  return Send(std::move(r));
}

Result TestClient::Post(const std::string& target, const Headers& headers, BodyReader reader,
                        const std::string& content_type) {
  ClientRequest r = Make("POST", target, headers, content_type);
  r.body_reader = std::move(reader);
  return Send(std::move(r));
}

Result TestClient::Put(const std::string& target, const Headers& headers, BodyReader reader,
                       const std::string& content_type) {
  ClientRequest r = Make("PUT", target, headers, content_type);
  r.body_reader = std::move(reader);
  return Send(std::move(r));
}

}  // namespace cce::http::testing
