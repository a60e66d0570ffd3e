/** The Trainer's typed events, an EventEmitter whose listener exceptions never reach the training loop, and an async iterator over events. */
import { EventEmitter } from 'events';

export interface StepEvent {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping, when the model reports it. */
  gradNorm: number | null;
  /** Non-padding tokens in this step's batch. */
  tokens: number;
  tokensPerSecond: number;
  /** Seconds left at the current pace. */
  etaSeconds: number;
}

export interface LogEvent {
  step: number;
  epoch: number;
  /** Mean training loss since the previous log. */
  loss: number;
  lr: number;
  gradNorm: number | null;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface EvaluateEvent {
  step: number;
  epoch: number;
  split: 'validation' | 'test';
  metrics: Record<string, number>;
  /** Classification: confusion[true][predicted]. */
  confusion?: number[][];
}

/** An evaluation begins (during training, or a call to trainer.evaluate()). */
export interface EvaluateStartEvent {
  step: number;
  split: 'validation' | 'test';
}

export interface CheckpointEvent {
  step: number;
  dir: string;
  /** Checkpoints deleted by saveTotalLimit. */
  deleted: string[];
}

export interface EarlyStopEvent {
  step: number;
  metric: string;
  best: number;
  bestStep: number;
}

export interface EndEvent {
  step: number;
  epoch: number;
  reason: 'completed' | 'earlyStop' | 'aborted';
  bestMetric: number | null;
  bestCheckpoint: string | null;
  /** True when the best checkpoint's weights were loaded back (loadBestAtEnd). */
  restoredBest: boolean;
  testMetrics: Record<string, number> | null;
  report: string | null;
}

export interface CallbackErrorEvent {
  /** The event whose listener threw. */
  event: string;
  error: Error;
}

export interface TrainerEvents {
  step: StepEvent;
  log: LogEvent;
  evaluateStart: EvaluateStartEvent;
  evaluate: EvaluateEvent;
  checkpoint: CheckpointEvent;
  earlyStop: EarlyStopEvent;
  end: EndEvent;
  callbackError: CallbackErrorEvent;
}

export type TrainerEventName = keyof TrainerEvents;
/** Every event name once (a Record, so an event added to TrainerEvents and not here fails to compile). */
const NAMES: Record<TrainerEventName, true> = { step: true, log: true, evaluateStart: true, evaluate: true, checkpoint: true, earlyStop: true, end: true, callbackError: true };
export const EVENT_NAMES = Object.keys(NAMES) as readonly TrainerEventName[];

/** One event as the async iterator yields it. */
export type TrainerEvent = { [K in TrainerEventName]: { type: K } & TrainerEvents[K] }[TrainerEventName];

/**
 * An EventEmitter with typed on/once/off whose emit() catches what listeners throw (or reject with) and reports it
 * as a 'callbackError' event, so a user callback can never stop training.
 */
export class TrainerEmitter extends EventEmitter {
  private iterators = new Set<EventQueue>();

  override on<K extends TrainerEventName>(event: K, listener: (e: TrainerEvents[K]) => unknown): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once<K extends TrainerEventName>(event: K, listener: (e: TrainerEvents[K]) => unknown): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  override off<K extends TrainerEventName>(event: K, listener: (e: TrainerEvents[K]) => unknown): this;
  override off(event: string | symbol, listener: (...args: any[]) => void): this;
  override off(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.off(event, listener);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const listeners = this.rawListeners(event).slice();
    for (const l of listeners) {
      try {
        const r = (l as (...a: unknown[]) => unknown).apply(this, args);
        if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, (e: unknown) => this.reportFailure(event, e));
      } catch (e) {
        this.reportFailure(event, e);
      }
    }
    if (typeof event === 'string' && (EVENT_NAMES as readonly string[]).includes(event))
      for (const q of this.iterators) q.push({ type: event, ...(args[0] as object) } as TrainerEvent);
    return listeners.length > 0;
  }

  /** Emits a typed event. */
  send<K extends TrainerEventName>(event: K, payload: TrainerEvents[K]): void {
    this.emit(event, payload);
  }

  private reportFailure(event: string | symbol, e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    if (event === 'callbackError') {
      process.emitWarning(`nodetune Trainer: a 'callbackError' listener threw: ${error.message}`);
      return;
    }
    this.emit('callbackError', { event: String(event), error });
  }

  /** Events from now until 'end' (inclusive); if training fails, the iterator throws its error. */
  [Symbol.asyncIterator](): AsyncIterator<TrainerEvent> {
    const q = new EventQueue(() => this.iterators.delete(q));
    this.iterators.add(q);
    return q;
  }

  /** Ends every open iterator with `error`. */
  protected failIterators(error: Error): void {
    for (const q of this.iterators) q.fail(error);
  }
}

class EventQueue implements AsyncIterator<TrainerEvent> {
  private items: TrainerEvent[] = [];
  private waiting: { resolve: (r: IteratorResult<TrainerEvent>) => void; reject: (e: Error) => void }[] = [];
  private done = false;
  private error: Error | null = null;

  constructor(private readonly close: () => void) {}

  push(e: TrainerEvent): void {
    if (this.done) return;
    const w = this.waiting.shift();
    if (w) w.resolve({ value: e, done: false });
    else this.items.push(e);
    if (e.type === 'end') this.finish();
  }

  fail(error: Error): void {
    if (this.done) return;
    this.error = error;
    for (const w of this.waiting.splice(0)) w.reject(error);
    this.finish();
  }

  private finish(): void {
    this.done = true;
    this.close();
    if (this.items.length === 0) for (const w of this.waiting.splice(0)) w.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<TrainerEvent>> {
    const item = this.items.shift();
    if (item) return Promise.resolve({ value: item, done: false });
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<TrainerEvent>> {
    this.done = true;
    this.items = [];
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }
}
