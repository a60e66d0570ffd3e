/**
 * Examples from a stream the caller owns (standard input, a socket, an object stream, any async iterable): bytes
 * are cut into lines and parsed in `format`, strings are lines, objects are records.
 */
import { Readable } from 'stream';
import { NodetuneError } from '../../errors';
import { splitLines } from '../lines';
import type { Line } from '../lines';
import { examplesFromLines, recordMapper } from '../read';
import type { ReadOptions } from '../read';
import type { Example } from '../example';
import type { StreamItem, StreamSource } from './spec';

/**
 * Passes `items` through, turning a failure of the stream itself (a reset connection, a destroyed stream) into an
 * ERR_DATA that names the source and how far it got; errors that are already typed pass unchanged.
 */
export async function* guarded<T>(name: string, items: AsyncIterable<T>, failure: string, unit: 'bytes' | 'items'): AsyncGenerator<T> {
  let done = 0;
  const iterator = items[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (e) {
        if (e instanceof NodetuneError) throw e;
        const err = e as Error & { cause?: Error };
        const why = err.cause?.message ? `${err.message} (${err.cause.message})` : err.message;
        throw new NodetuneError('ERR_DATA', `${name}: ${failure} after ${done} ${unit}: ${why}`, { file: name });
      }
      if (next.done) return;
      const v = next.value;
      done += unit === 'items' ? 1 : typeof v === 'string' ? Buffer.byteLength(v) : (v as Uint8Array).byteLength;
      yield v;
    }
  } finally {
    await iterator.return?.();
  }
}

type Kind = 'record' | 'line' | 'bytes';

const WHAT: Record<Kind, string> = { record: 'a record (an object)', line: 'a line (a string)', bytes: 'bytes' };

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : v instanceof Uint8Array ? 'bytes' : typeof v);

function kindOf(item: unknown): Kind | null {
  if (typeof item === 'string') return 'line';
  if (item instanceof Uint8Array) return 'bytes';
  if (typeof item === 'object' && item !== null && !Array.isArray(item)) return 'record';
  return null;
}

function asAsync<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> {
  if (Symbol.asyncIterator in items) return items;
  return (async function* () {
    yield* items;
  })();
}

/** Items of one kind (the first item's); an item of another kind is ERR_DATA naming its position. */
async function* ofKind<T>(name: string, items: AsyncIterable<unknown>, kind: Kind, map: (item: never, n: number) => T): AsyncGenerator<T> {
  let n = 0;
  for await (const item of items) {
    n++;
    if (kindOf(item) !== kind) {
      throw new NodetuneError('ERR_DATA', `${name}:${n}: expected ${WHAT[kind]} like the first item, got ${describe(item)}`, { file: name, line: n });
    }
    yield map(item as never, n);
  }
}

const toLine = (text: string, line: number): Line => ({ text: text.endsWith('\n') ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text, line });

/** Streams the examples of a caller's stream; `source.file` is the stream's name, `source.line` the line or record number. */
export async function* readStream(spec: StreamSource, opts: ReadOptions = {}): AsyncGenerator<Example> {
  const name = spec.name ?? 'stream';
  const format = spec.format ?? opts.format ?? 'jsonl';
  const s = spec.stream;
  const byteStream = s instanceof Readable && !s.readableObjectMode;
  const items = guarded(name, asAsync<unknown>(s), 'the stream failed', byteStream ? 'bytes' : 'items');
  try {
    // The first item tells records, lines and bytes apart; it is then read again with the rest.
    const first = await items.next();
    if (first.done) return;
    const all = (async function* () {
      yield first.value;
      yield* items;
    })();
    if (byteStream) {
      // A byte stream; with an encoding set it yields strings, which are chunks here, not lines.
      yield* examplesFromLines(name, splitLines(name, bytes(all)), format, opts);
      return;
    }
    const kind = kindOf(first.value);
    if (kind === 'record') {
      const toExample = recordMapper(opts);
      yield* ofKind(name, all, kind, (row: Record<string, unknown>, n) => toExample(row, { file: name, line: n }));
    } else if (kind === 'line') {
      yield* examplesFromLines(name, ofKind(name, all, kind, toLine), format, opts);
    } else if (kind === 'bytes') {
      yield* examplesFromLines(name, splitLines(name, ofKind(name, all, kind, (b: Uint8Array) => b)), format, opts);
    } else {
      throw new NodetuneError('ERR_DATA', `${name}:1: a stream yields records (objects), lines (strings) or bytes, got ${describe(first.value)}`, { file: name, line: 1 });
    }
  } finally {
    await items.return(undefined);
  }
}

async function* bytes(chunks: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const c of chunks) yield typeof c === 'string' ? Buffer.from(c, 'utf8') : (c as Uint8Array);
}

/** Standard input (`-`): a byte stream, JSONL unless `format` says otherwise. */
export function readStdin(opts: ReadOptions = {}): AsyncGenerator<Example> {
  return readStream({ stream: process.stdin, name: 'stdin' }, opts);
}
