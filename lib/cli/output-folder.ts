/** `nodetune train` (and `launch`) refuse to write a run into a folder that already holds one, unless --overwrite. */
import * as fs from 'fs';
import type { TrainConfig } from './config/schema';
import { UsageError } from './usage';

/** Throws unless `c.output` is absent or empty, `overwrite` is set, or the run resumes from a checkpoint (which lives there). */
export function checkOutputFolder(c: TrainConfig, overwrite: boolean): void {
  if (overwrite || c.training.resumeFrom !== undefined) return;
  if (!fs.existsSync(c.output)) return;
  if (fs.statSync(c.output).isDirectory() && fs.readdirSync(c.output).length === 0) return;
  throw new UsageError(`output ${c.output} already exists and is not empty (an earlier run?); pass --overwrite to write this run into it ` +
    '(files of the same name are replaced), or choose another folder with --output DIR');
}
