/** The model shapes of the quantized-base benches (bench/quant.ts, bench/quant-decode.ts), random weights saved once. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoModel } from '../lib/models';

export const SHAPES: Record<string, Record<string, unknown>> = {
  // Qwen2.5-0.5B: tied embeddings (136M of its 494M parameters).
  '0.5b': {
    model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], vocab_size: 151936, hidden_size: 896, intermediate_size: 4864,
    num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 4096, rms_norm_eps: 1e-6,
    rope_theta: 1000000, hidden_act: 'silu', tie_word_embeddings: true, bos_token_id: 1, eos_token_id: -1,
  },
  // Llama-3.2-1B: tied embeddings (263M of its 1.24B parameters: 0.5 GB in bfloat16), linear weights 0.97B (1.95 GB).
  '1b': {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192,
    num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 4096,
    rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: 'silu', tie_word_embeddings: true, bos_token_id: 1, eos_token_id: -1,
  },
};

/** A folder holding `shape` with random weights as bfloat16 safetensors (written on first use, then reused). */
export async function checkpoint(shape: string): Promise<string> {
  const dir = path.join(os.tmpdir(), 'nodetune-bench-quant', shape);
  if (fs.existsSync(path.join(dir, 'model.safetensors'))) return dir;
  const model = await AutoModel.fromConfig(SHAPES[shape]!, { seed: 1, dtype: 'bfloat16' });
  await model.savePretrained(dir);
  return dir;
}
