/**
 * Task templates: examples → features (unpadded token ids and targets) for classification, instruction tuning,
 * chat, extractive QA and token classification. Causal-LM packing lives in pack.ts.
 */
import { NodetuneError, check } from '../errors';
import type { PreTrainedTokenizer } from '../tokenizers/tokenizer';
import type { ChatMessage } from '../tokenizers/chat';
import { IGNORE_INDEX } from './batch';
import type { Feature } from './batch';
import type { Example, Source } from './example';
import type { LabelMap } from './label';
import type { Labelled } from './label';

function missing(ex: Example, field: string, task: string): NodetuneError {
  const where = ex.source ? `${ex.source.file}:${ex.source.line}: ` : '';
  return new NodetuneError('ERR_DATA', `${where}${task} needs "${field}" on every example`, { file: ex.source?.file, line: ex.source?.line, field });
}

function withSource(f: Feature, src: Source | undefined): Feature {
  if (src) f.source = src;
  return f;
}

export interface ClassificationFormat {
  /** Turns `label` into a class id when the example has no `labelId` yet. */
  labelMap?: LabelMap;
  maxLength?: number;
}

/** text (+ textPair) → ids; label → class id. */
export async function formatClassification(tok: PreTrainedTokenizer, examples: Labelled[], opts: ClassificationFormat = {}): Promise<Feature[]> {
  return Promise.all(examples.map(async (ex) => {
    if (typeof ex.text !== 'string') throw missing(ex, 'text', 'classification');
    let label = ex.labelId;
    if (label === undefined) {
      if (ex.label === undefined) throw missing(ex, 'label', 'classification');
      if (!opts.labelMap) throw new NodetuneError('ERR_ARGUMENT', 'classification: pass a labelMap (or label the examples first)', { field: 'labelMap' });
      label = opts.labelMap.encode(ex.label, ex.source);
    }
    const e = await tok.encode(ex.text, { ...(ex.textPair !== undefined ? { textPair: ex.textPair } : {}), truncation: opts.maxLength !== undefined || tok.modelMaxLength !== undefined, ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}) });
    return withSource({ inputIds: e.ids, attentionMask: e.attentionMask, tokenTypeIds: e.tokenTypeIds, label }, ex.source);
  }));
}

export interface InstructionFormat {
  maxLength?: number;
  /** Append EOS after the completion (so the model learns to stop); default true. maxLength defaults to model_max_length. */
  addEos?: boolean;
}

function appendEos(tok: PreTrainedTokenizer, ids: number[], labels: number[], addEos: boolean | undefined): void {
  if (addEos === false) return;
  const eos = tok.eosTokenId;
  if (eos === undefined || ids[ids.length - 1] === eos) return;
  ids.push(eos);
  labels.push(eos);
}

/**
 * prompt + completion as one sequence; labels copy the completion's ids and are -100 over the prompt and the
 * special tokens. Tokenizing the joined text keeps the tokens the model sees at inference.
 */
export async function formatInstruction(tok: PreTrainedTokenizer, examples: Example[], opts: InstructionFormat = {}): Promise<Feature[]> {
  return Promise.all(examples.map(async (ex) => {
    if (typeof ex.prompt !== 'string') throw missing(ex, 'prompt', 'instruction');
    if (typeof ex.completion !== 'string') throw missing(ex, 'completion', 'instruction');
    const e = await tok.encode(ex.prompt + ex.completion);
    const cut = ex.prompt.length;
    const ids = e.ids.slice();
    const labels = ids.map((id, i) => (e.sequenceIds[i] === null || (e.offsets[i] as [number, number])[0] < cut ? IGNORE_INDEX : id));
    appendEos(tok, ids, labels, opts.addEos);
    return withSource(truncate({ inputIds: ids, labels }, opts.maxLength ?? tok.modelMaxLength), ex.source);
  }));
}

function truncate(f: { inputIds: number[]; labels: number[] }, maxLength: number | undefined): Feature {
  if (maxLength === undefined || f.inputIds.length <= maxLength) return f;
  check(Number.isInteger(maxLength) && maxLength > 0, 'maxLength must be a positive integer', 'maxLength');
  return { inputIds: f.inputIds.slice(0, maxLength), labels: f.labels.slice(0, maxLength) };
}

/**
 * Character spans of the assistant turns in the rendered conversation: from the end of the conversation rendered up to
 * that turn with the generation prompt, through the turn's content and the end-of-turn special token that follows it.
 * Templates that rewrite earlier turns once a later one is added (so the prefix does not hold) are an ERR_CONFIG.
 */
export async function assistantSpans(tok: PreTrainedTokenizer, messages: ChatMessage[]): Promise<{ text: string; spans: Array<[number, number]> }> {
  const text = tok.applyChatTemplate(messages);
  const spans: Array<[number, number]> = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as ChatMessage;
    if (m.role !== 'assistant') continue;
    const before = tok.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true });
    if (!text.startsWith(before)) {
      throw new NodetuneError('ERR_CONFIG',
        `the chat template does not render conversations incrementally (the text before assistant turn ${i} changes once the turn is added), so assistant turns cannot be located for loss masking`,
        { field: 'chat_template' });
    }
    const content = m.content.trim();
    const at = content === '' ? before.length : text.indexOf(content, before.length);
    if (at < 0) throw new NodetuneError('ERR_CONFIG', `assistant turn ${i} does not appear in the rendered conversation`, { field: 'chat_template' });
    let end = at + content.length;
    // The end-of-turn marker (<|eot_id|>, <|im_end|>, </s>, ...) when a special token directly follows the content.
    const tail = await tok.encode(text.slice(end, end + 64), { addSpecialTokens: false });
    const first = tail.ids[0];
    if (first !== undefined && tok.isSpecialId(first) && (tail.offsets[0] as [number, number])[0] === 0) end += (tail.offsets[0] as [number, number])[1];
    spans.push([before.length, end]);
  }
  return { text, spans };
}

/** messages through the chat template; loss only on assistant turns (their text and end-of-turn tokens). */
export async function formatChat(tok: PreTrainedTokenizer, examples: Example[], opts: { maxLength?: number } = {}): Promise<Feature[]> {
  return Promise.all(examples.map(async (ex) => {
    if (!Array.isArray(ex.messages)) throw missing(ex, 'messages', 'chat');
    const { text, spans } = await assistantSpans(tok, ex.messages);
    const e = await tok.encode(text, { addSpecialTokens: false });
    const labels = e.ids.map((id, i) => {
      const [s, end] = e.offsets[i] as [number, number];
      return end > s && spans.some(([a, b]) => s >= a && end <= b) ? id : IGNORE_INDEX;
    });
    return withSource(truncate({ inputIds: e.ids, labels }, opts.maxLength ?? tok.modelMaxLength), ex.source);
  }));
}

export interface QaFormat {
  /** Window length in tokens (question + context + special tokens); default the tokenizer's model_max_length or 384. */
  maxLength?: number;
  /** Tokens shared by neighbouring windows of a long context; default 128. */
  stride?: number;
}

/**
 * question + context → one feature per window of the context (sliding window with stride); start/end token positions
 * of the first answer, or 0/0 when the window does not contain it (or the question has no answer).
 */
export async function formatQa(tok: PreTrainedTokenizer, examples: Example[], opts: QaFormat = {}): Promise<Feature[]> {
  const maxLength = opts.maxLength ?? Math.min(tok.modelMaxLength ?? 384, 384);
  const stride = opts.stride ?? Math.min(128, Math.floor(maxLength / 4));
  const perExample = await Promise.all(examples.map(async (ex) => {
    if (typeof ex.question !== 'string') throw missing(ex, 'question', 'question answering');
    if (typeof ex.context !== 'string') throw missing(ex, 'context', 'question answering');
    const answerText = ex.answers?.text[0];
    const answerStart = ex.answers?.answerStart[0];
    if (answerText !== undefined && answerStart !== undefined && ex.context.slice(answerStart, answerStart + answerText.length) !== answerText) {
      const where = ex.source ? `${ex.source.file}:${ex.source.line}: ` : '';
      throw new NodetuneError('ERR_DATA', `${where}answer ${JSON.stringify(answerText)} is not at character ${answerStart} of the context`,
        { file: ex.source?.file, line: ex.source?.line, field: 'answers' });
    }
    const e = await tok.encode(ex.question, { textPair: ex.context, truncation: 'only_second', maxLength, stride, returnOverflowing: true });
    return [e, ...e.overflowing].map((w) => {
      const contextOffsets = w.offsets.map((o, i) => (w.sequenceIds[i] === 1 ? o : null));
      let startPosition = 0;
      let endPosition = 0;
      if (answerText !== undefined && answerStart !== undefined) {
        const a = answerStart;
        const b = answerStart + answerText.length;
        let first = -1;
        let last = -1;
        contextOffsets.forEach((o, i) => {
          if (o === null || o[1] <= o[0]) return;
          if (o[1] > a && o[0] < b) { if (first === -1) first = i; last = i; }
        });
        const inside = contextOffsets.filter((o): o is [number, number] => o !== null);
        const windowStart = inside[0]?.[0] ?? Infinity;
        const windowEnd = inside[inside.length - 1]?.[1] ?? -Infinity;
        if (first !== -1 && windowStart <= a && windowEnd >= b) { startPosition = first; endPosition = last; }
      }
      return withSource({ inputIds: w.ids, attentionMask: w.attentionMask, tokenTypeIds: w.tokenTypeIds, startPosition, endPosition, contextOffsets }, ex.source);
    });
  }));
  return perExample.flat();
}

export interface TokenClassificationFormat {
  labelMap?: LabelMap;
  maxLength?: number;
}

/** Words joined by spaces and tokenized; each word's label on its first sub-token, -100 on the rest and on specials. */
export async function formatTokenClassification(tok: PreTrainedTokenizer, examples: Labelled[], opts: TokenClassificationFormat = {}): Promise<Feature[]> {
  return Promise.all(examples.map(async (ex) => {
    if (!Array.isArray(ex.tokens)) throw missing(ex, 'tokens', 'token classification');
    let tags = ex.tagIds;
    if (tags === undefined) {
      if (!Array.isArray(ex.tags)) throw missing(ex, 'tags', 'token classification');
      if (!opts.labelMap) throw new NodetuneError('ERR_ARGUMENT', 'token classification: pass a labelMap (or label the examples first)', { field: 'labelMap' });
      const map = opts.labelMap;
      tags = ex.tags.map((t) => map.encode(t, ex.source, 'tag'));
    }
    if (tags.length !== ex.tokens.length) {
      const where = ex.source ? `${ex.source.file}:${ex.source.line}: ` : '';
      throw new NodetuneError('ERR_DATA', `${where}${ex.tokens.length} tokens but ${tags.length} tags`, { file: ex.source?.file, line: ex.source?.line, field: 'tags' });
    }
    const starts: number[] = [];
    let pos = 0;
    for (const w of ex.tokens) { starts.push(pos); pos += w.length + 1; }
    const text = ex.tokens.join(' ');
    const truncation = opts.maxLength !== undefined || tok.modelMaxLength !== undefined;
    const e = await tok.encode(text, { truncation, ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}) });
    let previous = -1;
    const labels = e.ids.map((_, i) => {
      const [s, end] = e.offsets[i] as [number, number];
      if (e.sequenceIds[i] === null || end <= s) return IGNORE_INDEX;
      // The token's last character lies inside its word (a leading space of byte-level tokens does not).
      let lo = 0; let hi = starts.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if ((starts[mid] as number) <= end - 1) lo = mid; else hi = mid - 1; }
      if (lo === previous) return IGNORE_INDEX;
      previous = lo;
      return tags[lo] as number;
    });
    return withSource({ inputIds: e.ids, attentionMask: e.attentionMask, tokenTypeIds: e.tokenTypeIds, labels }, ex.source);
  }));
}
