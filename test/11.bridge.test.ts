import { expect } from 'chai';
import { NodetuneError, Tensor } from '../lib';
import { rejects, throws } from './helpers';

describe('11 the bridge: JS values <-> tensors', () => {
  it('typed arrays keep their dtype and values', () => {
    const cases: Array<[Parameters<typeof Tensor.from>[0], string]> = [
      [new Int32Array([1, -2, 3, 2147483647]), 'int32'],
      [new BigInt64Array([1n, -2n, 9007199254740993n, -5n]), 'int64'],
      [new Float32Array([0.5, -1.25, 3e-8, 1e30]), 'float32'],
      [new Float64Array([0.1, 0.2, 1e-300, -7]), 'float64'],
      [new Uint8Array([0, 1, 255, 7]), 'uint8'],
      [new Int8Array([-128, 0, 5, 127]), 'int8'],
      [new Int16Array([-32768, 0, 5, 32767]), 'int16'],
    ];
    for (const [data, dtype] of cases) {
      const t = Tensor.from(data, { shape: [2, 2] });
      expect(t.dtype).to.equal(dtype);
      expect(t.shape).to.deep.equal([2, 2]);
      expect(t.device).to.equal('cpu');
      expect(Array.from(t.data() as ArrayLike<number | bigint>)).to.deep.equal(Array.from(data as ArrayLike<number | bigint>));
    }
  });

  it('Uint16Array carries raw bfloat16 / float16 bits', async () => {
    // 1.0 and -2.0 in bfloat16 are 0x3f80 and 0xc000; in float16 0x3c00 and 0xc000.
    const bf = Tensor.from(new Uint16Array([0x3f80, 0xc000]), { dtype: 'bfloat16' });
    expect(bf.dtype).to.equal('bfloat16');
    expect(Array.from((await bf.to({ dtype: 'float32' })).data() as Float32Array)).to.deep.equal([1, -2]);
    const half = Tensor.from(new Uint16Array([0x3c00, 0xc000]), { dtype: 'float16' });
    expect(Array.from((await half.to({ dtype: 'float32' })).data() as Float32Array)).to.deep.equal([1, -2]);
    const back = await Tensor.from(new Float32Array([1, -2]), {}).to({ dtype: 'bfloat16' });
    expect(back.data()).to.be.instanceOf(Uint16Array);
    expect(Array.from(back.data() as Uint16Array)).to.deep.equal([0x3f80, 0xc000]);
  });

  it('nested arrays infer the shape; dtype converts and checks integers', () => {
    const t = Tensor.from([[1, 2, 3], [4, 5, 6]], { dtype: 'int64' });
    expect(t.shape).to.deep.equal([2, 3]);
    expect(t.dtype).to.equal('int64');
    expect(Array.from(t.data() as BigInt64Array)).to.deep.equal([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(Tensor.from([[0.5]]).dtype).to.equal('float32');
    const err = throws(() => Tensor.from([[1, 2.5]], { dtype: 'int32' }));
    expect(err).to.be.instanceOf(NodetuneError);
    expect(err.code).to.equal('ERR_DTYPE');
    expect(err.message).to.include('element 1 is 2.5');
  });

  it('construction copies: later writes to the source array do not change the tensor', () => {
    const src = new Float32Array([1, 2, 3]);
    const t = Tensor.from(src);
    src[0] = 99;
    expect((t.data() as Float32Array)[0]).to.equal(1);
  });

  it('data() is a zero-copy view that keeps the tensor alive', async () => {
    const a = Tensor.from(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
    const view1 = a.data();
    const view2 = a.data();
    expect(view1.buffer).to.not.equal(view2.buffer);
    (view1 as Float32Array)[0] = 42; // same storage underneath
    expect((view2 as Float32Array)[0]).to.equal(42);
    const product = await a.matmul(Tensor.from(new Float32Array([1, 0, 0, 1]), { shape: [2, 2] }));
    const data = product.data();
    if (global.gc) global.gc();
    expect(Array.from(data as Float32Array)).to.deep.equal([42, 2, 3, 4]);
  });

  it('wrong shapes are ERR_SHAPE with the sizes in the message, never a crash', async () => {
    let err = throws(() => Tensor.from(new Float32Array(5), { shape: [2, 3] }));
    expect(err.code).to.equal('ERR_SHAPE');
    expect(err.message).to.include('[2, 3] needs 6 elements but the typed array has 5');
    err = throws(() => Tensor.from([[1, 2], [3]]));
    expect(err.code).to.equal('ERR_SHAPE');
    expect(err.message).to.include('ragged');
    err = throws(() => Tensor.from(new Float32Array(4), { shape: [2, -2] }));
    expect(err.code).to.equal('ERR_SHAPE');
    const a = Tensor.from(new Float32Array(6), { shape: [2, 3] });
    err = await rejects(a.matmul(Tensor.from(new Float32Array(6), { shape: [2, 3] })));
    expect(err).to.be.instanceOf(NodetuneError);
    expect(err.code).to.equal('ERR_SHAPE');
    expect(err.message).to.include('2x3');
    expect(err.message).to.not.include('Exception raised from');
    expect(err.message).to.not.match(/frame #\d/);
  });

  it('wrong dtypes are ERR_DTYPE', async () => {
    let err = throws(() => Tensor.from(new Uint16Array(2)));
    expect(err.code).to.equal('ERR_DTYPE');
    expect(err.message).to.include("'bfloat16' or 'float16'");
    err = throws(() => Tensor.from(new Int32Array(2), { dtype: 'float32' }));
    expect(err.code).to.equal('ERR_DTYPE');
    err = throws(() => Tensor.from(new Float32Array(2), { dtype: 'complex64' as never }));
    expect(err.code).to.equal('ERR_DTYPE');
    expect(err.message).to.include("unknown dtype 'complex64'");
    err = throws(() => Tensor.from('text' as never));
    expect(err.code).to.equal('ERR_DTYPE');
    const ints = Tensor.from(new Int32Array([1, 2, 3, 4]), { shape: [2, 2] });
    const floats = Tensor.from(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
    err = await rejects(ints.matmul(floats));
    expect(err.code).to.equal('ERR_DTYPE');
  });

  it('unknown devices and CUDA on a CPU build are ERR_DEVICE', async () => {
    for (const device of ['gpu', 'cuda:x', 'cuda:-1', 'tpu:0']) {
      const err = throws(() => Tensor.from([1], { device }));
      expect(err.code, device).to.equal('ERR_DEVICE');
      expect(err.message).to.include(`'${device}'`);
    }
    const t = Tensor.from([1, 2]);
    const { cudaAvailable } = (await import('../lib')).runtimeInfo();
    if (!cudaAvailable) {
      const err = await rejects(t.to({ device: 'cuda:0' }));
      expect(err.code).to.equal('ERR_DEVICE');
      expect(err.message).to.include('CUDA is not available');
      expect(throws(() => Tensor.from([1], { device: 'cuda' })).code).to.equal('ERR_DEVICE');
    } else {
      const onGpu = await t.to({ device: 'cuda' });
      expect(onGpu.device).to.equal('cuda:0');
      expect(throws(() => onGpu.data()).code).to.equal('ERR_DEVICE');
      expect(Array.from((await onGpu.to({ device: 'cpu' })).data() as Float32Array)).to.deep.equal([1, 2]);
    }
  });

  it('async errors point at the JavaScript caller', async () => {
    const a = Tensor.from(new Float32Array(6), { shape: [2, 3] });
    const err = await rejects(a.matmul(a));
    expect(err.stack).to.include('11.bridge.test');
  });

  it('empty tensors round-trip', () => {
    const t = Tensor.from(new Float32Array(0), { shape: [0, 4] });
    expect(t.shape).to.deep.equal([0, 4]);
    expect((t.data() as Float32Array).length).to.equal(0);
  });
});
