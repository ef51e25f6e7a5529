/**
 * Metrics: execution-time trend, successes and failures, robot utilisation and queue depth
 * over a chosen time range, from `GET /api/v1/metrics/history`. Live: ended jobs and queue
 * changes redraw the charts (at most every 2 s).
 * @module
 */
import { get } from "../api.js";
import { timeChart } from "../charts.js";
import { debounce, h } from "../format.js";

const RANGES = [
  ["15m", "Last 15 minutes", 15 * 60],
  ["1h", "Last hour", 3600],
  ["6h", "Last 6 hours", 6 * 3600],
  ["24h", "Last 24 hours", 24 * 3600],
  ["7d", "Last 7 days", 7 * 24 * 3600],
];

/** @param {HTMLElement} main @param {any} ctx */
export function metricsPanel(main, ctx) {
  const range = h(
    "select",
    { id: "metrics-range", "aria-label": "Time range" },
    RANGES.map(([v, label]) => h("option", { value: v, selected: v === "1h" }, label)),
  );
  const message = h("p.error", { role: "alert" });
  const grid = h("div.grid2.charts");
  const summary = h("p.muted", { "aria-live": "polite" });
  main.append(
    h("h1", null, "Metrics"),
    h("div.toolbar", null, h("label", { for: "metrics-range" }, "Time range "), range, summary),
    message,
    grid,
  );
  const box = () => {
    const b = h("section.card");
    grid.append(b);
    return b;
  };
  const exec = timeChart(box(), { title: "Execution time (mean per step, s)", unit: "s" });
  const outcome = timeChart(box(), { title: "Jobs completed and failed per step", unit: "jobs" });
  const util = timeChart(box(), {
    title: "Robot utilisation (% of connected slots busy)",
    unit: "%",
    yMax: 100,
  });
  const queue = timeChart(box(), { title: "Queue depth (jobs waiting)", unit: "jobs" });

  const load = async () => {
    const seconds = RANGES.find(([v]) => v === range.value)[2];
    const to = new Date();
    const from = new Date(to.getTime() - seconds * 1000);
    const res = await get(
      `/api/v1/metrics/history?from=${from.toISOString()}&to=${to.toISOString()}`,
    );
    const p = res.points;
    const t = p.map((x) => x.t);
    exec.update(t, [{
      label: "mean execution time (s)",
      color: "#0550ae",
      values: p.map((x) =>
        x.avg_execution_time === null ? null : Math.round(x.avg_execution_time * 1000) / 1000
      ),
    }]);
    outcome.update(t, [
      { label: "completed", color: "#1a7f37", values: p.map((x) => x.completed), bars: true },
      { label: "failed", color: "#cf222e", values: p.map((x) => x.failed), bars: true },
    ]);
    util.update(t, [{
      label: "utilisation %",
      color: "#8250df",
      values: p.map((x) => Math.round(x.utilisation * 1000) / 10),
    }]);
    queue.update(t, [{
      label: "queue depth",
      color: "#9a6700",
      values: p.map((x) => x.queue_depth),
    }]);
    const sum = (k) => p.reduce((n, x) => n + x[k], 0);
    summary.textContent =
      `${sum("submitted")} submitted, ${sum("completed")} completed, ${sum("failed")} failed, ` +
      `${sum("cancelled")} cancelled; one point per ${res.step} s`;
    grid.dataset.loaded = "true";
  };
  const refresh = debounce(load, 2000);
  range.addEventListener("change", () => load().catch((e) => (message.textContent = e.message)));
  const off = ctx.live.on((e) => {
    if (e.stream_id.startsWith("job-") && e.type !== "job.logged" && e.type !== "job.progressed") {
      refresh();
    }
    if (e.stream_id.startsWith("robot-")) refresh();
  });
  const offResync = ctx.live.onResync(refresh);
  load().catch((e) => (message.textContent = e.message));
  return () => {
    off();
    offResync();
    for (const c of [exec, outcome, util, queue]) c.destroy();
  };
}
