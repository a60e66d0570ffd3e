/**
 * Sequence-to-sequence features (T5, mT5, BART): a source text and a target text rendered from each record by
 * templates ("question: {question} context: {context}" → "{answers.text.0}"), tokenized separately. The source is
 * the encoder input; the target's ids (EOS last, as the tokenizer's post-processor appends it) are the labels, of
 * their own length — the model shifts them right itself.
 */
import { NodetuneError, check } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { Feature } from './batch';
import type { Example, Source } from './example';

export interface Seq2SeqFormat {
  /** Template of the encoder input; `{name}` is a field of the record (dotted paths reach into objects and arrays). Default '{prompt}'. */
  sourceTemplate?: string;
  /** Template of the target text. Default '{completion}'. */
  targetTemplate?: string;
  /** Source tokens, EOS included; default the tokenizer's model_max_length, else 512. */
  maxSourceLength?: number;
  /** Target tokens, EOS included; default 128. */
  maxTargetLength?: number;
  /** Cut sources longer than maxSourceLength (default true). */
  truncateSource?: boolean;
  /** Cut targets longer than maxTargetLength (default false: such a target is an ERR_DATA naming the record). */
  truncateTarget?: boolean;
  /** Append EOS to the target when the post-processor did not (default true). */
  addEos?: boolean;
}

type Part = { text: string } | { field: string };

/** `{name}` placeholders; `{{` and `}}` stand for literal braces. */
export function parseTemplate(template: string, what = 'template'): Part[] {
  check(typeof template === 'string', `${what} must be a string`, what);
  const parts: Part[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i] as string;
    if ((c === '{' || c === '}') && template[i + 1] === c) { text += c; i++; continue; }
    if (c === '}') throw new NodetuneError('ERR_CONFIG', `${what} ${JSON.stringify(template)}: unmatched "}" at character ${i} (write "}}" for a literal brace)`, { field: what });
    if (c !== '{') { text += c; continue; }
    const end = template.indexOf('}', i + 1);
    const name = end < 0 ? '' : template.slice(i + 1, end).trim();
    if (end < 0 || !/^[^{}\s]+$/.test(name))
      throw new NodetuneError('ERR_CONFIG', `${what} ${JSON.stringify(template)}: placeholder at character ${i} must be {field} or {a.b.0} (write "{{" for a literal brace)`, { field: what });
    if (text) parts.push({ text }), (text = '');
    parts.push({ field: name });
    i = end;
  }
  if (text) parts.push({ text });
  return parts;
}

/** The field names a template reads. */
export function templateFields(template: string): string[] {
  return parseTemplate(template).flatMap((p) => ('field' in p ? [p.field] : []));
}

function where(src: Source | undefined): string {
  return src ? `${src.file}:${src.line}: ` : '';
}

function lookup(ex: Example, path: string): unknown {
  const [head, ...rest] = path.split('.') as [string, ...string[]];
  let v: unknown = ex.record !== undefined && head in ex.record ? ex.record[head] : (ex as Record<string, unknown>)[head];
  // A canonical `answers` field ({ text[], answerStart[] }) reads as its first answer.
  if (rest.length === 0 && head === 'answers' && ex.record === undefined && ex.answers) v = ex.answers.text[0];
  for (const key of rest) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function available(ex: Example): string {
  const keys = ex.record !== undefined ? Object.keys(ex.record) : Object.keys(ex).filter((k) => k !== 'source' && k !== 'record');
  return keys.join(', ') || '(none)';
}

/** Renders a template for one example; a missing or non-text field is an ERR_DATA naming the record and the field. */
export function renderTemplate(template: string, ex: Example, what = 'template'): string {
  return parseTemplate(template, what).map((p) => {
    if ('text' in p) return p.text;
    const v = lookup(ex, p.field);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    const why = v === undefined || v === null ? 'is missing' : `is ${Array.isArray(v) ? 'a list' : 'an object'}, not text (name an element, e.g. {${p.field}.0})`;
    throw new NodetuneError('ERR_DATA', `${where(ex.source)}${what} field "${p.field}" ${why}; available fields: ${available(ex)}`,
      { file: ex.source?.file, line: ex.source?.line, field: p.field });
  }).join('');
}

function positive(v: number | undefined, name: string, dflt: number): number {
  const n = v ?? dflt;
  check(Number.isSafeInteger(n) && n > 0, `${name} must be a positive integer, got ${v}`, name);
  return n;
}

/** One feature per example: source ids + mask as the encoder input, the target ids as `targetIds` (the labels). */
export async function formatSeq2Seq(tok: PreTrainedTokenizer, examples: Example[], opts: Seq2SeqFormat = {}): Promise<Feature[]> {
  const sourceTemplate = opts.sourceTemplate ?? '{prompt}';
  const targetTemplate = opts.targetTemplate ?? '{completion}';
  parseTemplate(sourceTemplate, 'sourceTemplate');
  parseTemplate(targetTemplate, 'targetTemplate');
  const maxSource = positive(opts.maxSourceLength, 'maxSourceLength', tok.modelMaxLength ?? 512);
  const maxTarget = positive(opts.maxTargetLength, 'maxTargetLength', 128);
  const eos = opts.addEos === false ? undefined : tok.eosTokenId;
  return Promise.all(examples.map(async (ex) => {
    const source = renderTemplate(sourceTemplate, ex, 'sourceTemplate');
    const target = renderTemplate(targetTemplate, ex, 'targetTemplate');
    const s = await tok.encode(source, opts.truncateSource === false ? {} : { truncation: true, maxLength: maxSource });
    let ids = (await tok.encode(target)).ids;
    if (eos !== undefined && ids[ids.length - 1] !== eos) ids = [...ids, eos];
    if (ids.length > maxTarget) {
      if (opts.truncateTarget !== true) {
        throw new NodetuneError('ERR_DATA',
          `${where(ex.source)}the target has ${ids.length} tokens (EOS included), more than maxTargetLength ${maxTarget}; ` +
          'raise maxTargetLength or set truncateTarget: true', { file: ex.source?.file, line: ex.source?.line, field: 'target' });
      }
      const last = ids[ids.length - 1] as number;
      // Keep the closing EOS, as the post-processor does after truncation.
      ids = eos !== undefined && last === eos ? [...ids.slice(0, maxTarget - 1), last] : ids.slice(0, maxTarget);
    }
    const f: Feature = { inputIds: s.ids, attentionMask: s.attentionMask, targetIds: ids };
    if (ex.source) f.source = ex.source;
    return f;
  }));
}
