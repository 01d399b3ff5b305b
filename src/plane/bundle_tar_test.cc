// The bundle walk (bundle_tar.h): entries and data through any piece size,
// the source's error kept, hostile headers refused, and content typing.
#include "plane/bundle_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cce::plane {
namespace {

std::string Tar(const std::vector<std::pair<std::string, std::string>>& files, bool with_dir) {
  std::string out(1 << 20, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  auto add = [&](const std::string& name, const std::string& bytes, bool dir) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    if (!bytes.empty()) archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  };
  if (with_dir) add("files/", "", true);
  for (const auto& [name, bytes] : files) add(name, bytes, false);
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// A source handing out `tar` in pieces of `piece` bytes.
BundleTar::Source Pieces(const std::string& tar, size_t piece, size_t* pulls = nullptr) {
  auto pos = std::make_shared<size_t>(0);
  auto buf = std::make_shared<std::string>();
  return [tar, piece, pos, buf, pulls]() -> StatusOr<crypto::ByteSpan> {
    if (pulls != nullptr) ++*pulls;
    *buf = tar.substr(*pos, piece);
    *pos += buf->size();
    return crypto::AsBytes(*buf);
  };
}

std::vector<std::pair<std::string, std::string>> Walk(BundleTar& t) {
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    auto e = t.Next();
    EXPECT_TRUE(e.ok()) << e.status().message();
    if (!e.ok() || !e->has_value()) return out;
    std::string data;
    std::array<uint8_t, 7> buf{};
    for (;;) {
      auto n = t.Read(buf);
      EXPECT_TRUE(n.ok()) << n.status().message();
      if (!n.ok() || *n == 0) break;
      data.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
    EXPECT_EQ(data.size(), (*e)->size);
    out.emplace_back((*e)->path, data);
  }
}

TEST(BundleTar, ListsRegularFilesWithTheirBytesWhateverThePieceSize) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"files/out.csv", "a,b\n1,2\n"},
      {"files/" + std::string(150, 'd') + "/long.txt", std::string(3000, 'x')},
      {"stdout.txt", ""}};
  const std::string tar = Tar(files, true);
  for (size_t piece : {size_t{1}, size_t{511}, size_t{65536}}) {
    auto t = BundleTar::Open(Pieces(tar, piece), "bundle", 100);
    ASSERT_TRUE(t.ok()) << t.status().message();
    EXPECT_EQ(Walk(**t), files) << piece;  // the directory entry is skipped
  }
}

TEST(BundleTar, TheSourcesErrorEndsTheWalkWithIt) {
  const std::string tar = Tar({{"a", std::string(5000, 'a')}, {"b", "b"}}, false);
  int calls = 0;
  auto inner = Pieces(tar, 1024);
  auto failing = [&]() -> StatusOr<crypto::ByteSpan> {
    if (++calls == 3) return DataLoss("segment 2: authentication failed");
    return inner();
  };
  auto t = BundleTar::Open(failing, "bundle", 100);
  ASSERT_TRUE(t.ok());
  Status seen;
  for (int i = 0; i < 10 && seen.ok(); ++i) {
    auto e = (*t)->Next();
    if (!e.ok()) {
      seen = e.status();
      break;
    }
    if (!e->has_value()) break;
    std::array<uint8_t, 4096> buf{};
    for (;;) {
      auto n = (*t)->Read(buf);
      if (!n.ok()) {
        seen = n.status();
        break;
      }
      if (*n == 0) break;
    }
  }
  EXPECT_EQ(seen.code(), StatusCode::kDataLoss);
  EXPECT_NE(seen.message().find("authentication failed"), std::string::npos) << seen.message();
}

TEST(BundleTar, GarbageAndTooManyEntriesAreRefused) {
  const std::string junk(2048, '\x7f');
  auto t = BundleTar::Open(Pieces(junk, 512), "output of job-1", 100);
  Status s = t.ok() ? (*t)->Next().status() : t.status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("output of job-1"), std::string::npos) << s.message();
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 5; ++i) many.emplace_back("f" + std::to_string(i), "x");
  auto capped = BundleTar::Open(Pieces(Tar(many, false), 4096), "bundle", 3);
  ASSERT_TRUE(capped.ok());
  Status last;
  for (int i = 0; i < 6 && last.ok(); ++i) last = (*capped)->Next().status();
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
}

TEST(ContentType, TextIsValidUtf8WithoutControlBytes) {
  EXPECT_TRUE(LooksLikeText("name,year\r\nalice,1984\n\tü ø 日本 😀", false));
  EXPECT_TRUE(LooksLikeText("", false));
  EXPECT_FALSE(LooksLikeText("esc \x1b[31m", false));
  EXPECT_FALSE(LooksLikeText(std::string("nul \0", 5), false));
  EXPECT_FALSE(LooksLikeText("del \x7f", false));
  EXPECT_FALSE(LooksLikeText("\xc0\xaf", false));      // overlong '/'
  EXPECT_FALSE(LooksLikeText("\xed\xa0\x80", false));  // a surrogate
  EXPECT_FALSE(LooksLikeText("\xc2\x9b", false));      // C1 CSI
  EXPECT_FALSE(LooksLikeText("\xff", false));
  EXPECT_FALSE(LooksLikeText("cut \xe6\x97", false));  // cut, and nothing follows
  EXPECT_TRUE(LooksLikeText("cut \xe6\x97", true));    // cut where the sniffed head ends
  EXPECT_FALSE(LooksLikeText("cut \xe6\x41", true));
}

TEST(ContentType, ImagesByMagicEverythingElseIsAnAttachment) {
  bool attachment = true;
  EXPECT_EQ(SniffContentType(std::string("\x89PNG\r\n\x1a\n\0\0", 10), true, &attachment),
            "image/png");
  EXPECT_FALSE(attachment);
  EXPECT_EQ(SniffContentType("\xff\xd8\xff\xe0", true, &attachment), "image/jpeg");
  EXPECT_EQ(SniffContentType("<svg onload=alert(1)>", false, &attachment),
            "text/plain; charset=utf-8");  // never image/svg+xml or text/html
  EXPECT_FALSE(attachment);
  EXPECT_EQ(SniffContentType(std::string("PK\3\4\0", 5), false, &attachment),
            "application/octet-stream");
  EXPECT_TRUE(attachment);
  // By content, not by name: a PNG header on "report.txt" is an image, and
  // binary bytes named .csv are an attachment.
  EXPECT_EQ(SniffContentType(std::string("\x01\x02", 2), false, &attachment),
            "application/octet-stream");
}

}  // namespace
}  // namespace cce::plane
