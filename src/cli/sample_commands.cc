// `cce dataset publish-sample | fetch-sample | sample-info`: a dataset's
// desensitized sample on the plane (docs/explore/samples.md). Publishing
// streams a tar of the directory (never held in memory); fetching checks
// every file against the listing's SHA-256 before it is kept.
#include "cli/sample_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "cli/dir_tar_stream.h"
#include "cli/plane_verb.h"
#include "cli/progress.h"
#include "cli/table.h"
#include "crypto/crypto.h"
#include "http/client.h"

namespace cce::cli {
namespace {

using nlohmann::json;

std::string SamplePath(const std::string& dataset) {
  return "/api/v1/datasets/" + http::UrlEncode(dataset) + "/sample";
}

// A listed path as the plane's own rule has it (relative, no '.', '..' or
// empty parts, no control characters): a plane's listing names nothing
// outside the output directory.
Status CheckListedPath(const std::string& path) {
  if (path.empty() || path.size() > 255 || path.front() == '/') {
    return DataLoss("the plane listed a sample file '" + path + "': not a relative path");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return DataLoss("the plane listed a sample file '" + path + "': a '" + part + "' part");
    }
    start = end + 1;
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return DataLoss("the plane listed a sample file with a control character");
    }
  }
  return Status::Ok();
}

// Creates DIR/a/b for DIR/a/b/file (0755), refusing a symlink on the way.
Status MakeParents(const std::string& dir, const std::string& path) {
  size_t slash = 0;
  while ((slash = path.find('/', slash)) != std::string::npos) {
    const std::string p = dir + "/" + path.substr(0, slash);
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(p, errno);
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return ErrnoStatus(p, errno);
    if (!S_ISDIR(st.st_mode)) return FailedPrecondition(p + ": exists and is not a directory");
    ++slash;
  }
  return Status::Ok();
}

void PrintInfo(const api::SampleInfo& s, bool files) {
  std::cout << "sample of " << s.dataset << ": version " << s.version << ", " << s.file_count
            << " files, " << HumanBytes(static_cast<uint64_t>(s.total_bytes)) << ", published "
            << FormatTime(s.published_at) << "\n";
  if (!files) return;
  Table t({"PATH", "BYTES", "SHA256"});
  for (const api::SampleFile& f : s.files) t.AddRow({f.path, std::to_string(f.size), f.sha256});
  const std::string text = t.Render();
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    std::cout << "  " << text.substr(start, end - start + 1);
    start = end + 1;
  }
}

int PublishSample(const Args& args) {
  FlagParser p("cce dataset publish-sample NAME DIR [--output json]",
               "Publishes DIR as the sample of dataset NAME (its owner only): the plane\n"
               "serves it in clear to consumers renting NAME (Explore sessions, the SDK).\n"
               "Put only desensitized data there (`cce dataset sample` makes it).\n"
               "DIR may hold regular files and directories only.",
               {kOutputFlag});
  return WithPlane(p, args, 2,
                   [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     ASSIGN_OR_RETURN(api::SampleInfo info,
                                      PublishSampleDir(c, f.positional()[0], f.positional()[1]));
                     if (!json_out) PrintInfo(info, false);
                     return api::ToJson(info);
                   });
}

int SampleInfoVerb(const Args& args) {
  FlagParser p("cce dataset sample-info NAME [--output json]",
               "Shows the latest published sample of dataset NAME and its files\n"
               "(its owner, or a consumer renting it now).",
               {kOutputFlag});
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        const std::string path = SamplePath(f.positional()[0]);
        ASSIGN_OR_RETURN(json r, c.Get(path));
        ASSIGN_OR_RETURN(api::SampleInfo info, DecodeResponse<api::SampleInfo>(r, "GET " + path));
        if (!json_out) PrintInfo(info, true);
        return r;
      });
}

int FetchSample(const Args& args) {
  FlagParser p("cce dataset fetch-sample NAME -o DIR [--output json]",
               "Downloads every file of dataset NAME's latest sample into DIR (created if\n"
               "missing; existing files are not overwritten), checking each file's SHA-256\n"
               "against the plane's listing.",
               {{"out", "DIR", "directory to write to", false, 'o'}, kOutputFlag});
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        auto dir = f.Get("out");
        if (!dir) return InvalidArgument("-o DIR is required");
        ASSIGN_OR_RETURN(api::SampleInfo info, FetchSampleTo(c, f.positional()[0], *dir));
        if (!json_out) {
          PrintInfo(info, false);
          std::cout << "written to " << *dir << "\n";
        }
        return api::ToJson(info);
      });
}

}  // namespace

StatusOr<api::SampleInfo> PublishSampleDir(PlaneClient& c, const std::string& dataset,
                                           const std::string& dir) {
  ASSIGN_OR_RETURN(DirTarStream tar, DirTarStream::Open(dir));
  if (tar.file_count() == 0) return InvalidArgument(dir + ": no files to publish");
  json r;
  {
    ProgressBar bar("sample " + dataset);
    bar.Update(0, tar.total_file_bytes(), 0, tar.file_count());
    ASSIGN_OR_RETURN(r, c.PutStream(
                            SamplePath(dataset),
                            [&](std::span<uint8_t> buf) -> StatusOr<size_t> {
                              ASSIGN_OR_RETURN(size_t n, tar.Read(buf));
                              bar.Update(tar.file_bytes_sent(), tar.total_file_bytes(),
                                         tar.files_sent(), tar.file_count());
                              return n;
                            },
                            "application/x-tar"));
  }
  return DecodeResponse<api::SampleInfo>(r, "PUT " + SamplePath(dataset));
}

StatusOr<api::SampleInfo> FetchSampleTo(PlaneClient& c, const std::string& dataset,
                                        const std::string& dir) {
  const std::string path = SamplePath(dataset);
  ASSIGN_OR_RETURN(json r, c.Get(path));
  ASSIGN_OR_RETURN(api::SampleInfo info, DecodeResponse<api::SampleInfo>(r, "GET " + path));
  for (const api::SampleFile& f : info.files) RETURN_IF_ERROR(CheckListedPath(f.path));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(dir, errno);
  ProgressBar bar("fetch " + dataset);
  uint64_t done = 0;
  uint64_t files_done = 0;
  for (const api::SampleFile& f : info.files) {
    const std::string target = dir + "/" + f.path;
    RETURN_IF_ERROR(MakeParents(dir, f.path));
    if (::access(target.c_str(), F_OK) == 0) {
      return FailedPrecondition(target + ": already exists (refusing to overwrite)");
    }
    const std::string tmp = target + ".partial";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid()) return ErrnoStatus(tmp, errno);
    crypto::Sha256Hasher hash;
    int64_t size = 0;
    std::string encoded;
    for (size_t start = 0; start <= f.path.size();) {
      size_t end = f.path.find('/', start);
      if (end == std::string::npos) end = f.path.size();
      encoded += (start == 0 ? "" : "/") + http::UrlEncode(f.path.substr(start, end - start));
      start = end + 1;
    }
    Status s = c.Download(
        path + "/files/" + encoded,
        [&](std::span<const uint8_t> piece) {
          hash.Update(piece);
          size += static_cast<int64_t>(piece.size());
          if (size > f.size) return DataLoss(target + ": more bytes than listed");
          bar.Update(done + static_cast<uint64_t>(size), static_cast<uint64_t>(info.total_bytes),
                     files_done, info.files.size());
          return WriteFull(fd.get(), piece);
        },
        nullptr);
    const std::string got = crypto::ToHex(hash.Finish());
    if (s.ok() && (size != f.size || got != f.sha256)) {
      s = DataLoss(target + ": received " + std::to_string(size) + " bytes hashing to " + got +
                   ", the listing says " + std::to_string(f.size) + " bytes, " + f.sha256 +
                   " (the sample changed? fetch again)");
    }
    if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(tmp, errno);
    fd.reset();
    if (s.ok() && ::rename(tmp.c_str(), target.c_str()) != 0) s = ErrnoStatus(target, errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<uint64_t>(size);
    ++files_done;
  }
  return info;
}

std::vector<Command> SampleCommands() {
  return {
      {{"dataset", "publish-sample"}, "publish a dataset's desensitized sample", PublishSample},
      {{"dataset", "fetch-sample"}, "download a rented dataset's sample", FetchSample},
      {{"dataset", "sample-info"}, "show a dataset's published sample", SampleInfoVerb},
  };
}

}  // namespace cce::cli
