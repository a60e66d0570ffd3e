import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { LshIndex, MinHasher, Rng, describeLeakage, dropLeaked, findLeakage, jaccard, lshBands } from '../lib/data';
import type { Example } from '../lib/data';
import { prepareData } from '../lib/cli/data';
import { tempDir } from './helpers';

const WORDS = 'the a movie film story plot actor scene music light dark slow fast funny sad long short good bad great weak strong warm cold city night day house road river'.split(' ');

function sentence(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]! + (rng.int(4) === 0 ? String(rng.int(1000)) : '')).join(' ');
}

/** The sentence with its word at `i` replaced. */
function changeWord(s: string, i: number, word: string): string {
  const w = s.split(' ');
  w[i] = word;
  return w.join(' ');
}

const at = (file: string) => (ex: { text: string }, i: number): Example => ({ ...ex, source: { file, line: i + 1 } });

describe('33 data: leakage between splits (exact, normalised, MinHash near-duplicates)', function () {
  const rng = new Rng(7);
  const base = Array.from({ length: 200 }, () => sentence(rng, 40));
  const train: Example[] = base.map((text) => ({ text })).map(at('train.jsonl'));

  it('MinHash: signature agreement estimates Jaccard similarity; LSH bands catch pairs at the threshold', function () {
    const h = new MinHasher({ numPermutations: 128 });
    let worst = 0;
    for (let i = 0; i < 40; i++) {
      const a = base[i]!;
      const b = changeWord(changeWord(a, 5 + (i % 30), 'zebra'), 20, 'quokka');
      const sa = h.shingles(a);
      const sb = h.shingles(b);
      const [ga, gb] = [h.signature(sa), h.signature(sb)];
      const agree = ga.filter((v, k) => v === gb[k]).length / ga.length;
      worst = Math.max(worst, Math.abs(agree - jaccard(sa, sb)));
    }
    expect(worst).to.be.below(0.15);
    expect(lshBands(128, 0.8)).to.deep.equal({ bands: 21, rows: 6 });
    const { bands, rows } = lshBands(128, 0.8);
    const index = new LshIndex(bands, rows);
    base.forEach((t, i) => index.add(i, h.signature(h.shingles(t))));
    let found = 0;
    for (let i = 0; i < 100; i++) {
      const near = changeWord(base[i]!, 39, 'zebra'); // Jaccard 38/40
      if (index.candidates(h.signature(h.shingles(near))).has(i)) found++;
    }
    expect(found).to.be.at.least(99);
    expect(jaccard(h.shingles('a b c d'), h.shingles('a b c d'))).to.equal(1);
    expect(jaccard(h.shingles('a b c d'), h.shingles('e f g h'))).to.equal(0);
  });

  it('finds exact, normalised and near-duplicate rows of validation/test in train, by their closest kind, and nothing else', function () {
    const validation: Example[] = [
      { text: base[0]! }, // exact
      { text: `  ${base[1]!.toUpperCase()}!!  ` }, // normalised: case, punctuation, spacing
      { text: base[2]!.replace(/a/g, 'ａ') }, // normalised: full-width letters (NFKC)
      { text: changeWord(base[3]!, 20, 'zebra') }, // near: 3 of 38 shingles changed
      { text: sentence(rng, 40) }, // new
      { text: changeWord(changeWord(changeWord(base[4]!, 8, 'x1'), 18, 'x2'), 28, 'x3') }, // below 0.8: 9 of 38 changed
    ].map(at('dev.jsonl'));
    const test: Example[] = [{ text: base[5]! }, { text: sentence(rng, 40) }].map(at('test.jsonl'));
    const r = findLeakage({ train, validation, test });
    expect(r.splits.validation).to.deep.equal({ rows: 6, leaked: 4, exact: 1, normalized: 2, near: 1 });
    expect(r.splits.test).to.deep.equal({ rows: 2, leaked: 1, exact: 1, normalized: 0, near: 0 });
    expect(r.leakedTrainRows).to.deep.equal([0, 1, 2, 3, 5]);
    expect(r.pairs.map((p) => [p.split, p.kind, (p.heldOut as { line: number }).line, (p.train as { line: number }).line])).to.deep.equal([
      ['validation', 'exact', 1, 1], ['validation', 'normalized', 2, 2], ['validation', 'normalized', 3, 3], ['validation', 'near', 4, 4], ['test', 'exact', 1, 6],
    ]);
    const near = r.pairs.find((p) => p.kind === 'near')!;
    expect(near.similarity).to.be.within(0.8, 0.95);
    expect(describeLeakage(r)).to.equal('leakage: validation 4 of 6 rows in train (exact 1, normalized 2, near-duplicate 1); test 1 of 2 rows in train '
      + '(exact 1, normalized 0, near-duplicate 0); 5 of 200 train rows involved (near-duplicate: Jaccard >= 0.8)');
    // Locations only: no text of any row in the report.
    const json = JSON.stringify(r);
    for (const ex of [...validation, ...test]) expect(json).to.not.contain(ex.text!.slice(0, 20));
    const kept = dropLeaked(train, r);
    expect(kept).to.have.length(195);
    expect(findLeakage({ train: kept, validation, test }).leakedTrainRows).to.deep.equal([]);
  });

  it('the threshold and nearDuplicates options; rows without a source are located by row number; bad options are typed errors', function () {
    const validation: Example[] = [{ text: changeWord(changeWord(changeWord(base[4]!, 8, 'x1'), 18, 'x2'), 28, 'x3') }];
    expect(findLeakage({ train, validation }, { threshold: 0.6 }).pairs.map((p) => [p.kind, p.heldOut, (p.train as { line: number }).line]))
      .to.deep.equal([['near', { row: 1 }, 5]]);
    expect(findLeakage({ train, validation: [{ text: changeWord(base[3]!, 20, 'zebra') }] }, { nearDuplicates: false }).splits.validation!.leaked).to.equal(0);
    for (const [opts, field] of [[{ threshold: 0 }, 'threshold'], [{ threshold: 1.5 }, 'threshold'], [{ maxPairs: -1 }, 'maxPairs']] as const) {
      let err: (Error & { code?: string; details?: { field?: string } }) | undefined;
      try {
        findLeakage({ train, validation: [] }, opts);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err?.code).to.equal('ERR_ARGUMENT');
      expect(err?.details?.field).to.equal(field);
    }
  });

  it('prepareData (nodetune train) notes the leakage, and with drop: true removes the leaked rows from train only', async function () {
    const dir = tempDir();
    const write = (f: string, rows: string[]) => fs.writeFileSync(path.join(dir, f), rows.map((text, i) => JSON.stringify({ text, label: i % 2 ? 'pos' : 'neg' })).join('\n') + '\n');
    write('train.jsonl', base.slice(0, 20));
    write('dev.jsonl', [base[0]!, base[1]!.toUpperCase(), sentence(rng, 40), sentence(rng, 40)]);
    const data = { train: path.join(dir, 'train.jsonl'), validation: path.join(dir, 'dev.jsonl') };
    const checked = await prepareData(data, 'classification');
    expect(checked.train).to.have.length(20);
    expect(checked.notes).to.include('leakage: validation 2 of 4 rows in train (exact 1, normalized 1, near-duplicate 0); 2 of 20 train rows involved (near-duplicate: Jaccard >= 0.8)');
    const dropped = await prepareData({ ...data, leakage: { drop: true } }, 'classification');
    expect(dropped.train).to.have.length(18);
    expect(dropped.validation).to.have.length(4);
    expect(dropped.notes).to.include('leakage: dropped 2 train rows that match validation/test rows; 18 left');
    const off = await prepareData({ ...data, leakage: false }, 'classification');
    expect(off.notes.some((n) => n.startsWith('leakage'))).to.equal(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
