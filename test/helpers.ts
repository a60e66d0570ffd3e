import { AssertionError } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The repository root (tests run from dist/test). */
export const repoRoot = path.resolve(__dirname, '..', '..');

/** ../shared/assets beside the repository, or undefined when absent. */
export function sharedAssets(): string | undefined {
  const dir = path.resolve(repoRoot, '..', 'shared', 'assets');
  return fs.existsSync(dir) ? dir : undefined;
}

/** Folders made by tempDir, removed when the test process exits. */
const tempDirs: string[] = [];

/**
 * A fresh folder under the system's temporary directory, removed with everything in it when the test process exits
 * (they were left behind: 37,000 folders and 45 GB after a few weeks of runs on one machine filled its disk).
 */
export function tempDir(prefix = 'nodetune-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (tempDirs.length === 0) process.on('exit', removeTempDirs);
  tempDirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // A folder a test made unreadable or unwritable on purpose: left, as the system's temporary files are.
    }
  }
}

/** Awaits a promise that must reject, and returns the error. */
export async function rejects(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Calls a function that must throw, and returns the error. */
/** Runs fn with the environment variable `name` set to `value` (read by the native code at each call), then
 * puts back what was there. */
export async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

export function throws(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the call to throw, but it returned');
}

/** Absolute and relative tolerance of a float comparison: |actual - expected| <= atol + rtol * |expected|. */
export interface Tolerance {
  rtol?: number;
  atol?: number;
}

type Floats = number | ArrayLike<number> | readonly Floats[];

function flatten(x: Floats, out: number[] = []): number[] {
  if (typeof x === 'number') out.push(x);
  else if (Array.isArray(x)) for (const y of x as readonly Floats[]) flatten(y, out);
  else for (let i = 0; i < (x as ArrayLike<number>).length; i++) out.push((x as ArrayLike<number>)[i]!);
  return out;
}

/**
 * Asserts that two sets of floats agree in the relative L2 norm: ||actual - expected|| <= rtol * ||expected||. For
 * results of low-precision arithmetic (bfloat16) along two paths that sum in different orders: an element that is a
 * sum with cancellation can differ by far more than the rounding of the whole, while a wrong scale, cast or missing
 * term moves the norm. The message gives the relative error found.
 */
export function expectRelativeNorm(actual: Floats, expected: Floats, rtol: number, what = 'values'): number {
  const a = flatten(actual), e = flatten(expected);
  if (a.length !== e.length) throw new AssertionError(`${what}: length ${a.length} != expected length ${e.length}`);
  let diff = 0, norm = 0;
  for (let i = 0; i < a.length; i++) diff += (a[i]! - e[i]!) ** 2, norm += e[i]! ** 2;
  const rel = Math.sqrt(diff) / Math.sqrt(norm);
  if (!(rel <= rtol)) throw new AssertionError(`${what}: relative L2 error ${rel} > ${rtol} (${a.length} values)`);
  return rel;
}

/**
 * Asserts that floats computed by two different code paths (batched vs single, fused vs reference, another machine's
 * oracle, ...) agree within a tolerance: |actual - expected| <= atol + rtol * |expected| element-wise (numbers, typed
 * arrays or nested arrays of the same length). The message names the first mismatching index, both values and the
 * largest difference. NaN never matches. Use exact equality only where the very same computation is repeated.
 */
export function expectClose(actual: Floats, expected: Floats, tol: Tolerance, what = 'values'): void {
  const a = flatten(actual), e = flatten(expected);
  const { rtol = 0, atol = 0 } = tol;
  if (a.length !== e.length) throw new AssertionError(`${what}: length ${a.length} != expected length ${e.length}`);
  let first = -1, worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - e[i]!);
    if (!(d <= atol + rtol * Math.abs(e[i]!))) {
      if (first < 0) first = i;
      worst = Math.max(worst, Number.isNaN(d) ? Infinity : d);
    }
  }
  if (first >= 0) {
    throw new AssertionError(`${what}: [${first}] = ${a[first]} != ${e[first]} within rtol ${rtol}, atol ${atol} ` +
      `(|diff| ${Math.abs(a[first]! - e[first]!)}; largest ${worst}; ${a.length} values)`);
  }
}
