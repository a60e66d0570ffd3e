/**
 * `nodetune doctor`: what nodetune runs on, and what to fix.
 */
import { measureMatmul, measureMatmulInFreshProcess, runtimeInfo, RuntimeInfo } from '../runtime';

export interface DoctorReport extends RuntimeInfo {
  /** fp32 n=1024 products, as this process runs them (the BLAS and its kernel). */
  matmulGflops?: number;
  /** bf16 n=1024 products on all hardware threads (LibTorch's kernels: oneDNN on x86-64). */
  bf16MatmulGflops?: number;
  /** fp32 products in a fresh process with OPENBLAS_CORETYPE set to the recommended kernel, measured when this
   * process runs another kernel (so the two can be compared). */
  recommendedKernelGflops?: number;
}

/** Below this share of what the recommended kernel does, fp32 speed gets a warning. */
const SLOW_SHARE = 0.7;

export async function doctorReport(options: { matmul: boolean }): Promise<DoctorReport> {
  const info: DoctorReport = runtimeInfo();
  if (!options.matmul) return info;
  info.matmulGflops = await measureMatmul(1024, 20);
  info.bf16MatmulGflops = await measureMatmul(1024, 10, { dtype: 'bfloat16', threads: info.threads.hardware });
  const { kernel, recommendedKernel } = info.blas;
  if (kernel && recommendedKernel && kernel.toLowerCase() !== recommendedKernel.toLowerCase()) {
    info.recommendedKernelGflops = measureMatmulInFreshProcess({ OPENBLAS_CORETYPE: recommendedKernel });
    const forced = info.recommendedKernelGflops;
    if (forced !== undefined && info.matmulGflops < SLOW_SHARE * forced) {
      info.warnings.push(
        `fp32 matrix products run at ${info.matmulGflops.toFixed(0)} GFLOP/s with OpenBLAS's ${kernel} kernel, ` +
          `${forced.toFixed(0)} GFLOP/s with its ${recommendedKernel} kernel on this CPU. Cure: unset OPENBLAS_CORETYPE ` +
          `(nodetune then chooses ${recommendedKernel}), or start the process with OPENBLAS_CORETYPE=${recommendedKernel}.`,
      );
    }
  }
  return info;
}

const yes = (b: boolean) => (b ? 'yes' : 'no');

export function formatDoctor(r: DoctorReport): string {
  const kernel = r.blas.kernel
    ? `, kernel ${r.blas.kernel} (${r.blas.kernelSetBy === 'nodetune' ? 'chosen by nodetune for this CPU' :
        r.blas.kernelSetBy === 'user' ? 'OPENBLAS_CORETYPE set by you' : "OpenBLAS's own detection"})`
    : '';
  const lines = [
    `nodetune ${r.nodetuneVersion}`,
    `  addon:        ${r.addon.path} (N-API ${r.addon.napiVersion}, C++11 ABI ${r.addon.cxx11Abi ? 'on' : 'off'})`,
    `  LibTorch:     ${r.torchVersion} (${r.addon.torchLibrary || 'library path unknown'})`,
    `  CUDA:         ${r.cudaAvailable ? `yes, ${r.cudaDevices.length} device(s): ${r.cudaDevices.join('; ')}` : 'not available (CPU only)'}`,
    `  CPU:          ${r.cpu.model || 'unknown'}; AVX2 ${yes(r.cpu.avx2)}, AVX-512 ${yes(r.cpu.avx512)}, ` +
      `AVX512-BF16 ${yes(r.cpu.avx512Bf16)}, AMX-BF16 ${yes(r.cpu.amxBf16)} (fast bf16: ${yes(r.cpu.fastBf16)})`,
    `  BLAS:         ${r.blas.name}${r.blas.library ? ` (${r.blas.library})` : ''}${r.blas.threads > 0 ? `, ${r.blas.threads} thread(s)` : ''}${kernel}`,
    `  threads:      LibTorch intra-op ${r.threads.intraOp}, inter-op ${r.threads.interOp}; ${r.threads.hardware} hardware thread(s)`,
    `  heap:         ${r.heap.mmapThreshold !== null ? `blocks of ${r.heap.mmapThreshold.toLocaleString('en-US')} bytes or more mapped on their own (NODETUNE_MMAP_THRESHOLD)` : `the C library's own mmap threshold${r.heap.blockCache ? ' for blocks below the block cache\'s' : ''} (NODETUNE_MMAP_THRESHOLD, lib/heap.ts)`}`,
    `  block cache:  ${r.heap.blockCache ? `tensors' blocks of ${(r.heap.blockCache.minBytes / 1024).toLocaleString('en-US')} KiB or more kept for reuse, within the peak of live bytes + ${(r.heap.blockCache.slack / 1048576).toLocaleString('en-US')} MiB (NODETUNE_BLOCK_CACHE=off for none)` : 'off (NODETUNE_BLOCK_CACHE)'}`,
  ];
  if (r.matmulGflops !== undefined) lines.push(`  fp32 matmul:  ${r.matmulGflops.toFixed(1)} GFLOP/s (1024x1024${r.blas.kernel ? `, ${r.blas.kernel} kernel` : ''})`);
  if (r.recommendedKernelGflops !== undefined)
    lines.push(`                ${r.recommendedKernelGflops.toFixed(1)} GFLOP/s with the ${r.blas.recommendedKernel} kernel (a fresh process)`);
  if (r.bf16MatmulGflops !== undefined)
    lines.push(`  bf16 matmul:  ${r.bf16MatmulGflops.toFixed(1)} GFLOP/s (1024x1024, ${r.threads.hardware} thread(s))`);
  for (const w of r.warnings) lines.push(`  WARNING: ${w}`);
  return lines.join('\n');
}
