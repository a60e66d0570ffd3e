/**
 * LibTorch's random number generators: the ones that draw dropout masks and initialise new weights.
 * `manualSeed(n)` makes runs repeat (like torch.manual_seed); `rngState()` / `setRngState()` save and restore a
 * generator's exact state, so a checkpointed run resumes with the same dropout masks.
 */
import { check } from './errors';
import { native } from './native';

export function manualSeed(seed: number): void {
  check(Number.isSafeInteger(seed) && seed >= 0, `manualSeed(seed): seed must be a non-negative integer, got ${String(seed)}`, 'seed');
  native().manualSeed(seed);
}

/** The state of the generator of `device` ('cpu' by default) as bytes. */
export function rngState(device = 'cpu'): Uint8Array {
  return native().rngState(device);
}

/** Restores a state from rngState(). */
export function setRngState(state: Uint8Array, device = 'cpu'): void {
  check(state instanceof Uint8Array, 'setRngState(state): state must be the Uint8Array rngState() returned', 'state');
  native().setRngState(state, device);
}
