import { expect } from 'chai';
import { AutoModel, Model } from '../lib/models';
import { expectClose, withEnv } from './helpers';
import { TINY_LLAMA, fixture } from './models-helpers';

/**
 * The fused decoding ops (native/nn/decode_ops.h: RMSNorm, rotary embeddings, grouped-query attention and one
 * product over q/k/v and gate/up for at most 4 token rows, bfloat16 blocks or quantized weights) against the ATen path they replace, which
 * NODETUNE_DECODE_FUSED=off selects (read by the native code at every call).
 */
function unfused<T>(fn: () => Promise<T>): Promise<T> {
  return withEnv('NODETUNE_DECODE_FUSED', 'off', fn);
}

function largest(xs: Float32Array): number {
  return xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

const MODELS: [string, () => Promise<Model>, 'float32' | 'bfloat16'][] = [];
for (const dtype of ['float32', 'bfloat16'] as const) {
  // qwen2: q/k/v biases, 4 query heads on 1 key/value head, linear rope scaling; llama: 4 on 2.
  MODELS.push([`qwen2 fixture ${dtype}`, () => AutoModel.fromPretrained(fixture('qwen2'), { dtype, quiet: true }), dtype]);
  MODELS.push([`llama fixture ${dtype}`, () => AutoModel.fromPretrained(fixture('llama'), { dtype, quiet: true }), dtype]);
}
for (const quantize of ['int8', 'nf4'] as const) {
  // The quantized q/k/v and gate/up products into one output (nn/quantized_linear.h: quantized_linear_rows).
  MODELS.push([`qwen2 fixture ${quantize}`, () => AutoModel.fromPretrained(fixture('qwen2'), { quiet: true, quantize }), 'bfloat16']);
}
MODELS.push(['random llama (fromConfig) float32', () => AutoModel.fromConfig(TINY_LLAMA, { seed: 7 }), 'float32']);

describe('59 fused decoding ops (few-row RMSNorm, rope, grouped attention, q/k/v in one product)', () => {
  for (const [name, load, dtype] of MODELS) {
    // float32: the same arithmetic in another order; bfloat16: the fused ops round once where ATen rounds per op.
    const rel = dtype === 'float32' ? 1e-4 : 4e-2;

    it(`${name}: a forward of 1 and 4 token rows (1 x 1, 1 x 4 causal, 2 x 2 left-padded) equals the ATen path`, async () => {
      const model = await load();
      for (const inputs of [
        { inputIds: [[3]] },
        { inputIds: [[1, 5, 9, 13]] },
        { inputIds: [[0, 7], [4, 11]], attentionMask: [[0, 1], [1, 1]] },
      ]) {
        const fused = (await model.forward(inputs)).logits;
        const plain = (await unfused(() => model.forward(inputs))).logits;
        expectClose(fused, plain, { atol: rel * largest(plain) }, `${name} ${JSON.stringify(inputs.inputIds)} logits`);
      }
    });
  }

  for (const [name, load] of MODELS.filter(([, , dtype]) => dtype === 'float32')) {
    it(`${name}: greedy decoding over the KV cache gives the same tokens and log-probabilities`, async () => {
      const model = await load();
      const options = { maxNewTokens: 8, eosTokenId: null, logprobs: 3 };
      const fused = await model.generateDetailed([[1, 5, 9, 13, 17, 21]], options);
      const plain = await unfused(() => model.generateDetailed([[1, 5, 9, 13, 17, 21]], options));
      expect(fused.sequences).to.deep.equal(plain.sequences);
      const lp = (o: typeof fused) => o.logprobs![0]!.flatMap((t) => [t.logprob, ...t.top.map((a) => a.logprob)]);
      expectClose(lp(fused), lp(plain), { atol: 1e-4, rtol: 1e-4 }, `${name} logprobs`);
    });
  }
});
