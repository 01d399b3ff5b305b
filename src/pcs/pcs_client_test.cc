// FetchTdxCollateral against a local HTTPS server that plays Intel PCS or a
// PCCS with Intel's real collateral from tests/data/tdx (with the headers
// those services send), then a real quote verified with what was fetched;
// and every way a fetch must fail without leaving anything behind.
#include "pcs/pcs_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attest/attest.h"
#include "attest/policy.h"
#include "attest/time_util.h"
#include "base/fd.h"
#include "base/temp_dir_testing.h"
#include "crypto/x509.h"
#include "http/server.h"

namespace cce::pcs {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTcbPath = "/tdx/certification/v4/tcb";
constexpr const char* kQePath = "/tdx/certification/v4/qe/identity";
constexpr const char* kPckCrlPath = "/sgx/certification/v4/pckcrl";
constexpr const char* kPccsRootCrlPath = "/sgx/certification/v4/rootcacrl";
constexpr const char* kPcsRootCrlPath = "/IntelSGXRootCA.der";  // stands in for Intel's host

std::string DataPath(const std::string& relative) {
  return std::string(CCE_SOURCE_DIR) + "/tests/data/tdx/" + relative;
}

template <typename T>
T Must(StatusOr<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) throw std::runtime_error(r.status().ToString());
  return std::move(r).value();
}

std::string ReadData(const std::string& relative) {
  return Must(ReadFile(DataPath(relative), size_t{16} << 20));
}

std::string FromHexString(const std::string& hex) {
  const crypto::Bytes b = Must(crypto::FromHex(hex));
  return {b.begin(), b.end()};
}

int64_t At(const char* rfc3339) {
  return Must(attest::ParseRfc3339Utc(rfc3339));
}

// Percent-encodes everything but RFC 3986 unreserved characters, as Intel
// encodes its issuer-chain headers.
std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

using ::cce::testing::TempDir;

// NAME inside the directory.
std::string Sub(const TempDir& dir, const std::string& name) {
  return dir.path() + "/" + name;
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A throwaway TLS PKI: a CA the client trusts and a server certificate for
// 127.0.0.1 signed by it.
struct TestPki {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

TestPki MintPki(const TempDir& dir, const std::string& name) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const crypto::CertificateAuthority ca =
      Must(crypto::CreateCertificateAuthority(name + " test CA", now - 3600, 2));
  const crypto::IssuedCertificate server = Must(
      crypto::IssueServerCertificate(ca, "127.0.0.1", {"localhost"}, {"127.0.0.1"}, now - 3600, 2));
  TestPki pki{Sub(dir, name + "-ca.pem"), Sub(dir, name + "-server.pem"),
              Sub(dir, name + "-server.key")};
  EXPECT_TRUE(WriteFileAtomic(pki.ca_file, crypto::AsBytes(ca.cert_pem), 0644).ok());
  EXPECT_TRUE(WriteFileAtomic(pki.cert_file, crypto::AsBytes(server.cert_pem), 0644).ok());
  EXPECT_TRUE(WriteFileAtomic(pki.key_file, server.key_pem.span(), 0600).ok());
  return pki;
}

// What the fake service serves. Tests break one field at a time.
struct Served {
  std::string fmspc;  // lower-case hex the tcb query must name; "" = any
  std::string tcb_body;
  std::string tcb_chain;
  std::string tcb_chain_header = "TCB-Info-Issuer-Chain";
  std::string qe_body;
  std::string qe_chain;
  std::string pck_crl;  // served as is
  std::string pck_chain;
  std::string root_crl;                          // at kPcsRootCrlPath, as is
  std::string pccs_root_crl;                     // at kPccsRootCrlPath, as is
  std::map<std::string, int> status;             // path -> forced HTTP status
  std::set<std::string> omit_chain;              // paths sent without their issuer-chain header
  std::map<std::string, std::string> raw_chain;  // path -> header value sent verbatim
  std::map<std::string, std::string> redirect;   // path -> Location of a 302
  std::string chunked_path;                      // served as a 1 MiB chunked body
  std::string slow_path;                         // answered after 2.5 s
  std::string required_api_key;                  // base_url paths answer 401 without it
};

// The real dcap-qvl collateral (tdx_quote is UpToDate at 2025-07-01), split
// into what PCS serves: the signed objects wrapped as PCS wraps them (the
// signed bytes unchanged), the chains as headers, the CRLs as DER.
Served DcapQvlAsPcs() {
  const nlohmann::json j = nlohmann::json::parse(ReadData("dcap-qvl/tdx_quote_collateral.json"));
  Served s;
  s.fmspc = "b0c06f000000";
  s.tcb_body = "{\"tcbInfo\":" + j["tcb_info"].get<std::string>() + ",\"signature\":\"" +
               j["tcb_info_signature"].get<std::string>() + "\"}";
  s.tcb_chain = j["tcb_info_issuer_chain"].get<std::string>();
  s.qe_body = "{\"enclaveIdentity\":" + j["qe_identity"].get<std::string>() + ",\"signature\":\"" +
              j["qe_identity_signature"].get<std::string>() + "\"}";
  s.qe_chain = j["qe_identity_issuer_chain"].get<std::string>();
  s.pck_crl = FromHexString(j["pck_crl"].get<std::string>());
  s.pck_chain = j["pck_crl_issuer_chain"].get<std::string>();
  s.root_crl = FromHexString(j["root_ca_crl"].get<std::string>());
  return s;
}

// The go-tdx-guest v5 set (PCS raw files; quote_v5_sample.dat is UpToDate at
// 2026-02-25) as an older PCCS serves it: the SGX- TCB header name, the root
// CA CRL hex-encoded, the PCK CRL in PEM.
Served GoV5AsPccs() {
  const std::string dir = "collateral/go-tdx-guest-v5-2026/";
  Served s;
  s.fmspc = "90c06f000000";
  s.tcb_body = ReadData(dir + "tcb_info.json");
  s.tcb_chain = ReadData(dir + "tcb_info_issuer_chain.pem");
  s.tcb_chain_header = "SGX-TCB-Info-Issuer-Chain";
  s.qe_body = ReadData(dir + "qe_identity.json");
  s.qe_chain = s.tcb_chain;  // the set has no separate QE chain: it is the same TCB Signing chain
  const crypto::Crl pck = Must(crypto::ParseCrlDer(crypto::AsBytes(ReadData(dir + "pck_crl.der"))));
  s.pck_crl = "-----BEGIN X509 CRL-----\n";
  {
    // PEM by hand: base64 of the DER in 64-column lines.
    static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const crypto::Bytes& der = pck.der();
    std::string b64;
    for (size_t i = 0; i < der.size(); i += 3) {
      const uint32_t n = (uint32_t{der[i]} << 16) |
                         (i + 1 < der.size() ? uint32_t{der[i + 1]} << 8 : 0) |
                         (i + 2 < der.size() ? uint32_t{der[i + 2]} : 0);
      b64 += kB64[(n >> 18) & 63];
      b64 += kB64[(n >> 12) & 63];
      b64 += i + 1 < der.size() ? kB64[(n >> 6) & 63] : '=';
      b64 += i + 2 < der.size() ? kB64[n & 63] : '=';
    }
    for (size_t i = 0; i < b64.size(); i += 64) s.pck_crl += b64.substr(i, 64) + "\n";
  }
  s.pck_crl += "-----END X509 CRL-----\n";
  s.pck_chain = ReadData(dir + "pck_crl_issuer_chain.pem");
  s.pccs_root_crl = crypto::ToHex(crypto::AsBytes(ReadData(dir + "root_ca_crl.der")));
  return s;
}

// "k=v&k2=v2" with percent-decoding, as http::Request::query holds it.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view q) {
  const auto decode = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    const std::string_view item = q.substr(0, q.find('&'));
    q.remove_prefix(std::min(q.size(), item.size() + 1));
    const size_t eq = item.find('=');
    out.emplace_back(decode(item.substr(0, eq)),
                     eq == std::string_view::npos ? "" : decode(item.substr(eq + 1)));
  }
  return out;
}

// A bare HTTP/1.1 front for the plain-http cases (http::Server is TLS only):
// one request per connection, answers always sent chunked, so that a body's
// size is only known once it has all arrived.
class PlainHttpFront {
 public:
  explicit PlainHttpFront(std::function<http::Response(http::Request&)> handle)
      : handle_(std::move(handle)) {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_.get(), 16), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  PlainHttpFront(const PlainHttpFront&) = delete;
  PlainHttpFront& operator=(const PlainHttpFront&) = delete;
  ~PlainHttpFront() {
    ::shutdown(listener_.get(), SHUT_RDWR);  // wakes accept()
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void Serve() {
    for (;;) {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) return;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(conn.get(), buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      std::istringstream lines(in.substr(0, in.find("\r\n\r\n")));
      std::string line;
      std::getline(lines, line);
      std::istringstream request_line(line);
      http::Request req;
      std::string target;
      request_line >> req.method >> target;
      req.path = target.substr(0, target.find('?'));
      if (target.find('?') != std::string::npos) {
        req.query = ParseQuery(target.substr(target.find('?') + 1));
      }
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const size_t value = line.find_first_not_of(' ', colon + 1);
        req.headers.push_back(
            {line.substr(0, colon), value == std::string::npos ? "" : line.substr(value)});
      }
      const http::Response res = handle_(req);
      std::ostringstream out;
      out << "HTTP/1.1 " << res.status << " X\r\nConnection: close\r\n"
          << "Content-Type: " << res.content_type << "\r\nTransfer-Encoding: chunked\r\n";
      for (const http::Header& h : res.headers) out << h.name << ": " << h.value << "\r\n";
      out << "\r\n";
      for (size_t at = 0; at < res.body.size(); at += 4096) {
        const std::string piece = res.body.substr(at, 4096);
        out << std::hex << piece.size() << std::dec << "\r\n" << piece << "\r\n";
      }
      out << "0\r\n\r\n";
      const std::string bytes = out.str();
      // The client may hang up early (a body over its limit): MSG_NOSIGNAL,
      // and the rest is dropped.
      for (size_t sent = 0; sent < bytes.size();) {
        const ssize_t n =
            ::send(conn.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    }
  }

  std::function<http::Response(http::Request&)> handle_;
  UniqueFd listener_;
  int port_ = 0;
  std::thread thread_;
};

// A local PCS / PCCS over HTTPS (http::Server), or plain HTTP with chunked
// answers when pki is null.
class FakePcs {
 public:
  FakePcs(Served served, const TestPki* pki) : served_(std::move(served)) {
    const auto handle = [this](http::Request& req) { return Handle(req); };
    if (pki == nullptr) {
      plain_ = std::make_unique<PlainHttpFront>(handle);
      url_ = "http://127.0.0.1:" + std::to_string(plain_->port());
      return;
    }
    http::ServerOptions options;
    options.tls_cert_chain_file = pki->cert_file;
    options.tls_key_file = pki->key_file;
    http::Route route;
    route.method = "GET";
    route.pattern = ".*";
    route.handle = handle;
    server_ = Must(http::Server::Create(std::move(options), {std::move(route)}));
    url_ = "https://127.0.0.1:" + std::to_string(Must(server_->Listen("127.0.0.1", 0)));
    thread_ = std::thread([this] { server_->Run(); });
  }
  FakePcs(const FakePcs&) = delete;
  FakePcs& operator=(const FakePcs&) = delete;
  ~FakePcs() {
    if (server_) {
      server_->Stop();
      thread_.join();
    }
  }

  std::string Url() const { return url_; }

  struct Seen {
    std::string path;
    std::string query;
    bool had_api_key = false;
  };
  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  http::Response Handle(const http::Request& req) {
    std::string query;
    for (const auto& [k, v] : req.query) query += (query.empty() ? "" : "&") + k + "=" + v;
    size_t count = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back({req.path, query, req.HeaderValue("Ocp-Apim-Subscription-Key").has_value()});
      count = seen_.size();
    }
    http::Response res;
    res.headers.push_back({"Request-ID", "fake-" + std::to_string(count)});
    if (req.path == served_.slow_path) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    if (!served_.required_api_key.empty() && req.path != kPcsRootCrlPath &&
        req.HeaderValue("Ocp-Apim-Subscription-Key") != served_.required_api_key) {
      res.status = 401;
      return res;
    }
    if (const auto it = served_.status.find(req.path); it != served_.status.end()) {
      res.status = it->second;
      res.headers.push_back({"Error-Code", "Forced"});
      res.headers.push_back({"Error-Message", "forced by the test"});
      return res;
    }
    if (const auto it = served_.redirect.find(req.path); it != served_.redirect.end()) {
      res.status = 302;
      res.headers.push_back({"Location", it->second});
      return res;
    }
    if (req.path == served_.chunked_path) {
      SetChain(req.path, "SGX-PCK-CRL-Issuer-Chain", served_.pck_chain, res);
      res.content_type = "application/octet-stream";
      res.body.assign(size_t{1} << 20, 'x');
      return res;
    }
    if (req.path == kTcbPath) {
      std::string lower = req.QueryValue("fmspc").value_or("");
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!served_.fmspc.empty() && lower != served_.fmspc) {
        res.status = 404;
        return res;
      }
      SetChain(req.path, served_.tcb_chain_header, served_.tcb_chain, res);
      res.body = served_.tcb_body;
    } else if (req.path == kQePath) {
      SetChain(req.path, "SGX-Enclave-Identity-Issuer-Chain", served_.qe_chain, res);
      res.body = served_.qe_body;
    } else if (req.path == kPckCrlPath) {
      if (req.QueryValue("ca") != "platform" || req.QueryValue("encoding") != "der") {
        res.status = 400;
        return res;
      }
      SetChain(req.path, "SGX-PCK-CRL-Issuer-Chain", served_.pck_chain, res);
      res.content_type = "application/pkix-crl";
      res.body = served_.pck_crl;
    } else if (req.path == kPcsRootCrlPath && !served_.root_crl.empty()) {
      res.content_type = "application/pkix-crl";
      res.body = served_.root_crl;
    } else if (req.path == kPccsRootCrlPath && !served_.pccs_root_crl.empty()) {
      res.content_type = "text/plain";
      res.body = served_.pccs_root_crl;
    } else {
      res.status = 404;
    }
    return res;
  }

  void SetChain(const std::string& path, const std::string& name, const std::string& pem,
                http::Response& res) const {
    if (served_.omit_chain.count(path) != 0) return;
    const auto raw = served_.raw_chain.find(path);
    res.headers.push_back({name, raw != served_.raw_chain.end() ? raw->second : UrlEncode(pem)});
  }

  const Served served_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<PlainHttpFront> plain_;
  std::thread thread_;
  std::string url_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

PcsOptions PcsAt(const FakePcs& pcs, const TestPki& pki) {
  PcsOptions o;
  o.service = PcsService::kIntelPcs;
  o.base_url = pcs.Url();
  o.root_ca_crl_url = pcs.Url() + kPcsRootCrlPath;
  o.ca_bundle = pki.ca_file;
  o.timeout = std::chrono::seconds(20);
  return o;
}

const std::array<uint8_t, 6> kDcapFmspc = {0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00};
const std::array<uint8_t, 6> kGoV5Fmspc = {0x90, 0xc0, 0x6f, 0x00, 0x00, 0x00};

const std::vector<std::string> kAllFiles = {"pck_crl.der",
                                            "pck_crl_issuer_chain.pem",
                                            "qe_identity.json",
                                            "qe_identity_issuer_chain.pem",
                                            "root_ca_crl.der",
                                            "tcb_info.json",
                                            "tcb_info_issuer_chain.pem"};

class PcsClient : public ::testing::Test {
 protected:
  TempDir tmp_{"pcs-test"};
  TestPki pki_ = MintPki(tmp_, "pcs");
  TempDir out_parent_{"pcs-test-out"};  // only out_dir (or nothing) may ever appear here
  std::string out_ = Sub(out_parent_, "collateral");
};

TEST_F(PcsClient, FetchesRealCollateralFromPcsAndTheQuoteVerifiesWithIt) {
  Served served = DcapQvlAsPcs();
  served.required_api_key = "test-subscription-key-0123";
  FakePcs pcs(served, &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.api_key = crypto::SecretBytes::CopyOf(crypto::AsBytes(served.required_api_key));

  const FetchedCollateral fetched = Must(FetchTdxCollateral(opts, kDcapFmspc, out_));

  EXPECT_EQ(Names(out_), kAllFiles);
  EXPECT_EQ(Names(out_parent_.path()), std::vector<std::string>{"collateral"});
  EXPECT_EQ(Must(ReadFile(out_ + "/tcb_info.json", 1 << 20)), served.tcb_body);
  EXPECT_EQ(Must(ReadFile(out_ + "/qe_identity.json", 1 << 20)), served.qe_body);
  EXPECT_EQ(Must(ReadFile(out_ + "/tcb_info_issuer_chain.pem", 1 << 20)), served.tcb_chain);
  EXPECT_EQ(Must(ReadFile(out_ + "/root_ca_crl.der", 1 << 20)), served.root_crl);
  EXPECT_EQ(Must(ReadFile(out_ + "/pck_crl.der", 1 << 20)), served.pck_crl);
  ASSERT_EQ(fetched.urls.size(), 4U);
  EXPECT_EQ(fetched.urls[0], pcs.Url() + "/tdx/certification/v4/tcb?fmspc=B0C06F000000");
  EXPECT_EQ(fetched.urls[1], pcs.Url() + "/tdx/certification/v4/qe/identity");
  EXPECT_EQ(fetched.urls[2], pcs.Url() + "/sgx/certification/v4/pckcrl?ca=platform&encoding=der");
  EXPECT_EQ(fetched.urls[3], pcs.Url() + kPcsRootCrlPath);
  // The key went to the API and not to the root CRL's URL.
  const auto seen = pcs.seen();
  ASSERT_EQ(seen.size(), 4U);
  EXPECT_TRUE(seen[0].had_api_key && seen[1].had_api_key && seen[2].had_api_key);
  EXPECT_FALSE(seen[3].had_api_key);

  // A real quote verifies with the fetched set under the default policy.
  const std::string quote = ReadData("dcap-qvl/tdx_quote");
  const attest::Verification v = Must(
      attest::VerifyQuote(crypto::AsBytes(quote), fetched.collateral, attest::Policy::Default(),
                          At("2025-07-01T00:00:00Z"), std::nullopt));
  EXPECT_TRUE(v.accepted) << (v.reasons.empty() ? "" : v.reasons[0]);
  EXPECT_EQ(v.dcap.tcb.status, attest::TcbStatus::kUpToDate);
  EXPECT_EQ(v.dcap.pck_crl, attest::PckCrlStatus::kChecked);
  // The same directory, loaded the way the plane's import loads it.
  const attest::Collateral again = Must(attest::Collateral::LoadDir(out_));
  EXPECT_TRUE(Must(attest::VerifyQuote(crypto::AsBytes(quote), again, attest::Policy::Default(),
                                       At("2025-07-01T00:00:00Z"), std::nullopt))
                  .accepted);
  // And outside the collateral's window the fetched set does not verify.
  EXPECT_FALSE(attest::VerifyQuote(crypto::AsBytes(quote), fetched.collateral,
                                   attest::Policy::Default(), At("2025-08-01T00:00:00Z"),
                                   std::nullopt)
                   .ok());
}

TEST_F(PcsClient, FetchesFromAPccsWithHexRootCrlPemPckCrlAndOldHeaderName) {
  const Served served = GoV5AsPccs();
  FakePcs pcs(served, &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.service = PcsService::kPccs;
  opts.base_url = pcs.Url() + "/";  // a trailing slash is tolerated
  opts.root_ca_crl_url = "unused for a PCCS";
  opts.update = "standard";

  const FetchedCollateral fetched = Must(FetchTdxCollateral(opts, kGoV5Fmspc, out_));
  EXPECT_EQ(Names(out_), kAllFiles);
  ASSERT_EQ(fetched.urls.size(), 4U);
  EXPECT_EQ(fetched.urls[0],
            pcs.Url() + "/tdx/certification/v4/tcb?fmspc=90C06F000000&update=standard");
  EXPECT_EQ(fetched.urls[1], pcs.Url() + "/tdx/certification/v4/qe/identity?update=standard");
  EXPECT_EQ(fetched.urls[3], pcs.Url() + kPccsRootCrlPath);
  // Both CRLs are stored as DER, whatever encoding they came in.
  EXPECT_EQ(Must(ReadFile(out_ + "/root_ca_crl.der", 1 << 20)),
            ReadData("collateral/go-tdx-guest-v5-2026/root_ca_crl.der"));
  EXPECT_EQ(Must(ReadFile(out_ + "/pck_crl.der", 1 << 20)),
            ReadData("collateral/go-tdx-guest-v5-2026/pck_crl.der"));

  const std::string quote = ReadData("go-tdx-guest/quote_v5_sample.dat");
  const attest::Verification v = Must(
      attest::VerifyQuote(crypto::AsBytes(quote), fetched.collateral, attest::Policy::Default(),
                          At("2026-02-25T00:00:00Z"), std::nullopt));
  EXPECT_TRUE(v.accepted) << (v.reasons.empty() ? "" : v.reasons[0]);
  EXPECT_EQ(v.dcap.tcb.status, attest::TcbStatus::kUpToDate);
}

TEST_F(PcsClient, NotFoundNamesTheUrlStatusAndWhatWasExpected) {
  Served served = DcapQvlAsPcs();
  served.status[kQePath] = 404;
  FakePcs pcs(served, &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("GET " + pcs.Url() + "/tdx/certification/v4/qe/identity: HTTP 404"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("expected 200 with the TD QE Identity JSON"), std::string::npos) << m;
  EXPECT_NE(m.find("request-id: fake-"), std::string::npos) << m;
  EXPECT_NE(m.find("error-code: Forced"), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_TRUE(Names(out_parent_.path()).empty());
}

TEST_F(PcsClient, UnknownFmspcIsNotFound) {
  FakePcs pcs(DcapQvlAsPcs(), &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kGoV5Fmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("tcb?fmspc=90C06F000000: HTTP 404"), std::string::npos)
      << r.status().message();
}

TEST_F(PcsClient, FailureAtTheLastItemLeavesNothing) {
  Served served = DcapQvlAsPcs();
  served.status[kPcsRootCrlPath] = 503;
  FakePcs pcs(served, &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("IntelSGXRootCA.der: HTTP 503 (expected 200 with the Intel "
                                      "SGX Root CA CRL)"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(pcs.seen().size(), 4U);  // the first three succeeded
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_TRUE(Names(out_parent_.path()).empty());
}

TEST_F(PcsClient, RedirectIsNotFollowed) {
  Served served = DcapQvlAsPcs();
  served.redirect[kPcsRootCrlPath] = "https://elsewhere.example/root.crl";
  FakePcs pcs(served, &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "IntelSGXRootCA.der: HTTP 302 (expected 200 with the Intel SGX Root CA CRL), "),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("location: https://elsewhere.example/root.crl"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(pcs.seen().size(), 4U);
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, MissingIssuerChainHeaderIsAnError) {
  for (const char* path : {kTcbPath, kQePath, kPckCrlPath}) {
    SCOPED_TRACE(path);
    Served served = DcapQvlAsPcs();
    served.omit_chain.insert(path);
    FakePcs pcs(served, &pki_);
    const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    const std::string& m = r.status().message();
    EXPECT_NE(m.find(pcs.Url() + path), std::string::npos) << m;
    EXPECT_NE(m.find("HTTP 200 without the"), std::string::npos) << m;
    EXPECT_NE(m.find("Issuer-Chain header (expected the URL-encoded PEM issuer chain)"),
              std::string::npos)
        << m;
    EXPECT_FALSE(fs::exists(out_));
  }
}

TEST_F(PcsClient, MalformedIssuerChainHeaderIsAnError) {
  Served served = DcapQvlAsPcs();
  served.raw_chain[kTcbPath] = "-----BEGIN%ZZCERTIFICATE";
  FakePcs pcs(served, &pki_);
  auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TCB-Info-Issuer-Chain: bad percent-encoding at offset 10"),
            std::string::npos)
      << r.status().message();

  Served not_pem = DcapQvlAsPcs();
  not_pem.raw_chain[kQePath] = "hello";
  FakePcs pcs2(not_pem, &pki_);
  r = FetchTdxCollateral(PcsAt(pcs2, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "SGX-Enclave-Identity-Issuer-Chain: expected a URL-encoded PEM certificate chain"),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, TcbInfoForAnotherFmspcIsRejected) {
  Served served = DcapQvlAsPcs();
  served.fmspc.clear();  // the server answers any FMSPC with B0C06F000000's TCB Info
  FakePcs pcs(served, &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kGoV5Fmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("TCB Info is for FMSPC b0c06f000000, expected 90c06f000000"),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, BodyThatIsNotTheSignedObjectIsRejected) {
  Served served = DcapQvlAsPcs();
  served.qe_body = "{\"enclaveIdentity\":{},\"signature\":\"00\"}";
  FakePcs pcs(served, &pki_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("qe/identity"), std::string::npos) << r.status().message();

  Served bad_crl = DcapQvlAsPcs();
  bad_crl.pck_crl = "not a CRL";
  FakePcs pcs2(bad_crl, &pki_);
  const auto r2 = FetchTdxCollateral(PcsAt(pcs2, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("pckcrl?ca=platform&encoding=der: expected an X.509 CRL"),
            std::string::npos)
      << r2.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, OversizedBodyIsRefused) {
  FakePcs pcs(DcapQvlAsPcs(), &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.max_response_bytes = 2048;  // the TCB Info is ~3 KB
  const auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("/tdx/certification/v4/tcb?fmspc=B0C06F000000: response "
                                      "body larger than max_response_bytes (2048)"),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, OversizedChunkedBodyIsCutOffWhileStreaming) {
  Served served = DcapQvlAsPcs();
  served.chunked_path = kPckCrlPath;  // 1 MiB with no Content-Length
  // Over plain http: only that front sends chunked answers (the cut-off is
  // the same code for either scheme).
  FakePcs pcs(served, nullptr);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.allow_insecure_http_for_tests = true;
  opts.max_response_bytes = 64 << 10;
  const auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("pckcrl?ca=platform&encoding=der: response body larger than "
                                      "max_response_bytes (65536)"),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, ServerCertificateFromAnotherCaIsATlsError) {
  const TestPki other = MintPki(tmp_, "other");
  FakePcs pcs(DcapQvlAsPcs(), &other);  // the client still trusts only pki_'s CA
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("GET " + pcs.Url() + "/tdx/certification/v4/tcb"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(": TLS: "), std::string::npos) << r.status().message();
  EXPECT_TRUE(pcs.seen().empty());  // no request got through
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, PlainHttpIsRefusedUnlessTheTestFlagIsSet) {
  FakePcs plain(DcapQvlAsPcs(), nullptr);
  PcsOptions opts;
  opts.base_url = plain.Url();
  opts.root_ca_crl_url = plain.Url() + kPcsRootCrlPath;
  auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("base_url: " + plain.Url() + ": plain http is refused"),
            std::string::npos)
      << r.status().message();
  opts.base_url = "https://127.0.0.1:1";
  r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("root_ca_crl_url: "), std::string::npos);
  EXPECT_TRUE(plain.seen().empty());

  opts.base_url = "ftp://127.0.0.1/";
  EXPECT_EQ(ValidatePcsOptions(opts).code(), StatusCode::kInvalidArgument);

  opts.base_url = plain.Url();
  opts.allow_insecure_http_for_tests = true;
  const FetchedCollateral fetched = Must(FetchTdxCollateral(opts, kDcapFmspc, out_));
  EXPECT_EQ(Names(out_), kAllFiles);
  EXPECT_EQ(plain.seen().size(), 4U);
}

TEST_F(PcsClient, WrongApiKeyIsPermissionDeniedAndTheKeyIsNeverInTheMessage) {
  Served served = DcapQvlAsPcs();
  served.required_api_key = "the-right-key";
  FakePcs pcs(served, &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  const std::string wrong = "wrong-key-5ecret";
  opts.api_key = crypto::SecretBytes::CopyOf(crypto::AsBytes(wrong));
  const auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("HTTP 401"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(wrong), std::string::npos);
  ASSERT_FALSE(pcs.seen().empty());
  EXPECT_TRUE(pcs.seen()[0].had_api_key);
}

TEST_F(PcsClient, CredentialsInAUrlAreRedactedFromErrors) {
  Served served = DcapQvlAsPcs();
  served.status[kTcbPath] = 500;
  FakePcs pcs(served, &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.base_url = "https://user:pa55word@127.0.0.1:" + pcs.Url().substr(pcs.Url().rfind(':') + 1);
  const auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("pa55word"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("https://***@127.0.0.1:"), std::string::npos)
      << r.status().message();
}

TEST_F(PcsClient, SlowServerTimesOut) {
  Served served = DcapQvlAsPcs();
  served.slow_path = kTcbPath;
  FakePcs pcs(served, &pki_);
  PcsOptions opts = PcsAt(pcs, pki_);
  opts.timeout = std::chrono::seconds(1);
  const auto r = FetchTdxCollateral(opts, kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("tcb?fmspc=B0C06F000000: timed out"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(PcsClient, ExistingOutDirIsRefusedBeforeAnyRequest) {
  FakePcs pcs(DcapQvlAsPcs(), &pki_);
  fs::create_directory(out_);
  const auto r = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, out_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(pcs.seen().empty());
  EXPECT_TRUE(Names(out_).empty());

  const auto r2 = FetchTdxCollateral(PcsAt(pcs, pki_), kDcapFmspc, Sub(out_parent_, "no/such/dir"));
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kNotFound);
}

TEST(PcsOptionsTest, ValidationNamesTheOption) {
  PcsOptions o;
  EXPECT_TRUE(ValidatePcsOptions(o).ok());  // the defaults point at Intel PCS
  o.pck_ca = "Platform CA";
  EXPECT_NE(ValidatePcsOptions(o).message().find("pck_ca: "), std::string::npos);
  o = PcsOptions();
  o.update = "late";
  EXPECT_NE(ValidatePcsOptions(o).message().find("update: "), std::string::npos);
  o = PcsOptions();
  o.max_response_bytes = 0;
  EXPECT_NE(ValidatePcsOptions(o).message().find("max_response_bytes"), std::string::npos);
  o = PcsOptions();
  o.timeout = std::chrono::seconds(0);
  EXPECT_NE(ValidatePcsOptions(o).message().find("timeout"), std::string::npos);
  o = PcsOptions();
  o.api_key = crypto::SecretBytes::CopyOf(crypto::AsBytes("a b\r\nX-Injected: 1"));
  EXPECT_NE(ValidatePcsOptions(o).message().find("api_key"), std::string::npos);
  o = PcsOptions();
  o.service = PcsService::kPccs;
  o.root_ca_crl_url.clear();  // not used for a PCCS
  EXPECT_TRUE(ValidatePcsOptions(o).ok());
}

TEST(PcsOptionsTest, ParseFmspc) {
  EXPECT_EQ(Must(ParseFmspc("B0C06F000000")), kDcapFmspc);
  EXPECT_EQ(Must(ParseFmspc("90c06f000000")), kGoV5Fmspc);
  EXPECT_FALSE(ParseFmspc("90c06f00000").ok());
  EXPECT_FALSE(ParseFmspc("90c06f0000000").ok());
  EXPECT_FALSE(ParseFmspc("90c06f00000g").ok());
}

}  // namespace
}  // namespace cce::pcs
