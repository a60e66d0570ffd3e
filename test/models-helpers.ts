/** Shared helpers of the model tests (test/2*.models-*.test.ts). */
import * as fs from 'fs';
import * as path from 'path';
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
