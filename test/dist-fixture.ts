/** The data-parallel equivalence case shared by test/80 and its workers. */
export const DP_CONFIG = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 40, hidden_size: 16, intermediate_size: 32,
  num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32,
};
/** Four rows of equal length (no padding): each rank's mean loss has the same number of targets. */
export const DP_BATCH = [
  [1, 5, 9, 13, 17, 21, 25, 29],
  [2, 6, 10, 14, 18, 22, 26, 30],
  [3, 7, 11, 15, 19, 23, 27, 31],
  [4, 8, 12, 16, 20, 24, 28, 32],
];
export const DP_STEPS = 3;

/** Four micro-batches of two equal-length rows for the Trainer case (a Batch: Int32Array, row-major). */
export function dpTrainerBatches(): { inputIds: Int32Array; attentionMask: Int32Array; labels: Int32Array; shape: [number, number] }[] {
  return [0, 1, 2, 3].map((b) => {
    const rows = [0, 1].map((r) => Array.from({ length: 6 }, (_, t) => 1 + ((b * 7 + r * 3 + t * 5) % 39)));
    const flat = Int32Array.from(rows.flat());
    return { inputIds: flat, attentionMask: new Int32Array(flat.length).fill(1), labels: Int32Array.from(flat), shape: [2, 6] as [number, number] };
  });
}
