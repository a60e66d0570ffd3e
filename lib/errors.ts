/**
 * Typed errors. Every error nodetune throws on purpose is a NodetuneError with a stable `code`;
 * the native addon creates these too (the class is handed to C++ once, at load).
 */
export type ErrorCode =
  | 'ERR_CHECKPOINT'
  | 'ERR_CONFIG'
  | 'ERR_SHAPE'
  | 'ERR_DEVICE'
  | 'ERR_DTYPE'
  | 'ERR_DATA'
  | 'ERR_IO'
  | 'ERR_OOM'
  | 'ERR_DIST'
  | 'ERR_ARGUMENT'
  | 'ERR_STATE'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_TORCH';

export interface ErrorDetails {
  /** File the problem was found in, when there is one. */
  file?: string;
  /** 1-based line number within `file`. */
  line?: number;
  /** Field, column, option or tensor name. */
  field?: string;
  [key: string]: unknown;
}

export class NodetuneError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'NodetuneError';
    this.code = code;
    this.details = details;
  }
}

/** Throw an ERR_ARGUMENT error unless `cond` holds. */
export function check(cond: unknown, message: string, field?: string): asserts cond {
  if (!cond) throw new NodetuneError('ERR_ARGUMENT', message, field === undefined ? {} : { field });
}
