/**
 * Examples from a PostgreSQL query, read through a server-side cursor (pg + pg-cursor) a batch of rows at a time,
 * so memory stays bounded whatever the table's size. The connection string is resolved from the environment at
 * read time and never appears in a message: errors name the source as `postgres:<name>` or by host and database.
 */
import type { Client as PgClient } from 'pg';
import { NodetuneError, check } from '../../errors';
import { recordMapper } from '../read';
import type { ReadOptions } from '../read';
import type { Example } from '../example';
import { resolveSecret, scrub } from './secret';
import type { PostgresQuery } from './spec';

export const DEFAULT_BATCH_ROWS = 500;

/** A server error's five-character code (42P01: no such table); socket errors have others (ECONNREFUSED). */
const SQLSTATE = /^[0-9A-Z]{5}$/;

export interface PostgresReadOptions extends ReadOptions {
  /** Called after each fetch from the cursor with the number of rows it brought (progress, or checking the batching). */
  onFetch?: (rows: number) => void;
}

/** pg and pg-cursor load on first use: reading files never pays for them. */
function pg(): { Client: typeof PgClient; Cursor: typeof import('pg-cursor') } {
  return { Client: (require('pg') as typeof import('pg')).Client, Cursor: require('pg-cursor') as typeof import('pg-cursor') };
}

interface Connection {
  client: PgClient;
  name: string;
  secrets: string[];
}

/** A client for the query's server (not yet connected), the source's name, and the secrets to keep out of messages. */
function prepare(q: PostgresQuery): Connection {
  check(typeof q.query === 'string' && q.query.trim() !== '', 'postgres.query: a SQL query is required', 'postgres.query');
  const url = resolveSecret(q.url, 'postgres.url');
  // Only URLs: pg would take other text whole as a database name, and the name shown would then hold it.
  const invalid = (): NodetuneError => new NodetuneError('ERR_CONFIG',
    `postgres.url: not a connection URL (postgres://user:password@host:port/database or socket:/dir?db=database)${q.name ? ` for postgres:${q.name}` : ''}`, { field: 'postgres.url' });
  if (!/^(postgres(ql)?:\/\/|socket:)/i.test(url)) throw invalid();
  let client: PgClient;
  try {
    client = new (pg().Client)({ connectionString: url, connectionTimeoutMillis: q.connectTimeoutMs ?? 10_000 });
  } catch {
    throw invalid();
  }
  const name = `postgres:${q.name ?? `${client.host}:${client.port}/${client.database ?? ''}`}`;
  const password = typeof client.password === 'string' ? client.password : undefined;
  return { client, name, secrets: [url, ...(password ? [password] : [])] };
}

/** How a query source is named in examples and messages: its name, else host, port and database (never the password). */
export function postgresName(q: PostgresQuery): string {
  if (q.name !== undefined) return `postgres:${q.name}`;
  return prepare(q).name;
}

/** Dates become ISO strings (a text column); everything else stays as pg gives it (int8 and numeric as strings). */
function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(row)) if (v instanceof Date) row[k] = v.toISOString();
  return row;
}

/** Streams the rows of `q.query` as examples; `source` is `{ file: 'postgres:<name>', line: <row number, from 1> }`. */
export async function* readPostgres(q: PostgresQuery, opts: PostgresReadOptions = {}): AsyncGenerator<Example> {
  const batch = q.batchSize ?? DEFAULT_BATCH_ROWS;
  check(Number.isInteger(batch) && batch > 0, `postgres.batchSize must be a positive integer, got ${batch}`, 'postgres.batchSize');
  const { client, name, secrets } = prepare(q);
  const fail = (what: string, e: unknown, field?: string): NodetuneError => {
    const err = e as Error & { code?: string };
    const message = scrub(`${name}: ${what}: ${err.message || err.code || String(e)}`, secrets);
    return new NodetuneError('ERR_DATA', message, { file: name, ...(field ? { field } : {}), ...(typeof err.code === 'string' && SQLSTATE.test(err.code) ? { sqlState: err.code } : {}) });
  };
  // A connection lost between reads is reported here (an unhandled 'error' would end the process); the next read fails.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw fail('cannot connect', e);
  }
  const toExample = recordMapper(opts);
  const cursor = client.query(new (pg().Cursor)(q.query, q.params ?? []));
  let row = 0;
  let broken = false;
  try {
    for (;;) {
      let rows: Record<string, unknown>[];
      try {
        rows = await cursor.read(batch);
      } catch (e) {
        broken = true;
        throw row === 0 ? fail('the query failed', e, 'query') : fail(`reading stopped after row ${row}`, e);
      }
      opts.onFetch?.(rows.length);
      for (const r of rows) yield toExample(plainRow(r), { file: name, line: ++row });
      if (rows.length < batch) return;
    }
  } finally {
    // A cursor closed early (the consumer stopped) frees its portal; after an error the connection is only ended.
    if (!broken) await cursor.close().catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
