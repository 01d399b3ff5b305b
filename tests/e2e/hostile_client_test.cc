// Issue 9's seven transport failures, each against a real `cce-plane serve`
// on loopback, from raw TLS sockets that send exactly the hostile bytes:
//   1. a POST without Content-Length (read until close by cpp-httplib),
//   2. a gzip body (expanded before the 401),
//   3. a header flood,
//   4. slow connections (slowloris) holding every worker,
//   5. a body nested 400,000 levels deep (crashed the key broker),
//   6. the key broker's rate limit running after its handler (one audit row
//      per refusal),
//   7. TLS 1.2 CBC-SHA1 suites accepted.
// Each gets its 4xx or an early close; the plane never crashes and its peak
// resident memory stays under kMaxPlaneRssKiB; an authenticated client keeps
// being answered while 1,000 slow connections are open. Bounded in count and
// time (no assertion on wall-clock latency: bench/plane measures that).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness.h"
#include "e2e/plane_fixture.h"
#include "http/test_client.h"

namespace cce::e2e {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Under ASan (make asan) the plane carries shadow memory and a quarantine of
// freed blocks (~140 MiB idle, ~420 MiB with 1000 connections held), so the
// bound there catches only gross growth; `make test` checks the real one.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kMaxPlaneRssKiB = 640 * 1024;
#else
constexpr int64_t kMaxPlaneRssKiB = 128 * 1024;
#endif

int PortOf(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

// "VmRSS" or "VmHWM" (peak) of a process, in KiB; -1 if unreadable.
int64_t ProcKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// One raw TLS connection to the plane. The test is the attacker: it does not
// verify the server (what is under test is the server's behaviour).
class RawTls {
 public:
  struct Options {
    int max_version = 0;  // 0: any; TLS1_2_VERSION to pin 1.2
    std::string ciphers;  // TLS 1.2 cipher list; "" default
  };
  RawTls(int port, const Options& o) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx_.get(), o.max_version);
    if (!o.ciphers.empty()) SSL_CTX_set_cipher_list(ctx_.get(), o.ciphers.c_str());
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    handshake_ok_ = SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
  }
  explicit RawTls(int port) : RawTls(port, Options{}) {}
  ~RawTls() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }
  RawTls(const RawTls&) = delete;
  RawTls& operator=(const RawTls&) = delete;

  bool handshake_ok() const { return handshake_ok_; }
  std::string version() const { return ssl_ ? SSL_get_version(ssl_.get()) : ""; }
  // Writes all of `data`; false once the peer closed or reset.
  bool Write(std::string_view data) {
    while (!data.empty()) {
      int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads whatever is available within the socket timeout (up to `max`).
  std::string Read(size_t max = 64 * 1024) {
    std::string out(max, '\0');
    int n = SSL_read(ssl_.get(), out.data(), static_cast<int>(max));
    ERR_clear_error();
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }
  // The status code of the first response line read, or 0 (closed, none).
  int ReadStatus() {
    std::string r = Read();
    if (r.rfind("HTTP/1.1 ", 0) != 0 || r.size() < 12) return 0;
    return std::stoi(r.substr(9, 3));
  }

 private:
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  int fd_ = -1;
  bool handshake_ok_ = false;
};

class HostileClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The plane closes on the attacker mid-write: that is a failed write
    // here, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    // 1,000 slow connections need more than the default 1,024 descriptors;
    // the plane (our child) inherits this and raises its own as well.
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  void SetUp() override {
    ASSERT_TRUE(plane_.up());
    port_ = PortOf(plane_.url());
  }
  void TearDown() override {
    EXPECT_TRUE(plane_.server().running()) << "the plane died: " << plane_.server().Err();
    const int64_t peak = ProcKiB(plane_.server().pid(), "VmHWM");
    EXPECT_GT(peak, 0);
    EXPECT_LT(peak, kMaxPlaneRssKiB) << "plane peak RSS " << peak << " KiB";
    std::printf("[ info ] plane peak RSS %lld KiB\n", static_cast<long long>(peak));
  }
  http::testing::TestClient Client() { return http::testing::TestClient(port_, plane_.ca()); }
  http::testing::Headers Auth(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

  PlaneFixture plane_;
  int port_ = 0;
};

// 1. Without Content-Length a request has no body (RFC 9112 6.3): the plane
// answers it and reads the rest as the next request (garbage: 400, closed),
// never buffering the stream.
TEST_F(HostileClientTest, PostWithoutContentLengthIsNotBufferedUntilClose) {
  RawTls c(port_);
  ASSERT_TRUE(c.handshake_ok());
  ASSERT_TRUE(
      c.Write("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n"));
  const std::string chunk(1 << 20, 'A');
  size_t sent = 0;
  while (sent < (size_t{300} << 20) && c.Write(chunk)) sent += chunk.size();
  EXPECT_LT(sent, size_t{300} << 20) << "the plane read 300 MiB without closing";
  const int status = c.ReadStatus();
  EXPECT_TRUE(status == 0 || (status >= 400 && status < 500)) << status;
}

// 2. Content-Encoding is refused (415) before a byte of the body is read.
TEST_F(HostileClientTest, CompressedBodyIsRefusedUnread) {
  RawTls c(port_);
  ASSERT_TRUE(c.handshake_ok());
  const size_t len = 497 * 1024;
  ASSERT_TRUE(
      c.Write("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
              "Content-Type: application/json\r\nContent-Length: " +
              std::to_string(len) + "\r\n\r\n"));
  EXPECT_EQ(c.ReadStatus(), 415);
}

// 3. Headers beyond the limit: 431 or a close, after at most a few MiB.
TEST_F(HostileClientTest, HeaderFloodIsCutOffEarly) {
  RawTls c(port_);
  ASSERT_TRUE(c.handshake_ok());
  ASSERT_TRUE(c.Write("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  const std::string line = "X-Flood: " + std::string(1000, 'b') + "\r\n";
  std::string block;
  for (int i = 0; i < 1024; ++i) block += line;  // ~1 MiB
  size_t sent = 0;
  while (sent < (size_t{200} << 20) && c.Write(block)) sent += block.size();
  EXPECT_LT(sent, size_t{16} << 20) << "the plane kept reading headers";
  const int status = c.ReadStatus();
  EXPECT_TRUE(status == 0 || status == 431) << status;
  EXPECT_LT(ProcKiB(plane_.server().pid(), "VmRSS"), kMaxPlaneRssKiB);
}

// 4. 1,000 slowloris connections (one header line a second) hold no worker:
// new handshakes, /healthz and authenticated requests are answered.
TEST_F(HostileClientTest, SlowConnectionsDoNotStarveOthers) {
  constexpr int kSlow = 1000;
  std::vector<std::unique_ptr<RawTls>> slow;
  slow.reserve(kSlow);
  // Each sends a header line about once a second, from its handshake on,
  // and never ends its headers: held open, they would each take a worker
  // of a thread-per-connection server.
  auto trickle = [&slow] {
    int alive = 0;
    for (auto& c : slow) alive += c->Write("X-Slow: 1\r\n") ? 1 : 0;
    return alive;
  };
  auto last_trickle = SteadyClock::now();
  for (int i = 0; i < kSlow; ++i) {
    auto c = std::make_unique<RawTls>(port_);
    ASSERT_TRUE(c->handshake_ok()) << "slow connection " << i;
    ASSERT_TRUE(c->Write("GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\n"));
    slow.push_back(std::move(c));
    if (SteadyClock::now() - last_trickle > std::chrono::seconds(1)) {
      (void)trickle();
      last_trickle = SteadyClock::now();
    }
  }
  // A liveness bound, not a latency assertion (bench/plane measures that):
  // cpp-httplib's plane, its 64 workers held by these connections, took
  // minutes to answer; an answer within 10 s is "being answered".
  http::ClientOptions o;
  o.base_url = plane_.url();
  o.ca_file = plane_.ca();
  o.timeout = std::chrono::seconds(10);
  http::testing::TestClient client(o);
  const auto until = SteadyClock::now() + std::chrono::seconds(4);
  int answered = 0;
  while (SteadyClock::now() < until) {
    if (SteadyClock::now() - last_trickle > std::chrono::seconds(1)) {
      (void)trickle();
      last_trickle = SteadyClock::now();
    }
    auto who = client.Get("/api/v1/whoami", Auth(plane_.operator_token()));
    ASSERT_TRUE(who) << client.error().message();
    EXPECT_EQ(who->status, 200);
    auto health = http::testing::TestClient(o).Get("/healthz");  // a new handshake
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(answered, 5);
  // They were held all along (the header deadline, 10 s, has not passed).
  EXPECT_GE(trickle(), kSlow * 9 / 10);
  EXPECT_LT(ProcKiB(plane_.server().pid(), "VmRSS"), kMaxPlaneRssKiB);
}

// 5. A body nested 400,000 levels deep is refused before any code walks it.
TEST_F(HostileClientTest, DeeplyNestedJsonIsRefusedBeforeTheHandler) {
  std::string deep = R"({"credential":"x","nonce":"x","quote":"x","tee_pubkey":)";
  deep += std::string(400'000, '[') + std::string(400'000, ']') + "}";
  auto client = Client();
  auto r = client.Post("/kbs/v0/attest", deep, "application/json");
  ASSERT_TRUE(r) << client.error().message();
  EXPECT_EQ(r->status, 400) << r->body.substr(0, 200);
  EXPECT_NE(r->body.find("nested"), std::string::npos) << r->body.substr(0, 200);
  EXPECT_LT(r->body.size(), 300u);  // names the problem, never echoes the value
}

// 6. The key broker's limit runs before its handler: 1,500 refusals write
// at most kMaxFailures denials and one rate_limit entry.
TEST_F(HostileClientTest, KeyBrokerFloodWritesBoundedAudit) {
  auto client = Client();
  int limited = 0;
  for (int i = 0; i < 1500; ++i) {
    auto r =
        client.Post("/kbs/v0/auth", R"({"credential":"cce-cred-v1.bogus.x"})", "application/json");
    ASSERT_TRUE(r) << client.error().message();
    ASSERT_TRUE(r->status == 403 || r->status == 429) << r->status;
    limited += r->status == 429 ? 1 : 0;
  }
  EXPECT_GE(limited, 1400);
  auto audit = client.Get("/api/v1/audit?limit=10000", Auth(plane_.operator_token()));
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->status, 200) << audit->body;
  int denials = 0;
  int limits = 0;
  std::string actions;
  const json list = json::parse(audit->body);
  for (const auto& e : list["entries"]) {
    denials += e["action"] == "kbs.auth" ? 1 : 0;
    limits += e["action"] == "kbs.rate_limit" ? 1 : 0;
    actions += e["action"].get<std::string>() + " ";
  }
  EXPECT_LE(denials, 20) << actions;
  EXPECT_EQ(limits, 1) << actions;
}

// 7. TLS 1.2 only with ECDHE + AEAD; CBC-SHA1 suites fail the handshake.
TEST_F(HostileClientTest, TlsOffersAeadSuitesOnly) {
  RawTls cbc(port_, {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA"});
  EXPECT_FALSE(cbc.handshake_ok());
  RawTls gcm(port_, {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256"});
  EXPECT_TRUE(gcm.handshake_ok());
  EXPECT_EQ(gcm.version(), "TLSv1.2");
  RawTls tls13(port_);
  EXPECT_TRUE(tls13.handshake_ok());
  EXPECT_EQ(tls13.version(), "TLSv1.3");
}

}  // namespace
}  // namespace cce::e2e
