/**
 * One generation request over the continuous-batching scheduler (lib/pipelines/continuous.ts): its tokens arrive
 * one per step; the text is re-decoded as they come and yielded as soon as a piece of it is settled (no incomplete
 * character, nothing that may begin a stop string), so a stream sends one event per decodable piece. A stop string
 * ends the row at once (the scheduler frees it at the next step).
 */
import type { SessionToken } from '../models/session';
import type { PreTrainedTokenizer } from '../tokenizers';
import type { Ticket } from './batcher';
import { describeLogprobs, logprobsWithin } from './generation-logprobs';
import type { GeneratedLogprob } from './generation-logprobs';
import type { RowStream } from './continuous';

export interface RowText {
  tokenizer: PreTrainedTokenizer;
  prompt: number[];
  stop: string[];
  /** Tokens that end the generation (EOS): reported by the row, left out of the text and tokenIds. */
  eos: Set<number>;
  /** Alternatives per token when log-probabilities were asked for. */
  logprobs: number | undefined;
  /** Yield pieces (a stream); otherwise the text is decoded per token only when stop strings need it. */
  pieces: boolean;
}

export interface RowPiece {
  text: string;
  logprobs?: GeneratedLogprob[];
}

export interface RowResult {
  text: string;
  tokenIds: number[];
  finishReason: 'stop' | 'length';
  logprobs?: GeneratedLogprob[];
}

/** Cuts `text` before the earliest stop string. */
export function cutAtStop(text: string, stop: string[]): { text: string; stopped: boolean } {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

/** How much of `text` no later token can change: without a trailing U+FFFD (a character whose bytes are still
 * coming) and without a suffix that begins a stop string. */
export function settledLength(text: string, stop: string[]): number {
  let n = text.length;
  while (n > 0 && text[n - 1] === '\uFFFD') n--;
  let keep = n;
  for (const s of stop) {
    for (let k = Math.min(s.length - 1, n); k > 0; k--) {
      if (text.endsWith(s.slice(0, k), n)) {
        keep = Math.min(keep, n - k);
        break;
      }
    }
  }
  return keep;
}

/** The row's tokens as text pieces; returns the whole result. `wait` settles each token (a deadline). The row is
 * cancelled when the consumer stops early (return()) or a wait fails. */
export async function* rowPieces(row: RowStream, r: RowText, wait: (t: Ticket<SessionToken>) => Promise<SessionToken>): AsyncGenerator<RowPiece, RowResult> {
  const tok = r.tokenizer;
  const head = await tok.decode(r.prompt, { skipSpecialTokens: true });
  const textOf = async (generated: number[]): Promise<string> => {
    const whole = await tok.decode([...r.prompt, ...generated], { skipSpecialTokens: true });
    return whole.startsWith(head) ? whole.slice(head.length) : tok.decode(generated, { skipSpecialTokens: true });
  };
  const decodeEach = r.pieces || r.stop.length > 0 || r.logprobs !== undefined;
  const generated: number[] = [];
  const entries: GeneratedLogprob[] = [];
  let whole = '';
  let sent = 0;
  let sentEntries = 0;
  let finished = false;
  try {
    for (;;) {
      const t = await wait({ promise: row.next(), cancel: (reason) => (row.cancel(reason), true) });
      const eos = t.finish === 'stop' && r.eos.has(t.token);
      if (!eos) generated.push(t.token);
      let stopped = eos;
      let text = whole;
      if (decodeEach && !eos) {
        const before = whole;
        whole = await textOf(generated);
        if (t.logprob && r.logprobs !== undefined) {
          const [entry] = await describeLogprobs(tok, [...r.prompt, ...generated.slice(0, -1)], [t.token], [t.logprob], r.logprobs,
            async () => whole.slice(before.length));
          entries.push({ ...entry!, offset: before.length });
        }
        const cut = cutAtStop(whole, r.stop);
        text = cut.text;
        stopped = stopped || cut.stopped;
      }
      const done = stopped || t.finish !== null;
      if (r.pieces) {
        const safe = done ? text.length : settledLength(text, r.stop);
        if (safe > sent || (done && sentEntries < entries.length)) {
          const upTo = done ? logprobsWithin(entries, text.length, stopped).length : entries.findIndex((e) => e.offset >= safe);
          const fresh = entries.slice(sentEntries, upTo < 0 ? entries.length : upTo);
          sentEntries += fresh.length;
          yield { text: text.slice(sent, safe), ...(r.logprobs !== undefined ? { logprobs: fresh } : {}) };
          sent = safe;
        }
      }
      if (done) {
        finished = true;
        if (t.finish === null) row.cancel('a stop string ended the generation');
        if (!decodeEach) text = await textOf(generated);
        return {
          text, tokenIds: generated, finishReason: stopped ? 'stop' : 'length',
          ...(r.logprobs !== undefined ? { logprobs: logprobsWithin(entries, text.length, stopped) } : {}),
        };
      }
    }
  } finally {
    if (!finished) row.cancel('the consumer stopped reading');
  }
}
