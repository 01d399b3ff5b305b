// The Explore sessions service (services.h) called directly, over a whole
// plane's store and services, with a fake SessionBackend that records what
// it is asked: who may start a session over which samples, the login code
// and cookie, the proxy's target, the session-scoped SDK token (every route
// it may not use refuses it), the culler and recovery after a restart.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "plane/plane_testing.h"
#include "plane/routes.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/store_testing.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::ExploreState;
using testing::MessageContains;
using testing::Must;

// Records every call; sessions it started are running until Gone().
class FakeBackend : public explore::SessionBackend {
 public:
  struct Started {
    std::string id;
    std::vector<explore::SampleMount> samples;
    std::string base_url;
    std::string home_dir;
    std::string jupyter_token;
    std::string sdk_config;
  };
  std::string_view name() const override { return "fake"; }
  StatusOr<explore::Upstream> Start(const explore::SessionSpec& spec) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!start_error.ok()) return start_error;
    started.push_back(
        {spec.id, spec.samples, spec.base_url, spec.home_dir,
         std::string(spec.jupyter_token.span().begin(), spec.jupyter_token.span().end()),
         std::string(spec.sdk_config_json.span().begin(), spec.sdk_config_json.span().end())});
    explore::Upstream u;
    u.unix_socket = "/run/fake/" + spec.id + ".sock";
    running[spec.id] = u;
    return u;
  }
  StatusOr<explore::Observed> Observe(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    explore::Observed o;
    auto it = running.find(id);
    if (it == running.end()) {
      o.state = explore::SessionState::kGone;
      o.detail = "container not found";
      return o;
    }
    o.state = explore::SessionState::kRunning;
    o.upstream = it->second;
    return o;
  }
  Status Stop(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    stopped.push_back(id);
    running.erase(id);
    return Status::Ok();
  }
  void Gone(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    running.erase(id);
  }

  std::mutex mu_;
  Status start_error;
  std::vector<Started> started;
  std::vector<std::string> stopped;
  std::map<std::string, explore::Upstream> running;
};

// A store whose audit appends, and the session creation that appends its
// own record, can be made to fail.
class AuditFailingStore final : public store::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_audit{false};
  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::AppendAudit(r);
  }
  StatusOr<store::ExploreSession> CreateExploreSession(const store::ExploreSession& x,
                                                       int64_t max_live,
                                                       const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::CreateExploreSession(x, max_live, r);
  }
};

class ExploreSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_shared<FakeBackend>();
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .wrap_store =
                          [this](store::Store& inner) {
                            auto failing = std::make_unique<AuditFailingStore>(inner);
                            db_ = failing.get();
                            return std::unique_ptr<store::Store>(std::move(failing));
                          },
                      .adjust =
                          [this](ServiceDeps& d, const std::string& tmp) {
                            d.samples_dir = tmp + "/samples";
                            d.explore.backend = backend_;
                            d.explore.backend_name = "fake";
                            d.explore.plane_url = "https://plane.test:8443";
                            d.explore.ca_pem = "-----BEGIN CERTIFICATE-----\n";
                            d.explore.homes_dir = tmp + "/homes";
                            d.explore.jupyter_activity =
                                [this](const explore::Upstream&, const std::string&,
                                       const crypto::SecretBytes&) -> StatusOr<int64_t> {
                              return jupyter_last_activity_.load();
                            };
                          },
                  }),
                  "world");
    s_ = &world_->services();
    pat_ = AddUser("pat", store::Role::kProvider);
    carol_ = AddUser("carol", store::Role::kConsumer);
    dave_ = AddUser("dave", store::Role::kConsumer);
    claims_ = AddDataset("claims", /*sample=*/true);
    labs_ = AddDataset("labs", /*sample=*/true);
    bare_ = AddDataset("bare", /*sample=*/false);
    Must(s_->rentals.Rent(carol_, {"claims", 1}), "rent claims");
  }

  Caller AddUser(const std::string& name, store::Role role) {
    return Must(world_->AddUser(name, role), "user");
  }
  store::Dataset AddDataset(const std::string& name, bool sample) {
    store::Dataset d;
    d.name = name;
    d.owner_id = pat_.user.id;
    d.location = "file:///nowhere/" + name;
    d.price = "1";
    d.max_days = 30;
    d.key_id = "00112233445566778899aabbccddeeff";
    d.wrapped_key = {1, 2, 3};
    d.manifest_dataset_id = "0123456789abcdef0123456789abcdef";
    d.manifest_version = 1;
    d.created_at = clock_.NowUnix();
    store::Dataset out = Must(db_->CreateDataset(d, world_->Rec("dataset.register", name)), name);
    if (sample) {
      store::Sample sm;
      sm.dataset_id = out.id;
      sm.version = 1;
      sm.file_count = 1;
      sm.total_bytes = 10;
      sm.published_by = pat_.user.id;
      sm.published_at = clock_.NowUnix();
      Must(db_->RecordSample(sm, world_->Rec("dataset.sample.publish", name)), "sample");
    }
    return out;
  }
  int64_t AuditCount() { return Must(db_->GetAuditHead(), "head").seq; }
  int64_t Denials(const std::string& action) { return Must(world_->Denials(action), "denials"); }

  api::ExploreSession Start(const Caller& c,
                            std::optional<std::vector<std::string>> datasets = std::nullopt) {
    api::StartExploreRequest in;
    in.datasets = std::move(datasets);
    return Must(s_->explore.Start(c, in), "start");
  }
  // The SDK token the backend was handed for session `id`.
  std::string SdkToken(const std::string& id) {
    for (const auto& st : backend_->started) {
      if (st.id == id) return json::parse(st.sdk_config)["token"].get<std::string>();
    }
    ADD_FAILURE() << "no start of " << id;
    return "";
  }
  // A browser cookie for session `id` through a fresh login link.
  std::string LoginCookie(const Caller& c, const std::string& id) {
    api::ExploreLogin link = Must(s_->explore.NewLoginUrl(c, id), "login url");
    const std::string code = link.url.substr(link.url.find("code=") + 5);
    auto in = Must(s_->explore.Login(id, code, "10.0.0.9"), "login");
    const std::string& sc = in.set_cookie;
    return sc.substr(0, sc.find(';'));  // "cce_explore=<value>"
  }

  TestClock clock_;
  std::shared_ptr<FakeBackend> backend_;
  std::atomic<int64_t> jupyter_last_activity_{0};
  std::unique_ptr<testing::ServiceWorld> world_;
  AuditFailingStore* db_ = nullptr;
  Services* s_ = nullptr;
  Caller pat_, carol_, dave_;
  store::Dataset claims_, labs_, bare_;
};

TEST_F(ExploreSessionsTest, StartsOverTheRentedSamplesAndStoresNoSecret) {
  const int64_t audit_before = AuditCount();
  api::ExploreSession x = Start(carol_);
  EXPECT_TRUE(explore::ValidSessionId(x.id)) << x.id;
  EXPECT_EQ(x.state, "RUNNING");
  EXPECT_EQ(x.owner, "carol");
  ASSERT_EQ(x.datasets.size(), 1u) << "only the rented dataset by default";
  EXPECT_EQ(x.datasets[0].name, "claims");
  EXPECT_EQ(x.datasets[0].sample_version, 1);
  EXPECT_EQ(x.url, "https://plane.test:8443/explore/" + x.id + "/");
  EXPECT_EQ(x.idle_timeout_seconds, 30 * 60);

  ASSERT_EQ(backend_->started.size(), 1u);
  const auto& spec = backend_->started[0];
  EXPECT_EQ(spec.base_url, "/explore/" + x.id + "/");
  ASSERT_EQ(spec.samples.size(), 1u);
  EXPECT_EQ(spec.samples[0].mount_path, "/data/claims");
  EXPECT_NE(spec.samples[0].host_dir.find("/samples/"), std::string::npos)
      << spec.samples[0].host_dir;
  EXPECT_EQ(spec.home_dir, world_->tmp() + "/homes/" + std::to_string(carol_.user.id));
  EXPECT_EQ(spec.jupyter_token.size(), 64u);
  // The Jupyter token is derived: the same after a "restart" (asked again).
  auto again = Must(s_->explore.JupyterToken(x.id), "token");
  EXPECT_EQ(std::string(again.span().begin(), again.span().end()), spec.jupyter_token);
  json config = json::parse(spec.sdk_config);
  EXPECT_EQ(config["plane_url"], "https://plane.test:8443");
  EXPECT_EQ(config["session"], x.id);
  EXPECT_EQ(config["ca_pem"], "-----BEGIN CERTIFICATE-----\n");
  const std::string token = config["token"];
  EXPECT_EQ(token.rfind("cxs_", 0), 0u);

  store::ExploreSession row = Must(db_->GetExploreSession(x.id), "row");
  EXPECT_EQ(row.sdk_token_hash, crypto::Sha256(crypto::AsBytes(token)));
  EXPECT_EQ(row.upstream_json.find("/run/fake/" + x.id + ".sock") != std::string::npos, true);
  // No secret in the audit log.
  store::AuditFilter f;
  f.after_seq = audit_before;
  for (const auto& e : Must(db_->ListAudit(f), "audit")) {
    EXPECT_EQ(e.record.details_json.find(token), std::string::npos) << e.record.action;
    EXPECT_EQ(e.record.details_json.find(spec.jupyter_token), std::string::npos);
  }
  auto starts =
      Must(db_->ListAudit({.after_seq = audit_before, .limit = 100, .object = "explore:" + x.id}),
           "audit");
  ASSERT_FALSE(starts.empty());
  EXPECT_EQ(starts[0].record.action, "explore.start");
  EXPECT_EQ(starts[0].record.actor, "user:carol");
}

TEST_F(ExploreSessionsTest, AConsumerWithoutARentalIsRefusedNamingTheDataset) {
  api::StartExploreRequest none;
  auto r = s_->explore.Start(dave_, none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageContains(r.status(), "rent no dataset")) << r.status().message();
  api::StartExploreRequest named;
  named.datasets = std::vector<std::string>{"claims"};
  const int64_t denied = Denials("explore.start");
  r = s_->explore.Start(dave_, named);
  ASSERT_FALSE(r.ok()) << "a consumer without a rental got a session";
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(r.status(), "claims")) << r.status().message();
  EXPECT_EQ(Denials("explore.start"), denied + 1) << "the refusal was not audited";
  // carol rents claims but not labs.
  named.datasets = std::vector<std::string>{"claims", "labs"};
  r = s_->explore.Start(carol_, named);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(MessageContains(r.status(), "labs")) << r.status().message();
  EXPECT_TRUE(backend_->started.empty());
  // Other roles never.
  EXPECT_EQ(s_->explore.Start(pat_, none).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(ExploreSessionsTest, ADatasetWithoutASampleIsRefusedNamingIt) {
  Must(s_->rentals.Rent(carol_, {"bare", 1}), "rent bare");
  api::StartExploreRequest in;
  auto r = s_->explore.Start(carol_, in);  // default: claims and bare
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageContains(r.status(), "bare")) << r.status().message();
  EXPECT_TRUE(MessageContains(r.status(), "no published sample")) << r.status().message();
  EXPECT_TRUE(backend_->started.empty());
  in.datasets = std::vector<std::string>{"claims"};
  EXPECT_TRUE(s_->explore.Start(carol_, in).ok());
}

TEST_F(ExploreSessionsTest, AtMostMaxSessionsLivePerConsumer) {
  api::ExploreSession a = Start(carol_);
  Start(carol_);
  api::StartExploreRequest in;
  auto third = s_->explore.Start(carol_, in);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(MessageContains(third.status(), "max_sessions_per_user")) << third.status().message();
  EXPECT_EQ(backend_->started.size(), 2u);
  Must(s_->explore.Stop(carol_, a.id), "stop");
  EXPECT_TRUE(s_->explore.Start(carol_, in).ok()) << "a stopped session frees its slot";
}

TEST_F(ExploreSessionsTest, IdleTimeoutIsCappedWithTheLimitNamed) {
  api::StartExploreRequest in;
  in.idle_timeout_seconds = 8 * 3600 + 1;
  auto r = s_->explore.Start(carol_, in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(r.status(), "28800")) << r.status().message();
  in.idle_timeout_seconds = 10;
  EXPECT_EQ(s_->explore.Start(carol_, in).status().code(), StatusCode::kInvalidArgument);
  in.idle_timeout_seconds = 8 * 3600;
  EXPECT_EQ(Must(s_->explore.Start(carol_, in), "start").idle_timeout_seconds, 8 * 3600);
}

TEST_F(ExploreSessionsTest, LoginCodeIsSingleUseAndExpires) {
  api::ExploreSession x = Start(carol_);
  api::ExploreLogin link = Must(s_->explore.NewLoginUrl(carol_, x.id), "url");
  const std::string prefix = "https://plane.test:8443/explore/" + x.id + "/login?code=";
  ASSERT_EQ(link.url.rfind(prefix, 0), 0u) << link.url;
  const std::string code = link.url.substr(prefix.size());
  EXPECT_EQ(link.expires_at, clock_.NowUnix() + 120);
  auto in = Must(s_->explore.Login(x.id, code, "10.0.0.9"), "login");
  EXPECT_EQ(in.location, "/explore/" + x.id + "/tree");
  EXPECT_NE(in.set_cookie.find("; Path=/explore/" + x.id + "/; HttpOnly; Secure; SameSite=Strict"),
            std::string::npos)
      << in.set_cookie;
  auto twice = s_->explore.Login(x.id, code, "10.0.0.9");
  ASSERT_FALSE(twice.ok()) << "a login code worked twice";
  EXPECT_EQ(twice.status().code(), StatusCode::kPermissionDenied);

  link = Must(s_->explore.NewLoginUrl(carol_, x.id), "url");
  clock_.offset += 121;
  auto late = s_->explore.Login(x.id, link.url.substr(prefix.size()), "10.0.0.9");
  ASSERT_FALSE(late.ok()) << "an expired login code worked";
  EXPECT_EQ(late.status().code(), StatusCode::kPermissionDenied);
  // Another session's code does not open this one.
  api::ExploreSession y = Start(carol_);
  link = Must(s_->explore.NewLoginUrl(carol_, y.id), "url");
  const std::string y_code = link.url.substr(link.url.find("code=") + 5);
  EXPECT_FALSE(s_->explore.Login(x.id, y_code, "10.0.0.9").ok());
  EXPECT_GE(Denials("explore.login"), 3);
}

TEST_F(ExploreSessionsTest, OnlyTheOwnersLoginForThisSessionReachesItsServer) {
  api::ExploreSession x = Start(carol_);
  api::ExploreSession y = Start(carol_);
  const std::string cookie_x = LoginCookie(carol_, x.id);
  const std::string cookie_y = LoginCookie(carol_, y.id);

  auto t = Must(s_->explore.Target(x.id, "a=b; " + cookie_x, "", "10.0.0.9"), "target");
  EXPECT_EQ(t.upstream.unix_socket, "/run/fake/" + x.id + ".sock");
  EXPECT_EQ(t.jupyter_authorization, "token " + backend_->started[0].jupyter_token);
  // Session y's cookie on session x.
  auto other = s_->explore.Target(x.id, cookie_y, "", "10.0.0.9");
  ASSERT_FALSE(other.ok()) << "a cookie for another session was accepted";
  EXPECT_EQ(other.status().code(), StatusCode::kPermissionDenied);
  // No login at all.
  EXPECT_EQ(s_->explore.Target(x.id, "", "", "10.0.0.9").status().code(),
            StatusCode::kUnauthenticated);
  // The owner's API token works; another consumer's does not.
  EXPECT_TRUE(s_->explore.Target(x.id, "", "Bearer cce_carol", "10.0.0.9").ok());
  auto dave = s_->explore.Target(x.id, "", "Bearer cce_dave", "10.0.0.9");
  ASSERT_FALSE(dave.ok()) << "another consumer reached the session";
  EXPECT_EQ(dave.status().code(), StatusCode::kPermissionDenied);
  // The SDK token is not a way into the browser side.
  EXPECT_FALSE(s_->explore.Target(x.id, "", "Bearer " + SdkToken(x.id), "10.0.0.9").ok());
  // Another consumer cannot see, stop or log in to it.
  EXPECT_EQ(s_->explore.Get(dave_, x.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s_->explore.Stop(dave_, x.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s_->explore.NewLoginUrl(dave_, x.id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Must(s_->explore.List(dave_), "list").sessions.empty());
  EXPECT_EQ(Must(s_->explore.List(carol_), "list").sessions.size(), 2u);
}

TEST_F(ExploreSessionsTest, ProxyTargetOnlyWhileRunning) {
  api::ExploreSession x = Start(carol_);
  const std::string cookie = LoginCookie(carol_, x.id);
  ASSERT_TRUE(s_->explore.Target(x.id, cookie, "", "10.0.0.9").ok());
  Must(s_->explore.Stop(carol_, x.id), "stop");
  EXPECT_EQ(backend_->stopped, std::vector<std::string>{x.id});
  auto after = s_->explore.Target(x.id, cookie, "", "10.0.0.9");
  ASSERT_FALSE(after.ok()) << "a stopped session was proxied";
  auto bearer = s_->explore.Target(x.id, "", "Bearer cce_carol", "10.0.0.9");
  ASSERT_FALSE(bearer.ok());
  EXPECT_EQ(bearer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s_->explore.NewLoginUrl(carol_, x.id).status().code(), StatusCode::kFailedPrecondition);
  api::ExploreSession stopped = Must(s_->explore.Get(carol_, x.id), "get");
  EXPECT_EQ(stopped.state, "STOPPED");
  EXPECT_EQ(stopped.stop_reason, "stopped by carol");
}

// Every /api/v1 route: an SDK token passes admit only on the routes open to
// session tokens; everything else is 403 naming the token, audited.
TEST_F(ExploreSessionsTest, SessionTokenMayUseOnlyItsRoutes) {
  api::ExploreSession x = Start(carol_);
  const std::string token = SdkToken(x.id);
  auto caller = Must(s_->users.Authenticate("Bearer " + token, "10.0.0.9", "GET /"), "authn");
  EXPECT_EQ(caller.explore_session, x.id);
  EXPECT_EQ(caller.user.id, carol_.user.id);
  EXPECT_EQ(caller.actor(), "user:carol@" + x.id);

  const std::string job = "(job-[0-9a-f]{16})";
  const std::set<std::pair<std::string, std::string>> allowed = {
      {"GET", "/api/v1/datasets"},
      {"GET", "/api/v1/datasets/([a-z0-9-]+)"},
      {"GET", "/api/v1/rentals"},
      {"POST", "/api/v1/jobs"},
      {"POST", "/api/v1/jobs/script"},
      {"GET", "/api/v1/jobs"},
      {"GET", "/api/v1/jobs/" + job},
      {"GET", "/api/v1/jobs/" + job + "/output"},
      {"POST", "/api/v1/jobs/" + job + "/cancel"},
      {"GET", "/api/v1/explore/bases"},
  };
  Metrics metrics;
  auto routes = PlaneRoutes(*s_, metrics, nullptr, 1 << 20);
  int refused = 0;
  int admitted = 0;
  for (const auto& r : routes) {
    const bool user_route =
        (r.pattern.rfind("/api/v1/", 0) == 0 && r.pattern.rfind("/api/v1/agent/", 0) != 0) ||
        r.pattern == "/metrics";
    if (!user_route || !r.admit) continue;
    http::Request req;
    req.method = r.method;
    req.path = r.pattern;
    req.remote_addr = "10.0.0.9";
    req.headers.push_back({"Authorization", "Bearer " + token});
    auto answer = r.admit(req);
    const bool is_sample_read = r.method == "GET" && r.pattern.find("/sample") != std::string::npos;
    const bool open = allowed.count({r.method, r.pattern}) != 0 || is_sample_read;
    const std::string route = r.method + " " + r.pattern;
    if (open) {
      EXPECT_FALSE(answer.has_value() && answer->status == 403 &&
                   answer->body.find("Explore session token") != std::string::npos)
          << route << " should be open to a session token";
      ++admitted;
    } else {
      ASSERT_TRUE(answer.has_value()) << route << " admitted a session token";
      EXPECT_EQ(answer->status, 403) << route << ": " << answer->body;
      EXPECT_NE(answer->body.find("an Explore session token cannot"), std::string::npos)
          << route << ": " << answer->body;
      ++refused;
    }
  }
  EXPECT_GE(admitted, 10);
  EXPECT_GE(refused, 15) << "routes were not checked";
  EXPECT_GE(Denials("authz"), refused);
  // Not even its own session's management.
  api::StartExploreRequest in;
  EXPECT_EQ(s_->explore.Start(caller, in).status().code(), StatusCode::kPermissionDenied);
}

// The plane's proxy route for /explore/<id>/...: admit authenticates with
// the service and hands the server a target that strips the plane's
// credentials and adds the Jupyter token.
TEST_F(ExploreSessionsTest, ProxyRouteRewritesCredentials) {
  api::ExploreSession x = Start(carol_);
  const std::string cookie = LoginCookie(carol_, x.id);
  Metrics metrics;
  auto routes = PlaneRoutes(*s_, metrics, nullptr, 1 << 20);
  const http::Route* proxy = nullptr;
  const http::Route* login = nullptr;
  for (const auto& r : routes) {
    if (r.proxy && r.pattern.rfind("/explore/", 0) == 0) proxy = &r;
    if (r.pattern == "/explore/(xs-[0-9a-f]{16})/login" && login == nullptr) login = &r;
  }
  ASSERT_NE(proxy, nullptr) << "no proxy route for /explore/<id>/";
  ASSERT_NE(login, nullptr);
  EXPECT_LT(login, proxy) << "the login route must match before the proxy";
  EXPECT_EQ(proxy->method, "*");
  http::Request req;
  req.method = "GET";
  req.path = "/explore/" + x.id + "/api/contents";
  req.captures = {x.id};
  req.remote_addr = "10.0.0.9";
  auto refused = proxy->admit(req);
  ASSERT_TRUE(refused.has_value()) << "proxied without a login";
  EXPECT_EQ(refused->status, 401);
  req.headers.push_back({"Cookie", "_xsrf=abc; " + cookie});
  EXPECT_FALSE(proxy->admit(req).has_value());
  auto target = Must(proxy->proxy(req), "target");
  EXPECT_EQ(target.unix_socket, "/run/fake/" + x.id + ".sock");
  ASSERT_EQ(target.set_headers.size(), 1u);
  EXPECT_EQ(target.set_headers[0].name, "Authorization");
  EXPECT_EQ(target.set_headers[0].value, "token " + backend_->started[0].jupyter_token);
  EXPECT_EQ(target.remove_cookies, std::vector<std::string>{"cce_explore"});
  EXPECT_EQ(target.remove_headers, std::vector<std::string>{"Authorization"});
  // Another consumer's API token: 403 before anything goes upstream.
  http::Request other = req;
  other.headers = {{"Authorization", "Bearer cce_dave"}};
  other.context.reset();
  auto denied = proxy->admit(other);
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->status, 403);
}

TEST_F(ExploreSessionsTest, SessionTokenDiesWithTheSession) {
  api::ExploreSession x = Start(carol_);
  const std::string token = SdkToken(x.id);
  ASSERT_TRUE(s_->users.Authenticate("Bearer " + token, "10.0.0.9", "GET /").ok());
  Must(s_->explore.Stop(carol_, x.id), "stop");
  auto dead = s_->users.Authenticate("Bearer " + token, "10.0.0.9", "GET /");
  ASSERT_FALSE(dead.ok()) << "the SDK token outlived its session";
  EXPECT_EQ(dead.status().code(), StatusCode::kUnauthenticated);
  // A token of the right shape that no session has.
  EXPECT_EQ(s_->users.Authenticate("Bearer cxs_" + std::string(64, 'a'), "10.0.0.9", "GET /")
                .status()
                .code(),
            StatusCode::kUnauthenticated);
}

TEST_F(ExploreSessionsTest, CullerStopsIdleSessionsAndKeepsActiveOnes) {
  api::StartExploreRequest in;
  in.idle_timeout_seconds = 600;
  api::ExploreSession idle = Must(s_->explore.Start(carol_, in), "idle");
  api::ExploreSession proxied = Must(s_->explore.Start(carol_, in), "proxied");
  const std::string cookie = LoginCookie(carol_, proxied.id);
  jupyter_last_activity_ = clock_.NowUnix();
  clock_.offset += 500;
  ASSERT_TRUE(s_->explore.Target(proxied.id, cookie, "", "10.0.0.9").ok());  // activity at +500
  clock_.offset += 200;  // +700: idle for 700 s > 600; proxied 200 s ago
  auto report = Must(s_->explore.CullOnce(), "cull");
  EXPECT_EQ(report.checked, 2);
  EXPECT_EQ(report.stopped, 1);
  api::ExploreSession a = Must(s_->explore.Get(carol_, idle.id), "get");
  EXPECT_EQ(a.state, "STOPPED");
  EXPECT_EQ(a.stop_reason, "idle for 11 min");
  EXPECT_EQ(Must(s_->explore.Get(carol_, proxied.id), "get").state, "RUNNING");
  EXPECT_EQ(backend_->stopped, std::vector<std::string>{idle.id});

  // Jupyter's own activity (a kernel busy, no proxied request) keeps it too.
  clock_.offset += 500;  // the proxy's last request is 700 s old
  jupyter_last_activity_ = clock_.NowUnix() - 10;
  EXPECT_EQ(Must(s_->explore.CullOnce(), "cull").stopped, 0);
  jupyter_last_activity_ = clock_.NowUnix() - 601;
  EXPECT_EQ(Must(s_->explore.CullOnce(), "cull").stopped, 1);
  EXPECT_EQ(Must(s_->explore.Get(carol_, proxied.id), "get").state, "STOPPED");
}

TEST_F(ExploreSessionsTest, CullerStopsASessionWhoseRentalEnded) {
  api::StartExploreRequest in;
  in.idle_timeout_seconds = 8 * 3600;
  api::ExploreSession x = Must(s_->explore.Start(carol_, in), "start");
  clock_.offset += 86400 + 1;  // the one-day rental is over
  jupyter_last_activity_ = clock_.NowUnix();
  EXPECT_EQ(Must(s_->explore.CullOnce(), "cull").stopped, 1);
  api::ExploreSession after = Must(s_->explore.Get(carol_, x.id), "get");
  EXPECT_EQ(after.state, "STOPPED");
  EXPECT_EQ(after.stop_reason, "rental of claims ended");
}

TEST_F(ExploreSessionsTest, GoneServersAreLostAndRestartKeepsRunningOnes) {
  api::ExploreSession kept = Start(carol_);
  api::ExploreSession gone = Start(carol_);
  backend_->Gone(gone.id);
  backend_->running[kept.id].unix_socket = "/run/fake/moved.sock";  // e.g. a new runtime dir
  auto report = Must(s_->explore.Recover(), "recover");
  EXPECT_EQ(report.checked, 2);
  EXPECT_EQ(report.lost, 1);
  api::ExploreSession lost = Must(s_->explore.Get(carol_, gone.id), "get");
  EXPECT_EQ(lost.state, "LOST");
  EXPECT_NE(lost.stop_reason.find("container not found"), std::string::npos) << lost.stop_reason;
  EXPECT_EQ(Must(s_->explore.Get(carol_, kept.id), "get").state, "RUNNING");
  auto t = Must(s_->explore.Target(kept.id, "", "Bearer cce_carol", "10.0.0.9"), "target");
  EXPECT_EQ(t.upstream.unix_socket, "/run/fake/moved.sock") << "upstream not refreshed";
  // The culler finds a server that went away while running.
  backend_->Gone(kept.id);
  EXPECT_EQ(Must(s_->explore.CullOnce(), "cull").lost, 1);
  EXPECT_EQ(Must(s_->explore.Get(carol_, kept.id), "get").state, "LOST");
}

TEST_F(ExploreSessionsTest, AStartWhoseAuditRecordCannotBeWrittenIsRefused) {
  db_->fail_audit = true;
  api::StartExploreRequest in;
  auto r = s_->explore.Start(carol_, in);
  db_->fail_audit = false;
  ASSERT_FALSE(r.ok()) << "a session started without its audit record";
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(backend_->started.empty());
  EXPECT_TRUE(Must(s_->explore.List(carol_), "list").sessions.empty());
}

TEST_F(ExploreSessionsTest, ABackendFailureIsRecordedAsFailed) {
  backend_->start_error = FailedPrecondition("runc is not installed");
  api::StartExploreRequest in;
  auto r = s_->explore.Start(carol_, in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageContains(r.status(), "runc is not installed")) << r.status().message();
  auto list = Must(s_->explore.List(carol_), "list");
  ASSERT_EQ(list.sessions.size(), 1u);
  EXPECT_EQ(list.sessions[0].state, "FAILED");
  EXPECT_TRUE(list.sessions[0].stop_reason.find("runc") != std::string::npos);
}

}  // namespace
}  // namespace cce::plane
