/**
 * Examples from a URL: JSONL, CSV, TSV or text streamed from the response body (Node's fetch), decoded line by line
 * as they arrive. A bearer token comes from the environment; messages name the URL without its query string or
 * credentials, which often hold secrets.
 */
import * as path from 'path';
import { NodetuneError } from '../../errors';
import { splitLines } from '../lines';
import { examplesFromLines, inferFormat } from '../read';
import type { DataFormat, ReadOptions } from '../read';
import type { Example } from '../example';
import { resolveSecret, scrub } from './secret';
import type { HttpSource } from './spec';
import { guarded } from './stream';

const TYPES: Record<string, DataFormat> = {
  'application/x-ndjson': 'jsonl', 'application/ndjson': 'jsonl', 'application/jsonl': 'jsonl', 'application/x-jsonlines': 'jsonl',
  'application/jsonlines': 'jsonl', 'text/csv': 'csv', 'text/tab-separated-values': 'tsv',
};
const HTML_TYPES = ['text/html', 'application/xhtml+xml'];

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new NodetuneError('ERR_ARGUMENT', 'url: not a valid URL', { field: 'url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new NodetuneError('ERR_ARGUMENT', `url: only http and https URLs are read, not ${url.protocol}`, { field: 'url' });
  return url;
}

/** The URL as messages show it: origin and path, without user, password, query string or fragment. */
const shown = (url: URL): string => `${url.protocol}//${url.host}${url.pathname}`;

export function httpName(spec: HttpSource): string {
  return shown(parseUrl(resolveSecret(spec.url, 'url')));
}

/** The format: given, else a specific Content-Type, else the URL's extension, else text for text/plain. */
function formatOf(name: string, url: URL, mediaType: string, given: DataFormat | undefined): DataFormat {
  if (given) return given;
  const byType = TYPES[mediaType];
  if (byType) return byType;
  if (path.extname(url.pathname) !== '') {
    try {
      return inferFormat(url.pathname);
    } catch {
      // an unknown extension: fall back on the media type below
    }
  }
  if (mediaType === 'text/plain') return 'text';
  throw new NodetuneError('ERR_ARGUMENT', `${name}: cannot tell the format from the Content-Type "${mediaType || '(none)'}" or the URL; give format: jsonl | csv | tsv | text | corpus | label-text`, { file: name, field: 'format' });
}

/** Streams the examples at a URL; `source` is `{ file: <the URL without query>, line }`. */
export async function* readHttp(spec: HttpSource, opts: ReadOptions = {}): AsyncGenerator<Example> {
  const url = parseUrl(resolveSecret(spec.url, 'url'));
  const name = shown(url);
  const token = spec.bearer !== undefined ? resolveSecret(spec.bearer, 'bearer') : undefined;
  // The query string, and each value long enough to be a signature or key (short ones would garble the messages).
  const secrets = [url.search.slice(1), ...[...url.searchParams.values()].filter((v) => v.length >= 8), url.password, token];
  const fail = (message: string, details: Record<string, unknown> = {}): NodetuneError =>
    new NodetuneError('ERR_DATA', scrub(`${name}: ${message}`, secrets), { file: name, ...details });
  const abort = new AbortController();
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal, redirect: 'follow' });
  } catch (e) {
    const err = e as Error & { cause?: Error };
    throw fail(`cannot fetch: ${err.cause?.message ?? err.message}`);
  }
  try {
    if (!res.ok) throw fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, { status: res.status });
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (HTML_TYPES.includes(mediaType)) {
      throw fail(`the server answered with an HTML page (Content-Type ${mediaType}), not data: a login or error page? Check the URL and the token`, { contentType: mediaType });
    }
    const format = formatOf(name, url, mediaType, spec.format ?? opts.format);
    if (!res.body) return;
    const body = guarded(name, res.body as AsyncIterable<Uint8Array>, 'the connection was lost', 'bytes');
    yield* examplesFromLines(name, splitLines(name, body), format, opts);
  } finally {
    // Stops the download when the consumer stops early or a row is malformed; a no-op once the body is read.
    abort.abort();
  }
}
