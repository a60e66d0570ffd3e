/**
 * The runtime nodetune runs on: LibTorch version and build, CUDA devices, BLAS, threads.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { loadNative, native, packageRoot } from './native';
import { check } from './errors';
import { blasKernelWarnings, chooseBlasKernel } from './blas-kernel';
import { cpuFeatures, CpuFeatures } from './cpu';
import { BlockCacheStats } from './heap';
import { defaultThreadSettings as threadDefaults, stepTorchThreads, ThreadFacts, ThreadSettings } from './threads';

export type { ThreadSettings };

export interface RuntimeInfo {
  nodetuneVersion: string;
  /** LibTorch version of the headers the addon was built against. */
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDevices: string[];
  blas: {
    name: string;
    library: string;
    threads: number;
    /** True for the reference BLAS: matrix products about 35x slower than OpenBLAS here. */
    slow: boolean;
    /** OpenBLAS: the kernel it runs ('SkylakeX', 'Haswell', ...); '' for other BLAS libraries. */
    kernel: string;
    /** Who chose that kernel: OPENBLAS_CORETYPE set by the user, set by nodetune at load, or OpenBLAS itself. */
    kernelSetBy: 'user' | 'nodetune' | 'openblas';
    /** The kernel nodetune would choose for this CPU (undefined where it has no rule). */
    recommendedKernel: string | undefined;
    /** OpenBLAS's description of its build (version, DYNAMIC_ARCH, ...); '' for other BLAS libraries. */
    config: string;
  };
  /** The CPU's instruction-set extensions that matter for speed, fastBf16 among them (AVX512-BF16 or AMX). */
  cpu: CpuFeatures;
  threads: { intraOp: number; interOp: number; blas: number; hardware: number };
  /**
   * glibc's mmap threshold as NODETUNE_MMAP_THRESHOLD set it at load (lib/heap.ts), null: glibc's own; the block
   * cache's counters (NODETUNE_BLOCK_CACHE), null where it is off.
   */
  heap: { mmapThreshold: number | null; blockCache: BlockCacheStats | null };
  addon: { path: string; torchLibrary: string; cxx11Abi: boolean; napiVersion: number };
  warnings: string[];
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const pkg = require('../../package.json') as { version: string };

export function runtimeInfo(): RuntimeInfo {
  const { binding, path } = loadNative();
  const r = binding.runtimeInfo();
  const warnings: string[] = [];
  const slow = r.blas.name === 'reference';
  if (slow) {
    warnings.push(
      `The reference BLAS is in use (${r.blas.library}): matrix products run about 35x slower than with OpenBLAS ` +
        '(measured here: 5 vs 190 GFLOP/s). Install an optimized BLAS: `apt-get install libopenblas0-pthread` ' +
        '(or run `npm run setup`).',
    );
  } else if (r.blas.name === 'unknown') {
    warnings.push('Could not tell which BLAS LibTorch uses; check matrix-product speed with `nodetune doctor --matmul`.');
  }
  const cpu = cpuFeatures();
  const choice = chooseBlasKernel(cpu); // made once by loadNative() above, before the addon loaded
  warnings.push(...blasKernelWarnings(choice, r.blas.kernel));
  return {
    nodetuneVersion: pkg.version,
    torchVersion: r.torchVersion,
    cudaAvailable: r.cudaAvailable,
    cudaDevices: r.cudaDevices,
    blas: {
      name: r.blas.name, library: r.blas.library, threads: r.blas.threads, slow, kernel: r.blas.kernel,
      kernelSetBy: choice.setBy, recommendedKernel: choice.recommended, config: r.blas.config,
    },
    cpu,
    threads: { intraOp: r.intraOpThreads, interOp: r.interOpThreads, blas: r.blas.threads, hardware: r.hardwareThreads },
    heap: { mmapThreshold: binding.mmapThreshold() || null, blockCache: binding.blockCacheStats() },
    addon: {
      path,
      torchLibrary: r.torchLibrary,
      cxx11Abi: binding.buildInfo.cxx11Abi,
      napiVersion: binding.buildInfo.napiVersion,
    },
    warnings,
  };
}

/** The measured default thread settings for this machine (see lib/threads.ts). */
export function defaultThreadSettings(): Required<ThreadSettings> {
  return threadDefaults(native().runtimeInfo());
}

export function setNumThreads(settings: ThreadSettings | number): void {
  const s: ThreadSettings = typeof settings === 'number' ? { torch: settings } : settings;
  for (const key of ['torch', 'blas'] as const) {
    const v = s[key];
    check(v === undefined || (Number.isInteger(v) && v > 0 && v <= 1024), `setNumThreads: ${key} must be a positive integer, got ${String(v)}`, key);
  }
  native().setNumThreads(s.torch ?? 0, s.blas ?? 0);
  if (s.torch !== undefined) {
    torchThreadsPinned = true;
    native().setBf16ModelThreads(0);  // the user's count holds for bfloat16 models' calls too
  }
}

// Set by setNumThreads({ torch }): the user's choice then holds for every step, bf16 included.
let torchThreadsPinned = false;
let threadFacts: ThreadFacts | undefined;

/** LibTorch intra-op threads for a training step (lib/threads.ts: every core when its products are bfloat16 on
 * the CPU); undefined keeps the current setting. */
export function trainStepThreads(device: string, precision: string, dtype: string): number | undefined {
  if (device !== 'cpu') return undefined;
  threadFacts ??= native().runtimeInfo();
  return stepTorchThreads(threadFacts, precision === 'bf16' || dtype === 'bfloat16', torchThreadsPinned);
}

export interface MeasureMatmulOptions {
  /** 'float32' (the BLAS; the default) or 'bfloat16' (LibTorch's kernels: oneDNN on x86-64). */
  dtype?: 'float32' | 'bfloat16';
  /** LibTorch intra-op threads for the measurement (restored afterwards); default: the current setting. bf16
   * products run on these threads, fp32 products on the BLAS's own. */
  threads?: number;
}

/** Measures matrix-product speed (GFLOP/s, n x n products) off the event loop. */
export function measureMatmul(n = 1024, iterations = 10, options: MeasureMatmulOptions = {}): Promise<number> {
  check(Number.isInteger(n) && n > 0, 'measureMatmul: n must be a positive integer', 'n');
  check(Number.isInteger(iterations) && iterations > 0, 'measureMatmul: iterations must be a positive integer', 'iterations');
  const dtype = options.dtype ?? 'float32';
  check(dtype === 'float32' || dtype === 'bfloat16', `measureMatmul: dtype must be 'float32' or 'bfloat16', got ${JSON.stringify(dtype)}`, 'dtype');
  const threads = options.threads ?? 0;
  check(Number.isInteger(threads) && threads >= 0 && threads <= 1024, `measureMatmul: threads must be a positive integer, got ${String(options.threads)}`, 'threads');
  return native().measureMatmul(n, iterations, dtype, threads);
}

/** LibTorch's memory read rate in GB/s: `iterations` sums over `bytes` (default 1 GiB) of float32. Batch-1 decoding
 * reads every weight once per token, so weight bytes / this rate bounds its tokens/s. */
export function measureReadBandwidth(bytes = 2 ** 30, iterations = 5): Promise<number> {
  check(Number.isSafeInteger(bytes) && bytes >= 4, 'measureReadBandwidth: bytes must be an integer >= 4', 'bytes');
  check(Number.isInteger(iterations) && iterations > 0, 'measureReadBandwidth: iterations must be a positive integer', 'iterations');
  return native().measureReadBandwidth(bytes, iterations);
}

/**
 * fp32 GFLOP/s (n=1024) measured in a fresh process whose environment is this one's with `env` applied (an
 * undefined value removes the variable): `{ OPENBLAS_CORETYPE: 'Haswell' }` measures that OpenBLAS kernel,
 * `{ OPENBLAS_CORETYPE: undefined, NODETUNE_BLAS_KERNEL: 'off' }` OpenBLAS's own choice. Undefined when it fails.
 */
export function measureMatmulInFreshProcess(env: Record<string, string | undefined>): number | undefined {
  const runtime = path.join(__dirname, 'runtime.js');
  const script = `require(${JSON.stringify(runtime)}).measureMatmul(1024, 20).then((g) => console.log(JSON.stringify(g)))`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawnSync(process.execPath, ['-e', script], { env: childEnv, encoding: 'utf8', timeout: 120_000 });
  const value = Number(child.stdout?.trim().split('\n').pop());
  return child.status === 0 && Number.isFinite(value) ? value : undefined;
}

export { resolvePrecision } from './precision';
export type { Precision, PrecisionOption } from './precision';

export { packageRoot };

/**
 * Unmaps the block cache's idle blocks (lib/heap.ts): the memory a finished training run's steps kept for reuse goes
 * back to the system (as torch.cuda.empty_cache() does for CUDA's cache). Returns the bytes given back (0 when the
 * cache is off). Tensors in use are untouched; the next steps map their blocks afresh.
 */
export function releaseCachedMemory(): number {
  return native().releaseBlockCache();
}
