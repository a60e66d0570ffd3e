/**
 * Random-weight checkpoints for the benchmark: a config is turned into a model whose every weight is
 * initialised natively (the architecture's own initialisation, seeded), then saved in the Hugging Face layout
 * so nodetune and PyTorch load the very same weights.
 */
import { AutoModel } from '../lib/models';

export type RawConfigLike = Record<string, unknown>;

/** Saves a model with the architecture's own (seeded) random initialisation in the Hugging Face layout. */
export async function writeRandomCheckpoint(dir: string, config: RawConfigLike, seed = 0): Promise<void> {
  const model = await AutoModel.fromConfig(config, { task: 'causal-lm', seed });
  await model.savePretrained(dir);
}

export interface BenchShape {
  name: string;
  family: 'gpt2' | 'llama';
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  seq: number;
}

/** config.json for a GPT-2- or Llama-shaped model. */
export function configFor(s: BenchShape): RawConfigLike {
  if (s.family === 'gpt2') {
    return {
      model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: s.vocab, n_positions: Math.max(1024, s.seq),
      n_embd: s.hidden, n_layer: s.layers, n_head: s.heads, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5,
      resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
    };
  }
  return {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: s.vocab, hidden_size: s.hidden,
    intermediate_size: Math.round((s.hidden * 8) / 3 / 32) * 32, num_hidden_layers: s.layers, num_attention_heads: s.heads,
    num_key_value_heads: s.heads, max_position_embeddings: Math.max(2048, s.seq), rms_norm_eps: 1e-5, rope_theta: 10000,
    hidden_act: 'silu', tie_word_embeddings: false, attention_dropout: 0, bos_token_id: 1, eos_token_id: 2,
  };
}
