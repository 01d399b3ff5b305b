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
#include "plane/gate.h"
#include "plane/log.h"
#include "plane/output_store.h"
#include "plane/provisioner.h"
#include "store/store.h"

namespace cce::plane {

class Rentals;  // services.h

struct EngineDeps {
  store::Store* db = nullptr;
  Rentals* rentals = nullptr;  // the one rental-coverage check
  std::string ledger_backend = "embedded";
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
  // Fails jobs whose deadline has passed (and destroys their VMs); returns
  // how many.
  int ExpireOverdue();
  // Destroys the provisioner's VMs whose jobs have left PROVISIONING,
  // ATTESTED and RUNNING (cancelled, failed, output submitted); returns how
  // many. Run on every pass of the engine's thread.
  int DestroyFinished();
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

}  // namespace cce::plane
