/**
 * Which OpenBLAS kernel runs our fp32 matrix products, chosen before OpenBLAS is loaded.
 *
 * OpenBLAS picks its kernel once, when it is loaded, from the CPU's model number, unless OPENBLAS_CORETYPE names
 * one. Debian 12's OpenBLAS (0.3.21) does not know recent CPU models: on a Xeon with AMX under a hypervisor it
 * ran fp32 GEMM at 28-44 GFLOP/s with the variable unset and 180-265 GFLOP/s with it set (docs/ARCHITECTURE.md,
 * "The BLAS kernel"). So, when the user has not set the variable, nodetune sets it from the CPU's instruction-set
 * extensions, which say directly which kernels can run, before the addon (and with it LibTorch and OpenBLAS) is
 * loaded. A value the user set is never changed. NODETUNE_BLAS_KERNEL=off leaves OpenBLAS to choose by itself.
 */
import { CpuFeatures } from './cpu';

/** Kernel names OpenBLAS's DYNAMIC_ARCH builds accept in OPENBLAS_CORETYPE (case does not matter). */
export const OPENBLAS_KERNELS = [
  'Katmai', 'Coppermine', 'Northwood', 'Prescott', 'Banias', 'Atom', 'Core2', 'Penryn', 'Dunnington', 'Nehalem',
  'Athlon', 'Opteron', 'Opteron_SSE3', 'Barcelona', 'Nano', 'Sandybridge', 'Bobcat', 'Bulldozer', 'Piledriver',
  'Haswell', 'Steamroller', 'Excavator', 'Zen', 'SkylakeX', 'Cooperlake', 'SapphireRapids',
] as const;

export interface BlasKernelChoice {
  /** OPENBLAS_CORETYPE as the process had it before nodetune looked (undefined: unset). */
  userValue: string | undefined;
  /** The value nodetune set, when it set one. */
  setValue: string | undefined;
  /** The kernel these CPU features run fastest, undefined where nodetune has no rule (not x86-64, no AVX2). */
  recommended: string | undefined;
  /** Who decides: the user's variable, nodetune's, or OpenBLAS's own detection. */
  setBy: 'user' | 'nodetune' | 'openblas';
}

/** The fastest OpenBLAS kernel that these CPU features can run (fp32 GEMM). */
export function recommendedKernel(cpu: CpuFeatures, arch: string = process.arch): string | undefined {
  if (arch !== 'x64') return undefined;
  if (cpu.avx512) return cpu.avx512Bf16 ? 'Cooperlake' : 'SkylakeX';
  if (cpu.avx2 && cpu.fma) return cpu.vendor === 'AuthenticAMD' || cpu.vendor === 'HygonGenuine' ? 'Zen' : 'Haswell';
  return undefined;
}

/** True when OpenBLAS knows `value` as a kernel name. */
export function isOpenblasKernel(value: string): boolean {
  return OPENBLAS_KERNELS.some((k) => k.toLowerCase() === value.trim().toLowerCase());
}

/** The decision for this CPU and environment; sets env.OPENBLAS_CORETYPE when nodetune chooses. */
export function decideBlasKernel(cpu: CpuFeatures, env: NodeJS.ProcessEnv, arch: string = process.arch): BlasKernelChoice {
  const userValue = env.OPENBLAS_CORETYPE;
  const recommended = recommendedKernel(cpu, arch);
  const off = ['off', '0', 'false', 'no'].includes((env.NODETUNE_BLAS_KERNEL ?? '').toLowerCase());
  if (userValue !== undefined) return { userValue, setValue: undefined, recommended, setBy: 'user' };
  if (off || recommended === undefined) return { userValue, setValue: undefined, recommended, setBy: 'openblas' };
  env.OPENBLAS_CORETYPE = recommended;
  return { userValue, setValue: recommended, recommended, setBy: 'nodetune' };
}

let choice: BlasKernelChoice | undefined;

/**
 * Sets OPENBLAS_CORETYPE for this process (and so for OpenBLAS when it is loaded next) unless the user set it
 * or turned this off. Runs once, before the addon loads; later calls return the first decision.
 */
export function chooseBlasKernel(cpu: CpuFeatures, env: NodeJS.ProcessEnv = process.env): BlasKernelChoice {
  if (!choice) choice = decideBlasKernel(cpu, env);
  return choice;
}

/** Warnings about the kernel OpenBLAS actually loaded (`loaded`: openblas_get_corename(), '' when not OpenBLAS). */
export function blasKernelWarnings(c: BlasKernelChoice, loaded: string): string[] {
  if (!loaded) return [];
  const same = (a: string) => a.trim().toLowerCase() === loaded.toLowerCase();
  if (c.setBy === 'user' && c.userValue !== undefined && !same(c.userValue)) {
    const known = isOpenblasKernel(c.userValue) ? 'this OpenBLAS does not have it' : `known names: ${OPENBLAS_KERNELS.join(', ')}`;
    return [
      `OPENBLAS_CORETYPE=${JSON.stringify(c.userValue)} was not taken (${known}): OpenBLAS runs its ${loaded} kernel. ` +
        `Unset it to let nodetune choose${c.recommended ? ` (${c.recommended} on this CPU)` : ''}, or set a name OpenBLAS knows.`,
    ];
  }
  if (c.setBy === 'nodetune' && c.setValue && !same(c.setValue)) {
    return [
      `OpenBLAS runs its ${loaded} kernel, not ${c.setValue} which nodetune chose for this CPU: either OpenBLAS was ` +
        'loaded before nodetune (by the host program or another addon), when the variable was not yet set, or this ' +
        `OpenBLAS build lacks that kernel. Start the process with OPENBLAS_CORETYPE=${c.setValue} in its environment, ` +
        'and compare `nodetune doctor --matmul` with and without it.',
    ];
  }
  return [];
}
