/**
 * Bench scripts that measure each case in a process of its own (so each peak RSS is that case's alone): the script
 * starts itself with `--child <case> ...` and reads the last JSON line the child prints.
 */
import { spawnSync } from 'child_process';

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
