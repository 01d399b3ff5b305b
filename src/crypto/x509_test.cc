// Tests for the x509 component: the Privacy Plane's PKI (profile, SANs,
// validity window, revocation, pinning) and Intel's real SGX/TDX PKI from
// tests/data/tdx (see its README.md for provenance). CRLs for negative cases
// are built here with OpenSSL's X509_CRL APIs.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/x509.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cce::crypto {
namespace {

template <auto Fn>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Free<ASN1_TIME_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, Free<X509_REVOKED_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Free<X509_CRL_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;

// 2023-11-14T22:13:20Z: our PKI's fixed start, so no test reads the clock.
constexpr int64_t kNotBefore = 1'700'000'000;
constexpr int64_t kDay = 86400;
constexpr int64_t kCaDays = 365;
constexpr int64_t kServerDays = 30;
// The server certificate starts a day after its CA, so that "not yet valid"
// is about the leaf (OpenSSL checks times from the root down).
constexpr int64_t kServerNotBefore = kNotBefore + kDay;
constexpr int64_t kInsideValidity = kNotBefore + 10 * kDay;

// Intel PKI times (UTC), from the files' own fields.
constexpr int64_t k20230701T0100Z = 1688173200;  // inside every v4 collateral window
constexpr int64_t k20250101Z = 1735689600;       // after rootcrl.der's nextUpdate
constexpr int64_t k20340101Z = 2019686400;       // after PCK Platform CA's notAfter
// The Intel SGX Root CA fingerprint published in tests/data/tdx/README.md.
constexpr std::string_view kIntelRootSha256 =
    "44A0196B2B99F889B8E149E95B807A350E7424964399E885A7CBB8CCFAB674D3";
constexpr std::string_view kIntelRootSubject =
    "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX Root CA";
constexpr std::string_view kPlatformCaSubject =
    "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX PCK Platform CA";

// ---- helpers -------------------------------------------------------------------

std::string ReadFile(const std::string& name) {
  const std::string path = std::string(CCE_SOURCE_DIR) + "/tests/data/tdx/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T>
T Value(StatusOr<T> s) {
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) std::abort();  // the rest of the test cannot run
  return std::move(s).value();
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

Certificate ParseOne(const std::string& pem) {
  auto certs = Value(ParseCertificatesPem(pem));
  EXPECT_EQ(certs.size(), 1u);
  return certs.at(0);
}

X509Ptr ToX509(const Certificate& c) {
  const unsigned char* p = c.der().data();
  X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(c.der().size())));
  EXPECT_TRUE(x != nullptr);
  return x;
}

PkeyPtr LoadKey(const SecretBytes& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_TRUE(key != nullptr);
  return key;
}

bool IsCritical(X509* x, int nid) {
  const int idx = X509_get_ext_by_NID(x, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 1;
}

// A v2 CRL naming issuer_cert as issuer, listing revoked, signed by signer.
std::string MakeCrlPem(const Certificate& issuer_cert, EVP_PKEY* signer,
                       const std::vector<Certificate>& revoked, int64_t this_update,
                       int64_t next_update) {
  X509Ptr issuer = ToX509(issuer_cert);
  X509CrlPtr crl(X509_CRL_new());
  Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(this_update)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, static_cast<time_t>(next_update)));
  EXPECT_EQ(X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2), 1);
  EXPECT_EQ(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.get())), 1);
  EXPECT_EQ(X509_CRL_set1_lastUpdate(crl.get(), last.get()), 1);
  EXPECT_EQ(X509_CRL_set1_nextUpdate(crl.get(), next.get()), 1);
  for (const Certificate& c : revoked) {
    X509Ptr x = ToX509(c);
    RevokedPtr r(X509_REVOKED_new());
    // set_serialNumber copies but takes a non-const pointer in OpenSSL 3.0.
    std::unique_ptr<ASN1_INTEGER, Free<ASN1_INTEGER_free>> serial(
        ASN1_INTEGER_dup(X509_get0_serialNumber(x.get())));
    EXPECT_EQ(X509_REVOKED_set_serialNumber(r.get(), serial.get()), 1);
    EXPECT_EQ(X509_REVOKED_set_revocationDate(r.get(), last.get()), 1);
    EXPECT_EQ(X509_CRL_add0_revoked(crl.get(), r.release()), 1);
  }
  EXPECT_EQ(X509_CRL_sort(crl.get()), 1);
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, issuer.get(), nullptr, nullptr, crl.get(), 0);
  ExtensionPtr akid(X509V3_EXT_conf_nid(nullptr, &v3, NID_authority_key_identifier, "keyid"));
  EXPECT_TRUE(akid != nullptr);
  EXPECT_EQ(X509_CRL_add_ext(crl.get(), akid.get(), -1), 1);
  EXPECT_GT(X509_CRL_sign(crl.get(), signer, EVP_sha256()), 0);
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509_CRL(bio.get(), crl.get()), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<size_t>(n)};
}

// A CA and one server certificate from it, parsed.
struct TestPki {
  CertificateAuthority ca;
  IssuedCertificate server;
  Certificate ca_cert;
  Certificate server_cert;
};

TestPki MakePki(std::string_view ca_name = "cce test CA") {
  CertificateAuthority ca = Value(CreateCertificateAuthority(ca_name, kNotBefore, kCaDays));
  IssuedCertificate server =
      Value(IssueServerCertificate(ca, "plane.example", {"plane.example", "localhost"},
                                   {"127.0.0.1", "::1"}, kServerNotBefore, kServerDays));
  const Certificate ca_cert = ParseOne(ca.cert_pem);
  const Certificate server_cert = ParseOne(server.cert_pem);
  return {std::move(ca), std::move(server), ca_cert, server_cert};
}

ChainOptions NoCrls() {
  ChainOptions o;
  o.require_crls = false;
  return o;
}

// ---- CreateCertificateAuthority -----------------------------------------------

TEST(CertificateAuthority, IsSelfSignedP256CaWithCriticalConstraints) {
  const TestPki pki = MakePki();
  const Certificate& ca = pki.ca_cert;
  EXPECT_EQ(ca.subject(), "CN=cce test CA");
  EXPECT_EQ(ca.issuer(), ca.subject());
  EXPECT_EQ(ca.not_before(), kNotBefore);
  EXPECT_EQ(ca.not_after(), kNotBefore + kCaDays * kDay);
  EXPECT_TRUE(ca.ec_p256_public_key().has_value());

  X509Ptr x = ToX509(ca);
  EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_check_issued(x.get(), x.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(x.get())), 1);
  EXPECT_NE(X509_get_extension_flags(x.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(X509_get_pathlen(x.get()), 0);
  EXPECT_TRUE(IsCritical(x.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_TRUE(IsCritical(x.get(), NID_key_usage));
  ASSERT_NE(X509_get0_subject_key_id(x.get()), nullptr);
}

TEST(CertificateAuthority, SerialsAreRandomAndAtMost128Bits) {
  const Certificate a = ParseOne(Value(CreateCertificateAuthority("a", kNotBefore, 1)).cert_pem);
  const Certificate b = ParseOne(Value(CreateCertificateAuthority("a", kNotBefore, 1)).cert_pem);
  EXPECT_NE(a.serial_hex(), b.serial_hex());
  EXPECT_LE(a.serial_hex().size(), 32u);
  EXPECT_GE(a.serial_hex().size(), 16u);  // fails with probability 2^-64
  EXPECT_NE(a.serial_hex()[0], '-');
}

TEST(CertificateAuthority, KeyPemIsPkcs8AndMatchesTheCertificate) {
  const TestPki pki = MakePki();
  const std::string_view pem(reinterpret_cast<const char*>(pki.ca.key_pem.data()),
                             pki.ca.key_pem.size());
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  PkeyPtr key = LoadKey(pki.ca.key_pem);
  X509Ptr x = ToX509(pki.ca_cert);
  EXPECT_EQ(X509_check_private_key(x.get(), key.get()), 1);
}

TEST(CertificateAuthority, RejectsBadArguments) {
  EXPECT_EQ(CreateCertificateAuthority("", kNotBefore, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCertificateAuthority("x", kNotBefore, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCertificateAuthority("x", -1, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCertificateAuthority(std::string(65, 'a'), kNotBefore, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCertificateAuthority("a\nb", kNotBefore, 1).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- IssueServerCertificate ---------------------------------------------------

TEST(ServerCertificate, RoundTripsSansAndServerProfile) {
  const TestPki pki = MakePki();
  const Certificate& s = pki.server_cert;
  EXPECT_EQ(s.subject(), "CN=plane.example");
  EXPECT_EQ(s.issuer(), pki.ca_cert.subject());
  EXPECT_EQ(s.not_before(), kServerNotBefore);
  EXPECT_EQ(s.not_after(), kServerNotBefore + kServerDays * kDay);
  EXPECT_EQ(s.dns_names(), (std::vector<std::string>{"plane.example", "localhost"}));
  EXPECT_EQ(s.ip_addresses(), (std::vector<std::string>{"127.0.0.1", "::1"}));
  ASSERT_TRUE(s.ec_p256_public_key().has_value());
  EXPECT_NE(*s.ec_p256_public_key(), *pki.ca_cert.ec_p256_public_key());

  X509Ptr x = ToX509(s);
  X509Ptr ca = ToX509(pki.ca_cert);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(X509_get_extension_flags(x.get()) & EXFLAG_CA, 0u);
  EXPECT_TRUE(IsCritical(x.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(x.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(x.get());
  const ASN1_OCTET_STRING* ca_skid = X509_get0_subject_key_id(ca.get());
  ASSERT_NE(akid, nullptr);
  ASSERT_NE(ca_skid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, ca_skid), 0);
  EXPECT_EQ(X509_check_host(x.get(), "plane.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_host(x.get(), "other.example", 0, 0, nullptr), 0);

  PkeyPtr key = LoadKey(pki.server.key_pem);
  EXPECT_EQ(X509_check_private_key(x.get(), key.get()), 1);
}

TEST(ServerCertificate, RejectsInvalidIpAddressAndNamesIt) {
  const CertificateAuthority ca = Value(CreateCertificateAuthority("ca", kNotBefore, kCaDays));
  for (const std::string bad :
       {"10.0.0.256", "1.2.3", " 1.2.3.4", "1.2.3.4 ", "fe80::1%eth0", "plane.example", ""}) {
    auto r = IssueServerCertificate(ca, "s", {"s.example"}, {"10.0.0.1", bad}, kNotBefore, 1);
    ASSERT_FALSE(r.ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ip_addresses[1]: '" + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(ServerCertificate, RejectsDnsNamesThatAreNotHostNames) {
  const CertificateAuthority ca = Value(CreateCertificateAuthority("ca", kNotBefore, kCaDays));
  // The first would add an IP SAN if names went through OpenSSL's config syntax.
  for (const std::string bad : {"a.example,IP:1.2.3.4", "", "-a.example", "a..example",
                                "under_score.example", "*", "a.*.example", "a.example."}) {
    auto r = IssueServerCertificate(ca, "s", {bad}, {}, kNotBefore, 1);
    ASSERT_FALSE(r.ok()) << "accepted '" << bad << "'";
    EXPECT_NE(r.status().message().find("dns_names[0]: '" + bad + "'"), std::string::npos)
        << r.status().message();
  }
  EXPECT_TRUE(IssueServerCertificate(ca, "s", {"*.plane.example"}, {}, kNotBefore, 1).ok());
}

TEST(ServerCertificate, RequiresAtLeastOneSubjectAltName) {
  const CertificateAuthority ca = Value(CreateCertificateAuthority("ca", kNotBefore, kCaDays));
  EXPECT_EQ(IssueServerCertificate(ca, "s", {}, {}, kNotBefore, 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ServerCertificate, RejectsCaKeyThatDoesNotMatchCaCertificate) {
  const CertificateAuthority ca1 = Value(CreateCertificateAuthority("ca", kNotBefore, kCaDays));
  CertificateAuthority ca2 = Value(CreateCertificateAuthority("ca", kNotBefore, kCaDays));
  CertificateAuthority mixed{ca1.cert_pem, std::move(ca2.key_pem)};
  auto r = IssueServerCertificate(mixed, "s", {"s.example"}, {}, kNotBefore, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not match"), std::string::npos);
}

TEST(ServerCertificate, RefusesToIssueFromANonCaCertificate) {
  TestPki pki = MakePki();
  CertificateAuthority not_ca{pki.server.cert_pem, std::move(pki.server.key_pem)};
  auto r = IssueServerCertificate(not_ca, "s", {"s.example"}, {}, kNotBefore, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not a CA"), std::string::npos);
}

// ---- VerifyChain on our own PKI -----------------------------------------------------

TEST(VerifyChain, AcceptsIssuedCertificateInsideValidity) {
  const TestPki pki = MakePki();
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {}, kInsideValidity, NoCrls());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->chain.size(), 2u);
  EXPECT_EQ(r->chain[0].der(), pki.server_cert.der());
  EXPECT_EQ(r->chain[1].der(), pki.ca_cert.der());
  EXPECT_FALSE(r->revocation_checked);
  // The first second of validity counts.
  EXPECT_TRUE(VerifyChain(pki.server_cert, {}, pki.ca_cert, {}, kServerNotBefore, NoCrls()).ok());
}

TEST(VerifyChain, RejectsBeforeNotBefore) {
  const TestPki pki = MakePki();
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {}, kServerNotBefore - 1, NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("not yet valid"), std::string::npos) << m;
  EXPECT_NE(m.find("'CN=plane.example' at depth 0"), std::string::npos) << m;
}

TEST(VerifyChain, RejectsAfterNotAfter) {
  const TestPki pki = MakePki();
  auto r =
      VerifyChain(pki.server_cert, {}, pki.ca_cert, {}, pki.server_cert.not_after() + 1, NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate has expired"), std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, RejectsCertificateSignedByAnotherCa) {
  const TestPki pki = MakePki("CA one");
  const TestPki other = MakePki("CA two");
  auto r = VerifyChain(pki.server_cert, {}, other.ca_cert, {}, kInsideValidity, NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("unable to get local issuer"), std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, RejectsPinnedRootWithSameSubjectButDifferentKey) {
  const TestPki real = MakePki("cce test CA");
  const TestPki impostor = MakePki("cce test CA");
  ASSERT_EQ(real.ca_cert.subject(), impostor.ca_cert.subject());
  // Only the impostor is trusted: the name matches, the key does not.
  auto r = VerifyChain(real.server_cert, {}, impostor.ca_cert, {}, kInsideValidity, NoCrls());
  EXPECT_FALSE(r.ok());
  // Handing over the real CA as an "intermediate" does not make it trusted.
  r = VerifyChain(real.server_cert, {real.ca_cert}, impostor.ca_cert, {}, kInsideValidity,
                  NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("self-signed certificate in certificate chain"),
            std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, RejectsRevokedCertificate) {
  const TestPki pki = MakePki();
  PkeyPtr ca_key = LoadKey(pki.ca.key_pem);
  const Crl crl = Value(ParseCrlPem(MakeCrlPem(pki.ca_cert, ca_key.get(), {pki.server_cert},
                                               kNotBefore, kNotBefore + 30 * kDay)));
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {crl}, kInsideValidity, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("'CN=plane.example' at depth 0: certificate revoked"),
            std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, AcceptsWhenCrlRevokesOnlyOtherCertificates) {
  const TestPki pki = MakePki();
  const Certificate sibling = ParseOne(
      Value(IssueServerCertificate(pki.ca, "old", {"old.example"}, {}, kNotBefore, 1)).cert_pem);
  PkeyPtr ca_key = LoadKey(pki.ca.key_pem);
  const Crl crl = Value(ParseCrlPem(
      MakeCrlPem(pki.ca_cert, ca_key.get(), {sibling}, kNotBefore, kNotBefore + 30 * kDay)));
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {crl}, kInsideValidity, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->revocation_checked);
  EXPECT_FALSE(VerifyChain(sibling, {}, pki.ca_cert, {crl}, kNotBefore, {}).ok());
}

TEST(VerifyChain, RequiredCrlsMissingIsAnError) {
  const TestPki pki = MakePki();
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {}, kInsideValidity, ChainOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(VerifyChain, CrlFromAnotherIssuerDoesNotMeanNotRevoked) {
  const TestPki pki = MakePki("CA one");
  const TestPki other = MakePki("CA two");
  PkeyPtr other_key = LoadKey(other.ca.key_pem);
  const Crl unrelated = Value(ParseCrlPem(
      MakeCrlPem(other.ca_cert, other_key.get(), {}, kNotBefore, kNotBefore + 30 * kDay)));
  // Even without require_crls: once revocation is checked, every level needs its CRL.
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {unrelated}, kInsideValidity, NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unable to get certificate CRL"), std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, RejectsExpiredCrl) {
  const TestPki pki = MakePki();
  PkeyPtr ca_key = LoadKey(pki.ca.key_pem);
  const Crl crl = Value(
      ParseCrlPem(MakeCrlPem(pki.ca_cert, ca_key.get(), {}, kNotBefore, kServerNotBefore + kDay)));
  EXPECT_TRUE(VerifyChain(pki.server_cert, {}, pki.ca_cert, {crl}, kServerNotBefore, {}).ok());
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {crl}, kServerNotBefore + 2 * kDay, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CRL has expired"), std::string::npos)
      << r.status().message();
}

TEST(VerifyChain, RejectsCrlSignedByTheWrongKey) {
  const TestPki pki = MakePki();
  const TestPki other = MakePki();
  PkeyPtr wrong_key = LoadKey(other.ca.key_pem);
  // Names pki's CA as issuer, but another key signed it.
  const Crl forged = Value(ParseCrlPem(
      MakeCrlPem(pki.ca_cert, wrong_key.get(), {}, kNotBefore, kNotBefore + 30 * kDay)));
  auto r = VerifyChain(pki.server_cert, {}, pki.ca_cert, {forged}, kInsideValidity, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CRL signature failure"), std::string::npos)
      << r.status().message();
}

// ---- parsing ----------------------------------------------------------------------

TEST(ParseCertificatesPem, ReadsEveryCertificateInOrder) {
  const auto certs = Value(ParseCertificatesPem(ReadFile("pck_crl_issuer_chain.pem")));
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(certs[0].subject(), kPlatformCaSubject);
  EXPECT_EQ(certs[0].issuer(), kIntelRootSubject);
  EXPECT_EQ(certs[1].subject(), kIntelRootSubject);
}

TEST(ParseCertificatesPem, RejectsEmptyGarbageAndOtherBlockTypes) {
  EXPECT_FALSE(ParseCertificatesPem("").ok());
  EXPECT_FALSE(ParseCertificatesPem("not a certificate").ok());
  EXPECT_FALSE(ParseCertificatesPem("-----BEGIN CERTIFICATE-----\nAAAA\n").ok());
  const TestPki pki = MakePki();
  const std::string key(reinterpret_cast<const char*>(pki.ca.key_pem.data()),
                        pki.ca.key_pem.size());
  auto r = ParseCertificatesPem(pki.ca.cert_pem + key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("PEM block 2: expected CERTIFICATE, found 'PRIVATE KEY'"),
            std::string::npos)
      << r.status().message();
}

TEST(ParseCertificateDer, RoundTripsAndRejectsTrailingBytes) {
  const TestPki pki = MakePki();
  const Certificate c = Value(ParseCertificateDer(pki.server_cert.der()));
  EXPECT_EQ(c.sha256_fingerprint(), pki.server_cert.sha256_fingerprint());
  Bytes der = pki.server_cert.der();
  der.push_back(0);
  EXPECT_EQ(ParseCertificateDer(der).status().code(), StatusCode::kInvalidArgument);
  der.resize(der.size() - 10);
  EXPECT_FALSE(ParseCertificateDer(der).ok());
}

TEST(ParseCrl, RejectsTwoCrlsTrailingBytesAndCertificates) {
  const TestPki pki = MakePki();
  PkeyPtr ca_key = LoadKey(pki.ca.key_pem);
  const std::string pem =
      MakeCrlPem(pki.ca_cert, ca_key.get(), {}, kNotBefore, kNotBefore + 30 * kDay);
  const Crl crl = Value(ParseCrlPem(pem));
  EXPECT_EQ(crl.issuer(), "CN=cce test CA");
  EXPECT_EQ(crl.this_update(), kNotBefore);
  EXPECT_EQ(crl.next_update(), kNotBefore + 30 * kDay);
  EXPECT_EQ(Value(ParseCrlDer(crl.der())).der(), crl.der());

  EXPECT_FALSE(ParseCrlPem(pem + pem).ok());
  EXPECT_FALSE(ParseCrlPem(pki.ca.cert_pem).ok());
  EXPECT_FALSE(ParseCrlPem("").ok());
  Bytes der = crl.der();
  der.push_back(0);
  EXPECT_EQ(ParseCrlDer(der).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseCrlDer(pki.ca_cert.der()).ok());
}

// ---- the real Intel SGX / TDX PKI ---------------------------------------------------

TEST(IntelPki, RootFingerprintMatchesPinnedValue) {
  const Certificate root = ParseOne(ReadFile("intel_sgx_root_ca.pem"));
  EXPECT_EQ(Upper(ToHex(root.sha256_fingerprint())), kIntelRootSha256);
  EXPECT_EQ(root.subject(), kIntelRootSubject);
  EXPECT_EQ(root.issuer(), kIntelRootSubject);
  EXPECT_EQ(root.serial_hex(), "22650cd65a9d3489f383b49552bf501b392706ac");
  EXPECT_EQ(root.not_before(), 1526899510);  // 2018-05-21T10:45:10Z
  EXPECT_EQ(root.not_after(), 2524607999);   // 2049-12-31T23:59:59Z
  ASSERT_TRUE(root.ec_p256_public_key().has_value());
  EXPECT_EQ((*root.ec_p256_public_key())[0], 0x04);
}

TEST(IntelPki, CrlsParseWithIssuerAndUpdateTimes) {
  const Crl root_crl = Value(ParseCrlDer(AsBytes(ReadFile("rootcrl.der"))));
  EXPECT_EQ(root_crl.issuer(), kIntelRootSubject);
  EXPECT_EQ(root_crl.this_update(), 1680517371);  // 2023-04-03T10:22:51Z
  EXPECT_EQ(root_crl.next_update(), 1712053371);  // 2024-04-02T10:22:51Z
  const Crl pck_crl = Value(ParseCrlDer(AsBytes(ReadFile("pckcrl"))));
  EXPECT_EQ(pck_crl.issuer(), kPlatformCaSubject);
  EXPECT_EQ(pck_crl.this_update(), 1686209272);  // 2023-06-08T07:27:52Z
  EXPECT_EQ(pck_crl.next_update(), 1688801272);  // 2023-07-08T07:27:52Z
}

struct IntelChain {
  Certificate root = ParseOne(ReadFile("intel_sgx_root_ca.pem"));
  std::vector<Certificate> crl_issuer_chain =
      Value(ParseCertificatesPem(ReadFile("pck_crl_issuer_chain.pem")));
  Crl root_crl = Value(ParseCrlDer(AsBytes(ReadFile("rootcrl.der"))));
  Crl pck_crl = Value(ParseCrlDer(AsBytes(ReadFile("pckcrl"))));
  const Certificate& platform_ca() const { return crl_issuer_chain.at(0); }
};

TEST(IntelPki, PckCrlIssuerChainVerifiesWithRootCrl) {
  const IntelChain intel;
  auto r = VerifyChain(intel.platform_ca(), {}, intel.root, {intel.root_crl}, k20230701T0100Z,
                       ChainOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->chain.size(), 2u);
  EXPECT_EQ(r->chain[0].subject(), kPlatformCaSubject);
  EXPECT_EQ(Upper(ToHex(r->chain[1].sha256_fingerprint())), kIntelRootSha256);
  EXPECT_TRUE(r->revocation_checked);
}

TEST(IntelPki, PckCrlIssuerChainFailsAfterExpiry) {
  const IntelChain intel;
  // The PCK Platform CA itself has expired (no CRL in play).
  auto r = VerifyChain(intel.platform_ca(), {}, intel.root, {}, k20340101Z, NoCrls());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(std::string("'") + std::string(kPlatformCaSubject) +
                                      "' at depth 0: certificate has expired"),
            std::string::npos)
      << r.status().message();
  // The certificates are still valid in 2025, but the root CRL is stale.
  r = VerifyChain(intel.platform_ca(), {}, intel.root, {intel.root_crl}, k20250101Z, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CRL has expired"), std::string::npos)
      << r.status().message();
}

// The PCK chain embedded in a real v4 quote (QE certification data type 5, a
// PEM chain leaf first): leaf -> PCK Platform CA -> pinned root, with both
// real CRLs.
std::vector<Certificate> PckChainFromQuote(const std::string& quote) {
  const size_t begin = quote.find("-----BEGIN CERTIFICATE-----");
  const std::string end_marker = "-----END CERTIFICATE-----";
  const size_t end = quote.rfind(end_marker);
  EXPECT_NE(begin, std::string::npos);
  EXPECT_NE(end, std::string::npos);
  return Value(ParseCertificatesPem(quote.substr(begin, end + end_marker.size() - begin)));
}

TEST(IntelPki, PckLeafFromQuoteVerifiesWithBothCrls) {
  const IntelChain intel;
  const auto pck = PckChainFromQuote(ReadFile("tdx_prod_quote_SPR_E4.dat"));
  ASSERT_EQ(pck.size(), 3u);
  EXPECT_EQ(pck[0].subject(),
            "C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX PCK Certificate");
  auto r = VerifyChain(pck[0], {pck[1]}, intel.root, {intel.pck_crl, intel.root_crl},
                       k20230701T0100Z, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chain.size(), 3u);
  // Without the PCK CRL the leaf's revocation status is unknown: fail.
  r = VerifyChain(pck[0], {pck[1]}, intel.root, {intel.root_crl}, k20230701T0100Z, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at depth 0: unable to get certificate CRL"),
            std::string::npos)
      << r.status().message();
}

// ---- ECDSA P-256 -------------------------------------------------------------------

// Known answers from the real quote (v4 layout: 48-byte header, 584-byte TD
// report, u32 signature-data length, then r||s, the attestation key X||Y, and
// certification data type 6 holding the QE report and its r||s signature).
TEST(EcdsaP256, VerifiesRealTdxQuoteSignatures) {
  const std::string quote = ReadFile("tdx_prod_quote_SPR_E4.dat");
  const ByteSpan q = AsBytes(quote);
  ASSERT_GT(q.size(), 1218u);
  ASSERT_EQ(q[764], 6);  // certification data type: QE report certification data
  const ByteSpan header_and_body = q.subspan(0, 632);
  const ByteSpan quote_sig = q.subspan(636, 64);
  Bytes attest_key = {0x04};
  attest_key.insert(attest_key.end(), q.begin() + 700, q.begin() + 764);
  EXPECT_TRUE(Value(
      VerifyEcdsaP256Sha256(attest_key, header_and_body, quote_sig, SignatureEncoding::kRawRS)));

  const ByteSpan qe_report = q.subspan(770, 384);
  const ByteSpan qe_report_sig = q.subspan(1154, 64);
  const auto pck = PckChainFromQuote(quote);
  ASSERT_TRUE(pck.at(0).ec_p256_public_key().has_value());
  const EcP256PublicKey pck_key = *pck[0].ec_p256_public_key();
  EXPECT_TRUE(
      Value(VerifyEcdsaP256Sha256(pck_key, qe_report, qe_report_sig, SignatureEncoding::kRawRS)));

  Bytes tampered(header_and_body.begin(), header_and_body.end());
  tampered[200] ^= 0x01;
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(attest_key, tampered, quote_sig, SignatureEncoding::kRawRS)));
  // Right signature, wrong key.
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(pck_key, header_and_body, quote_sig, SignatureEncoding::kRawRS)));
}

struct TestSignature {
  Bytes public_key;  // 65 bytes
  Bytes der;
  Bytes raw;  // r || s
};

TestSignature SignInTest(ByteSpan message) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_TRUE(key != nullptr);
  TestSignature t;
  t.public_key.resize(65);
  size_t len = 0;
  EXPECT_EQ(EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, t.public_key.data(),
                                            t.public_key.size(), &len),
            1);
  EXPECT_EQ(len, 65u);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  size_t sig_len = 0;
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &sig_len, message.data(), message.size()), 1);
  t.der.resize(sig_len);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), t.der.data(), &sig_len, message.data(), message.size()), 1);
  t.der.resize(sig_len);
  const unsigned char* p = t.der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(t.der.size())));
  EXPECT_TRUE(sig != nullptr);
  t.raw.resize(64);
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), t.raw.data(), 32), 32);
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), t.raw.data() + 32, 32), 32);
  return t;
}

TEST(EcdsaP256, VerifiesBothEncodingsOfASignatureMadeInTheTest) {
  const ByteSpan message = AsBytes("attestation key binding");
  const TestSignature t = SignInTest(message);
  EXPECT_TRUE(
      Value(VerifyEcdsaP256Sha256(t.public_key, message, t.raw, SignatureEncoding::kRawRS)));
  EXPECT_TRUE(Value(VerifyEcdsaP256Sha256(t.public_key, message, t.der, SignatureEncoding::kDer)));
}

TEST(EcdsaP256, FlippedByteIsFalseNotAnError) {
  const std::string text = "attestation key binding";
  const TestSignature t = SignInTest(AsBytes(text));
  std::string other = text;
  other[0] ^= 0x01;
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(t.public_key, AsBytes(other), t.raw, SignatureEncoding::kRawRS)));
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(t.public_key, AsBytes(other), t.der, SignatureEncoding::kDer)));
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    Bytes raw = t.raw;
    raw[i] ^= 0x01;
    EXPECT_FALSE(
        Value(VerifyEcdsaP256Sha256(t.public_key, AsBytes(text), raw, SignatureEncoding::kRawRS)))
        << "byte " << i;
  }
  Bytes der = t.der;
  der.back() ^= 0x01;  // last byte of s: still well-formed DER
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(t.public_key, AsBytes(text), der, SignatureEncoding::kDer)));
  // r = 0 is well formed but never valid.
  Bytes zero_r = t.raw;
  std::fill(zero_r.begin(), zero_r.begin() + 32, uint8_t{0});
  EXPECT_FALSE(
      Value(VerifyEcdsaP256Sha256(t.public_key, AsBytes(text), zero_r, SignatureEncoding::kRawRS)));
}

TEST(EcdsaP256, MalformedInputIsAnError) {
  const ByteSpan message = AsBytes("m");
  const TestSignature t = SignInTest(message);
  auto code = [&](ByteSpan key, ByteSpan sig, SignatureEncoding enc) {
    return VerifyEcdsaP256Sha256(key, message, sig, enc).status().code();
  };
  constexpr auto kInvalid = StatusCode::kInvalidArgument;
  const ByteSpan raw_short = ByteSpan(t.raw).first(63);
  EXPECT_EQ(code(t.public_key, raw_short, SignatureEncoding::kRawRS), kInvalid);
  EXPECT_EQ(code(t.public_key, t.der, SignatureEncoding::kRawRS), kInvalid);  // wrong length
  EXPECT_EQ(code(t.public_key, t.raw, SignatureEncoding::kDer), kInvalid);    // not DER
  EXPECT_EQ(code(t.public_key, {}, SignatureEncoding::kDer), kInvalid);
  Bytes trailing = t.der;
  trailing.push_back(0);
  EXPECT_EQ(code(t.public_key, trailing, SignatureEncoding::kDer), kInvalid);

  EXPECT_EQ(code(ByteSpan(t.public_key).first(64), t.raw, SignatureEncoding::kRawRS), kInvalid);
  Bytes compressed_prefix = t.public_key;
  compressed_prefix[0] = 0x02;
  EXPECT_EQ(code(compressed_prefix, t.raw, SignatureEncoding::kRawRS), kInvalid);
  Bytes off_curve = t.public_key;
  off_curve[64] ^= 0x01;  // changes Y only: no longer on the curve
  EXPECT_EQ(code(off_curve, t.raw, SignatureEncoding::kRawRS), kInvalid);
}

// ---- IssueEcP256Certificate / CreateCrl (development PKIs) ------------------------

// An arbitrary private extension and its value: SEQUENCE { OCTET STRING "sim" }.
constexpr const char* kTestOid = "1.3.6.1.4.1.55555.1";
const Bytes kTestExtensionDer = {0x30, 0x05, 0x04, 0x03, 's', 'i', 'm'};

CertificateAuthority AsCa(IssuedCertificate c) {
  return CertificateAuthority{std::move(c.cert_pem), std::move(c.key_pem)};
}

CertificateProfile Profile(std::string cn, bool is_ca, int path_length = -1) {
  CertificateProfile p;
  p.common_name = std::move(cn);
  p.not_before_unix = kNotBefore;
  p.not_after_unix = kNotBefore + 1000;  // to the second, not whole days
  p.is_ca = is_ca;
  p.path_length = path_length;
  return p;
}

// root (pathlen 1) -> intermediate CA (pathlen 0) -> leaf with a raw extension.
struct ThreeLevelPki {
  CertificateAuthority root;
  CertificateAuthority ca;
  IssuedCertificate leaf;
  Certificate root_cert;
  Certificate ca_cert;
  Certificate leaf_cert;
};

ThreeLevelPki MakeThreeLevelPki() {
  CertificateAuthority root =
      AsCa(Value(IssueEcP256Certificate(Profile("dev root", true, 1), nullptr)));
  CertificateAuthority ca =
      AsCa(Value(IssueEcP256Certificate(Profile("dev intermediate", true, 0), &root)));
  CertificateProfile leaf_profile = Profile("dev leaf", false);
  leaf_profile.extra_extensions.push_back({kTestOid, false, kTestExtensionDer});
  IssuedCertificate leaf = Value(IssueEcP256Certificate(leaf_profile, &ca));
  const Certificate root_cert = ParseOne(root.cert_pem);
  const Certificate ca_cert = ParseOne(ca.cert_pem);
  const Certificate leaf_cert = ParseOne(leaf.cert_pem);
  return {std::move(root), std::move(ca), std::move(leaf), root_cert, ca_cert, leaf_cert};
}

Crl ParseDerCrl(const Bytes& der) {
  return Value(ParseCrlDer(der));
}

TEST(IssueEcP256Certificate, ThreeLevelChainVerifiesWithCrlsFromCreateCrl) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  EXPECT_EQ(pki.root_cert.subject(), "CN=dev root");
  EXPECT_EQ(pki.root_cert.issuer(), "CN=dev root");
  EXPECT_EQ(pki.ca_cert.issuer(), "CN=dev root");
  EXPECT_EQ(pki.leaf_cert.issuer(), "CN=dev intermediate");
  EXPECT_EQ(pki.leaf_cert.not_before(), kNotBefore);
  EXPECT_EQ(pki.leaf_cert.not_after(), kNotBefore + 1000);
  const Crl root_crl =
      ParseDerCrl(Value(CreateCrl(pki.root, kNotBefore, kNotBefore + 1000, {}, 1)));
  const Crl ca_crl = ParseDerCrl(Value(CreateCrl(pki.ca, kNotBefore, kNotBefore + 1000, {}, 1)));
  const ChainResult r = Value(VerifyChain(pki.leaf_cert, {pki.ca_cert}, pki.root_cert,
                                          {root_crl, ca_crl}, kNotBefore + 10, {}));
  EXPECT_EQ(r.chain.size(), 3u);
  EXPECT_TRUE(r.revocation_checked);
  // One second past notAfter the leaf has expired.
  EXPECT_EQ(
      VerifyChain(pki.leaf_cert, {pki.ca_cert}, pki.root_cert, {}, kNotBefore + 1001, NoCrls())
          .status()
          .code(),
      StatusCode::kPermissionDenied);
}

TEST(IssueEcP256Certificate, ProfileHasConstraintsUsagesKeyIdsAndTheRawExtension) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  X509Ptr root = ToX509(pki.root_cert);
  X509Ptr ca = ToX509(pki.ca_cert);
  X509Ptr leaf = ToX509(pki.leaf_cert);
  EXPECT_EQ(X509_get_pathlen(root.get()), 1);
  EXPECT_EQ(X509_get_pathlen(ca.get()), 0);
  EXPECT_NE(X509_get_extension_flags(ca.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(X509_get_extension_flags(leaf.get()) & EXFLAG_CA, 0u);
  EXPECT_TRUE(IsCritical(leaf.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_get_key_usage(leaf.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION));
  EXPECT_NE(X509_get0_subject_key_id(leaf.get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(leaf.get()), nullptr);
  EXPECT_EQ(X509_get_signature_nid(leaf.get()), NID_ecdsa_with_SHA256);

  std::unique_ptr<ASN1_OBJECT, Free<ASN1_OBJECT_free>> oid(OBJ_txt2obj(kTestOid, 1));
  const int idx = X509_get_ext_by_OBJ(leaf.get(), oid.get(), -1);
  ASSERT_GE(idx, 0);
  X509_EXTENSION* ext = X509_get_ext(leaf.get(), idx);
  EXPECT_EQ(X509_EXTENSION_get_critical(ext), 0);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const Bytes got(ASN1_STRING_get0_data(value),
                  ASN1_STRING_get0_data(value) + ASN1_STRING_length(value));
  EXPECT_EQ(got, kTestExtensionDer);
  EXPECT_EQ(X509_get_ext_by_OBJ(ca.get(), oid.get(), -1), -1);
}

TEST(IssueEcP256Certificate, RejectsBadProfilesNamingTheProblem) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  auto error = [&](const CertificateProfile& p, const CertificateAuthority* issuer) {
    auto r = IssueEcP256Certificate(p, issuer);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    return r.status().message();
  };
  EXPECT_NE(error(Profile("leaf", false), nullptr).find("self-signed"), std::string::npos);
  CertificateProfile empty_window = Profile("x", true);
  empty_window.not_after_unix = empty_window.not_before_unix;
  EXPECT_NE(error(empty_window, nullptr).find("validity"), std::string::npos);
  EXPECT_NE(error(Profile("leaf", false, 0), &pki.ca).find("path_length"), std::string::npos);

  CertificateProfile bad_oid = Profile("leaf", false);
  bad_oid.extra_extensions.push_back({"not.an.oid", false, kTestExtensionDer});
  EXPECT_NE(error(bad_oid, &pki.ca).find("extra_extensions[0]"), std::string::npos);
  CertificateProfile not_der = Profile("leaf", false);
  not_der.extra_extensions.push_back({kTestOid, false, {0x30, 0x05, 0x04}});
  EXPECT_NE(error(not_der, &pki.ca).find("DER"), std::string::npos);
  CertificateProfile trailing = Profile("leaf", false);
  Bytes with_trailing = kTestExtensionDer;
  with_trailing.push_back(0);
  trailing.extra_extensions.push_back({kTestOid, false, with_trailing});
  EXPECT_NE(error(trailing, &pki.ca).find("DER"), std::string::npos);
  CertificateProfile twice = Profile("leaf", false);
  twice.extra_extensions.push_back({kTestOid, false, kTestExtensionDer});
  twice.extra_extensions.push_back({kTestOid, false, kTestExtensionDer});
  EXPECT_NE(error(twice, &pki.ca).find("extra_extensions[1]"), std::string::npos);
  CertificateProfile standard = Profile("leaf", false);
  standard.extra_extensions.push_back({"2.5.29.19", true, {0x30, 0x00}});
  EXPECT_NE(error(standard, &pki.ca).find("profile sets itself"), std::string::npos);

  // A leaf cannot issue.
  const CertificateAuthority leaf_as_ca{pki.leaf.cert_pem,
                                        SecretBytes::CopyOf(pki.leaf.key_pem.span())};
  EXPECT_NE(error(Profile("child", false), &leaf_as_ca).find("is not a CA"), std::string::npos);
}

TEST(CreateCrl, RevokedLeafFailsTheChainAndTimesAreKept) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  const Crl root_crl = ParseDerCrl(Value(CreateCrl(pki.root, kNotBefore, kNotBefore + 500, {}, 7)));
  EXPECT_EQ(root_crl.issuer(), "CN=dev root");
  EXPECT_EQ(root_crl.this_update(), kNotBefore);
  EXPECT_EQ(root_crl.next_update(), kNotBefore + 500);
  const Crl revoking =
      ParseDerCrl(Value(CreateCrl(pki.ca, kNotBefore, kNotBefore + 500, {pki.leaf_cert}, 2)));
  const auto r = VerifyChain(pki.leaf_cert, {pki.ca_cert}, pki.root_cert, {root_crl, revoking},
                             kNotBefore + 10, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("revoked"), std::string::npos) << r.status().message();
  // After the CRLs' nextUpdate the chain fails as well (an expired CRL).
  const Crl ca_crl = ParseDerCrl(Value(CreateCrl(pki.ca, kNotBefore, kNotBefore + 500, {}, 3)));
  EXPECT_TRUE(VerifyChain(pki.leaf_cert, {pki.ca_cert}, pki.root_cert, {root_crl, ca_crl},
                          kNotBefore + 499, {})
                  .ok());
  EXPECT_FALSE(VerifyChain(pki.leaf_cert, {pki.ca_cert}, pki.root_cert, {root_crl, ca_crl},
                           kNotBefore + 501, {})
                   .ok());
}

TEST(CreateCrl, RefusesACertificateFromAnotherIssuerAndAnEmptyWindow) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  const auto other = CreateCrl(pki.root, kNotBefore, kNotBefore + 10, {pki.leaf_cert}, 1);
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("revoked[0]"), std::string::npos);
  EXPECT_EQ(CreateCrl(pki.root, kNotBefore, kNotBefore, {}, 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SignEcdsaP256, SignaturesInBothEncodingsVerifyWithTheCertificateKey) {
  const ThreeLevelPki pki = MakeThreeLevelPki();
  const ByteSpan message = AsBytes("QE report bytes");
  const EcP256PublicKey key = *pki.leaf_cert.ec_p256_public_key();
  const Bytes raw =
      Value(SignEcdsaP256Sha256(pki.leaf.key_pem, message, SignatureEncoding::kRawRS));
  EXPECT_EQ(raw.size(), 64u);
  EXPECT_TRUE(Value(VerifyEcdsaP256Sha256(key, message, raw, SignatureEncoding::kRawRS)));
  const Bytes der = Value(SignEcdsaP256Sha256(pki.leaf.key_pem, message, SignatureEncoding::kDer));
  EXPECT_TRUE(Value(VerifyEcdsaP256Sha256(key, message, der, SignatureEncoding::kDer)));
  EXPECT_FALSE(Value(
      VerifyEcdsaP256Sha256(key, AsBytes("QE report byteS"), raw, SignatureEncoding::kRawRS)));
  // Another key's signature does not verify.
  const Bytes by_ca =
      Value(SignEcdsaP256Sha256(pki.ca.key_pem, message, SignatureEncoding::kRawRS));
  EXPECT_FALSE(Value(VerifyEcdsaP256Sha256(key, message, by_ca, SignatureEncoding::kRawRS)));
}

TEST(SignEcdsaP256, GeneratedKeyPairSignsForItsPublicKeyAndOtherKeyTypesAreRefused) {
  const EcP256KeyPair a = Value(GenerateEcP256KeyPair());
  const EcP256KeyPair b = Value(GenerateEcP256KeyPair());
  EXPECT_EQ(a.public_key[0], 0x04);
  EXPECT_NE(a.public_key, b.public_key);
  const ByteSpan message = AsBytes("header and TD report");
  const Bytes sig =
      Value(SignEcdsaP256Sha256(a.private_key_pem, message, SignatureEncoding::kRawRS));
  EXPECT_TRUE(Value(VerifyEcdsaP256Sha256(a.public_key, message, sig, SignatureEncoding::kRawRS)));
  EXPECT_FALSE(Value(VerifyEcdsaP256Sha256(b.public_key, message, sig, SignatureEncoding::kRawRS)));

  PkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(ed != nullptr);
  BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), ed.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  const SecretBytes ed_pem =
      SecretBytes::CopyOf(ByteSpan(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(n)));
  EXPECT_EQ(SignEcdsaP256Sha256(ed_pem, message, SignatureEncoding::kRawRS).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SignEcdsaP256Sha256(SecretBytes::CopyOf(AsBytes("not a key")), message,
                                SignatureEncoding::kRawRS)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cce::crypto
