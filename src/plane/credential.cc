#include "plane/credential.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "crypto/jwe.h"

namespace cce::plane {
namespace {

using crypto::Base64UrlDecode;
using crypto::Base64UrlEncode;
using nlohmann::json;
constexpr std::string_view kPrefix = "cce-cred-v1.";
constexpr std::string_view kSessionPrefix = "cce-kbs-v2.";
constexpr std::string_view kSessionMacInfo = "cce4long kbs session mac v1";

// PREFIX base64url(payload) "." base64url(Ed25519 over PREFIX base64url(payload)).
StatusOr<std::string> SignToken(std::string_view prefix, const json& payload,
                                const crypto::Ed25519PrivateKey& key) {
  std::string text = payload.dump();
  std::string signed_part = std::string(prefix) + Base64UrlEncode(crypto::AsBytes(text));
  // Remembered: /auth, /attest and /resource of a release check tokens this
  // plane signed; only claims and times are then checked again.
  ASSIGN_OR_RETURN(auto sig, key.SignRemembered(crypto::AsBytes(signed_part)));
  return signed_part + "." + Base64UrlEncode(sig);
}

// Checks prefix and signature (by `public_key`, or with `mac` when given);
// returns the payload object. Errors are kPermissionDenied naming `what`.
StatusOr<json> VerifyToken(std::string_view prefix, std::string_view what, std::string_view token,
                           crypto::ByteSpan public_key, const crypto::HmacSha256* mac = nullptr) {
  const std::string w(what);
  if (token.size() > 16384 || token.substr(0, prefix.size()) != prefix) {
    return PermissionDenied(w + ": not a " + std::string(prefix.substr(0, prefix.size() - 1)) +
                            " token");
  }
  size_t dot = token.rfind('.');
  if (dot <= prefix.size()) return PermissionDenied(w + ": missing signature");
  std::string_view signed_part = token.substr(0, dot);
  auto sig = Base64UrlDecode(token.substr(dot + 1));
  const bool ok =
      sig.ok() && (mac != nullptr
                       ? crypto::ConstantTimeEquals(mac->Mac(crypto::AsBytes(signed_part)), *sig)
                       : crypto::Ed25519VerifyMemoized(public_key, crypto::AsBytes(signed_part),
                                                       *sig));
  if (!ok) return PermissionDenied(w + ": signature does not verify");
  auto payload = Base64UrlDecode(signed_part.substr(prefix.size()));
  if (!payload.ok()) return PermissionDenied(w + ": " + payload.status().message());
  json j = json::parse(payload->begin(), payload->end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return PermissionDenied(w + ": malformed claims");
  return j;
}

}  // namespace

StatusOr<std::string> SignJobCredential(const JobCredentialClaims& c,
                                        const crypto::Ed25519PrivateKey& key) {
  json payload = {{"cred", c.credential_id}, {"job", c.job_id},         {"consumer", c.consumer},
                  {"datasets", c.datasets},  {"image", c.image_digest}, {"iat", c.issued_at},
                  {"exp", c.expires_at},     {"sim", c.simulated_tee}};
  return SignToken(kPrefix, payload, key);
}

StatusOr<MintedCredential> MintJobCredential(const store::Job& job,
                                             const std::string& consumer_name, int64_t now,
                                             int64_t ttl_seconds, CredentialExpiry expiry,
                                             const crypto::Ed25519PrivateKey& key) {
  if (ttl_seconds <= 0) {
    return InvalidArgument("credential ttl_seconds is " + std::to_string(ttl_seconds) +
                           ": must be positive");
  }
  std::array<uint8_t, 16> id{};
  RETURN_IF_ERROR(crypto::RandomBytes(id));
  MintedCredential m;
  JobCredentialClaims& c = m.claims;
  c.credential_id = "cred-" + crypto::ToHex(id);
  c.job_id = job.id;
  c.consumer = consumer_name;
  c.datasets = job.datasets;
  c.image_digest = job.image_digest;
  c.issued_at = now;
  c.expires_at = now + ttl_seconds;
  if (expiry == CredentialExpiry::kTtlWithinDeadline) {
    c.expires_at = std::min(c.expires_at, job.deadline);
    if (c.expires_at <= c.issued_at) {
      return FailedPrecondition("job " + job.id + " is past its deadline");
    }
  }
  ASSIGN_OR_RETURN(m.token, SignJobCredential(c, key));
  m.row.id = c.credential_id;
  m.row.job_id = c.job_id;
  m.row.issued_at = c.issued_at;
  m.row.expires_at = c.expires_at;
  return m;
}

StatusOr<JobCredentialClaims> VerifyJobCredential(std::string_view token,
                                                  crypto::ByteSpan plane_public_key, int64_t now) {
  ASSIGN_OR_RETURN(json j, VerifyToken(kPrefix, "credential", token, plane_public_key));
  JobCredentialClaims c;
  try {
    if (j.size() != 8) throw std::runtime_error("shape");
    c.credential_id = j.at("cred").get<std::string>();
    c.job_id = j.at("job").get<std::string>();
    c.consumer = j.at("consumer").get<std::string>();
    c.datasets = j.at("datasets").get<std::vector<std::string>>();
    c.image_digest = j.at("image").get<std::string>();
    c.issued_at = j.at("iat").get<int64_t>();
    c.expires_at = j.at("exp").get<int64_t>();
    c.simulated_tee = j.at("sim").get<bool>();
  } catch (const std::exception&) {
    return PermissionDenied("credential: malformed claims");
  }
  if (now < c.issued_at) return PermissionDenied("credential: not valid yet");
  if (now >= c.expires_at) return PermissionDenied("credential: expired");
  return c;
}

crypto::HmacSha256 KbsSessionMac(const crypto::Ed25519PrivateKey& signing_key) {
  auto seed = signing_key.Seed();
  crypto::SecretBytes key(32);
  if (!seed.ok() ||
      !crypto::HkdfSha256(seed->span(), {}, crypto::AsBytes(kSessionMacInfo), key.span()).ok()) {
    std::fprintf(stderr, "cce: fatal: deriving the KBS session key failed\n");
    std::abort();
  }
  auto mac = crypto::HmacSha256::Create(key.span());
  if (!mac.ok()) {
    std::fprintf(stderr, "cce: fatal: keying the KBS session MAC failed\n");
    std::abort();
  }
  return std::move(*mac);
}

StatusOr<std::string> SignKbsSession(const KbsSessionClaims& c, const crypto::HmacSha256& mac) {
  json payload = {{"job", c.job_id},        {"cred", c.credential_id},
                  {"datasets", c.datasets}, {"tee_key", c.tee_public_jwk},
                  {"iat", c.issued_at},     {"exp", c.expires_at},
                  {"sim", c.simulated_tee}};
  std::string signed_part =
      std::string(kSessionPrefix) + Base64UrlEncode(crypto::AsBytes(payload.dump()));
  const crypto::Sha256Digest tag = mac.Mac(crypto::AsBytes(signed_part));
  return signed_part + "." + Base64UrlEncode(tag);
}

StatusOr<KbsSessionClaims> VerifyKbsSession(std::string_view token, const crypto::HmacSha256& mac,
                                            int64_t now, SessionUse use) {
  ASSIGN_OR_RETURN(json j, VerifyToken(kSessionPrefix, "session", token, {}, &mac));
  KbsSessionClaims c;
  try {
    if (j.size() != 7) throw std::runtime_error("shape");
    c.job_id = j.at("job").get<std::string>();
    c.credential_id = j.at("cred").get<std::string>();
    c.datasets = j.at("datasets").get<std::vector<std::string>>();
    c.tee_public_jwk = j.at("tee_key").get<std::string>();
    c.issued_at = j.at("iat").get<int64_t>();
    c.expires_at = j.at("exp").get<int64_t>();
    c.simulated_tee = j.at("sim").get<bool>();
  } catch (const std::exception&) {
    return PermissionDenied("session: malformed claims");
  }
  if (now < c.issued_at) return PermissionDenied("session: not valid yet");
  if (use == SessionUse::kKeyRelease && now >= c.expires_at) {
    return PermissionDenied("session: expired");
  }
  return c;
}

}  // namespace cce::plane
