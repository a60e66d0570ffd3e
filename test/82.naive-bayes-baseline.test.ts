import { expect } from 'chai';
import { NaiveBayes, bagOfWords } from '../lib/train/baseline';
import { NodetuneError } from '../lib/errors';
import { expectClose } from './helpers';

// Counted by hand: spam has 7 words (buy 1, cheap 3, pills 1, ! 1, offer 1), ham 6 (meeting 1, at 2, noon 2, lunch 1);
// the vocabulary has 9 words, so with alpha 1 P(w | spam) = (count + 1) / 16 and P(w | ham) = (count + 1) / 15.
const texts = ['Buy cheap pills!', 'cheap, CHEAP offer', 'meeting at noon', "lunch at noon"];
const labels = ['spam', 'spam', 'ham', 'ham'];

describe('82 naive Bayes baseline (multinomial, bag of words, Laplace smoothing)', () => {
  it('words: lowercased letters and digits, inner apostrophes kept, runs of $ and !', () => {
    expect(bagOfWords("Don't pay $$$ now!! Call 555-0100")).to.deep.equal(["don't", 'pay', '$$$', 'now', '!!', 'call', '555', '0100']);
    expect(bagOfWords('  ')).to.deep.equal([]);
  });

  it('scores are the hand-computed log prior + log likelihoods; the larger product wins', () => {
    const nb = NaiveBayes.fit(texts, labels);
    expect(nb.labels).to.deep.equal(['spam', 'ham']);
    expect(nb.vocabularySize).to.equal(9);
    expectClose(nb.scores('cheap noon'), [Math.log(0.5) + Math.log(4 / 16) + Math.log(1 / 16), Math.log(0.5) + Math.log(1 / 15) + Math.log(3 / 15)], { atol: 1e-12 }, 'scores');
    expect(nb.predict('cheap noon')).to.equal('spam'); // 4/16 * 1/16 = 0.0156 > 1/15 * 3/15 = 0.0133
    expect(nb.predict('cheap lunch at noon')).to.equal('ham'); // 4 * 1 * 1 * 1 / 16^4 < 1 * 2 * 3 * 3 / 15^4
    // Unseen words are ignored: equal priors, a tie, the first class.
    expectClose(nb.scores('zebra'), [Math.log(0.5), Math.log(0.5)], { atol: 1e-12 }, 'prior only');
    expect(nb.predict('zebra')).to.equal('spam');
  });

  it('alpha changes the smoothing; priors follow the class counts', () => {
    const nb = NaiveBayes.fit(['a a', 'a b', 'b'], ['x', 'x', 'y'], { alpha: 0.5 });
    // x: a 3, b 1 (4 words); y: b 1 (1 word); vocabulary 2: P(a|x) = 3.5/5, P(a|y) = 0.5/2.
    expectClose(nb.scores('a'), [Math.log(2 / 3) + Math.log(3.5 / 5), Math.log(1 / 3) + Math.log(0.5 / 2)], { atol: 1e-12 }, 'scores');
  });

  it('evaluate: accuracy and macro-F1 over labelled texts; a label unseen in training is a miss', () => {
    const nb = NaiveBayes.fit(texts, labels);
    const m = nb.evaluate(['cheap pills', 'noon meeting', 'cheap noon', 'hello'], ['spam', 'ham', 'ham', 'other']);
    // predicted spam, ham, spam, spam (tie): 2 of 4 right.
    expect(m.accuracy).to.equal(0.5);
    // spam: precision 1/3, recall 1 -> F1 0.5; ham: precision 1, recall 1/2 -> F1 2/3; other: 0. Mean over 3 classes.
    expectClose([m.macroF1], [(0.5 + 2 / 3 + 0) / 3], { atol: 1e-12 }, 'macro-F1');
  });

  it('bad input is a typed error', () => {
    expect(() => NaiveBayes.fit(['a'], [])).to.throw(NodetuneError, /1 texts but 0 labels/);
    expect(() => NaiveBayes.fit([], [])).to.throw(NodetuneError, /no training texts/);
    expect(() => NaiveBayes.fit(['a'], ['x'], { alpha: 0 })).to.throw(NodetuneError, /alpha must be a positive number/);
  });
});
