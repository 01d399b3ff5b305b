#include "pcs/pcs_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>  // renameat2 (glibc, _GNU_SOURCE)
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "base/fd.h"
#include "crypto/x509.h"
#include "http/client.h"
#include "http/curl.h"

namespace cce::pcs {
namespace {

namespace fs = std::filesystem;
using http::Printable;
using http::RedactUrl;

// Intel's issuer-chain headers are ~3 KB; anything near this is not PCS.
constexpr size_t kMaxHeaderBytes = size_t{64} << 10;
constexpr size_t kMaxResponseBytesLimit = size_t{1} << 30;
constexpr std::string_view kApiKeyHeader = "Ocp-Apim-Subscription-Key";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status CheckUrl(std::string_view url, std::string_view option, bool allow_http) {
  const std::string lower = Lower(url);
  if (StartsWith(lower, "https://") && url.size() > 8) return Status::Ok();
  if (StartsWith(lower, "http://") && url.size() > 7) {
    if (allow_http) return Status::Ok();
    return InvalidArgument(std::string(option) + ": " + RedactUrl(url) +
                           ": plain http is refused (https only; TLS verification is always on)");
  }
  return InvalidArgument(std::string(option) + ": " + Printable(RedactUrl(url), 200) +
                         ": expected an https:// URL");
}

// Strict percent-decoding of a header value. '+' stays '+' (base64 uses it).
StatusOr<std::string> PercentDecode(std::string_view s, const std::string& what) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return DataLoss(what + ": bad percent-encoding at offset " + std::to_string(i));
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// ---- libcurl ------------------------------------------------------------------

struct Response {
  long status = 0;  // NOLINT(google-runtime-int): libcurl's type
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::vector<std::string> duplicate_headers;
};

struct Sink {
  Response* response = nullptr;
  size_t max_body = 0;
  size_t header_bytes = 0;
  bool body_too_large = false;
  bool headers_too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (n > sink->max_body - sink->response->body.size()) {
    sink->body_too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->response->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  sink->header_bytes += n;
  if (sink->header_bytes > kMaxHeaderBytes) {
    sink->headers_too_large = true;
    return 0;
  }
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (StartsWith(line, "HTTP/")) {  // a new response (after 1xx): start over
    sink->response->headers.clear();
    sink->response->duplicate_headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = Lower(line.substr(0, colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (!sink->response->headers.emplace(name, std::string(value)).second) {
    sink->response->duplicate_headers.push_back(std::move(name));
  }
  return n;
}

class HttpsGetter {
 public:
  explicit HttpsGetter(const PcsOptions& opts) : opts_(opts) {}

  // GET url; any 2xx/3xx/4xx/5xx is returned as a Response, transport
  // failures as errors naming the URL.
  StatusOr<Response> Get(const std::string& url, bool send_api_key) {
    RETURN_IF_ERROR(http::curl::EnsureInitialized());
    if (!handle_) {
      handle_.reset(curl_easy_init());
      if (!handle_) return Internal("curl_easy_init failed");
    } else {
      curl_easy_reset(handle_.get());  // keeps the connection cache
    }
    CURL* h = handle_.get();
    Response response;
    Sink sink;
    sink.response = &response;
    sink.max_body = opts_.max_response_bytes;
    char error_buffer[CURL_ERROR_SIZE] = {};

    http::curl::Slist headers;
    const auto add_header = [&headers](const std::string& line) -> Status {
      curl_slist* next = curl_slist_append(headers.get(), line.c_str());
      if (next == nullptr) return Internal("curl_slist_append failed");
      static_cast<void>(headers.release());
      headers.reset(next);
      return Status::Ok();
    };
    if (send_api_key && !opts_.api_key.empty()) {
      std::string line(kApiKeyHeader);
      line += ": ";
      line.append(reinterpret_cast<const char*>(opts_.api_key.data()), opts_.api_key.size());
      const Status added = add_header(line);
      OPENSSL_cleanse(line.data(), line.size());
      RETURN_IF_ERROR(added);
    }

    const std::string protocols = opts_.allow_insecure_http_for_tests ? "https,http" : "https";
    bool ok = true;
    const auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
    set(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
    set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols.c_str()));
    set(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols.c_str()));
    // No redirects: the API key must not follow one to another host, and
    // PCS and PCCS answer these requests directly.
    set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
    set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L));
    set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L));
    set(curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
    if (!opts_.ca_bundle.empty()) {
      set(curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_bundle.c_str()));
      set(curl_easy_setopt(h, CURLOPT_CAPATH, nullptr));
    }
    set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(opts_.connect_timeout.count() * 1000)));
    set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout.count() * 1000)));
    set(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                         static_cast<curl_off_t>(opts_.max_response_bytes)));
    set(curl_easy_setopt(h, CURLOPT_USERAGENT, "cce4long-pcs/1"));
    set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer));
    set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody));
    set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink));
    set(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader));
    set(curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink));
    set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
    if (!ok) return Internal("GET " + RedactUrl(url) + ": cannot configure libcurl");

    const CURLcode rc = curl_easy_perform(h);
    // The handle must not keep pointers to this frame's header list.
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    const std::string what = "GET " + RedactUrl(url);
    if (sink.body_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      return DataLoss(what + ": response body larger than max_response_bytes (" +
                      std::to_string(opts_.max_response_bytes) + ")");
    }
    if (sink.headers_too_large) {
      return DataLoss(what + ": response headers larger than " + std::to_string(kMaxHeaderBytes) +
                      " bytes");
    }
    if (rc != CURLE_OK) {
      std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
      std::string kind;
      switch (rc) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CONNECT_ERROR: kind = "TLS: "; break;
        case CURLE_OPERATION_TIMEDOUT: kind = "timed out: "; break;
        case CURLE_UNSUPPORTED_PROTOCOL: kind = "refused: "; break;
        default: break;
      }
      return Status(StatusCode::kUnavailable, what + ": " + kind + Printable(detail, 300));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    return response;
  }

 private:
  const PcsOptions& opts_;
  http::curl::Easy handle_;
};

// ---- the four items -------------------------------------------------------------

Status HttpStatusError(const std::string& url, const Response& r, std::string_view expected) {
  std::string message = "GET " + RedactUrl(url) + ": HTTP " + std::to_string(r.status) +
                        " (expected 200 with " + std::string(expected) + ")";
  for (const char* name : {"request-id", "error-code", "error-message", "location"}) {
    const auto it = r.headers.find(name);
    if (it != r.headers.end()) {
      message += std::string(", ") + name + ": " + Printable(it->second, 200);
    }
  }
  if (!r.body.empty()) message += ", body: " + Printable(r.body, 160);
  StatusCode code = StatusCode::kUnavailable;
  if (r.status == 404 || r.status == 410) code = StatusCode::kNotFound;
  if (r.status == 401 || r.status == 403) code = StatusCode::kPermissionDenied;
  return {code, std::move(message)};
}

// The URL-decoded PEM chain from the first of `names` present; it must
// parse as certificates.
StatusOr<std::string> IssuerChain(const std::string& url, const Response& r,
                                  const std::vector<std::string_view>& names) {
  const std::string what = "GET " + RedactUrl(url);
  for (const std::string& dup : r.duplicate_headers) {
    for (const std::string_view name : names) {
      if (dup == Lower(name)) {
        return DataLoss(what + ": header " + std::string(name) + " appears more than once");
      }
    }
  }
  for (const std::string_view name : names) {
    const auto it = r.headers.find(Lower(name));
    if (it == r.headers.end()) continue;
    const std::string header = what + ": header " + std::string(name);
    ASSIGN_OR_RETURN(std::string pem, PercentDecode(it->second, header));
    auto certs = crypto::ParseCertificatesPem(pem);
    if (!certs.ok()) {
      return DataLoss(
          header + ": expected a URL-encoded PEM certificate chain: " + certs.status().message());
    }
    return pem;
  }
  std::string list;
  for (const std::string_view name : names) {
    list += (list.empty() ? "" : " or ") + std::string(name);
  }
  return DataLoss(what + ": HTTP 200 without the " + list +
                  " header (expected the URL-encoded PEM issuer chain)");
}

bool AllHex(std::string_view s) {
  return !s.empty() && s.size() % 2 == 0 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// A CRL served as DER, PEM, or hex of either (PCCS's rootcacrl), as DER.
StatusOr<crypto::Bytes> CrlAsDer(const std::string& url, const std::string& body) {
  const std::string what = "GET " + RedactUrl(url);
  std::string_view text = body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
    text.remove_suffix(1);
  }
  std::string decoded;
  std::string_view bytes = body;
  if (AllHex(text)) {
    auto raw = crypto::FromHex(text);
    if (!raw.ok()) return DataLoss(what + ": bad hex CRL: " + raw.status().message());
    decoded.assign(raw->begin(), raw->end());
    bytes = decoded;
  }
  auto crl = bytes.find("-----BEGIN") != std::string_view::npos
                 ? crypto::ParseCrlPem(bytes)
                 : crypto::ParseCrlDer(crypto::AsBytes(bytes));
  if (!crl.ok()) {
    return DataLoss(what + ": expected an X.509 CRL (DER, PEM or hex): " + crl.status().message());
  }
  return crl->der();
}

struct Downloaded {
  std::string tcb_info_json;
  std::string tcb_info_chain;
  std::string qe_identity_json;
  std::string qe_identity_chain;
  crypto::Bytes pck_crl_der;
  std::string pck_crl_chain;
  crypto::Bytes root_ca_crl_der;
  std::vector<std::string> urls;
};

std::string BaseUrl(const PcsOptions& opts) {
  std::string base = opts.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

StatusOr<Downloaded> Download(const PcsOptions& opts, const std::array<uint8_t, 6>& fmspc) {
  HttpsGetter http(opts);
  Downloaded d;
  const std::string base = BaseUrl(opts);
  const std::string update = opts.update.empty() ? "" : "update=" + opts.update;
  std::string fmspc_hex = crypto::ToHex(fmspc);
  for (char& c : fmspc_hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  // TDX TCB Info for the FMSPC.
  {
    std::string url = base + "/tdx/certification/v4/tcb?fmspc=" + fmspc_hex;
    if (!update.empty()) url += "&" + update;
    ASSIGN_OR_RETURN(Response r, http.Get(url, /*send_api_key=*/true));
    if (r.status != 200) return HttpStatusError(url, r, "the TDX TCB Info JSON");
    ASSIGN_OR_RETURN(d.tcb_info_chain,
                     IssuerChain(url, r, {"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}));
    const std::string what = "GET " + RedactUrl(url);
    auto signed_json = attest::SplitSignedJson(r.body, "tcbInfo", what);
    if (!signed_json.ok()) return DataLoss(signed_json.status().message());
    auto info = attest::ParseTcbInfo(signed_json->body);
    if (!info.ok()) return DataLoss(info.status().WithContext(what).message());
    if (info->fmspc != fmspc) {
      return DataLoss(what + ": TCB Info is for FMSPC " + crypto::ToHex(info->fmspc) +
                      ", expected " + crypto::ToHex(fmspc));
    }
    d.tcb_info_json = std::move(r.body);
    d.urls.push_back(url);
  }
  // TD QE Identity.
  {
    std::string url = base + "/tdx/certification/v4/qe/identity";
    if (!update.empty()) url += "?" + update;
    ASSIGN_OR_RETURN(Response r, http.Get(url, /*send_api_key=*/true));
    if (r.status != 200) return HttpStatusError(url, r, "the TD QE Identity JSON");
    ASSIGN_OR_RETURN(d.qe_identity_chain,
                     IssuerChain(url, r, {"SGX-Enclave-Identity-Issuer-Chain"}));
    const std::string what = "GET " + RedactUrl(url);
    auto signed_json = attest::SplitSignedJson(r.body, "enclaveIdentity", what);
    if (!signed_json.ok()) return DataLoss(signed_json.status().message());
    auto identity = attest::ParseQeIdentity(signed_json->body);
    if (!identity.ok()) return DataLoss(identity.status().WithContext(what).message());
    d.qe_identity_json = std::move(r.body);
    d.urls.push_back(url);
  }
  // PCK CRL of the chosen CA.
  {
    const std::string url =
        base + "/sgx/certification/v4/pckcrl?ca=" + opts.pck_ca + "&encoding=der";
    ASSIGN_OR_RETURN(Response r, http.Get(url, /*send_api_key=*/true));
    if (r.status != 200) return HttpStatusError(url, r, "the PCK CRL");
    ASSIGN_OR_RETURN(d.pck_crl_chain, IssuerChain(url, r, {"SGX-PCK-CRL-Issuer-Chain"}));
    ASSIGN_OR_RETURN(d.pck_crl_der, CrlAsDer(url, r.body));
    d.urls.push_back(url);
  }
  // Intel SGX Root CA CRL: Intel publishes it outside the API; a PCCS serves it.
  {
    const bool pccs = opts.service == PcsService::kPccs;
    const std::string url = pccs ? base + "/sgx/certification/v4/rootcacrl" : opts.root_ca_crl_url;
    // The API key is for base_url's service only, never for another host.
    ASSIGN_OR_RETURN(Response r, http.Get(url, /*send_api_key=*/pccs));
    if (r.status != 200) return HttpStatusError(url, r, "the Intel SGX Root CA CRL");
    ASSIGN_OR_RETURN(d.root_ca_crl_der, CrlAsDer(url, r.body));
    d.urls.push_back(url);
  }
  return d;
}

// ---- staging directory ----------------------------------------------------------

// Removes the staging directory unless released.
class StageGuard {
 public:
  explicit StageGuard(std::string path) : path_(std::move(path)) {}
  StageGuard(const StageGuard&) = delete;
  StageGuard& operator=(const StageGuard&) = delete;
  ~StageGuard() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(dir, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(dir + ": fsync", errno);
  return Status::Ok();
}

Status WriteText(const std::string& dir, const char* name, std::string_view text) {
  return WriteFileAtomic(dir + "/" + name, crypto::AsBytes(text), 0644);
}

}  // namespace

Status ValidatePcsOptions(const PcsOptions& opts) {
  const bool http = opts.allow_insecure_http_for_tests;
  RETURN_IF_ERROR(CheckUrl(opts.base_url, "base_url", http));
  if (opts.service == PcsService::kIntelPcs) {
    RETURN_IF_ERROR(CheckUrl(opts.root_ca_crl_url, "root_ca_crl_url", http));
  }
  if (opts.pck_ca != "platform" && opts.pck_ca != "processor") {
    return InvalidArgument("pck_ca: " + Printable(opts.pck_ca, 40) +
                           ": expected 'platform' or 'processor'");
  }
  if (!opts.update.empty() && opts.update != "standard" && opts.update != "early") {
    return InvalidArgument("update: " + Printable(opts.update, 40) +
                           ": expected '', 'standard' or 'early'");
  }
  for (const uint8_t b : opts.api_key.span()) {
    if (b < 0x21 || b > 0x7e) {
      return InvalidArgument("api_key: expected printable ASCII without spaces");
    }
  }
  constexpr int64_t kMaxSeconds = int64_t{24} * 3600;
  if (opts.connect_timeout.count() < 1 || opts.connect_timeout.count() > kMaxSeconds) {
    return InvalidArgument("connect_timeout: expected 1..86400 seconds");
  }
  if (opts.timeout.count() < 1 || opts.timeout.count() > kMaxSeconds) {
    return InvalidArgument("timeout: expected 1..86400 seconds");
  }
  if (opts.max_response_bytes < 1024 || opts.max_response_bytes > kMaxResponseBytesLimit) {
    return InvalidArgument("max_response_bytes: expected 1 KiB..1 GiB");
  }
  return Status::Ok();
}

StatusOr<std::array<uint8_t, 6>> ParseFmspc(std::string_view hex) {
  auto bytes = crypto::FromHex(Lower(hex));
  if (!bytes.ok() || bytes->size() != 6) {
    return InvalidArgument("fmspc: " + Printable(hex, 40) + ": expected 12 hex digits");
  }
  std::array<uint8_t, 6> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

StatusOr<FetchedCollateral> FetchTdxCollateral(const PcsOptions& opts, std::array<uint8_t, 6> fmspc,
                                               const std::string& out_dir) {
  RETURN_IF_ERROR(ValidatePcsOptions(opts));
  std::string target = out_dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) return InvalidArgument("out_dir: empty");
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0) {
    return AlreadyExists(target + ": already exists (out_dir must be a new directory)");
  }
  const fs::path target_path(target);
  const std::string parent =
      target_path.has_parent_path() ? target_path.parent_path().string() : std::string(".");
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFound(parent + ": the parent of out_dir is not a directory");
  }

  ASSIGN_OR_RETURN(Downloaded d, Download(opts, fmspc));

  std::string stage_template = parent + "/." + target_path.filename().string() + ".fetch-XXXXXX";
  if (::mkdtemp(stage_template.data()) == nullptr) return ErrnoStatus(stage_template, errno);
  const std::string stage = stage_template;
  StageGuard guard(stage);
  RETURN_IF_ERROR(WriteText(stage, "tcb_info.json", d.tcb_info_json));
  RETURN_IF_ERROR(WriteText(stage, "tcb_info_issuer_chain.pem", d.tcb_info_chain));
  RETURN_IF_ERROR(WriteText(stage, "qe_identity.json", d.qe_identity_json));
  RETURN_IF_ERROR(WriteText(stage, "qe_identity_issuer_chain.pem", d.qe_identity_chain));
  RETURN_IF_ERROR(WriteFileAtomic(stage + "/pck_crl.der", d.pck_crl_der, 0644));
  RETURN_IF_ERROR(WriteText(stage, "pck_crl_issuer_chain.pem", d.pck_crl_chain));
  RETURN_IF_ERROR(WriteFileAtomic(stage + "/root_ca_crl.der", d.root_ca_crl_der, 0644));
  if (::chmod(stage.c_str(), 0755) != 0) return ErrnoStatus(stage, errno);
  {
    auto staged = attest::Collateral::FromPcsDirectory(stage);
    if (!staged.ok()) {
      return DataLoss("fetched collateral does not load: " + staged.status().message());
    }
  }
  // RENAME_NOREPLACE: a directory created at out_dir meanwhile is never replaced.
  if (::renameat2(AT_FDCWD, stage.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST) return AlreadyExists(target + ": created by someone else during the fetch");
    return ErrnoStatus(target + ": rename from " + stage, err);
  }
  guard.Release();
  RETURN_IF_ERROR(FsyncDir(parent));

  FetchedCollateral out;
  auto loaded = attest::Collateral::FromPcsDirectory(target);
  if (!loaded.ok()) {
    std::error_code ec;
    fs::remove_all(target, ec);
    return DataLoss("fetched collateral does not load back: " + loaded.status().message());
  }
  out.collateral = std::move(loaded).value();
  out.urls = std::move(d.urls);
  for (std::string& url : out.urls) url = RedactUrl(url);
  return out;
}

}  // namespace cce::pcs
