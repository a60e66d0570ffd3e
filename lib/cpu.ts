/**
 * What the CPU can do, read from the operating system without loading the addon: the instruction-set
 * extensions that decide which BLAS kernel is fastest and whether bf16 matrix products are fast.
 */
import * as fs from 'fs';
import * as os from 'os';

export interface CpuFeatures {
  /** The CPU's model name ('AMD EPYC', 'Intel(R) Xeon(R) Platinum 8481C', ...), '' where unknown. */
  model: string;
  /** 'GenuineIntel', 'AuthenticAMD', ..., '' where unknown. */
  vendor: string;
  avx2: boolean;
  fma: boolean;
  /** The AVX-512 subset OpenBLAS's SkylakeX kernels need (F, CD, BW, DQ, VL). */
  avx512: boolean;
  /** AVX512-BF16: bf16 dot products in vector registers. */
  avx512Bf16: boolean;
  /** AMX with bf16 tiles (Sapphire Rapids and later). */
  amxBf16: boolean;
  /** bf16 matrix products have hardware support (AVX512-BF16 or AMX-BF16). */
  fastBf16: boolean;
}

/** Features from a /proc/cpuinfo text (the first processor's entry). */
export function parseCpuinfo(text: string): CpuFeatures {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text);
    return m ? m[1]!.trim() : '';
  };
  const flags = new Set(field('flags').split(/\s+/).filter(Boolean));
  const has = (...names: string[]) => names.every((n) => flags.has(n));
  const avx512 = has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl');
  const avx512Bf16 = avx512 && has('avx512_bf16');
  const amxBf16 = has('amx_bf16', 'amx_tile');
  return {
    model: field('model name'),
    vendor: field('vendor_id'),
    avx2: has('avx2'),
    fma: has('fma'),
    avx512,
    avx512Bf16,
    amxBf16,
    fastBf16: avx512Bf16 || amxBf16,
  };
}

let cached: CpuFeatures | undefined;

/** This machine's CPU features (Linux: /proc/cpuinfo; elsewhere only the model name is known). */
export function cpuFeatures(): CpuFeatures {
  if (cached) return cached;
  let text = '';
  try {
    if (process.platform === 'linux') text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* no /proc: features unknown */
  }
  cached = parseCpuinfo(text);
  if (!cached.model) cached.model = os.cpus()[0]?.model ?? '';
  return cached;
}
