#include "agent/job_runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>

#include "agent/bundle.h"
#include "agent/dataset_mounts.h"
#include "agent/image_fetch.h"
#include "agent/plane_agent_client.h"
#include "base/fd.h"
#include "jobspec/jobspec.h"

namespace cce::agent {
namespace {

using nlohmann::json;

Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) return ErrnoStatus("mkdir " + path, errno);
  // mkdir's mode is filtered by the umask; the container's mapped user must
  // traverse some of these, so set it exactly.
  if (chmod(path.c_str(), mode) != 0) return ErrnoStatus("chmod " + path, errno);
  return Status::Ok();
}

// The job's resources on top of the agent's base policy. The container's
// own timeout ends a little before the job's deadline, so the agent still
// has time to submit what it produced.
executor::IsolationPolicy PolicyFor(const JobSpec& spec, const executor::IsolationPolicy& base,
                                    int64_t deadline) {
  executor::IsolationPolicy p = base;
  p.memory_mib = static_cast<uint64_t>(spec.resources.memory_mib);
  p.cpus = static_cast<double>(spec.resources.cpu_millis) / 1000.0;
  p.output_max_bytes = static_cast<uint64_t>(spec.resources.output_max_mib) << 20;
  constexpr int64_t kSubmitMargin = 30;  // seconds kept for packing and upload
  const int64_t left = deadline - static_cast<int64_t>(std::time(nullptr)) - kSubmitMargin;
  p.timeout_seconds = std::max<int64_t>(1, std::min(spec.resources.timeout_seconds, left));
  return p;
}

class Runner {
 public:
  explicit Runner(const AgentConfig& c) : c_(c) {}

  StatusOr<AgentOutcome> Run() {
    Step("attest", {{"quote_provider", c_.quotes->name()}, {"simulated", c_.quotes->simulated()}});
    ASSIGN_OR_RETURN(KbsSession session, AttestTee(c_.plane, c_.credential, *c_.quotes));
    out_.job_id = session.job_id;
    Step("attested", {{"job", session.job_id},
                      {"simulated_tee", session.simulated_tee},
                      {"tcb_status", session.tcb_status}});
    ASSIGN_OR_RETURN(PlaneAgentClient plane, PlaneAgentClient::Create(c_.plane, session.session));
    Status ran = RunAttested(session, plane);
    if (!ran.ok()) {
      // The reason is our own message (steps, paths, plane refusals): it
      // never carries key bytes or plaintext.
      Status told = plane.ReportFailed(ran.ToString());
      if (!told.ok()) Step("report_failed_error", {{"error", told.ToString()}});
      return ran;
    }
    return out_;
  }

 private:
  Status RunAttested(KbsSession& session, PlaneAgentClient& plane) {
    ASSIGN_OR_RETURN(api::AgentJob job, plane.FetchJob());
    if (job.job_id != session.job_id) {
      return PermissionDenied("plane: the job document is for " + job.job_id + ", not " +
                              session.job_id);
    }
    ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(job.spec, "job " + job.job_id + " spec"));
    Step("job", {{"job", job.job_id},
                 {"image", job.image_digest},
                 {"datasets", json(spec.datasets.size())}});

    std::vector<std::string> names;
    for (const auto& d : job.datasets) names.push_back(d.name);
    ASSIGN_OR_RETURN(DatasetKeys keys, ReleaseDatasetKeys(c_.plane, session, names));
    Step("keys", {{"datasets", names}});

    RETURN_IF_ERROR(MakeDir(c_.work_dir + "/data", 0755));
    std::vector<DatasetSource> sources;
    std::vector<executor::DataMount> data;
    for (const auto& d : job.datasets) {
      const std::string mnt = c_.work_dir + "/data/" + d.name;
      RETURN_IF_ERROR(MakeDir(mnt, 0755));
      sources.push_back({d.name, d.location, mnt});
      data.push_back({d.name, mnt, d.mount_path});
    }
    ASSIGN_OR_RETURN(DatasetMounts mounts,
                     DatasetMounts::Mount(c_.decryptfs_binary, sources, keys.keys, keys.pins));
    keys.keys.clear();  // wiped: the cce-decryptfs servers hold their own copies
    Step("mounted", {{"datasets", names}});

    const std::string layout = c_.work_dir + "/image";
    RETURN_IF_ERROR(FetchImageLayout(plane, job.image_digest, layout));
    Step("image", {{"digest", job.image_digest}});

    RETURN_IF_ERROR(plane.ReportRunning());
    executor::SandboxRequest req;
    req.image = {executor::ImageRef::Kind::kOciLayout, layout, ""};
    req.expected_manifest_digest = job.image_digest;
    req.command = spec.command;
    req.command.insert(req.command.end(), spec.args.begin(), spec.args.end());
    for (const auto& [k, v] : spec.env) req.env.push_back(k + "=" + v);
    req.data = data;
    req.output_dir = c_.work_dir + "/result";
    req.work_dir = c_.work_dir + "/sandbox";
    RETURN_IF_ERROR(MakeDir(req.work_dir, 0711));
    req.policy = PolicyFor(spec, c_.base_policy, job.deadline);
    req.job_id = job.job_id;
    Step("running",
         {{"timeout_seconds", req.policy.timeout_seconds}, {"memory_mib", req.policy.memory_mib}});
    auto result = executor::RunSandbox(req, c_.sandbox_host);
    Status unmounted = mounts.UnmountAll();
    if (!result.ok()) return result.status();
    RETURN_IF_ERROR(unmounted);
    out_.sandbox = *result;
    Step("finished", {{"exit_code", result->exit_code},
                      {"signal", result->signal},
                      {"timed_out", result->timed_out},
                      {"oom_killed", result->oom_killed},
                      {"files", result->output.files.size()},
                      {"seconds", result->seconds}});

    const json summary = {{"job", job.job_id},
                          {"exit_code", result->exit_code},
                          {"signal", result->signal},
                          {"timed_out", result->timed_out},
                          {"oom_killed", result->oom_killed},
                          {"seconds", result->seconds},
                          {"image", job.image_digest},
                          {"simulated_tee", session.simulated_tee},
                          {"tcb_status", session.tcb_status}};
    const std::string bundle_path = c_.work_dir + "/bundle.tar";
    UniqueFd bundle(
        open(bundle_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!bundle.valid()) return ErrnoStatus("bundle: create " + bundle_path, errno);
    BundleLimits limits;
    limits.max_bytes = req.policy.output_max_bytes + req.policy.max_stdout_bytes +
                       req.policy.max_stderr_bytes + (1 << 20);
    ASSIGN_OR_RETURN(PackedBundle packed, PackBundle(req.output_dir, bundle.get(), limits,
                                                     "result.json", summary.dump(2) + "\n"));
    Step("packed", {{"bytes", packed.size}, {"files", packed.files}});
    ASSIGN_OR_RETURN(std::string digest,
                     plane.SubmitOutput(bundle.get(), packed.size, *session.tee_key, job.job_id));
    out_.output_submitted = true;
    out_.bundle_digest = digest;
    out_.bundle_size = packed.size;
    Step("submitted", {{"digest", digest}});
    return Status::Ok();
  }

  void Step(const std::string& name, const json& details) {
    if (c_.progress) c_.progress(name, details);
  }

  const AgentConfig& c_;
  AgentOutcome out_;
};

}  // namespace

StatusOr<AgentOutcome> RunJob(const AgentConfig& config) {
  if (config.quotes == nullptr) return InvalidArgument("agent: no quote provider");
  if (config.credential.empty()) return InvalidArgument("agent: empty job credential");
  return Runner(config).Run();
}

}  // namespace cce::agent
