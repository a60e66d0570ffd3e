// A cache of large CPU blocks under LibTorch's tensors: a training step allocates and frees the same sizes in the same
// order every step, so a freed block is kept and handed to the next request of its size instead of going back to
// the C heap, where freed blocks stay resident between live ones (glibc's heap) or are unmapped and page-faulted in
// afresh on their next use (mapped blocks). Idle blocks are bounded: live + idle never exceeds the most live bytes
// seen plus a slack, the oldest idle blocks being unmapped first, so the process's footprint follows its peak live
// bytes rather than the heap's fragmentation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nodetune {

struct BlockCacheStats {
  bool installed = false;
  size_t min_bytes = 0;   // blocks of this size or more are cached
  size_t slack = 0;       // idle bytes allowed on top of the peak of live bytes
  size_t live = 0;        // bytes in cached-size blocks now held by tensors
  size_t idle = 0;        // bytes in blocks kept for reuse
  size_t peak_live = 0;   // the most live bytes so far
  uint64_t hits = 0;      // requests served from an idle block
  uint64_t misses = 0;    // requests that mapped a new block
  uint64_t released = 0;  // idle blocks unmapped (bound, release_block_cache)
};

// Makes this cache LibTorch's CPU allocator for blocks of min_bytes or more (smaller ones keep LibTorch's default
// allocator). Once per process; later calls change nothing and return false. Tensors allocated before keep their
// own allocator's deleter.
bool install_block_cache(size_t min_bytes, size_t slack);
// Unmaps every idle block (the bound's peak restarts from the live bytes now); returns the bytes given back.
size_t release_block_cache();
// Idle bytes allowed over the peak: the installed slack or `bytes`, whichever is larger (the last call counts). A
// training step asks for half its gradients' bytes (train/step.cc).
void set_block_cache_slack_floor(size_t bytes);
BlockCacheStats block_cache_stats();

}  // namespace nodetune
