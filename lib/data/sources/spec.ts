/**
 * Where examples come from: a file path, `-` (standard input), a URL, a PostgreSQL query, or a stream the caller
 * owns. Secrets (a connection string, a bearer token) are written `env:NAME` and read from the environment only
 * when the source is read, so a spec can be logged or saved without them.
 */
import type { Readable } from 'stream';
import { NodetuneError } from '../../errors';
import type { DataFormat } from '../read';

export interface PostgresQuery {
  /** `env:DATABASE_URL` (read from the environment when the query runs), or a connection string. */
  url: string;
  /** The SQL query; its columns map onto example fields as a file's do (`columns`). */
  query: string;
  /** Values of `$1`, `$2`, ... in the query. */
  params?: Array<string | number | boolean | null>;
  /** How examples and errors name the source: `postgres:<name>` (default: `postgres:<host>:<port>/<database>`). */
  name?: string;
  /** Rows fetched per round trip through the server-side cursor (default 500). */
  batchSize?: number;
  /** Give up connecting after this long (default 10000 ms). */
  connectTimeoutMs?: number;
}

export interface PostgresSource {
  postgres: PostgresQuery;
}

export interface HttpSource {
  /** An http(s) URL, or `env:NAME` holding one. */
  url: string;
  /** `env:DATA_TOKEN` (or the token itself): sent as `Authorization: Bearer <token>`. */
  bearer?: string;
  /** Default: from the Content-Type, else from the URL's extension. */
  format?: DataFormat;
}

/** One item of a caller's stream: a record (one example), a line, or bytes of a JSONL/CSV/text stream. */
export type StreamItem = Record<string, unknown> | string | Uint8Array;

export interface StreamSource {
  /**
   * A byte stream (a Readable not in object mode: a socket, a child's stdout, a file) cut into lines; or an object
   * stream / async iterable whose items are records (objects), lines (strings) or byte chunks, one kind throughout.
   */
  stream: Readable | AsyncIterable<StreamItem> | Iterable<StreamItem>;
  /** How examples and errors name the source (default `stream`). */
  name?: string;
  /** The format of lines and bytes (default `jsonl`); records need none. */
  format?: DataFormat;
}

/** A file path, `-` for standard input, an http(s) URL, or one of the objects above. */
export type SourceSpec = string | PostgresSource | HttpSource | StreamSource;

/** A spec sorted by kind, with what each reader takes. */
export type Classified =
  | { kind: 'file'; path: string }
  | { kind: 'stdin' }
  | { kind: 'http'; http: HttpSource }
  | { kind: 'postgres'; query: PostgresQuery }
  | { kind: 'stream'; stream: StreamSource };

export const STDIN = '-';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const isHttpUrl = (s: string): boolean => /^https?:\/\//i.test(s);

export function classifySource(spec: SourceSpec): Classified {
  if (typeof spec === 'string' && spec.length > 0) {
    if (spec === STDIN) return { kind: 'stdin' };
    return isHttpUrl(spec) ? { kind: 'http', http: { url: spec } } : { kind: 'file', path: spec };
  }
  if (isObject(spec)) {
    if (isObject(spec.postgres)) return { kind: 'postgres', query: (spec as PostgresSource).postgres };
    if (typeof spec.stream === 'object' && spec.stream !== null) return { kind: 'stream', stream: spec as StreamSource };
    if (typeof spec.url === 'string') return { kind: 'http', http: spec as HttpSource };
  }
  throw new NodetuneError('ERR_ARGUMENT',
    'a data source is a file path, "-" (standard input), an http(s) URL, { url, bearer?, format? }, { postgres: { url, query } } or { stream }',
    { field: 'source' });
}
