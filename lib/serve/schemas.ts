/** JSON schemas of the request bodies (Fastify validates them; unknown fields and wrong types are 400s). */

const stop = {
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 },
    { type: 'null' },
  ],
};

/** Sampling fields shared by both completion endpoints; `maxTokens` is the server's limit on max_tokens. */
function sampling(maxTokens: number) {
  return {
    model: { type: 'string', minLength: 1 },
    max_tokens: { type: 'integer', minimum: 1, maximum: maxTokens },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    top_k: { type: 'integer', minimum: 0 },
    stop,
    stream: { type: 'boolean' },
    seed: { type: 'integer', minimum: 0 },
    n: { type: 'integer', const: 1 },
    user: { type: 'string' },
  };
}

export function completionSchema(maxTokens: number, maxPrompts: number) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['prompt'],
    properties: {
      ...sampling(maxTokens),
      prompt: {
        anyOf: [
          { type: 'string' },
          { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: maxPrompts },
        ],
      },
    },
  };
}

export function chatSchema(maxTokens: number, maxMessages: number) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['messages'],
    properties: {
      ...sampling(maxTokens),
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: maxMessages,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['role', 'content'],
          properties: {
            role: { type: 'string', enum: ['system', 'user', 'assistant'] },
            content: { type: 'string' },
            name: { type: 'string' },
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
export function describeValidation(errors: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }>, where: string): { message: string; param: string | null } {
  // anyOf reports each branch and then itself; the first concrete error is the useful one.
  const e = errors.find((x) => x.keyword !== 'anyOf') ?? errors[0]!;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const field = [path, String(e.params.additionalProperty)].filter(Boolean).join('.');
    return { message: `unknown field '${field}' in the ${where}`, param: field };
  }
  if (e.keyword === 'required') {
    const field = [path, String(e.params.missingProperty)].filter(Boolean).join('.');
    return { message: `missing required field '${field}' in the ${where}`, param: field };
  }
  const field = path || where;
  return { message: `'${field}' ${e.message ?? 'is invalid'}`, param: path || null };
}
