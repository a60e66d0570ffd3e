/**
 * Training precision: 'auto' resolved per device (documented in docs/TRAINER.md).
 */
import { NodetuneError } from './errors';
import { cpuFeatures } from './cpu';
import { native } from './native';

/** Training precision: a concrete one, or 'auto' (bf16 where the device has fast bf16, else fp32). */
export type Precision = 'fp32' | 'bf16' | 'fp16';
export type PrecisionOption = Precision | 'auto';

/**
 * What 'auto' means on a device: bf16 on a CPU with AVX512-BF16 or AMX and on CUDA devices of compute capability
 * 8.0 or more (Ampere and later); fp32 elsewhere (bf16 without hardware support is emulated, slower than fp32).
 * Concrete precisions are returned as they are.
 */
export function resolvePrecision(precision: PrecisionOption, device: string): Precision {
  if (precision !== 'auto') return precision;
  if (device === 'cpu') return cpuFeatures().fastBf16 ? 'bf16' : 'fp32';
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new NodetuneError('ERR_ARGUMENT', `precision 'auto': unknown device ${JSON.stringify(device)}`, { field: 'precision' });
  const [major] = native().cudaComputeCapability(Number(m[1] ?? 0));
  return major >= 8 ? 'bf16' : 'fp32';
}
