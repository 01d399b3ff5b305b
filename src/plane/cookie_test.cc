// Finding a cookie in a Cookie header (cookie.h): the rules the Explore
// proxy relies on to find its login cookie.
#include "plane/cookie.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

namespace cce::plane {
namespace {

constexpr std::string_view kName = "cce_explore";

std::optional<std::string> Find(std::string_view header, std::string_view name = kName) {
  auto v = FindCookie(header, name);
  if (!v) return std::nullopt;
  return std::string(*v);
}

TEST(FindCookie, FindsTheNamedPairAnywhere) {
  EXPECT_EQ(Find("cce_explore=abc"), "abc");
  EXPECT_EQ(Find("a=1; cce_explore=abc"), "abc");
  EXPECT_EQ(Find("a=1; cce_explore=abc; b=2"), "abc");
  EXPECT_EQ(Find("a=1;cce_explore=abc;b=2"), "abc");  // no space after ';'
  EXPECT_EQ(Find("a=1;    cce_explore=abc"), "abc");  // several spaces
}

TEST(FindCookie, AbsentIsNullopt) {
  EXPECT_EQ(Find(""), std::nullopt);
  EXPECT_EQ(Find(";;; ;"), std::nullopt);
  EXPECT_EQ(Find("a=1; b=2"), std::nullopt);
  EXPECT_EQ(Find("cce_explore"), std::nullopt);          // a pair without '='
  EXPECT_EQ(Find("a=cce_explore=abc"), std::nullopt);    // inside another cookie's value
  EXPECT_EQ(Find("a=\"x; cce_explore=abc\""), "abc\"");  // quotes do not protect ';'
}

TEST(FindCookie, ANameThatContainsTheNameIsAnotherCookie) {
  EXPECT_EQ(Find("xcce_explore=evil"), std::nullopt);
  EXPECT_EQ(Find("cce_explore_x=evil"), std::nullopt);
  EXPECT_EQ(Find("CCE_EXPLORE=evil"), std::nullopt);  // names are case-sensitive
  EXPECT_EQ(Find("xcce_explore=evil; cce_explore=good"), "good");
  EXPECT_EQ(Find("cce_explore_x=evil; cce_explore=good"), "good");
}

TEST(FindCookie, FirstOfDuplicatesWins) {
  EXPECT_EQ(Find("cce_explore=first; cce_explore=second"), "first");
  EXPECT_EQ(Find("a=1; cce_explore=first; b=2; cce_explore=second"), "first");
  // An empty first value is still the first match: not skipped for a later one.
  EXPECT_EQ(Find("cce_explore=; cce_explore=second"), "");
}

TEST(FindCookie, EmptyValueIsPresentAndEmpty) {
  auto v = FindCookie("cce_explore=", kName);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->empty());
  EXPECT_EQ(Find("cce_explore=; b=2"), "");
}

TEST(FindCookie, OnlyLeadingSpacesAreSkipped) {
  EXPECT_EQ(Find("cce_explore=abc "), "abc ");  // trailing space kept
  EXPECT_EQ(Find("cce_explore=abc\t; b=1"), "abc\t");
  EXPECT_EQ(Find("\tcce_explore=abc"), std::nullopt);  // a tab is not skipped
  EXPECT_EQ(Find("cce_explore =abc"), std::nullopt);   // nor a space before '='
  EXPECT_EQ(Find("cce_explore= abc"), " abc");         // a space after '=' is value
}

TEST(FindCookie, QuotedValuesKeepTheirQuotes) {
  EXPECT_EQ(Find("cce_explore=\"abc\""), "\"abc\"");
  EXPECT_EQ(Find("cce_explore=\"\"; b=2"), "\"\"");
}

TEST(FindCookie, ValueMayContainEquals) {
  EXPECT_EQ(Find("cce_explore=a=b=="), "a=b==");
}

TEST(FindCookie, TheViewPointsIntoTheHeader) {
  const std::string header = "a=1; cce_explore=abc; b=2";
  auto v = FindCookie(header, kName);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->data(), header.data() + header.find("abc"));
  EXPECT_EQ(v->size(), 3u);
}

TEST(FindCookie, ANameThatIsNotATokenFindsNothing) {
  EXPECT_EQ(Find("=abc", ""), std::nullopt);
  EXPECT_EQ(Find(" a=1", " a"), std::nullopt);
  EXPECT_EQ(Find("a;b=1", "a;b"), std::nullopt);
  EXPECT_EQ(Find("a=b=1", "a=b"), std::nullopt);
  EXPECT_EQ(Find(std::string_view("a\0=1", 4), std::string_view("a\0", 2)), std::nullopt);
}

}  // namespace
}  // namespace cce::plane
