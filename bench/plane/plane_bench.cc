// plane_bench: load generator for a running cce-plane. C concurrent HTTPS
// keep-alive clients (one connection each, the plane's CA pinned) submit
// valid jobs, each with its own Idempotency-Key, for S seconds; then read
// them back with GET /api/v1/jobs/{id}. Prints throughput, latency
// percentiles and errors, and optionally a breakdown of where a request's
// time goes (TLS + HTTP alone, + authentication, a new TLS connection per
// request) and the CPU the server and this client used. With --slowloris N:
// the p99 of an authenticated GET (whoami) with no slow connections, then
// while N slowloris connections (slow_connections.h) are held against the
// same plane. Not a test: nothing here asserts on time. bench/plane/run.sh
// sets up a plane and runs it. The clients are the production HTTPS client
// (src/http/client.h, libcurl; TCP_NODELAY always on).
//
//   plane_bench submit --url URL --ca FILE --token TOKEN --image REF --dataset NAME
//                      [--clients C] [--seconds S] [--read-seconds R] [--breakdown-seconds B]
//                      [--server-pid PID] [--ids-out FILE] [--key-prefix P]
//                      [--slowloris N] [--slowloris-seconds S] [--slowloris-clients C]
//                      [--metrics-token OPERATOR_TOKEN]
//   plane_bench verify --url URL --ca FILE --token TOKEN --ids FILE
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/client.h"
#include "slow_connections.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace http = cce::http;

struct Args {
  std::string mode;
  std::string url, ca, token, image, dataset;
  int clients = 16;
  double seconds = 10;
  double read_seconds = 5;
  double breakdown_seconds = 0;  // 0: no breakdown
  long server_pid = 0;
  std::string ids_out, ids_in;
  std::string key_prefix;
  size_t slowloris = 0;  // slow connections to hold; 0: no slowloris phase
  double slowloris_seconds = 15;
  int slowloris_clients = 4;
  std::string metrics_token;  // an operator's: GET /metrics for the server's connection counts
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "plane_bench: " << why << "\n"
            << "usage: plane_bench submit --url URL --ca FILE --token TOKEN --image REF "
               "--dataset NAME\n"
               "                          [--clients C] [--seconds S] [--read-seconds R]\n"
               "                          [--breakdown-seconds B] [--server-pid PID]\n"
               "                          [--ids-out FILE] [--key-prefix P]\n"
               "                          [--slowloris N] [--slowloris-seconds S]\n"
               "                          [--slowloris-clients C] [--metrics-token TOKEN]\n"
               "       plane_bench verify --url URL --ca FILE --token TOKEN --ids FILE\n";
  std::exit(2);
}

bool ParseNumber(const std::string& s, double min, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0' && out >= min;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  if (argc < 2) Usage("expected a mode: submit or verify");
  a.mode = argv[1];
  if (a.mode != "submit" && a.mode != "verify") Usage("unknown mode '" + a.mode + "'");
  std::map<std::string, std::string*> strings = {{"--url", &a.url},
                                                 {"--ca", &a.ca},
                                                 {"--token", &a.token},
                                                 {"--image", &a.image},
                                                 {"--dataset", &a.dataset},
                                                 {"--ids-out", &a.ids_out},
                                                 {"--ids", &a.ids_in},
                                                 {"--key-prefix", &a.key_prefix},
                                                 {"--metrics-token", &a.metrics_token}};
  for (int i = 2; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(flag + ": expected a value");
    std::string value = argv[i + 1];
    double n = 0;
    if (auto it = strings.find(flag); it != strings.end()) {
      *it->second = value;
    } else if (flag == "--clients" && ParseNumber(value, 1, n) && n <= 1024) {
      a.clients = static_cast<int>(n);
    } else if (flag == "--seconds" && ParseNumber(value, 0.1, n)) {
      a.seconds = n;
    } else if (flag == "--read-seconds" && ParseNumber(value, 0, n)) {
      a.read_seconds = n;
    } else if (flag == "--breakdown-seconds" && ParseNumber(value, 0, n)) {
      a.breakdown_seconds = n;
    } else if (flag == "--slowloris" && ParseNumber(value, 0, n) && n <= 100000) {
      a.slowloris = static_cast<size_t>(n);
    } else if (flag == "--slowloris-seconds" && ParseNumber(value, 0.1, n)) {
      a.slowloris_seconds = n;
    } else if (flag == "--slowloris-clients" && ParseNumber(value, 1, n) && n <= 1024) {
      a.slowloris_clients = static_cast<int>(n);
    } else if (flag == "--server-pid" && ParseNumber(value, 1, n)) {
      a.server_pid = static_cast<long>(n);
    } else {
      std::string why = flag;
      why += " ";
      why += value;
      why += ": unknown flag or bad value";
      Usage(why);
    }
  }
  if (a.url.empty() || a.ca.empty() || a.token.empty())
    Usage("--url, --ca and --token are required");
  if (a.mode == "submit" && (a.image.empty() || a.dataset.empty())) {
    Usage("submit: --image and --dataset are required");
  }
  if (a.mode == "verify" && a.ids_in.empty()) Usage("verify: --ids is required");
  if (a.key_prefix.empty()) a.key_prefix = "bench-" + std::to_string(::getpid());
  return a;
}

// One HTTPS connection, kept alive across requests (libcurl reconnects by
// itself after the server closed it). The plane's CA is the only trust.
cce::StatusOr<http::Client> MakeClient(const Args& a) {
  http::ClientOptions o;
  o.base_url = a.url;
  o.ca_file = a.ca;
  o.connect_timeout = std::chrono::seconds(5);
  o.stall_timeout = std::chrono::seconds(30);
  return http::Client::Create(std::move(o));
}

// A short, stable name for a transport failure, to count failures by kind:
// the client's message without "cannot reach the plane at URL: " and without
// its details ("the connection broke mid-request", "timed out", ...).
std::string ErrorKind(const cce::Status& s) {
  std::string_view m = s.message();
  constexpr std::string_view kPrefix = "cannot reach the plane at ";
  if (m.substr(0, kPrefix.size()) == kPrefix) {
    // The URL holds "://" and ":PORT", never ": ".
    if (size_t after = m.find(": ", kPrefix.size()); after != std::string_view::npos) {
      m.remove_prefix(after + 2);
    }
  }
  m = m.substr(0, std::min({m.find(": "), m.find(" ("), size_t{60}}));
  return std::string(m);
}

// An authenticated request: the HTTP status, or -1 with `error` set when
// the request did not complete.
int Send(http::Client& c, const std::string& method, const std::string& target,
         const std::string& token, std::string body, std::string* error,
         http::ClientResponse* out = nullptr, std::vector<http::Header> extra = {}) {
  http::ClientRequest r;
  r.method = method;
  r.target = target;
  r.headers = std::move(extra);
  if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
  if (!body.empty()) r.headers.push_back({"Content-Type", "application/json"});
  r.body = std::move(body);
  auto got = c.Send(r);
  if (!got.ok()) {
    *error = ErrorKind(got.status());
    return -1;
  }
  const int status = got->status;
  if (out != nullptr) *out = std::move(*got);
  return status;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Latencies of one phase, merged from every client.
struct Stats {
  std::vector<double> ms;
  size_t errors = 0;
  double seconds = 0;
  std::map<std::string, size_t> error_kinds;  // "HTTP 503", "Read", ...
  double connect_p50_ms = -1;                 // warm-up (connect + TLS handshake); -1: none
  double connect_max_ms = -1;

  double Pct(double p) const {
    if (ms.empty()) return 0;
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  }
  double PerSecond() const { return seconds > 0 ? static_cast<double>(ms.size()) / seconds : 0; }
};

// CPU seconds (user + system) of a process from /proc/PID/stat, or of this
// process from getrusage.
std::optional<double> ProcessCpuSeconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
  double utime = 0, stime = 0;
  for (int f = 3; f <= 15 && rest >> field; ++f) {
    if (f == 14) utime = std::strtod(field.c_str(), nullptr);
    if (f == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}
double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

struct CpuSample {
  double server = -1;
  double self = 0;
  Clock::time_point at;
};
CpuSample SampleCpu(long server_pid) {
  CpuSample c;
  if (server_pid > 0) c.server = ProcessCpuSeconds(server_pid).value_or(-1);
  c.self = SelfCpuSeconds();
  c.at = Clock::now();
  return c;
}
std::string CpuLine(const CpuSample& a, const CpuSample& b) {
  double wall = std::chrono::duration<double>(b.at - a.at).count();
  std::ostringstream o;
  o << std::fixed << std::setprecision(0) << "cpu: bench client " << (b.self - a.self) / wall * 100
    << "%";
  if (a.server >= 0 && b.server >= 0) {
    o << ", server " << (b.server - a.server) / wall * 100 << "%";
  }
  o << " (of " << std::thread::hardware_concurrency() * 100 << "%)";
  return o.str();
}

// One request: returns the HTTP status, or -1 with `error` set on a
// transport failure.
using Request = std::function<int(http::Client& c, int thread, uint64_t i, std::string* error)>;

// Called on the main thread just before the clock starts and just before it
// stops (the slowloris phase opens and closes its window there).
struct PhaseHooks {
  std::function<void()> at_start;
  std::function<void()> at_stop;
};

// Runs `clients` threads issuing `req` back to back for `seconds`; a thread
// whose connection fails keeps going (libcurl reconnects). With keep-alive,
// each client first connects (GET /healthz: TCP + TLS handshake) and the
// clock starts once all are connected; those warm-up times are reported
// apart (Stats::connect_ms), not mixed into the steady-state percentiles.
// Without keep-alive, each request gets a new client made before its clock
// starts, so the timed part is TCP + TLS handshake + the request.
Stats RunPhase(const Args& a, int clients, double seconds, bool keep_alive, const Request& req,
               int ok_status, const PhaseHooks& hooks = {}) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  std::vector<std::map<std::string, size_t>> errs(static_cast<size_t>(clients));
  std::vector<double> connect_ms(static_cast<size_t>(clients), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(clients));
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto& my_errors = errs[static_cast<size_t>(t)];
      auto client = MakeClient(a);
      if (!client.ok()) {
        ++my_errors["client: " + client.status().message()];
      } else if (keep_alive) {
        auto t0 = Clock::now();
        std::string error;
        int status = Send(*client, "GET", "/healthz", "", "", &error);
        connect_ms[static_cast<size_t>(t)] = Ms(Clock::now() - t0);
        if (status != 200) {
          ++my_errors["warm-up " + (status < 0 ? error : "HTTP " + std::to_string(status))];
        }
      }
      ++ready;
      while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (!client.ok()) return;
      auto& mine = lat[static_cast<size_t>(t)];
      mine.reserve(1 << 15);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (!keep_alive) {
          auto fresh = MakeClient(a);
          if (!fresh.ok()) {
            ++my_errors["client: " + fresh.status().message()];
            break;
          }
          *client = std::move(*fresh);
        }
        std::string error;
        auto t0 = Clock::now();
        int status = req(*client, t, i, &error);
        auto took = Clock::now() - t0;
        if (status == ok_status) {
          mine.push_back(Ms(took));
        } else {
          ++my_errors[status < 0 ? error : "HTTP " + std::to_string(status)];
          if (status < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (hooks.at_start) hooks.at_start();
  const auto start = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  if (hooks.at_stop) hooks.at_stop();
  stop = true;
  for (auto& th : threads) th.join();
  Stats s;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& v : lat) s.ms.insert(s.ms.end(), v.begin(), v.end());
  std::sort(s.ms.begin(), s.ms.end());
  for (auto& m : errs) {
    for (auto& [k, n] : m) {
      s.error_kinds[k] += n;
      s.errors += n;
    }
  }
  if (keep_alive) {
    s.connect_max_ms = *std::max_element(connect_ms.begin(), connect_ms.end());
    std::sort(connect_ms.begin(), connect_ms.end());
    s.connect_p50_ms = connect_ms[connect_ms.size() / 2];
  }
  return s;
}

void PrintStats(const std::string& what, const Stats& s, bool with_p90) {
  std::cout << std::left << std::setw(34) << what << std::right << std::fixed
            << std::setprecision(0) << std::setw(8) << s.PerSecond() << " /s"
            << std::setprecision(2) << "   p50 " << std::setw(6) << s.Pct(0.50);
  if (with_p90) std::cout << "  p90 " << std::setw(6) << s.Pct(0.90);
  std::cout << "  p99 " << std::setw(6) << s.Pct(0.99) << "  max " << std::setw(7)
            << (s.ms.empty() ? 0 : s.ms.back()) << " ms   n " << s.ms.size() << "  errors "
            << s.errors;
  for (const auto& [k, n] : s.error_kinds) std::cout << " [" << k << ": " << n << "]";
  if (s.connect_p50_ms >= 0) {
    std::cout << "   (connect+TLS p50 " << s.connect_p50_ms << " max " << s.connect_max_ms
              << " ms, before the clock)";
  }
  std::cout << "\n";
}

std::string JobSpec(const Args& a, const std::string& name) {
  return json{{"apiVersion", "cce4long/v1"},
              {"kind", "PrivacyJob"},
              {"metadata", {{"name", name}}},
              {"spec",
               {{"image", a.image},
                {"command", {"/bin/tool"}},
                {"args", {"--bench"}},
                {"env", {{"MODE", "bench"}}},
                {"datasets", {{{"name", a.dataset}, {"mountPath", "/data/in"}}}},
                {"resources",
                 {{"cpus", 1}, {"memoryMiB", 512}, {"timeoutSeconds", 600}, {"outputMaxMiB", 8}}}}}}
      .dump();
}

// A counter or gauge from the plane's /metrics (Prometheus text), or -1.
double MetricValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return std::strtod(line.c_str() + name.size() + 1, nullptr);
    }
  }
  return -1;
}

// The server's own view of its connections, from /metrics (operator token).
struct ServerCounts {
  double open = -1;
  double timeouts = -1;
  double refused = -1;
};
ServerCounts ReadServerCounts(const Args& a) {
  ServerCounts c;
  if (a.metrics_token.empty()) return c;
  auto client = MakeClient(a);
  if (!client.ok()) return c;
  std::string error;
  http::ClientResponse r;
  if (Send(*client, "GET", "/metrics", a.metrics_token, "", &error, &r) != 200) return c;
  c.open = MetricValue(r.body, "cce_http_connections_open");
  c.timeouts = MetricValue(r.body, "cce_http_timeouts_total");
  c.refused = MetricValue(r.body, "cce_http_connections_refused_total");
  return c;
}

// "https://127.0.0.1:8443" -> host, port; the slow connections need an IPv4
// literal (run.sh listens on 127.0.0.1).
bool HostAndPort(const std::string& url, std::string* host, int* port) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) return false;
  const size_t colon = url.rfind(':');
  if (colon == std::string::npos || colon < kScheme.size()) return false;
  *host = url.substr(kScheme.size(), colon - kScheme.size());
  double n = 0;
  std::string port_text = url.substr(colon + 1);
  while (!port_text.empty() && port_text.back() == '/') port_text.pop_back();
  if (!ParseNumber(port_text, 1, n) || n > 65535) return false;
  *port = static_cast<int>(n);
  return true;
}

struct SlowlorisResult {
  Stats baseline;
  Stats held;
  cce::bench::HeldWindow window;
  bool ran = false;
  bool met = false;
};

// Issue 9: an authenticated request's p99 while N slowloris connections are
// held against the plane, against a baseline with none, in the same run.
SlowlorisResult RunSlowloris(const Args& a, const Request& whoami) {
  SlowlorisResult res;
  cce::bench::SlowConnectionOptions so;
  if (!HostAndPort(a.url, &so.host, &so.port)) {
    std::cerr << "plane_bench: --slowloris needs --url https://IPv4:PORT, got " << a.url << "\n";
    return res;
  }
  so.target = a.slowloris;
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  std::cout << "slowloris: " << a.slowloris << " slow connections (TLS, a header line every ~"
            << std::chrono::duration<double>(so.line_interval).count() << " s, never finished), "
            << a.slowloris_clients << " keep-alive clients on GET /api/v1/whoami, "
            << a.slowloris_seconds << " s each; bench fd limit " << files.rlim_cur << "\n";
  if (files.rlim_cur < a.slowloris + 64) {
    std::cout << "  warning: the fd limit is below the slow connections asked for\n";
  }

  CpuSample c0 = SampleCpu(a.server_pid);
  res.baseline = RunPhase(a, a.slowloris_clients, a.slowloris_seconds, true, whoami, 200);
  CpuSample c1 = SampleCpu(a.server_pid);
  PrintStats("  whoami, no slow connections", res.baseline, true);
  std::cout << "    " << CpuLine(c0, c1) << "\n";

  auto slow = cce::bench::SlowConnections::Start(so);
  if (!slow.ok()) {
    std::cerr << "plane_bench: " << slow.status().message() << "\n";
    return res;
  }
  // Ramp up: wait until nearly all are held (at most 30 s).
  const auto ramp_start = Clock::now();
  const size_t want = a.slowloris - a.slowloris / 20;
  cce::bench::SlowConnectionStats st;
  while (Clock::now() - ramp_start < std::chrono::seconds(30)) {
    st = (*slow)->Stats();
    if (st.held >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cout << std::fixed << std::setprecision(2) << "  ramp: " << st.held << " held after "
            << std::chrono::duration<double>(Clock::now() - ramp_start).count() << " s ("
            << st.failed << " failed"
            << (st.last_failure.empty() ? "" : ", last: " + st.last_failure) << ")\n";

  ServerCounts server_start;
  ServerCounts server_end;
  PhaseHooks hooks;
  hooks.at_start = [&] {
    server_start = ReadServerCounts(a);
    (*slow)->BeginWindow();
  };
  hooks.at_stop = [&] {
    res.window = (*slow)->EndWindow();
    server_end = ReadServerCounts(a);
  };
  c0 = SampleCpu(a.server_pid);
  res.held = RunPhase(a, a.slowloris_clients, a.slowloris_seconds, true, whoami, 200, hooks);
  c1 = SampleCpu(a.server_pid);
  st = (*slow)->Stats();
  slow->reset();  // closes every slow connection
  res.ran = true;

  PrintStats("  whoami, " + std::to_string(a.slowloris) + " slow conns held", res.held, true);
  std::cout << "    " << CpuLine(c0, c1) << " (the bench includes the slowloris thread)\n";
  const auto& w = res.window;
  std::cout << std::fixed << std::setprecision(0)
            << "    slow connections in the window: held mean " << w.mean << " (min " << w.min
            << ", max " << w.max << "), opened " << w.established << ", closed by the server "
            << w.closed_by_server << ", failed " << w.failed;
  if (w.failed > 0 && !st.last_failure.empty()) std::cout << " (last: " << st.last_failure << ")";
  std::cout << "; header lines sent " << w.lines_sent << std::setprecision(2) << " ("
            << (w.mean > 0 && w.seconds > 0 ? static_cast<double>(w.lines_sent) / w.mean / w.seconds
                                            : 0)
            << " per held connection per second)\n";
  if (server_start.open >= 0 && server_end.open >= 0) {
    std::cout << std::setprecision(0) << "    server /metrics: connections open "
              << server_start.open << " at the start, " << server_end.open
              << " at the end; timeouts +" << server_end.timeouts - server_start.timeouts
              << ", refused over a cap +" << server_end.refused - server_start.refused
              << " during the window\n";
  }
  const double base_p99 = res.baseline.Pct(0.99);
  const double held_p99 = res.held.Pct(0.99);
  std::cout << std::setprecision(2) << "  whoami p99: baseline " << base_p99 << " ms, with "
            << std::setprecision(0) << w.mean << " slow connections held " << std::setprecision(2)
            << held_p99 << " ms, ratio " << (base_p99 > 0 ? held_p99 / base_p99 : 0) << "x\n";
  res.met = held_p99 < 100 && res.held.errors == 0 && !res.held.ms.empty() &&
            w.mean >= 0.95 * static_cast<double>(a.slowloris);
  return res;
}

int Submit(const Args& a) {
  std::cout << "plane_bench: " << a.url << ", " << a.clients
            << " HTTPS keep-alive clients (TCP_NODELAY), " << a.seconds << " s of submissions, "
            << std::thread::hardware_concurrency() << " cores\n";

  // Phase 1: submissions. Every acknowledged id is kept for the read phase
  // and --ids-out.
  std::mutex ids_mu;
  std::vector<std::string> ids;  // guarded by ids_mu
  Request submit = [&](http::Client& c, int t, uint64_t i, std::string* error) {
    std::string name = "b" + std::to_string(t) + "-" + std::to_string(i);
    http::ClientResponse r;
    int status = Send(c, "POST", "/api/v1/jobs", a.token, JobSpec(a, name), error, &r,
                      {{"Idempotency-Key", a.key_prefix + "-" + name}});
    if (status == 201) {
      json j = json::parse(r.body, nullptr, false);
      if (j.is_discarded() || !j.contains("id")) return 0;
      std::lock_guard<std::mutex> l(ids_mu);
      ids.push_back(j["id"].get<std::string>());
    }
    return status;
  };
  CpuSample c0 = SampleCpu(a.server_pid);
  Stats sub = RunPhase(a, a.clients, a.seconds, true, submit, 201);
  CpuSample c1 = SampleCpu(a.server_pid);
  PrintStats("POST /api/v1/jobs (submit)", sub, true);
  std::cout << "  " << CpuLine(c0, c1) << "\n";

  if (!a.ids_out.empty()) {
    std::ofstream out(a.ids_out, std::ios::trunc);
    for (const auto& id : ids) out << id << "\n";
    if (!out) {
      std::cerr << "plane_bench: cannot write " << a.ids_out << "\n";
      return 1;
    }
  }

  // Phase 2: point reads of the jobs just submitted.
  Stats reads;
  if (a.read_seconds > 0 && !ids.empty()) {
    Request read = [&](http::Client& c, int t, uint64_t i, std::string* error) {
      const std::string& id =
          ids[(static_cast<uint64_t>(t) * 7919 + i * 104729) % static_cast<uint64_t>(ids.size())];
      return Send(c, "GET", "/api/v1/jobs/" + id, a.token, "", error);
    };
    c0 = SampleCpu(a.server_pid);
    reads = RunPhase(a, a.clients, a.read_seconds, true, read, 200);
    c1 = SampleCpu(a.server_pid);
    PrintStats("GET /api/v1/jobs/{id} (read)", reads, false);
    std::cout << "  " << CpuLine(c0, c1) << "\n";
  }

  auto get = [&](const std::string& path, bool with_auth) -> Request {
    return [&a, path, with_auth](http::Client& c, int, uint64_t, std::string* error) {
      return Send(c, "GET", path, with_auth ? a.token : "", "", error);
    };
  };

  // Phase 3: where the time goes. The same clients on cheaper routes.
  if (a.breakdown_seconds > 0) {
    std::cout << "breakdown (" << a.clients << " clients, " << a.breakdown_seconds << " s each):\n";
    struct Row {
      const char* what;
      std::string path;
      bool auth;
      bool keep_alive;
    };
    const Row rows[] = {
        {"GET /healthz (TLS+HTTP only)", "/healthz", false, true},
        {"GET /api/v1/whoami (+ token auth)", "/api/v1/whoami", true, true},
        {"GET /healthz, new TLS conn each", "/healthz", false, false},
    };
    for (const auto& row : rows) {
      c0 = SampleCpu(a.server_pid);
      Stats s =
          RunPhase(a, a.clients, a.breakdown_seconds, row.keep_alive, get(row.path, row.auth), 200);
      c1 = SampleCpu(a.server_pid);
      PrintStats(std::string("  ") + row.what, s, false);
      std::cout << "    " << CpuLine(c0, c1) << "\n";
    }
  }

  // Phase 4: slow connections held against the same plane.
  SlowlorisResult slow;
  if (a.slowloris > 0) slow = RunSlowloris(a, get("/api/v1/whoami", true));

  const bool met = sub.PerSecond() >= 1000 && sub.Pct(0.99) < 50 && sub.errors == 0;
  std::cout << std::fixed << std::setprecision(0)
            << "target: >= 1000 submissions/s with p99 < 50 ms"
            << " -> " << sub.PerSecond() << "/s, p99 " << std::setprecision(2) << sub.Pct(0.99)
            << " ms, errors " << sub.errors << ": " << (met ? "MET" : "NOT MET") << "\n";
  json result = {{"clients", a.clients},
                 {"seconds", sub.seconds},
                 {"submissions_per_s", sub.PerSecond()},
                 {"submit_p50_ms", sub.Pct(0.50)},
                 {"submit_p90_ms", sub.Pct(0.90)},
                 {"submit_p99_ms", sub.Pct(0.99)},
                 {"submit_max_ms", sub.ms.empty() ? 0 : sub.ms.back()},
                 {"submit_errors", sub.errors},
                 {"reads_per_s", reads.PerSecond()},
                 {"read_p50_ms", reads.Pct(0.50)},
                 {"read_p99_ms", reads.Pct(0.99)},
                 {"target_met", met}};
  if (a.slowloris > 0) {
    const double base_p99 = slow.baseline.Pct(0.99);
    const double held_p99 = slow.held.Pct(0.99);
    std::cout << "target: whoami p99 < 100 ms with " << a.slowloris << " slow connections held -> ";
    if (slow.ran) {
      std::cout << "p99 " << held_p99 << " ms (baseline " << base_p99 << " ms, ratio "
                << (base_p99 > 0 ? held_p99 / base_p99 : 0) << "x), " << std::setprecision(0)
                << slow.window.mean << " held on average, errors " << slow.held.errors << ": "
                << (slow.met ? "MET" : "NOT MET") << "\n";
    } else {
      std::cout << "not measured (see above): NOT MET\n";
    }
    result["slowloris_connections"] = a.slowloris;
    result["slowloris_held_mean"] = slow.window.mean;
    result["slowloris_held_min"] = slow.window.min;
    result["whoami_baseline_p99_ms"] = base_p99;
    result["whoami_slowloris_p99_ms"] = held_p99;
    result["whoami_slowloris_errors"] = slow.held.errors;
    result["slowloris_p99_ratio"] = base_p99 > 0 ? held_p99 / base_p99 : 0;
    result["slowloris_target_met"] = slow.met;
  }
  std::cout << "json: " << result.dump() << "\n";
  return 0;
}

// Every id in the file must be served: the durability check after kill -9.
int Verify(const Args& a) {
  std::ifstream in(a.ids_in);
  if (!in) {
    std::cerr << "plane_bench: cannot read " << a.ids_in << "\n";
    return 1;
  }
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) ids.push_back(line);
  }
  auto c = MakeClient(a);
  if (!c.ok()) {
    std::cerr << "plane_bench: " << c.status().message() << "\n";
    return 1;
  }
  size_t present = 0;
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    std::string error;
    int status = Send(*c, "GET", "/api/v1/jobs/" + id, a.token, "", &error);
    if (status == 200) {
      ++present;
    } else {
      missing.push_back(id + ": " + (status < 0 ? error : "HTTP " + std::to_string(status)));
    }
  }
  std::cout << "durability: " << ids.size() << " acknowledged before kill -9, " << present
            << " present after restart, " << missing.size() << " missing\n";
  for (size_t i = 0; i < missing.size() && i < 20; ++i)
    std::cout << "  missing " << missing[i] << "\n";
  return missing.empty() ? 0 : 1;
}

// The slowloris phase holds one descriptor per slow connection; the soft
// limit is often 1024. Raised to the hard limit (no privilege needed).
void RaiseFileLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  (void)std::signal(SIGPIPE, SIG_IGN);  // a server killed mid-request must not end the bench
  RaiseFileLimit();
  try {
    Args a = ParseArgs(argc, argv);
    return a.mode == "submit" ? Submit(a) : Verify(a);
  } catch (const std::exception& e) {
    std::cerr << "plane_bench: " << e.what() << "\n";
    return 1;
  }
}
