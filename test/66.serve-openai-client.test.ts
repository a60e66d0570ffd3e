/**
 * The official `openai` npm client against `nodetune serve` in-process on loopback: model listing, completions and
 * chat (plain and streamed with the usage chunk), the sampling fields re-computed in JS from forward() logits
 * (penalties, logit bias, logprobs), n choices, stop strings, the accepted no-op fields and OpenAI-shaped errors.
 */
import { expect } from 'chai';
import OpenAI from 'openai';
import { AutoModel, Model } from '../lib/models';
import { AutoTokenizer, PreTrainedTokenizer } from '../lib/tokenizers';
import { startServer } from '../lib/serve';
import type { RunningServer } from '../lib/serve';
import { acceptedFieldList } from '../lib/serve/openai-fields';
import { CHAT_TEMPLATE, tinyModelDir, trainedLora } from './60.serve-helpers';
import { TIE_MARGIN, stories260K } from './models-helpers';
import { expectClose } from './helpers';

const EOS = 2;

/** Log-softmax of one row (float64). */
function logSoftmax(row: number[]): number[] {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
  return row.map((x) => x - lse);
}

interface Step { token: number; logprobs: number[] }

/** Greedy decoding re-computed from full forward() logits with OpenAI's penalties and logit bias, up to EOS. */
async function reference(model: Model, prompt: number[], maxTokens: number, p: { presence?: number; frequency?: number; bias?: Record<number, number> } = {}): Promise<Step[]> {
  const seq = [...prompt];
  const counts = new Map<number, number>();
  const steps: Step[] = [];
  for (let s = 0; s < maxTokens; s++) {
    const out = await model.forward({ inputIds: [seq] });
    const v = out.shape[2]!;
    const logits = Array.from(out.logits.subarray((seq.length - 1) * v, seq.length * v)).map((x, t) => {
      const c = counts.get(t) ?? 0;
      return x - c * (p.frequency ?? 0) - (c > 0 ? p.presence ?? 0 : 0) + (p.bias?.[t] ?? 0);
    });
    const sorted = [...logits].sort((a, b) => b - a);
    expect(sorted[0]! - sorted[1]!, 'a near-tie in the fixture').to.be.above(TIE_MARGIN);
    const token = logits.indexOf(sorted[0]!);
    steps.push({ token, logprobs: logSoftmax(logits) });
    if (token === EOS) break;
    seq.push(token);
    counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return steps;
}

describe('66 serve: the official openai client', function () {
  let server: RunningServer;
  let client: OpenAI;
  let model: Model;
  let tok: PreTrainedTokenizer;
  const prompt = 'the cat sat on';
  let promptIds: number[];

  /** The completion text of reference steps (EOS excluded), as the server decodes it. */
  const textOf = async (steps: Step[]) => {
    const ids = steps.map((s) => s.token).filter((t) => t !== EOS);
    const [whole, head] = await Promise.all([tok.decode([...promptIds, ...ids], { skipSpecialTokens: true }), tok.decode(promptIds, { skipSpecialTokens: true })]);
    return whole.slice(head.length);
  };

  before(async () => {
    const dir = tinyModelDir('llama', 'causal', CHAT_TEMPLATE);
    const lora = await trainedLora(dir, ['q_proj', 'v_proj']);
    server = await startServer({ model: dir, name: 'tiny', port: 0, apiKey: 'sk-test', maxTokens: 32, bodyLimit: 8192, maxWaitMs: 50, adapters: { fr: lora } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    model = await AutoModel.fromPretrained(dir, { quiet: true });
    tok = await AutoTokenizer.fromPretrained(dir);
    promptIds = (await tok.encode(prompt)).ids;
  });
  after(async () => server && (await server.close()));

  it('lists and retrieves the served models', async () => {
    const list = [];
    for await (const m of client.models.list()) list.push(m);
    expect(list.map((m) => m.id)).to.deep.equal(['tiny', 'tiny:fr']);
    expect(list[0]).to.include({ object: 'model', owned_by: 'nodetune' });
    expect(list[0]!.created).to.be.a('number');
    const one = await client.models.retrieve('tiny:fr');
    expect(one).to.include({ id: 'tiny:fr', object: 'model' });
    const e = await client.models.retrieve('gpt-4').then(() => undefined, (x: unknown) => x);
    expect(e).to.be.instanceOf(OpenAI.NotFoundError);
    expect((e as InstanceType<typeof OpenAI.NotFoundError>).code).to.equal('model_not_found');
  });

  it('completions and chat with default-valued fields sent explicitly', async () => {
    const ref = await reference(model, promptIds, 6);
    const c = await client.completions.create({
      model: 'tiny', prompt, max_tokens: 6, presence_penalty: 0, frequency_penalty: 0, logit_bias: {}, n: 1, echo: false, best_of: 1,
      suffix: null, stream: false, stream_options: null, user: 'someone', seed: null, stop: null, logprobs: null, temperature: 0,
    });
    expect(c.object).to.equal('text_completion');
    expect(c.choices[0]!.text).to.equal(await textOf(ref));
    expect(c.usage).to.deep.include({ prompt_tokens: promptIds.length });
    const chat = await client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: prompt }] }],
      max_completion_tokens: 4, presence_penalty: 0, frequency_penalty: 0, logit_bias: {}, n: 1, store: false, tools: [], parallel_tool_calls: true,
      response_format: { type: 'text' }, service_tier: 'auto', metadata: { team: 'a' }, logprobs: false, tool_choice: 'none', user: 'u',
    });
    expect(chat.object).to.equal('chat.completion');
    expect(chat.choices[0]!.message.role).to.equal('assistant');
    expect(chat.choices[0]!.logprobs).to.equal(null);
    // Every accepted-but-unimplemented field, all at null (the default) in one request each.
    for (const route of ['completions', 'chat'] as const) {
      const nulls = Object.fromEntries(acceptedFieldList(route).map((f) => [f.field, null]));
      const r = route === 'chat'
        ? await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...nulls } as never)
        : await client.completions.create({ model: 'tiny', prompt: 'hi', max_tokens: 2, ...nulls } as never);
      expect((r as { choices: unknown[] }).choices).to.have.length(1);
    }
  });

  it('streams completions and chat, with the usage chunk before [DONE]', async () => {
    const plain = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8 });
    const stream = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).to.deep.equal([]);
    expect(last.usage).to.deep.equal(plain.usage);
    expect(chunks.slice(0, -1).every((ch) => !ch.usage)).to.equal(true);
    expect(chunks.flatMap((ch) => ch.choices.map((x) => x.text)).join('')).to.equal(plain.choices[0]!.text);
    // One event per decodable piece as the tokens come (continuous batching), not chunks of several tokens' text.
    const pieces = chunks.filter((ch) => ch.choices.some((x) => x.text.length > 0)).length;
    const generated = plain.usage!.completion_tokens;
    expect(pieces).to.be.at.most(generated);
    if (generated >= 4) expect(pieces, 'text pieces').to.be.at.least(Math.ceil(generated / 2));

    const chatPlain = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 6 });
    const chatStream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    let finish: string | null = null;
    for await (const ch of chatStream) {
      text += ch.choices[0]?.delta.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
      if (ch.usage) usage = ch.usage;
    }
    expect(text).to.equal(chatPlain.choices[0]!.message.content);
    expect(finish).to.equal(chatPlain.choices[0]!.finish_reason);
    expect(usage).to.deep.equal(chatPlain.usage);
  });

  it('logit_bias banning the greedy token changes the output as re-computed', async () => {
    const greedy = await reference(model, promptIds, 4);
    const banned = greedy[0]!.token;
    const ref = await reference(model, promptIds, 4, { bias: { [banned]: -100 } });
    const r = await client.completions.create({ model: 'tiny', prompt, max_tokens: 4, logit_bias: { [String(banned)]: -100 } });
    expect(r.choices[0]!.text).to.equal(await textOf(ref));
    expect(r.choices[0]!.text).to.not.equal(await textOf(greedy));
  });

  it('presence and frequency penalties per request, rows of one running batch, as OpenAI defines them', async () => {
    const settings = [{ presence: 1.5, frequency: 0 }, { presence: 0, frequency: 2 }, {}];
    const refs = await Promise.all(settings.map((p) => reference(model, promptIds, 12, p)));
    const before = server.stats().items;
    const rs = await Promise.all(settings.map((p) => client.completions.create({ model: 'tiny', prompt, max_tokens: 12, presence_penalty: p.presence ?? 0, frequency_penalty: p.frequency ?? 0 })));
    expect(server.stats().items - before, 'three rows').to.equal(3);
    for (const [i, r] of rs.entries()) expect(r.choices[0]!.text, `request ${i}`).to.equal(await textOf(refs[i]!));
    for (const i of [0, 1]) expect(rs[i]!.choices[0]!.text, 'the penalties change the text').to.not.equal(rs[2]!.choices[0]!.text);
  });

  it('logprobs (completions legacy shape, chat content[]) equal log-softmax of forward() logits', async () => {
    const ref = await reference(model, promptIds, 5);
    const tol = { rtol: 1e-4, atol: 1e-4 };
    const c = await client.completions.create({ model: 'tiny', prompt, max_tokens: 5, logprobs: 3 });
    const lp = c.choices[0]!.logprobs!;
    const kept = ref.filter((s) => s.token !== EOS);
    expect(lp.tokens).to.have.length(kept.length);
    expect(lp.tokens!.join('')).to.equal(c.choices[0]!.text);
    expectClose(lp.token_logprobs!, kept.map((s) => s.logprobs[s.token]!), tol, 'token_logprobs');
    for (const [i, top] of lp.top_logprobs!.entries()) {
      const best = [...kept[i]!.logprobs].sort((a, b) => b - a).slice(0, 3);
      expectClose(Object.values(top).sort((a, b) => b - a), best.slice(0, Object.keys(top).length), tol, `top_logprobs[${i}]`);
    }
    expect(lp.text_offset![0]).to.equal(prompt.length);

    const chat = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 3, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content.map((e) => e.token).join('')).to.equal(chat.choices[0]!.message.content);
    for (const e of content) {
      expect(e.top_logprobs).to.have.length(2);
      expect(e.logprob).to.be.at.most(e.top_logprobs[0]!.logprob + 1e-6);
      expect(e.bytes).to.deep.equal([...Buffer.from(e.token)]);
    }
  });

  it('n = 2 with a seed: two choices in index order, reproducible', async () => {
    const ask = () => client.completions.create({ model: 'tiny', prompt: ['the cat', 'a dog'], max_tokens: 8, n: 2, temperature: 1, seed: 11 });
    const [a, b] = await Promise.all([ask(), ask()]);
    expect(a.choices.map((c) => c.index)).to.deep.equal([0, 1, 2, 3]);
    expect(a.choices.map((c) => c.text)).to.deep.equal(b.choices.map((c) => c.text));
    expect(a.choices[0]!.text).to.not.equal(a.choices[1]!.text);
    expect(a.usage!.prompt_tokens).to.equal(3 + 3);
    const messages = [{ role: 'user' as const, content: 'the cat' }];
    const chats = await Promise.all([0, 1].map(() => client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, n: 2, temperature: 1, seed: 3 })));
    expect(chats[0]!.choices.map((x) => x.message.content)).to.deep.equal(chats[1]!.choices.map((x) => x.message.content));
    // Streamed: the choices interleave by index; greedy choices equal the plain greedy completion.
    const greedy = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6 });
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, n: 2, stream: true });
    const texts = ['', ''];
    const finished: string[] = [];
    for await (const ch of stream) for (const x of ch.choices) (texts[x.index] += x.delta.content ?? ''), x.finish_reason && finished.push(x.finish_reason);
    expect(texts).to.deep.equal([greedy.choices[0]!.message.content, greedy.choices[0]!.message.content]);
    expect(finished).to.have.length(2);
  });

  it('stop sequences end the choice before the stop text', async () => {
    const plain = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8 });
    const words = plain.choices[0]!.text.trim().split(' ');
    expect(words.length, 'the fixture generates a few words').to.be.at.least(3);
    const text = plain.choices[0]!.text;
    const r = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8, stop: [` ${words[2]}`, 'zzz'] });
    expect(r.choices[0]!.text).to.equal(text.slice(0, text.indexOf(` ${words[2]}`)));
    expect(r.choices[0]!.finish_reason).to.equal('stop');
    const single = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8, stop: words[1]! });
    expect(single.choices[0]!.text.trim()).to.equal(words[0]);
  });

  it('errors have OpenAI\'s shape with our codes and the client\'s parameter names', async () => {
    const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected an error'); }, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    const unknown = await fail(client.completions.create({ model: 'tiny', prompt, temprature: 1 } as never));
    expect(unknown).to.be.instanceOf(OpenAI.BadRequestError);
    expect([unknown.code, unknown.param, unknown.type]).to.deep.equal(['unknown_parameter', 'temprature', 'invalid_request_error']);
    const echo = await fail(client.completions.create({ model: 'tiny', prompt, echo: true }));
    expect([echo.code, echo.param]).to.deep.equal(['unsupported_value', 'echo']);
    const tools = await fail(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }));
    expect([tools.code, tools.param]).to.deep.equal(['unsupported_value', 'tools']);
    const long = await fail(client.completions.create({ model: 'tiny', prompt: 'the '.repeat(40), max_tokens: 32 }));
    expect([long.code, long.param]).to.deep.equal(['context_length_exceeded', 'max_tokens']);
    expect(long.message).to.match(/max_tokens \(32\) exceeds the model's 64 positions/);
    const longChat = await fail(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'the '.repeat(40) }], max_completion_tokens: 32 }));
    expect(longChat.param).to.equal('max_completion_tokens');
    const bias = await fail(client.completions.create({ model: 'tiny', prompt, logit_bias: { 999: 5 } }));
    expect([bias.param, bias.status]).to.deep.equal(['logit_bias', 400]);
    expect(bias.message).to.match(/logit_bias key '999' is not a token id \(vocabulary size 48\)/);
    const top = await fail(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }));
    expect(top.param).to.equal('top_logprobs');

    const raw = (body: string) => fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' }, body });
    const json = await raw('{"prompt": ');
    expect(json.status).to.equal(400);
    expect(await json.json()).to.deep.equal({ error: { message: "the request body is not valid JSON (content-type 'application/json' needs a JSON document)", type: 'invalid_request_error', param: null, code: 'invalid_json' } });
    const big = await raw(JSON.stringify({ prompt: 'the '.repeat(4000) }));
    expect(big.status).to.equal(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).to.equal('body_too_large');
  });

  it('stories260K (a real model): the client streams a completion with usage', async function () {
    const dir = stories260K();
    if (!dir) this.skip(); // ../shared/assets/models/stories260K is absent
    const s = await startServer({ model: dir!, port: 0 });
    try {
      const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
      const plain = await c.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, presence_penalty: 0.5, frequency_penalty: 0.5, logit_bias: {} });
      const stream = await c.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, presence_penalty: 0.5, frequency_penalty: 0.5, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: unknown;
      for await (const ch of stream) (text += ch.choices[0]?.text ?? ''), (usage = ch.usage ?? usage);
      expect(text).to.equal(plain.choices[0]!.text);
      expect(usage).to.deep.equal(plain.usage);
    } finally {
      await s.close();
    }
  });
});
