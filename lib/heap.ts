/**
 * glibc's malloc and large tensors (NODETUNE_MMAP_THRESHOLD). By default glibc maps an allocation of 128 KiB or more
 * on its own and unmaps it when freed, but after the first such block is freed it raises that threshold to the
 * block's size (up to 32 MiB): from then on a training step's activations (1-8 MB each) come from the heap, where
 * freed blocks stay resident between live ones, ready for the next step. That is fast, and it costs memory: at the
 * Llama-3.2-1B shape (LoRA, bf16, 256 tokens) about 140 MiB more at the peak and 380 MiB more kept after each step
 * than with the threshold fixed at 1 MiB, which makes every such block a fresh mapping, page-faulted in on each use:
 * about 15% more time per step at the 0.5B shape (docs/PERFORMANCE.md). So nodetune leaves glibc's behaviour unless
 * NODETUNE_MMAP_THRESHOLD asks (a memory-bound machine, a server that should give memory back between requests).
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
