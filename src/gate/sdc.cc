// Statistical disclosure control on the tables of an output.
//
// The gate sees outputs only, never the microdata behind them, so every rule
// works from what a table shows. The rules follow ACRO's and OpenSAFELY's
// output checking; docs/gate.md is written from this comment.
//
// CELLS. Each cell, trimmed, is one of:
//   - a number: optional sign, digits (thousands groups "1,234" allowed),
//     optional fraction and exponent, optional trailing '%' (a percentage is
//     never a count). It is an integer when its value is integral and it has
//     no '%' ("12.0", as pandas writes counts in a column with NaN, is 12);
//   - suppressed: a marker that a value was withheld: only '*'s, "~", "-",
//     "--", "x", "c", "..", "<N", "< N", "<=N", "≤N", or any text containing
//     "redact", "suppress" or "mask" ("[REDACTED]");
//   - missing: "", "NA", "N/A", "NaN", "null", "None", "missing", ".";
//   - text: anything else.
// Suppressed and missing cells are "hidden": they are never small cells.
//
// COLUMN NAMES are normalised (ASCII lower case, '%' -> "pct", every other
// non-alphanumeric run -> '_') and split into tokens on '_' only ("top2" is
// one token, "top_2" two). A name's role comes from its tokens, first match
// wins:
//   1. "<digits>_pct" (pandas describe's "25%") -> statistic (percentile);
//   2. a hyper-parameter token (layers, features, estimators, epochs, folds,
//      clusters, seed, ...) -> never a count ("num_layers" is not people);
//   3. id / code / key / name -> label;
//   4. top-2 (top2, top_2, second, 2nd) -> second largest contributor x2;
//      max / maximum / largest / highest / top1 -> largest (x1 and extreme);
//      min / minimum / smallest / lowest -> extreme;
//      mean, avg, median, sd, std, var, se, iqr, q1, q3, p50, percentile,
//      mode, ... -> statistic;
//   5. total / sum: with a count token ("total_patients", "n_total") a
//      count; alone ("total", "sum", "all") ambiguous, resolved by the
//      table (below); otherwise ("total_income") a magnitude total;
//   6. a measure token (pct, rate, ratio, prevalence, estimate, coef,
//      p_value, odds, ci, accuracy, f1, auc, loss, weight, score, ...) ->
//      measure, never a count;
//   7. a count token (n, count, cnt, freq, frequency, size, num, number,
//      patients, people, persons, cases, events, deaths, admissions,
//      subjects, participants, respondents, population, denominator,
//      numerator, obs, records, households, ...) -> count;
//   8. a grouping token (year, month, week, quarter, period, date, group,
//      category, class, label, band, bin, level, stratum, decile, quintile,
//      region, type, term, variable, feature, ...) -> label.
//
// COLUMN ROLES combine the name with the values:
//   - label: any text cell, or a grouping-named numeric column;
//   - count: count-named and every shown value a non-negative integer
//     (a count-named column with fractions is a measure);
//   - statistic / extreme (min, max) / x2 / magnitude total / measure: by
//     name (the values do not matter);
//   - an ambiguous "total"/"sum"/"all": a magnitude total when the table has
//     a largest-contributor column, else a count margin when the table has
//     counts and the column is non-negative integers, else a magnitude.
// CROSSTAB: a table is a crosstab when it has label columns (at least one:
// text, or grouping-named) whose values identify each row (no label
// combination repeats: record-level rows do) and all the other columns (at
// least two) hold only non-negative integers (or hidden cells) under names
// that are categories, counts or totals (not statistics, measures or
// hyper-parameters). Then the header is the categories and every value cell
// is a count; a column named total/all/sum/overall is the margin.
// DESCRIBE: a table whose first column labels rows "count" and at least one
// of mean/std/min/max (pandas describe()) is read per column: the "count"
// row is each column's group size, the other labelled rows its statistics.
//
// ROUNDING: a table's counts are rounded when it shows at least 3 non-zero
// count cells and every one is a multiple of 5 (rounding to 5 or 10, as
// OpenSAFELY does). Rounded counts are never small cells and are not
// differenced (the rounding is the protection). The consumer's output notes
// should say so; the gate only checks the values.
//
// RULES (t = policy.min_cell_count; hard = holds whatever the score):
//   sdc.small_cell   a shown count c with 0 < c < t (unrounded). Score 0.6,
//                    hard: following OpenSAFELY, any unrounded small count
//                    is held. Also, once per row, the statistics, extremes,
//                    totals and contributors shown for a group whose count
//                    is < t or suppressed (min and max are one person's
//                    value; a mean of 2 is nearly so). Without any count
//                    column the gate cannot know group sizes and says
//                    nothing about statistics. A statistic's group count
//                    is the count column with the same stem (the name
//                    without role tokens), else the one whose stem's tokens
//                    are in the statistic's name ("n_diabetic" for
//                    "mean_bmi_diabetic"), else a plain n/count/size column,
//                    else the first count column that is not a margin.
//   sdc.dominance    NK rule (n = nk_n, k = nk_k) on a row with a magnitude
//                    total T > 0 and its largest contributor x1 (max /
//                    largest / top1, paired by the rest of the name,
//                    "total_income" with "max_income", or the only one),
//                    x2 (top2 column; T - x1 when the row's count is 2; 0
//                    when it is 1): hold when the n largest (a lower bound
//                    from what is shown; T itself when count <= n) exceed
//                    k * T. Hard, score 0.7.
//   sdc.p_percent    p% rule on the same rows when x1 and x2 are known:
//                    T - x1 - x2 < p/100 * x1 (the second largest
//                    contributor could estimate x1 within p%). Hard, 0.7.
//   sdc.microdata    a table with >= microdata_min_rows rows and >= 2
//                    quasi-identifier columns: named as one of
//                    policy.quasi_identifiers (case-insensitive, also as
//                    the name's last tokens: "patient_age", "home_postcode";
//                    "age_band" is a grouping, not an age), or shaped like
//                    one by value (>= 80% full dates with a day, any date
//                    being a quasi-identifier; UK full postcodes; US ZIP+4).
//                    Not microdata: tables with a count column (aggregates:
//                    the small-cell rule covers them), tables whose other
//                    columns are all statistics (mean_bmi, max_age), and
//                    tables whose rows are all unique on the
//                    quasi-identifiers and fill >= 80% of their grid (the
//                    product of each column's distinct values: a group-by
//                    output; checked up to 100,000 rows and 8 columns).
//                    A finding when the fraction f of rows unique on the
//                    quasi-identifiers is > min_unique_fraction: score f,
//                    hard when f > 0.5 or at least microdata_min_rows rows
//                    are unique; location = the first unique rows.
//   sdc.differencing (1) two tables with the same header (label and count
//                    column names, any order), in the output or one of
//                    them released earlier, rows matched by their labels:
//                    when one table's counts are all >= the other's (nested
//                    populations: "all patients" and "all but those over
//                    90") and some cell differs by 1..t-1, the difference
//                    is a small group. (2) a total row ("Total", "All",
//                    "Overall") or total column (total/all/sum/overall)
//                    that is >= the sum of its line's shown cells and
//                    exceeds it by 1..t-1: the hidden parts are recovered
//                    (one suppressed cell exactly, or several together as
//                    one small group) or, with none hidden, a group left
//                    out of the table is revealed (a row too short for a
//                    column counts as a missing cell there). Hard, score
//                    0.8. Rounded tables are skipped. Tables are bucketed
//                    by header signature; a bucket compares all pairs up to
//                    16 tables, beyond that each table with its 16
//                    neighbours by total count. Limitation: nesting is
//                    inferred from the counts, so two unrelated tables
//                    with one header whose counts all moved the same way
//                    (growth in every group) and one group by 1..t-1 are
//                    held too.
// BOUNDS: every loop runs over the cells rows actually have (a wide header
// over short rows costs nothing), column linking is O(columns), unique rows
// are counted in a flat hash table: O(cells) per table plus O(n log n) for
// the differencing buckets. Findings are capped at 20 per table and rule,
// then one summary finding.
#include "gate/sdc.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cce::gate {
namespace {

constexpr size_t kMaxFindingsPerRule = 20;
constexpr size_t kDiffWindow = 16;
constexpr size_t kMaxGridRows = 100'000;
constexpr size_t kMaxGridColumns = 8;
constexpr size_t kMaxShapeColumns = 64;  // label columns checked for date/postcode shapes

// ---------------------------------------------------------------- cells --

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != b[i]) return false;  // b is lower case
  }
  return true;
}

bool IContains(std::string_view hay, std::string_view needle) {  // needle lower case
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && Lower(hay[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// Parses a trimmed number (see the comment block). False: not a number.
bool ParseNumber(std::string_view s, double* value, bool* integer) {
  if (s.empty() || s.size() > 64) return false;
  bool percent = false;
  if (s.back() == '%') {
    percent = true;
    s.remove_suffix(1);
    s = Trim(s);
    if (s.empty()) return false;
  }
  size_t i = 0;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') {
    negative = s[i] == '-';
    ++i;
  }
  // Integer part, with optional thousands groups.
  const size_t int_start = i;
  size_t digits = 0;
  bool commas = false;
  size_t group = 0;
  for (; i < s.size(); ++i) {
    if (IsDigit(s[i])) {
      ++digits;
      ++group;
    } else if (s[i] == ',' && digits > 0) {
      if (commas ? group != 3 : group > 3) return false;
      commas = true;
      group = 0;
    } else {
      break;
    }
  }
  if (commas && group != 3) return false;
  bool fraction_nonzero = false;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      ++frac_digits;
      if (s[i] != '0') fraction_nonzero = true;
    }
  }
  if (digits == 0 && frac_digits == 0) return false;
  bool exponent = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    for (; i < s.size() && IsDigit(s[i]); ++i) ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != s.size()) return false;
  if (!commas && !exponent && digits + frac_digits <= 15) {  // fast path: plain decimals
    static constexpr double kPow10[] = {1,   1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    int64_t v = 0;
    for (size_t k = int_start; k < s.size(); ++k) {
      if (s[k] != '.') v = v * 10 + (s[k] - '0');
    }
    const double d = static_cast<double>(negative ? -v : v) / kPow10[frac_digits];
    *value = d;
    *integer = !percent && !fraction_nonzero;
    return true;
  }
  char buf[72];
  size_t n = 0;
  for (size_t k = (s[0] == '+') ? 1 : 0; k < s.size(); ++k) {
    if (s[k] != ',') buf[n++] = s[k];
  }
  double v = 0;
  auto [ptr, ec] = std::from_chars(buf, buf + n, v);
  if (ec != std::errc() || ptr != buf + n || !std::isfinite(v)) return false;
  *value = v;
  *integer =
      !percent && (exponent ? v == std::floor(v) : !fraction_nonzero) && std::fabs(v) < 9.0e15;
  return true;
}

enum class CellKind : uint8_t { kMissing, kSuppressed, kNumber, kText };

struct Cell {
  CellKind kind = CellKind::kMissing;
  double value = 0;
  bool integer = false;
};

bool IsSuppressionMarker(std::string_view s) {
  if (s.find_first_not_of('*') == std::string_view::npos) return true;  // "*", "**"
  static constexpr std::string_view kMarkers[] = {"~", "-", "--", "x", "c", ".."};
  for (std::string_view m : kMarkers) {
    if (IEquals(s, m)) return true;
  }
  std::string_view rest;
  if (s.substr(0, 2) == "<=") {
    rest = s.substr(2);
  } else if (s.substr(0, 3) == "\xE2\x89\xA4") {  // ≤
    rest = s.substr(3);
  } else if (s.front() == '<') {
    rest = s.substr(1);
  }
  if (!rest.empty()) {
    rest = Trim(rest);
    double v = 0;
    bool integer = false;
    if (ParseNumber(rest, &v, &integer)) return true;
  }
  if (s.size() < 4) return false;
  return IContains(s, "redact") || IContains(s, "suppress") || IContains(s, "mask");
}

Cell ParseCell(std::string_view raw) {
  Cell c;
  std::string_view s = Trim(raw);
  if (s.empty()) return c;
  const char f = s.front();
  if (IsDigit(f) || f == '-' || f == '+' || f == '.') {
    if (ParseNumber(s, &c.value, &c.integer)) {
      c.kind = CellKind::kNumber;
      return c;
    }
  }
  static constexpr std::string_view kMissing[] = {"na",   "n/a",     "nan", "null",
                                                  "none", "missing", "."};
  if (s.size() <= 7) {
    for (std::string_view m : kMissing) {
      if (IEquals(s, m)) return c;
    }
  }
  c.kind = IsSuppressionMarker(s) ? CellKind::kSuppressed : CellKind::kText;
  return c;
}

const std::string& At(const Table& t, size_t r, size_t c) {
  static const std::string kEmpty;
  const auto& row = t.rows[r];
  return c < row.size() ? row[c] : kEmpty;
}

Cell CellAt(const Table& t, size_t r, size_t c) {
  return ParseCell(At(t, r, c));
}

// A short, printable excerpt of a cell for messages.
std::string Excerpt(std::string_view s) {
  s = Trim(s);
  std::string out;
  for (char ch : s.substr(0, 24)) {
    const auto u = static_cast<unsigned char>(ch);
    out += (u < 0x20 || u == 0x7f) ? '?' : ch;
  }
  if (s.size() > 24) out += "...";
  return out;
}

std::string FormatNumber(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    return {buf, p};
  }
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  return {buf, p};
}

// Hashes a row's cells into one key (std::hash is not keyed; fine: the keys
// only group rows of one table, a collision merges two groups).
constexpr uint64_t kHashBasis = 1469598103934665603ULL;
uint64_t HashCell(std::string_view cell, uint64_t h = kHashBasis) {
  return (h ^ std::hash<std::string_view>{}(cell)) * 0x9E3779B97F4A7C15ULL + 0x7f4a7c15ULL;
}

// ---------------------------------------------------------------- names --

std::string NormalizeName(std::string_view name) {
  std::string out;
  bool sep = false;
  for (char ch : name) {
    if (ch == '%') {
      if (!out.empty()) out += '_';
      out += "pct";
      sep = false;
      continue;
    }
    const char c = Lower(ch);
    if ((c >= 'a' && c <= 'z') || IsDigit(c)) {
      if (sep && !out.empty()) out += '_';
      sep = false;
      out += c;
    } else {
      sep = true;
    }
  }
  return out;
}

std::vector<std::string> Tokens(const std::string& norm) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  for (char c : norm) {
    if (c == '_') {
      flush();
      continue;
    }
    cur += c;
  }
  flush();
  return out;
}

bool In(const std::string& token, std::span<const std::string_view> set) {
  return std::find(set.begin(), set.end(), token) != set.end();
}
bool In(const std::string& token, std::initializer_list<std::string_view> set) {
  return In(token, std::span<const std::string_view>(set.begin(), set.size()));
}
bool AnyIn(const std::vector<std::string>& tokens, std::span<const std::string_view> set) {
  return std::any_of(tokens.begin(), tokens.end(),
                     [&](const std::string& t) { return In(t, set); });
}
bool AnyIn(const std::vector<std::string>& tokens, std::initializer_list<std::string_view> set) {
  return AnyIn(tokens, std::span<const std::string_view>(set.begin(), set.size()));
}

constexpr std::string_view kHyperTokens[] = {
    "layers",     "layer",      "features",   "estimators", "components", "epochs",  "epoch",
    "trees",      "clusters",   "iterations", "iter",       "iters",      "folds",   "splits",
    "neighbors",  "neighbours", "dims",       "dim",        "heads",      "classes", "params",
    "parameters", "bins",       "leaves",     "depth",      "steps",      "batch",   "seed",
    "lr",         "jobs",       "workers",    "threads",    "gpus",       "cpus",    "k"};
constexpr std::string_view kIdTokens[] = {"id", "ids", "code", "key", "name"};
constexpr std::string_view kMaxTokens[] = {"max", "maximum", "largest", "highest", "biggest"};
constexpr std::string_view kMinTokens[] = {"min", "minimum", "smallest", "lowest"};
constexpr std::string_view kStatTokens[] = {
    "mean",    "avg",  "average",  "median",     "sd",   "std",   "stdev",
    "stddev",  "var",  "variance", "se",         "sem",  "iqr",   "q1",
    "q2",      "q3",   "quantile", "percentile", "mode", "range", "mad",
    "geomean", "skew", "skewness", "kurtosis",   "p5",   "p10",   "p25",
    "p50",     "p75",  "p90",      "p95",        "p99"};
constexpr std::string_view kTotalTokens[] = {"total", "sum", "tot"};
constexpr std::string_view kMeasureTokens[] = {
    "pct",         "percent",     "percentage",  "proportion", "prop",        "share",
    "rate",        "ratio",       "per",         "prevalence", "incidence",   "risk",
    "odds",        "or",          "rr",          "hr",         "ci",          "lower",
    "upper",       "lcl",         "ucl",         "estimate",   "est",         "coef",
    "coefficient", "beta",        "p",           "pval",       "pvalue",      "z",
    "t",           "statistic",   "stat",        "score",      "auc",         "roc",
    "accuracy",    "acc",         "precision",   "recall",     "f1",          "loss",
    "error",       "mse",         "rmse",        "mae",        "r2",          "weight",
    "weights",     "importance",  "effect",      "density",    "probability", "prob",
    "likelihood",  "aic",         "bic",         "deviance",   "df",          "dof",
    "fraction",    "frac",        "change",      "diff",       "difference",  "growth",
    "index",       "specificity", "sensitivity", "ppv",        "npv",         "value",
    "values"};
constexpr std::string_view kCountTokens[] = {
    "n",           "count",         "counts",      "cnt",          "freq",
    "frequency",   "frequencies",   "size",        "num",          "number",
    "patients",    "people",        "persons",     "cases",        "events",
    "deaths",      "admissions",    "subjects",    "participants", "individuals",
    "respondents", "population",    "denominator", "numerator",    "obs",
    "nobs",        "observations",  "records",     "households",   "births",
    "customers",   "users",         "members",     "pupils",       "students",
    "employees",   "contributors",  "firms",       "businesses",   "enterprises",
    "claims",      "prescriptions", "referrals",   "visits"};
constexpr std::string_view kGroupTokens[] = {
    "year",  "yr",    "month",   "week",     "day",     "quarter",  "period",   "date",
    "group", "grp",   "cluster", "category", "cat",     "class",    "label",    "band",
    "bin",   "level", "stratum", "strata",   "decile",  "quintile", "quartile", "tertile",
    "wave",  "rank",  "term",    "variable", "feature", "region",   "type",     "idx"};

enum class NameRole : uint8_t {
  kNone,
  kHyper,
  kLabel,
  kTop2,
  kMax,
  kMin,
  kStatistic,
  kCount,
  kTotalAmbiguous,
  kTotal,
  kMeasure
};

NameRole RoleOfName(const std::string& norm, const std::vector<std::string>& tokens) {
  if (tokens.empty()) return NameRole::kNone;
  if (tokens.size() == 2 && IsDigit(tokens[0][0]) && tokens[1] == "pct")
    return NameRole::kStatistic;
  if (AnyIn(tokens, kHyperTokens)) return NameRole::kHyper;
  if (AnyIn(tokens, kIdTokens)) return NameRole::kLabel;
  const bool top = AnyIn(tokens, {"top"});
  if (AnyIn(tokens, {"top2", "second", "2nd", "x2"}) || (top && AnyIn(tokens, {"2"}))) {
    return NameRole::kTop2;
  }
  if (AnyIn(tokens, kMaxTokens) || AnyIn(tokens, {"top1", "1st", "x1"}) ||
      (top && AnyIn(tokens, {"1"})) || (top && tokens.size() == 1)) {
    return NameRole::kMax;
  }
  if (AnyIn(tokens, kMinTokens)) return NameRole::kMin;
  if (AnyIn(tokens, kStatTokens)) return NameRole::kStatistic;
  if (AnyIn(tokens, kTotalTokens)) {
    if (AnyIn(tokens, kCountTokens)) return NameRole::kCount;
    if (tokens.size() == 1) return NameRole::kTotalAmbiguous;
    return NameRole::kTotal;
  }
  if (norm == "all" || norm == "overall") return NameRole::kTotalAmbiguous;
  if (AnyIn(tokens, kMeasureTokens)) return NameRole::kMeasure;
  if (AnyIn(tokens, kCountTokens)) return NameRole::kCount;
  if (AnyIn(tokens, kGroupTokens)) return NameRole::kLabel;
  return NameRole::kNone;
}

// The name without its role tokens: pairs "total_income" with "max_income".
std::string Stem(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) {
    if (In(t, kMaxTokens) || In(t, kMinTokens) || In(t, kStatTokens) || In(t, kTotalTokens) ||
        In(t, kCountTokens) ||
        In(t, {"top", "top1", "top2", "second", "2nd", "1st", "x1", "x2", "1", "2", "of",
               "contributor", "contributors", "by"})) {
      continue;
    }
    if (!out.empty()) out += '_';
    out += t;
  }
  return out;
}

// ---------------------------------------------------------------- model --

enum class Role : uint8_t {
  kLabel,
  kCount,
  kTotal,
  kMax,
  kMin,
  kTop2,
  kStatistic,
  kMeasure,
  kOther
};

struct Column {
  std::string norm;
  std::vector<std::string> tokens;
  std::string stem;
  NameRole name_role = NameRole::kNone;
  Role role = Role::kOther;
  bool margin = false;  // a count column that is the row total
  size_t numbers = 0, nonneg_integers = 0, texts = 0, hidden = 0;
  bool AllNonNegIntegers() const { return texts == 0 && numbers == nonneg_integers; }
};

// Named as a quasi-identifier: the policy's name is the column name's last
// tokens ("age", "patient_age"; not "age_band").
bool IsQuasiIdentifierName(const Column& col, const std::vector<std::vector<std::string>>& qis) {
  const auto& tok = col.tokens;
  for (const auto& q : qis) {
    if (!q.empty() && q.size() <= tok.size() &&
        std::equal(q.begin(), q.end(), tok.end() - q.size())) {
      return true;
    }
  }
  return false;
}

struct Model {
  const Table* table = nullptr;
  std::vector<Column> cols;
  bool crosstab = false;
  bool describe = false;  // pandas describe(): rows are statistics
  size_t describe_count_row = 0;
  bool rounded = false;
  std::vector<size_t> labels;  // label column indices
  std::vector<size_t> counts;  // count column indices (margins included)
  // Per column: the count column giving its group size (-1: none), and for
  // a magnitude total its largest (x1) and second (x2) contributor columns.
  std::vector<int64_t> group_count, x1, x2;
  std::vector<size_t> stats;   // columns with IsGroupStatistic roles
  std::vector<size_t> totals;  // magnitude total columns
  bool HasRole(Role r) const {
    return std::any_of(cols.begin(), cols.end(), [&](const Column& c) { return c.role == r; });
  }
};

bool IsTotalLabel(std::string_view s) {
  s = Trim(s);
  static constexpr std::string_view kTotals[] = {"total",   "totals",      "all",
                                                 "overall", "grand total", "sum"};
  for (std::string_view m : kTotals) {
    if (IEquals(s, m)) return true;
  }
  return false;
}

bool IsGroupStatistic(Role r) {
  return r == Role::kStatistic || r == Role::kMax || r == Role::kMin || r == Role::kTop2 ||
         r == Role::kTotal;
}

// Links columns to each other by stem in O(columns): a statistic to the
// count of its group (same stem, else the count whose stem's tokens are in
// the statistic's name, else a plain "n"/"count"/... column, else the first
// count column that is not a margin), a magnitude total to its
// largest and second largest contributors (same stem, else the only one).
void LinkColumns(Model* m) {
  const size_t n = m->cols.size();
  m->group_count.assign(n, -1);
  m->x1.assign(n, -1);
  m->x2.assign(n, -1);
  std::unordered_map<std::string_view, size_t> count_by_stem, max_by_stem, top2_by_stem;
  int64_t plain = -1, first_part = -1, only_max = -1, only_top2 = -1;
  size_t maxes = 0, top2s = 0;
  for (size_t c = 0; c < n; ++c) {
    const Column& col = m->cols[c];
    const auto ci = static_cast<int64_t>(c);
    if (col.role == Role::kCount) {
      count_by_stem.emplace(col.stem, c);
      if (plain < 0 && col.stem.empty() && !col.margin) plain = ci;
      if (first_part < 0 && !col.margin) first_part = ci;
    } else if (col.role == Role::kMax) {
      max_by_stem.emplace(col.stem, c);
      only_max = ci;
      ++maxes;
    } else if (col.role == Role::kTop2) {
      top2_by_stem.emplace(col.stem, c);
      only_top2 = ci;
      ++top2s;
    }
    if (IsGroupStatistic(col.role)) m->stats.push_back(c);
    if (col.role == Role::kTotal) m->totals.push_back(c);
  }
  const int64_t fallback = plain >= 0          ? plain
                           : first_part >= 0   ? first_part
                           : m->counts.empty() ? -1
                                               : static_cast<int64_t>(m->counts.front());
  // Count columns with a stem ("n_diabetic"), for a statistic whose name
  // holds the stem's tokens ("mean_bmi_diabetic"); bounded for hostile
  // headers.
  std::vector<std::pair<size_t, std::vector<std::string>>> named_counts;
  for (size_t c : m->counts) {
    if (named_counts.size() >= 64) break;
    if (!m->cols[c].stem.empty()) named_counts.emplace_back(c, Tokens(m->cols[c].stem));
  }
  for (size_t c : m->stats) {
    const Column& col = m->cols[c];
    int64_t best = fallback;
    size_t best_len = 0;
    auto it = col.stem.empty() ? count_by_stem.end() : count_by_stem.find(col.stem);
    if (it != count_by_stem.end()) {
      best = static_cast<int64_t>(it->second);
    } else {
      for (const auto& [k, stem_tokens] : named_counts) {
        const bool inside =
            std::all_of(stem_tokens.begin(), stem_tokens.end(), [&](const std::string& x) {
              return std::find(col.tokens.begin(), col.tokens.end(), x) != col.tokens.end();
            });
        if (inside && stem_tokens.size() > best_len) {
          best = static_cast<int64_t>(k);
          best_len = stem_tokens.size();
        }
      }
    }
    m->group_count[c] = best;
  }
  for (size_t c : m->totals) {
    const std::string& stem = m->cols[c].stem;
    auto a = max_by_stem.find(stem);
    m->x1[c] = a != max_by_stem.end() ? static_cast<int64_t>(a->second)
               : maxes == 1           ? only_max
                                      : -1;
    auto b = top2_by_stem.find(stem);
    m->x2[c] = b != top2_by_stem.end() ? static_cast<int64_t>(b->second)
               : top2s == 1            ? only_top2
                                       : -1;
  }
}

Model BuildModel(const Table& t, const std::vector<std::vector<std::string>>& qis) {
  Model m;
  m.table = &t;
  size_t ncols = t.header.size();
  for (const auto& row : t.rows) ncols = std::max(ncols, row.size());
  m.cols.resize(ncols);
  for (size_t c = 0; c < ncols; ++c) {
    Column& col = m.cols[c];
    col.norm = c < t.header.size() ? NormalizeName(t.header[c]) : std::string();
    col.tokens = Tokens(col.norm);
    col.stem = Stem(col.tokens);
    col.name_role = RoleOfName(col.norm, col.tokens);
  }
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    // Only the cells a row has: a wide header over short rows costs nothing.
    for (size_t c = 0; c < row.size(); ++c) {
      Column& col = m.cols[c];
      if (col.texts > 0) continue;  // a label column: the rest does not matter
      const Cell cell = ParseCell(row[c]);
      switch (cell.kind) {
        case CellKind::kNumber:
          ++col.numbers;
          if (cell.integer && cell.value >= 0) ++col.nonneg_integers;
          break;
        case CellKind::kText: ++col.texts; break;
        default: ++col.hidden; break;
      }
    }
  }
  // Roles from name and values.
  for (Column& col : m.cols) {
    if (col.texts > 0) {
      col.role = Role::kLabel;
      continue;
    }
    switch (col.name_role) {
      case NameRole::kLabel: col.role = Role::kLabel; break;
      case NameRole::kCount:
        col.role = col.AllNonNegIntegers() ? Role::kCount : Role::kMeasure;
        break;
      case NameRole::kTotal: col.role = Role::kTotal; break;
      case NameRole::kMax: col.role = Role::kMax; break;
      case NameRole::kMin: col.role = Role::kMin; break;
      case NameRole::kTop2: col.role = Role::kTop2; break;
      case NameRole::kStatistic: col.role = Role::kStatistic; break;
      case NameRole::kMeasure:
      case NameRole::kHyper: col.role = Role::kMeasure; break;
      default: col.role = Role::kOther; break;
    }
  }
  // Describe: first column labels "count" and statistics.
  if (ncols >= 2 && m.cols[0].role == Role::kLabel) {
    bool has_count = false, has_stat = false;
    for (size_t r = 0; r < t.rows.size() && r < 64; ++r) {
      const std::string label = NormalizeName(At(t, r, 0));
      if (label == "count" || label == "n") {
        if (!has_count) m.describe_count_row = r;
        has_count = true;
      } else {
        const NameRole nr = RoleOfName(label, Tokens(label));
        if (nr == NameRole::kStatistic || nr == NameRole::kMax || nr == NameRole::kMin) {
          has_stat = true;
        }
      }
    }
    m.describe = has_count && has_stat;
  }
  // Crosstab: label columns, one row per category, and >= 2 category
  // columns of non-negative integers.
  std::vector<size_t> label_cols, value_cols;
  for (size_t c = 0; c < ncols; ++c)
    (m.cols[c].role == Role::kLabel ? label_cols : value_cols).push_back(c);
  if (!m.describe && !label_cols.empty() && value_cols.size() >= 2 && !t.rows.empty()) {
    bool ok = true;
    for (size_t c : value_cols) {
      if (!ok) break;
      const Column& col = m.cols[c];
      const NameRole nr = col.name_role;
      ok = col.AllNonNegIntegers() && !IsQuasiIdentifierName(col, qis) &&
           (nr == NameRole::kNone || nr == NameRole::kCount || nr == NameRole::kTotalAmbiguous ||
            nr == NameRole::kLabel);
    }
    if (ok) {  // microdata repeats label combinations; a crosstab does not
      std::vector<uint64_t> keys(t.rows.size());
      for (size_t r = 0; r < t.rows.size(); ++r) {
        uint64_t h = kHashBasis;
        for (size_t c : label_cols) {
          if (c >= t.rows[r].size()) break;
          h = HashCell(Trim(t.rows[r][c]), h);
        }
        keys[r] = h;
      }
      std::sort(keys.begin(), keys.end());
      ok = std::adjacent_find(keys.begin(), keys.end()) == keys.end();
    }
    if (ok) {
      m.crosstab = true;
      for (size_t c : value_cols) {
        m.cols[c].role = Role::kCount;
        m.cols[c].margin = m.cols[c].name_role == NameRole::kTotalAmbiguous;
      }
    }
  }
  // Ambiguous totals.
  const bool has_max = m.HasRole(Role::kMax) || m.HasRole(Role::kTop2);
  const bool has_count = m.HasRole(Role::kCount);
  for (Column& col : m.cols) {
    if (col.role != Role::kOther || col.name_role != NameRole::kTotalAmbiguous) continue;
    if (!has_max && has_count && col.AllNonNegIntegers()) {
      col.role = Role::kCount;
      col.margin = true;
    } else {
      col.role = Role::kTotal;
    }
  }
  for (size_t c = 0; c < ncols; ++c) {
    if (m.cols[c].role == Role::kLabel) m.labels.push_back(c);
    if (m.cols[c].role == Role::kCount) m.counts.push_back(c);
  }
  // Rounding, over every count cell the table shows.
  size_t nonzero = 0;
  bool all_multiples = true;
  auto visit = [&](const Cell& cell) {
    if (cell.kind != CellKind::kNumber || !cell.integer || cell.value == 0) return;
    ++nonzero;
    if (std::fmod(cell.value, 5.0) != 0) all_multiples = false;
  };
  for (size_t r = 0; r < t.rows.size() && all_multiples; ++r) {
    for (size_t c : m.counts) {
      if (c >= t.rows[r].size()) break;
      visit(CellAt(t, r, c));
    }
  }
  if (m.describe) {
    for (size_t c = 1; c < ncols; ++c) visit(CellAt(t, m.describe_count_row, c));
  }
  m.rounded = all_multiples && nonzero >= 3;
  LinkColumns(&m);
  return m;
}

// ------------------------------------------------------------- findings --

Finding MakeFinding(const char* detector, const Table& t, size_t row, size_t column, double score,
                    std::string message) {
  Finding f;
  f.detector = detector;
  f.file = t.file;
  f.location = t.CellLocation(row, column);
  f.row = static_cast<int64_t>(row);
  f.column = static_cast<int64_t>(column);
  f.score = score;
  f.hard = true;
  f.message = std::move(message);
  return f;
}

// Caps one rule's findings on one table, then adds one summary.
class Capped {
 public:
  Capped(const char* detector, const Table& table, std::vector<Finding>* out)
      : detector_(detector), table_(table), out_(out) {}
  ~Capped() {
    if (dropped_ == 0) return;
    Finding f;
    f.detector = detector_;
    f.file = table_.file;
    f.location = table_.name.empty() ? "whole table" : "table '" + table_.name + "'";
    f.score = last_score_;
    f.hard = true;
    f.message = std::to_string(dropped_) + " more " + detector_ + " findings in this table";
    out_->push_back(std::move(f));
  }
  Capped(const Capped&) = delete;
  Capped& operator=(const Capped&) = delete;
  void Add(Finding f) {
    last_score_ = f.score;
    if (kept_ < kMaxFindingsPerRule) {
      ++kept_;
      out_->push_back(std::move(f));
    } else {
      ++dropped_;
    }
  }

 private:
  const char* detector_;
  const Table& table_;
  std::vector<Finding>* out_;
  size_t kept_ = 0;
  size_t dropped_ = 0;
  double last_score_ = 0;
};

std::string ColumnName(const Table& t, size_t c) {
  if (c < t.header.size() && !Trim(t.header[c]).empty()) return "'" + Excerpt(t.header[c]) + "'";
  return "column " + std::to_string(c + 1);
}

bool IsSmall(double v, int64_t threshold) {
  return v > 0 && v < static_cast<double>(threshold);
}

// ---------------------------------------------------------- small cells --

void SmallCells(const Model& m, const Policy& policy, std::vector<Finding>* out) {
  const Table& t = *m.table;
  const int64_t th = policy.min_cell_count;
  if (th <= 1) return;
  const std::string th_s = std::to_string(th);
  {
    Capped capped("sdc.small_cell", t, out);
    if (!m.rounded) {
      for (size_t r = 0; r < t.rows.size(); ++r) {
        for (size_t c : m.counts) {
          if (c >= t.rows[r].size()) break;
          const Cell cell = CellAt(t, r, c);
          if (cell.kind != CellKind::kNumber || !IsSmall(cell.value, th)) continue;
          capped.Add(MakeFinding("sdc.small_cell", t, r, c, 0.6,
                                 "count " + FormatNumber(cell.value) +
                                     (m.crosstab ? " in crosstab column " : " in column ") +
                                     ColumnName(t, c) + " is below the minimum cell count " + th_s +
                                     " (suppress it, e.g. '<" + th_s +
                                     "', or round counts to 5 or 10)"));
        }
      }
      if (m.describe) {
        for (size_t c = 1; c < m.cols.size(); ++c) {
          const Cell cell = CellAt(t, m.describe_count_row, c);
          if (cell.kind != CellKind::kNumber || !cell.integer || !IsSmall(cell.value, th)) continue;
          capped.Add(MakeFinding("sdc.small_cell", t, m.describe_count_row, c, 0.6,
                                 "summary of column " + ColumnName(t, c) + " counts " +
                                     FormatNumber(cell.value) +
                                     " values, below the minimum cell count " + th_s));
        }
      }
    }
  }
  // Statistics of small groups, once per row (or describe column).
  Capped capped("sdc.small_cell", t, out);
  const std::vector<int64_t>& group = m.group_count;
  const bool any =
      std::any_of(m.stats.begin(), m.stats.end(), [&](size_t c) { return group[c] >= 0; });
  if (any) {
    for (size_t r = 0; r < t.rows.size(); ++r) {
      std::string names;
      size_t shown = 0;
      size_t first = 0;
      int64_t first_group = -1;
      Cell first_count;
      for (size_t c : m.stats) {
        if (c >= t.rows[r].size()) break;
        if (group[c] < 0) continue;
        const Cell stat = CellAt(t, r, c);
        if (stat.kind != CellKind::kNumber) continue;
        const Cell n = CellAt(t, r, static_cast<size_t>(group[c]));
        const bool small = (n.kind == CellKind::kNumber && IsSmall(n.value, th) && !m.rounded) ||
                           n.kind == CellKind::kSuppressed;
        if (!small) continue;
        if (names.empty()) {
          first = c;
          first_group = group[c];
          first_count = n;
        }
        if (++shown <= 8) {
          names += names.empty() ? "" : ", ";
          names += ColumnName(t, c);
        } else if (shown == 9) {
          names += ", ...";
        }
      }
      if (names.empty()) continue;
      const std::string size =
          first_count.kind == CellKind::kSuppressed
              ? "whose count in " + ColumnName(t, static_cast<size_t>(first_group)) +
                    " is suppressed ('" + Excerpt(At(t, r, static_cast<size_t>(first_group))) + "')"
              : "of " + FormatNumber(first_count.value) + " (" +
                    ColumnName(t, static_cast<size_t>(first_group)) + ")";
      capped.Add(MakeFinding("sdc.small_cell", t, r, first, 0.6,
                             "statistics " + names + " shown for a group " + size +
                                 ", below the minimum cell count " + th_s +
                                 " (a min, max or mean of so few is nearly one person's value)"));
    }
  }
  if (m.describe) {
    for (size_t c = 1; c < m.cols.size(); ++c) {
      const Cell n = CellAt(t, m.describe_count_row, c);
      const bool small = (n.kind == CellKind::kNumber && IsSmall(n.value, th) && !m.rounded) ||
                         n.kind == CellKind::kSuppressed;
      if (!small) continue;
      for (size_t r = 0; r < t.rows.size() && r < 64; ++r) {  // describe() has ~8 rows
        if (r == m.describe_count_row || CellAt(t, r, c).kind != CellKind::kNumber) continue;
        const std::string label = NormalizeName(At(t, r, 0));
        const NameRole nr = RoleOfName(label, Tokens(label));
        if (nr != NameRole::kStatistic && nr != NameRole::kMax && nr != NameRole::kMin) continue;
        capped.Add(MakeFinding("sdc.small_cell", t, r, c, 0.6,
                               "statistic '" + Excerpt(At(t, r, 0)) + "' of column " +
                                   ColumnName(t, c) +
                                   " is over fewer values than the minimum cell count " + th_s));
        break;  // one per column
      }
    }
  }
}

// ------------------------------------------------------------ dominance --

void Dominance(const Model& m, const Policy& policy, std::vector<Finding>* out) {
  const Table& t = *m.table;
  Capped nk("sdc.dominance", t, out);
  Capped pp("sdc.p_percent", t, out);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t tc : m.totals) {
      if (tc >= t.rows[r].size()) break;
      const int64_t x1c = m.x1[tc];
      if (x1c < 0) continue;
      const int64_t x2c = m.x2[tc];
      const int64_t nc = m.group_count[tc];
      const Cell total = CellAt(t, r, tc);
      const Cell x1 = CellAt(t, r, static_cast<size_t>(x1c));
      if (total.kind != CellKind::kNumber || x1.kind != CellKind::kNumber) continue;
      const double T = total.value;
      const double eps = 1e-9 * std::max(1.0, std::fabs(T));
      if (!(T > 0) || x1.value < 0 || x1.value > T + eps) continue;
      double count = -1;
      if (nc >= 0) {
        const Cell n = CellAt(t, r, static_cast<size_t>(nc));
        if (n.kind == CellKind::kNumber && n.integer) count = n.value;
      }
      bool x2_known = false;
      double x2 = 0;
      if (x2c >= 0) {
        const Cell c2 = CellAt(t, r, static_cast<size_t>(x2c));
        if (c2.kind == CellKind::kNumber && c2.value >= 0 && c2.value <= x1.value + eps) {
          x2 = c2.value;
          x2_known = true;
        }
      }
      if (!x2_known && count == 2) {
        x2 = T - x1.value;
        x2_known = true;
      } else if (!x2_known && count == 1) {
        x2 = 0;
        x2_known = true;
      }
      // NK: the nk_n largest contributors' sum, a lower bound from what is shown.
      double top_n = x1.value + (policy.nk_n >= 2 ? x2 : 0);
      if (count >= 1 && count <= policy.nk_n) top_n = T;
      const std::string where = "total " + ColumnName(t, tc) + " = " + FormatNumber(T);
      if (policy.nk_n >= 1 && top_n > policy.nk_k * T + eps) {
        nk.Add(MakeFinding("sdc.dominance", t, r, tc, 0.7,
                           where + ": the " + std::to_string(policy.nk_n) +
                               " largest contributors make up at least " +
                               FormatNumber(std::round(1000 * top_n / T) / 10) +
                               "% of it (NK rule: over " + FormatNumber(100 * policy.nk_k) +
                               "% is dominated; " + ColumnName(t, static_cast<size_t>(x1c)) +
                               " = " + FormatNumber(x1.value) +
                               (count >= 0 ? ", count " + FormatNumber(count) : "") + ")"));
      }
      if (x2_known) {
        const double rest = T - x1.value - x2;
        if (rest < policy.p_percent / 100.0 * x1.value - eps) {
          pp.Add(MakeFinding(
              "sdc.p_percent", t, r, tc, 0.7,
              where + ": apart from the two largest contributors (" + FormatNumber(x1.value) +
                  " and " + FormatNumber(x2) + ") only " + FormatNumber(std::max(0.0, rest)) +
                  " remains, under " + FormatNumber(policy.p_percent) +
                  "% of the largest, so the second largest can estimate it (p% rule)"));
        }
      }
    }
  }
}

// ------------------------------------------------------------ microdata --

bool Digits(std::string_view s, size_t from, size_t n) {
  if (from + n > s.size()) return false;
  for (size_t i = from; i < from + n; ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}
int Num(std::string_view s, size_t from, size_t n) {
  int v = 0;
  for (size_t i = from; i < from + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

// A full date with a day: YYYY-MM-DD (time allowed after), YYYY/MM/DD,
// DD/MM/YYYY, MM/DD/YYYY, DD-MM-YYYY, DD.MM.YYYY.
bool LooksLikeDate(std::string_view s) {
  int y = 0, a = 0, b = 0;
  if (s.size() >= 10 && Digits(s, 0, 4) && (s[4] == '-' || s[4] == '/') && s[7] == s[4] &&
      Digits(s, 5, 2) && Digits(s, 8, 2) && (s.size() == 10 || s[10] == 'T' || s[10] == ' ')) {
    y = Num(s, 0, 4);
    a = Num(s, 5, 2);
    b = Num(s, 8, 2);
  } else if (s.size() == 10 && Digits(s, 0, 2) && (s[2] == '/' || s[2] == '-' || s[2] == '.') &&
             s[5] == s[2] && Digits(s, 3, 2) && Digits(s, 6, 4)) {
    a = Num(s, 0, 2);
    b = Num(s, 3, 2);
    y = Num(s, 6, 4);
  } else {
    return false;
  }
  return y >= 1850 && y <= 2100 && a >= 1 && b >= 1 &&
         ((a <= 12 && b <= 31) || (a <= 31 && b <= 12));
}

bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}

// UK full postcode (A9 9AA, A99 9AA, A9A 9AA, AA9 9AA, AA99 9AA, AA9A 9AA)
// or US ZIP+4 (12345-6789).
bool LooksLikePostcode(std::string_view s) {
  if (s.size() == 10 && Digits(s, 0, 5) && s[5] == '-' && Digits(s, 6, 4)) return true;
  std::string c;
  for (char ch : s) {
    if (ch != ' ') c += (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
  }
  if (c.size() < 5 || c.size() > 7) return false;
  const size_t n = c.size();
  if (!IsDigit(c[n - 3]) || !IsUpper(c[n - 2]) || !IsUpper(c[n - 1])) return false;
  const std::string out = c.substr(0, n - 3);  // outward code
  if (out.empty() || !IsUpper(out[0])) return false;
  size_t i = 1;
  if (i < out.size() && IsUpper(out[i])) ++i;
  if (i >= out.size() || !IsDigit(out[i])) return false;
  ++i;
  if (i < out.size() && (IsDigit(out[i]) || IsUpper(out[i]))) ++i;
  return i == out.size();
}

bool ShapeQuasiIdentifier(const Table& t, size_t c, std::string* why) {
  size_t seen = 0, dates = 0, postcodes = 0;
  for (size_t r = 0; r < t.rows.size() && seen < 1000; ++r) {
    std::string_view s = Trim(At(t, r, c));
    if (s.empty()) continue;
    ++seen;
    if (LooksLikeDate(s)) {
      ++dates;
    } else if (LooksLikePostcode(s)) {
      ++postcodes;
    }
  }
  if (seen == 0) return false;
  if (dates * 5 >= seen * 4) {
    *why = "dates";
    return true;
  }
  if (postcodes * 5 >= seen * 4) {
    *why = "postcodes";
    return true;
  }
  return false;
}

void Microdata(const Model& m, const Policy& policy,
               const std::vector<std::vector<std::string>>& qis, std::vector<Finding>* out) {
  const Table& t = *m.table;
  const size_t rows = t.rows.size();
  if (rows < static_cast<size_t>(std::max<int64_t>(2, policy.microdata_min_rows))) return;
  if (!m.counts.empty() || m.describe) return;  // aggregates: small cells cover them
  std::vector<size_t> qcols;
  std::string names;
  size_t shape_checks = 0;
  std::vector<bool> is_qi(m.cols.size(), false);
  for (size_t c = 0; c < m.cols.size(); ++c) {
    bool match = IsQuasiIdentifierName(m.cols[c], qis);
    std::string why;
    if (!match && m.cols[c].role == Role::kLabel && shape_checks < kMaxShapeColumns) {
      ++shape_checks;
      match = ShapeQuasiIdentifier(t, c, &why);
    }
    if (!match) continue;
    qcols.push_back(c);
    is_qi[c] = true;
    if (qcols.size() <= 8) {
      names += names.empty() ? "" : ", ";
      names += ColumnName(t, c) + (why.empty() ? "" : " (" + why + ")");
    } else if (qcols.size() == 9) {
      names += ", ...";
    }
  }
  if (qcols.size() < 2) return;
  // Other columns all statistics (mean, sd, max, ...): a group-by output.
  bool other_all_measures = true, any_other = false;
  for (size_t c = 0; c < m.cols.size(); ++c) {
    if (is_qi[c]) continue;
    any_other = true;
    const Role r = m.cols[c].role;
    if (!IsGroupStatistic(r)) other_all_measures = false;
  }
  if (any_other && other_all_measures) return;
  // Rows per key in a flat open-addressing table (linear probing, load
  // <= 0.5): O(n), no per-row allocation.
  size_t cap = 16;
  while (cap < 2 * rows) cap <<= 1;
  struct Slot {
    uint64_t key = 0;
    uint32_t count = 0;
  };
  std::vector<Slot> slots(cap);
  std::vector<uint32_t> slot_of(rows);
  for (size_t r = 0; r < rows; ++r) {
    uint64_t h = kHashBasis;
    for (size_t c : qcols) {
      if (c >= t.rows[r].size()) break;
      h = HashCell(Trim(t.rows[r][c]), h);
    }
    size_t i = (h ^ (h >> 29)) & (cap - 1);
    while (slots[i].count != 0 && slots[i].key != h) i = (i + 1) & (cap - 1);
    slots[i].key = h;
    ++slots[i].count;
    slot_of[r] = static_cast<uint32_t>(i);
  }
  size_t unique = 0;
  std::vector<size_t> firsts;
  for (size_t r = 0; r < rows; ++r) {
    if (slots[slot_of[r]].count != 1) continue;
    ++unique;
    if (firsts.size() < 3) firsts.push_back(r);
  }
  if (unique == 0) return;
  // A complete grid of groups is an aggregate (group-by outputs are small:
  // past kMaxGridRows rows this is not checked).
  if (unique == rows && rows <= kMaxGridRows && qcols.size() <= kMaxGridColumns) {
    double grid = 1;
    std::vector<uint64_t> values(rows);
    for (size_t c : qcols) {
      for (size_t r = 0; r < rows; ++r) values[r] = HashCell(Trim(At(t, r, c)));
      std::sort(values.begin(), values.end());
      grid *= static_cast<double>(std::unique(values.begin(), values.end()) - values.begin());
    }
    if (static_cast<double>(rows) >= 0.8 * grid) return;
  }
  const double fraction = static_cast<double>(unique) / static_cast<double>(rows);
  if (!(fraction > policy.min_unique_fraction)) return;
  Finding f;
  f.detector = "sdc.microdata";
  f.file = t.file;
  f.location.clear();
  for (size_t i = 0; i < firsts.size(); ++i) {
    f.location += (i ? "; " : "") + t.RowLocation(firsts[i]);
  }
  f.row = static_cast<int64_t>(firsts.front());
  f.score = fraction;
  f.hard = fraction > 0.5 ||
           unique >= static_cast<size_t>(std::max<int64_t>(1, policy.microdata_min_rows));
  f.message = std::to_string(unique) + " of " + std::to_string(rows) +
              " rows are unique on the quasi-identifiers " + names +
              ": record-level data that can single people out";
  out->push_back(std::move(f));
}

// ---------------------------------------------------------- differencing --

// Margins: a total row or column recovering a hidden cell or revealing an
// omitted small group.
// One line (row or column) of parts under a total: the hidden parts'
// sum is recovered as total - shown parts.
struct Line {
  double shown = 0;
  size_t hidden = 0;
  size_t first_hidden = 0;  // row or column index of the first hidden part
  bool suppressed = false;  // a hidden part is a suppression marker (not missing)
  void Add(const Cell& cell, size_t index) {
    if (cell.kind == CellKind::kNumber) {
      shown += cell.value;
      return;
    }
    if (hidden++ == 0) first_hidden = index;
    suppressed = suppressed || cell.kind == CellKind::kSuppressed;
  }
};

// Checks a line; (r, c) is where the finding points when no part is hidden.
void CheckLine(const Model& m, const Line& line, double total, size_t r, size_t c, bool row_total,
               int64_t th, Capped* capped) {
  const Table& t = *m.table;
  const double rest = total - line.shown;
  if (!IsSmall(rest, th)) return;
  const std::string what = row_total
                               ? "row total " + ColumnName(t, c) + " = " + FormatNumber(total)
                               : "column total " + FormatNumber(total) + " at " + t.RowLocation(r);
  if (line.hidden == 0) {
    capped->Add(MakeFinding("sdc.differencing", *m.table, r, c, 0.8,
                            what + " exceeds the sum of the shown cells by " + FormatNumber(rest) +
                                ": a group of " + FormatNumber(rest) +
                                " left out of the table is revealed"));
    return;
  }
  const size_t hr = row_total ? r : line.first_hidden;
  const size_t hc = row_total ? line.first_hidden : c;
  const std::string kind = line.suppressed ? "suppressed" : "missing";
  capped->Add(MakeFinding("sdc.differencing", *m.table, hr, hc, 0.8,
                          what + " minus the shown cells recovers " +
                              (line.hidden == 1 ? "this " + kind + " cell"
                                                : "the " + std::to_string(line.hidden) + " " +
                                                      kind + " cells of this line (together)") +
                              " as " + FormatNumber(rest)));
}

// Margins: a total row or column recovering hidden cells or revealing an
// omitted small group. A margin smaller than its shown parts is not a sum
// of them: not checked.
void Margins(const Model& m, const Policy& policy, std::vector<Finding>* out) {
  const Table& t = *m.table;
  const int64_t th = policy.min_cell_count;
  if (m.rounded || th <= 1 || m.counts.empty()) return;
  Capped capped("sdc.differencing", t, out);
  // Total column: the parts are the other non-margin count columns.
  std::vector<size_t> parts, margins;
  for (size_t c : m.counts) (m.cols[c].margin ? margins : parts).push_back(c);
  if (margins.size() == 1 && parts.size() >= 2) {
    const size_t mc = margins.front();
    std::vector<std::pair<size_t, Line>> lines;
    bool consistent = true;
    const size_t last = std::max(mc, parts.back());
    for (size_t r = 0; r < t.rows.size() && consistent; ++r) {
      if (t.rows[r].size() <= last) continue;  // a short row: incomplete line (and bounded work)
      const Cell total = CellAt(t, r, mc);
      if (total.kind != CellKind::kNumber) continue;
      Line line;
      for (size_t c : parts) line.Add(CellAt(t, r, c), c);
      consistent = line.shown <= total.value;
      lines.emplace_back(r, line);
    }
    for (size_t i = 0; i < lines.size() && consistent; ++i) {
      const auto& [r, line] = lines[i];
      CheckLine(m, line, CellAt(t, r, mc).value, r, mc, true, th, &capped);
    }
  }
  // Total row: exactly one row labelled Total/All/Overall.
  size_t total_row = 0, total_rows = 0;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t c : m.labels) {
      if (IsTotalLabel(At(t, r, c))) {
        total_row = r;
        ++total_rows;
        break;
      }
    }
  }
  if (total_rows != 1 || t.rows.size() < 3) return;
  // One pass over the rows. A row too short for a column lacks that part: a
  // missing cell (found by a scan only when it matters, at most 20 times).
  std::vector<Line> lines(m.cols.size());
  std::vector<size_t> present(m.cols.size(), 0);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (r == total_row) continue;
    for (size_t c : m.counts) {
      if (c >= t.rows[r].size()) break;
      lines[c].Add(CellAt(t, r, c), r);
      ++present[c];
    }
  }
  size_t scans = 0;
  for (size_t c : m.counts) {
    const Cell total = CellAt(t, total_row, c);
    if (total.kind != CellKind::kNumber) continue;
    Line& line = lines[c];
    const size_t missing = t.rows.size() - 1 - present[c];
    if (missing > 0) {
      if (!IsSmall(total.value - line.shown, th)) continue;
      size_t first = line.hidden > 0 ? line.first_hidden : total_row;
      for (size_t r = 0; r < first && scans < 20; ++r) {
        if (r != total_row && c >= t.rows[r].size()) {
          first = r;
          break;
        }
      }
      ++scans;
      line.hidden += missing;
      line.first_hidden = first;
    }
    CheckLine(m, line, total.value, total_row, c, false, th, &capped);
  }
}

struct DiffTable {
  const Model* model = nullptr;
  bool released = false;
  size_t order = 0;
  double total = 0;
  std::unordered_map<std::string, size_t> row_by_key;
  std::unordered_map<std::string, size_t> count_by_name;
};

std::string RowKey(const Model& m, size_t r) {
  std::string key;
  const auto& row = m.table->rows[r];
  for (size_t c : m.labels) {
    if (c >= row.size()) break;
    for (char ch : Trim(row[c])) key += Lower(ch);
    key += '\x1f';
  }
  return key;
}

std::string Signature(const Model& m) {
  std::vector<std::string> labels, counts;
  for (size_t c : m.labels) labels.push_back(m.cols[c].norm);
  for (size_t c : m.counts) counts.push_back(m.cols[c].norm);
  std::sort(labels.begin(), labels.end());
  std::sort(counts.begin(), counts.end());
  std::string sig;
  for (const auto& s : labels) sig += s + ",";
  sig += "|";
  for (const auto& s : counts) sig += s + ",";
  return sig;
}

void Prepare(DiffTable* d) {
  const Model& m = *d->model;
  for (size_t r = 0; r < m.table->rows.size(); ++r) {
    d->row_by_key.emplace(RowKey(m, r), r);  // first row wins on duplicate labels
    for (size_t c : m.counts) {
      if (c >= m.table->rows[r].size()) break;
      const Cell cell = CellAt(*m.table, r, c);
      if (cell.kind == CellKind::kNumber) d->total += cell.value;
    }
  }
  for (size_t c : m.counts) d->count_by_name.emplace(m.cols[c].norm, c);
}

void ComparePair(const DiffTable& a, const DiffTable& b, const Policy& policy,
                 std::vector<Finding>* out) {
  // Report on the output table; when both are outputs, on the later one.
  const DiffTable& rep = (b.released || (!a.released && a.order > b.order)) ? a : b;
  const DiffTable& other = (&rep == &a) ? b : a;
  const Table& rt = *rep.model->table;
  const Table& ot = *other.model->table;
  const int64_t th = policy.min_cell_count;
  struct Hit {
    size_t r, c, orow, ocol;
    double mine, theirs;
  };
  std::vector<Hit> hits;
  bool up = false, down = false;
  std::vector<std::pair<size_t, size_t>> columns;  // (rep column, other column), ascending
  for (const auto& [name, c] : rep.count_by_name) {
    auto jt = other.count_by_name.find(name);
    if (jt != other.count_by_name.end()) columns.emplace_back(c, jt->second);
  }
  std::sort(columns.begin(), columns.end());
  for (const auto& [key, r] : rep.row_by_key) {
    auto it = other.row_by_key.find(key);
    if (it == other.row_by_key.end()) continue;
    for (const auto& [c, oc] : columns) {
      if (c >= rt.rows[r].size()) break;
      const Cell x = CellAt(rt, r, c);
      const Cell y = CellAt(ot, it->second, oc);
      if (x.kind != CellKind::kNumber || y.kind != CellKind::kNumber) continue;
      const double d = x.value - y.value;
      if (d > 0) up = true;
      if (d < 0) down = true;
      if (up && down) return;  // not nested populations
      if (IsSmall(std::fabs(d), th)) hits.push_back({r, c, it->second, oc, x.value, y.value});
    }
  }
  if (hits.empty()) return;
  std::sort(hits.begin(), hits.end(),
            [](const Hit& x, const Hit& y) { return x.r != y.r ? x.r < y.r : x.c < y.c; });
  Capped capped("sdc.differencing", rt, out);
  const std::string other_name =
      std::string(other.released ? "the earlier released table " : "the table ") + "'" + ot.file +
      (ot.name.empty() ? "" : "!" + ot.name) + "'";
  for (const Hit& h : hits) {
    Finding f = MakeFinding("sdc.differencing", rt, h.r, h.c, 0.8,
                            "count " + FormatNumber(h.mine) + " here and " +
                                FormatNumber(h.theirs) + " in " + other_name +
                                " (same groups, one population inside the other) differ by " +
                                FormatNumber(std::fabs(h.mine - h.theirs)) +
                                ", a group below the minimum cell count " + std::to_string(th));
    f.location += " vs '" + ot.file + "' " + ot.CellLocation(h.orow, h.ocol);
    capped.Add(std::move(f));
  }
}

void Differencing(const std::vector<Model>& outputs, const std::vector<Model>& released,
                  const Policy& policy, std::vector<Finding>* out) {
  if (policy.min_cell_count <= 1) return;
  std::map<std::string, std::vector<DiffTable>> buckets;
  size_t order = 0;
  auto add = [&](const Model& m, bool is_released) {
    ++order;
    if (m.counts.empty() || m.rounded || m.table->rows.empty()) return;
    DiffTable d;
    d.model = &m;
    d.released = is_released;
    d.order = order;
    buckets[Signature(m)].push_back(std::move(d));
  };
  for (const Model& m : outputs) add(m, false);
  for (const Model& m : released) add(m, true);
  for (auto& [sig, tables] : buckets) {
    if (tables.size() < 2) continue;
    if (std::none_of(tables.begin(), tables.end(), [](const DiffTable& d) { return !d.released; }))
      continue;
    for (DiffTable& d : tables) Prepare(&d);
    std::sort(tables.begin(), tables.end(), [](const DiffTable& x, const DiffTable& y) {
      return x.total != y.total ? x.total < y.total : x.order < y.order;
    });
    const size_t window = tables.size() <= kDiffWindow ? tables.size() : kDiffWindow;
    for (size_t i = 0; i < tables.size(); ++i) {
      for (size_t j = i + 1; j < tables.size() && j <= i + window; ++j) {
        if (tables[i].released && tables[j].released) continue;
        ComparePair(tables[i], tables[j], policy, out);
      }
    }
  }
}

}  // namespace

void DetectDisclosure(const std::vector<Table>& tables, const std::vector<Table>& released,
                      const Policy& policy, std::vector<Finding>* findings) {
  std::vector<std::vector<std::string>> qis;
  for (const std::string& q : policy.quasi_identifiers) qis.push_back(Tokens(NormalizeName(q)));
  std::vector<Model> outputs, earlier;
  outputs.reserve(tables.size());
  for (const Table& t : tables) outputs.push_back(BuildModel(t, qis));
  if (policy.differencing) {
    earlier.reserve(released.size());
    for (const Table& t : released) earlier.push_back(BuildModel(t, qis));
  }
  for (const Model& m : outputs) {
    SmallCells(m, policy, findings);
    Dominance(m, policy, findings);
    Microdata(m, policy, qis, findings);
    if (policy.differencing) Margins(m, policy, findings);
  }
  if (policy.differencing) Differencing(outputs, earlier, policy, findings);
}

}  // namespace cce::gate
