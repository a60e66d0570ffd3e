/** Shared helpers of the model tests (test/2*.models-*.test.ts). */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Model } from '../lib/models';
import { repoRoot, sharedAssets } from './helpers';

export const FIXTURES = path.join(repoRoot, 'test', 'fixtures', 'models');
export const ARCHS = ['gpt2', 'llama', 'qwen2', 'mistral-cls', 'bert-cls', 'roberta-tok', 'distilbert-qa'];

export interface Expected {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds?: number[][];
  labels: number[][] | number[];
  shape: number[];
  logits: number[];
  loss: number;
}

/** A two-layer Llama config small enough to build in milliseconds, and a batch of two sequences for it. */
export const TINY_LLAMA = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 32, intermediate_size: 64,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32,
};
export const TINY_IDS = [[1, 5, 9, 13, 17, 21, 25, 29], [2, 6, 10, 14, 18, 22, 26, 30]];

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function expected(name: string): Expected {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
}

export function stories260K(): string | undefined {
  const assets = sharedAssets();
  const dir = assets && path.join(assets, 'models', 'stories260K');
  return dir && fs.existsSync(path.join(dir, 'model.safetensors')) ? dir : undefined;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function argmaxRows(logits: Float32Array, shape: number[], position: number): number[] {
  const [b, t, v] = shape as [number, number, number];
  const out: number[] = [];
  for (let i = 0; i < b; i++) {
    let best = 0;
    const base = (i * t + position) * v;
    for (let j = 1; j < v; j++) if (logits[base + j]! > logits[base + best]!) best = j;
    out.push(best);
  }
  return out;
}

/**
 * The smallest lead a greedy (argmax) choice must have over the runner-up logit before two different code paths
 * (KV cache vs full forward, batched vs alone, another machine's oracle) may be required to pick the same token.
 * float32 logits of the fixtures move by ~1e-6 between BLAS kernels, thread counts and batch shapes; 1e-4 leaves a
 * 100x margin while still ruling out a real near-tie, where the choice would depend on the CPU.
 */
export const TIE_MARGIN = 1e-4;

/** The lead of `row[chosen]` over the largest other entry of `row` (negative when `chosen` is not the argmax). */
export function lead(row: ArrayLike<number>, chosen: number): number {
  let other = -Infinity;
  for (let j = 0; j < row.length; j++) if (j !== chosen) other = Math.max(other, row[j]!);
  return row[chosen]! - other;
}

/** The smallest top-1 minus top-2 gap over the rows of width `width` of `logits` (optionally only rows `rows`). */
export function minTopGap(logits: ArrayLike<number>, width: number, rows?: number[]): number {
  let m = Infinity;
  for (const r of rows ?? Array.from({ length: logits.length / width }, (_, i) => i)) {
    const row = Array.prototype.slice.call(logits, r * width, (r + 1) * width) as number[];
    m = Math.min(m, lead(row, row.indexOf(Math.max(...row))));
  }
  return m;
}

/**
 * Decoder-only models: each row is a prompt (its first `from[r]` tokens) and a greedy continuation; one unpadded
 * teacher-forced forward per row gives, at every continued position, the lead of the token that was chosen over the
 * runner-up. Returns the smallest lead (negative: some chosen token was not the argmax of the full forward).
 */
export async function greedyLead(model: Model, rows: number[][], from: number | number[], adapter?: string | null): Promise<number> {
  let m = Infinity;
  for (const [r, row] of rows.entries()) {
    const start = typeof from === 'number' ? from : from[r]!;
    if (row.length <= start) continue;
    const out = await model.forward({ inputIds: [row] }, adapter === undefined ? {} : { adapter });
    const v = out.shape[2]!;
    for (let t = start - 1; t < row.length - 1; t++) m = Math.min(m, lead(out.logits.subarray(t * v, (t + 1) * v), row[t + 1]!));
  }
  return m;
}

/** Encoder-decoders: the same for generated decoder rows (without the start token), each with its own source row. */
export async function seq2seqGreedyLead(model: Model, inputIds: number[][], attentionMask: number[][] | undefined, rows: number[][], start = 0): Promise<number> {
  let m = Infinity;
  for (const [b, row] of rows.entries()) {
    if (row.length === 0) continue;
    const out = await model.forward({ inputIds: [inputIds[b]!], ...(attentionMask ? { attentionMask: [attentionMask[b]!] } : {}), decoderInputIds: [[start, ...row.slice(0, -1)]] });
    const v = out.shape[2]!;
    row.forEach((token, t) => (m = Math.min(m, lead(out.logits.subarray(t * v, (t + 1) * v), token))));
  }
  return m;
}

/**
 * Peak RSS growth (bytes) of a fresh process while it loads `dir` with `options` (VmHWM after the load minus the RSS
 * before it, the addon already loaded), and the loaded model's quantizedBytes().
 */
export function loadPeakInChild(dir: string, options: Record<string, unknown> = {}): { peak: number; quantizedBytes: number } {
  const script = `
    const fs = require('fs');
    const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native'))});
    const { AutoModel } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'models'))});
    native();
    const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
    const before = process.memoryUsage().rss;
    AutoModel.fromPretrained(${JSON.stringify(dir)}, ${JSON.stringify({ quiet: true, ...options })}).then((m) => {
      console.log(JSON.stringify({ peak: hwm() - before, quantizedBytes: m.quantizedBytes() }));
    });`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(run.status, run.stderr).to.equal(0);
  return JSON.parse(run.stdout) as { peak: number; quantizedBytes: number };
}
