/**
 * Learning-rate schedules as pure functions of the optimizer step (the closed forms of transformers'
 * get_*_schedule_with_warmup), and a stateful ReduceLROnPlateau (PyTorch semantics).
 */
import { NodetuneError } from '../errors';

export type ScheduleType = 'constant' | 'linear' | 'cosine' | 'polynomial' | 'inverse_sqrt';
export const SCHEDULE_TYPES: readonly ScheduleType[] = ['constant', 'linear', 'cosine', 'polynomial', 'inverse_sqrt'];

export interface ScheduleOptions {
  type: ScheduleType;
  /** Warmup length in optimizer steps; wins over warmupRatio. */
  warmupSteps?: number;
  /** Warmup as a fraction of the total steps (rounded up, as transformers does). */
  warmupRatio?: number;
  /** cosine: the floor, as a fraction of the base lr (0: decays to 0). */
  minLrRatio?: number;
  /** cosine: transformers' num_cycles (0.5, the default: one half cosine wave from 1 down to the floor). */
  numCycles?: number;
  /** polynomial: exponent (1: linear). */
  power?: number;
  /** polynomial: the lr reached at the last step. */
  lrEnd?: number;
  /** inverse_sqrt: the time scale (default: the warmup length, or 10000 without warmup). */
  timescale?: number;
}

/** A schedule with its warmup and total length fixed. */
export interface Schedule {
  readonly options: ScheduleOptions;
  readonly totalSteps: number;
  readonly warmupSteps: number;
  /** The multiplier of the base lr at `step` (0-based count of optimizer steps already taken). */
  factor(step: number): number;
  /** baseLr * factor(step). */
  lr(step: number): number;
}

function fail(field: string, message: string): never {
  throw new NodetuneError('ERR_CONFIG', `schedule.${field}: ${message}`, { field: `schedule.${field}` });
}

function nonNegative(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(field, `must be a non-negative number, got ${JSON.stringify(v)}`);
}

/** The warmup length in steps: warmupSteps if given, else ceil(warmupRatio * totalSteps), else 0. */
export function warmupLength(totalSteps: number, warmupSteps?: number, warmupRatio?: number): number {
  if (warmupSteps !== undefined) return warmupSteps;
  if (warmupRatio !== undefined) return Math.ceil(warmupRatio * totalSteps);
  return 0;
}

/** Validates `options` and fixes the schedule for a run of `totalSteps` optimizer steps with base lr `baseLr`. */
export function createSchedule(options: ScheduleOptions, totalSteps: number, baseLr: number): Schedule {
  if (!options || typeof options !== 'object') fail('type', 'options must be an object');
  if (!SCHEDULE_TYPES.includes(options.type)) fail('type', `must be one of ${SCHEDULE_TYPES.join(', ')}, got ${JSON.stringify(options.type)}`);
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) fail('totalSteps', `must be a positive integer, got ${totalSteps}`);
  if (options.warmupSteps !== undefined && !(Number.isSafeInteger(options.warmupSteps) && options.warmupSteps >= 0))
    fail('warmupSteps', `must be a non-negative integer, got ${JSON.stringify(options.warmupSteps)}`);
  if (options.warmupRatio !== undefined && !(typeof options.warmupRatio === 'number' && options.warmupRatio >= 0 && options.warmupRatio <= 1))
    fail('warmupRatio', `must be a number in [0, 1], got ${JSON.stringify(options.warmupRatio)}`);
  const minLrRatio = options.minLrRatio ?? 0;
  if (!(typeof minLrRatio === 'number' && minLrRatio >= 0 && minLrRatio <= 1)) fail('minLrRatio', `must be a number in [0, 1], got ${JSON.stringify(options.minLrRatio)}`);
  const numCycles = options.numCycles ?? 0.5;
  nonNegative(numCycles, 'numCycles');
  const power = options.power ?? 1;
  nonNegative(power, 'power');
  const lrEnd = options.lrEnd ?? 1e-7;
  nonNegative(lrEnd, 'lrEnd');
  if (options.type === 'polynomial' && !(lrEnd < baseLr)) fail('lrEnd', `must be below the learning rate ${baseLr}, got ${lrEnd}`);
  if (options.timescale !== undefined && !(typeof options.timescale === 'number' && options.timescale > 0))
    fail('timescale', `must be a positive number, got ${JSON.stringify(options.timescale)}`);
  const warmup = warmupLength(totalSteps, options.warmupSteps, options.warmupRatio);
  const timescale = options.timescale ?? (warmup > 0 ? warmup : 10000);

  const factor = (step: number): number => {
    if (step < warmup) return step / Math.max(1, warmup);
    switch (options.type) {
      case 'constant':
        return 1;
      case 'linear':
        return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmup));
      case 'cosine': {
        const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
        const f = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
        return f * (1 - minLrRatio) + minLrRatio;
      }
      case 'polynomial': {
        if (step > totalSteps) return lrEnd / baseLr;
        const remaining = 1 - (step - warmup) / Math.max(1, totalSteps - warmup);
        return ((baseLr - lrEnd) * remaining ** power + lrEnd) / baseLr;
      }
      case 'inverse_sqrt': {
        const shift = timescale - warmup;
        return 1 / Math.sqrt((step + shift) / timescale);
      }
    }
  };
  return { options, totalSteps, warmupSteps: warmup, factor, lr: (step) => baseLr * factor(step) };
}

export interface PlateauOptions {
  mode?: 'min' | 'max';
  /** Multiplier applied on a plateau (0 < factor < 1). */
  factor?: number;
  /** Evaluations without improvement tolerated before reducing. */
  patience?: number;
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  /** Evaluations to wait after a reduction before counting again. */
  cooldown?: number;
  /** The lowest learning rate. */
  minLr?: number;
  /** Reductions smaller than this are ignored. */
  eps?: number;
}

export interface PlateauState {
  best: number | null;
  badEvaluations: number;
  cooldownLeft: number;
  lr: number;
  reductions: number;
}

/** ReduceLROnPlateau as in PyTorch: call step(metric) after each evaluation; `lr` is the current learning rate. */
export class ReduceLROnPlateau {
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number;
  readonly eps: number;
  private state: PlateauState;

  constructor(lr: number, options: PlateauOptions = {}) {
    const f = (field: string, msg: string): never => {
      throw new NodetuneError('ERR_CONFIG', `reduceOnPlateau.${field}: ${msg}`, { field: `reduceOnPlateau.${field}` });
    };
    this.mode = options.mode ?? 'min';
    if (this.mode !== 'min' && this.mode !== 'max') f('mode', `must be 'min' or 'max', got ${JSON.stringify(options.mode)}`);
    this.factor = options.factor ?? 0.1;
    if (!(typeof this.factor === 'number' && this.factor > 0 && this.factor < 1)) f('factor', `must be in (0, 1), got ${JSON.stringify(options.factor)}`);
    this.patience = options.patience ?? 10;
    if (!(Number.isSafeInteger(this.patience) && this.patience >= 0)) f('patience', `must be a non-negative integer, got ${JSON.stringify(options.patience)}`);
    this.threshold = options.threshold ?? 1e-4;
    if (!(typeof this.threshold === 'number' && this.threshold >= 0)) f('threshold', `must be a non-negative number, got ${JSON.stringify(options.threshold)}`);
    this.thresholdMode = options.thresholdMode ?? 'rel';
    if (this.thresholdMode !== 'rel' && this.thresholdMode !== 'abs') f('thresholdMode', `must be 'rel' or 'abs', got ${JSON.stringify(options.thresholdMode)}`);
    this.cooldown = options.cooldown ?? 0;
    if (!(Number.isSafeInteger(this.cooldown) && this.cooldown >= 0)) f('cooldown', `must be a non-negative integer, got ${JSON.stringify(options.cooldown)}`);
    this.minLr = options.minLr ?? 0;
    if (!(typeof this.minLr === 'number' && this.minLr >= 0)) f('minLr', `must be a non-negative number, got ${JSON.stringify(options.minLr)}`);
    this.eps = options.eps ?? 1e-8;
    if (!(typeof lr === 'number' && lr >= 0)) f('lr', `must be a non-negative number, got ${JSON.stringify(lr)}`);
    this.state = { best: null, badEvaluations: 0, cooldownLeft: 0, lr, reductions: 0 };
  }

  get lr(): number {
    return this.state.lr;
  }

  get best(): number | null {
    return this.state.best;
  }

  private better(a: number, best: number | null): boolean {
    if (best === null) return true;
    const t = this.threshold;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < best * (1 - t) : a < best - t;
    return this.thresholdMode === 'rel' ? a > best * (1 + t) : a > best + t;
  }

  /** Records one evaluation's metric; returns true when the learning rate was reduced. */
  step(metric: number): boolean {
    const s = this.state;
    if (!Number.isFinite(metric)) throw new NodetuneError('ERR_ARGUMENT', `ReduceLROnPlateau.step(): metric must be finite, got ${metric}`, { field: 'metric' });
    if (this.better(metric, s.best)) {
      s.best = metric;
      s.badEvaluations = 0;
    } else s.badEvaluations += 1;
    if (s.cooldownLeft > 0) {
      s.cooldownLeft -= 1;
      s.badEvaluations = 0;
    }
    if (s.badEvaluations > this.patience) {
      const next = Math.max(s.lr * this.factor, this.minLr);
      s.cooldownLeft = this.cooldown;
      s.badEvaluations = 0;
      if (s.lr - next > this.eps) {
        s.lr = next;
        s.reductions += 1;
        return true;
      }
    }
    return false;
  }

  toJSON(): PlateauState {
    return { ...this.state };
  }

  /** Restores the state saved by toJSON (the options come from the constructor). */
  static fromJSON(state: PlateauState, options: PlateauOptions = {}): ReduceLROnPlateau {
    const ok = state && typeof state === 'object' && typeof state.lr === 'number' && Number.isSafeInteger(state.badEvaluations)
      && Number.isSafeInteger(state.cooldownLeft) && (state.best === null || typeof state.best === 'number');
    if (!ok) throw new NodetuneError('ERR_STATE', `ReduceLROnPlateau.fromJSON(): not a saved plateau state: ${JSON.stringify(state)}`);
    const p = new ReduceLROnPlateau(state.lr, options);
    p.state = { best: state.best, badEvaluations: state.badEvaluations, cooldownLeft: state.cooldownLeft, lr: state.lr, reductions: state.reductions ?? 0 };
    return p;
  }
}
