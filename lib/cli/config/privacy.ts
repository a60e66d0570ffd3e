/** The config's privacy keys: `data.clean.pii` → PiiOptions (checked at load, salt included), `data.leakage` → what train checks. */
import { NodetuneError } from '../../errors';
import { PiiScrubber } from '../../data/pii/scrub';
import type { PiiOptions } from '../../data/pii/scrub';
import type { LeakageOptions } from '../../data/leakage';
import type { DataConfig } from './schema';
import { ConfigError } from './validate';

/** `pii: true` masks every type; false or absent: no scrubbing. */
export function piiOptions(d: DataConfig): PiiOptions | undefined {
  const p = d.clean?.pii;
  return p === undefined || p === false ? undefined : p === true ? {} : p;
}

export interface LeakageConfig {
  check: boolean;
  drop: boolean;
  options: LeakageOptions;
}

/** Checked by default; `leakage: false` or `{ check: false }` turns it off. */
export function leakageConfig(d: DataConfig): LeakageConfig {
  const l = d.leakage;
  if (l === undefined || typeof l === 'boolean') return { check: l !== false, drop: false, options: {} };
  return {
    check: l.check !== false, drop: l.drop === true,
    options: { ...(l.nearDuplicates !== undefined ? { nearDuplicates: l.nearDuplicates } : {}), ...(l.nearDuplicateThreshold !== undefined ? { threshold: l.nearDuplicateThreshold } : {}) },
  };
}

/** Builds the scrubber once at load time, so a bad region or an unset salt variable is a config error naming its key. */
export function validatePrivacy(d: DataConfig, file: string): void {
  const pii = piiOptions(d);
  if (!pii) return;
  try {
    new PiiScrubber(pii);
  } catch (e) {
    if (!(e instanceof NodetuneError) || e.code !== 'ERR_ARGUMENT') throw e;
    throw new ConfigError(file, `data.clean.${String(e.details.field ?? 'pii')}`, e.message.replace(/^pii[\w.]*:? /, ''));
  }
}
