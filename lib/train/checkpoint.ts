/**
 * Trainer checkpoints: `checkpoint-<step>/` holding the weights (Hugging Face layout) and `trainer_state.json`,
 * written into a temporary directory and renamed into place, so a crash mid-save leaves the previous checkpoint
 * intact; rotation by saveTotalLimit that never deletes the best checkpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodetuneError } from '../errors';

export const STATE_FILE = 'trainer_state.json';
const PREFIX = 'checkpoint-';

export interface LogRecord {
  step: number;
  epoch: number;
  [key: string]: number | string | null | undefined;
}

/** What the TypeScript side owns of a run, enough to continue it. */
export interface TrainerState {
  version: 1;
  globalStep: number;
  /** Fractional epoch (epochs completed + share of the current one). */
  epoch: number;
  /** Data position: the epoch in progress and the micro-batches of it already consumed. */
  epochIndex: number;
  batchInEpoch: number;
  /** The batch order of epoch e is a shuffle seeded with seed + e. */
  seed: number;
  totalSteps: number;
  bestMetric: number | null;
  bestCheckpoint: string | null;
  logHistory: LogRecord[];
  plateau: unknown;
  earlyStopping: unknown;
  /** The optimizer; with stateSaved, its state is in optimizer.pt and the random generator's in rng_state.bin. */
  optimizer: { type: string; momentum: number; stateSaved: boolean };
  /** Data-parallel ranks that wrote it (1 for a single process); a resume needs the same number. */
  worldSize?: number;
  /** The dynamic loss scaler (float16 training), when the model has one. */
  lossScaler?: { scale: number; goodSteps: number; growthInterval: number };
  /** The user's training args, as given. */
  args: Record<string, unknown>;
}

export function checkpointName(step: number): string {
  return `${PREFIX}${step}`;
}

/** checkpoint-<step> directories under `outputDir`, oldest first (by step). */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs.readdirSync(outputDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^checkpoint-\d+$/.test(d.name))
    .map((d) => ({ step: Number(d.name.slice(PREFIX.length)), dir: path.join(outputDir, d.name) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint (one with a trainer_state.json), or null. */
export function latestCheckpoint(outputDir: string): string | null {
  const all = listCheckpoints(outputDir).filter((c) => fs.existsSync(path.join(c.dir, STATE_FILE)));
  return all.length ? all[all.length - 1]!.dir : null;
}

export interface SaveHooks {
  /** Called after the weights are written into the temporary directory, before the state file and the rename (fault injection). */
  afterWeights?: (tmpDir: string) => void | Promise<void>;
}

/**
 * Writes checkpoint-<step> atomically: `writeWeights(tmp)` fills a temporary directory, trainer_state.json is
 * added, then the directory is renamed into place. On any error the temporary directory is removed and the
 * previous checkpoints are untouched.
 */
export async function saveCheckpoint(outputDir: string, state: TrainerState, writeWeights: (dir: string) => Promise<void>, hooks: SaveHooks = {}): Promise<string> {
  fs.mkdirSync(outputDir, { recursive: true });
  const final = path.join(outputDir, checkpointName(state.globalStep));
  const tmp = path.join(outputDir, `.tmp-${checkpointName(state.globalStep)}-${process.pid}-${Date.now()}`);
  try {
    fs.mkdirSync(tmp);
    await writeWeights(tmp);
    if (hooks.afterWeights) await hooks.afterWeights(tmp);
    const json = JSON.stringify({ ...state, bestCheckpoint: state.bestCheckpoint && path.basename(state.bestCheckpoint) }, null, 2) + '\n';
    const fd = fs.openSync(path.join(tmp, STATE_FILE), 'w');
    try {
      fs.writeSync(fd, json);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (fs.existsSync(final)) {
      const old = `${tmp}-replaced`;
      fs.renameSync(final, old);
      fs.renameSync(tmp, final);
      fs.rmSync(old, { recursive: true, force: true });
    } else fs.renameSync(tmp, final);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof NodetuneError) throw e;
    throw new NodetuneError('ERR_IO', `saving ${final} failed: ${(e as Error).message}; the previous checkpoints are intact`, { file: final });
  }
  return final;
}

/**
 * Deletes the oldest checkpoints beyond `limit`, never `keep` (the best one) nor the newest (to resume from): with
 * limit 1 and a best checkpoint that is not the newest, both stay, as in transformers. Returns the deleted directories.
 */
export function rotateCheckpoints(outputDir: string, limit: number, keep: string | null): string[] {
  const all = listCheckpoints(outputDir);
  const protect = new Set([keep ? path.basename(keep) : '', all.length ? path.basename(all[all.length - 1]!.dir) : '']);
  protect.delete('');
  let excess = all.length - Math.max(limit, protect.size);
  const deleted: string[] = [];
  for (const c of all) {
    if (excess <= 0) break;
    if (protect.has(path.basename(c.dir))) continue;
    fs.rmSync(c.dir, { recursive: true, force: true });
    deleted.push(c.dir);
    excess -= 1;
  }
  return deleted;
}

/** Reads and checks checkpoint-<step>/trainer_state.json. */
export function readTrainerState(dir: string): TrainerState {
  const file = path.join(dir, STATE_FILE);
  if (!fs.existsSync(file)) throw new NodetuneError('ERR_CHECKPOINT', `${dir}: not a trainer checkpoint (no ${STATE_FILE})`, { file });
  let s: TrainerState;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8')) as TrainerState;
  } catch (e) {
    throw new NodetuneError('ERR_CHECKPOINT', `${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  const ints: (keyof TrainerState)[] = ['globalStep', 'epochIndex', 'batchInEpoch', 'seed', 'totalSteps'];
  for (const k of ints) if (!Number.isSafeInteger(s[k])) throw new NodetuneError('ERR_CHECKPOINT', `${file}: ${k} must be an integer, got ${JSON.stringify(s[k])}`, { file, field: k });
  if (s.version !== 1) throw new NodetuneError('ERR_CHECKPOINT', `${file}: unsupported version ${JSON.stringify(s.version)}`, { file, field: 'version' });
  if (!Array.isArray(s.logHistory)) throw new NodetuneError('ERR_CHECKPOINT', `${file}: logHistory must be an array`, { file, field: 'logHistory' });
  if (s.bestCheckpoint) s.bestCheckpoint = path.join(path.dirname(dir), s.bestCheckpoint);
  return s;
}
