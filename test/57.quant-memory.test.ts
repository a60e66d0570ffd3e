import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModel } from '../lib/models';
import { tempDir } from './helpers';
import { loadPeakInChild as loadPeak } from './models-helpers';

describe('57 quantized base: loading without the full-precision peak', () => {
  it('a ~300 MB float32 checkpoint loads as NF4 / int8 with peak RSS near the quantized size, not the float size', async function () {
    this.timeout(600000);
    // Big linear weights, a small vocabulary: the linear layers are nearly all of the checkpoint.
    const config = {
      model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 512, hidden_size: 1024, intermediate_size: 2816,
      num_hidden_layers: 6, num_attention_heads: 16, tie_word_embeddings: true,
    };
    const dir = tempDir('nodetune-quant-rss-');
    await (await AutoModel.fromConfig(config, { seed: 1 })).savePretrained(dir);
    const bytes = fs.statSync(path.join(dir, 'model.safetensors')).size;
    expect(bytes).to.be.above(250e6);
    const full = loadPeak(dir, { dtype: 'float32' });
    const nf4 = loadPeak(dir, { quantize: 'nf4', computeDtype: 'float32' });
    const int8 = loadPeak(dir, { quantize: 'int8', computeDtype: 'float32' });
    if (process.env.NODETUNE_VERBOSE)
      console.log(`peak RSS growth: float32 ${(full.peak / 1e6).toFixed(0)} MB, int8 ${(int8.peak / 1e6).toFixed(0)} MB, nf4 ${(nf4.peak / 1e6).toFixed(0)} MB (checkpoint ${(bytes / 1e6).toFixed(0)} MB)`);
    expect(full.peak).to.be.above(0.8 * bytes);
    // NF4 holds ~0.14 of float32's bytes, int8 ~0.25: generous margins for the allocator and one tensor in flight.
    expect(nf4.quantizedBytes).to.be.below(0.16 * bytes);
    expect(nf4.peak, `nf4 peak ${nf4.peak} vs float32 ${full.peak}`).to.be.below(0.4 * full.peak);
    expect(int8.peak, `int8 peak ${int8.peak} vs float32 ${full.peak}`).to.be.below(0.5 * full.peak);
  });
});
