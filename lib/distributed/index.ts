export { Communicator } from './communicator';
export type { ConnectOptions } from './communicator';
export { readDistEnv, isDistributed, deviceForRank } from './env';
export type { DistEnv } from './env';
export { launch, freePort } from './launch';
export type { LaunchOptions, WorkerResult } from './launch';
export { shardIndices } from './sampler';
export { syncParameters } from './sync';
