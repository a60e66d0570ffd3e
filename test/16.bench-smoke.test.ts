import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { configFor, writeRandomCheckpoint } from '../bench/random-checkpoint';
import { stepFlops } from '../bench/real-size';
import { AutoModel } from '../lib';
import { tempDir } from './helpers';

describe('16 the benchmark harness (smoke test; figures come from `npm run bench`)', () => {
  for (const family of ['gpt2', 'llama'] as const) {
    it(`${family}: random checkpoint, then a measured training step in a child process`, async () => {
      const dir = tempDir('nodetune-bench-smoke-');
      const shape = { name: 'tiny', family, layers: 2, hidden: 32, heads: 4, vocab: 64, seq: 8 };
      await writeRandomCheckpoint(dir, configFor(shape), 3);
      const model = await AutoModel.fromPretrained(dir, { quiet: true });
      expect(model.task).to.equal('causal-lm');
      const batchFile = path.join(dir, 'batch.json');
      fs.writeFileSync(batchFile, JSON.stringify({ inputIds: [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]] }));
      const child = path.resolve(__dirname, '..', 'bench', 'step-child.js');
      const r = spawnSync(process.execPath, [child, JSON.stringify({ dir, batchFile, steps: 2, warmup: 1, mode: 'train' })], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout.trim()) as { times: number[]; losses: number[]; params: number; peakRssKb: number };
      expect(out.times).to.have.length(2);
      expect(out.losses).to.have.length(3);
      expect(out.losses[2]!).to.be.lessThan(out.losses[0]!);
      expect(out.params).to.be.greaterThan(64 * 32);
      expect(out.peakRssKb).to.be.greaterThan(0);
    });
  }

  it('real-size cases: fresh bfloat16 weights from a config, LoRA on every linear layer, bf16 steps, ours and PyTorch eager\'s', () => {
    const dir = tempDir('nodetune-bench-smoke-');
    const config = {
      model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300, max_position_embeddings: 64, tie_word_embeddings: true,
    };
    const batchFile = path.join(dir, 'batch.json');
    fs.writeFileSync(batchFile, JSON.stringify({ inputIds: [Array.from({ length: 16 }, (_, i) => (i * 37) % 300)] }));
    const args = { config, batchFile, steps: 2, warmup: 1, dtype: 'bfloat16', precision: 'bf16', loraTargets: 'all-linear', loraRank: 4 };
    const child = path.resolve(__dirname, '..', 'bench', 'step-child.js');
    const ours = spawnSync(process.execPath, [child, JSON.stringify({ ...args, mode: 'train' })], { encoding: 'utf8' });
    expect(ours.status, ours.stderr).to.equal(0);
    const out = JSON.parse(ours.stdout.trim()) as { times: number[]; cpuTimes: number[]; losses: number[]; trainable: number };
    expect(out.times).to.have.length(2);
    expect(out.cpuTimes).to.have.length(2);
    expect(out.trainable).to.equal(2 * 4 * ((32 + 32) * 2 + (32 + 16) * 2 + 3 * (32 + 64)));  // r x (in + out) per layer
    expect(out.losses[2]!).to.be.lessThan(out.losses[0]!);
    const python = process.env.NODETUNE_BENCH_PYTHON ?? '/usr/bin/python3';
    if (spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) return;  // PyTorch is a dev-only comparison
    const script = path.resolve(__dirname, '..', '..', 'bench', 'pytorch_step.py');
    const theirs = spawnSync(python, [script, JSON.stringify(args)], { encoding: 'utf8' });
    expect(theirs.status, theirs.stderr).to.equal(0);
    const t = JSON.parse(theirs.stdout.trim()) as { times: number[]; losses: number[]; trainable: number };
    expect(t.trainable).to.equal(out.trainable);
    expect(t.losses[2]!).to.be.lessThan(t.losses[0]!);
    expect(Math.abs(t.losses[0]! - out.losses[0]!)).to.be.below(0.5);  // the same distribution of weights: log(300) or so
  });

  it('counts a real-size step at about 0.5 TFLOP for LoRA on the Qwen2.5-0.5B shape over 256 tokens', () => {
    const qwen = { hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936 };
    const lora = stepFlops(qwen, 'lora', 256) / 1e12, full = stepFlops(qwen, 'full', 256) / 1e12;
    expect(lora).to.be.within(0.5, 0.53);
    expect(full).to.be.within(0.76, 0.78);
  });
});
