/** AutoModel.fromPretrained: config.json + safetensors (single or sharded) from a directory or the HF cache. */
import { checkOptionKeys } from '../util/options';
import { MODEL_LOAD_KEYS } from '../util/option-keys';
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError, check } from '../errors';
import { NativeTensorEntry, native } from '../native';
import { NativeTask, RawConfig, Task, resolveConfig } from './config';
import { resolveModelDir } from './hub';
import { LoadReport, Model, ModelDtype } from './model';
import { TensorInfo, readCheckpointTensors } from './safetensors';
import { checkLayerCounts } from './layer-count';
import { planKeepLayers } from './structure';
import { BnbWeight, QuantizeFormat, bnbWeights, checkQuantizeOption, markQuantized, quantizableWeights } from './quantize';

export interface FromPretrainedOptions {
  /** Default: from config.json's `architectures` (a bare XModel loads the base model, hidden states out). */
  task?: Task | 'base';
  device?: string;
  dtype?: ModelDtype;
  /** Number of labels of a classification head (default: config.json's id2label / num_labels, else 2). */
  numLabels?: number;
  /** Seed for initialising weights the checkpoint lacks (head weights). */
  seed?: number;
  /** Don't warn about newly initialised or unexpected weights (they are still in model.loadReport). */
  quiet?: boolean;
  revision?: string;
  /** Load only these transformer layers, renumbered 0..n-1 (config's layer count follows): Model.dropLayers at load time. */
  keepLayers?: number[];
  /**
   * Keep the frozen linear weights quantized (QLoRA-style base for adapters): 'int8' (per-output-channel absmax) or
   * 'nf4' (4-bit NormalFloat, blocks of 64, double-quantized scales). Quantized tensor by tensor while reading, so
   * memory peaks near the quantized size. Embeddings, norms and heads (the LM head too) stay in the compute dtype.
   * A checkpoint saved quantized by bitsandbytes (transformers' load_in_4bit / load_in_8bit) is recognised by its
   * tensors and loads quantized without this option.
   */
  quantize?: QuantizeFormat;
  /** The dtype of what is not quantized and of the computation (the same as dtype); default with quantize: bfloat16. */
  computeDtype?: ModelDtype;
  /** With quantize: the LM head too (a quantized copy of tied embeddings, which stay as they are for the lookup).
   * Decoding then reads the head's bytes in the quantized format as well (default false: the head stays unquantized). */
  quantizeLmHead?: boolean;
}

const TASKS = ['causal-lm', 'sequence-classification', 'token-classification', 'question-answering', 'masked-lm', 'seq2seq-lm', 'base'];
const LOADABLE = new Set(['F32', 'F16', 'BF16', 'F64']);
// Buffers some checkpoints carry that are recomputed, not loaded (transformers ignores them too).
const IGNORED = [/\.attn\.(masked_)?bias$/, /rotary_emb\.inv_freq$/, /embeddings\.position_ids$/];
// Masked-LM decoders are tied to the word embeddings (and BERT/RoBERTa's decoder bias to the head's bias): the
// checkpoint's copies are accepted and ignored, as transformers does.
const TIED_MLM = new Set(['cls.predictions.decoder.weight', 'cls.predictions.decoder.bias', 'lm_head.decoder.weight', 'lm_head.decoder.bias', 'vocab_projector.weight']);

const T5_EMBED_COPIES = new Set(['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight']);

function readConfig(dir: string): RawConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_CONFIG', `${dir}: no config.json`, { file });
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RawConfig;
  } catch (e) {
    throw new NodetuneError('ERR_CONFIG', `${file}: not valid JSON (${(e as Error).message})`, { file });
  }
}

function checkCommon(opts: FromPretrainedOptions, where: string, quantized = false): { device: string; dtype: ModelDtype } {
  check(opts && typeof opts === 'object', 'options must be an object', 'options');
  checkOptionKeys(opts, MODEL_LOAD_KEYS, where);
  if (opts.task !== undefined) check(TASKS.includes(opts.task), `task must be one of ${TASKS.join(', ')}, got ${JSON.stringify(opts.task)}`, 'task');
  const device = opts.device ?? 'cpu';
  check(typeof device === 'string' && /^(cpu|cuda(:\d+)?|mps)$/.test(device), `device must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(opts.device)}`, 'device');
  checkQuantizeOption(opts.quantize);
  if (opts.quantizeLmHead !== undefined) check(typeof opts.quantizeLmHead === 'boolean', `quantizeLmHead must be a boolean, got ${JSON.stringify(opts.quantizeLmHead)}`, 'quantizeLmHead');
  if (opts.computeDtype !== undefined && opts.dtype !== undefined)
    check(opts.computeDtype === opts.dtype, `computeDtype ${JSON.stringify(opts.computeDtype)} and dtype ${JSON.stringify(opts.dtype)} disagree (they name the same thing: give one)`, 'computeDtype');
  const dtype = opts.dtype ?? opts.computeDtype ?? (opts.quantize !== undefined || quantized ? 'bfloat16' : 'float32');
  check(['float32', 'float16', 'bfloat16'].includes(dtype), `${opts.dtype === undefined && opts.computeDtype !== undefined ? 'computeDtype' : 'dtype'} must be float32, float16 or bfloat16, got ${JSON.stringify(dtype)}`, opts.dtype === undefined && opts.computeDtype !== undefined ? 'computeDtype' : 'dtype');
  if (opts.numLabels !== undefined) check(Number.isSafeInteger(opts.numLabels) && opts.numLabels >= 1, `numLabels must be a positive integer, got ${opts.numLabels}`, 'numLabels');
  if (opts.seed !== undefined) check(Number.isSafeInteger(opts.seed) && opts.seed >= 0, `seed must be a non-negative integer`, 'seed');
  return { device, dtype };
}

export class AutoModel {
  /** A model with freshly initialised weights (transformers' init: normal(0, initializer_range), zero biases, unit norms) from a config.json object. */
  static async fromConfig(config: RawConfig, opts: FromPretrainedOptions = {}): Promise<Model> {
    const { device, dtype } = checkCommon(opts, 'AutoModel.fromConfig()');
    if (config && config.sinusoidal_pos_embds === true)  // transformers fills DistilBERT's positions with fixed sinusoids
      throw new NodetuneError('ERR_CONFIG', 'config: sinusoidal_pos_embds true is not supported by fromConfig (load a checkpoint that has the table)', { field: 'sinusoidal_pos_embds' });
    const resolved = resolveConfig(config, 'config', {
      ...(opts.task !== undefined ? { task: opts.task as NativeTask } : {}),
      ...(opts.numLabels !== undefined ? { numLabels: opts.numLabels } : {}),
    });
    const model = new (native().Model)(resolved.native, device, dtype);
    if (opts.quantize) markQuantized(model, opts.quantize, quantizableWeights(model.parameters(), new Set(model.headNames()), resolved.family, 'AutoModel.fromConfig()'));
    const names = model.parameters().map((p) => p.name);
    await model.load([], names, opts.seed ?? null);
    return new Model(model, resolved, device, dtype, { newlyInitialized: names, unexpected: [], mismatched: [] }, undefined, opts.quantize ?? null);
  }

  static async fromPretrained(pathOrRepoId: string, opts: FromPretrainedOptions = {}): Promise<Model> {
    check(typeof pathOrRepoId === 'string' && pathOrRepoId.length > 0, 'fromPretrained(pathOrRepoId): a directory or repo id is required', 'pathOrRepoId');
    checkCommon(opts, 'AutoModel.fromPretrained()');
    const dir = resolveModelDir(pathOrRepoId, opts.revision);
    const plan = opts.keepLayers === undefined ? undefined : planKeepLayers(readConfig(dir), path.join(dir, 'config.json'), opts.keepLayers);
    const raw = plan ? plan.raw : readConfig(dir);
    const resolved = resolveConfig(raw, path.join(dir, 'config.json'), {
      ...(opts.task !== undefined ? { task: opts.task as NativeTask } : {}),
      ...(opts.numLabels !== undefined ? { numLabels: opts.numLabels } : {}),
    });
    const tensors = readCheckpointTensors(dir);
    // Weights saved quantized by bitsandbytes: the model loads quantized in their format.
    const bnb = bnbWeights(tensors);
    const stored = [...new Set([...bnb.weights.values()].map((w) => w.format))];
    if (stored.length > 1) throw new NodetuneError('ERR_CHECKPOINT', `${dir}: the checkpoint mixes bitsandbytes formats (${stored.join(', ')})`, { file: dir });
    if (stored.length === 1 && opts.quantize !== undefined && opts.quantize !== stored[0])
      throw new NodetuneError('ERR_ARGUMENT', `quantize '${opts.quantize}' asked, but ${dir} is saved quantized as ${stored[0]} by bitsandbytes (leave quantize out, or give '${stored[0]}')`, { field: 'quantize' });
    const quantize: QuantizeFormat | undefined = opts.quantize ?? stored[0];
    const { device, dtype } = checkCommon(opts, 'AutoModel.fromPretrained()', quantize !== undefined);
    if (stored.length === 1) {
      // What is saved is the quantized model: its config's quantization_config does not describe the weights savePretrained() writes.
      const raw = resolved.raw as Record<string, unknown>;
      delete raw.quantization_config;
    }
    checkLayerCounts(resolved, path.join(dir, 'config.json'), tensors.map((t) => (plan ? plan.rename(t.name) : t.name)).filter((n): n is string => n !== null),
      tensors.map((t) => t.file));
    const model = new (native().Model)(resolved.native, device, dtype);
    const heads = new Set(model.headNames());
    if (opts.quantizeLmHead && (quantize === undefined || resolved.task !== 'causal-lm'))
      throw new NodetuneError('ERR_ARGUMENT', `quantizeLmHead needs quantize and a causal-lm model (here: quantize ${JSON.stringify(quantize ?? null)}, task ${resolved.task})`, { field: 'quantizeLmHead' });
    const picked = quantize ? quantizableWeights(model.parameters(), heads, resolved.family, `${pathOrRepoId}: quantize`) : undefined;
    const untiedHead = opts.quantizeLmHead === true && resolved.native.tieWordEmbeddings !== true;
    if (picked && untiedHead) picked.names.push('lm_head.weight');
    const prefix = resolved.native.prefix;
    const tied = resolved.native.tieWordEmbeddings === true;
    const modelName = (n: string, known: Set<string>) => (known.has(n) ? n : known.has(`${prefix}.${n}`) ? `${prefix}.${n}` : undefined);
    // bitsandbytes weights keep their format; the other linear weights (if any) are quantized while loading.
    const bnbItems: BnbWeight[] = [];
    if (picked) {
      const known = new Set(model.parameters().map((p) => p.name));
      const fromBnb = new Set<string>();
      for (const w of bnb.weights.values()) {
        const name = modelName(plan ? plan.rename(w.param) ?? '' : w.param, known);
        if (name === undefined) continue;
        fromBnb.add(name);
        bnbItems.push({ ...w, param: name });
      }
      markQuantized(model, quantize!, { names: picked.names.filter((n) => !fromBnb.has(n)), transposed: picked.transposed });
    }
    const params = new Map(model.parameters().map((p) => [p.name, p]));

    const entries: NativeTensorEntry[] = [];
    const source = new Map<string, TensorInfo>();
    const unexpected: string[] = [];
    const mismatched: string[] = [];
    const t5Copies: TensorInfo[] = [];
    const bnbByName = new Map(bnbItems.map((w) => [w.param, w]));
    for (const t of tensors) {
      const kept = plan ? plan.rename(t.name) : t.name;
      if (kept === null) continue;  // a layer left out by keepLayers
      const name = params.has(kept) ? kept : params.has(`${prefix}.${kept}`) ? `${prefix}.${kept}` : undefined;
      const stats = bnb.consumed.has(t.name);
      if (stats && (name === undefined || !bnbByName.has(name) || !bnb.weights.has(t.name))) {
        if (name !== undefined && !bnbByName.has(name) && bnb.weights.has(t.name))
          throw new NodetuneError('ERR_CHECKPOINT', `${t.file}: tensor ${t.name} is saved quantized, but ${name} is not a linear weight nodetune keeps quantized`, { file: t.file, field: t.name });
        continue;  // a statistic of a quantized weight (absmax, SCB, quant_state, ...)
      }
      if (name !== undefined && bnbByName.has(name)) {
        const w = bnbByName.get(name)!;
        const p = params.get(name)!;
        if (w.shape.length !== 2 || w.shape[0] !== p.shape[0] || w.shape[1] !== p.shape[1])
          throw new NodetuneError('ERR_CHECKPOINT', `${t.file}: tensor ${t.name} is quantized from shape ${JSON.stringify(w.shape)}, config.json implies ${JSON.stringify(p.shape)}`, { file: t.file, field: t.name });
        source.set(name, t);
        continue;
      }
      if (name === undefined) {
        if (T5_EMBED_COPIES.has(t.name) && resolved.family === 't5') {
          t5Copies.push(t);
          continue;
        }
        if (IGNORED.some((re) => re.test(t.name)) || (tied && t.name === 'lm_head.weight') || (resolved.task === 'masked-lm' && TIED_MLM.has(t.name))) continue;
        unexpected.push(t.name);
        continue;
      }
      const previous = source.get(name);
      if (previous) throw new NodetuneError('ERR_CHECKPOINT', `${t.file}: tensors ${previous.name} and ${t.name} both load into ${name}`, { file: t.file, field: t.name });
      const p = params.get(name)!;
      if (!LOADABLE.has(t.dtype))
        throw new NodetuneError('ERR_CHECKPOINT', `${t.file}: tensor ${t.name} has dtype ${t.dtype}; weights must be F32, F16 or BF16`, { file: t.file, field: t.name });
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        // A head of another size while numLabels was asked for: re-initialised (transformers' ignore_mismatched_sizes).
        if (heads.has(name) && opts.numLabels !== undefined) {
          mismatched.push(t.name);
          continue;
        }
        throw new NodetuneError('ERR_CHECKPOINT',
          `${t.file}: tensor ${t.name} has shape ${JSON.stringify(t.shape)}, config.json implies ${JSON.stringify(p.shape)}`, { file: t.file, field: t.name });
      }
      source.set(name, t);
      entries.push({ param: name, file: t.file, dtype: t.dtype, shape: t.shape, offset: t.offset, length: t.length });
    }
    // T5 checkpoints may carry encoder/decoder.embed_tokens.weight (copies of shared.weight): ignored, or the source
    // of shared.weight when the checkpoint lacks it.
    const copy = t5Copies[0];
    if (copy && !source.has('shared.weight') && params.has('shared.weight')) {
      const p = params.get('shared.weight')!;
      if (copy.shape.length !== 2 || copy.shape[0] !== p.shape[0] || copy.shape[1] !== p.shape[1])
        throw new NodetuneError('ERR_CHECKPOINT', `${copy.file}: tensor ${copy.name} has shape ${JSON.stringify(copy.shape)}, config.json implies ${JSON.stringify(p.shape)}`, { file: copy.file, field: copy.name });
      source.set('shared.weight', copy);
      entries.push({ param: 'shared.weight', file: copy.file, dtype: copy.dtype, shape: copy.shape, offset: copy.offset, length: copy.length });
    }
    const newlyInitialized: string[] = [];
    for (const name of params.keys()) {
      if (source.has(name)) continue;
      if (heads.has(name)) {
        newlyInitialized.push(name);
        continue;
      }
      const files = [...new Set(tensors.map((t) => path.basename(t.file)))].join(', ') || 'model.safetensors';
      throw new NodetuneError('ERR_CHECKPOINT', `${dir}: tensor ${name} is missing from ${files}`, { file: dir, field: name });
    }
    await model.load(entries, newlyInitialized, opts.seed ?? null);
    if (bnbItems.length > 0) await model.loadQuantized(bnbItems);
    if (opts.quantizeLmHead && !untiedHead) model.quantizeTiedHead(quantize!);
    const report: LoadReport = { newlyInitialized, unexpected, mismatched };
    if (!opts.quiet && (newlyInitialized.length > 0 || unexpected.length > 0)) {
      const parts: string[] = [];
      if (newlyInitialized.length) parts.push(`newly initialized (train before use): ${newlyInitialized.join(', ')}`);
      if (mismatched.length) parts.push(`re-initialized for numLabels ${opts.numLabels}: ${mismatched.join(', ')}`);
      if (unexpected.length) parts.push(`unused checkpoint weights: ${unexpected.join(', ')}`);
      process.emitWarning(`${pathOrRepoId} as ${resolved.task}: ${parts.join('; ')}`, { code: 'NODETUNE_LOAD_REPORT' });
    }
    return new Model(model, resolved, device, dtype, report, pathOrRepoId, quantize ?? null);
  }
}
