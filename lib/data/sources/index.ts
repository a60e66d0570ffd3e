/** One entry for every kind of data source: `readSource(spec, options)` streams examples from any of them. */
import { readExamples } from '../read';
import type { Example } from '../example';
import { httpName, readHttp } from './http';
import { postgresName, readPostgres } from './postgres';
import type { PostgresReadOptions } from './postgres';
import { classifySource } from './spec';
import type { SourceSpec } from './spec';
import { readStdin, readStream } from './stream';

export type SourceReadOptions = PostgresReadOptions;

/**
 * Streams the examples of a file, standard input (`-`), a URL, a PostgreSQL query or a caller's stream, each with
 * `source: { file: <the source's name>, line: <line, row or item number> }`. Options are readExamples' (format,
 * columns, task...), plus `onFetch` for queries.
 */
export function readSource(spec: SourceSpec, opts: SourceReadOptions = {}): AsyncGenerator<Example> {
  const s = classifySource(spec);
  switch (s.kind) {
    case 'file': return readExamples(s.path, opts);
    case 'stdin': return readStdin(opts);
    case 'http': return readHttp(s.http, opts);
    case 'postgres': return readPostgres(s.query, opts);
    case 'stream': return readStream(s.stream, opts);
  }
}

/** The name a source goes by in examples, notes and errors: never a password, a token or a query string. */
export function describeSource(spec: SourceSpec): string {
  const s = classifySource(spec);
  switch (s.kind) {
    case 'file': return s.path;
    case 'stdin': return 'stdin';
    case 'http': return httpName(s.http);
    case 'postgres': return postgresName(s.query);
    case 'stream': return s.stream.name ?? 'stream';
  }
}
