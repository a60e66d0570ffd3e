/** One example as the pipeline carries it, with the canonical field names, and the column mapping onto them. */
import { NodetuneError } from '../errors';
import type { ChatMessage } from '../tokenizers/chat';

export interface Source {
  file: string;
  /** 1-based line the example starts on (the row of a query, the item of a record stream). */
  line: number;
}

export interface QaAnswers {
  text: string[];
  /** Character offsets of each answer in `context`. */
  answerStart: number[];
}

export interface Example {
  text?: string;
  /** Second sentence of a pair (classification of pairs). */
  textPair?: string;
  label?: string | number;
  prompt?: string;
  completion?: string;
  question?: string;
  context?: string;
  answers?: QaAnswers;
  tokens?: string[];
  tags?: Array<string | number>;
  messages?: ChatMessage[];
  /** For corpus chunks: this text continues the previous example's document (no EOS between them). */
  continuation?: boolean;
  source?: Source;
  /** The raw record (JSON object or CSV row) as read, kept with `keepRecord` (or task 'seq2seq') for templates. */
  record?: Record<string, unknown>;
}

export type Field = 'text' | 'textPair' | 'label' | 'prompt' | 'completion' | 'question' | 'context' | 'answers' | 'tokens' | 'tags' | 'messages';
export const FIELDS: readonly Field[] = ['text', 'textPair', 'label', 'prompt', 'completion', 'question', 'context', 'answers', 'tokens', 'tags', 'messages'];

export type Task = 'classification' | 'causal-lm' | 'instruction' | 'chat' | 'qa' | 'token-classification' | 'seq2seq';

/** The fields each task needs on every example. */
export const TASK_FIELDS: Record<Task, Field[]> = {
  classification: ['text', 'label'],
  'causal-lm': ['text'],
  instruction: ['prompt', 'completion'],
  chat: ['messages'],
  qa: ['question', 'context', 'answers'],
  'token-classification': ['tokens', 'tags'],
  // Its fields are whatever the source and target templates name (checked when formatting).
  seq2seq: [],
};

/** canonical field → the column (JSON key, CSV header) it comes from. */
export type ColumnMap = Partial<Record<Field, string>>;

function fail(src: Source, field: string, message: string): never {
  throw new NodetuneError('ERR_DATA', `${src.file}:${src.line}: ${message}`, { file: src.file, line: src.line, field });
}

function asString(v: unknown, src: Source, field: string, column: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fail(src, field, `column "${column}" must be a string, got ${v === null ? 'null' : typeof v}`);
}

function asList(v: unknown, src: Source, field: string, column: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(t);
        if (Array.isArray(parsed)) return parsed;
      } catch { /* fall through to whitespace splitting */ }
    }
    return t === '' ? [] : t.split(/\s+/);
  }
  return fail(src, field, `column "${column}" must be a list, got ${v === null ? 'null' : typeof v}`);
}

function convertField(field: Field, v: unknown, src: Source, column: string): Example[Field] {
  switch (field) {
    case 'label':
      if (typeof v === 'number' || typeof v === 'string') return v;
      if (typeof v === 'boolean') return v ? 1 : 0;
      return fail(src, field, `column "${column}" must be a string or number label, got ${v === null ? 'null' : typeof v}`);
    case 'tokens':
      return asList(v, src, field, column).map((t, i) => asString(t, src, field, `${column}[${i}]`));
    case 'tags':
      return asList(v, src, field, column).map((t, i) => (typeof t === 'number' ? t : asString(t, src, field, `${column}[${i}]`)));
    case 'answers': {
      let a = v;
      if (typeof a === 'string') {
        try { a = JSON.parse(a); } catch { return fail(src, field, `column "${column}" must be { text: [...], answer_start: [...] }`); }
      }
      const o = (a ?? {}) as Record<string, unknown>;
      const text = o.text;
      const start = o.answer_start ?? o.answerStart;
      if (!Array.isArray(text) || !Array.isArray(start) || text.length !== start.length) {
        return fail(src, field, `column "${column}" must be { text: string[], answer_start: number[] } of equal lengths`);
      }
      return {
        text: text.map((t, i) => asString(t, src, field, `${column}.text[${i}]`)),
        answerStart: start.map((s, i) => (Number.isInteger(s) && (s as number) >= 0 ? (s as number) : fail(src, field, `${column}.answer_start[${i}] must be a non-negative integer, got ${JSON.stringify(s)}`))),
      };
    }
    case 'messages': {
      let m = v;
      if (typeof m === 'string') {
        try { m = JSON.parse(m); } catch { return fail(src, field, `column "${column}" must be a list of { role, content }`); }
      }
      if (!Array.isArray(m)) return fail(src, field, `column "${column}" must be a list of { role, content }`);
      return m.map((x, i) => {
        const o = x as Record<string, unknown> | null;
        if (!o || typeof o.role !== 'string' || typeof o.content !== 'string') return fail(src, field, `${column}[${i}] must be { role: string, content: string }`);
        return { role: o.role, content: o.content };
      });
    }
    default:
      return asString(v, src, field, column);
  }
}

/**
 * Maps one raw record (JSON object or CSV row) onto an Example. `required` fields must be present; a missing one is
 * an ERR_DATA naming file, line, the column looked for and the columns that are there.
 */
export function toExample(row: Record<string, unknown>, src: Source, columns: ColumnMap, required: readonly Field[]): Example {
  const ex: Example = { source: src };
  for (const field of FIELDS) {
    const column = columns[field] ?? field;
    const v = row[column];
    if (v === undefined || (v === null && !required.includes(field))) {
      if (required.includes(field)) {
        const mapped = columns[field] !== undefined ? ` (mapped to "${field}")` : '';
        fail(src, field, `missing column "${column}"${mapped}; available columns: ${Object.keys(row).join(', ') || '(none)'}`);
      }
      continue;
    }
    (ex as Record<string, unknown>)[field] = convertField(field, v, src, column);
  }
  return ex;
}
