/**
 * The slice of Hugging Face's `tokenizers` Node binding (Rust, npm `tokenizers`) that nodetune uses.
 * Declared here because the package's own typings omit `InputSequence` and mark some options loosely.
 */
export interface RustEncoding {
  getLength(): number;
  getIds(): number[];
  getTypeIds(): number[];
  getAttentionMask(): number[];
  getSpecialTokensMask(): number[];
  getTokens(): string[];
  getOffsets(): number[][];
  getWordIds(): Array<number | null | undefined>;
  getSequenceIds(): Array<number | null | undefined>;
  getOverflowing(): RustEncoding[];
  truncate(maxLength: number, stride?: number | null, direction?: string | null): void;
}

export interface RustTokenizer {
  encode(sentence: string, pair?: string | null, options?: { addSpecialTokens?: boolean }): Promise<RustEncoding>;
  encodeBatch(inputs: Array<string | [string, string]>, options?: { addSpecialTokens?: boolean }): Promise<RustEncoding[]>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  decodeBatch(ids: number[][], skipSpecialTokens: boolean): Promise<string[]>;
  postProcess(encoding: RustEncoding, pair?: RustEncoding | null, addSpecialTokens?: boolean | null): RustEncoding;
  getVocabSize(withAddedTokens?: boolean): number;
  idToToken(id: number): string | null;
  tokenToId(token: string): number | null;
}

interface RustModule {
  Tokenizer: { fromString(json: string): RustTokenizer; fromFile(file: string): RustTokenizer };
}

let cached: RustModule | undefined;

/** Loads the binding on first use (it ships prebuilt .node files inside the npm package). */
export function rustTokenizers(): RustModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached ??= require('tokenizers') as RustModule;
  return cached;
}
