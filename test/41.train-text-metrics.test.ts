import { expect } from 'chai';
import { corpusBleu, generationMetrics, rougeL, rougeN, rougeTokens, tokenize13a } from '../lib/train/text-metrics';
import { throws } from './helpers';

// sacrebleu's test/test_bleu.py (github.com/mjpost/sacrebleu, commit f615c72): the README example.
const HYPS = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.'];
const REF_STREAMS = [
  ['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'],
  ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.'],
];
const REFS = HYPS.map((_, i) => REF_STREAMS.map((s) => s[i]!));

// rouge-score's rouge/testdata/target.txt and prediction.txt, lines 1 and 2 (github.com/google-research/google-research,
// rouge/, commit 10bf941); expected values from rouge_scorer_test.py (ROUGE-1.5.5 runs).
const TARGETS = [
  "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L",
  "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN",
];
const PREDICTIONS = [
  "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi",
  "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD",
];

describe('41 train: text-generation metrics against published reference values', function () {
  it("corpus BLEU equals sacrebleu's corpus_bleu (13a, exp smoothing, closest reference length)", function () {
    // test_corpus_bleu: default settings and tokenize '13a' 48.530827, tokenize 'none' 49.1919566, empty hypotheses 0
    expect(corpusBleu(HYPS, REFS).score).to.be.closeTo(48.530827, 1e-6);
    expect(corpusBleu(HYPS, REFS, { tokenize: 'none' }).score).to.be.closeTo(49.1919566, 1e-6);
    expect(corpusBleu(['', '', ''], REFS).score).to.equal(0);
    // test_max_ngram_order (rounded to 2 decimals there)
    const orders: Array<[number, string]> = [[1, '77.65'], [2, '60.50'], [3, '53.93'], [4, '48.53'], [5, '46.14'], [6, '43.28']];
    for (const [n, want] of orders) expect(corpusBleu(HYPS, REFS, { maxOrder: n }).score.toFixed(2)).to.equal(want);
    // test_statistics: matched and total n-gram counts
    const s = corpusBleu(['am I am a character sequence'], ['I am a symbol string sequence a a'], { tokenize: 'none' });
    expect(s.counts).to.deep.equal([4, 2, 1, 0]);
    expect(s.totals).to.deep.equal([6, 5, 4, 3]);
    expect(corpusBleu(['this is a test'], ['this is a test']).score).to.be.closeTo(100, 1e-9);
    expect(throws(() => corpusBleu(['a'], [])).code).to.equal('ERR_ARGUMENT');
  });

  it('13a tokenization splits punctuation but keeps numbers together', function () {
    // the apostrophe (0x27) is outside 13a's punctuation ranges
    expect(tokenize13a("It wasn't surprising.")).to.equal("It wasn't surprising .");
    expect(tokenize13a('It costs 3.50, or 1,000-2 &amp; more (maybe)!')).to.equal('It costs 3.50 , or 1,000 - 2 & more ( maybe ) !');
  });

  it("ROUGE-L (and ROUGE-N) equal rouge-score's RougeScorer without stemming", function () {
    expect(rougeTokens("Hello, World! It's 2024")).to.deep.equal(['hello', 'world', 'it', 's', '2024']);
    // testRougeLConsecutive / testRougeLNonConsecutive
    for (const pred of ['testing one', 'testing two']) {
      const r = rougeL('testing one two', pred);
      expect(r.precision).to.be.closeTo(1, 1e-12);
      expect(r.recall).to.be.closeTo(2 / 3, 1e-12);
      expect(r.fmeasure).to.be.closeTo(4 / 5, 1e-12);
    }
    expect(rougeL('testing one two', '')).to.deep.equal({ precision: 0, recall: 0, fmeasure: 0 });
    // testRougeLAgainstRouge155 (5 places)
    const l0 = rougeL(TARGETS[0]!, PREDICTIONS[0]!), l1 = rougeL(TARGETS[1]!, PREDICTIONS[1]!);
    expect([l0.recall, l0.precision, l0.fmeasure].map((x) => x.toFixed(5))).to.deep.equal(['0.40741', '0.68750', '0.51163']);
    expect([l1.recall, l1.precision, l1.fmeasure].map((x) => x.toFixed(5))).to.deep.equal(['0.40476', '0.65385', '0.50000']);
    // testRouge2AgainstRouge155 and testRouge1
    const r2 = rougeN(TARGETS[0]!, PREDICTIONS[0]!, 2);
    expect([r2.recall, r2.precision, r2.fmeasure].map((x) => x.toFixed(5))).to.deep.equal(['0.30769', '0.53333', '0.39024']);
    expect(rougeN('testing one two', 'testing', 1).fmeasure).to.be.closeTo(0.5, 1e-12);
  });

  it('generationMetrics: SQuAD-normalised exact match and F1, mean ROUGE-L, corpus BLEU', function () {
    const m = generationMetrics(['The Blue sky!', 'a cat sat'], ['blue sky', 'the dog sat']);
    expect(m.exact_match).to.equal(0.5);
    // second: tokens [cat, sat] vs [dog, sat]: P 1/2 R 1/2 F1 1/2
    expect(m.f1).to.be.closeTo((1 + 0.5) / 2, 1e-12);
    // ROUGE-L keeps articles: "the blue sky" vs "blue sky" -> P 2/3 R 1 F 0.8; "a cat sat" vs "the dog sat" -> 1/3, 1/3
    expect(m.rougeL).to.be.closeTo((0.8 + 1 / 3) / 2, 1e-12);
    expect(m.bleu).to.equal(corpusBleu(['The Blue sky!', 'a cat sat'], ['blue sky', 'the dog sat']).score);
  });
});
