/**
 * One log line per request, written when its response is done (streamed ones included):
 * `POST /v1/completions 200 41.2 ms 5+16 tokens` — method, route, status, milliseconds, and the prompt + completion tokens
 * where the route counted them. Registered as a Fastify onRequest hook; off unless ServeOptions.log is given.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

const TOKENS = new WeakMap<FastifyRequest, { prompt: number; completion: number }>();

/** Adds tokens to a request's log line (a route calls it for each generation it answers with). */
export function noteTokens(req: FastifyRequest, prompt: number, completion: number): void {
  const t = TOKENS.get(req) ?? { prompt: 0, completion: 0 };
  TOKENS.set(req, { prompt: t.prompt + prompt, completion: t.completion + completion });
}

/** The line of one request; `route` is the matched route's pattern (the path itself when none matched). */
export function requestLine(r: { method: string; route: string; status: number; ms: number; tokens?: { prompt: number; completion: number }; closedEarly?: boolean }): string {
  const tokens = r.tokens ? ` ${r.tokens.prompt}+${r.tokens.completion} tokens` : '';
  return `${r.method} ${r.route} ${r.status} ${r.ms.toFixed(1)} ms${tokens}${r.closedEarly ? ' (client closed the connection)' : ''}`;
}

export function registerRequestLog(app: FastifyInstance, write: (line: string) => void): void {
  app.addHook('onRequest', async (req, reply) => {
    const started = process.hrtime.bigint();
    // 'close' rather than the onResponse hook: it also comes for streamed (hijacked) responses and for clients that leave.
    reply.raw.once('close', () => {
      const tokens = TOKENS.get(req);
      write(requestLine({
        method: req.method, route: req.routeOptions.url ?? req.url.split('?')[0]!, status: reply.raw.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6, ...(tokens ? { tokens } : {}), closedEarly: !reply.raw.writableFinished,
      }));
    });
  });
}
