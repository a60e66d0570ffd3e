/**
 * Tensor: typed arrays in, typed arrays out, held by LibTorch. The low-level bridge the model classes use;
 * also handy for checking a device or a dtype from Node.
 */
import { native, NativeDtype, NativeTensor, NativeTypedArray } from './native';
import { callerSite, SerialQueue, withCallerStack } from './util/serial';

export type Dtype = NativeDtype;
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface TensorOptions {
  shape?: number[];
  dtype?: Dtype;
  device?: Device | string;
}

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;
  private readonly queue = new SerialQueue();

  /** @internal */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  /**
   * A tensor from a typed array (Int32Array, BigInt64Array, Float32Array, Float64Array, Uint8Array, Int8Array,
   * Int16Array, or Uint16Array holding raw bfloat16/float16 bits) or nested arrays of numbers. The data is copied.
   */
  static from(data: NativeTypedArray | number[] | number[][] | number[][][], options: TensorOptions = {}): Tensor {
    const N = native().Tensor;
    return new Tensor(new N(data, options.shape ?? null, options.dtype ?? null, options.device ?? null));
  }

  get shape(): number[] {
    return this.handle.shape;
  }
  get dtype(): Dtype {
    return this.handle.dtype;
  }
  get device(): string {
    return this.handle.device;
  }

  /** The data as a typed array (CPU tensors only; zero-copy: the array keeps the tensor alive). */
  data(): NativeTypedArray {
    return this.handle.data();
  }

  /** A copy on another device and/or with another dtype, made off the event loop. */
  to(options: { device?: Device | string; dtype?: Dtype }): Promise<Tensor> {
    const site = callerSite(this.to);
    return this.queue.run(() =>
      withCallerStack(site, async () => new Tensor(await this.handle.to(options.device ?? null, options.dtype ?? null))),
    );
  }

  /** Matrix product, computed off the event loop. */
  matmul(other: Tensor): Promise<Tensor> {
    const site = callerSite(this.matmul);
    return this.queue.run(() => withCallerStack(site, async () => new Tensor(await this.handle.matmul(other.handle))));
  }
}
