/**
 * Dashboard: KPI cards (the reference's DashboardMetrics), the success rate over the last
 * hour, and recent activity told in words. Live: every log event refreshes the cards.
 * @module
 */
import { get } from "../api.js";
import { timeChart } from "../charts.js";
import { clock, debounce, describe, duration, h, NOISY, sequence } from "../format.js";

const CARDS = [
  ["online_robots", "Robots online"],
  ["offline_robots", "Robots offline"],
  ["total_robots", "Robots total"],
  ["total_jobs_today", "Jobs today"],
  ["completed_jobs_today", "Completed today"],
  ["failed_jobs_today", "Failed today"],
  ["pending_jobs", "Pending"],
  ["running_jobs", "Running"],
  ["success_rate", "Success rate"],
  ["average_execution_time", "Avg execution time"],
];

function kpiText(key, value) {
  if (key === "success_rate") return `${Number(value).toFixed(1)} %`;
  if (key === "average_execution_time") return duration(Number(value));
  return String(value);
}

/** @param {HTMLElement} main @param {any} ctx */
export function dashboardPanel(main, ctx) {
  const cards = h("section.kpis", { "aria-label": "Key figures" });
  const values = {};
  for (const [key, label] of CARDS) {
    values[key] = h("span.value", { dataset: { kpi: key } }, "…");
    cards.append(h("div.card.kpi", null, h("span.label", null, label), values[key]));
  }
  const chartBox = h("section.card", { "aria-label": "Success rate" });
  const activity = h("ol.activity", { "aria-live": "polite" });
  main.append(
    h("h1", null, "Dashboard"),
    cards,
    h(
      "div.grid2",
      null,
      chartBox,
      h("section.card", null, h("h2", null, "Recent activity"), activity),
    ),
  );
  const chart = timeChart(chartBox, { title: "Success rate, last hour (%)", unit: "%", yMax: 100 });

  const kpiLoads = sequence();
  const loadKpis = async () => {
    const current = kpiLoads();
    const m = await get("/api/v1/metrics/dashboard");
    if (!current()) return;
    for (const [key] of CARDS) {
      values[key].textContent = kpiText(key, m[key]);
      values[key].dataset.value = String(m[key]);
    }
    cards.dataset.loaded = "true";
  };
  const loadChart = async () => {
    const { points } = await get("/api/v1/metrics/history?step=60");
    chart.update(points.map((p) => p.t), [{
      label: "success rate %",
      color: "#1a7f37",
      values: points.map((p) => {
        const ended = p.completed + p.failed;
        return ended ? Math.round((1000 * p.completed) / ended) / 10 : null;
      }),
    }]);
  };
  const addActivity = (e, prepend) => {
    if (NOISY.has(e.type)) return;
    const item = h(
      "li",
      null,
      h("time", { datetime: e.recorded_at }, clock(e.recorded_at)),
      " ",
      describe(e),
    );
    if (prepend) activity.prepend(item);
    else activity.append(item);
    while (activity.children.length > 15) activity.lastElementChild.remove();
  };
  const loadActivity = async () => {
    const { events } = await get("/api/v1/activity?limit=100");
    activity.replaceChildren();
    for (const e of events.reverse()) addActivity(e, false);
  };

  const refreshKpis = debounce(loadKpis, 150);
  const refreshChart = debounce(loadChart, 2000);
  // Bursts of events are added once per animation frame, only the newest 15.
  let incoming = [];
  const flushActivity = () => {
    const batch = incoming.filter((e) => !NOISY.has(e.type)).slice(-15);
    incoming = [];
    for (const e of batch) addActivity(e, true);
  };
  const offEvent = ctx.live.on((e) => {
    refreshKpis();
    if (incoming.push(e) === 1) requestAnimationFrame(flushActivity);
    if (e.type === "job.completed" || e.type === "job.failed" || e.type === "job.timed_out") {
      refreshChart();
    }
  });
  const resyncAll = () => {
    loadKpis().catch(console.error);
    loadChart().catch(console.error);
    loadActivity().catch(console.error);
  };
  const offResync = ctx.live.onResync(resyncAll);
  resyncAll();
  return () => {
    offEvent();
    offResync();
    chart.destroy();
  };
}
