/**
 * config.json → the validated plain config the native model is built from. Every field that changes
 * the math is read here; a wrong type or an unsupported value is ERR_CONFIG naming the field.
 */
import { NodetuneError } from '../errors';
import type { NativeModelConfig } from '../native';

export type Task = 'causal-lm' | 'sequence-classification' | 'token-classification' | 'question-answering' | 'masked-lm' | 'seq2seq-lm';
export type NativeTask = Task | 'base';
export type Family = 'gpt2' | 'llama' | 'bert' | 'distilbert' | 't5';

export const MODEL_TYPES: Record<string, { family: Family; prefix: string; archPrefix: string }> = {
  gpt2: { family: 'gpt2', prefix: 'transformer', archPrefix: 'GPT2' },
  llama: { family: 'llama', prefix: 'model', archPrefix: 'Llama' },
  mistral: { family: 'llama', prefix: 'model', archPrefix: 'Mistral' },
  qwen2: { family: 'llama', prefix: 'model', archPrefix: 'Qwen2' },
  bert: { family: 'bert', prefix: 'bert', archPrefix: 'Bert' },
  roberta: { family: 'bert', prefix: 'roberta', archPrefix: 'Roberta' },
  distilbert: { family: 'distilbert', prefix: 'distilbert', archPrefix: 'DistilBert' },
  // Encoder-decoders: weight names carry no base prefix (shared.weight, encoder.block.N..., decoder.block.N...).
  t5: { family: 't5', prefix: '', archPrefix: 'T5' },
  mt5: { family: 't5', prefix: '', archPrefix: 'MT5' },
  umt5: { family: 't5', prefix: '', archPrefix: 'UMT5' },
};

export type RawConfig = Record<string, unknown>;

/** Sane bounds that fail at once, before anything is built: no model has more layers, or wider dimensions. */
export const MAX_LAYERS = 10_000;
const MAX_DIM = 2 ** 24;
const MAX_POSITIONS = 2 ** 27;

function err(file: string, field: string, message: string): NodetuneError {
  return new NodetuneError('ERR_CONFIG', `${file}: ${field} ${message}`, { file, field });
}

class Reader {
  constructor(readonly raw: RawConfig, readonly file: string) {}
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }
  int(key: string, fallback?: number, min = 1, max = MAX_DIM): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw err(this.file, key, 'is required (a positive integer)');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      throw err(this.file, key, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    if (v > max) throw err(this.file, key, `must be at most ${max}, got ${v}`);
    return v;
  }
  layers(key: string, fallback?: number): number {
    return this.int(key, fallback, 1, MAX_LAYERS);
  }
  positions(key: string, fallback: number): number {
    return this.int(key, fallback, 1, MAX_POSITIONS);
  }
  /** A number above 0 (an epsilon, a rotary base, a scaling factor). */
  pos(key: string, fallback: number): number {
    const v = this.num(key, fallback);
    if (v <= 0) throw err(this.file, key, `must be above 0, got ${v}`);
    return v;
  }
  num(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw err(this.file, key, 'is required (a number)');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw err(this.file, key, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }
  prob(key: string, fallback: number): number {
    const v = this.num(key, fallback);
    if (v < 0 || v >= 1) throw err(this.file, key, `must be in [0, 1), got ${v}`);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw err(this.file, key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, fallback: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw err(this.file, key, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  optInt(key: string): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return -1;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw err(this.file, key, `must be a non-negative integer or null, got ${JSON.stringify(v)}`);
    return v;
  }
}

const ACTIVATIONS: Record<string, string> = {
  gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh', relu: 'relu',
  silu: 'silu', swish: 'silu', quick_gelu: 'quick_gelu',
};

function activation(r: Reader, key: string, fallback: string): string {
  const name = r.str(key, fallback);
  const act = ACTIVATIONS[name];
  if (!act) throw err(r.file, key, `'${name}' is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  return act;
}

/** feed_forward_proj: "<act>" (wi, wo) or "gated-<act>" (wi_0, wi_1, wo); "gated-gelu" means tanh GELU (gelu_new). */
function feedForward(r: Reader, fallback: string): { gated: boolean; act: string } {
  const proj = r.str('feed_forward_proj', fallback);
  const parts = proj.split('-');
  const gated = parts.length === 2 && parts[0] === 'gated';
  const name = gated ? parts[1]! : parts[0]!;
  const act = proj === 'gated-gelu' ? 'gelu_tanh' : ACTIVATIONS[name];
  if ((parts.length > 1 && !gated) || parts.length > 2 || !act)
    throw err(r.file, 'feed_forward_proj', `'${proj}' is not supported (use "<act>" or "gated-<act>" with act one of ${Object.keys(ACTIVATIONS).join(', ')})`);
  return { gated, act };
}

function t5Config(r: Reader, base: { modelType: string; task: NativeTask; prefix: string; numLabels: number; initRange: number }, modelType: string): NativeModelConfig {
  const { gated, act } = feedForward(r, modelType === 'umt5' ? 'gated-gelu' : 'relu');
  const layers = r.layers('num_layers', 6);
  const pad = r.int('pad_token_id', 0, 0);
  const dropout = r.prob('dropout_rate', 0.1);
  const buckets = r.int('relative_attention_num_buckets', 32);
  if (buckets < 4) throw err(r.file, 'relative_attention_num_buckets', `must be >= 4, got ${buckets}`);
  return {
    ...base, family: 't5', vocabSize: r.int('vocab_size', modelType === 't5' ? 32128 : 250112), hiddenSize: r.int('d_model', 512),
    numLayers: layers, numDecoderLayers: r.layers('num_decoder_layers', layers), numHeads: r.int('num_heads', 8), headDim: r.int('d_kv', 64),
    intermediateSize: r.int('d_ff', 2048),
    // Relative position buckets: no limit on the length.
    maxPositions: 2 ** 31 - 1,
    act, gatedFfn: gated, normEps: r.pos('layer_norm_epsilon', 1e-6),
    relativeAttentionNumBuckets: buckets, relativeAttentionMaxDistance: r.positions('relative_attention_max_distance', 128),
    tieWordEmbeddings: r.bool('tie_word_embeddings', modelType !== 'mt5'), initFactor: r.num('initializer_factor', 1.0),
    embdDropout: dropout, attnDropout: dropout, residDropout: dropout, classifierDropout: 0,
    padTokenId: pad, decoderStartTokenId: r.int('decoder_start_token_id', pad, 0), perLayerRelativeBias: modelType === 'umt5',
  };
}

/** The task config.json's `architectures` implies ('base' for a bare XModel or an unsupported head). */
export function taskFromArchitectures(raw: RawConfig, family: Family): NativeTask {
  const archs = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]).filter((a): a is string => typeof a === 'string') : [];
  const arch = archs[0];
  if (family === 't5') return arch === undefined || /ForConditionalGeneration$/.test(arch) ? 'seq2seq-lm' : 'base';
  if (arch === undefined) return family === 'gpt2' || family === 'llama' ? 'causal-lm' : 'base';
  if (/ForCausalLM$|LMHeadModel$/.test(arch)) return 'causal-lm';
  if (/ForSequenceClassification$/.test(arch)) return 'sequence-classification';
  if (/ForTokenClassification$/.test(arch)) return 'token-classification';
  if (/ForQuestionAnswering$/.test(arch)) return 'question-answering';
  if (/ForMaskedLM$/.test(arch)) return 'masked-lm';
  return 'base';
}

export function architectureName(modelType: string, task: NativeTask): string {
  const p = MODEL_TYPES[modelType]!.archPrefix;
  if (MODEL_TYPES[modelType]!.family === 't5' && task === 'base') return `${p}EncoderModel`;
  switch (task) {
    case 'base': return `${p}Model`;
    case 'causal-lm': return modelType === 'gpt2' ? 'GPT2LMHeadModel' : `${p}ForCausalLM`;
    case 'sequence-classification': return `${p}ForSequenceClassification`;
    case 'token-classification': return `${p}ForTokenClassification`;
    case 'question-answering': return `${p}ForQuestionAnswering`;
    case 'masked-lm': return `${p}ForMaskedLM`;
    case 'seq2seq-lm': return `${p}ForConditionalGeneration`;
  }
}

export interface ResolvedConfig {
  native: NativeModelConfig;
  family: Family;
  modelType: string;
  task: NativeTask;
  numLabels: number;
  /** The config.json to save back (labels and architectures updated). */
  raw: RawConfig;
}

/** Validates a parsed config.json for `task` (undefined: from `architectures`). */
export function resolveConfig(raw: RawConfig, file: string, opts: { task?: NativeTask; numLabels?: number } = {}): ResolvedConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw err(file, 'config', 'must be a JSON object');
  const r = new Reader(raw, file);
  const modelType = r.str('model_type', '');
  const known = MODEL_TYPES[modelType];
  if (!known) throw err(file, 'model_type', `'${modelType}' is not supported (supported: ${Object.keys(MODEL_TYPES).join(', ')})`);
  const family = known.family;
  const task = opts.task ?? taskFromArchitectures(raw, family);
  const decoder = family === 'gpt2' || family === 'llama';
  if (family === 't5' && task !== 'seq2seq-lm' && task !== 'base') throw err(file, 'model_type', `'${modelType}' is an encoder-decoder; its tasks are seq2seq-lm and base`);
  if (task === 'seq2seq-lm' && family !== 't5') throw err(file, 'model_type', `'${modelType}' is not an encoder-decoder; task seq2seq-lm needs t5 or mt5`);
  if (task === 'causal-lm' && !decoder) throw err(file, 'model_type', `'${modelType}' is an encoder; task causal-lm needs a decoder`);
  if (task === 'question-answering' && decoder) throw err(file, 'model_type', `'${modelType}' is a decoder; task question-answering is for encoders`);
  if (task === 'masked-lm' && decoder) throw err(file, 'model_type', `'${modelType}' is a decoder; task masked-lm is for encoders (bert, roberta, distilbert)`);
  if (task === 'masked-lm' && r.raw.tie_word_embeddings === false) throw err(file, 'tie_word_embeddings', 'false is not supported with task masked-lm (the decoder is tied to the word embeddings)');

  const out = { ...raw };
  let numLabels = 2;
  if (task === 'sequence-classification' || task === 'token-classification') {
    const id2label = raw.id2label as Record<string, string> | undefined;
    const fromConfig = id2label && typeof id2label === 'object' ? Object.keys(id2label).length : r.has('num_labels') ? r.int('num_labels') : undefined;
    numLabels = opts.numLabels ?? fromConfig ?? 2;
    if (!id2label || Object.keys(id2label).length !== numLabels) {
      const labels: Record<string, string> = {};
      const label2id: Record<string, number> = {};
      for (let i = 0; i < numLabels; i++) labels[String(i)] = `LABEL_${i}`, label2id[`LABEL_${i}`] = i;
      out.id2label = labels;
      out.label2id = label2id;
    }
    out.num_labels = numLabels;
  }
  out.architectures = [architectureName(modelType, task)];

  const base = { modelType, task, prefix: known.prefix, numLabels, initRange: r.num('initializer_range', 0.02) };
  let native: NativeModelConfig;
  if (family === 'gpt2') {
    const hidden = r.int('n_embd', 768);
    if (!r.bool('scale_attn_weights', true)) throw err(file, 'scale_attn_weights', 'false is not supported');
    const resid = r.prob('resid_pdrop', 0.1);
    native = {
      ...base, family, vocabSize: r.int('vocab_size', 50257), hiddenSize: hidden, numLayers: r.layers('n_layer', 12),
      numHeads: r.int('n_head', 12), maxPositions: r.positions('n_positions', 1024),
      intermediateSize: r.has('n_inner') ? r.int('n_inner') : 4 * hidden, act: activation(r, 'activation_function', 'gelu_new'),
      normEps: r.pos('layer_norm_epsilon', 1e-5), tieWordEmbeddings: r.bool('tie_word_embeddings', true),
      scaleAttnByInverseLayerIdx: r.bool('scale_attn_by_inverse_layer_idx', false),
      embdDropout: r.prob('embd_pdrop', 0.1), attnDropout: r.prob('attn_pdrop', 0.1), residDropout: resid,
      classifierDropout: task === 'token-classification' ? r.prob('classifier_dropout', r.prob('hidden_dropout', 0.1)) : 0,
      padTokenId: r.optInt('pad_token_id'),
    };
    if (hidden % native.numHeads !== 0) throw err(file, 'n_head', `must divide n_embd (${hidden})`);
  } else if (family === 'llama') {
    const hidden = r.int('hidden_size');
    const heads = r.int('num_attention_heads');
    const kv = r.int('num_key_value_heads', heads);
    if (heads % kv !== 0) throw err(file, 'num_key_value_heads', `(${kv}) must divide num_attention_heads (${heads})`);
    const headDim = r.int('head_dim', Math.floor(hidden / heads));
    if (!r.has('head_dim') && hidden % heads !== 0) throw err(file, 'num_attention_heads', `must divide hidden_size (${hidden})`);
    if (headDim % 2 !== 0) throw err(file, 'head_dim', 'must be even for rotary embeddings');
    let ropeType = 'default';
    let rope = { ropeFactor: 1, ropeLowFreqFactor: 1, ropeHighFreqFactor: 4, ropeOriginalMaxPositions: 8192 };
    const scaling = raw.rope_scaling;
    if (scaling !== undefined && scaling !== null) {
      if (typeof scaling !== 'object') throw err(file, 'rope_scaling', 'must be an object or null');
      const s = new Reader(scaling as RawConfig, file);
      ropeType = s.str('rope_type', s.str('type', 'default'));
      if (!['default', 'linear', 'llama3'].includes(ropeType))
        throw err(file, 'rope_scaling.rope_type', `'${ropeType}' is not supported (supported: default, linear, llama3)`);
      rope = {
        ropeFactor: s.pos('factor', 1), ropeLowFreqFactor: s.pos('low_freq_factor', 1), ropeHighFreqFactor: s.pos('high_freq_factor', 4),
        ropeOriginalMaxPositions: s.positions('original_max_position_embeddings', 8192),
      };
      if (ropeType === 'llama3' && rope.ropeHighFreqFactor === rope.ropeLowFreqFactor)
        throw err(file, 'rope_scaling.high_freq_factor', 'must differ from low_freq_factor');
    }
    const qwen = modelType === 'qwen2';
    const attnBias = r.bool('attention_bias', false);
    let slidingWindow = 0;
    if (modelType === 'mistral' && r.has('sliding_window')) slidingWindow = r.positions('sliding_window', 4096);
    if (qwen && r.bool('use_sliding_window', false)) throw err(file, 'use_sliding_window', 'true is not supported for qwen2');
    native = {
      ...base, family, vocabSize: r.int('vocab_size', 32000), hiddenSize: hidden, numLayers: r.layers('num_hidden_layers'),
      numHeads: heads, numKvHeads: kv, headDim, intermediateSize: r.int('intermediate_size'),
      maxPositions: r.positions('max_position_embeddings', 2048), act: activation(r, 'hidden_act', 'silu'),
      normEps: r.pos('rms_norm_eps', 1e-6), ropeTheta: r.pos('rope_theta', 10000), ropeType, ...rope, slidingWindow,
      tieWordEmbeddings: r.bool('tie_word_embeddings', false), qkvBias: qwen || attnBias, oBias: !qwen && attnBias,
      mlpBias: r.bool('mlp_bias', false), attnDropout: r.prob('attention_dropout', 0),
      classifierDropout: 0, padTokenId: r.optInt('pad_token_id'),
    };
  } else if (family === 'bert') {
    const roberta = modelType === 'roberta';
    const hidden = r.int('hidden_size', 768);
    const heads = r.int('num_attention_heads', 12);
    if (hidden % heads !== 0) throw err(file, 'num_attention_heads', `must divide hidden_size (${hidden})`);
    const pet = r.str('position_embedding_type', 'absolute');
    if (pet !== 'absolute') throw err(file, 'position_embedding_type', `'${pet}' is not supported (only absolute)`);
    if (r.bool('is_decoder', false)) throw err(file, 'is_decoder', 'true (a causal BERT/RoBERTa decoder) is not supported');
    if (r.bool('add_cross_attention', false)) throw err(file, 'add_cross_attention', 'true is not supported');
    const hiddenDrop = r.prob('hidden_dropout_prob', 0.1);
    native = {
      ...base, family, vocabSize: r.int('vocab_size', roberta ? 50265 : 30522), hiddenSize: hidden,
      numLayers: r.layers('num_hidden_layers', 12), numHeads: heads, intermediateSize: r.int('intermediate_size', 3072),
      maxPositions: r.positions('max_position_embeddings', 512), typeVocabSize: r.int('type_vocab_size', 2, 0),
      act: activation(r, 'hidden_act', 'gelu'), normEps: r.pos('layer_norm_eps', 1e-12),
      attnDropout: r.prob('attention_probs_dropout_prob', 0.1), residDropout: hiddenDrop,
      classifierDropout: r.has('classifier_dropout') ? r.prob('classifier_dropout', 0) : hiddenDrop,
      // BertConfig's pad_token_id defaults to 0 (the word embeddings' padding_idx); null: none.
      padTokenId: roberta ? r.int('pad_token_id', 1, 0) : raw.pad_token_id === undefined ? 0 : r.optInt('pad_token_id'), robertaPositions: roberta,
    };
  } else if (family === 't5') {
    native = t5Config(r, base, modelType);
  } else {
    const hidden = r.int('dim', 768);
    const heads = r.int('n_heads', 12);
    if (hidden % heads !== 0) throw err(file, 'n_heads', `must divide dim (${hidden})`);
    native = {
      ...base, family, vocabSize: r.int('vocab_size', 30522), hiddenSize: hidden, numLayers: r.layers('n_layers', 6),
      numHeads: heads, intermediateSize: r.int('hidden_dim', 3072), maxPositions: r.positions('max_position_embeddings', 512),
      act: activation(r, 'activation', 'gelu'), normEps: 1e-12, attnDropout: r.prob('attention_dropout', 0.1),
      residDropout: r.prob('dropout', 0.1),
      classifierDropout: task === 'question-answering' ? r.prob('qa_dropout', 0.1) : task === 'sequence-classification' ? r.prob('seq_classif_dropout', 0.2) : r.prob('dropout', 0.1),
      padTokenId: raw.pad_token_id === undefined ? 0 : r.optInt('pad_token_id'),  // DistilBertConfig's default
    };
  }
  // nn.Embedding(padding_idx = pad_token_id) needs the id inside the vocabulary (GPT-2's wte has no padding_idx).
  if (family !== 'gpt2' && native.padTokenId !== undefined && native.padTokenId >= native.vocabSize)
    throw err(file, 'pad_token_id', `(${native.padTokenId}) must be below vocab_size (${native.vocabSize})`);
  if (task === 'sequence-classification' && decoder) native.padTokenId = r.optInt('pad_token_id');
  return { native, family, modelType, task, numLabels, raw: out };
}
