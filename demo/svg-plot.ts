// Time-series plots as inline SVG and a self-contained HTML page holding them: no script or style
// from elsewhere, so the page opens offline from a file. Pure: data in, markup out.

export interface PlotSeries {
  name: string;
  color: string;
  /** [unix seconds, value], in time order; a missing step (or a NaN) is a gap in the line. */
  points: [number, number][];
  axis?: 'left' | 'right';
  dashed?: boolean;
}

export interface Plot {
  title: string;
  /** One or two sentences under the title: what to look for. */
  description: string;
  /** Unix seconds; the x axis shows seconds since `start`. */
  start: number;
  end: number;
  /** The query resolution: points further apart than 1.5 steps are not joined. */
  stepSeconds: number;
  axes: { left: string; right?: string };
  series: PlotSeries[];
  /** The PromQL behind the series, shown under the plot to paste into Prometheus. */
  queries: string[];
}

const WIDTH = 760;
const HEIGHT = 280;
const MARGIN = { top: 14, bottom: 40, left: 60, right: 60 };

export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** A round tick step (1, 2 or 5 × 10^k) giving about `count` ticks over [0, span]. */
export function tickStep(span: number, count: number): number {
  const raw = span > 0 ? span / count : 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((m) => m * magnitude >= raw)! * magnitude;
  return Number(step.toPrecision(12));
}

/** The axis from 0 to a round value above `max` (with headroom, so a line is never on the frame). */
export function axisScale(max: number): { max: number; step: number } {
  const step = tickStep(max * 1.05, 5);
  return { max: Math.max(step, Math.ceil((max * 1.05) / step) * step), step };
}

/** The points as runs without gaps: a NaN or a missing step starts a new run. */
export function segments(points: [number, number][], stepSeconds: number): [number, number][][] {
  const runs: [number, number][][] = [];
  let run: [number, number][] = [];
  let lastT = -Infinity;
  for (const [t, v] of points) {
    if (!Number.isFinite(v) || t - lastT > stepSeconds * 1.5) {
      if (run.length) runs.push(run);
      run = [];
    }
    if (Number.isFinite(v)) run.push([t, v]);
    lastT = t;
  }
  if (run.length) runs.push(run);
  return runs;
}

const fmt = (n: number) => String(Math.round(n * 10) / 10);

/** One plot as an <svg>; gauges are drawn as steps (a value holds until the next sample). */
export function plotSvg(plot: Plot): string {
  const w = WIDTH - MARGIN.left - MARGIN.right;
  const h = HEIGHT - MARGIN.top - MARGIN.bottom;
  const span = Math.max(plot.end - plot.start, plot.stepSeconds);
  const x = (t: number) => MARGIN.left + ((t - plot.start) / span) * w;
  const maxOf = (axis: 'left' | 'right') =>
    Math.max(
      0,
      ...plot.series
        .filter((s) => (s.axis ?? 'left') === axis)
        .flatMap((s) => s.points.map(([, v]) => v).filter(Number.isFinite)),
    );
  const scales = { left: axisScale(maxOf('left')), right: axisScale(maxOf('right')) };
  const y = (v: number, axis: 'left' | 'right') => MARGIN.top + h - (v / scales[axis].max) * h;
  const parts: string[] = [];
  // Grid and left ticks.
  for (let v = 0; v <= scales.left.max + 1e-9; v += scales.left.step) {
    const py = fmt(y(v, 'left'));
    parts.push(
      `<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${py}" y2="${py}"/>`,
      `<text x="${MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`,
    );
  }
  if (plot.axes.right)
    for (let v = 0; v <= scales.right.max + 1e-9; v += scales.right.step)
      parts.push(
        `<text x="${MARGIN.left + w + 6}" y="${fmt(y(v, 'right'))}" dominant-baseline="middle">${fmt(v)}</text>`,
      );
  const xStep = tickStep(span, 6);
  for (let s = 0; s <= span + 1e-9; s += xStep)
    parts.push(
      `<text x="${fmt(x(plot.start + s))}" y="${MARGIN.top + h + 16}" text-anchor="middle">${fmt(s)}</text>`,
    );
  parts.push(
    `<rect class="frame" x="${MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}"/>`,
    `<text x="${MARGIN.left + w / 2}" y="${HEIGHT - 4}" text-anchor="middle">seconds since the bot was applied</text>`,
    `<text transform="translate(14 ${MARGIN.top + h / 2}) rotate(-90)" text-anchor="middle">${escapeXml(plot.axes.left)}</text>`,
  );
  if (plot.axes.right)
    parts.push(
      `<text transform="translate(${WIDTH - 10} ${MARGIN.top + h / 2}) rotate(90)" text-anchor="middle">${escapeXml(plot.axes.right)}</text>`,
    );
  for (const s of plot.series) {
    const axis = s.axis ?? 'left';
    const runs = segments(s.points, plot.stepSeconds);
    const count = runs.reduce((n, r) => n + r.length, 0);
    const lines = runs.map((run) => {
      // A step line: each value holds until the next sample (or one step, for the last).
      const coords = run.flatMap(([t, v], i) => {
        const next = run[i + 1]?.[0] ?? Math.min(t + plot.stepSeconds, plot.end);
        return [`${fmt(x(t))},${fmt(y(v, axis))}`, `${fmt(x(next))},${fmt(y(v, axis))}`];
      });
      // A value that holds adds no corner.
      const corners = coords.filter((c, i) => c !== coords[i - 1]);
      return `<polyline points="${corners.join(' ')}"/>`;
    });
    parts.push(
      `<g class="series" data-series="${escapeXml(s.name)}" data-points="${count}" stroke="${s.color}"${s.dashed ? ' stroke-dasharray="6 4"' : ''}><title>${escapeXml(s.name)}</title>${lines.join('')}</g>`,
    );
  }
  if (plot.series.every((s) => s.points.length === 0))
    parts.push(
      `<text class="no-data" x="${MARGIN.left + w / 2}" y="${MARGIN.top + h / 2}" text-anchor="middle">no data</text>`,
    );
  return `<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeXml(plot.title)}">${parts.join('')}</svg>`;
}

function legend(plot: Plot): string {
  const items = plot.series.map(
    (s) =>
      `<li><span class="swatch${s.dashed ? ' dashed' : ''}" style="border-color:${s.color}"></span>${escapeXml(s.name)}${plot.axes.right ? ` (${(s.axis ?? 'left') === 'left' ? 'left' : 'right'} axis)` : ''}</li>`,
  );
  return `<ul class="legend">${items.join('')}</ul>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:800px}
svg.plot{display:block;font-size:11px}svg.plot text{fill:#444}
svg.plot .grid{stroke:#e4e4e4}svg.plot .frame{fill:none;stroke:#999}
svg.plot .series{fill:none;stroke-width:2}svg.plot .no-data{font-size:16px}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:16px}
.swatch{display:inline-block;width:22px;border-top:3px solid;margin-right:6px;vertical-align:middle}
.swatch.dashed{border-top-style:dashed}pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:6px}
.page-error{color:#b00}`;

// Any script error is written into the page (a reader sees it; the headless test reads it), and
// once laid out every plot records how many of its series were drawn with a non-empty extent.
const SCRIPT = `window.onerror=function(m){var p=document.createElement('pre');p.className='page-error';p.textContent=String(m);document.body.appendChild(p)};
window.addEventListener('load',function(){document.querySelectorAll('svg.plot').forEach(function(svg){var n=0;svg.querySelectorAll('g.series').forEach(function(g){var b=g.getBBox();if(b.width>0||b.height>0)n++});svg.setAttribute('data-drawn-series',String(n))})});`;

/** A whole HTML page: a heading, a line of context, and each plot with its legend and queries. */
export function plotPage(page: { title: string; subtitle: string; plots: Plot[] }): string {
  const sections = page.plots.map(
    (p) =>
      `<section><h2>${escapeXml(p.title)}</h2><p>${escapeXml(p.description)}</p>${plotSvg(p)}${legend(p)}<details><summary>PromQL</summary>${p.queries.map((q) => `<pre>${escapeXml(q)}</pre>`).join('')}</details></section>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(page.title)}</title><style>${STYLE}</style><script>${SCRIPT}</script></head>
<body><h1>${escapeXml(page.title)}</h1><p>${escapeXml(page.subtitle)}</p>
${sections.join('\n')}
</body></html>
`;
}
