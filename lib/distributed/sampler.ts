/**
 * Which examples each rank reads in an epoch: a seeded permutation of all indices (the same on every rank, from
 * seed + epoch), padded by wrapping around to a multiple of the world size, then every world-size-th index from
 * `rank` — PyTorch's DistributedSampler. The ranks' shards are disjoint and together cover every example.
 */
import { check } from '../errors';
import { Rng } from '../data/random';

export function shardIndices(count: number, options: { rank: number; worldSize: number; epoch: number; seed: number; shuffle?: boolean }): number[] {
  const { rank, worldSize, epoch, seed } = options;
  check(Number.isInteger(count) && count >= 0, 'shardIndices(): count must be a non-negative integer', 'count');
  check(Number.isInteger(worldSize) && worldSize >= 1 && Number.isInteger(rank) && rank >= 0 && rank < worldSize, `shardIndices(): rank ${rank} is not in a world of ${worldSize}`, 'rank');
  const order = Array.from({ length: count }, (_, i) => i);
  if (options.shuffle !== false) new Rng(seed + epoch).shuffle(order);
  const total = Math.ceil(count / worldSize) * worldSize;
  for (let i = count; i < total && count > 0; i++) order.push(order[i - count]!);
  const out: number[] = [];
  for (let i = rank; i < order.length; i += worldSize) out.push(order[i]!);
  return out;
}
