#include "slow_connections.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "base/fd.h"

namespace cce::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// How often the loop wakes without events: sends due lines and replaces
// closed connections. Lines are a second apart, so 20 ms is precise enough.
constexpr int kTickMs = 20;
// After a failure, at most this many new connections per tick (a server that
// refuses everything is not hammered 5000 times a second).
constexpr size_t kOpensPerTickAfterFailure = 8;

enum class State { kConnecting, kHandshaking, kHeld };

struct Connection {
  // Declared before `ssl` so that the SSL object (which does not own the
  // fd) is freed first.
  UniqueFd fd;
  std::unique_ptr<SSL, SslFree> ssl;
  State state = State::kConnecting;
  uint32_t generation = 0;  // with the slot index, names this connection in epoll events
  uint32_t interest = 0;    // events registered with epoll
  Clock::time_point next_line;
  uint64_t lines = 0;
  std::string unsent;  // a line SSL_write has not taken yet: retried with the same bytes
};

// The reason for the OpenSSL failure just seen (errno when OpenSSL queued
// none; a bare EOF is a close by the peer).
std::string SslErrorText() {
  const int saved_errno = errno;
  std::array<char, 256> buf{};
  const unsigned long e = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  if (e == 0) return saved_errno != 0 ? std::strerror(saved_errno) : "closed by the server";
  ERR_error_string_n(e, buf.data(), buf.size());
  ERR_clear_error();
  return buf.data();
}

}  // namespace

struct SlowConnections::Impl {
  SlowConnectionOptions options;
  sockaddr_in address{};
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  UniqueFd epoll;
  std::thread thread;
  std::atomic<bool> stop{false};

  // Owned by the loop thread alone.
  std::vector<std::unique_ptr<Connection>> slots;  // epoll data: generation << 32 | index
  std::vector<size_t> free_slots;
  uint32_t next_generation = 1;
  std::mt19937_64 rng{std::random_device{}()};
  SlowConnectionStats local;  // the loop's counters, published to `stats` each iteration
  Clock::time_point last_failure;

  // mu guards everything below it.
  mutable std::mutex mu;
  SlowConnectionStats stats;
  bool window_open = false;
  Clock::time_point window_start;
  Clock::time_point window_last;  // when `held` was last integrated
  double held_integral = 0;       // connection-seconds since window_start
  size_t window_min = 0;
  size_t window_max = 0;
  SlowConnectionStats at_window_start;

  void Loop();
  void Publish(Clock::time_point now);
  void Tick(Clock::time_point now);
  bool Open();
  void OnEvent(size_t index, uint32_t events);
  // Each of these may close the connection (its slot is then empty).
  void Handshake(size_t index);
  void SendLine(size_t index);
  void Flush(size_t index);
  void Drain(size_t index);
  void SetInterest(Connection& c, size_t index, uint32_t events);
  void Fail(size_t index, const std::string& why);
  void Close(size_t index);
  Clock::duration NextGap();
};

void SlowConnections::Impl::Loop() {
  std::array<epoll_event, 256> events{};
  while (!stop.load(std::memory_order_relaxed)) {
    const int n =
        ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), kTickMs);
    if (n < 0 && errno != EINTR) {
      local.last_failure = std::string("epoll_wait: ") + std::strerror(errno);
      Publish(Clock::now());
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t data = events[static_cast<size_t>(i)].data.u64;
      const auto index = static_cast<size_t>(data & 0xffffffffu);
      const auto generation = static_cast<uint32_t>(data >> 32);
      // A connection closed earlier in this batch leaves its slot empty (slots
      // are reused only in Tick, after the batch).
      if (index >= slots.size() || !slots[index] || slots[index]->generation != generation) {
        continue;
      }
      OnEvent(index, events[static_cast<size_t>(i)].events);
    }
    const auto now = Clock::now();
    Tick(now);
    Publish(now);
  }
}

void SlowConnections::Impl::Publish(Clock::time_point now) {
  std::lock_guard<std::mutex> l(mu);
  if (window_open) {
    held_integral +=
        static_cast<double>(stats.held) * std::chrono::duration<double>(now - window_last).count();
    window_last = now;
    window_min = std::min(window_min, local.held);
    window_max = std::max(window_max, local.held);
  }
  stats = local;
}

void SlowConnections::Impl::Tick(Clock::time_point now) {
  for (size_t i = 0; i < slots.size(); ++i) {
    Connection* c = slots[i].get();
    if (c != nullptr && c->state == State::kHeld && c->next_line <= now) {
      c->next_line = now + NextGap();
      SendLine(i);
    }
  }
  const size_t budget =
      now - last_failure < std::chrono::milliseconds(100) ? kOpensPerTickAfterFailure : SIZE_MAX;
  for (size_t opened = 0; opened < budget && local.held + local.opening < options.target &&
                          local.opening < options.max_opening;
       ++opened) {
    if (!Open()) break;
  }
}

Clock::duration SlowConnections::Impl::NextGap() {
  const auto mean = std::chrono::duration_cast<std::chrono::microseconds>(options.line_interval);
  std::uniform_int_distribution<int64_t> gap(mean.count() * 3 / 4, mean.count() * 5 / 4);
  return std::chrono::microseconds(gap(rng));
}

bool SlowConnections::Impl::Open() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    // EMFILE and the like: no connection can be opened this tick.
    ++local.failed;
    local.last_failure = std::string("socket: ") + std::strerror(errno);
    last_failure = Clock::now();
    return false;
  }
  const int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    ++local.failed;
    local.last_failure = std::string("connect: ") + std::strerror(errno);
    last_failure = Clock::now();
    return false;
  }
  size_t index = 0;
  if (!free_slots.empty()) {
    index = free_slots.back();
    free_slots.pop_back();
  } else {
    index = slots.size();
    slots.emplace_back();
  }
  auto c = std::make_unique<Connection>();
  c->fd = std::move(fd);
  c->generation = next_generation++;
  slots[index] = std::move(c);
  ++local.opening;
  // Writable once the TCP connect has finished (or failed).
  Connection& conn = *slots[index];
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = (uint64_t{conn.generation} << 32) | index;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, conn.fd.get(), &ev) != 0) {
    Fail(index, std::string("epoll_ctl: ") + std::strerror(errno));
    return false;
  }
  conn.interest = EPOLLOUT;
  return true;
}

void SlowConnections::Impl::SetInterest(Connection& c, size_t index, uint32_t events) {
  if (c.interest == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (uint64_t{c.generation} << 32) | index;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0) c.interest = events;
}

void SlowConnections::Impl::OnEvent(size_t index, uint32_t events) {
  Connection& c = *slots[index];
  switch (c.state) {
    case State::kConnecting: {
      int error = 0;
      socklen_t len = sizeof(error);
      if (::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
      if (error != 0 || (events & (EPOLLERR | EPOLLHUP)) != 0) {
        Fail(index, std::string("connect: ") + std::strerror(error != 0 ? error : ECONNRESET));
        return;
      }
      c.ssl.reset(SSL_new(ctx.get()));
      if (!c.ssl || SSL_set_fd(c.ssl.get(), c.fd.get()) != 1) {
        Fail(index, "SSL_new: " + SslErrorText());
        return;
      }
      SSL_set_connect_state(c.ssl.get());
      c.state = State::kHandshaking;
      Handshake(index);
      return;
    }
    case State::kHandshaking: Handshake(index); return;
    case State::kHeld:
      if ((events & EPOLLOUT) != 0 && !c.unsent.empty()) Flush(index);
      if (slots[index] && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        Drain(index);
      }
      return;
  }
}

void SlowConnections::Impl::Handshake(size_t index) {
  Connection& c = *slots[index];
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    c.state = State::kHeld;
    --local.opening;
    ++local.held;
    ++local.established;
    SetInterest(c, index, EPOLLIN | EPOLLRDHUP);
    c.next_line = Clock::now() + NextGap();
    SendLine(index);
    return;
  }
  switch (SSL_get_error(c.ssl.get(), r)) {
    case SSL_ERROR_WANT_READ: SetInterest(c, index, EPOLLIN | EPOLLRDHUP); return;
    case SSL_ERROR_WANT_WRITE: SetInterest(c, index, EPOLLOUT); return;
    default: Fail(index, "TLS handshake: " + SslErrorText()); return;
  }
}

void SlowConnections::Impl::SendLine(size_t index) {
  Connection& c = *slots[index];
  if (!c.unsent.empty()) return;  // the last line is still waiting for the socket
  c.unsent = c.lines == 0 ? "GET /api/v1/whoami HTTP/1.1\r\nHost: " + options.host + "\r\n"
                          : "X-Slow-" + std::to_string(c.lines) + ": x\r\n";
  ++c.lines;
  Flush(index);
}

void SlowConnections::Impl::Flush(size_t index) {
  Connection& c = *slots[index];
  ERR_clear_error();
  const int r = SSL_write(c.ssl.get(), c.unsent.data(), static_cast<int>(c.unsent.size()));
  if (r > 0) {
    c.unsent.clear();
    ++local.lines_sent;
    SetInterest(c, index, EPOLLIN | EPOLLRDHUP);
    return;
  }
  switch (SSL_get_error(c.ssl.get(), r)) {
    case SSL_ERROR_WANT_WRITE: SetInterest(c, index, EPOLLIN | EPOLLRDHUP | EPOLLOUT); return;
    case SSL_ERROR_WANT_READ: SetInterest(c, index, EPOLLIN | EPOLLRDHUP); return;
    default:
      // EPIPE/ECONNRESET: the server has closed it.
      ++local.closed_by_server;
      Close(index);
      return;
  }
}

// Readable while held: the server's answer (an error status) or its close.
void SlowConnections::Impl::Drain(size_t index) {
  Connection& c = *slots[index];
  std::array<char, 4096> buf{};
  for (;;) {
    ERR_clear_error();
    const int r = SSL_read(c.ssl.get(), buf.data(), static_cast<int>(buf.size()));
    if (r > 0) continue;
    switch (SSL_get_error(c.ssl.get(), r)) {
      case SSL_ERROR_WANT_READ:  // e.g. a TLS 1.3 session ticket, nothing more
      case SSL_ERROR_WANT_WRITE: return;
      default:
        ++local.closed_by_server;
        Close(index);
        return;
    }
  }
}

void SlowConnections::Impl::Fail(size_t index, const std::string& why) {
  ++local.failed;
  local.last_failure = why;
  last_failure = Clock::now();
  Close(index);
}

void SlowConnections::Impl::Close(size_t index) {
  Connection& c = *slots[index];
  if (c.state == State::kHeld) {
    --local.held;
  } else {
    --local.opening;
  }
  slots[index].reset();  // closing the fd also removes it from the epoll set
  free_slots.push_back(index);
}

SlowConnections::SlowConnections(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SlowConnections::~SlowConnections() {
  impl_->stop = true;
  if (impl_->thread.joinable()) impl_->thread.join();
}

StatusOr<std::unique_ptr<SlowConnections>> SlowConnections::Start(SlowConnectionOptions options) {
  // A server that closes while a line is being written must not end the
  // process (OpenSSL writes with write(2), which raises SIGPIPE).
  (void)std::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->address.sin_family = AF_INET;
  impl->address.sin_port = htons(static_cast<uint16_t>(options.port));
  if (::inet_pton(AF_INET, options.host.c_str(), &impl->address.sin_addr) != 1) {
    return InvalidArgument("slow connections: host '" + options.host +
                           "': expected an IPv4 address");
  }
  if (options.port <= 0 || options.port > 65535) {
    return InvalidArgument("slow connections: port " + std::to_string(options.port) +
                           ": out of range");
  }
  impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!impl->ctx) return Internal("SSL_CTX_new: " + SslErrorText());
  SSL_CTX_set_min_proto_version(impl->ctx.get(), TLS1_2_VERSION);
  // An attacker has no reason to check the server's certificate, and every
  // connection makes a full handshake (no session resumption), which is the
  // expensive case for the server.
  SSL_CTX_set_verify(impl->ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(impl->ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(impl->ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(impl->ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  impl->epoll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll.valid()) return Internal(std::string("epoll_create1: ") + std::strerror(errno));
  impl->options = std::move(options);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<SlowConnections>(new SlowConnections(std::move(impl)));
}

SlowConnectionStats SlowConnections::Stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->stats;
}

void SlowConnections::BeginWindow() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  im.window_open = true;
  im.window_start = im.window_last = Clock::now();
  im.held_integral = 0;
  im.window_min = im.window_max = im.stats.held;
  im.at_window_start = im.stats;
}

HeldWindow SlowConnections::EndWindow() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  const auto now = Clock::now();
  HeldWindow w;
  if (!im.window_open) return w;
  im.held_integral += static_cast<double>(im.stats.held) *
                      std::chrono::duration<double>(now - im.window_last).count();
  im.window_open = false;
  w.seconds = std::chrono::duration<double>(now - im.window_start).count();
  w.mean = w.seconds > 0 ? im.held_integral / w.seconds : 0;
  w.min = std::min(im.window_min, im.stats.held);
  w.max = std::max(im.window_max, im.stats.held);
  w.established = im.stats.established - im.at_window_start.established;
  w.closed_by_server = im.stats.closed_by_server - im.at_window_start.closed_by_server;
  w.failed = im.stats.failed - im.at_window_start.failed;
  w.lines_sent = im.stats.lines_sent - im.at_window_start.lines_sent;
  return w;
}

}  // namespace cce::bench
