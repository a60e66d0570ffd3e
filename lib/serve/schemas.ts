/** JSON schemas of the request bodies (Fastify validates them; unknown fields and wrong types are 400s). */

import { acceptedFields } from './openai-fields';

/** `schema`, or null (OpenAI's clients send null for "the default"). */
const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });

const stop = nullable({
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 },
  ],
});

/** Sampling fields shared by both completion endpoints; `maxTokens` is the server's limit on max_tokens. */
function sampling(maxTokens: number, maxChoices: number) {
  const penalty = nullable({ type: 'number', minimum: -2, maximum: 2 });
  return {
    model: { type: 'string', minLength: 1 },
    max_tokens: nullable({ type: 'integer', minimum: 1, maximum: maxTokens }),
    temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
    top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
    top_k: { type: 'integer', minimum: 0 },
    stop,
    stream: nullable({ type: 'boolean' }),
    stream_options: nullable({
      type: 'object', additionalProperties: false,
      properties: { include_usage: { type: 'boolean' }, include_obfuscation: { type: 'boolean' } },
    }),
    seed: nullable({ type: 'integer', minimum: 0 }),
    n: nullable({ type: 'integer', minimum: 1, maximum: maxChoices }),
    user: { type: 'string' },
    presence_penalty: penalty,
    frequency_penalty: penalty,
    // Keys are token ids (checked against the vocabulary with the request); values as OpenAI bounds them.
    logit_bias: nullable({ type: 'object', additionalProperties: { type: 'number', minimum: -100, maximum: 100 } }),
  };
}

export function completionSchema(maxTokens: number, maxPrompts: number) {
  const ids = { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 };
  return {
    type: 'object',
    additionalProperties: false,
    required: ['prompt'],
    properties: {
      ...sampling(maxTokens, maxPrompts),
      ...acceptedFields('completions'),
      prompt: {
        anyOf: [
          { type: 'string' },
          { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: maxPrompts },
          ids,
          { type: 'array', items: ids, minItems: 1, maxItems: maxPrompts },
        ],
      },
      logprobs: nullable({ type: 'integer', minimum: 0, maximum: 5 }),
    },
  };
}

export function chatSchema(maxTokens: number, maxMessages: number, maxChoices: number) {
  const text = { type: 'object', additionalProperties: false, required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } };
  return {
    type: 'object',
    additionalProperties: false,
    required: ['messages'],
    properties: {
      ...sampling(maxTokens, maxChoices),
      ...acceptedFields('chat'),
      max_completion_tokens: nullable({ type: 'integer', minimum: 1, maximum: maxTokens }),
      logprobs: nullable({ type: 'boolean' }),
      top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: maxMessages,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['role', 'content'],
          properties: {
            role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
            content: { anyOf: [{ type: 'string' }, { type: 'array', items: text }, { type: 'null' }] },
            name: { type: 'string' },
            refusal: { type: 'null' },
          },
        },
      },
    },
  };
}

export function classifySchema(maxInputs: number) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['input'],
    properties: {
      model: { type: 'string', minLength: 1 },
      input: {
        anyOf: [
          { type: 'string' },
          { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: maxInputs },
        ],
      },
    },
  };
}

/** One readable sentence from Ajv's errors, naming the field. */
export function describeValidation(errors: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }>, where: string): { message: string; param: string | null; code: string } {
  // anyOf reports each branch and then itself; the first concrete error is the useful one.
  const e = errors.find((x) => x.keyword !== 'anyOf') ?? errors[0]!;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const field = [path, String(e.params.additionalProperty)].filter(Boolean).join('.');
    return { message: `unknown field '${field}' in the ${where}`, param: field, code: 'unknown_parameter' };
  }
  if (e.keyword === 'required') {
    const field = [path, String(e.params.missingProperty)].filter(Boolean).join('.');
    return { message: `missing required field '${field}' in the ${where}`, param: field, code: 'missing_required_parameter' };
  }
  const field = path || where;
  return { message: `'${field}' ${e.message ?? 'is invalid'}`, param: path || null, code: 'invalid_value' };
}
