/**
 * One rank of the data-parallel benchmark (started by bench/run.ts through lib/distributed's launch()):
 *   node dist/bench/dist-child.js '<json: { config, batchFile, steps, warmup }>'
 * Each rank trains on its share of the batch's rows; rank 0 prints step times and the time of an all-reduce
 * of a gradient-sized buffer.
 */
import * as fs from 'fs';
import { AutoModel, manualSeed, Tensor } from '../lib';
import { Communicator, syncParameters } from '../lib/distributed';

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as { config: Record<string, unknown>; batchFile: string; steps: number; warmup: number };
  const comm = await Communicator.fromEnv({ timeoutMs: 120000 });
  const all = (JSON.parse(fs.readFileSync(args.batchFile, 'utf8')) as { inputIds: number[][] }).inputIds;
  const rows = all.length / comm.worldSize;
  const mine = all.slice(comm.rank * rows, (comm.rank + 1) * rows);
  manualSeed(0);
  const model = await AutoModel.fromConfig(args.config, { task: 'causal-lm' });
  await syncParameters(model, comm);
  model.configureOptimizer({ type: 'adamw', lr: 1e-4 });
  const times: number[] = [];
  for (let i = 0; i < args.warmup + args.steps; i++) {
    const s = process.hrtime.bigint();
    await model.trainStep({ inputIds: mine, labels: mine }, { communicator: comm });
    if (i >= args.warmup) times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const params = model.parameters().reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const buffer = Tensor.from(new Float32Array(params), { shape: [params] });
  const reduceTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = process.hrtime.bigint();
    await comm.allReduce([buffer]);
    reduceTimes.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  await comm.barrier();
  if (comm.rank === 0) console.log(JSON.stringify({ times, reduceTimes, params, worldSize: comm.worldSize }));
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
