#include "core/block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace nodetune {
namespace {

constexpr size_t kPage = 4096;

struct Idle {
  void* ptr;
  size_t bytes;
};

class BlockCache final : public c10::Allocator {
 public:
  BlockCache(c10::Allocator* fallback, size_t min_bytes, size_t slack)
      : fallback_(fallback), fallback_delete_(fallback->raw_deleter()), min_bytes_(min_bytes), base_slack_(slack),
        slack_(slack) {
    TORCH_CHECK(fallback_delete_, "the default CPU allocator has no raw deleter");
  }

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return const_cast<BlockCache*>(this)->take(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }

  size_t release_all() {
    std::vector<Idle> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [bytes, it] : by_size_) out.push_back(*it);
      by_size_.clear();
      order_.clear();
      stats_.released += out.size();
      stats_.idle = 0;
      stats_.peak_live = stats_.live;
    }
    size_t total = 0;
    for (const Idle& b : out) munmap(b.ptr, b.bytes), total += b.bytes;
    return total;
  }

  void set_slack_floor(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    slack_ = std::max(base_slack_, bytes);
  }

  BlockCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    BlockCacheStats s = stats_;
    s.installed = true, s.min_bytes = min_bytes_, s.slack = slack_;
    return s;
  }

  static BlockCache* instance;

 private:
  // Idle blocks by size (several of one size), and in the order they were freed (oldest first) for the bound.
  using Order = std::list<Idle>;
  using BySize = std::multimap<size_t, Order::iterator>;

  c10::DataPtr take(size_t n) {
    // Small blocks: the fallback's, with its own deleter (raw_deallocate reaches give_back, which hands them on).
    if (n < min_bytes_) return fallback_->allocate(n);
    const size_t bytes = (n + kPage - 1) / kPage * kPage;
    std::vector<Idle> unmap;
    void* ptr = nullptr;
    size_t got = bytes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The smallest idle block that fits, if it is at most an eighth larger (a request slightly bigger than last
      // step's, say a longer sequence, reuses its block; a much bigger one does not pin a small request).
      auto it = by_size_.lower_bound(bytes);
      if (it != by_size_.end() && it->first <= bytes + bytes / 8) {
        ptr = it->second->ptr, got = it->first;
        order_.erase(it->second);
        by_size_.erase(it);
        stats_.idle -= got;
        ++stats_.hits;
        sizes_[ptr] = got;
      } else {
        ++stats_.misses;
      }
      stats_.live += got;
      stats_.peak_live = std::max(stats_.peak_live, stats_.live);
      // The bound: live + idle within the peak of live bytes plus the slack, the oldest idle blocks going first (a
      // hit moves bytes from idle to live, so only a new block can cross it).
      while (!ptr && !order_.empty() && stats_.live + stats_.idle > stats_.peak_live + slack_) evict(unmap);
    }
    for (const Idle& b : unmap) munmap(b.ptr, b.bytes);
    if (!ptr) {
      ptr = map(bytes);
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[ptr] = bytes;
    }
    return {ptr, ptr, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void* map(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED && release_all() > 0)
      p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.live -= bytes;
      TORCH_CHECK(false, "out of memory: could not map ", bytes, " bytes for a CPU tensor");
    }
    // Transparent huge pages where the system leaves them to madvise: fewer TLB misses when the products stream a
    // weight or an activation (about 2% of a 0.5B LoRA bf16 step, 14% of decoding, measured), and 2 MiB page
    // faults, not 4 KiB.
    if (bytes >= (size_t(2) << 20)) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
  }

  // Called with mu_ held: the oldest idle block leaves the cache (unmapped by the caller, outside the lock).
  void evict(std::vector<Idle>& unmap) {
    const Idle b = order_.front();
    auto range = by_size_.equal_range(b.bytes);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == order_.begin()) {
        by_size_.erase(it);
        break;
      }
    order_.pop_front();
    stats_.idle -= b.bytes;
    ++stats_.released;
    unmap.push_back(b);
  }

  // The deleter of every block this allocator hands out, and its raw_deleter (raw_allocate's blocks, oneDNN's
  // scratchpads among them): a block below min_bytes came from the fallback and goes back to it.
  static void give_back(void* ptr) {
    BlockCache* self = instance;
    std::unique_lock<std::mutex> lock(self->mu_);
    auto it = self->sizes_.find(ptr);
    if (it == self->sizes_.end()) {
      lock.unlock();
      self->fallback_delete_(ptr);
      return;
    }
    const size_t bytes = it->second;
    self->sizes_.erase(it);
    self->stats_.live -= bytes;
    self->stats_.idle += bytes;
    self->order_.push_back({ptr, bytes});
    self->by_size_.emplace(bytes, std::prev(self->order_.end()));
  }

  c10::Allocator* fallback_;
  const c10::DeleterFnPtr fallback_delete_;
  const size_t min_bytes_, base_slack_;
  size_t slack_;  // base_slack_, or more while a training step asks for it (set_slack_floor)
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  Order order_;
  BySize by_size_;
  BlockCacheStats stats_;
};

BlockCache* BlockCache::instance = nullptr;
std::mutex install_mu;

}  // namespace

bool install_block_cache(size_t min_bytes, size_t slack) {
  std::lock_guard<std::mutex> lock(install_mu);
  if (BlockCache::instance) return false;
  // Never freed: tensors anywhere in the process may hold its blocks until exit.
  BlockCache::instance = new BlockCache(c10::GetDefaultCPUAllocator(), std::max(min_bytes, kPage), slack);
  c10::SetCPUAllocator(BlockCache::instance, /*priority=*/1);
  return true;
}

size_t release_block_cache() { return BlockCache::instance ? BlockCache::instance->release_all() : 0; }

void set_block_cache_slack_floor(size_t bytes) {
  if (BlockCache::instance) BlockCache::instance->set_slack_floor(bytes);
}

BlockCacheStats block_cache_stats() { return BlockCache::instance ? BlockCache::instance->stats() : BlockCacheStats{}; }

}  // namespace nodetune
