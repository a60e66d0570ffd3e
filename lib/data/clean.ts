/**
 * Cleaning: Unicode normalisation, control characters, HTML tags and entities, whitespace; exact and normalised
 * duplicate removal (hash-based, streaming); length filters in characters and tokens; a report of each step's drops.
 */
import { createHash } from 'crypto';
import { decodeHTMLStrict } from 'entities';
import { NodetuneError, check } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { Example, Source } from './example';
import { PiiScrubber, maskAllPii, zeroCounts } from './pii/scrub';
import type { PiiCounts, PiiOptions } from './pii/scrub';
import { scrubExample } from './pii/example';

export type TextField = 'text' | 'textPair' | 'prompt' | 'completion' | 'question' | 'messages';

export interface CleanOptions {
  /** Unicode normal form; default 'NFC'. */
  normalize?: 'NFC' | 'NFKC' | false;
  /** Remove control characters (keeps \n and \t) and stray format characters; default true. */
  stripControl?: boolean;
  /** Remove HTML tags (and script/style bodies) and decode entities; default false. */
  stripHtml?: boolean;
  /** 'collapse': runs of spaces become one, 3+ newlines become 2, ends trimmed; 'trim': ends only; default 'collapse'. */
  whitespace?: 'collapse' | 'trim' | false;
  /** Drop repeats of the same text ('exact') or of the same text up to case, punctuation and spacing ('normalized'). */
  dedupe?: 'exact' | 'normalized' | false;
  minChars?: number;
  maxChars?: number;
  /** Token filters need `tokenizer`; counts are of the text fields without special tokens. */
  minTokens?: number;
  maxTokens?: number;
  tokenizer?: PreTrainedTokenizer;
  /** Which fields to clean and measure; default every text field present (question-answering contexts are never altered, so answer offsets stay valid). */
  fields?: TextField[];
  /** Personal data and secrets (e-mail, phone, card, IBAN, IP, URL credentials, API keys, SSN): masked, pseudonymised,
   * or the record dropped, per type (docs/DATA.md). Scrubbed after the text transformations; QA answers move with their context. */
  pii?: PiiOptions;
  /** How many dropped examples each step keeps in the report; default 3. */
  keepExamples?: number;
}

export type CleanStep = 'pii' | 'empty' | 'duplicate' | 'minChars' | 'maxChars' | 'minTokens' | 'maxTokens';

export interface DroppedExample {
  source?: Source;
  text: string;
}

export interface CleanReport {
  read: number;
  kept: number;
  dropped: Record<CleanStep, { count: number; examples: DroppedExample[] }>;
  /** Characters changed per transformation step (normalisation, control, html, whitespace). */
  changed: Record<'normalize' | 'control' | 'html' | 'whitespace', number>;
  /** PII values found per type (with `pii`; counts only, never the values). */
  pii: PiiCounts;
}

export function newReport(): CleanReport {
  const step = (): { count: number; examples: DroppedExample[] } => ({ count: 0, examples: [] });
  return {
    read: 0, kept: 0,
    dropped: { pii: step(), empty: step(), duplicate: step(), minChars: step(), maxChars: step(), minTokens: step(), maxTokens: step() },
    changed: { normalize: 0, control: 0, html: 0, whitespace: 0 },
    pii: zeroCounts(),
  };
}

// C0/C1 controls except tab and newline, plus BOM/zero-width no-break space and unassigned-looking formatting marks.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFEFF\uFFF9-\uFFFB]/g;
const SCRIPT_STYLE = /<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;
const COMMENT = /<!--[\s\S]*?-->/g;
const BLOCK_TAG = /<\/?(br|p|div|li|tr|h[1-6]|ul|ol|table|blockquote|pre|section|article)\b[^>]*>/gi;
const TAG = /<\/?[a-zA-Z][a-zA-Z0-9-]*(\s[^<>]*)?\/?>/g;

export function stripHtml(text: string): string {
  return decodeHTMLStrict(text.replace(SCRIPT_STYLE, ' ').replace(COMMENT, ' ').replace(BLOCK_TAG, '\n').replace(TAG, ''));
}

export function collapseWhitespace(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Case, punctuation and spacing removed: the key for normalised duplicate detection. */
export function normalizedKey(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/[\p{P}\p{S}\s]+/gu, '');
}

/** Applies the text transformations of `opts` to one string, counting changes into `report`. */
export function cleanText(text: string, opts: CleanOptions = {}, report?: CleanReport): string {
  let t = text;
  const step = (name: keyof CleanReport['changed'], next: string): void => {
    if (report && next !== t) report.changed[name]++;
    t = next;
  };
  const form = opts.normalize ?? 'NFC';
  if (form) step('normalize', t.normalize(form));
  if (opts.stripHtml) step('html', stripHtml(t));
  if (opts.stripControl !== false) step('control', t.replace(CONTROL, ''));
  const ws = opts.whitespace ?? 'collapse';
  if (ws === 'collapse') step('whitespace', collapseWhitespace(t));
  else if (ws === 'trim') step('whitespace', t.trim());
  return t;
}

const DEFAULT_FIELDS: TextField[] = ['text', 'textPair', 'prompt', 'completion', 'question', 'messages'];

function textsOf(ex: Example, fields: TextField[]): string[] {
  const out: string[] = [];
  for (const f of fields) {
    if (f === 'messages') ex.messages?.forEach((m) => out.push(m.content));
    else {
      const v = ex[f];
      if (typeof v === 'string') out.push(v);
    }
  }
  return out;
}

function cleanFields(ex: Example, fields: TextField[], opts: CleanOptions, report: CleanReport): Example {
  const out: Example = { ...ex };
  for (const f of fields) {
    if (f === 'messages') {
      if (ex.messages) out.messages = ex.messages.map((m) => ({ ...m, content: cleanText(m.content, opts, report) }));
    } else {
      const v = ex[f];
      if (typeof v === 'string') out[f] = cleanText(v, opts, report);
    }
  }
  return out;
}

function hashOf(s: string): string {
  return createHash('sha1').update(s).digest('base64').slice(0, 16);
}

function drop(report: CleanReport, step: CleanStep, ex: Example, texts: string[], keep: number, mask?: (s: string) => string): void {
  const d = report.dropped[step];
  d.count++;
  if (d.examples.length < keep) {
    const joined = texts.join(' | ');
    const e: DroppedExample = { text: (mask ? mask(joined) : joined).slice(0, 200) };
    if (ex.source) e.source = ex.source;
    d.examples.push(e);
  }
}

function validate(opts: CleanOptions): void {
  for (const k of ['minChars', 'maxChars', 'minTokens', 'maxTokens', 'keepExamples'] as const) {
    const v = opts[k];
    check(v === undefined || (Number.isInteger(v) && v >= 0), `clean: ${k} must be a non-negative integer, got ${String(v)}`, k);
  }
  check((opts.minTokens === undefined && opts.maxTokens === undefined) || opts.tokenizer !== undefined,
    'clean: minTokens/maxTokens need a tokenizer', 'tokenizer');
  opts.fields?.forEach((f) => check(DEFAULT_FIELDS.includes(f), `clean: cannot clean field "${f}" (allowed: ${DEFAULT_FIELDS.join(', ')})`, 'fields'));
}

/** Summarises the report in one line: "read 10, kept 7; dropped: duplicate 2, minChars 1". */
export function describeReport(r: CleanReport): string {
  const parts = Object.entries(r.dropped).filter(([, d]) => d.count > 0).map(([k, d]) => `${k} ${d.count}`);
  const pii = Object.entries(r.pii).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return `read ${r.read}, kept ${r.kept}; dropped: ${parts.length ? parts.join(', ') : 'none'}${pii.length ? `; pii found: ${pii.join(', ')}` : ''}`;
}

/**
 * Cleans a stream of examples. The report fills in as it goes; once the stream ends with nothing kept, it throws
 * ERR_DATA naming the files and what each step dropped.
 */
export async function* cleanExamples(
  examples: AsyncIterable<Example> | Iterable<Example>, opts: CleanOptions = {}, report: CleanReport = newReport(),
): AsyncGenerator<Example> {
  validate(opts);
  const fields = opts.fields ?? DEFAULT_FIELDS;
  const keep = opts.keepExamples ?? 3;
  const seen = new Set<string>();
  const files = new Set<string>();
  const pending: Array<{ ex: Example; texts: string[] }> = [];
  const byTokens = opts.minTokens !== undefined || opts.maxTokens !== undefined;
  const scrubber = opts.pii ? new PiiScrubber(opts.pii) : null;
  // With PII scrubbing on, the texts the report keeps of dropped examples are masked.
  const mask = opts.pii ? (s: string): string => maskAllPii(s, opts.pii?.defaultRegion) : undefined;

  async function* flush(): AsyncGenerator<Example> {
    if (pending.length === 0) return;
    const batch = pending.splice(0, pending.length);
    let counts: number[] | undefined;
    if (byTokens && opts.tokenizer) {
      const ids = await opts.tokenizer.encodeIds(batch.map((p) => p.texts.join('\n')));
      counts = ids.map((x) => x.length);
    }
    for (let i = 0; i < batch.length; i++) {
      const { ex, texts } = batch[i] as { ex: Example; texts: string[] };
      const n = counts?.[i] ?? 0;
      if (opts.minTokens !== undefined && n < opts.minTokens) { drop(report, 'minTokens', ex, texts, keep); continue; }
      if (opts.maxTokens !== undefined && n > opts.maxTokens) { drop(report, 'maxTokens', ex, texts, keep); continue; }
      report.kept++;
      yield ex;
    }
  }

  for await (const raw of examples) {
    report.read++;
    if (raw.source) files.add(raw.source.file);
    let ex = cleanFields(raw, fields, opts, report);
    if (scrubber) {
      const s = scrubExample(ex, fields, scrubber);
      for (const [t, n] of Object.entries(s.counts) as Array<[keyof PiiCounts, number]>) report.pii[t] += n;
      if (s.drop) { drop(report, 'pii', ex, textsOf(ex, fields), keep, mask); continue; }
      ex = s.example;
    }
    const texts = textsOf(ex, fields);
    if (texts.length > 0 && texts.every((t) => t === '')) { drop(report, 'empty', ex, textsOf(raw, fields), keep, mask); continue; }
    const chars = texts.reduce((a, t) => a + t.length, 0);
    if (opts.minChars !== undefined && chars < opts.minChars) { drop(report, 'minChars', ex, texts, keep); continue; }
    if (opts.maxChars !== undefined && chars > opts.maxChars) { drop(report, 'maxChars', ex, texts, keep); continue; }
    if (opts.dedupe) {
      const joined = texts.join('\u0000');
      const key = hashOf(opts.dedupe === 'normalized' ? normalizedKey(joined) : joined);
      if (seen.has(key)) { drop(report, 'duplicate', ex, texts, keep); continue; }
      seen.add(key);
    }
    pending.push({ ex, texts });
    if (!byTokens || pending.length >= 256) yield* flush();
  }
  yield* flush();
  if (report.kept === 0) {
    const where = files.size ? [...files].join(', ') : 'the input';
    throw new NodetuneError('ERR_DATA', `no examples left after cleaning ${where}: ${describeReport(report)}`,
      { file: [...files][0], report });
  }
}
