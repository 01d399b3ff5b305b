#include "executor/image_unpack.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fd.h"
#include "image/image.h"
#include "image/image_testing.h"

namespace cce::executor {
namespace {

namespace fs = std::filesystem;
using image::BufferSource;
using image::Digest;
using image::testing::DescriptorJson;
using image::testing::Dir;
using image::testing::ExpectError;
using image::testing::File;
using image::testing::Gzip;
using image::testing::HardLink;
using image::testing::Hex;
using image::testing::MakeTar;
using image::testing::Node;
using image::testing::Symlink;
using image::testing::TarMember;
using image::testing::TempDir;
using image::testing::WriteFile;
using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Fixtures, built at test time.

std::string ReadFileOrEmpty(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool Exists(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

constexpr char kSentinel[] = "host file\n";

// base/rootfs (empty, where layers go) next to base/outside/sentinel, which
// no layer may reach.
class Sandbox {
 public:
  Sandbox() {
    fs::create_directory(rootfs());
    WriteFile(outside() / "sentinel", kSentinel);
    root_.reset(::open(rootfs().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(root_.valid());
  }
  fs::path base() const { return dir_.path(); }
  fs::path rootfs() const { return base() / "rootfs"; }
  fs::path outside() const { return base() / "outside"; }
  fs::path operator/(const std::string& p) const { return rootfs() / p; }

  StatusOr<Digest> Apply(const std::string& layer, const UnpackLimits& limits = {}) {
    BufferSource source(layer);
    return ApplyLayer(root_.get(), source, "layer sha256:test", limits, &stats_);
  }
  // Nothing next to rootfs but `outside`, which still holds only the
  // unchanged sentinel.
  void ExpectOutsideUntouched() const {
    std::set<std::string> top;
    for (const auto& e : fs::directory_iterator(base())) top.insert(e.path().filename());
    EXPECT_EQ(top, (std::set<std::string>{"outside", "rootfs"}));
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(outside())) out.insert(e.path().filename());
    EXPECT_EQ(out, std::set<std::string>{"sentinel"});
    EXPECT_EQ(ReadFileOrEmpty(outside() / "sentinel"), kSentinel);
    EXPECT_FALSE(fs::is_symlink(outside() / "sentinel"));
  }
  const UnpackStats& stats() const { return stats_; }

 private:
  TempDir dir_{"image-unpack-test"};
  UniqueFd root_;
  UnpackStats stats_;
};

// ---------------------------------------------------------------------------
// ParseImageRef

TEST(ParseImageRef, ParsesEachTransport) {
  auto oci = ParseImageRef("oci:/images/app");
  ASSERT_TRUE(oci.ok()) << oci.status().message();
  EXPECT_EQ(oci->kind, ImageRef::Kind::kOciLayout);
  EXPECT_EQ(oci->path, "/images/app");
  EXPECT_EQ(oci->tag, "");

  auto archive = ParseImageRef("oci-archive:app.tar:1.0");
  ASSERT_TRUE(archive.ok()) << archive.status().message();
  EXPECT_EQ(archive->kind, ImageRef::Kind::kOciArchive);
  EXPECT_EQ(archive->path, "app.tar");
  EXPECT_EQ(archive->tag, "1.0");

  // As in skopeo: PATH ends at the first ':', the TAG may hold more.
  auto docker = ParseImageRef("docker-archive:/x/app.tar:example.com/app:1");
  ASSERT_TRUE(docker.ok()) << docker.status().message();
  EXPECT_EQ(docker->kind, ImageRef::Kind::kDockerArchive);
  EXPECT_EQ(docker->path, "/x/app.tar");
  EXPECT_EQ(docker->tag, "example.com/app:1");

  auto dir = ParseImageRef("dir:/roots/a:b");
  ASSERT_TRUE(dir.ok()) << dir.status().message();
  EXPECT_EQ(dir->kind, ImageRef::Kind::kDir);
  EXPECT_EQ(dir->path, "/roots/a:b");
  EXPECT_EQ(dir->tag, "");
}

TEST(ParseImageRef, ErrorsNameThePart) {
  ExpectError(ParseImageRef("docker://busybox"), StatusCode::kInvalidArgument,
              {"unknown transport 'docker'", "oci-archive:PATH"});
  ExpectError(ParseImageRef("/images/app"), StatusCode::kInvalidArgument, {"unknown transport"});
  ExpectError(ParseImageRef("oci:"), StatusCode::kInvalidArgument, {"empty PATH"});
  ExpectError(ParseImageRef("oci::1.0"), StatusCode::kInvalidArgument, {"empty PATH"});
  ExpectError(ParseImageRef("oci-archive:a.tar:"), StatusCode::kInvalidArgument, {"empty TAG"});
  ExpectError(ParseImageRef("dir:"), StatusCode::kInvalidArgument, {"empty PATH"});
}

// ---------------------------------------------------------------------------
// ApplyLayer: what a layer may create

TEST(ApplyLayer, CreatesFilesDirectoriesSymlinksAndHardLinks) {
  Sandbox box;
  const std::string tar =
      MakeTar({Dir("etc/"), File("etc/hostname", "box\n"), Dir("usr/bin/"),
               File("usr/bin/tool", "#!/bin/sh\n", 0755), Symlink("bin", "usr/bin"),
               Symlink("etc/abs", "/etc/hostname"), HardLink("usr/bin/tool2", "usr/bin/tool"),
               File("deep/implicit/parents", "x")});
  auto diff_id = box.Apply(tar);
  ASSERT_TRUE(diff_id.ok()) << diff_id.status().message();
  EXPECT_EQ(*diff_id, Digest::Of(tar));  // the diff_id is the uncompressed stream's digest
  EXPECT_EQ(ReadFileOrEmpty(box / "etc/hostname"), "box\n");
  EXPECT_EQ(ReadFileOrEmpty(box / "usr/bin/tool"), "#!/bin/sh\n");
  EXPECT_EQ(fs::read_symlink(box / "bin"), "usr/bin");
  EXPECT_EQ(fs::read_symlink(box / "etc/abs"), "/etc/hostname");
  EXPECT_TRUE(fs::equivalent(box / "usr/bin/tool", box / "usr/bin/tool2"));
  EXPECT_EQ(ReadFileOrEmpty(box / "deep/implicit/parents"), "x");
  EXPECT_EQ(ModeOf(box / "deep") & 07777, 0755u);
  EXPECT_EQ(box.stats().entries, 8u);
  EXPECT_EQ(box.stats().bytes, 4u + 10u + 1u);
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, GzipLayerHasTheDiffIdOfItsTar) {
  Sandbox box;
  const std::string tar = MakeTar({File("a", "gzipped\n")});
  auto diff_id = box.Apply(Gzip(tar));
  ASSERT_TRUE(diff_id.ok()) << diff_id.status().message();
  EXPECT_EQ(*diff_id, Digest::Of(tar));
  EXPECT_EQ(ReadFileOrEmpty(box / "a"), "gzipped\n");
}

TEST(ApplyLayer, LaterEntriesReplaceEarlierOnesWithoutFollowingThem) {
  Sandbox box;
  const std::string host = (box.outside() / "sentinel").string();
  // A symlink to a host file, then a file of the same name: the file
  // replaces the link, the host file is untouched.
  ASSERT_TRUE(box.Apply(MakeTar({Symlink("evil", host)})).ok());
  ASSERT_TRUE(box.Apply(MakeTar({File("evil", "mine\n")})).ok());
  EXPECT_FALSE(fs::is_symlink(box / "evil"));
  EXPECT_EQ(ReadFileOrEmpty(box / "evil"), "mine\n");
  // A directory replaced by a file, and a file by a directory.
  ASSERT_TRUE(box.Apply(MakeTar({Dir("d/"), File("d/x", "1"), File("f", "2")})).ok());
  ASSERT_TRUE(box.Apply(MakeTar({File("d", "now a file"), Dir("f/"), File("f/y", "3")})).ok());
  EXPECT_EQ(ReadFileOrEmpty(box / "d"), "now a file");
  EXPECT_EQ(ReadFileOrEmpty(box / "f/y"), "3");
  box.ExpectOutsideUntouched();
}

// ---------------------------------------------------------------------------
// ApplyLayer: paths stay beneath the root

TEST(ApplyLayer, RefusesAbsolutePaths) {
  Sandbox box;
  const std::string target = (box.outside() / "planted").string();
  auto s = box.Apply(MakeTar({File(target, "x")}));
  ExpectError(s, StatusCode::kInvalidArgument,
              {"layer sha256:test", "'" + target + "'", "absolute path"});
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, RefusesDotDotComponents) {
  Sandbox box;
  auto s = box.Apply(MakeTar({Dir("a/"), File("a/../../outside/planted", "x")}));
  ExpectError(s, StatusCode::kInvalidArgument,
              {"layer sha256:test", "'a/../../outside/planted'", "'..' path component"});
  // Even one that would stay inside: no image needs it.
  ExpectError(box.Apply(MakeTar({File("a/../b", "x")})), StatusCode::kInvalidArgument,
              {"'a/../b'", "'..' path component"});
  EXPECT_FALSE(Exists(box / "b"));
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, RefusesPathsThroughAnAbsoluteSymlink) {
  Sandbox box;
  // esc -> the outside directory, by absolute path; then a file through it.
  auto s = box.Apply(MakeTar({Symlink("esc", box.outside().string()), File("esc/planted", "x")}));
  ExpectError(s, StatusCode::kInvalidArgument,
              {"layer sha256:test", "'esc/planted'", "leaves the root filesystem"});
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, RefusesPathsThroughARelativeSymlinkPointingOutside) {
  Sandbox box;
  // The link is made in one layer and used by the next, as an attacker would.
  ASSERT_TRUE(box.Apply(MakeTar({Dir("sub/"), Symlink("sub/up", "../../outside")})).ok());
  auto s = box.Apply(MakeTar({Dir("sub/up/newdir/"), File("sub/up/sentinel", "overwritten")}));
  ExpectError(s, StatusCode::kInvalidArgument, {"'sub/up/newdir/'", "leaves the root filesystem"});
  s = box.Apply(MakeTar({File("sub/up/sentinel", "overwritten")}));
  ExpectError(s, StatusCode::kInvalidArgument, {"'sub/up/sentinel'", "leaves the root filesystem"});
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, FollowsSymlinksThatStayInside) {
  Sandbox box;
  auto s =
      box.Apply(MakeTar({Dir("usr/lib/"), Symlink("lib", "usr/lib"), File("lib/libc.so", "elf")}));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(ReadFileOrEmpty(box / "usr/lib/libc.so"), "elf");
}

TEST(ApplyLayer, WhiteoutsCannotNameDotDot) {
  Sandbox box;
  // ".wh.." would name the parent of the root: the outside directory's
  // parent, were it not refused.
  ExpectError(box.Apply(MakeTar({File(".wh..", "")})), StatusCode::kInvalidArgument,
              {"'.wh..'", "whiteout"});
  ExpectError(box.Apply(MakeTar({Dir("a/"), File("a/.wh.", "")})), StatusCode::kInvalidArgument,
              {"'a/.wh.'", "whiteout"});
  box.ExpectOutsideUntouched();
}

TEST(ApplyLayer, WhiteoutsDoNotReachThroughSymlinksOutside) {
  Sandbox box;
  ASSERT_TRUE(box.Apply(MakeTar({Symlink("esc", "../outside")})).ok());
  ExpectError(box.Apply(MakeTar({File("esc/.wh.sentinel", "")})), StatusCode::kInvalidArgument,
              {"leaves the root filesystem"});
  ExpectError(box.Apply(MakeTar({File("esc/.wh..wh..opq", "")})), StatusCode::kInvalidArgument,
              {"leaves the root filesystem"});
  box.ExpectOutsideUntouched();
}

// ---------------------------------------------------------------------------
// ApplyLayer: hard links

TEST(ApplyLayer, HardLinkTargetMustAlreadyBeInTheTree) {
  Sandbox box;
  ExpectError(box.Apply(MakeTar({HardLink("l", "missing")})), StatusCode::kInvalidArgument,
              {"'l'", "hard link target 'missing'", "not in the tree"});
  // A link before its target.
  ExpectError(box.Apply(MakeTar({HardLink("l", "later"), File("later", "x")})),
              StatusCode::kInvalidArgument, {"not in the tree"});
  ExpectError(box.Apply(MakeTar({Dir("d/"), HardLink("l", "d")})), StatusCode::kInvalidArgument,
              {"a directory"});
}

TEST(ApplyLayer, HardLinksCannotReachOutTheTree) {
  Sandbox box;
  const std::string host = (box.outside() / "sentinel").string();
  ExpectError(box.Apply(MakeTar({HardLink("l", host)})), StatusCode::kInvalidArgument,
              {"hard link target", "absolute path"});
  ExpectError(box.Apply(MakeTar({HardLink("l", "../outside/sentinel")})),
              StatusCode::kInvalidArgument, {"hard link target", "'..' path component"});
  // Through a symlink: absolute, then relative.
  ASSERT_TRUE(
      box.Apply(MakeTar({Symlink("abs", box.outside().string()), Symlink("rel", "../outside")}))
          .ok());
  ExpectError(box.Apply(MakeTar({HardLink("l", "abs/sentinel")})), StatusCode::kInvalidArgument,
              {"hard link target 'abs/sentinel'", "leaves the root filesystem"});
  ExpectError(box.Apply(MakeTar({HardLink("l", "rel/sentinel")})), StatusCode::kInvalidArgument,
              {"hard link target 'rel/sentinel'", "leaves the root filesystem"});
  EXPECT_FALSE(Exists(box / "l"));
  struct stat st {};
  ASSERT_EQ(::stat((box.outside() / "sentinel").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
  box.ExpectOutsideUntouched();
}

// ---------------------------------------------------------------------------
// ApplyLayer: special files, modes, owners, xattrs

TEST(ApplyLayer, RefusesDeviceNodesAndFifos) {
  Sandbox box;
  ExpectError(box.Apply(MakeTar({Node("dev/null", TarMember::Kind::kChar)})),
              StatusCode::kInvalidArgument, {"'dev/null'", "character device"});
  ExpectError(box.Apply(MakeTar({Node("dev/loop0", TarMember::Kind::kBlock)})),
              StatusCode::kInvalidArgument, {"'dev/loop0'", "block device"});
  ExpectError(box.Apply(MakeTar({Node("pipe", TarMember::Kind::kFifo)})),
              StatusCode::kInvalidArgument, {"'pipe'", "FIFO"});
  EXPECT_FALSE(Exists(box / "dev/null"));
  EXPECT_FALSE(Exists(box / "dev/loop0"));
  EXPECT_FALSE(Exists(box / "pipe"));
}

TEST(ApplyLayer, DropsSetuidSetgidAndFileStickyAndMakesEverythingReadable) {
  Sandbox box;
  auto s = box.Apply(
      MakeTar({File("suid", "x", 04755), File("sgid", "x", 02711), File("sticky", "x", 01644),
               File("private", "x", 0600), File("private-exec", "x", 0700), Dir("tmp/", 01777),
               Dir("sgid-dir/", 02770), Dir("secret/", 0700)}));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(ModeOf(box / "suid") & 07777, 0755u);
  EXPECT_EQ(ModeOf(box / "sgid") & 07777, 0755u);
  EXPECT_EQ(ModeOf(box / "sticky") & 07777, 0644u);
  EXPECT_EQ(ModeOf(box / "private") & 07777, 0644u);
  EXPECT_EQ(ModeOf(box / "private-exec") & 07777, 0755u);
  EXPECT_EQ(ModeOf(box / "tmp") & 07777, 01777u);  // sticky stays on directories
  EXPECT_EQ(ModeOf(box / "sgid-dir") & 07777, 0775u);
  EXPECT_EQ(ModeOf(box / "secret") & 07777, 0755u);
}

TEST(ApplyLayer, EverythingIsOwnedByTheUnpacker) {
  Sandbox box;
  TarMember file = File("home/app/file", "x");
  file.uid = 1000;
  TarMember dir = Dir("home/app/", 0700);
  dir.uid = 1000;
  TarMember link = Symlink("home/app/link", "file");
  link.uid = 1000;
  ASSERT_TRUE(box.Apply(MakeTar({dir, file, link})).ok());
  for (const char* p : {"home/app", "home/app/file", "home/app/link"}) {
    struct stat st {};
    ASSERT_EQ(::lstat((box / p).c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_uid, ::geteuid()) << p;
    EXPECT_EQ(st.st_gid, ::getegid()) << p;
  }
}

TEST(ApplyLayer, DoesNotApplyXattrs) {
  Sandbox box;
  // The filesystem under the test takes user xattrs, so their absence below
  // is the unpacker's doing.
  WriteFile(box.base() / "probe", "");
  ASSERT_EQ(::setxattr((box.base() / "probe").c_str(), "user.probe", "1", 1, 0), 0)
      << "test needs a filesystem with user xattrs: " << std::strerror(errno);
  TarMember file = File("bin/ping", "elf", 0755);
  file.xattrs = {{"user.note", "hello"},
                 {"security.capability",
                  std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8) + std::string(12, '\0')}};
  ASSERT_TRUE(box.Apply(MakeTar({file})).ok());
  char buf[64];
  EXPECT_LT(::getxattr((box / "bin/ping").c_str(), "user.note", buf, sizeof buf), 0);
  EXPECT_LT(::getxattr((box / "bin/ping").c_str(), "security.capability", buf, sizeof buf), 0);
  EXPECT_EQ(::listxattr((box / "bin/ping").c_str(), buf, sizeof buf), 0);
}

// ---------------------------------------------------------------------------
// ApplyLayer: whiteouts

TEST(ApplyLayer, WhiteoutRemovesANameFromLowerLayers) {
  Sandbox box;
  ASSERT_TRUE(box.Apply(MakeTar({Dir("a/"), File("a/x", "1"), File("a/y", "2"), Dir("b/"),
                                 File("b/z", "3")}))
                  .ok());
  auto s =
      box.Apply(MakeTar({File("a/.wh.x", ""), File(".wh.b", ""), File(".wh.never-existed", "")}));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_FALSE(Exists(box / "a/x"));
  EXPECT_EQ(ReadFileOrEmpty(box / "a/y"), "2");
  EXPECT_FALSE(Exists(box / "b"));
  EXPECT_FALSE(Exists(box / "a/.wh.x"));  // whiteouts are markers, not files
  EXPECT_FALSE(Exists(box / ".wh.b"));
}

TEST(ApplyLayer, WhiteoutDoesNotHideItsOwnLayer) {
  Sandbox box;
  ASSERT_TRUE(box.Apply(MakeTar({File("g", "lower")})).ok());
  ASSERT_TRUE(box.Apply(MakeTar({File("g", "upper"), File(".wh.g", "")})).ok());
  EXPECT_EQ(ReadFileOrEmpty(box / "g"), "upper");
}

TEST(ApplyLayer, OpaqueWhiteoutEmptiesLowerContentOnly) {
  for (bool marker_first : {true, false}) {
    SCOPED_TRACE(marker_first ? "marker first" : "marker last");
    Sandbox box;
    ASSERT_TRUE(
        box.Apply(MakeTar({Dir("d/"), File("d/old", "1"), Dir("d/sub/"), File("d/sub/old2", "2"),
                           Dir("d/gone/"), File("d/gone/old3", "3"), File("keep", "4")}))
            .ok());
    std::vector<TarMember> upper = {File("d/new", "5"), File("d/sub/new2", "6")};
    if (marker_first) {
      upper.insert(upper.begin(), File("d/.wh..wh..opq", ""));
    } else {
      upper.push_back(File("d/.wh..wh..opq", ""));
    }
    auto s = box.Apply(MakeTar(upper));
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_FALSE(Exists(box / "d/old"));
    EXPECT_FALSE(Exists(box / "d/sub/old2"));
    EXPECT_FALSE(Exists(box / "d/gone"));
    EXPECT_EQ(ReadFileOrEmpty(box / "d/new"), "5");
    EXPECT_EQ(ReadFileOrEmpty(box / "d/sub/new2"), "6");
    EXPECT_EQ(ReadFileOrEmpty(box / "keep"), "4");
    EXPECT_FALSE(Exists(box / "d/.wh..wh..opq"));
  }
}

// ---------------------------------------------------------------------------
// ApplyLayer: limits and formats

TEST(ApplyLayer, EnforcesTheEntryLimit) {
  Sandbox box;
  UnpackLimits limits;
  limits.max_entries = 2;
  ExpectError(box.Apply(MakeTar({File("a", ""), File("b", ""), File("c", "")}), limits),
              StatusCode::kInvalidArgument, {"'c'", "limit of 2 entries"});
}

TEST(ApplyLayer, EnforcesTheByteLimitsAcrossLayers) {
  Sandbox box;
  UnpackLimits limits;
  limits.max_bytes = 100;
  limits.max_file_bytes = 60;
  ExpectError(box.Apply(MakeTar({File("big", std::string(61, 'x'))}), limits),
              StatusCode::kInvalidArgument, {"'big'", "limit of 60"});
  ASSERT_TRUE(box.Apply(MakeTar({File("a", std::string(60, 'x'))}), limits).ok());
  ExpectError(box.Apply(MakeTar({File("b", std::string(41, 'x'))}), limits),
              StatusCode::kInvalidArgument, {"'b'", "limit of 100 bytes"});
}

TEST(ApplyLayer, EnforcesPathLimits) {
  Sandbox box;
  UnpackLimits limits;
  limits.max_path_depth = 3;
  limits.max_path_bytes = 40;
  ExpectError(box.Apply(MakeTar({File("a/b/c/d", "")}), limits), StatusCode::kInvalidArgument,
              {"'a/b/c/d'", "4 components", "limit of 3"});
  ExpectError(box.Apply(MakeTar({File(std::string(41, 'n'), "")}), limits),
              StatusCode::kInvalidArgument, {"41 bytes", "limit of 40"});
  ExpectError(box.Apply(MakeTar({Symlink("l", std::string(41, 't'))}), limits),
              StatusCode::kInvalidArgument, {"symlink target", "limit of 40"});
  ASSERT_TRUE(box.Apply(MakeTar({File("a/b/c", "")}), limits).ok());
}

TEST(ApplyLayer, EnforcesTheUncompressedStreamLimit) {
  Sandbox box;
  UnpackLimits limits;
  limits.max_tar_bytes = 64 * 1024;
  // 1 MiB of zeros gzips to about 1 KiB: the tar's end is reached early, the
  // rest is read (for the diff_id) and counted.
  std::string tar = MakeTar({File("a", "x")}) + std::string(1 << 20, '\0');
  std::string gz = Gzip(tar);
  ASSERT_LT(gz.size(), 8192u);
  ExpectError(box.Apply(gz, limits), StatusCode::kInvalidArgument,
              {"uncompressed layer is larger than the limit of 65536"});
}

TEST(ApplyLayer, RefusesZstdWithAClearError) {
  Sandbox box;
  ExpectError(box.Apply(std::string("\x28\xb5\x2f\xfd", 4) + std::string(100, 'z')),
              StatusCode::kInvalidArgument, {"layer sha256:test", "zstd"});
}

TEST(ApplyLayer, RefusesGarbage) {
  Sandbox box;
  ExpectError(box.Apply(std::string(2048, 'g')), StatusCode::kInvalidArgument,
              {"layer sha256:test", "bad tar stream"});
  ExpectError(box.Apply(""), StatusCode::kInvalidArgument, {"empty layer"});
}

TEST(ApplyLayer, ReportsTheSourcesErrorFirst) {
  // A source that fails at its end, as a blob whose digest does not match.
  class FailingAtEnd : public image::ByteSource {
   public:
    explicit FailingAtEnd(std::string data) : data_(std::move(data)), inner_(data_) {}
    StatusOr<size_t> Read(std::span<uint8_t> buf) override {
      ASSIGN_OR_RETURN(size_t n, inner_.Read(buf));
      if (n == 0) return DataLoss("blob sha256:abc: digest mismatch");
      return n;
    }

   private:
    std::string data_;
    BufferSource inner_;
  };
  for (bool gzip : {false, true}) {
    Sandbox box;
    FailingAtEnd source(MakeTar({File("a", "x")}, gzip));
    UnpackStats stats;
    UniqueFd root(::open(box.rootfs().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto s = ApplyLayer(root.get(), source, "layer 0", UnpackLimits{}, &stats);
    ExpectError(s, StatusCode::kDataLoss, {"digest mismatch"});
  }
}

// ---------------------------------------------------------------------------
// UnpackImage: whole images in each format

// An OCI image from layer tars (each gzip-compressed when asked).
struct TestImage {
  std::vector<std::string> tars;
  std::vector<std::string> blobs;  // as stored: gzip or not
  std::string config;
  std::string manifest;
  std::string ManifestDigest() const { return Digest::Of(manifest).str(); }
  // hex -> bytes of every blob
  std::map<std::string, std::string> Blobs() const {
    std::map<std::string, std::string> out;
    for (const std::string& b : blobs) out[Hex(b)] = b;
    out[Hex(config)] = config;
    out[Hex(manifest)] = manifest;
    return out;
  }
};

struct ImageSpec {
  bool gzip = false;
  std::string media_type = "";  // overrides the natural one
  bool wrong_diff_id = false;
};

TestImage MakeImage(const std::vector<std::string>& tars, const ImageSpec& spec = {}) {
  TestImage img;
  img.tars = tars;
  json diff_ids = json::array();
  json layers = json::array();
  for (size_t i = 0; i < tars.size(); ++i) {
    img.blobs.push_back(spec.gzip ? Gzip(tars[i]) : tars[i]);
    diff_ids.push_back(Digest::Of(spec.wrong_diff_id && i == 0 ? "other" : tars[i]).str());
    std::string type = spec.media_type;
    if (type.empty()) type = spec.gzip ? image::kOciLayerTarGzip : image::kOciLayerTar;
    layers.push_back(DescriptorJson(type, img.blobs.back()));
  }
  img.config = json{{"architecture", "amd64"},
                    {"os", "linux"},
                    {"config",
                     {{"Entrypoint", {"/bin/tool"}},
                      {"Cmd", {"--flag", "value"}},
                      {"Env", {"PATH=/bin", "MODE=test"}},
                      {"WorkingDir", "/work"},
                      {"User", "1000:1000"}}},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                   .dump();
  img.manifest = json{
      {"schemaVersion", 2},
      {"mediaType", image::kOciManifest},
      {"config", DescriptorJson(image::kOciConfig, img.config)},
      {"layers",
       layers}}.dump();
  return img;
}

std::string IndexJson(const std::vector<std::pair<const TestImage*, std::string>>& images) {
  json manifests = json::array();
  for (const auto& [img, ref] : images) {
    json d = DescriptorJson(image::kOciManifest, img->manifest);
    d["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
    d["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
    manifests.push_back(d);
  }
  return json{{"schemaVersion", 2}, {"mediaType", image::kOciIndex}, {"manifests", manifests}}
      .dump();
}

const std::string kOciLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

void WriteLayout(const fs::path& dir, const std::vector<const TestImage*>& images,
                 const std::string& index) {
  WriteFile(dir / "oci-layout", kOciLayoutFile);
  WriteFile(dir / "index.json", index);
  for (const TestImage* img : images) {
    for (const auto& [hex, data] : img->Blobs()) WriteFile(dir / "blobs/sha256" / hex, data);
  }
}

// The archive members of an OCI layout, blobs in the order given (hex).
std::vector<TarMember> LayoutMembers(const std::map<std::string, std::string>& blobs,
                                     const std::vector<std::string>& order,
                                     const std::string& index) {
  std::vector<TarMember> m = {File("oci-layout", kOciLayoutFile), File("index.json", index),
                              Dir("blobs/"), Dir("blobs/sha256/")};
  for (const std::string& hex : order) m.push_back(File("blobs/sha256/" + hex, blobs.at(hex)));
  return m;
}

std::vector<std::string> Keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

// Two layers: the first writes etc/version and etc/only-lower, the second
// overwrites etc/version, whites out etc/only-lower and adds bin/tool.
std::vector<std::string> TwoLayers(const std::string& version) {
  return {MakeTar({Dir("etc/"), File("etc/version", "lower\n"), File("etc/only-lower", "x")}),
          MakeTar({File("etc/version", version), File("etc/.wh.only-lower", ""),
                   File("bin/tool", "#!/bin/true\n", 04755)})};
}

class UnpackImageTest : public ::testing::Test {
 protected:
  UnpackImageTest() { fs::create_directory(rootfs()); }
  fs::path rootfs() const { return fs::path(dir_.path()) / "rootfs"; }
  fs::path path(const std::string& name) const { return fs::path(dir_.path()) / name; }
  void ExpectTwoLayerTree(const std::string& version) const {
    EXPECT_EQ(ReadFileOrEmpty(rootfs() / "etc/version"), version);
    EXPECT_FALSE(Exists(rootfs() / "etc/only-lower"));
    EXPECT_EQ(ReadFileOrEmpty(rootfs() / "bin/tool"), "#!/bin/true\n");
    EXPECT_EQ(ModeOf(rootfs() / "bin/tool") & 07777, 0755u);
  }
  bool RootfsEmpty() const { return fs::is_empty(rootfs()); }

  TempDir dir_{"image-unpack-test"};
};

TEST_F(UnpackImageTest, UnpacksAnOciLayoutAndReturnsItsConfig) {
  TestImage img = MakeImage(TwoLayers("v1\n"), {.gzip = true});
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ImageRef ref{ImageRef::Kind::kOciLayout, path("layout"), ""};
  auto config = UnpackImage(ref, rootfs(), UnpackLimits{});
  ASSERT_TRUE(config.ok()) << config.status().message();
  ExpectTwoLayerTree("v1\n");
  EXPECT_EQ(config->entrypoint, std::vector<std::string>{"/bin/tool"});
  EXPECT_EQ(config->cmd, (std::vector<std::string>{"--flag", "value"}));
  EXPECT_EQ(config->env, (std::vector<std::string>{"PATH=/bin", "MODE=test"}));
  EXPECT_EQ(config->working_dir, "/work");
  EXPECT_EQ(config->user, "1000:1000");
  EXPECT_EQ(config->manifest_digest, img.ManifestDigest());
}

TEST_F(UnpackImageTest, SelectsATagInAnOciArchive) {
  TestImage one = MakeImage(TwoLayers("one\n"));
  TestImage two = MakeImage(TwoLayers("two\n"), {.gzip = true});
  std::map<std::string, std::string> blobs = one.Blobs();
  blobs.merge(two.Blobs());
  const std::string index = IndexJson({{&one, "1.0"}, {&two, "2.0"}});
  WriteFile(path("img.tar"), MakeTar(LayoutMembers(blobs, Keys(blobs), index)));

  auto config =
      UnpackImage({ImageRef::Kind::kOciArchive, path("img.tar"), "2.0"}, rootfs(), UnpackLimits{});
  ASSERT_TRUE(config.ok()) << config.status().message();
  ExpectTwoLayerTree("two\n");
  EXPECT_EQ(config->manifest_digest, two.ManifestDigest());

  fs::remove_all(rootfs());
  fs::create_directory(rootfs());
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciArchive, path("img.tar"), ""}, rootfs(), UnpackLimits{}),
      StatusCode::kInvalidArgument, {"choose one by name"});
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciArchive, path("img.tar"), "3.0"}, rootfs(), UnpackLimits{}),
      StatusCode::kNotFound, {"3.0"});
  EXPECT_TRUE(RootfsEmpty());
}

TEST_F(UnpackImageTest, AppliesLayersInManifestOrderWhateverTheArchiveOrder) {
  // Layer 0 is used again as layer 2, and the archive holds the blobs in
  // reverse manifest order: a reader that applied layers as they arrive
  // would leave "second" or "third".
  const std::vector<std::string> tars = {
      MakeTar({File("f", "first")}), MakeTar({File("f", "second")}), MakeTar({File("g", "third")}),
      MakeTar({File("f", "first")})};
  TestImage img = MakeImage(tars);
  std::map<std::string, std::string> blobs = img.Blobs();
  std::vector<std::string> order = {Hex(img.manifest), Hex(tars[2]), Hex(tars[1]), Hex(tars[0]),
                                    Hex(img.config)};
  WriteFile(path("img.tar"), MakeTar(LayoutMembers(blobs, order, IndexJson({{&img, "latest"}}))));
  auto config =
      UnpackImage({ImageRef::Kind::kOciArchive, path("img.tar"), ""}, rootfs(), UnpackLimits{});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(ReadFileOrEmpty(rootfs() / "f"), "first");
  EXPECT_EQ(ReadFileOrEmpty(rootfs() / "g"), "third");
  // The spool files were unlinked temporaries: nothing else in the tree.
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(rootfs())) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"f", "g"}));
}

TEST_F(UnpackImageTest, UnpacksADockerArchiveByTag) {
  // `docker save` of two images (legacy layout: <id>/layer.tar).
  TestImage a = MakeImage(TwoLayers("a\n"));
  TestImage b = MakeImage(TwoLayers("b\n"));
  std::vector<TarMember> members;
  json manifest = json::array();
  for (const auto& [img, tag] :
       {std::pair{&a, "example.com/app:a"}, std::pair{&b, "example.com/app:b"}}) {
    json layer_names = json::array();
    for (size_t i = 0; i < img->tars.size(); ++i) {
      std::string id = Hex(std::string(tag) + std::to_string(i));
      members.push_back(Dir(id + "/"));
      members.push_back(File(id + "/layer.tar", img->tars[i]));
      layer_names.push_back(id + "/layer.tar");
    }
    members.push_back(File(Hex(img->config) + ".json", img->config));
    manifest.push_back(
        {{"Config", Hex(img->config) + ".json"}, {"RepoTags", {tag}}, {"Layers", layer_names}});
  }
  members.push_back(File("manifest.json", manifest.dump()));
  WriteFile(path("docker.tar"), MakeTar(members));

  auto ref = ParseImageRef("docker-archive:" + path("docker.tar").string() + ":example.com/app:b");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto config = UnpackImage(*ref, rootfs(), UnpackLimits{});
  ASSERT_TRUE(config.ok()) << config.status().message();
  ExpectTwoLayerTree("b\n");
  EXPECT_EQ(config->cmd, (std::vector<std::string>{"--flag", "value"}));
  EXPECT_FALSE(config->manifest_digest.empty());
}

TEST_F(UnpackImageTest, RefusesATamperedLayerByte) {
  TestImage img = MakeImage(TwoLayers("v1\n"), {.gzip = true});
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  const fs::path blob = path("layout") / "blobs/sha256" / Hex(img.blobs[1]);
  std::string bytes = ReadFileOrEmpty(blob);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
  WriteFile(blob, bytes);
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciLayout, path("layout"), ""}, rootfs(), UnpackLimits{}),
      StatusCode::kDataLoss, {Hex(img.blobs[1]), "digest mismatch"});
  EXPECT_TRUE(RootfsEmpty());
}

TEST_F(UnpackImageTest, RefusesALayerWhoseContentIsNotItsDiffId) {
  // The gzip blob is intact; the config claims a different uncompressed
  // content. Only the unpacker can see this (it is what ran the gunzip).
  TestImage img = MakeImage(TwoLayers("v1\n"), {.gzip = true, .wrong_diff_id = true});
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciLayout, path("layout"), ""}, rootfs(), UnpackLimits{}),
      StatusCode::kDataLoss, {"layer 0", "rootfs.diff_ids[0]"});
}

TEST_F(UnpackImageTest, RefusesAnImageOtherThanThePinnedOne) {
  TestImage img = MakeImage(TwoLayers("v1\n"));
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ImageRef ref{ImageRef::Kind::kOciLayout, path("layout"), ""};
  const std::string other = Digest::Of("another manifest").str();
  ExpectError(UnpackImage(ref, rootfs(), UnpackLimits{}, other), StatusCode::kDataLoss,
              {other, img.ManifestDigest()});
  EXPECT_TRUE(RootfsEmpty());
  ExpectError(UnpackImage(ref, rootfs(), UnpackLimits{}, "sha256:nothex"),
              StatusCode::kInvalidArgument, {"expected manifest digest"});
  auto config = UnpackImage(ref, rootfs(), UnpackLimits{}, img.ManifestDigest());
  ASSERT_TRUE(config.ok()) << config.status().message();
  ExpectTwoLayerTree("v1\n");
}

TEST_F(UnpackImageTest, RefusesZstdLayersBeforeUnpacking) {
  TestImage img = MakeImage(TwoLayers("v1\n"), {.media_type = image::kOciLayerTarZstd});
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciLayout, path("layout"), ""}, rootfs(), UnpackLimits{}),
      StatusCode::kInvalidArgument, {"layer 0", "zstd"});
  EXPECT_TRUE(RootfsEmpty());
}

TEST_F(UnpackImageTest, NamesTheLayerAndEntryOfARefusal) {
  TestImage img =
      MakeImage({MakeTar({File("ok", "x")}), MakeTar({Node("dev/kmsg", TarMember::Kind::kChar)})});
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ExpectError(
      UnpackImage({ImageRef::Kind::kOciLayout, path("layout"), ""}, rootfs(), UnpackLimits{}),
      StatusCode::kInvalidArgument,
      {"layer 1 (sha256:" + Hex(img.blobs[1]) + ")", "'dev/kmsg'", "device"});
}

TEST_F(UnpackImageTest, NeedsAnEmptyRootfsDirectory) {
  TestImage img = MakeImage(TwoLayers("v1\n"));
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  ImageRef ref{ImageRef::Kind::kOciLayout, path("layout"), ""};
  WriteFile(rootfs() / "stale", "x");
  ExpectError(UnpackImage(ref, rootfs(), UnpackLimits{}), StatusCode::kFailedPrecondition,
              {"not empty", "'stale'"});
  ExpectError(UnpackImage(ref, path("missing"), UnpackLimits{}), StatusCode::kNotFound,
              {"does not exist"});
  fs::create_directory_symlink(rootfs(), path("link"));
  ExpectError(UnpackImage(ref, path("link"), UnpackLimits{}), StatusCode::kInvalidArgument,
              {"symlink"});
}

TEST_F(UnpackImageTest, DirImagesAreUsedAsIs) {
  auto config =
      UnpackImage({ImageRef::Kind::kDir, dir_.path(), ""}, path("unused"), UnpackLimits{});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->working_dir, "/");
  ASSERT_EQ(config->env.size(), 1u);
  EXPECT_EQ(config->env[0].rfind("PATH=", 0), 0u);
  EXPECT_TRUE(config->manifest_digest.empty());
  EXPECT_FALSE(Exists(path("unused")));
  ExpectError(UnpackImage({ImageRef::Kind::kDir, path("missing"), ""}, rootfs(), UnpackLimits{}),
              StatusCode::kIo, {"missing"});
}

TEST_F(UnpackImageTest, EnforcesTheImageSizeLimit) {
  TestImage img = MakeImage(TwoLayers("v1\n"));
  WriteLayout(path("layout"), {&img}, IndexJson({{&img, "1.0"}}));
  UnpackLimits limits;
  limits.max_image_bytes = 1000;
  ExpectError(UnpackImage({ImageRef::Kind::kOciLayout, path("layout"), ""}, rootfs(), limits),
              StatusCode::kInvalidArgument, {"limit of 1000"});
}

}  // namespace
}  // namespace cce::executor
