/**
 * Communicator: this process's place in a group of training processes, on PyTorch's c10d (TCPStore rendezvous,
 * Gloo collectives). Every call runs off the event loop; a rendezvous that does not complete or a peer that dies
 * is an ERR_DIST error naming the rank, after at most `timeoutMs` — never a hang.
 */
import { check } from '../errors';
import { native, NativeCommunicator } from '../native';
import { Tensor } from '../tensor';
import { callerSite, SerialQueue, withCallerStack } from '../util/serial';
import { DistEnv, readDistEnv } from './env';

export interface ConnectOptions {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  /** Rendezvous and per-collective timeout (default 60 s). */
  timeoutMs?: number;
}

export class Communicator {
  /** @internal */
  readonly handle: NativeCommunicator;
  private readonly queue = new SerialQueue();

  private constructor(handle: NativeCommunicator) {
    this.handle = handle;
  }

  /** Joins the group: rank 0 hosts the store; resolves when every rank has arrived. */
  static async connect(options: ConnectOptions): Promise<Communicator> {
    check(options && typeof options === 'object', 'Communicator.connect(options): options must be an object', 'options');
    check(typeof options.masterAddr === 'string' && options.masterAddr.length > 0, 'Communicator.connect(): masterAddr must be a host name or address', 'masterAddr');
    check(Number.isInteger(options.masterPort) && options.masterPort > 0 && options.masterPort < 65536, `Communicator.connect(): masterPort must be in 1..65535, got ${options.masterPort}`, 'masterPort');
    check(Number.isInteger(options.worldSize) && options.worldSize >= 1, `Communicator.connect(): worldSize must be a positive integer, got ${options.worldSize}`, 'worldSize');
    check(Number.isInteger(options.rank) && options.rank >= 0 && options.rank < options.worldSize, `Communicator.connect(): rank must be in [0, ${options.worldSize - 1}], got ${options.rank}`, 'rank');
    const timeoutMs = options.timeoutMs ?? 60000;
    check(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1, 'Communicator.connect(): timeoutMs must be a positive integer', 'timeoutMs');
    const site = callerSite(Communicator.connect);
    const handle = await withCallerStack(site, () =>
      native().Communicator.connect({ masterAddr: options.masterAddr, port: options.masterPort, rank: options.rank, worldSize: options.worldSize, timeoutMs }));
    return new Communicator(handle);
  }

  /** Joins the group the torchrun variables describe (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE). */
  static fromEnv(options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Communicator> {
    const e: DistEnv = readDistEnv(options.env ?? process.env);
    return Communicator.connect({ masterAddr: e.masterAddr, masterPort: e.masterPort, rank: e.rank, worldSize: e.worldSize, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  }

  get rank(): number {
    return this.handle.rank;
  }
  get worldSize(): number {
    return this.handle.worldSize;
  }

  /** In place: each tensor becomes the mean (default) or the sum over all ranks. */
  allReduce(tensors: Tensor[], op: 'mean' | 'sum' = 'mean'): Promise<void> {
    check(Array.isArray(tensors) && tensors.every((t) => t instanceof Tensor), 'allReduce(tensors): tensors must be an array of Tensor', 'tensors');
    check(op === 'mean' || op === 'sum', `allReduce(): op must be 'mean' or 'sum', got ${String(op)}`, 'op');
    const site = callerSite(this.allReduce);
    return this.queue.run(() => withCallerStack(site, () => this.handle.allReduce(tensors.map((t) => t.handle), op === 'mean')));
  }

  /** In place: every rank ends with `root`'s values. */
  broadcast(tensors: Tensor[], root = 0): Promise<void> {
    check(Array.isArray(tensors) && tensors.every((t) => t instanceof Tensor), 'broadcast(tensors): tensors must be an array of Tensor', 'tensors');
    const site = callerSite(this.broadcast);
    return this.queue.run(() => withCallerStack(site, () => this.handle.broadcast(tensors.map((t) => t.handle), root)));
  }

  /** Resolves when every rank has reached the barrier. */
  barrier(): Promise<void> {
    const site = callerSite(this.barrier);
    return this.queue.run(() => withCallerStack(site, () => this.handle.barrier()));
  }
}
