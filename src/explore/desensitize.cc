#include "explore/desensitize.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <queue>
#include <system_error>
#include <unordered_map>

#include "explore/desensitize_rules.h"
#include "explore/tabular.h"

namespace cce::explore {
namespace {

namespace fs = std::filesystem;
using internal::ColumnRule;
using internal::KeyedHash;

constexpr size_t kUtilityExact = 65536;  // distinct keys kept exactly per column
constexpr size_t kUtilityBuckets = 4096;
constexpr size_t kTopKDistinct = 1 << 20;
constexpr int kHistogramBins = 20;
constexpr uint64_t kProgressRows = 8192;
constexpr double kUtilitySourceBytes = 16e6;
constexpr uint64_t kUtilityStream = 0x7574696c69747900ULL;  // "utility

uint64_t Mix(uint64_t x) {  // SplitMix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Fnv(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// The row's sampling draw in [0, 1): a function of the seed, the file's
// relative path and the row's index only, so every pass (and every run with
// the same seed) picks the same rows.
double Draw(uint64_t seed, uint64_t path_hash, uint64_t row) {
  const uint64_t h = Mix(seed ^ Mix(path_hash ^ Mix(row)));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// One side (source or sample) of a column's utility figure, by level-0 key:
// exact up to kUtilityExact distinct keys, then hash buckets.
struct Dist {
  StringMap<uint64_t> exact;
  std::vector<uint64_t> buckets;
  uint64_t total = 0;

  void Add(std::string_view key) {
    ++total;
    if (!buckets.empty()) {
      ++buckets[StringHash{}(key) % kUtilityBuckets];
      return;
    }
    auto it = exact.find(key);
    if (it != exact.end()) {
      ++it->second;
      return;
    }
    if (exact.size() < kUtilityExact) {
      exact.emplace(key, 1);
      return;
    }
    Fold();
    ++buckets[StringHash{}(key) % kUtilityBuckets];
  }
  // Adds one to `key` and returns its counter while counts are exact (stable:
  // unordered_map values do not move on rehash), nullptr once bucketed.
  uint64_t* AddExact(std::string_view key) {
    Add(key);
    if (!buckets.empty()) return nullptr;
    return &exact.find(key)->second;
  }
  void Fold() {
    if (!buckets.empty()) return;
    buckets.assign(kUtilityBuckets, 0);
    for (const auto& [k, n] : exact) buckets[StringHash{}(k) % kUtilityBuckets] += n;
    exact.clear();
  }
};

// The source side of the utility figure sees every row, so its per-cell cost
// bounds throughput: a direct-mapped cache from a cell's raw text to its
// counter skips the column action and the map lookup for repeated values.
class UtilityMemo {
 public:
  static constexpr size_t kSlots = 4096;
  // Returns the cached counter for (kind, raw), or nullptr.
  uint64_t* Find(ValueKind kind, std::string_view raw, size_t* slot) {
    uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(kind);
    for (char c : raw) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    *slot = static_cast<size_t>((h ^ (h >> 29)) % kSlots);
    Slot& e = slots_[*slot];
    if (e.counter != nullptr && e.kind == kind && e.raw == raw) return e.counter;
    return nullptr;
  }
  void Put(size_t slot, ValueKind kind, std::string_view raw, uint64_t* counter) {
    if (raw.size() > 64) return;
    Slot& e = slots_[slot];
    e.kind = kind;
    e.raw.assign(raw);
    e.counter = counter;
  }
  void Clear() {
    for (Slot& e : slots_) e.counter = nullptr;
  }

 private:
  struct Slot {
    std::string raw;
    ValueKind kind = ValueKind::kAbsent;
    uint64_t* counter = nullptr;
  };
  std::vector<Slot> slots_ = std::vector<Slot>(kSlots);
};

double Tvd(const std::vector<double>& p, const std::vector<double>& q) {
  double d = 0;
  for (size_t i = 0; i < p.size(); ++i) d += std::fabs(p[i] - q[i]);
  return d / 2;
}

bool ParseDouble(std::string_view s, double* out) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+') ++b;
  auto r = std::from_chars(b, e, *out);
  return r.ec == std::errc() && r.ptr == e && std::isfinite(*out);
}

std::string Percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", f * 100);
  return buf;
}

struct SourceFile {
  std::string rel;
  std::string path;
  TableFormat format = TableFormat::kCsv;
  uint64_t size = 0;
  uint64_t path_hash = 0;
};

// A level-0 equivalence class: one file, one level-0 key per quasi-identifier.
struct Class {
  uint32_t file = 0;
  std::vector<uint32_t> qi;  // ids into the quasi-identifier's key dictionary
  uint64_t count = 0;
  std::vector<uint64_t> sensitive;  // distinct sensitive keys' hashes, at most l
};

struct Agg {
  uint64_t count = 0;
  std::vector<uint64_t> sensitive;
};

void AddSensitive(std::vector<uint64_t>& set, uint64_t h, size_t cap) {
  if (set.size() >= cap) return;
  if (std::find(set.begin(), set.end(), h) == set.end()) set.push_back(h);
}

struct Selected {
  double draw = 0;
  uint32_t file = 0;
  uint64_t row = 0;
  int64_t cls = -1;
  uint64_t sensitive = 0;
  bool operator<(const Selected& o) const {
    if (draw != o.draw) return draw < o.draw;
    if (file != o.file) return file < o.file;
    return row < o.row;
  }
};

// Maps one open reader's columns to the policy's rules.
struct Schema {
  size_t mapped = 0;
  std::vector<int> rule_of;      // per reader column
  std::vector<int> col_of_rule;  // per rule: reader column, -1 if the file lacks it
  std::vector<size_t> out_cols;  // reader columns written, in reader order
  std::vector<std::string> out_names;
};

class Run {
 public:
  Run(const SamplePolicy& policy, std::string src, const ProgressFn& progress)
      : policy_(policy), src_(std::move(src)), progress_(progress) {}

  StatusOr<Report> Go(const std::string& out_dir);

 private:
  Status ListFiles();
  Status Sync(const TableReader& r, Schema& s);
  Status CellKey(const TableReader& r, const Schema& s, size_t rule, const SourceFile& f,
                 uint64_t row, bool no_shift, std::string* key);
  Status Pass1();
  StatusOr<uint32_t> QiId(size_t q, const std::string& key);
  StatusOr<int64_t> ClassOf(const TableReader& r, const Schema& s, uint32_t file,
                            const SourceFile& f, uint64_t row, bool intern, uint64_t* sens);
  const std::vector<uint32_t>& Coarse(size_t q, int level);
  uint64_t Evaluate(const std::vector<int>& levels, StringMap<Agg>* out);
  Status ChooseLevels();
  Status Pass2(const std::string& tmp);
  void Progress(uint64_t file_bytes, uint64_t files_done);
  void FillReport();

  const SamplePolicy& policy_;
  const std::string src_;
  const ProgressFn& progress_;
  std::optional<KeyedHash> mac_;        // `hash` columns
  std::optional<KeyedHash> shift_mac_;  // date shifts
  std::vector<ColumnRule> rules_;
  std::unordered_map<std::string, size_t> rule_index_;
  std::vector<uint8_t> seen_;
  std::vector<SourceFile> files_;
  uint64_t bytes_total_ = 0;
  uint64_t bytes_base_ = 0;
  int passes_ = 1;
  Report report_;
  bool rows_counted_ = false;

  // rows: count
  std::vector<std::vector<uint64_t>> selected_rows_;  // per file, sorted
  // k-anonymity
  const KAnonymity* kanon_ = nullptr;
  std::vector<size_t> qi_rules_;
  int sensitive_rule_ = -1;
  size_t l_cap_ = 0;
  std::vector<StringMap<uint32_t>> qi_dict_;
  std::vector<std::vector<std::string>> qi_keys_;
  std::vector<std::vector<std::vector<uint32_t>>> coarse_;  // [q][level] -> ids
  StringMap<uint32_t> class_index_;
  std::vector<Class> classes_;
  std::vector<int> chosen_;  // per quasi-identifier
  StringMap<Agg> coarse_table_;
  std::vector<int> level_of_rule_;
  // top_k counts (pass 1)
  std::vector<StringMap<uint64_t>> top_counts_;
  // utility
  std::vector<Dist> src_dist_, out_dist_;
  std::vector<UtilityMemo> memo_;
  double utility_rate_ = 1;  // fraction of source rows the utility's source side counts
  std::vector<StringMap<std::pair<std::string, ValueKind>>> render_cache_;
  std::string key_, key2_, ck_;
};

Status Run::ListFiles() {
  std::error_code ec;
  const fs::path root(src_);
  if (!fs::is_directory(root, ec)) return InvalidArgument(src_ + ": not a directory");
  std::vector<std::string> rels;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_symlink(ec)) return InvalidArgument(src_ + "/" + rel + ": a symlink (not followed)");
    if (e.is_directory(ec)) continue;
    if (!e.is_regular_file(ec)) return InvalidArgument(src_ + "/" + rel + ": not a regular file");
    auto format = TableFormatForPath(rel);
    if (!format.ok()) {
      return InvalidArgument(src_ + "/" + rel +
                             ": not a .csv or .jsonl file (a sample holds only tables; move it "
                             "out of the source directory)");
    }
    rels.push_back(rel);
  }
  if (ec) return ErrnoStatus("walk " + src_, ec.value());
  std::sort(rels.begin(), rels.end());
  if (rels.empty()) return InvalidArgument(src_ + ": no .csv or .jsonl files");
  for (const std::string& rel : rels) {
    SourceFile f;
    f.rel = rel;
    f.path = (root / rel).string();
    f.format = *TableFormatForPath(rel);
    f.size = fs::file_size(f.path, ec);
    if (ec) return ErrnoStatus(f.path, ec.value());
    f.path_hash = Fnv(rel);
    bytes_total_ += f.size;
    files_.push_back(std::move(f));
  }
  report_.files = files_.size();
  report_.bytes_in = bytes_total_;
  return Status::Ok();
}

Status Run::Sync(const TableReader& r, Schema& s) {
  const auto& cols = r.columns();
  if (s.col_of_rule.empty()) s.col_of_rule.assign(rules_.size(), -1);
  for (size_t i = s.mapped; i < cols.size(); ++i) {
    auto it = rule_index_.find(cols[i]);
    if (it == rule_index_.end()) {
      return InvalidArgument(r.Where(i) + ": column '" + cols[i] + "' is not declared in " +
                             policy_.source +
                             " (every column must be declared; {action: drop} leaves it out)");
    }
    const size_t rule = it->second;
    seen_[rule] = 1;
    s.rule_of.push_back(static_cast<int>(rule));
    s.col_of_rule[rule] = static_cast<int>(i);
    if (rules_[rule].policy().action != ColumnAction::kDrop) {
      s.out_cols.push_back(i);
      s.out_names.push_back(cols[i]);
    }
  }
  s.mapped = cols.size();
  return Status::Ok();
}

Status Run::CellKey(const TableReader& r, const Schema& s, size_t rule, const SourceFile& f,
                    uint64_t row, bool no_shift, std::string* key) {
  const ColumnRule& cr = rules_[rule];
  const int col = s.col_of_rule[rule];
  const Value v = col >= 0 ? r.values()[static_cast<size_t>(col)] : Value{};
  std::string_view entity;
  std::string row_id;
  const ColumnPolicy& p = cr.policy();
  if (p.shift_days_max > 0 && !no_shift) {
    if (!p.entity.empty()) {
      const int ec = s.col_of_rule[rule_index_.at(p.entity)];
      if (ec >= 0) entity = r.values()[static_cast<size_t>(ec)].text;
    }
    if (entity.empty()) row_id = f.rel + "\n" + std::to_string(row);
  }
  return cr.Key(v, entity, row_id, no_shift, key, &r, static_cast<size_t>(col < 0 ? 0 : col));
}

void Run::Progress(uint64_t file_bytes, uint64_t files_done) {
  if (progress_) {
    progress_(bytes_base_ + file_bytes, bytes_total_ * static_cast<uint64_t>(passes_), files_done,
              files_.size() * static_cast<uint64_t>(passes_));
  }
}

StatusOr<uint32_t> Run::QiId(size_t q, const std::string& key) {
  auto it = qi_dict_[q].find(key);
  if (it != qi_dict_[q].end()) return it->second;
  const uint32_t id = static_cast<uint32_t>(qi_keys_[q].size());
  qi_dict_[q].emplace(key, id);
  qi_keys_[q].push_back(key);
  return id;
}

StatusOr<int64_t> Run::ClassOf(const TableReader& r, const Schema& s, uint32_t file,
                               const SourceFile& f, uint64_t row, bool intern, uint64_t* sens) {
  ck_.assign(reinterpret_cast<const char*>(&file), sizeof file);
  std::vector<uint32_t> ids(qi_rules_.size());
  for (size_t q = 0; q < qi_rules_.size(); ++q) {
    RETURN_IF_ERROR(CellKey(r, s, qi_rules_[q], f, row, false, &key_));
    if (intern) {
      ASSIGN_OR_RETURN(ids[q], QiId(q, key_));
    } else {
      auto it = qi_dict_[q].find(key_);
      if (it == qi_dict_[q].end()) return int64_t{-1};
      ids[q] = it->second;
    }
    ck_.append(reinterpret_cast<const char*>(&ids[q]), sizeof ids[q]);
  }
  *sens = 0;
  if (sensitive_rule_ >= 0) {
    RETURN_IF_ERROR(CellKey(r, s, static_cast<size_t>(sensitive_rule_), f, row, false, &key_));
    *sens = Mix(Fnv(key_));
  }
  auto it = class_index_.find(ck_);
  if (it != class_index_.end()) return int64_t{it->second};
  if (!intern) return int64_t{-1};
  const uint32_t id = static_cast<uint32_t>(classes_.size());
  class_index_.emplace(ck_, id);
  classes_.push_back(Class{file, std::move(ids), 0, {}});
  return int64_t{id};
}

Status Run::Pass1() {
  const bool by_count = policy_.count > 0;
  std::priority_queue<Selected> heap;  // the `count` smallest draws
  for (uint32_t fi = 0; fi < files_.size(); ++fi) {
    const SourceFile& f = files_[fi];
    ASSIGN_OR_RETURN(auto reader, TableReader::OpenFile(f.path, f.rel, f.format));
    Schema s;
    RETURN_IF_ERROR(Sync(*reader, s));
    uint64_t row = 0;
    for (;; ++row) {
      ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      if (reader->columns().size() != s.mapped) RETURN_IF_ERROR(Sync(*reader, s));
      if (row % kProgressRows == 0) Progress(reader->bytes_consumed(), fi);
      for (size_t t = 0; t < rules_.size(); ++t) {
        if (rules_[t].policy().action != ColumnAction::kTopK || s.col_of_rule[t] < 0) continue;
        RETURN_IF_ERROR(CellKey(*reader, s, t, f, row, true, &key_));
        if (key_[0] != 's') continue;
        auto& counts = top_counts_[t];
        auto it = counts.find(key_);
        if (it != counts.end()) {
          ++it->second;
        } else if (counts.size() >= kTopKDistinct) {
          return InvalidArgument(reader->Where(static_cast<size_t>(s.col_of_rule[t])) +
                                 ": column '" + rules_[t].policy().name + "' (top_k): more than " +
                                 std::to_string(kTopKDistinct) +
                                 " distinct values; use hash or drop");
        } else {
          counts.emplace(key_, 1);
        }
      }
      const double draw = Draw(policy_.seed, f.path_hash, row);
      const bool take = by_count || draw < policy_.rate;
      Selected sel{draw, fi, row, -1, 0};
      if (kanon_ != nullptr && take) {
        ASSIGN_OR_RETURN(sel.cls, ClassOf(*reader, s, fi, f, row, true, &sel.sensitive));
        if (!by_count) {
          Class& c = classes_[static_cast<size_t>(sel.cls)];
          ++c.count;
          AddSensitive(c.sensitive, sel.sensitive, l_cap_);
        }
      }
      if (by_count) {
        if (heap.size() < policy_.count) {
          heap.push(sel);
        } else if (sel < heap.top()) {
          heap.pop();
          heap.push(sel);
        }
      }
    }
    report_.rows_in += row;
    FileReport fr;
    fr.path = f.rel;
    fr.rows_in = row;
    report_.file_reports.push_back(fr);
    bytes_base_ += f.size;
    Progress(0, fi + 1);
  }
  rows_counted_ = true;
  if (by_count) {
    selected_rows_.assign(files_.size(), {});
    while (!heap.empty()) {
      const Selected& sel = heap.top();
      selected_rows_[sel.file].push_back(sel.row);
      if (sel.cls >= 0) {
        Class& c = classes_[static_cast<size_t>(sel.cls)];
        ++c.count;
        AddSensitive(c.sensitive, sel.sensitive, l_cap_);
      }
      heap.pop();
    }
    for (auto& v : selected_rows_) std::sort(v.begin(), v.end());
  }
  // top_k: the k most frequent values; ties go to the smaller value.
  for (size_t t = 0; t < rules_.size(); ++t) {
    if (rules_[t].policy().action != ColumnAction::kTopK) continue;
    std::vector<std::pair<uint64_t, std::string>> v;
    v.reserve(top_counts_[t].size());
    for (auto& [k, n] : top_counts_[t]) v.emplace_back(n, k);
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    const size_t k = std::min(v.size(), static_cast<size_t>(rules_[t].policy().top_k));
    for (size_t i = 0; i < k; ++i) rules_[t].top().insert(v[i].second);
    top_counts_[t].clear();
  }
  return Status::Ok();
}

const std::vector<uint32_t>& Run::Coarse(size_t q, int level) {
  auto& per_level = coarse_[q];
  if (per_level.size() <= static_cast<size_t>(level))
    per_level.resize(static_cast<size_t>(level) + 1);
  std::vector<uint32_t>& ids = per_level[static_cast<size_t>(level)];
  if (ids.size() == qi_keys_[q].size()) return ids;
  StringMap<uint32_t> dict;
  std::string out;
  ValueKind kind = ValueKind::kString;
  const ColumnRule& rule = rules_[qi_rules_[q]];
  ids.clear();
  for (const std::string& key : qi_keys_[q]) {
    // The hash of a value is a function of the value: compare keys, not MACs.
    if (rule.policy().action == ColumnAction::kHash) {
      out = key;
    } else {
      rule.Render(key, level, &out, &kind);
      out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(kind)));
    }
    auto it = dict.find(out);
    if (it == dict.end()) it = dict.emplace(out, static_cast<uint32_t>(dict.size())).first;
    ids.push_back(it->second);
  }
  return ids;
}

uint64_t Run::Evaluate(const std::vector<int>& levels, StringMap<Agg>* out) {
  out->clear();
  std::string ck;
  std::vector<const std::vector<uint32_t>*> maps;
  for (size_t q = 0; q < qi_rules_.size(); ++q) maps.push_back(&Coarse(q, levels[q]));
  for (const Class& c : classes_) {
    if (c.count == 0) continue;
    ck.assign(reinterpret_cast<const char*>(&c.file), sizeof c.file);
    for (size_t q = 0; q < c.qi.size(); ++q) {
      const uint32_t id = (*maps[q])[c.qi[q]];
      ck.append(reinterpret_cast<const char*>(&id), sizeof id);
    }
    Agg& a = (*out)[ck];
    a.count += c.count;
    for (uint64_t h : c.sensitive) AddSensitive(a.sensitive, h, l_cap_);
  }
  uint64_t suppressed = 0;
  for (const auto& [k, a] : *out) {
    if (a.count < static_cast<uint64_t>(kanon_->k) || a.sensitive.size() < l_cap_) {
      suppressed += a.count;
    }
  }
  return suppressed;
}

// Samarati's search: the lowest total height (sum of levels) at which some
// level vector meets k (and l) with at most max_suppression of the sampled
// rows suppressed; among that height's vectors, the one suppressing fewest
// rows (then the lexicographically smallest). Feasibility is monotone in the
// lattice (coarsening only merges classes), so the height is binary-searched.
Status Run::ChooseLevels() {
  uint64_t sampled = 0;
  for (const Class& c : classes_) sampled += c.count;
  const uint64_t budget = static_cast<uint64_t>(
      std::floor(kanon_->max_suppression * static_cast<double>(sampled) + 1e-9));
  std::vector<int> max_level;
  int total = 0;
  for (size_t q : qi_rules_) {
    max_level.push_back(rules_[q].levels() - 1);
    total += rules_[q].levels() - 1;
  }
  StringMap<Agg> table;
  // Lattice vectors evaluated; bounded so that many quasi-identifiers with
  // deep hierarchies fail clearly instead of running for hours.
  constexpr uint64_t kMaxEvaluations = 200000;
  uint64_t evaluations = 0;
  // Best vector at height h, or none.
  auto at_height = [&](int h, std::vector<int>* best, uint64_t* best_supp) {
    bool found = false;
    std::vector<int> v(max_level.size(), 0);
    std::function<void(size_t, int)> rec = [&](size_t i, int left) {
      if (i + 1 == v.size()) {
        if (left > max_level[i]) return;
        v[i] = left;
        if (++evaluations > kMaxEvaluations) return;
        const uint64_t s = Evaluate(v, &table);
        if (s <= budget && (!found || s < *best_supp)) {
          found = true;
          *best = v;
          *best_supp = s;
        }
        return;
      }
      for (int x = 0; x <= std::min(left, max_level[i]); ++x) {
        v[i] = x;
        rec(i + 1, left - x);
      }
    };
    rec(0, h);
    return found;
  };
  std::vector<int> best;
  uint64_t best_supp = 0;
  if (!at_height(total, &best, &best_supp)) {
    std::vector<int> top = max_level;
    const uint64_t s = Evaluate(top, &table);
    return FailedPrecondition(
        policy_.source + ": k_anonymity: no generalization of the quasi-identifiers meets k=" +
        std::to_string(kanon_->k) + (l_cap_ ? " and l=" + std::to_string(l_cap_) : std::string()) +
        " with at most " + Percent(kanon_->max_suppression) + " of the " + std::to_string(sampled) +
        " sampled rows suppressed (the coarsest still suppresses " + std::to_string(s) +
        "); raise max_suppression, sample more rows, or declare coarser generalizations");
  }
  int lo = 0, hi = total;  // hi is feasible
  std::vector<int> cand;
  uint64_t cand_supp = 0;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (at_height(mid, &cand, &cand_supp)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  at_height(hi, &best, &best_supp);
  if (evaluations > kMaxEvaluations || best.empty()) {
    return FailedPrecondition(
        policy_.source + ": k_anonymity: the generalization lattice is too large to search (" +
        std::to_string(qi_rules_.size()) + " quasi-identifiers); declare fewer or coarser ones");
  }
  chosen_ = best;
  Evaluate(chosen_, &coarse_table_);
  for (size_t q = 0; q < qi_rules_.size(); ++q) level_of_rule_[qi_rules_[q]] = chosen_[q];
  return Status::Ok();
}

Status Run::Pass2(const std::string& tmp) {
  const bool by_count = policy_.count > 0;
  const uint64_t first_file = files_.size() * static_cast<uint64_t>(passes_ - 1);
  std::vector<std::string> storage;
  std::vector<Value> out_values;
  for (uint32_t fi = 0; fi < files_.size(); ++fi) {
    const SourceFile& f = files_[fi];
    ASSIGN_OR_RETURN(auto reader, TableReader::OpenFile(f.path, f.rel, f.format));
    Schema s;
    RETURN_IF_ERROR(Sync(*reader, s));
    const fs::path out_path = fs::path(tmp) / f.rel;
    std::error_code ec;
    fs::create_directories(out_path.parent_path(), ec);
    if (ec) return ErrnoStatus("mkdir " + out_path.parent_path().string(), ec.value());
    ASSIGN_OR_RETURN(auto writer, TableWriter::Create(out_path.string(), f.format, s.out_names));
    const std::vector<uint64_t>* picks = by_count ? &selected_rows_[fi] : nullptr;
    size_t next_pick = 0;
    uint64_t row = 0, out_rows = 0;
    for (;; ++row) {
      ASSIGN_OR_RETURN(bool more, reader->Next());
      if (!more) break;
      if (reader->columns().size() != s.mapped) RETURN_IF_ERROR(Sync(*reader, s));
      if (row % kProgressRows == 0) Progress(reader->bytes_consumed(), first_file + fi);
      // The source side of the utility figure: every row of a source up to
      // kUtilitySourceBytes, else a uniform subsample of about that size
      // (drawn independently of the sample).
      const bool reference = utility_rate_ >= 1 ||
                             Draw(~policy_.seed, f.path_hash ^ kUtilityStream, row) < utility_rate_;
      for (size_t c : s.out_cols) {
        if (!reference) break;
        const size_t rule = static_cast<size_t>(s.rule_of[c]);
        if (!src_dist_[rule].buckets.empty()) {  // many distinct values: no cache
          RETURN_IF_ERROR(CellKey(*reader, s, rule, f, row, true, &key_));
          src_dist_[rule].Add(key_);
          continue;
        }
        const Value& v = reader->values()[c];
        size_t slot = 0;
        UtilityMemo& memo = memo_[rule];
        if (uint64_t* counter = memo.Find(v.kind, v.text, &slot)) {
          ++*counter;
          ++src_dist_[rule].total;
          continue;
        }
        RETURN_IF_ERROR(CellKey(*reader, s, rule, f, row, true, &key_));
        uint64_t* counter = src_dist_[rule].AddExact(key_);
        if (counter != nullptr) {
          memo.Put(slot, v.kind, v.text, counter);
        } else {
          memo.Clear();  // the counts went to buckets: the cached counters are gone
        }
      }
      bool take;
      if (by_count) {
        take = next_pick < picks->size() && (*picks)[next_pick] == row;
        if (take) ++next_pick;
      } else {
        take = Draw(policy_.seed, f.path_hash, row) < policy_.rate;
      }
      if (!take) continue;
      ++report_.rows_sampled;
      if (kanon_ != nullptr) {
        uint64_t sens = 0;
        ASSIGN_OR_RETURN(int64_t cls, ClassOf(*reader, s, fi, f, row, false, &sens));
        bool keep = false;
        if (cls >= 0) {
          const Class& c = classes_[static_cast<size_t>(cls)];
          ck_.assign(reinterpret_cast<const char*>(&c.file), sizeof c.file);
          for (size_t q = 0; q < c.qi.size(); ++q) {
            const uint32_t id = Coarse(q, chosen_[q])[c.qi[q]];
            ck_.append(reinterpret_cast<const char*>(&id), sizeof id);
          }
          auto it = coarse_table_.find(ck_);
          keep = it != coarse_table_.end() &&
                 it->second.count >= static_cast<uint64_t>(kanon_->k) &&
                 it->second.sensitive.size() >= l_cap_;
        }
        if (!keep) {
          ++report_.rows_suppressed;
          continue;
        }
      }
      if (storage.size() < s.out_cols.size()) storage.resize(s.out_cols.size());
      out_values.resize(s.out_cols.size());
      for (size_t i = 0; i < s.out_cols.size(); ++i) {
        const size_t rule = static_cast<size_t>(s.rule_of[s.out_cols[i]]);
        const bool shifts = rules_[rule].policy().shift_days_max > 0;
        if (shifts) {
          RETURN_IF_ERROR(CellKey(*reader, s, rule, f, row, true, &key2_));
          out_dist_[rule].Add(key2_);  // compared unshifted, like the source
        }
        RETURN_IF_ERROR(CellKey(*reader, s, rule, f, row, false, &key_));
        if (!shifts) out_dist_[rule].Add(key_);
        // Labels repeat: render each distinct key once (hashes are not cached).
        auto& cache = render_cache_[rule];
        auto hit = cache.find(key_);
        if (hit != cache.end()) {
          storage[i] = hit->second.first;
          out_values[i].kind = hit->second.second;
        } else {
          rules_[rule].Render(key_, level_of_rule_[rule], &storage[i], &out_values[i].kind);
          if (rules_[rule].policy().action != ColumnAction::kHash && cache.size() < kUtilityExact) {
            cache.emplace(key_, std::make_pair(storage[i], out_values[i].kind));
          }
        }
      }
      for (size_t i = 0; i < s.out_cols.size(); ++i) out_values[i].text = storage[i];
      RETURN_IF_ERROR(writer->Write(s.out_names, out_values));
      ++out_rows;
    }
    RETURN_IF_ERROR(writer->Close());
    if (!rows_counted_) {
      report_.rows_in += row;
      FileReport fr;
      fr.path = f.rel;
      fr.rows_in = row;
      report_.file_reports.push_back(fr);
    }
    report_.file_reports[fi].rows_out = out_rows;
    report_.rows_out += out_rows;
    bytes_base_ += f.size;
    Progress(0, first_file + fi + 1);
  }
  return Status::Ok();
}

void Run::FillReport() {
  Report& r = report_;
  r.suppression = r.rows_sampled
                      ? static_cast<double>(r.rows_suppressed) / static_cast<double>(r.rows_sampled)
                      : 0;
  if (kanon_ != nullptr) {
    r.k_requested = kanon_->k;
    r.l_requested = static_cast<int>(l_cap_);
    bool first = true;
    for (const auto& [k, a] : coarse_table_) {
      if (a.count < static_cast<uint64_t>(kanon_->k) || a.sensitive.size() < l_cap_) continue;
      ++r.classes;
      if (first || a.count < r.k_achieved) r.k_achieved = a.count;
      if (first || a.sensitive.size() < r.l_achieved) r.l_achieved = a.sensitive.size();
      first = false;
    }
    if (l_cap_ == 0) r.l_achieved = 0;
  }
  for (size_t t = 0; t < rules_.size(); ++t) {
    const ColumnRule& rule = rules_[t];
    ColumnReport c;
    c.name = rule.policy().name;
    c.action = std::string(ColumnActionName(rule.policy().action));
    c.level = level_of_rule_[t];
    c.generalization = rule.DescribeLevel(c.level);
    if (rule.policy().action != ColumnAction::kDrop) {
      Dist& a = src_dist_[t];
      Dist& b = out_dist_[t];
      if (!a.buckets.empty() || !b.buckets.empty()) {
        a.Fold();
        b.Fold();
        std::vector<double> p(kUtilityBuckets), q(kUtilityBuckets);
        for (size_t i = 0; i < kUtilityBuckets; ++i) {
          p[i] = a.total ? static_cast<double>(a.buckets[i]) / static_cast<double>(a.total) : 0;
          q[i] = b.total ? static_cast<double>(b.buckets[i]) / static_cast<double>(b.total) : 0;
          c.distinct_source += a.buckets[i] != 0;
          c.distinct_sample += b.buckets[i] != 0;
        }
        c.tvd = (a.total == 0 || b.total == 0) ? (a.total == b.total ? 0 : 1) : Tvd(p, q);
        c.tvd_basis = "hash-buckets";
      } else {
        // Categories as the sample shows them at the chosen level.
        StringMap<std::pair<uint64_t, uint64_t>> cats;
        std::string out;
        ValueKind kind = ValueKind::kString;
        auto category = [&](const std::string& key) {
          if (rule.policy().action == ColumnAction::kHash) return key;
          rule.Render(key, c.level, &out, &kind);
          return std::string(1, static_cast<char>('0' + static_cast<int>(kind))) + out;
        };
        for (const auto& [k, n] : a.exact) cats[category(k)].first += n;
        for (const auto& [k, n] : b.exact) cats[category(k)].second += n;
        for (const auto& [k, n] : cats) {
          c.distinct_source += n.first != 0;
          c.distinct_sample += n.second != 0;
        }
        // Many distinct numbers: compare histograms, not exact values.
        bool numeric = cats.size() > static_cast<size_t>(kHistogramBins);
        double lo = 0, hi = 0;
        bool any = false;
        for (const auto& [k, n] : cats) {
          if (!numeric) break;
          double x = 0;
          if (k.size() < 2 || !ParseDouble(std::string_view(k).substr(1), &x)) {
            numeric = false;
            break;
          }
          if (n.first == 0) continue;
          lo = any ? std::min(lo, x) : x;
          hi = any ? std::max(hi, x) : x;
          any = true;
        }
        std::vector<double> p, q;
        if (numeric && any && hi > lo) {
          p.assign(kHistogramBins, 0);
          q.assign(kHistogramBins, 0);
          for (const auto& [k, n] : cats) {
            double x = 0;
            ParseDouble(std::string_view(k).substr(1), &x);
            const double f = (x - lo) / (hi - lo) * kHistogramBins;
            const size_t bin = static_cast<size_t>(std::clamp(f, 0.0, kHistogramBins - 1.0));
            p[bin] += static_cast<double>(n.first);
            q[bin] += static_cast<double>(n.second);
          }
          c.tvd_basis = "histogram";
        } else {
          for (const auto& [k, n] : cats) {
            p.push_back(static_cast<double>(n.first));
            q.push_back(static_cast<double>(n.second));
          }
          c.tvd_basis = "categories";
        }
        for (double& x : p) x = a.total ? x / static_cast<double>(a.total) : 0;
        for (double& x : q) x = b.total ? x / static_cast<double>(b.total) : 0;
        c.tvd = (a.total == 0 || b.total == 0) ? (a.total == b.total ? 0 : 1) : Tvd(p, q);
      }
    }
    r.columns.push_back(std::move(c));
  }
}

StatusOr<Report> Run::Go(const std::string& out_dir) {
  // The output directory: absent or empty; written beside it, then renamed.
  std::error_code ec;
  const fs::path out(out_dir);
  if (fs::exists(fs::symlink_status(out, ec))) {
    if (!fs::is_directory(fs::symlink_status(out, ec)) || !fs::is_empty(out, ec)) {
      return AlreadyExists(out_dir + ": exists and is not an empty directory");
    }
  }
  fs::path parent = fs::absolute(out, ec).parent_path();
  if (!fs::is_directory(parent, ec)) return NotFound(parent.string() + ": no such directory");

  for (const ColumnPolicy& c : policy_.columns) {
    if (c.action == ColumnAction::kHash || c.shift_days_max > 0) {
      ASSIGN_OR_RETURN(crypto::SecretBytes secret, LoadSampleSecret(policy_));
      // One key per purpose (HKDF-SHA256 of the provider secret).
      crypto::SecretBytes hash_key(32), shift_key(32);
      RETURN_IF_ERROR(crypto::HkdfSha256(
          secret.span(), {}, crypto::AsBytes("cce4long sample hash v1"), hash_key.span()));
      RETURN_IF_ERROR(crypto::HkdfSha256(
          secret.span(), {}, crypto::AsBytes("cce4long sample date shift v1"), shift_key.span()));
      ASSIGN_OR_RETURN(KeyedHash h, KeyedHash::Create(hash_key.span()));
      ASSIGN_OR_RETURN(KeyedHash sh, KeyedHash::Create(shift_key.span()));
      mac_.emplace(std::move(h));
      shift_mac_.emplace(std::move(sh));
      break;
    }
  }
  rules_.reserve(policy_.columns.size());
  for (size_t i = 0; i < policy_.columns.size(); ++i) {
    rules_.emplace_back(&policy_.columns[i], mac_ ? &*mac_ : nullptr,
                        shift_mac_ ? &*shift_mac_ : nullptr);
    rule_index_[policy_.columns[i].name] = i;
  }
  seen_.assign(rules_.size(), 0);
  level_of_rule_.assign(rules_.size(), 0);
  top_counts_.resize(rules_.size());
  src_dist_.resize(rules_.size());
  out_dist_.resize(rules_.size());
  memo_.resize(rules_.size());
  render_cache_.resize(rules_.size());
  if (policy_.k_anonymity) {
    kanon_ = &*policy_.k_anonymity;
    for (const std::string& q : kanon_->quasi_identifiers) qi_rules_.push_back(rule_index_.at(q));
    if (kanon_->l_diversity) {
      sensitive_rule_ = static_cast<int>(rule_index_.at(kanon_->l_diversity->column));
      l_cap_ = static_cast<size_t>(kanon_->l_diversity->l);
    }
    qi_dict_.resize(qi_rules_.size());
    qi_keys_.resize(qi_rules_.size());
    coarse_.resize(qi_rules_.size());
  }
  bool has_top = false;
  for (const ColumnPolicy& c : policy_.columns) has_top |= c.action == ColumnAction::kTopK;

  RETURN_IF_ERROR(ListFiles());
  utility_rate_ =
      std::min(1.0, kUtilitySourceBytes / static_cast<double>(std::max<uint64_t>(bytes_total_, 1)));
  report_.utility_source_fraction = utility_rate_;
  const bool two_pass = kanon_ != nullptr || policy_.count > 0 || has_top;
  passes_ = two_pass ? 2 : 1;
  auto check_declared = [&]() -> Status {
    for (size_t i = 0; i < rules_.size(); ++i) {
      if (seen_[i]) continue;
      const ColumnPolicy& c = policy_.columns[i];
      return InvalidArgument(policy_.source + ":" + std::to_string(c.line) + ":" +
                             std::to_string(c.column) + ": columns." + c.name + ": no file under " +
                             src_ + " has this column");
    }
    return Status::Ok();
  };
  if (two_pass) {
    RETURN_IF_ERROR(Pass1());
    RETURN_IF_ERROR(check_declared());
    if (kanon_ != nullptr) RETURN_IF_ERROR(ChooseLevels());
  }

  const std::string name = out.filename().string();
  std::string tmpl = (parent / ("." + name + ".tmp-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp " + tmpl, errno);
  const std::string tmp = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (dir.empty()) return;
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{tmp};
  Status s = Pass2(tmp);
  if (s.ok()) s = check_declared();
  if (!s.ok()) return s;
  if (::chmod(tmp.c_str(), 0755) != 0) return ErrnoStatus("chmod " + tmp, errno);
  if (::rename(tmp.c_str(), out_dir.c_str()) != 0) {
    return ErrnoStatus("rename " + tmp + " to " + out_dir, errno);
  }
  cleanup.dir.clear();
  FillReport();
  return report_;
}

std::string FormatDouble(double v, int digits) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

nlohmann::json ReportToJson(const Report& r) {
  nlohmann::json cols = nlohmann::json::array();
  for (const ColumnReport& c : r.columns) {
    nlohmann::json j = {{"name", c.name},
                        {"action", c.action},
                        {"level", c.level},
                        {"generalization", c.generalization}};
    if (c.tvd >= 0) {
      j["utility"] = {{"tvd", c.tvd},
                      {"basis", c.tvd_basis},
                      {"distinct_source", c.distinct_source},
                      {"distinct_sample", c.distinct_sample}};
    }
    cols.push_back(std::move(j));
  }
  nlohmann::json files = nlohmann::json::array();
  for (const FileReport& f : r.file_reports) {
    files.push_back({{"path", f.path}, {"rows_in", f.rows_in}, {"rows_out", f.rows_out}});
  }
  nlohmann::json j = {{"files", files},
                      {"bytes_in", r.bytes_in},
                      {"rows_in", r.rows_in},
                      {"rows_sampled", r.rows_sampled},
                      {"rows_suppressed", r.rows_suppressed},
                      {"rows_out", r.rows_out},
                      {"suppression", r.suppression},
                      {"utility_source_fraction", r.utility_source_fraction},
                      {"columns", cols}};
  if (r.k_requested > 0) {
    j["k_anonymity"] = {
        {"k_requested", r.k_requested}, {"k_achieved", r.k_achieved}, {"classes", r.classes}};
    if (r.l_requested > 0) {
      j["l_diversity"] = {{"l_requested", r.l_requested}, {"l_achieved", r.l_achieved}};
    }
  }
  return j;
}

std::string ReportToText(const Report& r) {
  std::string t;
  t += "sample: " + std::to_string(r.files) + " file(s), " + std::to_string(r.rows_in) +
       " rows in, " + std::to_string(r.rows_sampled) + " sampled, " +
       std::to_string(r.rows_suppressed) + " suppressed (" + Percent(r.suppression) + "), " +
       std::to_string(r.rows_out) + " out\n";
  if (r.k_requested > 0) {
    t += "k-anonymity: k=" + std::to_string(r.k_requested) + " requested, " +
         std::to_string(r.k_achieved) + " achieved (" + std::to_string(r.classes) +
         " classes in the output)\n";
    if (r.l_requested > 0) {
      t += "l-diversity: l=" + std::to_string(r.l_requested) + " requested, " +
           (r.l_achieved >= static_cast<uint64_t>(r.l_requested) ? ">= " : "") +
           std::to_string(r.l_achieved) + " achieved\n";
    }
  }
  t += "columns (utility: total variation distance, source vs sample; 0 = same distribution):\n";
  for (const ColumnReport& c : r.columns) {
    std::string line = "  " + c.name;
    line.resize(std::max<size_t>(line.size() + 1, 20), ' ');
    line += c.action;
    line.resize(std::max<size_t>(line.size() + 1, 32), ' ');
    line += c.generalization.empty() ? "-" : c.generalization;
    if (c.level > 0) line += " (level +" + std::to_string(c.level) + ")";
    if (c.tvd >= 0) {
      line.resize(std::max<size_t>(line.size() + 1, 72), ' ');
      line += "tvd " + FormatDouble(c.tvd, 3) + " over " + c.tvd_basis + " (" +
              std::to_string(c.distinct_source) + " source / " + std::to_string(c.distinct_sample) +
              " sample)";
    }
    t += line + "\n";
  }
  return t;
}

StatusOr<Report> Desensitize(const std::string& src_dir, const SamplePolicy& policy,
                             const std::string& out_dir, const ProgressFn& progress) {
  Run run(policy, src_dir, progress);
  return run.Go(out_dir);
}

}  // namespace cce::explore
