/**
 * Changing a model's structure: which parameters belong to which transformer layer (one small table per family),
 * the reduced config.json, and dropping layers from a loaded model (Model.dropLayers) or while loading
 * (AutoModel.fromPretrained's keepLayers).
 */
import { NodetuneError } from '../errors';
import { NativeModel, NativeModelConfig, native } from '../native';
import { MODEL_TYPES, RawConfig, ResolvedConfig, resolveConfig } from './config';

/** One stack of numbered layers. Most models have one; an encoder-decoder (T5) has two. */
export interface LayerStack {
  /** The stack's name in `dropLayers(..., { stack })` ('layers' for single-stack models). */
  stack: string;
  /** Layer i's parameters are named `<path><i>.…`. */
  path: string;
  /** Whether `path` sits under the base-model prefix (`transformer.`, `model.`, …): checkpoints may omit it. */
  underBase: boolean;
  /** config.json's layer count. */
  countKey: string;
  /** When countKey is absent, the count is this key's (T5's num_decoder_layers falls back to num_layers). */
  fallbackKey?: string;
  /** config.json lists with one entry per layer (filtered with the kept layers when present). */
  perLayerKeys: string[];
  /** Parameters (after `<path><i>.`) that only layer 0 has and every layer uses (T5's relative attention bias):
   * when layer 0 is dropped they move to the new layer 0. */
  firstLayerOnly?: RegExp;
}

// T5's relative position bias lives in block 0 and serves every block of its stack.
const T5_SHARED = /^layer\.0\.SelfAttention\.relative_attention_bias\./;

/** Per family (config.ts's MODEL_TYPES). An encoder-decoder family lists its encoder and decoder stacks. */
export const LAYER_STACKS: Record<string, LayerStack[]> = {
  gpt2: [{ stack: 'layers', path: 'h.', underBase: true, countKey: 'n_layer', perLayerKeys: [] }],
  llama: [{ stack: 'layers', path: 'layers.', underBase: true, countKey: 'num_hidden_layers', perLayerKeys: ['layer_types'] }],
  bert: [{ stack: 'layers', path: 'encoder.layer.', underBase: true, countKey: 'num_hidden_layers', perLayerKeys: [] }],
  distilbert: [{ stack: 'layers', path: 'transformer.layer.', underBase: true, countKey: 'n_layers', perLayerKeys: [] }],
  t5: [
    { stack: 'encoder', path: 'encoder.block.', underBase: false, countKey: 'num_layers', perLayerKeys: [], firstLayerOnly: T5_SHARED },
    { stack: 'decoder', path: 'decoder.block.', underBase: false, countKey: 'num_decoder_layers', fallbackKey: 'num_layers', perLayerKeys: [], firstLayerOnly: T5_SHARED },
  ],
  // umT5 (a model_type of the t5 family): every block has its own relative attention bias, so nothing moves.
  umt5: [
    { stack: 'encoder', path: 'encoder.block.', underBase: false, countKey: 'num_layers', perLayerKeys: [] },
    { stack: 'decoder', path: 'decoder.block.', underBase: false, countKey: 'num_decoder_layers', fallbackKey: 'num_layers', perLayerKeys: [] },
  ],
};

/** The stacks of a model: by model_type where it differs from its family's, else by family. */
function stacksFor(raw: RawConfig, family: string): string {
  const type = typeof raw.model_type === 'string' ? raw.model_type : '';
  return type !== family && LAYER_STACKS[type] ? type : family;
}

export interface LayerSelection {
  /** The layers to keep, in their order in the model (ascending, no duplicates). */
  keepLayers: number[];
  /** Which stack (needed only when the model has more than one, e.g. 'encoder' / 'decoder'). */
  stack?: string;
}

function stackOf(family: string, name: string | undefined, field: string): LayerStack {
  const stacks = LAYER_STACKS[family];
  if (!stacks) throw new NodetuneError('ERR_CONFIG', `${field}: changing the layers of a ${family} model is not supported`, { field });
  if (name === undefined) {
    if (stacks.length === 1) return stacks[0]!;
    throw new NodetuneError('ERR_ARGUMENT', `${field}: this model has stacks ${stacks.map((s) => s.stack).join(', ')}; name one with { stack }`, { field: 'stack' });
  }
  const s = stacks.find((x) => x.stack === name);
  if (!s) throw new NodetuneError('ERR_ARGUMENT', `${field}: unknown stack '${name}' (this model has ${stacks.map((x) => x.stack).join(', ')})`, { field: 'stack' });
  return s;
}

/** The layer count of `stack` in a config.json. */
export function layerCount(raw: RawConfig, s: LayerStack): number {
  const v = raw[s.countKey] ?? (s.fallbackKey !== undefined ? raw[s.fallbackKey] : undefined);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new NodetuneError('ERR_CONFIG', `config.json: ${s.countKey} must be a positive integer to change the layers, got ${JSON.stringify(v)}`, { field: s.countKey });
  return v;
}

/** Validates the kept indices (sorted ascending): in range, no duplicates, not empty. */
function checkKeep(keep: unknown, count: number, what: string, field: string): number[] {
  if (!Array.isArray(keep)) throw new NodetuneError('ERR_ARGUMENT', `${what}: ${field} must be an array of layer indices`, { field });
  const seen = new Set<number>();
  for (const i of keep) {
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0 || i >= count)
      throw new NodetuneError('ERR_ARGUMENT', `${what}: ${field}: ${JSON.stringify(i)} is not a layer index in [0, ${count})`, { field });
    if (seen.has(i)) throw new NodetuneError('ERR_ARGUMENT', `${what}: ${field}: layer ${i} is listed twice`, { field });
    seen.add(i);
  }
  if (seen.size === 0) throw new NodetuneError('ERR_ARGUMENT', `${what}: ${field}: no layer would be left (a model keeps at least one)`, { field });
  return [...seen].sort((a, b) => a - b);
}

/** What to keep: `indices` are the layers to drop; `{ keepLayers }` the ones to keep. */
export interface LayerPlan {
  stack: LayerStack;
  keep: number[];
  /** config.json with the stack's count (and per-layer lists) reduced. */
  raw: RawConfig;
  /** Old parameter name → new name; null: dropped; the name itself when it belongs to no layer of the stack. */
  rename: (name: string) => string | null;
}

export function planLayers(raw: RawConfig, family: string, prefix: string, spec: number[] | LayerSelection, what: string): LayerPlan {
  const list = Array.isArray(spec);
  if (!list && (typeof spec !== 'object' || spec === null))
    throw new NodetuneError('ERR_ARGUMENT', `${what}: expected an array of layer indices to drop, or { keepLayers }`, { field: 'layers' });
  family = stacksFor(raw, family);
  const stack = stackOf(family, list ? undefined : spec.stack, what);
  const count = layerCount(raw, stack);
  let keep: number[];
  if (list) {
    const drop = checkKeep(spec, count, what, 'indices');
    keep = Array.from({ length: count }, (_, i) => i).filter((i) => !drop.includes(i));
    if (keep.length === 0) throw new NodetuneError('ERR_ARGUMENT', `${what}: indices drop all ${count} layers (a model keeps at least one)`, { field: 'indices' });
  } else keep = checkKeep(spec.keepLayers, count, what, 'keepLayers');

  const out: RawConfig = { ...raw, [stack.countKey]: keep.length };
  // Another stack whose count fell back to the key we change keeps its count explicitly.
  for (const other of LAYER_STACKS[family]!) {
    if (other !== stack && other.fallbackKey === stack.countKey && raw[other.countKey] === undefined) out[other.countKey] = count;
  }
  for (const key of stack.perLayerKeys) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.length !== count)
      throw new NodetuneError('ERR_CONFIG', `config.json: ${key} must list one entry per layer (${count}), got ${JSON.stringify(v)}`, { field: key });
    out[key] = keep.map((i) => v[i] as unknown);
  }
  const index = new Map(keep.map((old, i) => [old, i]));
  const full = stack.underBase ? `${prefix}.${stack.path}` : stack.path;
  const re = new RegExp(`^(${escape(full)}|${escape(stack.path)})(\\d+)\\.(.*)$`);
  const rename = (name: string): string | null => {
    const m = re.exec(name);
    if (!m) return name;
    const [, head, i, rest] = m as unknown as [string, string, string, string];
    const j = index.get(Number(i));
    if (j !== undefined) return `${head}${j}.${rest}`;
    // Layer 0's shared parameters move to the new layer 0 when layer 0 goes.
    if (Number(i) === 0 && stack.firstLayerOnly?.test(rest)) return `${head}0.${rest}`;
    return null;
  };
  return { stack, keep, raw: out, rename };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The resolved config of the reduced model (same task and labels). */
export function reducedConfig(resolved: ResolvedConfig, plan: LayerPlan): ResolvedConfig {
  return resolveConfig(plan.raw, 'config.json', { task: resolved.task, numLabels: resolved.numLabels });
}

/**
 * A new native model of the reduced config holding the kept layers' tensors (renumbered 0..n-1) and every
 * other tensor, copied; trainability and the loss scaler carry over. The caller swaps it in.
 */
export function shrinkNative(old: NativeModel, next: ResolvedConfig, plan: LayerPlan, device: string, dtype: string): NativeModel {
  const model = new (native().Model)(next.native as NativeModelConfig, device, dtype);
  const target = new Map(model.parameters().map((p) => [p.name, p]));
  const filled = new Set<string>();
  const frozen: string[] = [];
  for (const p of old.parameters()) {
    const name = plan.rename(p.name);
    if (name === null) continue;
    const t = target.get(name);
    if (!t || t.shape.join() !== p.shape.join())
      throw new NodetuneError('ERR_STATE', `dropLayers(): ${p.name} has no place in the reduced model (${name})`, { field: p.name });
    model.setParameter(name, old.getParameter(p.name));
    filled.add(name);
    if (!p.trainable) frozen.push(name);
  }
  const missing = [...target.keys()].filter((n) => !filled.has(n));
  if (missing.length) throw new NodetuneError('ERR_STATE', `dropLayers(): no tensor for ${missing.join(', ')}`, { field: missing[0]! });
  if (frozen.length) model.setTrainable(frozen, false);
  model.setLossScalerState(old.lossScalerState());
  return model;
}

/** fromPretrained's keepLayers: the plan against the checkpoint's config.json (family and prefix from model_type). */
export function planKeepLayers(raw: RawConfig, file: string, keepLayers: number[]): LayerPlan {
  const known = typeof raw.model_type === 'string' ? MODEL_TYPES[raw.model_type] : undefined;
  if (!known) resolveConfig(raw, file);  // throws ERR_CONFIG naming model_type
  return planLayers(raw, known!.family, known!.prefix, { keepLayers }, 'keepLayers');
}
