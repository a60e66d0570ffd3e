/**
 * `nodetune launch --nproc N CONFIG.yaml [--key.path value ...]`: data-parallel training on one machine. Starts N
 * `nodetune train` workers with the torchrun variables (MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE);
 * when one fails the others are stopped. Multi-machine jobs start `nodetune train` under torchrun-style launchers
 * (Kubernetes PyTorchJob, Slurm) with the same variables.
 */
import * as path from 'path';
import { launch } from '../distributed/launch';
import { UsageError } from './usage';
import { trainArguments } from './train';
import { checkOutputFolder } from './output-folder';

export const LAUNCH_HELP = `Usage: nodetune launch --nproc N [--master-port P] CONFIG.yaml [--key.path value ...]

Data-parallel training on this machine: starts N \`nodetune train CONFIG.yaml\` workers with the torchrun variables
(MASTER_ADDR=127.0.0.1, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE). Each worker trains on its shard of every epoch;
gradients are averaged over the workers (PyTorch's c10d, Gloo); rank 0 writes logs, checkpoints and the report.
If a worker fails, the others are stopped and the exit code is 1.

Options:
  --nproc N          number of worker processes (required)
  --master-port P    rendezvous port (default: a free port)

Examples:
  nodetune launch --nproc 2 examples/sentiment.yaml
  nodetune launch --nproc 4 run.yaml --training.epochs 1`;

export function parseLaunchArgs(argv: string[]): { nproc: number; masterPort?: number; rest: string[] } {
  let nproc: number | undefined;
  let masterPort: number | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--nproc' || a === '--master-port') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1 || (a === '--master-port' && v > 65535))
        throw new UsageError(`${a} needs a positive integer${a === '--master-port' ? ' port' : ''}, got ${argv[i] ?? '(nothing)'}`);
      if (a === '--nproc') nproc = v;
      else masterPort = v;
    } else rest.push(a);
  }
  if (nproc === undefined) throw new UsageError('--nproc N is required');
  if (rest.length === 0 || rest[0]!.startsWith('-')) throw new UsageError('a CONFIG.yaml is required');
  return { nproc, ...(masterPort !== undefined ? { masterPort } : {}), rest };
}

export async function launchCommand(argv: string[], out: (s: string) => void): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(LAUNCH_HELP);
    return 0;
  }
  const { nproc, masterPort, rest } = parseLaunchArgs(argv);
  // The workers share the run folder, so it is checked once here (train's rule: empty, or --overwrite).
  const { config, overwrite } = trainArguments(rest);
  checkOutputFolder(config, overwrite);
  const main = path.join(__dirname, 'main.js');
  const results = await launch({ nproc, args: [main, 'train', ...rest], ...(masterPort !== undefined ? { masterPort } : {}) });
  const failed = results.filter((r) => r.code !== 0);
  for (const r of failed) out(`nodetune launch: rank ${r.rank} ${r.signal ? `stopped by ${r.signal}` : `exited with ${r.code}`}`);
  return failed.length === 0 ? 0 : 1;
}
