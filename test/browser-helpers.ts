import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './helpers';

/** Debian's chromium, when installed (`npm run setup` installs it). */
export function chromiumPath(): string | undefined {
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((b) => fs.existsSync(b));
}

/**
 * Loads `html` in headless Chromium with `probe` (a script body whose value is JSON-serialisable) appended to the page,
 * and returns what the probe computed on the rendered page (computed styles, layout boxes).
 */
export function probeInChromium(browser: string, html: string, probe: string): unknown {
  const dir = tempDir('nodetune-browser-');
  const file = path.join(dir, 'page.html');
  const script = `<script>document.getElementById('probe-result').textContent = JSON.stringify((() => { ${probe} })());</script>`;
  fs.writeFileSync(file, html.replace('</body>', `<pre id="probe-result"></pre>${script}</body>`));
  const r = spawnSync(browser, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${path.join(dir, 'profile')}`, '--dump-dom', `file://${file}`],
  { timeout: 90_000, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`chromium exited ${r.status}: ${r.stderr}`);
  const m = /<pre id="probe-result">([^<]*)<\/pre>/.exec(r.stdout);
  if (!m || !m[1]) throw new Error(`the probe left no result in the rendered page:\n${r.stdout.slice(0, 2000)}`);
  const text = m[1].replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return JSON.parse(text);
}
