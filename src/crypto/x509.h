// x509: the X.509 pieces cce4long needs, over OpenSSL 3. The Privacy Plane
// mints its own small PKI (a CA and a TLS server certificate), and TDX
// attestation verifies Intel's PCK certificate chains against a pinned root
// with CRLs at an injected time. PEM strings in and out; private keys are
// PKCS#8 PEM held in SecretBytes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::crypto {

// ---- minting a PKI -----------------------------------------------------------

struct CertificateAuthority {
  std::string cert_pem;
  SecretBytes key_pem;  // PKCS#8 "PRIVATE KEY"
};

// Self-signed ECDSA P-256 / SHA-256 CA: subject CN=common_name, random 128-bit
// serial, basicConstraints critical CA:TRUE pathlen:0, keyUsage critical
// keyCertSign+cRLSign, subject and authority key identifiers. Valid from
// not_before_unix for validity_days (1..36500) days.
StatusOr<CertificateAuthority> CreateCertificateAuthority(std::string_view common_name,
                                                          int64_t not_before_unix,
                                                          int64_t validity_days);

struct IssuedCertificate {
  std::string cert_pem;
  SecretBytes key_pem;  // PKCS#8 "PRIVATE KEY"
};

// A TLS server certificate for a new P-256 key, signed by ca: subjectAltName
// with the DNS names and IP addresses (IPv4 dotted quad or IPv6 text; at least
// one entry overall), extendedKeyUsage serverAuth, keyUsage critical
// digitalSignature, basicConstraints critical CA:FALSE, key identifiers.
// Names are validated and encoded one by one (never through OpenSSL's config
// syntax), and an invalid one is named in the error.
StatusOr<IssuedCertificate> IssueServerCertificate(const CertificateAuthority& ca,
                                                   std::string_view common_name,
                                                   const std::vector<std::string>& dns_names,
                                                   const std::vector<std::string>& ip_addresses,
                                                   int64_t not_before_unix, int64_t validity_days);

// A development PKI with the shape of another one (the simulated TDX PKI of
// src/attest/sim.h) needs a few more knobs: validity to the second, CA path
// lengths, and extensions carried verbatim.

// An extension added as given: a dotted OID, criticality, and the DER that
// becomes the content of its extnValue OCTET STRING (exactly one DER value).
struct RawExtension {
  std::string oid;  // e.g. "1.2.840.113741.1.13.1"
  bool critical = false;
  Bytes der;
};

struct CertificateProfile {
  std::string common_name;  // the subject is CN=common_name only
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;  // after not_before_unix
  bool is_ca = false;
  int path_length = -1;  // CAs only: -1 = no pathLenConstraint, else 0..16
  // Added after the standard ones, in order. basicConstraints, keyUsage and
  // the key identifiers are the profile's own and cannot be given here.
  std::vector<RawExtension> extra_extensions;
};

// A certificate for a new P-256 key (ECDSA-SHA256, random 128-bit serial):
// basicConstraints critical (CA:TRUE[, pathlen] or CA:FALSE), keyUsage critical
// (CA: keyCertSign+cRLSign; otherwise digitalSignature+nonRepudiation), subject
// and authority key identifiers, then extra_extensions. issuer == nullptr
// makes it self-signed (then it must be a CA). Errors (kInvalidArgument) name
// the argument: an empty window, a bad OID, a value that is not one DER
// value, an extension given twice, an issuer that is not a CA or whose key
// does not match.
StatusOr<IssuedCertificate> IssueEcP256Certificate(const CertificateProfile& profile,
                                                   const CertificateAuthority* issuer);

// ---- parsed certificates and CRLs ---------------------------------------------

using EcP256PublicKey = std::array<uint8_t, 65>;  // 0x04 || X || Y

// An immutable parsed certificate. Copies share the underlying object.
class Certificate {
 public:
  Certificate(const Certificate&) = default;
  Certificate& operator=(const Certificate&) = default;
  // No move operations on purpose: a move copies, so no Certificate is ever
  // left empty.
  ~Certificate() = default;

  const std::string& subject() const;              // RFC 2253, e.g. "CN=x,O=y,C=US"
  const std::string& issuer() const;               // RFC 2253
  int64_t not_before() const;                      // unix seconds
  int64_t not_after() const;                       // unix seconds
  const std::string& serial_hex() const;           // lower-case hex, "-" prefix if negative
  const Sha256Digest& sha256_fingerprint() const;  // SHA-256 of der()
  const Bytes& public_key_der() const;             // SubjectPublicKeyInfo
  // Set only for EC keys on P-256.
  const std::optional<EcP256PublicKey>& ec_p256_public_key() const;
  // subjectAltName entries; IP addresses in canonical text form.
  const std::vector<std::string>& dns_names() const;
  const std::vector<std::string>& ip_addresses() const;
  const Bytes& der() const;

 private:
  friend struct X509Internals;
  struct Impl;
  explicit Certificate(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// Every "CERTIFICATE" block in order; any other block type, an undecodable
// block, or no certificate at all is an error.
StatusOr<std::vector<Certificate>> ParseCertificatesPem(std::string_view pem);
// Exactly one DER certificate, no trailing bytes.
StatusOr<Certificate> ParseCertificateDer(ByteSpan der);

class Crl {
 public:
  Crl(const Crl&) = default;
  Crl& operator=(const Crl&) = default;
  ~Crl() = default;  // as Certificate: moves copy

  const std::string& issuer() const;  // RFC 2253
  int64_t this_update() const;        // unix seconds
  int64_t next_update() const;        // unix seconds; a CRL without one is rejected
  const Bytes& der() const;

 private:
  friend struct X509Internals;
  struct Impl;
  explicit Crl(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// Exactly one "X509 CRL" block / one DER CRL.
StatusOr<Crl> ParseCrlPem(std::string_view pem);
StatusOr<Crl> ParseCrlDer(ByteSpan der);

// Minting, next to IssueEcP256Certificate: a v2 CRL (DER) by issuer with
// thisUpdate/nextUpdate as given, the serials of `revoked` (each must be
// issued by issuer), a CRL number and the authority key identifier, signed
// ECDSA-SHA256.
StatusOr<Bytes> CreateCrl(const CertificateAuthority& issuer, int64_t this_update_unix,
                          int64_t next_update_unix, const std::vector<Certificate>& revoked,
                          uint64_t crl_number);

// ---- chain verification (attestation) ------------------------------------------

struct ChainOptions {
  // With CRLs, every certificate in the chain, the trusted root included,
  // needs a current CRL from its issuer, or verification fails (OpenSSL
  // CRL_CHECK_ALL; a missing CRL never means "not revoked"). require_crls
  // additionally makes an empty crls list an error; with it false and no
  // CRLs, revocation is not checked at all.
  bool require_crls = true;
};

struct ChainResult {
  std::vector<Certificate> chain;  // leaf first, trusted root last
  bool revocation_checked = false;
};

// Builds and verifies leaf -> intermediates -> trusted_root at at_unix (never
// the wall clock) with strict X.509 checks. trusted_root is the only trust
// anchor, and the chain's top certificate must equal it byte for byte.
// Failures are kPermissionDenied naming the certificate, depth and the OpenSSL
// verify error; an empty crls list with require_crls is kFailedPrecondition.
StatusOr<ChainResult> VerifyChain(const Certificate& leaf,
                                  const std::vector<Certificate>& intermediates,
                                  const Certificate& trusted_root, const std::vector<Crl>& crls,
                                  int64_t at_unix, const ChainOptions& options);

// ---- ECDSA ---------------------------------------------------------------------

enum class SignatureEncoding {
  kDer,    // ECDSA-Sig-Value, strict DER
  kRawRS,  // 64 bytes r || s, big-endian (TDX quotes, Intel collateral)
};

// A fresh P-256 key: PKCS#8 PEM (as minted above) and its public point.
struct EcP256KeyPair {
  SecretBytes private_key_pem;
  std::array<uint8_t, 65> public_key{};  // 0x04 || X || Y
};
StatusOr<EcP256KeyPair> GenerateEcP256KeyPair();

// ECDSA P-256 with SHA-256 over message by a PKCS#8 PEM P-256 private key.
// kRawRS gives 64 bytes r || s (each left-padded to 32). Another key type is
// kInvalidArgument.
StatusOr<Bytes> SignEcdsaP256Sha256(const SecretBytes& private_key_pem, ByteSpan message,
                                    SignatureEncoding enc);

// ECDSA P-256 with SHA-256 over message. true: valid; false: a well-formed
// signature that does not verify; error (kInvalidArgument): malformed public
// key (not a 65-byte uncompressed point on the curve) or signature encoding.
StatusOr<bool> VerifyEcdsaP256Sha256(ByteSpan public_key_uncompressed_65, ByteSpan message,
                                     ByteSpan signature, SignatureEncoding enc);

}  // namespace cce::crypto
