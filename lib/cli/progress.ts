/** Training progress: a redrawn bar on a TTY, plain log lines otherwise. */
import type { Trainer } from '../train';

export interface ProgressOptions {
  totalSteps: number;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force the bar (true) or log lines (false); default: the stream's isTTY. */
  tty?: boolean;
  label?: string;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Subscribes to the trainer's events; returns a function that finishes the bar. */
export function attachProgress(trainer: Trainer, o: ProgressOptions): () => void {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? stream.isTTY === true;
  const label = o.label ? `${o.label} ` : '';
  const write = (s: string) => stream.write(s);
  if (tty) {
    let drawn = false;
    trainer.on('step', (e) => {
      const width = 24;
      const done = Math.min(1, e.step / Math.max(1, o.totalSteps));
      const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.');
      write(`\r${label}[${bar}] ${e.step}/${o.totalSteps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s ETA ${formatSeconds(e.etaSeconds)}   `);
      drawn = true;
    });
    trainer.on('evaluate', (e) => {
      if (drawn) write('\n');
      drawn = false;
      write(`${label}${e.split} @${e.step}: ${Object.entries(e.metrics).filter(([k]) => !k.includes('_')).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}\n`);
    });
    return () => {
      if (drawn) write('\n');
    };
  }
  trainer.on('log', (e) => write(`${label}step ${e.step}/${o.totalSteps} epoch ${e.epoch.toFixed(2)} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s eta ${formatSeconds(e.etaSeconds)}\n`));
  trainer.on('evaluate', (e) => write(`${label}${e.split} @${e.step}: ${Object.entries(e.metrics).filter(([k]) => !k.includes('_')).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}\n`));
  return () => undefined;
}
