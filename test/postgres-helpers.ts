/**
 * A real PostgreSQL server for the data-source tests: initdb in a temporary folder, started by pg_ctl on a free
 * loopback port (password auth, scram-sha-256, on TCP) and stopped afterwards. As root, the server runs as the
 * `postgres` system user (initdb refuses root). Where it cannot start, `startPostgres` says why, for a skip.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { promisify } from 'util';
import { Client } from 'pg';
import { tempDir } from './helpers';

const run = promisify(execFile);

export interface PgServer {
  port: number;
  user: string;
  password: string;
  /** A connection string for `database` (user, password, 127.0.0.1:port); `extra` is appended as query parameters. */
  url(database?: string, extra?: string): string;
  /** Runs SQL as the superuser on `database` (default `nodetune`). */
  sql(text: string, params?: unknown[], database?: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

function binDir(): string | null {
  const fromEnv = process.env.NODETUNE_PG_BIN;
  if (fromEnv) return fs.existsSync(path.join(fromEnv, 'initdb')) ? fromEnv : null;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (fs.existsSync(path.join(root, v, 'bin', 'initdb'))) return path.join(root, v, 'bin');
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a server, or returns the reason it cannot (binaries missing, no `postgres` user as root, initdb failed). */
export async function startPostgres(): Promise<PgServer | string> {
  const bin = binDir();
  if (!bin) return 'PostgreSQL server binaries not found (initdb, pg_ctl): apt-get install postgresql, or set NODETUNE_PG_BIN';
  const asRoot = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | null = null;
  if (asRoot) {
    try {
      const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
      owner = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
    } catch {
      return 'running as root and there is no "postgres" system user to run the server as (initdb refuses root)';
    }
  }
  const dir = tempDir('nodetune-pg-');
  const data = path.join(dir, 'data');
  const user = 'nodetune';
  const password = `pw-${Math.random().toString(36).slice(2, 10)}-Secret`;
  fs.writeFileSync(path.join(dir, 'pw'), password + '\n');
  if (owner) {
    fs.chmodSync(dir, 0o700);
    fs.chownSync(dir, owner.uid, owner.gid);
    fs.chownSync(path.join(dir, 'pw'), owner.uid, owner.gid);
  }
  const as = (cmd: string, args: string[]) => (owner ? run('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]) : run(path.join(bin, cmd), args));
  const port = await freePort();
  try {
    await as('initdb', ['-D', data, '-U', user, `--pwfile=${path.join(dir, 'pw')}`, '--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '-E', 'UTF8', '--locale=C']);
    await as('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  } catch (e) {
    const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8').slice(-500) : '';
    fs.rmSync(dir, { recursive: true, force: true });
    return `PostgreSQL did not start: ${(e as Error).message.split('\n')[0]} ${log}`;
  }
  const url = (database = 'nodetune', extra = ''): string =>
    `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}${extra ? `?${extra}` : ''}`;
  const sql = async (text: string, params: unknown[] = [], database = 'nodetune'): Promise<Record<string, unknown>[]> => {
    const c = new Client({ connectionString: url(database) });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  await sql('CREATE DATABASE nodetune', [], 'postgres');
  const stop = async (): Promise<void> => {
    await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { port, user, password, url, sql, stop };
}
