/**
 * The routes of the tasks that are not OpenAI-shaped: POST /v1/text2text (seq2seq-lm models: T5, mT5) and
 * POST /v1/fill-mask (masked-lm models), answering as transformers' pipelines do (`generated_text`; the top-k
 * `{ score, token, token_str, sequence }` per mask). Inputs of one request are micro-batched with other requests'.
 */
import type { FastifyInstance } from 'fastify';
import { settleAll } from '../pipelines/batcher';
import type { Ticket } from '../pipelines/batcher';
import type { FillMaskResult, MaskFiller } from '../pipelines/fill-mask';
import type { Text2TextGenerator, Text2TextResult } from '../pipelines/text2text-generation';
import { HttpError } from './http-error';

export interface RouteContext {
  app: FastifyInstance;
  name: string;
  task: string;
  timeoutMs: number;
  maxInputs: number;
  maxTokens: number;
  defaultMaxTokens: number;
  selectModel(requested: string | undefined): string | null;
  within<O>(deadline: number): (t: Ticket<O>) => Promise<O>;
}

interface Text2TextBody {
  model?: string;
  input: string | string[];
  max_tokens?: number;
  num_beams?: number;
  length_penalty?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
}

interface FillMaskBody {
  model?: string;
  input: string | string[];
  top_k?: number;
}

const input = (maxInputs: number) => ({
  anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: maxInputs }],
});

function wrongTask(ctx: RouteContext, route: string, wanted: string): HttpError {
  return new HttpError(400, 'invalid_request_error', `${route} needs a ${wanted} model; '${ctx.name}' is a ${ctx.task} model`, 'model', 'wrong_task');
}

export function registerEncoderRoutes(ctx: RouteContext, text2text: Text2TextGenerator | undefined, filler: MaskFiller | undefined): void {
  const t2tSchema = {
    type: 'object', additionalProperties: false, required: ['input'],
    properties: {
      model: { type: 'string', minLength: 1 }, input: input(ctx.maxInputs),
      max_tokens: { type: 'integer', minimum: 1, maximum: ctx.maxTokens }, num_beams: { type: 'integer', minimum: 1, maximum: 16 },
      length_penalty: { type: 'number' }, temperature: { type: 'number', minimum: 0, maximum: 2 },
      top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 }, top_k: { type: 'integer', minimum: 0 }, seed: { type: 'integer', minimum: 0 },
    },
  };
  ctx.app.post('/v1/text2text', { schema: { body: t2tSchema } }, async (req) => {
    if (!text2text) throw wrongTask(ctx, '/v1/text2text', 'seq2seq-lm');
    const b = req.body as Text2TextBody;
    const adapter = ctx.selectModel(b.model);
    const inputs = typeof b.input === 'string' ? [b.input] : b.input;
    const opts = {
      maxNewTokens: b.max_tokens ?? ctx.defaultMaxTokens, numBeams: b.num_beams ?? 1, lengthPenalty: b.length_penalty ?? 1,
      temperature: b.temperature ?? 0, topP: b.top_p ?? 1, topK: b.top_k ?? 0, adapter, ...(b.seed !== undefined ? { seed: b.seed } : {}),
    };
    const results = await settleAll<string, Text2TextResult>(inputs, (t) => text2text.submit(t, opts), ctx.within(Date.now() + ctx.timeoutMs), 'a sibling input failed');
    return { object: 'list', model: ctx.name, data: results.map((r, index) => ({ index, ...r })) };
  });

  const maskSchema = {
    type: 'object', additionalProperties: false, required: ['input'],
    properties: { model: { type: 'string', minLength: 1 }, input: input(ctx.maxInputs), top_k: { type: 'integer', minimum: 1, maximum: 100 } },
  };
  ctx.app.post('/v1/fill-mask', { schema: { body: maskSchema } }, async (req) => {
    if (!filler) throw wrongTask(ctx, '/v1/fill-mask', 'masked-lm');
    const b = req.body as FillMaskBody;
    const adapter = ctx.selectModel(b.model);
    const inputs = typeof b.input === 'string' ? [b.input] : b.input;
    const results = await settleAll<string, FillMaskResult[][]>(inputs, (t) => filler.submit(t, { topK: b.top_k ?? 5, adapter }),
      ctx.within(Date.now() + ctx.timeoutMs), 'a sibling input failed');
    return { object: 'list', model: ctx.name, mask_token: filler.maskToken, data: results.map((masks, index) => ({ index, masks })) };
  });
}
