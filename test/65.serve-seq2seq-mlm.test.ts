import { expect } from 'chai';
import { startServer } from '../lib/serve';
import type { RunningServer } from '../lib/serve';
import { pipeline } from '../lib/pipelines';
import type { FillMaskResult } from '../lib/pipelines/fill-mask';
import { expectClose } from './helpers';
import { TIE_MARGIN, seq2seqGreedyLead } from './models-helpers';
import { modelDir, t5Tokenizer, wordPieceTokenizer } from './seq2seq-mlm-helpers';

async function post(s: RunningServer, path: string, body: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await fetch(s.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

describe('65 serve: /v1/text2text (T5) and /v1/fill-mask (BERT)', function () {
  this.timeout(60_000);
  const servers: RunningServer[] = [];
  after(async () => { await Promise.all(servers.map((s) => s.close())); });

  it('/v1/text2text answers as the text2text-generation pipeline (greedy and beams), batched inputs in order', async () => {
    const dir = modelDir('t5-tiny', t5Tokenizer);
    const s = await startServer({ model: dir, name: 't5', port: 0 });
    servers.push(s);
    const p = await pipeline('text2text-generation', dir);
    const inputs = ['the cat sat', 'a dog ran to the tree'];
    // The server runs both inputs as one padded batch (other float paths than one at a time): the same greedy text
    // because no greedy step of the fixture is a near-tie (checked).
    const sources = await Promise.all(inputs.map(async (t) => (await p.tokenizer.encode(t)).ids));
    const rows = await Promise.all(sources.map(async (ids) => (await p.model.generate([ids], { maxNewTokens: 6 }))[0]!));
    expect(await seq2seqGreedyLead(p.model, sources, undefined, rows), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
    for (const beams of [1, 3]) {
      const want = await Promise.all(inputs.map(async (t) => ((await p(t, { maxNewTokens: 6, numBeams: beams })) as { generated_text: string }[])[0]!.generated_text));
      const r = await post(s, '/v1/text2text', { model: 't5', input: inputs, max_tokens: 6, num_beams: beams });
      expect(r.status).to.equal(200);
      expect(r.json.model).to.equal('t5');
      expect(r.json.data.map((d: { index: number; generated_text: string }) => [d.index, d.generated_text])).to.deep.equal(want.map((t, i) => [i, t]));
    }
    const health = await fetch(s.url + '/healthz').then((x) => x.json()) as { task: string };
    expect(health.task).to.equal('seq2seq-lm');
    // The other tasks' routes name the right one; bad fields are 400s naming them.
    const wrong = await post(s, '/v1/completions', { prompt: 'x' });
    expect(wrong.status).to.equal(400);
    expect(wrong.json.error.message).to.match(/use \/v1\/text2text/);
    expect((await post(s, '/v1/fill-mask', { input: 'x' })).status).to.equal(400);
    const bad = await post(s, '/v1/text2text', { input: 'x', num_beams: 0 });
    expect(bad.status).to.equal(400);
    expect(bad.json.error.message).to.match(/num_beams/);
    const beamsSampling = await post(s, '/v1/text2text', { input: 'x', num_beams: 2, temperature: 0.7 });
    expect(beamsSampling.status).to.equal(400);
    expect(beamsSampling.json.error.message).to.match(/beam search is greedy/);
  });

  it('/v1/fill-mask answers as the fill-mask pipeline (top_k per mask); a text without the mask token is a 400', async () => {
    const dir = modelDir('bert-mlm', wordPieceTokenizer);
    const s = await startServer({ model: dir, name: 'bert', port: 0 });
    servers.push(s);
    const p = await pipeline('fill-mask', dir);
    const texts = ['the cat [MASK] on the mat.', 'a [MASK] dog ran [MASK] the tree.'];
    const r = await post(s, '/v1/fill-mask', { input: texts, top_k: 3 });
    expect(r.status).to.equal(200);
    expect(r.json.mask_token).to.equal('[MASK]');
    // The server batches both texts (padding, other matrix shapes): scores within rtol 1e-5; tokens compared exactly,
    // as the first 4 scores of every mask are apart (no near-tie: the top-3 order cannot flip).
    const one4 = (await p(texts[0]!, { topK: 4 })) as FillMaskResult[];
    const two4 = (await p(texts[1]!, { topK: 4 })) as FillMaskResult[][];
    for (const list of [one4, ...two4]) for (let k = 0; k < 3; k++) expect(list[k]!.score - list[k + 1]!.score, `gap after rank ${k}`).to.be.above(1e-4 * list[k]!.score);
    const one = one4.slice(0, 3), two = two4.map((m) => m.slice(0, 3));
    expect(r.json.data[0].masks).to.have.length(1);
    expect(r.json.data[0].masks[0].map((x: FillMaskResult) => x.token)).to.deep.equal(one.map((x) => x.token));
    expectClose(r.json.data[0].masks[0].map((x: FillMaskResult) => x.score), one.map((x) => x.score), { rtol: 1e-5, atol: 1e-7 }, 'served scores');
    expect(r.json.data[1].masks).to.have.length(2);
    expect(r.json.data[1].masks.map((m: FillMaskResult[]) => m.map((x) => x.token_str))).to.deep.equal(two.map((m) => m.map((x) => x.token_str)));
    const noMask = await post(s, '/v1/fill-mask', { input: ['the cat sat.', 'the [MASK] sat.'] });
    expect(noMask.status).to.equal(400);
    expect(noMask.json.error.message).to.match(/mask/i);
    expect((await post(s, '/v1/text2text', { input: 'x' })).status).to.equal(400);
    // After a refused request, the server still answers.
    expect((await post(s, '/v1/fill-mask', { input: 'the [MASK] sat.' })).status).to.equal(200);
  });
});
