import { expect } from 'chai';
import { classificationMetrics, entityMetrics, exactMatch, extractEntities, normalizeAnswer, perplexity, qaMetrics, tokenF1 } from '../lib/train/metrics';
import { throws } from './helpers';

describe('41 train: metrics against hand-computed values', () => {
  it('classification: accuracy, confusion matrix, per-class precision/recall, macro-F1', () => {
    const refs = [0, 0, 0, 1, 1, 2, 2, 2];
    const preds = [0, 1, 0, 1, 2, 2, 2, 0];
    const m = classificationMetrics(preds, refs, 3);
    expect(m.accuracy).to.equal(5 / 8);
    expect(m.confusion).to.deep.equal([[2, 1, 0], [0, 1, 1], [1, 0, 2]]);
    // class 0: tp 2, predicted 3, support 3 -> P 2/3 R 2/3; class 1: tp 1, pred 2, sup 2 -> P 1/2 R 1/2;
    // class 2: tp 2, pred 3, sup 3 -> P 2/3 R 2/3
    expect(m.perClass.map((c) => c.precision)).to.deep.equal([2 / 3, 1 / 2, 2 / 3]);
    expect(m.perClass.map((c) => c.recall)).to.deep.equal([2 / 3, 1 / 2, 2 / 3]);
    expect(m.perClass.map((c) => c.support)).to.deep.equal([3, 2, 3]);
    expect(m.macroF1).to.be.closeTo((2 / 3 + 1 / 2 + 2 / 3) / 3, 1e-12);
    const skew = classificationMetrics([0, 0, 0, 0], [0, 0, 1, 1]);
    // class 1 never predicted: P 0, R 0, F1 0; class 0: P 1/2, R 1, F1 2/3
    expect(skew.macroF1).to.be.closeTo(1 / 3, 1e-12);
    expect(skew.macroPrecision).to.be.closeTo(0.25, 1e-12);
    expect(throws(() => classificationMetrics([0, 1], [0])).code).to.equal('ERR_ARGUMENT');
    expect(throws(() => classificationMetrics([0, 5], [0, 1], 2)).message).to.match(/example 1/);
  });

  it('perplexity is exp of the mean token loss', () => {
    expect(perplexity(Math.log(7))).to.be.closeTo(7, 1e-12);
    expect(perplexity(0)).to.equal(1);
    expect(throws(() => perplexity(NaN)).code).to.equal('ERR_ARGUMENT');
  });

  it('QA: SQuAD normalisation, exact match and token F1', () => {
    expect(normalizeAnswer('The  Eiffel Tower!')).to.equal('eiffel tower');
    expect(normalizeAnswer('an apple, a day')).to.equal('apple day');
    expect(exactMatch('the Eiffel tower', 'Eiffel Tower.')).to.equal(1);
    expect(exactMatch('Eiffel', 'Eiffel Tower')).to.equal(0);
    // pred {paris, france}, ref {paris}: P 1/2 R 1 F1 2/3
    expect(tokenF1('Paris, France', 'Paris')).to.be.closeTo(2 / 3, 1e-12);
    expect(tokenF1('x y y', 'y y z')).to.be.closeTo(2 / 3, 1e-12); // common 2 of 3 and 3
    expect(tokenF1('a b b', 'b b c')).to.be.closeTo(0.8, 1e-12); // 'a' is an article: P 1, R 2/3
    expect(tokenF1('nothing', 'else')).to.equal(0);
    const q = qaMetrics(['Paris', 'in 1889', 'blue'], [['Paris', 'paris france'], '1889', 'red']);
    expect(q.exactMatch).to.be.closeTo(1 / 3, 1e-12);
    // 1 + F1('in 1889','1889') = P 1/2 R 1 -> 2/3, + 0
    expect(q.f1).to.be.closeTo((1 + 2 / 3) / 3, 1e-12);
  });

  it('token classification: seqeval entity-level F1 (type and span must match)', () => {
    expect(extractEntities(['B-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC', 'I-ORG', 'B-LOC'])).to.deep.equal([
      { type: 'PER', start: 0, end: 1 }, { type: 'LOC', start: 3, end: 4 }, { type: 'ORG', start: 5, end: 5 }, { type: 'LOC', start: 6, end: 6 },
    ]);
    expect(extractEntities(['O', 'I-PER', 'I-PER'])).to.deep.equal([{ type: 'PER', start: 1, end: 2 }]);
    const refs = [['B-PER', 'I-PER', 'O', 'B-LOC'], ['B-ORG', 'O', 'B-PER']];
    const preds = [['B-PER', 'I-PER', 'O', 'B-ORG'], ['B-ORG', 'I-ORG', 'B-PER']];
    // gold: PER(0-1) LOC(3) | ORG(0) PER(2) = 4; predicted: PER(0-1) ORG(3) | ORG(0-1) PER(2) = 4; correct: PER(0-1), PER(2) = 2
    const m = entityMetrics(preds, refs);
    expect(m.precision).to.equal(0.5);
    expect(m.recall).to.equal(0.5);
    expect(m.f1).to.equal(0.5);
    expect(m.perType.PER).to.deep.equal({ precision: 1, recall: 1, f1: 1, support: 2 });
    expect(m.perType.ORG).to.deep.equal({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(throws(() => entityMetrics([['X']], [['O']])).code).to.equal('ERR_DATA');
  });
});
