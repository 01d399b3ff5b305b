#include "decryptfs/segment_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace cce::decryptfs {
namespace {

constexpr size_t kSlot = 64;

// Claims key, fills it with `value` bytes and publishes `size` of them.
SegmentCache::Pin Put(SegmentCache& c, SegmentKey key, uint8_t value, size_t size = kSlot) {
  SegmentCache::Claimed cl = c.Claim(key);
  EXPECT_EQ(cl.status, SegmentCache::ClaimStatus::kClaimed);
  if (cl.status != SegmentCache::ClaimStatus::kClaimed) return {};
  std::memset(cl.fill.buffer().data(), value, cl.fill.buffer().size());
  return cl.fill.Publish(size);
}

bool AllBytes(std::span<const uint8_t> s, uint8_t v) {
  return std::all_of(s.begin(), s.end(), [v](uint8_t b) { return b == v; });
}

TEST(SegmentCache, MissThenClaimPublishHit) {
  SegmentCache c(4 * kSlot, kSlot, 1);
  EXPECT_FALSE(c.Lookup({1, 0}, true));
  { SegmentCache::Pin p = Put(c, {1, 0}, 0xab, 40); }
  SegmentCache::Pin p = c.Lookup({1, 0}, true);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.data().size(), 40u);
  EXPECT_TRUE(AllBytes(p.data(), 0xab));
  EXPECT_FALSE(c.Lookup({1, 1}, true));
  EXPECT_FALSE(c.Lookup({2, 0}, true));
  EXPECT_EQ(c.stats().hits, 1u);
}

TEST(SegmentCache, ClaimOfPresentKeyIsRefused) {
  SegmentCache c(4 * kSlot, kSlot, 1);
  SegmentCache::Claimed first = c.Claim({1, 0});
  ASSERT_EQ(first.status, SegmentCache::ClaimStatus::kClaimed);
  EXPECT_EQ(c.Claim({1, 0}).status, SegmentCache::ClaimStatus::kPresent);  // being filled
  first.fill.Publish(kSlot);
  EXPECT_EQ(c.Claim({1, 0}).status, SegmentCache::ClaimStatus::kPresent);  // published
}

TEST(SegmentCache, EvictsLeastRecentlyUsed) {
  SegmentCache c(3 * kSlot, kSlot, 1);
  Put(c, {1, 0}, 0);
  Put(c, {1, 1}, 1);
  Put(c, {1, 2}, 2);
  EXPECT_TRUE(c.Lookup({1, 0}, false));  // 0 is now the most recent; 1 the least
  Put(c, {1, 3}, 3);
  EXPECT_FALSE(c.Lookup({1, 1}, false));
  EXPECT_TRUE(c.Lookup({1, 0}, false));
  EXPECT_TRUE(c.Lookup({1, 2}, false));
  EXPECT_TRUE(c.Lookup({1, 3}, false));
  EXPECT_EQ(c.stats().evictions, 1u);
}

TEST(SegmentCache, PinnedSegmentsAreNotEvicted) {
  SegmentCache c(2 * kSlot, kSlot, 1);
  SegmentCache::Pin a = Put(c, {1, 0}, 0xa);
  SegmentCache::Pin b = Put(c, {1, 1}, 0xb);
  EXPECT_EQ(c.Claim({1, 2}).status, SegmentCache::ClaimStatus::kFull);
  EXPECT_TRUE(AllBytes(a.data(), 0xa));
  EXPECT_TRUE(AllBytes(b.data(), 0xb));
  b.Reset();
  SegmentCache::Pin c2 = Put(c, {1, 2}, 0xc);
  EXPECT_TRUE(AllBytes(a.data(), 0xa));
  EXPECT_FALSE(c.Lookup({1, 1}, false));
}

TEST(SegmentCache, ZeroCapacityCachesNothing) {
  SegmentCache c(kSlot - 1, kSlot);
  EXPECT_EQ(c.slot_count(), 0u);
  EXPECT_EQ(c.Claim({1, 0}).status, SegmentCache::ClaimStatus::kFull);
  EXPECT_FALSE(c.Lookup({1, 0}, true));
}

TEST(SegmentCache, AbandonedFillIsWipedAndReadsAsMiss) {
  SegmentCache c(kSlot, kSlot, 1);
  {
    SegmentCache::Claimed cl = c.Claim({1, 0});
    ASSERT_EQ(cl.status, SegmentCache::ClaimStatus::kClaimed);
    std::memset(cl.fill.buffer().data(), 0x5a, kSlot);
  }  // abandoned
  EXPECT_FALSE(c.Lookup({1, 0}, true));
  // The only slot comes back all zero: nothing of the abandoned fill remains.
  SegmentCache::Claimed again = c.Claim({1, 7});
  ASSERT_EQ(again.status, SegmentCache::ClaimStatus::kClaimed);
  EXPECT_TRUE(AllBytes(again.fill.buffer(), 0));
}

TEST(SegmentCache, PublishWipesTheRestOfAReusedSlot) {
  SegmentCache c(kSlot, kSlot, 1);
  Put(c, {1, 0}, 0x77);                        // full slot of old plaintext
  SegmentCache::Claimed cl = c.Claim({2, 0});  // evicts it
  ASSERT_EQ(cl.status, SegmentCache::ClaimStatus::kClaimed);
  std::memset(cl.fill.buffer().data(), 0x11, 10);  // a short new segment
  uint8_t* raw = cl.fill.buffer().data();
  SegmentCache::Pin p = cl.fill.Publish(10);
  EXPECT_TRUE(AllBytes({raw, 10}, 0x11));
  EXPECT_TRUE(AllBytes({raw + 10, kSlot - 10}, 0));
}

TEST(SegmentCache, LookupWaitsForFillInProgress) {
  SegmentCache c(4 * kSlot, kSlot, 2);
  SegmentCache::Claimed cl = c.Claim({9, 9});
  ASSERT_EQ(cl.status, SegmentCache::ClaimStatus::kClaimed);
  std::atomic<bool> got{false};
  std::thread reader([&] {
    SegmentCache::Pin p = c.Lookup({9, 9}, true);
    EXPECT_TRUE(p);
    if (p) {
      EXPECT_TRUE(AllBytes(p.data(), 0x42));
    }
    got = true;
  });
  EXPECT_FALSE(c.Lookup({9, 9}, false));  // a non-waiting lookup reports a miss
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  std::memset(cl.fill.buffer().data(), 0x42, kSlot);
  cl.fill.Publish(kSlot);
  reader.join();
  EXPECT_TRUE(got.load());
  EXPECT_GE(c.stats().waits, 1u);
}

TEST(SegmentCache, WaiterSeesMissWhenFillIsAbandoned) {
  SegmentCache c(4 * kSlot, kSlot, 1);
  SegmentCache::Claimed cl = c.Claim({3, 3});
  ASSERT_EQ(cl.status, SegmentCache::ClaimStatus::kClaimed);
  std::thread reader([&] { EXPECT_FALSE(c.Lookup({3, 3}, true)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  cl.fill.Abandon();
  reader.join();
}

// Many threads claiming, filling, looking up and evicting: every hit must
// carry the bytes its key was filled with. Run under TSan too.
TEST(SegmentCache, ConcurrentUseNeverMixesUpSegments) {
  SegmentCache c(24 * kSlot, kSlot, 4);
  auto value_of = [](SegmentKey k) { return static_cast<uint8_t>(k.ino * 31 + k.index * 7 + 1); };
  std::atomic<uint64_t> hits{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 4000; ++i) {
        SegmentKey key{rng() % 3 + 1, rng() % 40};
        SegmentCache::Pin p = c.Lookup(key, true);
        if (!p) {
          SegmentCache::Claimed cl = c.Claim(key);
          if (cl.status != SegmentCache::ClaimStatus::kClaimed) continue;
          std::memset(cl.fill.buffer().data(), value_of(key), kSlot);
          if (rng() % 10 == 0) continue;  // abandon some fills
          p = cl.fill.Publish(kSlot - key.index % 8);
        } else {
          ++hits;
        }
        if (p.data().size() != kSlot - key.index % 8 || !AllBytes(p.data(), value_of(key))) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
}

}  // namespace
}  // namespace cce::decryptfs
