/**
 * The demo's verdict. It passes when the pipeline ran end to end and the fine-tuned model improved on the held-out
 * test set over its state before training (the base with a fresh classification head). Beside that it says, either
 * way, whether it beat a ten-line classical baseline (multinomial naive Bayes, lib/train/baseline.ts): on the demo's
 * tiny base the fine-tuned model is ahead at most seeds but by a few emails at most and behind at some, a margin that
 * the seed and the CPU's rounding decide (README, "How wide the margin is"), so it is reported honestly rather than
 * made the exit status of a command every user runs first.
 */
import { fmt } from '../../lib/cli/table';

export interface Scores {
  accuracy: number;
  macroF1: number;
}

/**
 * ok: held-out accuracy after training is above the accuracy before (a tie is no improvement); ahead: it is also
 * above the baseline's; text: what happened, for the screen (the caller says OK or FAILED, or "not judged").
 */
export function verdict(method: string, tuned: { before: Scores; after: Scores }, baseline: Scores): { ok: boolean; ahead: boolean; text: string } {
  const { before, after } = tuned;
  const ok = after.accuracy > before.accuracy;
  const ahead = after.accuracy > baseline.accuracy;
  const trained = `${method} ${ok ? 'improved' : 'did not improve'} held-out accuracy ${fmt(before.accuracy)} -> ${fmt(after.accuracy)}`;
  const vs = `${fmt(after.accuracy)} ${ahead ? '>' : '<='} ${fmt(baseline.accuracy)}, macro-F1 ${fmt(after.macroF1)} vs ${fmt(baseline.macroF1)}`;
  return { ok, ahead, text: `${trained}; against the naive Bayes baseline: ${ahead ? 'ahead' : 'behind'} (${vs})` };
}
