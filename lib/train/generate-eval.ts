/**
 * Evaluation by generation (TrainingArgs.predictWithGenerate, as transformers' Seq2SeqTrainer): the model generates
 * for each evaluation row, the tokenizer decodes predictions and references (skipping special tokens), and the text
 * metrics of text-metrics.ts compare them. Seq2seq models generate from the source; decoder-only models from the
 * prompt, i.e. the row's tokens before its first label (instruction or chat features: labels are -100 over the prompt).
 * Also the seq2seq evaluation loss: cross-entropy of the decoder's logits against the targets (teacher forcing).
 */
import { NodetuneError } from '../errors';
import type { Batch } from '../data/batch';
import { IGNORE_INDEX } from '../data/batch';
import type { ForwardOutput, IdsInput, ModelInputs } from '../models';
import { argmax, crossEntropy } from './evaluate';
import { generationMetrics } from './text-metrics';

export interface GenerationOptions {
  maxNewTokens: number;
  numBeams?: number;
  attentionMask?: IdsInput;
  eosTokenId?: number;
}

export interface GeneratingModel {
  readonly task: string;
  readonly config: Record<string, unknown>;
  generate?(inputIds: IdsInput, options: GenerationOptions): Promise<number[][]>;
}

export interface DecodingTokenizer {
  /** Ids at or above it are rows of the model's embedding the tokenizer has no token for (T5: 32128 rows, 32100 tokens). */
  readonly vocabSize?: number;
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string>;
}

function row(a: Int32Array, r: number, len: number): Int32Array {
  return a.subarray(r * len, (r + 1) * len);
}

/**
 * Tokens up to and without the first EOS, leaving out ids the tokenizer has no token for (an embedding larger than the
 * vocabulary, as T5's, lets a model generate them; transformers' fast tokenizers skip them in decode() likewise).
 */
function untilEos(ids: ArrayLike<number>, eos: number | undefined, vocabSize: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === eos) break;
    if (ids[i]! < vocabSize) out.push(ids[i]!);
  }
  return out;
}

/** Decoder-only rows: prompts (tokens before the first label, left-padded) and reference ids (the labelled tokens). */
function prompts(batch: Batch, padTokenId: number, where: string): { ids: IdsInput; mask: IdsInput; width: number; refs: number[][] } {
  const [n, t] = batch.shape;
  if (!batch.labels || batch.labels.length !== n * t)
    throw new NodetuneError('ERR_DATA', `${where}: generation with a decoder-only model needs token labels (-100 over the prompt, the reference after it)`, { field: 'labels' });
  const ps: number[][] = [], refs: number[][] = [];
  for (let r = 0; r < n; r++) {
    const ids = row(batch.inputIds, r, t), mask = row(batch.attentionMask, r, t), labels = row(batch.labels, r, t);
    const p: number[] = [], ref: number[] = [];
    for (let i = 0; i < t; i++) {
      if (mask[i] === 0) continue;
      if (labels[i] !== IGNORE_INDEX) ref.push(labels[i]!);
      else if (ref.length === 0) p.push(ids[i]!);
    }
    const src = batch.sources?.[r];
    if (p.length === 0 || ref.length === 0) {
      throw new NodetuneError('ERR_DATA', `${where}, row ${r}${src ? ` (${src.file}:${src.line})` : ''}: ${p.length === 0 ? 'no prompt (the first token is already labelled)' : 'no labelled tokens'}; ` +
        'generation metrics need prompt → completion rows (instruction or chat features, labels -100 over the prompt)', { field: 'labels', ...(src ? { file: src.file, line: src.line } : {}) });
    }
    ps.push(p), refs.push(ref);
  }
  const width = Math.max(...ps.map((p) => p.length));
  const data = new Int32Array(n * width).fill(padTokenId), mask = new Int32Array(n * width);
  ps.forEach((p, r) => { data.set(p, r * width + width - p.length); mask.fill(1, r * width + width - p.length, (r + 1) * width); });
  return { ids: { data, shape: [n, width] }, mask: { data: mask, shape: [n, width] }, width, refs };
}

/** Generates for every row of the batches; returns decoded predictions and references in order. */
export async function generateTexts(model: GeneratingModel, tokenizer: DecodingTokenizer, batches: AsyncIterable<Batch>,
  opts: { maxNewTokens: number; numBeams: number; padTokenId: number; where: string }): Promise<{ predictions: string[]; references: string[] }> {
  if (typeof model.generate !== 'function') throw new NodetuneError('ERR_STATE', `${opts.where}: predictWithGenerate needs a model with generate()`, { field: 'predictWithGenerate' });
  const eos = typeof model.config.eos_token_id === 'number' ? model.config.eos_token_id : undefined;
  const seq2seq = model.task === 'seq2seq-lm';
  const predictions: string[] = [], references: string[] = [];
  const vocabSize = typeof tokenizer.vocabSize === 'number' ? tokenizer.vocabSize : Infinity;
  const gen = { maxNewTokens: opts.maxNewTokens, ...(opts.numBeams > 1 ? { numBeams: opts.numBeams } : {}), ...(eos !== undefined ? { eosTokenId: eos } : {}) };
  let k = 0;
  for await (const batch of batches) {
    const where = `${opts.where} batch ${k++}`;
    let out: number[][], refs: number[][];
    if (seq2seq) {
      if (!batch.labels || !batch.labelShape) throw new NodetuneError('ERR_DATA', `${where}: a seq2seq-lm model needs seq2seq batches (targets with their own labelShape)`, { field: 'labels' });
      const [n, tt] = batch.labelShape;
      refs = Array.from({ length: n }, (_, r) => Array.from(row(batch.labels!, r, tt)).filter((y) => y !== IGNORE_INDEX));
      out = await model.generate({ data: batch.inputIds, shape: batch.shape }, { ...gen, attentionMask: { data: batch.attentionMask, shape: batch.shape } });
    } else {
      const p = prompts(batch, opts.padTokenId, where);
      refs = p.refs;
      out = (await model.generate(p.ids, { ...gen, attentionMask: p.mask })).map((r) => r.slice(p.width));
    }
    if (out.length !== refs.length) throw new NodetuneError('ERR_STATE', `${where}: generate() returned ${out.length} rows for ${refs.length}`, {});
    for (let r = 0; r < out.length; r++) {
      predictions.push(await tokenizer.decode(untilEos(out[r]!, eos, vocabSize), { skipSpecialTokens: true }));
      references.push(await tokenizer.decode(refs[r]!, { skipSpecialTokens: true }));
    }
  }
  return { predictions, references };
}

/** `exact_match`, `f1`, `rougeL`, `bleu` of the generated texts. */
export async function generationEval(model: GeneratingModel, tokenizer: DecodingTokenizer, batches: AsyncIterable<Batch>,
  opts: { maxNewTokens: number; numBeams: number; padTokenId: number; where: string }): Promise<Record<string, number>> {
  const { predictions, references } = await generateTexts(model, tokenizer, batches, opts);
  if (predictions.length === 0) throw new NodetuneError('ERR_DATA', `${opts.where}: no rows to generate for`, {});
  return generationMetrics(predictions, references);
}

/**
 * Seq2seq evaluation loss: the decoder reads the targets shifted right (decoder_start_token_id first, -100 as pad)
 * and the logits [batch, targetLen, vocab] are scored against the targets. Returns sums for a mean over tokens.
 */
export async function seq2seqLoss(model: GeneratingModel & { forward(inputs: ModelInputs): Promise<ForwardOutput> }, batch: Batch, where: string):
  Promise<{ lossSum: number; count: number; correct: number }> {
  if (!batch.labels || !batch.labelShape) throw new NodetuneError('ERR_DATA', `${where}: a seq2seq-lm model needs seq2seq batches (targets with their own labelShape)`, { field: 'labels' });
  const [n, tt] = batch.labelShape;
  const start = typeof model.config.decoder_start_token_id === 'number' ? model.config.decoder_start_token_id : 0;
  const pad = typeof model.config.pad_token_id === 'number' ? model.config.pad_token_id : 0;
  const dec = new Int32Array(n * tt);
  for (let r = 0; r < n; r++) {
    dec[r * tt] = start;
    for (let i = 1; i < tt; i++) { const y = batch.labels[r * tt + i - 1]!; dec[r * tt + i] = y === IGNORE_INDEX ? pad : y; }
  }
  const inputs = { inputIds: { data: batch.inputIds, shape: batch.shape }, attentionMask: { data: batch.attentionMask, shape: batch.shape },
    decoderInputIds: { data: dec, shape: [n, tt] } } as ModelInputs;
  const out = await model.forward(inputs);
  const v = out.shape[out.shape.length - 1]!;
  if (out.shape.length !== 3 || out.shape[0] !== n || out.shape[1] !== tt)
    throw new NodetuneError('ERR_SHAPE', `${where}: expected decoder logits [${n}, ${tt}, vocab], got [${out.shape.join(', ')}]`, {});
  let lossSum = 0, count = 0, correct = 0;
  for (let k = 0; k < n * tt; k++) {
    const y = batch.labels[k]!;
    if (y === IGNORE_INDEX) continue;
    lossSum += crossEntropy(out.logits, k * v, v, y);
    count += 1;
    if (argmax(out.logits, k * v, v) === y) correct += 1;
  }
  return { lossSum, count, correct };
}
