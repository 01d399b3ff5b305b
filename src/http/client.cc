#include "http/client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "base/fd.h"
#include "http/curl.h"

namespace cce::http {
namespace {

// The plane's largest header block is a few hundred bytes; far beyond this
// is not the plane.
constexpr size_t kMaxResponseHeaderBytes = size_t{64} << 10;
// A non-2xx answer to a streamed download is an error JSON; more than this
// is dropped (still read, so the connection stays usable).
constexpr size_t kMaxErrorBodyBytes = size_t{64} << 10;
// System CA bundles are ~200 KB; a "CA file" far larger is something else.
constexpr size_t kMaxCaFileBytes = size_t{16} << 20;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasControlChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

using HeaderList = curl::Slist;

Status Append(HeaderList& list, const std::string& line) {
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  if (next == nullptr) return Internal("curl_slist_append failed");
  static_cast<void>(list.release());  // `next` is the same list, grown
  list.reset(next);
  return Status::Ok();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct X509InfoStackDeleter {
  void operator()(STACK_OF(X509_INFO) * s) const { sk_X509_INFO_pop_free(s, X509_INFO_free); }
};

std::string OpenSslReason() {
  const unsigned long e = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown error";
}

struct X509StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using TrustedCas = std::shared_ptr<X509_STORE>;

// Which version of a CA file a parse came from: a rewrite in place changes
// the size, mtime or ctime; a replacement by rename changes the inode.
struct FileVersion {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileVersion& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

// The certificates of a CA file, parsed once per version of the file and
// shared by every Client of the process. Without it each new connection
// parsed the file twice (the check below, then libcurl's CAINFO load), a
// fifth of a simulated agent's CPU per key release (docs/performance.md).
class TrustedCasCache {
 public:
  // The parsed file, or nullptr when `path` at `version` is not cached.
  TrustedCas Find(const std::string& path, const FileVersion& version) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(path);
    return it != entries_.end() && it->second.version == version ? it->second.cas : nullptr;
  }
  void Put(const std::string& path, const FileVersion& version, TrustedCas cas) {
    std::lock_guard<std::mutex> l(mu_);
    if (entries_.size() >= kMaxEntries && entries_.find(path) == entries_.end()) {
      entries_.erase(entries_.begin());  // a process names a handful of CA files
    }
    entries_[path] = Entry{version, std::move(cas)};
  }

 private:
  static constexpr size_t kMaxEntries = 16;
  struct Entry {
    FileVersion version;
    TrustedCas cas;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

TrustedCasCache& CasCache() {
  static auto* cache = new TrustedCasCache();  // never destroyed: Clients may outlive main
  return *cache;
}

// The certificates of the CA file `path`, checked when the Client is made so
// that a wrong --ca fails at once with a message about the file, not later
// as a TLS error about the server. Parsed as OpenSSL parses CAINFO
// (PEM_X509_INFO_read_bio); each connection's TLS context then shares the
// one store (UseTrustedCas) instead of loading the file again.
StatusOr<TrustedCas> LoadTrustedCas(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return InvalidArgument("CA file " + path + ": cannot open it: " + std::strerror(errno) +
                           " (check --ca)");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("CA file " + path + ": fstat", errno);
  const FileVersion version{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
  if (TrustedCas cached = CasCache().Find(path, version)) return cached;
  auto text = ReadAll(fd.get(), kMaxCaFileBytes, "CA file " + path);
  if (!text.ok()) return InvalidArgument(text.status().message() + " (check --ca)");
  // A key named by mistake (the plane's tls/ca.key or server.key beside
  // ca.crt, a cce4long key file): say so, never quote it.
  const bool pem_key = text->find("PRIVATE KEY-----") != std::string::npos;
  if (text->find("-----BEGIN CERTIFICATE-----") == std::string::npos &&
      (pem_key || text->starts_with("cce4long-"))) {
    return InvalidArgument("CA file " + path + ": this is a " +
                           (pem_key ? std::string("private key") : "cce4long key file") +
                           ", not a certificate (the plane's CA certificate is "
                           "DATA_DIR/tls/ca.crt; check --ca)");
  }
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  if (!bio) return Internal("BIO_new_mem_buf failed");
  ERR_clear_error();
  std::unique_ptr<STACK_OF(X509_INFO), X509InfoStackDeleter> infos(
      PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr));
  if (!infos) {
    return InvalidArgument("CA file " + path + ": not a PEM certificate file (" + OpenSslReason() +
                           "; check --ca)");
  }
  TrustedCas store(X509_STORE_new(), X509StoreDeleter());
  if (!store) return Internal("X509_STORE_new failed");
  // As libcurl sets on the store it loads CAINFO into (7.68 and later): a
  // certificate in the file is an anchor even if it is not self-signed.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  int certificates = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
    const X509_INFO* info = sk_X509_INFO_value(infos.get(), i);
    // As OpenSSL's own CAINFO load: certificates and CRLs (the latter used
    // only if CRL checks are asked for, which they are not).
    if (info->x509 != nullptr) {
      if (X509_STORE_add_cert(store.get(), info->x509) != 1) {
        return InvalidArgument("CA file " + path + ": certificate " +
                               std::to_string(certificates + 1) + " cannot be trusted (" +
                               OpenSslReason() + "; check --ca)");
      }
      ++certificates;
    }
    if (info->crl != nullptr && X509_STORE_add_crl(store.get(), info->crl) != 1) {
      return InvalidArgument("CA file " + path + ": a CRL cannot be loaded (" + OpenSslReason() +
                             "; check --ca)");
    }
  }
  if (certificates == 0) {
    return InvalidArgument("CA file " + path +
                           ": holds no PEM certificate (expected -----BEGIN CERTIFICATE-----; "
                           "check --ca)");
  }
  CasCache().Put(path, version, store);
  return store;
}

// CURLOPT_SSL_CTX_FUNCTION: the connection's TLS context trusts exactly the
// CA file's certificates (CAINFO and CAPATH are unset, so libcurl loads
// nothing itself; peer and host checks stay libcurl's).
CURLcode UseTrustedCas(CURL* /*handle*/, void* ssl_ctx, void* store) {
  SSL_CTX_set1_cert_store(static_cast<SSL_CTX*>(ssl_ctx), static_cast<X509_STORE*>(store));
  return CURLE_OK;
}

// What one Send hands to libcurl's callbacks.
struct Transfer {
  const ClientRequest* request = nullptr;
  ClientResponse* response = nullptr;
  uint64_t max_body = 0;
  size_t header_bytes = 0;
  size_t upload_offset = 0;  // into request->body
  bool headers_too_large = false;
  bool body_too_large = false;
  Status callback_status;  // a body_reader/body_sink error, returned as is
};

bool Is2xx(int status) {
  return status >= 200 && status < 300;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->header_bytes += n;
  if (t->header_bytes > kMaxResponseHeaderBytes) {
    t->headers_too_large = true;
    return 0;  // aborts the transfer
  }
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (StartsWith(line, "HTTP/")) {
    // A new status line (the final one after any 1xx): start over.
    t->response->headers.clear();
    const size_t sp = line.find(' ');
    int status = 0;
    if (sp != std::string_view::npos) {
      for (size_t i = sp + 1; i < line.size() && i < sp + 4; ++i) {
        if (line[i] < '0' || line[i] > '9') break;
        status = status * 10 + (line[i] - '0');
      }
    }
    t->response->status = status;
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;  // the blank line ending the block
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  t->response->headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  ClientResponse& r = *t->response;
  if (t->request->body_sink && Is2xx(r.status)) {
    // The sink is the caller's code: an exception must not unwind through libcurl.
    try {
      t->callback_status = t->request->body_sink({reinterpret_cast<const uint8_t*>(data), n});
    } catch (const std::exception& e) {
      t->callback_status = Internal(std::string("response body sink threw: ") + e.what());
    }
    return t->callback_status.ok() ? n : 0;
  }
  if (t->request->body_sink) {  // an error answer to a download: keep its start for the message
    r.body.append(data,
                  std::min(n, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, r.body.size())));
    return n;
  }
  if (n > t->max_body - std::min<uint64_t>(t->max_body, r.body.size())) {
    t->body_too_large = true;
    return 0;
  }
  r.body.append(data, n);
  return n;
}

size_t OnRead(char* buf, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t room = size * count;
  const ClientRequest& req = *t->request;
  if (!req.body_reader) {
    const size_t n = std::min(room, req.body.size() - t->upload_offset);
    std::copy_n(req.body.data() + t->upload_offset, n, buf);
    t->upload_offset += n;
    return n;
  }
  try {
    StatusOr<size_t> n = req.body_reader({reinterpret_cast<uint8_t*>(buf), room});
    if (!n.ok()) {
      t->callback_status = n.status();
      return CURL_READFUNC_ABORT;
    }
    if (*n > room) {
      t->callback_status = Internal("request body reader returned more bytes than asked for");
      return CURL_READFUNC_ABORT;
    }
    return *n;
  } catch (const std::exception& e) {
    t->callback_status = Internal(std::string("request body reader threw: ") + e.what());
    return CURL_READFUNC_ABORT;
  }
}

// libcurl rewinds the body when it resends a request on a fresh connection
// (a kept-alive one the server had closed). A string body can be resent; a
// streamed one cannot, and that request fails with CURLE_SEND_FAIL_REWIND.
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->body_reader || origin != SEEK_SET || offset < 0 ||
      static_cast<uint64_t>(offset) > t->request->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

std::string HostOf(std::string_view url) {
  const size_t start = url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3;
  std::string_view authority = url.substr(start, url.find_first_of("/?#", start) - start);
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (StartsWith(authority, "[")) return std::string(authority.substr(0, authority.find(']') + 1));
  return std::string(authority.substr(0, authority.find(':')));
}

std::string Millis(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

}  // namespace

std::optional<std::string> ClientResponse::HeaderValue(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

struct Client::Impl {
  ClientOptions options;
  std::string url_for_messages;  // base_url with any credentials redacted
  std::string protocols;         // CURLOPT_PROTOCOLS_STR
  TrustedCas cas;                // from options.ca_file; null: the system store
  curl::Easy handle;
  char error_buffer[CURL_ERROR_SIZE] = {};

  Status Configure(const std::string& url, const ClientRequest& req, Transfer& t,
                   curl_slist* headers);
  Status TransportError(CURLcode rc) const;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

StatusOr<Client> Client::Create(ClientOptions options) {
  RETURN_IF_ERROR(curl::EnsureInitialized());
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  const std::string lower = Lower(options.base_url);
  const bool https = StartsWith(lower, "https://") && lower.size() > 8;
  // Plain http exists for tests against a local server; the scheme is
  // chosen by whoever configures the URL, never by a server's redirect.
  const bool http = StartsWith(lower, "http://") && lower.size() > 7;
  if ((!https && !http) || HasControlChar(options.base_url) ||
      options.base_url.find(' ') != std::string::npos) {
    return InvalidArgument("URL '" + Printable(RedactUrl(options.base_url), 200) +
                           "': expected https://HOST:PORT");
  }
  TrustedCas cas;
  if (!options.ca_file.empty()) {
    ASSIGN_OR_RETURN(cas, LoadTrustedCas(options.ca_file));
  }
  if (!options.unix_socket_path.empty() &&
      (options.unix_socket_path.front() != '/' || HasControlChar(options.unix_socket_path))) {
    return InvalidArgument("Unix socket path '" + Printable(options.unix_socket_path, 200) +
                           "': expected an absolute path");
  }
  auto impl = std::make_unique<Impl>();
  impl->url_for_messages = RedactUrl(options.base_url);
  impl->protocols = https ? "https" : "http";
  impl->options = std::move(options);
  impl->cas = std::move(cas);
  impl->handle.reset(curl_easy_init());
  if (!impl->handle) return Internal("curl_easy_init failed");
  return Client(std::move(impl));
}

Status Client::Impl::Configure(const std::string& url, const ClientRequest& req, Transfer& t,
                               curl_slist* headers) {
  CURL* h = handle.get();
  // Every option is set again on each request: a reset handle keeps its
  // connection, DNS and TLS session caches but nothing of the last request.
  curl_easy_reset(h);
  error_buffer[0] = '\0';
  bool ok = true;
  const auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
  using Long = long;  // NOLINT(google-runtime-int): libcurl's option type
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer));
  set(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols.c_str()));
  set(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols.c_str()));
  // A redirect would carry the bearer token to wherever it points; the
  // plane never sends one.
  set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, Long{0}));
  // The environment's http(s)_proxy does not apply: the CA pinning and the
  // token are for the plane itself (cpp-httplib, before, ignored it too).
  set(curl_easy_setopt(h, CURLOPT_PROXY, ""));
  set(curl_easy_setopt(h, CURLOPT_HTTP_VERSION, Long{CURL_HTTP_VERSION_1_1}));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, Long{1}));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, Long{2}));
  set(curl_easy_setopt(h, CURLOPT_SSLVERSION, Long{CURL_SSLVERSION_TLSv1_2}));
  if (cas) {  // only the given file is trusted
    set(curl_easy_setopt(h, CURLOPT_CAINFO, nullptr));
    set(curl_easy_setopt(h, CURLOPT_CAPATH, nullptr));
    set(curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, &UseTrustedCas));
    set(curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, cas.get()));
  }
  if (!options.unix_socket_path.empty()) {
    set(curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, options.unix_socket_path.c_str()));
  }
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, Long{1}));     // timeouts without SIGALRM (threads)
  set(curl_easy_setopt(h, CURLOPT_TCP_NODELAY, Long{1}));  // else Nagle + delayed ACK: ~40 ms
  set(curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, Long{1}));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<Long>(options.connect_timeout.count())));
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<Long>(options.timeout.count())));
  if (options.stall_timeout.count() > 0) {
    set(curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, Long{1}));
    set(curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                         static_cast<Long>((options.stall_timeout.count() + 999) / 1000)));
  }
  set(curl_easy_setopt(h, CURLOPT_USERAGENT, "cce4long/1"));
  set(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader));
  set(curl_easy_setopt(h, CURLOPT_HEADERDATA, &t));
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &t));

  const bool has_body = static_cast<bool>(req.body_reader) || !req.body.empty() ||
                        req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  if (has_body) {
    // UPLOAD sends the body from OnRead for any method (CUSTOMREQUEST names
    // it): one path for Content-Length and chunked bodies.
    set(curl_easy_setopt(h, CURLOPT_UPLOAD, Long{1}));
    set(curl_easy_setopt(h, CURLOPT_READFUNCTION, &OnRead));
    set(curl_easy_setopt(h, CURLOPT_READDATA, &t));
    set(curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &OnSeek));
    set(curl_easy_setopt(h, CURLOPT_SEEKDATA, &t));
    set(curl_easy_setopt(
        h, CURLOPT_INFILESIZE_LARGE,
        req.body_reader ? (req.body_size ? static_cast<curl_off_t>(*req.body_size) : curl_off_t{-1})
                        : static_cast<curl_off_t>(req.body.size())));
    if (req.method != "PUT") set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str()));
  } else if (req.method == "HEAD") {
    set(curl_easy_setopt(h, CURLOPT_NOBODY, Long{1}));
  } else if (req.method != "GET") {
    set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str()));
  }
  set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers));
  if (!ok) return Internal(req.method + " " + url_for_messages + ": cannot configure libcurl");
  return Status::Ok();
}

Status Client::Impl::TransportError(CURLcode rc) const {
  const std::string where =
      "cannot reach the plane at " + url_for_messages +
      (options.unix_socket_path.empty() ? "" : " through unix:" + options.unix_socket_path) + ": ";
  const std::string detail =
      Printable(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc), 300);
  const std::string trust_store =
      options.ca_file.empty() ? "the system CA store" : "CA file " + options.ca_file;
  switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;  // NOLINT(google-runtime-int): libcurl's type
      curl_easy_getinfo(handle.get(), CURLINFO_OS_ERRNO, &os_errno);
      const std::string cause = os_errno == ECONNREFUSED ? "connection refused"
                                : os_errno != 0 ? Lower(std::strerror(static_cast<int>(os_errno)))
                                                : "cannot connect (" + detail + ")";
      return Unavailable(where + cause + " (is the plane running? check the URL)");
    }
    case CURLE_COULDNT_RESOLVE_HOST:
      return Unavailable(where + "cannot resolve host '" +
                         Printable(HostOf(url_for_messages), 200) + "' (check the URL)");
    case CURLE_OPERATION_TIMEDOUT: {
      // libcurl's message says which limit fired.
      if (detail.find("too slow") != std::string::npos) {
        return Unavailable(where + "timed out: nothing sent or received for " +
                           Millis(options.stall_timeout) + " (the plane may be overloaded)");
      }
      if (StartsWith(detail, "Operation timed out") && options.timeout.count() > 0) {
        return Unavailable(where + "timed out: no complete answer within the request timeout of " +
                           Millis(options.timeout));
      }
      return Unavailable(where + "timed out: no connection within the connect timeout of " +
                         Millis(options.connect_timeout) +
                         " (is the host reachable? check the URL; " + detail + ")");
    }
    case CURLE_PEER_FAILED_VERIFICATION:
      if (detail.find("subject name") != std::string::npos ||
          detail.find("does not match") != std::string::npos) {
        return Unavailable(where + "the server's TLS certificate is not issued for host '" +
                           Printable(HostOf(url_for_messages), 200) +
                           "' (check the URL's host name): " + detail);
      }
      return Unavailable(where + "the server's TLS certificate is not trusted by " + trust_store +
                         " (wrong --ca?): " + detail);
    case CURLE_SSL_CACERT_BADFILE:
      // Only for the system store: a CA file is loaded at Create.
      return InvalidArgument(trust_store +
                             ": cannot be loaded as PEM certificates (check --ca): " + detail);
    case CURLE_SSL_CONNECT_ERROR:
      return Unavailable(where +
                         "TLS handshake failed (is this the plane's https port?): " + detail);
    case CURLE_GOT_NOTHING:
      return Unavailable(where +
                         "the connection was closed without an answer (is this the "
                         "plane's port?)");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      return Unavailable(where + "the connection broke mid-request: " + detail);
    case CURLE_SEND_FAIL_REWIND:
      return Unavailable(where +
                         "the connection was lost while sending a streamed body, which "
                         "cannot be sent again; retry");
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Unavailable(where + "refused: only " + protocols + " is allowed: " + detail);
    default: return Unavailable(where + detail);
  }
}

StatusOr<ClientResponse> Client::Send(const ClientRequest& request) {
  Impl& im = *impl_;
  const std::string what = request.method + " " + im.url_for_messages;
  if (request.target.empty() || request.target.front() != '/' || HasControlChar(request.target) ||
      request.target.find(' ') != std::string::npos) {
    return InvalidArgument(what +
                           ": request target must start with '/' and hold no spaces or "
                           "control characters");
  }
  if (request.method.empty() || !std::all_of(request.method.begin(), request.method.end(),
                                             [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return InvalidArgument("HTTP method '" + Printable(request.method, 20) +
                           "': expected e.g. GET");
  }
  HeaderList headers;
  for (const Header& h : request.headers) {
    // CR/LF would let a value inject more headers; values may hold tokens,
    // so only the name is named.
    if (h.name.empty() || HasControlChar(h.name) || HasControlChar(h.value) ||
        h.name.find_first_of(": ") != std::string::npos) {
      return InvalidArgument(what + ": header '" + Printable(h.name, 100) +
                             "': bad name or control character in the value");
    }
    // "Name;" is libcurl's spelling of a header with an empty value.
    RETURN_IF_ERROR(Append(headers, h.value.empty() ? h.name + ";" : h.name + ": " + h.value));
  }
  // No 100-continue round trip (a full RTT per upload); the plane answers
  // early refusals (401, 413) and closes instead.
  RETURN_IF_ERROR(Append(headers, "Expect:"));
  if (request.body_reader && !request.body_size) {
    RETURN_IF_ERROR(Append(headers, "Transfer-Encoding: chunked"));
  }

  ClientResponse response;
  Transfer t;
  t.request = &request;
  t.response = &response;
  t.max_body = im.options.max_response_bytes;
  const std::string url = im.options.base_url + request.target;
  RETURN_IF_ERROR(im.Configure(url, request, t, headers.get()));
  const CURLcode rc = curl_easy_perform(im.handle.get());
  // The handle must not keep a pointer to this frame's header list.
  curl_easy_setopt(im.handle.get(), CURLOPT_HTTPHEADER, nullptr);

  RETURN_IF_ERROR(t.callback_status);
  if (t.headers_too_large) {
    return DataLoss(what + ": response headers larger than " +
                    std::to_string(kMaxResponseHeaderBytes) + " bytes");
  }
  if (t.body_too_large) {
    return DataLoss(what + request.target.substr(0, request.target.find('?')) +
                    ": response body larger than " + std::to_string(t.max_body) + " bytes");
  }
  if (rc != CURLE_OK) return im.TransportError(rc);
  long status = 0;  // NOLINT(google-runtime-int): libcurl's type
  curl_easy_getinfo(im.handle.get(), CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    // ASCII ranges, not std::isalnum: the result must not depend on the locale.
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0f];
    }
  }
  return out;
}

std::string RedactUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  const size_t at = url.substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + "***@" + std::string(url.substr(start + at + 1));
}

std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (const char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace cce::http
