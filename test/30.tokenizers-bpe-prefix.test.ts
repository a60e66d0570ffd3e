import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import { writeBpePrefixTokenizer } from '../lib/tokenizers/bpe-prefix';
import { NodetuneError } from '../lib/errors';
import { repoRoot, tempDir, throws } from './helpers';

const gpt2 = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-gpt2', 'models');
const llama3 = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-llama3', 'models');

const TEXTS = [
  'Congratulations! You have been selected to receive a FREE vacation. Click here: http://example.com/?id=42',
  'Subject: Re: [SAtalk] unsubscribe\n\n> quoted   spaces\tand tabs\r\n',
  'Ünïcödé, 日本語, emoji 🎉🚀 and the odd byte \u0000 survive.',
  '',
];

describe('30 tokenizers: a byte-level BPE cut to its first merges (writeBpePrefixTokenizer)', function () {
  this.timeout(60_000);

  it("GPT-2's tokenizer cut to 1,000 merges: 1,257 tokens, the same ids below the cut, <|endoftext|> moved to 1,256, every text round-trips", async () => {
    const dir = tempDir('nodetune-bpe-prefix-');
    const r = writeBpePrefixTokenizer(gpt2, dir, 1000);
    expect(r).to.deep.equal({ vocabSize: 1257, merges: 1000, original: { merges: 50000, vocabSize: 50257 } });
    expect(fs.existsSync(path.join(dir, 'tokenizer_config.json'))).to.equal(true);
    const full = await AutoTokenizer.fromPretrained(gpt2);
    const cut = await AutoTokenizer.fromPretrained(dir);
    const fullTokens: string[] = [];
    for (const [t, id] of Object.entries((JSON.parse(fs.readFileSync(path.join(gpt2, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab)) fullTokens[id] = t;
    expect(cut.vocabSize).to.equal(1257);
    expect(cut.eosTokenId).to.equal(1256);
    expect(full.eosTokenId).to.equal(50256);
    for (const text of TEXTS) {
      const a = await full.encode(text, { addSpecialTokens: false });
      const b = await cut.encode(text, { addSpecialTokens: false });
      expect(b.ids.every((id) => id < 1256), text).to.equal(true);
      expect(await cut.decode(b.ids), text).to.equal(text);
      expect(b.ids.length, text).to.be.at.least(a.ids.length);
      // Each token of the cut tokenizer is the original's token with the same id (ids below the cut do not move).
      b.tokens.forEach((t, i) => expect(fullTokens[b.ids[i]!], t).to.equal(t));
      expect(await full.decode(b.ids), text).to.equal(text);
    }
    // Words made by merges past the cut come out in pieces; common ones stay whole.
    const word = async (tok: typeof cut, w: string) => (await tok.encode(w, { addSpecialTokens: false })).ids;
    expect(await word(cut, ' the')).to.deep.equal(await word(full, ' the'));
    expect((await word(full, ' Congratulations')).length).to.equal(1);
    expect((await word(cut, ' Congratulations')).length).to.be.greaterThan(1);
    expect((await cut.encode('<|endoftext|>', { addSpecialTokens: false })).ids).to.deep.equal([1256]);
  });

  it('zero merges leave the byte alphabet (256 tokens + <|endoftext|>); all merges give back the same tokenizer', async () => {
    const bytes = await AutoTokenizer.fromPretrained((() => {
      const d = tempDir('nodetune-bpe-prefix-');
      expect(writeBpePrefixTokenizer(gpt2, d, 0).vocabSize).to.equal(257);
      return d;
    })());
    const text = TEXTS[2]!;
    expect((await bytes.encode(text, { addSpecialTokens: false })).ids).to.have.length(Buffer.byteLength(text, 'utf8'));
    const d = tempDir('nodetune-bpe-prefix-');
    writeBpePrefixTokenizer(gpt2, d, 50000);
    const same = await AutoTokenizer.fromPretrained(d);
    const full = await AutoTokenizer.fromPretrained(gpt2);
    for (const t of TEXTS) expect((await same.encode(t)).ids).to.deep.equal((await full.encode(t)).ids);
  });

  it("Llama 3's merges, some listed before the merges that make their parts: those are skipped; added tokens follow the cut vocabulary", async function () {
    if (!fs.existsSync(path.join(llama3, 'tokenizer.json'))) this.skip();
    const dir = tempDir('nodetune-bpe-prefix-');
    const r = writeBpePrefixTokenizer(llama3, dir, 2000);
    expect(r.merges).to.be.within(1000, 1999);
    // (Some of its merges make the same token another way: at most one token per merge.)
    expect(r.vocabSize).to.be.within(256 + 500 + 256, 256 + r.merges + 256);
    const cut = await AutoTokenizer.fromPretrained(dir);
    expect(cut.vocabSize).to.equal(r.vocabSize);
    // <|begin_of_text|> is the first of its 256 added tokens.
    expect(cut.bosTokenId).to.equal(r.vocabSize - 256);
    for (const text of TEXTS) {
      const e = await cut.encode(text, { addSpecialTokens: false });
      expect(e.ids.every((id) => id < r.vocabSize - 256), text).to.equal(true);
      expect(await cut.decode(e.ids), text).to.equal(text);
    }
  });

  it("a post-processor that adds a special token names it by id: the id is renumbered", async () => {
    const src = tempDir('nodetune-bpe-prefix-');
    const json = JSON.parse(fs.readFileSync(path.join(gpt2, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const eot = '<|endoftext|>';
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: eot, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: eot, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [eot]: { id: eot, ids: [50256], tokens: [eot] } },
    };
    fs.writeFileSync(path.join(src, 'tokenizer.json'), JSON.stringify(json));
    const dir = tempDir('nodetune-bpe-prefix-');
    writeBpePrefixTokenizer(src, dir, 1000);
    const cut = await AutoTokenizer.fromPretrained(dir);
    const e = await cut.encode('spam or ham');
    expect(e.ids[0]).to.equal(1256);
    expect(await cut.decode(e.ids.slice(1))).to.equal('spam or ham');
  });

  it('bad input: a missing folder is ERR_IO, a tokenizer that is not BPE ERR_CONFIG, a merge count out of range ERR_ARGUMENT', () => {
    const missing = throws(() => writeBpePrefixTokenizer(path.join(tempDir(), 'nope'), tempDir(), 10));
    expect(missing).to.be.instanceOf(NodetuneError);
    expect(missing.code).to.equal('ERR_IO');
    expect(missing.message).to.contain('tokenizer.json does not exist');
    const wp = tempDir('nodetune-bpe-prefix-');
    fs.writeFileSync(path.join(wp, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordPiece', vocab: { a: 0 } } }));
    const notBpe = throws(() => writeBpePrefixTokenizer(wp, tempDir(), 1));
    expect(notBpe.code).to.equal('ERR_CONFIG');
    expect(notBpe.message).to.contain('holds no BPE model (model.type "WordPiece")');
    for (const n of [-1, 1.5, 50001]) {
      const e = throws(() => writeBpePrefixTokenizer(gpt2, tempDir(), n));
      expect(e.code, String(n)).to.equal('ERR_ARGUMENT');
      expect(e.message).to.contain('merges must be a whole number from 0 to 50000');
    }
  });
});
