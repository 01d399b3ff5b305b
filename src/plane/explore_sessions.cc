// The Explore sessions service (services.h, docs/explore/sessions.md): who
// may have a Jupyter session over which samples, its secrets, the login to
// the plane's proxy, the session-scoped SDK token and the idle culler. The
// server itself is the backend's business (explore/backend.h).
#include <openssl/crypto.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <set>

#include "crypto/jwe.h"
#include "plane/cookie.h"
#include "plane/plane.h"
#include "plane/services.h"

namespace cce::plane {

using nlohmann::json;
using store::AuditDecision;
using store::ExploreState;

namespace {

std::string Object(const std::string& id) {
  return "explore:" + id;
}

std::string UpstreamJson(const explore::Upstream& u) {
  return json{{"unix_socket", u.unix_socket}, {"host", u.host}, {"port", u.port}}.dump();
}

explore::Upstream ParseUpstream(const std::string& text) {
  explore::Upstream u;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return u;
  if (j.contains("unix_socket") && j["unix_socket"].is_string()) u.unix_socket = j["unix_socket"];
  if (j.contains("host") && j["host"].is_string()) u.host = j["host"];
  if (j.contains("port") && j["port"].is_number_integer()) u.port = j["port"];
  return u;
}

// 32 random bytes as base64url: login codes and cookie values.
StatusOr<std::string> RandomToken() {
  ASSIGN_OR_RETURN(crypto::SecretBytes raw, crypto::RandomSecret(32));
  return crypto::Base64UrlEncode(raw.span());
}

crypto::Sha256Digest Hash(std::string_view s) {
  return crypto::Sha256(crypto::AsBytes(s));
}

bool IsBase64Url(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// A refused login or proxied request from `addr`: audited and counted
// against the address, unless the address is already over its failure
// limit (then refused unaudited, the first time of a window excepted), so a
// flood fills neither the audit log nor the database. A valid login is
// never refused for its address (no lock-out of users behind an attacker's
// address).
Status Refuse(FailureLimiter& limiter, AuditLog& audit, const std::string& addr, int64_t now,
              const std::string& action, const std::string& object, const Status& why) {
  const std::string actor = "remote:" + addr;
  switch (limiter.Check(addr, now)) {
    case FailureLimiter::Admission::kAdmit: break;
    case FailureLimiter::Admission::kFirstRefusal:
      (void)audit.Append(audit.Record(actor, action + ".rate_limit", object, AuditDecision::kDeny,
                                      {{"max_failures", FailureLimiter::kMaxFailures},
                                       {"window_seconds", FailureLimiter::kWindowSeconds}}));
      [[fallthrough]];
    case FailureLimiter::Admission::kRefusal:
      return ResourceExhausted("too many failed Explore requests from this address; retry in " +
                               std::to_string(FailureLimiter::kWindowSeconds) + " s");
  }
  limiter.RecordFailure(addr, now);
  return audit.Deny(actor, action, object, why);
}

}  // namespace

// ---- Secrets ---------------------------------------------------------------------

StatusOr<crypto::SecretBytes> ExploreSessions::JupyterToken(const std::string& id) {
  std::lock_guard<std::mutex> l(mu_);
  if (!jupyter_key_) {
    ASSIGN_OR_RETURN(crypto::SecretBytes key, d_.master_key.DeriveKey("explore-jupyter"));
    jupyter_key_.emplace(std::move(key));
  }
  crypto::SecretBytes raw(32);
  RETURN_IF_ERROR(crypto::HkdfSha256(jupyter_key_->span(), {},
                                     crypto::AsBytes("jupyter-token:" + id), raw.span()));
  std::string hex = crypto::ToHex(raw.span());
  crypto::SecretBytes out = crypto::SecretBytes::CopyOf(crypto::AsBytes(hex));
  OPENSSL_cleanse(hex.data(), hex.size());
  return out;
}

StatusOr<Caller> ExploreSessions::AuthenticateSdkToken(store::Store& db, std::string_view token) {
  if (token.size() != kSdkTokenPrefix.size() + 64 ||
      token.substr(0, kSdkTokenPrefix.size()) != kSdkTokenPrefix) {
    return NotFound("not an Explore session token");
  }
  ASSIGN_OR_RETURN(store::ExploreSession x, db.GetExploreSessionBySdkTokenHash(Hash(token)));
  // The token dies with its session.
  if (!store::IsLiveExploreState(x.state)) return NotFound("the Explore session has ended");
  ASSIGN_OR_RETURN(store::User owner, db.GetUser(x.owner_id));
  if (owner.disabled) return NotFound("the session's user is disabled");
  return Caller{std::move(owner), x.id};
}

// ---- Records ---------------------------------------------------------------------

StatusOr<api::ExploreSession> ExploreSessions::ToWire(const store::ExploreSession& x) {
  api::ExploreSession out;
  out.id = x.id;
  out.owner = users_.NameOf(x.owner_id);
  out.backend = x.backend;
  out.state = std::string(store::ExploreStateName(x.state));
  for (const auto& d : x.datasets) out.datasets.push_back({d.name, d.sample_version});
  out.idle_timeout_seconds = x.idle_timeout_s;
  out.created_at = x.created_at;
  out.last_activity_at = LastActivity(x);
  if (x.stopped_at != 0) out.stopped_at = x.stopped_at;
  out.stop_reason = x.stop_reason;
  out.url = d_.explore.plane_url + BaseUrl(x.id);
  return out;
}

int64_t ExploreSessions::LastActivity(const store::ExploreSession& x) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = activity_.find(x.id);
  return it == activity_.end() ? x.last_activity_at : std::max(x.last_activity_at, it->second);
}

StatusOr<store::ExploreSession> ExploreSessions::LoadVisible(const Caller& caller,
                                                             const std::string& id,
                                                             bool operators_too) {
  const Status not_found = NotFound("Explore session " + id + " not found");
  if (!explore::ValidSessionId(id)) return not_found;
  auto x = d_.db.GetExploreSession(id);
  if (!x.ok()) return x.status().code() == StatusCode::kNotFound ? not_found : x.status();
  const bool op =
      operators_too && caller.user.role == store::Role::kOperator && caller.explore_session.empty();
  if (x->owner_id != caller.user.id && !op) return not_found;  // another's: as if absent
  return x;
}

StatusOr<store::ExploreSession> ExploreSessions::Finish(const store::ExploreSession& x,
                                                        ExploreState to, const std::string& actor,
                                                        const std::string& action,
                                                        const std::string& reason) {
  auto done = d_.db.TransitionExploreSession(
      x.id, {ExploreState::kStarting, ExploreState::kRunning}, to, reason, std::nullopt,
      audit_.Record(actor, action, Object(x.id), AuditDecision::kInfo,
                    {{"reason", reason}, {"state", std::string(store::ExploreStateName(to))}}));
  if (!done.ok()) {
    // Callers on failure paths go on either way; the record's absence must
    // not go unseen (the session stays live in the store, and the culler or
    // the next start's Recover looks at it again).
    d_.log.Error("explore.record", {{"session", x.id},
                                    {"to", std::string(store::ExploreStateName(to))},
                                    {"error", done.status().message()}});
  }
  std::lock_guard<std::mutex> l(mu_);
  activity_.erase(x.id);
  flushed_.erase(x.id);
  return done;
}

// ---- Start, list, stop -------------------------------------------------------------

StatusOr<api::ExploreSession> ExploreSessions::Start(const Caller& caller,
                                                     const api::StartExploreRequest& request) {
  const std::string actor = caller.actor();
  const int64_t now = d_.clock.NowUnix();
  auto deny = [&](const Status& why, json details = json::object()) {
    return audit_.Deny(actor, "explore.start", "explore:new", why, std::move(details));
  };
  if (!caller.explore_session.empty()) {
    return deny(PermissionDenied("an Explore session token cannot start Explore sessions"));
  }
  if (caller.user.role != store::Role::kConsumer) {
    return deny(PermissionDenied("only consumers start Explore sessions"));
  }
  const ExploreOptions& o = d_.explore;
  if (o.backend == nullptr) {
    return deny(FailedPrecondition(
        "Explore sessions are turned off on this plane (plane.yaml explore.backend: none)"));
  }
  const int64_t timeout = request.idle_timeout_seconds.value_or(o.idle_timeout_seconds);
  if (timeout > o.max_idle_timeout_seconds) {
    return deny(InvalidArgument("body.idle_timeout_seconds: " + std::to_string(timeout) +
                                " is above this plane's limit of " +
                                std::to_string(o.max_idle_timeout_seconds) +
                                " s (explore.max_idle_timeout_seconds)"));
  }
  if (timeout < kMinIdleTimeoutSeconds) {
    return deny(InvalidArgument("body.idle_timeout_seconds: " + std::to_string(timeout) +
                                " is below the minimum of " +
                                std::to_string(kMinIdleTimeoutSeconds) + " s"));
  }

  // Which datasets: those named, or every one rented now.
  std::vector<std::string> names;
  if (request.datasets) {
    if (request.datasets->empty()) {
      return deny(InvalidArgument("body.datasets: empty (leave it out for every rented dataset)"));
    }
    std::set<std::string> seen;
    for (const auto& n : *request.datasets) {
      if (seen.insert(n).second) names.push_back(n);
    }
  } else {
    store::RentalFilter f;
    f.consumer_id = caller.user.id;
    f.limit = 10000;
    ASSIGN_OR_RETURN(auto rentals, d_.db.ListRentals(f));
    std::set<int64_t> ids;
    for (const auto& r : rentals) {
      if (r.start <= now && now < r.end) ids.insert(r.dataset_id);
    }
    for (int64_t id : ids) {
      ASSIGN_OR_RETURN(store::Dataset ds, d_.db.GetDataset(id));
      names.push_back(ds.name);
    }
    if (names.empty()) {
      return deny(FailedPrecondition(
          "you rent no dataset now: rent one first (cce rent DATASET --days N), then start "
          "an Explore session"));
    }
  }

  // Each one rented now (the rule jobs use) and with a published sample.
  std::vector<store::ExploreDataset> datasets;
  std::vector<explore::SampleMount> mounts;
  for (const auto& name : names) {
    Status covered = rentals_.CheckCoverage(caller.user.id, {name}, now, now + 1);
    if (!covered.ok()) return deny(covered, {{"dataset", name}});
    ASSIGN_OR_RETURN(store::Dataset ds, d_.db.GetDatasetByName(name));
    auto sample = samples_.Latest(ds.id);
    if (!sample.ok()) {
      if (sample.status().code() != StatusCode::kNotFound) return sample.status();
      return deny(FailedPrecondition("dataset " + name +
                                     " has no published sample: its provider publishes one "
                                     "with `cce dataset publish-sample`"),
                  {{"dataset", name}});
    }
    datasets.push_back({ds.id, name, sample->version});
    mounts.push_back({name, sample->dir, "/data/" + name});
  }

  // The session record (STARTING), with its audit record, before anything runs.
  std::array<uint8_t, 8> id_raw{};
  RETURN_IF_ERROR(crypto::RandomBytes(id_raw));
  store::ExploreSession x;
  x.id = "xs-" + crypto::ToHex(id_raw);
  x.owner_id = caller.user.id;
  x.backend = o.backend_name;
  x.datasets = datasets;
  x.idle_timeout_s = timeout;
  x.created_at = now;
  x.last_activity_at = now;
  ASSIGN_OR_RETURN(crypto::SecretBytes sdk_raw, crypto::RandomSecret(32));
  std::string sdk_token = std::string(kSdkTokenPrefix) + crypto::ToHex(sdk_raw.span());
  x.sdk_token_hash = Hash(sdk_token);
  json dataset_names = json::array();
  for (const auto& d : datasets) {
    dataset_names.push_back({{"name", d.name}, {"sample_version", d.sample_version}});
  }
  auto created = d_.db.CreateExploreSession(
      x, o.max_sessions_per_user,
      audit_.Record(actor, "explore.start", Object(x.id), AuditDecision::kAllow,
                    {{"datasets", dataset_names},
                     {"idle_timeout_seconds", timeout},
                     {"backend", o.backend_name}}));
  if (!created.ok()) {
    OPENSSL_cleanse(sdk_token.data(), sdk_token.size());
    if (created.status().code() == StatusCode::kResourceExhausted) {
      return deny(ResourceExhausted("you already have " + std::to_string(o.max_sessions_per_user) +
                                    " live Explore sessions (explore.max_sessions_per_user): "
                                    "stop one first (cce explore stop ID)"));
    }
    return Unavailable("the Explore session could not be recorded with its audit record (" +
                       created.status().message() + "): not started");
  }

  // What the backend needs; the secrets only in SecretBytes.
  explore::SessionSpec spec;
  spec.id = x.id;
  spec.owner = caller.user.name;
  spec.owner_id = caller.user.id;
  if (!o.homes_dir.empty()) {
    spec.home_dir = o.homes_dir + "/" + std::to_string(caller.user.id);
    if (::mkdir(o.homes_dir.c_str(), 0711) != 0 && errno != EEXIST) {
      (void)Finish(*created, ExploreState::kFailed, "plane", "explore.fail",
                   "cannot create " + o.homes_dir);
      OPENSSL_cleanse(sdk_token.data(), sdk_token.size());
      return ErrnoStatus(o.homes_dir, errno);
    }
    if (::mkdir(spec.home_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      (void)Finish(*created, ExploreState::kFailed, "plane", "explore.fail",
                   "cannot create the home directory");
      OPENSSL_cleanse(sdk_token.data(), sdk_token.size());
      return ErrnoStatus(spec.home_dir, errno);
    }
  }
  spec.samples = std::move(mounts);
  spec.base_url = BaseUrl(x.id);
  ASSIGN_OR_RETURN(spec.jupyter_token, JupyterToken(x.id));
  {
    std::string config = json{
        {"plane_url", o.plane_url},
        {"ca_pem", o.ca_pem},
        {"token", sdk_token},
        {"session", x.id}}.dump();
    spec.sdk_config_json = crypto::SecretBytes::CopyOf(crypto::AsBytes(config));
    OPENSSL_cleanse(config.data(), config.size());
    OPENSSL_cleanse(sdk_token.data(), sdk_token.size());
  }
  spec.memory_mib = o.memory_mib;
  spec.cpus = o.cpus;

  auto upstream = o.backend->Start(spec);
  if (!upstream.ok()) {
    const std::string reason = "the " + o.backend_name +
                               " backend did not start the server: " + upstream.status().message();
    (void)o.backend->Stop(x.id);  // whatever it left behind
    (void)Finish(*created, ExploreState::kFailed, "plane", "explore.fail", reason);
    return Status(upstream.status().code(), reason);
  }
  auto running = d_.db.TransitionExploreSession(
      x.id, {ExploreState::kStarting}, ExploreState::kRunning, "", UpstreamJson(*upstream),
      audit_.Record("plane", "explore.running", Object(x.id), AuditDecision::kInfo));
  if (!running.ok()) {
    (void)o.backend->Stop(x.id);
    (void)Finish(*created, ExploreState::kFailed, "plane", "explore.fail",
                 "could not record RUNNING: " + running.status().message());
    return Unavailable("the Explore session started but could not be recorded (" +
                       running.status().message() + "): stopped again");
  }
  return ToWire(*running);
}

StatusOr<api::ExploreSessionList> ExploreSessions::List(const Caller& caller) {
  store::ExploreFilter f;
  if (caller.user.role != store::Role::kOperator || !caller.explore_session.empty()) {
    f.owner_id = caller.user.id;
  }
  ASSIGN_OR_RETURN(auto sessions, d_.db.ListExploreSessions(f));
  api::ExploreSessionList out;
  for (const auto& x : sessions) {
    ASSIGN_OR_RETURN(auto w, ToWire(x));
    out.sessions.push_back(std::move(w));
  }
  return out;
}

StatusOr<api::ExploreSession> ExploreSessions::Get(const Caller& caller, const std::string& id) {
  ASSIGN_OR_RETURN(store::ExploreSession x, LoadVisible(caller, id, /*operators_too=*/true));
  return ToWire(x);
}

StatusOr<api::ExploreSession> ExploreSessions::Stop(const Caller& caller, const std::string& id) {
  auto x = LoadVisible(caller, id, /*operators_too=*/true);
  if (!x.ok()) {
    return x.status().code() == StatusCode::kNotFound
               ? audit_.Deny(caller.actor(), "explore.stop", Object(id), x.status())
               : x.status();
  }
  if (!store::IsLiveExploreState(x->state)) return ToWire(*x);
  if (d_.explore.backend != nullptr) {
    Status stopped = d_.explore.backend->Stop(id);
    if (!stopped.ok()) {
      return Unavailable("Explore session " + id + ": the backend did not stop it (" +
                         stopped.message() + "); try again");
    }
  }
  ASSIGN_OR_RETURN(store::ExploreSession done,
                   Finish(*x, ExploreState::kStopped, caller.actor(), "explore.stop",
                          "stopped by " + caller.user.name));
  return ToWire(done);
}

// ---- Login and proxy ---------------------------------------------------------------

StatusOr<api::ExploreLogin> ExploreSessions::NewLoginUrl(const Caller& caller,
                                                         const std::string& id) {
  auto x = LoadVisible(caller, id, /*operators_too=*/false);
  if (!x.ok()) {
    return x.status().code() == StatusCode::kNotFound
               ? audit_.Deny(caller.actor(), "explore.login_url", Object(id), x.status())
               : x.status();
  }
  if (x->state != ExploreState::kRunning) {
    return FailedPrecondition("Explore session " + id + " is " +
                              std::string(store::ExploreStateName(x->state)) +
                              ", not RUNNING: start a new one (cce explore start)");
  }
  ASSIGN_OR_RETURN(std::string code, RandomToken());
  const int64_t expires = d_.clock.NowUnix() + kLoginCodeTtlSeconds;
  Status set =
      d_.db.SetExploreLoginCode(id, Hash(code), expires,
                                audit_.Record(caller.actor(), "explore.login_url", Object(id),
                                              AuditDecision::kAllow, {{"expires_at", expires}}));
  if (!set.ok()) return set;
  return api::ExploreLogin{d_.explore.plane_url + BaseUrl(id) + "login?code=" + code, expires};
}

StatusOr<ExploreSessions::LoginResult> ExploreSessions::Login(const std::string& id,
                                                              const std::string& code,
                                                              const std::string& remote_addr) {
  const int64_t now = d_.clock.NowUnix();
  const std::string actor = "remote:" + remote_addr;
  const Status refused = PermissionDenied(
      "this login link is not valid (unknown, already used or expired): ask for a new one "
      "with `cce explore open ID`");
  if (!explore::ValidSessionId(id) || code.size() > 100 || !IsBase64Url(code)) {
    return Refuse(login_limiter_, audit_, remote_addr, now, "explore.login", Object(id), refused);
  }
  ASSIGN_OR_RETURN(std::string cookie, RandomToken());
  auto in = d_.db.ConsumeExploreLoginCode(
      id, Hash(code), now, Hash(cookie),
      audit_.Record(actor, "explore.login", Object(id), AuditDecision::kAllow));
  if (!in.ok()) {
    OPENSSL_cleanse(cookie.data(), cookie.size());
    if (in.status().code() != StatusCode::kPermissionDenied) return in.status();
    return Refuse(login_limiter_, audit_, remote_addr, now, "explore.login", Object(id), refused);
  }
  LoginResult out;
  out.set_cookie = std::string(kCookieName) + "=" + cookie + "; Path=" + BaseUrl(id) +
                   "; HttpOnly; Secure; SameSite=Strict";
  out.location = BaseUrl(id) + "tree";
  OPENSSL_cleanse(cookie.data(), cookie.size());
  return out;
}

StatusOr<ExploreSessions::ProxyTarget> ExploreSessions::Target(const std::string& id,
                                                               std::string_view cookie_header,
                                                               std::string_view authorization,
                                                               const std::string& remote_addr) {
  const int64_t now = d_.clock.NowUnix();
  auto refuse = [&](const Status& why) {
    return Refuse(login_limiter_, audit_, remote_addr, now, "explore.proxy", Object(id), why);
  };
  const Status not_found = NotFound("Explore session " + id + " not found");
  if (!explore::ValidSessionId(id)) return refuse(not_found);
  auto x = d_.db.GetExploreSession(id);
  if (!x.ok()) return x.status().code() == StatusCode::kNotFound ? refuse(not_found) : x.status();

  // The first cce_explore pair (cookie.h); an empty value counts as no cookie.
  const std::string cookie(FindCookie(cookie_header, kCookieName).value_or(""));
  constexpr std::string_view kBearer = "Bearer ";
  if (!cookie.empty()) {
    if (!x->cookie_hash || !crypto::ConstantTimeEquals(*x->cookie_hash, Hash(cookie))) {
      return refuse(PermissionDenied(
          "this browser's Explore login is not for session " + id +
          " (or has ended): open a fresh login link with `cce explore open " + id + "`"));
    }
  } else if (authorization.substr(0, kBearer.size()) == kBearer) {
    auto user = d_.db.GetUserByTokenHash(HashApiToken(authorization.substr(kBearer.size())));
    if (!user.ok() && user.status().code() != StatusCode::kNotFound) return user.status();
    if (!user.ok() || user->disabled || user->id != x->owner_id) {
      return refuse(PermissionDenied("only the session's owner may use Explore session " + id));
    }
  } else {
    return refuse(Unauthenticated("log in to Explore session " + id + " first: `cce explore open " +
                                  id + "` prints a login link"));
  }
  if (x->state != ExploreState::kRunning) {
    return FailedPrecondition("Explore session " + id + " is " +
                              std::string(store::ExploreStateName(x->state)) +
                              (x->stop_reason.empty() ? "" : " (" + x->stop_reason + ")"));
  }
  ASSIGN_OR_RETURN(crypto::SecretBytes token, JupyterToken(id));
  ProxyTarget out;
  out.upstream = ParseUpstream(x->upstream_json);
  out.jupyter_authorization =
      "token " + std::string(reinterpret_cast<const char*>(token.data()), token.size());
  bool flush = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    int64_t& last = activity_[id];
    last = std::max(last, now);
    auto [it, fresh] = flushed_.emplace(id, now);
    if (fresh || now - it->second >= kActivityFlushSeconds) {
      it->second = now;
      flush = true;
    }
  }
  if (flush) (void)d_.db.TouchExploreSession(id, now);  // best effort: the culler reads memory too
  return out;
}

void ExploreSessions::FlushActivity(bool force) {
  const int64_t now = d_.clock.NowUnix();
  std::vector<std::pair<std::string, int64_t>> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, at] : activity_) {
      int64_t& flushed = flushed_[id];
      if (force || now - flushed >= kActivityFlushSeconds) {
        flushed = now;
        due.emplace_back(id, at);
      }
    }
  }
  for (const auto& [id, at] : due) {
    Status s = d_.db.TouchExploreSession(id, at);
    if (!s.ok()) d_.log.Warn("explore.activity_flush", {{"session", id}, {"error", s.message()}});
  }
}

// ---- Culler and recovery -----------------------------------------------------------

StatusOr<ExploreSessions::CullReport> ExploreSessions::CullOnce() {
  CullReport report;
  const ExploreOptions& o = d_.explore;
  if (o.backend == nullptr) return report;
  store::ExploreFilter f;
  f.live_only = true;
  ASSIGN_OR_RETURN(auto sessions, d_.db.ListExploreSessions(f));
  for (const auto& x : sessions) {
    if (x.state != ExploreState::kRunning) continue;  // a start in progress
    ++report.checked;
    const int64_t now = d_.clock.NowUnix();
    auto seen = o.backend->Observe(x.id);
    if (!seen.ok()) {
      d_.log.Warn("explore.observe", {{"session", x.id}, {"error", seen.status().message()}});
      continue;
    }
    if (seen->state == explore::SessionState::kGone ||
        seen->state == explore::SessionState::kFailed) {
      (void)o.backend->Stop(x.id);
      auto lost = Finish(x, ExploreState::kLost, "plane", "explore.lost",
                         seen->detail.empty() ? "the server is gone" : seen->detail);
      if (lost.ok()) ++report.lost;
      continue;
    }
    // A rental that ended ends the session.
    std::string stop_reason;
    for (const auto& d : x.datasets) {
      if (!rentals_.CheckCoverage(x.owner_id, {d.name}, now, now + 1).ok()) {
        stop_reason = "rental of " + d.name + " ended";
        break;
      }
    }
    if (stop_reason.empty()) {
      int64_t last = LastActivity(x);
      if (o.jupyter_activity) {
        auto token = JupyterToken(x.id);
        if (token.ok()) {
          auto jupyter = o.jupyter_activity(seen->upstream, BaseUrl(x.id), *token);
          if (jupyter.ok()) {
            last = std::max(last, std::min(*jupyter, now));
          } else {
            d_.log.Warn("explore.jupyter_status",
                        {{"session", x.id}, {"error", jupyter.status().message()}});
          }
        }
      }
      if (now - last > x.idle_timeout_s) {
        stop_reason = "idle for " + std::to_string((now - last) / 60) + " min";
      }
    }
    if (stop_reason.empty()) continue;
    Status stopped = o.backend->Stop(x.id);
    if (!stopped.ok()) {
      d_.log.Warn("explore.cull_stop", {{"session", x.id}, {"error", stopped.message()}});
      continue;
    }
    auto done = Finish(x, ExploreState::kStopped, "plane", "explore.stop", stop_reason);
    if (done.ok()) {
      ++report.stopped;
    } else {
      d_.log.Error("explore.cull_record", {{"session", x.id}, {"error", done.status().message()}});
    }
  }
  return report;
}

StatusOr<ExploreSessions::CullReport> ExploreSessions::Recover() {
  CullReport report;
  store::ExploreFilter f;
  f.live_only = true;
  ASSIGN_OR_RETURN(auto sessions, d_.db.ListExploreSessions(f));
  const ExploreOptions& o = d_.explore;
  for (const auto& x : sessions) {
    ++report.checked;
    if (o.backend == nullptr) {
      (void)Finish(x, ExploreState::kLost, "plane", "explore.lost",
                   "the plane restarted with explore.backend none");
      ++report.lost;
      continue;
    }
    auto seen = o.backend->Observe(x.id);
    if (!seen.ok()) {  // cannot tell: keep it; the culler looks again
      d_.log.Warn("explore.recover", {{"session", x.id}, {"error", seen.status().message()}});
      continue;
    }
    if (seen->state == explore::SessionState::kRunning) {
      auto kept = d_.db.TransitionExploreSession(
          x.id, {ExploreState::kStarting, ExploreState::kRunning}, ExploreState::kRunning, "",
          UpstreamJson(seen->upstream),
          audit_.Record("plane", "explore.recover", Object(x.id), AuditDecision::kInfo));
      if (!kept.ok()) {
        d_.log.Warn("explore.recover", {{"session", x.id}, {"error", kept.status().message()}});
      }
      continue;
    }
    (void)o.backend->Stop(x.id);
    auto lost = Finish(x, ExploreState::kLost, "plane", "explore.lost",
                       "not running after a plane restart" +
                           (seen->detail.empty() ? std::string() : ": " + seen->detail));
    if (lost.ok()) ++report.lost;
  }
  return report;
}

}  // namespace cce::plane
