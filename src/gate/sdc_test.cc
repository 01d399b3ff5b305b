#include "gate/sdc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "gate/content.h"
#include "gate/policy.h"

namespace cce::gate {
namespace {

// A table from "a,b,c\n1,2,3\n..." (no quoting: test inputs only). Row r is
// at line r + 2, as a CSV parser would say.
Table MakeTable(std::string_view file, std::string_view csv) {
  Table t;
  t.file = std::string(file);
  auto split = [](std::string_view line) {
    std::vector<std::string> cells;
    size_t start = 0;
    while (true) {
      const size_t comma = line.find(',', start);
      cells.emplace_back(line.substr(start, comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return cells;
  };
  bool first = true;
  uint64_t line_no = 0;
  while (!csv.empty()) {
    const size_t nl = csv.find('\n');
    std::string_view line = csv.substr(0, nl);
    csv = nl == std::string_view::npos ? std::string_view() : csv.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    if (first) {
      t.header = split(line);
      first = false;
    } else {
      t.rows.push_back(split(line));
      t.row_lines.push_back(line_no);
    }
  }
  return t;
}

std::vector<Finding> Detect(const std::vector<Table>& tables,
                            const std::vector<Table>& released = {},
                            const Policy& policy = Policy()) {
  std::vector<Finding> findings;
  DetectDisclosure(tables, released, policy, &findings);
  return findings;
}

std::vector<Finding> Only(const std::vector<Finding>& all, std::string_view detector) {
  std::vector<Finding> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const Finding& f) { return f.detector == detector; });
  return out;
}

std::string Dump(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& f : findings) {
    out += f.detector + " | " + f.file + " | " + f.location + " | " + f.message + "\n";
  }
  return out;
}

// ------------------------------------------------------------ small cells --

TEST(SmallCell, CountBelowThresholdIsHeldAtItsCell) {
  const Table t = MakeTable("out/by_region.csv", "region,n\nnorth,25\nsouth,3\neast,0\nwest,140\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.small_cell");
  EXPECT_EQ(f[0].file, "out/by_region.csv");
  EXPECT_EQ(f[0].location, t.CellLocation(1, 1));
  EXPECT_EQ(f[0].location, "row 2 (line 3), column 2 'n'");
  EXPECT_EQ(f[0].row, 1);
  EXPECT_EQ(f[0].column, 1);
  EXPECT_TRUE(f[0].hard);
  EXPECT_DOUBLE_EQ(f[0].score, 0.6);
  EXPECT_NE(f[0].message.find("count 3"), std::string::npos) << f[0].message;
}

TEST(SmallCell, ThresholdComesFromPolicy) {
  const Table t = MakeTable("a.csv", "region,patients\nnorth,12\nsouth,17\n");
  EXPECT_TRUE(Detect({t}).empty());
  Policy p;
  p.min_cell_count = 15;
  const auto f = Detect({t}, {}, p);
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].row, 0);
  EXPECT_NE(f[0].message.find("15"), std::string::npos);
}

TEST(SmallCell, CountNamesAreRecognised) {
  for (std::string_view name : {"n", "count", "freq", "frequency", "num_patients", "n_cases",
                                "case_count", "size", "Patients", "Number of people"}) {
    const Table t = MakeTable("a.csv", "group," + std::string(name) + "\na,50\nb,4\nc,60\n");
    const auto f = Only(Detect({t}), "sdc.small_cell");
    EXPECT_EQ(f.size(), 1u) << name << "\n" << Dump(f);
  }
}

TEST(SmallCell, NonCountColumnsAreNotCounts) {
  // Hyper-parameters, measures and statistics are small numbers, not people.
  const Table a =
      MakeTable("m.csv", "model,num_layers,n_estimators,accuracy\nrf,3,5,0.91\nmlp,2,1,0.88\n");
  const Table b = MakeTable("r.csv", "term,estimate,std_error,p_value\nage,2,1,0\nsex,3,1,0\n");
  const Table c = MakeTable("p.csv", "region,pct,rate\nnorth,3,2\nsouth,5,1\n");
  const auto f = Detect({a, b, c});
  EXPECT_TRUE(f.empty()) << Dump(f);
}

TEST(SmallCell, SuppressedMarkersAreFine) {
  const Table t = MakeTable("a.csv",
                            "region,n\nnorth,25\nsouth,<10\neast,*\nwest,[REDACTED]\nmid,~\n"
                            "isle,< 10\nfar,NA\nnear,\nx,<=7\n");
  const auto f = Detect({t});
  EXPECT_TRUE(f.empty()) << Dump(f);
}

TEST(SmallCell, RoundedCountsAreFine) {
  const Table rounded =
      MakeTable("a.csv", "region,n\nnorth,25\nsouth,5\neast,10\nwest,0\nmid,1050\n");
  EXPECT_TRUE(Detect({rounded}).empty()) << Dump(Detect({rounded}));
  // One unrounded count: the table is not rounded, and 5 is a small count.
  const Table unrounded = MakeTable("a.csv", "region,n\nnorth,25\nsouth,5\neast,10\nwest,23\n");
  const auto f = Detect({unrounded});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].row, 1);
  // Too few non-zero counts to call it rounding.
  const Table few = MakeTable("a.csv", "region,n\nnorth,5\nsouth,100\n");
  EXPECT_EQ(Detect({few}).size(), 1u);
}

TEST(SmallCell, NumberFormats) {
  // "3.0" is how pandas writes a count in a column with NaN; "1,234" has a
  // thousands separator; a percentage is never a count.
  Table fixed = MakeTable("a.csv", "region,n\nnorth,X\nsouth,3.0\neast,NaN\nwest,12.00\n");
  fixed.rows[0][1] = "1,234";  // MakeTable splits on every comma
  const auto f = Detect({fixed});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].row, 1);
  const Table fractional = MakeTable("a.csv", "region,n\nnorth,3.5\nsouth,12\n");
  EXPECT_TRUE(Detect({fractional}).empty());
  const Table percent = MakeTable("a.csv", "region,n\nnorth,3%\nsouth,12%\n");
  EXPECT_TRUE(Detect({percent}).empty());
}

TEST(SmallCell, CrosstabCellsAreCounts) {
  const Table t =
      MakeTable("x.csv", "sex,18-29,30-44,45-64,65+\nfemale,120,98,87,40\nmale,110,4,91,33\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].location, "row 2 (line 3), column 3 '30-44'");
  EXPECT_NE(f[0].message.find("crosstab"), std::string::npos);
}

TEST(SmallCell, RepeatedLabelsAreNotACrosstab) {
  // Record-level rows (labels repeat): integer columns are values, not counts.
  const Table t = MakeTable("r.csv", "ward,bed,los_days\na,3,2\na,4,7\nb,1,3\n");
  EXPECT_TRUE(Detect({t}).empty()) << Dump(Detect({t}));
}

TEST(SmallCell, StatisticsOfASmallGroupAreHeld) {
  const Table t = MakeTable("g.csv",
                            "group,n,mean_bmi,sd_bmi,min_bmi,max_bmi\na,120,27.1,4.2,17.0,44.1\n"
                            "b,3,31.2,2.0,29.0,33.5\n");
  const auto f = Only(Detect({t}), "sdc.small_cell");
  ASSERT_EQ(f.size(), 2u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(1, 1));  // the count
  EXPECT_EQ(f[1].location, t.CellLocation(1, 2));  // its statistics, once
  EXPECT_NE(f[1].message.find("'max_bmi'"), std::string::npos) << f[1].message;
  EXPECT_NE(f[1].message.find("of 3"), std::string::npos) << f[1].message;
  EXPECT_TRUE(f[1].hard);
}

TEST(SmallCell, StatisticsShownForASuppressedCountAreHeld) {
  const Table t =
      MakeTable("g.csv", "group,n,mean_age,max_age\na,120,51.2,90\nb,<10,47.5,88\nc,*,,\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.small_cell");
  EXPECT_EQ(f[0].row, 1);
  EXPECT_EQ(f[0].column, 2);
  EXPECT_NE(f[0].message.find("suppressed"), std::string::npos);
}

TEST(SmallCell, StatisticsUseTheCountOfTheirOwnGroup) {
  // mean_bmi_diabetic is over n_diabetic (same stem), mean_bmi over n.
  const Table t = MakeTable("g.csv",
                            "group,n,n_diabetic,mean_bmi,mean_bmi_diabetic\na,120,<10,27.1,\n"
                            "b,40,15,26.0,29.5\nc,300,<10,25.2,30.1\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(2, 4));
  EXPECT_NE(f[0].message.find("'n_diabetic' is suppressed"), std::string::npos) << f[0].message;
}

TEST(SmallCell, MinMaxWithoutGroupSizesSaysNothing) {
  // Documented: without a count the gate cannot know a group is small.
  const Table t = MakeTable("s.csv", "variable,mean,min,max\nage,51.2,18,97\nbmi,27.3,15.1,61.0\n");
  EXPECT_TRUE(Detect({t}).empty());
}

TEST(SmallCell, PandasDescribeReadPerColumn) {
  const Table t =
      MakeTable("d.csv",
                ",age,bmi\ncount,4.0,2500.0\nmean,61.5,27.2\nstd,3.1,4.4\nmin,58.0,15.0\n"
                "25%,59.0,24.0\n50%,61.0,27.0\n75%,63.0,30.0\nmax,66.0,60.1\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 2u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(0, 1));  // count 4 of age
  EXPECT_EQ(f[1].column, 1);                       // a statistic of age
  EXPECT_EQ(f[1].row, 1);
}

TEST(SmallCell, FindingsAreCappedWithASummary) {
  std::string csv = "region,n\n";
  for (int i = 0; i < 30; ++i) csv += "r" + std::to_string(i) + ",3\n";
  const auto f = Detect({MakeTable("a.csv", csv)});
  ASSERT_EQ(f.size(), 21u);
  EXPECT_NE(f.back().message.find("10 more"), std::string::npos) << f.back().message;
  EXPECT_TRUE(f.back().hard);
}

// -------------------------------------------------------------- dominance --

TEST(Dominance, LargestContributorOverKOfTotal) {
  const Table t = MakeTable("d.csv",
                            "industry,n,total_turnover,largest_turnover\nretail,40,1000,300\n"
                            "mining,25,1000,950\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.dominance");
  EXPECT_EQ(f[0].location, t.CellLocation(1, 2));
  EXPECT_TRUE(f[0].hard);
  EXPECT_NE(f[0].message.find("95%"), std::string::npos) << f[0].message;
}

TEST(Dominance, TopTwoOverKOfTotal) {
  const Table t = MakeTable(
      "d.csv", "industry,n,total,top1,top2\nretail,40,1000,500,420\nfood,40,1000,500,390\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.dominance");
  EXPECT_EQ(f[0].row, 0);
}

TEST(Dominance, NkParametersFromPolicy) {
  const Table t = MakeTable("d.csv", "industry,n,total,top1,top2\nfood,40,1000,500,390\n");
  Policy p;
  p.nk_k = 0.8;
  EXPECT_EQ(Only(Detect({t}, {}, p), "sdc.dominance").size(), 1u);
  p.nk_k = 0.9;
  p.nk_n = 1;
  EXPECT_TRUE(Only(Detect({t}, {}, p), "sdc.dominance").empty());
}

TEST(Dominance, PPercentRule) {
  // x1 + x2 = 880 <= 0.9 * 1000, but the rest (120) is under 25% of x1 (150).
  const Table t = MakeTable("d.csv",
                            "industry,n,total,max,second_largest\nfood,40,1000,600,280\n"
                            "oil,40,1000,400,300\n");
  Policy p;
  p.p_percent = 25;
  const auto f = Detect({t}, {}, p);
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.p_percent");
  EXPECT_EQ(f[0].row, 0);
  EXPECT_TRUE(f[0].hard);
  p.p_percent = 10;  // 120 >= 60
  EXPECT_TRUE(Detect({t}, {}, p).empty());
}

TEST(Dominance, TwoContributorsRevealEachOther) {
  // count == 2: x2 = total - x1, so both rules hold it.
  Policy p;
  p.min_cell_count = 2;  // keep the small-cell rule out of this test
  const Table t =
      MakeTable("d.csv", "industry,n,total_sales,max_sales\nfood,2,1000,600\nretail,30,5000,900\n");
  const auto f = Detect({t}, {}, p);
  EXPECT_EQ(Only(f, "sdc.dominance").size(), 1u) << Dump(f);
  EXPECT_EQ(Only(f, "sdc.p_percent").size(), 1u) << Dump(f);
  EXPECT_EQ(f.size(), 2u) << Dump(f);
}

TEST(Dominance, PairsColumnsByName) {
  const Table t = MakeTable("d.csv",
                            "region,n,total_income,max_income,total_spend,max_spend\n"
                            "north,50,1000,950,1000,100\nsouth,50,1000,100,1000,100\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].column, 2);
}

// -------------------------------------------------------------- microdata --

const char kPeople[] =
    "age,sex,postcode,diagnosis\n34,F,SW1A 1AA,asthma\n71,M,EC1A 1BB,copd\n45,F,W1A 0AX,diabetes\n"
    "29,M,M1 1AE,asthma\n52,F,B33 8TH,none\n66,M,CR2 6XH,copd\n";

TEST(Microdata, RowsUniqueOnQuasiIdentifiers) {
  const Table t = MakeTable("rows.csv", kPeople);
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.microdata");
  EXPECT_TRUE(f[0].hard);
  EXPECT_DOUBLE_EQ(f[0].score, 1.0);
  EXPECT_EQ(f[0].row, 0);
  EXPECT_EQ(f[0].location, "row 1 (line 2); row 2 (line 3); row 3 (line 4)");
  EXPECT_NE(f[0].message.find("6 of 6"), std::string::npos) << f[0].message;
}

TEST(Microdata, QuasiIdentifiersByValueShape) {
  // Neither column is named as a quasi-identifier: a date column and a
  // postcode column are found by their values.
  const Table t = MakeTable("rows.csv",
                            "when,where,outcome\n1961-02-03,SW1A 1AA,a\n1975-11-30,EC1A 1BB,b\n"
                            "1980-01-01,W1A 0AX,a\n03/04/1990,M1 1AE,c\n1955-07-07,B33 8TH,a\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.microdata");
  EXPECT_NE(f[0].message.find("(dates)"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].message.find("(postcodes)"), std::string::npos) << f[0].message;
}

TEST(Microdata, NamesMatchCaseInsensitivelyAndAsSuffix) {
  const Table t = MakeTable(
      "rows.csv", "Patient_Age,GENDER,score\n34,F,1.5\n71,M,2.5\n45,F,0.5\n29,M,3.5\n52,F,1.0\n");
  EXPECT_EQ(Only(Detect({t}), "sdc.microdata").size(), 1u);
}

TEST(Microdata, FewUniqueRowsScoreTheirFraction) {
  std::string csv = "age_years,sex,ethnicity,visit_reason\n";
  for (int i = 0; i < 8; ++i) csv += "adult,F,white,checkup\n";
  csv += "adult,M,asian,injury\nchild,F,black,checkup\n";  // 2 of 10 unique
  const auto f = Detect({MakeTable("rows.csv", csv)});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_DOUBLE_EQ(f[0].score, 0.2);
  EXPECT_FALSE(f[0].hard);
  EXPECT_EQ(f[0].row, 8);
  Policy p;
  p.min_unique_fraction = 0.25;
  EXPECT_TRUE(Detect({MakeTable("rows.csv", csv)}, {}, p).empty());
}

TEST(Microdata, NotMicrodata) {
  // Too few rows.
  EXPECT_TRUE(Detect({MakeTable("a.csv", "age,sex,x\n34,F,a\n71,M,b\n45,F,c\n")}).empty());
  // One quasi-identifier only.
  EXPECT_TRUE(Detect({MakeTable("a.csv", "age,x\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n")}).empty());
  // A group-by output: a complete grid of sex x ethnicity with a rate.
  const Table grid = MakeTable("a.csv",
                               "sex,ethnicity,prevalence\nF,white,0.1\nF,asian,0.2\nF,black,0.3\n"
                               "M,white,0.1\nM,asian,0.2\nM,black,0.3\n");
  EXPECT_TRUE(Detect({grid}).empty()) << Dump(Detect({grid}));
  // Statistics only besides the quasi-identifiers.
  const Table stats =
      MakeTable("a.csv", "age,sex,mean_bmi\n30,F,21\n40,F,22\n50,M,23\n60,M,24\n70,F,25\n");
  EXPECT_TRUE(Detect({stats}).empty()) << Dump(Detect({stats}));
  // Counts by group: aggregates, for the small-cell rule.
  const Table counts =
      MakeTable("a.csv", "age,sex,n\n30,F,21\n40,F,22\n50,M,23\n60,M,24\n70,F,25\n");
  EXPECT_TRUE(Detect({counts}).empty()) << Dump(Detect({counts}));
  // Banded ages are groupings, not ages.
  const Table banded = MakeTable("a.csv",
                                 "age_band,sex,x\n0-9,F,a\n10-19,F,b\n20-29,M,c\n30-39,M,d\n"
                                 "40-49,F,e\n");
  EXPECT_TRUE(Detect({banded}).empty()) << Dump(Detect({banded}));
}

// ----------------------------------------------------------- differencing --

TEST(Differencing, NestedTablesDifferingByASmallCount) {
  const Table all = MakeTable("all.csv", "region,n\nnorth,121\nsouth,87\neast,43\n");
  const Table under90 = MakeTable("under90.csv", "region,n\nnorth,121\nsouth,85\neast,43\n");
  const auto f = Detect({all, under90});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.differencing");
  EXPECT_TRUE(f[0].hard);
  EXPECT_EQ(f[0].file, "under90.csv");
  EXPECT_EQ(f[0].location,
            "row 2 (line 3), column 2 'n' vs 'all.csv' row 2 (line 3), column 2 'n'");
  EXPECT_NE(f[0].message.find("differ by 2"), std::string::npos) << f[0].message;
}

TEST(Differencing, MatchesRowsByLabelAndColumnsByName) {
  const Table a = MakeTable("a.csv", "region,female,male\nnorth,121,131\nsouth,87,91\n");
  const Table b = MakeTable("b.csv", "male,region,female\n91,south,84\n131,north,121\n");
  const auto f = Detect({a, b});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].row, 0);
  EXPECT_EQ(f[0].column, 2);
}

TEST(Differencing, AgainstEarlierReleasedTables) {
  const Table released = MakeTable("job1/all.csv", "region,n\nnorth,121\nsouth,87\neast,43\n");
  const Table now = MakeTable("out.csv", "region,n\nnorth,122\nsouth,87\neast,49\n");
  const auto f = Detect({now}, {released});
  ASSERT_EQ(f.size(), 2u) << Dump(f);
  EXPECT_EQ(f[0].file, "out.csv");
  EXPECT_NE(f[0].message.find("earlier released table 'job1/all.csv'"), std::string::npos)
      << f[0].message;
  // Released tables are not checked against each other.
  const Table unrelated = MakeTable("out2.csv", "region,n\nnorth,500\nsouth,20\neast,943\n");
  EXPECT_TRUE(Detect({unrelated}, {released, now}).empty());
  Policy p;
  p.differencing = false;
  EXPECT_TRUE(Detect({now}, {released}, p).empty());
  EXPECT_TRUE(Detect({released, now}, {}, p).empty());
}

TEST(Differencing, NotNestedOrLargeDifferencesAreFine) {
  const Table y2019 = MakeTable("2019.csv", "region,n\nnorth,121\nsouth,87\neast,43\n");
  const Table y2020 =
      MakeTable("2020.csv", "region,n\nnorth,124\nsouth,82\neast,43\n");  // up and down
  const Table big = MakeTable("big.csv", "region,n\nnorth,141\nsouth,99\neast,56\n");  // by >= 10
  const Table same = MakeTable("same.csv", "region,n\nnorth,121\nsouth,87\neast,43\n");
  const Table other =
      MakeTable("other.csv", "ward,n\nnorth,121\nsouth,86\neast,43\n");  // other header
  const auto f = Detect({y2019, y2020, big, same, other});
  EXPECT_TRUE(f.empty()) << Dump(f);
}

TEST(Differencing, RoundedTablesAreNotDifferenced) {
  const Table a = MakeTable("a.csv", "region,n\nnorth,120\nsouth,85\neast,40\n");
  const Table b = MakeTable("b.csv", "region,n\nnorth,120\nsouth,80\neast,40\n");
  EXPECT_TRUE(Detect({a, b}).empty());
}

TEST(Differencing, TotalColumnRecoversASuppressedCell) {
  const Table t = MakeTable("x.csv",
                            "region,female,male,total\nnorth,120,130,250\nsouth,<10,90,94\n"
                            "east,<10,<10,15\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.differencing");
  EXPECT_EQ(f[0].location, t.CellLocation(1, 1));
  EXPECT_NE(f[0].message.find("recovers this suppressed cell as 4"), std::string::npos)
      << f[0].message;
}

TEST(Differencing, TotalRowRecoversASuppressedCell) {
  const Table t = MakeTable(
      "x.csv", "region,female,male\nnorth,120,130\nsouth,*,90\neast,40,33\nTotal,167,253\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(1, 1));
  EXPECT_NE(f[0].message.find("as 7"), std::string::npos) << f[0].message;
}

TEST(Differencing, TotalRevealsAnOmittedGroup) {
  const Table t = MakeTable("x.csv", "region,n\nnorth,120\nsouth,85\nTotal,208\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].detector, "sdc.differencing");
  EXPECT_EQ(f[0].row, 2);
  EXPECT_NE(f[0].message.find("group of 3"), std::string::npos) << f[0].message;
}

TEST(Differencing, ShortRowsAreMissingCells) {
  const Table t = MakeTable("x.csv", "region,n\nnorth,120\nsouth\neast,40\nTotal,164\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(1, 1));
  EXPECT_NE(f[0].message.find("recovers this missing cell as 4"), std::string::npos)
      << f[0].message;
}

TEST(Differencing, SeveralHiddenCellsSummingToASmallGroup) {
  const Table t =
      MakeTable("x.csv", "region,a,b,c,total\nnorth,120,<10,<10,127\nsouth,85,90,91,266\n");
  const auto f = Detect({t});
  ASSERT_EQ(f.size(), 1u) << Dump(f);
  EXPECT_EQ(f[0].location, t.CellLocation(0, 2));
  EXPECT_NE(f[0].message.find("the 2 suppressed cells of this line (together) as 7"),
            std::string::npos)
      << f[0].message;
}

TEST(Differencing, ConsistentTotalsAndSecondarySuppressionAreFine) {
  const Table t = MakeTable("x.csv",
                            "region,female,male,total\nnorth,120,130,250\nsouth,<10,<10,14\n"
                            "east,40,33,73\nTotal,<10,<10,337\n");
  const Table rows = MakeTable("y.csv", "region,n\nnorth,120\nsouth,85\nTotal,205\n");
  // A "total" column smaller than its parts is not their sum: not checked.
  const Table not_sum =
      MakeTable("z.csv", "region,a,b,total\nnorth,120,130,100\nsouth,87,91,181\n");
  const auto f = Detect({t, rows, not_sum});
  EXPECT_TRUE(f.empty()) << Dump(f);
}

// ---------------------------------------------------------------- benign --

TEST(Benign, TypicalOutputsProduceNoFindings) {
  std::vector<Table> tables;
  tables.push_back(
      MakeTable("crosstab.csv",
                "region,18-29,30-44,45-64,65+\nnorth,120,98,87,40\nsouth,110,14,91,33\n"
                "east,64,71,58,22\nwest,301,288,190,75\nmid,18,27,11,10\n"));
  tables.push_back(
      MakeTable("coef.csv",
                "term,estimate,std_error,p_value\n(Intercept),1.204,0.310,0.0001\n"
                "age,0.031,0.004,0.0000\nsex_M,-0.122,0.051,0.0167\nbmi,0.05,0.01,0.2\n"));
  tables.push_back(MakeTable("means.csv",
                             "group,n,mean_bmi,median_bmi,sd_bmi,min_bmi,max_bmi\n"
                             "a,120,27.1,26.5,4.2,17.0,44.1\nb,14,31.2,30.9,2.0,29.0,33.5\n"
                             "c,10,24.0,24.1,1.1,22.0,26.0\n"));
  tables.push_back(
      MakeTable("summary.csv",
                "variable,n,mean,sd,min,p25,median,p75,max\nage,25000,51.2,17.1,18,38,51,64,104\n"
                "bmi,24311,27.3,5.2,14.9,23.8,26.7,30.1,71.2\n"));
  tables.push_back(
      MakeTable("describe.csv",
                ",age,bmi\ncount,25000.0,24311.0\nmean,51.2,27.3\nstd,17.1,5.2\n"
                "min,18.0,14.9\n25%,38.0,23.8\n50%,51.0,26.7\n75%,64.0,30.1\nmax,104.0,71.2\n"));
  tables.push_back(
      MakeTable("metrics.csv",
                "model,accuracy,precision,recall,f1,auc\nlogreg,0.91,0.88,0.79,0.83,0.93\n"
                "rf,0.93,0.90,0.84,0.87,0.95\n"));
  tables.push_back(
      MakeTable("confusion.csv", "actual,pred_no,pred_yes\nno,8120,412\nyes,388,1080\n"));
  tables.push_back(MakeTable("history.csv",
                             "epoch,train_loss,val_loss\n1,0.71,0.69\n2,0.52,0.55\n3,0.44,0.50\n"));
  tables.push_back(MakeTable("hyper.csv", "param,value\nmax_depth,3\nn_estimators,5\nseed,1\n"));
  tables.push_back(MakeTable(
      "totals.csv",
      "region,female,male,total\nnorth,121,133,254\nsouth,86,91,177\nTotal,207,224,431\n"));
  tables.push_back(MakeTable("dominance_ok.csv",
                             "industry,n,total_turnover,largest_turnover,second_turnover\n"
                             "retail,40,10000,1200,900\nfood,55,8000,700,650\n"));
  const auto f = Detect(tables);
  EXPECT_TRUE(f.empty()) << Dump(f);
}

TEST(Benign, EmptyAndRaggedTablesAreSafe) {
  Table empty;
  empty.file = "e.csv";
  Table ragged = MakeTable("r.csv", "region,n\nnorth\nsouth,3,extra,cells\n,\n");
  Table no_header;
  no_header.file = "h.csv";
  no_header.rows = {{"a", "1"}, {"b", "2"}};
  const auto f = Detect({empty, ragged, no_header});
  ASSERT_EQ(f.size(), 1u) << Dump(f);  // the 3 in column 'n'
  EXPECT_EQ(f[0].file, "r.csv");
}

// A hostile shape: a very wide header over many short rows. Every loop is
// bounded by the cells present, so this is linear (quadratic would be 10^10
// steps and time out).
TEST(Benign, WideHeaderOverShortRowsIsLinear) {
  Table t;
  t.file = "wide.csv";
  const size_t kWidth = 100'000;
  for (size_t c = 0; c < kWidth; ++c) {
    static const char* const kNames[] = {"n_", "mean_", "total_", "max_", "age_", "sex_", "top2_"};
    t.header.push_back(std::string(kNames[c % 7]) + std::to_string(c / 7));
  }
  t.header[0] = "region";
  t.header[1] = "n";
  for (size_t r = 0; r < 100'000; ++r) t.rows.push_back({"r" + std::to_string(r), "50"});
  t.rows.push_back({"Total", "5000003"});
  std::vector<Table> tables(2, t);
  tables[1].rows[7][1] = "48";
  std::vector<Finding> f;
  DetectDisclosure(tables, {}, Policy(), &f);
  // Each total reveals an omitted group (3, 5); row 8 differs by 2 between them.
  EXPECT_EQ(Only(f, "sdc.differencing").size(), 3u) << Dump(f);
}

// Not a timing assertion: logs the detector's throughput on a large
// record-level table (the CSV path's budget is 200 MB/s for the whole scan).
TEST(Throughput, LargeTablesAreLinear) {
  Table t;
  t.file = "big.csv";
  t.header = {"id",       "age",       "sex",      "postcode", "region",
              "los_days", "mean_cost", "max_cost", "score"};
  uint64_t bytes = 0;
  const int kRows = 200'000;
  t.rows.reserve(kRows);
  for (int i = 0; i < kRows; ++i) {
    t.rows.push_back(
        {"P" + std::to_string(1000000 + i), std::to_string(18 + i % 80), i % 2 ? "F" : "M",
         "AB" + std::to_string(i % 90 + 10) + " " + std::to_string(i / 90 % 10) +
             static_cast<char>('A' + i / 900 % 26) + static_cast<char>('A' + i / 23400 % 26),
         "region" + std::to_string(i % 12), std::to_string(i % 40 + 10),
         std::to_string(100 + i % 977) + ".25", std::to_string(2000 + i % 5000) + ".5",
         "0." + std::to_string(i % 1000)});
    for (const auto& c : t.rows.back()) bytes += c.size() + 1;
  }
  std::vector<Table> tables(2, t);
  tables[1].file = "big2.csv";
  std::vector<Finding> f;
  const std::clock_t start = std::clock();  // CPU time: the machine may be shared
  DetectDisclosure(tables, {}, Policy(), &f);
  const double secs = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  const double mb = 2 * static_cast<double>(bytes) / 1e6;
  std::printf("sdc: %.1f MB of cells in %.3f s CPU = %.0f MB/s, %zu findings\n", mb, secs,
              mb / secs, f.size());
  EXPECT_EQ(Only(f, "sdc.microdata").size(), 2u) << Dump(f);
}

}  // namespace
}  // namespace cce::gate
