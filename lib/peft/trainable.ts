/**
 * Freezing policies (`model.setTrainable`) and the trainable-parameter summary (PEFT's
 * print_trainable_parameters, by module).
 */
import { NodetuneError, check } from '../errors';
import type { NativeParameterInfo } from '../native';
import { ModelStructure, globToRegExp } from './modules';

export type TrainablePolicy =
  | 'full'
  | 'head'
  | 'bitfit'
  | { lastLayers: number }
  | { include?: string[]; exclude?: string[] };

export interface TrainableOptions {
  /** true: the embeddings train too; false: they stay frozen; default: as the policy says. */
  trainEmbeddings?: boolean;
}

/** The base parameters that train under `policy` (freshly initialised head weights always do). */
export function trainableNames(policy: TrainablePolicy, s: ModelStructure, fresh: string[], options: TrainableOptions = {}): Set<string> {
  const names = s.params.map((p) => p.name);
  let chosen: string[];
  if (policy === 'full') chosen = names;
  else if (policy === 'head') {
    if (s.head.length === 0)
      throw new NodetuneError('ERR_STATE', "setTrainable('head'): this model has no separate head parameters (its LM head is tied to the embeddings); use { lastLayers: n } or trainEmbeddings", { field: 'policy' });
    chosen = s.head;
  } else if (policy === 'bitfit') chosen = names.filter((n) => n.endsWith('.bias'));
  else if (typeof policy === 'object' && policy !== null && 'lastLayers' in policy) {
    const n = policy.lastLayers;
    check(Number.isSafeInteger(n) && n >= 0 && n <= s.layers.length, `setTrainable({ lastLayers }): must be an integer in [0, ${s.layers.length}], got ${JSON.stringify(n)}`, 'lastLayers');
    const last = s.layers.slice(s.layers.length - n);
    chosen = names.filter((x) => last.some((l) => x.startsWith(l)) || s.finalNorm.includes(x) || s.head.includes(x));
  } else if (typeof policy === 'object' && policy !== null && ('include' in policy || 'exclude' in policy)) {
    const globs = (v: unknown, field: string): RegExp[] => {
      if (v === undefined) return [];
      check(Array.isArray(v) && v.every((g) => typeof g === 'string'), `setTrainable({ ${field} }): must be an array of name globs`, field);
      return (v as string[]).map(globToRegExp);
    };
    const inc = globs(policy.include, 'include');
    const exc = globs(policy.exclude, 'exclude');
    chosen = names.filter((x) => (policy.include === undefined || inc.some((r) => r.test(x))) && !exc.some((r) => r.test(x)));
  } else {
    throw new NodetuneError('ERR_ARGUMENT', `setTrainable(policy): expected 'full', 'head', 'bitfit', { lastLayers } or { include, exclude }, got ${JSON.stringify(policy)}`, { field: 'policy' });
  }
  const out = new Set(chosen);
  if (options.trainEmbeddings === true) s.embeddings.forEach((n) => out.add(n));
  if (options.trainEmbeddings === false) s.embeddings.forEach((n) => out.delete(n));
  fresh.forEach((n) => out.add(n));
  return out;
}

export interface ModuleCount {
  trainable: number;
  total: number;
}

export interface ParameterSummary {
  trainable: number;
  total: number;
  /** 100 * trainable / total. */
  percent: number;
  /** By module path (the parameter name without its last part); adapter modules as "<path> [<adapter>]". */
  byModule: Record<string, ModuleCount>;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function summarize(base: NativeParameterInfo[], adapters: { name: string; params: NativeParameterInfo[] }[]): ParameterSummary {
  const byModule: Record<string, ModuleCount> = {};
  let trainable = 0;
  let total = 0;
  const add = (module: string, p: NativeParameterInfo) => {
    const n = numel(p.shape);
    const m = (byModule[module] ??= { trainable: 0, total: 0 });
    m.total += n;
    total += n;
    if (p.trainable) m.trainable += n, (trainable += n);
  };
  const moduleOf = (name: string) => (name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : name);
  for (const p of base) add(moduleOf(p.name), p);
  for (const a of adapters) for (const p of a.params) add(`${moduleOf(p.name)} [${a.name}]`, p);
  return { trainable, total, percent: total === 0 ? 0 : (100 * trainable) / total, byModule };
}

/** One line like PEFT's print_trainable_parameters. */
export function formatSummary(s: ParameterSummary): string {
  return `trainable params: ${s.trainable.toLocaleString('en-US')} || all params: ${s.total.toLocaleString('en-US')} || trainable%: ${s.percent.toFixed(4)}`;
}
