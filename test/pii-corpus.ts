/**
 * A labelled corpus for the PII detectors, generated with a seed: sentences holding one or two fake values of known
 * type and position (several countries' phone numbers, card brands, IBANs; compressed IPv6; key shapes of each vendor),
 * and near-misses that hold none (order and invoice numbers, dates, times, versions, invalid IPs, Luhn failures,
 * ISBNs, UUIDs, hashes, prices, postal codes). No value here is a real person's or a real secret.
 */
import { getExampleNumber } from 'libphonenumber-js/max';
import type { CountryCode } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/examples.mobile.json';
import { Rng } from '../lib/data';
import type { PiiType } from '../lib/data';

export interface Labelled {
  text: string;
  spans: Array<{ type: PiiType; start: number; end: number }>;
}

const rng = new Rng(20240519);
const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const chars = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[rng.int(alphabet.length)]).join('');
const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const ALNUM = `${UPPER}abcdefghijklmnopqrstuvwxyz${DIGITS}`;
const B64URL = `${ALNUM}-_`;

/** A value placed into a sentence template at `{}`; the span is where it landed. */
function place(template: string, type: PiiType, value: string): Labelled {
  const start = template.indexOf('{}');
  return { text: template.replace('{}', value), spans: [{ type, start, end: start + value.length }] };
}

function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = body.length - 1, dbl = true; i >= 0; i--, dbl = !dbl) {
    let d = Number(body[i]);
    if (dbl) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function cardNumber(prefix: string, length: number): string {
  const body = prefix + chars(DIGITS, length - prefix.length - 1);
  return body + luhnDigit(body);
}

function groupCard(d: string, sep: string): string {
  if (d.length === 15) return [d.slice(0, 4), d.slice(4, 10), d.slice(10)].join(sep);
  return d.match(/.{1,4}/g)!.join(sep);
}

function mod97(s: string): number {
  let r = 0;
  for (const ch of s) {
    const v = /[A-Z]/.test(ch) ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of v) r = (r * 10 + Number(d)) % 97;
  }
  return r;
}

export function iban(country: string, bban: string): string {
  const check = 98 - mod97(`${bban}${country}00`);
  return `${country}${String(check).padStart(2, '0')}${bban}`;
}

const IBAN_BBANS: Array<[string, () => string]> = [
  ['DE', () => chars(DIGITS, 18)], ['GB', () => chars(UPPER, 4) + chars(DIGITS, 14)], ['FR', () => chars(DIGITS, 23)],
  ['ES', () => chars(DIGITS, 20)], ['NL', () => chars(UPPER, 4) + chars(DIGITS, 10)], ['IT', () => chars(UPPER, 1) + chars(DIGITS, 22)],
  ['CH', () => chars(DIGITS, 17)], ['BE', () => chars(DIGITS, 12)], ['PL', () => chars(DIGITS, 24)], ['NO', () => chars(DIGITS, 11)],
];

const b64url = (s: string): string => Buffer.from(s).toString('base64url');

const GENERATORS: Record<PiiType, Array<() => string>> = {
  email: [
    () => `${pick(['jane', 'omar', 'li', 'anna-marie', 'j'])}.${pick(['doe', 'haddad', 'wei', 'schmidt'])}@${pick(['example.com', 'mail.example.org', 'corp.example.co.uk', 'example.de'])}`,
    () => `${pick(['support', 'first_last', 'x'])}+${pick(['news', 'tag1', 'a'])}@${pick(['example.io', 'example.travel'])}`,
    () => `${pick(['John.Smith', 'MARIA.GARCIA', "o'brien", 'd.o\'neil'])}${rng.int(100)}@${pick(['Example.COM', 'students.example.edu', 'xn--bcher-kva.example'])}`,
  ],
  phone: [
    () => getExampleNumber(pick(['GB', 'DE', 'FR', 'JP', 'IN', 'AU', 'BR', 'ES', 'IT', 'NL', 'MX', 'CH', 'SE', 'PL', 'ZA', 'KR', 'SG'] as CountryCode[]), examples)!.formatInternational(),
    () => getExampleNumber(pick(['GB', 'DE', 'FR', 'BR', 'IN'] as CountryCode[]), examples)!.number,
    () => `(${pick(['212', '415', '646', '312'])}) ${pick(['555', '867', '234'])}-${chars(DIGITS, 4)}`,
    () => `${pick(['212', '415', '617'])}-${pick(['555', '555', '234'])}-0${chars(DIGITS, 3)}`,
    () => `+1 ${pick(['212', '415', '503'])} ${pick(['555', '234'])} ${chars(DIGITS, 4)}`,
    () => pick(['+44 (0)20 7946 0958', '+49 (0) 30 901820', '+33 1 42 68 53 00', '+81 3-1234-5678', '1-800-555-0199', '212.555.0147',
      '+49 30 90 18 20', '+1-415-555-2671', '+4930901820']),
  ],
  card: [
    () => groupCard(cardNumber('4', 16), ' '), () => groupCard(cardNumber(pick(['51', '53', '55', '2221', '2720']), 16), '-'),
    () => groupCard(cardNumber(pick(['34', '37']), 15), ' '), () => cardNumber('6011', 16), () => groupCard(cardNumber('3530', 16), ' '),
    () => cardNumber('4', 13), () => cardNumber('62', 19), () => groupCard(cardNumber('36', 14), ' '),
  ],
  iban: [
    () => { const [c, b] = pick(IBAN_BBANS); return iban(c, b()); },
    () => { const [c, b] = pick(IBAN_BBANS); return iban(c, b()).match(/.{1,4}/g)!.join(' '); },
  ],
  ip: [
    () => `${1 + rng.int(223)}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`,
    () => pick(['10.0.0.1', '192.168.1.254', '172.16.31.7', '8.8.4.4']),
    () => `2001:db8:${chars('0123456789abcdef', 4)}::${chars('0123456789abcdef', 3)}`,
    () => pick(['::1', 'fe80::1ff:fe23:4567:890a', 'fe80::1%eth0', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', '::ffff:192.0.2.128', '2001:db8::', 'FE80::0202:B3FF:FE1E:8329']),
  ],
  credential: [() => `${pick(['hunter2', 'S3cr3t!', 'pa%40ss', 'Tr0ub4dor&3', 'correct-horse'])}${rng.int(100)}`],
  apiKey: [
    () => `AKIA${chars(UPPER + DIGITS, 16)}`, () => `ghp_${chars(ALNUM, 36)}`, () => `gho_${chars(ALNUM, 36)}`,
    () => `github_pat_${chars(ALNUM, 22)}_${chars(ALNUM, 59)}`, () => `xoxb-${chars(DIGITS, 12)}-${chars(DIGITS, 13)}-${chars(ALNUM, 24)}`,
    () => `xoxp-${chars(DIGITS, 11)}-${chars(DIGITS, 11)}-${chars(DIGITS, 12)}-${chars('0123456789abcdef', 32)}`,
    () => `${pick(['sk', 'pk', 'rk'])}_live_${chars(ALNUM, 24)}`, () => `sk-proj-${chars(B64URL, 48)}1a`, () => `sk-${chars(ALNUM, 46)}7b`,
    () => `AIza${chars(B64URL, 35)}`,
    () => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"${chars(DIGITS, 8)}","name":"Test User","iat":1516239022}`)}.${chars(B64URL, 43)}`,
  ],
  ssn: [() => {
    let area = 1 + rng.int(898);
    if (area === 666) area = 667;
    return `${String(area).padStart(3, '0')}-${String(1 + rng.int(99)).padStart(2, '0')}-${String(1 + rng.int(9999)).padStart(4, '0')}`;
  }, () => `${String(100 + rng.int(500)).padStart(3, '0')} ${String(10 + rng.int(89))} ${String(1000 + rng.int(8999))}`],
};

const TEMPLATES: Record<PiiType, string[]> = {
  email: ['Please write to {} with your questions.', 'From: {}', 'contact <{}> for access', 'Her address ({}) bounced twice.', 'cc: {}; thanks!'],
  phone: ['Call me on {} after six.', 'Tel: {}', 'Mobile {}, office hours only.', 'You can reach the front desk at {}.', 'phone: {} (ask for Sam)'],
  card: ['Card number {} expires 09/27.', 'Charge it to {} please.', 'PAN: {}', 'My card is {}, CVV on the back.'],
  iban: ['Transfer to IBAN {} by Friday.', 'Account: {} (Sparkasse)', 'Please pay into {}.', 'IBAN:{}'],
  ip: ['Login from {} was blocked.', 'The server at {} is down', 'client={} status=403', 'Ping {} and report back.'],
  credential: ['Connect with postgres://admin:{}@db.internal:5432/app', 'Clone https://bob:{}@git.example.com/repo.git now', 'mirror ftp://anon:{}@ftp.example.org/pub', 'REDIS_URL=redis://default:{}@cache.example.net:6379'],
  apiKey: ['export API_KEY={}', 'Authorization: Bearer {}', 'key: "{}"', 'I accidentally committed {} yesterday.'],
  ssn: ['SSN {} on file.', 'Social security number: {}', 'her ssn is {}, please verify'],
};

export const NEAR_MISSES: readonly string[] = [
  'Order #A-100234 shipped on 2024-03-15.', 'order no. 2023-0045-77 is delayed', 'Invoice INV-2023-004512 is due 15/04/2024.',
  'Your order #4155552671 has been received.', 'Ticket 1204-5567 was closed at 10:30:45.', 'The meeting is at 14:05, not 9:00-17:30.',
  'Released v1.2.3 and 10.4.1; build 1.2.3.4.5 is next.', 'Windows 10.0.19041.1 updated.', 'Bad address 999.1.1.1 and 256.100.50.25 rejected.',
  'Version 2.0.0-rc.1 (commit 3f9a1c2b7e) fixed it.', 'ISBN 978-3-16-148410-0, also 0-306-40615-2.', 'ISBN-13: 9780596520687',
  'UUID 123e4567-e89b-12d3-a456-426614174000 created.', 'sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'git 9fceb02d0ae598e95dc970b74767f19372d61af8', 'Price: $1,299.99 or €2.499,00 (was 1.999,00).', 'Total 4,532,015.12 USD',
  'Ship to 94103 or 10115 Berlin, 75008 Paris, SW1A 1AA London.', 'zip 90210-1234', 'MAC 00:1A:2B:3C:4D:5E on port 8080.',
  'std::vector<int> and a::b::c compile.', 'Tracking number 1Z999AA10123456784.', 'Coordinates 48.8566, 2.3522.', 'Score was 3-2 after 90:00.',
  'Handle @jane_doe on the forum; email me at jane at example dot com.', 'user@localhost cannot receive mail.', 'see icon@2x.png and logo@3x.webp',
  'Invalid SSNs: 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567, 123-45-0000.', 'Bad IBAN DE00 3704 0044 0532 0130 00 returned.',
  'GB00WEST12345698765432 failed the check.', 'Keys like AKIA123, ghp_short, sk-learn, sk_live_abc and eyJhbGciOi are too short.',
  'See https://example.com/user:pass and https://example.com/@user for docs.', 'It ran from 1990-2004, about 120 min.', 'Room 1204, floor 12, ext. 5',
  'The sequence 1 2 3 4 5 6 7 8 9 10 repeats.', 'Dates: 12/10/2023, 2023/10/12, 12.10.2023 and 20231012.', 'Lot 2024-0315-0001-17 expired.',
  'Serial SN-8842-1190-33 registered.', 'Part 4111-1111-1111-1112 is out of stock.', 'numbers 1234 5678 9012 3456 and 1234567890123456 fail Luhn',
  'Population 8,336,817 in 2022.', 'Call 911 or 112.', 'Flight LH400 departs 10:45 from gate B22.', 'pi is 3.14159265358979',
  'Temperature -12.5 to 30.2 degrees', 'The 2023-2024 season ended 98-76.', 'http://example.com:8080/path?id=42', 'a:b:c:d is not an address',
  'ffff:ffff is incomplete; 1:2:3:4:5:6:7:8:9 is too long.', 'Product code 978-1-4028-9462-6', 'Case 2:21-cv-01234 filed.',
];

export interface Corpus {
  positives: Labelled[];
  nearMisses: Labelled[];
}

/** `perType` sentences of each type, one value each, and a few with two values side by side. */
export function buildCorpus(perType = 60): Corpus {
  const positives: Labelled[] = [];
  for (const type of Object.keys(GENERATORS) as PiiType[])
    for (let i = 0; i < perType; i++) positives.push(place(pick(TEMPLATES[type]), type, pick(GENERATORS[type])()));
  for (let i = 0; i < perType; i++) {
    const first = positives[rng.int(positives.length)]!;
    const second = positives[rng.int(positives.length)]!;
    const offset = first.text.length + 1;
    positives.push({ text: `${first.text} ${second.text}`, spans: [...first.spans, ...second.spans.map((s) => ({ ...s, start: s.start + offset, end: s.end + offset }))] });
  }
  return { positives, nearMisses: NEAR_MISSES.map((text) => ({ text, spans: [] })) };
}
