// The Privacy Mode job spec: what a consumer submits with `cce job submit -f job.yaml`.
// ParseJobSpec turns YAML or JSON text into a validated JobSpec, strictly (unknown fields,
// wrong types and unsupported YAML features are errors); JobSpecToJson gives its canonical
// form; ValidateAgainstLimits checks a parsed spec against one plane's configured limits.
// docs/jobspec.md is the user-facing reference; docs/jobspec.schema.json mirrors the rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace cce {

inline constexpr std::string_view kJobSpecApiVersion = "cce4long/v1";
inline constexpr std::string_view kJobSpecKind = "PrivacyJob";
inline constexpr size_t kMaxJobSpecBytes = size_t{1} << 20;  // larger input is rejected unread
inline constexpr size_t kMaxJobSpecErrors = 50;              // more are counted, not listed

// An image pinned by content.
struct ImageDigest {
  std::string digest;  // "sha256:" followed by 64 lowercase hex digits
  bool operator==(const ImageDigest&) const = default;
};

// An image by the name it was pushed under with `cce image push`; the plane pins it to a
// digest when the job is submitted.
struct ImageName {
  std::string name;            // [a-z0-9][a-z0-9._/-]*, at most 255 characters
  std::string tag = "latest";  // [A-Za-z0-9_.-]{1,128}; "latest" when the spec has none
  bool operator==(const ImageName&) const = default;
};

using ImageRef = std::variant<ImageDigest, ImageName>;

// "sha256:<hex>" or "name:tag": the form spec.image takes in canonical JSON.
std::string ImageRefToString(const ImageRef& image);

struct DatasetMount {
  std::string name;        // the dataset's catalog name
  std::string mount_path;  // absolute, normalized; read-only inside the job
  bool operator==(const DatasetMount&) const = default;
};

struct JobResources {
  // spec.resources.cpus × 1000. cpus has at most 3 decimals, so this is exact (0.5 → 500).
  int64_t cpu_millis = 1000;
  int64_t memory_mib = 1024;
  int64_t timeout_seconds = 3600;
  int64_t output_max_mib = 64;
  bool operator==(const JobResources&) const = default;
};

struct JobSpec {
  std::string name;                           // metadata.name
  std::map<std::string, std::string> labels;  // metadata.labels
  ImageRef image;
  std::vector<std::string> command;  // never empty; command[0] is non-empty
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::optional<std::string> working_dir;  // unset: the image's own working directory
  std::vector<DatasetMount> datasets;      // spec order; never empty
  JobResources resources;
  bool operator==(const JobSpec&) const = default;
};

// What one plane allows; the plane's configuration may lower or raise these.
struct PlaneLimits {
  int64_t max_cpus = 8;
  int64_t max_memory_mib = 65536;
  int64_t max_timeout_seconds = int64_t{7} * 24 * 3600;
  int64_t max_output_mib = 4096;
  int64_t max_datasets = 16;
};

// Parses and validates a job spec in YAML or JSON. On failure the status is
// kInvalidArgument and its message lists every error found, one per line, in document
// order ("job.yaml:12:5: spec.resources.cpus: expected a positive number, got string \"1\""),
// at most kMaxJobSpecErrors of them. source_name is the file name used in messages.
StatusOr<JobSpec> ParseJobSpec(std::string_view text, std::string_view source_name);

// Canonical JSON of a spec: one line, keys sorted, defaults filled in. It parses back with
// ParseJobSpec to an equal JobSpec.
std::string JobSpecToJson(const JobSpec& spec);

// kInvalidArgument naming each field over its limit ("spec.resources.cpus: 16 exceeds the
// plane's limit of 8"), one per line, each prefixed with "source_name: " when one is given.
Status ValidateAgainstLimits(const JobSpec& spec, const PlaneLimits& limits,
                             std::string_view source_name = {});

}  // namespace cce
