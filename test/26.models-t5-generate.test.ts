import { expect } from 'chai';
import { AutoModel } from '../lib/models';
import type { Model } from '../lib/models/model';
import { rejects } from './helpers';
import { TIE_MARGIN, fixture, seq2seqGreedyLead } from './models-helpers';
import { T5_FIXTURES, t5Expected } from './t5-helpers';

/** Sum of log-probabilities of `rows` (generated decoder tokens) under a seq2seq model, teacher-forced. */
async function seq2seqScores(model: Model, inputIds: number[][], attentionMask: number[][], rows: number[][]): Promise<number[]> {
  const scores: number[] = [];
  for (let b = 0; b < rows.length; b++) {
    const row = rows[b]!;
    const out = await model.forward({ inputIds: [inputIds[b]!], attentionMask: [attentionMask[b]!], decoderInputIds: [[0, ...row.slice(0, -1)]] });
    scores.push(sumLogProbs(out.logits, out.shape[2]!, row, 0));
  }
  return scores;
}

/** log softmax of logits rows [from + t] at row[t], summed. */
function sumLogProbs(logits: Float32Array, vocab: number, row: number[], from: number): number {
  let total = 0;
  row.forEach((token, t) => {
    const x = logits.subarray((from + t) * vocab, (from + t + 1) * vocab);
    const max = Math.max(...x);
    let z = 0;
    for (const v of x) z += Math.exp(v - max);
    total += x[token]! - max - Math.log(z);
  });
  return total;
}

describe('26 models: T5 / mT5 generation (KV cache, greedy, sampling, beam search)', () => {
  for (const name of T5_FIXTURES) {
    it(`${name}: cached greedy decoding equals the reference's uncached argmax decoding`, async () => {
      const e = t5Expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const rows = await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 8, eosTokenId: null });
      // The reference ids come from another machine and another implementation: equal ids are required because no greedy
      // step of the fixture is a near-tie (checked, teacher-forced, each source alone).
      expect(await seq2seqGreedyLead(model, e.inputIds, e.attentionMask, e.greedy), 'no near-tie in the reference').to.be.above(TIE_MARGIN);
      expect(rows).to.deep.equal(e.greedy);
      // Cached decoding also equals full forwards of this implementation.
      const full = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, decoderInputIds: e.greedy.map((r) => [0, ...r.slice(0, -1)]) });
      const v = full.shape[2]!;
      for (let b = 0; b < 2; b++)
        for (let t = 0; t < 8; t++) {
          const x = full.logits.subarray((b * 8 + t) * v, (b * 8 + t + 1) * v);
          expect(x.indexOf(Math.max(...x))).to.equal(e.greedy[b]![t]);
        }
    });

    it(`${name}: beam search equals the reference (3 beams with EOS, 4 beams with lengthPenalty 2, no EOS)`, async () => {
      const e = t5Expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const inputs = { attentionMask: e.attentionMask };
      expect(await model.generate(e.inputIds, { ...inputs, maxNewTokens: 8, numBeams: 3, eosTokenId: e.beamEos })).to.deep.equal(e.beam3);
      expect(await model.generate(e.inputIds, { ...inputs, maxNewTokens: 8, numBeams: 4, lengthPenalty: 2, eosTokenId: e.beamEos }))
        .to.deep.equal(e.beam4LengthPenalty2);
      expect(await model.generate(e.inputIds, { ...inputs, maxNewTokens: 5, numBeams: 3, eosTokenId: null })).to.deep.equal(e.beam3NoEos);
    });

    it(`${name}: n beams score at least as well as greedy; 1 beam is greedy`, async () => {
      const e = t5Expected(name);
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const greedy = await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 5, eosTokenId: null });
      expect(await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 5, eosTokenId: null, numBeams: 1 })).to.deep.equal(greedy);
      const beams = await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 5, eosTokenId: null, numBeams: 4 });
      const g = await seq2seqScores(model, e.inputIds, e.attentionMask, greedy);
      const b = await seq2seqScores(model, e.inputIds, e.attentionMask, beams);
      for (let i = 0; i < 2; i++) expect(b[i]!).to.be.at.least(g[i]! - 1e-5);
      expect(b.some((s, i) => s > g[i]! + 1e-4), 'beam search finds a better sequence somewhere').to.equal(true);
    });
  }

  it('EOS ends a row (included, no padding: rows differ in length); no start token in the output', async () => {
    const e = t5Expected('mt5-tiny');
    const model = await AutoModel.fromPretrained(fixture('mt5-tiny'), { quiet: true });
    const eos = e.greedy[0]![2]!;
    const rows = await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 8, eosTokenId: eos });
    const cut = (r: number[]) => (r.includes(eos) ? r.slice(0, r.indexOf(eos) + 1) : r);
    expect(rows).to.deep.equal(e.greedy.map(cut));
    expect(rows[0]).to.have.length(3);
    expect(rows[1]!.length).to.not.equal(rows[0]!.length);
    // config.json's eos_token_id (1) is the default.
    const byDefault = await model.generate(e.inputIds, { attentionMask: e.attentionMask, maxNewTokens: 8 });
    expect(byDefault).to.deep.equal(e.greedy.map((r) => (r.includes(1) ? r.slice(0, r.indexOf(1) + 1) : r)));
  });

  it('sampling is reproducible with a seed and stays in the vocabulary', async () => {
    const e = t5Expected('t5-tiny');
    const model = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    const opts = { attentionMask: e.attentionMask, maxNewTokens: 6, temperature: 1.5, topK: 20, seed: 7, eosTokenId: null };
    const a = await model.generate(e.inputIds, opts);
    expect(await model.generate(e.inputIds, opts)).to.deep.equal(a);
    expect(a.every((r) => r.length === 6 && r.every((t) => t >= 0 && t < 100))).to.equal(true);
    expect(a).to.not.deep.equal(e.greedy.map((r) => r.slice(0, 6)));
  });

  it('argument errors: numBeams, lengthPenalty, temperature with beams', async () => {
    const model = await AutoModel.fromPretrained(fixture('t5-tiny'), { quiet: true });
    for (const bad of [{ numBeams: 0 }, { numBeams: 1.5 }, { lengthPenalty: Number.NaN }, { numBeams: 2, temperature: 1 }]) {
      const err = await rejects((async () => model.generate([[5, 6]], { maxNewTokens: 2, ...bad }))());
      expect(err.code, JSON.stringify(bad)).to.equal('ERR_ARGUMENT');
    }
  });

  it('decoder-only models: beam search returns prompt + the best beam, scoring at least as well as greedy', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const prompt = [[12, 37, 1, 6], [8, 22, 33, 2]];
    const greedy = await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null });
    expect(await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null, numBeams: 1 })).to.deep.equal(greedy);
    const beams = await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null, numBeams: 3 });
    expect(beams.map((r) => r.slice(0, 4))).to.deep.equal(prompt);
    const score = async (rows: number[][]) => {
      const out = await model.forward({ inputIds: rows });
      return rows.map((r, b) => sumLogProbs(out.logits.subarray(b * 10 * out.shape[2]!, (b + 1) * 10 * out.shape[2]!), out.shape[2]!, r.slice(4), 3));
    };
    const g = await score(greedy);
    const b = await score(beams);
    for (let i = 0; i < 2; i++) expect(b[i]!).to.be.at.least(g[i]! - 1e-5);
  });
});
