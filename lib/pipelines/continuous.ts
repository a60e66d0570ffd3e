/**
 * Continuous batching for text generation: requests wait in a queue and join the running batch of a generation
 * session (lib/models/session.ts) at token boundaries; every step decodes one token for every running row, a row
 * leaves the moment it finishes or is cancelled (a timeout, a client that went away: its cache is freed at the
 * next step). A prefill budget bounds the prompt tokens admitted per step, so running streams keep their pace while
 * new prompts are prefilled. One session per adapter; sessions with work take turns, one step each.
 */
import { NodetuneError } from '../errors';
import type { Model } from '../models/model';
import type { GenerationSession, SessionRowOptions, SessionToken } from '../models/session';
import { CancelledError, QueueFullError, positiveInt } from './batcher';

export interface ContinuousOptions {
  /** Most rows decoding together (per adapter). Default 16. */
  maxRows?: number;
  /** Most prompt tokens prefilled per step (a longer prompt is admitted alone). Default 512. */
  prefillBudget?: number;
  /** Most requests waiting to join; more are refused with a QueueFullError. Default 256. */
  maxQueue?: number;
  /** Static batching instead (for comparison): rows join only an empty batch, gathered for up to staticWaitMs. */
  static?: boolean;
  /** Static batching's gathering window (ms). Default 5. */
  staticWaitMs?: number;
}

export interface ContinuousStats {
  steps: number;
  /** Tokens generated so far. */
  tokens: number;
  running: number;
  waiting: number;
  /** Requests that joined a batch so far. */
  admitted: number;
}

/** A request's tokens as they come: next() resolves with each token (finish set on the last one). */
export interface RowStream {
  next(): Promise<SessionToken>;
  /** Leaves the queue, or frees the running row at the next step; a pending next() rejects with CancelledError. */
  cancel(reason: string): void;
}

interface Entry {
  ids: number[];
  options: SessionRowOptions;
  adapter: string | null | undefined;
  row: number | undefined;
  session: GenerationSession | undefined;
  buffered: SessionToken[];
  waiter: { resolve: (t: SessionToken) => void; reject: (e: unknown) => void } | undefined;
  error: unknown;
  done: boolean;
}

function deliver(e: Entry, t: SessionToken): void {
  if (t.finish) e.done = true;
  if (e.waiter) {
    const w = e.waiter;
    e.waiter = undefined;
    w.resolve(t);
  } else e.buffered.push(t);
}

function fail(e: Entry, error: unknown): void {
  if (e.done) return;
  e.done = true;
  e.error = error;
  if (e.waiter) {
    const w = e.waiter;
    e.waiter = undefined;
    w.reject(error);
  }
}

export class ContinuousScheduler {
  readonly maxRows: number;
  readonly prefillBudget: number;
  readonly maxQueue: number;
  readonly static: boolean;
  readonly staticWaitMs: number;
  private readonly waiting: (Entry & { since?: number })[] = [];
  private admitted = 0;
  private readonly sessions = new Map<string, { session: GenerationSession; rows: Map<number, Entry> }>();
  private turn = 0;
  private looping = false;
  private steps = 0;
  private tokens = 0;
  /** Called after each step with the rows it decoded (one token each) and its duration (ms). */
  onStep: ((rows: number, ms: number) => void) | undefined;

  constructor(private readonly model: Model, opts: ContinuousOptions = {}) {
    this.maxRows = positiveInt(opts.maxRows, 'maxRows', 16);
    this.prefillBudget = positiveInt(opts.prefillBudget, 'prefillBudget', 512);
    this.maxQueue = positiveInt(opts.maxQueue, 'maxQueue', 256);
    this.static = opts.static === true;
    this.staticWaitMs = positiveInt(opts.staticWaitMs, 'staticWaitMs', 5, 0);
  }

  stats(): ContinuousStats {
    let running = 0;
    for (const s of this.sessions.values()) running += s.rows.size;
    return { steps: this.steps, tokens: this.tokens, running, waiting: this.waiting.length, admitted: this.admitted };
  }

  /** Queues one prompt (token ids, validated by the caller's session options); its tokens come through the stream. */
  submit(ids: number[], options: SessionRowOptions, adapter: string | null | undefined): RowStream {
    // Rows free at the next token boundary do not count against the queue: waiting + running <= maxQueue + maxRows,
    // however the requests' arrival interleaves with the steps.
    const running = this.stats().running;
    const free = this.static && running > 0 ? 0 : Math.max(0, this.maxRows - running);
    if (this.waiting.length >= this.maxQueue + free) throw new QueueFullError(this.maxQueue);
    const e: Entry & { since?: number } = { since: Date.now(), ids, options, adapter, row: undefined, session: undefined, buffered: [], waiter: undefined, error: undefined, done: false };
    this.waiting.push(e);
    // From a microtask: the requests submitted in the same tick join (and are prefilled in) the same step.
    queueMicrotask(() => void this.loop());
    return {
      next: () => {
        const t = e.buffered.shift();
        if (t) return Promise.resolve(t);
        if (e.error !== undefined) return Promise.reject(e.error);
        if (e.done) return Promise.reject(new NodetuneError('ERR_STATE', 'the generation already finished'));
        return new Promise<SessionToken>((resolve, reject) => { e.waiter = { resolve, reject }; });
      },
      cancel: (reason: string) => {
        const i = this.waiting.indexOf(e);
        if (i >= 0) this.waiting.splice(i, 1);
        if (e.session && e.row !== undefined) {
          e.session.cancel(e.row);
          this.sessions.get(String(e.adapter))?.rows.delete(e.row);
        }
        fail(e, new CancelledError(reason));
      },
    };
  }

  private sessionFor(adapter: string | null | undefined): { session: GenerationSession; rows: Map<number, Entry> } {
    const key = String(adapter);
    let s = this.sessions.get(key);
    if (!s) {
      s = { session: this.model.createSession(adapter === undefined ? {} : { adapter }), rows: new Map() };
      this.sessions.set(key, s);
    }
    return s;
  }

  /** The adapter whose session steps next: round robin over those with running rows or waiting requests. */
  private nextAdapter(): string | null | undefined | false {
    const keys = new Map<string, string | null | undefined>();
    for (const [k, s] of this.sessions) if (s.rows.size > 0) keys.set(k, [...s.rows.values()][0]!.adapter);
    for (const e of this.waiting) if (!keys.has(String(e.adapter))) keys.set(String(e.adapter), e.adapter);
    if (keys.size === 0) return false;
    const list = [...keys.values()];
    return list[this.turn++ % list.length]!;
  }

  /** Moves waiting requests of this adapter into its session, within the row limit and the prefill budget. */
  private admit(adapter: string | null | undefined, s: { session: GenerationSession; rows: Map<number, Entry> }): void {
    if (this.static && s.rows.size > 0) return;
    let budget = this.prefillBudget;
    let admitted = 0;
    for (let i = 0; i < this.waiting.length && s.rows.size < this.maxRows;) {
      const e = this.waiting[i]!;
      if (e.adapter !== adapter) { i++; continue; }
      if (admitted > 0 && e.ids.length > budget) break;
      this.waiting.splice(i, 1);
      try {
        e.row = s.session.add(e.ids, e.options);
        e.session = s.session;
        s.rows.set(e.row, e);
        budget -= e.ids.length;
        admitted++;
        this.admitted++;
      } catch (err) {
        fail(e, err);
      }
    }
  }

  /** Static batching: waits until maxRows requests of this adapter wait or the oldest waited staticWaitMs. */
  private async gather(adapter: string | null | undefined): Promise<void> {
    for (;;) {
      const mine = this.waiting.filter((e) => e.adapter === adapter);
      if (mine.length === 0 || mine.length >= this.maxRows) return;
      const left = this.staticWaitMs - (Date.now() - mine[0]!.since!);
      if (left <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, left));
    }
  }

  private async loop(): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    try {
      for (let adapter = this.nextAdapter(); adapter !== false; adapter = this.nextAdapter()) {
        let s: { session: GenerationSession; rows: Map<number, Entry> };
        try {
          s = this.sessionFor(adapter);
        } catch (err) {
          // The adapter cannot run in a session (prompt tuning): its waiting requests fail with the reason.
          for (const e of this.waiting.filter((w) => w.adapter === adapter)) this.waiting.splice(this.waiting.indexOf(e), 1), fail(e, err);
          continue;
        }
        if (this.static && s.rows.size === 0) await this.gather(adapter);
        this.admit(adapter, s);
        if (s.rows.size === 0) continue;
        const started = Date.now();
        try {
          const out = await s.session.step();
          this.steps++;
          this.tokens += out.tokens.length;
          for (const t of out.tokens) {
            const e = s.rows.get(t.row);
            if (!e) continue;
            if (t.finish) s.rows.delete(t.row);
            deliver(e, t);
          }
          this.onStep?.(out.tokens.length, Date.now() - started);
        } catch (err) {
          // A failed step fails its rows; the session is dropped (a fresh one serves later requests).
          for (const e of s.rows.values()) fail(e, err);
          s.session.close();
          this.sessions.delete(String(adapter));
        }
      }
    } finally {
      this.looping = false;
    }
  }

  /** Fails what waits or runs and frees the sessions. */
  close(reason = 'the scheduler closed'): void {
    for (const e of this.waiting.splice(0)) fail(e, new CancelledError(reason));
    for (const s of this.sessions.values()) {
      for (const e of s.rows.values()) fail(e, new CancelledError(reason));
      s.session.close();
    }
    this.sessions.clear();
  }
}
