// JWE "ECDH-ES+A256KW" + "A256GCM" over OpenSSL 3 EVP: ECDH through
// EcdhPrivateKey, Concat KDF as SHA-256 rounds (SSKDF), AES key wrap through
// EVP_aes_256_wrap, content encryption through Aes256Gcm. Header JSON through
// nlohmann/json, whose exceptions stop at the public functions below.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/jwe.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "crypto/openssl_util.h"

namespace cce::crypto {
namespace {

using internal::Free;
using internal::MdCtxPtr;
using internal::OpensslFailure;
using internal::OpensslInternal;
using internal::P256PublicFromPoint;
using internal::ParamBldPtr;
using internal::ParamsPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;
using internal::Sz;
using Json = nlohmann::json;

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Free<EVP_CIPHER_CTX_free>>;

constexpr size_t kCoordinateSize = 32;  // P-256 x/y and X25519 u
constexpr size_t kP256PointSize = 1 + 2 * kCoordinateSize;
constexpr size_t kCekSize = 32;                   // A256GCM
constexpr size_t kKekSize = 32;                   // A256KW
constexpr size_t kWrappedCekSize = kCekSize + 8;  // RFC 3394 adds one 64-bit block
constexpr size_t kKeyWrapBlock = 8;
constexpr size_t kMaxHeaderChars = 8192;  // encoded protected header
constexpr size_t kMaxKdfOutput = 1024;

const char* CurveName(EcdhCurve curve) {
  return curve == EcdhCurve::kX25519 ? "X25519" : "P-256";
}

// OpenSSL takes non-null pointers even for empty input.
const uint8_t* Ptr(ByteSpan s) {
  static constexpr uint8_t kEmpty = 0;
  return s.empty() ? &kEmpty : s.data();
}

// ---- small JSON helpers -----------------------------------------------------

// A JSON value for an error message, shortened: attacker-controlled input
// must not produce megabyte-long errors.
// What an error message says about a value it refuses: a short string is
// quoted (member and algorithm names), anything else is named by its type.
// Never the value itself: serialising an attacker's value is recursive (a
// deeply nested array once crashed the plane here) and may echo secrets.
std::string Show(const Json& v) {
  constexpr size_t kMax = 32;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() <= kMax && s.find_first_of("\"\\") == std::string::npos &&
        std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
      return "\"" + s + "\"";
    }
    return "a string of " + std::to_string(s.size()) + " bytes";
  }
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  return "a number";
}

// Parses one JSON document, refusing duplicate member names at any depth
// (RFC 7515 4 lets a parser reject them; a duplicate "alg" or "epk" would
// otherwise mean whatever the last one says).
StatusOr<Json> ParseStrictJson(std::string_view text, const std::string& what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  // A JOSE header or JWK is a few levels deep; deeper input is refused
  // before anything walks it.
  constexpr int kMaxDepth = 16;
  bool too_deep = false;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > kMaxDepth) {
      too_deep = true;
      return false;  // discard: keep nothing of it
    }
    switch (event) {
      case Json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default: break;
    }
    return true;
  };
  Json j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  if (too_deep) {
    return InvalidArgument(what + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  if (j.is_discarded()) return InvalidArgument(what + ": not valid JSON (or not UTF-8)");
  if (!duplicate.empty()) {
    return InvalidArgument(what + ": duplicate member " + Show(Json(duplicate)));
  }
  return j;
}

StatusOr<std::string> RequireString(const Json& obj, const char* name, const std::string& what) {
  const auto it = obj.find(name);
  if (it == obj.end()) return InvalidArgument(what + ": " + name + ": missing");
  if (!it->is_string()) {
    return InvalidArgument(what + ": " + name + ": expected a string, got " + Show(*it));
  }
  return it->get<std::string>();
}

// ---- key validation -----------------------------------------------------------

Status ValidateP256Point(ByteSpan point) {
  if (point.size() != kP256PointSize || point[0] != 0x04) {
    return InvalidArgument("P-256 public key must be a " + Sz(kP256PointSize) +
                           "-byte uncompressed point (0x04||X||Y), got " + Sz(point.size()) +
                           " bytes");
  }
  // Range, on curve, not infinity. Not the order check (n·Q = O) of
  // EVP_PKEY_public_check: P-256 has cofactor 1, so every curve point but
  // infinity has order n, and that scalar multiplication was ~7% of the
  // plane's CPU per key release (bench/attest/README.md).
  return P256PublicFromPoint(point.data(), point.size(),
                             "P-256: (x, y) is not a point on the curve")
      .status();
}

// Low-order X25519 points give the all-zero shared secret for every private
// key (scalars are clamped to multiples of the cofactor 8), so one agreement
// with a throwaway key detects them; DeriveSharedSecret refuses that output.
Status ValidateX25519Point(ByteSpan point) {
  if (point.size() != kCoordinateSize) {
    return InvalidArgument("X25519 public key must be " + Sz(kCoordinateSize) + " bytes, got " +
                           Sz(point.size()));
  }
  ASSIGN_OR_RETURN(EcdhPrivateKey probe, EcdhPrivateKey::Generate(EcdhCurve::kX25519));
  auto z = probe.DeriveSharedSecret(point);
  if (!z.ok()) return z.status();
  return Status::Ok();
}

Json JwkJson(EcdhCurve curve, ByteSpan pub) {
  Json j = Json::object();
  if (curve == EcdhCurve::kP256) {
    j["kty"] = "EC";
    j["crv"] = "P-256";
    j["x"] = Base64UrlEncode(pub.subspan(1, kCoordinateSize));
    j["y"] = Base64UrlEncode(pub.subspan(1 + kCoordinateSize, kCoordinateSize));
  } else {
    j["kty"] = "OKP";
    j["crv"] = "X25519";
    j["x"] = Base64UrlEncode(pub);
  }
  return j;
}

StatusOr<Bytes> DecodeCoordinate(const Json& obj, const char* name, const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, RequireString(obj, name, what));
  auto bytes = Base64UrlDecode(text);
  if (!bytes.ok()) return bytes.status().WithContext(what + ": " + name);
  if (bytes->size() != kCoordinateSize) {
    return InvalidArgument(what + ": " + name + ": expected " + Sz(kCoordinateSize) +
                           " bytes, got " + Sz(bytes->size()));
  }
  return bytes;
}

Status CheckKeyMetadata(const Json& obj, const std::string& what) {
  for (const auto& [name, value] : obj.items()) {
    if (name == "kty" || name == "crv" || name == "x" || name == "y") continue;
    std::string where = what;
    where += ": ";
    where += name;
    if (name == "kid") {
      if (!value.is_string()) return InvalidArgument(where + ": expected a string");
    } else if (name == "use") {
      if (value != "enc") return InvalidArgument(where + ": expected \"enc\", got " + Show(value));
    } else if (name == "alg") {
      if (value != kJweAlg) {
        return InvalidArgument(where + ": expected \"" + std::string(kJweAlg) + "\", got " +
                               Show(value));
      }
    } else if (name == "key_ops") {
      if (!value.is_array()) return InvalidArgument(where + ": expected an array");
      for (const auto& op : value) {
        if (op != "deriveKey" && op != "deriveBits") {
          return InvalidArgument(where + ": operation " + Show(op) +
                                 " is not a key agreement operation");
        }
      }
    } else if (name == "ext") {
      if (!value.is_boolean()) return InvalidArgument(where + ": expected a boolean");
    } else {
      return InvalidArgument(where + ": unsupported JWK member");
    }
  }
  return Status::Ok();
}

// `allow_metadata`: a recipient JWK may carry kid/use/alg/key_ops/ext; an
// "epk" in a JWE header is exactly {kty, crv, x[, y]}.
StatusOr<JwkPublicKey> ParseJwkObject(const Json& obj, bool allow_metadata,
                                      const std::string& what) {
  if (!obj.is_object()) return InvalidArgument(what + ": expected a JSON object, got " + Show(obj));
  if (obj.contains("d")) {
    return InvalidArgument(what +
                           ": d: a private key member is present where a public key "
                           "is expected; refusing it");
  }
  ASSIGN_OR_RETURN(std::string kty, RequireString(obj, "kty", what));
  ASSIGN_OR_RETURN(std::string crv, RequireString(obj, "crv", what));
  EcdhCurve curve;
  if (kty == "EC") {
    if (crv != "P-256") {
      return InvalidArgument(what + ": crv: expected \"P-256\" for kty \"EC\", got " +
                             Show(Json(crv)));
    }
    curve = EcdhCurve::kP256;
  } else if (kty == "OKP") {
    if (crv != "X25519") {
      return InvalidArgument(what + ": crv: expected \"X25519\" for kty \"OKP\", got " +
                             Show(Json(crv)));
    }
    if (obj.contains("y")) return InvalidArgument(what + ": y: not allowed in an OKP key");
    curve = EcdhCurve::kX25519;
  } else {
    return InvalidArgument(what + ": kty: expected \"EC\" or \"OKP\", got " + Show(Json(kty)));
  }
  if (allow_metadata) {
    RETURN_IF_ERROR(CheckKeyMetadata(obj, what));
  } else {
    for (const auto& [name, value] : obj.items()) {
      if (name != "kty" && name != "crv" && name != "x" && name != "y") {
        std::string where = what;
        where += ": ";
        where += name;
        return InvalidArgument(where + ": unsupported member");
      }
    }
  }
  Bytes pub;
  ASSIGN_OR_RETURN(Bytes x, DecodeCoordinate(obj, "x", what));
  if (curve == EcdhCurve::kP256) {
    ASSIGN_OR_RETURN(Bytes y, DecodeCoordinate(obj, "y", what));
    pub.reserve(kP256PointSize);
    pub.push_back(0x04);
    pub.insert(pub.end(), x.begin(), x.end());
    pub.insert(pub.end(), y.begin(), y.end());
  } else {
    pub = std::move(x);
  }
  auto key = JwkPublicKey::FromPublicBytes(curve, pub);
  if (!key.ok()) return key.status().WithContext(what);
  return key;
}

// ---- compact serialization ----------------------------------------------------

struct ParsedHeader {
  std::optional<JwkPublicKey> epk;  // always set on success
  JweOptions options;
};

StatusOr<Bytes> DecodeOptionalB64(const Json& header, const char* name, const std::string& what) {
  const auto it = header.find(name);
  if (it == header.end()) return Bytes{};
  if (!it->is_string()) {
    return InvalidArgument(what + ": " + name + ": expected a base64url string, got " + Show(*it));
  }
  auto bytes = Base64UrlDecode(it->get<std::string>());
  if (!bytes.ok()) return bytes.status().WithContext(what + ": " + name);
  return bytes;
}

StatusOr<ParsedHeader> ParseProtectedHeader(std::string_view encoded, EcdhCurve curve) {
  const std::string what = "JWE protected header";
  if (encoded.empty()) return InvalidArgument(what + ": empty");
  if (encoded.size() > kMaxHeaderChars) {
    return InvalidArgument(what + ": " + Sz(encoded.size()) + " characters exceeds the limit of " +
                           Sz(kMaxHeaderChars));
  }
  auto raw = Base64UrlDecode(encoded);
  if (!raw.ok()) return raw.status().WithContext(what);
  const std::string_view text(reinterpret_cast<const char*>(raw->data()), raw->size());
  ASSIGN_OR_RETURN(Json header, ParseStrictJson(text, what));
  if (!header.is_object()) return InvalidArgument(what + ": expected a JSON object");

  // Fail closed: parameters we do not implement are refused, not ignored.
  for (const auto& [name, value] : header.items()) {
    if (name == "zip") {
      return InvalidArgument(what + ": zip: compressed JWEs are not accepted");
    }
    if (name == "crit") {
      return InvalidArgument(what + ": crit: no critical header extensions are supported");
    }
    if (name != "alg" && name != "enc" && name != "epk" && name != "apu" && name != "apv" &&
        name != "kid" && name != "typ" && name != "cty") {
      return InvalidArgument(what + ": " + Show(Json(name)) + ": unsupported header parameter");
    }
  }
  ASSIGN_OR_RETURN(std::string alg, RequireString(header, "alg", what));
  if (alg != kJweAlg) {
    return InvalidArgument(what + ": alg: expected \"" + std::string(kJweAlg) + "\", got " +
                           Show(Json(alg)));
  }
  ASSIGN_OR_RETURN(std::string enc, RequireString(header, "enc", what));
  if (enc != kJweEnc) {
    return InvalidArgument(what + ": enc: expected \"" + std::string(kJweEnc) + "\", got " +
                           Show(Json(enc)));
  }
  for (const char* name : {"kid", "typ", "cty"}) {
    if (header.contains(name) && !header.at(name).is_string()) {
      return InvalidArgument(what + ": " + name + ": expected a string");
    }
  }
  const auto epk_it = header.find("epk");
  if (epk_it == header.end()) return InvalidArgument(what + ": epk: missing");
  ASSIGN_OR_RETURN(JwkPublicKey epk,
                   ParseJwkObject(*epk_it, /*allow_metadata=*/false, what + ": epk"));
  if (epk.curve() != curve) {
    return InvalidArgument(what + ": epk: curve " + CurveName(epk.curve()) +
                           " does not match the recipient key's curve " + CurveName(curve));
  }
  ParsedHeader out;
  out.epk.emplace(std::move(epk));
  ASSIGN_OR_RETURN(out.options.apu, DecodeOptionalB64(header, "apu", what));
  ASSIGN_OR_RETURN(out.options.apv, DecodeOptionalB64(header, "apv", what));
  if (header.contains("kid")) out.options.kid = header.at("kid").get<std::string>();
  return out;
}

StatusOr<Bytes> DecodePart(std::string_view text, const char* part, size_t want_size) {
  auto bytes = Base64UrlDecode(text);
  if (!bytes.ok()) return bytes.status().WithContext(part);
  if (want_size != 0 && bytes->size() != want_size) {
    return InvalidArgument(std::string(part) + ": expected " + Sz(want_size) + " bytes, got " +
                           Sz(bytes->size()));
  }
  return bytes;
}

// The KEK both sides derive: Concat KDF over Z with AlgorithmID = alg, since
// this is key agreement with key wrapping (RFC 7518 4.6.2).
StatusOr<SecretBytes> DeriveKek(const EcdhPrivateKey& own, const JwkPublicKey& peer,
                                const JweOptions& opts) {
  ASSIGN_OR_RETURN(SecretBytes z, own.DeriveSharedSecret(peer.public_bytes()));
  SecretBytes kek(kKekSize);
  RETURN_IF_ERROR(ConcatKdfSha256(z.span(), kJweAlg, opts.apu, opts.apv, kek.span()));
  return kek;
}

StatusOr<std::string> EncryptImpl(const JwkPublicKey& to, ByteSpan plaintext,
                                  const JweOptions& opts) {
  if (plaintext.size() > kJweMaxCompactSize) {
    return InvalidArgument("JWE: plaintext of " + Sz(plaintext.size()) +
                           " bytes exceeds the limit of " + Sz(kJweMaxCompactSize));
  }
  ASSIGN_OR_RETURN(EcdhPrivateKey ephemeral, EcdhPrivateKey::Generate(to.curve()));
  ASSIGN_OR_RETURN(Bytes ephemeral_pub, ephemeral.PublicKey());
  ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(ephemeral, to, opts));
  ASSIGN_OR_RETURN(SecretBytes cek, RandomSecret(kCekSize));
  ASSIGN_OR_RETURN(Bytes wrapped, Aes256KeyWrap(kek.span(), cek.span()));
  Bytes iv(Aes256Gcm::kNonceSize);
  RETURN_IF_ERROR(RandomBytes(iv));

  Json header = Json::object();
  header["alg"] = kJweAlg;
  header["enc"] = kJweEnc;
  header["epk"] = JwkJson(to.curve(), ephemeral_pub);
  if (!opts.kid.empty()) header["kid"] = opts.kid;
  if (!opts.apu.empty()) header["apu"] = Base64UrlEncode(opts.apu);
  if (!opts.apv.empty()) header["apv"] = Base64UrlEncode(opts.apv);
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const Json::type_error&) {
    return InvalidArgument("JWE: kid: not valid UTF-8");
  }
  const std::string header_b64 = Base64UrlEncode(AsBytes(header_text));

  ASSIGN_OR_RETURN(Aes256Gcm gcm, Aes256Gcm::Create(cek.span()));
  Bytes sealed(plaintext.size() + Aes256Gcm::kTagSize);
  // AAD = ASCII(BASE64URL(UTF8(JWE Protected Header))), RFC 7516 5.1 step 14.
  RETURN_IF_ERROR(gcm.Seal(iv, AsBytes(header_b64), plaintext, sealed));
  const ByteSpan sealed_span(sealed);
  std::string out = header_b64;
  out += '.';
  out += Base64UrlEncode(wrapped);
  out += '.';
  out += Base64UrlEncode(iv);
  out += '.';
  out += Base64UrlEncode(sealed_span.first(plaintext.size()));
  out += '.';
  out += Base64UrlEncode(sealed_span.subspan(plaintext.size()));
  if (out.size() > kJweMaxCompactSize) {
    return InvalidArgument("JWE: result of " + Sz(out.size()) +
                           " characters exceeds the limit of " + Sz(kJweMaxCompactSize));
  }
  return out;
}

}  // namespace

// ---- base64url ------------------------------------------------------------------

std::string Base64UrlEncode(ByteSpan bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{bytes[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

namespace {

// base64url digit values; -1 for every byte outside the alphabet.
constexpr std::array<int8_t, 256> kBase64UrlValues = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<int8_t>(i);
    t['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}();

Status InvalidBase64UrlCharacter(std::string_view text, size_t i) {
  const auto u = static_cast<unsigned char>(text[i]);
  return InvalidArgument("base64url: invalid character " +
                         (u >= 0x20 && u < 0x7f ? "'" + std::string(1, text[i]) + "'"
                                                : "0x" + ToHex(ByteSpan(&u, 1))) +
                         " at offset " + Sz(i) + (text[i] == '=' ? " (padding not allowed)" : ""));
}

Status NonCanonicalBase64Url() {
  return InvalidArgument("base64url: non-canonical encoding (unused bits set)");
}

}  // namespace

// Four characters at a time into a buffer sized up front (quotes in
// /kbs/v0/attest are ~13k characters: this was a push_back per byte).
StatusOr<Bytes> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return InvalidArgument("base64url: length " + Sz(text.size()) + " is not a valid encoding");
  }
  const size_t full = text.size() / 4;
  const size_t rest = text.size() % 4;  // 0, 2 or 3 characters: 0, 1 or 2 bytes
  Bytes out(full * 3 + (rest == 0 ? 0 : rest - 1));
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  uint8_t* o = out.data();
  for (size_t g = 0; g < full; ++g, in += 4, o += 3) {
    const int a = kBase64UrlValues[in[0]], b = kBase64UrlValues[in[1]];
    const int c = kBase64UrlValues[in[2]], d = kBase64UrlValues[in[3]];
    if ((a | b | c | d) < 0) {
      for (size_t i = g * 4;; ++i) {
        if (kBase64UrlValues[static_cast<unsigned char>(text[i])] < 0) {
          return InvalidBase64UrlCharacter(text, i);
        }
      }
    }
    const uint32_t v = (static_cast<uint32_t>(a) << 18) | (static_cast<uint32_t>(b) << 12) |
                       (static_cast<uint32_t>(c) << 6) | static_cast<uint32_t>(d);
    o[0] = static_cast<uint8_t>(v >> 16);
    o[1] = static_cast<uint8_t>(v >> 8);
    o[2] = static_cast<uint8_t>(v);
  }
  if (rest != 0) {
    uint32_t v = 0;
    for (size_t k = 0; k < rest; ++k) {
      const int x = kBase64UrlValues[in[k]];
      if (x < 0) return InvalidBase64UrlCharacter(text, full * 4 + k);
      v = (v << 6) | static_cast<uint32_t>(x);
    }
    // Leftover bits (2 or 4) must be zero, or two strings would decode to
    // the same bytes.
    if (rest == 2) {
      if ((v & 0xf) != 0) return NonCanonicalBase64Url();
      o[0] = static_cast<uint8_t>(v >> 4);
    } else {
      if ((v & 0x3) != 0) return NonCanonicalBase64Url();
      o[0] = static_cast<uint8_t>(v >> 10);
      o[1] = static_cast<uint8_t>(v >> 2);
    }
  }
  return out;
}

// ---- Concat KDF -------------------------------------------------------------------

Status ConcatKdfSha256(ByteSpan z, std::string_view algorithm_id, ByteSpan apu, ByteSpan apv,
                       std::span<uint8_t> out) {
  if (out.empty() || out.size() > kMaxKdfOutput) {
    return InvalidArgument("Concat KDF: output length must be 1.." + Sz(kMaxKdfOutput) +
                           " bytes, got " + Sz(out.size()));
  }
  constexpr size_t kMaxField = std::numeric_limits<uint32_t>::max();
  if (algorithm_id.size() > kMaxField || apu.size() > kMaxField || apv.size() > kMaxField) {
    return InvalidArgument("Concat KDF: an OtherInfo field is longer than 2^32-1 bytes");
  }
  Bytes other_info;
  auto put_u32 = [&other_info](size_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      other_info.push_back(static_cast<uint8_t>(v >> shift));
    }
  };
  auto put_field = [&](ByteSpan field) {
    put_u32(field.size());
    other_info.insert(other_info.end(), field.begin(), field.end());
  };
  put_field(AsBytes(algorithm_id));  // AlgorithmID
  put_field(apu);                    // PartyUInfo
  put_field(apv);                    // PartyVInfo
  put_u32(out.size() * 8);           // SuppPubInfo: keydatalen in bits

  // NIST SP 800-56A's single-step KDF with SHA-256 (what OpenSSL's SSKDF
  // computes): round i hashes counter i (32-bit big-endian) || Z ||
  // OtherInfo. Hashed here with the process's fetched SHA-256: OpenSSL
  // 3.0's SSKDF fetches the KDF and the digest by name on every call.
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return OpensslInternal("Concat KDF: EVP_MD_CTX_new");
  std::array<uint8_t, 32> block{};
  size_t done = 0;
  for (uint32_t round = 1; done < out.size(); ++round) {
    const uint8_t counter[4] = {static_cast<uint8_t>(round >> 24),
                                static_cast<uint8_t>(round >> 16), static_cast<uint8_t>(round >> 8),
                                static_cast<uint8_t>(round)};
    unsigned int len = 0;
    if (EVP_DigestInit_ex(ctx.get(), internal::Sha256Md(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), counter, sizeof counter) != 1 ||
        EVP_DigestUpdate(ctx.get(), Ptr(z), z.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), other_info.data(), other_info.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), block.data(), &len) != 1 || len != block.size()) {
      OPENSSL_cleanse(block.data(), block.size());
      OPENSSL_cleanse(out.data(), out.size());
      return OpensslInternal("Concat KDF: SHA-256");
    }
    const size_t n = std::min(block.size(), out.size() - done);
    std::memcpy(out.data() + done, block.data(), n);
    done += n;
  }
  OPENSSL_cleanse(block.data(), block.size());
  return Status::Ok();
}

// ---- AES key wrap -------------------------------------------------------------------

namespace {

// Returns the cipher context for AES-256 key wrap in the given direction.
StatusOr<CipherCtxPtr> KeyWrapContext(ByteSpan kek, bool wrap) {
  if (kek.size() != kKekSize) {
    return InvalidArgument("AES key wrap: KEK must be " + Sz(kKekSize) + " bytes, got " +
                           Sz(kek.size()));
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpensslInternal("AES key wrap: EVP_CIPHER_CTX_new");
  // The wrap modes are refused by EVP unless the caller opts in, because
  // their Update calls are one-shot rather than streaming.
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  // A null IV selects the RFC 3394 default IV A6A6A6A6A6A6A6A6.
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr,
                        wrap ? 1 : 0) != 1) {
    return OpensslInternal("AES key wrap: EVP_CipherInit_ex");
  }
  return ctx;
}

Status CheckKeyWrapInputSize(size_t size, size_t min, const char* what) {
  if (size < min || size % kKeyWrapBlock != 0 ||
      size > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgument(std::string("AES key wrap: ") + what + " must be a multiple of " +
                           Sz(kKeyWrapBlock) + " bytes and at least " + Sz(min) + ", got " +
                           Sz(size));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Bytes> Aes256KeyWrap(ByteSpan kek, ByteSpan key) {
  RETURN_IF_ERROR(CheckKeyWrapInputSize(key.size(), 2 * kKeyWrapBlock, "key"));
  ASSIGN_OR_RETURN(CipherCtxPtr ctx, KeyWrapContext(kek, /*wrap=*/true));
  Bytes out(key.size() + kKeyWrapBlock);
  int len = 0;
  int final_len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &len, key.data(), static_cast<int>(key.size())) !=
          1 ||
      static_cast<size_t>(len) != out.size() ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + len, &final_len) != 1 || final_len != 0) {
    return OpensslInternal("AES key wrap: wrap");
  }
  return out;
}

StatusOr<SecretBytes> Aes256KeyUnwrap(ByteSpan kek, ByteSpan wrapped) {
  RETURN_IF_ERROR(CheckKeyWrapInputSize(wrapped.size(), 3 * kKeyWrapBlock, "wrapped key"));
  ASSIGN_OR_RETURN(CipherCtxPtr ctx, KeyWrapContext(kek, /*wrap=*/false));
  SecretBytes out(wrapped.size() - kKeyWrapBlock);
  int len = 0;
  int final_len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &len, wrapped.data(),
                       static_cast<int>(wrapped.size())) != 1 ||
      static_cast<size_t>(len) != out.size() ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + len, &final_len) != 1 || final_len != 0) {
    // The only failure for well-formed input is the integrity check (the
    // unwrapped IV is not A6A6...). out is wiped when it goes out of scope.
    return OpensslFailure(StatusCode::kDataLoss, "AES key unwrap: integrity check failed");
  }
  return out;
}

// ---- JwkPublicKey ---------------------------------------------------------------------

StatusOr<JwkPublicKey> JwkPublicKey::FromJwk(std::string_view json) {
  try {
    ASSIGN_OR_RETURN(Json j, ParseStrictJson(json, "JWK"));
    return ParseJwkObject(j, /*allow_metadata=*/true, "JWK");
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("JWK: ") + e.what());
  }
}

StatusOr<JwkPublicKey> JwkPublicKey::FromPublicBytes(EcdhCurve curve, ByteSpan public_key) {
  RETURN_IF_ERROR(curve == EcdhCurve::kP256 ? ValidateP256Point(public_key)
                                            : ValidateX25519Point(public_key));
  return JwkPublicKey(curve, Bytes(public_key.begin(), public_key.end()));
}

std::string JwkPublicKey::ToJwk() const {
  // nlohmann::json keeps object members sorted and dump() adds no
  // whitespace: exactly the RFC 7638 form for these ASCII members.
  return JwkJson(curve_, public_).dump();
}

std::string JwkPublicKey::Thumbprint() const {
  const std::string canonical = ToJwk();
  const Sha256Digest digest = Sha256(AsBytes(canonical));
  return Base64UrlEncode(digest);
}

// ---- EphemeralKey -----------------------------------------------------------------------

StatusOr<EphemeralKey> EphemeralKey::Generate(EcdhCurve curve) {
  ASSIGN_OR_RETURN(EcdhPrivateKey key, EcdhPrivateKey::Generate(curve));
  return FromEcdhKey(std::move(key));
}

StatusOr<EphemeralKey> EphemeralKey::FromEcdhKey(EcdhPrivateKey key) {
  ASSIGN_OR_RETURN(Bytes pub_bytes, key.PublicKey());
  ASSIGN_OR_RETURN(JwkPublicKey pub, JwkPublicKey::FromPublicBytes(key.curve(), pub_bytes));
  return EphemeralKey(std::move(key), std::move(pub));
}

// ---- encrypt / decrypt --------------------------------------------------------------------

StatusOr<std::string> JweEncrypt(const JwkPublicKey& to, ByteSpan plaintext,
                                 const JweOptions& opts) {
  try {
    return EncryptImpl(to, plaintext, opts);
  } catch (const std::exception& e) {
    return Internal(std::string("JWE encrypt: ") + e.what());
  }
}

StatusOr<SecretBytes> JweDecrypt(const EphemeralKey& key, std::string_view compact,
                                 JweOptions* header_out) {
  try {
    if (compact.size() > kJweMaxCompactSize) {
      return InvalidArgument("JWE: " + Sz(compact.size()) + " characters exceeds the limit of " +
                             Sz(kJweMaxCompactSize));
    }
    std::array<std::string_view, 5> parts;
    size_t count = 0;
    size_t start = 0;
    while (true) {
      const size_t dot = compact.find('.', start);
      if (count == parts.size()) {
        count = parts.size() + 1;  // too many parts
        break;
      }
      parts[count++] = compact.substr(start, dot == std::string_view::npos ? dot : dot - start);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    if (count != parts.size()) {
      return InvalidArgument("JWE: compact serialization must have 5 parts separated by '.', got " +
                             (count > parts.size() ? "more" : Sz(count)));
    }

    ASSIGN_OR_RETURN(ParsedHeader header, ParseProtectedHeader(parts[0], key.curve()));
    ASSIGN_OR_RETURN(Bytes wrapped, DecodePart(parts[1], "JWE encrypted key", kWrappedCekSize));
    ASSIGN_OR_RETURN(Bytes iv, DecodePart(parts[2], "JWE IV", Aes256Gcm::kNonceSize));
    ASSIGN_OR_RETURN(Bytes sealed, DecodePart(parts[3], "JWE ciphertext", 0));
    ASSIGN_OR_RETURN(Bytes tag, DecodePart(parts[4], "JWE tag", Aes256Gcm::kTagSize));

    auto kek = DeriveKek(key.private_, *header.epk, header.options);
    if (!kek.ok()) return kek.status().WithContext("JWE protected header: epk");
    auto cek = Aes256KeyUnwrap(kek->span(), wrapped);
    if (!cek.ok()) {
      if (cek.status().code() == StatusCode::kDataLoss) {
        return DataLoss(
            "JWE encrypted key: AES key unwrap integrity check failed (wrong recipient key, or "
            "the encrypted key, epk, apu or apv was modified)");
      }
      return cek.status().WithContext("JWE encrypted key");
    }
    ASSIGN_OR_RETURN(Aes256Gcm gcm, Aes256Gcm::Create(cek->span()));
    const size_t plaintext_size = sealed.size();
    sealed.insert(sealed.end(), tag.begin(), tag.end());
    SecretBytes plaintext(plaintext_size);
    const Status opened = gcm.Open(iv, AsBytes(parts[0]), sealed, plaintext.span());
    if (!opened.ok()) {
      if (opened.code() == StatusCode::kDataLoss) {
        return DataLoss(
            "JWE tag: AES-256-GCM authentication failed (the ciphertext, IV, tag or protected "
            "header was modified)");
      }
      return opened.WithContext("JWE ciphertext");
    }
    if (header_out != nullptr) *header_out = std::move(header.options);
    return plaintext;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("JWE: ") + e.what());
  }
}

}  // namespace cce::crypto
