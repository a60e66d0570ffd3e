import { expect } from 'chai';
import { AutoModel, Model } from '../lib/models';
import { TIE_MARGIN, expected, fixture } from './models-helpers';
import { expectClose } from './helpers';

/** Log-softmax of one row of logits (float64). */
function logSoftmax(row: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  return Array.from(row, (x) => x - lse);
}

/** The last position's logits of one unpadded row. */
async function lastLogits(model: Model, row: number[]): Promise<number[]> {
  const out = await model.forward({ inputIds: [row] });
  const v = out.shape[2]!;
  return Array.from(out.logits.subarray((row.length - 1) * v, row.length * v));
}

interface Penalties { presence: number; frequency: number; bias?: Record<number, number> }

/**
 * Greedy decoding re-computed in JS from full forwards with OpenAI's definition: logits[t] -= count[t] * frequency +
 * (count[t] > 0) * presence over the generated tokens, plus the bias. Where the best two processed logits are within
 * TIE_MARGIN the native choice is followed (it may go either way); returns the ids and how many steps were ties.
 */
async function referenceGreedy(model: Model, prompt: number[], steps: number, p: Penalties, native: number[]): Promise<{ ids: number[]; ties: number }> {
  const seq = [...prompt];
  const counts = new Map<number, number>();
  let ties = 0;
  for (let s = 0; s < steps; s++) {
    const logits = await lastLogits(model, seq);
    const processed = logits.map((x, t) => {
      const c = counts.get(t) ?? 0;
      return x - c * p.frequency - (c > 0 ? p.presence : 0) + (p.bias?.[t] ?? 0);
    });
    const order = processed.map((x, t) => [x, t] as const).sort((a, b) => b[0] - a[0]);
    let next = order[0]![1];
    if (order[0]![0] - order[1]![0] < TIE_MARGIN) (ties++, (next = native[prompt.length + s]!));
    seq.push(next);
    counts.set(next, (counts.get(next) ?? 0) + 1);
  }
  return { ids: seq, ties };
}

describe('21 models: per-row sampling options (penalties, logit bias, logprobs)', () => {
  const prompts = () => expected('llama').inputIds.slice(0, 2).map((r) => r.slice(0, 4));

  it('presence and frequency penalties per row match a JS re-computation and change the repetition', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const [a, b] = prompts() as [number[], number[]];
    const rows: Penalties[] = [{ presence: 1.5, frequency: 0 }, { presence: 0, frequency: 2 }];
    const plain = await model.generate([a, b], { maxNewTokens: 10, eosTokenId: null });
    const out = await model.generate([a, b], {
      maxNewTokens: 10, eosTokenId: null, presencePenalty: rows.map((r) => r.presence), frequencyPenalty: rows.map((r) => r.frequency),
    });
    for (const [i, prompt] of [a, b].entries()) {
      const ref = await referenceGreedy(model, prompt, 10, rows[i]!, out[i]!);
      expect(ref.ties, 'near-ties in the fixture').to.be.below(3);
      expect(out[i], `row ${i}`).to.deep.equal(ref.ids);
    }
    // The tiny random model repeats itself greedily; the penalties make it repeat less.
    const distinct = (r: number[]) => new Set(r.slice(4)).size;
    expect(distinct(plain[0]!) + distinct(plain[1]!)).to.be.below(distinct(out[0]!) + distinct(out[1]!));
  });

  it('penaltyContext counts a continued generation\'s earlier tokens, as one call would', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const [a] = prompts() as [number[]];
    const opts = { eosTokenId: null, frequencyPenalty: 1, presencePenalty: 0.5 };
    const whole = await model.generate([a], { ...opts, maxNewTokens: 8 });
    const first = await model.generate([a], { ...opts, maxNewTokens: 4 });
    const rest = await model.generate(first, { ...opts, maxNewTokens: 4, penaltyContext: 4 });
    expect(rest).to.deep.equal(whole);
    const forgetful = await model.generate(first, { ...opts, maxNewTokens: 4 });
    expect(forgetful, 'without the context the penalties start over').to.not.deep.equal(whole);
  });

  it('logit bias bans the greedy token or forces another, per row', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const [a, b] = prompts() as [number[], number[]];
    const plain = await model.generate([a, b], { maxNewTokens: 3, eosTokenId: null });
    const banned = plain[0]![4]!;
    const out = await model.generate([a, b], { maxNewTokens: 3, eosTokenId: null, logitBias: [{ [banned]: -100 }, { 7: 100 }] });
    expect(out[0]!.slice(4)).to.not.include(banned);
    const ref = await referenceGreedy(model, a, 3, { presence: 0, frequency: 0, bias: { [banned]: -100 } }, out[0]!);
    expect(out[0]).to.deep.equal(ref.ids);
    expect(out[1]!.slice(4)).to.deep.equal([7, 7, 7]);
    // One map applies to every row.
    const both = await model.generate([a, b], { maxNewTokens: 1, eosTokenId: null, logitBias: { 9: 100 } });
    expect(both.map((r) => r[4])).to.deep.equal([9, 9]);
  });

  it('logprobs are the log-softmax of forward() logits, with the best alternatives in order', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const [a, b] = prompts() as [number[], number[]];
    const out = await model.generateDetailed([a, b], { maxNewTokens: 5, eosTokenId: null, logprobs: 3, temperature: 1, seed: 3 });
    expect(out.logprobs).to.have.length(2);
    for (const [i, prompt] of [a, b].entries()) {
      const row = out.sequences[i]!;
      const steps = out.logprobs![i]!;
      expect(steps.map((s) => s.token)).to.deep.equal(row.slice(4));
      for (const [s, step] of steps.entries()) {
        const ref = logSoftmax(await lastLogits(model, row.slice(0, prompt.length + s)));
        expectClose(step.logprob, ref[step.token]!, { rtol: 1e-4, atol: 1e-4 }, `row ${i} step ${s} chosen`);
        const best = ref.map((x, t) => [x, t] as const).sort((x, y) => y[0] - x[0]).slice(0, 3);
        expectClose(step.top.map((t) => t.logprob), best.map((x) => x[0]), { rtol: 1e-4, atol: 1e-4 }, `row ${i} step ${s} top`);
        for (const [j, t] of step.top.entries()) expectClose(t.logprob, ref[t.token]!, { rtol: 1e-4, atol: 1e-4 }, `row ${i} step ${s} top ${j}`);
      }
    }
    const none = await model.generateDetailed([a], { maxNewTokens: 2 });
    expect(none.logprobs).to.equal(null);
  });

  it('default values change nothing: the same ids, greedy and sampled', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const rows = prompts();
    for (const sampling of [{}, { temperature: 1.2, topP: 0.9, topK: 20, seed: 5 }]) {
      const plain = await model.generate(rows, { maxNewTokens: 8, eosTokenId: null, ...sampling });
      const zeros = await model.generateDetailed(rows, { maxNewTokens: 8, eosTokenId: null, ...sampling, presencePenalty: 0, frequencyPenalty: [0, 0], logitBias: {}, logprobs: 0 });
      expect(zeros.sequences).to.deep.equal(plain);
      expect(zeros.logprobs![0]![0]!.top).to.deep.equal([]);
    }
  });

  it('validates the per-row options with precise messages', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const bad: [Record<string, unknown>, RegExp, string][] = [
      [{ presencePenalty: Number.NaN }, /presencePenalty must be a finite number/, 'presencePenalty'],
      [{ frequencyPenalty: [1] }, /frequencyPenalty must be a number or an array of 2 numbers/, 'frequencyPenalty'],
      [{ logitBias: { abc: 1 } }, /logitBias key 'abc' is not a token id \(vocabulary size 48\)/, 'logitBias'],
      [{ logitBias: { 48: 1 } }, /logitBias key '48' is not a token id/, 'logitBias'],
      [{ logitBias: [{ 1: 1 }, { 2: 'x' }] }, /logitBias\[1\]\['2'\] must be a finite number/, 'logitBias'],
      [{ logprobs: -1 }, /logprobs must be an integer in \[0, 48\]/, 'logprobs'],
      [{ numBeams: 2, presencePenalty: 1 }, /beam search \(numBeams > 1\) takes no presencePenalty/, 'presencePenalty'],
    ];
    for (const [o, message, field] of bad) {
      const e = (() => {
        try { void model.generateDetailed(prompts(), { maxNewTokens: 2, ...o }); } catch (err) { return err as Error & { code?: string; details?: Record<string, unknown> }; }
        throw new Error(`no error for ${JSON.stringify(o)}`);
      })();
      expect(e.code).to.equal('ERR_ARGUMENT');
      expect(e.message).to.match(message);
      expect(e.details?.field).to.equal(field);
    }
  });
});
