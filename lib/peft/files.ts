/**
 * Adapter folders: PEFT's layout (adapter_config.json + adapter_model.safetensors, keys
 * `base_model.model.<module path>.lora_A.weight` without the adapter name, `prompt_embeddings` for
 * prompt tuning, a trained head as PEFT's modules_to_save writes it), and nodetune's bottleneck format
 * in the same layout (docs/PEFT.md).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import type { NativeLoraTarget, NativeModel, NativeTensorEntry } from '../native';
import type { NativeTask, ResolvedConfig } from '../models/config';
import { HeaderTensor, SafetensorsDtype, TensorInfo, buildHeader, readSafetensorsHeader } from '../models/safetensors';
import type { AdapterRecord } from './methods';
import type { ModelStructure } from './modules';

export interface AdapterHost {
  native: NativeModel;
  resolved: ResolvedConfig;
  task: NativeTask;
  nameOrPath: string | undefined;
  structure(): ModelStructure;
}

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';
const ROOT = 'base_model.model.';
const TAG: Record<string, SafetensorsDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64' };
// PEFT has no masked-LM task type: null (PEFT's generic PeftModel), which loads on a *ForMaskedLM model.
const TASK_TYPE: Record<NativeTask, string | null> = {
  'causal-lm': 'CAUSAL_LM', 'sequence-classification': 'SEQ_CLS', 'token-classification': 'TOKEN_CLS',
  'question-answering': 'QUESTION_ANS', 'masked-lm': null, 'seq2seq-lm': 'SEQ_2_SEQ_LM', base: 'FEATURE_EXTRACTION',
};

function bad(file: string, message: string, field?: string): NodetuneError {
  return new NodetuneError('ERR_CHECKPOINT', `${file}: ${message}`, field === undefined ? { file } : { file, field });
}

/** Module path as written in files: a base model (task 'base') is saved without its prefix, as transformers does. */
function filePath(host: AdapterHost, name: string): string {
  const p = `${host.resolved.native.prefix}.`;
  return host.task === 'base' && name.startsWith(p) ? name.slice(p.length) : name;
}

/** Base parameters that train beside the adapter (the task head, or whatever setTrainable added): saved as
 * PEFT's modules_to_save, with the module names they belong to. */
function trainedHead(host: AdapterHost): { params: string[]; modules: string[] } {
  const params = host.native.parameters().filter((p) => p.trainable).map((p) => p.name);
  const modules = [...new Set(params.map((n) => n.slice(0, n.lastIndexOf('.'))))];
  return { params, modules };
}

export async function saveAdapterFiles(host: AdapterHost, dir: string, name: string, record: AdapterRecord): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const info = new Map(host.native.adapterParameters(name).map((p) => [p.name, p]));
  const items: { key: string; adapter: string | null; param: string }[] = [];
  const base: Record<string, unknown> = {
    base_model_name_or_path: host.nameOrPath ?? null, task_type: TASK_TYPE[host.task], inference_mode: true, revision: null,
  };
  let config: Record<string, unknown>;
  if (record.kind === 'lora') {
    for (const t of record.targets)
      for (const m of ['lora_A', 'lora_B']) items.push({ key: `${ROOT}${filePath(host, t.module)}.${m}.weight`, adapter: name, param: `${t.module}.${m}.weight` });
    const head = trainedHead(host);
    for (const p of head.params) items.push({ key: `${ROOT}${filePath(host, p)}`, adapter: null, param: p });
    const targetModules = record.targetModules === 'all-linear' ? [...new Set(record.targets.map((t) => t.module.split('.').pop()!))].sort() : record.targetModules;
    config = {
      ...base, peft_type: 'LORA', r: record.r, lora_alpha: record.alpha, lora_dropout: record.dropout, target_modules: targetModules,
      use_rslora: record.useRslora, bias: 'none', fan_in_fan_out: record.targets.some((t) => t.fanInFanOut),
      modules_to_save: head.modules.length > 0 ? head.modules.map((m) => filePath(host, m)) : null, init_lora_weights: true,
    };
  } else if (record.kind === 'prompt') {
    items.push({ key: 'prompt_embeddings', adapter: name, param: 'prompt_embeddings' });
    const c = host.resolved.native;
    config = {
      ...base, peft_type: 'PROMPT_TUNING', num_virtual_tokens: record.numVirtualTokens, token_dim: record.tokenDim,
      num_transformer_submodules: 1, num_attention_heads: c.numHeads, num_layers: c.numLayers,
      prompt_tuning_init: record.init, prompt_tuning_init_text: record.initText, tokenizer_name_or_path: record.initText === null ? null : host.nameOrPath ?? null,
    };
  } else {
    for (const p of info.keys()) items.push({ key: `${ROOT}${filePath(host, p)}`, adapter: name, param: p });
    const head = trainedHead(host);
    for (const p of head.params) items.push({ key: `${ROOT}${filePath(host, p)}`, adapter: null, param: p });
    config = {
      ...base, peft_type: 'BOTTLENECK', nodetune_format: 1, reduction: record.reduction, bottleneck_size: record.size,
      non_linearity: record.nonLinearity, placement: 'houlsby', sites: record.sites.map((s) => filePath(host, s)),
      modules_to_save: head.modules.length > 0 ? head.modules.map((m) => filePath(host, m)) : null,
    };
  }
  const baseInfo = new Map(host.native.parameters().map((p) => [p.name, p]));
  const header: HeaderTensor[] = items.map((it) => {
    const p = it.adapter === null ? baseInfo.get(it.param)! : info.get(it.param)!;
    return { name: it.key, dtype: TAG[p.dtype]!, shape: p.shape };
  });
  const { header: json } = buildHeader(header);
  const tag = `.tmp-${process.pid}-${Date.now()}`;
  const weights = path.join(dir, WEIGHTS_FILE);
  try {
    await host.native.saveTensors(weights + tag, json, items.map(({ adapter, param }) => ({ adapter, param })));
    fs.writeFileSync(path.join(dir, CONFIG_FILE) + tag, JSON.stringify(config, null, 2) + '\n');
  } catch (e) {
    fs.rmSync(weights + tag, { force: true });
    throw e;
  }
  fs.renameSync(weights + tag, weights);
  fs.renameSync(path.join(dir, CONFIG_FILE) + tag, path.join(dir, CONFIG_FILE));
}

export function readAdapterConfig(dir: string): Record<string, unknown> {
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_IO', `${dir}: no ${CONFIG_FILE} (not an adapter folder)`, { file });
  let cfg: unknown;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw bad(file, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw bad(file, 'must be a JSON object');
  return cfg as Record<string, unknown>;
}

function weightsOf(dir: string): TensorInfo[] {
  const file = path.join(dir, WEIGHTS_FILE);
  if (!fs.existsSync(file)) {
    if (fs.existsSync(path.join(dir, 'adapter_model.bin')))
      throw new NodetuneError('ERR_CHECKPOINT', `${dir}: only adapter_model.bin (a pickle) is there; nodetune reads ${WEIGHTS_FILE} (convert it with PEFT's safe_serialization=True)`, { file });
    throw new NodetuneError('ERR_IO', `${dir}: no ${WEIGHTS_FILE}`, { file });
  }
  return readSafetensorsHeader(file).tensors;
}

const num = (cfg: Record<string, unknown>, key: string, file: string, positive = true): number => {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) throw bad(file, `${key} must be a ${positive ? 'positive ' : ''}number, got ${JSON.stringify(v)}`, key);
  return v;
};

function entry(t: TensorInfo, adapter: string | null, param: string): NativeTensorEntry & { adapter: string | null } {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) throw bad(t.file, `tensor ${t.name} has dtype ${t.dtype}; adapter weights are floating point`, t.name);
  return { adapter, param, file: t.file, dtype: t.dtype, shape: t.shape, offset: t.offset, length: t.length };
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Reads and checks an adapter folder against this model; creates the adapter `name` and loads its tensors. */
export async function loadAdapterFiles(host: AdapterHost, dir: string, name: string): Promise<AdapterRecord> {
  const cfg = readAdapterConfig(dir);
  const cfgFile = path.join(dir, CONFIG_FILE);
  const tensors = weightsOf(dir);
  const s = host.structure();
  const prefix = `${host.resolved.native.prefix}.`;
  const resolveName = (p: string, known: (n: string) => boolean): string | undefined => (known(p) ? p : known(prefix + p) ? prefix + p : undefined);
  const baseParams = new Map(host.native.parameters().map((p) => [p.name, p]));
  const head = new Set(s.head);
  const type = cfg.peft_type;
  const entries: (NativeTensorEntry & { adapter: string | null })[] = [];
  let record: AdapterRecord;
  let create: () => void;
  if (type === 'LORA') {
    const r = num(cfg, 'r', cfgFile);
    const alpha = num(cfg, 'lora_alpha', cfgFile);
    const dropout = cfg.lora_dropout === undefined ? 0 : num(cfg, 'lora_dropout', cfgFile, false);
    const useRslora = cfg.use_rslora === true;
    if (cfg.use_dora === true) throw bad(cfgFile, 'use_dora (DoRA) adapters are not supported', 'use_dora');
    for (const k of ['rank_pattern', 'alpha_pattern'])
      if (cfg[k] && typeof cfg[k] === 'object' && Object.keys(cfg[k] as object).length > 0) throw bad(cfgFile, `${k} (per-module ranks) is not supported`, k);
    if (cfg.bias !== undefined && cfg.bias !== 'none') throw bad(cfgFile, `bias ${JSON.stringify(cfg.bias)} is not supported (only 'none')`, 'bias');
    const linear = new Map(s.linear.concat(s.headLinear).map((t) => [t.module, t]));
    const found = new Map<string, { A?: TensorInfo; B?: TensorInfo }>();
    for (const t of tensors) {
      if (!t.name.startsWith(ROOT)) throw bad(t.file, `tensor ${t.name} does not start with ${ROOT}`, t.name);
      const rest = t.name.slice(ROOT.length);
      const m = /^(.+)\.lora_([AB])\.weight$/.exec(rest);
      if (m) {
        const module = resolveName(m[1]!, (n) => linear.has(n));
        if (!module) throw bad(t.file, `tensor ${t.name}: the base model has no linear layer ${m[1]} (an adapter for another base model?)`, t.name);
        const slot = found.get(module) ?? {};
        slot[m[2] as 'A' | 'B'] = t;
        found.set(module, slot);
        continue;
      }
      // modules_to_save: whole modules saved with the adapter (a head, or e.g. resized embeddings); they replace the base's
      const param = resolveName(rest, (n) => baseParams.has(n));
      if (!param) throw bad(t.file, `tensor ${t.name} is neither a LoRA weight nor a weight of this model (an adapter for another base model?)`, t.name);
      const p = baseParams.get(param)!;
      if (!sameShape(p.shape, t.shape)) throw bad(t.file, `tensor ${t.name} has shape ${JSON.stringify(t.shape)}, the model's ${param} is ${JSON.stringify(p.shape)}`, t.name);
      entries.push(entry(t, null, param));
    }
    if (found.size === 0) throw bad(path.join(dir, WEIGHTS_FILE), 'holds no lora_A/lora_B weights');
    const targets: NativeLoraTarget[] = [];
    for (const [module, { A, B }] of found) {
      const t = linear.get(module)!;
      if (!A || !B) throw bad(path.join(dir, WEIGHTS_FILE), `${module} has lora_${A ? 'B' : 'A'} missing`, module);
      if (!sameShape(A.shape, [r, t.inFeatures])) throw bad(A.file, `tensor ${A.name} has shape ${JSON.stringify(A.shape)}, expected [r=${r}, ${t.inFeatures}] for this base model`, A.name);
      if (!sameShape(B.shape, [t.outFeatures, r])) throw bad(B.file, `tensor ${B.name} has shape ${JSON.stringify(B.shape)}, expected [${t.outFeatures}, r=${r}] for this base model`, B.name);
      targets.push(t);
      entries.push(entry(A, name, `${module}.lora_A.weight`), entry(B, name, `${module}.lora_B.weight`));
    }
    const targetModules = Array.isArray(cfg.target_modules) ? (cfg.target_modules as string[]) : typeof cfg.target_modules === 'string' ? cfg.target_modules : targets.map((t) => t.module);
    record = { kind: 'lora', r, alpha, dropout, useRslora, targetModules, targets };
    const scale = useRslora ? alpha / Math.sqrt(r) : alpha / r;
    create = () => host.native.addLora(name, { r, scale, dropout, seed: null, targets });
  } else if (type === 'PROMPT_TUNING') {
    const n = num(cfg, 'num_virtual_tokens', cfgFile);
    const hidden = host.resolved.native.hiddenSize;
    if (cfg.token_dim !== undefined && cfg.token_dim !== hidden) throw bad(cfgFile, `token_dim ${cfg.token_dim} != this model's hidden size ${hidden} (an adapter for another base model?)`, 'token_dim');
    if (cfg.num_transformer_submodules !== undefined && cfg.num_transformer_submodules !== 1) throw bad(cfgFile, 'num_transformer_submodules must be 1 (decoder or encoder models)', 'num_transformer_submodules');
    const t = tensors.find((x) => x.name === 'prompt_embeddings');
    if (!t || tensors.length !== 1) throw bad(path.join(dir, WEIGHTS_FILE), `a PROMPT_TUNING file holds exactly one tensor, prompt_embeddings; found ${tensors.map((x) => x.name).join(', ') || 'none'}`);
    if (!sameShape(t.shape, [n, hidden])) throw bad(t.file, `prompt_embeddings has shape ${JSON.stringify(t.shape)}, expected [${n}, ${hidden}]`, t.name);
    entries.push(entry(t, name, 'prompt_embeddings'));
    const init = cfg.prompt_tuning_init === 'TEXT' ? 'TEXT' : cfg.prompt_tuning_init === 'SAMPLE_VOCAB' ? 'SAMPLE_VOCAB' : 'RANDOM';
    record = { kind: 'prompt', numVirtualTokens: n, tokenDim: hidden, init, initText: typeof cfg.prompt_tuning_init_text === 'string' ? cfg.prompt_tuning_init_text : null };
    create = () => host.native.addPrompt(name, { numVirtualTokens: n, embedding: s.tokenEmbedding, ids: null, seed: null });
  } else if (type === 'BOTTLENECK') {
    if (cfg.nodetune_format !== 1) throw bad(cfgFile, `nodetune_format ${JSON.stringify(cfg.nodetune_format)} is not 1`, 'nodetune_format');
    const reduction = num(cfg, 'reduction', cfgFile);
    const hidden = host.resolved.native.hiddenSize;
    const size = num(cfg, 'bottleneck_size', cfgFile);
    const nonLinearity = typeof cfg.non_linearity === 'string' ? cfg.non_linearity : 'relu';
    const sites = s.layers.flatMap((l) => [`${l}attention`, `${l}mlp`]);
    const expected = new Map<string, number[]>();
    for (const site of sites) {
      expected.set(`${site}.adapter_down.weight`, [size, hidden]);
      expected.set(`${site}.adapter_down.bias`, [size]);
      expected.set(`${site}.adapter_up.weight`, [hidden, size]);
      expected.set(`${site}.adapter_up.bias`, [hidden]);
    }
    const seen = new Set<string>();
    for (const t of tensors) {
      const rest = t.name.startsWith(ROOT) ? t.name.slice(ROOT.length) : undefined;
      const headParam = rest === undefined ? undefined : resolveName(rest, (x) => baseParams.has(x));
      if (headParam) {
        const p = baseParams.get(headParam)!;
        if (!sameShape(p.shape, t.shape)) throw bad(t.file, `tensor ${t.name} has shape ${JSON.stringify(t.shape)}, the model's ${headParam} is ${JSON.stringify(p.shape)}`, t.name);
        entries.push(entry(t, null, headParam));
        continue;
      }
      const param = rest === undefined ? undefined : resolveName(rest, (x) => expected.has(x));
      if (!param) throw bad(t.file, `tensor ${t.name} is not a bottleneck weight of this model (an adapter for another base model?)`, t.name);
      if (!sameShape(t.shape, expected.get(param)!)) throw bad(t.file, `tensor ${t.name} has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(expected.get(param))}`, t.name);
      entries.push(entry(t, name, param));
      seen.add(param);
    }
    const missing = [...expected.keys()].filter((k) => !seen.has(k));
    if (missing.length > 0) throw bad(path.join(dir, WEIGHTS_FILE), `missing ${missing.length} tensors, e.g. ${missing[0]}`);
    record = { kind: 'bottleneck', reduction, size, nonLinearity, sites };
    create = () => host.native.addBottleneck(name, { size, act: nonLinearity, seed: null, sites });
  } else {
    throw bad(cfgFile, `unknown or unsupported peft_type ${JSON.stringify(type)} (nodetune loads LORA, PROMPT_TUNING and its BOTTLENECK format)`, 'peft_type');
  }
  create();
  try {
    await host.native.loadTensors(entries);
  } catch (e) {
    host.native.removeAdapter(name);
    throw e;
  }
  return record;
}
