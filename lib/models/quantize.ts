/**
 * A quantized frozen base (QLoRA-style): which linear weights fromPretrained keeps as int8 / NF4, and checkpoints
 * that hold them quantized already (bitsandbytes, as transformers saves a 4-bit / 8-bit model). The formats and the
 * math are native (native/nn/quantized_weight.h); this side picks names and validates the bitsandbytes layout with
 * errors that name the tensor.
 */
import * as fs from 'fs';
import { NodetuneError, check } from '../errors';
import type { NativeModel, NativeParameterInfo } from '../native';
import type { TensorInfo } from './safetensors';

export type QuantizeFormat = 'int8' | 'nf4';
export const QUANTIZE_FORMATS: readonly QuantizeFormat[] = ['int8', 'nf4'];

/** Families whose linear layers run through the shared linear()/conv1d() (native/nn/layers.cc). */
const QUANTIZABLE_FAMILIES = new Set(['llama', 'gpt2', 'bert', 'distilbert']);
/** Embedding tables (looked up, not multiplied): they stay in the compute dtype. */
const EMBEDDING = /(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|shared|relative_attention_bias)\.weight$/;

export function checkQuantizeOption(value: unknown): asserts value is QuantizeFormat | undefined {
  if (value === undefined) return;
  check(typeof value === 'string' && (QUANTIZE_FORMATS as readonly string[]).includes(value),
    `quantize must be 'int8' or 'nf4', got ${JSON.stringify(value)}`, 'quantize');
}

/** The linear weights a quantized base keeps quantized: 2-D weights that are neither embeddings nor a task head
 * (lm_head, classifiers stay in the compute dtype). GPT-2's Conv1D weights are [in, out]: `transposed`. */
export function quantizableWeights(params: NativeParameterInfo[], heads: Set<string>, family: string, where: string): { names: string[]; transposed: string[] } {
  if (!QUANTIZABLE_FAMILIES.has(family))
    throw new NodetuneError('ERR_CONFIG', `${where}: quantize supports llama, mistral, qwen2, gpt2, bert, roberta and distilbert models, not ${family}`, { field: 'quantize' });
  const names = params
    .filter((p) => p.shape.length === 2 && p.name.endsWith('.weight') && !heads.has(p.name) && p.name !== 'lm_head.weight' && !EMBEDDING.test(p.name))
    .map((p) => p.name);
  return { names, transposed: family === 'gpt2' ? names : [] };
}

/** One weight a checkpoint holds in bitsandbytes' layout: its tensors by role, for NativeModel.loadQuantized. */
export interface BnbWeight {
  param: string;
  format: QuantizeFormat;
  /** The [out, in] shape it stands for (int8: the weight's own; 4-bit: quant_state's). */
  shape: number[];
  blocksize?: number;
  nestedBlocksize?: number;
  offset?: number;
  parts: { role: string; name: string; file: string; dtype: string; shape: number[]; offset: number; length: number }[];
}

function bytesOf(t: TensorInfo): Buffer {
  const fd = fs.openSync(t.file, 'r');
  try {
    const buf = Buffer.alloc(t.length);
    fs.readSync(fd, buf, 0, t.length, t.offset);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

function bad(t: TensorInfo, message: string): NodetuneError {
  return new NodetuneError('ERR_CHECKPOINT', `${t.file}: tensor ${t.name}: ${message}`, { file: t.file, field: t.name });
}

function expectDtype(t: TensorInfo, dtypes: string[]): void {
  if (!dtypes.includes(t.dtype)) throw bad(t, `dtype ${t.dtype}, bitsandbytes writes ${dtypes.join(' or ')}`);
}

const part = (role: string, t: TensorInfo) => ({ role, name: t.name, file: t.file, dtype: t.dtype, shape: t.shape, offset: t.offset, length: t.length });

/**
 * The bitsandbytes-quantized weights of a checkpoint, keyed by checkpoint name of the weight, and every tensor name
 * they consume. The layout is what bitsandbytes' Linear4bit / Linear8bitLt put in a state dict (transformers'
 * save_pretrained of a load_in_4bit / load_in_8bit model):
 *   4-bit: <m>.weight (U8, the packed values, [ceil(n/2), 1]), <m>.weight.absmax, <m>.weight.quant_map (16 values),
 *          with double quantization <m>.weight.nested_absmax and <m>.weight.nested_quant_map (256 values), and
 *          <m>.weight.quant_state.bitsandbytes__nf4: U8 bytes of a JSON object { quant_type, blocksize, dtype, shape,
 *          nested_blocksize?, nested_dtype?, nested_offset? }.
 *   8-bit: <m>.weight (I8 [out, in]), <m>.SCB (F32 [out], each row's absmax: w = weight * SCB / 127) and
 *          <m>.weight_format (U8 scalar; 0 = row-major, the only layout saved since bitsandbytes 0.43).
 */
export function bnbWeights(tensors: TensorInfo[]): { weights: Map<string, BnbWeight>; consumed: Set<string> } {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const weights = new Map<string, BnbWeight>();
  const consumed = new Set<string>();
  const use = (name: string) => {
    consumed.add(name);
    return byName.get(name);
  };
  for (const t of tensors) {
    const state = /^(.*\.weight)\.quant_state\.bitsandbytes__([a-z0-9]+)$/.exec(t.name);
    if (state) {
      const w = state[1]!;
      if (state[2] !== 'nf4') throw bad(t, `bitsandbytes 4-bit type ${state[2]} is not supported (nf4 is)`);
      let qs: Record<string, unknown>;
      try {
        qs = JSON.parse(bytesOf(t).toString('utf8')) as Record<string, unknown>;
      } catch (e) {
        throw bad(t, `quant_state is not the JSON bitsandbytes writes (${(e as Error).message})`);
      }
      const weight = use(w);
      const absmax = use(`${w}.absmax`);
      const map = use(`${w}.quant_map`);
      consumed.add(t.name);
      if (!weight) throw bad(t, `its packed weight ${w} is missing`);
      if (!absmax) throw bad(t, `${w}.absmax is missing`);
      if (!map) throw bad(t, `${w}.quant_map is missing`);
      expectDtype(weight, ['U8']);
      expectDtype(map, ['F32']);
      if (qs.quant_type !== 'nf4') throw bad(t, `quant_type ${JSON.stringify(qs.quant_type)}, expected "nf4"`);
      const blocksize = qs.blocksize;
      if (!Number.isSafeInteger(blocksize) || (blocksize as number) <= 0) throw bad(t, `blocksize ${JSON.stringify(blocksize)} is not a positive integer`);
      const shape = qs.shape;
      if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) throw bad(t, `shape ${JSON.stringify(shape)} is not [out, in]`);
      const entry: BnbWeight = { param: w, format: 'nf4', shape: shape as number[], blocksize: blocksize as number, parts: [part('weight', weight), part('absmax', absmax), part('quant_map', map)] };
      const nested = use(`${w}.nested_absmax`);
      const nestedMap = use(`${w}.nested_quant_map`);
      if (nested || nestedMap || qs.nested_offset !== undefined) {
        if (!nested || !nestedMap) throw bad(t, `double quantization needs both ${w}.nested_absmax and ${w}.nested_quant_map`);
        expectDtype(absmax, ['U8']);
        expectDtype(nested, ['F32']);
        expectDtype(nestedMap, ['F32']);
        const offset = Number(qs.nested_offset);
        if (!Number.isFinite(offset)) throw bad(t, `nested_offset ${JSON.stringify(qs.nested_offset)} is not a number`);
        const nb = qs.nested_blocksize ?? 256;
        if (!Number.isSafeInteger(nb) || (nb as number) <= 0) throw bad(t, `nested_blocksize ${JSON.stringify(nb)} is not a positive integer`);
        entry.offset = offset;
        entry.nestedBlocksize = nb as number;
        entry.parts.push(part('nested_absmax', nested), part('nested_quant_map', nestedMap));
      } else {
        expectDtype(absmax, ['F32']);
      }
      weights.set(w, entry);
      continue;
    }
    const scb = /^(.*)\.SCB$/.exec(t.name);
    if (scb) {
      const w = `${scb[1]}.weight`;
      const weight = use(w);
      consumed.add(t.name);
      if (!weight) throw bad(t, `its int8 weight ${w} is missing`);
      expectDtype(weight, ['I8']);
      expectDtype(t, ['F32']);
      const format = use(`${scb[1]}.weight_format`);
      if (format) {
        expectDtype(format, ['U8']);
        const value = format.length > 0 ? bytesOf(format)[0] : undefined;
        if (value !== 0) throw bad(format, `weight_format ${value} is a GPU tile layout (col32/turing/ampere); only row-major (0) loads`);
      }
      weights.set(w, { param: w, format: 'int8', shape: weight.shape, parts: [part('weight', weight), part('SCB', t)] });
    }
  }
  return { weights, consumed };
}

/** Marks `names` quantized on the native model (before load / initialisation fills them). */
export function markQuantized(model: NativeModel, format: QuantizeFormat, picked: { names: string[]; transposed: string[] }): void {
  if (picked.names.length > 0) model.quantize(picked.names, format, picked.transposed);
}
