// The Reviews service called directly: roles, the findings and files a
// reviewer sees (the sealed bundle's tar walked a segment at a time), the
// approval policy (distinct reviewers, one reject rejects), decisions
// refused when they cannot be recorded with their audit record, what the
// consumer sees, and the release check of Jobs::DownloadOutput.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "plane/service_world.h"
#include "plane/services.h"
#include "store/store_testing.h"

namespace cce::plane {
namespace {

using store::JobState;
using store::Role;
using testing::Must;

// Forwards to the real store; a test can make review decisions fail as if
// their audit insert failed (inside the store's transaction, which then
// writes nothing: store_conformance_test shows that half), make every audit
// append fail, or make GetJob report a state the job is not in (to show the
// release check does not trust the state alone).
class ReviewTestStore final : public store::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_review_audit{false};
  std::atomic<bool> fail_audit{false};
  std::optional<JobState> fake_state;  // set before the calls that read it

  StatusOr<store::ReviewOutcome> RecordReview(const store::Review& review, int64_t required,
                                              std::string_view move_reason,
                                              const store::AuditRecord& audit,
                                              const store::AuditRecord& move_audit) override {
    if (fail_review_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::RecordReview(review, required, move_reason, audit, move_audit);
  }
  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::AppendAudit(r);
  }
  StatusOr<store::Job> GetJob(std::string_view id) override {
    auto j = ForwardingStore::GetJob(id);
    if (j.ok() && fake_state) j->state = *fake_state;
    return j;
  }
};

struct BundleFile {
  std::string path;
  std::string bytes;
};

// A pax tar of `files`, as the agent packs a bundle.
std::string MakeTar(const std::vector<BundleFile>& files) {
  std::string out(1 << 20, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const BundleFile& f : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, f.path.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(f.bytes.size()));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    EXPECT_EQ(archive_write_data(a, f.bytes.data(), f.bytes.size()),
              static_cast<la_ssize_t>(f.bytes.size()));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

constexpr char kFindings[] =
    R"([{"detector":"copy.row","file":"files/out.csv","location":"row 1, column 'name'",)"
    R"("score":0.9,"hard":true,"message":"a row of claims appears verbatim: alice,1984","row":1,)"
    R"("column":0},{"detector":"covert.png","file":"files/plot.png","location":"chunk tEXt",)"
    R"("score":0.4,"hard":false,"message":"text chunk","offset":33}])";

class ReviewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .wrap_store =
                          [this](store::Store& inner) {
                            auto s = std::make_unique<ReviewTestStore>(inner);
                            db_ = s.get();
                            return std::unique_ptr<store::Store>(std::move(s));
                          },
                      .adjust =
                          [this](ServiceDeps& d, const std::string&) {
                            d.review_required_approvals = required_approvals_;
                          },
                  }),
                  "world");
    s_ = &world_->services();
    carol_ = Must(world_->AddUser("carol", Role::kConsumer), "carol");
    dave_ = Must(world_->AddUser("dave", Role::kConsumer), "dave");
    rita_ = Must(world_->AddUser("rita", Role::kReviewer), "rita");
    rob_ = Must(world_->AddUser("rob", Role::kReviewer), "rob");
    olga_ = Must(world_->AddUser("olga", Role::kOperator), "olga");
  }

  // carol's job `id`, driven through the store to HELD with the bundle
  // sealed in the output store and the gate's hold verdict and findings.
  void HeldJob(const std::string& id) {
    const int64_t now = clock_.NowUnix();
    auto p =
        Must(world_->ProvisionJob(testing::SubmittedJob(id, carol_.user.id, now), carol_, 3600),
             "provision");
    store::Store& db = world_->db();
    const std::string object = "job:" + id;
    Must(db.AcceptAttestation(id, p.claims.credential_id, 0, now, "test",
                              world_->Rec("kbs.attest", object)),
         "attest");
    Must(db.TransitionJob(id, JobState::kAttested, JobState::kRunning, "run",
                          world_->Rec("job.run", object)),
         "run");
    Must(db.TransitionJob(id, JobState::kRunning, JobState::kOutputSubmitted, "output",
                          world_->Rec("job.output", object)),
         "output");
    const std::string ref = Must(world_->outputs().Put(id, crypto::AsBytes(bundle_)), "seal");
    store::Output o;
    o.job_id = id;
    o.blob_ref = ref;
    o.size = static_cast<int64_t>(bundle_.size());
    o.digest = "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes(bundle_)));
    o.created_at = now;
    if (!db.PutOutput(o, world_->Rec("output.submit", object)).ok()) std::abort();
    Must(db.SetGateVerdict(id, store::GateVerdict::kHold, 0.94, kFindings, now,
                           world_->Rec("gate.verdict", object)),
         "verdict");
    Must(db.TransitionJob(id, JobState::kOutputSubmitted, JobState::kHeld, "held by the gate",
                          world_->Rec("job.gate", object)),
         "hold");
  }

  api::ReviewDecisionRequest Reason(std::string text = "aggregates of 40+ people only") {
    return {std::move(text)};
  }
  JobState State(const std::string& id) { return Must(world_->db().GetJob(id), "job").state; }
  int64_t Allowed(const std::string& action) {
    store::AuditFilter f;
    f.limit = 10000;
    auto entries = Must(world_->db().ListAudit(f), "audit");
    int64_t n = 0;
    for (const auto& e : entries) {
      n += e.record.action == action && e.record.decision == store::AuditDecision::kAllow;
    }
    return n;
  }
  // The whole file or output as a string, read through its stream.
  static std::string Drain(Reviews::FileStream& s) {
    std::string out;
    std::array<uint8_t, 1000> buf{};
    for (;;) {
      auto n = s.Read(buf);
      EXPECT_TRUE(n.ok()) << n.status().message();
      if (!n.ok() || *n == 0) return out;
      out.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
  }
  StatusOr<std::string> Download(const Caller& who, const std::string& id) {
    ASSIGN_OR_RETURN(auto out, s_->jobs.DownloadOutput(who, id));
    std::string bytes;
    for (;;) {
      ASSIGN_OR_RETURN(crypto::ByteSpan seg, out.reader->Next());
      if (seg.empty()) return bytes;
      bytes.append(reinterpret_cast<const char*>(seg.data()), seg.size());
    }
  }

  const std::string csv_ = "name,year\nalice,1984\n" + std::string(20000, 'x') + "\n";
  const std::string png_ = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\0');
  const std::string bin_ = std::string("\x00\x01\x02\xff", 4) + "tail";
  const std::string bundle_ = MakeTar({{"files/out.csv", csv_},
                                       {"files/plot.png", png_},
                                       {"files/model.bin", bin_},
                                       {"stdout.txt", "done\n"}});
  int64_t required_approvals_ = 1;  // set before SetUp runs (in a derived fixture)
  SystemClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  ReviewTestStore* db_ = nullptr;  // owned by world_
  Services* s_ = nullptr;
  Caller carol_, dave_, rita_, rob_, olga_;
};

class TwoApproversTest : public ReviewsTest {
 protected:
  void SetUp() override {
    required_approvals_ = 2;
    ReviewsTest::SetUp();
  }
};

TEST_F(ReviewsTest, OnlyReviewersSeeFindingsAndFilesAndDecideOperatorsMayList) {
  HeldJob("job-00000000000000a1");
  const std::string id = "job-00000000000000a1";
  EXPECT_TRUE(s_->reviews.List(olga_, {}).ok());
  EXPECT_TRUE(s_->reviews.List(rita_, {}).ok());
  EXPECT_EQ(s_->reviews.List(carol_, {}).status().code(), StatusCode::kPermissionDenied);
  for (const Caller* c : {&olga_, &carol_}) {
    EXPECT_EQ(s_->reviews.Get(*c, id).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(s_->reviews.OpenFile(*c, id, "files/out.csv").status().code(),
              StatusCode::kPermissionDenied);
    EXPECT_EQ(s_->reviews.Approve(*c, id, Reason()).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(s_->reviews.Reject(*c, id, Reason()).status().code(), StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(State(id), JobState::kHeld);
  EXPECT_EQ(Must(world_->Denials("review.approve", "job:" + id), "denials"), 2);
  EXPECT_EQ(Must(world_->Denials("review.reject", "job:" + id), "denials"), 2);
  EXPECT_EQ(Must(world_->Denials("review.file", "job:" + id), "denials"), 2);
  EXPECT_EQ(Must(world_->Denials("review.list"), "denials"), 1);
}

TEST_F(ReviewsTest, AReviewerSeesTheVerdictFindingsFilesAndPolicy) {
  const std::string id = "job-00000000000000a2";
  HeldJob(id);
  api::ReviewDetail d = Must(s_->reviews.Get(rita_, id), "get");
  EXPECT_EQ(d.job, id);
  EXPECT_EQ(d.consumer, "carol");
  EXPECT_EQ(d.state, "HELD");
  EXPECT_EQ(d.verdict, "hold");
  EXPECT_DOUBLE_EQ(d.score, 0.94);
  ASSERT_EQ(d.findings.size(), 2u);
  EXPECT_EQ(d.findings[0].detector, "copy.row");
  EXPECT_EQ(d.findings[0].row, 1);
  EXPECT_EQ(d.findings[0].column, 0);
  EXPECT_TRUE(d.findings[0].hard);
  EXPECT_EQ(d.findings[1].offset, 33);
  EXPECT_FALSE(d.findings[1].row.has_value());
  ASSERT_EQ(d.files.size(), 4u);
  EXPECT_EQ(d.files[0].path, "files/out.csv");
  EXPECT_EQ(d.files[0].size, static_cast<int64_t>(csv_.size()));
  EXPECT_EQ(d.files[3].path, "stdout.txt");
  EXPECT_TRUE(d.decisions.empty());
  EXPECT_EQ(d.required_approvals, 1);
  EXPECT_EQ(Allowed("review.show"), 1);
  // A job the gate did not hold is not a review subject.
  EXPECT_EQ(s_->reviews.Get(rita_, "job-00000000000000ff").status().code(), StatusCode::kNotFound);
  // The queue: held jobs, oldest first, with score and finding count.
  HeldJob("job-00000000000000a3");
  api::ReviewList q = Must(s_->reviews.List(olga_, {}), "list");
  ASSERT_EQ(q.reviews.size(), 2u);
  EXPECT_EQ(q.reviews[0].job, id);
  EXPECT_EQ(q.reviews[0].findings, 2);
  EXPECT_DOUBLE_EQ(q.reviews[0].score, 0.94);
  EXPECT_EQ(q.reviews[1].job, "job-00000000000000a3");
}

TEST_F(ReviewsTest, AFileStreamsWithATypeFromItsContentAndIsAudited) {
  const std::string id = "job-00000000000000a4";
  HeldJob(id);
  Reviews::File csv = Must(s_->reviews.OpenFile(rita_, id, "files/out.csv"), "csv");
  EXPECT_EQ(csv.content_type, "text/plain; charset=utf-8");
  EXPECT_FALSE(csv.attachment);
  EXPECT_EQ(csv.size, csv_.size());
  EXPECT_EQ(Drain(*csv.stream), csv_);  // longer than the sniffed prefix
  Reviews::File png = Must(s_->reviews.OpenFile(rita_, id, "files/plot.png"), "png");
  EXPECT_EQ(png.content_type, "image/png");
  EXPECT_EQ(Drain(*png.stream), png_);
  Reviews::File bin = Must(s_->reviews.OpenFile(rita_, id, "files/model.bin"), "bin");
  EXPECT_EQ(bin.content_type, "application/octet-stream");
  EXPECT_TRUE(bin.attachment);
  EXPECT_EQ(Drain(*bin.stream), bin_);
  EXPECT_EQ(Allowed("review.file"), 3);
  // Only exact bundle paths; nothing outside the bundle is reachable.
  for (const char* p : {"files/", "out.csv", "../plane.db", "/etc/passwd", ""}) {
    EXPECT_FALSE(s_->reviews.OpenFile(rita_, id, p).ok()) << p;
  }
  // Seeing data is a decision: refused when it cannot be recorded.
  db_->fail_audit = true;
  auto refused = s_->reviews.OpenFile(rita_, id, "files/out.csv");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(s_->reviews.Get(rita_, id).status().code(), StatusCode::kUnavailable);
}

TEST_F(TwoApproversTest, TwoDistinctReviewersReleaseAndTheConsumerThenDownloads) {
  const std::string id = "job-00000000000000b1";
  HeldJob(id);
  api::ReviewDetail first = Must(s_->reviews.Approve(rita_, id, Reason()), "rita approves");
  EXPECT_EQ(first.state, "HELD");
  EXPECT_EQ(first.required_approvals, 2);
  ASSERT_EQ(first.decisions.size(), 1u);
  EXPECT_EQ(first.decisions[0].reviewer, "rita");
  EXPECT_EQ(first.decisions[0].decision, "approve");
  // The same reviewer twice counts once.
  auto again = s_->reviews.Approve(rita_, id, Reason("still fine"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(State(id), JobState::kHeld);
  // Not yet released: nothing leaves.
  EXPECT_EQ(Download(carol_, id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Must(s_->reviews.List(rita_, {}), "queue").reviews.at(0).approvals,
            std::vector<std::string>{"rita"});
  api::ReviewDetail second = Must(s_->reviews.Approve(rob_, id, Reason("ok by me")), "rob");
  EXPECT_EQ(second.state, "RELEASED");
  EXPECT_EQ(second.decisions.size(), 2u);
  EXPECT_EQ(Allowed("review.approve"), 2);
  EXPECT_EQ(Allowed("job.review"), 1);
  // The consumer downloads the approved output, whole.
  EXPECT_EQ(Must(Download(carol_, id), "download"), bundle_);
  // ... and no one else does.
  EXPECT_EQ(Download(dave_, id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Download(rita_, id).status().code(), StatusCode::kPermissionDenied);
  // Settled jobs leave the queue and show under "decided".
  EXPECT_TRUE(Must(s_->reviews.List(rita_, {}), "queue").reviews.empty());
  api::ReviewList decided = Must(s_->reviews.List(rita_, {.decided = true, .limit = 10}), "done");
  ASSERT_EQ(decided.reviews.size(), 1u);
  EXPECT_EQ(decided.reviews[0].state, "RELEASED");
}

TEST_F(TwoApproversTest, OneRejectRejectsAndNothingIsDownloaded) {
  const std::string id = "job-00000000000000b2";
  HeldJob(id);
  Must(s_->reviews.Approve(rita_, id, Reason()), "rita approves");
  api::ReviewDetail d =
      Must(s_->reviews.Reject(rob_, id, Reason("names appear in out.csv")), "rob");
  EXPECT_EQ(d.state, "REJECTED");
  EXPECT_EQ(State(id), JobState::kRejected);
  EXPECT_EQ(Download(carol_, id).status().code(), StatusCode::kFailedPrecondition);
  // Settled: no further decision.
  Caller ruth = Must(world_->AddUser("ruth", Role::kReviewer), "ruth");
  EXPECT_EQ(s_->reviews.Approve(ruth, id, Reason()).status().code(),
            StatusCode::kFailedPrecondition);
  // The consumer sees the decision and reason, never the findings.
  api::JobDetail seen = Must(s_->jobs.Get(carol_, id), "job");
  ASSERT_TRUE(seen.review.has_value());
  EXPECT_EQ(seen.review->decision, "rejected");
  EXPECT_EQ(seen.review->reason, "names appear in out.csv");
  EXPECT_EQ(seen.review->reviewers, std::vector<std::string>{"rob"});
  EXPECT_EQ(seen.job.reason, "rejected on review: names appear in out.csv");
  ASSERT_TRUE(seen.output.has_value());
  EXPECT_EQ(seen.output->findings, 2);
  EXPECT_DOUBLE_EQ(seen.output->score.value_or(0), 0.94);
  const std::string text = api::Dump(seen);
  for (const char* secret : {"copy.row", "alice", "covert.png", "row 1", "files/out.csv"}) {
    EXPECT_EQ(text.find(secret), std::string::npos)
        << secret << " leaked to the consumer: " << text;
  }
}

TEST_F(ReviewsTest, TheConsumerSeesAnApprovalWithItsReasonAndReviewer) {
  const std::string id = "job-00000000000000b3";
  HeldJob(id);
  api::JobDetail before = Must(s_->jobs.Get(carol_, id), "held");
  EXPECT_FALSE(before.review.has_value());
  Must(s_->reviews.Approve(rita_, id, Reason()), "approve");
  api::JobDetail after = Must(s_->jobs.Get(carol_, id), "released");
  EXPECT_EQ(after.job.state, "RELEASED");
  ASSERT_TRUE(after.review.has_value());
  EXPECT_EQ(after.review->decision, "approved");
  EXPECT_EQ(after.review->reason, "aggregates of 40+ people only");
  EXPECT_EQ(after.review->reviewers, std::vector<std::string>{"rita"});
  EXPECT_GT(after.review->decided_at, 0);
  EXPECT_TRUE(after.output->downloadable);
  EXPECT_EQ(api::Dump(after).find("copy.row"), std::string::npos);
}

TEST_F(ReviewsTest, AReasonIsRequiredShortAndPrintable) {
  const std::string id = "job-00000000000000c1";
  HeldJob(id);
  for (const std::string& bad : {std::string(), std::string(2001, 'a'), std::string("two\nlines"),
                                 std::string("bell\x07"), std::string("bad \xff utf-8")}) {
    auto r = s_->reviews.Approve(rita_, id, Reason(bad));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad.substr(0, 20);
    EXPECT_NE(r.status().message().find("body.reason"), std::string::npos);
  }
  EXPECT_TRUE(Must(world_->db().ListReviews(id), "reviews").empty());
  EXPECT_TRUE(s_->reviews.Approve(rita_, id, Reason(std::string(2000, 'a'))).ok());
}

TEST_F(ReviewsTest, ADecisionWhoseAuditRecordCannotBeWrittenIsRefused) {
  const std::string id = "job-00000000000000c2";
  HeldJob(id);
  db_->fail_review_audit = true;
  for (bool approve : {true, false}) {
    auto r = approve ? s_->reviews.Approve(rita_, id, Reason())
                     : s_->reviews.Reject(rita_, id, Reason());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().message();
  }
  EXPECT_EQ(State(id), JobState::kHeld);
  EXPECT_TRUE(Must(world_->db().ListReviews(id), "reviews").empty());
  EXPECT_EQ(Download(carol_, id).status().code(), StatusCode::kFailedPrecondition);
  db_->fail_review_audit = false;
  EXPECT_EQ(Must(s_->reviews.Approve(rita_, id, Reason()), "approve").state, "RELEASED");
}

// THE release check: RELEASED alone is not enough; nothing but the gate's
// release verdict or recorded approvals lets the output out.
TEST_F(ReviewsTest, DownloadNeedsAReleaseByTheGateOrByApprovals) {
  const std::string id = "job-00000000000000d1";
  HeldJob(id);
  EXPECT_EQ(Download(carol_, id).status().code(), StatusCode::kFailedPrecondition);  // HELD
  // A job that claims to be APPROVED (never stored as such: RecordReview
  // moves on to RELEASED in the same transaction) is not downloadable.
  db_->fake_state = JobState::kApproved;
  EXPECT_EQ(Download(carol_, id).status().code(), StatusCode::kFailedPrecondition);
  // Nor one that claims RELEASED while its output was held and no reviewer
  // approved it.
  db_->fake_state = JobState::kReleased;
  auto forged = Download(carol_, id);
  EXPECT_EQ(forged.status().code(), StatusCode::kFailedPrecondition)
      << "a held output left without approval";
  EXPECT_NE(forged.status().message().find("review approval"), std::string::npos)
      << forged.status().message();
  db_->fake_state.reset();
  EXPECT_GE(Must(world_->Denials("output.download", "job:" + id), "denials"), 3);
  // Rejected: never.
  const std::string rejected = "job-00000000000000d2";
  HeldJob(rejected);
  Must(s_->reviews.Reject(rita_, rejected, Reason("no")), "reject");
  EXPECT_EQ(Download(carol_, rejected).status().code(), StatusCode::kFailedPrecondition);
  // Approved: the consumer, only.
  Must(s_->reviews.Approve(rita_, id, Reason()), "approve");
  EXPECT_EQ(Must(Download(carol_, id), "download"), bundle_);
  EXPECT_EQ(Download(dave_, id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Download(olga_, id).status().code(), StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace cce::plane
