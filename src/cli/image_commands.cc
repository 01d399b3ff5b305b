// `cce image push`, `cce image list`, `cce image rm`: upload a local
// container image (OCI layout directory, oci-archive or docker-archive) to
// the plane's content-addressed image store, list and remove the tags there.
// docs/images.md.
#include <ctime>
#include <iostream>

#include "api/wire.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/progress.h"
#include "image/image.h"

namespace cce::cli {
namespace {

using nlohmann::json;

// NAME[:TAG] -> {NAME, TAG}; the tag defaults to "latest". A ':' before the
// last '/' belongs to a registry host:port, not to the tag.
std::pair<std::string, std::string> SplitNameTag(const std::string& ref) {
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return {ref, "latest"};
  }
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

// Where the pushed image is tagged: --name, else the image's first repo tag.
// An OCI ref.name without '/' or ':' is a bare tag ("1.0") and names no
// repository, so it is not used.
StatusOr<std::pair<std::string, std::string>> Destination(const ParsedFlags& f,
                                                          const image::LocalImage& img) {
  if (auto name = f.Get("name")) return SplitNameTag(*name);
  for (const std::string& t : img.repo_tags) {
    if (img.format != image::ImageFormat::kDockerArchive &&
        t.find_first_of("/:") == std::string::npos) {
      continue;
    }
    return SplitNameTag(t);
  }
  return InvalidArgument(img.source_path +
                         ": the image names no repository and tag: pass --name NAME:TAG");
}

int ImagePush(const Args& args) {
  FlagParser p("cce image push PATH [--name NAME:TAG] [--output json]",
               "Uploads a container image (OCI layout directory, oci-archive or\n"
               "docker-archive tar) to the plane. Every blob's digest is checked here and\n"
               "again by the plane; blobs the plane already has are skipped. Prints the\n"
               "image digest, which a job spec can pin.",
               {{"name", "NAME:TAG",
                 "repository and tag on the plane (default: the image's own tag; TAG defaults "
                 "to latest)"},
                kOutputFlag});
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(image::LocalImage img, image::ReadLocalImage(f.positional()[0]));
        ASSIGN_OR_RETURN(auto dest, Destination(f, img));
        const auto& [name, tag] = dest;
        // The manifest is not uploaded as a blob: tagging it stores it.
        uint64_t total = img.total_size - img.manifest.size;
        uint64_t blobs_total = 0;
        RETURN_IF_ERROR(img.ForEachBlob([&](const image::Descriptor& b, image::ByteSource&) {
          if (b.digest != img.manifest.digest) ++blobs_total;
          return Status::Ok();
        }));
        uint64_t done = 0;
        uint64_t blobs_done = 0;
        uint64_t uploaded = 0;
        uint64_t skipped = 0;
        {
          ProgressBar bar("push " + name + ":" + tag);
          bar.Update(0, total, 0, blobs_total);
          RETURN_IF_ERROR(
              img.ForEachBlob([&](const image::Descriptor& b, image::ByteSource& content) {
                if (b.digest == img.manifest.digest) return Status::Ok();
                const std::string path = "/api/v1/images/blobs/" + b.digest.str();
                ASSIGN_OR_RETURN(json response, c.Get(path));
                ASSIGN_OR_RETURN(api::BlobStatus have,
                                 DecodeResponse<api::BlobStatus>(response, "GET " + path));
                if (have.present && have.size && *have.size >= 0 &&
                    static_cast<uint64_t>(*have.size) == b.size) {
                  ++skipped;
                  done += b.size;
                } else {
                  auto sent = c.PutStream(path, [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
                    ASSIGN_OR_RETURN(size_t n, content.Read(buf));
                    done += n;
                    uploaded += n;
                    bar.Update(done, total, blobs_done, blobs_total);
                    return n;
                  });
                  if (!sent.ok()) return sent.status().WithContext(b.digest.str());
                  auto stored = DecodeResponse<api::StoredBlob>(*sent, "PUT " + path);
                  if (!stored.ok()) return stored.status();
                }
                ++blobs_done;
                bar.Update(done, total, blobs_done, blobs_total);
                return Status::Ok();
              }));
        }
        const std::string tag_path = "/api/v1/images/" + name + "/tags/" + tag;
        ASSIGN_OR_RETURN(json r, c.Put(tag_path, img.manifest_json, img.manifest.media_type));
        ASSIGN_OR_RETURN(api::TaggedImage tagged,
                         DecodeResponse<api::TaggedImage>(r, "PUT " + tag_path));
        if (!json_out) std::cout << tagged.digest << "\n";
        r["uploaded_bytes"] = uploaded;
        r["skipped_blobs"] = skipped;
        return r;
      });
}

int ImageList(const Args& args) {
  FlagParser p("cce image list [--output json]",
               "Lists your images and the public (library/) ones on the plane.", {kOutputFlag});
  return WithPlane(p, args, 0,
                   [&](const ParsedFlags&, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     ASSIGN_OR_RETURN(json r, c.Get("/api/v1/images"));
                     ASSIGN_OR_RETURN(api::ImageList list,
                                      DecodeResponse<api::ImageList>(r, "GET /api/v1/images"));
                     if (!json_out) {
                       for (const api::Image& i : list.images) {
                         std::cout << i.name << ":" << i.tag << "\t" << i.digest << "\t" << i.owner
                                   << "\t" << FormatTime(i.created_at) << "\n";
                       }
                     }
                     return r;
                   });
}

int ImageRemove(const Args& args) {
  FlagParser p("cce image rm NAME[:TAG] [--output json]",
               "Removes one of your image tags from the plane (an operator: also a\n"
               "library/ tag). Blobs no other tag or unfinished job uses are then\n"
               "deleted and no longer count against your quota (uploads younger than a\n"
               "day are kept for a push in progress).",
               {kOutputFlag});
  return WithPlane(p, args, 1,
                   [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     auto [name, tag] = SplitNameTag(f.positional()[0]);
                     const std::string path = "/api/v1/images/" + name + "/tags/" + tag;
                     ASSIGN_OR_RETURN(json r, c.Delete(path));
                     ASSIGN_OR_RETURN(api::TaggedImage removed,
                                      DecodeResponse<api::TaggedImage>(r, "DELETE " + path));
                     if (!json_out) {
                       std::cout << "removed " << removed.name << ":" << removed.tag << " ("
                                 << removed.digest << ")\n";
                     }
                     return r;
                   });
}

}  // namespace

std::vector<Command> ImageCommands() {
  return {
      {{"image", "push"}, "upload a container image to the plane", ImagePush},
      {{"image", "list"}, "list the images on the plane", ImageList},
      {{"image", "rm"}, "remove one of your image tags from the plane", ImageRemove},
  };
}

}  // namespace cce::cli
