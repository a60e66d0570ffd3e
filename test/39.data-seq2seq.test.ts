import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import type { PreTrainedTokenizer } from '../lib/tokenizers';
import { DataLoader, collate, formatSeq2Seq, parseTemplate, readAll, renderTemplate, templateFields } from '../lib/data';
import type { Batch, Example } from '../lib/data';
import { mergeBatches, modelInputs } from '../lib/train/data';
import { rejects, repoRoot, tempDir, throws } from './helpers';

/** The T5-style fixture made by scripts/oracle/make_t5_tokenizer.py (40 Unigram pieces). */
export const T5_TOKENIZER = path.join(repoRoot, 'test', 'fixtures', 'tokenizers', 't5-unigram');

const rows = (data: Int32Array, shape: [number, number]): number[][] =>
  Array.from({ length: shape[0] }, (_, r) => Array.from(data.subarray(r * shape[1], (r + 1) * shape[1])));

describe('39 data: seq2seq formatting, a T5-style Unigram tokenizer, collation', function () {
  let tok: PreTrainedTokenizer;
  before(async () => { tok = await AutoTokenizer.fromPretrained(T5_TOKENIZER); });

  it('loads the Unigram + Metaspace tokenizer: </s> appended, T5 special ids, decode skips specials', async function () {
    expect([tok.padTokenId, tok.eosTokenId, tok.unkTokenId]).to.deep.equal([0, 1, 2]);
    const e = await tok.encode('question: is the sky blue? context: the sky is blue.');
    // ▁question : ▁is ▁the ▁sky ▁blue ? ▁context : ▁the ▁sky ▁is ▁blue . </s>
    expect(e.ids).to.deep.equal([7, 36, 4, 3, 5, 6, 37, 8, 36, 3, 5, 4, 6, 38, 1]);
    expect(e.tokens[0]).to.equal('\u2581question');
    expect(e.specialTokensMask[e.ids.length - 1]).to.equal(1);
    expect(await tok.decode(e.ids, { skipSpecialTokens: true })).to.equal('question: is the sky blue? context: the sky is blue.');
    expect(await tok.decode(e.ids)).to.match(/blue\.<\/s>$/);
    // a word outside the pieces is spelt letter by letter; upper case is <unk>, dropped when skipping specials
    expect((await tok.encode('yes')).ids).to.deep.equal([9, 34, 14, 28, 1]);
    expect(await tok.decode((await tok.encode('Yes sky')).ids, { skipSpecialTokens: true })).to.equal('es sky');
    expect(await tok.numSpecialTokens(false)).to.equal(1);
    expect((await tok.encode('the sky is blue', { truncation: true, maxLength: 3 })).ids).to.deep.equal([3, 5, 1]);
  });

  it('templates: fields, dotted paths, literal braces; malformed ones are ERR_CONFIG', function () {
    expect(templateFields('question: {question} context: {context}')).to.deep.equal(['question', 'context']);
    expect(parseTemplate('{{x}} {a.b.0}')).to.deep.equal([{ text: '{x} ' }, { field: 'a.b.0' }]);
    expect(throws(() => parseTemplate('oops {x')).code).to.equal('ERR_CONFIG');
    expect(throws(() => parseTemplate('oops }')).message).to.match(/unmatched "}"/);
    const ex: Example = { record: { q: 'why', answers: { text: ['because', 'so'] }, n: 3 }, source: { file: 'd.jsonl', line: 7 } };
    expect(renderTemplate('Q: {q} ({n}) -> {answers.text.1}', ex)).to.equal('Q: why (3) -> so');
    const missing = throws(() => renderTemplate('{question}', ex, 'sourceTemplate')) as Error & { code?: string; file?: string; line?: number };
    expect(missing.code).to.equal('ERR_DATA');
    expect(missing.message).to.match(/^d\.jsonl:7: sourceTemplate field "question" is missing; available fields: q, answers, n/);
    expect(throws(() => renderTemplate('{answers}', ex)).message).to.match(/is an object, not text/);
    // without a raw record, canonical fields are used (answers: the first answer's text)
    expect(renderTemplate('{question}|{answers}', { question: 'q?', answers: { text: ['a1'], answerStart: [0] } })).to.equal('q?|a1');
  });

  it('formats records read from JSONL: source and target tokenized separately, EOS on both, file and line kept', async function () {
    const dir = tempDir();
    const file = path.join(dir, 'qa.jsonl');
    fs.writeFileSync(file, [
      JSON.stringify({ question: 'is the sky blue?', context: 'the sky is blue.', answers: { text: ['yes'], answer_start: [0] } }),
      '',
      JSON.stringify({ question: 'what is blue?', context: 'the sky.', answers: { text: ['the sky'], answer_start: [0] } }),
    ].join('\n'));
    const examples = await readAll(file, { task: 'seq2seq' });
    const feats = await formatSeq2Seq(tok, examples, { sourceTemplate: 'question: {question} context: {context}', targetTemplate: '{answers.text.0}' });
    expect(feats[0]!.inputIds).to.deep.equal([7, 36, 4, 3, 5, 6, 37, 8, 36, 3, 5, 4, 6, 38, 1]);
    expect(feats[0]!.attentionMask).to.deep.equal(new Array(15).fill(1));
    expect(feats[0]!.targetIds).to.deep.equal([9, 34, 14, 28, 1]);
    expect(feats[1]!.targetIds).to.deep.equal([3, 5, 1]);
    expect(feats[1]!.source).to.deep.equal({ file, line: 3 });
    expect(feats[0]!.labels).to.equal(undefined);
  });

  it('source truncation is on by default (EOS kept); a long target is ERR_DATA naming the record and the lengths', async function () {
    const ex: Example = { prompt: 'the sky is blue the sky is blue', completion: 'the sky is blue', source: { file: 'x.jsonl', line: 4 } };
    const [f] = await formatSeq2Seq(tok, [ex], { maxSourceLength: 4, maxTargetLength: 5 });
    expect(f!.inputIds).to.deep.equal([3, 5, 4, 1]);
    expect(f!.targetIds).to.deep.equal([3, 5, 4, 6, 1]);
    const [whole] = await formatSeq2Seq(tok, [ex], { maxSourceLength: 4, truncateSource: false });
    expect(whole!.inputIds.length).to.equal(9);
    const e = await rejects(formatSeq2Seq(tok, [ex], { maxTargetLength: 3 })) as Error & { code?: string; file?: string; line?: number };
    expect(e.code).to.equal('ERR_DATA');
    expect(e.message).to.equal('x.jsonl:4: the target has 5 tokens (EOS included), more than maxTargetLength 3; raise maxTargetLength or set truncateTarget: true');
    const [cut] = await formatSeq2Seq(tok, [ex], { maxTargetLength: 3, truncateTarget: true });
    expect(cut!.targetIds).to.deep.equal([3, 5, 1]);
    expect((await rejects(formatSeq2Seq(tok, [ex], { maxTargetLength: 0 }))).code).to.equal('ERR_ARGUMENT');
  });

  it('collates: inputs padded with <pad> and masked, targets padded with -100 to the longest target', async function () {
    const feats = [
      { inputIds: [7, 8, 1], attentionMask: [1, 1, 1], targetIds: [3, 1] },
      { inputIds: [5, 1], attentionMask: [1, 1], targetIds: [9, 34, 14, 28, 1] },
    ];
    const b = collate(feats, { padTokenId: 0 });
    expect(b.shape).to.deep.equal([2, 3]);
    expect(rows(b.inputIds, b.shape)).to.deep.equal([[7, 8, 1], [5, 1, 0]]);
    expect(rows(b.attentionMask, b.shape)).to.deep.equal([[1, 1, 1], [1, 1, 0]]);
    expect(b.labelShape).to.deep.equal([2, 5]);
    expect(rows(b.labels!, b.labelShape!)).to.deep.equal([[3, 1, -100, -100, -100], [9, 34, 14, 28, 1]]);
    expect(throws(() => collate([{ inputIds: [1], targetIds: [1] }, { inputIds: [1], labels: [1] }], { padTokenId: 0 })).message).to.match(/mix seq2seq/);
    // the Trainer's model inputs: labels keep their own shape
    const inputs = modelInputs(b, 'seq2seq-lm', false);
    expect((inputs.labels as { shape: number[] }).shape).to.deep.equal([2, 5]);
    expect((inputs.inputIds as { shape: number[] }).shape).to.deep.equal([2, 3]);
    const plain = collate([{ inputIds: [1, 2], labels: [1, 2] }], { padTokenId: 0 });
    expect(throws(() => modelInputs(plain, 'seq2seq-lm')).code).to.equal('ERR_DATA');
  });

  it('merges seq2seq micro-batches of different input and target lengths (gradient accumulation)', function () {
    const a = collate([{ inputIds: [7, 1], targetIds: [3, 1] }], { padTokenId: 0 });
    const b = collate([{ inputIds: [5, 6, 4, 1], targetIds: [1] }, { inputIds: [4, 1], targetIds: [9, 10, 11, 1] }], { padTokenId: 0 });
    const m: Batch = mergeBatches([a, b], 0);
    expect(m.shape).to.deep.equal([3, 4]);
    expect(rows(m.inputIds, m.shape)).to.deep.equal([[7, 1, 0, 0], [5, 6, 4, 1], [4, 1, 0, 0]]);
    expect(rows(m.attentionMask, m.shape)).to.deep.equal([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]);
    expect(m.labelShape).to.deep.equal([3, 4]);
    expect(rows(m.labels!, m.labelShape!)).to.deep.equal([[3, 1, -100, -100], [1, -100, -100, -100], [9, 10, 11, 1]]);
    const plain = collate([{ inputIds: [1, 2], labels: [1, 2] }], { padTokenId: 0 });
    expect(throws(() => mergeBatches([a, plain], 0)).code).to.equal('ERR_DATA');
  });

  it('DataLoader: task seq2seq with templates gives collated seq2seq batches', async function () {
    const examples: Example[] = [
      { record: { src: 'the sky', tgt: 'blue' } },
      { record: { src: 'is the sky blue?', tgt: 'yes' } },
    ];
    const loader = new DataLoader(examples, { tokenizer: tok, task: 'seq2seq', batchSize: 2, shuffle: false, seq2seq: { sourceTemplate: 'question: {src}', targetTemplate: '{tgt}' } });
    const batches: Batch[] = [];
    for await (const b of loader) batches.push(b);
    expect(batches).to.have.length(1);
    const b = batches[0]!;
    expect(rows(b.inputIds, b.shape)).to.deep.equal([[7, 36, 3, 5, 1, 0, 0, 0], [7, 36, 4, 3, 5, 6, 37, 1]]);
    expect(b.shape).to.deep.equal([2, 8]);
    expect(rows(b.labels!, b.labelShape!)).to.deep.equal([[6, 1, -100, -100, -100], [9, 34, 14, 28, 1]]);
  });
});
