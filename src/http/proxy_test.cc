// http::Server proxy routes (Route::proxy): a real Server over TLS in front
// of a real upstream written here with Beast (HTTP/1.1 and a WebSocket echo,
// on a Unix socket and on TCP, recording every request it gets), driven by
// the production http::Client and by Beast's WebSocket client over TLS.
// What reaches upstream is read from the upstream's own record, so a cookie
// or header that should have been stripped is caught where it would leak.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "crypto/x509.h"
#include "http/client.h"
#include "http/server.h"

namespace cce::http {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using namespace std::chrono_literals;
using GenericSocket = net::generic::stream_protocol::socket;

// The cookie the plane authenticates with, and the session's own.
constexpr const char* kPlaneCookie = "cce_session";
constexpr const char* kPlaneSecret = "PLANE-SECRET-e2b4";
constexpr const char* kBearerSecret = "BEARER-SECRET-77a1";
constexpr const char* kUpstreamToken = "token upstream-token-5c";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- The upstream: Beast, one thread per connection -------------------------------

struct Seen {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  bool chunked = false;
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  size_t Count(const std::string& name) const {
    size_t n = 0;
    for (const auto& h : headers) n += h.first == name ? 1 : 0;
    return n;
  }
};

class Upstream {
 public:
  // TCP on 127.0.0.1 (port 0 picks one), or a Unix socket at `path`.
  static std::unique_ptr<Upstream> Tcp() {
    auto u = std::unique_ptr<Upstream>(new Upstream);
    u->family_ = AF_INET;
    u->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(u->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(u->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return nullptr;
    socklen_t len = sizeof(a);
    ::getsockname(u->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    u->port_ = ntohs(a.sin_port);
    return u->Start() ? std::move(u) : nullptr;
  }
  static std::unique_ptr<Upstream> Unix(const std::string& path) {
    auto u = std::unique_ptr<Upstream>(new Upstream);
    u->family_ = AF_UNIX;
    u->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    if (::bind(u->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return nullptr;
    return u->Start() ? std::move(u) : nullptr;
  }

  ~Upstream() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    ::close(listen_fd_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
  }

  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  Seen last() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.empty() ? Seen{} : seen_.back();
  }

 private:
  Upstream() = default;

  bool Start() {
    if (::listen(listen_fd_, 256) != 0) return false;
    acceptor_ = std::thread([this] {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          return;
        }
        ++connections_;
        std::lock_guard<std::mutex> lock(mu_);
        open_fds_.push_back(fd);
        workers_.emplace_back([this, fd] { Serve(fd); });
      }
    });
    return true;
  }

  void Serve(int fd) {
    net::io_context ioc;
    GenericSocket sock(ioc);
    boost::system::error_code ec;
    sock.assign(net::generic::stream_protocol(family_, 0), fd, ec);
    if (ec) return;
    beast::flat_buffer buf;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(uint64_t{64} << 20);
    bhttp::read(sock, buf, parser, ec);
    if (ec) return;
    auto& req = parser.get();
    Seen s;
    s.method = std::string(req.method_string());
    s.target = std::string(req.target());
    for (const auto& f : req) {
      s.headers.emplace_back(Lower(std::string(f.name_string())), std::string(f.value()));
    }
    s.body = req.body();
    s.chunked = parser.chunked();
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(s);
    }
    if (websocket::is_upgrade(req)) {
      ServeWebSocket(std::move(sock), req);
      return;
    }
    const std::string target = s.target;
    auto raw = [&](const std::string& bytes) { net::write(sock, net::buffer(bytes), ec); };
    if (target.find("/malformed") != std::string::npos) {
      raw("HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (target.find("/hugehead") != std::string::npos) {
      raw("HTTP/1.1 200 OK\r\nX-Big: " + std::string(100 * 1024, 'a') +
          "\r\nContent-Length: 2\r\n\r\nok");
    } else if (target.find("/smuggle") != std::string::npos) {
      raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: "
          "chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    } else if (target.find("/no-upgrade-101") != std::string::npos) {
      raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    } else if (target.find("/chunked") != std::string::npos) {
      std::string out =
          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
      raw(out);
      for (int i = 0; i < 300; ++i) {
        std::string piece(1000, static_cast<char>('a' + i % 26));
        char size[16];
        std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
        raw(size + piece + "\r\n");
      }
      raw("0\r\nX-Trailer: t\r\n\r\n");
    } else if (target.find("/eof") != std::string::npos) {
      raw("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + std::string(70000, 'e'));
    } else if (target.find("/interim") != std::string::npos) {
      raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (target.find("/truncated") != std::string::npos) {
      raw("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(10, 't'));
    } else if (target.find("/slow") != std::string::npos) {
      std::this_thread::sleep_for(1500ms);
      raw("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
    } else if (target.find("/cookies") != std::string::npos) {
      raw(std::string("HTTP/1.1 200 OK\r\nSet-Cookie: ") + kPlaneCookie +
          "=from-upstream; Path=/\r\nSet-Cookie: _xsrf=x1; Path=/\r\n"
          "Keep-Alive: timeout=5\r\nConnection: close, X-Hop\r\nX-Hop: h\r\nContent-Length: "
          "2\r\n\r\nok");
    } else {
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.set(bhttp::field::content_type, "application/octet-stream");
      res.set("X-Seen-Method", s.method);
      res.body() = s.body;
      res.prepare_payload();
      res.keep_alive(false);
      bhttp::write(sock, res, ec);
    }
    sock.shutdown(net::socket_base::shutdown_send, ec);
  }

  void ServeWebSocket(GenericSocket sock, const bhttp::request<bhttp::string_body>& req) {
    websocket::stream<GenericSocket> ws(std::move(sock));
    boost::system::error_code ec;
    ws.accept(req, ec);
    if (ec) return;
    for (;;) {
      beast::flat_buffer b;
      ws.read(b, ec);
      if (ec) return;
      ws.text(ws.got_text());
      ws.write(b.data(), ec);
      if (ec) return;
    }
  }

  int family_ = AF_INET;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_ (joined after acceptor_)
  std::vector<int> open_fds_;         // guarded by mu_
  std::vector<Seen> seen_;            // guarded by mu_
};

// --- Fixture ---------------------------------------------------------------------------

void WriteString(const std::string& path, std::string_view s) {
  ASSERT_TRUE(WriteNewFile(path, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, 0600).ok())
      << path;
}

// A request with the plane's cookie (admit lets it through) and Jupyter's.
ClientRequest Req(std::string method, std::string target, std::string body = "") {
  ClientRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  r.headers.push_back({"Cookie", std::string(kPlaneCookie) + "=" + kPlaneSecret + "; _xsrf=abc"});
  return r;
}

// Waits (bounded) for a condition the server reaches asynchronously.
bool Eventually(const std::function<bool()>& f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

struct Finished {
  std::string route;
  int status = 0;
};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/cce-http-proxy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto ca = crypto::CreateCertificateAuthority("test ca", ::time(nullptr) - 3600, 2);
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    auto cert = crypto::IssueServerCertificate(*ca, "cce-plane", {"localhost"}, {"127.0.0.1"},
                                               ::time(nullptr) - 3600, 2);
    ASSERT_TRUE(cert.ok()) << cert.status().message();
    WriteString(dir_ + "/ca.crt", ca->cert_pem);
    WriteString(dir_ + "/server.crt", cert->cert_pem);
    WriteString(dir_ + "/server.key",
                std::string_view(reinterpret_cast<const char*>(cert->key_pem.data()),
                                 cert->key_pem.size()));
    target_.remove_cookies = {kPlaneCookie};
    target_.remove_headers = {"Authorization"};
    target_.set_headers = {{"Authorization", kUpstreamToken}};
  }
  void TearDown() override {
    StopServer();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void UseTcpUpstream() {
    upstream_ = Upstream::Tcp();
    ASSERT_NE(upstream_, nullptr);
    target_.host = "127.0.0.1";
    target_.port = upstream_->port();
    target_.unix_socket.clear();
  }
  void UseUnixUpstream() {
    const std::string path = dir_ + "/jupyter.sock";
    upstream_ = Upstream::Unix(path);
    ASSERT_NE(upstream_, nullptr);
    target_.unix_socket = path;
    target_.host.clear();
    target_.port = 0;
  }

  // The plane's shape: admit authenticates (cookie or bearer) and may
  // refuse; proxy names the upstream for the captured session id.
  void StartServer(Limits limits = {}) {
    ServerOptions o;
    o.tls_cert_chain_file = dir_ + "/server.crt";
    o.tls_key_file = dir_ + "/server.key";
    o.limits = limits;
    o.limits.io_threads = 2;
    o.limits.worker_threads = 4;
    // PROXY_TEST_EVENTS=1 prints the server's transport events (debugging).
    if (std::getenv("PROXY_TEST_EVENTS") != nullptr) {
      o.on_event = [](std::string_view event, std::string_view detail) {
        std::fprintf(stderr, "event %.*s: %.*s\n", static_cast<int>(event.size()), event.data(),
                     static_cast<int>(detail.size()), detail.data());
      };
    }
    o.on_request = [this](const Request&, std::string_view route, int status, double) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_.push_back({std::string(route), status});
    };
    std::vector<Route> routes;
    Route r;
    r.method = "*";
    r.pattern = "/explore/([a-z0-9-]+)/.*";
    r.max_body_bytes = route_cap_;
    r.admit = [this](const Request& req) -> std::optional<Response> {
      ++admits_;
      const std::string cookie = req.HeaderValue("Cookie").value_or("");
      const std::string auth = req.HeaderValue("Authorization").value_or("");
      if (cookie.find(std::string(kPlaneCookie) + "=" + kPlaneSecret) != std::string::npos ||
          auth == std::string("Bearer ") + kBearerSecret) {
        return std::nullopt;
      }
      Response refuse;
      refuse.status = 401;
      refuse.body = ErrorJson("unauthenticated", "log in first");
      return refuse;
    };
    r.proxy = [this](const Request& req) -> StatusOr<ProxyTarget> {
      ++proxies_;
      if (req.captures[0] == "missing") return NotFound("explore session 'missing': not found");
      if (req.captures[0] == "starting") return Unavailable("explore session: still starting");
      std::lock_guard<std::mutex> lock(mu_);
      return target_;
    };
    routes.push_back(std::move(r));
    Route plain;
    plain.method = "GET";
    plain.pattern = "/plain";
    plain.handle = [](Request&) { return Response{}; };
    routes.push_back(std::move(plain));
    auto s = Server::Create(std::move(o), std::move(routes));
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
    auto port = server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status().message();
    port_ = *port;
    runner_ = std::thread([this] { server_->Run(); });
  }
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    if (runner_.joinable()) runner_.join();
    server_.reset();
  }

  Client NewClient(std::chrono::milliseconds timeout = 20s) {
    ClientOptions co;
    co.base_url = "https://localhost:" + std::to_string(port_);
    co.ca_file = dir_ + "/ca.crt";
    co.connect_timeout = 5s;
    co.timeout = timeout;
    auto c = Client::Create(co);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return std::move(*c);
  }

  void SetTarget(const std::function<void(ProxyTarget&)>& f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(target_);
  }

  std::vector<Finished> finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  std::string dir_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  int port_ = 0;
  std::mutex mu_;
  ProxyTarget target_;              // guarded by mu_
  std::vector<Finished> finished_;  // guarded by mu_
  std::atomic<int> admits_{0};
  uint64_t route_cap_ = uint64_t{64} << 20;  // the proxied route's max_body_bytes
  std::atomic<int> proxies_{0};
};

// --- HTTP ---------------------------------------------------------------------------------

void RoundTrips(Client& c, Upstream& up) {
  // GET with a query string: path and query reach upstream untouched.
  auto r = c.Send(Req("GET", "/explore/xs-1/api/contents?type=file&content=1&q=a%20b"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(up.last().method, "GET");
  EXPECT_EQ(up.last().target, "/explore/xs-1/api/contents?type=file&content=1&q=a%20b");

  // One byte each way, several methods.
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    r = c.Send(Req(method, "/explore/xs-1/api/sessions/1", "x"));
    ASSERT_TRUE(r.ok()) << method << ": " << r.status().message();
    EXPECT_EQ(r->status, 200) << method;
    EXPECT_EQ(r->body, "x") << method;
    EXPECT_EQ(r->HeaderValue("X-Seen-Method").value_or(""), method);
    EXPECT_EQ(up.last().method, method);
    EXPECT_EQ(up.last().body, "x") << method;
  }

  // 5 MB streamed from the client as chunks: re-chunked upstream, echoed.
  std::string big(5 << 20, '\0');
  std::mt19937 rng(7);
  for (char& ch : big) ch = static_cast<char>(rng());
  size_t offset = 0;
  ClientRequest put = Req("PUT", "/explore/xs-1/api/contents/big.bin");
  put.body_reader = [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
    size_t n = std::min(buf.size(), big.size() - offset);
    std::memcpy(buf.data(), big.data() + offset, n);
    offset += n;
    return n;
  };
  r = c.Send(put);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(up.last().chunked);
  EXPECT_EQ(up.last().body.size(), big.size());
  EXPECT_TRUE(up.last().body == big);
  EXPECT_TRUE(r->body == big) << "echoed " << r->body.size() << " bytes";

  // The same with Content-Length.
  r = c.Send(Req("POST", "/explore/xs-1/api/contents/big2.bin", big));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(up.last().chunked);
  EXPECT_EQ(up.last().Header("content-length"), std::to_string(big.size()));
  EXPECT_TRUE(r->body == big);
}

TEST_F(ProxyTest, RoundTripsMethodsQueriesAndBodiesOverUnixSocket) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  RoundTrips(c, *upstream_);
  // Each finished request is reported with the route and the upstream's status.
  auto f = finished();
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f.back().route, "/explore/([a-z0-9-]+)/.*");
  EXPECT_EQ(f.back().status, 200);
}

TEST_F(ProxyTest, RoundTripsMethodsQueriesAndBodiesOverTcp) {
  UseTcpUpstream();
  StartServer();
  Client c = NewClient();
  RoundTrips(c, *upstream_);
}

TEST_F(ProxyTest, StripsThePlanesCookieAndCredentialsAndAddsSetHeaders) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  ClientRequest req = Req("GET", "/explore/xs-1/tree");
  req.headers.push_back({"Authorization", std::string("Bearer ") + kBearerSecret});
  req.headers.push_back({"X-Forwarded-For", "6.6.6.6"});
  req.headers.push_back({"Proxy-Authorization", "Basic cHJveHk="});
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->status, 200);
  Seen s = upstream_->last();
  // Only the session's own cookie is left; the plane's never arrives.
  EXPECT_EQ(s.Header("cookie"), "_xsrf=abc");
  for (const auto& [name, value] : s.headers) {
    EXPECT_EQ(value.find(kPlaneSecret), std::string::npos) << name << ": " << value;
    EXPECT_EQ(value.find(kBearerSecret), std::string::npos) << name << ": " << value;
  }
  // The client's Authorization is replaced by the route's.
  EXPECT_EQ(s.Count("authorization"), 1u);
  EXPECT_EQ(s.Header("authorization"), kUpstreamToken);
  EXPECT_EQ(s.Header("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(s.Count("x-forwarded-for"), 1u);
  EXPECT_EQ(s.Header("x-forwarded-proto"), "https");
  EXPECT_EQ(s.Header("x-forwarded-host"), "localhost:" + std::to_string(port_));
  EXPECT_EQ(s.Header("host"), "localhost:" + std::to_string(port_));
  EXPECT_EQ(s.Count("proxy-authorization"), 0u);
  EXPECT_EQ(s.Header("connection"), "close");
}

TEST_F(ProxyTest, DropsUpstreamSetCookieForThePlanesCookieAndHopByHopFields) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  auto r = c.Send(Req("GET", "/explore/xs-1/cookies"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  int set_cookies = 0;
  for (const Header& h : r->headers) {
    if (Lower(h.name) == "set-cookie") {
      ++set_cookies;
      EXPECT_EQ(h.value.rfind("_xsrf=", 0), 0u) << h.value;
    }
    EXPECT_NE(Lower(h.name), "keep-alive");
    EXPECT_NE(Lower(h.name), "x-hop");  // named by upstream's Connection field
  }
  EXPECT_EQ(set_cookies, 1);
}

TEST_F(ProxyTest, RefusedByAdmitNeverReachesUpstream) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  ClientRequest req;
  req.method = "POST";
  req.target = "/explore/xs-1/api/contents/x";
  req.body = std::string(1 << 20, 'b');
  req.headers.push_back({"Cookie", std::string(kPlaneCookie) + "=wrong; _xsrf=abc"});
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 401);
  req.method = "GET";
  req.body.clear();
  r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(admits_.load(), 2);
  EXPECT_EQ(proxies_.load(), 0);
  EXPECT_EQ(upstream_->connections(), 0);
}

TEST_F(ProxyTest, ProxyErrorsBecomeTheirStatuses) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  auto r = c.Send(Req("GET", "/explore/missing/tree"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("not found"), std::string::npos) << r->body;
  r = c.Send(Req("GET", "/explore/starting/tree"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(upstream_->connections(), 0);
}

TEST_F(ProxyTest, UpstreamDownIsA502Quickly) {
  StartServer();
  // A connect timeout far longer than the client's: only a prompt refusal passes.
  SetTarget([&](ProxyTarget& t) {
    t.unix_socket = dir_ + "/nobody-listens.sock";
    t.connect_timeout = 60s;
  });
  Client c = NewClient(5s);
  auto r = c.Send(Req("GET", "/explore/xs-1/tree"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("bad_gateway"), std::string::npos) << r->body;
  // A closed TCP port.
  auto closed = Upstream::Tcp();
  ASSERT_NE(closed, nullptr);
  const int dead_port = closed->port();
  closed.reset();
  SetTarget([&](ProxyTarget& t) {
    t.unix_socket.clear();
    t.host = "127.0.0.1";
    t.port = dead_port;
  });
  r = c.Send(Req("POST", "/explore/xs-1/api/x", std::string(100000, 'p')));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 502);
  EXPECT_GE(server_->Stats().upstream_failures, 2u);
}

TEST_F(ProxyTest, MalformedOversizedOrAmbiguousUpstreamHeadsAre502) {
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  for (const char* path : {"/explore/xs-1/malformed", "/explore/xs-1/hugehead",
                           "/explore/xs-1/smuggle", "/explore/xs-1/no-upgrade-101"}) {
    auto r = c.Send(Req("GET", path));
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().message();
    EXPECT_EQ(r->status, 502) << path << ": " << r->body;
  }
}

TEST_F(ProxyTest, StreamsChunkedCloseDelimitedAndInterimResponses) {
  UseTcpUpstream();
  StartServer();
  Client c = NewClient();
  auto r = c.Send(Req("GET", "/explore/xs-1/chunked"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(r->body.size(), 300000u);
  EXPECT_EQ(r->body.substr(999, 2), "ab");
  r = c.Send(Req("GET", "/explore/xs-1/eof"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, std::string(70000, 'e'));
  r = c.Send(Req("GET", "/explore/xs-1/interim"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  r = c.Send(Req("HEAD", "/explore/xs-1/api"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(upstream_->last().method, "HEAD");
  // A body cut short upstream is cut short for the client too.
  r = c.Send(Req("GET", "/explore/xs-1/truncated"));
  EXPECT_FALSE(r.ok());
}

TEST_F(ProxyTest, SilentUpstreamIsA504) {
  UseUnixUpstream();
  StartServer();
  SetTarget([](ProxyTarget& t) { t.response_timeout = 300ms; });
  Client c = NewClient();
  auto r = c.Send(Req("GET", "/explore/xs-1/slow"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 504);
}

TEST_F(ProxyTest, BodyOverTheRouteCapIs413BeforeUpstream) {
  // A cap below the server's lingering-close allowance (1 MiB discarded
  // after the early 413), so the client finishes sending and reads the
  // answer: with 64 MiB the server reset the connection mid-upload now and
  // then and the client saw a transport error instead of the 413.
  route_cap_ = 256 << 10;
  UseUnixUpstream();
  StartServer();
  Client c = NewClient();
  auto r = c.Send(Req("PUT", "/explore/xs-1/api/contents/x", std::string((256 << 10) + 1, 'x')));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(upstream_->connections(), 0);
}

TEST_F(ProxyTest, HundredConcurrentRequests) {
  UseUnixUpstream();
  StartServer();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([this, i, &ok] {
      Client c = NewClient(60s);
      const std::string body = "request-" + std::to_string(i);
      auto r = c.Send(Req("POST", "/explore/xs-1/api/echo/" + std::to_string(i), body));
      if (r.ok() && r->status == 200 && r->body == body) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(upstream_->connections(), 100);
}

TEST(ProxyRoutes, StarMethodIsForProxyRoutesOnly) {
  ServerOptions o;
  Route r;
  r.method = "*";
  r.pattern = "/x";
  r.handle = [](Request&) { return Response{}; };
  std::vector<Route> routes{r};
  auto s = Server::Create(o, routes);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("proxy routes only"), std::string::npos)
      << s.status().message();
}

// --- WebSocket ------------------------------------------------------------------------------

class WsClient {
 public:
  WsClient() : ctx_(ssl::context::tls_client), ws_(ioc_, ctx_) {}
  ~WsClient() {
    if (watchdog_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = true;
      }
      cv_.notify_all();
      watchdog_.join();
    }
  }

  // Connects, and guarantees no read blocks past `limit` (the socket is shut down then).
  boost::system::error_code Connect(int port, const std::string& ca, const std::string& path,
                                    const std::string& cookie,
                                    std::chrono::milliseconds limit = 20s) {
    boost::system::error_code ec;
    ctx_.load_verify_file(ca, ec);
    if (ec) return ec;
    ctx_.set_verify_mode(ssl::verify_peer);
    auto& tcp = beast::get_lowest_layer(ws_);
    tcp.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)}, ec);
    if (ec) return ec;
    const int fd = tcp.native_handle();
    watchdog_ = std::thread([this, fd, limit] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) ::shutdown(fd, SHUT_RDWR);
    });
    static char kHost[] = "localhost";
    SSL_ctrl(ws_.next_layer().native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME,
             TLSEXT_NAMETYPE_host_name, kHost);
    ws_.next_layer().handshake(ssl::stream_base::client, ec);
    if (ec) return ec;
    ws_.set_option(websocket::stream_base::decorator([cookie](websocket::request_type& req) {
      if (!cookie.empty()) req.set(bhttp::field::cookie, cookie);
    }));
    ws_.handshake(response_, "localhost:" + std::to_string(port), path, ec);
    return ec;
  }

  boost::system::error_code Send(const std::string& data, bool binary) {
    boost::system::error_code ec;
    ws_.binary(binary);
    ws_.write(net::buffer(data), ec);
    return ec;
  }

  // The next message (empty and an error when the connection ended).
  std::string Receive(boost::system::error_code& ec, bool* was_text = nullptr) {
    beast::flat_buffer b;
    ws_.read(b, ec);
    if (was_text != nullptr) *was_text = ws_.got_text();
    return beast::buffers_to_string(b.data());
  }

  void Close() {
    boost::system::error_code ec;
    ws_.close(websocket::close_code::normal, ec);
  }

  const websocket::response_type& response() const { return response_; }

 private:
  net::io_context ioc_;
  ssl::context ctx_;
  websocket::stream<beast::ssl_stream<net::ip::tcp::socket>> ws_;
  websocket::response_type response_;
  std::thread watchdog_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
};

std::string PlaneCookie() {
  return std::string(kPlaneCookie) + "=" + kPlaneSecret + "; _xsrf=abc";
}

// `others`: tunnels already open on `server`.
void EchoesTextAndBinary(int port, const std::string& ca, Upstream& up, Server& server,
                         uint64_t others = 0) {
  WsClient ws;
  auto ec =
      ws.Connect(port, ca, "/explore/xs-1/api/kernels/k1/channels?session_id=s1", PlaneCookie());
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(ws.response().result_int(), 101);
  // Counted once the 101 is written, which the client may see first.
  EXPECT_TRUE(Eventually([&] { return server.Stats().tunnels_open == others + 1; }));
  Seen s = up.last();
  EXPECT_EQ(s.target, "/explore/xs-1/api/kernels/k1/channels?session_id=s1");
  EXPECT_EQ(s.Header("cookie"), "_xsrf=abc");
  EXPECT_EQ(s.Header("authorization"), kUpstreamToken);
  EXPECT_EQ(Lower(s.Header("upgrade")), "websocket");
  EXPECT_FALSE(s.Header("sec-websocket-key").empty());

  ASSERT_FALSE(ws.Send("{\"msg_type\":\"execute_request\"}", /*binary=*/false));
  bool text = false;
  std::string got = ws.Receive(ec, &text);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(text);
  EXPECT_EQ(got, "{\"msg_type\":\"execute_request\"}");

  std::string big(1 << 20, '\0');
  std::mt19937 rng(3);
  for (char& c : big) c = static_cast<char>(rng());
  for (int i = 0; i < 2; ++i) {
    ASSERT_FALSE(ws.Send(big, /*binary=*/true));
    got = ws.Receive(ec, &text);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_FALSE(text);
    EXPECT_TRUE(got == big) << "received " << got.size() << " bytes";
  }
  ws.Close();
  EXPECT_TRUE(Eventually([&] { return server.Stats().tunnels_open == others; }));
}

TEST_F(ProxyTest, WebSocketEchoOverUnixSocket) {
  UseUnixUpstream();
  StartServer();
  // An open tunnel holds no thread: with one I/O thread busy with it, plain
  // requests still go through.
  WsClient idle;
  ASSERT_FALSE(idle.Connect(port_, dir_ + "/ca.crt", "/explore/xs-1/api/kernels/k0/channels",
                            PlaneCookie()));
  Client c = NewClient();
  auto r = c.Send(Req("GET", "/explore/xs-1/tree"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EchoesTextAndBinary(port_, dir_ + "/ca.crt", *upstream_, *server_, /*others=*/1);
  auto f = finished();
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f.back().status, 101);
}

TEST_F(ProxyTest, WebSocketEchoOverTcp) {
  UseTcpUpstream();
  StartServer();
  EchoesTextAndBinary(port_, dir_ + "/ca.crt", *upstream_, *server_);
}

TEST_F(ProxyTest, WebSocketRefusedByAdmitNeverReachesUpstream) {
  UseUnixUpstream();
  StartServer();
  WsClient ws;
  auto ec =
      ws.Connect(port_, dir_ + "/ca.crt", "/explore/xs-1/api/kernels/k1/channels", "_xsrf=abc");
  // Beast keeps the refusal's status to itself; upgrade_declined says it was not a 101.
  EXPECT_EQ(ec, websocket::error::upgrade_declined) << ec.message();
  EXPECT_EQ(upstream_->connections(), 0);
  EXPECT_EQ(server_->Stats().tunnels_open, 0u);
}

TEST_F(ProxyTest, IdleTunnelCloses) {
  UseUnixUpstream();
  StartServer();
  SetTarget([](ProxyTarget& t) { t.tunnel_idle_timeout = 300ms; });
  WsClient ws;
  auto ec =
      ws.Connect(port_, dir_ + "/ca.crt", "/explore/xs-1/api/kernels/k1/channels", PlaneCookie());
  ASSERT_FALSE(ec) << ec.message();
  // Traffic keeps it open past the timeout...
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(150ms);
    ASSERT_FALSE(ws.Send("ping", false));
    ws.Receive(ec);
    ASSERT_FALSE(ec) << "round " << i << ": " << ec.message();
  }
  // ...silence closes it (the read ends; the watchdog would end it at 20 s).
  ws.Receive(ec);
  EXPECT_TRUE(ec);
  EXPECT_TRUE(Eventually([&] { return server_->Stats().tunnels_open == 0; }));
}

TEST_F(ProxyTest, StopClosesOpenTunnels) {
  UseUnixUpstream();
  StartServer();
  WsClient a;
  WsClient b;
  ASSERT_FALSE(
      a.Connect(port_, dir_ + "/ca.crt", "/explore/xs-1/api/kernels/k1/channels", PlaneCookie()));
  ASSERT_FALSE(
      b.Connect(port_, dir_ + "/ca.crt", "/explore/xs-1/api/kernels/k2/channels", PlaneCookie()));
  EXPECT_TRUE(Eventually([&] { return server_->Stats().tunnels_open == 2; }));
  StopServer();  // returns only once every connection is closed
  boost::system::error_code ec;
  a.Receive(ec);
  EXPECT_TRUE(ec);
  b.Receive(ec);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace cce::http
