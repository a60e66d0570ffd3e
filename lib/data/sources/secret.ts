/** Secrets of a data source: `env:NAME` references resolved at read time, and messages scrubbed of the values. */
import { NodetuneError } from '../../errors';

const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

/** The variable an `env:NAME` reference names, or null for a value given as is. */
export function envName(value: string): string | null {
  return ENV_REF.exec(value)?.[1] ?? null;
}

/** The value of `env:NAME` from the environment (ERR_CONFIG naming `field` and the variable when unset), or `value` itself. */
export function resolveSecret(value: string, field: string): string {
  const name = envName(value);
  if (name === null) return value;
  const v = process.env[name];
  if (v === undefined || v === '') throw new NodetuneError('ERR_CONFIG', `${field}: the environment variable ${name} is not set (${field} is env:${name})`, { field });
  return v;
}

/** `text` with every occurrence of each secret (and of its URL-encoded form) replaced by `<redacted>`. */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (s === undefined || s.length < 3) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('<redacted>');
  }
  return out;
}
