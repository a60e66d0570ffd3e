/** What one collated batch looks like: typed arrays in row-major [batch, seqLen] layout, as the native model takes them. */
import type { Source } from './example';

export interface Batch {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds?: Int32Array;
  /**
   * Token labels [batch, seqLen] with -100 for ignored positions (causal LM, instruction, chat, token
   * classification), or class ids [batch] for sequence classification.
   */
  labels?: Int32Array;
  /** Extractive QA: answer start/end token positions [batch] (0, the first token, when the window has no answer). */
  startPositions?: Int32Array;
  endPositions?: Int32Array;
  shape: [number, number];
  /** Seq2seq: `labels` are the targets [batch, targetLen] (-100 padded), their own length rather than the inputs'. */
  labelShape?: [number, number];
  /** Where each row came from, for error messages and evaluation. */
  sources?: Array<Source | undefined>;
}

/** One example after formatting: unpadded token ids and targets. */
export interface Feature {
  inputIds: number[];
  attentionMask?: number[];
  tokenTypeIds?: number[];
  /** Token labels (-100 = ignored). */
  labels?: number[];
  /** Seq2seq: the target's token ids (the labels, EOS included), of their own length; collated to Batch.labels. */
  targetIds?: number[];
  /** Class id, for sequence classification. */
  label?: number;
  startPosition?: number;
  endPosition?: number;
  /** QA: each token's character span in the context, or null for question and special tokens. */
  contextOffsets?: Array<[number, number] | null>;
  source?: Source;
}

export const IGNORE_INDEX = -100;
