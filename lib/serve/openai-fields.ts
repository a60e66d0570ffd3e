/**
 * Fields of OpenAI's completions and chat-completions request schemas that nodetune does not implement: accepted only
 * where they change nothing (their defaults, or null, which OpenAI's clients send for "the default"); any other
 * value is a 400 naming the field (code `unsupported_value`). docs/SERVING.md lists them.
 */
import { HttpError } from './http-error';

interface Accepted {
  /** What the field may be, for the message. */
  as: string;
  ok(v: unknown): boolean;
}

const isNull = (v: unknown) => v === null;
const oneOf = (...values: unknown[]): Accepted => ({ as: values.map((x) => JSON.stringify(x)).join(' or '), ok: (v) => isNull(v) || values.includes(v) });
const emptyArray: Accepted = { as: '[] (none)', ok: (v) => isNull(v) || (Array.isArray(v) && v.length === 0) };
const absent: Accepted = { as: 'null', ok: isNull };
const anyString: Accepted = { as: 'a string (recorded nowhere)', ok: (v) => isNull(v) || typeof v === 'string' };
const anyBoolean: Accepted = { as: 'true or false (there are no tools)', ok: (v) => isNull(v) || typeof v === 'boolean' };
const stringMap: Accepted = {
  as: 'an object of strings (stored nowhere)',
  ok: (v) => isNull(v) || (typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === 'string')),
};

const COMPLETIONS: Record<string, Accepted> = {
  best_of: oneOf(1),
  echo: oneOf(false),
  suffix: oneOf(''),
};

const CHAT: Record<string, Accepted> = {
  audio: absent,
  function_call: oneOf('none', 'auto'),
  functions: emptyArray,
  metadata: stringMap,
  modalities: { as: '["text"]', ok: (v) => isNull(v) || (Array.isArray(v) && v.length === 1 && v[0] === 'text') },
  moderation: absent,
  parallel_tool_calls: anyBoolean,
  prediction: absent,
  prompt_cache_key: anyString,
  prompt_cache_options: absent,
  prompt_cache_retention: oneOf('in_memory'),
  reasoning_effort: oneOf('none'),
  response_format: { as: '{ "type": "text" }', ok: (v) => isNull(v) || (typeof v === 'object' && Object.keys(v as object).length === 1 && (v as { type?: unknown }).type === 'text') },
  safety_identifier: anyString,
  service_tier: oneOf('auto', 'default'),
  store: oneOf(false),
  tool_choice: oneOf('none', 'auto'),
  tools: emptyArray,
  verbosity: oneOf('medium'),
  web_search_options: absent,
};

const TABLES = { completions: COMPLETIONS, chat: CHAT };

/** The accepted fields as JSON-schema properties (any value passes the schema; checkAccepted() decides). */
export function acceptedFields(route: keyof typeof TABLES): Record<string, object> {
  return Object.fromEntries(Object.keys(TABLES[route]).map((k) => [k, {}]));
}

/** The accepted fields and what each may be, for the documentation and tests. */
export function acceptedFieldList(route: keyof typeof TABLES): { field: string; as: string }[] {
  return Object.entries(TABLES[route]).map(([field, a]) => ({ field, as: a.as }));
}

/** Throws a 400 naming the first accepted-but-unimplemented field sent with a value that would change something. */
export function checkAccepted(route: keyof typeof TABLES, body: Record<string, unknown>): void {
  for (const [field, a] of Object.entries(TABLES[route])) {
    if (!(field in body) || a.ok(body[field])) continue;
    throw new HttpError(400, 'invalid_request_error',
      `'${field}' is not supported by this server except as ${a.as} (its default), got ${JSON.stringify(body[field])?.slice(0, 80)}`, field, 'unsupported_value');
  }
}
