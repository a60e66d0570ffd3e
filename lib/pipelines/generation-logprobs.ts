/**
 * The text of generated tokens for log-probability reports: each chosen token's text and offset in the continuation
 * (from decoding the growing prefix, so the pieces join to the text), and the best alternatives' texts (decoded after
 * a short window of the tokens before them).
 */
import type { TokenLogprob } from '../models/sampling';
import type { PreTrainedTokenizer } from '../tokenizers';

/** A generated token's text and log-probability (`offset`: where its text starts in the continuation). */
export interface GeneratedLogprob {
  token: number;
  text: string;
  offset: number;
  logprob: number;
  top: { token: number; text: string; logprob: number }[];
}

/** Tokens of context before an alternative when decoding its text (word-initial spaces depend on it). */
const WINDOW = 8;

/** The text `id` adds after `context` (without special-token skipping, so EOS reads as itself). */
async function pieceAfter(tok: PreTrainedTokenizer, context: number[], id: number): Promise<string> {
  const [head, whole] = await Promise.all([tok.decode(context), tok.decode([...context, id])]);
  return whole.startsWith(head) ? whole.slice(head.length) : tok.decode([id]);
}

/**
 * Describes `raw` (one entry per token of `tokens`, k alternatives each) for a continuation of `prompt`.
 * `continuation(generated)` is the text of the generated tokens after the prompt.
 */
export async function describeLogprobs(tok: PreTrainedTokenizer, prompt: number[], tokens: number[], raw: TokenLogprob[], k: number,
  continuation: (generated: number[]) => Promise<string>): Promise<GeneratedLogprob[]> {
  const texts = await Promise.all(tokens.map((_, i) => continuation(tokens.slice(0, i + 1))));
  const context = [...prompt, ...tokens];
  return Promise.all(tokens.map(async (token, i) => {
    const before = i === 0 ? '' : texts[i - 1]!;
    const text = texts[i]!.startsWith(before) ? texts[i]!.slice(before.length) : await tok.decode([token], { skipSpecialTokens: true });
    const window = context.slice(Math.max(0, prompt.length + i - WINDOW), prompt.length + i);
    const r = raw[i]!;
    const top = await Promise.all(r.top.slice(0, k).map(async (t) => ({ token: t.token, text: await pieceAfter(tok, window, t.token), logprob: t.logprob })));
    return { token, text, offset: before.length, logprob: r.logprob, top };
  }));
}

/** The entries of tokens whose text starts inside the first `length` characters (all of them when not `cut`). */
export function logprobsWithin(entries: GeneratedLogprob[], length: number, cut: boolean): GeneratedLogprob[] {
  return cut ? entries.filter((e) => e.offset < length) : entries;
}
