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

export function tempDir(prefix = 'nodetune-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
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
export function throws(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the call to throw, but it returned');
}
