/**
 * Charts drawn with uPlot (vendored in `vendor/uplot/`, MIT licence): time series whose
 * data points are also counted in the container's `data-points` attribute and listed in a
 * visually hidden table for screen readers.
 * @module
 */
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { h } from "./format.js";

/**
 * @typedef {{label: string, values: (number | null)[], color: string, bars?: boolean}} Series
 */

/**
 * A time-series chart in `container`; `update` redraws it with new data.
 * @param {HTMLElement} container
 * @param {{title: string, unit?: string, yMax?: number}} options
 */
export function timeChart(container, options) {
  const figure = h("figure.chart", { dataset: { points: "0" } });
  const caption = h("figcaption", null, options.title);
  const canvasBox = h("div.plot");
  const table = h("table");
  figure.append(caption, canvasBox, h("div.sr-only", null, table));
  container.append(figure);
  let plot = null;
  let lastKey = "";

  const width = () => Math.max(240, canvasBox.clientWidth || container.clientWidth || 300);
  const resize = new ResizeObserver(() => plot?.setSize({ width: width(), height: 200 }));
  resize.observe(canvasBox);

  /**
   * @param {number[]} times ms since the epoch
   * @param {Series[]} series
   */
  function update(times, series) {
    const key = series.map((s) => s.label).join("|");
    const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)];
    const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
    figure.dataset.points = String(points);
    table.replaceChildren(
      h("caption", null, options.title),
      h(
        "tr",
        null,
        h("th", { scope: "col" }, "time"),
        series.map((s) => h("th", { scope: "col" }, s.label)),
      ),
      times.map((t, i) =>
        series.some((s) => s.values[i] !== null && s.values[i] !== 0)
          ? h(
            "tr",
            null,
            h("td", null, new Date(t).toLocaleTimeString()),
            series.map((s) => h("td", null, s.values[i] ?? "—")),
          )
          : null
      ),
    );
    if (plot && key === lastKey) {
      plot.setData(data);
      return;
    }
    plot?.destroy();
    lastKey = key;
    plot = new uPlot(
      {
        width: width(),
        height: 200,
        scales: {
          x: { time: true },
          y: options.yMax
            ? { range: [0, options.yMax] }
            : { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
        },
        axes: [
          { stroke: "#333" },
          { stroke: "#333", label: options.unit, size: 50 },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            fill: s.bars ? s.color + "55" : undefined,
            paths: s.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
            points: { show: true, size: 5 },
            spanGaps: false,
          })),
        ],
      },
      data,
      canvasBox,
    );
  }

  return {
    update,
    destroy() {
      resize.disconnect();
      plot?.destroy();
    },
  };
}
