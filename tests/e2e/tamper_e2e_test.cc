// The tamper matrix: every modification of an encrypted dataset must be
// detected by `cce dataset verify`, by `cce dataset decrypt` (which then
// writes nothing) and through a cce-decryptfs mount (mount refused, or EIO on
// the affected file, never wrong bytes).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "e2e/harness.h"
#include "format/format.h"

namespace cce::e2e {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kSeg = 4096;  // format v2: 4 KiB segments
constexpr uint64_t kSealed = kSeg + 16;

uint64_t SegOff(uint64_t i) {
  return 68 + i * kSealed;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string d = ReadFile(path);
  ASSERT_LT(offset, d.size()) << path;
  d[offset] = static_cast<char>(d[offset] ^ 0x01);
  WriteFile(path, d);
}

std::string Slice(const std::string& path, uint64_t off, uint64_t len) {
  return ReadFile(path).substr(off, len);
}

void Splice(const std::string& path, uint64_t off, const std::string& bytes) {
  std::string d = ReadFile(path);
  d.replace(off, bytes.size(), bytes);
  WriteFile(path, d);
}

// Reads the whole file with read(2); returns 0 on success, else errno.
int ReadErrno(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  char buf[65536];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return err;
}

class TamperMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/dev/fuse")) << "/dev/fuse is required (tests run as root in CI)";
    std::mt19937_64 rng(7);
    auto random = [&](size_t n) {
      std::string s(n, '\0');
      for (char& c : s) c = static_cast<char>(rng());
      return s;
    };
    plain_["a.bin"] = random(10000);  // segments 4096, 4096, 1808
    plain_["b.bin"] = random(10000);
    plain_["dir/c.txt"] = "untouched file\n";
    for (const auto& [p, d] : plain_) WriteFile(tmp_ / ("src/" + p), d);
    key_ = tmp_ / "k.key";
    other_key_ = tmp_ / "other.key";
    ASSERT_EQ(RunCommand({BinPath("cce"), "key", "generate", "--out", key_}).exit_code, 0);
    ASSERT_EQ(RunCommand({BinPath("cce"), "key", "generate", "--out", other_key_}).exit_code, 0);
    for (const char* name : {"old", "base"}) {  // "old": an earlier encryption, for rollback
      auto r = RunCommand(
          {BinPath("cce"), "dataset", "encrypt", "--key", key_, tmp_ / "src", tmp_ / name});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    auto key = format::DatasetKey::LoadFile(key_);
    ASSERT_TRUE(key.ok());
    for (const char* name : {"old", "base"}) {
      auto m = format::ReadManifest(tmp_ / name, *key);
      ASSERT_TRUE(m.ok()) << m.status().message();
      for (const auto& e : m->entries) ids_[name][e.path] = e.id;
    }
  }

  std::string Obj(const std::string& dir, const std::string& which, const std::string& file) {
    return dir + "/objects/" + ids_[which][file];
  }

  struct Case {
    std::string name;
    std::function<void(const std::string& dir)> mutate;
    std::string verify_says;         // expected in verify's stderr
    std::string affected = "a.bin";  // the file that must read as EIO through the mount
    bool mount_refused = false;      // the whole dataset is refused at mount time
    bool use_other_key = false;
    int verify_exit = 3;  // 3: authentication failed; 2: not a dataset at all
  };

  void Check(const Case& c) {
    SCOPED_TRACE(c.name);
    std::string dir = tmp_ / ("case-" + c.name);
    fs::copy(tmp_ / "base", dir, fs::copy_options::recursive);
    c.mutate(dir);
    std::string key = c.use_other_key ? other_key_ : key_;

    auto v = RunCommand({BinPath("cce"), "dataset", "verify", "--key", key, dir});
    EXPECT_EQ(v.exit_code, c.verify_exit) << v.out << v.err;
    EXPECT_NE(v.err.find(c.verify_says), std::string::npos) << v.err;
    if (!c.mount_refused) {
      EXPECT_NE(v.err.find("'" + c.affected + "'"), std::string::npos) << v.err;
    }

    std::string out = tmp_ / ("out-" + c.name);
    auto d = RunCommand({BinPath("cce"), "dataset", "decrypt", "--key", key, dir, out});
    EXPECT_NE(d.exit_code, 0);
    EXPECT_FALSE(fs::exists(out)) << "decrypt left a partial tree";

    std::string mnt = tmp_ / ("mnt-" + c.name);
    DecryptFsMount m(dir, mnt, key);
    if (c.mount_refused) {
      EXPECT_NE(m.result().exit_code, 0) << "mount of a tampered dataset succeeded";
      // The same exit code as `cce dataset verify`: one table for every binary.
      EXPECT_EQ(m.result().exit_code, c.verify_exit) << m.result().err;
      EXPECT_EQ(m.result().err.rfind("cce-decryptfs: error: ", 0), 0u) << m.result().err;
      EXPECT_FALSE(IsMounted(mnt));
      return;
    }
    ASSERT_TRUE(m.mounted()) << m.result().err;
    std::string got;
    EXPECT_EQ(ReadErrno(mnt + "/" + c.affected, &got), EIO);
    // Never wrong bytes: whatever was returned before the error is a true prefix.
    EXPECT_EQ(got, plain_[c.affected].substr(0, got.size()));
    std::string other;
    EXPECT_EQ(ReadErrno(mnt + "/dir/c.txt", &other), 0);
    EXPECT_EQ(other, plain_["dir/c.txt"]);
  }

  TempDir tmp_;
  std::map<std::string, std::string> plain_;
  std::map<std::string, std::map<std::string, std::string>> ids_;
  std::string key_, other_key_;
};

TEST_F(TamperMatrix, EveryModificationIsDetectedByVerifyDecryptAndMount) {
  auto a = [this](const std::string& dir) { return Obj(dir, "base", "a.bin"); };
  auto b = [this](const std::string& dir) { return Obj(dir, "base", "b.bin"); };
  const std::string kDigest = "header digest differs from the manifest";
  std::vector<Case> cases = {
      {"header-magic", [&](auto& d) { FlipByte(a(d), 0); }, kDigest},
      {"header-version", [&](auto& d) { FlipByte(a(d), 8); }, kDigest},
      {"header-size-field", [&](auto& d) { FlipByte(a(d), 60); }, kDigest},
      {"salt", [&](auto& d) { FlipByte(a(d), 40); }, kDigest},
      {"body", [&](auto& d) { FlipByte(a(d), SegOff(1) + 100); },
       "segment 1: authentication failed"},
      {"tag", [&](auto& d) { FlipByte(a(d), SegOff(1) - 1); }, "segment 0: authentication failed"},
      {"last-segment-tag", [&](auto& d) { FlipByte(a(d), SegOff(2) + 1808 + 15); },
       "segment 2: authentication failed"},
      {"truncate-at-boundary", [&](auto& d) { fs::resize_file(a(d), SegOff(2)); },
       "truncated or extended"},
      {"truncate-mid-segment", [&](auto& d) { fs::resize_file(a(d), SegOff(1) + 1000); },
       "truncated or extended"},
      {"extend-one-byte", [&](auto& d) { WriteFile(a(d), ReadFile(a(d)) + "x"); },
       "truncated or extended"},
      {"extend-with-segment",
       [&](auto& d) { WriteFile(a(d), ReadFile(a(d)) + Slice(a(d), SegOff(0), kSealed)); },
       "truncated or extended"},
      {"swap-segments-in-file",
       [&](auto& d) {
         std::string s0 = Slice(a(d), SegOff(0), kSealed), s1 = Slice(a(d), SegOff(1), kSealed);
         Splice(a(d), SegOff(0), s1);
         Splice(a(d), SegOff(1), s0);
       },
       "segment 0: authentication failed"},
      {"segment-from-other-file",
       [&](auto& d) { Splice(a(d), SegOff(0), Slice(b(d), SegOff(0), kSealed)); },
       "segment 0: authentication failed"},
      {"swap-files",
       [&](auto& d) {
         std::string x = ReadFile(a(d));
         WriteFile(a(d), ReadFile(b(d)));
         WriteFile(b(d), x);
       },
       kDigest},
      {"rollback-one-file",
       [&](auto& d) { WriteFile(a(d), ReadFile(Obj(tmp_ / "old", "old", "a.bin"))); }, kDigest},
      // Missing or extra objects are refused at mount time (format::CheckObjectSet).
      {"delete-file", [&](auto& d) { fs::remove(a(d)); }, "'a.bin'", "", true},
      {"rename-file", [&](auto& d) { fs::rename(a(d), d + "/objects/" + std::string(32, '0')); },
       "not named in the manifest", "", true},
      {"manifest-edit", [&](auto& d) { FlipByte(d + "/manifest.cce", 200); },
       "manifest.cce: segment 0: authentication failed", "", true},
      {"manifest-truncated", [&](auto& d) { fs::resize_file(d + "/manifest.cce", 100); },
       "manifest.cce", "", true},
      {"manifest-deleted", [&](auto& d) { fs::remove(d + "/manifest.cce"); }, "no manifest", "",
       true, false, 2},
      // An authentic but foreign manifest: its objects are absent, ours are strays.
      {"manifest-from-older-encryption",
       [&](auto& d) {
         fs::copy_file(tmp_ / "old/manifest.cce", d + "/manifest.cce",
                       fs::copy_options::overwrite_existing);
       },
       "object not named in the manifest", "", true},
      {"wrong-key", [](auto&) {}, "wrong key", "", true, true},
  };
  for (const Case& c : cases) Check(c);
}

TEST_F(TamperMatrix, DecryptFsRefusesATamperedManifestOrTheWrongKeyWithExitThree) {
  std::string dir = tmp_ / "tampered";
  fs::copy(tmp_ / "base", dir, fs::copy_options::recursive);
  FlipByte(dir + "/manifest.cce", 200);
  DecryptFsMount tampered(dir, tmp_ / "mnt-tampered", key_);
  EXPECT_EQ(tampered.result().exit_code, 3) << tampered.result().err;
  EXPECT_NE(tampered.result().err.find("authentication failed"), std::string::npos)
      << tampered.result().err;
  EXPECT_FALSE(IsMounted(tmp_ / "mnt-tampered"));

  DecryptFsMount wrong_key(tmp_ / "base", tmp_ / "mnt-wrong-key", other_key_);
  EXPECT_EQ(wrong_key.result().exit_code, 3) << wrong_key.result().err;
  EXPECT_NE(wrong_key.result().err.find("wrong key"), std::string::npos) << wrong_key.result().err;
  EXPECT_FALSE(IsMounted(tmp_ / "mnt-wrong-key"));
  // And `cce` says the same about the same dataset and key.
  auto v = RunCommand({BinPath("cce"), "dataset", "verify", "--key", other_key_, tmp_ / "base"});
  EXPECT_EQ(v.exit_code, 3) << v.err;
}

TEST_F(TamperMatrix, UntamperedDatasetPassesAllThree) {
  std::string dir = tmp_ / "base";
  auto v = RunCommand({BinPath("cce"), "dataset", "verify", "--key", key_, dir});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  auto d = RunCommand({BinPath("cce"), "dataset", "decrypt", "--key", key_, dir, tmp_ / "out"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  DecryptFsMount m(dir, tmp_ / "mnt", key_);
  ASSERT_TRUE(m.mounted()) << m.result().err;
  for (const auto& [p, data] : plain_) {
    EXPECT_EQ(ReadFile(tmp_ / ("out/" + p)), data) << p;
    std::string got;
    EXPECT_EQ(ReadErrno(tmp_ / ("mnt/" + p), &got), 0) << p;
    EXPECT_EQ(got, data) << p;
  }
}

}  // namespace
}  // namespace cce::e2e
