/**
 * Peak RSS of one optimizer step on a window of 4 micro-batches, the window concatenated into one batch vs
 * accumulated (Model.trainStep with the array: forward and backward one micro-batch at a time), each in its own
 * process so each peak is that case's alone. GPT-2 shape, 4 micro-batches of 2 x 256 tokens, AdamW.
 *   node dist/bench/accumulate-memory.js [--quick]
 */
import { asChild, runChild, peakRssKb } from './child';
import { AutoModel } from '../lib/models';
import type { TrainBatch } from '../lib/models';

const CONFIG = {
  architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 8192, n_embd: 512, n_layer: 8, n_head: 8,
  n_positions: 256, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
};
const K = 4, ROWS = 2, LEN = 256;

async function child(mode: 'concatenated' | 'accumulated', steps: number): Promise<void> {
  const model = await AutoModel.fromConfig(CONFIG, { seed: 1 });
  model.configureOptimizer({ type: 'adamw', lr: 1e-4 });
  const rows = (k: number) => Array.from({ length: ROWS }, (_, b) => Array.from({ length: LEN }, (_, t) => ((k * ROWS + b) * 131 + t * 17) % 8192));
  const micro: TrainBatch[] = Array.from({ length: K }, (_, k) => ({ inputIds: rows(k), labels: rows(k) }));
  const all = micro.flatMap((m) => m.inputIds as number[][]);
  const afterLoad = peakRssKb();
  let loss = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) loss = (await model.trainStep(mode === 'accumulated' ? micro : { inputIds: all, labels: all })).loss;
  process.stdout.write(JSON.stringify({
    mode, loss, afterLoadKb: afterLoad, peakKb: peakRssKb(), stepMs: Number(process.hrtime.bigint() - started) / 1e6 / steps,
  }) + '\n');
}

function main(): void {
  const steps = process.argv.includes('--quick') ? 1 : 3;
  console.log(`window of ${K} micro-batches of ${ROWS} x ${LEN} tokens, GPT-2 shape (8 layers, 512 wide, vocab 8192), AdamW`);
  for (const mode of ['concatenated', 'accumulated'] as const) {
    const o = runChild<{ loss: number; afterLoadKb: number; peakKb: number; stepMs: number }>(__filename, mode, [String(steps)]);
    console.log(`${mode.padEnd(12)} peak RSS ${(o.peakKb / 1024).toFixed(0)} MiB (after load ${(o.afterLoadKb / 1024).toFixed(0)} MiB, ` +
      `the step adds ${((o.peakKb - o.afterLoadKb) / 1024).toFixed(0)} MiB)  step ${o.stepMs.toFixed(0)} ms  loss ${o.loss.toFixed(6)}`);
  }
}

if (!asChild((mode, args) => child(mode as 'concatenated' | 'accumulated', Number(args[0])))) main();
