import { expect } from 'chai';
import { AutoModel } from '../lib/models';
import type { GenerationSession, SessionToken } from '../lib/models/session';
import { expectClose } from './helpers';
import { TIE_MARGIN, expected, fixture, greedyLead } from './models-helpers';

/** Steps until every row finished; the tokens per row in order. */
async function drain(session: GenerationSession, out = new Map<number, SessionToken[]>()): Promise<Map<number, SessionToken[]>> {
  while (session.running > 0) {
    const step = await session.step();
    for (const t of step.tokens) out.set(t.row, [...(out.get(t.row) ?? []), t]);
  }
  return out;
}

describe('21 models: generation sessions (continuous batching)', () => {
  for (const name of ['gpt2', 'llama', 'qwen2']) {
    it(`${name}: one row in a session equals generate() exactly (greedy and seeded sampling)`, async () => {
      const model = await AutoModel.fromPretrained(fixture(name), { quiet: true });
      const prompt = expected(name).inputIds[0]!.slice(0, 5);
      for (const sampling of [{}, { temperature: 0.9, topK: 20, topP: 0.9, seed: 7 }, { temperature: 1.1, seed: 3, presencePenalty: 0.5, frequencyPenalty: 0.3, repetitionPenalty: 1.2 }]) {
        const want = (await model.generate([prompt], { maxNewTokens: 8, eosTokenId: null, ...sampling }))[0]!.slice(5);
        const session = model.createSession();
        const row = session.add(prompt, { maxNewTokens: 8, stopTokens: null, ...sampling });
        const got = (await drain(session)).get(row)!;
        session.close();
        // The same computation (a batch of one, the same prefill and cache, one generator per row seeded alike).
        expect(got.map((t) => t.token), JSON.stringify(sampling)).to.deep.equal(want);
        expect(got.map((t) => t.finish)).to.deep.equal([...new Array<null>(7).fill(null), 'length']);
      }
    });
  }

  it('qwen2 bfloat16: the decoding product of a few rows (native/nn/decode_linear) agrees with LibTorch\'s over many', async () => {
    const model = await AutoModel.fromPretrained(fixture('qwen2'), { quiet: true, dtype: 'bfloat16' });
    const ids = expected('qwen2').inputIds[0]!.slice(0, 6);
    // One row per position: 1 row takes the decoding kernel (on CPUs with AVX2), 6 rows LibTorch's product.
    const few = await model.forward({ inputIds: [ids.slice(0, 1)] });
    const many = await model.forward({ inputIds: ids.map((t) => [t]) });
    const v = few.shape[2]!;
    // bfloat16 activations: both accumulate in float32, rounding the same inputs once per product.
    expectClose(few.logits, many.logits.subarray(0, v), { rtol: 3e-2, atol: 3e-2 }, 'logits');
    // A bfloat16 session row equals generate() (both decode through the same kernel).
    const want = (await model.generate([ids], { maxNewTokens: 5, eosTokenId: null }))[0]!.slice(6);
    const session = model.createSession();
    const row = session.add(ids, { maxNewTokens: 5, stopTokens: null });
    expect((await drain(session)).get(row)!.map((t) => t.token)).to.deep.equal(want);
    session.close();
  });

  it('llama: rows joining and leaving mid-generation give the same tokens as each alone', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const prompts = [[5, 9, 13, 22], [7, 11], [3, 4, 5, 6, 7, 8, 9], [12]];
    const lengths = [10, 4, 6, 8];
    const alone = await Promise.all(prompts.map(async (p, i) => (await model.generate([p], { maxNewTokens: lengths[i]!, eosTokenId: null }))[0]!));
    expect(await greedyLead(model, alone, prompts.map((p) => p.length)), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
    const session = model.createSession();
    const rows: number[] = [];
    const got = new Map<number, SessionToken[]>();
    const collect = (tokens: SessionToken[]) => tokens.forEach((t) => got.set(t.row, [...(got.get(t.row) ?? []), t]));
    rows.push(session.add(prompts[0]!, { maxNewTokens: lengths[0]!, stopTokens: null }));
    collect((await session.step()).tokens);
    collect((await session.step()).tokens);
    // A short prompt joins a longer running row, then a prompt longer than the cached length (the cache shifts).
    rows.push(session.add(prompts[1]!, { maxNewTokens: lengths[1]!, stopTokens: null }));
    collect((await session.step()).tokens);
    rows.push(session.add(prompts[2]!, { maxNewTokens: lengths[2]!, stopTokens: null }));
    const joined = await session.step();
    collect(joined.tokens);
    expect(joined.rows).to.equal(3);
    rows.push(session.add(prompts[3]!, { maxNewTokens: lengths[3]!, stopTokens: null }));
    await drain(session, got);
    session.close();
    rows.forEach((row, i) => expect(got.get(row)!.map((t) => t.token), `row ${i}`).to.deep.equal(alone[i]!.slice(prompts[i]!.length)));
  });

  it('llama: a cancelled row frees its cache rows at the next step; other rows go on unchanged', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const a = [5, 9, 13, 22], b = [7, 11, 2, 3, 4, 5, 6, 7, 8];
    const alone = (await model.generate([a], { maxNewTokens: 6, eosTokenId: null }))[0]!;
    const want = alone.slice(a.length);
    // a is prefilled left-padded beside b (other float paths): the same ids where no greedy step is a near-tie.
    expect(await greedyLead(model, [alone], a.length), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
    const session = model.createSession();
    const ra = session.add(a, { maxNewTokens: 6, stopTokens: null });
    const rb = session.add(b, { maxNewTokens: 50, stopTokens: null });
    const first = await session.step();
    expect(first.rows).to.equal(2);
    expect(first.length).to.equal(b.length); // right-aligned on the longer prompt
    session.cancel(rb);
    expect(session.running).to.equal(1);
    const second = await session.step();
    expect(second.rows).to.equal(1);
    expect(second.tokens.map((t) => t.row)).to.deep.equal([ra]);
    // The positions only the cancelled row used are dropped: a's prompt and its first token remain.
    expect(second.length).to.equal(a.length + 1);
    const rest = await drain(session);
    const tokens = [first.tokens.find((t) => t.row === ra)!, second.tokens[0]!, ...rest.get(ra)!].map((t) => t.token);
    expect(tokens).to.deep.equal(want);
    const done = await session.step();
    expect(done).to.deep.include({ rows: 0, length: 0, capacity: 0 });
    session.close();
  });

  it('llama: per-row options in one step (stop tokens, logit bias, logprobs); bad input is refused', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const prompt = [5, 9, 13, 22];
    const whole = (await model.generate([prompt], { maxNewTokens: 4, eosTokenId: null }))[0]!;
    const greedy = whole.slice(4);
    // Three rows prefilled together (other matrix shapes than alone): equal where no greedy step is a near-tie.
    expect(await greedyLead(model, [whole], 4), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
    const session = model.createSession();
    const plain = session.add(prompt, { maxNewTokens: 4, stopTokens: null, logprobs: 2 });
    const stopped = session.add(prompt, { maxNewTokens: 4, stopTokens: [greedy[1]!] });
    const banned = session.add(prompt, { maxNewTokens: 4, stopTokens: null, logitBias: { [greedy[0]!]: -100 } });
    const out = await drain(session);
    expect(out.get(plain)!.map((t) => t.token)).to.deep.equal(greedy);
    expect(out.get(plain)![0]!.logprob!.top).to.have.length(2);
    expect(out.get(plain)![0]!.logprob!.top[0]!.token).to.equal(greedy[0]);
    const end = greedy.indexOf(greedy[1]!) + 1;
    expect(out.get(stopped)!.map((t) => t.token)).to.deep.equal(greedy.slice(0, end));
    expect(out.get(stopped)![end - 1]!.finish).to.equal('stop');
    expect(out.get(banned)![0]!.token).to.not.equal(greedy[0]);
    for (const [ids, options, re] of [
      [[], { maxNewTokens: 2 }, /non-empty/], [[1e6], { maxNewTokens: 2 }, /not a token id/], [prompt, { maxNewTokens: 0 }, /maxNewTokens/],
      [prompt, { maxNewTokens: 2, topP: 0 }, /topP/], [prompt, { maxNewTokens: 2, bogus: 1 }, /bogus/],
    ] as const) {
      expect(() => session.add(ids as number[], options as never), JSON.stringify(options)).to.throw(re);
    }
    session.close();
    expect(() => session.add(prompt, { maxNewTokens: 1 })).to.throw(/closed/);
    const cls = await AutoModel.fromPretrained(fixture('mistral-cls'), { quiet: true });
    expect(() => cls.createSession()).to.throw(/causal-lm/);
  });
});
