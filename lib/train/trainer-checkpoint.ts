/** The Trainer's checkpoints: writing checkpoint-<step> folders, restoring a run from one, loading best weights. */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';
import { AutoModel } from '../models';
import { rngState, setRngState } from '../rng';
import type { ResolvedArgs } from './args';
import { TrainerState, checkpointName, latestCheckpoint, readTrainerState, saveCheckpoint, SaveHooks } from './checkpoint';
import type { ModelTask } from './data';
import { checkExactResume } from './resume';
import type { TrainerModel } from './trainer-types';

/** Files a checkpoint holds besides the weights and trainer_state.json. */
const OPTIMIZER_FILE = 'optimizer.pt';
const RNG_FILE = 'rng_state.bin';

/** Whether checkpoints carry the optimizer and RNG state (the model can save its optimizer state). */
export function savesState(model: TrainerModel): boolean {
  return typeof model.saveOptimizerState === 'function' && typeof model.loadOptimizerState === 'function';
}

/**
 * Writes checkpoint-<step> under outputDir (weights, optimizer and RNG state, trainer_state.json) and returns its
 * folder. `state` null (a rank other than 0): nothing is written; the folder rank 0 writes is returned.
 */
export async function writeCheckpoint(model: TrainerModel, outputDir: string, step: number, state: TrainerState | null, hooks: SaveHooks): Promise<string> {
  if (state === null) return path.join(outputDir, checkpointName(step));
  return saveCheckpoint(outputDir, state, async (d) => {
    await model.savePretrained(d);
    if (savesState(model)) {
      await model.saveOptimizerState!(path.join(d, OPTIMIZER_FILE));
      fs.writeFileSync(path.join(d, RNG_FILE), rngState());
    }
  }, hooks);
}

/** Copies the weights of a saved checkpoint into the model. */
export async function loadWeights(model: TrainerModel, task: ModelTask, dir: string): Promise<void> {
  const src = await AutoModel.fromPretrained(dir, {
    quiet: true, task: task as never,
    ...(model.device ? { device: model.device } : {}), ...(model.dtype ? { dtype: model.dtype as never } : {}),
  });
  for (const p of model.parameters()) model.setParameter(p.name, src.getParameter(p.name));
}

/**
 * resumeFrom: checks that the checkpoint continues this run exactly (world size, seed, steps; the args when it has
 * no optimizer state), loads its weights, optimizer, RNG and loss-scaler state into the model and returns its
 * trainer state (the Trainer takes its counters, history and trackers from it).
 */
export async function restoreCheckpoint(model: TrainerModel, task: ModelTask, a: ResolvedArgs, from: string, world: number, totalSteps: number): Promise<TrainerState> {
  const dir = from === 'latest' ? latestCheckpoint(a.outputDir) : path.resolve(from);
  if (dir === null) throw new NodetuneError('ERR_STATE', `resumeFrom 'latest': ${a.outputDir} holds no complete checkpoint`, { field: 'resumeFrom' });
  const s = readTrainerState(dir);
  if ((s.worldSize ?? 1) !== world)
    throw new NodetuneError('ERR_STATE', `resumeFrom ${dir}: the checkpoint was written by a run of ${s.worldSize ?? 1} process(es); this run has ${world}, so the data shards would differ (resume with the same world size)`, { field: 'resumeFrom' });
  const withState = s.optimizer.stateSaved === true && savesState(model);
  if (!withState) checkExactResume(a, model.config, dir);
  if (s.seed !== a.seed || s.totalSteps !== totalSteps)
    throw new NodetuneError('ERR_STATE', `resumeFrom ${dir}: the checkpoint is of a run with seed ${s.seed} and ${s.totalSteps} steps; these args give seed ${a.seed} and ${totalSteps} steps, so the run would not continue exactly`, { field: 'resumeFrom' });
  await loadWeights(model, task, dir);
  if (withState) {
    await model.loadOptimizerState!(path.join(dir, OPTIMIZER_FILE));
    setRngState(new Uint8Array(fs.readFileSync(path.join(dir, RNG_FILE))));
  }
  if (s.lossScaler && typeof model.setLossScalerState === 'function') model.setLossScalerState(s.lossScaler);
  return s;
}
