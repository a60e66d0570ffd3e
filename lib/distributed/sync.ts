/** Starting a data-parallel run: every rank takes rank 0's weights, so all replicas start (and stay) equal. */
import type { Model } from '../models/model';
import { Tensor } from '../tensor';
import type { Communicator } from './communicator';

export async function syncParameters(model: Model, comm: Communicator, root = 0): Promise<void> {
  if (comm.worldSize === 1) return;
  // Quantized weights are frozen and quantized deterministically from the same checkpoint on every rank: not sent
  // (getParameter would dequantize each to full precision).
  const names = model.parameters().filter((p) => !p.quantized).map((p) => p.name);
  const tensors = names.map((n) => new Tensor(model.getParameter(n)));
  await comm.broadcast(tensors, root);
  names.forEach((n, i) => model.setParameter(n, tensors[i]!.handle));
}
