/**
 * A small schema checker for the YAML configs: every error names the key path (`method.kind`) and, for a key or
 * value outside the schema, lists what is allowed.
 */
import { NodetuneError } from '../../errors';
import { didYouMean } from '../../util/suggest';

export type Spec =
  | { type: 'string'; required?: boolean; enum?: readonly string[] }
  | { type: 'number'; required?: boolean; min?: number; max?: number; integer?: boolean }
  | { type: 'boolean'; required?: boolean }
  | { type: 'strings'; required?: boolean; enum?: readonly string[] }
  | { type: 'map'; required?: boolean; keys?: readonly string[] }
  | { type: 'object'; required?: boolean; fields: Record<string, Spec> }
  | { type: 'any'; required?: boolean }
  | { type: 'oneOf'; required?: boolean; options: Spec[]; describe: string };

export class ConfigError extends NodetuneError {
  constructor(file: string, key: string, message: string) {
    super('ERR_CONFIG', `${file}: ${key}: ${message}`, { file, field: key });
  }
}

const show = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : JSON.stringify(v));

/** Checks `value` against `spec`; throws ConfigError naming `key` (a dotted path) in `file`. */
export function validate(value: unknown, spec: Spec, key: string, file: string): void {
  const fail = (message: string): never => {
    throw new ConfigError(file, key, message);
  };
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail(`must be a non-empty string, got ${show(value)}`);
      if (spec.enum && !spec.enum.includes(value as string)) fail(`must be one of ${spec.enum.join(', ')}; got ${show(value)}`);
      return;
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail(`must be a number, got ${show(value)}`);
      if (spec.integer && !Number.isInteger(value)) fail(`must be an integer, got ${value}`);
      if (spec.min !== undefined && value < spec.min) fail(`must be at least ${spec.min}, got ${value}`);
      if (spec.max !== undefined && value > spec.max) fail(`must be at most ${spec.max}, got ${value}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(`must be true or false, got ${show(value)}`);
      return;
    case 'strings': {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) return fail(`must be a list of strings, got ${show(value)}`);
      const bad = spec.enum ? value.find((v) => !spec.enum!.includes(v as string)) : undefined;
      if (bad !== undefined) fail(`${show(bad)} is not allowed; allowed: ${spec.enum!.join(', ')}`);
      return;
    }
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`must be a mapping, got ${show(value)}`);
      for (const [k, v] of Object.entries(value)) {
        if (spec.keys && !spec.keys.includes(k)) throw new ConfigError(file, `${key}.${k}`, `unknown key${didYouMean(k, spec.keys)}; allowed: ${spec.keys.join(', ')}`);
        if (typeof v !== 'string' || v.length === 0) throw new ConfigError(file, `${key}.${k}`, `must be a non-empty string, got ${show(v)}`);
      }
      return;
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(`must be a mapping, got ${show(value)}`);
      const allowed = Object.keys(spec.fields);
      for (const k of Object.keys(value)) if (!(k in spec.fields)) throw new ConfigError(file, key ? `${key}.${k}` : k, `unknown key${didYouMean(k, allowed, key ? `${key}.` : '')}; allowed: ${allowed.join(', ')}`);
      for (const [k, sub] of Object.entries(spec.fields)) {
        const v = (value as Record<string, unknown>)[k];
        const path = key ? `${key}.${k}` : k;
        if (v === undefined || v === null) {
          if (sub.required) throw new ConfigError(file, path, 'is required');
          continue;
        }
        validate(v, sub, path, file);
      }
      return;
    }
    case 'oneOf': {
      let inMapping: ConfigError | undefined;
      for (const option of spec.options) {
        try {
          validate(value, option, key, file);
          return;
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          if (option.type === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value)) inMapping = e;
        }
      }
      // A mapping where a mapping may stand: its own error names the key inside it.
      if (inMapping) throw inMapping;
      fail(`must be ${spec.describe}; got ${show(value)}`);
      return;
    }
    case 'any':
      return;
  }
}
