/**
 * Bench scripts that measure each case in a process of its own (so each peak RSS is that case's alone): the script
 * starts itself with `--child <case> ...` and reads the last JSON line the child prints.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';

/**
 * This process's peak resident set (KiB). On Linux, VmHWM of /proc/self/status: getrusage's maxRSS (Node's
 * process.resourceUsage().maxRSS) keeps the parent's resident set of the moment it forked across exec, so a child
 * started by a parent holding a 2.5 GB model reported 2.5 GB whatever it used itself (measured: 1,434 MiB against
 * 39 MiB for a child of a parent holding 1.5 GB).
 */
export function peakRssKb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: getrusage's figure
  }
  return process.resourceUsage().maxRSS;
}

/** Runs `node <file> --child <name> ...args` and returns the last line of its output, parsed. */
export function runChild<T>(file: string, name: string, args: string[]): T {
  const r = spawnSync(process.execPath, [file, '--child', name, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** In a child (`--child <name> ...args`): runs `child(name, args)` and returns true; in the parent: false. */
export function asChild(child: (name: string, args: string[]) => Promise<void>): boolean {
  if (process.argv[2] !== '--child') return false;
  child(process.argv[3]!, process.argv.slice(4)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
  return true;
}
