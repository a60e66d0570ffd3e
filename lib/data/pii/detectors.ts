/**
 * Finding personal data and secrets in text: one detector per type, each a candidate pattern followed by the check
 * that real values pass (Luhn, IBAN mod-97, SSN ranges, address syntax, phone-number metadata). Spans never overlap:
 * where two types claim the same characters, the earlier type in PII_TYPES wins.
 */
import { isIPv4, isIPv6 } from 'net';
import { findPhoneNumbersInText } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import { IBAN_LENGTHS, isCardNumber, isIban, isSsn } from './checksums';

/** In priority order: a span claimed by an earlier type is not reported again as a later one. */
export const PII_TYPES = ['credential', 'apiKey', 'email', 'iban', 'card', 'ssn', 'ip', 'phone'] as const;
export type PiiType = (typeof PII_TYPES)[number];

export interface PiiMatch {
  type: PiiType;
  /** UTF-16 offsets of the value in the text: [start, end). */
  start: number;
  end: number;
  /** The value in a canonical spelling (digits only, upper case, E.164...), so that one value spelled two ways gets one pseudonym. */
  canonical: string;
}

export interface DetectOptions {
  /** Region (ISO 3166 alpha-2, e.g. 'US', 'GB') of phone numbers written without a country code; without it only +CC numbers are found. */
  defaultRegion?: CountryCode;
}

type Detector = (text: string, opts: DetectOptions) => PiiMatch[];

/** Every match of a global pattern that `accept` turns into a match (or refuses with null). */
function scan(text: string, re: RegExp, accept: (m: RegExpExecArray) => Omit<PiiMatch, 'type'> | null, type: PiiType): PiiMatch[] {
  const out: PiiMatch[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const hit = accept(m);
    if (hit) out.push({ type, ...hit });
  }
  return out;
}

const whole = (m: RegExpExecArray, canonical: string): Omit<PiiMatch, 'type'> => ({ start: m.index, end: m.index + m[0].length, canonical });

// The secret of user:secret@host in a URL (the user name and host stay).
const URL_CREDENTIAL = /\b[A-Za-z][A-Za-z0-9+.-]{1,15}:\/\/[^\s:/?#@]+:([^\s/?#@]+)@(?=[A-Za-z0-9[])/dg;
const credential: Detector = (text) => scan(text, URL_CREDENTIAL, (m) => {
  const [start, end] = m.indices![1]!;
  return { start, end, canonical: m[1]! };
}, 'credential');

/** Key shapes with a vendor's prefix: AWS access key ids, GitHub, Slack, Stripe, OpenAI, Google API keys, JWTs. */
const API_KEYS: readonly RegExp[] = [
  /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{36,251}\b/g,
  /\bgithub_pat_[A-Za-z0-9_]{22,244}\b/g,
  /\bxox[abeoprs]-(?:[A-Za-z0-9]+-){1,5}[A-Za-z0-9]{6,}\b/g,
  /\b[spr]k_(?:live|test)_[A-Za-z0-9]{16,247}\b/g,
  /\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}(?![\w-])/g,
  /\bAIza[0-9A-Za-z_-]{35}(?![\w-])/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![\w-])/g,
];
const apiKey: Detector = (text) => API_KEYS.flatMap((re) => scan(text, re, (m) => whole(m, m[0]), 'apiKey'));

// Domain labels, then a letter-only top-level domain; file names such as icon@2x.png are not addresses.
const EMAIL = /(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+'-]{0,62}[A-Za-z0-9_%+-])?@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))(?![\w-]|\.[A-Za-z0-9])/g;
const FILE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'css', 'js', 'ts', 'json', 'html']);
const email: Detector = (text) => scan(text, EMAIL, (m) => (FILE_EXTENSIONS.has(m[2]!.toLowerCase()) || m[0].includes('..') ? null : whole(m, m[0].toLowerCase())), 'email');

// A country code, check digits, then 11-30 letters or digits, optionally in space-separated groups.
const IBAN = /(?<![A-Za-z0-9])([A-Z]{2})\d{2}(?: ?[A-Z0-9]){11,30}/g;
const iban: Detector = (text) => scan(text, IBAN, (m) => {
  const need = IBAN_LENGTHS[m[1]!];
  if (need === undefined) return null;
  // Cut the candidate where the country's length is reached; the next character must not continue it.
  let n = 0;
  let end = m.index;
  for (; end < m.index + m[0].length && n < need; end++) if (text[end] !== ' ') n++;
  if (n < need || /[A-Za-z0-9]/.test(text[end] ?? '')) return null;
  const compact = text.slice(m.index, end).replace(/ /g, '');
  return isIban(compact) ? { start: m.index, end, canonical: compact } : null;
}, 'iban');

// 13-19 digits, contiguous or in groups of 3-6 joined by one kind of separator (space or dash).
const CARD = /(?<![\w.,/-])(?:\d{13,19}|\d{4}([ -])\d{4,6}(?:\1\d{1,6}){1,3})(?![\w/-]|[.,]\d)/g;
const card: Detector = (text) => scan(text, CARD, (m) => {
  const digits = m[0].replace(/[ -]/g, '');
  return isCardNumber(digits) ? whole(m, digits) : null;
}, 'card');

const SSN = /(?<![\w.,/-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w/-]|[.,]\d)/g;
const ssn: Detector = (text) => scan(text, SSN, (m) => (isSsn(m[1]!, m[3]!, m[4]!) ? whole(m, `${m[1]}${m[3]}${m[4]}`) : null), 'ssn');

// IPv4 not inside a longer dotted run (version numbers such as 1.2.3.4.5 or v1.2.3.4); IPv6 with :: compression,
// an embedded IPv4 tail and an optional zone (fe80::1%eth0).
const IPV4 = /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/g;
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%[A-Za-z0-9_.]+)?(?![\w:]|\.\w)/g;
// IPv6 first: its IPv4 tail (::ffff:192.0.2.1) is part of it.
const ip: Detector = (text) => [
  ...scan(text, IPV6, (m) => {
    const address = m[0].replace(/%.*$/, '');
    return /[0-9A-Fa-f]/.test(address) && isIPv6(address) ? whole(m, address.toLowerCase()) : null;
  }, 'ip'),
  ...scan(text, IPV4, (m) => (isIPv4(m[0]) ? whole(m, m[0]) : null), 'ip'),
];

/** The digit counts at which `s` changes group (2-3-4 → 2, 5, 9). */
function groupEnds(s: string): number[] {
  let n = 0;
  return (s.match(/\d+/g) ?? []).map((g) => (n += g.length));
}

/** Same digits as `formatted`, and never a group break where `formatted` has none (2023-0045-77 is not (202) 300-4577). */
function groupedAs(candidate: string, formatted: string): boolean {
  if (candidate.replace(/\D/g, '') !== formatted.replace(/\D/g, '')) return false;
  const ends = new Set(groupEnds(formatted));
  return groupEnds(candidate).every((e) => ends.has(e));
}

/**
 * Phone numbers by libphonenumber-js (full metadata: valid numbers of their region only). A number glued to a word
 * or code (INV-2023-004512, #4155552671) is a reference, not a phone number; a national number (no +) must be
 * grouped as its region writes it, nationally or internationally (1 2 3 4 5 6 7 8 9 10 is a sequence).
 */
const phone: Detector = (text, opts) => {
  if ((text.match(/\d/g)?.length ?? 0) < 6) return [];
  const found = findPhoneNumbersInText(text, opts.defaultRegion ? { defaultCountry: opts.defaultRegion } : {});
  return found.filter((f) => {
    const before = text.slice(Math.max(0, f.startsAt - 2), f.startsAt);
    const after = text.slice(f.endsAt, f.endsAt + 2);
    if (/[\w#]$|\w[-/.:]$/.test(before) || /^\w|^[-/.:]\w/.test(after)) return false;
    const candidate = text.slice(f.startsAt, f.endsAt);
    return candidate.includes('+') || groupedAs(candidate, f.number.formatNational()) || groupedAs(candidate, f.number.formatInternational());
  }).map((f) => ({ type: 'phone' as const, start: f.startsAt, end: f.endsAt, canonical: f.number.number }));
};

const DETECTORS: Record<PiiType, Detector> = { credential, apiKey, email, iban, card, ssn, ip, phone };

/**
 * The PII spans of `text` of the given types (default all), sorted by position and never overlapping. Every type is
 * detected before the filter, so a type left out does not let its characters be read as another (a URL's password
 * as an e-mail address).
 */
export function detectPii(text: string, types: readonly PiiType[] = PII_TYPES, opts: DetectOptions = {}): PiiMatch[] {
  const accepted: PiiMatch[] = [];
  for (const type of PII_TYPES)
    for (const m of DETECTORS[type](text, opts))
      if (!accepted.some((a) => m.start < a.end && a.start < m.end)) accepted.push(m);
  return accepted.filter((m) => types.includes(m.type)).sort((a, b) => a.start - b.start);
}
