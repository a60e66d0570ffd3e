import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import { collate, formatInstruction } from '../lib/data';
import type { Feature } from '../lib/data';
import { Trainer } from '../lib/train/trainer';
import type { TrainerModel } from '../lib/train/trainer';
import { generationMetrics } from '../lib/train/text-metrics';
import { rejects, repoRoot, tempDir, throws } from './helpers';
import { TIE_MARGIN, fixture, greedyLead } from './models-helpers';

// 40 Unigram pieces: the vocabulary size of the gpt2 fixture, so every generated id decodes.
const T5_TOKENIZER = path.join(repoRoot, 'test', 'fixtures', 'tokenizers', 't5-unigram');
const gpt2 = () => AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });

describe('41 train: Trainer evaluation by generation (predictWithGenerate)', function () {
  this.timeout(60000);
  let tok: PreTrainedTokenizer;
  before(async () => { tok = await AutoTokenizer.fromPretrained(T5_TOKENIZER); });

  const examples = [
    // the fixture's greedy continuation of this prompt is "yyyy" (checked below), so the metrics are not all 0
    { prompt: 'the sky is', completion: ' yyyy' },
    { prompt: 'question: is the sky blue?', completion: ' yes' },
    { prompt: 'is', completion: ' the sky' },
  ];

  it('decoder-only (gpt2 fixture): prompts before the first label are completed; metrics equal those of row-by-row generation', async function () {
    const model = await gpt2();
    const feats = await formatInstruction(tok, examples);
    // What the Trainer must reproduce: each prompt alone (no padding), greedy, cut at EOS (config eos_token_id 0).
    const predictions: string[] = [], references: string[] = [];
    for (const f of feats) {
      const start = f.labels!.findIndex((y) => y !== -100);
      const prompt = f.inputIds.slice(0, start);
      const row = (await model.generate([prompt], { maxNewTokens: 4 }))[0]!;
      // The Trainer generates in padded batches of 2 (other float paths): the same text only as no step is a near-tie.
      expect(await greedyLead(model, [row], prompt.length), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
      const out = row.slice(prompt.length);
      const cut = out.indexOf(0);
      predictions.push(await tok.decode(cut < 0 ? out : out.slice(0, cut), { skipSpecialTokens: true }));
      references.push(await tok.decode(f.labels!.filter((y) => y !== -100), { skipSpecialTokens: true }));
    }
    expect(references).to.deep.equal(['yyyy', 'yes', 'the sky']);
    expect(predictions[0]).to.equal('yyyy');
    const want = generationMetrics(predictions, references);
    expect(want.exact_match).to.be.closeTo(1 / 3, 1e-12);
    const t = new Trainer({ model, tokenizer: tok, train: feats, validation: feats,
      args: { outputDir: tempDir(), batchSize: 2, report: false, predictWithGenerate: true, generationMaxNewTokens: 4 } });
    const { metrics } = await t.evaluate('validation');
    expect(metrics.loss).to.be.a('number');
    expect(metrics.perplexity).to.be.a('number');
    for (const k of ['exact_match', 'f1', 'rougeL', 'bleu'] as const) expect(metrics[k], k).to.be.closeTo(want[k], 1e-12);
  });

  it('a reference equal to the greedy continuation scores exact match 1 and F1 1; metrics.jsonl carries eval_ names', async function () {
    const model = await gpt2();
    const prompt = (await tok.encode('the sky is', { addSpecialTokens: false })).ids;
    const cont = (await model.generate([prompt], { maxNewTokens: 3, eosTokenId: null }))[0]!.slice(prompt.length);
    const f: Feature = { inputIds: [...prompt, ...cont], labels: [...prompt.map(() => -100), ...cont] };
    const outputDir = tempDir();
    const t = new Trainer({ model, tokenizer: tok, train: [f], validation: [f],
      args: { outputDir, maxSteps: 1, learningRate: 0, report: false, predictWithGenerate: true, generationMaxNewTokens: 3 } });
    // evaluate before training changes nothing: lr 0
    const { metrics } = await t.evaluate();
    const text = await tok.decode(cont.slice(0, cont.includes(0) ? cont.indexOf(0) : cont.length), { skipSpecialTokens: true });
    expect(metrics.exact_match, `greedy continuation ${JSON.stringify(text)}`).to.equal(1);
    expect(metrics.f1).to.equal(1);
    await t.train();
    const lines = fs.readFileSync(path.join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const ev = lines.find((l) => l.eval_loss !== undefined)!;
    expect(ev).to.include.keys('eval_exact_match', 'eval_f1', 'eval_rougeL', 'eval_bleu', 'eval_loss');
    expect(ev.eval_exact_match).to.equal(1);
  });

  it('seq2seq-lm plumbing (a scripted model until the T5 model lands): sources to generate(), ragged rows cut at EOS, teacher-forced loss', async function () {
    const calls: { gen: unknown[]; dec: number[][] } = { gen: [], dec: [] };
    const V = 40;
    const model = {
      task: 'seq2seq-lm', config: { eos_token_id: 1, pad_token_id: 0, decoder_start_token_id: 0 },
      async forward(inputs: { decoderInputIds?: { data: Int32Array; shape: number[] } }) {
        const d = inputs.decoderInputIds!;
        for (let r = 0; r < d.shape[0]!; r++) calls.dec.push(Array.from(d.data.subarray(r * d.shape[1]!, (r + 1) * d.shape[1]!)));
        return { logits: new Float32Array(d.shape[0]! * d.shape[1]! * V), shape: [d.shape[0]!, d.shape[1]!, V] };
      },
      async generate(ids: { shape: number[] }, opts: Record<string, unknown>) {
        calls.gen.push({ shape: ids.shape, maxNewTokens: opts.maxNewTokens, eosTokenId: opts.eosTokenId, mask: (opts.attentionMask as { shape: number[] }).shape });
        return [[6, 1], [3, 5, 4, 6, 1, 0]].slice(0, ids.shape[0]);  // "blue", "the sky is blue" then EOS and padding
      },
      trainStep: () => { throw new Error('not used'); }, configureOptimizer: () => undefined, savePretrained: async () => undefined,
      parameters: () => [], getParameter: () => { throw new Error('not used'); }, setParameter: () => undefined,
    } as unknown as TrainerModel;
    const feats: Feature[] = [{ inputIds: [7, 36, 1], targetIds: [6, 1] }, { inputIds: [3, 5, 4, 37, 1], targetIds: [3, 5, 1] }];
    const batch = collate(feats, { padTokenId: 0 });
    const t = new Trainer({ model, tokenizer: tok, train: [batch], validation: [batch], args: { outputDir: tempDir(), report: false, predictWithGenerate: true, generationMaxNewTokens: 5 } });
    const { metrics } = await t.evaluate();
    expect(calls.gen).to.deep.equal([{ shape: [2, 5], maxNewTokens: 5, eosTokenId: 1, mask: [2, 5] }]);
    // targets shifted right after decoder_start_token_id, -100 read as pad
    expect(calls.dec).to.deep.equal([[0, 6, 1], [0, 3, 5]]);
    expect(metrics.loss).to.be.closeTo(Math.log(V), 1e-6);
    expect(metrics.exact_match).to.equal(0.5);  // "blue" = "blue"; "the sky is blue" != "the sky"
    const want = generationMetrics(['blue', 'the sky is blue'], ['blue', 'the sky']);
    expect(metrics.rougeL).to.be.closeTo(want.rougeL, 1e-12);
    expect(metrics.bleu).to.be.closeTo(want.bleu, 1e-12);
  });

  it('refuses what cannot be evaluated by generation, naming the cause', async function () {
    const model = await gpt2();
    const f: Feature = { inputIds: [3, 5, 4], labels: [3, 5, 4], source: { file: 'lm.jsonl', line: 2 } };
    expect(throws(() => new Trainer({ model, train: [f], args: { outputDir: tempDir(), predictWithGenerate: true } })).code).to.equal('ERR_ARGUMENT');
    const t = new Trainer({ model, tokenizer: tok, train: [f], validation: [f], args: { outputDir: tempDir(), report: false, predictWithGenerate: true } });
    const e = await rejects(t.evaluate());
    expect(e.code).to.equal('ERR_DATA');
    expect(e.message).to.match(/row 0 \(lm\.jsonl:2\): no prompt/);
    expect(throws(() => new Trainer({ model, train: [f], args: { outputDir: tempDir(), generationNumBeams: 0 } })).message).to.match(/TrainingArgs\.generationNumBeams/);
  });
});
