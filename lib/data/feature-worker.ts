/**
 * Worker thread body for FeaturePool: loads the tokenizer once, then formats batches of examples for a task.
 * Runs only inside a worker (started by workers.ts).
 */
import { parentPort, workerData } from 'worker_threads';
import { NodetuneError } from '../errors';
import { AutoTokenizer } from '../tokenizers/auto';
import type { Example } from './example';
import { featurizeFor } from './featurize';
import type { FeaturizeOptions } from './featurize';
import type { PoolInit } from './workers';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('feature-worker must run in a worker thread');
  const init = workerData as PoolInit;
  const tok = await AutoTokenizer.fromPretrained(init.tokenizerDir, {
    config: init.config,
    ...(init.chatTemplate !== undefined ? { chatTemplate: init.chatTemplate } : {}),
  });
  const opts: FeaturizeOptions = init.options;
  port.on('message', (msg: { id: number; examples: Example[] }) => {
    featurizeFor(tok, opts, msg.examples).then(
      (features) => port.postMessage({ id: msg.id, features }),
      (e: unknown) => {
        const err = e as Error;
        port.postMessage({
          id: msg.id,
          error: { message: err.message, code: e instanceof NodetuneError ? e.code : undefined, details: e instanceof NodetuneError ? e.details : undefined },
        });
      },
    );
  });
  port.postMessage({ ready: true });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ failed: (e as Error).message, code: e instanceof NodetuneError ? e.code : undefined });
});
