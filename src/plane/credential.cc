#include "plane/credential.h"

#include <nlohmann/json.hpp>

namespace cce::plane {
namespace {

using nlohmann::json;
constexpr std::string_view kPrefix = "cce-cred-v1.";

std::string Base64UrlEncode(crypto::ByteSpan in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t{in[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

StatusOr<crypto::Bytes> Base64UrlDecode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return InvalidArgument("credential: bad base64url length");
  crypto::Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) return InvalidArgument("credential: invalid base64url character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
    }
  }
  // Canonical encoding only: leftover bits must be zero.
  if ((acc & ((1u << bits) - 1)) != 0)
    return InvalidArgument("credential: non-canonical base64url");
  return out;
}

}  // namespace

StatusOr<std::string> SignJobCredential(const JobCredentialClaims& c,
                                        const crypto::Ed25519PrivateKey& key) {
  json payload = {{"cred", c.credential_id}, {"job", c.job_id},         {"consumer", c.consumer},
                  {"datasets", c.datasets},  {"image", c.image_digest}, {"iat", c.issued_at},
                  {"exp", c.expires_at},     {"sim", c.simulated_tee}};
  std::string text = payload.dump();
  std::string signed_part = std::string(kPrefix) + Base64UrlEncode(crypto::AsBytes(text));
  ASSIGN_OR_RETURN(auto sig, key.Sign(crypto::AsBytes(signed_part)));
  return signed_part + "." + Base64UrlEncode(sig);
}

StatusOr<JobCredentialClaims> VerifyJobCredential(std::string_view token,
                                                  crypto::ByteSpan plane_public_key, int64_t now) {
  if (token.substr(0, kPrefix.size()) != kPrefix) {
    return PermissionDenied("credential: not a cce-cred-v1 token");
  }
  size_t dot = token.rfind('.');
  if (dot <= kPrefix.size()) return PermissionDenied("credential: missing signature");
  std::string_view signed_part = token.substr(0, dot);
  auto sig = Base64UrlDecode(token.substr(dot + 1));
  if (!sig.ok() || !crypto::Ed25519Verify(plane_public_key, crypto::AsBytes(signed_part), *sig)) {
    return PermissionDenied("credential: signature does not verify");
  }
  auto payload = Base64UrlDecode(signed_part.substr(kPrefix.size()));
  if (!payload.ok()) return PermissionDenied("credential: " + payload.status().message());
  json j = json::parse(payload->begin(), payload->end(), nullptr, false);
  JobCredentialClaims c;
  try {
    if (j.is_discarded() || !j.is_object() || j.size() != 8) throw std::runtime_error("shape");
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

}  // namespace cce::plane
