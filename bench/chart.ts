/**
 * A hand-written SVG chart of a benchmark run: throughput (jobs/s) over time above,
 * assignment latency p50/p99 (ms) over time below.
 *
 * @module
 */

/** One time bucket of a run. */
export interface SeriesPoint {
  /** Bucket start, seconds since the run started. */
  t_s: number;
  /** Jobs completed in the bucket, per second. */
  jobs_per_second: number;
  /** Median assignment latency of the jobs assigned in the bucket, ms (null: none). */
  p50_ms: number | null;
  /** 99th percentile of the same, ms (null: none). */
  p99_ms: number | null;
}

const W = 800;
const PANEL = 220;
const LEFT = 70;
const RIGHT = 20;
const TOP = 40;
const GAP = 50;

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A "nice" upper bound for an axis: 1, 2 or 5 × 10^k at or above `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function panel(
  top: number,
  label: string,
  tMax: number,
  lines: { name: string; color: string; points: [number, number][] }[],
): string {
  const yMax = niceMax(Math.max(0, ...lines.flatMap((l) => l.points.map((p) => p[1]))));
  const x = (t: number) => LEFT + (t / tMax) * (W - LEFT - RIGHT);
  const y = (v: number) => top + PANEL - (v / yMax) * PANEL;
  const parts: string[] = [
    `<rect x="${LEFT}" y="${top}" width="${W - LEFT - RIGHT}" height="${PANEL}" ` +
    `fill="none" stroke="#999"/>`,
    `<text x="${LEFT}" y="${top - 8}" font-size="13">${escape(label)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(
      `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${LEFT - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${
        Number(v.toPrecision(3))
      }</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const t = (tMax * i) / 5;
    parts.push(
      `<text x="${x(t)}" y="${top + PANEL + 14}" font-size="11" text-anchor="middle">${
        Number(t.toFixed(1))
      } s</text>`,
    );
  }
  lines.forEach((line, i) => {
    if (line.points.length > 0) {
      const d = line.points.map(([t, v], j) =>
        `${j === 0 ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`
      ).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${line.color}" stroke-width="1.5"/>`);
    }
    parts.push(
      `<text x="${W - RIGHT - 8}" y="${top + 16 + i * 15}" font-size="12" text-anchor="end" ` +
        `fill="${line.color}">${escape(line.name)}</text>`,
    );
  });
  return parts.join("\n");
}

/**
 * Renders the chart.
 *
 * @param title Heading line (e.g. the workload).
 * @param series Buckets in time order; `t_s` of the last one sets the time axis.
 * @returns A complete SVG document.
 */
export function runChartSvg(title: string, series: SeriesPoint[]): string {
  const tMax = Math.max(0.001, ...series.map((p) => p.t_s));
  const h = TOP + 2 * PANEL + GAP + 40;
  const latency = (key: "p50_ms" | "p99_ms") =>
    series.filter((p) => p[key] !== null).map((p) => [p.t_s, p[key]!] as [number, number]);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" ` +
    `font-family="sans-serif">`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="${LEFT}" y="18" font-size="14" font-weight="bold">${escape(title)}</text>`,
    panel(TOP + 10, "completed jobs/s", tMax, [{
      name: "jobs/s",
      color: "#1f77b4",
      points: series.map((p) => [p.t_s, p.jobs_per_second]),
    }]),
    panel(TOP + 10 + PANEL + GAP, "submit-to-assignment latency (ms), by assignment time", tMax, [
      { name: "p50", color: "#2ca02c", points: latency("p50_ms") },
      { name: "p99", color: "#d62728", points: latency("p99_ms") },
    ]),
    `</svg>`,
    "",
  ].join("\n");
}
