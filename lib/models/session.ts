/**
 * A generation session (native/nn/generation_session.h) seen from TypeScript: continuous batching over one model.
 * add() queues a prompt with its own sampling options (it joins the running batch at the next step: prefilled,
 * then one token per step), cancel() frees a row at the next step, step() decodes one token for every running row
 * and reports them; finished rows (a stop token or maxNewTokens) leave at once. Steps go through the model's call
 * queue, so they interleave with generate() and the other calls.
 */
import { NodetuneError, check } from '../errors';
import type { NativeModel, NativeStepResult } from '../native';
import { checkOptionKeys } from '../util/options';
import { SESSION_ROW_KEYS } from '../util/option-keys';
import type { LogitBias, TokenLogprob } from './sampling';
import { rowSampling, scalarSampling } from './sampling';

export interface SessionOptions {
  /** The adapter every step runs with (undefined: the active one; null: the base model alone). */
  adapter?: string | null;
}

export interface SessionRowOptions {
  /** At least 1. */
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Trailing prompt tokens the penalties count as generated. */
  penaltyContext?: number;
  logitBias?: LogitBias;
  /** Tokens that finish the row (reported, then the row leaves); default: config.json's eos_token_id; null: none. */
  stopTokens?: number[] | null;
  seed?: number;
  /** Report each token's log-probability and this many best alternatives. */
  logprobs?: number;
}

export interface SessionToken {
  row: number;
  token: number;
  /** The row finished with this token: 'stop' (a stop token, included) or 'length' (maxNewTokens); else null. */
  finish: 'stop' | 'length' | null;
  logprob: TokenLogprob | null;
}

export interface SessionStep {
  tokens: SessionToken[];
  /** Rows running after the step, cached positions per row, allocated positions per row. */
  rows: number;
  length: number;
  capacity: number;
}

export interface SessionDeps {
  vocabSize: number;
  eosTokenId: number;
  maxPositions: number;
  adapter: string | null | undefined;
  enqueue: <T>(fn: () => Promise<T>) => Promise<T>;
}

export class GenerationSession {
  private readonly handle: number;
  private nextRow = 1;
  private readonly live = new Set<number>();
  private closed = false;

  constructor(private readonly native: NativeModel, private readonly deps: SessionDeps) {
    this.handle = native.sessionOpen();
  }

  /** Rows added and not yet finished or cancelled. */
  get running(): number {
    return this.live.size;
  }

  /** Queues a prompt (token ids); returns its row id. It joins at the next step. */
  add(promptIds: number[], options: SessionRowOptions): number {
    this.checkOpen('add()');
    const what = 'session.add()';
    check(options && typeof options === 'object', `${what}: options must be an object`, 'options');
    checkOptionKeys(options, SESSION_ROW_KEYS, what);
    const v = this.deps.vocabSize;
    check(Array.isArray(promptIds) && promptIds.length > 0, `${what}: promptIds must be a non-empty array of token ids`, 'promptIds');
    promptIds.forEach((t, i) => check(Number.isSafeInteger(t) && t >= 0 && t < v, `${what}: promptIds[${i}] = ${JSON.stringify(t)} is not a token id (vocabulary size ${v})`, 'promptIds'));
    check(Number.isSafeInteger(options.maxNewTokens) && options.maxNewTokens >= 1, `${what}: maxNewTokens must be a positive integer, got ${options.maxNewTokens}`, 'maxNewTokens');
    if (promptIds.length + options.maxNewTokens > this.deps.maxPositions)
      throw new NodetuneError('ERR_SHAPE', `${what}: ${promptIds.length + options.maxNewTokens} tokens exceed the model's ${this.deps.maxPositions} positions`, { field: 'maxNewTokens' });
    const scalars = scalarSampling(options, what);
    const rows = rowSampling(options, 1, v, what);
    const stops = options.stopTokens === undefined ? (this.deps.eosTokenId >= 0 ? [this.deps.eosTokenId] : []) : options.stopTokens ?? [];
    check(Array.isArray(stops), `${what}: stopTokens must be an array of token ids or null`, 'stopTokens');
    stops.forEach((t, i) => check(Number.isSafeInteger(t) && t >= 0 && t < v, `${what}: stopTokens[${i}] = ${JSON.stringify(t)} is not a token id`, 'stopTokens'));
    const bias = rows.logitBiasIndex ?? new Int32Array(0);
    const row = this.nextRow++;
    this.native.sessionAdd(this.handle, row, Int32Array.from(promptIds), {
      maxNewTokens: options.maxNewTokens, ...scalars,
      presencePenalty: rows.presencePenalty?.[0] ?? 0, frequencyPenalty: rows.frequencyPenalty?.[0] ?? 0,
      penaltyContext: rows.penaltyContext?.[0] ?? 0,
      biasTokens: bias.filter((_, i) => i % 2 === 1), biasValues: rows.logitBiasValue ?? new Float32Array(0),
      stopTokens: Int32Array.from(stops), logprobs: rows.logprobs ?? -1,
    });
    this.live.add(row);
    return row;
  }

  /** Frees the row at the next step (no more tokens are reported for it). Unknown or finished rows: no effect. */
  cancel(row: number): void {
    if (this.closed || !this.live.delete(row)) return;
    this.native.sessionCancel(this.handle, row);
  }

  /** One token for every running row (the rows added since the last step: their first). */
  step(): Promise<SessionStep> {
    this.checkOpen('step()');
    return this.deps.enqueue(async () => {
      const out: NativeStepResult = await this.native.sessionStep(this.handle, this.deps.adapter);
      const tokens: SessionToken[] = [];
      for (const t of out.tokens) {
        if (!this.live.has(t.row)) continue;  // cancelled while the step ran
        if (t.finished) this.live.delete(t.row);
        const logprob = t.logprob === undefined ? null
          : { token: t.token, logprob: t.logprob, top: (t.topIds ?? []).map((token, j) => ({ token, logprob: t.topLogprobs![j]! })) };
        tokens.push({ row: t.row, token: t.token, finish: t.finished ? (t.reason === 'stop' ? 'stop' : 'length') : null, logprob });
      }
      return { tokens, rows: out.rows, length: out.length, capacity: out.capacity };
    });
  }

  /** Frees the session and its cache (a step in flight completes first). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.live.clear();
    this.native.sessionClose(this.handle);
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new NodetuneError('ERR_STATE', `session.${what}: the session is closed`);
  }
}
