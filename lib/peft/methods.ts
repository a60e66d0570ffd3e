/** Options of the adapter methods, validated with exact messages, and the records a Model keeps per adapter. */
import { checkOptionKeys } from '../util/options';
import { BOTTLENECK_KEYS, LORA_KEYS, PROMPT_KEYS } from '../util/option-keys';
import { NodetuneError, check } from '../errors';
import type { NativeLoraTarget } from '../native';
import { ModelStructure, resolveTargets } from './modules';

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  /** Module names (`q_proj`, `c_attn`, `query`, a full path...), a regular expression, or 'all-linear'. */
  targetModules: string[] | string;
  /** scale alpha / sqrt(r) instead of alpha / r. */
  useRslora?: boolean;
  /** Seed for the kaiming-uniform initialisation of lora_A. */
  seed?: number;
}

export interface BottleneckOptions {
  kind: 'bottleneck';
  /** hidden_size / reduction units in the bottleneck. */
  reduction: number;
  nonLinearity?: 'relu' | 'gelu' | 'gelu_tanh' | 'silu';
  seed?: number;
}

/** Anything with an async `encode(text)` returning `{ ids }` (an AutoTokenizer). */
export interface TextEncoder {
  encode(text: string): Promise<{ ids: number[] }>;
}

export interface PromptTuningOptions {
  numVirtualTokens: number;
  /** 'random' (normal(0, 1), as torch.nn.Embedding), 'vocab' (embeddings of random vocabulary tokens),
   * { ids } (embeddings of these tokens, repeated/truncated to numVirtualTokens), { text, tokenizer }. */
  init?: 'random' | 'vocab' | { ids: number[] } | { text: string; tokenizer: TextEncoder };
  seed?: number;
}

export type AdapterRecord =
  | { kind: 'lora'; r: number; alpha: number; dropout: number; useRslora: boolean; targetModules: string[] | string; targets: NativeLoraTarget[] }
  | { kind: 'bottleneck'; reduction: number; size: number; nonLinearity: string; sites: string[] }
  | { kind: 'prompt'; numVirtualTokens: number; tokenDim: number; init: 'RANDOM' | 'SAMPLE_VOCAB' | 'TEXT'; initText: string | null };

const seedOf = (seed: unknown): number | null => {
  if (seed === undefined) return null;
  check(Number.isSafeInteger(seed) && (seed as number) >= 0, `seed must be a non-negative integer, got ${JSON.stringify(seed)}`, 'seed');
  return seed as number;
};

export function checkAdapterName(name: unknown, existing: Map<string, AdapterRecord>): string {
  check(typeof name === 'string' && /^[A-Za-z0-9_-]+$/.test(name), `adapter name must be letters, digits, '_' or '-', got ${JSON.stringify(name)}`, 'name');
  if (existing.has(name as string)) throw new NodetuneError('ERR_STATE', `an adapter named '${name}' exists already`, { field: 'name' });
  return name as string;
}

export function loraRecord(o: LoraOptions, s: ModelStructure): { record: AdapterRecord & { kind: 'lora' }; scale: number; seed: number | null } {
  check(o && typeof o === 'object', 'addLora(options): options must be an object', 'options');
  checkOptionKeys(o, LORA_KEYS, 'addLora()');
  check(Number.isSafeInteger(o.r) && o.r > 0, `addLora(): r must be a positive integer, got ${JSON.stringify(o.r)}`, 'r');
  check(typeof o.alpha === 'number' && Number.isFinite(o.alpha) && o.alpha > 0, `addLora(): alpha must be a positive number, got ${JSON.stringify(o.alpha)}`, 'alpha');
  const dropout = o.dropout ?? 0;
  check(typeof dropout === 'number' && dropout >= 0 && dropout < 1, `addLora(): dropout must be in [0, 1), got ${JSON.stringify(o.dropout)}`, 'dropout');
  check(o.useRslora === undefined || typeof o.useRslora === 'boolean', 'addLora(): useRslora must be a boolean', 'useRslora');
  check(typeof o.targetModules === 'string' || (Array.isArray(o.targetModules) && o.targetModules.length > 0 && o.targetModules.every((t) => typeof t === 'string' && t.length > 0)),
    `addLora(): targetModules must be 'all-linear', a regular expression or a non-empty array of module names, got ${JSON.stringify(o.targetModules)}`, 'targetModules');
  const targets = resolveTargets(o.targetModules, s);
  const useRslora = o.useRslora ?? false;
  const scale = useRslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
  return { record: { kind: 'lora', r: o.r, alpha: o.alpha, dropout, useRslora, targetModules: o.targetModules, targets }, scale, seed: seedOf(o.seed) };
}

export function bottleneckRecord(o: BottleneckOptions, s: ModelStructure, hidden: number): { record: AdapterRecord & { kind: 'bottleneck' }; seed: number | null } {
  checkOptionKeys(o, BOTTLENECK_KEYS, 'addAdapter()');
  check(o && typeof o === 'object' && o.kind === 'bottleneck', `addAdapter(options): kind must be 'bottleneck', got ${JSON.stringify(o && o.kind)}`, 'kind');
  check(typeof o.reduction === 'number' && o.reduction >= 1 && Number.isInteger(hidden / o.reduction),
    `addAdapter(): reduction must divide the hidden size ${hidden}, got ${JSON.stringify(o.reduction)}`, 'reduction');
  const nonLinearity = o.nonLinearity ?? 'relu';
  check(['relu', 'gelu', 'gelu_tanh', 'silu'].includes(nonLinearity), `addAdapter(): nonLinearity must be relu, gelu, gelu_tanh or silu, got ${JSON.stringify(o.nonLinearity)}`, 'nonLinearity');
  const sites = s.layers.flatMap((l) => [`${l}attention`, `${l}mlp`]);
  return { record: { kind: 'bottleneck', reduction: o.reduction, size: hidden / o.reduction, nonLinearity, sites }, seed: seedOf(o.seed) };
}

/** PEFT's rule for text init: the ids repeated, then cut to n. */
export function fitIds(ids: number[], n: number): number[] {
  if (ids.length === 0) throw new NodetuneError('ERR_ARGUMENT', 'addPromptTuning(): the init text/ids give no tokens', { field: 'init' });
  const out: number[] = [];
  while (out.length < n) out.push(...ids);
  return out.slice(0, n);
}

/** Seeded vocabulary sample (mulberry32), so 'vocab' init is reproducible with `seed`. */
export function sampleVocab(n: number, vocab: number, seed: number): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * vocab));
  }
  return out;
}

export async function promptRecord(o: PromptTuningOptions, vocab: number, hidden: number): Promise<{ record: AdapterRecord & { kind: 'prompt' }; ids: number[] | null; seed: number | null }> {
  check(o && typeof o === 'object', 'addPromptTuning(options): options must be an object', 'options');
  checkOptionKeys(o, PROMPT_KEYS, 'addPromptTuning()');
  const n = o.numVirtualTokens;
  check(Number.isSafeInteger(n) && n > 0, `addPromptTuning(): numVirtualTokens must be a positive integer, got ${JSON.stringify(n)}`, 'numVirtualTokens');
  const seed = seedOf(o.seed);
  const init = o.init ?? 'random';
  const base = { kind: 'prompt' as const, numVirtualTokens: n, tokenDim: hidden };
  if (init === 'random') return { record: { ...base, init: 'RANDOM', initText: null }, ids: null, seed };
  if (init === 'vocab') return { record: { ...base, init: 'SAMPLE_VOCAB', initText: null }, ids: sampleVocab(n, vocab, seed ?? Math.floor(Math.random() * 2 ** 31)), seed };
  let ids: number[];
  let text: string | null = null;
  if (typeof init === 'object' && init !== null && 'ids' in init) {
    check(Array.isArray(init.ids) && init.ids.every((x) => Number.isSafeInteger(x) && x >= 0 && x < vocab), `addPromptTuning(): init.ids must be token ids in [0, ${vocab})`, 'init');
    ids = init.ids;
  } else if (typeof init === 'object' && init !== null && 'text' in init) {
    check(typeof init.text === 'string', 'addPromptTuning(): init.text must be a string', 'init');
    check(init.tokenizer && typeof init.tokenizer.encode === 'function', 'addPromptTuning(): init { text } needs a tokenizer: { text, tokenizer } (or pass { ids })', 'init');
    ids = (await init.tokenizer.encode(init.text)).ids;
    text = init.text;
    check(ids.every((x) => x >= 0 && x < vocab), 'addPromptTuning(): the tokenizer gave ids outside the model vocabulary', 'init');
  } else {
    throw new NodetuneError('ERR_ARGUMENT', `addPromptTuning(): init must be 'random', 'vocab', { ids } or { text, tokenizer }, got ${JSON.stringify(init)}`, { field: 'init' });
  }
  return { record: { ...base, init: 'TEXT', initText: text }, ids: fitIds(ids, n), seed };
}
