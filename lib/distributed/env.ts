/**
 * The torchrun environment: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK (also what Kubernetes
 * PyTorchJob and the usual Slurm scripts set), read and validated.
 */
import { NodetuneError } from '../errors';

export interface DistEnv {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  localRank: number;
}

function int(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number {
  const raw = env[name];
  const n = Number(raw);
  if (raw === undefined || raw === '' || !Number.isInteger(n) || n < min || n > max)
    throw new NodetuneError('ERR_CONFIG', `${name}=${raw ?? '(unset)'}: must be an integer in [${min}, ${max}]`, { field: name });
  return n;
}

/** True when the process was started as part of a group (WORLD_SIZE and RANK are set). */
export function isDistributed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.WORLD_SIZE !== undefined && env.RANK !== undefined && Number(env.WORLD_SIZE) > 1;
}

export function readDistEnv(env: NodeJS.ProcessEnv = process.env): DistEnv {
  const worldSize = int(env, 'WORLD_SIZE', 1, 65536);
  const rank = int(env, 'RANK', 0, worldSize - 1);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new NodetuneError('ERR_CONFIG', 'MASTER_ADDR is not set: the address of rank 0 (e.g. 127.0.0.1)', { field: 'MASTER_ADDR' });
  const masterPort = int(env, 'MASTER_PORT', 1, 65535);
  const localRank = env.LOCAL_RANK === undefined ? rank : int(env, 'LOCAL_RANK', 0, worldSize - 1);
  return { masterAddr, masterPort, rank, worldSize, localRank };
}

/** The device for this rank: CUDA device LOCAL_RANK on a CUDA machine, else the CPU. */
export function deviceForRank(localRank: number, cudaDevices: number): string {
  return cudaDevices > 0 ? `cuda:${localRank % cudaDevices}` : 'cpu';
}
