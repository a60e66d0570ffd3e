/**
 * FeaturePool: formats batches of examples in worker threads, each with its own copy of the tokenizer, for data sets
 * whose formatting (chat templates, offset mapping, many short encodes) would otherwise load the main thread.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { NodetuneError, check } from '../errors';
import type { ErrorCode } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { TokenizerConfig } from '../tokenizers/config';
import type { Feature } from './batch';
import type { Example } from './example';
import type { FeaturizeOptions } from './featurize';

export interface PoolInit {
  tokenizerDir: string;
  config: TokenizerConfig;
  chatTemplate?: string;
  options: FeaturizeOptions;
}

interface Reply {
  id?: number;
  features?: Feature[];
  error?: { message: string; code?: ErrorCode; details?: Record<string, unknown> };
  ready?: boolean;
  failed?: string;
  code?: ErrorCode;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy: number;
}

export class FeaturePool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (f: Feature[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private closed = false;

  constructor(tokenizer: PreTrainedTokenizer, options: FeaturizeOptions, readonly threads: number) {
    check(Number.isInteger(threads) && threads > 0, `FeaturePool: threads must be a positive integer, got ${threads}`, 'threads');
    const script = path.join(__dirname, 'feature-worker.js');
    if (!fs.existsSync(script)) throw new NodetuneError('ERR_IO', `worker script ${script} is missing (build with tsc first)`, { file: script });
    const init: PoolInit = { tokenizerDir: tokenizer.source, config: tokenizer.config, options };
    if (tokenizer.customChatTemplate !== undefined) init.chatTemplate = tokenizer.customChatTemplate;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(script, { workerData: init });
      worker.unref(); // an idle pool never keeps the process alive
      const ready = new Promise<void>((resolve, reject) => {
        worker.on('message', (m: Reply) => {
          if (m.ready) { resolve(); return; }
          if (m.failed !== undefined) { reject(new NodetuneError(m.code ?? 'ERR_DATA', `feature worker failed to start: ${m.failed}`)); return; }
          this.settle(m);
        });
        worker.on('error', (e) => { reject(e); this.failAll(e); });
      });
      ready.catch(() => undefined);
      this.slots.push({ worker, ready, busy: 0 });
    }
  }

  /** Thread ids of the workers (for checks and diagnostics). */
  get threadIds(): number[] {
    return this.slots.map((s) => s.worker.threadId);
  }

  private settle(m: Reply): void {
    if (m.id === undefined) return;
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (m.error) w.reject(new NodetuneError(m.error.code ?? 'ERR_DATA', m.error.message, m.error.details ?? {}));
    else w.resolve(m.features ?? []);
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  /** Formats examples in the least busy worker. */
  async featurize(examples: Example[]): Promise<Feature[]> {
    check(!this.closed, 'FeaturePool: the pool is closed', 'pool');
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    slot.busy++;
    slot.worker.ref(); // keep the process alive while a reply is due
    try {
      await slot.ready;
      const id = this.nextId++;
      return await new Promise<Feature[]>((resolve, reject) => {
        this.waiting.set(id, { resolve, reject });
        slot.worker.postMessage({ id, examples });
      });
    } finally {
      slot.busy--;
      if (slot.busy === 0) slot.worker.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new NodetuneError('ERR_STATE', 'FeaturePool closed while formatting'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
