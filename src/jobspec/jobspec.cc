#include "jobspec/jobspec.h"

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/emitterstyle.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <exception>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>
#include <utility>

namespace cce {
namespace {

// A job spec needs 5 levels (document, spec, datasets, one dataset, its fields); the slack
// is for nothing but friendlier messages. The limits bound the parser's stack and memory.
constexpr size_t kMaxDepth = 16;
constexpr size_t kMaxNodes = 10000;
// Integers stay exact in every JSON reader (JavaScript included) up to 2^53 - 1.
constexpr int64_t kMaxInteger = (int64_t{1} << 53) - 1;
constexpr int64_t kMaxCpus = 1000000;
constexpr int64_t kMaxCpuMillis = kMaxCpus * 1000;
constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxImageNameLength = 255;
constexpr size_t kMaxImageTagLength = 128;
constexpr size_t kMaxLabelValueLength = 256;
constexpr size_t kMaxPathLength = 4096;

// ---- Positions and diagnostics --------------------------------------------------------

struct Pos {
  int line = 0;  // 1-based; 0 = unknown
  int column = 0;
};

Pos ToPos(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

struct Diagnostic {
  Pos pos;
  std::string path;  // empty: the document as a whole
  std::string message;
};

class Diagnostics {
 public:
  void Add(Pos pos, std::string path, std::string message) {
    items_.push_back({pos, std::move(path), std::move(message)});
  }
  bool empty() const { return items_.empty(); }

  // All diagnostics in document order (ties keep the order they were found in), capped.
  Status ToStatus(std::string_view source) {
    std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
    });
    std::string out;
    const size_t shown = std::min(items_.size(), kMaxJobSpecErrors);
    for (size_t i = 0; i < shown; ++i) {
      const Diagnostic& d = items_[i];
      if (i > 0) out += '\n';
      out += source;
      if (d.pos.line > 0) {
        out += ':' + std::to_string(d.pos.line) + ':' + std::to_string(d.pos.column);
      }
      out += ": ";
      if (!d.path.empty()) out += d.path + ": ";
      out += d.message;
    }
    if (items_.size() > shown) {
      out += '\n';
      out += source;
      out += ": too many errors: showing the first " + std::to_string(shown) + " of " +
             std::to_string(items_.size());
    }
    return InvalidArgument(std::move(out));
  }

 private:
  std::vector<Diagnostic> items_;
};

// ---- Text helpers ------------------------------------------------------------------

bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}
bool AllOf(std::string_view s, bool (*pred)(char)) {
  return std::all_of(s.begin(), s.end(), pred);
}
bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), IsControl);
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// Characters (code points) in valid UTF-8.
size_t Utf8Length(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// A value can be a secret named by mistake (a key file given as the spec):
// runs that look like key material -- 16 or more hex digits with at least one
// digit, or 24 or more base64 characters mixing digits, upper and lower case --
// are never shown, only their length.
bool IsBase64Char(char c) {
  return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '+' || c == '/';
}

std::string HideKeyMaterial(std::string_view s) {
  constexpr size_t kMinHexRun = 16;
  constexpr size_t kMinBase64Run = 24;
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && IsBase64Char(s[j])) ++j;
    if (j == i) {
      out += s[i++];
      continue;
    }
    const std::string_view run = s.substr(i, j - i);
    const bool digits = std::any_of(run.begin(), run.end(), IsDigit);
    if (run.size() >= kMinBase64Run && digits && std::any_of(run.begin(), run.end(), IsUpper) &&
        std::any_of(run.begin(), run.end(), IsLower)) {
      out += "<" + std::to_string(run.size()) + " characters hidden>";
      i = j;
      continue;
    }
    // Hex runs inside the alphanumeric run.
    size_t k = i;
    while (k < j) {
      size_t h = k;
      while (h < j && IsHexDigit(s[h])) ++h;
      const std::string_view hex = s.substr(k, h - k);
      if (hex.size() >= kMinHexRun && std::any_of(hex.begin(), hex.end(), IsDigit)) {
        out += "<" + std::to_string(hex.size()) + " hex digits hidden>";
      } else {
        out += hex;
      }
      if (h < j) out += s[h++];
      k = h;
    }
    i = j;
  }
  return out;
}

// A user's value quoted for a message: JSON-style escapes, key material hidden, cut at 32
// bytes on a character boundary so the message stays short, valid UTF-8 and one line.
std::string Quote(std::string_view value) {
  constexpr size_t kMaxShown = 32;
  const std::string hidden = HideKeyMaterial(value);
  std::string_view s = hidden;
  bool cut = false;
  if (s.size() > kMaxShown) {
    size_t end = kMaxShown;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;
    // Never cut a "<N ... hidden>" marker in half.
    const size_t lt = end > 0 ? s.rfind('<', end - 1) : std::string_view::npos;
    const size_t gt = lt == std::string_view::npos ? lt : s.find('>', lt);
    if (gt != std::string_view::npos && gt >= end && s.substr(lt, gt - lt).ends_with(" hidden")) {
      end = gt + 1;
    }
    s = s.substr(0, end);
    cut = end < hidden.size();
  }
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (IsControl(c)) {
          static constexpr char kHex[] = "0123456789abcdef";
          const auto u = static_cast<unsigned char>(c);
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  if (cut) out += "...";
  return out;
}

// Text from yaml-cpp or from the input that was not checked as UTF-8 (tag and anchor
// names, parser messages that quote a byte): printable ASCII kept, all else as \xNN, so a
// message is always one line of valid UTF-8.
std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string s = HideKeyMaterial(text);
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

// "spec.env" + "MODE" -> "spec.env.MODE"; keys that would read ambiguously are bracketed:
// metadata.labels["app.example/tier"].
std::string JoinKey(const std::string& path, std::string_view key) {
  // A key that looks like key material is quoted (and so hidden) as well.
  const bool simple = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '_' || c == '-';
  }) && HideKeyMaterial(key) == key;
  std::string out = path;
  if (simple) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    out += '[' + Quote(key) + ']';
  }
  return out;
}

std::string JoinIndex(const std::string& path, size_t index) {
  return path + '[' + std::to_string(index) + ']';
}

std::string PosText(Pos p) {
  return std::to_string(p.line) + ':' + std::to_string(p.column);
}

// ---- The document tree ----------------------------------------------------------------

// Plain scalars resolve by the YAML 1.2 core schema, so "yes" and "on" are strings and
// JSON reads the same as YAML; quoted and block scalars are always strings.
enum class ScalarType { kNull, kBool, kInt, kFloat, kString };

ScalarType ResolvePlain(std::string_view v) {
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return ScalarType::kNull;
  if (v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE") {
    return ScalarType::kBool;
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'o' &&
      AllOf(v.substr(2), [](char c) { return c >= '0' && c <= '7'; })) {
    return ScalarType::kInt;
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'x' && AllOf(v.substr(2), IsHexDigit)) {
    return ScalarType::kInt;
  }
  std::string_view unsigned_part = v;
  if (v[0] == '-' || v[0] == '+') unsigned_part = v.substr(1);
  if (!unsigned_part.empty() && AllOf(unsigned_part, IsDigit)) return ScalarType::kInt;
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF" ||
      v == ".nan" || v == ".NaN" || v == ".NAN") {
    return ScalarType::kFloat;
  }
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  size_t i = 0;
  const std::string_view u = unsigned_part;
  size_t int_digits = 0;
  while (i < u.size() && IsDigit(u[i])) ++i, ++int_digits;
  size_t frac_digits = 0;
  bool dot = false;
  if (i < u.size() && u[i] == '.') {
    dot = true;
    ++i;
    while (i < u.size() && IsDigit(u[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && (!dot || frac_digits == 0)) return ScalarType::kString;
  if (i < u.size() && (u[i] == 'e' || u[i] == 'E')) {
    ++i;
    if (i < u.size() && (u[i] == '-' || u[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < u.size() && IsDigit(u[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return ScalarType::kString;
  }
  return i == u.size() ? ScalarType::kFloat : ScalarType::kString;
}

struct MapEntry;

struct SpecNode {
  enum class Kind { kScalar, kList, kMap, kInvalid };  // kInvalid: already reported
  Kind kind = Kind::kInvalid;
  Pos pos;
  ScalarType type = ScalarType::kNull;  // kScalar
  bool plain = false;                   // kScalar: unquoted, so `type` was resolved
  std::string value;                    // kScalar
  std::vector<SpecNode> items;          // kList
  std::vector<MapEntry> entries;        // kMap: unique string keys, document order
};

struct MapEntry {
  std::string key;
  Pos key_pos;
  SpecNode value;
};

bool IsString(const SpecNode& n) {
  return n.kind == SpecNode::Kind::kScalar && n.type == ScalarType::kString;
}

// What a node is, for "expected X, got Y".
std::string Describe(const SpecNode& n) {
  switch (n.kind) {
    case SpecNode::Kind::kList: return n.items.empty() ? "an empty list" : "a list";
    case SpecNode::Kind::kMap: return n.entries.empty() ? "an empty map" : "a map";
    case SpecNode::Kind::kInvalid: return "an invalid value";
    case SpecNode::Kind::kScalar: break;
  }
  switch (n.type) {
    case ScalarType::kNull: return "null";
    case ScalarType::kBool: return "boolean " + n.value;
    case ScalarType::kInt: return "integer " + n.value;
    case ScalarType::kFloat: return "number " + n.value;
    case ScalarType::kString: return "string " + Quote(n.value);
  }
  return "an invalid value";
}

// Builds the tree from yaml-cpp's event stream. Working from events rather than
// YAML::Load is what lets us see quoting (tag "!" vs "?"), anchors, aliases, duplicate keys
// and a second document, and stop early at the depth and size limits.
class TreeBuilder final : public YAML::EventHandler {
 public:
  explicit TreeBuilder(Diagnostics& diags) : diags_(diags) {}

  std::optional<SpecNode> TakeRoot() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      throw YAML::ParserException(mark, "a second YAML document starts here; a job spec is one");
    }
  }
  void OnDocumentEnd() override {}

  void OnAnchor(const YAML::Mark& /*mark*/, const std::string& name) override {
    anchor_names_.push_back(name);
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    SpecNode n = NewNode(SpecNode::Kind::kScalar, mark);
    n.plain = true;
    n.type = ScalarType::kNull;
    CheckAnchor(n.pos, anchor);
    Attach(std::move(n));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    SpecNode n = NewNode(SpecNode::Kind::kInvalid, mark);
    diags_.Add(n.pos, ChildPath(),
               "YAML aliases (*" + AnchorName(anchor) + ") are not allowed; write the value out");
    Attach(std::move(n));
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    SpecNode n = NewNode(SpecNode::Kind::kScalar, mark);
    n.value = value;
    n.plain = tag == "?";
    n.type = n.plain ? ResolvePlain(value) : ScalarType::kString;
    CheckAnchor(n.pos, anchor);
    if (!CheckTag(n.pos, tag)) {
      n.kind = SpecNode::Kind::kInvalid;
    } else if (n.type == ScalarType::kString && !IsValidUtf8(n.value)) {
      diags_.Add(n.pos, ChildPath(), "text is not valid UTF-8");
      n.kind = SpecNode::Kind::kInvalid;
    } else if (n.value.find('\0') != std::string::npos) {
      diags_.Add(n.pos, ChildPath(), "strings must not contain a NUL character");
      n.kind = SpecNode::Kind::kInvalid;
    }
    Attach(std::move(n));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    Open(SpecNode::Kind::kList, mark, tag, anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    Open(SpecNode::Kind::kMap, mark, tag, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    SpecNode node;
    std::string path;
    // Maps alternate key and value events; between the two, the key is held here.
    bool has_key = false;
    bool drop_value = false;  // the key was bad (already reported): drop its value
    std::string key;
    Pos key_pos;
    std::map<std::string, Pos, std::less<>> seen;  // key -> where it was first defined
  };

  SpecNode NewNode(SpecNode::Kind kind, const YAML::Mark& mark) {
    if (++nodes_ > kMaxNodes) {
      throw YAML::ParserException(
          mark, "the document has more than " + std::to_string(kMaxNodes) + " values");
    }
    SpecNode n;
    n.kind = kind;
    n.pos = ToPos(mark);
    return n;
  }

  // The path of the node about to be attached.
  std::string ChildPath() const {
    if (stack_.empty()) return {};
    const Frame& f = stack_.back();
    if (f.node.kind == SpecNode::Kind::kList) return JoinIndex(f.path, f.node.items.size());
    if (f.has_key && !f.drop_value) return JoinKey(f.path, f.key);
    return f.path;  // a key, or the value of a bad key
  }

  std::string AnchorName(YAML::anchor_t anchor) const {
    if (anchor >= 1 && anchor <= anchor_names_.size()) return Printable(anchor_names_[anchor - 1]);
    return "anchor";
  }

  void CheckAnchor(Pos pos, YAML::anchor_t anchor) {
    if (anchor == YAML::NullAnchor) return;
    diags_.Add(pos, ChildPath(), "YAML anchors (&" + AnchorName(anchor) + ") are not allowed");
  }

  // "?" is an untagged plain node, "!" an untagged quoted scalar; anything else was
  // written as an explicit tag (!!str, !foo), which could change a value's type.
  bool CheckTag(Pos pos, const std::string& tag) {
    if (tag == "?" || tag == "!") return true;
    std::string shown = tag;
    constexpr std::string_view kCore = "tag:yaml.org,2002:";
    if (shown.starts_with(kCore)) shown = "!!" + shown.substr(kCore.size());
    diags_.Add(pos, ChildPath(), "YAML tags (" + Printable(shown) + ") are not allowed");
    return false;
  }

  void Open(SpecNode::Kind kind, const YAML::Mark& mark, const std::string& tag,
            YAML::anchor_t anchor) {
    SpecNode n = NewNode(kind, mark);
    std::string path = ChildPath();
    if (stack_.size() >= kMaxDepth) {
      throw YAML::ParserException(
          mark, "values are nested more than " + std::to_string(kMaxDepth) + " levels deep");
    }
    CheckAnchor(n.pos, anchor);
    CheckTag(n.pos, tag);  // reported; the contents are still checked
    stack_.push_back(Frame{std::move(n), std::move(path), false, false, {}, {}, {}});
  }

  void Close() {
    if (stack_.empty()) return;  // yaml-cpp pairs starts and ends; be safe regardless
    SpecNode n = std::move(stack_.back().node);
    stack_.pop_back();
    Attach(std::move(n));
  }

  void Attach(SpecNode n) {
    if (stack_.empty()) {
      root_ = std::move(n);
      return;
    }
    Frame& f = stack_.back();
    if (f.node.kind == SpecNode::Kind::kList) {
      f.node.items.push_back(std::move(n));
      return;
    }
    if (!f.has_key) {
      AcceptKey(f, n);
      return;
    }
    f.has_key = false;
    if (f.drop_value) return;
    // yaml-cpp marks an empty value at the next token; the key is the better place to point.
    if (n.kind == SpecNode::Kind::kScalar && n.type == ScalarType::kNull) n.pos = f.key_pos;
    f.seen.emplace(f.key, f.key_pos);
    f.node.entries.push_back(MapEntry{std::move(f.key), f.key_pos, std::move(n)});
  }

  void AcceptKey(Frame& f, const SpecNode& key) {
    f.has_key = true;
    f.drop_value = true;
    f.key.clear();
    f.key_pos = key.pos;
    if (key.kind == SpecNode::Kind::kInvalid) return;
    if (key.kind == SpecNode::Kind::kScalar && key.plain && key.value == "<<") {
      diags_.Add(key.pos, f.path, "YAML merge keys (<<) are not allowed");
      return;
    }
    if (!IsString(key)) {
      std::string got = Describe(key);
      if (key.kind == SpecNode::Kind::kScalar) got += " (quote it to use it as a key)";
      diags_.Add(key.pos, f.path, "map keys must be strings, got " + got);
      return;
    }
    if (auto it = f.seen.find(key.value); it != f.seen.end()) {
      diags_.Add(key.pos, JoinKey(f.path, key.value),
                 "duplicate key (first defined at " + PosText(it->second) + ")");
      return;
    }
    f.key = key.value;
    f.drop_value = false;
  }

  Diagnostics& diags_;
  std::vector<Frame> stack_;
  std::optional<SpecNode> root_;
  std::vector<std::string> anchor_names_;  // yaml-cpp numbers anchors 1, 2, ... in order
  int documents_ = 0;
  size_t nodes_ = 0;
};

// Where a tab sits in the indentation of `line` (1-based) of `text`, if one does. yaml-cpp
// stops on such a line with "illegal tab when looking for indentation" or "illegal map
// value", neither of which says what to do. (Tabs are fine elsewhere: between a key and
// its value, or in the flow context of a JSON file, where yaml-cpp accepts them.)
std::optional<Pos> TabInIndentation(std::string_view text, int line) {
  if (line < 1) return std::nullopt;
  size_t start = 0;
  for (int l = 1; l < line; ++l) {
    start = text.find('\n', start);
    if (start == std::string_view::npos) return std::nullopt;
    ++start;
  }
  for (size_t i = start; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i) {
    if (text[i] == '\t') return Pos{line, static_cast<int>(i - start) + 1};
  }
  return std::nullopt;
}

// The one place yaml-cpp runs: its exceptions (and ours, thrown from the builder at a
// limit) become a diagnostic with the position yaml-cpp reported.
std::optional<SpecNode> BuildTree(std::string_view text, Diagnostics& diags) {
  TreeBuilder builder(diags);
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const YAML::Exception& e) {
    const Pos at = ToPos(e.mark);
    if (std::optional<Pos> tab = TabInIndentation(text, at.line)) {
      diags.Add(*tab, "",
                "invalid YAML: tab at " + PosText(*tab) +
                    "; YAML indents with spaces (replace the tab with spaces)");
    } else {
      diags.Add(at, "", "invalid YAML: " + Printable(e.msg));
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    diags.Add({}, "", "cannot parse the job spec: " + Printable(e.what()));
    return std::nullopt;
  }
  std::optional<SpecNode> root = builder.TakeRoot();
  if (!root.has_value() ||
      (root->kind == SpecNode::Kind::kScalar && root->type == ScalarType::kNull)) {
    diags.Add({}, "", "the job spec is empty");
    return std::nullopt;
  }
  return root;
}

// ---- Field rules -------------------------------------------------------------------

// A dataset or job name: [a-z0-9][a-z0-9-]{0,62}.
bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!IsLower(name[0]) && !IsDigit(name[0])) return false;
  return AllOf(name, [](char c) { return IsLower(c) || IsDigit(c) || c == '-'; });
}

bool IsValidLabelKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxNameLength) return false;
  if (!IsLower(key[0]) && !IsUpper(key[0]) && !IsDigit(key[0])) return false;
  return AllOf(key, [](char c) {
    return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '.' || c == '_' || c == '/' || c == '-';
  });
}

bool IsValidEnvName(std::string_view name) {
  if (name.empty() || IsDigit(name[0])) return false;
  return AllOf(name, [](char c) { return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '_'; });
}

// Absolute, no empty, "." or ".." components, no trailing slash ("/" itself is normalized).
bool IsNormalizedAbsolutePath(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// An error message for a path-valued field, or "" when it is fine.
std::string CheckPath(std::string_view p) {
  if (p.empty() || p[0] != '/') return Quote(p) + " is not an absolute path";
  if (p.size() > kMaxPathLength) {
    return "path is longer than " + std::to_string(kMaxPathLength) + " characters";
  }
  if (HasControl(p)) return Quote(p) + " contains a control character";
  if (!IsNormalizedAbsolutePath(p)) return Quote(p) + " is not a normalized absolute path";
  return {};
}

constexpr std::string_view kReservedMountDirs[] = {"/output", "/tmp", "/proc",
                                                   "/sys",    "/dev", "/etc"};

// True when `inner` is `outer` or lies below it (both normalized).
bool IsWithin(std::string_view inner, std::string_view outer) {
  if (!inner.starts_with(outer)) return false;
  return inner.size() == outer.size() || outer == "/" || inner[outer.size()] == '/';
}

std::string CheckMountPath(std::string_view p) {
  if (std::string err = CheckPath(p); !err.empty()) return err;
  if (p == "/") return "\"/\" is not allowed: a dataset cannot be mounted over the root";
  for (std::string_view reserved : kReservedMountDirs) {
    if (IsWithin(p, reserved)) {
      return Quote(p) + " is not allowed: " + std::string(reserved) + " is reserved";
    }
  }
  return {};
}

// "" and fills `out` for a valid reference; otherwise the error message.
std::string ParseImageRef(std::string_view s, ImageRef& out) {
  constexpr std::string_view kDigestPrefix = "sha256:";
  if (s.starts_with(kDigestPrefix)) {
    const std::string_view hex = s.substr(kDigestPrefix.size());
    if (hex.size() != 64 ||
        !AllOf(hex, [](char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); })) {
      return Quote(s) +
             " is not a valid digest: expected \"sha256:\" followed by 64 lowercase "
             "hex digits";
    }
    out = ImageDigest{std::string(s)};
    return {};
  }
  const size_t colon = s.find(':');
  const std::string_view name = s.substr(0, colon);
  const bool name_ok =
      !name.empty() && name.size() <= kMaxImageNameLength &&
      (IsLower(name[0]) || IsDigit(name[0])) && AllOf(name, [](char c) {
        return IsLower(c) || IsDigit(c) || c == '.' || c == '_' || c == '/' || c == '-';
      });
  if (!name_ok) {
    return Quote(s) +
           " is not a valid image reference: expected \"sha256:<64 hex digits>\" or "
           "a name matching [a-z0-9][a-z0-9._/-]* (at most 255 characters) with an "
           "optional :tag";
  }
  std::string tag = "latest";
  if (colon != std::string_view::npos) {
    const std::string_view t = s.substr(colon + 1);
    const bool tag_ok = !t.empty() && t.size() <= kMaxImageTagLength && AllOf(t, [](char c) {
      return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '_' || c == '.' || c == '-';
    });
    if (!tag_ok) {
      return Quote(s) +
             " is not a valid image reference: the tag must match "
             "[A-Za-z0-9_.-]{1,128}";
    }
    tag = std::string(t);
  }
  out = ImageName{std::string(name), std::move(tag)};
  return {};
}

// Parses a decimal number (the YAML/JSON text of `cpus`) into thousandths, exactly.
// Returns "" on success, else what is wrong with it; `got` describes the value.
std::string ParseMillis(std::string_view text, const std::string& got, int64_t& millis) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  std::string digits;  // integer and fraction digits, the point removed
  int64_t exponent = 0;
  size_t i = 0;
  while (i < s.size() && IsDigit(s[i])) digits += s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) {
      digits += s[i++];
      --exponent;
    }
  }
  if (digits.empty()) return "expected a positive number, got " + got;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) exp_negative = s[i++] == '-';
    int64_t e = 0;
    if (i == s.size()) return "expected a positive number, got " + got;
    while (i < s.size() && IsDigit(s[i])) {
      e = std::min<int64_t>(e * 10 + (s[i++] - '0'), 1000000);  // saturate; still exact below
    }
    exponent += exp_negative ? -e : e;
  }
  if (i != s.size()) return "expected a positive decimal number, got " + got;
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos || negative) return "expected a positive number, got " + got;
  digits.erase(0, first);
  exponent += 3;  // to thousandths
  while (exponent < 0) {
    if (digits.empty() || digits.back() != '0') {
      return "expected at most 3 decimal places, got " + std::string(text);
    }
    digits.pop_back();
    ++exponent;
  }
  // kMaxCpuMillis has 10 digits; anything longer is out of range before it can overflow.
  if (digits.size() + static_cast<size_t>(exponent) > 10) {
    return std::string(text) + " is out of range (at most " + std::to_string(kMaxCpus) + ")";
  }
  int64_t v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  for (int64_t k = 0; k < exponent; ++k) v *= 10;
  if (v > kMaxCpuMillis) {
    return std::string(text) + " is out of range (at most " + std::to_string(kMaxCpus) + ")";
  }
  millis = v;
  return {};
}

std::string FormatMillis(int64_t millis) {
  std::string out = std::to_string(millis / 1000);
  int64_t frac = millis % 1000;
  if (frac == 0) return out;
  std::string f = std::to_string(frac);
  f.insert(0, 3 - f.size(), '0');
  while (f.back() == '0') f.pop_back();
  return out + '.' + f;
}

// ---- Reading the tree into a JobSpec --------------------------------------------------

class SpecReader {
 public:
  explicit SpecReader(Diagnostics& diags) : diags_(diags) {}

  void ReadDocument(const SpecNode& root, JobSpec& out) {
    if (root.kind != SpecNode::Kind::kMap) {
      if (root.kind != SpecNode::Kind::kInvalid) {
        Error(root, "",
              "expected a map with apiVersion, kind, metadata and spec, got " + Describe(root));
      }
      return;
    }
    CheckFields(root, "", {"apiVersion", "kind", "metadata", "spec"});
    if (const SpecNode* n = Required(root, "", "apiVersion"))
      ExpectConstant(*n, "apiVersion", kJobSpecApiVersion);
    if (const SpecNode* n = Required(root, "", "kind")) ExpectConstant(*n, "kind", kJobSpecKind);
    if (const SpecNode* n = Required(root, "", "metadata")) ReadMetadata(*n, "metadata", out);
    if (const SpecNode* n = Required(root, "", "spec")) ReadSpec(*n, "spec", out);
  }

 private:
  void Error(const SpecNode& at, std::string path, std::string message) {
    diags_.Add(at.pos, std::move(path), std::move(message));
  }

  static const SpecNode* Find(const SpecNode& map, std::string_view key) {
    for (const MapEntry& e : map.entries) {
      if (e.key == key) return &e.value;
    }
    return nullptr;
  }

  const SpecNode* Required(const SpecNode& map, const std::string& path, std::string_view key) {
    const SpecNode* n = Find(map, key);
    if (n == nullptr) Error(map, JoinKey(path, key), "required field is missing");
    return n;
  }

  void CheckFields(const SpecNode& map, const std::string& path,
                   std::initializer_list<std::string_view> allowed) {
    for (const MapEntry& e : map.entries) {
      if (std::find(allowed.begin(), allowed.end(), e.key) != allowed.end()) continue;
      std::string list;
      for (std::string_view a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      diags_.Add(e.key_pos, JoinKey(path, e.key), "unknown field (allowed: " + list + ")");
    }
  }

  // Whether `n` is a map; reports "expected <what>" when it is not.
  bool ExpectMap(const SpecNode& n, const std::string& path, std::string_view what) {
    if (n.kind == SpecNode::Kind::kMap) return true;
    if (n.kind != SpecNode::Kind::kInvalid) {
      Error(n, path, "expected " + std::string(what) + ", got " + Describe(n));
    }
    return false;
  }

  bool ExpectList(const SpecNode& n, const std::string& path, std::string_view what) {
    if (n.kind == SpecNode::Kind::kList) return true;
    if (n.kind != SpecNode::Kind::kInvalid) {
      Error(n, path, "expected " + std::string(what) + ", got " + Describe(n));
    }
    return false;
  }

  std::optional<std::string> ExpectString(const SpecNode& n, const std::string& path,
                                          std::string_view what = "a string") {
    if (IsString(n)) return n.value;
    if (n.kind == SpecNode::Kind::kInvalid) return std::nullopt;
    std::string message = "expected " + std::string(what) + ", got " + Describe(n);
    if (n.kind == SpecNode::Kind::kScalar && n.type != ScalarType::kNull) {
      message += " (quote it if you meant a string)";
    }
    Error(n, path, std::move(message));
    return std::nullopt;
  }

  void ExpectConstant(const SpecNode& n, const std::string& path, std::string_view expected) {
    const std::string what = "\"" + std::string(expected) + "\"";
    std::optional<std::string> s = ExpectString(n, path, what);
    if (s && *s != expected) Error(n, path, "expected " + what + ", got " + Describe(n));
  }

  void ReadMetadata(const SpecNode& n, const std::string& path, JobSpec& out) {
    if (!ExpectMap(n, path, "a map with name and optional labels")) return;
    CheckFields(n, path, {"name", "labels"});
    if (const SpecNode* name = Required(n, path, "name")) {
      const std::string p = JoinKey(path, "name");
      if (auto s = ExpectString(*name, p)) {
        if (!IsValidName(*s)) {
          Error(*name, p, Quote(*s) + " is not a valid name: expected [a-z0-9][a-z0-9-]{0,62}");
        }
        out.name = std::move(*s);
      }
    }
    if (const SpecNode* labels = Find(n, "labels")) {
      const std::string lp = JoinKey(path, "labels");
      if (ExpectMap(*labels, lp, "a map of strings")) {
        for (const MapEntry& e : labels->entries) {
          const std::string p = JoinKey(lp, e.key);
          if (!IsValidLabelKey(e.key)) {
            diags_.Add(e.key_pos, p, "label keys must match [A-Za-z0-9][A-Za-z0-9._/-]{0,62}");
          }
          if (auto v = ExpectString(e.value, p)) {
            if (Utf8Length(*v) > kMaxLabelValueLength) {
              Error(e.value, p,
                    "label values are at most " + std::to_string(kMaxLabelValueLength) +
                        " characters");
            } else if (HasControl(*v)) {
              Error(e.value, p, Quote(*v) + " contains a control character");
            }
            out.labels[e.key] = std::move(*v);
          }
        }
      }
    }
  }

  void ReadSpec(const SpecNode& n, const std::string& path, JobSpec& out) {
    if (!ExpectMap(n, path, "a map")) return;
    CheckFields(n, path,
                {"image", "command", "args", "env", "workingDir", "datasets", "resources"});
    if (const SpecNode* image = Required(n, path, "image")) {
      const std::string p = JoinKey(path, "image");
      if (auto s = ExpectString(*image, p, "an image reference")) {
        if (std::string err = ParseImageRef(*s, out.image); !err.empty()) Error(*image, p, err);
      }
    }
    if (const SpecNode* command = Required(n, path, "command")) {
      const std::string p = JoinKey(path, "command");
      ReadStringList(*command, p, out.command);
      if (command->kind == SpecNode::Kind::kList) {
        if (command->items.empty()) {
          Error(*command, p, "expected a non-empty list of strings, got an empty list");
        } else if (IsString(command->items[0]) && command->items[0].value.empty()) {
          Error(command->items[0], JoinIndex(p, 0),
                "expected the program to run, got an empty string");
        }
      }
    }
    if (const SpecNode* args = Find(n, "args"))
      ReadStringList(*args, JoinKey(path, "args"), out.args);
    if (const SpecNode* env = Find(n, "env")) ReadEnv(*env, JoinKey(path, "env"), out);
    if (const SpecNode* dir = Find(n, "workingDir")) {
      const std::string p = JoinKey(path, "workingDir");
      if (auto s = ExpectString(*dir, p, "an absolute path")) {
        if (std::string err = CheckPath(*s); !err.empty()) {
          Error(*dir, p, err);
        }
        out.working_dir = std::move(*s);
      }
    }
    if (const SpecNode* datasets = Required(n, path, "datasets")) {
      ReadDatasets(*datasets, JoinKey(path, "datasets"), out);
    }
    if (const SpecNode* resources = Find(n, "resources")) {
      ReadResources(*resources, JoinKey(path, "resources"), out.resources);
    }
  }

  void ReadStringList(const SpecNode& n, const std::string& path, std::vector<std::string>& out) {
    if (!ExpectList(n, path, "a list of strings")) return;
    for (size_t i = 0; i < n.items.size(); ++i) {
      if (auto s = ExpectString(n.items[i], JoinIndex(path, i))) out.push_back(std::move(*s));
    }
  }

  void ReadEnv(const SpecNode& n, const std::string& path, JobSpec& out) {
    if (!ExpectMap(n, path, "a map of strings")) return;
    for (const MapEntry& e : n.entries) {
      const std::string p = JoinKey(path, e.key);
      if (!IsValidEnvName(e.key)) {
        diags_.Add(e.key_pos, p, "variable names must match [A-Za-z_][A-Za-z0-9_]*");
      } else if (e.key.starts_with("CCE_")) {
        diags_.Add(e.key_pos, p, "the CCE_ prefix is reserved for the platform");
      }
      if (auto v = ExpectString(e.value, p)) out.env[e.key] = std::move(*v);
    }
  }

  void ReadDatasets(const SpecNode& n, const std::string& path, JobSpec& out) {
    if (!ExpectList(n, path, "a non-empty list of datasets")) return;
    if (n.items.empty()) {
      Error(n, path, "expected a non-empty list of datasets, got an empty list");
      return;
    }
    struct Seen {
      std::string value;
      std::string path;
    };
    std::vector<Seen> names;
    std::vector<Seen> mounts;
    for (size_t i = 0; i < n.items.size(); ++i) {
      const SpecNode& item = n.items[i];
      const std::string ip = JoinIndex(path, i);
      if (!ExpectMap(item, ip, "a map with name and mountPath")) continue;
      CheckFields(item, ip, {"name", "mountPath"});
      DatasetMount mount;
      if (const SpecNode* name = Required(item, ip, "name")) {
        const std::string p = JoinKey(ip, "name");
        if (auto s = ExpectString(*name, p, "a dataset name")) {
          if (!IsValidName(*s)) {
            Error(*name, p,
                  Quote(*s) +
                      " is not a valid dataset name: expected "
                      "[a-z0-9][a-z0-9-]{0,62}");
          }
          for (const Seen& other : names) {
            if (other.value == *s)
              Error(*name, p, "dataset " + Quote(*s) + " is also " + other.path);
          }
          names.push_back({*s, p});
          mount.name = std::move(*s);
        }
      }
      if (const SpecNode* mp = Required(item, ip, "mountPath")) {
        const std::string p = JoinKey(ip, "mountPath");
        if (auto s = ExpectString(*mp, p, "an absolute path")) {
          if (std::string err = CheckMountPath(*s); !err.empty()) {
            Error(*mp, p, err);
          } else {
            for (const Seen& other : mounts) {
              if (other.value == *s) {
                Error(*mp, p, Quote(*s) + " is also the mountPath of " + other.path);
              } else if (IsWithin(*s, other.value)) {
                Error(*mp, p, Quote(*s) + " is inside " + other.path + " " + Quote(other.value));
              } else if (IsWithin(other.value, *s)) {
                Error(*mp, p, Quote(*s) + " contains " + other.path + " " + Quote(other.value));
              }
            }
            mounts.push_back({*s, JoinIndex(path, i)});
          }
          mount.mount_path = std::move(*s);
        }
      }
      out.datasets.push_back(std::move(mount));
    }
  }

  void ReadResources(const SpecNode& n, const std::string& path, JobResources& out) {
    if (!ExpectMap(n, path, "a map")) return;
    CheckFields(n, path, {"cpus", "memoryMiB", "timeoutSeconds", "outputMaxMiB"});
    if (const SpecNode* cpus = Find(n, "cpus")) {
      const std::string p = JoinKey(path, "cpus");
      if (cpus->kind == SpecNode::Kind::kScalar &&
          (cpus->type == ScalarType::kInt || cpus->type == ScalarType::kFloat)) {
        if (std::string err = ParseMillis(cpus->value, Describe(*cpus), out.cpu_millis);
            !err.empty()) {
          Error(*cpus, p, err);
        }
      } else if (cpus->kind != SpecNode::Kind::kInvalid) {
        Error(*cpus, p, "expected a positive number, got " + Describe(*cpus));
      }
    }
    ReadPositiveInteger(n, path, "memoryMiB", out.memory_mib);
    ReadPositiveInteger(n, path, "timeoutSeconds", out.timeout_seconds);
    ReadPositiveInteger(n, path, "outputMaxMiB", out.output_max_mib);
  }

  void ReadPositiveInteger(const SpecNode& map, const std::string& path, std::string_view key,
                           int64_t& out) {
    const SpecNode* n = Find(map, key);
    if (n == nullptr) return;
    const std::string p = JoinKey(path, key);
    if (n->kind != SpecNode::Kind::kScalar || n->type != ScalarType::kInt) {
      if (n->kind != SpecNode::Kind::kInvalid) {
        Error(*n, p, "expected a positive integer, got " + Describe(*n));
      }
      return;
    }
    std::string_view text = n->value;
    bool negative = false;
    if (text[0] == '-' || text[0] == '+') {
      negative = text[0] == '-';
      text.remove_prefix(1);
    }
    if (!AllOf(text, IsDigit)) {  // 0x.. and 0o.. are YAML integers but not JSON ones
      Error(*n, p, "expected a positive decimal integer, got " + n->value);
      return;
    }
    const size_t first = text.find_first_not_of('0');
    if (negative || first == std::string_view::npos) {
      Error(*n, p, "expected a positive integer, got " + Describe(*n));
      return;
    }
    text.remove_prefix(first);
    int64_t v = 0;
    if (text.size() <= 16) {
      for (char c : text) v = v * 10 + (c - '0');
    }
    if (text.size() > 16 || v > kMaxInteger) {
      Error(*n, p, n->value + " is out of range (at most " + std::to_string(kMaxInteger) + ")");
      return;
    }
    out = v;
  }

  Diagnostics& diags_;
};

// "exceeds" checks that cannot overflow however large the configured limit is.
bool CpusExceed(int64_t cpu_millis, int64_t max_cpus) {
  if (max_cpus < 0) return true;
  if (max_cpus > std::numeric_limits<int64_t>::max() / 1000) return false;
  return cpu_millis > max_cpus * 1000;
}

}  // namespace

std::string ImageRefToString(const ImageRef& image) {
  if (const auto* d = std::get_if<ImageDigest>(&image)) return d->digest;
  const auto& n = std::get<ImageName>(image);
  return n.name + ':' + n.tag;
}

StatusOr<JobSpec> ParseJobSpec(std::string_view text, std::string_view source_name) {
  const std::string source = source_name.empty() ? "<job spec>" : std::string(source_name);
  if (text.size() > kMaxJobSpecBytes) {
    return InvalidArgument(source + ": the job spec is " + std::to_string(text.size()) +
                           " bytes; the limit is " + std::to_string(kMaxJobSpecBytes) +
                           " bytes (1 MiB)");
  }
  Diagnostics diags;
  std::optional<SpecNode> root = BuildTree(text, diags);
  JobSpec spec;
  if (root.has_value()) SpecReader(diags).ReadDocument(*root, spec);
  if (!diags.empty()) return diags.ToStatus(source);
  return spec;
}

std::string JobSpecToJson(const JobSpec& spec) {
  using nlohmann::json;
  json datasets = json::array();
  for (const DatasetMount& d : spec.datasets) {
    datasets.push_back({{"name", d.name}, {"mountPath", d.mount_path}});
  }
  const JobResources& r = spec.resources;
  // Whole CPUs print as integers; others as the shortest double that reads back to the
  // same value, which for at most 3 decimals below 10^6 is that decimal itself.
  json cpus = r.cpu_millis % 1000 == 0 ? json(r.cpu_millis / 1000)
                                       : json(static_cast<double>(r.cpu_millis) / 1000.0);
  json s = {
      {"image", ImageRefToString(spec.image)},
      {"command", spec.command},
      {"args", spec.args},
      {"env", json(spec.env)},
      {"datasets", std::move(datasets)},
      {"resources",
       {{"cpus", std::move(cpus)},
        {"memoryMiB", r.memory_mib},
        {"timeoutSeconds", r.timeout_seconds},
        {"outputMaxMiB", r.output_max_mib}}},
  };
  if (spec.working_dir.has_value()) s["workingDir"] = *spec.working_dir;
  json doc = {
      {"apiVersion", std::string(kJobSpecApiVersion)},
      {"kind", std::string(kJobSpecKind)},
      {"metadata", {{"name", spec.name}, {"labels", json(spec.labels)}}},
      {"spec", std::move(s)},
  };
  // nlohmann's default object is a std::map, so keys come out sorted. A JobSpec built by
  // hand may hold invalid UTF-8; replacing it keeps this function from throwing.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status ValidateAgainstLimits(const JobSpec& spec, const PlaneLimits& limits,
                             std::string_view source_name) {
  std::vector<std::string> errors;
  auto over = [&](std::string_view field, const std::string& value, int64_t limit) {
    errors.push_back(std::string(field) + ": " + value + " exceeds the plane's limit of " +
                     std::to_string(limit));
  };
  const JobResources& r = spec.resources;
  if (CpusExceed(r.cpu_millis, limits.max_cpus)) {
    over("spec.resources.cpus", FormatMillis(r.cpu_millis), limits.max_cpus);
  }
  if (r.memory_mib > limits.max_memory_mib) {
    over("spec.resources.memoryMiB", std::to_string(r.memory_mib), limits.max_memory_mib);
  }
  if (r.timeout_seconds > limits.max_timeout_seconds) {
    over("spec.resources.timeoutSeconds", std::to_string(r.timeout_seconds),
         limits.max_timeout_seconds);
  }
  if (r.output_max_mib > limits.max_output_mib) {
    over("spec.resources.outputMaxMiB", std::to_string(r.output_max_mib), limits.max_output_mib);
  }
  if (static_cast<int64_t>(spec.datasets.size()) > limits.max_datasets) {
    errors.push_back("spec.datasets: " + std::to_string(spec.datasets.size()) +
                     " datasets exceed the plane's limit of " +
                     std::to_string(limits.max_datasets));
  }
  if (errors.empty()) return Status::Ok();
  std::string message;
  for (const std::string& e : errors) {
    if (!message.empty()) message += '\n';
    if (!source_name.empty()) {
      message += source_name;
      message += ": ";
    }
    message += e;
  }
  return InvalidArgument(std::move(message));
}

}  // namespace cce
