// http server tests: a real Server on a loopback port, driven by raw OpenSSL
// TLS clients written here, well-behaved and hostile (floods, trickles,
// refused cipher suites), so each limit is shown to hold on the wire.
#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace cce::http {
namespace {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// --- Fixture: a throwaway ECDSA certificate -----------------------------------

struct TestFiles {
  std::string dir;
  std::string cert;
  std::string key;
  std::string other_key;  // a key that does not match `cert`
  std::string bodies;     // body_dir for kToFile routes
};

TestFiles* g_files = nullptr;

EVP_PKEY* NewP256Key() {
  // EVP_EC_gen is a macro with a C cast; this is the function it calls.
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
}

void WriteKey(EVP_PKEY* key, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(f);
}

class TestEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    // Clients write to sockets the server has closed; that must be an error
    // return in the test, not a signal.
    signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/cce-http-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_files = new TestFiles;
    g_files->dir = tmpl;
    g_files->cert = g_files->dir + "/cert.pem";
    g_files->key = g_files->dir + "/key.pem";
    g_files->other_key = g_files->dir + "/other-key.pem";
    g_files->bodies = g_files->dir + "/bodies";
    ASSERT_EQ(mkdir(g_files->bodies.c_str(), 0700), 0);

    EVP_PKEY* key = NewP256Key();
    ASSERT_NE(key, nullptr);
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
    FILE* f = std::fopen(g_files->cert.c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, x);
    std::fclose(f);
    WriteKey(key, g_files->key);
    X509_free(x);
    EVP_PKEY_free(key);
    EVP_PKEY* other = NewP256Key();
    WriteKey(other, g_files->other_key);
    EVP_PKEY_free(other);
  }
  void TearDown() override {
    if (g_files == nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(g_files->dir, ec);
    delete g_files;
    g_files = nullptr;
  }
};

[[maybe_unused]] auto* const g_env =
    ::testing::AddGlobalTestEnvironment(new TestEnvironment);  // NOLINT(cert-err58-cpp)

const TestFiles& Files() {
  return *g_files;
}

size_t RssKiB(pid_t pid = 0) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/status")
                            : "/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// --- A raw TLS client -----------------------------------------------------------

struct TestResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

enum class SendResult { kOk, kClosed, kTimeout };

struct ClientTls {
  int min_version = TLS1_2_VERSION;
  int max_version = 0;  // 0: the highest
  std::string ciphers;  // TLS 1.2 cipher list; empty: OpenSSL's default
};

SSL_CTX* NewClientCtx(const ClientTls& tls) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  // Security level 0, so a refused handshake is the server's refusal and
  // never this client's own policy.
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, tls.min_version);
  if (tls.max_version != 0) SSL_CTX_set_max_proto_version(ctx, tls.max_version);
  if (!tls.ciphers.empty()) SSL_CTX_set_cipher_list(ctx, tls.ciphers.c_str());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return ctx;
}

SSL_CTX* DefaultClientCtx() {
  static SSL_CTX* ctx = NewClientCtx({});
  return ctx;
}

int TcpConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void SetTimeouts(int fd, Ms t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// True when the peer closes `fd` (EOF or reset) within `within`.
bool RawClosedWithin(int fd, Ms within) {
  SetTimeouts(fd, within);
  char b[4096];
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, b, sizeof(b), 0);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
  return false;
}

class TlsClient {
 public:
  explicit TlsClient(int port, SSL_CTX* ctx = nullptr, Ms timeout = 5000ms) {
    fd_ = TcpConnect(port);
    if (fd_ < 0) return;
    SetTimeouts(fd_, timeout);
    ssl_ = SSL_new(ctx != nullptr ? ctx : DefaultClientCtx());
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    ok_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool ok() const { return ok_; }
  SSL* ssl() { return ssl_; }
  int fd() const { return fd_; }

  SendResult Send(std::string_view data) {
    while (!data.empty()) {
      int len = static_cast<int>(std::min<size_t>(data.size(), 1 << 16));
      ERR_clear_error();
      int n = SSL_write(ssl_, data.data(), len);
      if (n <= 0) {
        int err = SSL_get_error(ssl_, n);
        int saved = errno;
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ ||
            (err == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))) {
          return SendResult::kTimeout;
        }
        return SendResult::kClosed;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return SendResult::kOk;
  }

  // Reads one response (its body by Content-Length; none for HEAD).
  std::optional<TestResponse> Read(bool head = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    TestResponse r;
    std::istringstream lines(buf_.substr(0, end));
    std::string line;
    std::getline(lines, line);
    if (line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t v = line.find_first_not_of(' ', colon + 1);
      r.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    buf_.erase(0, end + 4);
    size_t length = 0;
    if (!head && r.headers.count("content-length") != 0) {
      length = std::stoul(r.headers["content-length"]);
    }
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  // Sends a request and reads its response.
  std::optional<TestResponse> Call(std::string_view request, bool head = false) {
    if (Send(request) != SendResult::kOk) return std::nullopt;
    return Read(head);
  }

  // True when the server closes the connection within `within` (bytes that
  // arrive first are discarded).
  bool ClosedWithin(Ms within) {
    SetTimeouts(fd_, 100ms);
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      char b[4096];
      ERR_clear_error();
      int n = SSL_read(ssl_, b, sizeof(b));
      if (n > 0) continue;
      int err = SSL_get_error(ssl_, n);
      int saved = errno;
      ERR_clear_error();
      if (err == SSL_ERROR_WANT_READ ||
          (err == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))) {
        continue;
      }
      return true;
    }
    return false;
  }

  // Nothing arrives and the connection stays open for `d`.
  bool StillOpenAfter(Ms d) { return !ClosedWithin(d); }

 private:
  bool Fill() {
    char b[16384];
    ERR_clear_error();
    int n = SSL_read(ssl_, b, sizeof(b));
    ERR_clear_error();
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  std::string buf_;
};

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

std::string Post(const std::string& target, const std::string& body,
                 const std::string& extra = "") {
  return "POST " + target +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}

std::string Chunked(const std::string& data, size_t chunk) {
  std::string out;
  char size[32];
  for (size_t i = 0; i < data.size(); i += chunk) {
    size_t n = std::min(chunk, data.size() - i);
    std::snprintf(size, sizeof(size), "%zx\r\n", n);
    out += size;
    out.append(data, i, n);
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

// --- A server on a loopback port --------------------------------------------------

Response Text(std::string body, int status = 200) {
  Response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

Limits TestLimits() {
  Limits l;
  l.io_threads = 2;
  l.worker_threads = 4;
  return l;
}

class TestServer {
 public:
  explicit TestServer(std::vector<Route> routes, Limits limits = TestLimits()) {
    ServerOptions o;
    o.tls_cert_chain_file = Files().cert;
    o.tls_key_file = Files().key;
    o.limits = limits;
    o.on_event = [this](std::string_view name, std::string_view detail) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.emplace_back(std::string(name), std::string(detail));
    };
    o.on_request = [this](const Request&, std::string_view route, int status, double) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_.emplace_back(std::string(route), status);
    };
    auto s = Server::Create(std::move(o), std::move(routes));
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return;
    }
    server_ = std::move(s).value();
    auto p = server_->Listen("127.0.0.1", 0);
    if (!p.ok()) {
      ADD_FAILURE() << p.status().ToString();
      return;
    }
    port_ = *p;
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~TestServer() { Stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  Server& server() { return *server_; }
  ServerStats Stats() { return server_->Stats(); }

  void Stop() {
    if (thread_.joinable()) {
      server_->Stop();
      thread_.join();
    }
  }

  bool HasEvent(const std::string& name, std::string* detail = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [n, d] : events_) {
      if (n == name) {
        if (detail != nullptr) *detail = d;
        return true;
      }
    }
    return false;
  }

  std::vector<std::pair<std::string, int>> Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

  // Waits (bounded) until `pred(Stats())` holds.
  template <class Pred>
  bool WaitStats(Pred pred, Ms within = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred(Stats())) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred(Stats());
  }

 private:
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> events_;  // guarded by mu_
  std::vector<std::pair<std::string, int>> finished_;        // guarded by mu_
};

Route GetRoute(std::string pattern, std::function<Response(Request&)> handle) {
  Route r;
  r.method = "GET";
  r.pattern = std::move(pattern);
  r.handle = std::move(handle);
  return r;
}

Route BodyRoute(std::string method, std::string pattern, BodyPolicy policy,
                std::function<Response(Request&)> handle) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.body = policy;
  r.handle = std::move(handle);
  if (policy == BodyPolicy::kToFile) r.body_dir = Files().bodies;
  return r;
}

// A buffered echo route that counts its calls.
Route EchoRoute(std::atomic<int>* calls, std::string pattern = "/echo") {
  return BodyRoute("POST", std::move(pattern), BodyPolicy::kBuffered, [calls](Request& req) {
    ++*calls;
    return Text(req.body);
  });
}

// --- Basics ---------------------------------------------------------------------

TEST(HttpServer, GetAndPostRoundTripOnOneKeptAliveConnection) {
  std::atomic<int> echo_calls{0};
  TestServer ts({GetRoute("/hello/([a-z]+)",
                          [](Request& req) {
                            return Text("hi " + req.captures.at(0) +
                                        " q=" + req.QueryValue("q").value_or("-") +
                                        " from=" + req.remote_addr +
                                        " x=" + req.HeaderValue("x-test").value_or("-"));
                          }),
                 EchoRoute(&echo_calls)});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r1 = c.Call(Get("/hello/bob?q=a%20b+c&z", "X-Test: yes\r\n"));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "hi bob q=a b c from=127.0.0.1 x=yes");
  EXPECT_EQ(r1->Header("content-type"), "text/plain");
  EXPECT_EQ(r1->Header("connection"), "");
  auto r2 = c.Call(Post("/echo", "hello body"));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, "hello body");
  auto r3 = c.Call(Get("/hello/ann"));
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->body, "hi ann q=- from=127.0.0.1 x=-");
  // The client asks to close: answered, then closed.
  auto r4 = c.Call(Get("/hello/end", "Connection: close\r\n"));
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->Header("connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  EXPECT_EQ(echo_calls, 1);
  ServerStats st = ts.Stats();
  EXPECT_EQ(st.connections_accepted, 1u);
  EXPECT_EQ(st.requests, 4u);
  auto finished = ts.Finished();
  ASSERT_EQ(finished.size(), 4u);
  EXPECT_EQ(finished[0].first, "/hello/([a-z]+)");
  EXPECT_EQ(finished[1].first, "/echo");
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  TestServer ts({GetRoute("/n/([0-9]+)", [](Request& req) { return Text(req.captures[0]); })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c.Send(Get("/n/1") + Get("/n/2") + Get("/n/3")), SendResult::kOk);
  for (const char* want : {"1", "2", "3"}) {
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, want);
  }
}

TEST(HttpServer, HeadIsServedByTheGetRouteWithoutABody) {
  std::string seen_method;
  TestServer ts({GetRoute("/doc", [&](Request& req) {
    seen_method = req.method;
    return Text("twelve bytes");
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call("HEAD /doc HTTP/1.1\r\nHost: t\r\n\r\n", /*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-length"), "12");
  EXPECT_EQ(seen_method, "HEAD");
  // Had body bytes been sent, they would be read here as the next response.
  auto next = c.Call(Get("/doc"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, "twelve bytes");
}

TEST(HttpServer, UnknownPathIs404AndWrongMethodIs405) {
  TestServer ts({GetRoute("/thing/[0-9]+", [](Request&) { return Text("ok"); })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/nothing-here"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_NE(r->body.find("\"not_found\""), std::string::npos);
  EXPECT_EQ(r->body.find("nothing-here"), std::string::npos);  // never echoed
  // A full match is required: a prefix is not the route.
  auto prefix = c.Call(Get("/thing/12x"));
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->status, 404);
  auto del = c.Call("DELETE /thing/7 HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  EXPECT_EQ(del->Header("allow"), "GET, HEAD");
  // Neither closed the connection.
  auto ok = c.Call(Get("/thing/7"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServer, MalformedQueryEscapesAre400) {
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/q", [&](Request&) {
    ++calls;
    return Text("ok");
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/q?a=%zz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  TlsClient c2(ts.port());
  auto nul = c2.Call(Get("/q?a=%00"));
  ASSERT_TRUE(nul);
  EXPECT_EQ(nul->status, 400);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, LongPathsAreMatchedWithoutDeepRecursion) {
  // A backtracking matcher recurses per character of the path: 256 KiB of
  // path would overflow an I/O thread's stack.
  Limits l = TestLimits();
  l.max_request_line_bytes = 512 * 1024;
  l.max_header_bytes = 512 * 1024;
  TestServer ts(
      {GetRoute("/files/([a-z]+)/(.*)",
                [](Request& req) {
                  return Text(req.captures.at(0) + " " + std::to_string(req.captures.at(1).size()));
                })},
      l);
  TlsClient c(ts.port());
  auto r = c.Call(Get("/files/box/" + std::string(256 * 1024, 'a')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "box 262144");
}

TEST(HttpServer, HandlerExceptionIs500WithAGenericMessage) {
  TestServer ts({GetRoute(
      "/boom", [](Request&) -> Response { throw std::runtime_error("secret detail 42"); })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/boom"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, R"({"error":{"code":"internal","message":"internal error"}})");
  std::string detail;
  EXPECT_TRUE(ts.HasEvent("handler.exception", &detail));
  EXPECT_EQ(detail, "secret detail 42");
  // The connection survives a handler's exception.
  auto again = c.Call(Get("/boom"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 500);
}

TEST(HttpServer, ResponseHeaderWithCrLfBecomes500) {
  TestServer ts({GetRoute("/inject", [](Request&) {
    Response r = Text("x");
    r.headers.push_back({"X-Evil", "a\r\nSet-Cookie: stolen=1"});
    return r;
  })});
  TlsClient c(ts.port());
  auto r = c.Call(Get("/inject"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->Header("set-cookie"), "");
}

// --- Header limits ------------------------------------------------------------------

TEST(HttpServer, HeaderBytesOverTheLimitAre431AndClose) {
  Limits l = TestLimits();
  l.max_header_bytes = 8 * 1024;
  TestServer ts({GetRoute("/", [](Request&) { return Text("ok"); })}, l);
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/", "X-Big: " + std::string(12 * 1024, 'a') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_EQ(r->body.find("aaaa"), std::string::npos);
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  EXPECT_EQ(ts.Stats().limit_refusals, 1u);
  // Just under the limit is fine.
  TlsClient ok(ts.port());
  auto r2 = ok.Call(Get("/", "X-Big: " + std::string(7 * 1024, 'a') + "\r\n"));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
}

// Beast applies its header limit only to the bytes it has not consumed, and
// it consumes the request line and each complete field as they arrive. The
// server reads 1 KiB at a time: with fields of exactly 1 KiB placed so that
// every read ends a byte into the next field, Beast never holds more than
// ~1 KiB unparsed and a header of any size used to pass. The server counts
// the total itself.
TEST(HttpServer, HeaderTotalIsCountedAcrossReads) {
  Limits l = TestLimits();
  l.max_header_bytes = 8 * 1024;
  l.max_header_count = 1000;
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/",
                          [&](Request&) {
                            ++calls;
                            return Text("ok");
                          })},
                l);
  std::string request = "GET / HTTP/1.1\r\nHost: t\r\n";
  request += "X-Pad: " + std::string(1024 - request.size() - 1 - 9, 'p') + "\r\n";
  EXPECT_EQ(request.size(), 1023u);
  for (int i = 10; i < 24; ++i) {  // 14 fields of 1024 bytes
    request += "X-F" + std::to_string(i) + ": " + std::string(1024 - 9, 'a') + "\r\n";
  }
  request += "\r\n";
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  (void)c.Send(request);
  // The 431 may be lost to a reset when the server closes with our bytes
  // unread; what matters is that the request is never served.
  auto r = c.Read();
  if (r) {
    EXPECT_EQ(r->status, 431);
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(ts.Stats().limit_refusals, 1u);
}

TEST(HttpServer, HeaderFloodIsCutOffWithoutGrowingMemory) {
  TestServer ts({GetRoute("/", [](Request&) { return Text("ok"); })});
  {
    TlsClient warm(ts.port());
    ASSERT_TRUE(warm.Call(Get("/")));
  }
  size_t rss_before = RssKiB();
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c.Send("GET / HTTP/1.1\r\nHost: t\r\n"), SendResult::kOk);
  std::string lines;
  while (lines.size() < (64u << 10)) lines += "X-Flood: " + std::string(80, 'f') + "\r\n";
  const uint64_t kFlood = 64ull << 20;
  uint64_t sent = 0;
  SendResult last = SendResult::kOk;
  while (sent < kFlood && (last = c.Send(lines)) == SendResult::kOk) sent += lines.size();
  EXPECT_EQ(last, SendResult::kClosed) << "the server neither refused nor closed";
  EXPECT_LT(sent, kFlood / 4);
  std::printf("[ info ] header flood cut after %llu KiB\n",
              static_cast<unsigned long long>(sent >> 10));
  size_t rss_after = RssKiB();
  if (!kSanitized) {
    EXPECT_LT(rss_after, rss_before + 8 * 1024) << "KiB";
  }
}

TEST(HttpServer, TooManyHeaderFieldsAre431) {
  Limits l = TestLimits();
  l.max_header_count = 20;
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/",
                          [&](Request&) {
                            ++calls;
                            return Text("ok");
                          })},
                l);
  std::string fields;
  for (int i = 0; i < 21; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  TlsClient c(ts.port());
  auto r = c.Call(Get("/", fields));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find("more than 20 fields"), std::string::npos);
  EXPECT_EQ(calls, 0);
  // Host + 19 is exactly 20.
  fields.clear();
  for (int i = 0; i < 19; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  TlsClient c2(ts.port());
  auto ok = c2.Call(Get("/", fields));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServer, LongRequestLineIs414) {
  Limits l = TestLimits();
  l.max_request_line_bytes = 2048;
  TestServer ts({GetRoute("/.*", [](Request&) { return Text("ok"); })}, l);
  TlsClient c(ts.port());
  auto r = c.Call(Get("/" + std::string(3000, 'p')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 414);
  TlsClient c2(ts.port());
  auto ok = c2.Call(Get("/" + std::string(1900, 'p')));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// --- Bodies -------------------------------------------------------------------------

TEST(HttpServer, PostWithoutContentLengthIs411AndNotReadUntilClose) {
  std::atomic<int> calls{0};
  TestServer ts({BodyRoute("POST", "/echo", BodyPolicy::kBuffered, [&](Request& req) {
    ++calls;
    return Text("got " + std::to_string(req.body.size()));
  })});
  {
    TlsClient warm(ts.port());
    ASSERT_TRUE(warm.Call(Get("/x")));
  }
  size_t rss_before = RssKiB();
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  // The header, then a stream that would be the "body" if it were read to
  // the end of the connection (the old server's bug).
  std::string junk(1 << 16, 'j');
  ASSERT_EQ(c.Send("POST /echo HTTP/1.1\r\nHost: t\r\n\r\n" + junk), SendResult::kOk);
  auto r = c.Read();
  ASSERT_TRUE(r) << "no answer before the stream ended";
  EXPECT_EQ(r->status, 411);
  EXPECT_EQ(r->Header("connection"), "close");
  const uint64_t kStream = 300ull << 20;
  uint64_t sent = junk.size();
  SendResult last = SendResult::kOk;
  while (sent < kStream && (last = c.Send(junk)) == SendResult::kOk) sent += junk.size();
  EXPECT_EQ(last, SendResult::kClosed);
  EXPECT_LT(sent, kStream / 10);
  std::printf("[ info ] stream cut after %llu KiB\n", static_cast<unsigned long long>(sent >> 10));
  EXPECT_EQ(calls, 0);
  if (!kSanitized) {
    EXPECT_LT(RssKiB(), rss_before + 8 * 1024) << "KiB";
  }
  // An empty body says so (Content-Length: 0) and is served.
  TlsClient e(ts.port());
  auto empty = e.Call("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->body, "got 0");
}

TEST(HttpServer, ChunkedBodyOnABufferedRouteIs413) {
  std::atomic<int> calls{0};
  TestServer ts({EchoRoute(&calls)});
  TlsClient c(ts.port());
  auto r = c.Call("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  Chunked("hello", 5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, ContentLengthOverTheCapIs413BeforeAnyBodyIsSent) {
  std::atomic<int> calls{0};
  Route echo = EchoRoute(&calls);
  echo.max_body_bytes = 1 << 20;
  TestServer ts({echo});
  TlsClient c(ts.port());
  // Header only: the answer must not wait for the 100 MiB.
  auto r = c.Call("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(ts.Stats().limit_refusals, 1u);
}

TEST(HttpServer, BodyOnARouteThatTakesNoneIs413) {
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/g", [&](Request&) {
    ++calls;
    return Text("ok");
  })});
  TlsClient c(ts.port());
  auto r = c.Call("GET /g HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  TlsClient c2(ts.port());
  auto chunked =
      c2.Call("GET /g HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunked("a", 1));
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, ContentEncodedBodiesAre415) {
  std::atomic<int> calls{0};
  TestServer ts({EchoRoute(&calls)});
  TlsClient c(ts.port());
  auto r = c.Call(Post("/echo", "\x1f\x8b....", "Content-Encoding: gzip\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415);
  EXPECT_EQ(calls, 0);
  TlsClient c2(ts.port());
  auto identity = c2.Call(Post("/echo", "plain", "Content-Encoding: identity\r\n"));
  ASSERT_TRUE(identity);
  EXPECT_EQ(identity->status, 200);
}

TEST(HttpServer, UnknownTransferCodingIs501AndSmugglingShapesAre400) {
  std::atomic<int> calls{0};
  TestServer ts({EchoRoute(&calls)});
  TlsClient c(ts.port());
  auto gzip = c.Call("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx");
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, 501);
  TlsClient c2(ts.port());
  auto both = c2.Call(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
      Chunked("abcd", 4));
  ASSERT_TRUE(both);
  EXPECT_EQ(both->status, 400);
  TlsClient c3(ts.port());
  auto two_lengths = c3.Call(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde");
  ASSERT_TRUE(two_lengths);
  EXPECT_EQ(two_lengths->status, 400);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, DeepNestingIs400AndTheHandlerNeverRuns) {
  std::atomic<int> calls{0};
  TestServer ts({EchoRoute(&calls)});
  TlsClient c(ts.port());
  // The server may cut the upload short after the 33rd byte; the answer is
  // readable either way.
  EXPECT_NE(c.Send(Post("/echo", std::string(400'000, '['))), SendResult::kTimeout);
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(
      r->body,
      R"({"error":{"code":"invalid_argument","message":"body: nested deeper than 32 levels"}})");
  EXPECT_EQ(calls, 0);
  // 32 levels pass; 33 do not; brackets inside strings (even after an
  // escaped quote) do not count.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  TlsClient c2(ts.port());
  auto ok = c2.Call(Post("/echo", nested(32)));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto in_string = c2.Call(Post("/echo", "[\"\\\"" + std::string(100, '[') + "\", {\"a\":[1]}]"));
  ASSERT_TRUE(in_string);
  EXPECT_EQ(in_string->status, 200);
  auto too_deep = c2.Call(Post("/echo", nested(33)));
  ASSERT_TRUE(too_deep);
  EXPECT_EQ(too_deep->status, 400);
  EXPECT_EQ(calls, 2);
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

TEST(HttpServer, StreamsAChunkedBodyIntoAnAnonymousFile) {
  std::atomic<int> fd_seen{-1};
  std::atomic<bool> dir_empty{false};
  std::string received;
  Route upload = BodyRoute("PUT", "/upload", BodyPolicy::kToFile, [&](Request& req) {
    fd_seen = req.body_fd;
    dir_empty = std::filesystem::is_empty(Files().bodies);
    struct stat st {};
    fstat(req.body_fd, &st);
    received.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < received.size()) {
      ssize_t n = ::read(req.body_fd, received.data() + got, received.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return Text(std::to_string(req.body_size));
  });
  upload.max_body_bytes = 8 << 20;
  TestServer ts({upload});
  std::string data = Pattern(5 << 20);
  TlsClient c(ts.port());
  auto r = c.Call("PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  Chunked(data, 60'000));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::to_string(data.size()));
  EXPECT_TRUE(received == data);
  EXPECT_TRUE(dir_empty) << "the body file has a name in body_dir";
  // The server closed the file after handle: its fd no longer names it.
  char link[256] = {};
  std::string proc = "/proc/self/fd/" + std::to_string(fd_seen.load());
  ssize_t n = readlink(proc.c_str(), link, sizeof(link) - 1);
  EXPECT_TRUE(n < 0 || std::string(link).find(Files().bodies) == std::string::npos) << link;
  // Content-Length bodies work too.
  auto r2 = c.Call("PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "5");
  EXPECT_EQ(received, "abcde");
}

// A sink that records what it was given, and fails from byte `fail_at`.
class RecordingSink : public UploadSink {
 public:
  explicit RecordingSink(uint64_t fail_at = UINT64_MAX) : fail_at_(fail_at) {}
  Status Write(std::span<const uint8_t> piece) override {
    std::lock_guard<std::mutex> lock(mu);
    if (received.size() + piece.size() > fail_at_) return DataLoss("sink: refused (test)");
    received.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    largest_piece = std::max(largest_piece, piece.size());
    ++pieces;
    return Status::Ok();
  }
  std::mutex mu;
  std::string received;
  size_t largest_piece = 0;
  size_t pieces = 0;

 private:
  uint64_t fail_at_;
};

TEST(HttpServer, StreamsABodyIntoTheRoutesSinkOpenedAfterAdmit) {
  std::vector<std::string> order;  // touched by one request at a time
  std::shared_ptr<RecordingSink> sink;
  Route upload = BodyRoute("PUT", "/sink", BodyPolicy::kToSink, [&](Request& req) {
    order.push_back("handle");
    EXPECT_TRUE(req.body_status.ok()) << req.body_status.ToString();
    EXPECT_EQ(req.body_sink.get(), sink.get());
    return Text(std::to_string(req.body_size));
  });
  upload.admit = [&](const Request&) -> std::optional<Response> {
    order.push_back("admit");
    return std::nullopt;
  };
  upload.open_sink = [&](Request& req) -> StatusOr<std::shared_ptr<UploadSink>> {
    order.push_back("open_sink");
    EXPECT_EQ(req.body_size, 0u);
    sink = std::make_shared<RecordingSink>();
    return std::shared_ptr<UploadSink>(sink);
  };
  upload.max_body_bytes = 8 << 20;
  TestServer ts({upload});
  const std::string data = Pattern(5 << 20);
  TlsClient c(ts.port());
  auto r = c.Call("PUT /sink HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  Chunked(data, 60'000));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::to_string(data.size()));
  EXPECT_EQ(order, (std::vector<std::string>{"admit", "open_sink", "handle"}));
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->received == data);
  // Handed over as it was read, never gathered whole.
  EXPECT_GT(sink->pieces, 10u);
  EXPECT_LE(sink->largest_piece, size_t{1} << 20);
  // Content-Length bodies too, on the same kept-alive connection.
  order.clear();
  auto r2 = c.Call("PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "5");
  EXPECT_EQ(sink->received, "abcde");
}

TEST(HttpServer, ASinkThatCannotBeOpenedOrRefusesBytesLetsTheRouteAnswer) {
  std::atomic<int> opened{0};
  std::shared_ptr<RecordingSink> sink;
  Route upload = BodyRoute("PUT", "/sink", BodyPolicy::kToSink, [&](Request& req) {
    if (!req.body_status.ok()) {
      Response resp = Text(req.body_status.message());
      resp.status = 403;
      return resp;
    }
    return Text("ok");
  });
  upload.open_sink = [&](Request& req) -> StatusOr<std::shared_ptr<UploadSink>> {
    ++opened;
    if (req.HeaderValue("X-Refuse")) return PermissionDenied("no sink for you (test)");
    sink = std::make_shared<RecordingSink>(100'000);
    return std::shared_ptr<UploadSink>(sink);
  };
  upload.max_body_bytes = 8 << 20;
  TestServer ts({upload});
  {
    TlsClient c(ts.port());
    auto r = c.Call("PUT /sink HTTP/1.1\r\nHost: t\r\nX-Refuse: 1\r\nContent-Length: 3\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_EQ(r->body, "no sink for you (test)");
    EXPECT_TRUE(c.ClosedWithin(3000ms));  // the announced body was never read
  }
  {
    TlsClient c(ts.port());
    const std::string data = Pattern(1 << 20);
    SendResult sent =
        c.Send("PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(data.size()) +
               "\r\n\r\n" + data);
    EXPECT_NE(sent, SendResult::kTimeout);
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_EQ(r->body, "sink: refused (test)");
    EXPECT_TRUE(c.ClosedWithin(3000ms));
    EXPECT_LE(sink->received.size(), 100'000u);
  }
  EXPECT_EQ(opened, 2);
}

TEST(HttpServer, ASinkRouteWithoutOpenSinkIsAConfigurationError) {
  Route r = BodyRoute("PUT", "/sink", BodyPolicy::kToSink, [](Request&) { return Text("x"); });
  ServerOptions o;
  o.tls_cert_chain_file = Files().cert;
  o.tls_key_file = Files().key;
  auto s = Server::Create(std::move(o), {r});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("open_sink is required"), std::string::npos);
}

TEST(HttpServer, FileBodyCapIsEnforcedWhileStreaming) {
  std::atomic<int> calls{0};
  Route upload = BodyRoute("PUT", "/upload", BodyPolicy::kToFile, [&](Request&) {
    ++calls;
    return Text("ok");
  });
  upload.max_body_bytes = 1 << 20;
  TestServer ts({upload});
  TlsClient c(ts.port());
  std::string data = Pattern(3 << 20);
  SendResult sent = c.Send("PUT /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                           Chunked(data, 32 * 1024));
  // The server may have cut the upload before it all went out.
  EXPECT_NE(sent, SendResult::kTimeout);
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  // Announced too large: refused from the header.
  TlsClient c2(ts.port());
  auto r2 = c2.Call("PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 413);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, BufferedBodiesShareAMemoryBudget) {
  Limits l = TestLimits();
  l.max_buffered_body_bytes = 1 << 20;
  std::atomic<int> calls{0};
  TestServer ts({EchoRoute(&calls)}, l);
  const std::string body(800 * 1024, 'b');
  // A holds a reservation of 800 KiB while its body trickles in.
  TlsClient a(ts.port());
  ASSERT_EQ(a.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 819200\r\n\r\nb"),
            SendResult::kOk);
  std::this_thread::sleep_for(200ms);
  TlsClient b(ts.port());
  auto rb = b.Call("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 819200\r\n\r\n");
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->status, 503);
  ASSERT_EQ(a.Send(body.substr(1)), SendResult::kOk);
  auto ra = a.Read();
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->status, 200);
  EXPECT_EQ(ra->body.size(), body.size());
  // Released after A's response.
  TlsClient c(ts.port());
  auto rc = c.Call(Post("/echo", body));
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->status, 200);
}

// --- admit and Expect: 100-continue ---------------------------------------------------

Route GuardedRoute(std::atomic<int>* admits, std::atomic<int>* handles) {
  Route r = BodyRoute("POST", "/guarded", BodyPolicy::kBuffered, [handles](Request& req) {
    ++*handles;
    return Text("stored " + std::to_string(req.body.size()));
  });
  r.admit = [admits](const Request& req) -> std::optional<Response> {
    ++*admits;
    if (req.HeaderValue("authorization") != "Bearer good") {
      return Response{401,    "application/json", ErrorJson("unauthenticated", "no"), {}, false,
                      nullptr};
    }
    return std::nullopt;
  };
  return r;
}

TEST(HttpServer, AdmitRefusalSkipsHandleAndNeverReadsTheBody) {
  std::atomic<int> admits{0}, handles{0};
  TestServer ts({GuardedRoute(&admits, &handles)});
  TlsClient c(ts.port());
  // 512 KiB announced, none sent: the refusal must not wait for it.
  auto r = c.Call("POST /guarded HTTP/1.1\r\nHost: t\r\nContent-Length: 524288\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  EXPECT_EQ(admits, 1);
  EXPECT_EQ(handles, 0);
  TlsClient ok(ts.port());
  auto r2 = ok.Call(Post("/guarded", "data", "Authorization: Bearer good\r\n"));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, "stored 4");
  EXPECT_EQ(handles, 1);
}

TEST(HttpServer, ContinueIsSentOnlyAfterAdmitPasses) {
  std::atomic<int> admits{0}, handles{0};
  TestServer ts({GuardedRoute(&admits, &handles)});
  const std::string head =
      "POST /guarded HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n";
  TlsClient good(ts.port());
  auto cont = good.Call(head + "Authorization: Bearer good\r\n\r\n");
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  auto done = good.Call("hello");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200);
  EXPECT_EQ(done->body, "stored 5");
  TlsClient bad(ts.port());
  auto refused = bad.Call(head + "\r\n");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_TRUE(bad.ClosedWithin(3000ms));
  EXPECT_EQ(handles, 1);
}

// admit_quick runs on the I/O thread; true skips admit, false leaves the
// decision to admit (so a refusal still comes from admit).
TEST(HttpServer, QuickAdmitSkipsAdmitOnlyWhenItSaysYes) {
  std::atomic<int> admits{0}, handles{0}, quick_calls{0};
  std::mutex mu;
  std::thread::id quick_thread, handle_thread;
  Route r = GuardedRoute(&admits, &handles);
  auto inner = r.handle;
  r.handle = [&, inner](Request& req) {
    {
      std::lock_guard<std::mutex> l(mu);
      handle_thread = std::this_thread::get_id();
    }
    return inner(req);
  };
  r.admit_quick = [&](const Request& req) {
    ++quick_calls;
    std::lock_guard<std::mutex> l(mu);
    quick_thread = std::this_thread::get_id();
    return req.HeaderValue("x-quick") == "yes";
  };
  TestServer ts({r});
  TlsClient c(ts.port());
  auto quick = c.Call(Post("/guarded", "abc", "X-Quick: yes\r\n"));
  ASSERT_TRUE(quick);
  EXPECT_EQ(quick->status, 200);
  EXPECT_EQ(quick->body, "stored 3");
  EXPECT_EQ(admits, 0);
  EXPECT_EQ(quick_calls, 1);
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_NE(quick_thread, handle_thread);  // the I/O thread, not a worker
  }
  auto asked = c.Call(Post("/guarded", "abcd", "Authorization: Bearer good\r\n"));
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->status, 200);
  EXPECT_EQ(admits, 1);
  TlsClient bad(ts.port());
  auto refused = bad.Call(Post("/guarded", "abcd", "X-Quick: no\r\n"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(admits, 2);
  EXPECT_EQ(quick_calls, 3);
  EXPECT_EQ(handles, 2);
}

// --- Threads and queueing -----------------------------------------------------------

// A gate handlers wait at until the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait_for(lock, 10s, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitForWaiters(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(HttpServer, BlockedHandlersDoNotBlockTheIoThread) {
  Limits l = TestLimits();
  l.io_threads = 1;
  l.worker_threads = 1;
  Gate gate;
  TestServer ts({GetRoute("/slow",
                          [&](Request&) {
                            gate.Wait();
                            return Text("slow");
                          })},
                l);
  TlsClient slow(ts.port());
  ASSERT_EQ(slow.Send(Get("/slow")), SendResult::kOk);
  ASSERT_TRUE(gate.WaitForWaiters(1));
  // The only worker is stuck; the only I/O thread still handshakes, routes
  // and answers.
  TlsClient other(ts.port(), nullptr, 2000ms);
  ASSERT_TRUE(other.ok());
  auto r = other.Call(Get("/missing"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  gate.Open();
  auto s = slow.Read();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->body, "slow");
}

TEST(HttpServer, FullWorkerQueueIs503WithoutRunningTheRoute) {
  Limits l = TestLimits();
  l.worker_threads = 1;
  l.max_queued_requests = 1;
  Gate gate;
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/work",
                          [&](Request&) {
                            ++calls;
                            gate.Wait();
                            return Text("done");
                          })},
                l);
  TlsClient a(ts.port()), b(ts.port()), c(ts.port());
  ASSERT_EQ(a.Send(Get("/work")), SendResult::kOk);
  ASSERT_TRUE(gate.WaitForWaiters(1));
  // One of b and c is queued, the other finds the queue full.
  ASSERT_EQ(b.Send(Get("/work")), SendResult::kOk);
  ASSERT_EQ(c.Send(Get("/work")), SendResult::kOk);
  std::this_thread::sleep_for(300ms);
  gate.Open();
  auto ra = a.Read(), rb = b.Read(), rc = c.Read();
  ASSERT_TRUE(ra && rb && rc);
  EXPECT_EQ(ra->status, 200);
  EXPECT_EQ((rb->status == 503) + (rc->status == 503), 1);
  EXPECT_EQ((rb->status == 200) + (rc->status == 200), 1);
  EXPECT_EQ(calls, 2);
}

// --- Deadlines -------------------------------------------------------------------------

TEST(HttpServer, SlowlorisConnectionsAreClosedByHeaderTimeoutAndDoNotStarveOthers) {
  Limits l = TestLimits();
  l.header_timeout = 2500ms;
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })}, l);
  constexpr int kSlow = 220;
  std::vector<std::unique_ptr<TlsClient>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<TlsClient>(ts.port()));
    ASSERT_TRUE(slow.back()->ok()) << i;
    ASSERT_EQ(slow.back()->Send("GET /ok HTTP/1.1\r\n"), SendResult::kOk);
  }
  auto start = std::chrono::steady_clock::now();
  bool normal_answered = false;
  std::vector<bool> closed(kSlow, false);
  // A header line per second on every slow connection, for longer than
  // header_timeout.
  for (int second = 0; second < 5; ++second) {
    for (int i = 0; i < kSlow; ++i) {
      if (!closed[i] &&
          slow[i]->Send("X-Slow-" + std::to_string(second) + ": 1\r\n") != SendResult::kOk) {
        closed[i] = true;
      }
    }
    if (second == 1) {
      TlsClient normal(ts.port(), nullptr, 2000ms);
      ASSERT_TRUE(normal.ok());
      auto r = normal.Call(Get("/ok"));
      normal_answered = r && r->status == 200;
    }
    std::this_thread::sleep_until(start + std::chrono::seconds(second + 1));
  }
  EXPECT_TRUE(normal_answered);
  int still_open = 0;
  for (int i = 0; i < kSlow; ++i) {
    if (!closed[i] && !slow[i]->ClosedWithin(200ms)) ++still_open;
  }
  EXPECT_EQ(still_open, 0);
  EXPECT_GE(ts.Stats().timeouts, static_cast<uint64_t>(kSlow));
  EXPECT_TRUE(ts.HasEvent("timeout.header"));
}

TEST(HttpServer, IdleBodyAndHandshakeDeadlinesClose) {
  Limits l = TestLimits();
  l.idle_timeout = 300ms;
  l.body_timeout = 300ms;
  l.handshake_timeout = 300ms;
  std::atomic<int> calls{0};
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); }), EchoRoute(&calls)}, l);
  // Kept alive, then idle.
  TlsClient idle(ts.port());
  ASSERT_TRUE(idle.Call(Get("/ok")));
  EXPECT_TRUE(idle.ClosedWithin(2000ms));
  // A body that stops coming.
  TlsClient body(ts.port());
  ASSERT_EQ(body.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"),
            SendResult::kOk);
  EXPECT_TRUE(body.ClosedWithin(2000ms));
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(ts.HasEvent("timeout.body"));
  // A socket that never starts TLS.
  int raw = TcpConnect(ts.port());
  ASSERT_GE(raw, 0);
  EXPECT_TRUE(RawClosedWithin(raw, 2000ms));
  ::close(raw);
  EXPECT_TRUE(ts.HasEvent("timeout.handshake"));
  EXPECT_GE(ts.Stats().timeouts, 2u);
}

// --- Connection caps ---------------------------------------------------------------------

TEST(HttpServer, PerAddressCapRefusesBeforeTlsAndCounts) {
  Limits l = TestLimits();
  l.max_connections_per_address = 3;
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })}, l);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(TcpConnect(ts.port()));
  ASSERT_TRUE(ts.WaitStats([](const ServerStats& s) { return s.connections_open == 3; }));
  int fourth = TcpConnect(ts.port());
  ASSERT_GE(fourth, 0);
  EXPECT_TRUE(RawClosedWithin(fourth, 2000ms));
  ::close(fourth);
  TlsClient tls(ts.port(), nullptr, 2000ms);
  EXPECT_FALSE(tls.ok());
  EXPECT_EQ(ts.Stats().connections_refused, 2u);
  // A slot freed is a slot usable.
  ::close(held.back());
  held.pop_back();
  ASSERT_TRUE(ts.WaitStats([](const ServerStats& s) { return s.connections_open == 2; }));
  TlsClient again(ts.port());
  ASSERT_TRUE(again.ok());
  auto r = again.Call(Get("/ok"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (int fd : held) ::close(fd);
}

TEST(HttpServer, TotalConnectionCapRefuses) {
  Limits l = TestLimits();
  l.max_connections = 2;
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })}, l);
  int a = TcpConnect(ts.port()), b = TcpConnect(ts.port());
  ASSERT_TRUE(ts.WaitStats([](const ServerStats& s) { return s.connections_open == 2; }));
  int c = TcpConnect(ts.port());
  EXPECT_TRUE(RawClosedWithin(c, 2000ms));
  EXPECT_EQ(ts.Stats().connections_refused, 1u);
  ::close(a);
  ::close(b);
  ::close(c);
}

// --- TLS -------------------------------------------------------------------------------

struct Handshake {
  bool ok = false;
  std::string version;
  std::string cipher;
};

Handshake TryHandshake(int port, const ClientTls& tls) {
  SSL_CTX* ctx = NewClientCtx(tls);
  Handshake h;
  {
    TlsClient c(port, ctx, 2000ms);
    h.ok = c.ok();
    if (h.ok) {
      h.version = SSL_get_version(c.ssl());
      h.cipher = SSL_get_cipher_name(c.ssl());
      auto r = c.Call(Get("/ok"));
      h.ok = r && r->status == 200;
    }
  }
  SSL_CTX_free(ctx);
  return h;
}

TEST(HttpServer, Tls12CbcShaSuitesAreRefusedByHandshake) {
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })});
  for (const char* suite : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                            "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"}) {
    Handshake h = TryHandshake(ts.port(), {TLS1_2_VERSION, TLS1_2_VERSION, suite});
    EXPECT_FALSE(h.ok) << suite << " was accepted";
  }
}

TEST(HttpServer, Tls12AeadSuitesAndTls13AreAccepted) {
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })});
  for (const char* suite : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                            "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    Handshake h = TryHandshake(ts.port(), {TLS1_2_VERSION, TLS1_2_VERSION, suite});
    EXPECT_TRUE(h.ok) << suite;
    EXPECT_EQ(h.version, "TLSv1.2");
    EXPECT_EQ(h.cipher, suite);
  }
  Handshake h13 = TryHandshake(ts.port(), {TLS1_3_VERSION, TLS1_3_VERSION, ""});
  EXPECT_TRUE(h13.ok);
  EXPECT_EQ(h13.version, "TLSv1.3");
}

TEST(HttpServer, OldTlsVersionsAreRefused) {
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })});
  Handshake h = TryHandshake(ts.port(), {TLS1_VERSION, TLS1_1_VERSION, "ALL:@SECLEVEL=0"});
  EXPECT_FALSE(h.ok);
}

TEST(HttpServer, RenegotiationIsRefused) {
  TestServer ts({GetRoute("/ok", [](Request&) { return Text("ok"); })});
  SSL_CTX* ctx = NewClientCtx({TLS1_2_VERSION, TLS1_2_VERSION, ""});
  {
    TlsClient c(ts.port(), ctx, 2000ms);
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(SSL_renegotiate(c.ssl()), 1);
    ERR_clear_error();
    EXPECT_NE(SSL_do_handshake(c.ssl()), 1);
    ERR_clear_error();
  }
  SSL_CTX_free(ctx);
}

// --- Lifecycle ---------------------------------------------------------------------------

TEST(HttpServer, StopBeforeRunMakesRunReturnPromptly) {
  ServerOptions o;
  o.tls_cert_chain_file = Files().cert;
  o.tls_key_file = Files().key;
  auto s = Server::Create(o, {GetRoute("/", [](Request&) { return Text("ok"); })});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Listen("127.0.0.1", 0).ok());
  (*s)->Stop();
  (*s)->Stop();  // idempotent
  auto done = std::async(std::launch::async, [&] { (*s)->Run(); });
  EXPECT_EQ(done.wait_for(5s), std::future_status::ready);
}

TEST(HttpServer, StopLetsAnInFlightRequestFinishAndClosesIdleConnections) {
  Gate gate;
  TestServer ts({GetRoute("/slow",
                          [&](Request&) {
                            gate.Wait();
                            return Text("finished");
                          }),
                 GetRoute("/ok", [](Request&) { return Text("ok"); })});
  TlsClient idle(ts.port());
  ASSERT_TRUE(idle.Call(Get("/ok")));
  TlsClient busy(ts.port());
  ASSERT_EQ(busy.Send(Get("/slow")), SendResult::kOk);
  ASSERT_TRUE(gate.WaitForWaiters(1));
  auto stopped = std::async(std::launch::async, [&] { ts.Stop(); });
  EXPECT_TRUE(idle.ClosedWithin(3000ms));
  EXPECT_NE(stopped.wait_for(200ms), std::future_status::ready);
  gate.Open();
  auto r = busy.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  // Nothing listens any more.
  int fd = TcpConnect(ts.port());
  EXPECT_LT(fd, 0);
  if (fd >= 0) ::close(fd);
}

TEST(HttpServer, StopClosesWhatIsStillRunningAfterWriteTimeout) {
  Limits l = TestLimits();
  l.write_timeout = 300ms;
  Gate gate;
  TestServer ts({GetRoute("/stuck",
                          [&](Request&) {
                            gate.Wait();
                            return Text("late");
                          })},
                l);
  TlsClient stuck(ts.port());
  ASSERT_EQ(stuck.Send(Get("/stuck")), SendResult::kOk);
  ASSERT_TRUE(gate.WaitForWaiters(1));
  auto stopped = std::async(std::launch::async, [&] { ts.Stop(); });
  // The connection is closed at write_timeout even though its handler runs
  // on; Run returns once the handler does.
  EXPECT_TRUE(stuck.ClosedWithin(3000ms));
  gate.Open();
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
}

TEST(HttpServer, RouteCanCloseTheConnection) {
  TestServer ts({GetRoute("/bye", [](Request&) {
    Response r = Text("bye");
    r.close = true;
    return r;
  })});
  TlsClient c(ts.port());
  auto r = c.Call(Get("/bye"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ClosedWithin(3000ms));
}

TEST(HttpServer, CreateAndListenErrorsNameTheCulprit) {
  ServerOptions o;
  o.tls_cert_chain_file = Files().dir + "/missing.pem";
  o.tls_key_file = Files().key;
  std::vector<Route> routes = {GetRoute("/", [](Request&) { return Text("ok"); })};
  auto missing = Server::Create(o, routes);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.pem"), std::string::npos);

  o.tls_cert_chain_file = Files().cert;
  o.tls_key_file = Files().other_key;
  auto mismatch = Server::Create(o, routes);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("other-key.pem"), std::string::npos);

  o.tls_key_file = Files().key;
  auto bad_regex =
      Server::Create(o, {GetRoute("/jobs/([0-9]+", [](Request&) { return Text(""); })});
  ASSERT_FALSE(bad_regex.ok());
  EXPECT_NE(bad_regex.status().message().find("/jobs/([0-9]+"), std::string::npos);
  // Back-references would need a backtracking matcher; refused up front.
  auto backref = Server::Create(o, {GetRoute("/(a)\\1", [](Request&) { return Text(""); })});
  ASSERT_FALSE(backref.ok());
  EXPECT_NE(backref.status().message().find("/(a)\\1"), std::string::npos);

  // SO_REUSEADDR but never SO_REUSEPORT: a second listener on a bound port
  // fails.
  auto first = Server::Create(o, routes);
  auto second = Server::Create(o, routes);
  ASSERT_TRUE(first.ok() && second.ok());
  auto port = (*first)->Listen("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  auto clash = (*second)->Listen("127.0.0.1", *port);
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("bind"), std::string::npos);
}

// --- Memory under many slow connections (server in a child process) ---------------------

TEST(HttpServer, ThousandSlowConnectionsStayCheap) {
  if (kSanitized) GTEST_SKIP() << "RSS is not meaningful under a sanitizer";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The server alone in this process, so its RSS is the server's.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(pipefd[0]);
    ServerOptions o;
    o.tls_cert_chain_file = Files().cert;
    o.tls_key_file = Files().key;
    o.limits = TestLimits();
    o.limits.header_timeout = 60s;
    auto s = Server::Create(o, {GetRoute("/ok", [](Request&) { return Text("ok"); })});
    if (!s.ok()) _exit(1);
    auto port = (*s)->Listen("127.0.0.1", 0);
    if (!port.ok()) _exit(1);
    int p = *port;
    if (write(pipefd[1], &p, sizeof(p)) != sizeof(p)) _exit(1);
    (*s)->Run();
    _exit(0);
  }
  close(pipefd[1]);
  int port = 0;
  ASSERT_EQ(read(pipefd[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  close(pipefd[0]);
  {
    TlsClient warm(port);
    ASSERT_TRUE(warm.Call(Get("/ok")));
  }
  std::this_thread::sleep_for(200ms);
  size_t before = RssKiB(child);
  constexpr int kConns = 1000;
  std::vector<std::unique_ptr<TlsClient>> conns;
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<TlsClient>(port));
    ASSERT_TRUE(conns.back()->ok()) << i;
    ASSERT_EQ(conns.back()->Send("GET /ok HTTP/1.1\r\nX-Slow: "), SendResult::kOk);
  }
  std::this_thread::sleep_for(300ms);
  size_t after = RssKiB(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  size_t per_conn = (after - std::min(after, before)) / kConns;
  std::printf("[ info ] server RSS %zu KiB -> %zu KiB for %d slow TLS connections (%zu KiB each)\n",
              before, after, kConns, per_conn);
  // asio::ssl::stream's record buffers alone would be 34 KiB each.
  EXPECT_LT(after - std::min(after, before), 32u * 1024) << "KiB";
}

// --- Streamed bodies (Response::stream) ----------------------------------------

// A body of `size` bytes of a pattern, produced on demand; records how much
// was asked for and can fail after `fail_after` bytes.
class PatternSource : public BodySource {
 public:
  explicit PatternSource(uint64_t size, uint64_t fail_after = UINT64_MAX)
      : size_(size), fail_after_(fail_after) {}
  uint64_t size() const override { return size_; }
  StatusOr<size_t> Read(std::span<uint8_t> out) override {
    ++reads;
    max_request = std::max<size_t>(max_request, out.size());
    if (produced >= fail_after_) return DataLoss("source failed on purpose");
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - produced));
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>('a' + (produced + i) % 26);
    produced += n;
    return n;
  }
  static std::string Expected(uint64_t size) {
    std::string s(size, '\0');
    for (uint64_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
  }
  std::atomic<uint64_t> produced{0};
  std::atomic<int> reads{0};
  std::atomic<size_t> max_request{0};

 private:
  uint64_t size_;
  uint64_t fail_after_;
};

TEST(HttpServer, StreamedBodyArrivesWholeAndTheConnectionStaysUsable) {
  const uint64_t size = 3 * BodySource::kStreamPieceBytes + 12345;
  std::weak_ptr<PatternSource> seen;
  TestServer ts({GetRoute("/big",
                          [&](Request&) {
                            auto src = std::make_shared<PatternSource>(size);
                            seen = src;
                            Response r;
                            r.content_type = "application/octet-stream";
                            r.stream = src;
                            return r;
                          }),
                 GetRoute("/small", [](Request&) { return Text("after"); })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/big"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-length"), std::to_string(size));
  EXPECT_EQ(r->Header("content-type"), "application/octet-stream");
  EXPECT_TRUE(r->body == PatternSource::Expected(size));
  // Kept alive, and the next response is not polluted by the stream.
  auto next = c.Call(Get("/small"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "after");
  EXPECT_TRUE(seen.expired()) << "the source is released when its response ends";
  EXPECT_EQ(ts.Finished().at(0).second, 200);
}

TEST(HttpServer, StreamedBodyIsProducedOnlyAsFastAsTheClientReads) {
  // The client reads nothing: the server may hold a piece and what the
  // socket buffers take, never the whole body (a server that buffered it
  // would have asked for all 256 MiB).
  const uint64_t size = uint64_t{256} << 20;
  auto src = std::make_shared<PatternSource>(size);
  TestServer ts({GetRoute("/big", [&](Request&) {
    Response r;
    r.stream = src;
    return r;
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c.Send(Get("/big")), SendResult::kOk);
  std::this_thread::sleep_for(500ms);
  EXPECT_GT(src->produced.load(), 0u);
  EXPECT_LT(src->produced.load(), uint64_t{32} << 20);
  EXPECT_LE(src->max_request.load(), BodySource::kStreamPieceBytes);
}

TEST(HttpServer, StreamErrorClosesTheConnectionMidBody) {
  const uint64_t size = 4 * BodySource::kStreamPieceBytes;
  TestServer ts({GetRoute("/big", [&](Request&) {
    Response r;
    r.stream = std::make_shared<PatternSource>(size, BodySource::kStreamPieceBytes);
    return r;
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  // The head says 4 pieces; one arrives, then the connection closes, so a
  // client can tell the body is incomplete.
  auto r = c.Call(Get("/big"));
  EXPECT_FALSE(r) << "a response with a full body arrived";
  EXPECT_TRUE(c.ClosedWithin(3000ms));
  std::string detail;
  EXPECT_TRUE(ts.HasEvent("stream.aborted", &detail));
  EXPECT_NE(detail.find("source failed on purpose"), std::string::npos) << detail;
}

TEST(HttpServer, HeadOfAStreamedRouteSendsItsLengthAndReadsNothing) {
  auto src = std::make_shared<PatternSource>(1000);
  TestServer ts({GetRoute("/big", [&](Request&) {
    Response r;
    r.stream = src;
    return r;
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call("HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n", /*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("content-length"), "1000");
  EXPECT_EQ(src->reads.load(), 0);
}

TEST(HttpServer, ResponseWithBothABodyAndAStreamBecomes500) {
  TestServer ts({GetRoute("/both", [](Request&) {
    Response r = Text("body");
    r.stream = std::make_shared<PatternSource>(10);
    return r;
  })});
  TlsClient c(ts.port());
  ASSERT_TRUE(c.ok());
  auto r = c.Call(Get("/both"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

}  // namespace
}  // namespace cce::http
