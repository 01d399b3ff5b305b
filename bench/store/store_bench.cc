// store_bench: durable job submissions per second through SqliteStore, as
// the plane does them (CreateJob with an idempotency key and its audit
// entry, synchronous=FULL), from N concurrent threads. Runs twice on fresh
// databases in the same directory: with group commit, and with one
// transaction per submission (the baseline), then prints both and the ratio.
// Not a test: nothing here asserts on time.
//
//   store_bench [--threads N] [--seconds S] [--dir DIR] [--max-batch B]
#include <sys/statfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "store/sqlite_store.h"

namespace {

using cce::store::AuditDecision;
using cce::store::AuditRecord;
using cce::store::Job;
using cce::store::SqliteStore;
using cce::store::SqliteStoreOptions;
using Clock = std::chrono::steady_clock;

struct Args {
  int threads = 32;
  double seconds = 5;
  std::string dir;
  size_t max_batch = 256;
};

struct Result {
  size_t ops = 0;
  size_t errors = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  double mean_batch = 0;
  double reads_per_s = 0;
};

// Whole-string numeric flag values; anything else is a usage error.
bool ParseInt(const char* s, long min, long& out) {
  char* end = nullptr;
  out = std::strtol(s, &end, 10);
  return end != s && *end == '\0' && out >= min;
}
bool ParseDouble(const char* s, double min, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end != s && *end == '\0' && out >= min;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

const std::string kSpec =
    R"({"apiVersion":"cce4long/v1","kind":"PrivacyJob","metadata":{"name":"cohort-stats"},)"
    R"("spec":{"image":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",)"
    R"("command":["python3","/app/run.py"],"args":[],"env":{"MODE":"full"},)"
    R"("datasets":[{"name":"hospital-claims","mountPath":"/data/claims"}],)"
    R"("resources":{"cpus":1,"memoryMiB":2048,"timeoutSeconds":3600,"outputMaxMiB":64}}})";

// "job-" + 16 hex digits, unique per (thread, i), like the plane's ids.
std::string JobId(int thread, uint64_t i) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "job-";
  const uint64_t v = (static_cast<uint64_t>(thread) << 48) | (i & 0xffffffffffffULL);
  for (int shift = 60; shift >= 0; shift -= 4) id += kHex[(v >> shift) & 0xf];
  return id;
}

Result Run(const Args& args, size_t max_batch, const std::string& path) {
  SqliteStoreOptions options;
  options.path = path;
  options.max_batch = max_batch;
  auto opened = SqliteStore::Open(options);
  if (!opened.ok()) {
    std::cerr << "store_bench: " << opened.status().ToString() << "\n";
    std::exit(1);
  }
  SqliteStore& store = **opened;
  cce::store::User consumer;
  consumer.name = "bench-consumer";
  consumer.token_hash = cce::crypto::Sha256(cce::crypto::AsBytes(consumer.name));
  auto user = store.CreateUser(consumer,
                               {1, "plane", "user.add", "user:bench", AuditDecision::kInfo, "{}"});
  if (!user.ok()) std::exit(1);
  const int64_t consumer_id = user->id;
  const auto stats_before = store.WriterStats();

  std::vector<std::vector<double>> latencies(static_cast<size_t>(args.threads));
  std::atomic<size_t> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(args.threads));
  const auto start = Clock::now();
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = latencies[static_cast<size_t>(t)];
      mine.reserve(1 << 16);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        Job job;
        const std::string id = JobId(t, i);
        job.id = id;
        job.consumer_id = consumer_id;
        job.name = "cohort-stats";
        job.spec_json = kSpec;
        job.image_digest = "sha256:" + std::string(64, 'a');
        job.reason = "submitted";
        job.idempotency_key = std::string("idem-") + id;
        job.request_hash = cce::crypto::Sha256(cce::crypto::AsBytes(job.idempotency_key));
        job.created_at = 1700000000;
        job.deadline = 1700003600;
        const AuditRecord audit{1700000000,
                                "user:bench-consumer",
                                "job.submit",
                                std::string("job:") + id,
                                AuditDecision::kAllow,
                                R"({"datasets":["hospital-claims"],"rental":"covers"})"};
        const auto t0 = Clock::now();
        auto r = store.CreateJob(job, audit);
        mine.push_back(Ms(Clock::now() - t0));
        if (!r.ok()) ++errors;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Result r;
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  r.ops = all.size();
  r.errors = errors.load();
  r.seconds = elapsed;
  auto pct = [&](double p) {
    return all.empty() ? 0
                       : all[std::min(all.size() - 1,
                                      static_cast<size_t>(p * static_cast<double>(all.size())))];
  };
  r.p50_ms = pct(0.50);
  r.p99_ms = pct(0.99);
  r.max_ms = all.empty() ? 0 : all.back();
  const auto stats = store.WriterStats();
  const auto txns = stats.transactions - stats_before.transactions;
  r.mean_batch = txns == 0 ? 0
                           : static_cast<double>(stats.mutations - stats_before.mutations) /
                                 static_cast<double>(txns);

  // Point reads of the jobs just written, same thread count, one second.
  std::atomic<size_t> reads{0};
  stop = false;
  threads.clear();
  const auto read_start = Clock::now();
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      const size_t n = std::max<size_t>(1, latencies[static_cast<size_t>(t)].size());
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (store.GetJob(JobId(t, i % n)).ok()) ++reads;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  for (auto& t : threads) t.join();
  r.reads_per_s = static_cast<double>(reads.load()) /
                  std::chrono::duration<double>(Clock::now() - read_start).count();
  return r;
}

void Print(const char* name, const Result& r) {
  std::cout << std::left << std::setw(26) << name << std::right << std::fixed
            << std::setprecision(0) << std::setw(10) << static_cast<double>(r.ops) / r.seconds
            << std::setprecision(2) << std::setw(10) << r.p50_ms << std::setw(10) << r.p99_ms
            << std::setw(10) << r.max_ms << std::setprecision(1) << std::setw(10) << r.mean_batch
            << std::setprecision(0) << std::setw(13) << r.reads_per_s << std::setw(8) << r.errors
            << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    long n = 0;
    bool ok = value != nullptr;
    if (flag == "--threads") {
      ok = ok && ParseInt(value, 1, n);
      args.threads = static_cast<int>(std::min(n, 4096L));
    } else if (flag == "--seconds") {
      ok = ok && ParseDouble(value, 0.1, args.seconds);
    } else if (flag == "--dir") {
      if (ok) args.dir = value;
    } else if (flag == "--max-batch") {
      ok = ok && ParseInt(value, 2, n);
      args.max_batch = static_cast<size_t>(n);
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "usage: store_bench [--threads N] [--seconds S] [--dir DIR] [--max-batch B]\n";
      return 2;
    }
  }
  std::string dir = args.dir;
  bool remove_dir = false;
  if (dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
    remove_dir = true;
  }
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) == 0 && fs.f_type == 0x01021994 /* TMPFS_MAGIC */) {
    std::cerr << "store_bench: warning: " << dir << " is tmpfs; fsync is free there\n";
  }
  std::cout << "store_bench: " << args.threads << " threads, " << args.seconds
            << " s per mode, durable (WAL, synchronous=FULL), in " << dir << ", "
            << std::thread::hardware_concurrency() << " cores\n";
  std::cout << std::left << std::setw(26) << "mode" << std::right << std::setw(10) << "submit/s"
            << std::setw(10) << "p50 ms" << std::setw(10) << "p99 ms" << std::setw(10) << "max ms"
            << std::setw(10) << "batch" << std::setw(13) << "GetJob/s" << std::setw(8) << "errors"
            << "\n";
  const Result baseline = Run(args, 1, dir + "/baseline.db");
  Print("one txn per submission", baseline);
  const Result grouped = Run(args, args.max_batch, dir + "/group.db");
  Print("group commit", grouped);
  const double ratio = (static_cast<double>(grouped.ops) / grouped.seconds) /
                       std::max(1e-9, static_cast<double>(baseline.ops) / baseline.seconds);
  std::cout << std::setprecision(1) << "group commit / baseline: " << ratio
            << "x submissions/s; p99 " << std::setprecision(2) << grouped.p99_ms << " ms vs "
            << baseline.p99_ms << " ms\n";
  if (remove_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return baseline.errors + grouped.errors == 0 ? 0 : 1;
}
