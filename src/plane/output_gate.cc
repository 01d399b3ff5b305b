#include "plane/output_gate.h"

#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>
#include <vector>

#include "crypto/crypto.h"
#include "gate/fingerprint.h"

namespace cce::plane {
namespace {

constexpr size_t kFingerprintKeyBytes = 32;
// A dataset's tabular plaintext fingerprinted at registration, at most.
constexpr uint64_t kMaxReferenceBytes = uint64_t{2} << 30;
constexpr uint64_t kMaxSealedIndexBytes = uint64_t{4} << 30;

bool Tabular(const std::string& path) {
  auto ends = [&](std::string_view s) {
    if (path.size() < s.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(path[path.size() - s.size() + i])) != s[i])
        return false;
    }
    return true;
  };
  return ends(".csv") || ends(".tsv") || ends(".jsonl") || ends(".ndjson");
}

// The plaintext of one dataset file, authenticated run by run, in memory only.
StatusOr<std::string> ReadPlaintext(const std::string& dir, const format::ManifestEntry& entry,
                                    const format::DatasetKey& key) {
  ASSIGN_OR_RETURN(format::OpenedObject obj, format::OpenObject(dir, entry, key));
  const format::Geometry& g = obj.cipher.geometry();
  std::string out(g.plaintext_size, '\0');
  // Runs of up to 256 blocks (1 MiB of plaintext): one pread and one OpenRun
  // each. A short read leaves `sealed` short, which OpenRun reports as a
  // truncated segment.
  constexpr uint64_t kRunBlocks = 256;
  std::vector<uint8_t> sealed(g.RunSealedSize(0, std::min(kRunBlocks, g.SegmentCount())));
  for (uint64_t first = 0; first < g.SegmentCount(); first += kRunBlocks) {
    const uint64_t count = std::min(kRunBlocks, g.SegmentCount() - first);
    const auto want = static_cast<size_t>(g.RunSealedSize(first, count));
    size_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(obj.fd.get(), sealed.data() + got, want - got,
                                static_cast<off_t>(g.SegmentOffset(first) + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return ErrnoStatus(entry.path + ": reading segment " + std::to_string(first), errno);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    Status opened = obj.cipher.OpenRun(
        first, count, crypto::ByteSpan(sealed.data(), got),
        std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()) + first * g.segment_size,
                           static_cast<size_t>(g.RunPlainSize(first, count))));
    if (!opened.ok()) {
      OPENSSL_cleanse(out.data(), out.size());
      return opened.WithContext(entry.path);
    }
  }
  OPENSSL_cleanse(sealed.data(), sealed.size());
  return out;
}

gate::Finding HoldFinding(std::string detector, std::string message) {
  gate::Finding f;
  f.detector = std::move(detector);
  f.message = std::move(message);
  f.score = 1;
  f.hard = true;
  return f;
}

}  // namespace

std::string OutputGate::PathFor(const std::string& dataset) const {
  return dir_ + "/" + dataset + ".sealed";
}

StatusOr<OutputGate::Sealed> OutputGate::Fingerprint(const std::string& dataset,
                                                     const std::string& dataset_dir,
                                                     const format::Manifest& manifest,
                                                     const format::DatasetKey& key) {
  crypto::SecretBytes fp_key(kFingerprintKeyBytes);
  RETURN_IF_ERROR(crypto::RandomBytes(std::span<uint8_t>(fp_key.data(), fp_key.size())));
  gate::ReferenceIndex::Builder builder(dataset, crypto::ByteSpan(fp_key.data(), fp_key.size()),
                                        policy_);
  FingerprintSummary summary;
  uint64_t total = 0;
  for (const format::ManifestEntry& e : manifest.entries) {
    if (e.type != format::ManifestEntry::Type::kFile || !Tabular(e.path)) continue;
    total += e.size;
    if (total > kMaxReferenceBytes) {
      return InvalidArgument("dataset '" + dataset + "': more than " +
                             std::to_string(kMaxReferenceBytes) +
                             " bytes of tabular files to fingerprint for the Output Gate");
    }
    ASSIGN_OR_RETURN(std::string plain, ReadPlaintext(dataset_dir, e, key));
    Status added = builder.AddFile(e.path, plain);
    OPENSSL_cleanse(plain.data(), plain.size());
    if (!added.ok()) {
      return InvalidArgument("dataset file '" + e.path +
                             "': cannot fingerprint it for the Output Gate: " + added.message());
    }
    ++summary.files;
  }
  ASSIGN_OR_RETURN(gate::ReferenceIndex index, builder.Finish());
  summary.rows = static_cast<int64_t>(index.rows());
  summary.cells = static_cast<int64_t>(index.cells());
  // Sealed: the key, then the index.
  std::string serialized = index.Serialize();
  crypto::SecretBytes plain(fp_key.size() + serialized.size());
  std::copy(fp_key.data(), fp_key.data() + fp_key.size(), plain.data());
  std::copy(serialized.begin(), serialized.end(), plain.data() + fp_key.size());
  OPENSSL_cleanse(serialized.data(), serialized.size());
  Sealed out;
  ASSIGN_OR_RETURN(out.bytes, master_key_.Seal(crypto::ByteSpan(plain.data(), plain.size()),
                                               "gate-fingerprints:" + dataset));
  out.summary = summary;
  return out;
}

Status OutputGate::StoreFingerprints(const std::string& dataset, const Sealed& sealed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(dir_, errno);
  return WriteFileAtomic(PathFor(dataset), sealed.bytes, 0600);
}

StatusOr<gate::ReferenceIndex> OutputGate::LoadIndex(const std::string& dataset) {
  ASSIGN_OR_RETURN(std::string sealed, ReadFile(PathFor(dataset), kMaxSealedIndexBytes));
  ASSIGN_OR_RETURN(
      crypto::SecretBytes plain,
      master_key_.Open(
          crypto::ByteSpan(reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size()),
          "gate-fingerprints:" + dataset));
  if (plain.size() < kFingerprintKeyBytes) return DataLoss(PathFor(dataset) + ": too short");
  return gate::ReferenceIndex::Deserialize(
      std::string_view(reinterpret_cast<const char*>(plain.data()) + kFingerprintKeyBytes,
                       plain.size() - kFingerprintKeyBytes),
      crypto::ByteSpan(plain.data(), kFingerprintKeyBytes));
}

StatusOr<std::string> OutputGate::ReadBundle(const std::string& job_id, const std::string& digest) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputReader> reader, outputs_.Open(job_id, digest));
  if (reader->size() > policy_.max_bundle_bytes + (uint64_t{64} << 20)) {
    return ResourceExhausted("output of " + std::to_string(reader->size()) +
                             " bytes is over the gate's max_bundle_bytes");
  }
  std::string out;
  out.reserve(reader->size());
  for (;;) {
    ASSIGN_OR_RETURN(crypto::ByteSpan piece, reader->Next());
    if (piece.empty()) break;
    out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
  }
  return out;
}

StatusOr<GateDecision> OutputGate::Score(const store::Output& output) {
  const auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(store::Job job, db_.GetJob(output.job_id));
  gate::ScanInputs in;
  auto bundle = ReadBundle(job.id, output.digest);
  if (bundle.status().code() == StatusCode::kResourceExhausted) {
    in.findings.push_back(HoldFinding("limits", bundle.status().message()));
  } else if (!bundle.ok()) {
    return bundle.status();
  } else {
    auto files = gate::ReadOutputBundle(*bundle, policy_);
    OPENSSL_cleanse(bundle->data(), bundle->size());
    if (!files.ok()) {
      in.findings.push_back(
          HoldFinding("type", "the bundle cannot be read: " + files.status().message()));
    } else {
      in.files = std::move(*files);
    }
  }
  std::vector<gate::ReferenceIndex> refs;
  for (const std::string& ds : job.datasets) {
    auto index = LoadIndex(ds);
    if (!index.ok()) {
      log_.Warn("gate.reference",
                {{"job", job.id}, {"dataset", ds}, {"error", index.status().message()}});
      in.findings.push_back(HoldFinding(
          "gate.reference", "no fingerprints of dataset '" + ds +
                                "' (registered without a file:// location, or unreadable): copies "
                                "cannot be ruled out"));
      continue;
    }
    refs.push_back(std::move(*index));
  }
  for (const gate::ReferenceIndex& r : refs) in.references.push_back(&r);
  if (policy_.differencing) {
    store::JobFilter filter;
    filter.consumer_id = job.consumer_id;
    filter.state = store::JobState::kReleased;
    filter.limit = 200;
    ASSIGN_OR_RETURN(std::vector<store::Job> released, db_.ListJobs(filter));
    const std::set<std::string> mine(job.datasets.begin(), job.datasets.end());
    int64_t used = 0;
    for (const store::Job& earlier : released) {
      if (earlier.id == job.id || used >= kHistoryJobs) continue;
      if (std::none_of(earlier.datasets.begin(), earlier.datasets.end(),
                       [&](const std::string& d) { return mine.count(d) > 0; })) {
        continue;
      }
      auto out = db_.GetOutput(earlier.id);
      if (!out.ok()) continue;
      auto bytes = ReadBundle(earlier.id, out->digest);
      if (!bytes.ok()) continue;
      auto files = gate::ReadOutputBundle(*bytes, policy_);
      OPENSSL_cleanse(bytes->data(), bytes->size());
      if (!files.ok()) continue;
      for (gate::Table& t : gate::ExtractTables(*files, policy_)) {
        t.file = "job " + earlier.id + ": " + t.file;
        in.released_tables.push_back(std::move(t));
      }
      ++used;
    }
  }
  gate::Report report = gate::Scan(in, policy_);
  for (gate::OutputFile& f : in.files) OPENSSL_cleanse(f.bytes.data(), f.bytes.size());
  GateDecision d;
  d.verdict = report.verdict == gate::Verdict::kRelease ? store::GateVerdict::kRelease
                                                        : store::GateVerdict::kHold;
  d.score = report.score;
  d.findings_json = gate::ReportToJson(report)["findings"].dump();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log_.Info("gate.scan", {{"job", job.id},
                          {"verdict", std::string(gate::VerdictName(report.verdict))},
                          {"score", std::to_string(report.score)},
                          {"findings", std::to_string(report.findings.size())},
                          {"items", std::to_string(report.files)},
                          {"bytes", std::to_string(report.bytes_scanned)},
                          {"ms", std::to_string(static_cast<int64_t>(ms))}});
  return d;
}

}  // namespace cce::plane
