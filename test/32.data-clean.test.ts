import { expect } from 'chai';
import * as path from 'path';
import { AutoTokenizer } from '../lib/tokenizers';
import { cleanExamples, cleanText, newReport } from '../lib/data';
import type { Example } from '../lib/data';
import { rejects, sharedAssets } from './helpers';

async function collect(it: AsyncIterable<Example>): Promise<Example[]> {
  const out: Example[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const src = (line: number): { file: string; line: number } => ({ file: 'in.jsonl', line });

describe('32 data: clean', function () {
  it('normalises to NFC and removes control characters but keeps tabs, newlines and emoji joiners', function () {
    const decomposed = 'Cafe\u0301';
    expect(cleanText(decomposed)).to.equal('Café');
    expect(cleanText(decomposed).length).to.equal(4);
    expect(cleanText('a\u0000b\u0007c\u009f\uFEFFd\te', { whitespace: false })).to.equal('abcd\te');
    expect(cleanText('👩\u200d👩\u200d👧')).to.equal('👩\u200d👩\u200d👧');
    expect(cleanText('ﬁ', { normalize: 'NFKC' })).to.equal('fi');
  });

  it('strips HTML tags, script/style bodies and comments, and decodes entities', function () {
    const html = '<p>Fish &amp; chips &eacute;t&eacute; &#x1F600;</p><script>var x = "<b>";</script><!-- note --><br/>AT&T <b>bold</b>';
    expect(cleanText(html, { stripHtml: true })).to.equal('Fish & chips été 😀\n\nAT&T bold');
    expect(cleanText('a < b and c > d', { stripHtml: true })).to.equal('a < b and c > d');
  });

  it('collapses whitespace runs and trims', function () {
    expect(cleanText('  a \t b\r\n\r\n\r\n\nc  ')).to.equal('a b\n\nc');
    expect(cleanText('  a   b  ', { whitespace: 'trim' })).to.equal('a   b');
  });

  it('drops exact and normalised duplicates, empty texts, and length outliers, and reports each with examples', async function () {
    const data: Example[] = [
      { text: 'Hello world', source: src(1) },
      { text: 'Hello world', source: src(2) },
      { text: 'hello,   WORLD!', source: src(3) },
      { text: '<br>   ', source: src(4) },
      { text: 'hi', source: src(5) },
      { text: 'x'.repeat(50), source: src(6) },
      { text: 'A fine sentence.', source: src(7) },
    ];
    const exact = newReport();
    const kept = await collect(cleanExamples(data, { dedupe: 'exact', stripHtml: true, minChars: 3, maxChars: 40 }, exact));
    expect(kept.map((e) => e.source?.line)).to.deep.equal([1, 3, 7]);
    expect(exact.dropped.duplicate.count).to.equal(1);
    expect(exact.dropped.duplicate.examples[0]?.source).to.deep.equal(src(2));
    expect(exact.dropped.empty.count).to.equal(1);
    expect(exact.dropped.minChars.count).to.equal(1);
    expect(exact.dropped.maxChars.count).to.equal(1);
    expect(exact.read).to.equal(7);
    expect(exact.kept).to.equal(3);
    const norm = newReport();
    const kept2 = await collect(cleanExamples(data, { dedupe: 'normalized' }, norm));
    expect(kept2.map((e) => e.source?.line)).to.deep.equal([1, 4, 5, 6, 7]); // without stripHtml, '<br>' is text
    expect(norm.dropped.duplicate.count).to.equal(2);
  });

  it('cleans prompt/completion and chat message contents, never QA contexts', async function () {
    const [ex] = await collect(cleanExamples([{
      prompt: ' Q:\u0000 ', completion: 'A  b', context: '  keep  ', question: ' why? ', messages: [{ role: 'user', content: ' hi  there ' }],
    }]));
    expect(ex).to.deep.include({ prompt: 'Q:', completion: 'A b', context: '  keep  ', question: 'why?' });
    expect(ex?.messages?.[0]?.content).to.equal('hi there');
  });

  it('filters by token count with a tokenizer', async function () {
    const assets = sharedAssets();
    if (!assets) this.skip();
    const tok = await AutoTokenizer.fromPretrained(path.join(assets as string, 'tokenizers/gpt2'));
    const report = newReport();
    const data: Example[] = [{ text: 'one' }, { text: 'one two three four' }, { text: 'one two three four five six seven eight nine' }];
    const kept = await collect(cleanExamples(data, { minTokens: 2, maxTokens: 6, tokenizer: tok }, report));
    expect(kept.map((e) => e.text)).to.deep.equal(['one two three four']);
    expect(report.dropped.minTokens.count).to.equal(1);
    expect(report.dropped.maxTokens.count).to.equal(1);
  });

  it('an empty dataset after cleaning is ERR_DATA naming the file and the drops', async function () {
    const err = await rejects(collect(cleanExamples([{ text: '   ', source: src(1) }, { text: 'ab', source: src(2) }], { minChars: 5 })));
    expect(err.code).to.equal('ERR_DATA');
    expect(err.message).to.equal('no examples left after cleaning in.jsonl: read 2, kept 0; dropped: empty 1, minChars 1');
    const bad = await rejects(collect(cleanExamples([{ text: 'x' }], { maxTokens: 3 })));
    expect(bad.code).to.equal('ERR_ARGUMENT');
  });
});
