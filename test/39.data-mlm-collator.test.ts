import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as nodetune from '../lib';
import { MlmCollator, mlmSeed } from '../lib/data/mlm';
import type { Batch } from '../lib/data/batch';
import { Rng } from '../lib/data/random';
import type { NodetuneError } from '../lib/errors';
import { AutoModel } from '../lib/models';
import { AutoTokenizer } from '../lib/tokenizers';
import { Trainer } from '../lib/train';
import { EpochData } from '../lib/train/data';
import { tempDir, throws } from './helpers';
import { fixture } from './models-helpers';

const PAD = 0, CLS = 101, SEP = 102, MASK = 103, V = 1000;
const SPECIAL = [PAD, CLS, SEP, MASK];

/** `rows` rows of `len`: [CLS] tokens [SEP] then padding (row r has len - (r % 7) real tokens). */
function batchOf(rng: Rng, rows: number, len: number): Batch {
  const inputIds = new Int32Array(rows * len), attentionMask = new Int32Array(rows * len);
  for (let r = 0; r < rows; r++) {
    const real = len - (r % 7);
    for (let t = 0; t < real; t++) {
      inputIds[r * len + t] = t === 0 ? CLS : t === real - 1 ? SEP : 104 + rng.int(V - 104);
      attentionMask[r * len + t] = 1;
    }
  }
  return { inputIds, attentionMask, shape: [rows, len] };
}

const vocab = { maskTokenId: MASK, vocabSize: V, specialTokenIds: SPECIAL };

/** A tiny WordPiece tokenizer whose ids fit the bert-mlm fixture (vocab 40, [PAD] = 0). */
function tinyTokenizerDir(): string {
  const words = ['the', 'cat', 'dog', 'sat', 'on', 'mat', 'a', 'ran', 'to', 'big', 'red', 'fish', 'ate', 'and', 'run', 'jump',
    'play', 'house', 'tree', 'bird', 'sun', 'sky', 'blue', 'green', 'small', 'fast', 'slow', 'over', 'under', '##s', '##ing', '##ed', 'x', '##y', '.'];
  const dir = tempDir('nodetune-mlm-tok-');
  fs.writeFileSync(path.join(dir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
    do_lower_case: true, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', model_max_length: 16,
  }));
  return dir;
}

describe('39 data: masked-LM collator (80/10/10, whole words, seeds)', () => {
  it('chooses 15% of the candidate tokens; of those 80% [MASK], 10% random, 10% unchanged (51k tokens, tight bounds)', () => {
    const c = new MlmCollator(vocab);
    const b = batchOf(new Rng(1), 400, 128);
    const m = c.mask(b, 7);
    let candidates = 0, chosen = 0, masked = 0, random = 0, kept = 0;
    for (let i = 0; i < b.inputIds.length; i++) {
      const cand = b.attentionMask[i] === 1 && !SPECIAL.includes(b.inputIds[i]!);
      if (cand) candidates++;
      if (m.labels![i] === -100) {
        expect(m.inputIds[i]).to.equal(b.inputIds[i]);
        continue;
      }
      expect(cand).to.equal(true);
      expect(m.labels![i]).to.equal(b.inputIds[i]);
      chosen++;
      if (m.inputIds[i] === MASK) masked++;
      else if (m.inputIds[i] === b.inputIds[i]) kept++;
      else random++;
    }
    expect(candidates).to.be.above(48000);
    expect(Math.abs(chosen / candidates - 0.15)).to.be.below(0.008);  // sd 0.0016
    expect(Math.abs(masked / chosen - 0.8)).to.be.below(0.025);       // sd 0.0047
    expect(Math.abs(random / chosen - 0.1)).to.be.below(0.02);        // sd 0.0035 (a random draw equal to the id counts as kept: 0.1%)
    expect(Math.abs(kept / chosen - 0.1)).to.be.below(0.02);
    // the random ids cover the vocabulary
    const drawn = new Set<number>();
    for (let i = 0; i < b.inputIds.length; i++) if (m.labels![i] !== -100 && m.inputIds[i] !== MASK && m.inputIds[i] !== b.inputIds[i]) drawn.add(m.inputIds[i]!);
    expect(Math.min(...drawn)).to.be.below(100);
    expect(Math.max(...drawn)).to.be.above(900);
    // the input batch is not modified
    expect(Array.from(b.inputIds).includes(MASK)).to.equal(false);
  });

  it('never chooses special tokens or padding, even at mlmProbability 0.99; left padding too', () => {
    const c = new MlmCollator(vocab, { mlmProbability: 0.99 });
    const b = batchOf(new Rng(2), 50, 20);
    // the same rows left-padded
    const left: Batch = { inputIds: new Int32Array(b.inputIds.length), attentionMask: new Int32Array(b.inputIds.length), shape: b.shape };
    for (let r = 0; r < 50; r++) {
      const real = b.attentionMask.subarray(r * 20, r * 20 + 20).reduce((x, y) => x + y, 0);
      left.inputIds.set(b.inputIds.subarray(r * 20, r * 20 + real), r * 20 + 20 - real);
      left.attentionMask.fill(1, r * 20 + 20 - real, r * 20 + 20);
    }
    for (const batch of [b, left]) {
      // also pad with a non-special id under attention 0: the mask decides
      batch.inputIds.forEach((x, i) => { if (batch.attentionMask[i] === 0) batch.inputIds[i] = 500; });
      const m = c.mask(batch, 3);
      let chosen = 0;
      for (let i = 0; i < batch.inputIds.length; i++) {
        const special = SPECIAL.includes(batch.inputIds[i]!) || batch.attentionMask[i] === 0;
        if (special) {
          expect(m.labels![i]).to.equal(-100);
          expect(m.inputIds[i]).to.equal(batch.inputIds[i]);
        } else if (m.labels![i] !== -100) chosen++;
      }
      expect(chosen).to.be.above(0);
    }
  });

  it('is reproducible for a seed; another seed, epoch or batch gives another mask', () => {
    const c = new MlmCollator(vocab);
    const b = batchOf(new Rng(3), 8, 32);
    const a1 = c.mask(b, mlmSeed(42, 0, 0)), a2 = c.mask(b, mlmSeed(42, 0, 0));
    expect(Array.from(a1.inputIds)).to.deep.equal(Array.from(a2.inputIds));
    expect(Array.from(a1.labels!)).to.deep.equal(Array.from(a2.labels!));
    for (const other of [mlmSeed(43, 0, 0), mlmSeed(42, 1, 0), mlmSeed(42, 0, 1)])
      expect(Array.from(c.mask(b, other).labels!)).to.not.deep.equal(Array.from(a1.labels!));
  });

  it('dynamic masking in the Trainer data path: a fresh mask each epoch, the same mask for the same epoch', async () => {
    const c = new MlmCollator(vocab);
    const b = batchOf(new Rng(6), 4, 24);
    const feats = Array.from({ length: 4 }, (_, r) => ({ inputIds: Array.from(b.inputIds.subarray(r * 24, r * 24 + 24)).filter((x, t) => b.attentionMask[r * 24 + t] === 1) }));
    const data = new EpochData('train', feats, { batchSize: 4, padTokenId: PAD, shuffle: false, seed: 1, mlm: { collator: c } });
    const labels = async (epoch: number) => { for await (const x of data.epoch(epoch)) return Array.from(x.labels!); return []; };
    expect(await labels(0)).to.deep.equal(await labels(0));
    expect(await labels(1)).to.not.deep.equal(await labels(0));
  });

  it('whole-word masking masks every sub-token of a chosen word (word ids, and WordPiece ## continuation)', () => {
    // words of 1-3 tokens; continuation ids are >= 600
    const rng = new Rng(4);
    const rows = 60, len = 40;
    const inputIds = new Int32Array(rows * len), attentionMask = new Int32Array(rows * len).fill(1);
    const wordIds: Array<Array<number | null>> = [];
    for (let r = 0; r < rows; r++) {
      const w: Array<number | null> = [null];
      inputIds[r * len] = CLS;
      let t = 1, word = 0;
      while (t < len - 1) {
        const pieces = Math.min(1 + rng.int(3), len - 1 - t);
        for (let k = 0; k < pieces; k++, t++) {
          inputIds[r * len + t] = k === 0 ? 104 + rng.int(490) : 600 + rng.int(400);
          w.push(word);
        }
        word++;
      }
      inputIds[r * len + len - 1] = SEP;
      w.push(null);
      wordIds.push(w);
    }
    const b: Batch = { inputIds, attentionMask, shape: [rows, len] };
    const check = (m: Batch) => {
      let words = 0, chosenWords = 0;
      for (let r = 0; r < rows; r++) {
        const groups = new Map<number, number[]>();
        wordIds[r]!.forEach((w, t) => {
          if (w === null) expect(m.labels![r * len + t]).to.equal(-100);
          else groups.set(w, [...(groups.get(w) ?? []), t]);
        });
        for (const ts of groups.values()) {
          const set = ts.map((t) => m.labels![r * len + t] !== -100);
          expect(set.every((x) => x === set[0])).to.equal(true);
          words++;
          if (set[0]) chosenWords++;
        }
      }
      expect(Math.abs(chosenWords / words - 0.3)).to.be.below(0.05);
    };
    const withIds = new MlmCollator(vocab, { wholeWordMasking: true, mlmProbability: 0.3 });
    check(withIds.mask(b, 9, wordIds));
    const withHashes = new MlmCollator({ ...vocab, isContinuation: (id) => id >= 600 }, { wholeWordMasking: true, mlmProbability: 0.3 });
    check(withHashes.mask(b, 9));
    expect(throws(() => withIds.mask(b, 9)).code).to.equal('ERR_ARGUMENT');
  });

  it('a bad mlmProbability (or replace shares) is a typed ERR_ARGUMENT naming the field', () => {
    for (const p of [0, 1, -0.1, 1.5, Number.NaN, '0.15' as unknown as number]) {
      const e = throws(() => new MlmCollator(vocab, { mlmProbability: p })) as NodetuneError;
      expect(e.code).to.equal('ERR_ARGUMENT');
      expect(e.details.field).to.equal('mlmProbability');
      expect(e.message).to.contain('(0, 1)');
    }
    expect((throws(() => new MlmCollator(vocab, { maskReplaceProb: 0.8, randomReplaceProb: 0.3 })) as NodetuneError).details.field).to.equal('randomReplaceProb');
    expect((throws(() => new MlmCollator({ ...vocab, maskTokenId: V })) as NodetuneError).details.field).to.equal('maskTokenId');
    expect(nodetune.data.MlmCollator).to.equal(MlmCollator);
  });

  it('fromTokenizer + tokenizeForMlm: word ids from the tokenizer, specials never chosen; a tokenizer without a mask token is ERR_CONFIG', async () => {
    const tok = await AutoTokenizer.fromPretrained(tinyTokenizerDir());
    const c = MlmCollator.fromTokenizer(tok, { wholeWordMasking: true, mlmProbability: 0.5 });
    const feats = await nodetune.data.tokenizeForMlm(tok, ['the cats sat on the mat', 'a big red dog jumped over the tree . the bird sat'], { maxLength: 12 });
    expect(feats[1]!.inputIds.length).to.equal(12);
    expect(feats[1]!.inputIds[11]).to.equal(tok.sepTokenId);
    for (let s = 0; s < 20; s++) {
      const m = c.collate(feats, s, { padTokenId: 0 });
      const len = m.shape[1];
      feats.forEach((f, r) => {
        const groups = new Map<number, boolean[]>();
        f.wordIds!.forEach((w, t) => {
          const on = m.labels![r * len + t] !== -100;
          if (w === null) expect(on).to.equal(false);
          else groups.set(w, [...(groups.get(w) ?? []), on]);
        });
        for (const g of groups.values()) expect(g.every((x) => x === g[0])).to.equal(true);
      });
    }
    const e = throws(() => MlmCollator.fromTokenizer({ ...tok, maskTokenId: undefined, vocabSize: 40, specialTokenIds: new Set<number>(), idToToken: () => undefined, encodeBatch: tok.encodeBatch.bind(tok) }));
    expect(e.code).to.equal('ERR_CONFIG');
  });

  it('Trainer: a masked-lm model trains on raw texts with dynamic masking (loss falls; evaluation reports perplexity)', async () => {
    const tok = await AutoTokenizer.fromPretrained(tinyTokenizerDir());
    const model = await AutoModel.fromPretrained(fixture('bert-mlm'), { quiet: true });
    const texts = Array.from({ length: 24 }, (_, i) => ['the cat sat on the mat', 'a big red dog ran to the tree', 'the small bird ate the fish', 'the sun and the blue sky'][i % 4]!);
    const seen: string[] = [];
    const trainer = new Trainer({
      model, tokenizer: tok, train: texts, validation: texts.slice(0, 8), mlm: { mlmProbability: 0.3, maxLength: 12 },
      args: { outputDir: tempDir(), epochs: 6, batchSize: 8, learningRate: 5e-3, lrScheduler: 'constant', seed: 5, evalStrategy: 'epoch', saveStrategy: 'no', loggingSteps: 100 },
    });
    trainer.on('step', () => seen.push('step'));
    const r = await trainer.train();
    expect(r.globalStep).to.equal(18);
    const first = (r.losses[0]! + r.losses[1]! + r.losses[2]!) / 3, last = (r.losses[15]! + r.losses[16]! + r.losses[17]!) / 3;
    expect(last).to.be.below(first * 0.8);
    const { metrics } = await trainer.evaluate();
    expect(metrics.perplexity).to.be.closeTo(Math.exp(metrics.loss!), 1e-6 * metrics.perplexity!);
    expect(metrics.tokenAccuracy).to.be.within(0, 1);
    // without a tokenizer and without a collator, a masked-lm Trainer cannot mask: typed error naming the field
    const e = throws(() => new Trainer({ model, train: texts, args: { outputDir: tempDir() } })) as NodetuneError;
    expect(e.details.field).to.equal('tokenizer');
  });
});
