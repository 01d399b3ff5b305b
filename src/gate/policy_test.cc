#include "gate/policy.h"

#include <gtest/gtest.h>

namespace cce::gate {
namespace {

TEST(GatePolicy, EmptyDocumentGivesTheDocumentedDefaults) {
  auto p = LoadPolicy("", "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status().message();
  Policy d;
  EXPECT_EQ(p->threshold, d.threshold);
  EXPECT_EQ(p->min_cell_count, 10);
  EXPECT_EQ(p->nk_n, 2);
  EXPECT_DOUBLE_EQ(p->nk_k, 0.9);
}

TEST(GatePolicy, ReadsEverySection) {
  auto p = LoadPolicy(R"(
gate:
  threshold: 0.3
  limits: {max_file_bytes: 1000, max_depth: 2, max_scan_millis: 500}
  types: {allowed: [csv, png]}
  copies: {rows_hold: 2, row_min_fraction: 0.75}
  encodings: {min_encoded_chars: 64}
  covert: {lsb_threshold: 0.9, max_trailing_bytes: 16}
  sdc: {min_cell_count: 5, p_percent: 15, quasi_identifiers: [age, region], differencing: false}
)",
                      "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->threshold, 0.3);
  EXPECT_EQ(p->max_file_bytes, 1000u);
  EXPECT_EQ(p->max_depth, 2);
  EXPECT_EQ(p->max_scan_millis, 500);
  EXPECT_EQ(p->allowed_types, (std::vector<std::string>{"csv", "png"}));
  EXPECT_EQ(p->rows_hold, 2u);
  EXPECT_DOUBLE_EQ(p->row_min_fraction, 0.75);
  EXPECT_EQ(p->min_encoded_chars, 64u);
  EXPECT_DOUBLE_EQ(p->lsb_threshold, 0.9);
  EXPECT_EQ(p->max_trailing_bytes, 16u);
  EXPECT_EQ(p->min_cell_count, 5);
  EXPECT_DOUBLE_EQ(p->p_percent, 15);
  EXPECT_EQ(p->quasi_identifiers, (std::vector<std::string>{"age", "region"}));
  EXPECT_FALSE(p->differencing);
}

TEST(GatePolicy, ErrorsNameTheKeyAndWhatWasExpected) {
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"gate: {copies: {row_hold: 1}}", "p.yaml: gate.copies.row_hold: unknown key"},
      {"gate: {nonsense: 1}", "p.yaml: gate.nonsense: unknown key"},
      {"other: 1", "p.yaml: other: unknown key (expected 'gate')"},
      {"gate: {threshold: 1.5}", "p.yaml: gate.threshold: 1.5 is out of range"},
      {"gate: {threshold: high}", "p.yaml: gate.threshold: expected a number, got 'high'"},
      {"gate: {sdc: {min_cell_count: 2.5}}", "gate.sdc.min_cell_count: expected an integer"},
      {"gate: {sdc: {differencing: maybe}}", "gate.sdc.differencing: expected true or false"},
      {"gate: {types: {allowed: csv}}", "gate.types.allowed: expected a list of strings"},
      {"gate: {limits: 3}", "gate.limits: expected a mapping"},
      {"gate: [1, 2]", "p.yaml: gate: expected a mapping"},
      {"gate: {threshold: [", "p.yaml:1:"},
  };
  for (const Case& c : cases) {
    auto p = LoadPolicy(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.message), std::string::npos)
        << c.yaml << " -> " << p.status().message();
  }
}

TEST(GatePolicy, RefusesAnOversizedFileUnread) {
  std::string big = "gate:\n  threshold: 0.5\n" + std::string(70 * 1024, '#');
  auto p = LoadPolicy(big, "big.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("larger than"), std::string::npos);
}

}  // namespace
}  // namespace cce::gate
