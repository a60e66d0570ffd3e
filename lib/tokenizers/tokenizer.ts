/**
 * A pretrained tokenizer: Hugging Face's Rust `tokenizers` engine for the ids, plus what transformers keeps in
 * tokenizer_config.json (special tokens, padding side, chat template, model_max_length).
 */
import { NodetuneError, check } from '../errors';
import type { RustEncoding, RustTokenizer } from './binding';
import { ChatTemplate, selectTemplate } from './chat';
import type { ChatMessage, ChatTemplateOptions } from './chat';
import type { TokenizerConfig } from './config';
import { tokenContent } from './config';
import { checkOptionKeys } from '../util/options';
import { ENCODE_KEYS, PADDED_BATCH_KEYS } from '../util/option-keys';

export interface EncodeOptions {
  /** Add the model's special tokens ([CLS]/[SEP], <s>, ...). Default true. */
  addSpecialTokens?: boolean;
  /** A second sequence (sentence pairs, question + context). */
  textPair?: string;
  /** Cut to `maxLength` tokens (special tokens included). Default false. */
  truncation?: boolean | 'longest_first' | 'only_first' | 'only_second';
  /** Defaults to tokenizer_config.json's model_max_length when truncation is on. */
  maxLength?: number;
  /** With truncation: keep the cut-off part as overlapping windows (`overflowing`), `stride` tokens shared. */
  returnOverflowing?: boolean;
  stride?: number;
}

/** encodePadded(): rows padded to one length, ready for model.forward / generate / trainStep. */
export interface PaddedBatchOptions {
  /** true or 'longest' (the default): to the longest row; 'max_length': to maxLength. */
  padding?: true | 'longest' | 'max_length';
  /** The padded length with 'max_length', the cut with truncation (default: the tokenizer's model_max_length). */
  maxLength?: number;
  /** Cut each row to maxLength tokens (special tokens included). Default false. */
  truncation?: boolean;
  /** Default true. */
  addSpecialTokens?: boolean;
  /** Default: tokenizer_config.json's padding_side (right unless it says left; generation wants left). */
  paddingSide?: 'left' | 'right';
}

export interface PaddedBatch {
  inputIds: number[][];
  /** 1 for tokens, 0 for padding. */
  attentionMask: number[][];
  /** Only when a row is a [text, pair] tuple: which sequence each token belongs to (padding 0). */
  tokenTypeIds?: number[][];
}

export interface Encoded {
  ids: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
  /** [start, end) character offsets into the text the token came from ([0,0] for added special tokens). */
  offsets: Array<[number, number]>;
  tokens: string[];
  specialTokensMask: number[];
  /** Which input sequence a token belongs to: 0, 1, or null for special tokens. */
  sequenceIds: Array<number | null>;
  /** The pre-tokenizer word each token came from (per sequence), or null for special tokens (whole-word masking). */
  wordIds: Array<number | null>;
  /** Further windows when returnOverflowing was set. */
  overflowing: Encoded[];
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface SpecialTokens {
  bos?: string; eos?: string; unk?: string; pad?: string; cls?: string; sep?: string; mask?: string;
}

function convert(e: RustEncoding, withOverflow: boolean): Encoded {
  const seq = e.getSequenceIds();
  return {
    ids: e.getIds(),
    attentionMask: e.getAttentionMask(),
    tokenTypeIds: e.getTypeIds(),
    offsets: e.getOffsets() as Array<[number, number]>,
    tokens: e.getTokens(),
    specialTokensMask: e.getSpecialTokensMask(),
    sequenceIds: seq.map((s) => (s === undefined || s === null ? null : s)),
    wordIds: e.getWordIds().map((w) => (w === undefined || w === null ? null : w)),
    overflowing: withOverflow ? e.getOverflowing().map((o) => convert(o, false)) : [],
  };
}

export class PreTrainedTokenizer {
  readonly specialTokens: SpecialTokens;
  readonly paddingSide: 'left' | 'right';
  readonly modelMaxLength: number | undefined;
  private chat: ChatTemplate | undefined;
  private customTemplate: string | undefined;
  private readonly specialCount = new Map<string, number>();

  constructor(
    private readonly engine: RustTokenizer,
    readonly config: TokenizerConfig,
    /** Where the tokenizer was loaded from (for messages). */
    readonly source: string,
    /** Ids of special tokens (added tokens marked special, and the named special tokens). */
    readonly specialTokenIds: ReadonlySet<number> = new Set(),
  ) {
    this.specialTokens = {
      bos: tokenContent(config.bos_token), eos: tokenContent(config.eos_token), unk: tokenContent(config.unk_token),
      pad: tokenContent(config.pad_token), cls: tokenContent(config.cls_token), sep: tokenContent(config.sep_token),
      mask: tokenContent(config.mask_token),
    };
    this.paddingSide = config.padding_side === 'left' ? 'left' : 'right';
    const mml = config.model_max_length;
    this.modelMaxLength = typeof mml === 'number' && mml > 0 && mml < 1e9 ? mml : undefined;
  }

  private vocab: number | undefined;
  get vocabSize(): number { return (this.vocab ??= this.engine.getVocabSize(true)); }
  tokenToId(token: string): number | undefined { return this.engine.tokenToId(token) ?? undefined; }
  idToToken(id: number): string | undefined { return this.engine.idToToken(id) ?? undefined; }

  /** Whether an id is a special token (BOS, EOS, chat markers such as <|eot_id|>, ...). */
  isSpecialId(id: number): boolean {
    return this.specialTokenIds.has(id);
  }

  private idOf(token: string | undefined): number | undefined {
    return token === undefined ? undefined : this.tokenToId(token);
  }
  get bosTokenId(): number | undefined { return this.idOf(this.specialTokens.bos); }
  get eosTokenId(): number | undefined { return this.idOf(this.specialTokens.eos); }
  get unkTokenId(): number | undefined { return this.idOf(this.specialTokens.unk); }
  get clsTokenId(): number | undefined { return this.idOf(this.specialTokens.cls); }
  get sepTokenId(): number | undefined { return this.idOf(this.specialTokens.sep); }
  get maskTokenId(): number | undefined { return this.idOf(this.specialTokens.mask); }
  /** The pad token's id; tokenizers without one (GPT-2, Llama) pad with EOS, as transformers users usually set. */
  get padTokenId(): number | undefined { return this.idOf(this.specialTokens.pad) ?? this.eosTokenId; }

  /** How many special tokens the post-processor adds to one sequence, or to a pair. */
  async numSpecialTokens(pair: boolean): Promise<number> {
    const key = pair ? 'pair' : 'single';
    let n = this.specialCount.get(key);
    if (n === undefined) {
      n = (await this.engine.encode('', pair ? '' : null, { addSpecialTokens: true })).getLength();
      this.specialCount.set(key, n);
    }
    return n;
  }

  async encode(text: string, opts: EncodeOptions = {}): Promise<Encoded> {
    check(typeof text === 'string', `encode: text must be a string, got ${typeof text}`, 'text');
    checkOptionKeys(opts, ENCODE_KEYS, 'encode()');
    check(opts.textPair === undefined || typeof opts.textPair === 'string', 'encode: textPair must be a string', 'textPair');
    const addSpecial = opts.addSpecialTokens !== false;
    const pair = opts.textPair;
    if (!opts.truncation) {
      const e = await this.engine.encode(text, pair ?? null, { addSpecialTokens: addSpecial });
      return convert(e, false);
    }
    const maxLength = opts.maxLength ?? this.modelMaxLength;
    check(maxLength !== undefined && Number.isInteger(maxLength) && maxLength > 0,
      'encode: truncation needs a positive integer maxLength (the tokenizer config has no model_max_length)', 'maxLength');
    const stride = opts.stride ?? 0;
    check(Number.isInteger(stride) && stride >= 0, 'encode: stride must be a non-negative integer', 'stride');
    const specials = addSpecial ? await this.numSpecialTokens(pair !== undefined) : 0;
    const budget = maxLength - specials;
    check(budget > stride, `encode: maxLength ${maxLength} leaves ${budget} tokens after ${specials} special tokens, not more than stride ${stride}`, 'maxLength');
    const a = await this.engine.encode(text, null, { addSpecialTokens: false });
    const b = pair === undefined ? null : await this.engine.encode(pair, null, { addSpecialTokens: false });
    const side = this.config.truncation_side === 'left' ? 'left' : 'right';
    const strategy = opts.truncation === true ? 'longest_first' : opts.truncation;
    if (b === null) {
      if (a.getLength() > budget) a.truncate(budget, stride, side);
    } else {
      const la = a.getLength(); const lb = b.getLength();
      if (la + lb > budget) {
        if (strategy === 'only_second') {
          check(budget - la > stride, `encode: the first sequence (${la} tokens) leaves no room for the second within maxLength ${maxLength}`, 'maxLength');
          b.truncate(budget - la, stride, side);
        } else if (strategy === 'only_first') {
          check(budget - lb > stride, `encode: the second sequence (${lb} tokens) leaves no room for the first within maxLength ${maxLength}`, 'maxLength');
          a.truncate(budget - lb, stride, side);
        } else {
          check(!opts.returnOverflowing, "encode: returnOverflowing with a pair needs truncation 'only_first' or 'only_second'", 'truncation');
          // Longest first: take tokens from the longer sequence until both fit.
          let ka = la; let kb = lb;
          while (ka + kb > budget) { if (ka >= kb) ka--; else kb--; }
          if (ka < la) a.truncate(ka, 0, side);
          if (kb < lb) b.truncate(kb, 0, side);
        }
      }
    }
    const merged = this.engine.postProcess(a, b, addSpecial);
    return convert(merged, opts.returnOverflowing === true);
  }

  /** Encodes many texts in one call to the Rust engine (which spreads the work over its threads). */
  async encodeBatch(texts: Array<string | [string, string]>, opts: { addSpecialTokens?: boolean } = {}): Promise<Encoded[]> {
    check(Array.isArray(texts), 'encodeBatch: texts must be an array', 'texts');
    checkOptionKeys(opts, ['addSpecialTokens'], 'encodeBatch()');
    texts.forEach((t, i) => check(typeof t === 'string' || (Array.isArray(t) && t.length === 2 && typeof t[0] === 'string' && typeof t[1] === 'string'),
      `encodeBatch: texts[${i}] must be a string or a [text, pair] tuple`, `texts[${i}]`));
    const addSpecialTokens = opts.addSpecialTokens !== false;
    if (texts.every((t): t is string => typeof t === 'string')) {
      return (await this.engine.encodeBatch(texts, { addSpecialTokens })).map((e) => convert(e, false));
    }
    // The binding's batch call takes single texts only; pairs go one by one (still in its native threads).
    return Promise.all(texts.map(async (t) => convert(
      typeof t === 'string' ? await this.engine.encode(t, null, { addSpecialTokens }) : await this.engine.encode(t[0], t[1], { addSpecialTokens }), false)));
  }

  /**
   * Encodes a batch and pads it, as transformers' `tokenizer(texts, padding=True)`: `{ inputIds, attentionMask }`
   * (and `tokenTypeIds` for pairs) that model.forward, generate and trainStep take as they are. One string is a batch of one.
   */
  async encodePadded(texts: string | Array<string | [string, string]>, opts: PaddedBatchOptions = {}): Promise<PaddedBatch> {
    checkOptionKeys(opts, PADDED_BATCH_KEYS, 'encodePadded()');
    const list = typeof texts === 'string' ? [texts] : texts;
    check(Array.isArray(list) && list.length > 0, 'encodePadded: texts must be a string or a non-empty array', 'texts');
    const padding = opts.padding ?? 'longest';
    check(padding === true || padding === 'longest' || padding === 'max_length', `encodePadded: padding must be true, 'longest' or 'max_length', got ${JSON.stringify(opts.padding)}`, 'padding');
    const side = opts.paddingSide ?? this.paddingSide;
    check(side === 'left' || side === 'right', `encodePadded: paddingSide must be 'left' or 'right', got ${JSON.stringify(opts.paddingSide)}`, 'paddingSide');
    const needsLength = padding === 'max_length' || opts.truncation === true;
    const maxLength = opts.maxLength ?? (needsLength ? this.modelMaxLength : undefined);
    if (needsLength) check(maxLength !== undefined && Number.isInteger(maxLength) && maxLength > 0,
      `encodePadded: ${padding === 'max_length' ? "padding 'max_length'" : 'truncation'} needs a positive integer maxLength (the tokenizer config has no model_max_length)`, 'maxLength');
    const addSpecialTokens = opts.addSpecialTokens !== false;
    const rows = opts.truncation === true
      ? await Promise.all(list.map((t) => (typeof t === 'string'
        ? this.encode(t, { addSpecialTokens, truncation: true, maxLength: maxLength! })
        : this.encode(t[0], { textPair: t[1], addSpecialTokens, truncation: true, maxLength: maxLength! }))))
      : await this.encodeBatch(list, { addSpecialTokens });
    const longest = Math.max(...rows.map((e) => e.ids.length));
    if (padding === 'max_length' && longest > maxLength!) {
      const i = rows.findIndex((e) => e.ids.length > maxLength!);
      throw new NodetuneError('ERR_ARGUMENT', `encodePadded: texts[${i}] has ${rows[i]!.ids.length} tokens, more than maxLength ${maxLength}; pass truncation: true`, { field: `texts[${i}]` });
    }
    const width = padding === 'max_length' ? maxLength! : longest;
    const pad = this.requireTokenId('pad', 'padding');
    const fill = (row: number[], value: number): number[] => {
      const extra = new Array<number>(width - row.length).fill(value);
      return side === 'left' ? [...extra, ...row] : [...row, ...extra];
    };
    const pairs = list.some((t) => typeof t !== 'string');
    return {
      inputIds: rows.map((e) => fill(e.ids, pad)), attentionMask: rows.map((e) => fill(e.attentionMask, 0)),
      ...(pairs ? { tokenTypeIds: rows.map((e) => fill(e.tokenTypeIds, 0)) } : {}),
    };
  }

  /** Only the ids, for many texts: the fast path used for language-model corpora. */
  async encodeIds(texts: string[], opts: { addSpecialTokens?: boolean } = {}): Promise<number[][]> {
    const encs = await this.engine.encodeBatch(texts, { addSpecialTokens: opts.addSpecialTokens === true });
    return encs.map((e) => e.getIds());
  }

  async decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): Promise<string> {
    const list = Array.from(ids);
    const size = this.vocabSize;
    list.forEach((id, i) => check(Number.isInteger(id) && id >= 0 && id < size, `decode: ids[${i}] = ${id} is not a token id (vocabulary size ${size})`, `ids[${i}]`));
    return this.engine.decode(list, opts.skipSpecialTokens === true);
  }

  async decodeBatch(batch: Array<ArrayLike<number>>, opts: DecodeOptions = {}): Promise<string[]> {
    return Promise.all(batch.map((ids) => this.decode(ids, opts)));
  }

  /** The template given with setChatTemplate / { chatTemplate }, if any (worker threads reload the tokenizer with it). */
  get customChatTemplate(): string | undefined {
    return this.customTemplate;
  }

  get hasChatTemplate(): boolean {
    return this.config.chat_template !== undefined || this.chat !== undefined;
  }

  /** Replaces the chat template (a Jinja source string). */
  setChatTemplate(source: string): void {
    check(typeof source === 'string' && source.length > 0, 'setChatTemplate: a template string is required', 'chatTemplate');
    this.chat = new ChatTemplate(source, this.templateSpecials());
    this.customTemplate = source;
  }

  private templateSpecials(): Record<string, string | undefined> {
    const s = this.specialTokens;
    return { bos_token: s.bos, eos_token: s.eos, unk_token: s.unk, pad_token: s.pad, cls_token: s.cls, sep_token: s.sep, mask_token: s.mask };
  }

  /** Renders messages through the tokenizer's chat template (tokenizer_config.json `chat_template`). */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    check(Array.isArray(messages), 'applyChatTemplate: messages must be an array', 'messages');
    if (this.chat === undefined || opts.templateName !== undefined) {
      const src = selectTemplate(this.config.chat_template, opts.templateName, `${this.source} (tokenizer_config.json)`);
      const t = new ChatTemplate(src, this.templateSpecials());
      if (opts.templateName !== undefined) return t.render(messages, opts);
      this.chat = t;
    }
    return this.chat.render(messages, opts);
  }

  /** Throws ERR_CONFIG naming the missing token when a task needs one the tokenizer lacks. */
  requireTokenId(kind: keyof SpecialTokens, purpose: string): number {
    const id = this.idOf(this.specialTokens[kind]) ?? (kind === 'pad' ? this.padTokenId : undefined);
    if (id === undefined) {
      throw new NodetuneError('ERR_CONFIG', `${this.source}: ${purpose} needs a ${kind} token, and the tokenizer defines none`, { field: `${kind}_token` });
    }
    return id;
  }
}
