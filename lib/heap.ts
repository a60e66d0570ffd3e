/**
 * glibc's malloc and large tensors (NODETUNE_MMAP_THRESHOLD). By default glibc maps an allocation of 128 KiB or more
 * on its own and unmaps it when freed, but after the first such block is freed it raises that threshold to the
 * block's size (up to 32 MiB): from then on a training step's activations (1-8 MB each) come from the heap, where
 * freed blocks stay resident between live ones, ready for the next step. That is fast, and it costs memory: at the
 * Llama-3.2-1B shape (LoRA, bf16, 256 tokens) about 140 MiB more at the peak and 380 MiB more kept after each step
 * than with the threshold fixed at 1 MiB, which makes every such block a fresh mapping, page-faulted in on each use:
 * about 15% more time per step at the 0.5B shape (docs/PERFORMANCE.md). So nodetune leaves glibc's behaviour unless
 * NODETUNE_MMAP_THRESHOLD asks (a memory-bound machine, a server that should give memory back between requests).
 *
 * Since then nodetune keeps tensors' blocks of 256 KiB or more itself (NODETUNE_BLOCK_CACHE, native/core/block_cache.h):
 * each block mapped on its own and, when freed, kept for the next request of its size, but never more idle blocks
 * than keep the process within its peak of live tensor bytes plus 16 MiB (the oldest idle blocks are unmapped
 * first). A step then reuses last step's blocks without page faults, as on glibc's heap, and the footprint follows
 * the live bytes, not the heap's fragmentation: 1B LoRA bf16 peak 3,167-3,198 -> 3,034-3,039 MiB
 * (docs/PERFORMANCE.md). The mmap threshold still applies to the smaller blocks.
 */
import { NodetuneError } from './errors';

/** glibc caps the threshold at 32 MiB on 64-bit systems (HEAP_MAX_SIZE / 2). */
export const MAX_MMAP_THRESHOLD = 32 * 1024 * 1024;

/**
 * The mmap threshold to set when the addon loads, in bytes, or null to leave glibc's (adaptive, or what the user set
 * with glibc's own MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES): NODETUNE_MMAP_THRESHOLD, a number of bytes (unset, ''
 * or 0: null). Only glibc has the setting; the addon reports whether it applied (runtimeInfo().heap).
 */
export function mmapThreshold(env: NodeJS.ProcessEnv = process.env): number | null {
  const own = env.NODETUNE_MMAP_THRESHOLD;
  if (own === undefined || own === '') return null;
  if (!/^\d+$/.test(own) || Number(own) > MAX_MMAP_THRESHOLD) {
    throw new NodetuneError('ERR_ARGUMENT', `NODETUNE_MMAP_THRESHOLD must be a number of bytes from 0 (glibc's own threshold) to ${MAX_MMAP_THRESHOLD}, got '${own}'`,
      { field: 'NODETUNE_MMAP_THRESHOLD' });
  }
  return Number(own) === 0 ? null : Number(own);
}

/** Where NODETUNE_BLOCK_CACHE leaves them: blocks of 256 KiB or more cached, 16 MiB of idle blocks over the peak. */
export const BLOCK_CACHE_DEFAULTS = { minBytes: 256 * 1024, slack: 16 * 1024 * 1024 } as const;

/**
 * The block cache to install when the addon loads, or null for none: NODETUNE_BLOCK_CACHE unset, '', 'on' or '1':
 * the defaults; 'off' or '0': none (LibTorch's own allocator, glibc's malloc, for every block).
 */
export function blockCacheSettings(env: NodeJS.ProcessEnv = process.env): { minBytes: number; slack: number } | null {
  const v = env.NODETUNE_BLOCK_CACHE;
  if (v === undefined || v === '' || v === 'on' || v === '1') return { ...BLOCK_CACHE_DEFAULTS };
  if (v === 'off' || v === '0') return null;
  throw new NodetuneError('ERR_ARGUMENT', `NODETUNE_BLOCK_CACHE must be 'on' (the default) or 'off', got '${v}'`,
    { field: 'NODETUNE_BLOCK_CACHE' });
}

/** The block cache's counters (runtimeInfo().heap.blockCache), in bytes and requests since the addon loaded. */
export interface BlockCacheStats {
  /** Blocks of this many bytes or more are cached. */
  minBytes: number;
  /**
   * Idle bytes allowed over the peak of live bytes: the installed slack, or half the gradients' bytes of the last
   * training step where that is more (full fine-tuning: its gradients' blocks stay through the forward).
   */
  slack: number;
  /** Bytes in cached-size blocks that tensors hold now. */
  live: number;
  /** Bytes in blocks kept for reuse (resident, not in use). */
  idle: number;
  /** The most live bytes so far (since the last releaseCachedMemory()). */
  peakLive: number;
  /** Requests served from an idle block; requests that mapped a new one; idle blocks unmapped. */
  hits: number;
  misses: number;
  released: number;
}
