// The Images service (docs/images.md): blobs stored by digest — published
// only when their bytes hash to it — and name:tag pointing at a manifest
// whose blobs are all present.
#include "image/image.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using store::AuditDecision;

constexpr size_t kMaxImageNameLength = 255;
constexpr size_t kMaxImageTagLength = 128;

// The same rules as a job spec's image reference (src/jobspec/jobspec.cc,
// docs/jobspec.md), so every pushed name:tag can be named by a job.
bool IsImageName(std::string_view n) {
  if (n.empty() || n.size() > kMaxImageNameLength) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(n[0])) return false;
  for (char c : n) {
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '/' && c != '-') return false;
  }
  return true;
}

bool IsImageTag(std::string_view t) {
  if (t.empty() || t.size() > kMaxImageTagLength) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

StatusOr<image::Digest> DigestParam(const std::string& text) {
  auto d = image::Digest::Parse(text);
  if (!d.ok()) return InvalidArgument("path.digest: " + d.status().message());
  return d;
}

}  // namespace

StatusOr<api::BlobStatus> Images::BlobStatus(const std::string& digest) {
  ASSIGN_OR_RETURN(image::Digest d, DigestParam(digest));
  auto size = d_.blobs.Size(d);
  if (!size.ok()) {
    if (size.status().code() != StatusCode::kNotFound) return size.status();
    return api::BlobStatus{d.str(), false, std::nullopt};
  }
  return api::BlobStatus{d.str(), true, static_cast<int64_t>(*size)};
}

StatusOr<api::StoredBlob> Images::PutBlob(const Caller& caller, const std::string& digest, int fd) {
  ASSIGN_OR_RETURN(image::Digest d, DigestParam(digest));
  auto put = d_.blobs.PutFromFd(fd, d, image::kDefaultMaxImageBytes);
  if (!put.ok()) {
    // kDataLoss here is the client's fault: the bytes do not match the
    // digest it named. The message names both digests.
    if (put.status().code() == StatusCode::kDataLoss) {
      return InvalidArgument("body: " + put.status().message());
    }
    return put.status();
  }
  ASSIGN_OR_RETURN(uint64_t size, d_.blobs.Size(d));
  d_.log.Info("image.blob", {{"actor", caller.actor()}, {"digest", d.str()}});
  return api::StoredBlob{d.str(), static_cast<int64_t>(size)};
}

StatusOr<api::TaggedImage> Images::Tag(const Caller& caller, const std::string& name,
                                       const std::string& tag, const std::string& manifest) {
  if (!IsImageName(name)) {
    return InvalidArgument("path.name: expected [a-z0-9][a-z0-9._/-]* (at most 255 characters)");
  }
  if (!IsImageTag(tag)) return InvalidArgument("path.tag: expected [A-Za-z0-9_.-]{1,128}");
  auto info = image::ValidateStoredManifest(manifest, d_.blobs, image::kDefaultMaxImageBytes);
  if (!info.ok()) {
    // A missing blob is the client's to upload (409, not a missing route);
    // a size that differs from the stored blob is a bad manifest.
    StatusCode code = info.status().code();
    if (code == StatusCode::kNotFound) code = StatusCode::kFailedPrecondition;
    if (code == StatusCode::kDataLoss) code = StatusCode::kInvalidArgument;
    return Status(code, "body: " + info.status().message());
  }
  ASSIGN_OR_RETURN(image::Digest digest, d_.blobs.PutBytes(manifest, info->digest));
  store::Image img;
  img.name = name;
  img.tag = tag;
  img.digest = digest.str();
  img.owner_id = caller.user.id;
  img.created_at = d_.clock.NowUnix();
  ASSIGN_OR_RETURN(
      store::Image stored,
      d_.db.PutImage(img, audit_.Record(caller.actor(), "image.push", "image:" + name + ":" + tag,
                                        AuditDecision::kAllow,
                                        {{"digest", img.digest},
                                         {"layers", info->layers.size()},
                                         {"total_size", info->total_size}})));
  return api::TaggedImage{stored.name, stored.tag, stored.digest};
}

StatusOr<api::ImageList> Images::List() {
  ASSIGN_OR_RETURN(auto list, d_.db.ListImages());
  api::ImageList out;
  for (const auto& i : list) {
    out.images.push_back({i.name, i.tag, i.digest, users_.NameOf(i.owner_id), i.created_at});
  }
  return out;
}

}  // namespace cce::plane
