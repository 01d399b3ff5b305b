// bench/attest: full key releases per second (auth + attest + resource)
// against a real cce-plane over TLS with cached collateral. The plane runs in
// this process (so the bench can hold the job credentials its provisioner is
// handed); clients use the agent's KBS client and the simulated TEE, on the
// same machine. Baseline measured in the same run: quote verification alone
// (no HTTP, no database), the floor of what a release costs.
//
//   attest_bench [--releases N] [--clients C]
//
// Prints releases/s, latency percentiles, and the ratio to the baseline.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/kbs_client.h"
#include "agent/sim_quote.h"
#include "attest/attest.h"
#include "attest/sim.h"
#include "format/format.h"
#include "http/test_client.h"
#include "image/blob_store.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/provisioner.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

class Capture : public cce::plane::Provisioner {
 public:
  std::string name() const override { return "bench"; }
  cce::Status Provision(const cce::store::Job& job, const std::string& credential) override {
    std::lock_guard<std::mutex> l(mu);
    creds[job.id] = credential;
    return cce::Status::Ok();
  }
  cce::Status Resume(const cce::store::Job&) override { return cce::Status::Ok(); }
  size_t Count() {
    std::lock_guard<std::mutex> l(mu);
    return creds.size();
  }
  std::mutex mu;
  std::map<std::string, std::string> creds;
};

int Fail(const std::string& what) {
  std::cerr << "attest_bench: " << what << "\n";
  return 1;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  size_t releases = 1000;
  int clients = 8;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << "Usage: attest_bench [--releases N] [--clients C]\n\n"
                   "Full key releases/s (auth + attest + resource) against an in-process\n"
                   "cce-plane over TLS, simulated TEE, cached collateral; baseline: quote\n"
                   "verification alone in the same run.\n";
      return 0;
    }
    if ((a == "--releases" || a == "--clients") && i + 1 < argc) {
      long v = std::strtol(argv[++i], nullptr, 10);
      if (v <= 0) return Fail(a + ": expected a positive integer");
      if (a == "--releases") releases = static_cast<size_t>(v);
      if (a == "--clients") clients = static_cast<int>(v);
    } else {
      return Fail("unknown argument '" + a + "' (try --help)");
    }
  }
  std::string tmp = (fs::temp_directory_path() / "cce-attest-bench-XXXXXX").string();
  if (::mkdtemp(tmp.data()) == nullptr) return Fail("mkdtemp failed");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};

  cce::SystemClock clock;
  cce::plane::InitOptions io;
  io.data_dir = tmp + "/plane";
  io.listen = "127.0.0.1:0";
  io.simulated_tee = true;
  auto init = cce::plane::InitPlane(io, clock);
  if (!init.ok()) return Fail(init.status().message());
  {  // quiet logs: warnings only
    std::string path = init->config_file;
    std::ifstream in(path);
    std::string cfg((std::istreambuf_iterator<char>(in)), {});
    size_t at = cfg.find("level: info");
    if (at != std::string::npos) cfg.replace(at, 11, "level: warn");
    at = cfg.find("  allowed_roots: ");  // the dataset is encrypted into tmp
    if (at != std::string::npos) {
      cfg.replace(at, cfg.find('\n', at) - at, "  allowed_roots: [\"" + tmp + "\"]");
    }
    std::ofstream(path, std::ios::trunc) << cfg;
  }
  const std::string sim_dir = init->data_dir + "/attestation/sim";

  // Baseline: quote verification alone, same collateral, same policy.
  double verify_per_s = 0;
  {
    auto collateral = cce::attest::Collateral::LoadDir(sim_dir + "/collateral");
    auto root = cce::crypto::ParseCertificatesPem(*cce::ReadFile(sim_dir + "/root.crt", 1 << 20));
    if (!collateral.ok() || !root.ok()) return Fail("cannot load the simulated collateral");
    cce::attest::TrustAnchors anchors = cce::attest::IntelTrustAnchors();
    anchors.simulation_roots.push_back((*root)[0]);
    cce::attest::Policy policy;
    policy.allow_simulated = true;
    std::array<uint8_t, 64> rd{};
    auto quote = cce::attest::BuildSimulatedQuote(sim_dir, rd, {});
    if (!quote.ok()) return Fail(quote.status().message());
    const int n = 300;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto v = cce::attest::VerifyQuote(*quote, *collateral, policy, clock.NowUnix(),
                                        cce::crypto::ByteSpan(rd), anchors);
      if (!v.ok() || !v->accepted) return Fail("baseline verification failed");
    }
    verify_per_s = n / std::chrono::duration<double>(Clock::now() - t0).count();
  }

  Capture capture;
  std::atomic<bool> stop{false};
  cce::plane::ServeOptions so;
  so.data_dir = init->data_dir;
  so.stop = &stop;
  std::promise<int> bound;
  auto bound_f = bound.get_future();
  so.on_listening = [&bound](int p) { bound.set_value(p); };
  cce::Status serve_status;
  std::thread server([&] {
    serve_status = cce::plane::ServeForTest(so, clock, cce::plane::TestDoubles{nullptr, &capture});
  });
  if (bound_f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    stop = true;
    server.join();
    return Fail("plane did not start: " + serve_status.message());
  }
  const int port = bound_f.get();
  auto stop_server = [&] {
    stop = true;
    server.join();
  };
  // Setup requests (not timed) go through the production client, kept alive.
  cce::http::testing::TestClient http(port, init->ca_file);
  auto user = [&](const std::string& name, cce::store::Role role) {
    auto t = cce::plane::AddUser(init->data_dir, name, role, clock);
    return t.ok() ? *t : std::string();
  };
  const std::string pat = user("pat", cce::store::Role::kProvider);
  const std::string carol = user("carol", cce::store::Role::kConsumer);
  fs::create_directories(tmp + "/src");
  std::ofstream(tmp + "/src/a.csv") << "x\n1\n";
  auto key = cce::format::DatasetKey::Generate();
  if (!key.ok() || !cce::format::EncryptDataset(tmp + "/src", tmp + "/enc", *key, {}).ok()) {
    stop_server();
    return Fail("cannot make the sample dataset");
  }
  auto kt = key->EncodeKeyFile();
  const cce::http::testing::Headers pat_h = {{"Authorization", "Bearer " + pat}};
  const cce::http::testing::Headers carol_h = {{"Authorization", "Bearer " + carol}};
  // "" when the request got `want`, else what went wrong.
  auto failure = [&http](const cce::http::testing::Result& r, int want) -> std::string {
    if (!r) return http.error().message();
    if (r->status != want) return "HTTP " + std::to_string(r->status) + " " + r->body;
    return "";
  };
  auto reg =
      http.Post("/api/v1/datasets", pat_h,
                json{{"name", "claims"},
                     {"location", "file://" + tmp + "/enc"},
                     {"key", std::string(reinterpret_cast<const char*>(kt.data()), kt.size())}}
                    .dump(),
                "application/json");
  if (std::string why = failure(reg, 201); !why.empty()) {
    stop_server();
    return Fail("setup: dataset registration failed: " + why);
  }
  auto rent =
      http.Post("/api/v1/rentals", carol_h, R"({"dataset":"claims","days":1})", "application/json");
  if (std::string why = failure(rent, 201); !why.empty()) {
    stop_server();
    return Fail("setup: rental failed: " + why);
  }
  auto blobs = cce::image::BlobStore::Create(init->data_dir + "/images");
  std::string manifest = R"({"schemaVersion":2})";
  auto digest = blobs->PutBytes(manifest, cce::image::Digest::Of(manifest));
  if (!digest.ok()) {
    stop_server();
    return Fail("setup: cannot store the image manifest: " + digest.status().message());
  }
  const std::string spec =
      "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: b}\n"
      "spec:\n  image: " +
      digest->str() +
      "\n  command: [/app/run]\n  datasets:\n"
      "    - {name: claims, mountPath: /data/c}\n"
      "  resources: {timeoutSeconds: 3600}\n";
  std::cerr << "attest_bench: provisioning " << releases << " jobs...\n";
  for (size_t i = 0; i < releases; ++i) {
    auto r = http.Post("/api/v1/jobs", carol_h, spec, "application/yaml");
    if (std::string why = failure(r, 201); !why.empty()) {
      stop_server();
      return Fail("job submission failed: " + why);
    }
  }
  for (int i = 0; i < 6000 && capture.Count() < releases; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (capture.Count() < releases) {
    stop_server();
    return Fail("the engine did not provision every job");
  }
  std::vector<std::string> creds;
  for (const auto& [id, c] : capture.creds) creds.push_back(c);

  // The measured part: C clients, each doing full releases back to back.
  std::atomic<size_t> next{0};
  std::atomic<size_t> errors{0};
  std::mutex lat_mu;
  std::vector<double> latencies;
  double client_cpu = 0;  // seconds, summed over the client threads
  const std::string expected = cce::crypto::ToHex(key->bytes());
  const cce::agent::KbsEndpoint endpoint{"https://127.0.0.1:" + std::to_string(port),
                                         init->ca_file};
  auto cpu = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  const double cpu0 = cpu();
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&] {
      auto quotes = cce::agent::MakeSimulatedQuoteProvider(sim_dir);
      std::vector<double> mine;
      for (size_t i = next++; i < creds.size(); i = next++) {
        auto s = Clock::now();
        auto got = cce::agent::FetchDatasetKeys(endpoint, creds[i], {"claims"}, *quotes);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        if (!got.ok() || cce::crypto::ToHex(got->keys.at("claims").span()) != expected) {
          if (errors++ == 0 && !got.ok())
            std::cerr << "first error: " << got.status().message() << "\n";
        }
      }
      rusage ru{};
      getrusage(RUSAGE_THREAD, &ru);
      std::lock_guard<std::mutex> l(lat_mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      client_cpu += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu_used = cpu() - cpu0;
  stop_server();

  const double per_s = static_cast<double>(creds.size()) / secs;
  std::printf(
      "attest_bench: %zu full key releases (auth + attest + resource), %d clients, "
      "simulated TEE, TLS, %u cores\n",
      creds.size(), clients, std::thread::hardware_concurrency());
  std::printf("  releases/s            %8.1f   (errors: %zu)\n", per_s, errors.load());
  std::printf("  latency ms            p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
              Pct(latencies, 0.5), Pct(latencies, 0.9), Pct(latencies, 0.99), Pct(latencies, 1.0));
  std::printf("  cpu (plane + clients, one process)  %.0f%% of %u00%%, %.2f ms per release\n",
              100 * cpu_used / secs, std::thread::hardware_concurrency(),
              1000 * cpu_used / static_cast<double>(creds.size()));
  const double plane_ms = 1000 * (cpu_used - client_cpu) / static_cast<double>(creds.size());
  std::printf("    of which clients (quote, ECDH, TLS)  %.2f ms, the plane %.2f ms per release\n",
              1000 * client_cpu / static_cast<double>(creds.size()), plane_ms);
  std::printf("  plane-only capacity at that cost: %.0f releases/s on %u cores\n",
              1000.0 * std::thread::hardware_concurrency() / plane_ms,
              std::thread::hardware_concurrency());
  std::printf("  baseline: quote verifications/s alone (1 thread)  %8.1f\n", verify_per_s);
  std::printf("  ratio releases / verification-only               %8.2f\n", per_s / verify_per_s);
  std::printf("  target: >= 500 releases/s on 2 cores: %s\n", per_s >= 500 ? "MET" : "MISSED");
  return errors.load() == 0 ? 0 : 1;
}
