/**
 * Per-row sampling options of Model.generate (OpenAI's presence/frequency penalties, logit bias, logprobs):
 * validated here with precise messages and packed into the typed arrays the native generate takes; and the
 * native log-probabilities unpacked per row.
 */
import { NodetuneError, check } from '../errors';

/** Token id (a number or its decimal string, as JSON keys are) → bias added to that token's logit. */
export type LogitBias = Record<string, number>;

export interface RowSamplingOptions {
  /** Subtracted once from the logit of every token generated so far (OpenAI: -2..2; 0 or absent: off). One value
   * for all rows or one per row. */
  presencePenalty?: number | number[];
  /** Times the count of each token generated so far, subtracted from its logit (one value, or one per row). */
  frequencyPenalty?: number | number[];
  /** Added to the logits before sampling (-100 bans a token); one map for all rows or one per row (null: none). */
  logitBias?: LogitBias | (LogitBias | null)[];
  /** Report the chosen tokens' log-probabilities and this many best alternatives per step (0: the chosen ones only). */
  logprobs?: number;
  /** Trailing prompt tokens per row that the penalties count as generated (continuing an earlier generation). */
  penaltyContext?: number | number[];
}

export interface TokenLogprob {
  token: number;
  /** log-softmax of the processed logits (after penalties and logit bias, before temperature, top-k and top-p). */
  logprob: number;
  /** The `logprobs` most probable tokens at this step, best first. */
  top: { token: number; logprob: number }[];
}

export interface NativeRowSampling {
  presencePenalty?: Float32Array;
  frequencyPenalty?: Float32Array;
  logitBiasIndex?: Int32Array;
  logitBiasValue?: Float32Array;
  logprobs?: number;
  penaltyContext?: Int32Array;
}

/** One value per row (a single number applies to all rows); undefined when every row's value is 0. */
function perRow(v: number | number[] | undefined, name: string, batch: number, what: string): Float32Array | undefined {
  if (v === undefined) return undefined;
  const list = typeof v === 'number' ? new Array<number>(batch).fill(v) : v;
  check(Array.isArray(list) && list.length === batch, `${what}: ${name} must be a number or an array of ${batch} numbers (one per row)`, name);
  list.forEach((x, i) => check(typeof x === 'number' && Number.isFinite(x), `${what}: ${name}${typeof v === 'number' ? '' : `[${i}]`} must be a finite number, got ${JSON.stringify(x)}`, name));
  return list.some((x) => x !== 0) ? Float32Array.from(list) : undefined;
}

function biasEntries(bias: LogitBias, where: string, vocabSize: number, what: string): [number, number][] {
  check(bias !== null && typeof bias === 'object' && !Array.isArray(bias), `${what}: ${where} must be an object mapping token ids to biases`, 'logitBias');
  return Object.entries(bias).map(([key, value]) => {
    const token = Number(key);
    check(/^\d+$/.test(key) && Number.isSafeInteger(token) && token < vocabSize, `${what}: ${where} key '${key}' is not a token id (vocabulary size ${vocabSize})`, 'logitBias');
    check(typeof value === 'number' && Number.isFinite(value), `${what}: ${where}['${key}'] must be a finite number, got ${JSON.stringify(value)}`, 'logitBias');
    return [token, value];
  });
}

/** Validates the per-row options of a generate call over `batch` rows and packs them for the native call. */
export function rowSampling(o: RowSamplingOptions, batch: number, vocabSize: number, what = 'generate()'): NativeRowSampling {
  const out: NativeRowSampling = {};
  const presence = perRow(o.presencePenalty, 'presencePenalty', batch, what);
  const frequency = perRow(o.frequencyPenalty, 'frequencyPenalty', batch, what);
  if (presence) out.presencePenalty = presence;
  if (frequency) out.frequencyPenalty = frequency;
  const context = perRow(o.penaltyContext, 'penaltyContext', batch, what);
  if (context && (presence || frequency)) {
    context.forEach((x) => check(Number.isSafeInteger(x) && x >= 0, `${what}: penaltyContext must hold non-negative integers`, 'penaltyContext'));
    out.penaltyContext = Int32Array.from(context);
  }
  if (o.logitBias !== undefined) {
    const maps = Array.isArray(o.logitBias) ? o.logitBias : new Array<LogitBias>(batch).fill(o.logitBias);
    check(maps.length === batch, `${what}: logitBias must be one map or an array of ${batch} (one per row)`, 'logitBias');
    const index: number[] = [];
    const value: number[] = [];
    maps.forEach((m, row) => {
      if (m === null) return;
      for (const [token, bias] of biasEntries(m, Array.isArray(o.logitBias) ? `logitBias[${row}]` : 'logitBias', vocabSize, what)) {
        index.push(row, token);
        value.push(bias);
      }
    });
    if (value.length > 0) {
      out.logitBiasIndex = Int32Array.from(index);
      out.logitBiasValue = Float32Array.from(value);
    }
  }
  if (o.logprobs !== undefined) {
    check(Number.isSafeInteger(o.logprobs) && o.logprobs >= 0 && o.logprobs <= vocabSize, `${what}: logprobs must be an integer in [0, ${vocabSize}], got ${JSON.stringify(o.logprobs)}`, 'logprobs');
    out.logprobs = o.logprobs;
  }
  return out;
}

/** Whether any per-row option is in effect (beam search and seq2seq models take none). */
export function hasRowSampling(n: NativeRowSampling): boolean {
  return Object.keys(n).length > 0;
}

/** The native [B, steps] / [B, steps, k] log-probabilities per row; a row's steps end at its first `eos` (kept). */
export function rowLogprobs(out: { logprobs: Float32Array; topIds: Int32Array; topLogprobs: Float32Array }, batch: number, k: number,
  generated: number[][], eos: number): TokenLogprob[][] {
  const steps = batch > 0 ? out.logprobs.length / batch : 0;
  return generated.map((tokens, b) => {
    const end = tokens.indexOf(eos);
    const n = Math.min(steps, end >= 0 ? end + 1 : tokens.length);
    return Array.from({ length: n }, (_, s) => {
      const at = (b * steps + s) * k;
      const top = Array.from({ length: k }, (_, j) => ({ token: out.topIds[at + j]!, logprob: out.topLogprobs[at + j]! }));
      return { token: tokens[s]!, logprob: out.logprobs[b * steps + s]!, top };
    });
  });
}

/** The scalar decoding options shared by generate() and sessions, validated, with their defaults. */
export interface ScalarSampling { temperature: number; topK: number; topP: number; repetitionPenalty: number; seed: number }

export function scalarSampling(o: { temperature?: number; topK?: number; topP?: number; repetitionPenalty?: number; seed?: number }, what: string): ScalarSampling {
  const temperature = o.temperature ?? 0;
  check(typeof temperature === 'number' && temperature >= 0, `${what}: temperature must be >= 0, got ${o.temperature}`, 'temperature');
  const topK = o.topK ?? 0;
  check(Number.isSafeInteger(topK) && topK >= 0, `${what}: topK must be a non-negative integer, got ${o.topK}`, 'topK');
  const topP = o.topP ?? 1;
  check(typeof topP === 'number' && topP > 0 && topP <= 1, `${what}: topP must be in (0, 1], got ${o.topP}`, 'topP');
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  check(typeof repetitionPenalty === 'number' && repetitionPenalty > 0, `${what}: repetitionPenalty must be > 0, got ${o.repetitionPenalty}`, 'repetitionPenalty');
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  check(Number.isSafeInteger(seed) && seed >= 0, `${what}: seed must be a non-negative integer, got ${o.seed}`, 'seed');
  return { temperature, topK, topP, repetitionPenalty, seed };
}

export function noRowSamplingFor(what: string, n: NativeRowSampling): void {
  if (hasRowSampling(n))
    throw new NodetuneError('ERR_ARGUMENT', `generate(): ${what} takes no presencePenalty, frequencyPenalty, logitBias or logprobs`, { field: Object.keys(n)[0]!.replace(/(Index|Value)$/, '') });
}
