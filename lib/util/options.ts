/** Option objects of the public API: an unknown key is an ERR_ARGUMENT naming it, with the nearest known key. */
import { NodetuneError } from '../errors';
import { closest } from './suggest';

/** Every key of T, once: `optionKeys<GenerateOptions>({ maxNewTokens: true, ... })` fails to compile when one is missing or extra. */
export function optionKeys<T>(keys: Record<keyof T, true>): readonly string[] {
  return Object.keys(keys);
}

/** Throws ERR_ARGUMENT for the first key of `options` outside `known`: `${where}: unknown option 'dtyep'; did you mean 'dtype'? (known: ...)`. */
export function checkOptionKeys(options: unknown, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return;
  for (const k of Object.keys(options)) {
    if (known.includes(k)) continue;
    const near = closest(k, known);
    throw new NodetuneError('ERR_ARGUMENT', `${where}: unknown option '${k}'${near === undefined ? '' : ` (did you mean '${near}'?)`}; known: ${known.join(', ')}`, { field: k });
  }
}
