/** Command-line options: util.parseArgs, with "did you mean" for an unknown option. */
import { parseArgs } from 'util';
import type { ParseArgsConfig } from 'util';
import { didYouMean } from '../util/suggest';
import { UsageError } from './usage';
import { FORMAT_NAMES } from '../data/read';
import type { DataFormat } from '../data/read';

/** parseArgs (strict); an unknown `--opt` is a UsageError naming the nearest option of the command. */
export function parseCliArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    const error = e as Error & { code?: string };
    const unknown = /^Unknown option '(--?)([^']+)'/.exec(error.message);
    if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || !unknown) throw e;
    const names = Object.keys(config.options ?? {});
    throw new UsageError(`unknown option ${unknown[1]}${unknown[2]}${didYouMean(unknown[2]!, names, '--')}; options: ${names.map((n) => `--${n}`).join(', ')}`);
  }
}

/** --format of eval, predict and tokenize: one of the data formats (default: from the file's extension). */
export function formatOption(value: string | undefined): DataFormat | undefined {
  if (value === undefined) return undefined;
  if (!(FORMAT_NAMES as readonly string[]).includes(value))
    throw new UsageError(`--format must be one of ${FORMAT_NAMES.join(', ')}; got ${JSON.stringify(value)}${didYouMean(value, FORMAT_NAMES)}`);
  return value as DataFormat;
}
