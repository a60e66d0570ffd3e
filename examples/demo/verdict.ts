/**
 * The demo's verdict: its fine-tuned model has to beat a ten-line classical baseline (multinomial naive Bayes,
 * lib/train/baseline.ts) on the held-out test set, or fine-tuning bought nothing the user could not have had for free.
 */
import { fmt } from '../../lib/cli/table';

export interface Scores {
  accuracy: number;
  macroF1: number;
}

/**
 * ok: the fine-tuned model's held-out accuracy is above the baseline's (a tie is not a win); text: what happened, for
 * the screen (the caller says OK, FAILED or "not judged").
 */
export function verdict(method: string, tuned: Scores, baseline: Scores): { ok: boolean; text: string } {
  const ok = tuned.accuracy > baseline.accuracy;
  const how = `held-out accuracy ${fmt(tuned.accuracy)} ${ok ? '>' : '<='} ${fmt(baseline.accuracy)}, macro-F1 ${fmt(tuned.macroF1)} vs ${fmt(baseline.macroF1)}`;
  return { ok, text: `${method} ${ok ? 'beat' : 'did not beat'} the naive Bayes baseline (${how})` };
}
