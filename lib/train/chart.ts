/** SVG line charts for the report: axis titles, rounded ticks in one number format per axis, a legend in the lines' colours, a marked step. */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  /** The y axis's title, with its unit (e.g. "cross-entropy (nats)"). */
  yTitle: string;
  /** The x axis's title (default "step"). */
  xTitle?: string;
  /** A step to mark with a dashed vertical line and this label (e.g. the best checkpoint). */
  mark?: { x: number; label: string };
  width?: number;
  height?: number;
}

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** Ticks on a 1-2-5 grid that cover [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (lo === hi) (lo -= Math.abs(lo) * 0.1 || 1), (hi += Math.abs(hi) * 0.1 || 1);
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** One formatter for all of an axis's ticks: fixed decimals from the tick spacing, or exponents with one mantissa width. */
export function tickFormat(ticks: number[]): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(ticks[0] ?? 1) || 1;
  const big = Math.max(...ticks.map(Math.abs));
  if (big >= 1e5 || (step < 1e-3 && big < 1e-2)) {
    const digits = Math.max(0, Math.floor(Math.log10(big || 1)) - Math.floor(Math.log10(step)));
    return (v) => v.toExponential(Math.min(digits, 3));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return (v) => v.toFixed(decimals);
}

const finite = (s: Series): [number, number][] => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));

/** One line chart as an SVG element ('' when no series has a point). */
export function lineChart(title: string, series: Series[], o: ChartOptions): string {
  const width = o.width ?? 560, height = o.height ?? 280;
  const pad = { l: 78, r: 16, t: 30, b: 44 };
  const pts = series.flatMap(finite);
  if (pts.length === 0) return '';
  const xs = niceTicks(Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0])));
  const xTicks = xs.every(Number.isInteger) ? xs : niceTicks(xs[0]!, xs[xs.length - 1]!, Math.min(5, xs[xs.length - 1]! - xs[0]! + 1));
  const yTicks = niceTicks(Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1])));
  const [x0, x1] = [xTicks[0]!, xTicks[xTicks.length - 1]!], [y0, y1] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const w = width - pad.l - pad.r, h = height - pad.t - pad.b;
  const sx = (x: number) => (pad.l + ((x - x0) / (x1 - x0 || 1)) * w).toFixed(1);
  const sy = (y: number) => (pad.t + h - ((y - y0) / (y1 - y0 || 1)) * h).toFixed(1);
  const fy = tickFormat(yTicks), fx = tickFormat(xTicks);
  const grid = yTicks.map((y) => `<line x1="${pad.l}" x2="${pad.l + w}" y1="${sy(y)}" y2="${sy(y)}" stroke="#eee"/>` +
    `<text class="tick" x="${pad.l - 6}" y="${Number(sy(y)) + 4}" text-anchor="end">${fy(y)}</text>`).join('') +
    xTicks.map((x) => `<text class="tick" x="${sx(x)}" y="${pad.t + h + 16}" text-anchor="middle">${fx(x)}</text>`).join('');
  const lines = series.map((s, i) => {
    const p = finite(s);
    const d = p.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x)},${sy(y)}`).join(' ');
    const c = COLORS[i % COLORS.length]!;
    const dots = p.length <= 40 ? p.map(([x, y]) => `<circle cx="${sx(x)}" cy="${sy(y)}" r="2.5" fill="${c}"/>`).join('') : '';
    // The legend: a swatch of the line, then the name in the line's colour (an inline style, which the page's
    // `svg text` rule cannot override as it overrides a fill attribute).
    const lx = pad.l + 8 + i * 130;
    return `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8"/>${dots}` +
      `<g class="legend-entry"><line x1="${lx}" y1="${pad.t - 12}" x2="${lx + 16}" y2="${pad.t - 12}" stroke="${c}" stroke-width="3"/>` +
      `<text x="${lx + 20}" y="${pad.t - 8}" style="fill:${c}">${esc(s.name)}</text></g>`;
  }).join('');
  const right = o.mark !== undefined && o.mark.x > (x0 + x1) / 2;
  const mark = o.mark && o.mark.x >= x0 && o.mark.x <= x1
    ? `<g class="mark"><line x1="${sx(o.mark.x)}" x2="${sx(o.mark.x)}" y1="${pad.t}" y2="${pad.t + h}" stroke="#555" stroke-dasharray="4 3"/>` +
      `<text x="${Number(sx(o.mark.x)) + (right ? -4 : 4)}" y="${pad.t + 12}" text-anchor="${right ? 'end' : 'start'}" style="fill:#555">${esc(o.mark.label)}</text></g>`
    : '';
  const axes = `<line x1="${pad.l}" y1="${pad.t + h}" x2="${pad.l + w}" y2="${pad.t + h}" stroke="#999"/><line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + h}" stroke="#999"/>` +
    `<text class="axis-title x" x="${pad.l + w / 2}" y="${height - 6}" text-anchor="middle">${esc(o.xTitle ?? 'step')}</text>` +
    `<text class="axis-title y" x="14" y="${pad.t + h / 2}" text-anchor="middle" transform="rotate(-90 14 ${pad.t + h / 2})">${esc(o.yTitle)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}" font-family="sans-serif" font-size="11">` +
    `<title>${esc(title)}</title><rect width="100%" height="100%" fill="#fff"/>${grid}${axes}${mark}${lines}</svg>`;
}
