/**
 * One benchmark measurement in its own process (so peak RSS is this case's alone):
 *   node dist/bench/step-child.js '<json: { dir | config, batchFile, steps, warmup, mode, ... }>'
 * mode 'train': AdamW training steps on the batch; 'generate': KV-cache greedy decoding.
 * Prints one JSON line: load time, step times, peak RSS.
 */
import * as fs from 'fs';
import { peakRssKb } from './child';
import { AutoModel } from '../lib/models';
import { Precision } from '../lib/precision';

interface ChildArgs {
  /** A checkpoint folder, or `config`: a config.json object built with fresh weights (AutoModel.fromConfig). */
  dir?: string;
  config?: Record<string, unknown>;
  batchFile: string;
  steps: number;
  warmup: number;
  mode: 'train' | 'generate';
  newTokens?: number;
  /** Train a LoRA adapter (r 8, alpha 16 unless `loraRank` says otherwise) on these modules instead of every weight. */
  loraTargets?: string[] | 'all-linear';
  loraRank?: number;
  /** The weights' dtype (default float32) and the step's precision (default fp32). */
  dtype?: 'float32' | 'bfloat16';
  precision?: Precision;
  /** Recompute each block's activations in backward instead of keeping them. */
  gradientCheckpointing?: boolean;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  const batch = JSON.parse(fs.readFileSync(args.batchFile, 'utf8')) as { inputIds: number[][] };
  const rssBefore = peakRssKb();
  const t0 = process.hrtime.bigint();
  const dtype = args.dtype ?? 'float32';
  const model = args.config
    ? await AutoModel.fromConfig(args.config, { task: 'causal-lm', dtype, seed: 1 })
    : await AutoModel.fromPretrained(args.dir!, { task: 'causal-lm', dtype, quiet: true });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssAfterLoad = peakRssKb();
  const times: number[] = [];
  // CPU time of the process per step (user + system, all threads): under contention from other processes it moves
  // less than wall time, so it is the steadier figure for A/B comparisons at one thread.
  const cpuTimes: number[] = [];
  const losses: number[] = [];
  if (args.mode === 'train') {
    const r = args.loraRank ?? 8;
    if (args.loraTargets) model.addLora({ r, alpha: 2 * r, targetModules: args.loraTargets, seed: 1 });
    if (args.gradientCheckpointing) model.setGradientCheckpointing(true);
    model.configureOptimizer({ type: 'adamw', lr: 1e-4, weightDecay: 0 });
    for (let i = 0; i < args.warmup + args.steps; i++) {
      const s = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      const { loss } = await model.trainStep({ inputIds: batch.inputIds, labels: batch.inputIds }, { precision: args.precision ?? 'fp32' });
      const ms = Number(process.hrtime.bigint() - s) / 1e6;
      const used = process.cpuUsage(cpu);
      if (i >= args.warmup) times.push(ms), cpuTimes.push((used.user + used.system) / 1000);
      losses.push(loss);
    }
  } else {
    const n = args.newTokens ?? 32;
    for (let i = 0; i < args.warmup + args.steps; i++) {
      const s = process.hrtime.bigint();
      await model.generate(batch.inputIds, { maxNewTokens: n, eosTokenId: null });
      const ms = Number(process.hrtime.bigint() - s) / 1e6;
      if (i >= args.warmup) times.push(ms);
    }
  }
  const summary = model.parameterSummary();
  const params = summary.total;
  process.stdout.write(JSON.stringify({
    loadMs, params, trainable: summary.trainable, times, cpuTimes, losses, rssBeforeLoadKb: rssBefore, rssAfterLoadKb: rssAfterLoad,
    peakRssKb: peakRssKb(),
  }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
