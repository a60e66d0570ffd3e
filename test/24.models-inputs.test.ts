import { expect } from 'chai';
import { AutoModel } from '../lib/models';
import { native } from '../lib/native';
import { rejects } from './helpers';
import { expected, fixture } from './models-helpers';

describe('24 models: inputs, devices and call ordering', () => {
  it('typed arrays with a shape give the same logits as nested arrays', async () => {
    const model = await AutoModel.fromPretrained(fixture('bert-cls'), { quiet: true });
    const e = expected('bert-cls');
    const nested = await model.forward({ inputIds: e.inputIds, attentionMask: e.attentionMask, tokenTypeIds: e.tokenTypeIds! });
    const shape = [e.inputIds.length, e.inputIds[0]!.length];
    const typed = await model.forward({
      inputIds: { data: Int32Array.from(e.inputIds.flat()), shape },
      attentionMask: { data: BigInt64Array.from(e.attentionMask.flat().map(BigInt)), shape },
      tokenTypeIds: { data: Int32Array.from(e.tokenTypeIds!.flat()), shape },
    });
    expect(typed.shape).to.deep.equal(nested.shape);
    expect(Array.from(typed.logits)).to.deep.equal(Array.from(nested.logits));
  });

  it('rejects malformed inputs with precise errors', async () => {
    const model = await AutoModel.fromPretrained(fixture('gpt2'), { quiet: true });
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('expected a throw');
    };
    expect(err(() => model.forward({ inputIds: [] })).code).to.equal('ERR_SHAPE');
    expect(err(() => model.forward({ inputIds: [[1, 2], [3]] })).message).to.include('inputIds[1] has length 1');
    expect(err(() => model.forward({ inputIds: [[1.5]] })).code).to.equal('ERR_ARGUMENT');
    expect(err(() => model.forward({ inputIds: [[40]] })).message).to.include('out of range');
    expect(err(() => model.forward({ inputIds: { data: new Int32Array(5), shape: [2, 3] } })).code).to.equal('ERR_SHAPE');
    expect(err(() => model.forward({ inputIds: { data: new Float32Array(6) as unknown as Int32Array, shape: [2, 3] } })).code).to.equal('ERR_ARGUMENT');
    expect(err(() => model.forward({ inputIds: [[1, 2]], attentionMask: [[1, 2]] })).code).to.equal('ERR_ARGUMENT');
    expect(err(() => model.forward({ inputIds: [[1, 2]], tokenTypeIds: [[0, 0]] })).code).to.equal('ERR_ARGUMENT');
    expect(err(() => model.forward({ inputIds: [new Array(17).fill(1)] })).code).to.equal('ERR_SHAPE');
  });

  it('a CUDA device on a CPU-only LibTorch is ERR_DEVICE', async function () {
    if (native().runtimeInfo().cudaAvailable) return this.skip(); // CUDA present: nothing to refuse
    const e = await rejects(AutoModel.fromPretrained(fixture('llama'), { device: 'cuda', quiet: true }));
    expect(e.code).to.equal('ERR_DEVICE');
    const bad = await rejects(AutoModel.fromPretrained(fixture('llama'), { device: 'tpu', quiet: true }));
    expect(bad.code).to.equal('ERR_ARGUMENT');
  });

  it('calls on one model run in order (forward sees the weights of the trainStep queued before it)', async () => {
    const e = expected('llama');
    const a = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    const b = await AutoModel.fromPretrained(fixture('llama'), { quiet: true });
    for (const m of [a, b]) m.configureOptimizer({ type: 'sgd', lr: 0.1 });
    const batch = { inputIds: e.inputIds, labels: e.labels };
    // Not awaited in between: the queue orders them.
    const [, , fa] = await Promise.all([a.trainStep(batch), a.trainStep(batch), a.forward({ inputIds: e.inputIds })]);
    await b.trainStep(batch);
    await b.trainStep(batch);
    const fb = await b.forward({ inputIds: e.inputIds });
    expect(Array.from(fa.logits)).to.deep.equal(Array.from(fb.logits));
  });
});

describe('24 models: native errors point at the caller', () => {
  it('a rejected native call carries the JS stack of the call site', async () => {
    const model = await AutoModel.fromPretrained(fixture('llama'), { dtype: 'float16', quiet: true });
    const e = await (async function callSiteMarker() {
      return rejects(model.forward({ inputIds: [[1, 2]] })); // float16 matmul: unsupported on LibTorch 1.13 CPU
    })().catch((x) => x as Error);
    if (!(e instanceof Error) || !('code' in e)) return; // (a LibTorch with CPU float16 matmul: nothing to check)
    expect(e.stack).to.include('callSiteMarker');
  });
});
