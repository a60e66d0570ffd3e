import { expect } from 'chai';
import { startServer } from '../lib/serve';
import { Metrics } from '../lib/serve/metrics';
import { register as globalRegistry } from 'prom-client';
import type { RunningServer, ServeOptions } from '../lib/serve';
import { pipeline } from '../lib/pipelines';
import { CHAT_TEMPLATE, tinyModelDir, trainedLora } from './60.serve-helpers';
import { TIE_MARGIN, greedyLead, maxAbsDiff } from './models-helpers';
import { rejects as rejectsWith } from './helpers';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function call(s: RunningServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(s.url + path, init);
  const text = await r.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

/** The JSON payloads of an SSE body's `data:` lines (the final [DONE] as a string). */
function events(text: string): unknown[] {
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => {
    const d = b.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

describe('61 serve: HTTP endpoints', function () {
  const servers: RunningServer[] = [];
  let llama: string;
  let bert: string;
  const start = async (o: Partial<ServeOptions> & { model: string }) => {
    const s = await startServer({ port: 0, ...o });
    servers.push(s);
    return s;
  };
  before(() => {
    llama = tinyModelDir('llama', 'causal', CHAT_TEMPLATE);
    bert = tinyModelDir('bert-cls', 'encoder');
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('completions, chat completions, health and metrics on a loopback port', async () => {
    const s = await start({ model: llama, name: 'tiny' });
    expect(s.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await call(s, 'GET', '/healthz');
    expect(health.status).to.equal(200);
    expect(health.json).to.deep.include({ status: 'ok', model: 'tiny', task: 'causal-lm' });

    const c = await call(s, 'POST', '/v1/completions', { model: 'tiny', prompt: ['the cat', 'a dog sat'], max_tokens: 5 });
    expect(c.status).to.equal(200);
    expect(c.json.object).to.equal('text_completion');
    expect(c.json.choices).to.have.length(2);
    expect(c.json.choices[1].index).to.equal(1);
    expect(c.json.usage.prompt_tokens).to.equal(3 + 4);
    expect(c.json.usage.completion_tokens).to.be.within(1, 10);
    const words = (c.json.choices[0].text as string).trim().split(' ');
    if (words.length >= 2) {
      const stopped = await call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 5, stop: words[1] });
      expect(stopped.json.choices[0].text.trim()).to.equal(words[0]);
      expect(stopped.json.choices[0].finish_reason).to.equal('stop');
    }

    const chat = await call(s, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'the cat' }], max_tokens: 3 });
    expect(chat.status).to.equal(200);
    expect(chat.json.object).to.equal('chat.completion');
    expect(chat.json.choices[0].message.role).to.equal('assistant');
    expect(chat.json.choices[0].message.content).to.be.a('string');
    // "<s>user the cat assistant": the template's tokens, without a second BOS.
    expect(chat.json.usage.prompt_tokens).to.equal(5);

    const m = await call(s, 'GET', '/metrics');
    expect(m.status).to.equal(200);
    expect(m.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    expect(m.text).to.match(/nodetune_requests_total\{route="\/v1\/completions",status="200"\} [1-9]/);
    expect(m.text).to.match(/nodetune_request_duration_seconds_bucket\{le="\+Inf",route="\/v1\/chat\/completions"\} 1/);
    expect(m.text).to.match(/nodetune_batch_size_count [1-9]/);
    expect(m.text).to.match(/nodetune_completion_tokens_total [1-9]/);
    expect(m.text).to.match(/nodetune_tokens_per_second \d/);
    expect(m.text).to.match(/nodetune_queue_depth 0/);
  });

  it('streams completions and chat completions as server-sent events, one per decodable piece of text', async () => {
    const s = await start({ model: llama });
    const plain = await call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 6 });
    const r = await call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 6, stream: true });
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/event-stream/);
    const ev = events(r.text);
    expect(ev[ev.length - 1]).to.equal('[DONE]');
    const chunks = ev.slice(0, -1) as { choices: { text: string; finish_reason: string | null }[] }[];
    expect(chunks.map((x) => x.choices[0]!.text).join('')).to.equal(plain.json.choices[0].text);
    expect(chunks[chunks.length - 1]!.choices[0]!.finish_reason).to.equal(plain.json.choices[0].finish_reason);
    if (plain.json.usage.completion_tokens > 2) expect(chunks.length).to.be.greaterThan(2);
    // At most one event per generated token (plus the finishing one): no chunks of several tokens' worth of re-generation.
    expect(chunks.length).to.be.at.most(plain.json.usage.completion_tokens + 1);

    const chat = await call(s, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true });
    const cev = events(chat.text) as { object: string; choices: { delta: { role?: string; content?: string } }[] }[];
    expect(cev[0]!.object).to.equal('chat.completion.chunk');
    expect(cev[0]!.choices[0]!.delta.role).to.equal('assistant');
    expect(cev[cev.length - 1]).to.equal('[DONE]');
  });

  it('static batching: concurrent requests share decoding steps, with the same answers as alone', async () => {
    const s = await start({ model: llama, maxWaitMs: 100, maxBatch: 8, batching: 'static' });
    const prompts = ['the cat', 'a dog sat on the mat', 'sun', 'the little girl'];
    const together = await Promise.all(prompts.map((p) => call(s, 'POST', '/v1/completions', { prompt: p, max_tokens: 4 })));
    const tokens = together.reduce((a, r) => a + (r.json.usage.completion_tokens as number), 0);
    expect(s.stats().items).to.equal(4);
    expect(s.stats().batches).to.be.below(tokens); // rows shared steps
    const alone = await start({ model: llama, maxBatch: 1, maxWaitMs: 0 });
    const gen = await pipeline('text-generation', llama);
    for (const [i, p] of prompts.entries()) {
      const one = await call(alone, 'POST', '/v1/completions', { prompt: p, max_tokens: 4 });
      // batched vs alone: other float paths, the same text because no greedy step of the fixture is a near-tie
      const prompt = (await gen.tokenizer.encode(p)).ids;
      const ids = (await gen(p, { maxNewTokens: 4 })).tokenIds;
      expect(await greedyLead(gen.model, [[...prompt, ...ids]], prompt.length), `no near-tie after '${p}'`).to.be.above(TIE_MARGIN);
      expect(together[i]!.json.choices[0].text).to.equal(one.json.choices[0].text);
    }
    const m = await call(s, 'GET', '/metrics');
    // Rows per decoding step: every step of the gathered batch had the four rows (or fewer once some ended).
    expect(m.text).to.match(/nodetune_batch_size_bucket\{le="2"\} 0/);
  });

  it('continuous batching: a request joins a running stream at a token boundary; the queue limit holds', async () => {
    const s = await start({ model: llama, maxWaitMs: 0, maxBatch: 2, maxQueue: 1 });
    const long = await fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'the cat', max_tokens: 60, stream: true }),
    });
    const reader = long.body!.getReader();
    await reader.read(); // the stream is running
    const joined = await call(s, 'POST', '/v1/completions', { prompt: 'a dog sat on the mat', max_tokens: 4 });
    const running = s.stats().running;
    expect(joined.status).to.equal(200);
    const alone = await pipeline('text-generation', llama, { maxBatch: 1 });
    expect(joined.json.choices[0].text).to.equal((await alone('a dog sat on the mat', { maxNewTokens: 4 })).text);
    // It ran beside the stream (steps decoded both rows) rather than after it.
    expect(running, 'the stream still runs after the joined request finished').to.equal(true);
    const m = (await call(s, 'GET', '/metrics')).text;
    const one = Number(/nodetune_batch_size_bucket\{le="1"\} (\d+)/.exec(m)![1]);
    const steps = Number(/nodetune_batch_size_count (\d+)/.exec(m)![1]);
    expect(steps - one, 'steps with two rows').to.be.at.least(joined.json.usage.completion_tokens - 1);
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    expect(text).to.match(/\[DONE\]/);
    // Two rows run (maxBatch 2), one waits (maxQueue 1): a fourth request is refused with 503.
    const body = JSON.stringify({ prompt: 'the cat', max_tokens: 60 });
    const rs = await Promise.all([0, 1, 2, 3].map(() => fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })));
    expect(rs.map((r) => r.status).sort()).to.deep.equal([200, 200, 200, 503]);
  });

  it('answers bad requests with 4xx errors that name the problem', async () => {
    const s = await start({ model: llama, maxTokens: 32, bodyLimit: 4096 });
    const bad = async (body: unknown, status: number, re: RegExp, path = '/v1/completions') => {
      const r = await call(s, 'POST', path, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).to.equal(status);
      expect(r.json.error.message).to.match(re);
      return r.json.error;
    };
    expect((await bad({ prompt: 'a', temprature: 1 }, 400, /unknown field 'temprature'/)).param).to.equal('temprature');
    await bad({ prompt: 'a', max_tokens: '4' }, 400, /'max_tokens' must be integer/);
    await bad({ prompt: 'a', max_tokens: 33 }, 400, /'max_tokens' must be <= 32/);
    await bad({ prompt: 'a', max_tokens: 0 }, 400, /'max_tokens' must be >= 1/);
    await bad({ max_tokens: 3 }, 400, /missing required field 'prompt'/);
    await bad({ prompt: 7 }, 400, /'prompt' must be string/);
    await bad({ prompt: 'a', temperature: -1 }, 400, /'temperature' must be >= 0/);
    await bad({ messages: [{ role: 'robot', content: 'x' }] }, 400, /'messages.0.role' must be equal to one of the allowed values/, '/v1/chat/completions');
    await bad({ messages: [{ role: 'user', content: 'x', extra: 1 }] }, 400, /unknown field 'messages.0.extra'/, '/v1/chat/completions');
    await bad('{"prompt": ', 400, /JSON/);
    await bad({ prompt: 'the '.repeat(2000) }, 413, /too large/);
    // 64 positions: a long prompt plus 32 new tokens does not fit.
    await bad({ prompt: 'the '.repeat(40), max_tokens: 32 }, 400, /exceeds the model's 64 positions/);
    await bad({ prompt: 'a', model: 'gpt-4' }, 404, /model 'gpt-4' is not served here/);
    const ad = await bad({ prompt: 'a', model: `${s.name}:french` }, 404, /adapter 'french' is not loaded/);
    expect(ad.code).to.equal('adapter_not_found');
    await bad({ prompt: 'a', stream: true, prompt2: 1 }, 400, /unknown field 'prompt2'/);
    await bad({ prompt: ['a', 'b'], stream: true }, 400, /single prompt/);
    await bad({ input: 'the cat' }, 400, /needs a sequence-classification model/, '/v1/classify');
    const nf = await call(s, 'GET', '/v2/nothing');
    expect(nf.status).to.equal(404);
    expect(nf.json.error.type).to.equal('not_found');
  });

  it('classify: labels and scores; bearer-token auth on every route but /healthz', async () => {
    const s = await start({ model: bert, apiKey: 's3cret' });
    const auth = { authorization: 'Bearer s3cret' };
    expect((await call(s, 'GET', '/healthz')).status).to.equal(200);
    const none = await call(s, 'POST', '/v1/classify', { input: 'the cat' });
    expect(none.status).to.equal(401);
    expect(none.headers.get('www-authenticate')).to.equal('Bearer');
    expect(none.json.error.type).to.equal('authentication_error');
    expect((await call(s, 'POST', '/v1/classify', { input: 'the cat' }, { authorization: 'Bearer s3cres' })).status).to.equal(401);
    expect((await call(s, 'GET', '/metrics')).status).to.equal(401);
    const r = await call(s, 'POST', '/v1/classify', { input: ['the cat', 'a dog'] }, auth);
    expect(r.status).to.equal(200);
    expect(r.json.data).to.have.length(2);
    for (const d of r.json.data as { label: string; score: number; scores: { score: number }[] }[]) {
      expect(['a', 'b', 'c']).to.include(d.label);
      expect(d.scores.reduce((a, x) => a + x.score, 0)).to.be.closeTo(1, 1e-6);
    }
    const gen = await call(s, 'POST', '/v1/completions', { prompt: 'x' }, auth);
    expect(gen.status).to.equal(400);
    expect(gen.json.error.message).to.match(/needs a causal-lm model/);
    expect((await call(s, 'GET', '/metrics', undefined, auth)).status).to.equal(200);
  });

  it('adapters per request: "model": "name:adapter" uses it, "name" the base model; mixed requests batch apart', async () => {
    const lora = await trainedLora(llama, ['q_proj', 'v_proj']);
    const s = await start({ model: llama, name: 'tiny', adapters: { fr: lora }, maxWaitMs: 100 });
    const body = (model: string) => ({ model, prompt: 'the cat sat on', max_tokens: 8 });
    const [base, fr] = await Promise.all([call(s, 'POST', '/v1/completions', body('tiny')), call(s, 'POST', '/v1/completions', body('tiny:fr'))]);
    expect(s.stats().items).to.equal(2); // each in its adapter's session (one step serves one adapter)
    const plain = await pipeline('text-generation', llama);
    const tuned = await pipeline('text-generation', llama, { adapter: lora });
    const [pb, pt] = await Promise.all([plain('the cat sat on', { maxNewTokens: 8 }), tuned('the cat sat on', { maxNewTokens: 8 })]);
    expect(base.json.choices[0].text).to.equal(pb.text);
    expect(fr.json.choices[0].text).to.equal(pt.text);
    // The adapter really changes the model: its logits differ from the base's.
    const ids = [await tuned.tokenizer.encode('the cat sat on').then((e) => e.ids)];
    const [lb, lt] = await Promise.all([tuned.model.forward({ inputIds: ids }, { adapter: null }), tuned.model.forward({ inputIds: ids })]);
    expect(maxAbsDiff(lb.logits, lt.logits)).to.be.above(1e-3);
    const missing = await call(s, 'POST', '/v1/completions', { prompt: 'x', model: 'tiny:de' });
    expect(missing.status).to.equal(404);
    expect(missing.json.error.message).to.match(/adapter 'de' is not loaded \(loaded adapters: fr/);
  });

  it('an adapter with a trained head (modules_to_save) serves alone; the replaced base is refused', async () => {
    const lora = await trainedLora(bert, ['query', 'value']);
    const s = await start({ model: bert, name: 'clf', adapters: { fr: lora } });
    const tuned = await pipeline('text-classification', bert, { adapter: lora });
    const want = (await tuned('the cat sat')).scores;
    for (const model of [undefined, 'clf:fr']) {
      const r = await call(s, 'POST', '/v1/classify', { input: 'the cat sat', ...(model ? { model } : {}) });
      expect(r.status).to.equal(200);
      expect(maxAbsDiff((r.json.data[0].scores as { score: number }[]).map((x) => x.score), want.map((x) => x.score))).to.be.below(1e-5);
    }
    const base = await call(s, 'POST', '/v1/classify', { input: 'the cat sat', model: 'clf' });
    expect(base.status).to.equal(400);
    expect(base.json.error.message).to.match(/adapter 'fr' replaced its task head/);
    const two = await rejectsWith(startServer({ model: bert, port: 0, adapters: { fr: lora, de: lora } }));
    expect(two.message).to.match(/carries a trained task head .* serve it alone/);
  });

  it('times out a request (504) and takes it out of the queue', async () => {
    const s = await start({ model: bert, requestTimeoutMs: 30, maxWaitMs: 400 });
    const r = await call(s, 'POST', '/v1/classify', { input: 'the cat' });
    expect(r.status).to.equal(504);
    expect(r.json.error.code).to.equal('timeout');
    expect(s.stats().pending).to.equal(0);
    expect(s.stats().items).to.equal(0); // it never ran
  });

  it('answers 503 when the queue is full', async () => {
    const s = await start({ model: bert, maxQueue: 2, maxWaitMs: 300 });
    const rs = await Promise.all(['a', 'the', 'cat', 'dog'].map((t) => call(s, 'POST', '/v1/classify', { input: t })));
    const statuses = rs.map((r) => r.status).sort();
    expect(statuses).to.deep.equal([200, 200, 503, 503]);
    const full = rs.find((r) => r.status === 503)!;
    expect(full.json.error.code).to.equal('queue_full');
  });

  it('streams refused before the first chunk get a plain status; chat needs a chat template', async () => {
    // Static batching gathers rows for maxWaitMs: the first token comes after the request's deadline.
    const s = await start({ model: llama, requestTimeoutMs: 30, maxWaitMs: 400, batching: 'static' });
    const r = await call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 4, stream: true });
    expect(r.status).to.equal(504);
    expect(r.headers.get('content-type')).to.match(/application\/json/);
    expect(r.json.error.code).to.equal('timeout');
    const plain = await start({ model: tinyModelDir('llama', 'causal') });
    const chat = await call(plain, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.status).to.equal(400);
    expect(chat.json.error.message).to.match(/has no chat template/);
  });

  it('a client that disconnects mid-stream stops the generation', async () => {
    const s = await start({ model: llama, maxWaitMs: 0 });
    const full = await call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 50 });
    expect(full.json.choices[0].finish_reason).to.equal('length'); // so an uninterrupted stream would take 50 steps
    const before = s.stats().batches;
    const abort = new AbortController();
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: abort.signal,
      body: JSON.stringify({ prompt: 'the cat', max_tokens: 50, stream: true }),
    });
    const reader = r.body!.getReader();
    await reader.read(); // the first chunk
    abort.abort();
    await new Promise((res) => setTimeout(res, 300));
    const after = s.stats().batches;
    await new Promise((res) => setTimeout(res, 100));
    expect(s.stats().batches, 'generation went on after the client left').to.equal(after);
    expect(after - before).to.be.below(50);
    expect(s.stats().running, 'the row was freed').to.equal(false);
    // Nothing the aborted client left behind holds up shutdown.
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).to.be.below(1000);
  });

  it('graceful shutdown waits for a stream in flight to finish', async () => {
    const s = await startServer({ model: llama, port: 0, maxWaitMs: 1000 });
    const pending = call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 6, stream: true, stop: null });
    const t0 = Date.now();
    while (s.stats().pending === 0 && s.stats().items === 0) {
      if (Date.now() - t0 > 5000) throw new Error('the request never reached the queue');
      await new Promise((r) => setTimeout(r, 5));
    }
    await s.close();
    const r = await pending;
    expect(r.status).to.equal(200);
    const ev = events(r.text);
    expect(ev[ev.length - 1]).to.equal('[DONE]');
    const last = ev[ev.length - 2] as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(last.choices[0]!.finish_reason).to.be.oneOf(['stop', 'length']);
    // One decoding step per token, run at once rather than after a 1 s wait window.
    expect(s.stats().batches).to.be.at.least(last.usage.completion_tokens);
    expect(Date.now() - t0).to.be.below(1500);
  });

  it('graceful shutdown: a queued request still completes, then the port is closed', async () => {
    const s = await startServer({ model: llama, port: 0, maxWaitMs: 2000 });
    const pending = call(s, 'POST', '/v1/completions', { prompt: 'the cat', max_tokens: 3 });
    const t0 = Date.now();
    while (s.stats().pending === 0 && s.stats().items === 0) {
      if (Date.now() - t0 > 5000) throw new Error('the request never reached the queue');
      await new Promise((r) => setTimeout(r, 5));
    }
    await s.close();
    const r = await pending;
    expect(r.status).to.equal(200);
    expect(r.json.choices[0].text).to.be.a('string');
    expect(Date.now() - t0).to.be.below(1500); // the close ran the batch at once, not after the 2 s wait
    let refused: unknown;
    try { await fetch(s.url + '/healthz'); } catch (e) { refused = e; }
    expect(refused, 'the port still answers after close()').to.be.instanceOf(Error);
  });
});

describe('61 serve: metrics registries', () => {
  it('gives every server its own registry: two in one process count apart, the global one stays empty', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.request('/v1/completions', 200, 0.02);
    a.request('/v1/completions', 400, 3);
    a.batch(3, 500, 10);
    a.tokens(5, 10);
    a.queueDepth = () => 2;
    const ta = await a.render();
    expect(ta).to.match(/nodetune_requests_total\{route="\/v1\/completions",status="200"\} 1\n/);
    expect(ta).to.match(/nodetune_requests_total\{route="\/v1\/completions",status="400"\} 1\n/);
    expect(ta).to.match(/nodetune_request_duration_seconds_bucket\{le="0\.025",route="\/v1\/completions"\} 1\n/);
    expect(ta).to.match(/nodetune_request_duration_seconds_bucket\{le="5",route="\/v1\/completions"\} 2\n/);
    expect(ta).to.match(/nodetune_request_duration_seconds_sum\{route="\/v1\/completions"\} 3\.02\n/);
    expect(ta).to.match(/nodetune_batch_size_bucket\{le="2"\} 0\n/);
    expect(ta).to.match(/nodetune_batch_size_bucket\{le="4"\} 1\n/);
    expect(ta).to.match(/nodetune_prompt_tokens_total 5\n/);
    expect(ta).to.match(/nodetune_completion_tokens_total 10\n/);
    expect(ta).to.match(/nodetune_tokens_per_second 20\n/);
    expect(ta).to.match(/nodetune_queue_depth 2\n/);
    const tb = await b.render();
    expect(tb).not.to.match(/nodetune_requests_total\{/);
    expect(tb).to.match(/nodetune_batch_size_count 0\n/);
    expect(tb).to.match(/nodetune_completion_tokens_total 0\n/);
    expect(tb).to.match(/nodetune_queue_depth 0\n/);
    expect(await globalRegistry.metrics()).not.to.match(/nodetune_/);
    expect(a.contentType).to.match(/^text\/plain; version=0\.0\.4/);
  });
});
