// jupyter_status_test: the /api/status parser (known answers, every field's
// errors) and the client against a small fake HTTP server on a Unix socket
// (what it sends, the token refused, timeouts, the body cap). The real
// Jupyter server is exercised in local_backend_test.
#include "explore/jupyter_status.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "base/fd.h"

namespace cce::explore {
namespace {

TEST(ParseIso8601, KnownAnswers) {
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2026-12-06T12:00:00.123456Z"), 1796558400);
  EXPECT_EQ(*ParseIso8601("2026-12-06T12:00:00Z"), 1796558400);
  EXPECT_EQ(*ParseIso8601("2026-12-06T13:30:00+01:30"), 1796558400);
  EXPECT_EQ(*ParseIso8601("2026-12-06T10:00:00-02:00"), 1796558400);
  EXPECT_EQ(*ParseIso8601("2000-02-29T00:00:00Z"), 951782400);
  EXPECT_EQ(*ParseIso8601("1969-12-31T23:59:59Z"), -1);
}

TEST(ParseIso8601, RefusesMalformed) {
  for (const char* bad :
       {"", "2026-12-06", "2026-12-06T12:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-12-06T24:00:00Z", "2026-12-06T12:60:00Z", "2026-12-06T12:00:60Z",
        "2026-12-06 12:00:00Z", "2026-12-06T12:00:00.Z", "2026-12-06T12:00:00.1234567890Z",
        "2026-12-06T12:00:00+0100", "2026-12-06T12:00:00Zjunk", "+2026-12-06T12:00:00Z",
        "2026-12-06T12:00:00+24:00"}) {
    EXPECT_FALSE(ParseIso8601(bad).ok()) << bad;
  }
}

TEST(ParseJupyterStatus, ParsesJupyterAnswer) {
  // What notebook 6.4's APIStatusHandler writes (json.dumps, sort_keys).
  auto a = ParseJupyterStatus(
      R"({"connections": 2, "kernels": 1, "last_activity": "2026-12-06T12:00:00.123456Z", )"
      R"("started": "2026-12-06T11:00:00.000001Z", "future_field": [1]})");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->connections, 2);
  EXPECT_EQ(a->kernels, 1);
  EXPECT_EQ(a->last_activity, 1796558400);
  EXPECT_EQ(a->started, 1796558400 - 3600);
}

TEST(ParseJupyterStatus, ErrorsNameTheField) {
  struct Case {
    std::string json;
    const char* expect;
  };
  const char* ok_times =
      R"("last_activity": "2026-12-06T12:00:00Z", "started": "2026-12-06T12:00:00Z")";
  std::string t(ok_times);
  const Case cases[] = {
      {"not json", "not JSON"},
      {"[1]", "expected a JSON object"},
      {R"({"connections": 0, "kernels": 0, "started": "2026-12-06T12:00:00Z"})",
       "last_activity: missing"},
      {R"({"connections": 0, "kernels": 0, "last_activity": 5, "started": "2026-12-06T12:00:00Z"})",
       "last_activity: expected an ISO-8601"},
      {R"({"connections": 0, "kernels": 0, "last_activity": "2026-12-06T12:00:00", "started": "2026-12-06T12:00:00Z"})",
       "last_activity: "},
      {R"({"connections": 0, "kernels": 0, "last_activity": "2026-12-06T12:00:00Z", "started": "x"})",
       "started: "},
      {("{\"kernels\": 0, " + t + "}"), "connections: missing"},
      {("{\"connections\": -1, \"kernels\": 0, " + t + "}"), "connections: must not be negative"},
      {("{\"connections\": 1.5, \"kernels\": 0, " + t + "}"), "connections: expected an integer"},
      {("{\"connections\": 0, \"kernels\": 99999999999, " + t + "}"), "kernels: out of range"},
      {("{\"connections\": 0, \"kernels\": \"1\", " + t + "}"), "kernels: expected an integer"},
  };
  for (const Case& c : cases) {
    auto a = ParseJupyterStatus(c.json);
    ASSERT_FALSE(a.ok()) << c.json;
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(c.expect), std::string::npos)
        << c.json << " -> " << a.status().message();
  }
  EXPECT_FALSE(ParseJupyterStatus(std::string(kMaxJupyterStatusBytes + 1, ' ')).ok());
}

// One-connection-at-a-time HTTP server on a Unix socket: records each
// request's head and answers with `response` (or nothing, for timeouts).
class FakeJupyter {
 public:
  explicit FakeJupyter(std::string response) : response_(std::move(response)) {
    char tmpl[] = "/tmp/jupyter_status_test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_.get(), 4), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeJupyter() {
    stop_ = true;
    shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  Upstream upstream() const { return Upstream{path_, "", 0}; }
  std::string last_request() {
    std::lock_guard<std::mutex> l(mu_);
    return request_;
  }
  void set_silent(bool silent) { silent_ = silent; }

 private:
  void Serve() {
    while (!stop_) {
      UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) return;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        request_ = head;
      }
      if (silent_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(6500));
        continue;
      }
      (void)WriteFull(c.get(),
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(response_.data()),
                                               response_.size()));
    }
  }

  std::string response_;
  std::string dir_;
  std::string path_;
  UniqueFd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::mutex mu_;
  std::string request_;
};

std::string HttpAnswer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

crypto::SecretBytes Token(std::string_view t) {
  return crypto::SecretBytes::CopyOf(crypto::AsBytes(t));
}

TEST(FetchJupyterStatus, SendsTheTokenAndParses) {
  FakeJupyter server(HttpAnswer(
      200, R"({"connections": 1, "kernels": 3, "last_activity": "2026-12-06T12:00:00.5Z", )"
           R"("started": "2026-12-06T12:00:00Z"})"));
  auto a = FetchJupyterStatus(server.upstream(), "/explore/xs-0123456789abcdef/",
                              Token("s3cret-token-value"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->kernels, 3);
  EXPECT_EQ(a->connections, 1);
  std::string req = server.last_request();
  EXPECT_EQ(req.rfind("GET /explore/xs-0123456789abcdef/api/status HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nAuthorization: token s3cret-token-value\r\n"), std::string::npos) << req;
}

TEST(FetchJupyterStatus, RefusedTokenIsPermissionDenied) {
  FakeJupyter server(HttpAnswer(403, R"({"message": "Forbidden"})"));
  auto a = FetchJupyterStatus(server.upstream(), "/explore/x/", Token("wrong-token-value-1"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kPermissionDenied) << a.status().ToString();
  // The token never shows up in a message.
  EXPECT_EQ(a.status().message().find("wrong-token"), std::string::npos);
}

TEST(FetchJupyterStatus, OtherStatusesAndBodies) {
  {
    FakeJupyter server(HttpAnswer(500, "oops"));
    auto a = FetchJupyterStatus(server.upstream(), "/x/", Token("tttttttttttttttt"));
    EXPECT_EQ(a.status().code(), StatusCode::kInternal) << a.status().ToString();
  }
  {
    FakeJupyter server(HttpAnswer(200, R"({"kernels": 1})"));
    auto a = FetchJupyterStatus(server.upstream(), "/x/", Token("tttttttttttttttt"));
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument) << a.status().ToString();
  }
  {
    FakeJupyter server(HttpAnswer(200, std::string(kMaxJupyterStatusBytes + 10, ' ')));
    auto a = FetchJupyterStatus(server.upstream(), "/x/", Token("tttttttttttttttt"));
    EXPECT_EQ(a.status().code(), StatusCode::kDataLoss) << a.status().ToString();
  }
  {
    // A server that never answers: the 5 s timeout.
    FakeJupyter server("");
    server.set_silent(true);
    auto start = std::chrono::steady_clock::now();
    auto a = FetchJupyterStatus(server.upstream(), "/x/", Token("tttttttttttttttt"));
    EXPECT_EQ(a.status().code(), StatusCode::kUnavailable) << a.status().ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
  }
}

TEST(FetchJupyterStatus, RefusesBadInputs) {
  Upstream nowhere{"/nonexistent/dir/s.sock", "", 0};
  EXPECT_EQ(FetchJupyterStatus(nowhere, "/x/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(FetchJupyterStatus(nowhere, "x/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FetchJupyterStatus(nowhere, "/a/../b/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kInvalidArgument);
  // Header injection through the token is refused before anything is sent.
  EXPECT_EQ(FetchJupyterStatus(nowhere, "/x/", Token("abc\r\nX-Evil: 1")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FetchJupyterStatus(nowhere, "/x/", Token("")).status().code(),
            StatusCode::kInvalidArgument);
  Upstream both{"/s.sock", "host", 80};
  EXPECT_EQ(FetchJupyterStatus(both, "/x/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kInvalidArgument);
  Upstream bad_host{"", "evil host/", 80};
  EXPECT_EQ(FetchJupyterStatus(bad_host, "/x/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kInvalidArgument);
  Upstream bad_port{"", "jupyter.svc", 0};
  EXPECT_EQ(FetchJupyterStatus(bad_port, "/x/", Token("tttttttttttttttt")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ProbeJupyter, ReturnsTheStatusWithoutAToken) {
  FakeJupyter server(HttpAnswer(200, R"({"version": "6.4.12"})"));
  auto code = ProbeJupyter(server.upstream(), "/explore/xs-0123456789abcdef/");
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 200);
  std::string req = server.last_request();
  EXPECT_EQ(req.rfind("GET /explore/xs-0123456789abcdef/api HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_EQ(req.find("Authorization"), std::string::npos);
}

}  // namespace
}  // namespace cce::explore
