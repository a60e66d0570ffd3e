// The C heap under tensors (glibc's malloc): how it maps large blocks.
#pragma once
#include <cstddef>

namespace nodetune {

// Fixes glibc's mmap threshold at `bytes` (mallopt M_MMAP_THRESHOLD): blocks of that size or more are mapped on
// their own and unmapped when freed, and glibc no longer raises the threshold after freeing one (its default
// behaviour, which puts a training step's activations on the heap, where freed blocks stay resident; lib/heap.ts).
// Returns false where the C library has no such setting (not glibc) or refused the value.
bool set_mmap_threshold(size_t bytes);
// The threshold set by set_mmap_threshold, 0 when none was.
size_t mmap_threshold();

}  // namespace nodetune
