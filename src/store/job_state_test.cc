#include "store/job_state.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <utility>

namespace cce::store {
namespace {

using S = JobState;

TEST(JobState, NamesRoundTrip) {
  for (JobState s : kAllJobStates) {
    auto parsed = ParseJobState(JobStateName(s));
    ASSERT_TRUE(parsed.ok()) << JobStateName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(JobStateName(S::kOutputSubmitted), "OUTPUT_SUBMITTED");
}

TEST(JobState, RejectsUnknownAndWrongCaseNames) {
  EXPECT_EQ(ParseJobState("submitted").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobState("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobState("DONE").status().code(), StatusCode::kInvalidArgument);
}

TEST(JobState, FinalStatesAreExactlyReleasedRejectedFailedCancelled) {
  std::set<JobState> final_states;
  for (JobState s : kAllJobStates) {
    if (IsFinalState(s)) final_states.insert(s);
  }
  EXPECT_EQ(final_states,
            (std::set<JobState>{S::kReleased, S::kRejected, S::kFailed, S::kCancelled}));
}

// The whole table, spelled out: every pair not listed is refused.
TEST(JobState, AllowsExactlyTheDesignTransitions) {
  std::set<std::pair<JobState, JobState>> allowed = {
      {S::kSubmitted, S::kAuthorized},    {S::kAuthorized, S::kProvisioning},
      {S::kProvisioning, S::kAttested},   {S::kAttested, S::kRunning},
      {S::kRunning, S::kOutputSubmitted}, {S::kOutputSubmitted, S::kReleased},
      {S::kOutputSubmitted, S::kHeld},    {S::kHeld, S::kApproved},
      {S::kHeld, S::kRejected},           {S::kApproved, S::kReleased},
  };
  for (JobState s : kAllJobStates) {
    if (IsFinalState(s)) continue;
    allowed.insert({s, S::kFailed});
    allowed.insert({s, S::kCancelled});
  }
  for (JobState from : kAllJobStates) {
    for (JobState to : kAllJobStates) {
      EXPECT_EQ(IsAllowedTransition(from, to), allowed.count({from, to}) == 1)
          << JobStateName(from) << " -> " << JobStateName(to);
    }
  }
}

TEST(JobState, NothingLeavesAFinalState) {
  for (JobState from : kAllJobStates) {
    if (!IsFinalState(from)) continue;
    for (JobState to : kAllJobStates) EXPECT_FALSE(IsAllowedTransition(from, to));
  }
}

TEST(JobState, HeldOutputIsNeverReleasedWithoutApproval) {
  EXPECT_FALSE(IsAllowedTransition(S::kHeld, S::kReleased));
  EXPECT_FALSE(IsAllowedTransition(S::kRunning, S::kReleased));
  EXPECT_FALSE(IsAllowedTransition(S::kSubmitted, S::kRunning));
}

// docs/img/job-states.dot is the picture of this table (docs/plane.md): each
// edge between two states must be allowed, each allowed move drawn, the moves
// to FAILED and CANCELLED drawn once from the cluster of the non-final
// states, and the final states drawn with a double border (peripheries=2).
TEST(JobState, TheDiagramDrawsExactlyTheseTransitions) {
  const std::string file = "docs/img/job-states.dot";
  std::ifstream in(std::string(CCE_SOURCE_DIR) + "/" + file);
  ASSERT_TRUE(in.good()) << file << ": cannot be read";
  struct Drawn {
    bool in_cluster = false;
    bool double_border = false;
  };
  std::map<JobState, Drawn> nodes;
  std::set<std::pair<JobState, JobState>> edges;
  std::set<JobState> from_cluster;  // targets of the ltail=cluster_nonfinal edges
  const std::regex node_re(R"(^\s*([A-Z_]+)\s*\[(.*)$)");
  const std::regex edge_re(R"(^\s*([A-Za-z_]+)\s*->\s*([A-Z_]+)\b(.*)$)");
  int depth = 0;
  int cluster_depth = -1;  // the brace depth inside cluster_nonfinal, while in it
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string where = file + ":" + std::to_string(n) + ": ";
    if (line.find_first_not_of(" ") != std::string::npos &&
        line.compare(line.find_first_not_of(" "), 2, "//") == 0) {
      continue;
    }
    std::smatch m;
    if (std::regex_search(line, m, edge_re)) {
      auto from = ParseJobState(m[1].str());
      auto to = ParseJobState(m[2].str());
      ASSERT_TRUE(to.ok()) << where << "an edge to " << m[2] << ", which is not a job state";
      if (!from.ok()) {
        EXPECT_EQ(m[1].str() + " -> " + m[2].str(), "start -> SUBMITTED") << where;
      } else if (m[3].str().find("ltail=cluster_nonfinal") != std::string::npos) {
        from_cluster.insert(*to);
      } else {
        edges.insert({*from, *to});
      }
    } else if (std::regex_search(line, m, node_re)) {
      auto state = ParseJobState(m[1].str());
      ASSERT_TRUE(state.ok()) << where << m[1] << " is not a job state";
      nodes[*state] = {cluster_depth >= 0 && depth == cluster_depth,
                       m[2].str().find("peripheries=2") != std::string::npos};
    }
    if (line.find("subgraph cluster_nonfinal") != std::string::npos) cluster_depth = depth + 1;
    for (char c : line) {
      if (c == '{') ++depth;
      if (c == '}' && --depth < cluster_depth) cluster_depth = -1;
    }
  }
  const std::string fix = " (fix " + file + " from src/store/job_state.cc, then make diagrams)";
  for (JobState s : kAllJobStates) {
    ASSERT_EQ(nodes.count(s), 1u) << file << " does not draw " << JobStateName(s) << fix;
    EXPECT_EQ(nodes[s].in_cluster, !IsFinalState(s))
        << file << ": " << JobStateName(s) << " is " << (IsFinalState(s) ? "" : "not ")
        << "final, so it must " << (IsFinalState(s) ? "not " : "") << "be in cluster_nonfinal"
        << fix;
    EXPECT_EQ(nodes[s].double_border, IsFinalState(s))
        << file << ": only final states have peripheries=2: " << JobStateName(s) << fix;
  }
  for (const auto& [from, to] : edges) {
    EXPECT_TRUE(IsAllowedTransition(from, to) && to != S::kFailed && to != S::kCancelled)
        << file << " draws " << JobStateName(from) << " -> " << JobStateName(to)
        << ", which IsAllowedTransition refuses or which belongs to the cluster edges" << fix;
  }
  for (JobState from : kAllJobStates) {
    for (JobState to : kAllJobStates) {
      if (!IsAllowedTransition(from, to) || to == S::kFailed || to == S::kCancelled) continue;
      EXPECT_EQ(edges.count({from, to}), 1u)
          << file << " does not draw " << JobStateName(from) << " -> " << JobStateName(to) << fix;
    }
  }
  // The cluster edges stand for "from every non-final state".
  EXPECT_EQ(from_cluster, (std::set<JobState>{S::kFailed, S::kCancelled})) << file << fix;
  for (JobState from : kAllJobStates) {
    if (IsFinalState(from)) continue;
    for (JobState to : from_cluster) {
      EXPECT_TRUE(IsAllowedTransition(from, to))
          << file << ": the cluster edge to " << JobStateName(to) << " claims "
          << JobStateName(from) << " -> " << JobStateName(to) << fix;
    }
  }
}

}  // namespace
}  // namespace cce::store
