/** `nodetune train`'s leakage check: train against validation/test as `data.leakage` says, a note, and the leaked rows dropped on request. */
import { describeLeakage, dropLeaked, findLeakage } from '../data/leakage';
import type { Example } from '../data';
import { leakageConfig } from './config/privacy';
import type { DataConfig } from './config/schema';

export function checkLeakage(train: Example[], validation: Example[] | null, test: Example[] | null, d: DataConfig, notes: string[]): Example[] {
  const leak = leakageConfig(d);
  if (!leak.check || !(validation?.length || test?.length)) return train;
  const report = findLeakage({ train, validation, test }, leak.options);
  notes.push(describeLeakage(report));
  if (!leak.drop || report.leakedTrainRows.length === 0) return train;
  const kept = dropLeaked(train, report);
  notes.push(`leakage: dropped ${train.length - kept.length} train rows that match validation/test rows; ${kept.length} left`);
  return kept;
}
