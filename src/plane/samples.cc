// The Samples service: a dataset owner publishes a desensitized sample (a
// tar of its directory), the plane unpacks it beside the previous version
// and records it with its audit entry; the owner and the dataset's current
// renters list and fetch it. The read rule is one function, CheckRead,
// built on the same rental check job submission uses.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>

#include "plane/sample_tar.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;

constexpr std::string_view kPublish = "dataset.sample.publish";
constexpr std::string_view kRead = "dataset.sample.read";
constexpr uint64_t kMaxListingBytes = uint64_t{16} << 20;

std::string Object(const std::string& dataset) {
  return "dataset:" + dataset;
}

std::string VersionName(int64_t version) {
  return "v" + std::to_string(version);
}

std::string DigestText(const crypto::Sha256Digest& d) {
  return "sha256:" + crypto::ToHex(d);
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus(path, errno);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(path + ": not a directory");
  return Status::Ok();
}

StatusOr<UniqueFd> OpenDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(path, errno);
  return fd;
}

Status WriteFileAt(int dir_fd, const std::string& name, const std::string& text) {
  UniqueFd f(
      ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!f.valid()) return ErrnoStatus(name, errno);
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t w = ::write(f.get(), text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(name, errno);
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(f.get()) != 0) return ErrnoStatus(name, errno);
  return Status::Ok();
}

StatusOr<std::string> ReadFileAt(int dir_fd, const std::string& name, uint64_t max) {
  UniqueFd f(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!f.valid()) {
    if (errno == ENOENT) return NotFound(name + ": absent");
    return ErrnoStatus(name, errno);
  }
  std::string out;
  std::array<char, 64 * 1024> buf{};
  for (;;) {
    const ssize_t n = ::read(f.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(name, errno);
    }
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max) return DataLoss(name + ": too large");
    out.append(buf.data(), static_cast<size_t>(n));
  }
}

std::string RandomSuffix() {
  std::array<uint8_t, 8> b{};
  if (!crypto::RandomBytes(b).ok()) std::abort();  // never guess a name
  return crypto::ToHex(b);
}

// The tar read from `fd` a piece at a time; the piece stays valid until the
// next call (BundleTar::Source's contract).
BundleTar::Source FdSource(int fd) {
  auto buf = std::make_shared<std::vector<uint8_t>>(256 * 1024);
  return [fd, buf]() -> StatusOr<crypto::ByteSpan> {
    for (;;) {
      const ssize_t n = ::read(fd, buf->data(), buf->size());
      if (n >= 0) return crypto::ByteSpan(buf->data(), static_cast<size_t>(n));
      if (errno != EINTR) return ErrnoStatus("the uploaded sample", errno);
    }
  };
}

}  // namespace

uint64_t Samples::max_upload_bytes() const {
  // Each member: a 512-byte header, up to 511 bytes of padding and a pax
  // header of its own (1 KiB more for long names); plus the end blocks.
  constexpr uint64_t kPerMember = 2048 + 512;
  return static_cast<uint64_t>(std::max<int64_t>(d_.max_sample_bytes, 0)) +
         (2 * kMaxFiles + 16) * kPerMember + (uint64_t{1} << 20);
}

std::string Samples::DatasetDir(int64_t dataset_id) const {
  return d_.samples_dir + "/" + std::to_string(dataset_id);
}

StatusOr<store::Dataset> Samples::LoadDataset(const std::string& name) {
  if (d_.samples_dir.empty()) {
    return FailedPrecondition("dataset samples are not configured on this plane");
  }
  auto d = d_.db.GetDatasetByName(name);
  if (!d.ok() && d.status().code() == StatusCode::kNotFound) {
    return NotFound("no dataset named '" + name + "'");
  }
  return d;
}

Status Samples::CheckRead(const Caller& caller, const store::Dataset& dataset,
                          const std::string& action) {
  if (caller.user.id == dataset.owner_id) return Status::Ok();
  const std::string object = Object(dataset.name);
  const std::string served =
      "dataset '" + dataset.name +
      "': its sample is served to its owner and to consumers with an active rental";
  if (caller.user.role != store::Role::kConsumer) {
    return audit_.Deny(caller.actor(), action, object, PermissionDenied(served),
                       {{"role", std::string(store::RoleName(caller.user.role))}});
  }
  const Status refused =
      PermissionDenied(served + "; rent it: cce rent " + dataset.name + " --days N");
  const int64_t now = d_.clock.NowUnix();
  Status covered = rentals_.CheckCoverage(caller.user.id, {dataset.name}, now, now + 1);
  if (covered.code() == StatusCode::kPermissionDenied) {
    return audit_.Deny(caller.actor(), action, object, refused, {{"at", now}});
  }
  if (!covered.ok()) return audit_.Deny(caller.actor(), action, object, covered);
  return Status::Ok();
}

Status Samples::AdmitPublish(const Caller& caller, const std::string& dataset,
                             std::optional<uint64_t> content_length) {
  ASSIGN_OR_RETURN(store::Dataset d, LoadDataset(dataset));
  if (caller.user.id != d.owner_id) {
    return audit_.Deny(
        caller.actor(), std::string(kPublish), Object(d.name),
        PermissionDenied("dataset '" + d.name + "': only its owner may publish its sample"));
  }
  if (content_length && *content_length > max_upload_bytes()) {
    return audit_.Deny(caller.actor(), std::string(kPublish), Object(d.name),
                       ResourceExhausted("the sample's tar is " + std::to_string(*content_length) +
                                         " bytes, at most " + std::to_string(max_upload_bytes()) +
                                         " accepted (explore.max_sample_bytes)"));
  }
  RETURN_IF_ERROR(MakeDir(d_.samples_dir, 0700));
  return MakeDir(upload_dir(), 0700);
}

StatusOr<api::SampleInfo> Samples::Publish(const Caller& caller, const std::string& dataset,
                                           int tar_fd) {
  RETURN_IF_ERROR(AdmitPublish(caller, dataset, std::nullopt));
  ASSIGN_OR_RETURN(store::Dataset d, LoadDataset(dataset));
  const std::string actor = caller.actor();
  const std::string object = Object(d.name);
  const std::string dir = DatasetDir(d.id);
  std::lock_guard<std::mutex> lock(publish_mu_);
  RETURN_IF_ERROR(MakeDir(dir, 0755));
  ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenDir(dir));
  const std::string tmp = ".tmp-" + RandomSuffix();
  if (::mkdirat(dir_fd.get(), tmp.c_str(), 0700) != 0) return ErrnoStatus(dir + "/" + tmp, errno);
  // Whatever happens below, the temporary directory does not outlive it.
  struct TmpRemover {
    int fd;
    std::string name;
    ~TmpRemover() { (void)RemoveSampleTree(fd, name); }
  } remove_tmp{dir_fd.get(), tmp};

  if (::lseek(tar_fd, 0, SEEK_SET) < 0) return ErrnoStatus("the uploaded sample", errno);
  auto unpacked = [&]() -> StatusOr<UnpackedSample> {
    ASSIGN_OR_RETURN(UniqueFd tmp_fd, OpenDir(dir + "/" + tmp));
    SampleLimits limits;
    limits.max_files = kMaxFiles;
    limits.max_bytes = static_cast<uint64_t>(std::max<int64_t>(d_.max_sample_bytes, 0));
    return UnpackSampleTar(FdSource(tar_fd), tmp_fd.get(), "sample of '" + d.name + "'", limits);
  }();
  if (!unpacked.ok()) {
    const StatusCode code = unpacked.status().code();
    if (code == StatusCode::kInvalidArgument || code == StatusCode::kResourceExhausted) {
      return audit_.Deny(actor, std::string(kPublish), object, unpacked.status());
    }
    return unpacked.status();
  }

  int64_t version = 1;
  auto latest = d_.db.GetLatestSample(d.id);
  if (latest.ok()) {
    version = latest->version + 1;
  } else if (latest.status().code() != StatusCode::kNotFound) {
    return latest.status();
  }
  const std::string name = VersionName(version);
  json listing = {{"dataset_id", d.id}, {"version", version}, {"files", json::array()}};
  for (const SampleFile& f : unpacked->files) {
    listing["files"].push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  }
  // A version directory or listing the store does not know is left over by
  // a publication that crashed before its record: never served, replaced.
  RETURN_IF_ERROR(RemoveSampleTree(dir_fd.get(), name));
  RETURN_IF_ERROR(RemoveSampleTree(dir_fd.get(), name + ".json"));
  RETURN_IF_ERROR(WriteFileAt(dir_fd.get(), name + ".json", listing.dump()));
  if (::fchmodat(dir_fd.get(), tmp.c_str(), 0555, 0) != 0 ||
      ::renameat(dir_fd.get(), tmp.c_str(), dir_fd.get(), name.c_str()) != 0 ||
      ::fsync(dir_fd.get()) != 0) {
    const Status failed = ErrnoStatus(dir + "/" + name, errno);
    (void)RemoveSampleTree(dir_fd.get(), name + ".json");
    return failed;
  }
  store::Sample row;
  row.dataset_id = d.id;
  row.version = version;
  row.file_count = static_cast<int64_t>(unpacked->files.size());
  row.total_bytes = static_cast<int64_t>(unpacked->total_bytes);
  row.files_digest = unpacked->files_digest;
  row.published_by = caller.user.id;
  row.published_at = d_.clock.NowUnix();
  auto recorded = d_.db.RecordSample(
      row, audit_.Record(actor, std::string(kPublish), object, AuditDecision::kAllow,
                         {{"version", version},
                          {"files", row.file_count},
                          {"bytes", row.total_bytes},
                          {"files_digest", DigestText(row.files_digest)}}));
  if (!recorded.ok()) {
    // Not recorded, so never served: take the files away again.
    (void)RemoveSampleTree(dir_fd.get(), name);
    (void)RemoveSampleTree(dir_fd.get(), name + ".json");
    return recorded.status();
  }
  // Keep the newest kVersionsKept; older ones (and leftovers) go.
  for (int64_t old = version - kVersionsKept; old >= 1; --old) {
    const std::string gone = VersionName(old);
    struct stat st {};
    const bool present =
        ::fstatat(dir_fd.get(), gone.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ||
        ::fstatat(dir_fd.get(), (gone + ".json").c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!present) break;  // pruned by an earlier publication
    Status pruned = RemoveSampleTree(dir_fd.get(), gone);
    if (pruned.ok()) pruned = RemoveSampleTree(dir_fd.get(), gone + ".json");
    if (!pruned.ok()) {
      d_.log.Warn("sample.prune_failed", {{"dataset", d.name}, {"error", pruned.message()}});
    }
  }
  api::SampleInfo out;
  out.dataset = d.name;
  out.version = version;
  out.published_at = row.published_at;
  out.file_count = row.file_count;
  out.total_bytes = row.total_bytes;
  for (const SampleFile& f : unpacked->files) {
    out.files.push_back({f.path, static_cast<int64_t>(f.size), f.sha256});
  }
  return out;
}

StatusOr<api::SampleInfo> Samples::ReadListing(const store::Dataset& d, const store::Sample& s) {
  ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenDir(DatasetDir(d.id)));
  const std::string name = VersionName(s.version) + ".json";
  auto text = ReadFileAt(dir_fd.get(), name, kMaxListingBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Unavailable("dataset '" + d.name + "': sample version " + std::to_string(s.version) +
                         " was just replaced; ask again");
    }
    return text.status();
  }
  const json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  const std::string where = "dataset '" + d.name + "': sample listing " + name;
  api::SampleInfo out;
  out.dataset = d.name;
  out.version = s.version;
  out.published_at = s.published_at;
  out.file_count = s.file_count;
  out.total_bytes = s.total_bytes;
  std::vector<SampleFile> files;
  if (!j.is_object() || !j.contains("files") || !j["files"].is_array()) {
    return DataLoss(where + ": malformed");
  }
  for (const json& f : j["files"]) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string()) {
      return DataLoss(where + ": malformed");
    }
    files.push_back(
        {f["path"].get<std::string>(), f["size"].get<uint64_t>(), f["sha256"].get<std::string>()});
  }
  // The file on disk must be what was recorded (an edit is caught here).
  if (!crypto::ConstantTimeEquals(SampleFilesDigest(files), s.files_digest) ||
      static_cast<int64_t>(files.size()) != s.file_count) {
    return DataLoss(where + ": does not match the recorded files digest " +
                    DigestText(s.files_digest));
  }
  for (const SampleFile& f : files) {
    out.files.push_back({f.path, static_cast<int64_t>(f.size), f.sha256});
  }
  return out;
}

StatusOr<api::SampleInfo> Samples::Get(const Caller& caller, const std::string& dataset) {
  ASSIGN_OR_RETURN(store::Dataset d, LoadDataset(dataset));
  RETURN_IF_ERROR(CheckRead(caller, d, std::string(kRead)));
  auto latest = d_.db.GetLatestSample(d.id);
  if (!latest.ok()) {
    if (latest.status().code() == StatusCode::kNotFound) {
      return NotFound("dataset " + d.name + " has no published sample");
    }
    return latest.status();
  }
  ASSIGN_OR_RETURN(api::SampleInfo out, ReadListing(d, *latest));
  RETURN_IF_ERROR(audit_.Append(
      audit_.Record(caller.actor(), std::string(kRead), Object(d.name), AuditDecision::kAllow,
                    {{"version", out.version}, {"files", out.file_count}})));
  return out;
}

StatusOr<Samples::File> Samples::OpenFile(const Caller& caller, const std::string& dataset,
                                          const std::string& path) {
  ASSIGN_OR_RETURN(store::Dataset d, LoadDataset(dataset));
  RETURN_IF_ERROR(CheckRead(caller, d, std::string(kRead)));
  auto latest = d_.db.GetLatestSample(d.id);
  if (!latest.ok()) {
    if (latest.status().code() == StatusCode::kNotFound) {
      return NotFound("dataset " + d.name + " has no published sample");
    }
    return latest.status();
  }
  const Status no_such =
      NotFound("dataset '" + d.name + "': sample version " + std::to_string(latest->version) +
               " has no file '" + path.substr(0, 300) + "'");
  // Only names an unpacked sample can hold: no '..', nothing absolute.
  auto clean = SampleMemberPath(path);
  if (!clean.ok() || clean->empty() || *clean != path) return no_such;
  // Every part opened without following a link (none were unpacked).
  ASSIGN_OR_RETURN(UniqueFd cur, OpenDir(DatasetDir(d.id) + "/" + VersionName(latest->version)));
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? slash : slash - start);
    const bool last = slash == std::string::npos;
    UniqueFd next(::openat(cur.get(), part.c_str(),
                           O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY)));
    if (!next.valid()) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return no_such;
      return ErrnoStatus("dataset '" + d.name + "' sample", errno);
    }
    cur = std::move(next);
    if (last) break;
    start = slash + 1;
  }
  struct stat st {};
  if (::fstat(cur.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return no_such;
  File out;
  out.fd = std::move(cur);
  out.size = static_cast<uint64_t>(st.st_size);
  out.path = path;
  out.version = latest->version;
  return out;
}

StatusOr<SampleLocation> Samples::Latest(int64_t dataset_id) {
  if (d_.samples_dir.empty()) {
    return FailedPrecondition("dataset samples are not configured on this plane");
  }
  ASSIGN_OR_RETURN(store::Dataset d, d_.db.GetDataset(dataset_id));
  auto latest = d_.db.GetLatestSample(dataset_id);
  if (!latest.ok()) {
    if (latest.status().code() == StatusCode::kNotFound) {
      return NotFound("dataset " + d.name + " has no published sample");
    }
    return latest.status();
  }
  std::error_code ec;
  auto dir = std::filesystem::absolute(DatasetDir(d.id) + "/" + VersionName(latest->version), ec);
  if (ec) return Internal("samples_dir: " + ec.message());
  return SampleLocation{dir.lexically_normal().string(), latest->version, d.name};
}

}  // namespace cce::plane
