/** Inputs and outputs of encoder-decoder (seq2seq-lm) models: decoder inputs, target labels, generated rows. */
import { NodetuneError } from '../errors';
import type { NativeIds, NativeSeq2SeqInputs } from '../native';
import { IdsInput, Matrix, expectLabelIds, expectShape, toMatrix } from './inputs';

export interface Seq2SeqInputs {
  /** Decoder tokens [batch, target length]; for a loss, omit them to shift the labels right (transformers' _shift_right). */
  decoderInputIds?: IdsInput;
  /** 1 for real decoder tokens, 0 for padding (default: all real). */
  decoderAttentionMask?: IdsInput;
}

/** Validates decoder inputs against the encoder's batch; null when there are none. */
export function decoderInputs(inputs: Seq2SeqInputs, ids: Matrix, vocab: number, what: string, required: boolean): NativeSeq2SeqInputs | null {
  if (inputs.decoderInputIds === undefined) {
    if (inputs.decoderAttentionMask !== undefined)
      throw new NodetuneError('ERR_ARGUMENT', `${what}: decoderAttentionMask needs decoderInputIds`, { field: 'decoderAttentionMask' });
    if (required) throw new NodetuneError('ERR_ARGUMENT', `${what}: a seq2seq-lm model needs decoderInputIds (or labels to shift)`, { field: 'decoderInputIds' });
    return null;
  }
  const dec = toMatrix(inputs.decoderInputIds, 'decoderInputIds', { min: 0, max: vocab - 1 });
  if (dec.shape[0] !== ids.shape[0])
    throw new NodetuneError('ERR_SHAPE', `decoderInputIds has ${dec.shape[0]} rows, inputIds has ${ids.shape[0]}`, { field: 'decoderInputIds' });
  let mask: NativeIds | null = null;
  if (inputs.decoderAttentionMask !== undefined) {
    const m = toMatrix(inputs.decoderAttentionMask, 'decoderAttentionMask', { min: 0, max: 1 });
    expectShape(m, dec.shape, 'decoderAttentionMask', 'decoderInputIds');
    mask = m.data;
  }
  return { decoderInputIds: dec.data, decoderShape: dec.shape, decoderAttentionMask: mask };
}

/** Target ids [batch, target length] of their own length (-100 ignored); the decoder inputs' shape when given. */
export function seq2seqLabels(labels: unknown, ids: Matrix, decoder: NativeSeq2SeqInputs | null, vocab: number): Matrix {
  const m = toMatrix(labels, 'labels');
  if (m.shape[0] !== ids.shape[0]) throw new NodetuneError('ERR_SHAPE', `labels has ${m.shape[0]} rows, inputIds has ${ids.shape[0]}`, { field: 'labels' });
  if (decoder) expectShape(m, decoder.decoderShape as [number, number], 'labels', 'decoderInputIds');
  expectLabelIds(m, vocab, 'token');
  return m;
}

/** Rows of a native generate() result: each cut to its length when the native side reports lengths. */
export function generatedRows(out: { data: Int32Array; shape: number[]; lengths?: Int32Array }): number[][] {
  const [b, t] = out.shape as [number, number];
  const rows: number[][] = [];
  for (let i = 0; i < b; i++) rows.push(Array.from(out.data.subarray(i * t, i * t + (out.lengths ? out.lengths[i]! : t))));
  return rows;
}
