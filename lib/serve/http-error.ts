/** Errors answered in the OpenAI API's shape: { error: { message, type, param, code } }. */
import { NodetuneError } from '../errors';
import { CancelledError, QueueFullError } from '../pipelines/batcher';
import { describeValidation } from './schemas';

export class HttpError extends Error {
  constructor(readonly status: number, readonly type: string, message: string, readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

type FastifyishError = Error & {
  statusCode?: number;
  code?: string;
  validation?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }>;
  validationContext?: string;
};

/** Fastify's request-body errors, answered with our own codes and messages. */
const BODY_ERRORS: Record<string, { status: number; code: string; message: (m: string) => string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'invalid_json', message: () => "the request body is not valid JSON (content-type 'application/json' needs a JSON document)" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'invalid_json', message: () => "the request body is empty; send a JSON object (content-type 'application/json')" },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', message: () => 'the request body is too large for this server (--body-limit)' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type', message: () => "the request body must be JSON (content-type 'application/json')" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'invalid_content_length', message: () => 'the request body does not match its content-length' },
};

/** Maps any error a handler or Fastify raised to a status and an OpenAI-shaped body. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  const err = e as FastifyishError;
  if (err.validation) {
    const { message, param, code } = describeValidation(err.validation, err.validationContext === 'body' ? 'request body' : err.validationContext ?? 'request');
    return new HttpError(400, 'invalid_request_error', message, param, code);
  }
  if (e instanceof QueueFullError) return new HttpError(503, 'server_overloaded', e.message, null, 'queue_full');
  if (e instanceof CancelledError) return new HttpError(504, 'timeout', e.message, null, 'timeout');
  if (e instanceof NodetuneError) {
    const client = e.code === 'ERR_ARGUMENT' || e.code === 'ERR_SHAPE' || e.code === 'ERR_CONFIG';
    return new HttpError(client ? 400 : 500, client ? 'invalid_request_error' : 'server_error', e.message, (e.details.field as string | undefined) ?? null, e.code);
  }
  const body = err.code ? BODY_ERRORS[err.code] : undefined;
  if (body) return new HttpError(body.status, 'invalid_request_error', body.message(err.message), null, body.code);
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const type = err.statusCode === 413 ? 'request_too_large' : 'invalid_request_error';
    return new HttpError(err.statusCode, type, err.message, null, err.code ?? null);
  }
  return new HttpError(500, 'server_error', err.message ?? String(e));
}

export function errorBody(h: HttpError): ErrorBody {
  return { error: { message: h.message, type: h.type, param: h.param, code: h.code } };
}
