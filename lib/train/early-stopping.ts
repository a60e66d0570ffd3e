/** Early stopping on one evaluation metric: patience, minimum improvement, min/max mode; serialisable state. */
import { NodetuneError } from '../errors';

export interface EarlyStoppingOptions {
  /** Training stops after this many evaluations in a row without improvement (transformers' early_stopping_patience). */
  patience: number;
  /** An improvement must exceed this (absolute) margin. */
  minDelta?: number;
  mode?: 'min' | 'max';
}

export interface EarlyStoppingState {
  best: number | null;
  bestStep: number | null;
  bad: number;
  stopped: boolean;
}

export class EarlyStopping {
  readonly patience: number;
  readonly minDelta: number;
  readonly mode: 'min' | 'max';
  private s: EarlyStoppingState = { best: null, bestStep: null, bad: 0, stopped: false };

  constructor(options: EarlyStoppingOptions) {
    const fail = (field: string, msg: string): never => {
      throw new NodetuneError('ERR_CONFIG', `earlyStopping.${field}: ${msg}`, { field: `earlyStopping.${field}` });
    };
    if (!options || typeof options !== 'object') fail('patience', 'options must be an object');
    if (!(Number.isSafeInteger(options.patience) && options.patience >= 1)) fail('patience', `must be a positive integer, got ${JSON.stringify(options.patience)}`);
    this.patience = options.patience;
    this.minDelta = options.minDelta ?? 0;
    if (!(typeof this.minDelta === 'number' && this.minDelta >= 0)) fail('minDelta', `must be a non-negative number, got ${JSON.stringify(options.minDelta)}`);
    this.mode = options.mode ?? 'min';
    if (this.mode !== 'min' && this.mode !== 'max') fail('mode', `must be 'min' or 'max', got ${JSON.stringify(options.mode)}`);
  }

  get best(): number | null {
    return this.s.best;
  }

  get bestStep(): number | null {
    return this.s.bestStep;
  }

  get stopped(): boolean {
    return this.s.stopped;
  }

  /** True when `value` improves on `best` by more than minDelta (any finite value improves on nothing). */
  isImprovement(value: number, best: number | null = this.s.best): boolean {
    if (best === null) return true;
    return this.mode === 'min' ? value < best - this.minDelta : value > best + this.minDelta;
  }

  /** Records the metric of the evaluation at `step`; returns whether it improved and whether training should stop. */
  update(value: number, step: number): { improved: boolean; stop: boolean } {
    if (!Number.isFinite(value)) throw new NodetuneError('ERR_DATA', `early stopping: the monitored metric is ${value} at step ${step}`, { step });
    const improved = this.isImprovement(value);
    if (improved) {
      this.s.best = value;
      this.s.bestStep = step;
      this.s.bad = 0;
    } else this.s.bad += 1;
    if (this.s.bad >= this.patience) this.s.stopped = true;
    return { improved, stop: this.s.stopped };
  }

  toJSON(): EarlyStoppingState {
    return { ...this.s };
  }

  static fromJSON(state: EarlyStoppingState, options: EarlyStoppingOptions): EarlyStopping {
    const ok = state && typeof state === 'object' && Number.isSafeInteger(state.bad) && typeof state.stopped === 'boolean'
      && (state.best === null || typeof state.best === 'number') && (state.bestStep === null || Number.isSafeInteger(state.bestStep));
    if (!ok) throw new NodetuneError('ERR_STATE', `EarlyStopping.fromJSON(): not a saved early-stopping state: ${JSON.stringify(state)}`);
    const e = new EarlyStopping(options);
    e.s = { best: state.best, bestStep: state.bestStep, bad: state.bad, stopped: state.stopped };
    return e;
  }
}
