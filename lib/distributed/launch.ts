/**
 * Starts N local worker processes the way torchrun does: each gets MASTER_ADDR (127.0.0.1), MASTER_PORT (a free
 * port), RANK, LOCAL_RANK and WORLD_SIZE. When one worker fails, the others are stopped (SIGTERM, then SIGKILL
 * after a grace period), so a group never hangs on a dead member.
 */
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import { check } from '../errors';

export interface LaunchOptions {
  nproc: number;
  /** The program and its arguments, run once per rank (default: this Node.js). */
  command?: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  masterPort?: number;
  /** How long survivors get after a failure before SIGKILL (default 5 s). */
  graceMs?: number;
  /** 'inherit' (default) or 'pipe' (output collected in the result). */
  stdio?: 'inherit' | 'pipe';
}

export interface WorkerResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function launch(options: LaunchOptions): Promise<WorkerResult[]> {
  check(Number.isInteger(options.nproc) && options.nproc >= 1 && options.nproc <= 1024, `launch(): nproc must be a positive integer, got ${options.nproc}`, 'nproc');
  check(Array.isArray(options.args), 'launch(): args must be an array of strings', 'args');
  const port = options.masterPort ?? (await freePort());
  const grace = options.graceMs ?? 5000;
  const children: ChildProcess[] = [];
  const results: Promise<WorkerResult>[] = [];
  let failed = false;
  const stopOthers = () => {
    if (failed) return;
    failed = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, grace).unref();
  };
  for (let rank = 0; rank < options.nproc; rank++) {
    const env = {
      ...(options.env ?? process.env),
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(options.nproc),
    };
    const child = spawn(options.command ?? process.execPath, options.args, { env, stdio: options.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    results.push(new Promise((resolve) => {
      child.on('error', (e) => {
        stderr += String(e);
        stopOthers();
        resolve({ rank, code: 1, signal: null, stdout, stderr });
      });
      child.on('close', (code, signal) => {
        if (code !== 0) stopOthers();
        resolve({ rank, code, signal, stdout, stderr });
      });
    }));
  }
  return Promise.all(results);
}
