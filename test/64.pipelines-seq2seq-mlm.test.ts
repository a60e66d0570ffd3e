import { expect } from 'chai';
import { pipeline } from '../lib/pipelines';
import type { FillMaskResult } from '../lib/pipelines';
import { softmax } from '../lib/pipelines/common';
import { expectClose, rejects } from './helpers';
import { TIE_MARGIN, seq2seqGreedyLead } from './models-helpers';
import { modelDir, t5Tokenizer, wordPieceTokenizer } from './seq2seq-mlm-helpers';

describe('64 pipelines: text2text-generation (T5 / mT5) and fill-mask (BERT family)', function () {
  this.timeout(60000);

  describe('text2text-generation', () => {
    const dirs: Record<string, string> = {};
    before(() => {
      dirs['t5-tiny'] = modelDir('t5-tiny', t5Tokenizer, { task_specific_params: { summarization: { prefix: 'question: ' } } });
      dirs['mt5-tiny'] = modelDir('mt5-tiny', t5Tokenizer);
    });

    for (const name of ['t5-tiny', 'mt5-tiny']) {
      it(`${name}: [{ generated_text }] = Model.generate of the encoded source, cut at EOS, decoded without specials (greedy and beams)`, async () => {
        const p = await pipeline('text2text-generation', dirs[name]!);
        expect(p.task).to.equal('text2text-generation');
        const texts = ['question: is the sky blue?', 'the sky', 'is the sea blue? context: the sea is blue.'];
        for (const numBeams of [1, 3]) {
          const want: string[] = [];
          const sources: number[][] = [], rows: number[][] = [];
          for (const t of texts) {
            const ids = (await p.tokenizer.encode(t)).ids;
            const row = (await p.model.generate([ids], { maxNewTokens: 6, numBeams }))[0]!;
            sources.push(ids), rows.push(row);
            const cut = row.includes(1) ? row.slice(0, row.indexOf(1)) : row;
            want.push(await p.tokenizer.decode(cut.filter((id) => id < p.tokenizer.vocabSize), { skipSpecialTokens: true }));
          }
          expect(want.some((w) => w.length > 0), 'the untrained model generates some text').to.equal(true);
          // The padded batch below runs other float paths than each source alone; its greedy ids can only be required
          // to be the same because no greedy step of the fixture is a near-tie (checked).
          if (numBeams === 1) expect(await seq2seqGreedyLead(p.model, sources, undefined, rows), 'no near-tie in the fixture').to.be.above(TIE_MARGIN);
          const one = await p(texts[0]!, { maxNewTokens: 6, numBeams });
          expect(one).to.deep.equal([{ generated_text: want[0] }]);
          // Several sources: one padded batch (the encoder mask hides the padding), one result each, in order.
          const many = await p(texts, { maxNewTokens: 6, numBeams });
          expect(many, `numBeams ${numBeams}`).to.deep.equal(want.map((w) => ({ generated_text: w })));
        }
        expect(p.stats().batches).to.be.at.least(2);
      });
    }

    it("summarization / translation aliases: summary_text / translation_text; config's task_specific_params prefix, or the prefix option", async () => {
      const dir = dirs['t5-tiny']!;
      const t2t = await pipeline('text2text-generation', dir);
      const [{ generated_text: withPrefix }] = await t2t('question: is the sky blue?', { maxNewTokens: 5 }) as [{ generated_text: string }];
      const [{ generated_text: without }] = await t2t('is the sky blue?', { maxNewTokens: 5 }) as [{ generated_text: string }];
      expect(withPrefix, 'the prefix changes the output').to.not.equal(without);
      const sum = await pipeline('summarization', dir);
      expect(await sum('is the sky blue?', { maxNewTokens: 5 })).to.deep.equal([{ summary_text: withPrefix }]);
      expect(await sum('is the sky blue?', { maxNewTokens: 5, prefix: '' })).to.deep.equal([{ summary_text: without }]);
      const tr = await pipeline('translation', dir);
      expect(await tr('is the sky blue?', { maxNewTokens: 5 })).to.deep.equal([{ translation_text: without }]);
      expect(await tr('is the sky blue?', { maxNewTokens: 5, prefix: 'question: ' })).to.deep.equal([{ translation_text: withPrefix }]);
    });

    it('refuses a model that is not seq2seq-lm and bad options, naming the field', async () => {
      const bert = modelDir('bert-mlm', wordPieceTokenizer);
      const e = await rejects(pipeline('text2text-generation', bert));
      expect(e.code).to.equal('ERR_CONFIG');
      const p = await pipeline('text2text-generation', dirs['t5-tiny']!);
      for (const [opts, field] of [[{ numBeams: 0 }, 'numBeams'], [{ maxNewTokens: 0 }, 'maxNewTokens'], [{ numBeams: 2, temperature: 1 }, 'numBeams'], [{ topP: 2 }, 'topP']] as const) {
        const err = await rejects(p('the sky', opts));
        expect(err.code, JSON.stringify(opts)).to.equal('ERR_ARGUMENT');
        expect((err as unknown as { details: { field: string } }).details.field).to.equal(field);
      }
      expect((await rejects(p([] as string[]))).code).to.equal('ERR_ARGUMENT');
    });
  });

  describe('fill-mask', () => {
    for (const name of ['bert-mlm', 'distilbert-mlm']) {
      it(`${name}: top-k { score, token, token_str, sequence } = softmax of the model's logits at the mask, best first`, async () => {
        const dir = modelDir(name, wordPieceTokenizer);
        const p = await pipeline('fill-mask', dir);
        const text = 'the cat [MASK] on the mat.';
        const res = await p(text) as FillMaskResult[];
        expect(res).to.have.length(5);
        const e = await p.tokenizer.encode(text);
        const pos = e.ids.indexOf(4);
        const out = await p.model.forward({ inputIds: [e.ids], attentionMask: [e.attentionMask], ...(name === 'bert-mlm' ? { tokenTypeIds: [e.tokenTypeIds] } : {}) });
        const v = out.shape[2]!;
        const probs = softmax(out.logits, pos * v, v);
        const best = probs.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5);
        // The pipeline's softmax vs this one (float32 logits, float64 softmax in both): rtol 1e-5.
        expectClose(res.map((r) => r.score), best.map((b) => b[0]), { rtol: 1e-5, atol: 1e-7 }, 'top-5 scores');
        res.forEach((r, k) => expect(r.token).to.equal(best[k]![1]));
        // No near-tie among the first 6 probabilities: the top-k order cannot flip between the code paths compared below.
        const sorted = probs.slice().sort((a, b) => b - a);
        for (let k = 0; k < 5; k++) expect(sorted[k]! - sorted[k + 1]!, `gap after rank ${k}`).to.be.above(1e-4 * sorted[k]!);
        const top = res[0]!;
        expect(top.token_str).to.equal(await p.tokenizer.decode([top.token]));
        const filled = e.ids.slice();
        filled[pos] = top.token;
        expect(top.sequence).to.equal(await p.tokenizer.decode(filled, { skipSpecialTokens: true }));
        expect(top.sequence.startsWith('the cat ')).to.equal(true);
        expect(res.reduce((s, r) => s + r.score, 0)).to.be.at.most(1 + 1e-6);
        // topK, several texts in one batch (same answers as one at a time), two masks: a list per mask.
        expect(await p(text, { topK: 2 })).to.deep.equal(res.slice(0, 2));
        // A batch of two runs other matrix shapes (and padding) than one text alone: the scores move in the 7th digit
        // on some BLAS kernels, so tokens, strings and order are compared exactly and the scores within rtol 1e-5.
        const sameAs = (got: FillMaskResult[], want: FillMaskResult[], what: string) => {
          expect(got.map((r) => ({ ...r, score: 0 })), what).to.deep.equal(want.map((r) => ({ ...r, score: 0 })));
          expectClose(got.map((r) => r.score), want.map((r) => r.score), { rtol: 1e-5, atol: 1e-7 }, `${what} scores`);
        };
        const batch = await p([text, 'a [MASK] ran.'], { topK: 3 }) as FillMaskResult[][];
        sameAs(batch[0]!, res.slice(0, 3), 'batch[0]');
        const alone4 = await p('a [MASK] ran.', { topK: 4 }) as FillMaskResult[];
        for (let k = 0; k < 3; k++) expect(alone4[k]!.score - alone4[k + 1]!.score, `'a [MASK] ran.': gap after rank ${k}`).to.be.above(1e-4 * alone4[k]!.score);
        sameAs(batch[1]!, alone4.slice(0, 3), 'batch[1]');
        const two = await p('the [MASK] sat on the [MASK].', { topK: 2 }) as FillMaskResult[][];
        expect(two).to.have.length(2);
        for (const list of two) expect(list).to.have.length(2);
        expect(two[0]![0]!.sequence).to.not.equal(two[1]![0]!.sequence);
      });
    }

    it('refuses text without the mask token, a non-masked-lm model and a bad topK, naming the field', async () => {
      const p = await pipeline('fill-mask', modelDir('bert-mlm', wordPieceTokenizer));
      const e = await rejects(p('the cat sat on the mat'));
      expect(e.code).to.equal('ERR_ARGUMENT');
      expect(e.message).to.contain('[MASK]');
      const k = await rejects(p('the [MASK]', { topK: 0 }));
      expect((k as unknown as { details: { field: string } }).details.field).to.equal('topK');
      const t5 = modelDir('t5-tiny', t5Tokenizer);
      expect((await rejects(pipeline('fill-mask', t5))).code).to.be.oneOf(['ERR_ARGUMENT', 'ERR_CONFIG']);
    });
  });
});
