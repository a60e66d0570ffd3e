/**
 * Scrubbing one example: its text fields and chat messages, a QA context with its answers moved to the new offsets,
 * the words of token classification one by one, and the raw record that seq2seq templates read.
 */
import type { Example } from '../example';
import { zeroCounts, shiftOffset } from './scrub';
import type { PiiCounts, PiiScrubber, ScrubResult } from './scrub';

export type ScrubbedField = 'text' | 'textPair' | 'prompt' | 'completion' | 'question' | 'messages';

export interface ScrubbedExample {
  example: Example;
  counts: PiiCounts;
  /** A 'drop' type was found, or a value cut across a QA answer's boundary (the answer could not be kept). */
  drop: boolean;
}

function scrubRecord(value: unknown, scrub: (s: string) => string): unknown {
  if (typeof value === 'string') return scrub(value);
  if (Array.isArray(value)) return value.map((v) => scrubRecord(v, scrub));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubRecord(v, scrub)]));
  return value;
}

export function scrubExample(ex: Example, fields: readonly ScrubbedField[], scrubber: PiiScrubber): ScrubbedExample {
  const counts = zeroCounts();
  let drop = false;
  const scrubCounted = (s: string): ScrubResult => {
    const r = scrubber.scrub(s);
    for (const [t, n] of Object.entries(r.counts) as Array<[keyof PiiCounts, number]>) counts[t] += n;
    drop ||= r.drop;
    return r;
  };
  const scrub = (s: string): string => scrubCounted(s).text;
  const out: Example = { ...ex };
  for (const f of fields) {
    if (f === 'messages') {
      if (ex.messages) out.messages = ex.messages.map((m) => ({ ...m, content: scrub(m.content) }));
    } else {
      const v = ex[f];
      if (typeof v === 'string') out[f] = scrub(v);
    }
  }
  if (ex.tokens) out.tokens = ex.tokens.map(scrub);
  if (ex.record) out.record = scrubRecord(ex.record, scrub) as Record<string, unknown>;
  if (typeof ex.context === 'string') {
    const r = scrubCounted(ex.context);
    out.context = r.text;
    if (ex.answers) {
      const text: string[] = [];
      const answerStart: number[] = [];
      ex.answers.answerStart.forEach((s, i) => {
        const start = shiftOffset(r.edits, s);
        const end = shiftOffset(r.edits, s + (ex.answers!.text[i] ?? '').length);
        if (start === undefined || end === undefined) drop = true;
        else {
          answerStart.push(start);
          text.push(r.text.slice(start, end));
        }
      });
      out.answers = { text, answerStart };
    }
  }
  return { example: out, counts, drop };
}
