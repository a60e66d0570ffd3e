import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../lib/cli/main';
import { tempDir } from './helpers';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Every file under `dir` with its size and modification time. */
function snapshot(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort().map((f) => {
    const st = fs.statSync(path.join(dir, f));
    return `${f} ${st.size} ${st.mtimeMs}`;
  });
}

const EMAIL = 'omar.haddad@example.org';
const CARD = '5555 5555 5555 4444';
const PHONE = '(415) 555-2671';
const KEY = 'ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
const REVIEW = 'a slow and overlong story about nothing at all with a weak ending and flat characters and too many songs';

describe('72 cli: nodetune scan', function () {
  this.timeout(30_000);
  let dir = '';
  before(() => {
    dir = tempDir();
    const rows = (texts: string[]) => texts.map((text, i) => JSON.stringify({ text, label: i % 2 ? 'pos' : 'neg' })).join('\n') + '\n';
    fs.writeFileSync(path.join(dir, 'train.jsonl'), rows([`write to ${EMAIL}`, 'a fine film', `card ${CARD} and ${EMAIL}`, REVIEW, `call ${PHONE}`, `token ${KEY}`]));
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), rows(['A FINE FILM!', REVIEW.replace('songs', 'dances'), 'something else entirely']));
    fs.writeFileSync(path.join(dir, 'run.yaml'), [
      'model: ./no-model', 'task: classification', 'output: ./out', 'method: { kind: full }',
      'data:', '  train: train.jsonl', '  validation: dev.jsonl', '  clean: { pii: { types: { card: drop, apiKey: pseudonym }, defaultRegion: US, salt: s } }',
      '  leakage: { nearDuplicateThreshold: 0.7 }', '',
    ].join('\n'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--help: usage and examples; the top-level help lists scan', async () => {
    const r = await run(['scan', '--help']);
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^Usage: nodetune scan --data FILE/);
    expect(r.out).to.contain('Examples:');
    expect((await run(['--help'])).out).to.match(/^ {2}scan {8}the PII/m);
  });

  it('--data/--validation: PII per type with rows and fields, leakage with locations, never a value; writes nothing', async () => {
    const before = snapshot(dir);
    const r = await run(['scan', '--data', path.join(dir, 'train.jsonl'), '--validation', path.join(dir, 'dev.jsonl'), '--region', 'US']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain('train.jsonl: 6 rows, 4 with PII');
    expect(r.out).to.match(/^ {2}email: 2 in 2 rows \(mask\) at line 1 text, line 3 text$/m);
    expect(r.out).to.match(/^ {2}card: 1 in 1 rows \(mask\) at line 3 text$/m);
    expect(r.out).to.match(/^ {2}phone: 1 in 1 rows \(mask\) at line 5 text$/m);
    expect(r.out).to.match(/^ {2}apiKey: 1 in 1 rows \(mask\) at line 6 text$/m);
    expect(r.out).to.contain('dev.jsonl: 3 rows, 0 with PII');
    expect(r.out).to.contain('leakage: validation 2 of 3 rows in train (exact 0, normalized 1, near-duplicate 1); 2 of 6 train rows involved');
    expect(r.out).to.match(/validation .*dev\.jsonl:1 ~ train .*train\.jsonl:2 \(normalized\)/);
    expect(r.out).to.match(/validation .*dev\.jsonl:2 ~ train .*train\.jsonl:4 \(near 0\.\d\d\)/);
    for (const v of [EMAIL, CARD, PHONE, KEY, 'fine film', 'overlong']) expect(r.out).to.not.contain(v);
    expect(snapshot(dir)).to.deep.equal(before);
  });

  it('--json: the same report as data, offsets included', async () => {
    const r = await run(['scan', '--data', path.join(dir, 'train.jsonl'), '--json']);
    expect(r.code, r.err).to.equal(0);
    const j = JSON.parse(r.out) as { files: Array<{ rows: number; types: Record<string, { count: number; locations: Array<{ line: number; field: string; start: number; end: number }> }> }>; leakage: unknown };
    expect(j.files[0]!.rows).to.equal(6);
    expect(j.files[0]!.types.email!.locations[0]).to.deep.equal({ row: 1, line: 1, field: 'text', start: 9, end: 9 + EMAIL.length });
    expect(j.files[0]!.types.phone!.count).to.equal(0); // no region: only +CC numbers
    expect(j.leakage).to.equal(null);
    for (const v of [EMAIL, CARD, KEY]) expect(r.out).to.not.contain(v);
  });

  it('CONFIG.yaml: the config\'s sources, pii actions (rows that would be dropped) and leakage threshold; no output folder made', async () => {
    const r = await run(['scan', path.join(dir, 'run.yaml'), '--json']);
    expect(r.code, r.err).to.equal(0);
    const j = JSON.parse(r.out) as { files: Array<{ split: string; rowsDropped: number; types: Record<string, { count: number; action: string }> }>; leakage: { threshold: number } };
    expect(j.files.map((f) => f.split)).to.deep.equal(['train', 'validation']);
    expect(j.files[0]!.rowsDropped).to.equal(1);
    expect(j.files[0]!.types.card).to.include({ count: 1, action: 'drop' });
    expect(j.files[0]!.types.apiKey).to.include({ count: 1, action: 'pseudonym' });
    expect(j.files[0]!.types.phone).to.include({ count: 1, action: 'mask' });
    expect(j.leakage.threshold).to.equal(0.7);
    expect(fs.existsSync(path.join(dir, 'out'))).to.equal(false);
  });

  it('bad usage exits 2 naming the option or config key; a missing file exits 1', async () => {
    const train = path.join(dir, 'train.jsonl');
    const bad = (lines: string) => {
      const f = path.join(dir, `bad-${Math.random().toString(36).slice(2)}.yaml`);
      fs.writeFileSync(f, `model: m\ntask: classification\noutput: o\nmethod: { kind: full }\ndata:\n  train: train.jsonl\n${lines}\n`);
      return f;
    };
    const cases: Array<[string[], RegExp]> = [
      [['scan'], /--data is required/],
      [['scan', '--data', train, '--format', 'xml'], /--format must be one of jsonl/],
      [['scan', '--data', train, '--region', 'XX'], /--region must be a region code/],
      [['scan', '--data', train, '--threshold', '1.5'], /--threshold must be a number in \(0, 1\]/],
      [['scan', '--data', train, '--column', 'body=text'], /--column: unknown field "body"/],
      [['scan', '--data', train, '--task', 'summarize'], /--task must be one of/],
      [['scan', '--dat', train], /unknown option --dat \(did you mean --data\?\)/],
      [['scan', path.join(dir, 'run.yaml'), '--data', train], /give a config or --data/],
      [['scan', bad('  clean: { pii: { action: hide } }')], /data\.clean\.pii\.action: must be one of mask, pseudonym, drop, off; got "hide"/],
      [['scan', bad('  clean: { pii: { types: { passport: mask } } }')], /data\.clean\.pii\.types\.passport: unknown key; allowed: credential, apiKey/],
      [['scan', bad('  clean: { pii: { defaultRegion: XX } }')], /data\.clean\.pii\.defaultRegion: must be a supported ISO 3166 region code/],
      [['scan', bad('  clean: { pii: { action: pseudonym, salt: "env:NODETUNE_UNSET_SALT_VARIABLE" } }')], /data\.clean\.pii\.salt: environment variable NODETUNE_UNSET_SALT_VARIABLE is not set/],
      [['scan', bad('  leakage: { nearDuplicateThreshold: 2 }')], /data\.leakage\.nearDuplicateThreshold: must be at most 1, got 2/],
      [['scan', bad('  leakage: yes please')], /data\.leakage: must be true, false or a mapping/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).to.equal(2);
      expect(r.err, argv.join(' ')).to.match(re);
    }
    const missing = await run(['scan', '--data', path.join(dir, 'nope.jsonl')]);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.match(/ERR_IO: .*nope\.jsonl/);
  });
});
