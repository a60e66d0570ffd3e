#include "core/memory.h"

#include <atomic>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nodetune {
namespace {
std::atomic<size_t> threshold{0};
}  // namespace

bool set_mmap_threshold(size_t bytes) {
#if defined(__GLIBC__)
  if (bytes == 0 || mallopt(M_MMAP_THRESHOLD, int(bytes)) != 1) return false;
  threshold = bytes;
  return true;
#else
  return false;
#endif
}

size_t mmap_threshold() { return threshold; }

}  // namespace nodetune
