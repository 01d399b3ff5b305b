// Provisioners start the (confidential) VM for a job and hand it the job
// credential. Backends: `none` (jobs wait in PROVISIONING for an agent),
// `local` (local_provisioner.h: the agent in fresh namespaces standing in for
// a VM; `qemu` and `kubernetes` are designed in docs/provisioners.md), and
// `fake`, which plays the agent's part in-process for tests and demos (no
// data is touched; the plane logs it loudly at every start).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "plane/output_store.h"
#include "store/store.h"

namespace cce::plane {

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
  // Destroys the job's VM and everything it held (processes, mounts,
  // network, cgroups, directories) and returns once it is gone. Called by
  // the engine when the job fails on its deadline and, through Active(),
  // once a job has left PROVISIONING/ATTESTED/RUNNING (cancelled, failed,
  // output submitted...). Idempotent; an unknown job is a no-op.
  virtual void Destroy(const std::string& job_id) { (void)job_id; }
  // The jobs this backend holds a VM (or what is left of one) for.
  virtual std::vector<std::string> Active() const { return {}; }
};

std::unique_ptr<Provisioner> MakeNoneProvisioner();
// A simulated agent for tests and demos: walks the job from wherever it is
// through ATTESTED and RUNNING to OUTPUT_SUBMITTED with a small text output
// (sealed in `outputs`); the engine then asks the gate. It attests nothing and
// reads no data; every step's audit entry and reason say "fake provisioner".
// output_bytes > 0 (tests): the output is that many bytes of a repeating
// pattern instead, sealed as it is generated (never whole in memory).
std::unique_ptr<Provisioner> MakeFakeProvisioner(store::Store& db, OutputStore& outputs,
                                                 const Clock& clock, uint64_t output_bytes = 0);

}  // namespace cce::plane
