/**
 * `nodetune doctor`: what nodetune runs on, and what to fix.
 */
import { measureMatmul, runtimeInfo, RuntimeInfo } from '../runtime';

export interface DoctorReport extends RuntimeInfo {
  matmulGflops?: number;
}

export async function doctorReport(options: { matmul: boolean }): Promise<DoctorReport> {
  const info: DoctorReport = runtimeInfo();
  if (options.matmul) info.matmulGflops = await measureMatmul(1024, 20);
  return info;
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `nodetune ${r.nodetuneVersion}`,
    `  addon:        ${r.addon.path} (N-API ${r.addon.napiVersion}, C++11 ABI ${r.addon.cxx11Abi ? 'on' : 'off'})`,
    `  LibTorch:     ${r.torchVersion} (${r.addon.torchLibrary || 'library path unknown'})`,
    `  CUDA:         ${r.cudaAvailable ? `yes, ${r.cudaDevices.length} device(s): ${r.cudaDevices.join('; ')}` : 'not available (CPU only)'}`,
    `  BLAS:         ${r.blas.name}${r.blas.library ? ` (${r.blas.library})` : ''}${r.blas.threads > 0 ? `, ${r.blas.threads} thread(s)` : ''}`,
    `  threads:      LibTorch intra-op ${r.threads.intraOp}, inter-op ${r.threads.interOp}; ${r.threads.hardware} hardware thread(s)`,
  ];
  if (r.matmulGflops !== undefined) lines.push(`  fp32 matmul:  ${r.matmulGflops.toFixed(1)} GFLOP/s (1024x1024)`);
  for (const w of r.warnings) lines.push(`  WARNING: ${w}`);
  return lines.join('\n');
}
