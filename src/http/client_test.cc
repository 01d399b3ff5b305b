// http::Client against a real HTTPS server on loopback: a small python3
// http.server + ssl process this test starts, with a throwaway certificate
// made by `openssl req`. It is independent of http::Server so that a bug in
// one side cannot hide one in the other.
#include "http/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fd.h"

extern char** environ;

namespace cce::http {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// /echo answers with what it received (and the client's TCP port, which
// shows whether requests shared one connection); /blob?size=N sends N bytes
// of Pattern(); /error a 409 error JSON; /redirect a 302; /slow waits 3 s.
constexpr char kServerPy[] = R"PY(
import hashlib, http.server, json, ssl, sys, time, urllib.parse

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data, True
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0"))), False

    def reply(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def serve(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body, chunked = self.read_body()
        if url.path == "/echo":
            self.reply(200, {
                "method": self.command, "target": self.path, "query": query,
                "client_port": self.client_address[1], "body_len": len(body),
                "body": body.decode("latin-1") if len(body) < 1024 else None,
                "body_sha256": hashlib.sha256(body).hexdigest(), "chunked": chunked,
                "content_length": self.headers.get("Content-Length"),
                "expect": self.headers.get("Expect"),
                "authorization": self.headers.get("Authorization"),
            }, [("X-Echo", "yes")])
        elif url.path == "/blob":
            size = int(query["size"])
            pattern = bytes(i % 251 for i in range(251 * 256))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            while sent < size:
                piece = pattern[: min(len(pattern), size - sent)]
                self.wfile.write(piece)
                sent += len(piece)
        elif url.path == "/error":
            self.reply(409, {"error": {"code": "failed_precondition", "message": "not now"}})
        elif url.path == "/redirect":
            self.reply(302, {}, [("Location", "/echo")])
        elif url.path == "/slow":
            time.sleep(3)
            self.reply(200, {})
        else:
            self.reply(404, {"error": {"code": "not_found", "message": "no such path"}})

    do_GET = do_POST = do_PUT = do_DELETE = serve

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the tests abort transfers on purpose

server = Server(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
)PY";

uint8_t Pattern(uint64_t offset) {
  return static_cast<uint8_t>(offset % 251);
}

std::string PatternSha256(uint64_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint64_t i = 0; i < size; ++i) bytes[i] = Pattern(i);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  std::string hex;
  for (const uint8_t b : digest) {
    hex += "0123456789abcdef"[b >> 4];
    hex += "0123456789abcdef"[b & 0x0f];
  }
  return hex;
}

// Field-by-field builders: designated initializers that leave members out
// trip -Wmissing-field-initializers.
ClientRequest Req(std::string method, std::string target, std::vector<Header> headers = {}) {
  ClientRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

ClientOptions Options(std::string base_url, std::string ca_file) {
  ClientOptions o;
  o.base_url = std::move(base_url);
  o.ca_file = std::move(ca_file);
  return o;
}

void MakeCertificate(const fs::path& dir, const std::string& name) {
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
      " -days 2 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
      " -keyout " +
      (dir / (name + ".key")).string() + " -out " + (dir / (name + ".pem")).string() +
      " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// The python server as a child process: started, its port read from its
// first output line, and killed and reaped when this goes away.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  Status Start(const fs::path& dir) {
    const std::string script = (dir / "server.py").string();
    std::ofstream(script) << kServerPy;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    const std::string cert = (dir / "server.pem").string();
    const std::string key = (dir / "server.key").string();
    std::vector<char*> argv = {const_cast<char*>("/usr/bin/python3"),
                               const_cast<char*>(script.c_str()), const_cast<char*>(cert.c_str()),
                               const_cast<char*>(key.c_str()), nullptr};
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return ErrnoStatus("posix_spawn python3", rc);
    write_end.reset();
    std::string line;
    while (line.find('\n') == std::string::npos) {
      pollfd p{read_end.get(), POLLIN, 0};
      if (::poll(&p, 1, 15'000) != 1) return Internal("python server: no port within 15 s");
      char buf[64];
      const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n <= 0) return Internal("python server exited before printing its port");
      line.append(buf, static_cast<size_t>(n));
    }
    port_ = std::stoi(line);
    return Status::Ok();
  }

  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class HttpClient : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/http_client_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    MakeCertificate(*dir_, "server");
    MakeCertificate(*dir_, "other");  // a CA that did not issue the server's certificate
    server_ = new ServerProcess();
    const Status started = server_->Start(*dir_);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static std::string BaseUrl() { return "https://127.0.0.1:" + std::to_string(server_->port()); }
  static std::string CaFile() { return (*dir_ / "server.pem").string(); }

  static Client MakeClient(ClientOptions options = {}) {
    if (options.base_url.empty()) options.base_url = BaseUrl();
    if (options.ca_file.empty()) options.ca_file = CaFile();
    auto client = Client::Create(options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return std::move(client).value();
  }

  static json Echo(const ClientResponse& r) { return json::parse(r.body); }

  static fs::path* dir_;
  static ServerProcess* server_;
};

fs::path* HttpClient::dir_ = nullptr;
ServerProcess* HttpClient::server_ = nullptr;

TEST_F(HttpClient, GetRoundTripWithHeaders) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  ClientRequest req;
  req.target = "/echo?name=" + UrlEncode("a b&c");
  req.headers = {{"Authorization", "Bearer t0ken"}};
  auto r = client.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->HeaderValue("x-ECHO"), "yes");  // names match case-insensitively
  EXPECT_EQ(r->HeaderValue("content-type"), "application/json");
  EXPECT_FALSE(r->HeaderValue("X-Missing").has_value());
  const json e = Echo(*r);
  EXPECT_EQ(e["method"], "GET");
  EXPECT_EQ(e["query"]["name"], "a b&c");
  EXPECT_EQ(e["authorization"], "Bearer t0ken");
  EXPECT_EQ(e["body_len"], 0);
}

TEST_F(HttpClient, PostSendsContentLengthWithoutExpect) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  ClientRequest req;
  req.method = "POST";
  req.target = "/echo";
  req.headers = {{"Content-Type", "application/json"}};
  // Above libcurl's 1 MiB threshold for sending Expect: 100-continue.
  req.body = std::string(size_t{2} << 20, 'x');
  auto r = client.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json e = Echo(*r);
  EXPECT_EQ(e["method"], "POST");
  EXPECT_EQ(e["body_len"], req.body.size());
  EXPECT_EQ(e["content_length"], std::to_string(req.body.size()));
  EXPECT_EQ(e["chunked"], false);
  EXPECT_TRUE(e["expect"].is_null());
}

TEST_F(HttpClient, EmptyPostAndDelete) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  auto post = client.Send(Req("POST", "/echo"));
  ASSERT_TRUE(post.ok()) << post.status().ToString();
  EXPECT_EQ(Echo(*post)["content_length"], "0");
  auto del = client.Send(Req("DELETE", "/echo"));
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(Echo(*del)["method"], "DELETE");
}

TEST_F(HttpClient, RequestsReuseOneConnection) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  std::vector<int> ports;
  for (int i = 0; i < 5; ++i) {
    ClientRequest req;
    req.method = i % 2 == 0 ? "GET" : "POST";
    req.target = "/echo";
    req.body = i % 2 == 0 ? "" : "body";
    auto r = client.Send(req);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ports.push_back(Echo(*r)["client_port"].get<int>());
  }
  for (int port : ports) EXPECT_EQ(port, ports[0]);
  // A moved Client keeps its connection.
  Client moved = std::move(client);
  auto r = moved.Send(Req("GET", "/echo"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Echo(*r)["client_port"].get<int>(), ports[0]);
}

TEST_F(HttpClient, ErrorStatusIsReturnedWithItsBody) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  auto r = client.Send(Req("GET", "/error"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "not now");
}

TEST_F(HttpClient, RedirectIsNotFollowed) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  auto r = client.Send(Req("GET", "/redirect"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->HeaderValue("Location"), "/echo");
}

TEST_F(HttpClient, ChunkedUploadFromBodyReader) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  constexpr uint64_t kSize = (uint64_t{3} << 20) + 17;
  uint64_t offset = 0;
  int calls = 0;
  ClientRequest req;
  req.method = "PUT";
  req.target = "/echo";
  req.body_reader = [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
    ++calls;
    // Short reads of varying size, as a file or pipe would give.
    const size_t n = std::min<uint64_t>({buf.size(), kSize - offset, 1000 + (offset % 7000)});
    for (size_t i = 0; i < n; ++i) buf[i] = Pattern(offset + i);
    offset += n;
    return n;
  };
  auto r = client.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json e = Echo(*r);
  EXPECT_EQ(e["method"], "PUT");
  EXPECT_EQ(e["chunked"], true);
  EXPECT_TRUE(e["content_length"].is_null());
  EXPECT_TRUE(e["expect"].is_null());
  ASSERT_EQ(e["body_len"], kSize);
  EXPECT_EQ(e["body_sha256"], PatternSha256(kSize));
  EXPECT_GT(calls, 100);
}

TEST_F(HttpClient, BodyReaderErrorAbortsAndIsReturned) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  int calls = 0;
  ClientRequest req;
  req.method = "PUT";
  req.target = "/echo";
  req.body_reader = [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
    if (++calls == 3) return DataLoss("blob.bin: segment 2: authentication failed");
    std::fill(buf.begin(), buf.end(), uint8_t{'a'});
    return buf.size();
  };
  auto r = client.Send(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status().message(), "blob.bin: segment 2: authentication failed");
  EXPECT_EQ(calls, 3);
  // The client still works (on a new connection).
  auto again = client.Send(Req("GET", "/echo"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpClient, StreamedDownloadGoesToBodySink) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  constexpr uint64_t kSize = (uint64_t{5} << 20) + 3;
  uint64_t received = 0;
  bool matches = true;
  int pieces = 0;
  ClientRequest req;
  req.target = "/blob?size=" + std::to_string(kSize);
  req.body_sink = [&](std::span<const uint8_t> piece) {
    for (size_t i = 0; i < piece.size(); ++i)
      matches = matches && piece[i] == Pattern(received + i);
    received += piece.size();
    ++pieces;
    return Status::Ok();
  };
  auto r = client.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(received, kSize);
  EXPECT_TRUE(matches);
  EXPECT_GT(pieces, 1);
}

TEST_F(HttpClient, BodySinkIsNotGivenAnErrorBody) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  bool sink_called = false;
  ClientRequest req;
  req.target = "/error";
  req.body_sink = [&](std::span<const uint8_t>) {
    sink_called = true;
    return Status::Ok();
  };
  auto r = client.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 409);
  EXPECT_FALSE(sink_called);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "failed_precondition");
}

TEST_F(HttpClient, BodySinkErrorAbortsAndIsReturned) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  uint64_t received = 0;
  ClientRequest req;
  req.target = "/blob?size=" + std::to_string(uint64_t{64} << 20);
  req.body_sink = [&](std::span<const uint8_t> piece) -> Status {
    received += piece.size();
    return ErrnoStatus("write out.bin", ENOSPC);
  };
  auto r = client.Send(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIo);
  EXPECT_EQ(r.status().message(), "write out.bin: No space left on device");
  EXPECT_LT(received, uint64_t{1} << 20);  // stopped at the first piece, not after 64 MiB
  auto again = client.Send(Req("GET", "/echo"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(HttpClient, BufferedBodyOverTheLimitFails) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  ClientOptions options;
  options.max_response_bytes = 1000;
  Client client = MakeClient(options);
  auto r = client.Send(Req("GET", "/blob?size=5000"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("response body larger than 1000 bytes"), std::string::npos)
      << r.status().message();
}

TEST_F(HttpClient, ConnectionRefusedSaysSo) {
  // A port that was just free: bound, not listened on, closed.
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  s.reset();
  Client client = MakeClient(Options(url, ""));
  auto r = client.Send(Req("GET", "/echo", {{"Authorization", "Bearer s3cret"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "cannot reach the plane at " + url +
                                      ": connection refused (is the plane running? check the URL)");
}

TEST_F(HttpClient, UntrustedServerCertificateNamesTheCaFile) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  const std::string other = (*dir_ / "other.pem").string();
  Client client = MakeClient(Options("", other));
  auto r = client.Send(Req("GET", "/echo", {{"Authorization", "Bearer s3cret"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.rfind("cannot reach the plane at " + BaseUrl() +
                        ": the server's TLS certificate is not trusted by CA file " + other +
                        " (wrong --ca?)",
                    0),
            0u)
      << m;
  EXPECT_EQ(m.find("s3cret"), std::string::npos);
}

// The CA file is parsed once per version and shared by later Clients; a
// rewritten or replaced file is read again, so trust follows the file.
TEST_F(HttpClient, CaFileChangedIsReadAgain) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  const std::string ca = (*dir_ / "changing-ca.pem").string();
  const auto contents = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  const std::string server_ca = contents(*dir_ / "server.pem");
  const std::string other_ca = contents(*dir_ / "other.pem");
  const auto get = [&] {
    auto c = Client::Create(Options(BaseUrl(), ca));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return Status(c.status());
    auto r = c->Send(Req("GET", "/echo"));
    return r.ok() ? Status::Ok() : r.status();
  };
  std::ofstream(ca, std::ios::trunc) << server_ca;
  ASSERT_TRUE(get().ok());
  ASSERT_TRUE(get().ok());  // the kept parse trusts the same CA

  // Rewritten in place (same inode): no longer trusted.
  std::ofstream(ca, std::ios::trunc) << other_ca;
  Status s = get();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is not trusted by CA file " + ca), std::string::npos) << s.message();

  // Replaced by rename: trusted again.
  const std::string next = ca + ".next";
  std::ofstream(next, std::ios::trunc) << server_ca;
  fs::rename(next, ca);
  EXPECT_TRUE(get().ok());
}

TEST_F(HttpClient, CaFileThatIsNotACertificateIsNamed) {
  const std::string path = (*dir_ / "not-a-cert.pem").string();
  std::ofstream(path) << "hello, I am not a certificate\n";
  auto c = Client::Create(Options("https://127.0.0.1:1", path));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "CA file " + path +
                ": holds no PEM certificate (expected -----BEGIN CERTIFICATE-----; check --ca)");

  // A PEM private key (the plane's tls/ca.key beside ca.crt) is named as a key.
  const std::string key = (*dir_ / "server.key").string();
  auto k = Client::Create(Options("https://127.0.0.1:1", key));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().message(),
            "CA file " + key +
                ": this is a private key, not a certificate (the plane's CA certificate is "
                "DATA_DIR/tls/ca.crt; check --ca)");
  // So is a cce4long key file.
  const std::string dataset_key = (*dir_ / "claims.key").string();
  std::ofstream(dataset_key) << "cce4long-dataset-key-v1 " << std::string(64, 'a') << "\n";
  auto d = Client::Create(Options("https://127.0.0.1:1", dataset_key));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find(": this is a cce4long key file, not a certificate"),
            std::string::npos)
      << d.status().message();
  EXPECT_EQ(d.status().message().find("aaaaaaaa"), std::string::npos);  // never quoted
}

TEST_F(HttpClient, CaFileThatIsMissingIsNamed) {
  const std::string path = (*dir_ / "missing.pem").string();
  auto c = Client::Create(Options("https://127.0.0.1:1", path));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "CA file " + path + ": cannot open it: No such file or directory (check --ca)");
}

TEST_F(HttpClient, ConnectTimeoutSaysSoWithTheValue) {
  // Listening but never accepting: TCP connects (the backlog), the TLS
  // handshake never gets an answer.
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(s.get(), 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ClientOptions options = Options(url, CaFile());
  options.connect_timeout = std::chrono::milliseconds(300);
  Client client = MakeClient(options);
  auto r = client.Send(Req("GET", "/echo"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(
      r.status().message().rfind("cannot reach the plane at " + url +
                                     ": timed out: no connection within the connect "
                                     "timeout of 300 ms (is the host reachable? check the URL",
                                 0),
      0u)
      << r.status().message();
}

TEST_F(HttpClient, RequestTimeoutSaysSoWithTheValue) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(500);
  Client client = MakeClient(options);
  auto r = client.Send(Req("GET", "/slow"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "cannot reach the plane at " + BaseUrl() +
                                      ": timed out: no complete answer within the request "
                                      "timeout of 500 ms");
}

TEST_F(HttpClient, StallTimeoutSaysSoWithTheValue) {
  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  ClientOptions options;
  options.stall_timeout = std::chrono::milliseconds(1000);
  Client client = MakeClient(options);
  auto r = client.Send(Req("GET", "/slow"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "cannot reach the plane at " + BaseUrl() +
                                      ": timed out: nothing sent or received for 1000 ms (the "
                                      "plane may be overloaded)");
}

TEST_F(HttpClient, BadUrlsAndHeadersAreRefusedBeforeSending) {
  auto bad_scheme = Client::Create(Options("ftp://127.0.0.1:1", ""));
  ASSERT_FALSE(bad_scheme.ok());
  EXPECT_EQ(bad_scheme.status().message(), "URL 'ftp://127.0.0.1:1': expected https://HOST:PORT");
  auto creds = Client::Create(Options("https://user:pw@127.0.0.1:1 x", ""));
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().message().find("pw"), std::string::npos) << creds.status().message();

  if (server_ == nullptr || server_->port() == 0) GTEST_SKIP() << "no server";
  Client client = MakeClient();
  auto injected = client.Send(Req("GET", "/echo", {{"X-A", "v\r\nAuthorization: Bearer x"}}));
  ASSERT_FALSE(injected.ok());
  EXPECT_EQ(injected.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(injected.status().message().find("Bearer"), std::string::npos);
  auto relative = client.Send(Req("GET", "echo"));
  ASSERT_FALSE(relative.ok());
  EXPECT_EQ(relative.status().code(), StatusCode::kInvalidArgument);
}

TEST(UrlEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(UrlEncode("a b/c?d=e&f%"), "a%20b%2Fc%3Fd%3De%26f%25");
  EXPECT_EQ(UrlEncode("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(UrlEncode(""), "");
}

}  // namespace
}  // namespace cce::http
