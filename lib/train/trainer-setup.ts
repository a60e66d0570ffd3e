/** A training run's setup from its args: the model's training switches, the schedule, plateau and early stopping. */
import { NodetuneError } from '../errors';
import type { ResolvedArgs } from './args';
import { EarlyStopping } from './early-stopping';
import { ReduceLROnPlateau, Schedule, createSchedule } from './schedules';
import type { TrainerModel } from './trainer-types';

/** TrainingArgs.dropout and gradientCheckpointing, applied to the model. */
export function applyModelArgs(model: TrainerModel, a: ResolvedArgs): void {
  if (a.dropout !== null) {
    if (typeof model.setDropout !== 'function')
      throw new NodetuneError('ERR_STATE', 'TrainingArgs.dropout: this model object cannot change its dropout (no setDropout())', { field: 'dropout' });
    model.setDropout(a.dropout);
  }
  if (a.gradientCheckpointing) {
    if (typeof model.setGradientCheckpointing !== 'function')
      throw new NodetuneError('ERR_STATE', 'TrainingArgs.gradientCheckpointing: this model object has no setGradientCheckpointing()', { field: 'gradientCheckpointing' });
    model.setGradientCheckpointing(true);
  }
}

/** The run's length and its learning-rate schedule, plateau reduction and best-metric tracker. `micro`: micro-batches per epoch (null: unknown). */
export function planRun(a: ResolvedArgs, micro: number | null): { schedule: Schedule; plateau: ReduceLROnPlateau | null; tracker: EarlyStopping } {
  let total: number;
  if (a.maxSteps !== null) total = a.maxSteps;
  else if (micro === null) throw new NodetuneError('ERR_CONFIG', 'TrainingArgs.maxSteps: required when train is an iterable of unknown length', { field: 'maxSteps' });
  else total = Math.max(1, Math.ceil(a.epochs * Math.ceil(micro / a.gradientAccumulationSteps)));
  const schedule = createSchedule({
    type: a.lrScheduler, ...(a.warmupSteps !== null ? { warmupSteps: a.warmupSteps } : {}), ...(a.warmupRatio !== null ? { warmupRatio: a.warmupRatio } : {}),
    minLrRatio: a.minLrRatio, numCycles: a.numCycles, power: a.power, lrEnd: a.lrEnd,
  }, total, a.learningRate);
  const plateau = a.reduceOnPlateau ? new ReduceLROnPlateau(a.learningRate, { mode: a.greaterIsBetter ? 'max' : 'min', ...a.reduceOnPlateau }) : null;
  const mode = a.greaterIsBetter ? 'max' : 'min';
  const tracker = new EarlyStopping({ patience: a.earlyStoppingPatience ?? Number.MAX_SAFE_INTEGER, minDelta: a.earlyStoppingThreshold, mode });
  return { schedule, plateau, tracker };
}
