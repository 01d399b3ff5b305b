#include "api/wire.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <utility>

namespace cce::api {
namespace {

// "a string", "an integer", "null", ...: what a request sent where something else
// belongs. Only the type, never the value (which may be a secret).
std::string JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number with a fraction";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "another type";
  }
}

// Reads the fields of one JSON object into a wire type. The first error
// sticks and later reads do nothing, so a decoder is a flat list of reads
// ended by Finish(). Every read records its field name as known, present or
// not, which is what Finish() checks unknown fields against in strict mode.
class FieldReader {
 public:
  FieldReader(const json& j, Decode mode, std::string_view where)
      : j_(j.is_object() ? &j : nullptr), mode_(mode), where_(where) {
    if (j_ == nullptr) status_ = InvalidArgument(where_ + ": expected an object" + Got(j));
  }

  void String(const char* name, std::string* out) { Scalar(name, Find(name, true), kString, out); }
  // Absent: *out keeps its value (the type's default).
  void OptionalString(const char* name, std::string* out) {
    Scalar(name, Find(name, false), kString, out);
  }
  // Absent or null: *out keeps its value.
  void NullableString(const char* name, std::string* out) {
    const json* v = Find(name, false);
    if (v != nullptr && !v->is_null()) Scalar(name, v, kString, out);
  }
  // Absent: *out stays nullopt.
  void OptionalStr(const char* name, std::optional<std::string>* out) {
    std::string v;
    if (Scalar(name, Find(name, false), kString, &v)) *out = std::move(v);
  }
  void Int(const char* name, int64_t* out) { Scalar(name, Find(name, true), kInteger, out); }
  void OptionalInt(const char* name, std::optional<int64_t>* out) {
    int64_t v = 0;
    if (Scalar(name, Find(name, false), kInteger, &v)) *out = v;
  }
  void Bool(const char* name, bool* out) { Scalar(name, Find(name, true), kBoolean, out); }
  void Number(const char* name, double* out) { Scalar(name, Find(name, true), kNumber, out); }
  void OptionalNumber(const char* name, std::optional<double>* out) {
    double v = 0;
    if (Scalar(name, Find(name, false), kNumber, &v)) *out = v;
  }
  // An array of strings; errors name "<where>.<name>[i]".
  void StringArray(const char* name, std::vector<std::string>* out) {
    const json* v = Find(name, true);
    if (v == nullptr) return;
    if (!v->is_array()) {
      status_ = InvalidArgument(Path(name) + ": expected an array" + Got(*v));
      return;
    }
    out->clear();
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        status_ = InvalidArgument(Path(name) + "[" + std::to_string(i) + "]: expected a string" +
                                  Got((*v)[i]));
        return;
      }
      out->push_back((*v)[i].get<std::string>());
    }
  }
  // Absent: *out keeps its value.
  void OptionalStringArray(const char* name, std::vector<std::string>* out) {
    known_.insert(name);
    if (j_ != nullptr && j_->contains(name)) StringArray(name, out);
  }
  // Any JSON value, kept as it is.
  void Value(const char* name, json* out) {
    if (const json* v = Find(name, true)) *out = *v;
  }

  // A nested wire type; its errors name "<where>.<name>.<field>".
  template <typename T>
  void Object(const char* name, T* out) {
    if (const json* v = Find(name, true)) Keep(FromJson(*v, out, mode_, Path(name)));
  }
  template <typename T>
  void OptionalObject(const char* name, std::optional<T>* out) {
    const json* v = Find(name, false);
    if (v == nullptr) return;
    T decoded;
    Keep(FromJson(*v, &decoded, mode_, Path(name)));
    if (status_.ok()) *out = std::move(decoded);
  }
  // An array of a wire type; errors name "<where>.<name>[i].<field>".
  template <typename T>
  void Array(const char* name, std::vector<T>* out) {
    const json* v = Find(name, true);
    if (v == nullptr) return;
    if (!v->is_array()) {
      status_ = InvalidArgument(Path(name) + ": expected an array" + Got(*v));
      return;
    }
    out->clear();
    out->reserve(v->size());
    for (size_t i = 0; i < v->size() && status_.ok(); ++i) {
      Keep(FromJson((*v)[i], &out->emplace_back(), mode_,
                    Path(name) + "[" + std::to_string(i) + "]"));
    }
  }

  // A reader for the object at `name` (required), sharing this reader's mode.
  // When this reader has already failed, the nested one reads nothing.
  FieldReader Nested(const char* name) {
    const json* v = Find(name, true);
    if (v == nullptr) return FieldReader(mode_);
    return {*v, mode_, Path(name)};
  }

  // The first error, except that in strict mode an unknown field is reported
  // before a bad value (the order the plane's handlers have always used).
  Status Finish() const {
    if (mode_ == Decode::kStrict && j_ != nullptr) {
      for (const auto& [key, value] : j_->items()) {
        if (known_.count(key) != 0) continue;
        std::string allowed;
        for (const std::string& k : known_) allowed += (allowed.empty() ? "" : ", ") + k;
        return InvalidArgument(where_ + "." + key + ": unknown field (allowed: " + allowed + ")");
      }
    }
    return status_;
  }

 private:
  enum Kind { kString, kInteger, kBoolean, kNumber };

  // A reader that reads nothing and reports nothing (behind a failed one).
  explicit FieldReader(Decode mode) : j_(nullptr), mode_(mode) {}

  std::string Path(const char* name) const { return where_ + "." + name; }

  // A request's error also says what it got: its JSON type, never its value.
  std::string Got(const json& v) const {
    if (mode_ != Decode::kStrict) return "";
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return ", got one larger than " + std::to_string(std::numeric_limits<int64_t>::max());
    }
    return ", got " + JsonTypeName(v);
  }

  void Keep(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }

  // The field's value, or nullptr when it is absent (an error if required)
  // or when an earlier read failed.
  const json* Find(const char* name, bool required) {
    known_.insert(name);
    if (j_ == nullptr || !status_.ok()) return nullptr;
    auto it = j_->find(name);
    if (it == j_->end()) {
      if (required) {
        status_ = InvalidArgument(Path(name) + (mode_ == Decode::kStrict
                                                    ? ": required field is missing"
                                                    : ": required"));
      }
      return nullptr;
    }
    return &*it;
  }

  // Reads the scalar *v (nullptr: absent) of field `name`; true when *out
  // was set. Errors name the expected type, never the value (which may be a
  // secret, such as a dataset key).
  template <typename T>
  bool Scalar(const char* name, const json* v, Kind kind, T* out) {
    if (v == nullptr) return false;
    const char* expected = nullptr;
    switch (kind) {
      case kString:
        if (!v->is_string()) expected = "a string";
        break;
      case kInteger:
        // A uint64 above INT64_MAX is not an integer any field can hold.
        if (!v->is_number_integer() ||
            (v->is_number_unsigned() &&
             v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
          expected = "an integer";
        }
        break;
      case kBoolean:
        if (!v->is_boolean()) expected = "a boolean";
        break;
      case kNumber:
        if (!v->is_number()) expected = "a number";
        break;
    }
    if (expected != nullptr) {
      status_ = InvalidArgument(Path(name) + ": expected " + expected + Got(*v));
      return false;
    }
    *out = v->get<T>();
    return true;
  }

  const json* j_;  // the object read; nullptr when it is not one
  Decode mode_;
  std::string where_;
  Status status_;
  std::set<std::string, std::less<>> known_;
};

template <typename T>
json ArrayJson(const std::vector<T>& items) {
  json a = json::array();
  for (const T& item : items) a.push_back(ToJson(item));
  return a;
}

// User and Job are also the first fields of CreatedUser and JobDetail, so
// their fields are read by one function each, into the enclosing reader.
void ReadUser(FieldReader& r, User* out) {
  r.Int("id", &out->id);
  r.String("name", &out->name);
  r.String("role", &out->role);
  r.Int("created_at", &out->created_at);
  r.Bool("disabled", &out->disabled);
}

void ReadJob(FieldReader& r, Job* out) {
  r.String("id", &out->id);
  r.String("name", &out->name);
  r.String("consumer", &out->consumer);
  r.String("state", &out->state);
  r.String("reason", &out->reason);
  r.String("image", &out->image);
  r.Int("created_at", &out->created_at);
  r.Int("updated_at", &out->updated_at);
  r.Int("deadline", &out->deadline);
  r.Bool("simulated_tee", &out->simulated_tee);
}

}  // namespace

Status JsonSyntaxError(std::string_view text, std::string_view where) {
  const std::string w(where);
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return InvalidArgument(w + ": empty; expected a JSON object");
  }
  size_t byte = text.size();
  try {
    const json parsed = json::parse(text);  // throws at the error's byte
    static_cast<void>(parsed);
  } catch (const json::parse_error& e) {
    byte = e.byte > 0 ? e.byte - 1 : 0;  // e.byte counts from 1
  } catch (const std::exception&) {
  }
  byte = std::min(byte, text.size());
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < byte; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return InvalidArgument(w + ": not valid JSON: syntax error at line " + std::to_string(line) +
                         ", column " + std::to_string(column) + " (byte " +
                         std::to_string(byte) + "); expected a JSON object");
}

// ---- Error -------------------------------------------------------------------

json ToJson(const Error& v) {
  return {{"error", {{"code", v.code}, {"message", v.message}}}};
}
Status FromJson(const json& j, Error* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  FieldReader e = r.Nested("error");
  e.String("code", &out->code);
  e.String("message", &out->message);
  RETURN_IF_ERROR(r.Finish());
  return e.Finish();
}

// ---- Users -------------------------------------------------------------------

json ToJson(const User& v) {
  return {{"id", v.id},
          {"name", v.name},
          {"role", v.role},
          {"created_at", v.created_at},
          {"disabled", v.disabled}};
}
Status FromJson(const json& j, User* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  ReadUser(r, out);
  return r.Finish();
}

json ToJson(const UserList& v) {
  return {{"users", ArrayJson(v.users)}};
}
Status FromJson(const json& j, UserList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("users", &out->users);
  return r.Finish();
}

json ToJson(const CreateUserRequest& v) {
  return {{"name", v.name}, {"role", v.role}};
}
Status FromJson(const json& j, CreateUserRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("role", &out->role);
  return r.Finish();
}

json ToJson(const CreatedUser& v) {
  json j = ToJson(v.user);
  j["token"] = v.token;
  return j;
}
Status FromJson(const json& j, CreatedUser* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  ReadUser(r, &out->user);
  r.String("token", &out->token);
  return r.Finish();
}

// ---- Catalog and rentals -----------------------------------------------------

json ToJson(const Dataset& v) {
  return {{"name", v.name},
          {"owner", v.owner},
          {"location", v.location},
          {"description", v.description},
          {"price", v.price},
          {"max_days", v.max_days},
          {"key_id", v.key_id},
          {"dataset_id", v.dataset_id},
          {"dataset_version", v.dataset_version},
          {"created_at", v.created_at}};
}
Status FromJson(const json& j, Dataset* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("owner", &out->owner);
  r.String("location", &out->location);
  r.String("description", &out->description);
  r.String("price", &out->price);
  r.Int("max_days", &out->max_days);
  r.String("key_id", &out->key_id);
  r.String("dataset_id", &out->dataset_id);
  r.Int("dataset_version", &out->dataset_version);
  r.Int("created_at", &out->created_at);
  return r.Finish();
}

json ToJson(const DatasetList& v) {
  return {{"datasets", ArrayJson(v.datasets)}};
}
Status FromJson(const json& j, DatasetList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("datasets", &out->datasets);
  return r.Finish();
}

// description and price are always sent (their defaults are the plane's);
// max_days only when chosen, so the plane's default applies otherwise.
json ToJson(const RegisterDatasetRequest& v) {
  json j = {{"name", v.name},
            {"location", v.location},
            {"key", v.key},
            {"description", v.description},
            {"price", v.price}};
  if (v.max_days) j["max_days"] = *v.max_days;
  if (!v.dataset_id.empty()) j["dataset_id"] = v.dataset_id;
  if (v.dataset_version) j["dataset_version"] = *v.dataset_version;
  return j;
}
Status FromJson(const json& j, RegisterDatasetRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("location", &out->location);
  r.String("key", &out->key);
  r.OptionalString("description", &out->description);
  r.OptionalString("price", &out->price);
  r.OptionalInt("max_days", &out->max_days);
  r.OptionalString("dataset_id", &out->dataset_id);
  r.OptionalInt("dataset_version", &out->dataset_version);
  return r.Finish();
}

json ToJson(const Rental& v) {
  json j = {{"seq", v.seq},           {"dataset", v.dataset},
            {"consumer", v.consumer}, {"start", v.start},
            {"end", v.end},           {"created_at", v.created_at},
            {"hash", v.hash},         {"signature", v.signature}};
  if (v.tx_hash) j["tx_hash"] = *v.tx_hash;
  if (v.block) j["block"] = *v.block;
  if (v.payer) j["payer"] = *v.payer;
  if (v.amount_wei) j["amount_wei"] = *v.amount_wei;
  return j;
}
Status FromJson(const json& j, Rental* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("seq", &out->seq);
  r.String("dataset", &out->dataset);
  r.String("consumer", &out->consumer);
  r.Int("start", &out->start);
  r.Int("end", &out->end);
  r.Int("created_at", &out->created_at);
  r.String("hash", &out->hash);
  r.String("signature", &out->signature);
  r.OptionalStr("tx_hash", &out->tx_hash);
  r.OptionalInt("block", &out->block);
  r.OptionalStr("payer", &out->payer);
  r.OptionalStr("amount_wei", &out->amount_wei);
  return r.Finish();
}

json ToJson(const RentalList& v) {
  return {{"rentals", ArrayJson(v.rentals)}};
}
Status FromJson(const json& j, RentalList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("rentals", &out->rentals);
  return r.Finish();
}

json ToJson(const RentRequest& v) {
  return {{"dataset", v.dataset}, {"days", v.days}};
}
Status FromJson(const json& j, RentRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("dataset", &out->dataset);
  r.Int("days", &out->days);
  return r.Finish();
}

// ---- Images ------------------------------------------------------------------

json ToJson(const Image& v) {
  return {{"name", v.name},
          {"tag", v.tag},
          {"digest", v.digest},
          {"owner", v.owner},
          {"created_at", v.created_at}};
}
Status FromJson(const json& j, Image* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("tag", &out->tag);
  r.String("digest", &out->digest);
  r.String("owner", &out->owner);
  r.Int("created_at", &out->created_at);
  return r.Finish();
}

json ToJson(const ImageList& v) {
  return {{"images", ArrayJson(v.images)}};
}
Status FromJson(const json& j, ImageList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("images", &out->images);
  return r.Finish();
}

json ToJson(const BlobStatus& v) {
  json j = {{"digest", v.digest}, {"present", v.present}};
  if (v.size) j["size"] = *v.size;
  return j;
}
Status FromJson(const json& j, BlobStatus* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("digest", &out->digest);
  r.Bool("present", &out->present);
  r.OptionalInt("size", &out->size);
  return r.Finish();
}

json ToJson(const StoredBlob& v) {
  return {{"digest", v.digest}, {"size", v.size}};
}
Status FromJson(const json& j, StoredBlob* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("digest", &out->digest);
  r.Int("size", &out->size);
  return r.Finish();
}

json ToJson(const TaggedImage& v) {
  return {{"name", v.name}, {"tag", v.tag}, {"digest", v.digest}};
}
Status FromJson(const json& j, TaggedImage* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("tag", &out->tag);
  r.String("digest", &out->digest);
  return r.Finish();
}

// ---- Jobs --------------------------------------------------------------------

json ToJson(const Job& v) {
  return {{"id", v.id},
          {"name", v.name},
          {"consumer", v.consumer},
          {"state", v.state},
          {"reason", v.reason},
          {"image", v.image},
          {"created_at", v.created_at},
          {"updated_at", v.updated_at},
          {"deadline", v.deadline},
          {"simulated_tee", v.simulated_tee}};
}
Status FromJson(const json& j, Job* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  ReadJob(r, out);
  return r.Finish();
}

json ToJson(const JobEvent& v) {
  return {{"seq", v.seq}, {"from", v.from}, {"to", v.to}, {"reason", v.reason}, {"at", v.at}};
}
Status FromJson(const json& j, JobEvent* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("seq", &out->seq);
  r.String("from", &out->from);
  r.String("to", &out->to);
  r.String("reason", &out->reason);
  r.Int("at", &out->at);
  return r.Finish();
}

json ToJson(const OutputSummary& v) {
  json j = {{"size", v.size},
            {"digest", v.digest},
            {"verdict", v.verdict},
            {"downloadable", v.downloadable}};
  if (v.score) j["score"] = *v.score;
  if (v.findings) j["findings"] = *v.findings;
  return j;
}
Status FromJson(const json& j, OutputSummary* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("size", &out->size);
  r.String("digest", &out->digest);
  r.String("verdict", &out->verdict);
  r.Bool("downloadable", &out->downloadable);
  r.OptionalNumber("score", &out->score);
  r.OptionalInt("findings", &out->findings);
  return r.Finish();
}

json ToJson(const JobReview& v) {
  return {{"decision", v.decision},
          {"reason", v.reason},
          {"decided_at", v.decided_at},
          {"reviewers", v.reviewers}};
}
Status FromJson(const json& j, JobReview* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("decision", &out->decision);
  r.String("reason", &out->reason);
  r.Int("decided_at", &out->decided_at);
  r.StringArray("reviewers", &out->reviewers);
  return r.Finish();
}

json ToJson(const JobDetail& v) {
  json j = ToJson(v.job);
  j["history"] = ArrayJson(v.history);
  if (v.output) j["output"] = ToJson(*v.output);
  if (v.review) j["review"] = ToJson(*v.review);
  return j;
}
Status FromJson(const json& j, JobDetail* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  ReadJob(r, &out->job);
  r.Array("history", &out->history);
  r.OptionalObject("output", &out->output);
  r.OptionalObject("review", &out->review);
  return r.Finish();
}

json ToJson(const JobList& v) {
  json j = {{"jobs", ArrayJson(v.jobs)}};
  if (v.next_offset) j["next_offset"] = *v.next_offset;
  return j;
}
Status FromJson(const json& j, JobList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("jobs", &out->jobs);
  r.OptionalInt("next_offset", &out->next_offset);
  return r.Finish();
}

// ---- Review ------------------------------------------------------------------

json ToJson(const ReviewSummary& v) {
  return {{"job", v.job},
          {"consumer", v.consumer},
          {"state", v.state},
          {"score", v.score},
          {"findings", v.findings},
          {"submitted_at", v.submitted_at},
          {"approvals", v.approvals}};
}
Status FromJson(const json& j, ReviewSummary* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("job", &out->job);
  r.String("consumer", &out->consumer);
  r.String("state", &out->state);
  r.Number("score", &out->score);
  r.Int("findings", &out->findings);
  r.Int("submitted_at", &out->submitted_at);
  r.StringArray("approvals", &out->approvals);
  return r.Finish();
}

json ToJson(const ReviewList& v) {
  return {{"reviews", ArrayJson(v.reviews)}};
}
Status FromJson(const json& j, ReviewList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("reviews", &out->reviews);
  return r.Finish();
}

json ToJson(const ReviewFinding& v) {
  json j = {{"detector", v.detector}, {"file", v.file}, {"location", v.location},
            {"score", v.score},       {"hard", v.hard}, {"message", v.message}};
  if (v.row) j["row"] = *v.row;
  if (v.column) j["column"] = *v.column;
  if (v.line) j["line"] = *v.line;
  if (v.offset) j["offset"] = *v.offset;
  return j;
}
Status FromJson(const json& j, ReviewFinding* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("detector", &out->detector);
  r.String("file", &out->file);
  r.String("location", &out->location);
  r.Number("score", &out->score);
  r.Bool("hard", &out->hard);
  r.String("message", &out->message);
  r.OptionalInt("row", &out->row);
  r.OptionalInt("column", &out->column);
  r.OptionalInt("line", &out->line);
  r.OptionalInt("offset", &out->offset);
  return r.Finish();
}

json ToJson(const ReviewFile& v) {
  return {{"path", v.path}, {"size", v.size}};
}
Status FromJson(const json& j, ReviewFile* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("path", &out->path);
  r.Int("size", &out->size);
  return r.Finish();
}

json ToJson(const ReviewDecisionEntry& v) {
  return {{"reviewer", v.reviewer}, {"decision", v.decision}, {"reason", v.reason}, {"at", v.at}};
}
Status FromJson(const json& j, ReviewDecisionEntry* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("reviewer", &out->reviewer);
  r.String("decision", &out->decision);
  r.String("reason", &out->reason);
  r.Int("at", &out->at);
  return r.Finish();
}

json ToJson(const ReviewDetail& v) {
  return {{"job", v.job},
          {"consumer", v.consumer},
          {"state", v.state},
          {"verdict", v.verdict},
          {"score", v.score},
          {"findings", ArrayJson(v.findings)},
          {"files", ArrayJson(v.files)},
          {"decisions", ArrayJson(v.decisions)},
          {"required_approvals", v.required_approvals}};
}
Status FromJson(const json& j, ReviewDetail* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("job", &out->job);
  r.String("consumer", &out->consumer);
  r.String("state", &out->state);
  r.String("verdict", &out->verdict);
  r.Number("score", &out->score);
  r.Array("findings", &out->findings);
  r.Array("files", &out->files);
  r.Array("decisions", &out->decisions);
  r.Int("required_approvals", &out->required_approvals);
  return r.Finish();
}

json ToJson(const ReviewDecisionRequest& v) {
  return {{"reason", v.reason}};
}
Status FromJson(const json& j, ReviewDecisionRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("reason", &out->reason);
  return r.Finish();
}

// ---- Dataset samples ---------------------------------------------------------

json ToJson(const SampleFile& v) {
  return {{"path", v.path}, {"size", v.size}, {"sha256", v.sha256}};
}
Status FromJson(const json& j, SampleFile* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("path", &out->path);
  r.Int("size", &out->size);
  r.String("sha256", &out->sha256);
  return r.Finish();
}

json ToJson(const SampleInfo& v) {
  return {{"dataset", v.dataset},         {"version", v.version},
          {"published_at", v.published_at}, {"file_count", v.file_count},
          {"total_bytes", v.total_bytes}, {"files", ArrayJson(v.files)}};
}
Status FromJson(const json& j, SampleInfo* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("dataset", &out->dataset);
  r.Int("version", &out->version);
  r.Int("published_at", &out->published_at);
  r.Int("file_count", &out->file_count);
  r.Int("total_bytes", &out->total_bytes);
  r.Array("files", &out->files);
  return r.Finish();
}

// ---- Audit -------------------------------------------------------------------

json ToJson(const AuditEntry& v) {
  return {{"seq", v.seq},         {"at", v.at},
          {"actor", v.actor},     {"action", v.action},
          {"object", v.object},   {"decision", v.decision},
          {"details", v.details}, {"details_text", v.details_text},
          {"hash", v.hash}};
}
Status FromJson(const json& j, AuditEntry* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("seq", &out->seq);
  r.Int("at", &out->at);
  r.String("actor", &out->actor);
  r.String("action", &out->action);
  r.String("object", &out->object);
  r.String("decision", &out->decision);
  r.Value("details", &out->details);
  r.String("details_text", &out->details_text);
  r.String("hash", &out->hash);
  return r.Finish();
}

json ToJson(const AuditList& v) {
  json j = {{"entries", ArrayJson(v.entries)}};
  if (v.next_after) j["next_after"] = *v.next_after;
  return j;
}
Status FromJson(const json& j, AuditList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("entries", &out->entries);
  r.OptionalInt("next_after", &out->next_after);
  return r.Finish();
}

json ToJson(const ChainReport& v) {
  return {{"ok", v.ok},
          {"failure", v.failure},
          {"first_bad_seq", v.first_bad_seq},
          {"reason", v.reason},
          {"entries_checked", v.entries_checked},
          {"checkpoints_checked", v.checkpoints_checked},
          {"head_seq", v.head_seq},
          {"head_hash", v.head_hash}};
}
Status FromJson(const json& j, ChainReport* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Bool("ok", &out->ok);
  r.String("failure", &out->failure);
  r.Int("first_bad_seq", &out->first_bad_seq);
  r.String("reason", &out->reason);
  r.Int("entries_checked", &out->entries_checked);
  r.Int("checkpoints_checked", &out->checkpoints_checked);
  r.Int("head_seq", &out->head_seq);
  r.String("head_hash", &out->head_hash);
  return r.Finish();
}

json ToJson(const AuditVerifyReport& v) {
  return {{"ok", v.ok}, {"audit", ToJson(v.audit)}, {"rentals", ToJson(v.rentals)}};
}
Status FromJson(const json& j, AuditVerifyReport* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Bool("ok", &out->ok);
  r.Object("audit", &out->audit);
  r.Object("rentals", &out->rentals);
  return r.Finish();
}

json ToJson(const SignedCheckpoint& v) {
  return {{"seq", v.seq}, {"hash", v.hash}, {"at", v.at}, {"signature", v.signature}};
}
Status FromJson(const json& j, SignedCheckpoint* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("seq", &out->seq);
  r.String("hash", &out->hash);
  r.Int("at", &out->at);
  r.String("signature", &out->signature);
  return r.Finish();
}

json ToJson(const AuditCheckpoints& v) {
  return {{"public_key", v.public_key},
          {"audit", ArrayJson(v.audit)},
          {"rentals", ArrayJson(v.rentals)}};
}
Status FromJson(const json& j, AuditCheckpoints* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("public_key", &out->public_key);
  r.Array("audit", &out->audit);
  r.Array("rentals", &out->rentals);
  return r.Finish();
}

json ToJson(const ChainRental& v) {
  return {{"seq", v.seq},
          {"dataset_id", v.dataset_id},
          {"consumer_id", v.consumer_id},
          {"start", v.start},
          {"end", v.end},
          {"created_at", v.created_at},
          {"prev_hash", v.prev_hash},
          {"hash", v.hash},
          {"signature", v.signature}};
}
Status FromJson(const json& j, ChainRental* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Int("seq", &out->seq);
  r.Int("dataset_id", &out->dataset_id);
  r.Int("consumer_id", &out->consumer_id);
  r.Int("start", &out->start);
  r.Int("end", &out->end);
  r.Int("created_at", &out->created_at);
  r.String("prev_hash", &out->prev_hash);
  r.String("hash", &out->hash);
  r.String("signature", &out->signature);
  return r.Finish();
}

json ToJson(const ChainRentalList& v) {
  json j = {{"rentals", ArrayJson(v.rentals)}};
  if (v.next_after) j["next_after"] = *v.next_after;
  return j;
}
Status FromJson(const json& j, ChainRentalList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("rentals", &out->rentals);
  r.OptionalInt("next_after", &out->next_after);
  return r.Finish();
}

// ---- Key broker --------------------------------------------------------------

json ToJson(const KbsAuthRequest& v) {
  return {{"credential", v.credential}};
}
Status FromJson(const json& j, KbsAuthRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("credential", &out->credential);
  return r.Finish();
}

json ToJson(const KbsAuthResponse& v) {
  return {{"nonce", v.nonce}, {"expires_at", v.expires_at}, {"job", v.job}};
}
Status FromJson(const json& j, KbsAuthResponse* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("nonce", &out->nonce);
  r.Int("expires_at", &out->expires_at);
  r.String("job", &out->job);
  return r.Finish();
}

json ToJson(const KbsAttestRequest& v) {
  return {{"credential", v.credential},
          {"nonce", v.nonce},
          {"quote", v.quote},
          {"tee_pubkey", v.tee_pubkey}};
}
Status FromJson(const json& j, KbsAttestRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("credential", &out->credential);
  r.String("nonce", &out->nonce);
  r.String("quote", &out->quote);
  r.String("tee_pubkey", &out->tee_pubkey);
  return r.Finish();
}

// tcb_status is optional in docs/api.yaml and a string when present, so an
// unknown status ("") is left out rather than sent as null.
json ToJson(const KbsAttestResponse& v) {
  json j = {
      {"session", v.session}, {"expires_at", v.expires_at}, {"simulated_tee", v.simulated_tee}};
  if (!v.tcb_status.empty()) j["tcb_status"] = v.tcb_status;
  return j;
}
Status FromJson(const json& j, KbsAttestResponse* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("session", &out->session);
  r.Int("expires_at", &out->expires_at);
  r.Bool("simulated_tee", &out->simulated_tee);
  // The plane has sent null for an unknown status (verdict.value(..., json()));
  // it means the same as absent.
  r.NullableString("tcb_status", &out->tcb_status);
  return r.Finish();
}

json ToJson(const AgentReportRequest& v) {
  json j = {{"state", v.state}};
  if (!v.reason.empty()) j["reason"] = v.reason;
  return j;
}
Status FromJson(const json& j, AgentReportRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("state", &out->state);
  r.OptionalString("reason", &out->reason);
  return r.Finish();
}

json ToJson(const AgentJobDataset& v) {
  return {{"name", v.name},
          {"mount_path", v.mount_path},
          {"location", v.location},
          {"key_id", v.key_id}};
}
Status FromJson(const json& j, AgentJobDataset* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("mount_path", &out->mount_path);
  r.String("location", &out->location);
  r.String("key_id", &out->key_id);
  return r.Finish();
}

json ToJson(const AgentJob& v) {
  return {{"job_id", v.job_id},
          {"spec", v.spec},
          {"image_digest", v.image_digest},
          {"deadline", v.deadline},
          {"datasets", ArrayJson(v.datasets)}};
}
Status FromJson(const json& j, AgentJob* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("job_id", &out->job_id);
  r.String("spec", &out->spec);
  r.String("image_digest", &out->image_digest);
  r.Int("deadline", &out->deadline);
  r.Array("datasets", &out->datasets);
  return r.Finish();
}

json ToJson(const AgentOutputReceipt& v) {
  return {{"job", v.job}, {"state", v.state}, {"size", v.size}, {"digest", v.digest}};
}
Status FromJson(const json& j, AgentOutputReceipt* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("job", &out->job);
  r.String("state", &out->state);
  r.Int("size", &out->size);
  r.String("digest", &out->digest);
  return r.Finish();
}

json ToJson(const ScriptFile& v) {
  return {{"name", v.name}, {"content_base64", v.content_base64}};
}
Status FromJson(const json& j, ScriptFile* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("content_base64", &out->content_base64);
  return r.Finish();
}

json ToJson(const ScriptJobDataset& v) {
  json j = {{"name", v.name}};
  if (!v.mount_path.empty()) j["mountPath"] = v.mount_path;
  return j;
}
Status FromJson(const json& j, ScriptJobDataset* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.OptionalString("mountPath", &out->mount_path);
  return r.Finish();
}

json ToJson(const ScriptJobResources& v) {
  json j = json::object();
  if (v.cpus) j["cpus"] = *v.cpus;
  if (v.memory_mib) j["memoryMiB"] = *v.memory_mib;
  if (v.timeout_seconds) j["timeoutSeconds"] = *v.timeout_seconds;
  if (v.output_max_mib) j["outputMaxMiB"] = *v.output_max_mib;
  return j;
}
Status FromJson(const json& j, ScriptJobResources* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.OptionalNumber("cpus", &out->cpus);
  r.OptionalInt("memoryMiB", &out->memory_mib);
  r.OptionalInt("timeoutSeconds", &out->timeout_seconds);
  r.OptionalInt("outputMaxMiB", &out->output_max_mib);
  return r.Finish();
}

json ToJson(const ScriptJobRequest& v) {
  json j = {{"base", v.base},
            {"script", ToJson(v.script)},
            {"datasets", ArrayJson(v.datasets)},
            {"args", v.args}};
  if (!v.name.empty()) j["name"] = v.name;
  if (v.resources) j["resources"] = ToJson(*v.resources);
  return j;
}
Status FromJson(const json& j, ScriptJobRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.OptionalString("name", &out->name);
  r.String("base", &out->base);
  r.Object("script", &out->script);
  r.Array("datasets", &out->datasets);
  r.OptionalStringArray("args", &out->args);
  r.OptionalObject("resources", &out->resources);
  return r.Finish();
}

json ToJson(const ScriptBaseInfo& v) {
  return {{"name", v.name}, {"image", v.image}, {"command", v.command}};
}
Status FromJson(const json& j, ScriptBaseInfo* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.String("image", &out->image);
  r.StringArray("command", &out->command);
  return r.Finish();
}

json ToJson(const BaseList& v) {
  return {{"bases", ArrayJson(v.bases)}};
}
Status FromJson(const json& j, BaseList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("bases", &out->bases);
  return r.Finish();
}

// ---- Explore sessions --------------------------------------------------------

json ToJson(const ExploreSessionDataset& v) {
  return {{"name", v.name}, {"sample_version", v.sample_version}};
}
Status FromJson(const json& j, ExploreSessionDataset* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("name", &out->name);
  r.Int("sample_version", &out->sample_version);
  return r.Finish();
}

json ToJson(const ExploreSession& v) {
  json j = {{"id", v.id},
            {"owner", v.owner},
            {"backend", v.backend},
            {"state", v.state},
            {"datasets", ArrayJson(v.datasets)},
            {"idle_timeout_seconds", v.idle_timeout_seconds},
            {"created_at", v.created_at},
            {"last_activity_at", v.last_activity_at},
            {"stop_reason", v.stop_reason},
            {"url", v.url}};
  if (v.stopped_at) j["stopped_at"] = *v.stopped_at;
  return j;
}
Status FromJson(const json& j, ExploreSession* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("id", &out->id);
  r.String("owner", &out->owner);
  r.String("backend", &out->backend);
  r.String("state", &out->state);
  r.Array("datasets", &out->datasets);
  r.Int("idle_timeout_seconds", &out->idle_timeout_seconds);
  r.Int("created_at", &out->created_at);
  r.Int("last_activity_at", &out->last_activity_at);
  r.OptionalInt("stopped_at", &out->stopped_at);
  r.OptionalString("stop_reason", &out->stop_reason);
  r.OptionalString("url", &out->url);
  return r.Finish();
}

json ToJson(const ExploreSessionList& v) {
  return {{"sessions", ArrayJson(v.sessions)}};
}
Status FromJson(const json& j, ExploreSessionList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("sessions", &out->sessions);
  return r.Finish();
}

json ToJson(const StartExploreRequest& v) {
  json j = json::object();
  if (v.datasets) j["datasets"] = *v.datasets;
  if (v.idle_timeout_seconds) j["idle_timeout_seconds"] = *v.idle_timeout_seconds;
  return j;
}
Status FromJson(const json& j, StartExploreRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  // Read through OptionalStringArray so "datasets" is a known field even when absent.
  std::vector<std::string> datasets;
  r.OptionalStringArray("datasets", &datasets);
  if (j.is_object() && j.contains("datasets")) out->datasets = std::move(datasets);
  r.OptionalInt("idle_timeout_seconds", &out->idle_timeout_seconds);
  return r.Finish();
}

json ToJson(const ExploreLogin& v) {
  return {{"url", v.url}, {"expires_at", v.expires_at}};
}
Status FromJson(const json& j, ExploreLogin* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("url", &out->url);
  r.Int("expires_at", &out->expires_at);
  return r.Finish();
}

// ---- Ledger and wallets --------------------------------------------------------

json ToJson(const LedgerInfo& v) {
  json j = {{"backend", v.backend}};
  if (v.chain_id) j["chain_id"] = *v.chain_id;
  if (v.contract) j["contract"] = *v.contract;
  if (v.confirmations) j["confirmations"] = *v.confirmations;
  if (v.rpc) j["rpc"] = *v.rpc;
  if (v.plane_id) j["plane_id"] = *v.plane_id;
  if (v.indexed_through) j["indexed_through"] = *v.indexed_through;
  if (v.last_sync_error) j["last_sync_error"] = *v.last_sync_error;
  return j;
}
Status FromJson(const json& j, LedgerInfo* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("backend", &out->backend);
  r.OptionalInt("chain_id", &out->chain_id);
  r.OptionalStr("contract", &out->contract);
  r.OptionalInt("confirmations", &out->confirmations);
  r.OptionalStr("rpc", &out->rpc);
  r.OptionalStr("plane_id", &out->plane_id);
  r.OptionalInt("indexed_through", &out->indexed_through);
  r.OptionalStr("last_sync_error", &out->last_sync_error);
  return r.Finish();
}

json ToJson(const LedgerDataset& v) {
  return {{"dataset", v.dataset},
          {"chain_dataset_id", v.chain_dataset_id},
          {"chain_id", v.chain_id},
          {"contract", v.contract}};
}
Status FromJson(const json& j, LedgerDataset* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("dataset", &out->dataset);
  r.String("chain_dataset_id", &out->chain_dataset_id);
  r.Int("chain_id", &out->chain_id);
  r.String("contract", &out->contract);
  return r.Finish();
}

json ToJson(const WalletChallengeRequest& v) {
  return {{"address", v.address}};
}
Status FromJson(const json& j, WalletChallengeRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("address", &out->address);
  return r.Finish();
}

json ToJson(const WalletChallenge& v) {
  return {{"message", v.message}, {"nonce", v.nonce}, {"expires_at", v.expires_at}};
}
Status FromJson(const json& j, WalletChallenge* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("message", &out->message);
  r.String("nonce", &out->nonce);
  r.Int("expires_at", &out->expires_at);
  return r.Finish();
}

json ToJson(const WalletLinkRequest& v) {
  return {{"address", v.address}, {"nonce", v.nonce}, {"signature", v.signature}};
}
Status FromJson(const json& j, WalletLinkRequest* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("address", &out->address);
  r.String("nonce", &out->nonce);
  r.String("signature", &out->signature);
  return r.Finish();
}

json ToJson(const Wallet& v) {
  return {{"address", v.address}, {"user", v.user}, {"linked_at", v.linked_at}};
}
Status FromJson(const json& j, Wallet* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.String("address", &out->address);
  r.String("user", &out->user);
  r.Int("linked_at", &out->linked_at);
  return r.Finish();
}

json ToJson(const WalletList& v) {
  return {{"wallets", ArrayJson(v.wallets)}};
}
Status FromJson(const json& j, WalletList* out, Decode mode, std::string_view where) {
  FieldReader r(j, mode, where);
  r.Array("wallets", &out->wallets);
  return r.Finish();
}

}  // namespace cce::api
