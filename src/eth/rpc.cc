#include "eth/rpc.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "eth/rental_market.h"
#include "http/client.h"

namespace cce::eth {
namespace {

using nlohmann::json;

// Deeper JSON than this is refused before nlohmann's recursive parser sees it.
constexpr int kMaxNesting = 64;
// eth_getLogs over a wide range can be large; anything beyond is refused.
constexpr uint64_t kMaxResponseBytes = uint64_t{64} << 20;

bool NestsDeeperThan(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::string Join(std::string_view field, std::string_view key) {
  return std::string(field) + "." + std::string(key);
}

StatusOr<const json*> Member(const json& j, std::string_view field, std::string_view key) {
  if (!j.is_object()) return InvalidArgument(std::string(field) + ": expected a JSON object");
  const auto it = j.find(key);
  if (it == j.end()) return InvalidArgument(Join(field, key) + ": missing");
  return &*it;
}

StatusOr<std::string> StringMember(const json& j, std::string_view field, std::string_view key) {
  ASSIGN_OR_RETURN(const json* v, Member(j, field, key));
  if (!v->is_string()) return InvalidArgument(Join(field, key) + ": expected a string");
  return v->get<std::string>();
}

StatusOr<uint64_t> ToUint64(const U256& v, const std::string& field) {
  if (v > std::numeric_limits<uint64_t>::max()) {
    return InvalidArgument(field + ": " + ToQuantity(v) + " is beyond 64 bits");
  }
  return static_cast<uint64_t>(v);
}

StatusOr<uint64_t> QuantityValue64(const json& v, const std::string& field) {
  if (!v.is_string()) return InvalidArgument(field + ": expected a hex quantity string");
  ASSIGN_OR_RETURN(U256 q, ParseQuantity(v.get<std::string>(), field));
  return ToUint64(q, field);
}

StatusOr<uint64_t> Quantity64(const json& j, std::string_view field, std::string_view key) {
  ASSIGN_OR_RETURN(const json* v, Member(j, field, key));
  return QuantityValue64(*v, Join(field, key));
}

StatusOr<Hash32> HashMember(const json& j, std::string_view field, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, StringMember(j, field, key));
  return ParseHash32(s, Join(field, key));
}

StatusOr<Address> AddressMember(const json& j, std::string_view field, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, StringMember(j, field, key));
  return ParseAddress(s, Join(field, key));
}

// A Status from a throwing nlohmann accessor: the parsers check types before
// every access, so this is a second line, never the expected path.
Status JsonException(std::string_view field, const std::exception& e) {
  return InvalidArgument(std::string(field) + ": malformed JSON value (" +
                         http::Printable(e.what(), 200) + ")");
}

// Quantities, addresses and hashes as the node expects them.
json Q(uint64_t v) {
  return ToQuantity(U256(v));
}

}  // namespace

StatusOr<Block> BlockFromJson(const json& j, std::string_view field) try {
  Block b;
  ASSIGN_OR_RETURN(b.number, Quantity64(j, field, "number"));
  ASSIGN_OR_RETURN(b.hash, HashMember(j, field, "hash"));
  ASSIGN_OR_RETURN(b.parent_hash, HashMember(j, field, "parentHash"));
  ASSIGN_OR_RETURN(uint64_t ts, Quantity64(j, field, "timestamp"));
  if (ts > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument(Join(field, "timestamp") + ": beyond int64");
  }
  b.timestamp = static_cast<int64_t>(ts);
  const auto fee = j.find("baseFeePerGas");
  if (fee != j.end() && !fee->is_null()) {
    if (!fee->is_string())
      return InvalidArgument(Join(field, "baseFeePerGas") + ": expected a string");
    ASSIGN_OR_RETURN(b.base_fee,
                     ParseQuantity(fee->get<std::string>(), Join(field, "baseFeePerGas")));
  }
  return b;
} catch (const std::exception& e) {
  return JsonException(field, e);
}

StatusOr<Log> LogFromJson(const json& j, std::string_view field) try {
  Log l;
  ASSIGN_OR_RETURN(l.address, AddressMember(j, field, "address"));
  ASSIGN_OR_RETURN(const json* topics, Member(j, field, "topics"));
  if (!topics->is_array() || topics->size() > 4) {
    return InvalidArgument(Join(field, "topics") + ": expected an array of at most 4 hashes");
  }
  for (size_t i = 0; i < topics->size(); ++i) {
    const json& t = (*topics)[i];
    const std::string where = Join(field, "topics[" + std::to_string(i) + "]");
    if (!t.is_string()) return InvalidArgument(where + ": expected a string");
    ASSIGN_OR_RETURN(Hash32 h, ParseHash32(t.get<std::string>(), where));
    l.topics.push_back(h);
  }
  ASSIGN_OR_RETURN(std::string data, StringMember(j, field, "data"));
  ASSIGN_OR_RETURN(l.data, ParseHex(data, Join(field, "data")));
  ASSIGN_OR_RETURN(l.block_number, Quantity64(j, field, "blockNumber"));
  ASSIGN_OR_RETURN(l.block_hash, HashMember(j, field, "blockHash"));
  ASSIGN_OR_RETURN(l.tx_hash, HashMember(j, field, "transactionHash"));
  ASSIGN_OR_RETURN(l.log_index, Quantity64(j, field, "logIndex"));
  const auto removed = j.find("removed");
  if (removed != j.end()) {
    if (!removed->is_boolean())
      return InvalidArgument(Join(field, "removed") + ": expected a boolean");
    l.removed = removed->get<bool>();
  }
  return l;
} catch (const std::exception& e) {
  return JsonException(field, e);
}

StatusOr<Receipt> ReceiptFromJson(const json& j, std::string_view field) try {
  Receipt r;
  ASSIGN_OR_RETURN(r.tx_hash, HashMember(j, field, "transactionHash"));
  ASSIGN_OR_RETURN(r.block_number, Quantity64(j, field, "blockNumber"));
  ASSIGN_OR_RETURN(r.block_hash, HashMember(j, field, "blockHash"));
  ASSIGN_OR_RETURN(uint64_t status, Quantity64(j, field, "status"));
  if (status > 1) return InvalidArgument(Join(field, "status") + ": expected 0x0 or 0x1");
  r.success = status == 1;
  const auto created = j.find("contractAddress");
  if (created != j.end() && !created->is_null()) {
    ASSIGN_OR_RETURN(r.contract_address, AddressMember(j, field, "contractAddress"));
  }
  ASSIGN_OR_RETURN(r.gas_used, Quantity64(j, field, "gasUsed"));
  ASSIGN_OR_RETURN(const json* logs, Member(j, field, "logs"));
  if (!logs->is_array()) return InvalidArgument(Join(field, "logs") + ": expected an array");
  for (size_t i = 0; i < logs->size(); ++i) {
    ASSIGN_OR_RETURN(Log l,
                     LogFromJson((*logs)[i], Join(field, "logs[" + std::to_string(i) + "]")));
    r.logs.push_back(std::move(l));
  }
  return r;
} catch (const std::exception& e) {
  return JsonException(field, e);
}

StatusOr<json> ParseRpcResponse(std::string_view body, uint64_t id, std::string_view method) try {
  const std::string m(method);
  if (NestsDeeperThan(body, kMaxNesting)) {
    return InvalidArgument(m + ": the node's answer nests deeper than " +
                           std::to_string(kMaxNesting));
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgument(m + ": the node's answer is not JSON: " + http::Printable(body, 120));
  }
  if (!j.is_object()) return InvalidArgument(m + ": the node's answer is not a JSON object");
  const auto version = j.find("jsonrpc");
  if (version == j.end() || !version->is_string() || version->get<std::string>() != "2.0") {
    return InvalidArgument(m + ": jsonrpc: expected \"2.0\"");
  }
  const auto got_id = j.find("id");
  if (got_id == j.end() || !got_id->is_number_unsigned() || got_id->get<uint64_t>() != id) {
    return InvalidArgument(m + ": id: expected " + std::to_string(id) +
                           " (the answer is to another request)");
  }
  const auto error = j.find("error");
  if (error != j.end() && !error->is_null()) {
    if (!error->is_object()) return InvalidArgument(m + ": error: expected an object");
    const auto code = error->find("code");
    const auto message = error->find("message");
    if (code == error->end() || !code->is_number_integer()) {
      return InvalidArgument(m + ": error.code: expected an integer");
    }
    if (message == error->end() || !message->is_string()) {
      return InvalidArgument(m + ": error.message: expected a string");
    }
    std::string message_text = message->get<std::string>();
    std::string reason;
    const auto data = error->find("data");
    if (data != error->end() && data->is_string()) {
      auto revert = ParseHex(data->get<std::string>(), "error.data");
      if (revert.ok()) {
        reason = ": " + DescribeRevert(*revert);
        // Nodes append the revert data to the message in their own rendering
        // (anvil: the raw bytes as text): the decoded reason replaces it.
        constexpr std::string_view kReverted = "execution reverted";
        if (message_text.rfind(kReverted, 0) == 0) message_text = std::string(kReverted);
      }
    }
    std::string text = m + ": " + std::to_string(code->get<int64_t>()) + " " +
                       http::Printable(message_text, 300) + reason;
    return FailedPrecondition(std::move(text));
  }
  const auto result = j.find("result");
  if (result == j.end()) return InvalidArgument(m + ": neither result nor error in the answer");
  return std::move(*result);
} catch (const std::exception& e) {
  return JsonException(method, e);
}

struct RpcClient::Impl {
  http::Client client;
  std::string target;  // the URL's path and query ("/" when none)
  std::string url_for_messages;
  uint64_t next_id = 1;
};

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RpcClient::RpcClient(RpcClient&&) noexcept = default;
RpcClient& RpcClient::operator=(RpcClient&&) noexcept = default;
RpcClient::~RpcClient() = default;

StatusOr<RpcClient> RpcClient::Create(RpcOptions o) {
  const size_t scheme = o.url.find("://");
  if (scheme == std::string::npos) {
    return InvalidArgument("RPC URL '" + http::Printable(http::RedactUrl(o.url), 200) +
                           "': expected http(s)://HOST[:PORT][/PATH]");
  }
  const size_t path = o.url.find_first_of("/?", scheme + 3);
  std::string base = path == std::string::npos ? o.url : o.url.substr(0, path);
  std::string target = path == std::string::npos ? "/" : o.url.substr(path);
  if (target.front() == '?') target.insert(0, "/");
  // Providers put API keys in the path: messages show only the origin.
  std::string shown = http::RedactUrl(base) + (target == "/" ? "" : "/...");
  http::ClientOptions co;
  co.base_url = std::move(base);
  co.ca_file = o.ca_file;
  co.timeout = o.timeout;
  co.connect_timeout = std::min(o.timeout, std::chrono::milliseconds(10'000));
  co.max_response_bytes = kMaxResponseBytes;
  auto client = http::Client::Create(std::move(co));
  if (!client.ok()) return client.status().WithContext("RPC URL");
  auto impl = std::make_unique<Impl>(
      Impl{std::move(client).value(), std::move(target), std::move(shown), 1});
  return RpcClient(std::move(impl));
}

const std::string& RpcClient::url_for_messages() const {
  return impl_->url_for_messages;
}

StatusOr<json> RpcClient::Call(std::string_view method, json params) {
  Impl& im = *impl_;
  const std::string m(method);
  const uint64_t id = im.next_id++;
  http::ClientRequest req;
  req.method = "POST";
  req.target = im.target;
  req.headers = {{"Content-Type", "application/json"}};
  req.body =
      json{{"jsonrpc", "2.0"}, {"id", id}, {"method", m}, {"params", std::move(params)}}.dump();
  auto resp = im.client.Send(req);
  if (!resp.ok()) {
    // http::Client words its transport errors for the plane; this is a node.
    std::string msg = resp.status().message();
    for (size_t at; (at = msg.find("the plane")) != std::string::npos;) {
      msg.replace(at, 9, "the node");
    }
    return Status(resp.status().code(), m + ": Ethereum node " + im.url_for_messages + ": " + msg);
  }
  if (resp->status != 200) {
    // Some providers answer JSON-RPC errors with 4xx/5xx: report those as such.
    auto parsed = ParseRpcResponse(resp->body, id, method);
    if (!parsed.ok() && parsed.status().code() == StatusCode::kFailedPrecondition) {
      return parsed.status();
    }
    return Unavailable(m + ": Ethereum node " + im.url_for_messages + " answered HTTP " +
                       std::to_string(resp->status) + ": " + http::Printable(resp->body, 200));
  }
  return ParseRpcResponse(resp->body, id, method);
}

StatusOr<uint64_t> RpcClient::ChainId() {
  ASSIGN_OR_RETURN(json r, Call("eth_chainId", json::array()));
  return QuantityValue64(r, "eth_chainId: result");
}

StatusOr<uint64_t> RpcClient::BlockNumber() {
  ASSIGN_OR_RETURN(json r, Call("eth_blockNumber", json::array()));
  return QuantityValue64(r, "eth_blockNumber: result");
}

StatusOr<std::optional<Block>> RpcClient::BlockByNumber(uint64_t n) {
  ASSIGN_OR_RETURN(json r, Call("eth_getBlockByNumber", json::array({Q(n), false})));
  if (r.is_null()) return std::optional<Block>();
  ASSIGN_OR_RETURN(Block b, BlockFromJson(r, "eth_getBlockByNumber: result"));
  if (b.number != n) {
    return DataLoss("eth_getBlockByNumber: asked for block " + std::to_string(n) +
                    ", the node answered with block " + std::to_string(b.number));
  }
  return std::optional<Block>(std::move(b));
}

StatusOr<std::optional<Block>> RpcClient::LatestBlock() {
  ASSIGN_OR_RETURN(json r, Call("eth_getBlockByNumber", json::array({"latest", false})));
  if (r.is_null()) return std::optional<Block>();
  ASSIGN_OR_RETURN(Block b, BlockFromJson(r, "eth_getBlockByNumber: result"));
  return std::optional<Block>(std::move(b));
}

StatusOr<std::vector<Log>> RpcClient::GetLogs(const Address& contract,
                                              const std::vector<Hash32>& topic0_any, uint64_t from,
                                              uint64_t to) {
  if (from > to) {
    return InvalidArgument("eth_getLogs: fromBlock " + std::to_string(from) + " > toBlock " +
                           std::to_string(to));
  }
  json filter{{"address", contract.Hex()}, {"fromBlock", Q(from)}, {"toBlock", Q(to)}};
  if (!topic0_any.empty()) {
    json any = json::array();
    for (const Hash32& t : topic0_any) any.push_back(t.Hex());
    filter["topics"] = json::array({any});
  }
  ASSIGN_OR_RETURN(json r, Call("eth_getLogs", json::array({filter})));
  if (!r.is_array()) return InvalidArgument("eth_getLogs: result: expected an array");
  std::vector<Log> logs;
  logs.reserve(r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    const std::string field = "eth_getLogs: result[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(Log l, LogFromJson(r[i], field));
    // The filter is the node's to apply; what it returns is checked anyway,
    // so a confused or lying node cannot slip in another contract's event.
    if (l.address != contract) {
      return DataLoss(field + ": a log of " + l.address.Hex() + ", not of " + contract.Hex());
    }
    if (l.block_number < from || l.block_number > to) {
      return DataLoss(field + ": block " + std::to_string(l.block_number) + " outside [" +
                      std::to_string(from) + ", " + std::to_string(to) + "]");
    }
    if (!topic0_any.empty() && (l.topics.empty() || std::find(topic0_any.begin(), topic0_any.end(),
                                                              l.topics[0]) == topic0_any.end())) {
      return DataLoss(field + ": topic0 is not one asked for");
    }
    if (l.removed) return DataLoss(field + ": removed (the node is reorganising)");
    logs.push_back(std::move(l));
  }
  return logs;
}

StatusOr<uint64_t> RpcClient::PendingNonce(const Address& a) {
  ASSIGN_OR_RETURN(json r, Call("eth_getTransactionCount", json::array({a.Hex(), "pending"})));
  return QuantityValue64(r, "eth_getTransactionCount: result");
}

StatusOr<U256> RpcClient::Balance(const Address& a) {
  ASSIGN_OR_RETURN(json r, Call("eth_getBalance", json::array({a.Hex(), "latest"})));
  if (!r.is_string()) return InvalidArgument("eth_getBalance: result: expected a string");
  return ParseQuantity(r.get<std::string>(), "eth_getBalance: result");
}

StatusOr<Hash32> RpcClient::SendRawTransaction(crypto::ByteSpan raw) {
  ASSIGN_OR_RETURN(json r, Call("eth_sendRawTransaction", json::array({ToHex(raw)})));
  if (!r.is_string()) return InvalidArgument("eth_sendRawTransaction: result: expected a string");
  ASSIGN_OR_RETURN(Hash32 h, ParseHash32(r.get<std::string>(), "eth_sendRawTransaction: result"));
  const Hash32 expected = Keccak256(raw);
  if (h != expected) {
    return DataLoss("eth_sendRawTransaction: the node names transaction " + h.Hex() +
                    ", the one sent is " + expected.Hex());
  }
  return h;
}

StatusOr<std::optional<Receipt>> RpcClient::TransactionReceipt(const Hash32& tx) {
  ASSIGN_OR_RETURN(json r, Call("eth_getTransactionReceipt", json::array({tx.Hex()})));
  if (r.is_null()) return std::optional<Receipt>();
  ASSIGN_OR_RETURN(Receipt receipt, ReceiptFromJson(r, "eth_getTransactionReceipt: result"));
  if (receipt.tx_hash != tx) {
    return DataLoss("eth_getTransactionReceipt: asked for " + tx.Hex() + ", got the receipt of " +
                    receipt.tx_hash.Hex());
  }
  return std::optional<Receipt>(std::move(receipt));
}

namespace {
StatusOr<crypto::Bytes> CallResult(const json& r) {
  if (!r.is_string()) return InvalidArgument("eth_call: result: expected a string");
  return ParseHex(r.get<std::string>(), "eth_call: result");
}
}  // namespace

StatusOr<crypto::Bytes> RpcClient::EthCall(const Address& to, crypto::ByteSpan data,
                                           std::optional<Address> from) {
  json call{{"to", to.Hex()}, {"data", ToHex(data)}};
  if (from) call["from"] = from->Hex();
  ASSIGN_OR_RETURN(json r, Call("eth_call", json::array({call, "latest"})));
  return CallResult(r);
}

StatusOr<crypto::Bytes> RpcClient::EthCallAt(const Address& to, crypto::ByteSpan data,
                                             std::optional<Address> from, const U256& value,
                                             uint64_t block) {
  json call{{"to", to.Hex()}, {"data", ToHex(data)}, {"value", ToQuantity(value)}};
  if (from) call["from"] = from->Hex();
  ASSIGN_OR_RETURN(json r, Call("eth_call", json::array({call, Q(block)})));
  return CallResult(r);
}

StatusOr<uint64_t> RpcClient::EstimateGas(const Address& from, const std::optional<Address>& to,
                                          const U256& value, crypto::ByteSpan data) {
  json call{{"from", from.Hex()}, {"value", ToQuantity(value)}, {"data", ToHex(data)}};
  if (to) call["to"] = to->Hex();
  ASSIGN_OR_RETURN(json r, Call("eth_estimateGas", json::array({call})));
  return QuantityValue64(r, "eth_estimateGas: result");
}

StatusOr<U256> RpcClient::MaxPriorityFeePerGas() {
  ASSIGN_OR_RETURN(json r, Call("eth_maxPriorityFeePerGas", json::array()));
  if (!r.is_string()) return InvalidArgument("eth_maxPriorityFeePerGas: result: expected a string");
  return ParseQuantity(r.get<std::string>(), "eth_maxPriorityFeePerGas: result");
}

StatusOr<crypto::Bytes> RpcClient::GetCode(const Address& a) {
  ASSIGN_OR_RETURN(json r, Call("eth_getCode", json::array({a.Hex(), "latest"})));
  if (!r.is_string()) return InvalidArgument("eth_getCode: result: expected a string");
  return ParseHex(r.get<std::string>(), "eth_getCode: result");
}

}  // namespace cce::eth
