#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace cce::cli {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(Table, HeaderFirstColumnsAlignedNoTrailingWhitespace) {
  Table t({"NAME", "OWNER", "PRICE/DAY", "DESCRIPTION"});
  t.AddRow({"claims", "hospital", "2.5", "synthetic claims"});
  t.AddRow({"x", "a-much-longer-owner", "10", ""});
  EXPECT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.Render(),
            "NAME    OWNER                PRICE/DAY  DESCRIPTION\n"
            "claims  hospital             2.5        synthetic claims\n"
            "x       a-much-longer-owner  10         -\n");
  for (const std::string& l : Lines(t.Render())) {
    ASSERT_FALSE(l.empty());
    EXPECT_NE(l.back(), ' ') << l;
    EXPECT_EQ(l.find('\t'), std::string::npos) << l;
  }
}

TEST(Table, EmptyTableIsTheHeaderAlone) {
  Table t({"JOB", "STATE"});
  EXPECT_EQ(t.Render(), "JOB  STATE\n");
}

TEST(Table, ControlBytesCannotBreakTheLayoutOrReachTheTerminal) {
  Table t({"A", "B"});
  t.AddRow({"tab\there", "new\nline \x1b[31mred\x7f"});
  const std::string out = t.Render();
  EXPECT_EQ(out, "A         B\ntab?here  new?line ?[31mred?\n");
  EXPECT_EQ(Lines(out).size(), 2u);
}

TEST(Table, MissingCellsAreDashesAndExtraCellsDropped) {
  Table t({"A", "B", "C"});
  t.AddRow({"1"});
  t.AddRow({"1", "2", "3", "4"});
  EXPECT_EQ(t.Render(), "A  B  C\n1  -  -\n1  2  3\n");
}

TEST(Table, WidthCountsCodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth("zürich"), 6u);
  Table t({"CITY", "N"});
  t.AddRow({"zürich", "1"});
  t.AddRow({"bern", "2"});
  EXPECT_EQ(t.Render(), "CITY    N\nzürich  1\nbern    2\n");
}

TEST(Table, TrailingSpacesOfALastCellAreDropped) {
  Table t({"A", "B"});
  t.AddRow({"1", "x  "});
  EXPECT_EQ(t.Render(), "A  B\n1  x\n");
}

}  // namespace
}  // namespace cce::cli
