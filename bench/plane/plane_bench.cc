// plane_bench: load generator for a running cce-plane. C concurrent HTTPS
// keep-alive clients (one connection each, the plane's CA pinned) submit
// valid jobs, each with its own Idempotency-Key, for S seconds; then read
// them back with GET /api/v1/jobs/{id}. Prints throughput, latency
// percentiles and errors, and optionally a breakdown of where a request's
// time goes (TLS + HTTP alone, + authentication, a new TLS connection per
// request) and the CPU the server and this client used. Not a test: nothing
// here asserts on time. bench/plane/run.sh sets up a plane and runs it.
//
//   plane_bench submit --url URL --ca FILE --token TOKEN --image REF --dataset NAME
//                      [--clients C] [--seconds S] [--read-seconds R] [--breakdown-seconds B]
//                      [--server-pid PID] [--ids-out FILE] [--key-prefix P]
//                      [--tcp-nodelay 0|1]   (default 1: requests leave at once, no Nagle delay)
//   plane_bench verify --url URL --ca FILE --token TOKEN --ids FILE
#include <httplib.h>
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
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

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
  bool tcp_nodelay = true;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "plane_bench: " << why << "\n"
            << "usage: plane_bench submit --url URL --ca FILE --token TOKEN --image REF "
               "--dataset NAME\n"
               "                          [--clients C] [--seconds S] [--read-seconds R]\n"
               "                          [--breakdown-seconds B] [--server-pid PID]\n"
               "                          [--ids-out FILE] [--key-prefix P] [--tcp-nodelay 0|1]\n"
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
  std::map<std::string, std::string*> strings = {
      {"--url", &a.url},         {"--ca", &a.ca},
      {"--token", &a.token},     {"--image", &a.image},
      {"--dataset", &a.dataset}, {"--ids-out", &a.ids_out},
      {"--ids", &a.ids_in},      {"--key-prefix", &a.key_prefix}};
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
    } else if (flag == "--tcp-nodelay" && (value == "0" || value == "1")) {
      a.tcp_nodelay = value == "1";
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

std::unique_ptr<httplib::Client> MakeClient(const Args& a, bool keep_alive) {
  auto c = std::make_unique<httplib::Client>(a.url);
  c->set_ca_cert_path(a.ca.c_str());
  c->enable_server_certificate_verification(true);
  c->set_connection_timeout(5);
  c->set_read_timeout(30);
  c->set_keep_alive(keep_alive);
  c->set_tcp_nodelay(a.tcp_nodelay);
  return c;
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
using Request = std::function<int(httplib::Client& c, int thread, uint64_t i, std::string* error)>;

// Runs `clients` threads issuing `req` back to back for `seconds`; a thread
// whose connection fails keeps going (httplib reconnects). With keep-alive,
// each client first connects (GET /healthz: TCP + TLS handshake) and the
// clock starts once all are connected; those warm-up times are reported
// apart (Stats::connect_ms), not mixed into the steady-state percentiles.
Stats RunPhase(const Args& a, int clients, double seconds, bool keep_alive, const Request& req,
               int ok_status) {
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
      auto client = MakeClient(a, keep_alive);
      if (keep_alive) {
        auto t0 = Clock::now();
        auto r = client->Get("/healthz");
        connect_ms[static_cast<size_t>(t)] = Ms(Clock::now() - t0);
        if (!r) ++errs[static_cast<size_t>(t)]["warm-up " + httplib::to_string(r.error())];
      }
      ++ready;
      while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
      auto& mine = lat[static_cast<size_t>(t)];
      mine.reserve(1 << 15);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::string error;
        auto t0 = Clock::now();
        int status = req(*client, t, i, &error);
        auto took = Clock::now() - t0;
        if (status == ok_status) {
          mine.push_back(Ms(took));
        } else {
          ++errs[static_cast<size_t>(t)][status < 0 ? error : "HTTP " + std::to_string(status)];
          if (status < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto start = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
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

int Submit(const Args& a) {
  const httplib::Headers auth = {{"Authorization", "Bearer " + a.token}};
  std::cout << "plane_bench: " << a.url << ", " << a.clients << " HTTPS keep-alive clients"
            << (a.tcp_nodelay ? " (TCP_NODELAY)" : " (Nagle on)") << ", " << a.seconds
            << " s of submissions, " << std::thread::hardware_concurrency() << " cores\n";

  // Phase 1: submissions. Every acknowledged id is kept for the read phase
  // and --ids-out.
  std::mutex ids_mu;
  std::vector<std::string> ids;  // guarded by ids_mu
  Request submit = [&](httplib::Client& c, int t, uint64_t i, std::string* error) {
    std::string name = "b" + std::to_string(t) + "-" + std::to_string(i);
    httplib::Headers h = auth;
    h.emplace("Idempotency-Key", a.key_prefix + "-" + name);
    auto r = c.Post("/api/v1/jobs", h, JobSpec(a, name), "application/json");
    if (!r) {
      *error = httplib::to_string(r.error());
      return -1;
    }
    if (r->status == 201) {
      json j = json::parse(r->body, nullptr, false);
      if (j.is_discarded() || !j.contains("id")) return 0;
      std::lock_guard<std::mutex> l(ids_mu);
      ids.push_back(j["id"].get<std::string>());
    }
    return r->status;
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
    Request read = [&](httplib::Client& c, int t, uint64_t i, std::string* error) {
      const std::string& id =
          ids[(static_cast<uint64_t>(t) * 7919 + i * 104729) % static_cast<uint64_t>(ids.size())];
      auto r = c.Get("/api/v1/jobs/" + id, auth);
      if (!r) {
        *error = httplib::to_string(r.error());
        return -1;
      }
      return r->status;
    };
    c0 = SampleCpu(a.server_pid);
    reads = RunPhase(a, a.clients, a.read_seconds, true, read, 200);
    c1 = SampleCpu(a.server_pid);
    PrintStats("GET /api/v1/jobs/{id} (read)", reads, false);
    std::cout << "  " << CpuLine(c0, c1) << "\n";
  }

  // Phase 3: where the time goes. The same clients on cheaper routes.
  if (a.breakdown_seconds > 0) {
    std::cout << "breakdown (" << a.clients << " clients, " << a.breakdown_seconds << " s each):\n";
    auto get = [&](const std::string& path, bool with_auth) -> Request {
      return [&, path, with_auth](httplib::Client& c, int, uint64_t, std::string* error) {
        auto r = with_auth ? c.Get(path, auth) : c.Get(path);
        if (!r) {
          *error = httplib::to_string(r.error());
          return -1;
        }
        return r->status;
      };
    };
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
  auto c = MakeClient(a, true);
  const httplib::Headers auth = {{"Authorization", "Bearer " + a.token}};
  size_t present = 0;
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    auto r = c->Get("/api/v1/jobs/" + id, auth);
    if (r && r->status == 200) {
      ++present;
    } else {
      missing.push_back(id + ": " +
                        (r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error())));
    }
  }
  std::cout << "durability: " << ids.size() << " acknowledged before kill -9, " << present
            << " present after restart, " << missing.size() << " missing\n";
  for (size_t i = 0; i < missing.size() && i < 20; ++i)
    std::cout << "  missing " << missing[i] << "\n";
  return missing.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  (void)std::signal(SIGPIPE, SIG_IGN);  // a server killed mid-request must not end the bench
  try {
    Args a = ParseArgs(argc, argv);
    return a.mode == "submit" ? Submit(a) : Verify(a);
  } catch (const std::exception& e) {
    std::cerr << "plane_bench: " << e.what() << "\n";
    return 1;
  }
}
