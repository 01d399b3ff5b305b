#include "decryptfs/segment_cache.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cassert>
#include <limits>

namespace cce::decryptfs {

size_t SegmentKeyHash::operator()(const SegmentKey& k) const {
  // splitmix64 finalizer over both halves: consecutive segments of one file
  // spread evenly over the shards.
  uint64_t x = k.ino * 0x9E3779B97F4A7C15ULL ^ k.index;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return static_cast<size_t>(x);
}

struct SegmentCache::Shard {
  static constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
  enum class State : uint8_t { kFree, kFilling, kReady };
  struct Slot {
    uint8_t* data = nullptr;  // fixed: this slot's bytes in the arena
    SegmentKey key;
    size_t hash = 0;  // SegmentKeyHash of key
    size_t size = 0;  // published bytes (kReady)
    uint32_t pins = 0;
    State state = State::kFree;
    uint32_t prev = kNil;  // LRU links; kReady slots only
    uint32_t next = kNil;
    uint32_t bucket_next = kNil;  // hash chain; kFilling and kReady slots
  };

  Shard(size_t bytes, size_t slot_count) : slot_bytes(bytes), slots(slot_count) {
    size_t n = 1;
    while (n < slot_count) n <<= 1;
    buckets.assign(n, kNil);
  }

  // The index below is an intrusive chained hash table over the slots:
  // fixed size, no allocation on the read path.
  uint32_t& Bucket(size_t hash) {
    // The shard was chosen by the low bits; use the high ones here.
    return buckets[(hash >> 32) & (buckets.size() - 1)];
  }
  uint32_t Find(const SegmentKey& key, size_t hash) {
    for (uint32_t i = Bucket(hash); i != kNil; i = slots[i].bucket_next) {
      if (slots[i].hash == hash && slots[i].key == key) return i;
    }
    return kNil;
  }
  void Index(uint32_t i) {
    uint32_t& head = Bucket(slots[i].hash);
    slots[i].bucket_next = head;
    head = i;
  }
  void Unindex(uint32_t i) {
    for (uint32_t* p = &Bucket(slots[i].hash); *p != kNil; p = &slots[*p].bucket_next) {
      if (*p == i) {
        *p = slots[i].bucket_next;
        slots[i].bucket_next = kNil;
        return;
      }
    }
  }

  // Unlinks a kReady slot from the LRU list.
  void Unlink(uint32_t i) {
    Slot& s = slots[i];
    (s.prev == kNil ? lru_head : slots[s.prev].next) = s.next;
    (s.next == kNil ? lru_tail : slots[s.next].prev) = s.prev;
    s.prev = s.next = kNil;
  }
  void PushFront(uint32_t i) {
    Slot& s = slots[i];
    s.prev = kNil;
    s.next = lru_head;
    if (lru_head != kNil) slots[lru_head].prev = i;
    lru_head = i;
    if (lru_tail == kNil) lru_tail = i;
  }

  const size_t slot_bytes;

  std::mutex mu;
  // Signalled (under no lock) whenever a fill is published or abandoned.
  std::condition_variable fill_done;

  // Everything below is guarded by mu. The bytes a slot points to are not:
  // they belong to the Fill while kFilling and are read-only while kReady.
  std::vector<Slot> slots;
  // Hash chains (through Slot::bucket_next) of every kFilling and kReady slot.
  std::vector<uint32_t> buckets;
  std::vector<uint32_t> free_slots;  // kFree slots (all-zero bytes)
  uint32_t lru_head = kNil;          // most recently used kReady slot
  uint32_t lru_tail = kNil;          // least recently used kReady slot
  Stats stats;
};

SegmentCache::SegmentCache(size_t capacity_bytes, size_t slot_bytes, unsigned shards)
    : slot_bytes_(std::max<size_t>(slot_bytes, 1)) {
  slot_count_ = capacity_bytes / slot_bytes_;
  size_t shard_count = std::clamp<size_t>(slot_count_, 1, std::max(1u, shards));
  if (slot_count_ > 0) arena_ = crypto::SecretBytes(slot_count_ * slot_bytes_);
  size_t next_slot = 0;
  for (size_t i = 0; i < shard_count; ++i) {
    // Spread the remainder over the first shards.
    size_t n = slot_count_ / shard_count + (i < slot_count_ % shard_count ? 1 : 0);
    auto shard = std::make_unique<Shard>(slot_bytes_, n);
    for (size_t j = 0; j < n; ++j) {
      shard->slots[j].data = arena_.data() + (next_slot++) * slot_bytes_;
      shard->free_slots.push_back(static_cast<uint32_t>(n - 1 - j));
    }
    shards_.push_back(std::move(shard));
  }
}

// arena_ wipes every slot. Pins and fills must be gone by now.
SegmentCache::~SegmentCache() = default;

SegmentCache::Shard& SegmentCache::ShardFor(size_t hash) {
  return *shards_[hash % shards_.size()];
}

SegmentCache::Pin SegmentCache::Lookup(const SegmentKey& key, bool wait_for_fill) {
  const size_t hash = SegmentKeyHash{}(key);
  Shard& s = ShardFor(hash);
  std::unique_lock<std::mutex> lock(s.mu);
  bool waited = false;
  for (;;) {
    uint32_t i = s.Find(key, hash);
    if (i == Shard::kNil) {
      ++s.stats.misses;
      return {};
    }
    Shard::Slot& slot = s.slots[i];
    if (slot.state == Shard::State::kFilling) {
      if (!wait_for_fill) {
        ++s.stats.misses;
        return {};
      }
      if (!waited) ++s.stats.waits;
      waited = true;
      // The slot may be reused for another key meanwhile: look it up again.
      s.fill_done.wait(lock);
      continue;
    }
    ++slot.pins;
    s.Unlink(i);
    s.PushFront(i);
    ++s.stats.hits;
    return {&s, i, slot.data, slot.size};
  }
}

SegmentCache::Claimed SegmentCache::Claim(const SegmentKey& key) {
  const size_t hash = SegmentKeyHash{}(key);
  Shard& s = ShardFor(hash);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.Find(key, hash) != Shard::kNil) return {ClaimStatus::kPresent, {}};
  uint32_t i = Shard::kNil;
  if (!s.free_slots.empty()) {
    i = s.free_slots.back();
    s.free_slots.pop_back();
  } else {
    for (uint32_t j = s.lru_tail; j != Shard::kNil; j = s.slots[j].prev) {
      if (s.slots[j].pins == 0) {
        i = j;
        break;
      }
    }
    if (i == Shard::kNil) {
      ++s.stats.full;
      return {ClaimStatus::kFull, {}};
    }
    // The evicted plaintext stays in the slot only until the new owner
    // overwrites it; Publish wipes whatever the new segment does not cover
    // and Abandon wipes everything.
    s.Unlink(i);
    s.Unindex(i);
    ++s.stats.evictions;
  }
  Shard::Slot& slot = s.slots[i];
  slot.key = key;
  slot.hash = hash;
  slot.size = 0;
  slot.pins = 0;
  slot.state = Shard::State::kFilling;
  s.Index(i);
  return {ClaimStatus::kClaimed, Fill(&s, i, slot.data, s.slot_bytes)};
}

SegmentCache::Stats SegmentCache::stats() const {
  Stats total;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    total.hits += s->stats.hits;
    total.misses += s->stats.misses;
    total.waits += s->stats.waits;
    total.evictions += s->stats.evictions;
    total.full += s->stats.full;
  }
  return total;
}

// ---- Pin ----

SegmentCache::Pin& SegmentCache::Pin::operator=(Pin&& o) noexcept {
  if (this != &o) {
    Reset();
    shard_ = o.shard_;
    slot_ = o.slot_;
    data_ = o.data_;
    size_ = o.size_;
    o.shard_ = nullptr;
  }
  return *this;
}

void SegmentCache::Pin::Reset() {
  if (shard_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(shard_->mu);
    assert(shard_->slots[slot_].pins > 0);
    --shard_->slots[slot_].pins;
  }
  shard_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

// ---- Fill ----

SegmentCache::Fill& SegmentCache::Fill::operator=(Fill&& o) noexcept {
  if (this != &o) {
    Abandon();
    shard_ = o.shard_;
    slot_ = o.slot_;
    data_ = o.data_;
    size_ = o.size_;
    o.shard_ = nullptr;
  }
  return *this;
}

SegmentCache::Pin SegmentCache::Fill::Publish(size_t size) {
  assert(shard_ != nullptr && size <= size_);
  size = std::min(size, size_);
  // The slot is ours alone until it is published: wipe without the lock.
  if (size < size_) OPENSSL_cleanse(data_ + size, size_ - size);
  Shard* shard = shard_;
  {
    std::lock_guard<std::mutex> lock(shard->mu);
    Shard::Slot& slot = shard->slots[slot_];
    slot.state = Shard::State::kReady;
    slot.size = size;
    slot.pins = 1;  // the returned pin
    shard->PushFront(slot_);
  }
  shard->fill_done.notify_all();
  Pin pin(shard, slot_, data_, size);
  shard_ = nullptr;
  return pin;
}

void SegmentCache::Fill::Abandon() {
  if (shard_ == nullptr) return;
  OPENSSL_cleanse(data_, size_);
  Shard* shard = shard_;
  {
    std::lock_guard<std::mutex> lock(shard->mu);
    Shard::Slot& slot = shard->slots[slot_];
    shard->Unindex(slot_);
    slot.state = Shard::State::kFree;
    slot.size = 0;
    shard->free_slots.push_back(slot_);
  }
  shard->fill_done.notify_all();
  shard_ = nullptr;
}

}  // namespace cce::decryptfs
