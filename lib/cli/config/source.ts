/**
 * The data sources of a config (data.train / validation / test): a file path, `-`, a URL, { url, bearer?, format? }
 * or { postgres: { url, query, ... } }. Secrets must come from the environment (`env:NAME`, checked to be set here);
 * one written in the config is used, with a warning, and never printed or written to the run folder.
 */
import { envName } from '../../data/sources/secret';
import { STDIN } from '../../data/sources/spec';
import type { DataConfig } from './schema';
import { FORMATS } from './schema';
import { ConfigError, validate } from './validate';
import type { Spec } from './validate';

const posInt: Spec = { type: 'number', integer: true, min: 1 };

const POSTGRES: Spec = {
  type: 'object', fields: {
    postgres: {
      type: 'object', required: true, fields: {
        url: { type: 'string', required: true }, query: { type: 'string', required: true }, params: { type: 'any' },
        name: { type: 'string' }, batchSize: posInt, connectTimeoutMs: posInt,
      },
    },
  },
};

const HTTP: Spec = { type: 'object', fields: { url: { type: 'string', required: true }, bearer: { type: 'string' }, format: { type: 'string', enum: FORMATS } } };

const KINDS = 'a file path, "-" (standard input), an http(s) URL, { url, bearer?, format? } or { postgres: { url, query } }';

/** An `env:NAME` reference must name a set variable; returns whether `value` is one. */
function checkEnv(value: string, key: string, file: string): boolean {
  const name = envName(value);
  if (name !== null && !process.env[name]) throw new ConfigError(file, key, `the environment variable ${name} is not set`);
  return name !== null;
}

/** A secret: from the environment, or written in the config (allowed, with a warning). */
function checkSecret(value: string, key: string, file: string, advice: string): void {
  if (checkEnv(value, key, file)) return;
  process.emitWarning(`${file}: ${key}: a secret written in the config is used as given (it is never printed nor written to the run folder); prefer ${advice}`,
    { code: 'NODETUNE_SECRET_IN_CONFIG' });
}

/** Checks one source; every error names the key path inside it (data.train.postgres.query). */
export function validateSource(value: unknown, key: string, file: string): void {
  if (typeof value === 'string') {
    if (value.length === 0) throw new ConfigError(file, key, `must be ${KINDS}; got ""`);
    return;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'postgres' in value) {
    validate(value, POSTGRES, key, file);
    const q = (value as { postgres: { url: string; params?: unknown } }).postgres;
    const params = q.params;
    if (params !== undefined && (!Array.isArray(params) || params.some((p) => p !== null && !['string', 'number', 'boolean'].includes(typeof p)))) {
      throw new ConfigError(file, `${key}.postgres.params`, 'must be a list of values (strings, numbers, booleans or null) for $1, $2, ...');
    }
    checkSecret(q.url, `${key}.postgres.url`, file, 'url: env:DATABASE_URL');
    return;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'url' in value) {
    validate(value, HTTP, key, file);
    const h = value as { url: string; bearer?: string };
    checkEnv(h.url, `${key}.url`, file);
    if (h.bearer !== undefined) checkSecret(h.bearer, `${key}.bearer`, file, 'bearer: env:DATA_TOKEN');
    return;
  }
  throw new ConfigError(file, key, `must be ${KINDS}`);
}

/** All of data's sources; standard input can feed one of them only. */
export function validateSources(d: DataConfig, file: string): void {
  const given = (['train', 'validation', 'test'] as const).filter((k) => d[k] !== undefined);
  for (const k of given) validateSource(d[k], `data.${k}`, file);
  const stdin = given.filter((k) => d[k] === STDIN);
  if (stdin.length > 1) throw new ConfigError(file, `data.${stdin[1]}`, `standard input ("-") can be read once only, and data.${stdin[0]} reads it already`);
}
