export { AutoTokenizer, resolveTokenizerDir } from './auto';
export type { FromPretrainedOptions } from './auto';
export { PreTrainedTokenizer } from './tokenizer';
export type { EncodeOptions, Encoded, DecodeOptions, SpecialTokens, PaddedBatch, PaddedBatchOptions } from './tokenizer';
export type { ChatMessage, ChatTemplateOptions } from './chat';
export type { TokenizerConfig } from './config';
export { writeBpePrefixTokenizer } from './bpe-prefix';
export type { BpePrefixResult } from './bpe-prefix';
