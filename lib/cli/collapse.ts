/** A classifier that predicts one class for every row has learnt nothing but the majority: say so after train and eval. */

/**
 * From a confusion matrix (confusion[true][predicted]) and the label names: a warning when every row of `split` got
 * the same predicted class while the data hold more than one class, else null.
 */
export function collapseWarning(split: string, confusion: number[][] | undefined, labels: readonly string[] | null): string | null {
  if (!confusion || confusion.length < 2) return null;
  const predicted = confusion[0]!.map((_, p) => confusion.reduce((sum, row) => sum + (row[p] ?? 0), 0));
  const rows = predicted.reduce((a, b) => a + b, 0);
  const used = predicted.filter((n) => n > 0).length;
  const present = confusion.map((row, c) => ({ total: row.reduce((a, b) => a + b, 0), hit: row[c] ?? 0 })).filter((r) => r.total > 0);
  const trueClasses = present.length;
  if (rows === 0 || used !== 1 || trueClasses < 2) return null;
  const only = predicted.findIndex((n) => n > 0);
  const name = labels?.[only] ?? String(only);
  return `warning: on ${split} the model predicts one class ("${name}") for all ${rows} rows (macro-recall ${(present.reduce((a, r) => a + r.hit / r.total, 0) / trueClasses).toFixed(2)} on ` +
    `${trueClasses} classes): it has collapsed to a single class; train longer, raise the learning rate, balance the labels or check them`;
}
