// Crash safety of the Privacy Plane: a real `cce-plane serve` (fake
// provisioner, fail-closed gate) is killed with SIGKILL at random moments
// (>= 200 times) while concurrent HTTPS keep-alive clients submit jobs with
// Idempotency-Keys and the engine walks jobs through their states. After the
// last restart the engine must settle every job in HELD, and:
//  - every acknowledged job exists, each key names exactly one job;
//  - no job was provisioned twice, every history is a path of the state
//    machine (store::IsAllowedTransition), none is RELEASED (gate fails closed);
//  - the audit and rental chains verify, SQLite's integrity_check passes.
// The checkers are plain functions over plain data; PlaneCrashCheckers feeds
// them synthetic broken data to show that they can fail.
//
// Knobs: CCE_CRASH_KILLS (default 200), CCE_CRASH_SEED (default random; it is
// printed, and fixes the kill schedule, though not the scheduler's timing).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/harness.h"
#include "e2e/plane_fixture.h"
#include "http/test_client.h"
#include "plane/keys.h"
#include "store/job_state.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace cce::e2e {
namespace {

using nlohmann::json;
using store::JobState;
using SteadyClock = std::chrono::steady_clock;

// ---- Checkers (pure; exercised on synthetic data by PlaneCrashCheckers) -------

// A submission the plane acknowledged (HTTP 200 or 201) under `key`.
struct Acked {
  std::string key;
  std::string id;
  int http_status = 0;
};

// A job as found in the database after the run.
struct StoredJob {
  store::Job job;
  std::vector<store::JobEvent> history;
  std::optional<store::Output> output;
};

std::string StateName(std::optional<JobState> s) {
  return s ? std::string(store::JobStateName(*s)) : std::string("(none)");
}

// Every acknowledged job is stored under its key; a key names one job, both
// in what clients were told and in the database; no stored job has a key
// that no client was ever told about (clients retry a key until acknowledged,
// so such a job would be a duplicate the plane created behind their back).
std::vector<std::string> CheckIdempotency(const std::vector<Acked>& acked,
                                          const std::vector<StoredJob>& stored) {
  std::vector<std::string> problems;
  std::map<std::string, std::set<std::string>> ids_told;  // key -> ids acknowledged
  for (const auto& a : acked) ids_told[a.key].insert(a.id);
  std::map<std::string, std::vector<std::string>> ids_stored;  // key -> stored job ids
  std::map<std::string, const store::Job*> by_id;
  for (const auto& s : stored) {
    by_id[s.job.id] = &s.job;
    if (!s.job.idempotency_key.empty()) ids_stored[s.job.idempotency_key].push_back(s.job.id);
  }
  for (const auto& [key, ids] : ids_told) {
    if (ids.size() > 1) {
      std::string list;
      for (const auto& id : ids) list += " " + id;
      problems.push_back("key " + key + " was acknowledged as " + std::to_string(ids.size()) +
                         " different jobs:" + list);
    }
    for (const auto& id : ids) {
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        problems.push_back("acknowledged job " + id + " (key " + key + ") is not in the store");
      } else if (it->second->idempotency_key != key) {
        problems.push_back("acknowledged job " + id + " was submitted with key " + key +
                           " but is stored with key '" + it->second->idempotency_key + "'");
      }
    }
  }
  for (const auto& [key, ids] : ids_stored) {
    if (ids.size() > 1) {
      std::string list;
      for (const auto& id : ids) list += " " + id;
      problems.push_back("key " + key + " names " + std::to_string(ids.size()) +
                         " stored jobs:" + list);
    }
    if (ids_told.count(key) == 0) {
      problems.push_back("stored job " + ids.front() + " has key " + key +
                         " that no client was acknowledged for");
    }
  }
  return problems;
}

// The history is a path of the state machine from SUBMITTED to the job's
// current state, with at most one transition into PROVISIONING and none into
// RELEASED (the gate fails closed, so nothing may be released).
std::vector<std::string> CheckHistory(const StoredJob& s) {
  std::vector<std::string> problems;
  const std::string& id = s.job.id;
  if (s.history.empty()) return {"job " + id + ": no history"};
  const auto& first = s.history.front();
  if (first.seq != 1 || first.from.has_value() || first.to != JobState::kSubmitted) {
    problems.push_back("job " + id + ": history starts with seq " + std::to_string(first.seq) +
                       " " + StateName(first.from) + " -> " + StateName(first.to) +
                       ", expected seq 1 (none) -> SUBMITTED");
  }
  int provisioned = 0;
  for (size_t i = 0; i < s.history.size(); ++i) {
    const auto& e = s.history[i];
    if (e.to == JobState::kProvisioning) ++provisioned;
    if (e.to == JobState::kReleased) {
      problems.push_back("job " + id + ": history seq " + std::to_string(e.seq) +
                         " moves to RELEASED although the gate fails closed");
    }
    if (i == 0) continue;
    const auto& prev = s.history[i - 1];
    std::string where = "job " + id + ": history seq " + std::to_string(e.seq);
    if (e.seq != prev.seq + 1) {
      problems.push_back(where + ": expected seq " + std::to_string(prev.seq + 1));
    }
    if (!e.from || *e.from != prev.to) {
      problems.push_back(where + ": starts from " + StateName(e.from) +
                         " but the previous event ended in " + StateName(prev.to));
    }
    if (!e.from || !store::IsAllowedTransition(*e.from, e.to)) {
      problems.push_back(where + ": " + StateName(e.from) + " -> " + StateName(e.to) +
                         " is not a transition of the state machine");
    }
  }
  if (provisioned > 1) {
    problems.push_back("job " + id + ": provisioned " + std::to_string(provisioned) +
                       " times (history has that many transitions into PROVISIONING)");
  }
  if (s.history.back().to != s.job.state) {
    problems.push_back("job " + id + ": state is " + StateName(s.job.state) +
                       " but the last history event ends in " + StateName(s.history.back().to));
  }
  if (s.job.state == JobState::kReleased) {
    problems.push_back("job " + id + " is RELEASED although the gate fails closed");
  }
  return problems;
}

// After the engine settled: HELD, with one output whose recorded verdict is
// "hold" (the fail-closed gate's).
std::vector<std::string> CheckSettled(const StoredJob& s) {
  std::vector<std::string> problems;
  const std::string& id = s.job.id;
  if (s.job.state != JobState::kHeld) {
    std::string path;
    for (const auto& e : s.history) path += " -> " + StateName(e.to);
    problems.push_back("job " + id + " did not settle: it is " + StateName(s.job.state) +
                       " (reason '" + s.job.reason + "'); history:" + path);
    return problems;
  }
  if (!s.output) {
    problems.push_back("job " + id + " is HELD but has no output");
  } else if (s.output->verdict != store::GateVerdict::kHold) {
    problems.push_back("job " + id + " is HELD but its output's verdict is " +
                       std::string(store::GateVerdictName(s.output->verdict)));
  }
  return problems;
}

std::string Join(const std::vector<std::string>& lines, size_t max = 20) {
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max; ++i) out += "  " + lines[i] + "\n";
  if (lines.size() > max) out += "  ... and " + std::to_string(lines.size() - max) + " more\n";
  return out;
}

// ---- Synthetic data for the self-check -----------------------------------------

store::JobEvent Event(int64_t seq, std::optional<JobState> from, JobState to) {
  store::JobEvent e;
  e.seq = seq;
  e.from = from;
  e.to = to;
  e.reason = "test";
  return e;
}

StoredJob HeldJob(const std::string& id, const std::string& key) {
  StoredJob s;
  s.job.id = id;
  s.job.idempotency_key = key;
  s.job.state = JobState::kHeld;
  const JobState path[] = {JobState::kSubmitted, JobState::kAuthorized, JobState::kProvisioning,
                           JobState::kAttested,  JobState::kRunning,    JobState::kOutputSubmitted,
                           JobState::kHeld};
  std::optional<JobState> from;
  int64_t seq = 1;
  for (JobState to : path) {
    s.history.push_back(Event(seq++, from, to));
    from = to;
  }
  store::Output out;
  out.job_id = id;
  out.verdict = store::GateVerdict::kHold;
  s.output = out;
  return s;
}

bool Mentions(const std::vector<std::string>& problems, const std::string& what) {
  for (const auto& p : problems) {
    if (p.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(PlaneCrashCheckers, PassCleanDataAndCatchEachViolation) {
  std::vector<StoredJob> good = {HeldJob("job-a", "k1"), HeldJob("job-b", "k2")};
  std::vector<Acked> acked = {{"k1", "job-a", 201}, {"k1", "job-a", 200}, {"k2", "job-b", 201}};
  EXPECT_TRUE(CheckIdempotency(acked, good).empty()) << Join(CheckIdempotency(acked, good));
  for (const auto& s : good) {
    EXPECT_TRUE(CheckHistory(s).empty()) << Join(CheckHistory(s));
    EXPECT_TRUE(CheckSettled(s).empty()) << Join(CheckSettled(s));
  }

  // A retry that created a second job under the same key.
  auto dup = good;
  dup.push_back(HeldJob("job-c", "k1"));
  EXPECT_TRUE(Mentions(CheckIdempotency(acked, dup), "key k1 names 2 stored jobs"))
      << Join(CheckIdempotency(acked, dup));
  auto told_twice = acked;
  told_twice.push_back({"k2", "job-c", 201});
  EXPECT_TRUE(Mentions(CheckIdempotency(told_twice, dup), "key k2 was acknowledged as 2"))
      << Join(CheckIdempotency(told_twice, dup));
  // A lost acknowledged job.
  std::vector<StoredJob> lost = {good[0]};
  EXPECT_TRUE(Mentions(CheckIdempotency(acked, lost), "acknowledged job job-b (key k2) is not"))
      << Join(CheckIdempotency(acked, lost));
  // A job nobody was told about.
  std::vector<StoredJob> orphan = good;
  orphan.push_back(HeldJob("job-d", "k9"));
  EXPECT_TRUE(Mentions(CheckIdempotency(acked, orphan), "key k9 that no client"));

  // Provisioned twice: a second AUTHORIZED -> PROVISIONING after recovery.
  StoredJob twice = HeldJob("job-e", "k5");
  twice.history.insert(twice.history.begin() + 3,
                       Event(0, JobState::kProvisioning, JobState::kProvisioning));
  for (size_t i = 0; i < twice.history.size(); ++i) {
    twice.history[i].seq = static_cast<int64_t>(i + 1);
  }
  twice.history[3] = Event(4, JobState::kAuthorized, JobState::kProvisioning);
  auto p = CheckHistory(twice);
  EXPECT_TRUE(Mentions(p, "provisioned 2 times")) << Join(p);
  EXPECT_TRUE(Mentions(p, "previous event ended in PROVISIONING")) << Join(p);

  // Released without a passing gate.
  StoredJob released = HeldJob("job-f", "k6");
  released.job.state = JobState::kReleased;
  released.history.back().to = JobState::kReleased;
  p = CheckHistory(released);
  EXPECT_TRUE(Mentions(p, "moves to RELEASED")) << Join(p);
  EXPECT_TRUE(Mentions(p, "job-f is RELEASED")) << Join(p);

  // A skipped state (AUTHORIZED -> RUNNING) and a gap in seq.
  StoredJob skip = HeldJob("job-g", "k7");
  skip.history.erase(skip.history.begin() + 2, skip.history.begin() + 4);
  skip.history[2].from = JobState::kAuthorized;  // seq 5, now right after seq 2
  p = CheckHistory(skip);
  EXPECT_TRUE(Mentions(p, "AUTHORIZED -> RUNNING is not a transition")) << Join(p);
  EXPECT_TRUE(Mentions(p, "expected seq 3")) << Join(p);

  // Stuck mid-way (no recovery), and HELD without a hold verdict.
  StoredJob stuck = HeldJob("job-h", "k8");
  stuck.history.resize(4);
  stuck.job.state = JobState::kAttested;
  EXPECT_TRUE(CheckHistory(stuck).empty()) << Join(CheckHistory(stuck));
  EXPECT_TRUE(Mentions(CheckSettled(stuck), "job-h did not settle: it is ATTESTED"));
  StoredJob no_verdict = HeldJob("job-i", "k9");
  no_verdict.output->verdict = store::GateVerdict::kPending;
  EXPECT_TRUE(Mentions(CheckSettled(no_verdict), "verdict is pending"));
}

// ---- The plane under SIGKILL --------------------------------------------------------

// TLS writes to a socket the killed server left behind raise SIGPIPE, which
// would end this test. It is blocked only in threads that talk HTTP, and only
// while they do: children spawned by the main thread (cce-plane serve among
// them) keep the default disposition, so a server that dies of SIGPIPE is
// still seen as a failure. A SIGPIPE left pending is consumed on the way out.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
};

std::unique_ptr<http::testing::TestClient> MakeClient(
    const std::string& url, const std::string& ca,
    std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(2000)) {
  http::ClientOptions o;
  o.base_url = url;
  o.ca_file = ca;
  o.connect_timeout = connect_timeout;
  o.timeout = std::chrono::milliseconds(20'000);
  return std::make_unique<http::testing::TestClient>(o);
}

http::testing::Headers Auth(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// The job spec for `name`: the pushed image by tag, the rented dataset.
std::string JobSpec(const std::string& name) {
  return json{{"apiVersion", "cce4long/v1"},
              {"kind", "PrivacyJob"},
              {"metadata", {{"name", name}}},
              {"spec",
               {{"image", "crash/tool:1.0"},
                {"command", {"/bin/tool"}},
                {"datasets", {{{"name", "claims"}, {"mountPath", "/data/claims"}}}},
                {"resources", {{"timeoutSeconds", 3600}}}}}}
      .dump();
}

struct Plane {
  std::string data_dir;
  std::string url;
  std::string ca;
  std::string operator_token;
  std::string consumer_token;
};

// A plane with the fake provisioner, a provider's dataset, a consumer's
// rental and an image, all set up through the real binaries; the fixture's
// own server is stopped on return (the test runs, kills and restarts its own
// on the same data dir and address). The operator is left logged in for
// `cce audit verify`.
void SetUpPlane(PlaneFixture& f, Plane* p) {
  ASSERT_TRUE(f.up());
  p->data_dir = f.data_dir();
  p->url = f.url();
  p->ca = f.ca();
  p->operator_token = f.operator_token();
  std::string provider = f.AddUser("pat", "provider");
  p->consumer_token = f.AddUser("carol", "consumer");
  ASSERT_FALSE(provider.empty() || p->consumer_token.empty());
  const TempDir& t = f.dir();
  WriteFile(t / "src/claims.csv", "id,cost\n1,10\n2,20\n");
  ASSERT_EQ(f.Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  auto enc = f.Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "src", t / "claims.enc"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  ASSERT_TRUE(f.Login(provider));
  auto reg = f.Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                    "file://" + (t / "claims.enc"), "--max-days", "30"});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;
  ASSERT_TRUE(f.Login(p->consumer_token));
  auto rent = f.Cce({"rent", "claims", "--days", "7"});
  ASSERT_EQ(rent.exit_code, 0) << rent.err;
  WriteOciLayout(t, t / "oci", "crash/tool:1.0");
  auto push = f.Cce({"image", "push", t / "oci"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  ASSERT_TRUE(f.Login(p->operator_token));
  ASSERT_EQ(f.Stop(), 0) << f.server().Err();
}

// Polls /healthz until the plane answers 200 or the process dies or timeout.
bool WaitHealthy(const Plane& p, BackgroundProcess& server, int timeout_ms) {
  SigpipeBlocked no_sigpipe;
  auto c = MakeClient(p.url, p.ca, std::chrono::milliseconds(200));
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (SteadyClock::now() < deadline) {
    auto r = c->Get("/healthz");
    if (r && r->status == 200) return true;
    if (!server.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  return false;
}

// What the submitting clients saw.
struct Load {
  std::mutex mu;
  std::vector<Acked> acked;        // guarded by mu
  std::vector<std::string> wrong;  // unexpected answers; guarded by mu
  std::atomic<int64_t> transport_errors{0};
  std::atomic<int64_t> unavailable{0};
  std::atomic<int64_t> replays{0};   // 200: the key had been committed before
  std::atomic<bool> stop{false};     // finish the key in flight, then return
  std::atomic<bool> abandon{false};  // return now (the test failed)
};

// One client: submits job after job, each under a fresh key, retrying a key
// (same body, same key) until the plane acknowledges it. After `stop` it
// finishes the key in flight and returns.
void SubmitLoop(const Plane& p, int thread, Load* load) {
  SigpipeBlocked no_sigpipe;
  auto client = MakeClient(p.url, p.ca);
  const auto give_up_after = std::chrono::seconds(60);  // of failed retries of one key
  for (int n = 0; !load->stop; ++n) {
    std::string key = "crash-t" + std::to_string(thread) + "-" + std::to_string(n);
    std::string body = JobSpec("crash-t" + std::to_string(thread) + "-" + std::to_string(n));
    http::testing::Headers h = Auth(p.consumer_token);
    h.emplace("Idempotency-Key", key);
    auto first_try = SteadyClock::now();
    for (;;) {
      auto r = client->Post("/api/v1/jobs", h, body, "application/json");
      if (r && (r->status == 200 || r->status == 201)) {
        json j = json::parse(r->body, nullptr, false);
        std::lock_guard<std::mutex> l(load->mu);
        if (j.is_discarded() || !j.contains("id") || !j["id"].is_string()) {
          load->wrong.push_back(key + ": HTTP " + std::to_string(r->status) +
                                " without an id: " + r->body);
        } else {
          load->acked.push_back({key, j["id"].get<std::string>(), r->status});
          if (r->status == 200) ++load->replays;
        }
        break;
      }
      if (r && r->status != 503) {
        std::lock_guard<std::mutex> l(load->mu);
        load->wrong.push_back(key + ": HTTP " + std::to_string(r->status) + ": " + r->body);
        break;
      }
      ++(r ? load->unavailable : load->transport_errors);
      if (load->abandon) return;
      if (SteadyClock::now() - first_try > give_up_after) {
        std::lock_guard<std::mutex> l(load->mu);
        load->wrong.push_back(key + ": not acknowledged after 60 s of retries");
        return;
      }
      // The server is down or restarting: back off a little, then retry the same key.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

// Polls the job lists until no job is in a state that the engine or the
// fake provisioner still has to move; returns what is left per state
// (empty: settled; a failed request counts as "ERROR"). Gives up when the
// audit log (every engine step appends to it) has not grown for
// `stall_limit`, or after `total_limit`: a slow disk only makes this wait
// longer, a job that nothing resumes ends it.
std::map<std::string, size_t> WaitSettled(const Plane& p, std::chrono::seconds stall_limit,
                                          std::chrono::seconds total_limit) {
  SigpipeBlocked no_sigpipe;
  auto op = MakeClient(p.url, p.ca);
  const char* const unsettled[] = {"SUBMITTED", "AUTHORIZED", "PROVISIONING",
                                   "ATTESTED",  "RUNNING",    "OUTPUT_SUBMITTED"};
  const auto start = SteadyClock::now();
  auto last_progress = start;
  int64_t audit_seen = 0;
  std::map<std::string, size_t> left;
  for (;;) {
    left.clear();
    for (const char* s : unsettled) {
      auto r = op->Get(std::string("/api/v1/jobs?state=") + s, Auth(p.operator_token));
      json j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
      if (!j.is_object() || !j.contains("jobs")) {
        ++left["ERROR"];
      } else if (!j["jobs"].empty()) {
        left[s] = j["jobs"].size();
      }
    }
    if (left.empty()) return left;
    auto r = op->Get("/api/v1/audit?limit=1000&after=" + std::to_string(audit_seen),
                     Auth(p.operator_token));
    json a = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    if (a.is_object() && a.contains("entries") && !a["entries"].empty()) {
      audit_seen = a["entries"].back().value("seq", audit_seen);
      last_progress = SteadyClock::now();
    }
    const auto now = SteadyClock::now();
    if (now - last_progress > stall_limit || now - start > total_limit) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// GET /api/v1/jobs/{id} for each acknowledged job, as its consumer, from
// `threads` keep-alive clients; returns those not answered with 200.
std::vector<std::string> NotServed(const Plane& p, const std::vector<Acked>& acked, int threads) {
  std::mutex mu;
  std::vector<std::string> missing;  // guarded by mu
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&] {
      SigpipeBlocked no_sigpipe;
      auto consumer = MakeClient(p.url, p.ca);
      for (size_t i = next++; i < acked.size(); i = next++) {
        const Acked& a = acked[i];
        auto r = consumer->Get("/api/v1/jobs/" + a.id, Auth(p.consumer_token));
        if (!r || r->status != 200) {
          std::lock_guard<std::mutex> l(mu);
          missing.push_back(
              "GET /api/v1/jobs/" + a.id + " (key " + a.key + "): " +
              (r ? std::to_string(r->status) + " " + r->body : consumer->error().message()));
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return missing;
}

int64_t EnvInt(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  return std::strtoll(v, nullptr, 10);
}

// sqlite3's own check of the database file, opened read-only.
std::string IntegrityCheck(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  if (rc != SQLITE_OK) return "open " + path + ": " + sqlite3_errstr(rc);
  std::string out;
  auto collect = [](void* arg, int n, char** values, char**) -> int {
    auto* s = static_cast<std::string*>(arg);
    for (int i = 0; i < n; ++i)
      *s += (values[i] != nullptr ? values[i] : "NULL") + std::string("\n");
    return 0;
  };
  char* err = nullptr;
  rc = sqlite3_exec(db.get(), "PRAGMA integrity_check; PRAGMA foreign_key_check;", collect, &out,
                    &err);
  if (rc != SQLITE_OK) {
    std::string e = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return "integrity_check on " + path + ": " + e;
  }
  return out;  // "ok\n" and no foreign-key violations when sound
}

// One integer from a read-only query ("?" and the error when it fails).
std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  if (rc != SQLITE_OK) return std::string("? (") + sqlite3_errstr(rc) + ")";
  std::string out = "?";
  auto first = [](void* arg, int n, char** values, char**) -> int {
    if (n > 0 && values[0] != nullptr) *static_cast<std::string*>(arg) = values[0];
    return 0;
  };
  char* err = nullptr;
  if (sqlite3_exec(db.get(), sql.c_str(), first, &out, &err) != SQLITE_OK) {
    out = std::string("? (") + (err != nullptr ? err : "error") + ")";
    sqlite3_free(err);
  }
  return out;
}

TEST(PlaneCrash, SurvivesRepeatedSigkillUnderConcurrentSubmissions) {
  const int64_t kills = EnvInt("CCE_CRASH_KILLS", 200);
  const uint64_t seed = static_cast<uint64_t>(EnvInt("CCE_CRASH_SEED", 0)) != 0
                            ? static_cast<uint64_t>(EnvInt("CCE_CRASH_SEED", 0))
                            : std::random_device{}();
  std::cout << "plane_crash_test: seed " << seed << " (CCE_CRASH_SEED), " << kills
            << " kills (CCE_CRASH_KILLS)" << std::endl;
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  const auto test_start = SteadyClock::now();
  auto since_start = [&] {
    return std::chrono::duration<double>(SteadyClock::now() - test_start).count();
  };
  PlaneFixture fixture("fake");
  Plane p;
  SetUpPlane(fixture, &p);
  if (HasFatalFailure()) return;
  std::cout << "plane_crash_test: plane set up in " << since_start() << " s" << std::endl;
  std::unique_ptr<BackgroundProcess> server;
  // Jobs each restarted plane found mid-walk and resumed, by state, from its
  // JSON log ("engine.resume"): evidence that kills landed between steps.
  std::map<std::string, int64_t> resumed;
  auto tally_resumes = [&](const BackgroundProcess& old) {
    std::istringstream lines(old.Err());
    for (std::string line; std::getline(lines, line);) {
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("event", "") == "engine.resume" && j.contains("state")) {
        ++resumed[j.value("state", "")];
      }
    }
  };
  auto spawn = [&] {
    if (server) tally_resumes(*server);
    server = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{BinPath("cce-plane"), "serve", "--data-dir", p.data_dir});
  };

  spawn();
  ASSERT_TRUE(WaitHealthy(p, *server, 20000)) << server->Err();

  constexpr int kClients = 8;
  Load load;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(SubmitLoop, std::cref(p), i, &load);
  // Joins the clients on every path out of this test, failed assertions too.
  struct Joiner {
    Load& load;
    std::vector<std::thread>& threads;
    ~Joiner() {
      load.abandon = true;
      load.stop = true;
      for (auto& th : threads) {
        if (th.joinable()) th.join();
      }
    }
  } joiner{load, clients};

  // Kill at random: mostly after a random slice of load on a server that is
  // up, sometimes while a fresh server is still starting (its engine
  // resuming the jobs the previous one left mid-way).
  std::uniform_int_distribution<int> load_ms(2, 40), startup_ms(0, 25), coin(0, 7);
  int64_t killed_under_load = 0, killed_in_startup = 0;
  const auto started = SteadyClock::now();
  bool healthy = true;
  for (int64_t k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(healthy ? load_ms(rng) : startup_ms(rng)));
    int rc = server->Stop(SIGKILL, 10000);
    ASSERT_EQ(rc, 128 + SIGKILL) << "kill " << k << ": the server had exited by itself:\n"
                                 << server->Err();
    ++(healthy ? killed_under_load : killed_in_startup);
    spawn();
    healthy = coin(rng) != 0 || k + 1 == kills;
    if (healthy) {
      ASSERT_TRUE(WaitHealthy(p, *server, 20000))
          << "restart after kill " << k << " did not come up:\n"
          << server->Err();
    }
  }
  const double kill_phase_s = std::chrono::duration<double>(SteadyClock::now() - started).count();

  // Clients finish the key each has in flight, then stop.
  load.stop = true;
  for (auto& c : clients) c.join();

  // One more kill with the engine (probably) still busy, and SQLite's own
  // check of the file exactly as the crash left it.
  ASSERT_EQ(server->Stop(SIGKILL, 10000), 128 + SIGKILL);
  EXPECT_EQ(IntegrityCheck(p.data_dir + "/plane.db"), "ok\n") << "after the final SIGKILL";
  spawn();
  ASSERT_TRUE(WaitHealthy(p, *server, 20000)) << server->Err();

  {
    std::lock_guard<std::mutex> l(load.mu);
    std::cout << "plane_crash_test: " << (killed_under_load + killed_in_startup + 1)
              << " SIGKILLs (" << killed_under_load << " under load, " << killed_in_startup
              << " during start-up, 1 final) in " << kill_phase_s << " s; " << load.acked.size()
              << " submissions acknowledged (" << load.replays
              << " as replays of a committed key), " << load.transport_errors
              << " transport errors, " << load.unavailable << " HTTP 503" << std::endl;
    EXPECT_TRUE(load.wrong.empty()) << "unexpected answers to valid submissions:\n"
                                    << Join(load.wrong);
    ASSERT_GT(load.acked.size(), 0u);
  }
  EXPECT_GE(killed_under_load + killed_in_startup + 1, kills);

  // Let the engine settle: nothing left in a state it or the fake
  // provisioner still has to move.
  auto settle_start = SteadyClock::now();
  std::map<std::string, size_t> left =
      WaitSettled(p, std::chrono::seconds(30), std::chrono::seconds(150));
  std::string left_text;
  for (const auto& [s, n] : left) left_text += " " + s + "=" + std::to_string(n);
  std::cout << "plane_crash_test: engine settled in "
            << std::chrono::duration<double>(SteadyClock::now() - settle_start).count() << " s"
            << (left.empty() ? "" : "; NOT settled, left:" + left_text) << std::endl;
  EXPECT_TRUE(left.empty()) << "jobs still in flight after the last restart, and the engine made "
                               "no progress for 30 s (no crash recovery?):"
                            << left_text;

  // Every acknowledged job is served by the API.
  std::vector<Acked> acked;
  {
    std::lock_guard<std::mutex> l(load.mu);
    acked = load.acked;
  }
  auto missing_api = NotServed(p, acked, 8);
  EXPECT_TRUE(missing_api.empty()) << "acknowledged jobs the plane does not serve:\n"
                                   << Join(missing_api);

  // `cce audit verify` as the operator: the plane's own check of its chains.
  auto v = fixture.Cce({"audit", "verify", "--output", "json"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  json vj = json::parse(v.out, nullptr, false);
  EXPECT_TRUE(vj.is_object() && vj.value("ok", false)) << v.out << v.err;

  EXPECT_EQ(server->Stop(SIGTERM, 30000), 0) << server->Err();
  tally_resumes(*server);
  std::string resumed_text;
  int64_t resumed_total = 0;
  for (const auto& [s, n] : resumed) {
    resumed_text += " " + s + "=" + std::to_string(n);
    resumed_total += n;
  }
  std::cout << "plane_crash_test: jobs found mid-walk and resumed after a kill:"
            << (resumed_text.empty() ? " none" : resumed_text) << std::endl;
  // With the engine busy through every kill, some must land mid-walk; if
  // none did, this run did not exercise recovery (or the log event changed).
  EXPECT_GT(resumed_total, 0) << "no engine.resume event in any restarted plane's log";
  const std::string db_path = p.data_dir + "/plane.db";
  EXPECT_EQ(IntegrityCheck(db_path), "ok\n") << "after the final graceful stop";

  // Issuing a credential and moving the job to PROVISIONING are one
  // transaction (Store::IssueCredentialAndProvision): however the kills fell,
  // no job has a second credential and none has a credential without being
  // provisioned.
  EXPECT_EQ(QueryOne(db_path,
                     "SELECT count(*) FROM (SELECT job_id FROM job_credentials GROUP BY job_id "
                     "HAVING count(*) > 1)"),
            "0");
  EXPECT_EQ(QueryOne(db_path,
                     "SELECT count(*) FROM job_credentials jc WHERE NOT EXISTS (SELECT 1 FROM "
                     "job_events e WHERE e.job_id = jc.job_id AND e.to_state = 'PROVISIONING')"),
            "0");

  // Everything else from the database itself.
  store::SqliteStoreOptions so;
  so.path = db_path;
  auto db = store::SqliteStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::vector<StoredJob> stored;
  for (int64_t offset = 0;; offset += 10000) {
    store::JobFilter f;
    f.limit = 10000;
    f.offset = offset;
    auto page = (*db)->ListJobs(f);
    ASSERT_TRUE(page.ok()) << page.status().message();
    for (auto& j : *page) {
      StoredJob s;
      s.job = std::move(j);
      auto h = (*db)->JobHistory(s.job.id);
      ASSERT_TRUE(h.ok()) << s.job.id << ": " << h.status().message();
      s.history = std::move(*h);
      auto o = (*db)->GetOutput(s.job.id);
      if (o.ok()) s.output = std::move(*o);
      stored.push_back(std::move(s));
    }
    if (page->size() < 10000) break;
  }
  std::map<std::string, size_t> by_state;
  for (const auto& s : stored) ++by_state[StateName(s.job.state)];
  std::string states;
  for (const auto& [s, n] : by_state) states += " " + s + "=" + std::to_string(n);
  std::cout << "plane_crash_test: " << stored.size() << " jobs stored:" << states << std::endl;

  auto idem = CheckIdempotency(acked, stored);
  EXPECT_TRUE(idem.empty()) << idem.size() << " idempotency problems:\n" << Join(idem);
  std::vector<std::string> history_problems, settle_problems;
  for (const auto& s : stored) {
    for (auto& m : CheckHistory(s)) history_problems.push_back(std::move(m));
    for (auto& m : CheckSettled(s)) settle_problems.push_back(std::move(m));
  }
  EXPECT_TRUE(history_problems.empty()) << history_problems.size() << " history problems:\n"
                                        << Join(history_problems);
  EXPECT_TRUE(settle_problems.empty()) << settle_problems.size() << " jobs not settled in HELD:\n"
                                       << Join(settle_problems);

  auto signing = plane::LoadSigningKey(p.data_dir + "/keys/signing.key");
  ASSERT_TRUE(signing.ok()) << signing.status().message();
  auto pub = signing->PublicKey();
  auto audit = store::VerifyAudit(**db, pub);
  ASSERT_TRUE(audit.ok()) << audit.status().message();
  EXPECT_TRUE(audit->ok()) << "audit chain: " << audit->reason;
  EXPECT_GE(audit->checkpoints_checked, 1);
  EXPECT_GT(audit->entries_checked, static_cast<int64_t>(stored.size()));
  auto rentals = store::VerifyRentalChain(**db, pub);
  ASSERT_TRUE(rentals.ok()) << rentals.status().message();
  EXPECT_TRUE(rentals->ok()) << "rental chain: " << rentals->reason;
  std::cout << "plane_crash_test: audit chain verified: " << audit->entries_checked << " entries, "
            << audit->checkpoints_checked << " signed checkpoints; " << since_start() << " s in all"
            << std::endl;
}

}  // namespace
}  // namespace cce::e2e
