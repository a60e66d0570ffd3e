/**
 * The demo's unlabelled in-domain text for domain-adaptive pretraining: SpamAssassin emails that are in none of the
 * labelled splits, cleaned like the labelled data, without their labels, and without near-duplicates of any
 * validation or test email (the project's leakage checker, lib/data/leakage.ts: exact, normalised, MinHash), so the
 * base never reads a held-out email before it is tested on it.
 */
import { cleanExamples, newReport } from '../../lib/data/clean';
import type { CleanOptions } from '../../lib/data/clean';
import { dropLeaked, findLeakage } from '../../lib/data/leakage';
import type { LeakageOptions, SplitLeakage } from '../../lib/data/leakage';
import type { Example } from '../../lib/data';

export interface DomainPool {
  /** The cleaned texts to pretrain on, in the order given. */
  texts: string[];
  /** Candidates given, and those left out because their id is in a labelled split. */
  candidates: number;
  inSplits: number;
  /** Dropped by the cleaning (empty, too short, repeated). */
  cleanedAway: number;
  /** Pool texts dropped as exact, normalised or near duplicates of a validation or test email. */
  nearDuplicates: number;
  /** The validation/test emails that had such a duplicate in the pool, by closest kind of match. */
  heldOutMatched: { validation?: SplitLeakage; test?: SplitLeakage };
}

/**
 * `candidates`: emails as the classifier would see them (id and text); `splitIds`: the ids of every email in
 * train/validation/test; `heldOut`: the cleaned validation and test examples. Labels are never read.
 */
export async function domainPool(candidates: readonly { id: number; text: string }[], splitIds: ReadonlySet<number>,
  heldOut: { validation: readonly Example[]; test: readonly Example[] }, clean: CleanOptions, leakage: LeakageOptions = {}): Promise<DomainPool> {
  const outside = candidates.filter((c) => !splitIds.has(c.id));
  const cleaned: Example[] = [];
  for await (const ex of cleanExamples(outside.map((c) => ({ text: c.text })), clean, newReport())) cleaned.push(ex);
  const report = findLeakage({ train: cleaned, validation: heldOut.validation, test: heldOut.test }, leakage);
  const kept = dropLeaked(cleaned, report);
  return {
    texts: kept.map((ex) => ex.text ?? ''),
    candidates: candidates.length,
    inSplits: candidates.length - outside.length,
    cleanedAway: outside.length - cleaned.length,
    nearDuplicates: cleaned.length - kept.length,
    heldOutMatched: report.splits,
  };
}

/** One line for the screen: how many emails were used, and what was left out and why. */
export function describePool(p: DomainPool): string {
  const matched = (['validation', 'test'] as const).map((k) => `${p.heldOutMatched[k]?.leaked ?? 0} ${k}`).join(' and ');
  return `${p.texts.length.toLocaleString('en-US')} unlabelled emails (of ${p.candidates.toLocaleString('en-US')}: ${p.inSplits.toLocaleString('en-US')} in train/validation/test left out, ` +
    `${p.cleanedAway} removed by the cleaning, ${p.nearDuplicates} dropped as duplicates or near-duplicates of ${matched} emails)`;
}
