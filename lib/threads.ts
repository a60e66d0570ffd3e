/**
 * Thread defaults. Measured on the 2-core machines here (docs/PERFORMANCE.md): with OpenBLAS, which threads
 * matrix products itself over every core, one LibTorch intra-op thread is fastest; raising it to 2 made a
 * training step about 2x slower because both pools fight for the cores. Without such a BLAS, LibTorch
 * threads = cores. NODETUNE_NUM_THREADS / NODETUNE_BLAS_THREADS override.
 *
 * bfloat16 products do not go through the BLAS: LibTorch runs them in oneDNN on its own intra-op threads, so the
 * one-thread rule would leave every other core idle. A training step whose products are bfloat16 (precision
 * 'bf16', or a bfloat16 model) runs with LibTorch threads = cores, for that step only (stepTorchThreads).
 */
export interface ThreadSettings {
  /** LibTorch intra-op threads (elementwise ops, reductions; its own GEMM when no BLAS does it). */
  torch?: number;
  /** The BLAS library's own threads (OpenBLAS/MKL), used by matrix products. */
  blas?: number;
}

export interface ThreadFacts {
  blas: { name: string };
  hardwareThreads: number;
}

export function defaultThreadSettings(facts: ThreadFacts): Required<ThreadSettings> {
  const cores = Math.max(1, facts.hardwareThreads);
  if (facts.blas.name === 'openblas' || facts.blas.name === 'mkl') return { torch: 1, blas: cores };
  return { torch: cores, blas: cores };
}

function fromEnv(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    process.emitWarning(`nodetune: ignoring ${name}=${value} (expected a positive integer)`);
    return undefined;
  }
  return n;
}

/** The settings to apply at load: the environment's, else the measured default. */
export function startupThreadSettings(facts: ThreadFacts, env: NodeJS.ProcessEnv = process.env): Required<ThreadSettings> {
  const d = defaultThreadSettings(facts);
  return {
    torch: fromEnv(env.NODETUNE_NUM_THREADS, 'NODETUNE_NUM_THREADS') ?? d.torch,
    blas: fromEnv(env.NODETUNE_BLAS_THREADS, 'NODETUNE_BLAS_THREADS') ?? d.blas,
  };
}

/**
 * LibTorch intra-op threads for one training step, or undefined to keep the current setting: every core when
 * the step's matrix products are bfloat16 on the CPU, unless the user chose the threads (NODETUNE_NUM_THREADS, or
 * setNumThreads({ torch }): `pinned`).
 */
export function stepTorchThreads(facts: ThreadFacts, bf16Products: boolean, pinned: boolean, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!bf16Products || pinned || (env.NODETUNE_NUM_THREADS ?? '') !== '') return undefined;
  return Math.max(1, facts.hardwareThreads);
}

/**
 * Sets GOMP_SPINCOUNT=10000 for this process (read by LibTorch's OpenMP runtime when the addon loads) unless the
 * user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: OpenMP's idle threads spin about 10,000 rounds (a fraction of a
 * millisecond) before they sleep. With 2+ LibTorch threads (bf16 steps, stepTorchThreads) a step has thousands of
 * small parallel regions. GNU OpenMP's default spin (300,000 rounds) took 14-16 s of CPU time per Qwen2.5-0.5B
 * LoRA bf16 step on 2 shared vCPUs against 3.8 s at one thread; never spinning (OMP_WAIT_POLICY=PASSIVE, the
 * previous default) pays a sleep and a wake-up per region: on the quiet machine 1.91-2.27 s per step against
 * 1.74-1.91 s with 10,000 rounds, at the same CPU time (3.4-3.6 s; docs/PERFORMANCE.md). Child processes inherit
 * it, as they inherit OPENBLAS_CORETYPE. Returns whether it set the variable.
 */
/** The bounded spin of OpenMP's idle threads that setOmpWaitPolicy sets (GOMP_SPINCOUNT). */
export const OMP_SPIN_ROUNDS = 10000;

export function setOmpWaitPolicy(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OMP_WAIT_POLICY ?? '') !== '' || (env.GOMP_SPINCOUNT ?? '') !== '') return false;
  env.GOMP_SPINCOUNT = String(OMP_SPIN_ROUNDS);
  if (env === process.env) spinSetHere = true;
  return true;
}

let spinSetHere = false;

/** Whether this process's GOMP_SPINCOUNT is nodetune's (setOmpWaitPolicy), not the user's: the bench runs PyTorch without it. */
export function ompSpinSetByNodetune(): boolean {
  return spinSetHere;
}
