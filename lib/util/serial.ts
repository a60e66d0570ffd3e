/**
 * Serialises async calls on one native object: each call starts after the previous one settled,
 * whether it resolved or rejected. (The native side also locks, but queuing here keeps libuv's
 * worker threads free instead of parking them on a mutex.)
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** Number of calls queued or running. */
  get size(): number {
    return this.pending;
  }

  run<T>(call: () => Promise<T>): Promise<T> {
    this.pending += 1;
    const result = this.tail.then(call, call);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.pending -= 1;
    });
  }
}

/**
 * The caller's stack, captured synchronously when an async native call is made: native errors are created
 * on the event loop after the call returned, where the JS stack no longer shows who called.
 */
export function callerSite(caller: Function): string {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, caller);
  return (site.stack ?? '').split('\n').slice(1).join('\n');
}

/** Awaits `call`; a rejection's stack is replaced by the caller's (see callerSite). */
export async function withCallerStack<T>(site: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof Error && site) e.stack = `${e.name}: ${e.message}\n${site}`;
    throw e;
  }
}
