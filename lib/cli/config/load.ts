/** Reads a YAML config, applies `--key.path value` overrides, validates it and resolves its paths. */
import * as fs from 'fs';
import * as path from 'path';
import { parse, parseDocument } from 'yaml';
import { NodetuneError } from '../../errors';
import { resolveArgs } from '../../train/args';
import { parseTemplate } from '../../data/seq2seq';
import { MLM_KEYS, SEQ2SEQ_KEYS, TRAIN_SCHEMA, TrainConfig } from './schema';
import { ConfigError, validate } from './validate';
import { validateSources } from './source';
import { validatePrivacy } from './privacy';
import { classifySource } from '../../data/sources/spec';
import { asConfigTask } from '../task-names';

/** Sets `a.b.c` in `obj` to `raw` read as a YAML scalar (numbers, booleans, lists in flow style). */
export function applyOverride(obj: Record<string, unknown>, keyPath: string, raw: string, file: string): void {
  const keys = keyPath.split('.');
  if (keys.some((k) => k.length === 0)) throw new ConfigError(file, keyPath, 'an override needs a dotted key such as --training.epochs 3');
  let node: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (next === undefined || next === null) node[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) throw new ConfigError(file, keyPath, `cannot set a key inside ${k}, which is not a mapping`);
    node = node[k] as Record<string, unknown>;
  }
  let value: unknown;
  try {
    value = parse(raw);
  } catch {
    value = raw;
  }
  node[keys[keys.length - 1]!] = value ?? raw;
}

/** Parses `--a.b value` / `--a.b=value` pairs. */
export function parseOverrides(argv: string[], file: string): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ConfigError(file, a, 'expected an override such as --training.epochs 3');
    const eq = a.indexOf('=');
    if (eq > 0) out.push([a.slice(2, eq), a.slice(eq + 1)]);
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new ConfigError(file, a.slice(2), 'the override has no value');
      out.push([a.slice(2), v]);
      i++;
    }
  }
  return out;
}

function crossChecks(c: TrainConfig, file: string): void {
  validateSources(c.data, file);
  validatePrivacy(c.data, file);
  const m = c.method;
  if (m.kind === 'partial' && m.policy === undefined) throw new ConfigError(file, 'method.policy', "is required with kind 'partial'; allowed: head, bitfit, lastLayers, include");
  if (m.policy === 'lastLayers' && m.lastLayers === undefined) throw new ConfigError(file, 'method.lastLayers', "is required with policy 'lastLayers'");
  if (m.policy === 'include' && m.include === undefined) throw new ConfigError(file, 'method.include', "is required with policy 'include'");
  if (m.init === 'text' && m.initText === undefined) throw new ConfigError(file, 'method.initText', "is required with init 'text'");
  const own: Record<string, string[]> = { lora: ['r', 'alpha', 'dropout', 'targetModules', 'useRslora'], adapter: ['reduction'], prompt: ['numVirtualTokens', 'init', 'initText'],
    partial: ['policy', 'lastLayers', 'include', 'exclude', 'trainEmbeddings'], full: [] };
  for (const [kind, keys] of Object.entries(own))
    for (const k of keys) if (kind !== m.kind && (m as unknown as Record<string, unknown>)[k] !== undefined)
      throw new ConfigError(file, `method.${k}`, `belongs to method kind '${kind}', but kind is '${m.kind}'`);
  const s = c.data.split;
  if (s && (s.validation ?? 0) + (s.test ?? 0) >= 1) throw new ConfigError(file, 'data.split', 'validation + test must leave some training data (sum below 1)');
  if (c.data.augment && c.task !== 'classification') throw new ConfigError(file, 'data.augment', `applies to task classification only, not ${c.task}`);
  if (c.task === 'causal-lm' && c.data.blockSize === undefined) throw new ConfigError(file, 'data.blockSize', 'is required with task causal-lm');
  const d = c.data as unknown as Record<string, unknown>;
  for (const [task, keys] of [['seq2seq', SEQ2SEQ_KEYS], ['masked-lm', MLM_KEYS]] as const)
    for (const k of keys) if (c.task !== task && d[k] !== undefined) throw new ConfigError(file, `data.${k}`, `applies to task ${task} only, not ${c.task}`);
  for (const k of ['sourceTemplate', 'targetTemplate'] as const) {
    const t = c.data[k];
    if (t === undefined) continue;
    try {
      parseTemplate(t, k);
    } catch (e) {
      throw new ConfigError(file, `data.${k}`, (e as Error).message.replace(/^\w+ /, ''));
    }
  }
  if (c.task === 'masked-lm' && c.data.blockSize !== undefined) throw new ConfigError(file, 'data.blockSize', 'applies to causal-lm; masked-lm cuts each text to data.maxLength (default 128)');
  if (c.data.maxLength !== undefined && c.data.maxSourceLength !== undefined) throw new ConfigError(file, 'data.maxLength', 'give data.maxSourceLength only with task seq2seq (maxLength is its alias)');
  if (c.training.predictWithGenerate === true && !['seq2seq', 'instruction', 'chat'].includes(c.task))
    throw new ConfigError(file, 'training.predictWithGenerate', `needs generated text to compare: task seq2seq, instruction or chat, not ${c.task}`);
}

/** Paths in the config are relative to the config file's folder (a model that is not a folder is a repo id). */
function resolvePaths(c: TrainConfig, base: string): void {
  const rel = (p: string) => (path.isAbsolute(p) ? p : path.resolve(base, p));
  const maybeDir = (p: string) => (p.startsWith('.') || path.isAbsolute(p) || fs.existsSync(rel(p)) ? rel(p) : p);
  c.model = maybeDir(c.model);
  if (c.tokenizer) c.tokenizer = maybeDir(c.tokenizer);
  c.output = rel(c.output);
  // Files only: standard input, URLs and queries are not paths.
  for (const k of ['train', 'validation', 'test'] as const) {
    const s = c.data[k] === undefined ? undefined : classifySource(c.data[k]!);
    if (s?.kind === 'file') c.data[k] = rel(s.path);
  }
}

export function loadConfig(file: string, overrides: [string, string][] = []): TrainConfig {
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `${file}: no such config file`, { file });
  const doc = parseDocument(fs.readFileSync(file, 'utf8'));
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new NodetuneError('ERR_CONFIG', `${file}${line ? `:${line}` : ''}: not valid YAML (${e.message.split('\n')[0]})`, { file, ...(line ? { line } : {}) });
  }
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, '(top level)', 'must be a mapping of keys such as model, task, data, method, training, output');
  for (const [k, v] of overrides) applyOverride(raw as Record<string, unknown>, k, v, file);
  // Either spelling of a task: `text-classification` is `classification`, ...
  const r = raw as Record<string, unknown>;
  if (typeof r.task === 'string') r.task = asConfigTask(r.task) ?? r.task;
  let c: TrainConfig;
  try {
    c = checked(raw, file);
  } catch (e) {
    throw blameOverride(e, overrides, file);
  }
  resolvePaths(c, path.dirname(path.resolve(file)));
  return c;
}

/** The schema, the cross-key rules and the Trainer's own checks of `training`. */
function checked(raw: unknown, file: string): TrainConfig {
  validate(raw, TRAIN_SCHEMA, '', file);
  const c = raw as TrainConfig;
  // model: { path, quantize } is model: path plus the base's quantization.
  const m = c.model as unknown;
  if (m !== null && typeof m === 'object') {
    const { path: p, quantize } = m as { path: string; quantize?: 'int8' | 'nf4' };
    c.model = p;
    if (quantize !== undefined) c.quantize = quantize;
  }
  c.training ??= {};
  crossChecks(c, file);
  try {
    resolveArgs({ ...c.training, outputDir: c.output }, true);
  } catch (e) {
    const err = e as NodetuneError;
    if (err.code !== 'ERR_CONFIG') throw e;
    const field = String(err.details.field ?? '');
    throw new ConfigError(file, `training.${field}`, err.message.replace(/^TrainingArgs\.[\w.]+: /, ''));
  }
  return c;
}

/** An error in a key that a command-line override set is the override's, not the file's: `override --training.epoch: unknown key ...`. */
function blameOverride(e: unknown, overrides: [string, string][], file: string): unknown {
  if (!(e instanceof ConfigError)) return e;
  const field = String(e.details.field ?? '');
  const hit = overrides.find(([k]) => field === k || field.startsWith(`${k}.`) || k.startsWith(`${field}.`));
  if (!hit) return e;
  const message = e.message.slice(`${file}: ${field}: `.length);
  return new NodetuneError('ERR_CONFIG', `override --${hit[0]} ${JSON.stringify(hit[1])}: ${field === hit[0] ? '' : `${field}: `}${message}`, { field, override: hit[0] });
}
