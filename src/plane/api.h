// Private to src/plane: the HTTP API's shared machinery. Api::Route wraps
// every handler: it authenticates the bearer token, checks the caller's role,
// turns Status and exceptions into JSON errors (the one place exceptions are
// caught), audits denials, and records metrics and an access log line. Each
// API area registers its routes from its own api_*.cc file.
#pragma once

#include <httplib.h>

#include <array>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "image/blob_store.h"
#include "ledger/ledger.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/plane.h"
#include "store/store.h"

namespace cce::plane {

class AttestationService;
class JobEngine;
class OutputStore;

using nlohmann::json;
using store::Role;

inline int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
    case StatusCode::kIo: return 500;
  }
  return 500;
}

inline std::string ErrorCodeName(StatusCode code) {
  std::string s(StatusCodeName(code));
  for (char& c : s) c = c == ' ' ? '_' : c;
  return s;
}

inline json ErrorBody(const std::string& code, const std::string& message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

// Prometheus text-format metrics: request counts and a latency histogram.
class Metrics {
 public:
  void Observe(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> l(mu_);
    ++requests_[route + "\",status=\"" + std::to_string(status)];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      if (seconds <= kBuckets[i]) ++buckets_[i];
    }
    ++count_;
    sum_ += seconds;
  }
  std::string Render() {
    std::lock_guard<std::mutex> l(mu_);
    std::string out =
        "# HELP cce_http_requests_total HTTP requests by route and status.\n"
        "# TYPE cce_http_requests_total counter\n";
    for (const auto& [k, v] : requests_) {
      out += "cce_http_requests_total{route=\"" + k + "\"} " + std::to_string(v) + "\n";
    }
    out +=
        "# HELP cce_http_request_duration_seconds Request latency.\n"
        "# TYPE cce_http_request_duration_seconds histogram\n";
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out += "cce_http_request_duration_seconds_bucket{le=\"" + std::to_string(kBuckets[i]) +
             "\"} " + std::to_string(buckets_[i]) + "\n";
    }
    out += "cce_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
    out += "cce_http_request_duration_seconds_sum " + std::to_string(sum_) + "\n";
    out += "cce_http_request_duration_seconds_count " + std::to_string(count_) + "\n";
    return out;
  }

 private:
  static constexpr std::array<double, 8> kBuckets = {0.001, 0.005, 0.01, 0.025,
                                                     0.05,  0.1,   0.5,  1.0};
  std::mutex mu_;  // guards every member below
  std::map<std::string, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct Caller {
  store::User user;
  std::string actor() const { return "user:" + user.name; }
};

// NOLINTNEXTLINE(bugprone-exception-escape): clang-tidy cannot see json's noexcept move.
struct ApiResult {
  ApiResult() = default;
  ApiResult(int s, json b) : status(s), body(std::move(b)) {}
  int status = 200;
  json body;
  // Set for a non-JSON response (an output download): sent instead of body.
  std::optional<std::string> raw;
  std::string content_type = "application/octet-stream";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Authentication failures per remote address in a sliding window. Past
// kMaxFailures the address's failures get 429 (a valid token still works: no
// lock-out of users behind the same address), and only the first refusal of
// a window is audited, so a flood cannot fill the audit log.
class AuthnLimiter {
 public:
  static constexpr int kMaxFailures = 20;
  static constexpr int64_t kWindowSeconds = 60;
  enum class Outcome { kDeny, kFirstRefusal, kRefusal };
  Outcome Failure(const std::string& addr, int64_t now) {
    std::lock_guard<std::mutex> l(mu_);
    if (entries_.size() > 100000) entries_.clear();  // bounded memory under a spray
    Entry& e = entries_[addr];
    if (now - e.window_start >= kWindowSeconds) e = Entry{now, 0};
    ++e.failures;
    if (e.failures <= kMaxFailures) return Outcome::kDeny;
    return e.failures == kMaxFailures + 1 ? Outcome::kFirstRefusal : Outcome::kRefusal;
  }

 private:
  struct Entry {
    int64_t window_start = 0;
    int failures = 0;
  };
  std::mutex mu_;  // guards entries_
  std::map<std::string, Entry> entries_;
};

class Api {
 public:
  Api(store::Store& db, Logger& log, const Clock& clock, MasterKey& master_key,
      ledger::EmbeddedLedger& ledger, const image::BlobStore& blobs)
      : db_(db),
        log_(log),
        clock_(clock),
        master_key_(master_key),
        ledger_(ledger),
        blobs_(blobs) {}

  void Register(httplib::Server& svr) {
    svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
    });
    Route(svr, "GET", "/api/v1/whoami", {}, [](const Caller& c, const httplib::Request&) {
      return StatusOr<ApiResult>(ApiResult{200, UserJson(c.user)});
    });
    Route(svr, "GET", "/api/v1/users", {Role::kOperator},
          [this](const Caller&, const httplib::Request&) -> StatusOr<ApiResult> {
            ASSIGN_OR_RETURN(auto users, db_.ListUsers());
            json arr = json::array();
            for (const auto& u : users) arr.push_back(UserJson(u));
            return ApiResult{200, {{"users", arr}}};
          });
    Route(svr, "POST", "/api/v1/users", {Role::kOperator},
          [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
            ASSIGN_OR_RETURN(json body, ParseBody(req));
            if (!body.is_object() || !body.contains("name") || !body["name"].is_string() ||
                !body.contains("role") || !body["role"].is_string()) {
              return InvalidArgument("body: expected {\"name\": string, \"role\": string}");
            }
            for (const auto& [k, v] : body.items()) {
              if (k != "name" && k != "role")
                return InvalidArgument("body." + k + ": unknown field");
            }
            ASSIGN_OR_RETURN(Role role, store::ParseRole(body["role"].get<std::string>()));
            ASSIGN_OR_RETURN(std::string token, NewApiToken());
            store::User u;
            u.name = body["name"].get<std::string>();
            u.role = role;
            u.token_hash = HashApiToken(token);
            u.created_at = clock_.NowUnix();
            store::AuditRecord a =
                AuditFor(c, "user.add", "user:" + u.name, store::AuditDecision::kAllow);
            ASSIGN_OR_RETURN(store::User created, db_.CreateUser(u, a));
            json out = UserJson(created);
            out["token"] = token;
            return ApiResult{201, out};
          });
    RegisterCatalog(svr);
    RegisterImages(svr);
    RegisterJobs(svr);
    RegisterAudit(svr);
    if (attestation_ != nullptr) RegisterKbs(svr);
  }

 private:
  JobEngine* engine_ = nullptr;     // woken on submit; set by Serve
  OutputStore* outputs_ = nullptr;  // sealed job outputs; set by Serve

 public:
  void SetJobEngine(JobEngine* engine) { engine_ = engine; }
  void SetOutputStore(OutputStore* outputs) { outputs_ = outputs; }
  void SetPlanePublicKey(crypto::Bytes key) { plane_public_key_ = std::move(key); }
  // The key broker (/kbs/v0/*) is served only once this is set.
  void SetKeyBroker(AttestationService* attestation, const crypto::Ed25519PrivateKey* signing_key,
                    int64_t nonce_ttl_seconds, int64_t session_ttl_seconds) {
    attestation_ = attestation;
    signing_key_ = signing_key;
    nonce_ttl_seconds_ = nonce_ttl_seconds;
    session_ttl_seconds_ = session_ttl_seconds;
  }

 private:
  void RegisterCatalog(httplib::Server& svr);  // api_catalog.cc
  void RegisterImages(httplib::Server& svr);   // api_images.cc
  void RegisterJobs(httplib::Server& svr);     // api_jobs.cc
  void RegisterAudit(httplib::Server& svr);    // api_audit.cc
  void RegisterKbs(httplib::Server& svr);      // api_kbs.cc
  // A key broker route: no bearer user; the handler authenticates the
  // credential or session itself. Failures count towards the per-address
  // limit (429 past it).
  using KbsHandler = std::function<StatusOr<ApiResult>(const httplib::Request&)>;
  void KbsRoute(httplib::Server& svr, const std::string& method, const std::string& pattern,
                const KbsHandler& handler);
  // One file per API area registers its routes (api_catalog.cc, ...).
  using Handler = std::function<StatusOr<ApiResult>(const Caller&, const httplib::Request&)>;

  std::string OwnerName(int64_t user_id) {
    auto u = db_.GetUser(user_id);
    return u.ok() ? u->name : "user#" + std::to_string(user_id);
  }

  static json RentalJson(const store::Rental& r, const std::string& dataset,
                         const std::string& consumer) {
    return {{"seq", r.seq},
            {"dataset", dataset},
            {"consumer", consumer},
            {"start", r.start},
            {"end", r.end},
            {"created_at", r.created_at},
            {"hash", crypto::ToHex(r.hash)},
            {"signature", crypto::ToHex(r.signature)}};
  }

  static json UserJson(const store::User& u) {
    return {{"id", u.id},
            {"name", u.name},
            {"role", std::string(store::RoleName(u.role))},
            {"created_at", u.created_at},
            {"disabled", u.disabled}};
  }

  store::AuditRecord AuditFor(const Caller& c, std::string action, std::string object,
                              store::AuditDecision d, std::string details = "{}") const {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = c.actor();
    a.action = std::move(action);
    a.object = std::move(object);
    a.decision = d;
    a.details_json = std::move(details);
    return a;
  }

  static StatusOr<json> ParseBody(const httplib::Request& req) {
    json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
    return j;
  }

  // Authenticates the bearer token; every failure is audited (deny).
  StatusOr<Caller> Authenticate(const httplib::Request& req) {
    std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    std::string why;
    if (h.rfind(kBearer, 0) != 0) {
      why = "missing bearer token";
    } else {
      auto user = db_.GetUserByTokenHash(HashApiToken(std::string_view(h).substr(kBearer.size())));
      if (user.ok() && !user->disabled) return Caller{*user};
      if (!user.ok() && user.status().code() != StatusCode::kNotFound) return user.status();
      why = user.ok() ? "user disabled" : "unknown token";
    }
    const int64_t now = clock_.NowUnix();
    AuthnLimiter::Outcome outcome = authn_limiter_.Failure(req.remote_addr, now);
    store::AuditRecord a;
    a.at = now;
    a.actor = "remote:" + req.remote_addr;
    a.object = req.method + " " + req.path;
    a.decision = store::AuditDecision::kDeny;
    if (outcome == AuthnLimiter::Outcome::kDeny) {
      a.action = "authn";
      a.details_json = json{{"reason", why}}.dump();
      (void)db_.AppendAudit(a);
      return Status(StatusCode::kPermissionDenied, "unauthenticated: " + why);
    }
    if (outcome == AuthnLimiter::Outcome::kFirstRefusal) {
      a.action = "authn.rate_limit";
      a.details_json = json{{"max_failures", AuthnLimiter::kMaxFailures},
                            {"window_seconds", AuthnLimiter::kWindowSeconds}}
                           .dump();
      (void)db_.AppendAudit(a);
    }
    return Status(StatusCode::kUnavailable, std::string(kRateLimited));
  }

  static constexpr std::string_view kRateLimited = "rate_limited";

  void Route(httplib::Server& svr, const std::string& method, const std::string& pattern,
             const std::vector<Role>& roles, const Handler& handler) {
    Serve(svr, method, pattern, [this, roles, handler](const httplib::Request& req) {
      return Handle(req, roles, handler);
    });
  }

  // Registers `produce` for method + pattern: times it, turns an exception
  // into a 500, writes the ApiResult, records metrics and a debug log line.
  void Serve(httplib::Server& svr, const std::string& method, const std::string& pattern,
             const std::function<ApiResult(const httplib::Request&)>& produce) {
    auto wrapped = [this, pattern, produce](const httplib::Request& req, httplib::Response& res) {
      auto start = std::chrono::steady_clock::now();
      ApiResult result;
      try {
        result = produce(req);
      } catch (const std::exception& e) {
        log_.Error("handler.exception", {{"route", pattern}, {"what", e.what()}});
        result = {500, ErrorBody("internal", "internal error")};
      }
      res.status = result.status;
      for (const auto& [k, v] : result.headers) res.set_header(k, v);
      if (result.raw) {
        res.set_content(*result.raw, result.content_type);
      } else {
        res.set_content(result.body.dump(-1, ' ', false, json::error_handler_t::replace),
                        "application/json");
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_.Observe(pattern, result.status, secs);
      log_.Log(Logger::Level::kDebug, "http.request",
               {{"method", req.method},
                {"path", req.path},
                {"status", std::to_string(res.status)},
                {"ms", std::to_string(secs * 1000)}});
    };
    if (method == "GET") svr.Get(pattern, wrapped);
    if (method == "POST") svr.Post(pattern, wrapped);
    if (method == "PUT") svr.Put(pattern, wrapped);
    if (method == "DELETE") svr.Delete(pattern, wrapped);
  }

  ApiResult Handle(const httplib::Request& req, const std::vector<Role>& roles,
                   const Handler& handler) {
    auto caller = Authenticate(req);
    if (!caller.ok() && caller.status().message() == kRateLimited) {
      ApiResult r{429, ErrorBody("rate_limited",
                                 "too many failed authentications from this address; retry in " +
                                     std::to_string(AuthnLimiter::kWindowSeconds) + " s")};
      r.headers.emplace_back("Retry-After", std::to_string(AuthnLimiter::kWindowSeconds));
      return r;
    }
    if (!caller.ok()) {
      bool unauth = caller.status().code() == StatusCode::kPermissionDenied;
      return {unauth ? 401 : HttpStatusFor(caller.status().code()),
              ErrorBody(unauth ? "unauthenticated" : ErrorCodeName(caller.status().code()),
                        caller.status().message())};
    }
    if (!roles.empty() && std::find(roles.begin(), roles.end(), caller->user.role) == roles.end()) {
      (void)db_.AppendAudit(AuditFor(*caller, "authz", req.method + " " + req.path,
                                     store::AuditDecision::kDeny,
                                     json{{"role", store::RoleName(caller->user.role)}}.dump()));
      return {403, ErrorBody("permission_denied",
                             "role '" + std::string(store::RoleName(caller->user.role)) +
                                 "' may not " + req.method + " " + req.path)};
    }
    auto r = handler(*caller, req);
    if (!r.ok()) {
      return {HttpStatusFor(r.status().code()),
              ErrorBody(ErrorCodeName(r.status().code()), r.status().message())};
    }
    return std::move(*r);
  }

  store::Store& db_;
  Logger& log_;
  const Clock& clock_;
  MasterKey& master_key_;
  ledger::EmbeddedLedger& ledger_;
  const image::BlobStore& blobs_;  // DATA_DIR/images: content-addressed image blobs
  Metrics metrics_;
  AuthnLimiter authn_limiter_;
  AuthnLimiter kbs_limiter_;        // key broker failures per address
  crypto::Bytes plane_public_key_;  // verifies audit checkpoints, rentals, credentials
  AttestationService* attestation_ = nullptr;
  const crypto::Ed25519PrivateKey* signing_key_ = nullptr;
  int64_t nonce_ttl_seconds_ = 60;
  int64_t session_ttl_seconds_ = 300;
};

// A query parameter as an integer in [min, max] (dflt when absent); errors
// name the parameter and what was expected.
inline StatusOr<int64_t> IntParam(const httplib::Request& req, const std::string& name,
                                  int64_t dflt, int64_t min, int64_t max) {
  if (!req.has_param(name)) return dflt;
  const std::string v = req.get_param_value(name);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || out < min || out > max) {
    return InvalidArgument("query parameter '" + name + "': expected an integer in " +
                           std::to_string(min) + ".." + std::to_string(max) + ", got '" + v + "'");
  }
  return out;
}

// Strict access to a JSON request body: unknown fields and wrong types are
// errors naming "body.<field>" and what was expected.
class Body {
 public:
  static StatusOr<Body> Parse(const httplib::Request& req, const std::set<std::string>& allowed) {
    json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
    if (!j.is_object()) return InvalidArgument("body: expected a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (!allowed.count(k)) return InvalidArgument("body." + k + ": unknown field");
    }
    return Body(std::move(j));
  }
  StatusOr<std::string> String(const std::string& k, std::optional<std::string> dflt = {}) const {
    auto it = j_.find(k);
    if (it == j_.end()) {
      if (dflt) return *dflt;
      return InvalidArgument("body." + k + ": required");
    }
    if (!it->is_string()) return InvalidArgument("body." + k + ": expected a string");
    return it->get<std::string>();
  }
  StatusOr<int64_t> Int(const std::string& k, int64_t min, int64_t max,
                        std::optional<int64_t> dflt = {}) const {
    auto it = j_.find(k);
    if (it == j_.end()) {
      if (dflt) return *dflt;
      return InvalidArgument("body." + k + ": required");
    }
    if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
      return InvalidArgument("body." + k + ": expected an integer in " + std::to_string(min) +
                             ".." + std::to_string(max));
    }
    return it->get<int64_t>();
  }

 private:
  explicit Body(json j) : j_(std::move(j)) {}
  json j_;
};

}  // namespace cce::plane
