/**
 * `npm run demo`: a small real end-to-end run on the native runtime. (The fine-tuning demo replaces this
 * when the CLI lands.) Prints what the addon runs on, then measures fp32 matrix products on a worker thread
 * while a timer on the event loop keeps ticking.
 */
import { runtimeInfo, measureMatmul } from '../lib';
import { formatDoctor } from '../lib/cli/doctor';

async function demo(): Promise<void> {
  const info = runtimeInfo();
  console.log(formatDoctor(info));
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 10);
  const started = Date.now();
  const gflops = await measureMatmul(1024, 50);
  const ms = Date.now() - started;
  clearInterval(timer);
  console.log(`\nfp32 matmul (1024x1024, 50 products): ${gflops.toFixed(1)} GFLOP/s in ${ms} ms; ` +
    `the event loop ticked ${ticks} times meanwhile (every 10 ms)`);
}

demo().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
