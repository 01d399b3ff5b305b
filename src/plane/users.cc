// AuditLog, FailureLimiter and the Users service: authentication (bearer
// API tokens, only their SHA-256 stored), role checks, user management.
#include <algorithm>

#include "plane/plane.h"
#include "plane/services.h"

namespace cce::plane {

using nlohmann::json;
using store::AuditDecision;
using store::Role;

// ---- AuditLog -----------------------------------------------------------------

store::AuditRecord AuditLog::Record(std::string actor, std::string action, std::string object,
                                    AuditDecision decision, const json& details) const {
  store::AuditRecord a;
  a.at = clock_.NowUnix();
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.object = std::move(object);
  a.decision = decision;
  a.details_json = details.dump(-1, ' ', false, json::error_handler_t::replace);
  return a;
}

Status AuditLog::Append(const store::AuditRecord& record) {
  auto appended = db_.AppendAudit(record);
  if (appended.ok()) return Status::Ok();
  log_.Error("audit.append_failed",
             {{"action", record.action}, {"error", appended.status().message()}});
  return Unavailable("the audit log cannot be written (" + appended.status().message() +
                     "): the decision is refused");
}

Status AuditLog::Deny(std::string actor, std::string action, std::string object, const Status& why,
                      json details) {
  if (details.is_object() && !details.contains("reason")) details["reason"] = why.message();
  (void)Append(Record(std::move(actor), std::move(action), std::move(object), AuditDecision::kDeny,
                      details));  // a refusal stands even unrecorded; Append logged it
  return why;
}

// ---- FailureLimiter ----------------------------------------------------------

FailureLimiter::Admission FailureLimiter::Check(const std::string& addr, int64_t now) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(addr);
  if (it == entries_.end()) return Admission::kAdmit;
  Entry& e = it->second;
  if (now - e.window_start >= kWindowSeconds) {
    entries_.erase(it);
    return Admission::kAdmit;
  }
  if (e.failures < kMaxFailures) return Admission::kAdmit;
  if (e.refusal_audited) return Admission::kRefusal;
  e.refusal_audited = true;
  return Admission::kFirstRefusal;
}

bool FailureLimiter::Admits(const std::string& addr, int64_t now) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(addr);
  return it == entries_.end() || now - it->second.window_start >= kWindowSeconds ||
         it->second.failures < kMaxFailures;
}

void FailureLimiter::RecordFailure(const std::string& addr, int64_t now) {
  std::lock_guard<std::mutex> l(mu_);
  if (entries_.size() >= kMaxAddresses && entries_.count(addr) == 0) entries_.clear();
  Entry& e = entries_[addr];
  if (e.failures == 0 || now - e.window_start >= kWindowSeconds) e = Entry{now, 0, false};
  ++e.failures;
}

// ---- Users -----------------------------------------------------------------------

namespace {

api::User UserToWire(const store::User& u) {
  return {u.id, u.name, std::string(store::RoleName(u.role)), u.created_at, u.disabled};
}

}  // namespace

StatusOr<Caller> Users::Authenticate(std::string_view authorization, const std::string& remote_addr,
                                     const std::string& request_line) {
  constexpr std::string_view kBearer = "Bearer ";
  const int64_t now = d_.clock.NowUnix();
  std::string why;
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    why = "missing bearer token (send the header Authorization: Bearer TOKEN)";
  } else {
    const std::string_view token = authorization.substr(kBearer.size());
    // An Explore session's SDK token: the owner, scoped to the session
    // (routes.cc admits such a caller only to the routes open to it).
    if (token.substr(0, ExploreSessions::kSdkTokenPrefix.size()) ==
        ExploreSessions::kSdkTokenPrefix) {
      auto scoped = ExploreSessions::AuthenticateSdkToken(d_.db, token);
      if (scoped.ok()) return scoped;
      if (scoped.status().code() != StatusCode::kNotFound) return scoped.status();
    }
    auto user = d_.db.GetUserByTokenHash(HashApiToken(token));
    // A valid token is served even from an address over its failure limit:
    // no lock-out of users behind the same address as an attacker.
    if (user.ok() && !user->disabled) return Caller{*user};
    if (!user.ok() && user.status().code() != StatusCode::kNotFound) return user.status();
    why = user.ok() ? "user disabled"
                    : "unknown token (not one this plane issued: check CCE_TOKEN or `cce "
                      "login`; `cce-plane user add` issues tokens)";
  }
  const std::string actor = "remote:" + remote_addr;
  switch (limiter_.Check(remote_addr, now)) {
    case FailureLimiter::Admission::kAdmit: break;
    case FailureLimiter::Admission::kFirstRefusal:
      (void)audit_.Append(audit_.Record(actor, "authn.rate_limit", request_line,
                                        AuditDecision::kDeny,
                                        {{"max_failures", FailureLimiter::kMaxFailures},
                                         {"window_seconds", FailureLimiter::kWindowSeconds}}));
      [[fallthrough]];
    case FailureLimiter::Admission::kRefusal:
      return ResourceExhausted("too many failed authentications from this address; retry in " +
                               std::to_string(FailureLimiter::kWindowSeconds) + " s");
  }
  limiter_.RecordFailure(remote_addr, now);
  return audit_.Deny(actor, "authn", request_line, Unauthenticated("unauthenticated: " + why));
}

Status Users::Authorize(const Caller& caller, const std::vector<Role>& roles,
                        const std::string& request_line) {
  if (roles.empty() || std::find(roles.begin(), roles.end(), caller.user.role) != roles.end()) {
    return Status::Ok();
  }
  const std::string role(store::RoleName(caller.user.role));
  std::string allowed;
  for (size_t i = 0; i < roles.size(); ++i) {
    allowed += (i == 0 ? "" : i + 1 == roles.size() ? " or " : ", ") +
               std::string(store::RoleName(roles[i]));
  }
  return audit_.Deny(caller.actor(), "authz", request_line,
                     PermissionDenied("role '" + role + "' may not " + request_line +
                                      " (only " + allowed + " may)"),
                     {{"role", role}, {"reason", "role"}});
}

StatusOr<api::UserList> Users::List() {
  ASSIGN_OR_RETURN(auto users, d_.db.ListUsers());
  api::UserList out;
  for (const auto& u : users) out.users.push_back(UserToWire(u));
  return out;
}

Status CheckUserName(const std::string& name, std::string_view field) {
  if (!name.empty() && name.size() <= 64 &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos) {
    return Status::Ok();
  }
  std::string shown;
  for (char c : std::string_view(name).substr(0, 64)) {
    shown += (c >= 0x20 && c < 0x7f && c != '\'') ? c : '?';
  }
  return InvalidArgument(std::string(field) + " '" + shown + (name.size() > 64 ? "...'" : "'") +
                         ": expected 1..64 characters from a-z, 0-9, '-', '_', '.'");
}

StatusOr<api::CreatedUser> Users::Create(const Caller& caller,
                                         const api::CreateUserRequest& request) {
  RETURN_IF_ERROR(CheckUserName(request.name, "body.name:"));
  auto parsed_role = store::ParseRole(request.role);
  if (!parsed_role.ok()) return parsed_role.status().WithContext("body.role");
  const Role role = *parsed_role;
  ASSIGN_OR_RETURN(std::string token, NewApiToken());
  store::User u;
  u.name = request.name;
  u.role = role;
  u.token_hash = HashApiToken(token);
  u.created_at = d_.clock.NowUnix();
  ASSIGN_OR_RETURN(store::User created,
                   d_.db.CreateUser(u, audit_.Record(caller.actor(), "user.add", "user:" + u.name,
                                                     AuditDecision::kAllow)));
  return api::CreatedUser{UserToWire(created), token};
}

std::string Users::NameOf(int64_t user_id) {
  auto u = d_.db.GetUser(user_id);
  return u.ok() ? u->name : "user#" + std::to_string(user_id);
}

}  // namespace cce::plane
