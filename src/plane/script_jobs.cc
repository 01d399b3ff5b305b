// The ScriptJobs service (docs/explore/script-jobs.md): a consumer's script
// on a curated base image becomes an ordinary Privacy Mode job. The derived
// image is stored through Images (the push path: blob records in the
// caller's scope, the quota, a tag) and the job through Jobs::Submit (the
// rental check, spec validation and audit every job gets).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "image/image.h"
#include "plane/script_image.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using script_image::CheckScriptName;
using script_image::DecodeBase64;
using script_image::GzipBytes;
using script_image::OneFileTar;
using store::AuditDecision;

// The job name a script gets when the request names none: its stem in
// lower case, other characters as '-', as a metadata.name.
std::string DefaultJobName(const std::string& script) {
  std::string stem = script.substr(0, script.rfind('.'));
  std::string out;
  for (char c : stem) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (word) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= 63) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "script" : out;
}

// A metadata.name ([a-z0-9][a-z0-9-]{0,62}) as one OCI name component (no
// repeated or trailing '-').
std::string ImageComponent(const std::string& job_name) {
  std::string out;
  for (char c : job_name) {
    if (c == '-' && (out.empty() || out.back() == '-')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "script" : out;
}

// An anonymous file holding `bytes`, beside the blob store when it can be
// (so Images::PutBlob links it into place instead of copying).
StatusOr<UniqueFd> BlobFile(const std::string& dir, const std::string& bytes) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid()) fd.reset(::memfd_create("cce-script-blob", MFD_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("script job: temporary blob file", errno);
  RETURN_IF_ERROR(PwriteFull(fd.get(), crypto::AsBytes(bytes), 0));
  return fd;
}

// The digest of the public (library/) image `ref` names: "sha256:<hex>" of
// a manifest a public tag points at, or NAME:TAG (no tag: latest) looked up
// as library/NAME only, never in any user's scope.
StatusOr<std::string> ResolvePublicImage(store::Store& db, const ScriptBase& base) {
  const std::string field = "base '" + base.name + "': image " + image::QuoteName(base.image);
  const std::string how =
      ": bases are public images an operator pushed under library/ (docs/explore/script-jobs.md)";
  if (base.image.starts_with("sha256:")) {
    ASSIGN_OR_RETURN(auto images, db.ListImages({}));
    for (const auto& i : images) {
      if (i.is_public && i.digest == base.image) return i.digest;
    }
    return FailedPrecondition(field + " is not the digest of a public image on the plane" + how);
  }
  std::string name = base.image;
  std::string tag = "latest";
  const size_t colon = name.rfind(':');
  if (colon != std::string::npos && name.find('/', colon) == std::string::npos) {
    tag = name.substr(colon + 1);
    name.resize(colon);
  }
  if (!name.starts_with("library/")) name = "library/" + name;
  auto img = db.GetImage(store::kPublicImageScope, name, tag);
  if (img.ok()) return img->digest;
  if (img.status().code() != StatusCode::kNotFound) return img.status();
  return FailedPrecondition(field + ": no public image " + name + ":" + tag + " on the plane" +
                            how);
}

struct DerivedImage {
  std::string layer;  // gzip
  image::Digest layer_digest;
  image::Digest diff_id;
  std::string config;
  image::Digest config_digest;
  std::string manifest;
  image::Digest manifest_digest;
};

// The base's manifest and config plus one layer holding `script_path`.
StatusOr<DerivedImage> Derive(const image::BlobStore& blobs, const std::string& base_digest,
                              const ScriptBase& base, const std::string& script_name,
                              const std::string& content) {
  ASSIGN_OR_RETURN(image::Digest md, image::Digest::Parse(base_digest));
  ASSIGN_OR_RETURN(UniqueFd mfd, blobs.Open(md));
  ASSIGN_OR_RETURN(std::string manifest_text, ReadAll(mfd.get(), image::kMaxJsonBytes, md.str()));
  // The base was validated when it was tagged; read again with the same
  // rules for its config and layer list.
  ASSIGN_OR_RETURN(
      image::ManifestInfo info,
      image::ValidateStoredManifest(manifest_text, blobs, image::kDefaultMaxImageBytes));
  ASSIGN_OR_RETURN(UniqueFd cfd, blobs.Open(info.config.digest));
  ASSIGN_OR_RETURN(std::string config_text,
                   ReadAll(cfd.get(), image::kMaxJsonBytes, info.config.digest.str()));
  json manifest = json::parse(manifest_text, nullptr, false);
  json config = json::parse(config_text, nullptr, false);
  if (!manifest.is_object() || !config.is_object() || !config.contains("rootfs") ||
      !config["rootfs"].is_object() || !config["rootfs"].contains("diff_ids") ||
      !config["rootfs"]["diff_ids"].is_array() ||
      (config.contains("config") && !config["config"].is_object()) ||
      (config.contains("history") && !config["history"].is_array())) {
    return FailedPrecondition("base '" + base.name + "': image " + md.str() +
                              " has a manifest or config this plane cannot extend");
  }
  DerivedImage out;
  const std::string tar = OneFileTar(base.workdir.substr(1), script_name, content);
  out.diff_id = image::Digest::Of(tar);
  ASSIGN_OR_RETURN(out.layer, GzipBytes(tar));
  out.layer_digest = image::Digest::Of(out.layer);

  config["rootfs"]["diff_ids"].push_back(out.diff_id.str());
  if (!config.contains("config")) config["config"] = json::object();
  config["config"]["WorkingDir"] = base.workdir;
  config["config"].erase("Cmd");
  if (config.contains("history")) {
    config["history"].push_back(
        {{"created_by", "cce job submit --script: " + base.workdir + "/" + script_name}});
  }
  out.config = config.dump();
  out.config_digest = image::Digest::Of(out.config);

  const bool docker = info.media_type == image::kDockerManifest;
  json config_desc = manifest["config"];
  config_desc["digest"] = out.config_digest.str();
  config_desc["size"] = out.config.size();
  manifest["config"] = config_desc;
  manifest["layers"].push_back(
      {{"mediaType", docker ? image::kDockerLayerTarGzip : image::kOciLayerTarGzip},
       {"digest", out.layer_digest.str()},
       {"size", out.layer.size()}});
  out.manifest = manifest.dump();
  out.manifest_digest = image::Digest::Of(out.manifest);
  return out;
}

}  // namespace

api::BaseList ScriptJobs::Bases() const {
  api::BaseList out;
  for (const auto& b : d_.script_bases) out.bases.push_back({b.name, b.image, b.command});
  return out;
}

StatusOr<Jobs::Submitted> ScriptJobs::Submit(const Caller& caller,
                                             const api::ScriptJobRequest& request,
                                             const std::string& idempotency_key) {
  const auto base_it = std::find_if(d_.script_bases.begin(), d_.script_bases.end(),
                                    [&](const ScriptBase& b) { return b.name == request.base; });
  if (base_it == d_.script_bases.end()) {
    std::string known;
    for (const auto& b : d_.script_bases) known += (known.empty() ? "" : ", ") + b.name;
    return InvalidArgument("body.base: unknown base " + image::QuoteName(request.base) +
                           " (this plane has " +
                           (known.empty() ? "none: jobs.script_bases in plane.yaml" : known) +
                           "; GET /api/v1/explore/bases, cce job bases)");
  }
  const ScriptBase& base = *base_it;
  RETURN_IF_ERROR(CheckScriptName(request.script.name));
  ASSIGN_OR_RETURN(std::string content, DecodeBase64(request.script.content_base64, kMaxScriptBytes,
                                                     "body.script.content_base64"));
  const std::string script_path = base.workdir + "/" + request.script.name;
  const std::string job_name =
      request.name.empty() ? DefaultJobName(request.script.name) : request.name;

  ASSIGN_OR_RETURN(std::string base_digest, ResolvePublicImage(d_.db, base));
  ASSIGN_OR_RETURN(DerivedImage derived,
                   Derive(d_.blobs, base_digest, base, request.script.name, content));

  // The job spec: everything a spec says, from the request; checked now,
  // before any blob is stored, and again by Jobs::Submit.
  json command = base.command;
  command.push_back(script_path);
  json datasets = json::array();
  for (const auto& d : request.datasets) {
    datasets.push_back(
        {{"name", d.name}, {"mountPath", d.mount_path.empty() ? "/data/" + d.name : d.mount_path}});
  }
  json spec = {{"image", derived.manifest_digest.str()},
               {"command", command},
               {"workingDir", base.workdir},
               {"datasets", datasets}};
  if (!request.args.empty()) spec["args"] = request.args;
  if (request.resources) {
    json r = api::ToJson(*request.resources);
    if (!r.empty()) spec["resources"] = r;
  }
  const std::string spec_text = json{
      {"apiVersion", std::string(kJobSpecApiVersion)},
      {"kind", std::string(kJobSpecKind)},
      {"metadata", {{"name", job_name}}},
      {"spec", spec}}.dump(2, ' ', false, json::error_handler_t::replace);
  {
    auto parsed = ParseJobSpec(spec_text, "script job spec");
    if (!parsed.ok()) {
      return InvalidArgument(parsed.status().message() +
                             "\n(the script job's spec is made from the request body: "
                             "metadata.name is body.name, spec.datasets is body.datasets, "
                             "spec.resources is body.resources, spec.args is body.args)");
    }
    RETURN_IF_ERROR(ValidateAgainstLimits(*parsed, d_.job_limits, "script job spec"));
  }

  // Stored as a push stores an image: layer, config, then the tag.
  ASSIGN_OR_RETURN(UniqueFd layer_fd, BlobFile(images_.blob_upload_dir(), derived.layer));
  RETURN_IF_ERROR(images_.PutBlob(caller, derived.layer_digest.str(), layer_fd.get()).status());
  ASSIGN_OR_RETURN(UniqueFd config_fd, BlobFile(images_.blob_upload_dir(), derived.config));
  RETURN_IF_ERROR(images_.PutBlob(caller, derived.config_digest.str(), config_fd.get()).status());
  const std::string image_name = "script/" + ImageComponent(job_name);
  const std::string image_tag(derived.manifest_digest.hex().substr(0, 12));
  const bool tag_existed = d_.db.GetImage(caller.user.id, image_name, image_tag).ok();
  RETURN_IF_ERROR(images_.Tag(caller, image_name, image_tag, derived.manifest).status());

  auto submitted = jobs_.Submit(caller, spec_text, idempotency_key, "script job spec");
  if (!submitted.ok()) {
    // A refused job leaves no image of its own behind (the blobs go with
    // the next collection).
    if (!tag_existed) (void)images_.Untag(caller, image_name, image_tag);
    return submitted.status();
  }
  if (!submitted->created) return submitted;  // an idempotent replay: recorded the first time
  const std::string script_sha256 = crypto::ToHex(crypto::Sha256(crypto::AsBytes(content)));
  Status recorded = audit_.Append(audit_.Record(caller.actor(), "job.script.submit",
                                                "job:" + submitted->job.id, AuditDecision::kAllow,
                                                {{"base", base.name},
                                                 {"base_image", base_digest},
                                                 {"script", script_path},
                                                 {"script_sha256", script_sha256},
                                                 {"image", derived.manifest_digest.str()},
                                                 {"image_ref", image_name + ":" + image_tag}}));
  if (!recorded.ok()) {
    // Fail closed: a script job whose provenance is not in the audit log
    // does not run.
    auto cancelled = jobs_.Cancel(caller, submitted->job.id);
    d_.log.Error("job.script.submit", {{"job", submitted->job.id},
                                       {"error", recorded.message()},
                                       {"cancelled", cancelled.ok() ? "yes" : "no"}});
    return recorded;
  }
  d_.log.Info(
      "job.script.submit",
      {{"job", submitted->job.id}, {"base", base.name}, {"image", derived.manifest_digest.str()}});
  return submitted;
}

}  // namespace cce::plane
