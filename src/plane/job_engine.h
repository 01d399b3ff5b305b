// The job engine: drives each Privacy Mode job through the state machine of
// DESIGN.md on one thread. Every transition is persisted (Store::
// TransitionJob, with its audit entry) BEFORE it is acted on, so a restarted
// plane resumes from the store: it never provisions a job twice and never
// releases output that did not pass the gate.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/clock.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"
#include "plane/log.h"
#include "store/store.h"

namespace cce::plane {

// Output Gate: scores an output bundle's disclosure risk. The real gate comes
// with the Output Gate issue; until then FailClosedGate holds everything.
struct GateDecision {
  store::GateVerdict verdict = store::GateVerdict::kHold;
  double score = 1.0;
  std::string findings_json = "[]";
};
class Gate {
 public:
  virtual ~Gate() = default;
  virtual StatusOr<GateDecision> Score(const store::Output& output) = 0;
};
class FailClosedGate : public Gate {
 public:
  StatusOr<GateDecision> Score(const store::Output& output) override;
};

// Starts the (confidential) VM for a job and hands it the job credential.
// Backends: `none` (jobs wait in PROVISIONING for an agent; the Agent issue
// adds `local`, then `qemu` and `kubernetes`), and `fake`, which plays the
// agent's part in-process for tests and demos (no data is touched).
class Provisioner {
 public:
  virtual ~Provisioner() = default;
  virtual std::string name() const = 0;
  // Called once the job is persisted as PROVISIONING. Must be idempotent: after
  // a crash the engine calls it again for jobs still in PROVISIONING.
  virtual Status Provision(const store::Job& job, const std::string& credential) = 0;
};

struct EngineDeps {
  store::Store* db = nullptr;
  ledger::Ledger* ledger = nullptr;
  const crypto::Ed25519PrivateKey* signing_key = nullptr;
  Provisioner* provisioner = nullptr;
  const Clock* clock = nullptr;
  Logger* log = nullptr;
  int64_t credential_ttl_seconds = 3600;
};

class JobEngine {
 public:
  explicit JobEngine(EngineDeps deps);
  ~JobEngine();  // stops the thread
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  void Start();
  void Stop();  // waits for the current pass to finish; idempotent
  void Wake();  // a job was submitted
  // One pass over every job that needs work (also used by tests).
  void RunOnce();

 private:
  void Advance(const store::Job& job);
  Status Authorize(const store::Job& job);
  Status IssueAndProvision(const store::Job& job);
  Status Fail(const store::Job& job, const std::string& reason);
  store::AuditRecord Audit(const std::string& action, const std::string& job_id,
                           store::AuditDecision d, const std::string& details = "{}") const;

  EngineDeps deps_;
  std::thread thread_;
  std::mutex mu_;  // guards wake_ and stop_
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
};

// A simulated agent for tests and demos: walks the job through ATTESTED,
// RUNNING and OUTPUT_SUBMITTED with an empty output, then asks the gate. It
// marks nothing as attested for real; the audit trail says "fake provisioner".
std::unique_ptr<Provisioner> MakeFakeProvisioner(store::Store& db, Gate& gate, const Clock& clock);
std::unique_ptr<Provisioner> MakeNoneProvisioner();

}  // namespace cce::plane
