// The Images service (docs/images.md): blobs stored by digest — published
// only when their bytes hash to it — and name:tag pointing at a manifest
// whose blobs are all present. Every image and blob record lives in a scope:
// its owner's, or the public one (library/ names, curated by operators).
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "image/image.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using store::AuditDecision;
using store::kPublicImageScope;

constexpr size_t kMaxImageNameLength = 255;
constexpr size_t kMaxImageTagLength = 128;
constexpr std::string_view kPublicPrefix = "library/";

constexpr char kNameRule[] =
    "expected path components [a-z0-9]+(?:[._-][a-z0-9]+)* joined by single '/' "
    "(at most 255 characters)";
constexpr char kTagRule[] = "expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127}";

bool IsLowerOrDigit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// The OCI distribution-spec name grammar: components of [a-z0-9]+ runs
// separated by single '.', '_' or '-', joined by single '/'. So no empty
// component ("a//b"), no "." or ".." component, no leading or trailing
// separator.
bool IsImageName(std::string_view n) {
  if (n.empty() || n.size() > kMaxImageNameLength) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = n.find('/', start);
    std::string_view comp =
        n.substr(start, slash == std::string_view::npos ? n.npos : slash - start);
    if (comp.empty() || !IsLowerOrDigit(comp.front()) || !IsLowerOrDigit(comp.back())) return false;
    for (size_t i = 0; i < comp.size(); ++i) {
      char c = comp[i];
      if (IsLowerOrDigit(c)) continue;
      if (c != '.' && c != '_' && c != '-') return false;
      if (!IsLowerOrDigit(comp[i + 1])) return false;  // one separator between runs
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool IsImageTag(std::string_view t) {
  if (t.empty() || t.size() > kMaxImageTagLength) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(t[0])) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// Untrusted text for an error message: bounded, printable.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 100; ++i) {
    out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  }
  return out + (s.size() > 100 ? "...'" : "'");
}

Status CheckNameAndTag(const std::string& name, const std::string& tag) {
  if (!IsImageName(name)) {
    return InvalidArgument("path.name: " + Quote(name) +
                           " is not a valid image name: " + kNameRule);
  }
  if (!IsImageTag(tag)) {
    return InvalidArgument("path.tag: " + Quote(tag) + " is not a valid tag: " + kTagRule);
  }
  return Status::Ok();
}

bool IsPublicName(std::string_view name) {
  return name.starts_with(kPublicPrefix);
}

bool SeesAllImages(store::Role r) {
  return r == store::Role::kOperator || r == store::Role::kReviewer;
}

StatusOr<image::Digest> DigestParam(const std::string& text) {
  auto d = image::Digest::Parse(text);
  if (!d.ok()) return InvalidArgument("path.digest: " + d.status().message());
  return d;
}

std::string QuotaMessage(uint64_t used, uint64_t in_flight, uint64_t adding, int64_t quota) {
  return "image storage quota exceeded: " + std::to_string(used) + " bytes stored" +
         (in_flight > 0 ? " and " + std::to_string(in_flight) + " being uploaded" : "") +
         ", this upload " + std::to_string(adding) + " bytes, quota " + std::to_string(quota) +
         " bytes (plane.yaml images.quota_bytes); remove images you no longer need "
         "(cce image rm NAME:TAG)";
}

}  // namespace

StatusOr<uint64_t> Images::UsedBytes(int64_t user_id, const std::string& except_digest) {
  ASSIGN_OR_RETURN(auto rows, d_.db.ListImageBlobs(user_id));
  uint64_t used = 0;
  for (const auto& r : rows) {
    if (r.digest != except_digest) used += static_cast<uint64_t>(r.size);
  }
  return used;
}

StatusOr<api::BlobStatus> Images::BlobStatus(const Caller& caller, const std::string& digest) {
  ASSIGN_OR_RETURN(image::Digest d, DigestParam(digest));
  api::BlobStatus absent{d.str(), false, std::nullopt};
  // Only the caller's own uploads and public blobs exist for it: whether
  // another tenant stored these bytes is not the caller's to learn.
  bool visible = false;
  for (int64_t scope : {caller.user.id, kPublicImageScope}) {
    ASSIGN_OR_RETURN(auto rows, d_.db.ListImageBlobs(scope));
    visible = visible || std::any_of(rows.begin(), rows.end(), [&](const store::ImageBlob& b) {
                return b.digest == d.str();
              });
  }
  if (!visible) return absent;
  auto size = d_.blobs.Size(d);
  if (!size.ok()) {
    if (size.status().code() != StatusCode::kNotFound) return size.status();
    return absent;
  }
  return api::BlobStatus{d.str(), true, static_cast<int64_t>(*size)};
}

Status Images::AdmitUpload(const Caller& caller, std::optional<uint64_t> content_length) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(uint64_t used, UsedBytes(caller.user.id, ""));
  const uint64_t in_flight = in_flight_bytes_[caller.user.id];
  const uint64_t adding = content_length.value_or(0);
  const auto quota = static_cast<uint64_t>(std::max<int64_t>(d_.image_quota_bytes, 0));
  if (used + in_flight + adding > quota || (adding == 0 && used + in_flight >= quota)) {
    return audit_.Deny(
        caller.actor(), "image.quota", "user:" + caller.user.name,
        ResourceExhausted(QuotaMessage(used, in_flight, adding, d_.image_quota_bytes)),
        {{"used", used}, {"in_flight", in_flight}, {"adding", adding}});
  }
  return Status::Ok();
}

StatusOr<api::StoredBlob> Images::PutBlob(const Caller& caller, const std::string& digest, int fd) {
  ASSIGN_OR_RETURN(image::Digest d, DigestParam(digest));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("upload body: fstat", errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  {
    // Checked and reserved in one step, so concurrent uploads cannot all
    // pass against the same remaining quota.
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(uint64_t used, UsedBytes(caller.user.id, d.str()));
    uint64_t& in_flight = in_flight_bytes_[caller.user.id];
    const auto quota = static_cast<uint64_t>(std::max<int64_t>(d_.image_quota_bytes, 0));
    if (used + in_flight + size > quota) {
      return audit_.Deny(
          caller.actor(), "image.quota", "blob:" + d.str(),
          ResourceExhausted(QuotaMessage(used, in_flight, size, d_.image_quota_bytes)),
          {{"used", used}, {"in_flight", in_flight}, {"adding", size}});
    }
    in_flight += size;
    in_flight_blobs_.insert(d.str());
  }
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_bytes_[caller.user.id] -= size;
    if (in_flight_bytes_[caller.user.id] == 0) in_flight_bytes_.erase(caller.user.id);
    in_flight_blobs_.erase(in_flight_blobs_.find(d.str()));
  };
  // The upload body is an anonymous file beside the store: linked into
  // place, not copied, so an upload never takes twice its size.
  auto put = d_.blobs.Adopt(fd, d, image::kDefaultMaxImageBytes);
  if (!put.ok()) {
    release();
    // kDataLoss here is the client's fault: the bytes do not match the
    // digest it named. The message names both digests.
    if (put.status().code() == StatusCode::kDataLoss) {
      return InvalidArgument("body: " + put.status().message());
    }
    return put.status();
  }
  Status recorded =
      d_.db.PutImageBlob({caller.user.id, d.str(), static_cast<int64_t>(size), d_.clock.NowUnix()},
                         audit_.Record(caller.actor(), "image.blob", "blob:" + d.str(),
                                       AuditDecision::kAllow, {{"size", size}}));
  release();
  RETURN_IF_ERROR(recorded);
  d_.log.Info("image.blob", {{"actor", caller.actor()}, {"digest", d.str()}});
  return api::StoredBlob{d.str(), static_cast<int64_t>(size)};
}

StatusOr<api::TaggedImage> Images::Tag(const Caller& caller, const std::string& name,
                                       const std::string& tag, const std::string& manifest) {
  RETURN_IF_ERROR(CheckNameAndTag(name, tag));
  const bool is_public = IsPublicName(name);
  const std::string object = "image:" + name + ":" + tag;
  if (is_public && caller.user.role != store::Role::kOperator) {
    return audit_.Deny(caller.actor(), "image.push", object,
                       PermissionDenied("path.name: " + Quote(name) +
                                        " is in the public library/ namespace, which only "
                                        "operators curate; push it under another name"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> visible;
  for (int64_t scope : {caller.user.id, kPublicImageScope}) {
    ASSIGN_OR_RETURN(auto rows, d_.db.ListImageBlobs(scope));
    for (auto& r : rows) visible.insert(std::move(r.digest));
  }
  auto info = image::ValidateStoredManifest(
      manifest, d_.blobs, image::kDefaultMaxImageBytes,
      [&](const image::Digest& d) { return visible.count(d.str()) > 0; });
  if (!info.ok()) {
    // A missing blob is the client's to upload (409, not a missing route);
    // a size that differs from the stored blob is a bad manifest.
    StatusCode code = info.status().code();
    if (code == StatusCode::kNotFound) code = StatusCode::kFailedPrecondition;
    if (code == StatusCode::kDataLoss) code = StatusCode::kInvalidArgument;
    return Status(code, "body: " + info.status().message());
  }
  ASSIGN_OR_RETURN(image::Digest digest, d_.blobs.PutBytes(manifest, info->digest));
  const int64_t now = d_.clock.NowUnix();
  // The manifest is the caller's blob like any other; a public image's
  // blobs become public, so every user may probe for and build on them.
  std::vector<store::ImageBlob> records = {
      {caller.user.id, digest.str(), static_cast<int64_t>(manifest.size()), now}};
  if (is_public) {
    records.push_back(
        {kPublicImageScope, digest.str(), static_cast<int64_t>(manifest.size()), now});
    records.push_back({kPublicImageScope, info->config.digest.str(),
                       static_cast<int64_t>(info->config.size), now});
    for (const auto& l : info->layers) {
      records.push_back({kPublicImageScope, l.digest.str(), static_cast<int64_t>(l.size), now});
    }
  }
  for (const auto& r : records) {
    RETURN_IF_ERROR(d_.db.PutImageBlob(
        r, audit_.Record(
               caller.actor(), "image.blob", "blob:" + r.digest, AuditDecision::kAllow,
               {{"size", r.size}, {"scope", r.scope == kPublicImageScope ? "public" : "user"}})));
  }
  store::Image img;
  img.name = name;
  img.tag = tag;
  img.digest = digest.str();
  img.owner_id = caller.user.id;
  img.created_at = now;
  img.is_public = is_public;
  auto previous = d_.db.GetImage(img.scope(), name, tag);
  ASSIGN_OR_RETURN(
      store::Image stored,
      d_.db.PutImage(img, audit_.Record(caller.actor(), "image.push", object, AuditDecision::kAllow,
                                        {{"digest", img.digest},
                                         {"public", is_public},
                                         {"layers", info->layers.size()},
                                         {"total_size", info->total_size}})));
  if ((previous.ok() && previous->digest != stored.digest) ||
      now - last_collection_ >= kCollectEverySeconds) {
    // The tag moved (what only it referenced may go now), or it is time.
    auto gc = CollectGarbageLocked(caller.actor());
    if (!gc.ok()) d_.log.Error("image.gc", {{"error", gc.status().message()}});
  }
  return api::TaggedImage{stored.name, stored.tag, stored.digest};
}

StatusOr<api::TaggedImage> Images::Untag(const Caller& caller, const std::string& name,
                                         const std::string& tag) {
  RETURN_IF_ERROR(CheckNameAndTag(name, tag));
  const bool is_public = IsPublicName(name);
  const std::string object = "image:" + name + ":" + tag;
  if (is_public && caller.user.role != store::Role::kOperator) {
    return audit_.Deny(caller.actor(), "image.delete", object,
                       PermissionDenied("path.name: " + Quote(name) +
                                        " is in the public library/ namespace, which only "
                                        "operators curate"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto removed = d_.db.DeleteImage(
      is_public ? kPublicImageScope : caller.user.id, name, tag,
      audit_.Record(caller.actor(), "image.delete", object, AuditDecision::kAllow));
  if (!removed.ok()) {
    if (removed.status().code() == StatusCode::kNotFound) {
      return NotFound("image " + name + ":" + tag + ": no such image of yours");
    }
    return removed.status();
  }
  auto gc = CollectGarbageLocked(caller.actor());
  if (!gc.ok()) d_.log.Error("image.gc", {{"error", gc.status().message()}});
  return api::TaggedImage{removed->name, removed->tag, removed->digest};
}

StatusOr<api::ImageList> Images::List(const Caller& caller) {
  store::ImageFilter filter;
  if (!SeesAllImages(caller.user.role)) filter.visible_to = caller.user.id;
  ASSIGN_OR_RETURN(auto list, d_.db.ListImages(filter));
  api::ImageList out;
  for (const auto& i : list) {
    out.images.push_back({i.name, i.tag, i.digest, users_.NameOf(i.owner_id), i.created_at});
  }
  return out;
}

StatusOr<std::string> Images::ResolveForJob(const Caller& caller, const ImageRef& ref,
                                            const std::string& field) {
  if (const auto* d = std::get_if<ImageDigest>(&ref)) {
    auto parsed = image::Digest::Parse(d->digest);
    if (!parsed.ok()) return InvalidArgument(field + ": " + parsed.status().message());
    // Only a manifest that one of the caller's or a public tag points at:
    // never a layer or config blob, never another tenant's image.
    ASSIGN_OR_RETURN(auto visible, d_.db.ListImages({.visible_to = caller.user.id}));
    bool tagged = std::any_of(visible.begin(), visible.end(),
                              [&](const store::Image& i) { return i.digest == d->digest; });
    if (!tagged || !d_.blobs.Has(*parsed)) {
      return InvalidArgument(field + ": " + d->digest +
                             " is not the manifest digest of one of your images or of a public "
                             "image (cce image list shows them; push with cce image push)");
    }
    return d->digest;
  }
  const auto& n = std::get<ImageName>(ref);
  std::vector<std::pair<int64_t, std::string>> candidates;
  if (IsPublicName(n.name)) {
    candidates.emplace_back(kPublicImageScope, n.name);
  } else {
    candidates.emplace_back(caller.user.id, n.name);
    candidates.emplace_back(kPublicImageScope, std::string(kPublicPrefix) + n.name);
  }
  for (const auto& [scope, name] : candidates) {
    auto img = d_.db.GetImage(scope, name, n.tag);
    if (img.ok()) return img->digest;  // pinned: later pushes of the tag do not affect the job
    if (img.status().code() != StatusCode::kNotFound) return img.status();
  }
  return InvalidArgument(field + ": no image " + n.name + ":" + n.tag + " of yours" +
                         (IsPublicName(n.name) ? "" : " nor library/" + n.name + ":" + n.tag) +
                         " on the plane (cce image push)");
}

StatusOr<Images::GcReport> Images::CollectGarbage(const std::string& actor) {
  std::lock_guard<std::mutex> lock(mu_);
  return CollectGarbageLocked(actor);
}

StatusOr<Images::GcReport> Images::CollectGarbageLocked(const std::string& actor) {
  const int64_t now = d_.clock.NowUnix();
  last_collection_ = now;
  // What each scope references: every tag's manifest and its blobs, and
  // each unfinished job's pinned manifest and its blobs (in its consumer's
  // scope, so a running job keeps what it runs even if the tag is removed).
  std::map<int64_t, std::set<std::string>> referenced;
  std::set<std::string> all_referenced;
  auto add = [&](int64_t scope, const std::string& manifest_digest, bool must_parse) -> Status {
    referenced[scope].insert(manifest_digest);
    all_referenced.insert(manifest_digest);
    ASSIGN_OR_RETURN(image::Digest md, image::Digest::Parse(manifest_digest));
    auto fd = d_.blobs.Open(md);
    if (!fd.ok()) {
      // Unknown blobs of a tag: collecting now could delete them; refuse.
      if (must_parse) return fd.status().WithContext("image gc: manifest");
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::string text, ReadAll(fd->get(), image::kMaxJsonBytes, md.str()));
    auto blobs = image::ManifestBlobDigests(text);
    if (!blobs.ok()) {
      if (must_parse) return blobs.status().WithContext("image gc");
      return Status::Ok();
    }
    for (const auto& b : *blobs) {
      referenced[scope].insert(b.str());
      all_referenced.insert(b.str());
    }
    return Status::Ok();
  };
  ASSIGN_OR_RETURN(auto images, d_.db.ListImages({}));
  for (const auto& i : images) RETURN_IF_ERROR(add(i.scope(), i.digest, true));
  std::vector<store::JobState> unfinished;
  for (store::JobState s : store::kAllJobStates) {
    if (!store::IsFinalState(s)) unfinished.push_back(s);
  }
  ASSIGN_OR_RETURN(auto jobs, d_.db.ListJobsInStates(unfinished));
  for (const auto& j : jobs) RETURN_IF_ERROR(add(j.consumer_id, j.image_digest, false));

  ASSIGN_OR_RETURN(auto rows, d_.db.ListImageBlobs(std::nullopt));
  GcReport report;
  std::vector<store::ImageBlob> drop;
  std::set<std::string> recorded;
  for (const auto& r : rows) {
    const bool needed = referenced[r.scope].count(r.digest) > 0 ||
                        in_flight_blobs_.count(r.digest) > 0 ||
                        r.created_at > now - kUploadGraceSeconds;
    if (needed) {
      recorded.insert(r.digest);
    } else {
      drop.push_back(r);
    }
  }
  ASSIGN_OR_RETURN(auto stored, d_.blobs.List());
  std::vector<image::Digest> unlink;
  for (const auto& d : stored) {
    if (all_referenced.count(d.str()) || recorded.count(d.str()) ||
        in_flight_blobs_.count(d.str())) {
      continue;
    }
    unlink.push_back(d);
    auto size = d_.blobs.Size(d);
    if (size.ok()) report.bytes_removed += static_cast<int64_t>(*size);
  }
  if (drop.empty() && unlink.empty()) return report;
  report.records_removed = static_cast<int64_t>(drop.size());
  report.blobs_removed = static_cast<int64_t>(unlink.size());
  // Records first: a crash after this leaves files no record needs, which
  // the next collection removes.
  RETURN_IF_ERROR(
      d_.db.DeleteImageBlobs(drop, audit_.Record(actor, "image.gc", "images", AuditDecision::kInfo,
                                                 {{"records_removed", report.records_removed},
                                                  {"blobs_removed", report.blobs_removed},
                                                  {"bytes_removed", report.bytes_removed}})));
  for (const auto& d : unlink) {
    Status s = d_.blobs.Remove(d);
    if (!s.ok()) d_.log.Error("image.gc", {{"error", s.message()}});
  }
  return report;
}

}  // namespace cce::plane
