// http::Server::ListenUnix with http::Client over ClientOptions::
// unix_socket_path: the same TLS (certificate verified against a pinned CA
// and the URL's host), routes and peer naming as over TCP, the socket file's
// mode, and the refusals (not a socket, a live server, a wrong host name).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "base/fd.h"
#include "crypto/x509.h"
#include "http/client.h"
#include "http/server.h"

namespace cce::http {
namespace {

namespace fs = std::filesystem;

void WriteString(const std::string& path, std::string_view s) {
  ASSERT_TRUE(WriteNewFile(path, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, 0600).ok())
      << path;
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-http-unix-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_path_ = dir_ + "/plane.sock";
    auto ca = crypto::CreateCertificateAuthority("test ca", ::time(nullptr) - 3600, 2);
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    // The names `cce-plane init` gives its certificate by default.
    auto cert = crypto::IssueServerCertificate(*ca, "cce-plane", {"localhost"}, {"127.0.0.1"},
                                               ::time(nullptr) - 3600, 2);
    ASSERT_TRUE(cert.ok()) << cert.status().message();
    WriteString(dir_ + "/ca.crt", ca->cert_pem);
    WriteString(dir_ + "/server.crt", cert->cert_pem);
    WriteString(dir_ + "/server.key",
                std::string_view(reinterpret_cast<const char*>(cert->key_pem.data()),
                                 cert->key_pem.size()));
  }
  void TearDown() override {
    StopServer();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartServer() {
    ServerOptions o;
    o.tls_cert_chain_file = dir_ + "/server.crt";
    o.tls_key_file = dir_ + "/server.key";
    o.limits.io_threads = 1;
    o.limits.worker_threads = 2;
    std::vector<Route> routes;
    Route r;
    r.method = "GET";
    r.pattern = "/whoami";
    r.handle = [](Request& req) {
      Response res;
      res.content_type = "text/plain";
      res.body = req.remote_addr;
      return res;
    };
    routes.push_back(std::move(r));
    auto s = Server::Create(std::move(o), std::move(routes));
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
    Status listening = server_->ListenUnix(socket_path_, 0600);
    ASSERT_TRUE(listening.ok()) << listening.message();
    runner_ = std::thread([this] { server_->Run(); });
  }
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    if (runner_.joinable()) runner_.join();
    server_.reset();
  }

  StatusOr<ClientResponse> Get(const std::string& base_url, const std::string& socket_path) {
    ClientOptions co;
    co.base_url = base_url;
    co.ca_file = dir_ + "/ca.crt";
    co.unix_socket_path = socket_path;
    co.connect_timeout = std::chrono::milliseconds(5000);
    co.timeout = std::chrono::milliseconds(10000);
    ASSIGN_OR_RETURN(Client c, Client::Create(co));
    ClientRequest req;
    req.target = "/whoami";
    return c.Send(req);
  }

  std::string dir_;
  std::string socket_path_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
};

TEST_F(UnixSocketTest, ServesTlsOverTheSocketAndNamesThePeerByPid) {
  StartServer();
  auto res = Get("https://localhost", socket_path_);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "unix:pid=" + std::to_string(::getpid()));
}

TEST_F(UnixSocketTest, SocketFileHasExactlyTheRequestedMode) {
  const mode_t old_umask = ::umask(0);  // bind() alone would leave it 0777
  StartServer();
  ::umask(old_umask);
  struct stat st {};
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(UnixSocketTest, CertificateMustMatchTheUrlHost) {
  StartServer();
  auto res = Get("https://not-the-plane.example", socket_path_);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("not issued for host 'not-the-plane.example'"),
            std::string::npos)
      << res.status().message();
}

TEST_F(UnixSocketTest, UntrustedCaIsRefused) {
  StartServer();
  auto other = crypto::CreateCertificateAuthority("other ca", ::time(nullptr) - 3600, 2);
  ASSERT_TRUE(other.ok());
  fs::remove(dir_ + "/ca.crt");
  WriteString(dir_ + "/ca.crt", other->cert_pem);
  auto res = Get("https://localhost", socket_path_);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("not trusted"), std::string::npos)
      << res.status().message();
}

TEST_F(UnixSocketTest, MissingSocketIsAnUnavailableNamingThePath) {
  auto res = Get("https://localhost", dir_ + "/absent.sock");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("unix:" + dir_ + "/absent.sock"), std::string::npos)
      << res.status().message();
}

TEST_F(UnixSocketTest, ReplacesAStaleSocketAndRemovesItsOwnOnDestruction) {
  {  // a socket file nobody listens on any more
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, socket_path_.c_str(), socket_path_.size());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof(a)), 0);
  }
  ASSERT_TRUE(fs::exists(socket_path_));
  StartServer();
  auto res = Get("https://localhost", socket_path_);
  ASSERT_TRUE(res.ok()) << res.status().message();
  StopServer();
  EXPECT_FALSE(fs::exists(fs::symlink_status(socket_path_)));
}

TEST_F(UnixSocketTest, RefusesAPathThatIsNotASocketOrALiveServer) {
  StartServer();
  ServerOptions o;
  o.tls_cert_chain_file = dir_ + "/server.crt";
  o.tls_key_file = dir_ + "/server.key";
  auto second = Server::Create(std::move(o), {});
  ASSERT_TRUE(second.ok());
  Status live = (*second)->ListenUnix(socket_path_, 0600);
  EXPECT_EQ(live.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(live.message().find("another server is listening"), std::string::npos)
      << live.message();
  const std::string file = dir_ + "/regular";
  WriteString(file, "x");
  Status not_socket = (*second)->ListenUnix(file, 0600);
  EXPECT_EQ(not_socket.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(not_socket.message().find("not a socket"), std::string::npos) << not_socket.message();
  EXPECT_TRUE(fs::is_regular_file(file));  // left alone
  EXPECT_EQ((*second)->ListenUnix("relative.sock", 0600).code(), StatusCode::kInvalidArgument);
  // The first server still answers.
  auto res = Get("https://localhost", socket_path_);
  ASSERT_TRUE(res.ok()) << res.status().message();
}

}  // namespace
}  // namespace cce::http
