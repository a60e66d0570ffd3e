import { expect } from 'chai';
import { startServer } from '../lib/serve';
import { requestLine } from '../lib/serve/request-log';
import { CHAT_TEMPLATE, tinyModelDir } from './60.serve-helpers';

describe('67 serve: one log line per request', function () {
  this.timeout(60_000);

  it('the line: method, route, status, milliseconds, prompt+completion tokens where known', () => {
    expect(requestLine({ method: 'POST', route: '/v1/completions', status: 200, ms: 41.25, tokens: { prompt: 5, completion: 16 } }))
      .to.equal('POST /v1/completions 200 41.3 ms 5+16 tokens');
    expect(requestLine({ method: 'GET', route: '/healthz', status: 200, ms: 0.5 })).to.equal('GET /healthz 200 0.5 ms');
    expect(requestLine({ method: 'POST', route: '/v1/completions', status: 200, ms: 3, closedEarly: true })).to.equal('POST /v1/completions 200 3.0 ms (client closed the connection)');
  });

  it('a server with `log`: each request once (plain, streamed, refused, unmatched), after its response', async () => {
    const lines: string[] = [];
    const model = tinyModelDir('llama', 'causal', CHAT_TEMPLATE);
    const s = await startServer({ model, port: 0, name: 'tiny', log: (l) => lines.push(l), bodyLimit: 4096 });
    try {
      const post = (body: string) => fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const plain = await post(JSON.stringify({ prompt: 'the cat', max_tokens: 3 }));
      const usage = ((await plain.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
      const streamed = await post(JSON.stringify({ prompt: 'the cat', max_tokens: 2, stream: true }));
      await streamed.text();
      expect((await post('{"prompt": ')).status).to.equal(400);
      expect((await post(JSON.stringify({ prompt: 'x'.repeat(5000) }))).status).to.equal(413);
      expect((await fetch(`${s.url}/nope?x=1`)).status).to.equal(404);
      expect((await fetch(`${s.url}/healthz`)).status).to.equal(200);
      // The line is written when the connection's response closes: wait for the last one.
      for (let i = 0; i < 100 && lines.length < 6; i++) await new Promise((r) => setTimeout(r, 20));
      const re = (method: string, route: string, status: number, tail = '') => new RegExp(`^${method} ${route.replace(/[/?]/g, '\\$&')} ${status} \\d+\\.\\d ms${tail}$`);
      expect(lines).to.have.length(6);
      expect(lines[0]).to.match(re('POST', '/v1/completions', 200, ` ${usage.prompt_tokens}\\+${usage.completion_tokens} tokens`));
      expect(lines[1]).to.match(re('POST', '/v1/completions', 200, ' \\d+\\+\\d+ tokens'));
      expect(lines[2]).to.match(re('POST', '/v1/completions', 400));
      expect(lines[3]).to.match(re('POST', '/v1/completions', 413));
      expect(lines[4]).to.match(re('GET', '/nope', 404));
      expect(lines[5]).to.match(re('GET', '/healthz', 200));
    } finally {
      await s.close();
    }
  });
});
