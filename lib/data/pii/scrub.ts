/**
 * PII scrubbing: each detected value masked with a typed placeholder (<EMAIL>), replaced by a salted consistent
 * pseudonym (<EMAIL_3f9a1c2b>: an HMAC of the value, so one value gets one pseudonym and the value cannot be read
 * back), or its whole record dropped. Counts per type, never the values.
 */
import { createHmac, randomBytes } from 'crypto';
import { isSupportedCountry } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import { check } from '../../errors';
import { PII_TYPES, detectPii } from './detectors';
import type { PiiMatch, PiiType } from './detectors';

export const PII_ACTIONS = ['mask', 'pseudonym', 'drop', 'off'] as const;
export type PiiAction = (typeof PII_ACTIONS)[number];

export interface PiiOptions {
  /** What happens to a type not named in `types`; default 'mask'. */
  action?: PiiAction;
  /** Per type: 'mask' | 'pseudonym' | 'drop' (the record) | 'off' (not scrubbed). */
  types?: Partial<Record<PiiType, PiiAction>>;
  /** ISO 3166 region of phone numbers written without +country code (e.g. 'US'); without it only international numbers are found. */
  defaultRegion?: string;
  /** The pseudonyms' HMAC key: 'env:NAME' reads the environment variable NAME, anything else is the key itself.
   * Default: $NODETUNE_PII_SALT, else a random key per process (consistent within a run, not across runs). */
  salt?: string;
}

export type PiiCounts = Record<PiiType, number>;

export interface ScrubResult {
  text: string;
  /** Values found per type (all of them, whatever their action). */
  counts: PiiCounts;
  /** A type whose action is 'drop' was found: the record should be dropped. */
  drop: boolean;
  /** Each replacement: [start, end) in the input and the length of what replaced it (for shifting offsets). */
  edits: Array<{ start: number; end: number; length: number }>;
}

export const PLACEHOLDERS: Record<PiiType, string> = {
  email: 'EMAIL', phone: 'PHONE', card: 'CARD', iban: 'IBAN', ip: 'IP', credential: 'CREDENTIAL', apiKey: 'API_KEY', ssn: 'SSN',
};

export const SALT_ENV = 'NODETUNE_PII_SALT';
let runSalt: Buffer | undefined;

export function zeroCounts(): PiiCounts {
  return { credential: 0, apiKey: 0, email: 0, iban: 0, card: 0, ssn: 0, ip: 0, phone: 0 };
}

function resolveSalt(salt: string | undefined): Buffer {
  if (salt === undefined) {
    const fromEnv = process.env[SALT_ENV];
    if (fromEnv) return Buffer.from(fromEnv);
    runSalt ??= randomBytes(32);
    return runSalt;
  }
  if (!salt.startsWith('env:')) return Buffer.from(salt);
  const name = salt.slice(4);
  const value = process.env[name];
  check(name.length > 0 && value !== undefined && value.length > 0, `pii.salt: environment variable ${name || '(empty name)'} is not set or empty`, 'pii.salt');
  return Buffer.from(value);
}

function validate(o: PiiOptions): void {
  check(o !== null && typeof o === 'object', 'pii: options must be an object', 'pii');
  const known = ['action', 'types', 'defaultRegion', 'salt'];
  for (const k of Object.keys(o)) check(known.includes(k), `pii.${k}: unknown option; allowed: ${known.join(', ')}`, `pii.${k}`);
  const isAction = (a: unknown): boolean => (PII_ACTIONS as readonly unknown[]).includes(a);
  check(o.action === undefined || isAction(o.action), `pii.action must be one of ${PII_ACTIONS.join(', ')}; got ${JSON.stringify(o.action)}`, 'pii.action');
  for (const [t, a] of Object.entries(o.types ?? {})) {
    check((PII_TYPES as readonly string[]).includes(t), `pii.types.${t}: unknown type; allowed: ${PII_TYPES.join(', ')}`, `pii.types.${t}`);
    check(isAction(a), `pii.types.${t} must be one of ${PII_ACTIONS.join(', ')}; got ${JSON.stringify(a)}`, `pii.types.${t}`);
  }
  check(o.defaultRegion === undefined || (typeof o.defaultRegion === 'string' && isSupportedCountry(o.defaultRegion)),
    `pii.defaultRegion must be a supported ISO 3166 region code such as US or GB; got ${JSON.stringify(o.defaultRegion)}`, 'pii.defaultRegion');
  check(o.salt === undefined || (typeof o.salt === 'string' && o.salt.length > 0), 'pii.salt must be a non-empty string', 'pii.salt');
}

/** Holds the resolved options and the pseudonym key: build one per run and scrub every text through it. */
export class PiiScrubber {
  readonly actions: Readonly<Record<PiiType, PiiAction>>;
  private readonly region: CountryCode | undefined;
  private readonly key: Buffer;

  constructor(options: PiiOptions = {}) {
    validate(options);
    const fallback = options.action ?? 'mask';
    this.actions = Object.fromEntries(PII_TYPES.map((t) => [t, options.types?.[t] ?? fallback])) as Record<PiiType, PiiAction>;
    this.region = options.defaultRegion as CountryCode | undefined;
    const pseudonyms = PII_TYPES.some((t) => this.actions[t] === 'pseudonym');
    this.key = pseudonyms ? resolveSalt(options.salt) : Buffer.alloc(0);
  }

  /** The spans of every type that is not 'off'. */
  detect(text: string): PiiMatch[] {
    return detectPii(text, PII_TYPES.filter((t) => this.actions[t] !== 'off'), this.region ? { defaultRegion: this.region } : {});
  }

  pseudonym(m: Pick<PiiMatch, 'type' | 'canonical'>): string {
    const h = createHmac('sha256', this.key).update(`${m.type}\u0000${m.canonical}`).digest('hex').slice(0, 8);
    return `<${PLACEHOLDERS[m.type]}_${h}>`;
  }

  scrub(text: string): ScrubResult {
    const counts = zeroCounts();
    const edits: ScrubResult['edits'] = [];
    let drop = false;
    let out = '';
    let at = 0;
    for (const m of this.detect(text)) {
      counts[m.type]++;
      const action = this.actions[m.type];
      if (action === 'drop') drop = true;
      const replacement = action === 'pseudonym' ? this.pseudonym(m) : `<${PLACEHOLDERS[m.type]}>`;
      out += text.slice(at, m.start) + replacement;
      edits.push({ start: m.start, end: m.end, length: replacement.length });
      at = m.end;
    }
    return { text: out + text.slice(at), counts, drop, edits };
  }
}

/** Masks every type with its placeholder, whatever the options say: for texts shown in reports. */
export function maskAllPii(text: string, defaultRegion?: string): string {
  return new PiiScrubber({ action: 'mask', ...(defaultRegion ? { defaultRegion } : {}) }).scrub(text).text;
}

/** Scrubs one text; pseudonyms are consistent across calls with the same salt (and within the process without one). */
export function scrubPii(text: string, options: PiiOptions = {}): ScrubResult {
  return new PiiScrubber(options).scrub(text);
}

/** Where an offset into the original text lands after the edits (an offset inside an edited span is undefined). */
export function shiftOffset(edits: ScrubResult['edits'], offset: number): number | undefined {
  let delta = 0;
  for (const e of edits) {
    if (e.end <= offset) delta += e.length - (e.end - e.start);
    else if (e.start < offset) return undefined;
  }
  return offset + delta;
}
