/** Training progress: each phase as it starts, then a bar sized to the terminal and redrawn in place on a TTY, plain log lines otherwise. */
import type { Trainer } from '../train';
import type { EvaluateEvent, EvaluateStartEvent, LogEvent, StepEvent } from '../train';

export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressOptions {
  totalSteps: number;
  /** Epochs planned (shown as "epoch k/n"); without it the epoch is shown as a fraction. */
  epochs?: number;
  /** Where to write (default process.stderr). */
  stream?: ProgressStream;
  /** Force the bar (true) or log lines (false); default: the stream's isTTY. */
  tty?: boolean;
  label?: string;
}

/** The bar's width bounds, and the terminal width assumed when neither the stream nor stdout knows it. */
export const BAR_MIN = 10;
export const BAR_MAX = 60;
export const FALLBACK_COLUMNS = 80;

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** The terminal's width: the stream's, else standard output's, else FALLBACK_COLUMNS. */
export function terminalColumns(stream: ProgressStream): number {
  const c = stream.columns ?? process.stdout.columns;
  return typeof c === 'number' && c > 0 ? c : FALLBACK_COLUMNS;
}

/** The bar fills what the line's text leaves of the terminal's width, within [BAR_MIN, BAR_MAX]. */
export function barLine(prefix: string, done: number, suffix: string, columns: number): string {
  const width = Math.max(BAR_MIN, Math.min(BAR_MAX, columns - 1 - prefix.length - suffix.length - 3));
  const bar = '#'.repeat(Math.round(Math.min(1, Math.max(0, done)) * width)).padEnd(width, '.');
  return `${prefix}[${bar}] ${suffix}`;
}

/** A line per phase of a run ("loading the model", "evaluating before training", ...), as it starts. */
export function phaseWriter(o: { stream?: ProgressStream; label?: string; quiet?: boolean }): (text: string) => void {
  const stream = o.stream ?? process.stderr;
  const label = o.label ? `${o.label} ` : '';
  return (text) => { if (!o.quiet) stream.write(`${label}${text}\n`); };
}

/** Subscribes to the trainer's events; returns a function that finishes the bar and unsubscribes. */
export function attachProgress(trainer: Trainer, o: ProgressOptions): () => void {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? stream.isTTY === true;
  const label = o.label ? `${o.label} ` : '';
  const write = (s: string) => stream.write(s);
  const epoch = (e: number) => (o.epochs ? `epoch ${Math.min(o.epochs, Math.max(1, Math.ceil(e - 1e-9)))}/${o.epochs}` : `epoch ${e.toFixed(2)}`);
  const metrics = (e: EvaluateEvent) => Object.entries(e.metrics).filter(([k]) => !k.includes('_')).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ');
  let drawn = false;
  const endLine = () => {
    if (drawn) write('\n');
    drawn = false;
  };
  const onStep = (e: StepEvent) => {
    const suffix = `${e.step}/${o.totalSteps} ${epoch(e.epoch)} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s ETA ${formatSeconds(e.etaSeconds)}`;
    const columns = terminalColumns(stream);
    // Padded to the width, so a shorter line leaves nothing of the previous one.
    write(`\r${barLine(label, e.step / Math.max(1, o.totalSteps), suffix, columns).padEnd(columns - 1)}`);
    drawn = true;
  };
  const onLog = (e: LogEvent) => write(`${label}step ${e.step}/${o.totalSteps} ${epoch(e.epoch)} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.tokensPerSecond.toFixed(0)} tok/s eta ${formatSeconds(e.etaSeconds)}\n`);
  const onEvaluateStart = (e: EvaluateStartEvent) => {
    endLine();
    write(`${label}${e.split} @${e.step}: evaluating...\n`);
  };
  const onEvaluate = (e: EvaluateEvent) => {
    endLine();
    write(`${label}${e.split} @${e.step}: ${metrics(e)}\n`);
  };
  if (tty) trainer.on('step', onStep);
  else trainer.on('log', onLog);
  trainer.on('evaluateStart', onEvaluateStart);
  trainer.on('evaluate', onEvaluate);
  return () => {
    endLine();
    trainer.off('step', onStep).off('log', onLog).off('evaluateStart', onEvaluateStart).off('evaluate', onEvaluate);
  };
}
