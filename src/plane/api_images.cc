// Container images: /api/v1/images (blob upload with digest verification,
// tags pointing at validated manifests). See docs/images.md.
//
// A blob body is streamed (httplib's content receiver) into an anonymous
// temporary file under DATA_DIR/images/tmp and from there into the
// BlobStore, which hashes it and publishes it only if it matches the digest
// in the URL; a layer never sits in memory. Bodies larger than the plane's
// limits.max_body_bytes must be sent with Transfer-Encoding: chunked (httplib
// applies its payload limit to Content-Length bodies only); this route bounds
// them itself at image::kDefaultMaxImageBytes, and server.cc refuses chunked
// bodies on every other route.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "image/image.h"
#include "plane/api.h"

namespace cce::plane {
namespace {

constexpr size_t kMaxImageNameLength = 255;
constexpr size_t kMaxImageTagLength = 128;
constexpr unsigned long kDrainMaxBytes = 1ul << 20;

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

// An unnamed file in dir (O_TMPFILE), or a named one unlinked at once where
// the filesystem lacks O_TMPFILE: either way nothing is left behind.
StatusOr<UniqueFd> AnonymousFile(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.valid()) return fd;
  std::string path = dir + "/upload-XXXXXX";
  UniqueFd named(::mkostemp(path.data(), O_CLOEXEC));
  if (!named.valid()) return ErrnoStatus(dir, errno);
  ::unlink(path.c_str());
  return named;
}

// Reads the request body into an anonymous file, at most max_bytes.
StatusOr<UniqueFd> ReceiveBody(const std::string& dir, const httplib::ContentReader& reader,
                               uint64_t max_bytes) {
  ASSIGN_OR_RETURN(UniqueFd fd, AnonymousFile(dir));
  uint64_t received = 0;
  Status write_status;
  bool ok = reader([&](const char* data, size_t len) {
    received += len;
    if (received > max_bytes) {
      write_status = InvalidArgument("body: larger than the image limit of " +
                                     std::to_string(max_bytes) + " bytes");
      return false;
    }
    write_status = WriteFull(fd.get(), {reinterpret_cast<const uint8_t*>(data), len});
    return write_status.ok();
  });
  RETURN_IF_ERROR(write_status);
  if (!ok) return InvalidArgument("body: the upload ended early");
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus("upload", errno);
  return fd;
}

json ImageJson(const store::Image& i, const std::string& owner) {
  return {{"name", i.name},
          {"tag", i.tag},
          {"digest", i.digest},
          {"owner", owner},
          {"created_at", i.created_at}};
}

}  // namespace

void Api::RegisterImages(httplib::Server& svr) {
  const std::vector<Role> pushers = {Role::kConsumer, Role::kOperator};

  // Is a blob already stored? Lets `cce image push` skip it. A GET, so that
  // HEAD (which httplib answers from the GET route) works as well.
  Route(svr, "GET", R"(/api/v1/images/blobs/([^/]+))", pushers,
        [this](const Caller&, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(image::Digest d, DigestParam(req.matches[1].str()));
          auto size = blobs_.Size(d);
          if (!size.ok()) {
            if (size.status().code() != StatusCode::kNotFound) return size.status();
            return ApiResult{200, {{"digest", d.str()}, {"present", false}}};
          }
          return ApiResult{200, {{"digest", d.str()}, {"present", true}, {"size", *size}}};
        });

  // Upload one blob. Authentication and the role check run before the body
  // is read; a digest mismatch stores nothing.
  const std::string blob_pattern = R"(/api/v1/images/blobs/([^/]+))";
  svr.Put(blob_pattern, [this, pushers, blob_pattern](const httplib::Request& req,
                                                      httplib::Response& res,
                                                      const httplib::ContentReader& reader) {
    auto start = std::chrono::steady_clock::now();
    ApiResult result;
    bool body_read = false;
    try {
      result = Handle(req, pushers,
                      [this, &reader, &body_read](
                          const Caller& c, const httplib::Request& r) -> StatusOr<ApiResult> {
                        ASSIGN_OR_RETURN(image::Digest d, DigestParam(r.matches[1].str()));
                        body_read = true;
                        ASSIGN_OR_RETURN(UniqueFd body, ReceiveBody(blobs_.root() + "/tmp", reader,
                                                                    image::kDefaultMaxImageBytes));
                        auto put = blobs_.PutFromFd(body.get(), d, image::kDefaultMaxImageBytes);
                        if (!put.ok()) {
                          // kDataLoss here is the client's fault: the bytes do not match
                          // the digest it named. The message names both digests.
                          if (put.status().code() == StatusCode::kDataLoss) {
                            return InvalidArgument("body: " + put.status().message());
                          }
                          return put.status();
                        }
                        auto size = blobs_.Size(d);
                        if (!size.ok()) return size.status();
                        log_.Info("image.blob", {{"actor", c.actor()}, {"digest", d.str()}});
                        return ApiResult{201, {{"digest", d.str()}, {"size", *size}}};
                      });
    } catch (const std::exception& e) {
      log_.Error("handler.exception", {{"route", blob_pattern}, {"what", e.what()}});
      result = {500, ErrorBody("internal", "internal error")};
    }
    // A refused request's body was never read. A small one is drained so the
    // client sees the answer; a large one is not worth reading, so the
    // connection is closed instead (the client may then see only a reset).
    if (result.status >= 400) {
      std::string length = req.get_header_value("Content-Length");
      bool small = !length.empty() && length.size() < 8 &&
                   length.find_first_not_of("0123456789") == std::string::npos &&
                   std::stoul(length) <= kDrainMaxBytes;
      if (!body_read && small) {
        reader([](const char*, size_t) { return true; });
      } else {
        res.set_header("Connection", "close");
      }
    }
    res.status = result.status;
    res.set_content(result.body.dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_.Observe(blob_pattern, result.status, secs);
  });

  // Tag a manifest whose blobs are all stored. The manifest itself becomes
  // a blob; its digest is the image digest a job pins.
  Route(svr, "PUT", R"(/api/v1/images/(.+)/tags/([^/]+))", pushers,
        [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          std::string name = req.matches[1].str();
          std::string tag = req.matches[2].str();
          if (!IsImageName(name)) {
            return InvalidArgument("path.name: '" + name +
                                   "': expected [a-z0-9][a-z0-9._/-]* (at most 255 characters)");
          }
          if (!IsImageTag(tag)) {
            return InvalidArgument("path.tag: '" + tag + "': expected [A-Za-z0-9_.-]{1,128}");
          }
          auto info = image::ValidateStoredManifest(req.body, blobs_, image::kDefaultMaxImageBytes);
          if (!info.ok()) {
            // A missing blob is the client's to upload (409, not a missing
            // route); a size that differs from the stored blob is a bad manifest.
            StatusCode code = info.status().code();
            if (code == StatusCode::kNotFound) code = StatusCode::kFailedPrecondition;
            if (code == StatusCode::kDataLoss) code = StatusCode::kInvalidArgument;
            return Status(code, "body: " + info.status().message());
          }
          ASSIGN_OR_RETURN(image::Digest digest, blobs_.PutBytes(req.body, info->digest));
          store::Image img;
          img.name = name;
          img.tag = tag;
          img.digest = digest.str();
          img.owner_id = c.user.id;
          img.created_at = clock_.NowUnix();
          ASSIGN_OR_RETURN(store::Image stored,
                           db_.PutImage(img, AuditFor(c, "image.push", "image:" + name + ":" + tag,
                                                      store::AuditDecision::kAllow,
                                                      json{{"digest", img.digest},
                                                           {"layers", info->layers.size()},
                                                           {"total_size", info->total_size}}
                                                          .dump())));
          return ApiResult{201,
                           {{"name", stored.name}, {"tag", stored.tag}, {"digest", stored.digest}}};
        });

  Route(svr, "GET", "/api/v1/images", {},
        [this](const Caller&, const httplib::Request&) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(auto list, db_.ListImages());
          json arr = json::array();
          for (const auto& i : list) arr.push_back(ImageJson(i, OwnerName(i.owner_id)));
          return ApiResult{200, {{"images", arr}}};
        });
}

}  // namespace cce::plane
