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
#include "plane/output_store.h"
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
  // Called once the job is persisted as PROVISIONING.
  virtual Status Provision(const store::Job& job, const std::string& credential) = 0;
  // Called once after a plane restart for each job left in PROVISIONING,
  // ATTESTED or RUNNING: the backend reattaches to the job's VM (never starts
  // a second one) or fails the job. The credential is not re-issued: a key
  // release moves the job PROVISIONING -> ATTESTED by compare-and-set, so at
  // most one VM can ever receive the job's keys.
  virtual Status Resume(const store::Job& job) = 0;
};

struct EngineDeps {
  store::Store* db = nullptr;
  ledger::Ledger* ledger = nullptr;
  const crypto::Ed25519PrivateKey* signing_key = nullptr;
  Provisioner* provisioner = nullptr;
  Gate* gate = nullptr;
  const Clock* clock = nullptr;
  Logger* log = nullptr;
  int64_t credential_ttl_seconds = 3600;
  // A signed audit checkpoint after this many new entries (0: never; the
  // plane also checkpoints at shutdown).
  int64_t audit_checkpoint_every = 100;
};

class JobEngine {
 public:
  explicit JobEngine(EngineDeps deps);
  ~JobEngine();  // stops the thread
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  // Resumes jobs a previous run left mid-way, then works in the background.
  void Start();
  void Stop();  // waits for the current pass to finish; idempotent
  void Wake();  // a job was submitted or an output arrived
  // One pass over every job that needs work (also used by tests).
  void RunOnce();
  // Resumes jobs left in PROVISIONING, ATTESTED or RUNNING (called by Start).
  void Recover();
  // Fails jobs whose deadline has passed; returns how many.
  int ExpireOverdue();
  // Signs a checkpoint of the audit log's head if enough entries are new.
  void MaybeCheckpoint(bool force);

 private:
  void Advance(store::Job job);
  Status Authorize(const store::Job& job);
  Status IssueAndProvision(const store::Job& job);
  Status ApplyGate(const store::Job& job);
  Status Fail(const store::Job& job, const std::string& reason);
  store::AuditRecord Audit(const std::string& action, const std::string& job_id,
                           store::AuditDecision d, const std::string& details = "{}") const;

  static constexpr size_t kWorkers = 8;  // jobs advanced in parallel per pass

  EngineDeps deps_;
  std::thread thread_;
  std::mutex mu_;  // guards wake_ and stop_
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  int64_t checkpointed_seq_ = -1;  // engine thread only
};

// A simulated agent for tests and demos: walks the job from wherever it is
// through ATTESTED and RUNNING to OUTPUT_SUBMITTED with a small text output
// (sealed in `outputs`); the engine then asks the gate. It attests nothing and
// reads no data; every step's audit entry and reason say "fake provisioner".
std::unique_ptr<Provisioner> MakeFakeProvisioner(store::Store& db, OutputStore& outputs,
                                                 const Clock& clock);
std::unique_ptr<Provisioner> MakeNoneProvisioner();

}  // namespace cce::plane
