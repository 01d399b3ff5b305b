#include "gate/policy.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <set>

namespace cce::gate {
namespace {

constexpr size_t kMaxPolicyBytes = 64 * 1024;

// One setter per key "section.name": parses the node into the field.
using Setter = std::function<Status(const YAML::Node&, const std::string& key, Policy&)>;

template <typename T>
Setter Number(T Policy::*field, double min, double max) {
  return [field, min, max](const YAML::Node& node, const std::string& key, Policy& p) -> Status {
    if (!node.IsScalar()) return InvalidArgument(key + ": expected a number");
    double v = 0;
    try {
      v = node.as<double>();
    } catch (const YAML::Exception&) {
      return InvalidArgument(key + ": expected a number, got '" + node.Scalar() + "'");
    }
    if (!(v >= min && v <= max)) {
      return InvalidArgument(key + ": " + node.Scalar() + " is out of range [" +
                             std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    if constexpr (std::is_integral_v<T>) {
      if (v != static_cast<double>(static_cast<int64_t>(v))) {
        return InvalidArgument(key + ": expected an integer, got '" + node.Scalar() + "'");
      }
    }
    p.*field = static_cast<T>(v);
    return Status::Ok();
  };
}

Setter Bool(bool Policy::*field) {
  return [field](const YAML::Node& node, const std::string& key, Policy& p) -> Status {
    if (!node.IsScalar() || (node.Scalar() != "true" && node.Scalar() != "false")) {
      return InvalidArgument(key + ": expected true or false");
    }
    p.*field = node.Scalar() == "true";
    return Status::Ok();
  };
}

Setter Strings(std::vector<std::string> Policy::*field) {
  return [field](const YAML::Node& node, const std::string& key, Policy& p) -> Status {
    if (!node.IsSequence()) return InvalidArgument(key + ": expected a list of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar() || node[i].Scalar().empty()) {
        return InvalidArgument(key + "[" + std::to_string(i) + "]: expected a non-empty string");
      }
      out.push_back(node[i].Scalar());
    }
    p.*field = std::move(out);
    return Status::Ok();
  };
}

const std::map<std::string, Setter>& Setters() {
  constexpr double kBig = 1e15;
  static const auto* setters = new std::map<std::string, Setter>{
      {"threshold", Number(&Policy::threshold, 0, 1)},
      {"limits.max_file_bytes", Number(&Policy::max_file_bytes, 0, kBig)},
      {"limits.max_bundle_bytes", Number(&Policy::max_bundle_bytes, 0, kBig)},
      {"limits.max_files", Number(&Policy::max_files, 1, kBig)},
      {"limits.max_depth", Number(&Policy::max_depth, 0, 32)},
      {"limits.max_expanded_bytes", Number(&Policy::max_expanded_bytes, 0, kBig)},
      {"limits.max_child_bytes", Number(&Policy::max_child_bytes, 0, kBig)},
      {"limits.max_expansion_ratio", Number(&Policy::max_expansion_ratio, 1, 1e6)},
      {"limits.max_items", Number(&Policy::max_items, 1, kBig)},
      {"limits.max_scan_millis", Number(&Policy::max_scan_millis, 1, kBig)},
      {"types.allowed", Strings(&Policy::allowed_types)},
      {"copies.min_token_chars", Number(&Policy::min_token_chars, 1, 1000)},
      {"copies.row_min_cells", Number(&Policy::row_min_cells, 1, 1000)},
      {"copies.row_min_fraction", Number(&Policy::row_min_fraction, 0, 1)},
      {"copies.rows_hold", Number(&Policy::rows_hold, 1, kBig)},
      {"copies.identifiers_hold", Number(&Policy::identifiers_hold, 1, kBig)},
      {"copies.cells_hold", Number(&Policy::cells_hold, 1, kBig)},
      {"copies.cell_score", Number(&Policy::cell_score, 0, 1)},
      {"encodings.min_encoded_chars", Number(&Policy::min_encoded_chars, 8, 1e6)},
      {"covert.entropy_bits_per_byte", Number(&Policy::entropy_bits_per_byte, 0, 8)},
      {"covert.entropy_min_bytes", Number(&Policy::entropy_min_bytes, 1, kBig)},
      {"covert.max_text_chunk_bytes", Number(&Policy::max_text_chunk_bytes, 0, kBig)},
      {"covert.max_trailing_bytes", Number(&Policy::max_trailing_bytes, 0, kBig)},
      {"covert.lsb_threshold", Number(&Policy::lsb_threshold, 0, 1)},
      {"sdc.min_cell_count", Number(&Policy::min_cell_count, 1, 1e9)},
      {"sdc.nk_n", Number(&Policy::nk_n, 1, 100)},
      {"sdc.nk_k", Number(&Policy::nk_k, 0, 1)},
      {"sdc.p_percent", Number(&Policy::p_percent, 0, 100)},
      {"sdc.min_unique_fraction", Number(&Policy::min_unique_fraction, 0, 1)},
      {"sdc.quasi_identifiers", Strings(&Policy::quasi_identifiers)},
      {"sdc.microdata_min_rows", Number(&Policy::microdata_min_rows, 1, 1e9)},
      {"sdc.differencing", Bool(&Policy::differencing)},
  };
  return *setters;
}

Status Apply(const YAML::Node& map, const std::string& prefix, Policy& p) {
  const auto& setters = Setters();
  for (const auto& kv : map) {
    const std::string name = kv.first.as<std::string>();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    auto it = setters.find(key);
    if (it != setters.end()) {
      RETURN_IF_ERROR(it->second(kv.second, "gate." + key, p));
      continue;
    }
    const bool section = prefix.empty() && setters.lower_bound(key + ".") != setters.end() &&
                         setters.lower_bound(key + ".")->first.rfind(key + ".", 0) == 0;
    if (section) {
      if (!kv.second.IsMap()) return InvalidArgument("gate." + key + ": expected a mapping");
      RETURN_IF_ERROR(Apply(kv.second, key, p));
      continue;
    }
    return InvalidArgument("gate." + key + ": unknown key");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Policy> LoadPolicy(std::string_view yaml_text, const std::string& source_name) {
  if (yaml_text.size() > kMaxPolicyBytes) {
    return InvalidArgument(source_name + ": larger than " + std::to_string(kMaxPolicyBytes) +
                           " bytes");
  }
  Policy p;
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    if (root.IsNull()) return p;
    if (!root.IsMap()) return InvalidArgument(source_name + ": expected a mapping with key 'gate'");
    for (const auto& kv : root) {
      const std::string top = kv.first.as<std::string>();
      if (top != "gate")
        return InvalidArgument(source_name + ": " + top + ": unknown key (expected 'gate')");
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap()) return InvalidArgument(source_name + ": gate: expected a mapping");
      Status s = Apply(kv.second, "", p);
      if (!s.ok()) return InvalidArgument(source_name + ": " + s.message());
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (p.max_child_bytes > p.max_expanded_bytes) p.max_child_bytes = p.max_expanded_bytes;
  return p;
}

}  // namespace cce::gate
