// `cce image push`, `cce image list`, `cce image rm`: upload a local
// container image (OCI layout directory, oci-archive or docker-archive) to
// the plane's content-addressed image store, list and remove the tags there.
// docs/images.md.
#include <cctype>
#include <ctime>
#include <iostream>

#include "api/wire.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/progress.h"
#include "cli/table.h"
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

// A name for the example in Destination's message: PATH's last component as
// one OCI name component (lower case, runs of other characters as one '-'),
// or "app" when nothing of it is left.
std::string ExampleName(const std::string& path) {
  std::string base = path;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  base = base.substr(base.rfind('/') == std::string::npos ? 0 : base.rfind('/') + 1);
  for (const char* ext : {".tar.gz", ".tgz", ".tar.zst", ".tar"}) {
    const std::string e(ext);
    if (base.size() > e.size() && base.compare(base.size() - e.size(), e.size(), e) == 0) {
      base.resize(base.size() - e.size());
      break;
    }
  }
  std::string out;
  for (char c : base) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "app" : out;
}

// NAME and TAG as the plane takes them (docs/cli.md, `cce image push`),
// checked here so a typo is named before anything is uploaded.
Status CheckNameTag(const std::string& name, const std::string& tag) {
  auto component_ok = [](std::string_view c) {
    if (c.empty() || !std::isalnum(static_cast<unsigned char>(c.front())) ||
        !std::isalnum(static_cast<unsigned char>(c.back()))) {
      return false;
    }
    for (size_t i = 0; i < c.size(); ++i) {
      const char ch = c[i];
      const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
      const bool sep = ch == '.' || ch == '_' || ch == '-';
      if (!alnum && !sep) return false;
      if (sep && i > 0 &&
          !((c[i - 1] >= 'a' && c[i - 1] <= 'z') || (c[i - 1] >= '0' && c[i - 1] <= '9'))) {
        return false;  // one separator between alphanumerics ("a__b" is not allowed)
      }
    }
    return true;
  };
  bool name_ok = !name.empty() && name.size() <= 255;
  for (size_t at = 0; name_ok && at <= name.size();) {
    size_t slash = name.find('/', at);
    if (slash == std::string::npos) slash = name.size();
    name_ok = component_ok(std::string_view(name).substr(at, slash - at));
    at = slash + 1;
  }
  if (!name_ok) {
    return InvalidArgument("image name '" + name.substr(0, 64) +
                           "': expected lower-case path components [a-z0-9]+(?:[._-][a-z0-9]+)* "
                           "joined by single '/' (e.g. team/stats)");
  }
  bool tag_ok = !tag.empty() && tag.size() <= 128 &&
                (std::isalnum(static_cast<unsigned char>(tag[0])) || tag[0] == '_');
  for (char ch : tag) {
    tag_ok = tag_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' ||
                        ch == '-');
  }
  if (!tag_ok) {
    return InvalidArgument("image tag '" + tag.substr(0, 64) + "' of " + name.substr(0, 64) +
                           ": expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127} (e.g. 1.0)");
  }
  return Status::Ok();
}

// Where the pushed image is tagged: --name, else the image's first repo tag.
// An OCI ref.name without '/' or ':' is a bare tag ("1.0") and names no
// repository, so it is not used. An image without a name (an OCI index
// without org.opencontainers.image.ref.name, as `skopeo copy ... oci:DIR`
// writes it without a tag) needs --name: the message gives its digest and a
// command to copy.
StatusOr<std::pair<std::string, std::string>> Destination(const ParsedFlags& f,
                                                          const image::LocalImage& img) {
  if (auto name = f.Get("name")) {
    auto dest = SplitNameTag(*name);
    RETURN_IF_ERROR(CheckNameTag(dest.first, dest.second));
    return dest;
  }
  std::string bare_tag;
  for (const std::string& t : img.repo_tags) {
    if (img.format != image::ImageFormat::kDockerArchive &&
        t.find_first_of("/:") == std::string::npos) {
      if (bare_tag.empty()) bare_tag = t;
      continue;
    }
    return SplitNameTag(t);
  }
  std::string why;
  if (img.format == image::ImageFormat::kDockerArchive) {
    why = "its manifest.json has no RepoTags";
  } else if (!bare_tag.empty()) {
    why = "its index.json names only the tag '" + bare_tag + "', no repository";
  } else {
    why = "its index.json has no org.opencontainers.image.ref.name annotation";
  }
  const std::string example =
      ExampleName(img.source_path) + ":" + (bare_tag.empty() ? "1.0" : bare_tag);
  return InvalidArgument(img.source_path + ": the image " + img.manifest.digest.str() +
                         " has no name to push it under (" + why +
                         "): give it one with --name NAME[:TAG], for example\n  cce image push " +
                         img.source_path + " --name " + example);
}

int ImagePush(const Args& args) {
  FlagParser p("cce image push PATH [--name NAME:TAG] [--output json]",
               "Uploads a container image (OCI layout directory, oci-archive or\n"
               "docker-archive tar) to the plane. Every blob's digest is checked here and\n"
               "again by the plane; blobs the plane already has are skipped. Prints\n"
               "NAME:TAG -> DIGEST; a job spec can name either. An image without a name\n"
               "(no org.opencontainers.image.ref.name in its index) needs --name.",
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
        if (!json_out) std::cout << name << ":" << tag << " -> " << tagged.digest << "\n";
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
                       Table t({"NAME:TAG", "DIGEST", "OWNER", "PUSHED"});
                       for (const api::Image& i : list.images) {
                         t.AddRow({i.name + ":" + i.tag, i.digest, i.owner,
                                   FormatTime(i.created_at)});
                       }
                       std::cout << t.Render();
                     }
                     return ListItems(r, "images");
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
                     RETURN_IF_ERROR(CheckNameTag(name, tag));
                     std::string encoded;  // each of NAME's components, percent-encoded
                     for (size_t at = 0; at <= name.size();) {
                       size_t slash = name.find('/', at);
                       if (slash == std::string::npos) slash = name.size();
                       encoded += (at == 0 ? "" : "/") +
                                  PathSegment(std::string_view(name).substr(at, slash - at));
                       at = slash + 1;
                     }
                     const std::string path =
                         "/api/v1/images/" + encoded + "/tags/" + PathSegment(tag);
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
