/**
 * MicroBatcher: collects concurrent requests for up to `maxWaitMs` (or until `maxBatch` are waiting), then runs
 * them as one batch. Requests with different keys (e.g. different sampling settings or adapters) never share a
 * batch. Batches run one at a time (the model serialises its calls anyway); while one runs, the next fills up.
 */
import { NodetuneError } from '../errors';

export interface BatcherOptions {
  /** Most requests in one batch. Default 8. */
  maxBatch?: number;
  /** Longest a request waits for others to join its batch, in ms. Default 5. */
  maxWaitMs?: number;
  /** Most requests waiting (not yet running); more are refused with a QueueFullError. Default 256. */
  maxQueue?: number;
}

export interface BatchStats {
  batches: number;
  items: number;
  /** Requests waiting, not yet in a running batch. */
  pending: number;
  running: boolean;
}

/** Thrown when the queue is full (the server answers 503). */
export class QueueFullError extends NodetuneError {
  constructor(limit: number) {
    super('ERR_STATE', `the request queue is full (${limit} waiting); retry later`, { field: 'queue', queueFull: true, limit });
  }
}

/** Thrown to a waiting request that was cancelled (a timeout, a closed connection) before its batch ran. */
export class CancelledError extends NodetuneError {
  constructor(reason: string) {
    super('ERR_STATE', reason, { cancelled: true });
  }
}

interface Pending<I, O> {
  item: I;
  key: string;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
  enqueuedAt: number;
}

export interface Ticket<O> {
  promise: Promise<O>;
  /** Removes the request if it has not started running; returns whether it was removed. */
  cancel(reason: string): boolean;
}

/**
 * Submits one request per item and waits for every result with `wait` (e.g. a deadline). When a submission or a
 * wait fails, the requests already submitted leave the queue (`reason`) and the first failure, in item order, is thrown.
 */
export async function settleAll<I, O>(items: readonly I[], submit: (item: I) => Ticket<O> | Promise<Ticket<O>>,
  wait: (t: Ticket<O>) => Promise<O>, reason: string): Promise<O[]> {
  const settled = await Promise.allSettled(items.map(async (item) => submit(item)));
  const tickets = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const refused = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (refused) throw refused.reason;
    return await Promise.all(tickets.map(wait));
  } catch (e) {
    for (const t of tickets) t.cancel(reason);
    throw e;
  }
}

export function positiveInt(v: unknown, name: string, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || (v as number) < min)
    throw new NodetuneError('ERR_ARGUMENT', `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`, { field: name });
  return v as number;
}

export class MicroBatcher<I, O> {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  private readonly queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private flushNow = false;
  private batches = 0;
  private items = 0;
  /** Called after each batch with its size, how long it ran (ms), and its results (undefined when it failed). */
  onBatch: ((size: number, ms: number, results: O[] | undefined) => void) | undefined;

  constructor(private readonly runBatch: (items: I[], key: string) => Promise<O[]>, opts: BatcherOptions = {}) {
    this.maxBatch = positiveInt(opts.maxBatch, 'maxBatch', 8);
    this.maxWaitMs = positiveInt(opts.maxWaitMs, 'maxWaitMs', 5, 0);
    this.maxQueue = positiveInt(opts.maxQueue, 'maxQueue', 256);
  }

  stats(): BatchStats {
    return { batches: this.batches, items: this.items, pending: this.queue.length, running: this.running };
  }

  /** Queues one request; the promise settles with its own result once its batch has run. */
  submit(item: I, key = ''): Ticket<O> {
    if (this.queue.length >= this.maxQueue) {
      return { promise: Promise.reject(new QueueFullError(this.maxQueue)), cancel: () => false };
    }
    let entry!: Pending<I, O>;
    const promise = new Promise<O>((resolve, reject) => {
      entry = { item, key, resolve, reject, enqueuedAt: Date.now() };
    });
    this.queue.push(entry);
    this.schedule();
    const cancel = (reason: string): boolean => {
      const i = this.queue.indexOf(entry);
      if (i < 0) return false;
      this.queue.splice(i, 1);
      entry.reject(new CancelledError(reason));
      return true;
    };
    return { promise, cancel };
  }

  /** Runs what is waiting without waiting any longer (graceful shutdown). */
  flush(): void {
    this.flushNow = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const head = this.queue[0]!;
    const sameKey = this.queue.filter((p) => p.key === head.key).length;
    const waited = Date.now() - head.enqueuedAt;
    if (this.flushNow || sameKey >= this.maxBatch || waited >= this.maxWaitMs) {
      if (this.timer) clearTimeout(this.timer), (this.timer = undefined);
      void this.dispatch();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, this.maxWaitMs - waited);
    }
  }

  private async dispatch(): Promise<void> {
    const key = this.queue[0]!.key;
    const batch: Pending<I, O>[] = [];
    for (let i = 0; i < this.queue.length && batch.length < this.maxBatch;) {
      if (this.queue[i]!.key === key) batch.push(...this.queue.splice(i, 1));
      else i++;
    }
    this.running = true;
    const started = Date.now();
    let results: O[] | undefined;
    try {
      const out = await this.runBatch(batch.map((p) => p.item), key);
      if (out.length !== batch.length) throw new NodetuneError('ERR_STATE', `a batch of ${batch.length} returned ${out.length} results`);
      results = out;
      batch.forEach((p, i) => p.resolve(out[i]!));
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.batches++;
      this.items += batch.length;
      this.running = false;
      this.onBatch?.(batch.length, Date.now() - started, results);
      this.schedule();
    }
  }
}
