/**
 * Peak RSS and step time of full fine-tuning vs LoRA on one GPT-2-shaped model, each in its own process
 * (so each peak is that case's alone). Only trainable parameters get gradients and AdamW state, so the
 * LoRA run's memory above the loaded weights is a small fraction of the full run's.
 *   node dist/bench/peft-memory.js [--quick]
 */
import { asChild, runChild, peakRssKb } from './child';
import { AutoModel } from '../lib/models';

const CONFIG = {
  architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 8192, n_embd: 512, n_layer: 8, n_head: 8,
  n_positions: 256, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
};

async function child(mode: 'full' | 'lora', steps: number): Promise<void> {
  const model = await AutoModel.fromConfig(CONFIG, { seed: 1 });
  if (mode === 'lora') model.addLora({ r: 8, alpha: 16, targetModules: ['c_attn'], seed: 1 });
  const afterLoad = peakRssKb();
  model.configureOptimizer({ type: 'adamw', lr: 1e-4 });
  const ids = Array.from({ length: 4 }, (_, b) => Array.from({ length: 128 }, (_, t) => (b * 131 + t * 17) % 8192));
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = process.hrtime.bigint();
    await model.trainStep({ inputIds: ids, labels: ids });
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const summary = model.parameterSummary();
  process.stdout.write(JSON.stringify({
    mode, trainable: summary.trainable, total: summary.total, afterLoadKb: afterLoad, peakKb: peakRssKb(),
    medianStepMs: times.sort((a, b) => a - b)[Math.floor(times.length / 2)],
  }) + '\n');
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const steps = quick ? 2 : 4;
  const rows = (['full', 'lora'] as const).map((mode) => {
    return runChild<{ mode: string; trainable: number; total: number; afterLoadKb: number; peakKb: number; medianStepMs: number }>(__filename, mode, [String(steps)]);
  });
  for (const r of rows)
    console.log(`${r.mode.padEnd(5)} trainable ${r.trainable.toLocaleString('en-US').padStart(12)} / ${r.total.toLocaleString('en-US')}  ` +
      `peak RSS ${(r.peakKb / 1024).toFixed(0)} MiB (after load ${(r.afterLoadKb / 1024).toFixed(0)} MiB, training adds ${((r.peakKb - r.afterLoadKb) / 1024).toFixed(0)} MiB)  ` +
      `step ${r.medianStepMs.toFixed(0)} ms`);
}

if (!asChild((mode, args) => child(mode as 'full' | 'lora', Number(args[0])))) main();
