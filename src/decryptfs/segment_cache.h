// SegmentCache: a bounded, sharded LRU of decrypted segments keyed by
// (inode, segment index), private to DecryptFS. All slots live in one
// mlock'd, wiped-on-destruction arena (crypto::SecretBytes), allocated once,
// so the cache never grows and plaintext never reaches swap or core dumps.
//
// A slot is filled where it lives: the reader claims it, decrypts the
// segment into it (from an O_DIRECT read buffer, or in place after reading
// the sealed bytes into it) and publishes it. Readers that find a segment
// being filled wait for it instead of decrypting it twice.
//
// Invariant: outside of an active Fill, every byte of a slot beyond the
// published plaintext length is zero, and a free slot is all zero; a fill
// that fails wipes its slot. Old plaintext therefore never outlives its entry.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "crypto/crypto.h"

namespace cce::decryptfs {

struct SegmentKey {
  uint64_t ino = 0;
  uint64_t index = 0;
  bool operator==(const SegmentKey&) const = default;
};

struct SegmentKeyHash {
  size_t operator()(const SegmentKey& k) const;
};

class SegmentCache {
 private:
  struct Shard;

 public:
  // capacity_bytes / slot_bytes slots, split over at most `shards` shards
  // (fewer if there are fewer slots). A capacity below one slot disables
  // caching: every Claim then reports kFull.
  SegmentCache(size_t capacity_bytes, size_t slot_bytes, unsigned shards = 16);
  ~SegmentCache();
  SegmentCache(const SegmentCache&) = delete;
  SegmentCache& operator=(const SegmentCache&) = delete;

  // A read-only view of a published segment. While any Pin exists the
  // segment is not evicted. Move-only; must not outlive the cache.
  class Pin {
   public:
    Pin() = default;
    Pin(Pin&& o) noexcept { *this = std::move(o); }
    Pin& operator=(Pin&& o) noexcept;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    ~Pin() { Reset(); }

    explicit operator bool() const { return shard_ != nullptr; }
    std::span<const uint8_t> data() const { return {data_, size_}; }
    void Reset();

   private:
    friend class SegmentCache;
    Pin(Shard* shard, uint32_t slot, const uint8_t* data, size_t size)
        : shard_(shard), slot_(slot), data_(data), size_(size) {}
    Shard* shard_ = nullptr;
    uint32_t slot_ = 0;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
  };

  // Exclusive write access to a claimed slot. Until Publish, lookups of its
  // key wait. Destroying an unpublished Fill abandons it: the slot is wiped
  // and freed and waiters see a miss.
  class Fill {
   public:
    Fill() = default;
    Fill(Fill&& o) noexcept { *this = std::move(o); }
    Fill& operator=(Fill&& o) noexcept;
    Fill(const Fill&) = delete;
    Fill& operator=(const Fill&) = delete;
    ~Fill() { Abandon(); }

    explicit operator bool() const { return shard_ != nullptr; }
    // The whole slot (slot_bytes), to be written by the caller.
    std::span<uint8_t> buffer() const { return {data_, size_}; }
    // Makes the first `size` bytes visible under the key (the rest of the
    // slot is wiped) and returns a pin on them.
    Pin Publish(size_t size);
    void Abandon();

   private:
    friend class SegmentCache;
    Fill(Shard* shard, uint32_t slot, uint8_t* data, size_t size)
        : shard_(shard), slot_(slot), data_(data), size_(size) {}
    Shard* shard_ = nullptr;
    uint32_t slot_ = 0;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
  };

  // Returns a pin on the published segment, or an empty pin on a miss. If
  // the segment is being filled, waits for the fill when wait_for_fill is
  // set (and reports a miss otherwise, or if the fill is abandoned).
  Pin Lookup(const SegmentKey& key, bool wait_for_fill);

  enum class ClaimStatus {
    kClaimed,  // fill holds the slot
    kPresent,  // the key is published or being filled already
    kFull,     // every slot of the shard is pinned or being filled
  };
  struct Claimed {
    ClaimStatus status = ClaimStatus::kFull;
    Fill fill;
  };
  // Claims a slot for `key`, evicting the least recently used unpinned
  // segment of its shard if no slot is free.
  Claimed Claim(const SegmentKey& key);

  size_t slot_bytes() const { return slot_bytes_; }
  size_t slot_count() const { return slot_count_; }

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t waits = 0;  // lookups that waited for a fill in progress
    uint64_t evictions = 0;
    uint64_t full = 0;  // claims refused because the shard was full
  };
  Stats stats() const;

 private:
  Shard& ShardFor(size_t hash);

  size_t slot_bytes_;
  size_t slot_count_ = 0;
  crypto::SecretBytes arena_;  // slot_count_ * slot_bytes_; wiped on destruction
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace cce::decryptfs
