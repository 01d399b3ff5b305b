#include "explore/jupyter_status.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "http/curl.h"

namespace cce::explore {
namespace {

using nlohmann::json;

constexpr long kTimeoutMs = 5000;  // NOLINT(google-runtime-int): libcurl's option type
constexpr size_t kMaxTokenBytes = 512;

Status BadField(std::string_view field, std::string_view why) {
  return InvalidArgument("jupyter status: " + std::string(field) + ": " + std::string(why));
}

// Up to 64 bytes of text for a message, non-printables as '?'.
std::string Excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    out.push_back(
        static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f ? c : '?');
  }
  if (s.size() > 64) out += "...";
  return out;
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
// (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

StatusOr<int> NonNegativeInt(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return BadField(field, "missing");
  if (!it->is_number_integer()) return BadField(field, "expected an integer");
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      return BadField(field, "out of range");
    }
    return static_cast<int>(v);
  }
  int64_t v = it->get<int64_t>();
  if (v < 0) return BadField(field, "must not be negative");
  if (v > std::numeric_limits<int>::max()) return BadField(field, "out of range");
  return static_cast<int>(v);
}

StatusOr<int64_t> Timestamp(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return BadField(field, "missing");
  if (!it->is_string()) return BadField(field, "expected an ISO-8601 timestamp string");
  StatusOr<int64_t> t = ParseIso8601(it->get_ref<const std::string&>());
  if (!t.ok()) return BadField(field, t.status().message());
  return t;
}

bool SafeBaseUrl(std::string_view base_url) {
  if (base_url.empty() || base_url.size() > 256 || base_url.front() != '/' ||
      base_url.back() != '/' || base_url.find("//") != std::string_view::npos ||
      base_url.find("/../") != std::string_view::npos ||
      base_url.find("/./") != std::string_view::npos) {
    return false;
  }
  return std::all_of(base_url.begin(), base_url.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
  });
}

bool SafeHost(std::string_view host) {
  return !host.empty() && host.size() <= 253 && host.front() != '-' &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-';
         });
}

// The origin ("http://host:port") requests go to; for a Unix socket the host
// is only the Host header.
StatusOr<std::string> Origin(const Upstream& up) {
  const bool has_socket = !up.unix_socket.empty();
  const bool has_host = !up.host.empty();
  if (has_socket == has_host) {
    return InvalidArgument("jupyter upstream: exactly one of unix_socket and host must be set");
  }
  if (has_socket) {
    if (up.unix_socket.front() != '/' || up.unix_socket.size() > 107 ||
        std::any_of(up.unix_socket.begin(), up.unix_socket.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
      return InvalidArgument("jupyter upstream: unix_socket '" + Excerpt(up.unix_socket) +
                             "': expected an absolute path of at most 107 bytes");
    }
    return std::string("http://localhost");
  }
  if (!SafeHost(up.host)) {
    return InvalidArgument("jupyter upstream: host '" + Excerpt(up.host) +
                           "': expected a DNS name or IPv4 address");
  }
  if (up.port < 1 || up.port > 65535) {
    return InvalidArgument("jupyter upstream: port " + std::to_string(up.port) +
                           ": expected 1..65535");
  }
  return "http://" + up.host + ":" + std::to_string(up.port);
}

std::string Where(const Upstream& up) {
  return up.unix_socket.empty() ? up.host + ":" + std::to_string(up.port)
                                : "unix:" + up.unix_socket;
}

struct Body {
  std::string data;
  bool overflow = false;
};

size_t OnBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* body = static_cast<Body*>(userdata);
  const size_t n = size * nmemb;
  if (body->data.size() + n > kMaxJupyterStatusBytes) {
    body->overflow = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, n);
  return n;
}

struct Answer {
  int status = 0;
  std::string body;
};

// GET origin+target over `up`; `header` (may be null) is added as is.
StatusOr<Answer> Get(const Upstream& up, const std::string& target, const char* header) {
  ASSIGN_OR_RETURN(std::string origin, Origin(up));
  RETURN_IF_ERROR(http::curl::EnsureInitialized());
  http::curl::Easy easy(curl_easy_init());
  if (!easy) return Internal("jupyter: curl_easy_init failed");
  http::curl::Slist headers;
  if (header != nullptr) {
    headers.reset(curl_slist_append(nullptr, header));
    if (!headers) return Internal("jupyter: curl_slist_append failed");
  }
  const std::string url = origin + target;
  Body body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* h = easy.get();
  using Long = long;  // NOLINT(google-runtime-int): libcurl's option type
  bool ok = true;
  const auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error));
  set(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http"));
  set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, Long{0}));
  set(curl_easy_setopt(h, CURLOPT_PROXY, ""));
  set(curl_easy_setopt(h, CURLOPT_HTTP_VERSION, Long{CURL_HTTP_VERSION_1_1}));
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, Long{1}));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, kTimeoutMs));
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, kTimeoutMs));
  set(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(kMaxJupyterStatusBytes)));
  set(curl_easy_setopt(h, CURLOPT_USERAGENT, "cce4long-plane/1"));
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &body));
  if (!up.unix_socket.empty()) {
    set(curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, up.unix_socket.c_str()));
  }
  if (headers) set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
  if (!ok) return Internal("jupyter: cannot configure libcurl");
  CURLcode rc = curl_easy_perform(h);
  if (body.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
    return DataLoss("jupyter at " + Where(up) + ": GET " + target + ": answer larger than " +
                    std::to_string(kMaxJupyterStatusBytes) + " bytes");
  }
  if (rc != CURLE_OK) {
    std::string detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
    return Unavailable("jupyter at " + Where(up) + ": GET " + target + ": " + Excerpt(detail));
  }
  Long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return Answer{static_cast<int>(code), std::move(body.data)};
}

}  // namespace

StatusOr<int64_t> ParseIso8601(std::string_view s) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(s, 0, 4, &year) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, &month) ||
      s[7] != '-' || !Digits(s, 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
      !Digits(s, 11, 2, &hour) || s[13] != ':' || !Digits(s, 14, 2, &minute) || s[16] != ':' ||
      !Digits(s, 17, 2, &second)) {
    return InvalidArgument("'" + Excerpt(s) + "': expected YYYY-MM-DDTHH:MM:SS");
  }
  if (month < 1 || month > 12) return InvalidArgument("'" + Excerpt(s) + "': month out of range");
  if (day < 1 || day > DaysInMonth(year, month)) {
    return InvalidArgument("'" + Excerpt(s) + "': day out of range");
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return InvalidArgument("'" + Excerpt(s) + "': time of day out of range");
  }
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    size_t digits = 0;
    ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ++pos;
      ++digits;
    }
    if (digits == 0 || digits > 9) {
      return InvalidArgument("'" + Excerpt(s) + "': expected 1..9 digits of fraction after '.'");
    }
  }
  int64_t offset = 0;
  if (pos == s.size()) {
    return InvalidArgument("'" + Excerpt(s) + "': no time zone (expected Z or +HH:MM)");
  }
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh = 0, om = 0;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return InvalidArgument("'" + Excerpt(s) + "': expected a zone offset +HH:MM");
    }
    offset = (s[pos] == '+' ? 1 : -1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
    pos += 6;
  } else {
    return InvalidArgument("'" + Excerpt(s) + "': expected Z or +HH:MM after the time");
  }
  if (pos != s.size()) return InvalidArgument("'" + Excerpt(s) + "': trailing characters");
  return DaysFromCivil(year, month, day) * 86400 + int64_t{hour} * 3600 + int64_t{minute} * 60 +
         second - offset;
}

StatusOr<JupyterActivity> ParseJupyterStatus(std::string_view text) {
  if (text.size() > kMaxJupyterStatusBytes) {
    return InvalidArgument("jupyter status: " + std::to_string(text.size()) +
                           " bytes: larger than " + std::to_string(kMaxJupyterStatusBytes));
  }
  json obj = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return InvalidArgument("jupyter status: not JSON");
  if (!obj.is_object()) return InvalidArgument("jupyter status: expected a JSON object");
  JupyterActivity a;
  ASSIGN_OR_RETURN(a.started, Timestamp(obj, "started"));
  ASSIGN_OR_RETURN(a.last_activity, Timestamp(obj, "last_activity"));
  ASSIGN_OR_RETURN(a.connections, NonNegativeInt(obj, "connections"));
  ASSIGN_OR_RETURN(a.kernels, NonNegativeInt(obj, "kernels"));
  return a;
}

StatusOr<JupyterActivity> FetchJupyterStatus(const Upstream& upstream, std::string_view base_url,
                                             const crypto::SecretBytes& token) {
  if (!SafeBaseUrl(base_url)) {
    return InvalidArgument("jupyter: base_url '" + Excerpt(base_url) +
                           "': expected /.../ of [A-Za-z0-9._/-]");
  }
  if (token.empty() || token.size() > kMaxTokenBytes ||
      !std::all_of(token.data(), token.data() + token.size(),
                   [](uint8_t c) { return c > 0x20 && c < 0x7f; })) {
    return InvalidArgument("jupyter: token: expected 1..512 printable ASCII characters, no spaces");
  }
  // "Authorization: token <token>" built in wiped memory (curl copies it into
  // a header list that http::curl::Slist wipes as well).
  static constexpr std::string_view kPrefix = "Authorization: token ";
  crypto::SecretBytes header(kPrefix.size() + token.size() + 1);
  std::memcpy(header.data(), kPrefix.data(), kPrefix.size());
  std::memcpy(header.data() + kPrefix.size(), token.data(), token.size());
  header.data()[header.size() - 1] = 0;
  const std::string target = std::string(base_url) + "api/status";
  ASSIGN_OR_RETURN(Answer answer,
                   Get(upstream, target, reinterpret_cast<const char*>(header.data())));
  if (answer.status == 401 || answer.status == 403) {
    return PermissionDenied("jupyter at " + Where(upstream) + ": GET " + target + ": HTTP " +
                            std::to_string(answer.status) + " (the token was refused)");
  }
  if (answer.status != 200) {
    return Internal("jupyter at " + Where(upstream) + ": GET " + target + ": HTTP " +
                    std::to_string(answer.status));
  }
  return ParseJupyterStatus(answer.body);
}

StatusOr<int> ProbeJupyter(const Upstream& upstream, std::string_view base_url) {
  if (!SafeBaseUrl(base_url)) {
    return InvalidArgument("jupyter: base_url '" + Excerpt(base_url) +
                           "': expected /.../ of [A-Za-z0-9._/-]");
  }
  ASSIGN_OR_RETURN(Answer answer, Get(upstream, std::string(base_url) + "api", nullptr));
  return answer.status;
}

}  // namespace cce::explore
