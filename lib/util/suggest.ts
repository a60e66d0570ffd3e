/** "Did you mean ...?": the known name closest to a misspelt one (Levenshtein distance, case-insensitive). */

/** Levenshtein distance: insertions, deletions and substitutions of one character each cost 1. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

const commonPrefix = (a: string, b: string): number => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/**
 * The candidate nearest to `word` when it is near enough to be a typo (at most half its length away, at least 2), else
 * the nearest of those that share its first 4 characters or more (`max-tokens` → `max-length`), else undefined.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  let bestPrefixed: string | undefined;
  let prefixedDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) (best = c), (bestDistance = d);
    if (commonPrefix(w, c.toLowerCase()) >= 4 && d < prefixedDistance) (bestPrefixed = c), (prefixedDistance = d);
  }
  return bestDistance <= Math.max(2, Math.floor(w.length / 2)) ? best : bestPrefixed;
}

/** ` (did you mean X?)` (with `prefix` before the name, e.g. '--') or '' when nothing is near. */
export function didYouMean(word: string, candidates: readonly string[], prefix = ''): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean ${prefix}${c}?)`;
}
