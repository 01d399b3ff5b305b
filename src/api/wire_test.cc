#include "api/wire.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>

namespace cce::api {
namespace {

// ---- Samples: every field set to a value other than its default, so a round
// trip that drops a field shows. Enumerated strings are ones docs/api.yaml allows.

User SampleUser() {
  return {.id = 3, .name = "carol", .role = "consumer", .created_at = 1795657602, .disabled = true};
}
Dataset SampleDataset() {
  return {.name = "claims",
          .owner = "pat",
          .location = "file:///srv/datasets/claims.enc",
          .description = "synthetic claims",
          .price = "2.5",
          .max_days = 14,
          .key_id = "e3624072f8df3408f934d019919d4692",
          .dataset_id = "3c495a5bf949f6e130c15e52326cbd08",
          .dataset_version = 2,
          .created_at = 1795657605};
}
Rental SampleRental() {
  return {.seq = 1,
          .dataset = "claims",
          .consumer = "carol",
          .start = 1795657606,
          .end = 1796262406,
          .created_at = 1795657607,
          .hash = "5fab70ab",
          .signature = "9c1d",
          .tx_hash = "0x" + std::string(64, 'e'),
          .block = 42,
          .payer = "0x" + std::string(40, 'a'),
          .amount_wei = "20000000000000000"};
}
Image SampleImage() {
  return {.name = "team/stats",
          .tag = "1.0",
          .digest = "sha256:4a1af577",
          .owner = "carol",
          .created_at = 1795657608};
}
Job SampleJob() {
  return {.id = "job-90fbd0285e3cbbb4",
          .name = "cohort-stats",
          .consumer = "carol",
          .state = "HELD",
          .reason = "held for review by the output gate",
          .image = "sha256:4a1af577",
          .created_at = 1795657611,
          .updated_at = 1795657612,
          .deadline = 1795658211,
          .simulated_tee = true};
}
JobEvent SampleEvent(int64_t seq, std::string from, std::string to) {
  return {
      .seq = seq, .from = std::move(from), .to = std::move(to), .reason = "why", .at = 17 + seq};
}
OutputSummary SampleOutput() {
  return {.size = 90,
          .digest = "sha256:324caa8a",
          .verdict = "hold",
          .downloadable = true,
          .score = 0.75,
          .findings = 3};
}
JobReview SampleJobReview() {
  return {.decision = "approved",
          .reason = "aggregates of 40+ people only",
          .decided_at = 1795657700,
          .reviewers = {"rita", "rob"}};
}
JobDetail SampleJobDetail() {
  return {.job = SampleJob(),
          .history = {SampleEvent(1, "", "SUBMITTED"), SampleEvent(2, "SUBMITTED", "AUTHORIZED")},
          .output = SampleOutput(),
          .review = SampleJobReview()};
}
ReviewSummary SampleReviewSummary() {
  return {.job = "job-90fbd0285e3cbbb4",
          .consumer = "carol",
          .state = "HELD",
          .score = 0.875,
          .findings = 2,
          .submitted_at = 1795657650,
          .approvals = {"rita"}};
}
ReviewList SampleReviewList() {
  return {.reviews = {SampleReviewSummary()}};
}
ReviewFinding SampleFinding() {
  return {.detector = "copy.row",
          .file = "files/out.csv",
          .location = "row 3, column 'age'",
          .score = 0.5,
          .hard = true,
          .message = "a row of claims appears verbatim",
          .row = 3,
          .column = 1,
          .line = 5,
          .offset = 120};
}
ReviewDetail SampleReviewDetail() {
  return {.job = "job-90fbd0285e3cbbb4",
          .consumer = "carol",
          .state = "HELD",
          .verdict = "hold",
          .score = 0.875,
          .findings = {SampleFinding()},
          .files = {{.path = "files/out.csv", .size = 2048}},
          .decisions = {{.reviewer = "rita",
                         .decision = "approve",
                         .reason = "aggregates only",
                         .at = 1795657690}},
          .required_approvals = 2};
}
ReviewDecisionRequest SampleDecision() {
  return {.reason = "aggregates of 40+ people only"};
}
AuditEntry SampleEntry() {
  return {.seq = 17,
          .at = 1795657611,
          .actor = "plane",
          .action = "gate.verdict",
          .object = "job:job-90fbd0285e3cbbb4",
          .decision = "deny",
          .details = {{"score", 1.0}, {"verdict", "hold"}},
          .details_text = R"({"score":1.0,"verdict":"hold"})",
          .hash = "9f0c"};
}
ChainReport SampleReport(bool ok) {
  return {.ok = ok,
          .failure = ok ? "ok" : "edited",
          .first_bad_seq = ok ? 0 : 19,
          .reason = ok ? "" : "audit entry 19: content does not match its stored hash",
          .entries_checked = 18,
          .checkpoints_checked = 2,
          .head_seq = 18,
          .head_hash = "2c309339"};
}

Error SampleError() {
  return {.code = "invalid_argument", .message = "body.admin: unknown field"};
}
UserList SampleUserList() {
  User op = SampleUser();
  op.id = 1;
  op.name = "operator";
  op.role = "operator";
  return {.users = {op, SampleUser()}};
}
CreateUserRequest SampleCreateUser() {
  return {.name = "carol", .role = "consumer"};
}
CreatedUser SampleCreatedUser() {
  return {.user = SampleUser(), .token = "cce_3f9a"};
}
DatasetList SampleDatasetList() {
  return {.datasets = {SampleDataset()}};
}
RegisterDatasetRequest SampleRegister() {
  return {.name = "hospital-claims",
          .location = "file:///srv/datasets/hospital-claims",
          .key = "cce4long-dataset-key-v1 0011",
          .description = "claims 2020-2024",
          .price = "2.50",
          .max_days = 14,
          .dataset_id = "3c495a5bf949f6e130c15e52326cbd08",
          .dataset_version = 3};
}
RentalList SampleRentalList() {
  return {.rentals = {SampleRental()}};
}
RentRequest SampleRent() {
  return {.dataset = "claims", .days = 7};
}
ImageList SampleImageList() {
  return {.images = {SampleImage()}};
}
BlobStatus SampleBlobStatus() {
  return {.digest = "sha256:6f97f83d", .present = true, .size = 3145728};
}
StoredBlob SampleStoredBlob() {
  return {.digest = "sha256:6f97f83d", .size = 3145728};
}
TaggedImage SampleTagged() {
  return {.name = "team/tool", .tag = "1.0", .digest = "sha256:d6da370a"};
}
JobList SampleJobList() {
  return {.jobs = {SampleJob(), SampleJob()}, .next_offset = 2};
}
AuditList SampleAuditList() {
  AuditEntry text = SampleEntry();
  text.seq = 18;
  text.details = "not json";  // a stored text that is not JSON is shown as it is
  return {.entries = {SampleEntry(), text}, .next_after = 18};
}
AuditVerifyReport SampleVerify() {
  return {.ok = false, .audit = SampleReport(false), .rentals = SampleReport(true)};
}
SignedCheckpoint SampleCheckpoint() {
  return {.seq = 18, .hash = "2c309339", .at = 1795657612, .signature = "062b5736"};
}
AuditCheckpoints SampleCheckpoints() {
  return {.public_key = "d75a9801",
          .audit = {SampleCheckpoint(), SampleCheckpoint()},
          .rentals = {SampleCheckpoint()}};
}
ChainRentalList SampleChainRentals() {
  return {.rentals = {{.seq = 1,
                       .dataset_id = 3,
                       .consumer_id = 7,
                       .start = 1700000000,
                       .end = 1700086400,
                       .created_at = 1699999999,
                       .prev_hash = "0000",
                       .hash = "cf1bc425",
                       .signature = "8cb839a3"}},
          .next_after = 1};
}
KbsAuthRequest SampleKbsAuth() {
  return {.credential = "cce-cred-v1.eyJj.Qk9v"};
}
KbsAuthResponse SampleKbsAuthResponse() {
  return {.nonce = "3q2-7wAAAAC8k0xQ", .expires_at = 1795657532, .job = "job-79c4d2e408ce4a76"};
}
KbsAttestRequest SampleKbsAttest() {
  return {.credential = "cce-cred-v1.eyJj.Qk9v",
          .nonce = "3q2-7wAAAAC8k0xQ",
          .quote = "BAACAIEAAAAA",
          .tee_pubkey = R"({"crv":"P-256","kty":"EC","x":"f83O","y":"x_FE"})"};
}
AgentJob SampleAgentJob() {
  return {.job_id = "job-79c4d2e408ce4a76",
          .spec = R"({"apiVersion":"cce4long/v1"})",
          .image_digest = "sha256:" + std::string(64, 'a'),
          .deadline = 1767000000,
          .datasets = {{.name = "claims",
                        .mount_path = "/data/claims",
                        .location = "file:///srv/cce/datasets/claims",
                        .key_id = "21128f29ed7e6564e331e48e594ee995"}}};
}

AgentReportRequest SampleAgentReport() {
  return {.state = "FAILED", .reason = "image layer failed to unpack"};
}
AgentOutputReceipt SampleAgentReceipt() {
  return {.job = "job-79c4d2e408ce4a76",
          .state = "OUTPUT_SUBMITTED",
          .size = 52428800,
          .digest = "sha256:0b6c"};
}
KbsAttestResponse SampleKbsAttestResponse() {
  return {.session = "cce-kbs-v2.eyJq.hR3",
          .expires_at = 1795657772,
          .simulated_tee = true,
          .tcb_status = "UpToDate"};
}

// Encodes v, decodes it in `mode`, and expects the same JSON back, both from
// the JSON value and from its text.
template <typename T>
void ExpectRoundTrip(const T& v) {
  SCOPED_TRACE(Dump(v));
  const json j = ToJson(v);
  for (Decode mode : {Decode::kStrict, Decode::kLenient}) {
    T back;
    Status s = FromJson(j, &back, mode, "body");
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(ToJson(back), j);
    StatusOr<T> parsed = Parse<T>(Dump(v), mode, "body");
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(ToJson(*parsed), j);
  }
}

template <typename T>
std::string DecodeError(const json& j, Decode mode, std::string_view where = "response") {
  T out;
  Status s = FromJson(j, &out, mode, where);
  EXPECT_FALSE(s.ok()) << j.dump();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  return s.message();
}

TEST(Wire, EveryTypeRoundTrips) {
  ExpectRoundTrip(SampleError());
  ExpectRoundTrip(SampleUser());
  ExpectRoundTrip(SampleUserList());
  ExpectRoundTrip(SampleCreateUser());
  ExpectRoundTrip(SampleCreatedUser());
  ExpectRoundTrip(SampleDataset());
  ExpectRoundTrip(SampleDatasetList());
  ExpectRoundTrip(SampleRegister());
  ExpectRoundTrip(SampleRental());
  ExpectRoundTrip(SampleRentalList());
  ExpectRoundTrip(SampleRent());
  ExpectRoundTrip(SampleImage());
  ExpectRoundTrip(SampleImageList());
  ExpectRoundTrip(SampleBlobStatus());
  ExpectRoundTrip(SampleStoredBlob());
  ExpectRoundTrip(SampleTagged());
  ExpectRoundTrip(SampleJob());
  ExpectRoundTrip(SampleEvent(1, "", "SUBMITTED"));
  ExpectRoundTrip(SampleOutput());
  ExpectRoundTrip(SampleJobDetail());
  ExpectRoundTrip(SampleJobList());
  ExpectRoundTrip(SampleEntry());
  ExpectRoundTrip(SampleAuditList());
  ExpectRoundTrip(SampleReport(true));
  ExpectRoundTrip(SampleVerify());
  ExpectRoundTrip(SampleCheckpoints());
  ExpectRoundTrip(SampleChainRentals());
  ExpectRoundTrip(SampleKbsAuth());
  ExpectRoundTrip(SampleKbsAuthResponse());
  ExpectRoundTrip(SampleKbsAttest());
  ExpectRoundTrip(SampleKbsAttestResponse());
  ExpectRoundTrip(SampleAgentReport());
  ExpectRoundTrip(SampleAgentJob());
  ExpectRoundTrip(AgentReportRequest{.state = "RUNNING", .reason = ""});
  ExpectRoundTrip(SampleAgentReceipt());
  ExpectRoundTrip(SampleJobReview());
  ExpectRoundTrip(SampleReviewSummary());
  ExpectRoundTrip(SampleReviewList());
  ExpectRoundTrip(SampleFinding());
  ExpectRoundTrip(SampleReviewDetail());
  ExpectRoundTrip(SampleDecision());
}

TEST(Wire, ReviewFieldsAreTypedAndOptionalOnesMayBeAbsent) {
  ReviewFinding bare = SampleFinding();
  bare.row = bare.column = bare.line = bare.offset = std::nullopt;
  EXPECT_FALSE(ToJson(bare).contains("row"));
  ExpectRoundTrip(bare);
  OutputSummary pending = SampleOutput();
  pending.score.reset();
  pending.findings.reset();
  EXPECT_FALSE(ToJson(pending).contains("score"));
  ExpectRoundTrip(pending);
  json f = ToJson(SampleFinding());
  f["score"] = "high";
  EXPECT_EQ(DecodeError<ReviewFinding>(f, Decode::kLenient), "response.score: expected a number");
  json l = ToJson(SampleReviewSummary());
  l["approvals"] = json::array({"rita", 7});
  EXPECT_EQ(DecodeError<ReviewSummary>(l, Decode::kLenient),
            "response.approvals[1]: expected a string");
  EXPECT_EQ(DecodeError<ReviewDecisionRequest>(json{{"reason", "x"}, {"approve", true}},
                                               Decode::kStrict, "body"),
            "body.approve: unknown field (allowed: reason)");
}

TEST(Wire, OutputSigningInputIsDomainSeparated) {
  EXPECT_EQ(OutputSigningInput("job-1", "sha256:ab"), "cce-output-bundle-v1\njob-1\nsha256:ab");
}

TEST(Wire, OptionalFieldsRoundTripWhenAbsent) {
  BlobStatus absent{.digest = "sha256:6f97f83d", .present = false, .size = std::nullopt};
  EXPECT_FALSE(ToJson(absent).contains("size"));
  ExpectRoundTrip(absent);

  JobList last_page{.jobs = {SampleJob()}, .next_offset = std::nullopt};
  EXPECT_FALSE(ToJson(last_page).contains("next_offset"));
  ExpectRoundTrip(last_page);

  AuditList last{.entries = {}, .next_after = std::nullopt};
  EXPECT_EQ(ToJson(last), json::parse(R"({"entries": []})"));
  ExpectRoundTrip(last);

  JobDetail no_output = SampleJobDetail();
  no_output.output.reset();
  EXPECT_FALSE(ToJson(no_output).contains("output"));
  ExpectRoundTrip(no_output);

  KbsAttestResponse unknown_tcb = SampleKbsAttestResponse();
  unknown_tcb.tcb_status.clear();
  EXPECT_FALSE(ToJson(unknown_tcb).contains("tcb_status"));
  ExpectRoundTrip(unknown_tcb);
}

TEST(Wire, FlattenedTypesCarryTheirBaseFieldsAtTopLevel) {
  json user = ToJson(SampleCreatedUser());
  EXPECT_EQ(user["name"], "carol");
  EXPECT_EQ(user["token"], "cce_3f9a");
  EXPECT_FALSE(user.contains("user"));
  json job = ToJson(SampleJobDetail());
  EXPECT_EQ(job["id"], "job-90fbd0285e3cbbb4");
  EXPECT_EQ(job["history"].size(), 2u);
  EXPECT_EQ(job["output"]["verdict"], "hold");
  EXPECT_FALSE(job.contains("job"));
  EXPECT_EQ(ToJson(SampleError()), json::parse(R"({"error": {"code": "invalid_argument",
                                      "message": "body.admin: unknown field"}})"));
}

// What the plane sends today (docs/api.yaml's examples, src/plane/api_*.cc)
// decodes strictly: every field name is known on both sides.
TEST(Wire, DecodesThePlanesResponsesStrictly) {
  auto detail = Parse<JobDetail>(R"({
      "id": "job-90fbd0285e3cbbb4", "name": "cohort-stats", "consumer": "carol",
      "state": "HELD", "reason": "held for review by the output gate",
      "image": "sha256:4a1a", "created_at": 1795657611, "updated_at": 1795657611,
      "deadline": 1795658211, "simulated_tee": false,
      "history": [{"seq": 1, "from": "", "to": "SUBMITTED", "reason": "submitted",
                   "at": 1795657611}],
      "output": {"size": 90, "digest": "sha256:324c", "verdict": "hold",
                 "downloadable": false}})",
                                 Decode::kStrict, "response");
  ASSERT_TRUE(detail.ok()) << detail.status().ToString();
  EXPECT_EQ(detail->job.state, "HELD");
  EXPECT_EQ(detail->history.at(0).from, "");
  EXPECT_EQ(detail->history.at(0).to, "SUBMITTED");
  ASSERT_TRUE(detail->output.has_value());
  EXPECT_EQ(detail->output->size, 90);

  auto verify = Parse<AuditVerifyReport>(R"({"ok": false,
      "audit": {"ok": false, "failure": "edited", "first_bad_seq": 19, "reason": "r",
                "entries_checked": 18, "checkpoints_checked": 0, "head_seq": 18,
                "head_hash": "ab"},
      "rentals": {"ok": true, "failure": "ok", "first_bad_seq": 0, "reason": "",
                  "entries_checked": 1, "checkpoints_checked": 0, "head_seq": 1,
                  "head_hash": "cd"}})",
                                         Decode::kStrict, "response");
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_EQ(verify->audit.first_bad_seq, 19);
  EXPECT_EQ(verify->rentals.head_hash, "cd");

  auto blob = Parse<BlobStatus>(R"({"digest": "sha256:6f97", "present": false})", Decode::kStrict,
                                "response");
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_FALSE(blob->size.has_value());

  // The key broker has sent null for an unknown TCB status: the same as absent.
  auto attest = Parse<KbsAttestResponse>(
      R"({"session": "s", "expires_at": 5, "simulated_tee": true, "tcb_status": null})",
      Decode::kStrict, "response");
  ASSERT_TRUE(attest.ok()) << attest.status().ToString();
  EXPECT_EQ(attest->tcb_status, "");
}

TEST(Wire, RequestDefaultsApplyWhenOptionalFieldsAreAbsent) {
  auto req = Parse<RegisterDatasetRequest>(
      R"({"name": "claims", "location": "s3://b/claims", "key": "k"})", Decode::kStrict, "body");
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->description, "");
  EXPECT_EQ(req->price, "0");
  EXPECT_FALSE(req->max_days.has_value());
  // Encoding sends the defaults that equal the plane's, and no max_days.
  EXPECT_EQ(ToJson(*req), json::parse(R"({"name": "claims", "location": "s3://b/claims",
                                          "key": "k", "description": "", "price": "0"})"));
}

TEST(Wire, StrictRefusesUnknownFieldsLenientIgnoresThem) {
  const json body = {{"name", "carol"}, {"role", "consumer"}, {"admin", true}};
  EXPECT_EQ(DecodeError<CreateUserRequest>(body, Decode::kStrict, "body"),
            "body.admin: unknown field (allowed: name, role)");
  CreateUserRequest lenient;
  ASSERT_TRUE(FromJson(body, &lenient, Decode::kLenient, "body").ok());
  EXPECT_EQ(lenient.name, "carol");
  EXPECT_EQ(lenient.role, "consumer");

  // Nested objects and array elements too.
  json detail = ToJson(SampleJobDetail());
  detail["history"][1]["actor"] = "plane";
  detail["output"]["gate_findings"] = json::array();
  EXPECT_EQ(DecodeError<JobDetail>(detail, Decode::kStrict),
            "response.history[1].actor: unknown field (allowed: at, from, reason, seq, to)");
  JobDetail out;
  EXPECT_TRUE(FromJson(detail, &out, Decode::kLenient, "response").ok());

  json wrapped = ToJson(SampleError());
  wrapped["error"]["details"] = json::object();
  EXPECT_EQ(DecodeError<Error>(wrapped, Decode::kStrict),
            "response.error.details: unknown field (allowed: code, message)");

  // A flattened type knows both its own and its base's fields, and no more.
  json created = ToJson(SampleCreatedUser());
  CreatedUser cu;
  EXPECT_TRUE(FromJson(created, &cu, Decode::kStrict, "response").ok());
  created["password"] = "x";
  EXPECT_EQ(DecodeError<CreatedUser>(created, Decode::kStrict),
            "response.password: unknown field (allowed: created_at, disabled, id, name, role, "
            "token)");
}

TEST(Wire, StrictNamesAnUnknownFieldBeforeABadValue) {
  // The order the plane's handlers have always answered in.
  const json body = {{"dataset", 5}, {"days", 7}, {"extra", 1}};
  EXPECT_EQ(DecodeError<RentRequest>(body, Decode::kStrict, "body"),
            "body.extra: unknown field (allowed: dataset, days)");
  EXPECT_EQ(DecodeError<RentRequest>(body, Decode::kLenient, "body"),
            "body.dataset: expected a string");
}

TEST(Wire, MissingRequiredFieldsAreNamed) {
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", "claims"}}, Decode::kStrict, "body"),
            "body.days: required field is missing");
  EXPECT_EQ(DecodeError<RentRequest>(json{{"days", 3}}, Decode::kLenient, "body"),
            "body.dataset: required");
  json job = ToJson(SampleJob());
  job.erase("simulated_tee");
  EXPECT_EQ(DecodeError<Job>(job, Decode::kLenient), "response.simulated_tee: required");
  json detail = ToJson(SampleJobDetail());
  detail.erase("history");
  EXPECT_EQ(DecodeError<JobDetail>(detail, Decode::kLenient), "response.history: required");
  json entry = ToJson(SampleEntry());
  entry.erase("details");
  EXPECT_EQ(DecodeError<AuditEntry>(entry, Decode::kLenient), "response.details: required");
  EXPECT_EQ(DecodeError<Error>(json{{"error", {{"message", "m"}}}}, Decode::kLenient),
            "response.error.code: required");
  EXPECT_EQ(DecodeError<Error>(json::object(), Decode::kLenient), "response.error: required");
  json verify = ToJson(SampleVerify());
  verify["rentals"].erase("head_hash");
  EXPECT_EQ(DecodeError<AuditVerifyReport>(verify, Decode::kLenient),
            "response.rentals.head_hash: required");
}

TEST(Wire, WrongTypesNameTheFieldAndTheExpectedType) {
  json user = ToJson(SampleUser());
  user["name"] = 5;
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.name: expected a string");
  user = ToJson(SampleUser());
  user["id"] = "3";
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.id: expected an integer");
  user["id"] = 3.5;
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.id: expected an integer");
  // Above INT64_MAX no field can hold it.
  user["id"] = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.id: expected an integer");
  user = ToJson(SampleUser());
  user["disabled"] = "false";
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.disabled: expected a boolean");
  user["disabled"] = 0;
  EXPECT_EQ(DecodeError<User>(user, Decode::kLenient), "response.disabled: expected a boolean");

  EXPECT_EQ(DecodeError<User>(json::array(), Decode::kLenient), "response: expected an object");
  json detail = ToJson(SampleJobDetail());
  detail["output"] = "none";
  EXPECT_EQ(DecodeError<JobDetail>(detail, Decode::kLenient),
            "response.output: expected an object");
  detail = ToJson(SampleJobDetail());
  detail["history"] = json::object();
  EXPECT_EQ(DecodeError<JobDetail>(detail, Decode::kLenient),
            "response.history: expected an array");
  EXPECT_EQ(DecodeError<JobList>(json{{"jobs", {1}}}, Decode::kLenient),
            "response.jobs[0]: expected an object");

  json list = ToJson(JobList{.jobs = {SampleJob(), SampleJob(), SampleJob(), SampleJob()},
                             .next_offset = std::nullopt});
  list["jobs"][3]["state"] = 7;
  EXPECT_EQ(DecodeError<JobList>(list, Decode::kLenient),
            "response.jobs[3].state: expected a string");
  list = ToJson(SampleJobList());
  list["next_offset"] = "2";
  EXPECT_EQ(DecodeError<JobList>(list, Decode::kLenient),
            "response.next_offset: expected an integer");

  json attest = ToJson(SampleKbsAttestResponse());
  attest["tcb_status"] = 1;
  EXPECT_EQ(DecodeError<KbsAttestResponse>(attest, Decode::kLenient),
            "response.tcb_status: expected a string");
}

TEST(Wire, ErrorsNeverQuoteTheValue) {
  // A dataset key sent as the wrong type must not reach a log line.
  const json body = {{"name", "claims"},
                     {"location", "s3://b/c"},
                     {"key", {"cce4long-dataset-key-v1 SECRET0011"}}};
  std::string m = DecodeError<RegisterDatasetRequest>(body, Decode::kStrict, "body");
  EXPECT_EQ(m, "body.key: expected a string, got an array");
  EXPECT_EQ(m.find("SECRET"), std::string::npos);
}

TEST(Wire, ParseNamesTextThatIsNotJson) {
  auto r = Parse<Job>("{\"id\": ", Decode::kLenient, "response");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "response: not valid JSON: syntax error at line 1, column 8 (byte 7); expected a "
            "JSON object");
}

TEST(Wire, ParseNamesWhereJsonStopsButNotTheBytes) {
  auto r = Parse<RentRequest>("{\"dataset\": \"claims\",\n \"days\": SECRET7}", Decode::kStrict,
                              "body");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "body: not valid JSON: syntax error at line 2, column 10 (byte 31); expected a JSON "
            "object");
  for (std::string_view empty : {"", " \n"}) {
    auto e = Parse<RentRequest>(empty, Decode::kStrict, "body");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().message(), "body: empty; expected a JSON object");
  }
}

TEST(Wire, StrictErrorsSayWhatTypeTheyGot) {
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", "claims"}, {"days", "7"}}, Decode::kStrict,
                                     "body"),
            "body.days: expected an integer, got a string");
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", "claims"}, {"days", 1.5}}, Decode::kStrict,
                                     "body"),
            "body.days: expected an integer, got a number with a fraction");
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", nullptr}, {"days", 1}}, Decode::kStrict,
                                     "body"),
            "body.dataset: expected a string, got null");
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", "c"}, {"days", UINT64_MAX}},
                                     Decode::kStrict, "body"),
            "body.days: expected an integer, got one larger than 9223372036854775807");
  EXPECT_EQ(DecodeError<RentRequest>(json::array({1}), Decode::kStrict, "body"),
            "body: expected an object, got an array");
  // Responses (the plane's fault, not the user's) keep the short form.
  EXPECT_EQ(DecodeError<RentRequest>(json{{"dataset", "claims"}, {"days", "7"}},
                                     Decode::kLenient, "response"),
            "response.days: expected an integer");
}

TEST(Wire, IntegersKeepTheirFullRange) {
  Job j = SampleJob();
  j.created_at = std::numeric_limits<int64_t>::max();
  j.deadline = std::numeric_limits<int64_t>::min();
  ExpectRoundTrip(j);
}

TEST(Wire, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  AuditEntry e = SampleEntry();
  e.details = "bad \xff byte";
  std::string text;
  ASSERT_NO_THROW(text = Dump(e));
  EXPECT_NE(text.find("bad \xEF\xBF\xBD byte"), std::string::npos);  // U+FFFD
}

// ---- docs/api.yaml -------------------------------------------------------------

struct SchemaRun {
  int exit_code = -1;
  std::string output;
};

// Writes {"samples": [{"schema", "value"}...]} and runs tests/api/validate_schema.py on it.
SchemaRun ValidateAgainstApiYaml(const json& samples) {
  std::string path = testing::TempDir() + "api_wire_samples_XXXXXX";
  int fd = ::mkstemp(path.data());
  EXPECT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << json{{"samples", samples}}.dump(2);
  }
  const std::string cmd = std::string("/usr/bin/python3 '") + CCE_SOURCE_DIR +
                          "/tests/api/validate_schema.py' '" + CCE_SOURCE_DIR +
                          "/docs/api.yaml' '" + path + "' 2>&1";
  SchemaRun run;
  FILE* p = ::popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return run;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) run.output.append(buf, n);
  int status = ::pclose(p);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ::unlink(path.c_str());
  return run;
}

template <typename T>
json Sample(const char* schema, const T& v) {
  return {{"schema", schema}, {"value", ToJson(v)}};
}

TEST(WireSchema, EncodedValuesMatchTheOpenApiDocument) {
  const json samples = json::array({
      Sample("Error", SampleError()),
      Sample("User", SampleUser()),
      Sample("GET /api/v1/whoami 200", SampleUser()),
      Sample("GET /api/v1/users 200", SampleUserList()),
      Sample("POST /api/v1/users body", SampleCreateUser()),
      Sample("POST /api/v1/users 201", SampleCreatedUser()),
      Sample("Dataset", SampleDataset()),
      Sample("GET /api/v1/datasets 200", SampleDatasetList()),
      Sample("POST /api/v1/datasets body", SampleRegister()),
      Sample("POST /api/v1/datasets 201", SampleDataset()),
      Sample("Rental", SampleRental()),
      Sample("GET /api/v1/rentals 200", SampleRentalList()),
      Sample("POST /api/v1/rentals body", SampleRent()),
      Sample("POST /api/v1/rentals 201", SampleRental()),
      Sample("Image", SampleImage()),
      Sample("GET /api/v1/images 200", SampleImageList()),
      Sample("GET /api/v1/images/blobs/{digest} 200", SampleBlobStatus()),
      Sample("PUT /api/v1/images/blobs/{digest} 201", SampleStoredBlob()),
      Sample("PUT /api/v1/images/{name}/tags/{tag} 201", SampleTagged()),
      Sample("Job", SampleJob()),
      Sample("POST /api/v1/jobs 201", SampleJob()),
      Sample("POST /api/v1/jobs/{id}/cancel 200", SampleJob()),
      Sample("JobEvent", SampleEvent(2, "SUBMITTED", "AUTHORIZED")),
      Sample("OutputSummary", SampleOutput()),
      Sample("JobDetail", SampleJobDetail()),
      Sample("GET /api/v1/jobs/{id} 200", SampleJobDetail()),
      Sample("GET /api/v1/jobs 200", SampleJobList()),
      Sample("AuditEntry", SampleEntry()),
      Sample("GET /api/v1/audit 200", SampleAuditList()),
      Sample("ChainReport", SampleReport(false)),
      Sample("AuditVerifyReport", SampleVerify()),
      Sample("GET /api/v1/audit/verify 200", SampleVerify()),
      Sample("GET /api/v1/audit/checkpoints 200", SampleCheckpoints()),
      Sample("GET /api/v1/audit/rentals 200", SampleChainRentals()),
      Sample("POST /kbs/v0/auth body", SampleKbsAuth()),
      Sample("POST /kbs/v0/auth 200", SampleKbsAuthResponse()),
      Sample("POST /kbs/v0/attest body", SampleKbsAttest()),
      Sample("POST /kbs/v0/attest 200", SampleKbsAttestResponse()),
      Sample("POST /api/v1/agent/report body", SampleAgentReport()),
      Sample("POST /api/v1/agent/report 200", SampleJob()),
      Sample("PUT /api/v1/agent/output 201", SampleAgentReceipt()),
      Sample("GET /api/v1/agent/job 200", SampleAgentJob()),
      Sample("JobReview", SampleJobReview()),
      Sample("GET /api/v1/reviews 200", SampleReviewList()),
      Sample("GET /api/v1/reviews/{job} 200", SampleReviewDetail()),
      Sample("POST /api/v1/reviews/{job}/approve body", SampleDecision()),
      Sample("POST /api/v1/reviews/{job}/approve 200", SampleReviewDetail()),
      Sample("POST /api/v1/reviews/{job}/reject body", SampleDecision()),
      Sample("POST /api/v1/reviews/{job}/reject 200", SampleReviewDetail()),
  });
  SchemaRun run = ValidateAgainstApiYaml(samples);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("49 of 49 samples match"), std::string::npos) << run.output;
}

// Dataset samples (docs/explore/samples.md), checked on their own.
SampleInfo SampleSampleInfo() {
  return {.dataset = "claims",
          .version = 2,
          .published_at = 1795657605,
          .file_count = 2,
          .total_bytes = 31,
          .files = {{"notes.txt", 9, std::string(64, 'a')},
                    {"tables/people.csv", 22, std::string(64, 'b')}}};
}

TEST(Wire, SampleInfoRoundTripsAndNamesABadField) {
  ExpectRoundTrip(SampleSampleInfo());
  ExpectRoundTrip(SampleFile{"a.csv", 0, std::string(64, 'c')});
  json bad = ToJson(SampleSampleInfo());
  bad["files"][1]["size"] = "22";
  EXPECT_EQ(DecodeError<SampleInfo>(bad, Decode::kLenient), "response.files[1].size: expected an integer");
}

TEST(WireSchema, SampleInfoMatchesTheOpenApiDocument) {
  const json samples = json::array({
      Sample("SampleInfo", SampleSampleInfo()),
      Sample("SampleFile", SampleSampleInfo().files[0]),
      Sample("PUT /api/v1/datasets/{name}/sample 201", SampleSampleInfo()),
      Sample("GET /api/v1/datasets/{name}/sample 200", SampleSampleInfo()),
  });
  SchemaRun run = ValidateAgainstApiYaml(samples);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("4 of 4 samples match"), std::string::npos) << run.output;
}

// Ledger and wallets (docs/ledger.md), checked on their own.
LedgerInfo SampleLedgerInfo() {
  return {.backend = "ethereum",
          .chain_id = 31337,
          .contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3",
          .confirmations = 12,
          .rpc = "http://127.0.0.1:8545",
          .plane_id = "0x" + std::string(64, 'b'),
          .indexed_through = 99,
          .last_sync_error = "eth_blockNumber: connection refused"};
}
LedgerDataset SampleLedgerDataset() {
  return {.dataset = "claims",
          .chain_dataset_id = "0x" + std::string(64, 'c'),
          .chain_id = 31337,
          .contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"};
}
WalletChallenge SampleWalletChallenge() {
  return {.message = "cce4long wallet link\n...", .nonce = std::string(32, 'd'), .expires_at = 7};
}
WalletLinkRequest SampleWalletLink() {
  return {.address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
          .nonce = std::string(32, 'd'),
          .signature = "0x" + std::string(130, 'f')};
}
Wallet SampleWallet() {
  return {.address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", .user = "carol", .linked_at = 9};
}

TEST(Wire, LedgerAndWalletTypesRoundTrip) {
  ExpectRoundTrip(SampleLedgerInfo());
  ExpectRoundTrip(LedgerInfo{.backend = "embedded"});
  ExpectRoundTrip(SampleLedgerDataset());
  ExpectRoundTrip(WalletChallengeRequest{.address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"});
  ExpectRoundTrip(SampleWalletChallenge());
  ExpectRoundTrip(SampleWalletLink());
  ExpectRoundTrip(SampleWallet());
  ExpectRoundTrip(WalletList{.wallets = {SampleWallet()}});
  // An embedded rental has none of the chain fields, and none are encoded.
  Rental embedded = SampleRental();
  embedded.tx_hash.reset();
  embedded.block.reset();
  embedded.payer.reset();
  embedded.amount_wei.reset();
  ExpectRoundTrip(embedded);
  EXPECT_FALSE(ToJson(embedded).contains("tx_hash"));
  EXPECT_FALSE(ToJson(LedgerInfo{.backend = "embedded"}).contains("chain_id"));
}

TEST(WireSchema, LedgerAndWalletTypesMatchTheOpenApiDocument) {
  const json samples = json::array({
      Sample("LedgerInfo", SampleLedgerInfo()),
      Sample("GET /api/v1/ledger 200", SampleLedgerInfo()),
      Sample("GET /api/v1/ledger/datasets/{name} 200", SampleLedgerDataset()),
      Sample("POST /api/v1/wallet/challenge body",
             WalletChallengeRequest{.address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"}),
      Sample("POST /api/v1/wallet/challenge 200", SampleWalletChallenge()),
      Sample("POST /api/v1/wallet/link body", SampleWalletLink()),
      Sample("POST /api/v1/wallet/link 201", SampleWallet()),
      Sample("GET /api/v1/wallet 200", WalletList{.wallets = {SampleWallet()}}),
  });
  SchemaRun run = ValidateAgainstApiYaml(samples);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("8 of 8 samples match"), std::string::npos) << run.output;
}

// The check above can fail: a renamed field, a value outside an enum and a
// wrong type are each named.
TEST(WireSchema, DriftIsDetected) {
  json renamed = ToJson(SampleJob());
  renamed["status"] = renamed["state"];
  renamed.erase("state");
  json bad_role = ToJson(SampleUser());
  bad_role["role"] = "admin";
  json bad_type = ToJson(SampleRental());
  bad_type["end"] = "tomorrow";
  SchemaRun run = ValidateAgainstApiYaml(json::array({
      {{"schema", "Job"}, {"value", renamed}},
      {{"schema", "User"}, {"value", bad_role}},
      {{"schema", "POST /api/v1/rentals 201"}, {"value", bad_type}},
  }));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("Job: value.status: encoded but not in the schema"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("Job: value.state: in the schema but not encoded"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("User: value.role: 'admin' is not one of"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("POST /api/v1/rentals 201: value.end: 'tomorrow' is not of type"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("0 of 3 samples match"), std::string::npos) << run.output;
}

// Explore sessions (docs/explore/sessions.md), checked on their own.
ExploreSession SampleExploreSession() {
  return {.id = "xs-0123456789abcdef",
          .owner = "carol",
          .backend = "local",
          .state = "STOPPED",
          .datasets = {{"claims", 2}},
          .idle_timeout_seconds = 1800,
          .created_at = 1795657605,
          .last_activity_at = 1795657700,
          .stopped_at = 1795659600,
          .stop_reason = "idle for 31 min",
          .url = "https://plane.example:8443/explore/xs-0123456789abcdef/"};
}

TEST(Wire, ExploreSessionRoundTripsAndNamesABadField) {
  ExpectRoundTrip(SampleExploreSession());
  ExpectRoundTrip(ExploreLogin{"https://p/explore/xs-0123456789abcdef/login?code=x", 5});
  json bad = ToJson(SampleExploreSession());
  bad["datasets"][0]["sample_version"] = "2";
  EXPECT_EQ(DecodeError<ExploreSession>(bad, Decode::kLenient),
            "response.datasets[0].sample_version: expected an integer");
  StartExploreRequest none;
  auto parsed = Parse<StartExploreRequest>("{}", Decode::kStrict, "body");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->datasets.has_value()) << "absent datasets must mean all rented";
  parsed = Parse<StartExploreRequest>(R"({"datasets":["a"],"idle_timeout_seconds":60})",
                                      Decode::kStrict, "body");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed->datasets, std::vector<std::string>{"a"});
  EXPECT_EQ(*parsed->idle_timeout_seconds, 60);
  auto unknown = Parse<StartExploreRequest>(R"({"image":"x"})", Decode::kStrict, "body");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "body.image: unknown field (allowed: datasets, idle_timeout_seconds)");
  (void)none;
}

TEST(WireSchema, ExploreSessionsMatchTheOpenApiDocument) {
  StartExploreRequest start;
  start.datasets = std::vector<std::string>{"claims"};
  start.idle_timeout_seconds = 1800;
  const json samples = json::array({
      Sample("ExploreSession", SampleExploreSession()),
      Sample("POST /api/v1/explore/sessions body", start),
      Sample("POST /api/v1/explore/sessions 201", SampleExploreSession()),
      Sample("GET /api/v1/explore/sessions 200", ExploreSessionList{{SampleExploreSession()}}),
      Sample("GET /api/v1/explore/sessions/{id} 200", SampleExploreSession()),
      Sample("DELETE /api/v1/explore/sessions/{id} 200", SampleExploreSession()),
      Sample("POST /api/v1/explore/sessions/{id}/login 200",
             ExploreLogin{"https://p:8443/explore/xs-0123456789abcdef/login?code=abc", 1795657725}),
  });
  SchemaRun run = ValidateAgainstApiYaml(samples);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("7 of 7 samples match"), std::string::npos) << run.output;
}

// Script jobs (docs/explore/script-jobs.md): the request with every optional
// field, the base list; and a strict decode that names an unknown field.
TEST(WireSchema, ScriptJobTypesMatchTheOpenApiDocument) {
  ScriptJobRequest full;
  full.name = "cohort-stats";
  full.base = "python-data";
  full.script = {"analysis.py", "aW1wb3J0IHBhbmRhcwo="};
  full.datasets = {{"claims", "/data/c"}};
  full.args = {"--rows", "5"};
  full.resources = ScriptJobResources{1.5, 2048, 1800, 16};
  const json samples = json::array({
      Sample("POST /api/v1/jobs/script body", full),
      Sample("ScriptJobRequest", full),
      Sample("GET /api/v1/explore/bases 200",
             BaseList{{{"python-data", "library/python-data:3.11", {"/usr/bin/python3"}}}}),
      Sample("POST /api/v1/jobs/script 201", SampleJob()),
  });
  SchemaRun run = ValidateAgainstApiYaml(samples);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("4 of 4 samples match"), std::string::npos) << run.output;

  auto back = Parse<ScriptJobRequest>(ToJson(full).dump(), Decode::kStrict, "body");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(ToJson(*back), ToJson(full));
  auto minimal = Parse<ScriptJobRequest>(
      R"({"base":"b","script":{"name":"a.py","content_base64":""},"datasets":[{"name":"d"}]})",
      Decode::kStrict, "body");
  ASSERT_TRUE(minimal.ok()) << minimal.status().message();
  EXPECT_TRUE(minimal->args.empty());
  EXPECT_FALSE(minimal->resources.has_value());
  EXPECT_EQ(minimal->datasets[0].mount_path, "");
  auto unknown = Parse<ScriptJobRequest>(
      R"({"base":"b","script":{"name":"a.py","content_base64":"","mode":1},"datasets":[]})",
      Decode::kStrict, "body");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "body.script.mode: unknown field (allowed: content_base64, name)");
}
}  // namespace
}  // namespace cce::api
