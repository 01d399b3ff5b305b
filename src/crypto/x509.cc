// X.509 over OpenSSL 3: minting the Privacy Plane's PKI, parsing certificates
// and CRLs, chain verification at an injected time, and ECDSA P-256 checks.
// As in crypto.cc, deprecated OpenSSL APIs are compiled out.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/x509.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <ctime>
#include <utility>

#include "crypto/openssl_util.h"

namespace cce::crypto {
namespace {

// ---- RAII for OpenSSL handles ---------------------------------------------

using internal::DrainOpensslErrors;
using internal::Free;
using internal::MdCtxPtr;
using internal::OpensslFailure;
using internal::OpensslInternal;
using internal::OpensslInvalid;
using internal::ParamBldPtr;
using internal::ParamsPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;
using internal::Sz;

using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Free<ASN1_INTEGER_free>>;
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Free<ASN1_OCTET_STRING_free>>;
using Asn1Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Free<ASN1_IA5STRING_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Free<ASN1_TIME_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Free<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Free<X509_CRL_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;

// Stacks that borrow their elements: freeing one frees only the stack.
struct BorrowedX509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct BorrowedCrlStackFree {
  void operator()(STACK_OF(X509_CRL) * s) const { sk_X509_CRL_free(s); }
};
using BorrowedX509Stack = std::unique_ptr<STACK_OF(X509), BorrowedX509StackFree>;
using BorrowedCrlStack = std::unique_ptr<STACK_OF(X509_CRL), BorrowedCrlStackFree>;

// One PEM block as returned by PEM_read_bio (three OPENSSL_malloc'd buffers).
struct PemBlock {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  PemBlock() = default;
  PemBlock(const PemBlock&) = delete;
  PemBlock& operator=(const PemBlock&) = delete;
  ~PemBlock() {
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
  }
};

// ---- error helpers ---------------------------------------------------------

std::string Quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

const uint8_t* Ptr(ByteSpan s) {
  static constexpr uint8_t kEmpty = 0;
  return s.empty() ? &kEmpty : s.data();
}

// ---- small conversions -------------------------------------------------------

// BIO_new_mem_buf and the d2i functions take int/long lengths.
Status CheckIntLength(std::string_view what, size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) {
    return InvalidArgument(std::string(what) + ": input of " + Sz(n) + " bytes is too large");
  }
  return Status::Ok();
}

StatusOr<BioPtr> ReadOnlyBio(std::string_view what, ByteSpan bytes) {
  RETURN_IF_ERROR(CheckIntLength(what, bytes.size()));
  BioPtr bio(BIO_new_mem_buf(Ptr(bytes), static_cast<int>(bytes.size())));
  if (!bio) return OpensslInternal(std::string(what) + ": BIO_new_mem_buf");
  return bio;
}

// Reads everything left in a memory BIO.
StatusOr<std::string> BioToString(BIO* bio, std::string_view what) {
  const size_t n = BIO_ctrl_pending(bio);
  RETURN_IF_ERROR(CheckIntLength(what, n));
  std::string out(n, '\0');
  if (n > 0 && BIO_read(bio, out.data(), static_cast<int>(n)) != static_cast<int>(n)) {
    return OpensslInternal(std::string(what) + ": reading memory BIO");
  }
  return out;
}

StatusOr<std::string> NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return OpensslInternal("formatting distinguished name");
  }
  return BioToString(bio.get(), "formatting distinguished name");
}

// Seconds since the epoch; RFC 5280 times are UTC.
StatusOr<int64_t> Asn1TimeToUnix(const ASN1_TIME* t, std::string_view what) {
  if (t == nullptr) return InvalidArgument(std::string(what) + " is missing");
  Asn1TimePtr epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int secs = 0;
  if (!epoch || ASN1_TIME_diff(&days, &secs, epoch.get(), t) != 1) {
    return OpensslInvalid(std::string(what) + " is not a valid time");
  }
  return int64_t{days} * 86400 + secs;
}

template <typename T, int (*I2d)(const T*, unsigned char**)>
StatusOr<Bytes> ToDer(const T* obj, std::string_view what) {
  const int n = I2d(obj, nullptr);
  if (n <= 0) return OpensslInternal(std::string(what) + ": DER encoding");
  Bytes out(static_cast<size_t>(n));
  unsigned char* p = out.data();
  if (I2d(obj, &p) != n) return OpensslInternal(std::string(what) + ": DER encoding");
  return out;
}

StatusOr<std::string> SerialHex(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return OpensslInvalid("certificate serial number");
  Bytes mag(static_cast<size_t>(BN_num_bytes(bn.get())));
  if (!mag.empty() && BN_bn2bin(bn.get(), mag.data()) != static_cast<int>(mag.size())) {
    return OpensslInternal("certificate serial number");
  }
  std::string hex = mag.empty() ? std::string("00") : ToHex(mag);
  return BN_is_negative(bn.get()) != 0 ? "-" + hex : hex;
}

constexpr size_t kP256CoordinateSize = 32;
constexpr size_t kP256PointSize = 65;
constexpr size_t kP256RawSignatureSize = 64;
constexpr const char* kP256GroupName = SN_X9_62_prime256v1;

// The uncompressed point of an EC P-256 key, or nullopt for any other key.
// Read through the X/Y parameters so that a certificate carrying a compressed
// point still yields the 65-byte form.
StatusOr<std::optional<EcP256PublicKey>> EcP256Point(const EVP_PKEY* pkey) {
  if (pkey == nullptr || EVP_PKEY_is_a(pkey, "EC") != 1) return std::optional<EcP256PublicKey>();
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_len) != 1 ||
      std::string_view(group, group_len) != kP256GroupName) {
    ERR_clear_error();  // explicit parameters or another curve: not P-256
    return std::optional<EcP256PublicKey>();
  }
  BIGNUM* x_raw = nullptr;
  BIGNUM* y_raw = nullptr;
  const int x_ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x_raw);
  const int y_ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y_raw);
  BnPtr x(x_raw);
  BnPtr y(y_raw);
  EcP256PublicKey point{};
  point[0] = 0x04;
  if (x_ok != 1 || y_ok != 1 ||
      BN_bn2binpad(x.get(), point.data() + 1, kP256CoordinateSize) !=
          static_cast<int>(kP256CoordinateSize) ||
      BN_bn2binpad(y.get(), point.data() + 1 + kP256CoordinateSize, kP256CoordinateSize) !=
          static_cast<int>(kP256CoordinateSize)) {
    return OpensslInternal("reading P-256 public point");
  }
  return std::optional<EcP256PublicKey>(point);
}

// subjectAltName DNS and IP entries. Other name types are ignored; a repeated
// or undecodable extension, or an IP entry that is not 4 or 16 bytes, is an
// error (fail closed rather than guess what the issuer meant).
Status ReadSubjectAltNames(const X509* x, std::vector<std::string>& dns,
                           std::vector<std::string>& ips) {
  int crit = -1;
  GeneralNamesPtr gens(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, &crit, nullptr)));
  if (!gens) {
    if (crit == -1) return Status::Ok();  // absent
    if (crit == -2) return InvalidArgument("subjectAltName extension appears more than once");
    return OpensslInvalid("subjectAltName extension does not decode");
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(gens.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(gens.get(), i);
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    if (type == GEN_DNS) {
      dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                       static_cast<size_t>(ASN1_STRING_length(value)));
    } else if (type == GEN_IPADD) {
      const int len = ASN1_STRING_length(value);
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
      if (family < 0) {
        return InvalidArgument("subjectAltName IP address entry has " + std::to_string(len) +
                               " bytes (want 4 or 16)");
      }
      char text[INET6_ADDRSTRLEN] = {};
      if (inet_ntop(family, ASN1_STRING_get0_data(value), text, sizeof(text)) == nullptr) {
        return Internal("subjectAltName: inet_ntop failed");
      }
      ips.emplace_back(text);
    }
  }
  return Status::Ok();
}

// An IP address in the strict text forms inet_pton accepts: IPv4 dotted quad
// (no leading zeros, no surrounding space) or IPv6 without a zone.
std::optional<Bytes> ParseIpAddress(const std::string& s) {
  if (s.find('\0') != std::string::npos) return std::nullopt;
  Bytes v4(4);
  if (inet_pton(AF_INET, s.c_str(), v4.data()) == 1) return v4;
  Bytes v6(16);
  if (inet_pton(AF_INET6, s.c_str(), v6.data()) == 1) return v6;
  return std::nullopt;
}

// A host name: labels of letters, digits and inner hyphens (1-63 bytes each),
// at most 253 bytes; the first label may be the wildcard "*".
bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  bool first = true;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (!(first && label == "*")) {
      if (label.front() == '-' || label.back() == '-') return false;
      for (char c : label) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) return false;
      }
    }
    if (dot == std::string_view::npos) return !(first && label == "*");  // not just "*"
    start = dot + 1;
    first = false;
  }
}

}  // namespace

// ---- Certificate / Crl internals ----------------------------------------------

struct Certificate::Impl {
  X509Ptr x509;
  std::string subject;
  std::string issuer;
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::string serial_hex;
  Sha256Digest fingerprint{};
  Bytes spki_der;
  std::optional<EcP256PublicKey> ec_point;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  Bytes der;
};

struct Crl::Impl {
  X509CrlPtr crl;
  std::string issuer;
  int64_t this_update = 0;
  int64_t next_update = 0;
  Bytes der;
};

// The one place that sees through Certificate and Crl.
struct X509Internals {
  // Takes ownership of x and reads every field once, so the accessors cannot
  // fail later.
  static StatusOr<Certificate> FromX509(X509Ptr x) {
    auto impl = std::make_shared<Certificate::Impl>();
    ASSIGN_OR_RETURN(impl->subject, NameToString(X509_get_subject_name(x.get())));
    ASSIGN_OR_RETURN(impl->issuer, NameToString(X509_get_issuer_name(x.get())));
    const std::string who = "certificate " + Quoted(impl->subject);
    ASSIGN_OR_RETURN(impl->not_before,
                     Asn1TimeToUnix(X509_get0_notBefore(x.get()), who + ": notBefore"));
    ASSIGN_OR_RETURN(impl->not_after,
                     Asn1TimeToUnix(X509_get0_notAfter(x.get()), who + ": notAfter"));
    auto serial = SerialHex(X509_get0_serialNumber(x.get()));
    if (!serial.ok()) return serial.status().WithContext(who);
    impl->serial_hex = std::move(serial).value();
    ASSIGN_OR_RETURN(impl->der, (ToDer<X509, i2d_X509>(x.get(), who)));
    impl->fingerprint = Sha256(impl->der);
    ASSIGN_OR_RETURN(impl->spki_der, (ToDer<X509_PUBKEY, i2d_X509_PUBKEY>(
                                         X509_get_X509_PUBKEY(x.get()), who + ": public key")));
    // X509_get0_pubkey is null for key types this OpenSSL cannot decode; such
    // a certificate still parses, it just has no P-256 point.
    const EVP_PKEY* pkey = X509_get0_pubkey(x.get());
    if (pkey == nullptr) ERR_clear_error();
    auto point = EcP256Point(pkey);
    if (!point.ok()) return point.status().WithContext(who);
    impl->ec_point = *point;
    const Status sans = ReadSubjectAltNames(x.get(), impl->dns_names, impl->ip_addresses);
    if (!sans.ok()) return sans.WithContext(who);
    impl->x509 = std::move(x);
    return Certificate(std::move(impl));
  }

  static StatusOr<Crl> FromX509Crl(X509CrlPtr crl) {
    auto impl = std::make_shared<Crl::Impl>();
    ASSIGN_OR_RETURN(impl->issuer, NameToString(X509_CRL_get_issuer(crl.get())));
    const std::string who = "CRL from " + Quoted(impl->issuer);
    ASSIGN_OR_RETURN(impl->this_update,
                     Asn1TimeToUnix(X509_CRL_get0_lastUpdate(crl.get()), who + ": thisUpdate"));
    // RFC 5280 5.1.2.5 requires nextUpdate; without it OpenSSL would treat
    // the CRL as current forever, which is not a property we can accept.
    ASSIGN_OR_RETURN(impl->next_update,
                     Asn1TimeToUnix(X509_CRL_get0_nextUpdate(crl.get()), who + ": nextUpdate"));
    ASSIGN_OR_RETURN(impl->der, (ToDer<X509_CRL, i2d_X509_CRL>(crl.get(), who)));
    impl->crl = std::move(crl);
    return Crl(std::move(impl));
  }

  static X509* Get(const Certificate& c) { return c.impl_->x509.get(); }
  static X509_CRL* Get(const Crl& c) { return c.impl_->crl.get(); }
};

Certificate::Certificate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
const std::string& Certificate::subject() const {
  return impl_->subject;
}
const std::string& Certificate::issuer() const {
  return impl_->issuer;
}
int64_t Certificate::not_before() const {
  return impl_->not_before;
}
int64_t Certificate::not_after() const {
  return impl_->not_after;
}
const std::string& Certificate::serial_hex() const {
  return impl_->serial_hex;
}
const Sha256Digest& Certificate::sha256_fingerprint() const {
  return impl_->fingerprint;
}
const Bytes& Certificate::public_key_der() const {
  return impl_->spki_der;
}
const std::optional<EcP256PublicKey>& Certificate::ec_p256_public_key() const {
  return impl_->ec_point;
}
const std::vector<std::string>& Certificate::dns_names() const {
  return impl_->dns_names;
}
const std::vector<std::string>& Certificate::ip_addresses() const {
  return impl_->ip_addresses;
}
const Bytes& Certificate::der() const {
  return impl_->der;
}

Crl::Crl(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
const std::string& Crl::issuer() const {
  return impl_->issuer;
}
int64_t Crl::this_update() const {
  return impl_->this_update;
}
int64_t Crl::next_update() const {
  return impl_->next_update;
}
const Bytes& Crl::der() const {
  return impl_->der;
}

// ---- parsing -------------------------------------------------------------------

namespace {

// Calls on_block(name, der) for each PEM block; no block at all is an error.
template <typename OnBlock>
Status ForEachPemBlock(std::string_view what, std::string_view pem, OnBlock on_block) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(what, AsBytes(pem)));
  size_t index = 0;
  while (true) {
    PemBlock block;
    if (PEM_read_bio(bio.get(), &block.name, &block.header, &block.data, &block.len) != 1) {
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // clean end of input
        if (index == 0) return InvalidArgument(std::string(what) + ": no PEM block found");
        return Status::Ok();
      }
      return OpensslInvalid(std::string(what) + ": PEM block " + Sz(index + 1) + " is malformed");
    }
    const Status s = on_block(std::string_view(block.name),
                              ByteSpan(block.data, static_cast<size_t>(block.len)));
    if (!s.ok()) return s.WithContext(std::string(what) + ": PEM block " + Sz(index + 1));
    ++index;
  }
}

StatusOr<Certificate> CertificateFromDer(ByteSpan der) {
  RETURN_IF_ERROR(CheckIntLength("certificate DER", der.size()));
  const unsigned char* p = der.data();
  X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x) return OpensslInvalid("certificate DER does not decode");
  if (p != der.data() + der.size()) {
    return InvalidArgument("certificate DER has " +
                           Sz(der.size() - static_cast<size_t>(p - der.data())) +
                           " trailing bytes");
  }
  return X509Internals::FromX509(std::move(x));
}

StatusOr<Crl> CrlFromDer(ByteSpan der) {
  RETURN_IF_ERROR(CheckIntLength("CRL DER", der.size()));
  const unsigned char* p = der.data();
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl) return OpensslInvalid("CRL DER does not decode");
  if (p != der.data() + der.size()) {
    return InvalidArgument("CRL DER has " + Sz(der.size() - static_cast<size_t>(p - der.data())) +
                           " trailing bytes");
  }
  return X509Internals::FromX509Crl(std::move(crl));
}

}  // namespace

StatusOr<std::vector<Certificate>> ParseCertificatesPem(std::string_view pem) {
  std::vector<Certificate> certs;
  RETURN_IF_ERROR(ForEachPemBlock(
      "certificate PEM", pem, [&certs](std::string_view name, ByteSpan der) -> Status {
        if (name != PEM_STRING_X509) {
          return InvalidArgument("expected CERTIFICATE, found " + Quoted(name));
        }
        ASSIGN_OR_RETURN(Certificate c, CertificateFromDer(der));
        certs.push_back(std::move(c));
        return Status::Ok();
      }));
  return certs;
}

StatusOr<Certificate> ParseCertificateDer(ByteSpan der) {
  return CertificateFromDer(der);
}

StatusOr<Crl> ParseCrlPem(std::string_view pem) {
  std::optional<Crl> crl;
  RETURN_IF_ERROR(
      ForEachPemBlock("CRL PEM", pem, [&crl](std::string_view name, ByteSpan der) -> Status {
        if (name != PEM_STRING_X509_CRL) {
          return InvalidArgument("expected X509 CRL, found " + Quoted(name));
        }
        if (crl.has_value()) {
          return InvalidArgument("expected exactly one CRL");
        }
        ASSIGN_OR_RETURN(Crl c, CrlFromDer(der));
        crl.emplace(std::move(c));
        return Status::Ok();
      }));
  return *crl;
}

StatusOr<Crl> ParseCrlDer(ByteSpan der) {
  return CrlFromDer(der);
}

// ---- minting -------------------------------------------------------------------

namespace {

constexpr int64_t kMaxValidityDays = 36500;
constexpr int64_t kMaxUnixTime = 253402300799;  // 9999-12-31T23:59:59Z, RFC 5280 4.1.2.5
constexpr int64_t kSecondsPerDay = 86400;

Status CheckValidity(std::string_view what, int64_t not_before, int64_t validity_days) {
  if (validity_days < 1 || validity_days > kMaxValidityDays) {
    return InvalidArgument(std::string(what) + ": validity_days must be in [1, " +
                           std::to_string(kMaxValidityDays) + "], got " +
                           std::to_string(validity_days));
  }
  if (not_before < 0 || not_before > kMaxUnixTime - validity_days * kSecondsPerDay) {
    return InvalidArgument(std::string(what) + ": not_before " + std::to_string(not_before) +
                           " plus " + std::to_string(validity_days) +
                           " days is outside 1970..9999");
  }
  return Status::Ok();
}

Status CheckCommonName(std::string_view what, std::string_view cn) {
  if (cn.empty()) return InvalidArgument(std::string(what) + ": common name is empty");
  for (char c : cn) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument(std::string(what) + ": common name contains a control character");
    }
  }
  return Status::Ok();
}

StatusOr<PkeyPtr> GenerateP256Key() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(ctx.get(), kP256GroupName) != 1 ||
      EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return OpensslInternal("P-256: key generation");
  }
  return PkeyPtr(raw);
}

// PKCS#8 PEM, written through a secure-heap BIO (its buffer is cleansed on
// free) straight into SecretBytes.
StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpensslInternal("encoding private key");
  }
  const size_t n = BIO_ctrl_pending(bio.get());
  RETURN_IF_ERROR(CheckIntLength("private key PEM", n));
  SecretBytes out(n);
  if (BIO_read(bio.get(), out.data(), static_cast<int>(n)) != static_cast<int>(n)) {
    return OpensslInternal("reading private key PEM");
  }
  return out;
}

int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;  // encrypted keys are not supported; never prompt on a terminal
}

StatusOr<PkeyPtr> LoadPrivateKeyPem(const SecretBytes& pem) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio("private key PEM", pem.span()));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  // The message never includes key bytes: OpenSSL errors name only reasons.
  if (!key) return OpensslInvalid("private key PEM does not decode");
  ERR_clear_error();  // decoders tried along the way may leave noise
  return key;
}

StatusOr<std::string> CertificatePem(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x) != 1) {
    return OpensslInternal("encoding certificate PEM");
  }
  return BioToString(bio.get(), "encoding certificate PEM");
}

Status SetRandomSerial(X509* x) {
  std::array<uint8_t, 16> bytes{};
  RETURN_IF_ERROR(RandomBytes(bytes));
  BnPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  // RFC 5280 4.1.2.2: the serial must be positive. All zero means a broken RNG.
  if (bn && BN_is_zero(bn.get()) != 0) return Internal("serial number: RNG returned zeros");
  Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial || X509_set_serialNumber(x, serial.get()) != 1) {
    return OpensslInternal("setting serial number");
  }
  return Status::Ok();
}

StatusOr<NamePtr> CommonNameOnly(std::string_view what, std::string_view cn) {
  RETURN_IF_ERROR(CheckCommonName(what, cn));
  RETURN_IF_ERROR(CheckIntLength(what, cn.size()));
  NamePtr name(X509_NAME_new());
  if (!name) return OpensslInternal(std::string(what) + ": X509_NAME_new");
  // OpenSSL enforces UTF-8 validity and the 64-character upper bound.
  if (X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return OpensslInvalid(std::string(what) + ": common name " + Quoted(cn) + " rejected");
  }
  return name;
}

// Version 3, serial, validity, subject and public key; the caller adds the
// issuer, extensions and signature.
StatusOr<X509Ptr> NewCertificate(std::string_view what, const X509_NAME* subject, EVP_PKEY* key,
                                 int64_t not_before, int64_t not_after) {
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) {
    return OpensslInternal(std::string(what) + ": X509_new");
  }
  RETURN_IF_ERROR(SetRandomSerial(x.get()));
  if (ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(not_after)) == nullptr) {
    return OpensslInternal(std::string(what) + ": setting validity");
  }
  if (X509_set_subject_name(x.get(), subject) != 1 || X509_set_pubkey(x.get(), key) != 1) {
    return OpensslInternal(std::string(what) + ": setting subject");
  }
  return x;
}

// Adds an extension from a constant OpenSSL config value. Only for fixed
// strings: caller-supplied names go through ASN.1 structures instead, so they
// cannot inject extra entries ("a.example,IP:1.2.3.4").
Status AddConstExtension(X509* issuer, X509* subject, int nid, const char* value) {
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, issuer, subject, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value));
  if (!ext || X509_add_ext(subject, ext.get(), -1) != 1) {
    return OpensslInternal(std::string("adding extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return Status::Ok();
}

Status AddSubjectAltNames(X509* x, const std::vector<std::string>& dns_names,
                          const std::vector<std::string>& ip_addresses) {
  GeneralNamesPtr gens(GENERAL_NAMES_new());
  if (!gens) return OpensslInternal("subjectAltName: GENERAL_NAMES_new");
  auto push = [&gens](int type, ASN1_STRING* value) -> bool {
    GeneralNamePtr gn(GENERAL_NAME_new());
    if (!gn) {
      ASN1_STRING_free(value);
      return false;
    }
    GENERAL_NAME_set0_value(gn.get(), type, value);  // gn owns value now
    if (sk_GENERAL_NAME_push(gens.get(), gn.get()) == 0) return false;
    (void)gn.release();  // the stack owns gn now
    return true;
  };
  for (size_t i = 0; i < dns_names.size(); ++i) {
    const std::string& name = dns_names[i];
    if (!IsValidDnsName(name)) {
      return InvalidArgument("dns_names[" + Sz(i) + "]: " + Quoted(name) +
                             " is not a valid DNS name");
    }
    Asn1Ia5StringPtr s(ASN1_IA5STRING_new());
    if (!s || ASN1_STRING_set(s.get(), name.data(), static_cast<int>(name.size())) != 1 ||
        !push(GEN_DNS, s.release())) {
      return OpensslInternal("subjectAltName: adding DNS name");
    }
  }
  for (size_t i = 0; i < ip_addresses.size(); ++i) {
    const std::string& text = ip_addresses[i];
    const std::optional<Bytes> ip = ParseIpAddress(text);
    if (!ip) {
      return InvalidArgument("ip_addresses[" + Sz(i) + "]: " + Quoted(text) +
                             " is not a valid IPv4 or IPv6 address");
    }
    Asn1OctetStringPtr o(ASN1_OCTET_STRING_new());
    if (!o || ASN1_OCTET_STRING_set(o.get(), ip->data(), static_cast<int>(ip->size())) != 1 ||
        !push(GEN_IPADD, o.release())) {
      return OpensslInternal("subjectAltName: adding IP address");
    }
  }
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpensslInternal("subjectAltName: adding extension");
  }
  return Status::Ok();
}

Status Sign(X509* x, EVP_PKEY* key) {
  if (X509_sign(x, key, EVP_sha256()) <= 0) return OpensslInternal("signing certificate");
  return Status::Ok();
}

// A CA ready to issue: its parsed certificate (a CA) and its matching key.
struct LoadedIssuer {
  Certificate cert;
  PkeyPtr key;
};

StatusOr<LoadedIssuer> LoadIssuer(const CertificateAuthority& ca) {
  auto ca_certs = ParseCertificatesPem(ca.cert_pem);
  if (!ca_certs.ok()) return ca_certs.status().WithContext("CA certificate");
  if (ca_certs->size() != 1) {
    return InvalidArgument("CA certificate: expected exactly one certificate, found " +
                           Sz(ca_certs->size()));
  }
  X509* ca_x509 = X509Internals::Get(ca_certs->front());
  const std::string& ca_subject = ca_certs->front().subject();
  if (X509_check_ca(ca_x509) != 1) {
    ERR_clear_error();
    return InvalidArgument("CA certificate " + Quoted(ca_subject) + " is not a CA");
  }
  auto ca_key = LoadPrivateKeyPem(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status().WithContext("CA key");
  if (X509_check_private_key(ca_x509, ca_key->get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("CA key does not match CA certificate " + Quoted(ca_subject));
  }
  return LoadedIssuer{ca_certs->front(), std::move(ca_key).value()};
}

// Validity given as two instants (the day-based minting above goes through
// CheckValidity instead).
Status CheckWindow(std::string_view what, int64_t not_before, int64_t not_after) {
  if (not_before < 0 || not_after <= not_before || not_after > kMaxUnixTime) {
    return InvalidArgument(std::string(what) + ": validity " + std::to_string(not_before) + ".." +
                           std::to_string(not_after) +
                           " is empty or outside 1970..9999 (want 0 <= not_before < not_after)");
  }
  return Status::Ok();
}

// One DER TLV spanning all of der, e.g. the value of an extension.
Status CheckSingleDerValue(std::string_view what, ByteSpan der) {
  RETURN_IF_ERROR(CheckIntLength(what, der.size()));
  const unsigned char* p = Ptr(der);
  long len = 0;
  int tag = 0;
  int xclass = 0;
  const int rc = ASN1_get_object(&p, &len, &tag, &xclass, static_cast<long>(der.size()));
  // Bit 0x80 flags an error, bit 0x01 an indefinite length (not DER).
  if (der.empty() || (rc & 0x80) != 0 || (rc & 0x01) != 0 || p + len != Ptr(der) + der.size()) {
    ERR_clear_error();
    return InvalidArgument(std::string(what) + ": not exactly one DER value (" + Sz(der.size()) +
                           " bytes)");
  }
  return Status::Ok();
}

Status AddRawExtension(X509* x, const RawExtension& e, size_t index) {
  const std::string what = "extra_extensions[" + Sz(index) + "] (" + Quoted(e.oid) + ")";
  if (e.oid.empty() || e.oid.find('\0') != std::string::npos) {
    return InvalidArgument(what + ": not a dotted OID");
  }
  using ObjectPtr = std::unique_ptr<ASN1_OBJECT, Free<ASN1_OBJECT_free>>;
  ObjectPtr oid(OBJ_txt2obj(e.oid.c_str(), /*no_name=*/1));
  if (!oid) {
    ERR_clear_error();
    return InvalidArgument(what + ": not a dotted OID");
  }
  const int nid = OBJ_obj2nid(oid.get());
  if (nid == NID_basic_constraints || nid == NID_key_usage || nid == NID_subject_key_identifier ||
      nid == NID_authority_key_identifier) {
    return InvalidArgument(what + ": is one of the extensions the profile sets itself");
  }
  if (X509_get_ext_by_OBJ(x, oid.get(), -1) >= 0) {
    return InvalidArgument(what + ": appears twice");
  }
  RETURN_IF_ERROR(CheckSingleDerValue(what, e.der));
  Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
  if (!value ||
      ASN1_OCTET_STRING_set(value.get(), Ptr(e.der), static_cast<int>(e.der.size())) != 1) {
    return OpensslInternal(what + ": ASN1_OCTET_STRING_set");
  }
  ExtensionPtr ext(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), e.critical ? 1 : 0, value.get()));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1) return OpensslInternal(what + ": adding");
  return Status::Ok();
}

}  // namespace

StatusOr<CertificateAuthority> CreateCertificateAuthority(std::string_view common_name,
                                                          int64_t not_before_unix,
                                                          int64_t validity_days) {
  constexpr std::string_view kWhat = "create CA";
  RETURN_IF_ERROR(CheckValidity(kWhat, not_before_unix, validity_days));
  ASSIGN_OR_RETURN(NamePtr name, CommonNameOnly(kWhat, common_name));
  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509Ptr x, NewCertificate(kWhat, name.get(), key.get(), not_before_unix,
                                             not_before_unix + validity_days * kSecondsPerDay));
  if (X509_set_issuer_name(x.get(), name.get()) != 1) {
    return OpensslInternal("create CA: setting issuer");
  }
  X509* c = x.get();
  RETURN_IF_ERROR(AddConstExtension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(AddConstExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  // The subject key identifier must precede the authority key identifier,
  // which copies it from the (self-)issuer.
  RETURN_IF_ERROR(AddConstExtension(c, c, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddConstExtension(c, c, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(Sign(c, key.get()));

  CertificateAuthority ca;
  ASSIGN_OR_RETURN(ca.cert_pem, CertificatePem(c));
  ASSIGN_OR_RETURN(ca.key_pem, PrivateKeyPem(key.get()));
  return ca;
}

StatusOr<IssuedCertificate> IssueServerCertificate(const CertificateAuthority& ca,
                                                   std::string_view common_name,
                                                   const std::vector<std::string>& dns_names,
                                                   const std::vector<std::string>& ip_addresses,
                                                   int64_t not_before_unix, int64_t validity_days) {
  constexpr std::string_view kWhat = "issue server certificate";
  RETURN_IF_ERROR(CheckValidity(kWhat, not_before_unix, validity_days));
  if (dns_names.empty() && ip_addresses.empty()) {
    return InvalidArgument(std::string(kWhat) +
                           ": need at least one DNS name or IP address for subjectAltName");
  }
  ASSIGN_OR_RETURN(NamePtr name, CommonNameOnly(kWhat, common_name));

  ASSIGN_OR_RETURN(LoadedIssuer issuer, LoadIssuer(ca));
  X509* ca_x509 = X509Internals::Get(issuer.cert);

  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509Ptr x, NewCertificate(kWhat, name.get(), key.get(), not_before_unix,
                                             not_before_unix + validity_days * kSecondsPerDay));
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(ca_x509)) != 1) {
    return OpensslInternal(std::string(kWhat) + ": setting issuer");
  }
  X509* c = x.get();
  RETURN_IF_ERROR(AddSubjectAltNames(c, dns_names, ip_addresses));
  RETURN_IF_ERROR(AddConstExtension(ca_x509, c, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddConstExtension(ca_x509, c, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddConstExtension(ca_x509, c, NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddConstExtension(ca_x509, c, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddConstExtension(ca_x509, c, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(Sign(c, issuer.key.get()));

  IssuedCertificate issued;
  ASSIGN_OR_RETURN(issued.cert_pem, CertificatePem(c));
  ASSIGN_OR_RETURN(issued.key_pem, PrivateKeyPem(key.get()));
  return issued;
}

StatusOr<IssuedCertificate> IssueEcP256Certificate(const CertificateProfile& profile,
                                                   const CertificateAuthority* issuer) {
  const std::string what = "issue certificate " + Quoted(profile.common_name);
  RETURN_IF_ERROR(CheckWindow(what, profile.not_before_unix, profile.not_after_unix));
  if (issuer == nullptr && !profile.is_ca) {
    return InvalidArgument(what + ": a self-signed certificate must be a CA");
  }
  if (!profile.is_ca && profile.path_length >= 0) {
    return InvalidArgument(what + ": path_length is for CAs only");
  }
  if (profile.path_length < -1 || profile.path_length > 16) {
    return InvalidArgument(what + ": path_length must be -1 (no limit) or 0..16");
  }
  ASSIGN_OR_RETURN(NamePtr name, CommonNameOnly(what, profile.common_name));
  std::optional<LoadedIssuer> loaded;
  if (issuer != nullptr) {
    ASSIGN_OR_RETURN(LoadedIssuer l, LoadIssuer(*issuer));
    loaded.emplace(std::move(l));
  }
  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(X509Ptr x, NewCertificate(what, name.get(), key.get(), profile.not_before_unix,
                                             profile.not_after_unix));
  X509* c = x.get();
  X509* issuer_x509 = loaded ? X509Internals::Get(loaded->cert) : c;
  EVP_PKEY* signing_key = loaded ? loaded->key.get() : key.get();
  if (X509_set_issuer_name(c, X509_get_subject_name(issuer_x509)) != 1) {
    return OpensslInternal(what + ": setting issuer");
  }
  std::string basic = profile.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
  if (profile.path_length >= 0) basic += ",pathlen:" + std::to_string(profile.path_length);
  RETURN_IF_ERROR(AddConstExtension(issuer_x509, c, NID_basic_constraints, basic.c_str()));
  RETURN_IF_ERROR(AddConstExtension(
      issuer_x509, c, NID_key_usage,
      profile.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation"));
  // As in CreateCertificateAuthority: subject key id first, so that a
  // self-signed certificate's authority key id can copy it.
  RETURN_IF_ERROR(AddConstExtension(issuer_x509, c, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddConstExtension(issuer_x509, c, NID_authority_key_identifier, "keyid:always"));
  for (size_t i = 0; i < profile.extra_extensions.size(); ++i) {
    RETURN_IF_ERROR(AddRawExtension(c, profile.extra_extensions[i], i).WithContext(what));
  }
  RETURN_IF_ERROR(Sign(c, signing_key));

  IssuedCertificate issued;
  ASSIGN_OR_RETURN(issued.cert_pem, CertificatePem(c));
  ASSIGN_OR_RETURN(issued.key_pem, PrivateKeyPem(key.get()));
  return issued;
}

StatusOr<Bytes> CreateCrl(const CertificateAuthority& issuer, int64_t this_update_unix,
                          int64_t next_update_unix, const std::vector<Certificate>& revoked,
                          uint64_t crl_number) {
  constexpr std::string_view kWhat = "create CRL";
  RETURN_IF_ERROR(CheckWindow(kWhat, this_update_unix, next_update_unix));
  ASSIGN_OR_RETURN(LoadedIssuer ca, LoadIssuer(issuer));
  X509* ca_x509 = X509Internals::Get(ca.cert);
  X509CrlPtr crl(X509_CRL_new());
  Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(this_update_unix)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(next_update_unix)));
  if (!crl || !last || !next || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_x509)) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return OpensslInternal(std::string(kWhat) + ": setting fields");
  }
  using RevokedPtr = std::unique_ptr<X509_REVOKED, Free<X509_REVOKED_free>>;
  for (size_t i = 0; i < revoked.size(); ++i) {
    const Certificate& cert = revoked[i];
    if (cert.issuer() != ca.cert.subject()) {
      return InvalidArgument(std::string(kWhat) + ": revoked[" + Sz(i) + "] " +
                             Quoted(cert.subject()) + " is issued by " + Quoted(cert.issuer()) +
                             ", not by " + Quoted(ca.cert.subject()));
    }
    RevokedPtr r(X509_REVOKED_new());
    Asn1IntegerPtr serial(ASN1_INTEGER_dup(X509_get0_serialNumber(X509Internals::Get(cert))));
    if (!r || !serial || X509_REVOKED_set_serialNumber(r.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(r.get(), last.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), r.get()) != 1) {
      return OpensslInternal(std::string(kWhat) + ": adding a revoked entry");
    }
    (void)r.release();  // the CRL owns it now
  }
  BnPtr number_bn(BN_new());
  if (!number_bn || BN_set_word(number_bn.get(), crl_number) != 1) {
    return OpensslInternal(std::string(kWhat) + ": CRL number");
  }
  Asn1IntegerPtr number(BN_to_ASN1_INTEGER(number_bn.get(), nullptr));
  if (!number || X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return OpensslInternal(std::string(kWhat) + ": CRL number");
  }
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, ca_x509, nullptr, nullptr, crl.get(), 0);
  ExtensionPtr akid(
      X509V3_EXT_conf_nid(nullptr, &v3, NID_authority_key_identifier, "keyid:always"));
  if (!akid || X509_CRL_add_ext(crl.get(), akid.get(), -1) != 1 || X509_CRL_sort(crl.get()) != 1 ||
      X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) <= 0) {
    return OpensslInternal(std::string(kWhat) + ": signing");
  }
  return ToDer<X509_CRL, i2d_X509_CRL>(crl.get(), kWhat);
}

// ---- chain verification -----------------------------------------------------------

StatusOr<ChainResult> VerifyChain(const Certificate& leaf,
                                  const std::vector<Certificate>& intermediates,
                                  const Certificate& trusted_root, const std::vector<Crl>& crls,
                                  int64_t at_unix, const ChainOptions& options) {
  const std::string what = "certificate chain for " + Quoted(leaf.subject());
  if (crls.empty() && options.require_crls) {
    return FailedPrecondition(what + ": CRLs are required but none were given");
  }

  // trusted_root is the only trust anchor: no default paths, no partial chains.
  StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_add_cert(store.get(), X509Internals::Get(trusted_root)) != 1) {
    return OpensslInternal(what + ": building trust store");
  }
  BorrowedX509Stack untrusted(sk_X509_new_null());
  if (!untrusted) return OpensslInternal(what + ": sk_X509_new_null");
  for (const Certificate& c : intermediates) {
    if (sk_X509_push(untrusted.get(), X509Internals::Get(c)) == 0) {
      return OpensslInternal(what + ": sk_X509_push");
    }
  }
  BorrowedCrlStack crl_stack(sk_X509_CRL_new_null());
  if (!crl_stack) return OpensslInternal(what + ": sk_X509_CRL_new_null");
  for (const Crl& crl : crls) {
    if (sk_X509_CRL_push(crl_stack.get(), X509Internals::Get(crl)) == 0) {
      return OpensslInternal(what + ": sk_X509_CRL_push");
    }
  }

  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), store.get(), X509Internals::Get(leaf), untrusted.get()) != 1) {
    return OpensslInternal(what + ": X509_STORE_CTX_init");
  }
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (!crls.empty()) {
    X509_STORE_CTX_set0_crls(ctx.get(), crl_stack.get());  // borrowed; outlives ctx
    flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // set_time also sets X509_V_FLAG_USE_CHECK_TIME: certificates and CRLs are
  // judged at at_unix, never at the wall clock.
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(at_unix));
  if (X509_VERIFY_PARAM_set_flags(param, flags) != 1 ||
      X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
    return OpensslInternal(what + ": setting verify flags");
  }

  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    std::string subject = "(unknown certificate)";
    if (X509* cur = X509_STORE_CTX_get_current_cert(ctx.get()); cur != nullptr) {
      auto s = NameToString(X509_get_subject_name(cur));
      if (s.ok()) subject = Quoted(*s);
    }
    ERR_clear_error();  // the verify error below is the whole story
    return PermissionDenied(what + ": " + subject + " at depth " + std::to_string(depth) + ": " +
                            X509_verify_cert_error_string(err) + " (X509_V_ERR " +
                            std::to_string(err) + ")");
  }

  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  const int n = chain == nullptr ? 0 : sk_X509_num(chain);
  if (n <= 0) return Internal(what + ": verified chain is empty");
  ChainResult result;
  result.revocation_checked = !crls.empty();
  for (int i = 0; i < n; ++i) {
    X509* x = sk_X509_value(chain, i);
    if (X509_up_ref(x) != 1) return OpensslInternal(what + ": X509_up_ref");
    ASSIGN_OR_RETURN(Certificate c, X509Internals::FromX509(X509Ptr(x)));
    result.chain.push_back(std::move(c));
  }
  // Pin: the anchor must be trusted_root itself, byte for byte, not merely a
  // certificate with the same name.
  const Certificate& top = result.chain.back();
  if (top.der() != trusted_root.der()) {
    return PermissionDenied(what + ": chain ends at " + Quoted(top.subject()) + " (sha256 " +
                            ToHex(top.sha256_fingerprint()) + "), not the pinned root (sha256 " +
                            ToHex(trusted_root.sha256_fingerprint()) + ")");
  }
  return result;
}

// ---- ECDSA -------------------------------------------------------------------------

namespace {

StatusOr<PkeyPtr> P256PublicKey(ByteSpan point) {
  if (point.size() != kP256PointSize || point[0] != 0x04) {
    return InvalidArgument("ECDSA P-256: public key must be a " + Sz(kP256PointSize) +
                           "-byte uncompressed point (0x04||X||Y), got " + Sz(point.size()) +
                           " bytes");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kP256GroupName, 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpensslInternal("ECDSA P-256: building key parameters");
  }
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpensslInternal("ECDSA P-256: EVP_PKEY_fromdata_init");
  }
  // The import decodes the point and rejects coordinates >= p and points not
  // on the curve.
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpensslInvalid("ECDSA P-256: public key is not a valid curve point");
  }
  return PkeyPtr(raw);
}

StatusOr<Bytes> RawRsToDer(ByteSpan sig) {
  if (sig.size() != kP256RawSignatureSize) {
    return InvalidArgument("ECDSA P-256: raw r||s signature must be " + Sz(kP256RawSignatureSize) +
                           " bytes, got " + Sz(sig.size()));
  }
  constexpr int kHalf = static_cast<int>(kP256RawSignatureSize / 2);
  BnPtr r(BN_bin2bn(sig.data(), kHalf, nullptr));
  BnPtr s(BN_bin2bn(sig.data() + kHalf, kHalf, nullptr));
  EcdsaSigPtr es(ECDSA_SIG_new());
  if (!r || !s || !es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) {
    return OpensslInternal("ECDSA P-256: building ECDSA_SIG");
  }
  (void)r.release();  // es owns r and s now
  (void)s.release();
  return ToDer<ECDSA_SIG, i2d_ECDSA_SIG>(es.get(), "ECDSA P-256: signature");
}

// Strict DER: one ECDSA-Sig-Value, no trailing bytes, and the canonical
// encoding (re-encoding gives back the same bytes).
Status CheckStrictDer(ByteSpan sig) {
  RETURN_IF_ERROR(CheckIntLength("ECDSA P-256: signature", sig.size()));
  const unsigned char* p = Ptr(sig);
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!es || p != Ptr(sig) + sig.size()) {
    return OpensslInvalid("ECDSA P-256: signature is not a DER ECDSA-Sig-Value");
  }
  ASSIGN_OR_RETURN(Bytes canonical, (ToDer<ECDSA_SIG, i2d_ECDSA_SIG>(es.get(), "signature")));
  if (!std::equal(canonical.begin(), canonical.end(), sig.begin(), sig.end())) {
    return InvalidArgument("ECDSA P-256: signature is BER but not DER");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<EcP256KeyPair> GenerateEcP256KeyPair() {
  ASSIGN_OR_RETURN(PkeyPtr key, GenerateP256Key());
  ASSIGN_OR_RETURN(std::optional<EcP256PublicKey> point, EcP256Point(key.get()));
  if (!point.has_value()) return Internal("P-256: generated key has no P-256 point");
  EcP256KeyPair pair;
  pair.public_key = *point;
  ASSIGN_OR_RETURN(pair.private_key_pem, PrivateKeyPem(key.get()));
  return pair;
}

StatusOr<Bytes> SignEcdsaP256Sha256(const SecretBytes& private_key_pem, ByteSpan message,
                                    SignatureEncoding enc) {
  auto key = LoadPrivateKeyPem(private_key_pem);
  if (!key.ok()) return key.status().WithContext("ECDSA P-256 sign");
  ASSIGN_OR_RETURN(std::optional<EcP256PublicKey> point, EcP256Point(key->get()));
  if (!point.has_value()) return InvalidArgument("ECDSA P-256 sign: the key is not a P-256 key");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key->get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len, Ptr(message), message.size()) != 1) {
    return OpensslInternal("ECDSA P-256: EVP_DigestSignInit");
  }
  Bytes der(der_len);
  if (EVP_DigestSign(ctx.get(), der.data(), &der_len, Ptr(message), message.size()) != 1) {
    return OpensslInternal("ECDSA P-256: EVP_DigestSign");
  }
  der.resize(der_len);
  if (enc == SignatureEncoding::kDer) return der;
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  Bytes raw(kP256RawSignatureSize);
  constexpr int kHalf = static_cast<int>(kP256RawSignatureSize / 2);
  if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), kHalf) != kHalf ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + kHalf, kHalf) != kHalf) {
    return OpensslInternal("ECDSA P-256: converting the signature to r||s");
  }
  return raw;
}

StatusOr<bool> VerifyEcdsaP256Sha256(ByteSpan public_key_uncompressed_65, ByteSpan message,
                                     ByteSpan signature, SignatureEncoding enc) {
  ASSIGN_OR_RETURN(PkeyPtr key, P256PublicKey(public_key_uncompressed_65));
  Bytes der;
  if (enc == SignatureEncoding::kRawRS) {
    ASSIGN_OR_RETURN(der, RawRsToDer(signature));
  } else {
    RETURN_IF_ERROR(CheckStrictDer(signature));
    der.assign(signature.begin(), signature.end());
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return OpensslInternal("ECDSA P-256: EVP_DigestVerifyInit");
  }
  const int rc = EVP_DigestVerify(ctx.get(), der.data(), der.size(), Ptr(message), message.size());
  if (rc == 1) return true;
  if (rc == 0) {
    ERR_clear_error();  // a wrong signature is an answer, not an error
    return false;
  }
  return OpensslInternal("ECDSA P-256: EVP_DigestVerify");
}

}  // namespace cce::crypto
