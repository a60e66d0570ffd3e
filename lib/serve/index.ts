export { startServer } from './server';
export type { ServeOptions, RunningServer } from './server';
