/**
 * Robots: the fleet with status, load and heartbeat age; details (capabilities, tags,
 * current jobs, cpu/memory, the robot's own events); pause/resume; send a job to a robot.
 * Live: robot events refresh the table; heartbeats are not in the log, so the table is also
 * re-read every 5 s and the heartbeat age ticks every second.
 * @module
 */
import { get, post } from "../api.js";
import { age, badge, clock, debounce, describe, h, sequence, short, when } from "../format.js";

/** @param {HTMLElement} main @param {any} ctx */
export function robotsPanel(main, ctx) {
  let robots = [];
  let selected = ctx.params[0] ?? null;
  const tbody = h("tbody");
  const message = h("p.error", { role: "alert" });
  const details = h("section.card.details", { "aria-label": "Robot details", hidden: true });
  main.append(
    h("h1", null, "Robots"),
    message,
    h(
      "div.table-wrap",
      null,
      h(
        "table.data",
        { "aria-label": "Robots" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Robot", "Status", "Load", "Jobs", "Heartbeat", "CPU / memory", "Actions"].map((t) =>
              h("th", { scope: "col" }, t)
            ),
          ),
        ),
        tbody,
      ),
    ),
    details,
  );

  const act = async (robot, action) => {
    message.textContent = "";
    try {
      await post(`/api/v1/robots/${encodeURIComponent(robot.robot_id)}/${action}`);
      await load();
    } catch (error) {
      message.textContent = `${action} ${robot.name}: ${error.message}`;
    }
  };

  const render = () => {
    tbody.replaceChildren(...robots.map((r) => {
      const pct = Math.round(r.load * 100);
      const paused = r.status === "paused";
      return h(
        "tr",
        {
          dataset: { robotId: r.robot_id },
          "aria-selected": r.robot_id === selected ? "true" : null,
        },
        h(
          "th",
          { scope: "row" },
          h("button.link", { type: "button", onclick: () => select(r.robot_id) }, r.name),
          r.name === r.robot_id ? null : h("small", null, ` ${r.robot_id}`),
        ),
        h("td", null, badge(r.status)),
        h(
          "td",
          null,
          h("progress", { max: 100, value: pct, "aria-label": `load ${pct} %` }),
          ` ${pct} %`,
        ),
        h("td", null, `${r.current_jobs.length} / ${r.max_concurrent_jobs}`),
        h(
          "td.hb",
          { dataset: { since: r.last_seen ?? "" } },
          r.connected ? age(r.last_seen) : "offline",
        ),
        h(
          "td",
          null,
          r.metrics.cpu_percent === null
            ? "—"
            : `${Math.round(r.metrics.cpu_percent)} % / ${
              Math.round(r.metrics.memory_percent ?? 0)
            } %`,
        ),
        h(
          "td.actions",
          null,
          h("button.write", {
            type: "button",
            disabled: r.status === "offline",
            onclick: () => act(r, paused ? "resume" : "pause"),
          }, paused ? "Resume" : "Pause"),
          h("button.secondary.write", {
            type: "button",
            onclick: () => ctx.openSubmit({ robot_id: r.robot_id }),
          }, "Send job"),
        ),
      );
    }));
    if (robots.length === 0) {
      tbody.append(h("tr", null, h("td", { colspan: 7 }, "No robot has registered yet.")));
    }
  };

  const renderDetails = async () => {
    const r = robots.find((x) => x.robot_id === selected);
    if (!r) {
      details.hidden = true;
      return;
    }
    const { events } = await get(
      `/api/v1/activity?robot_id=${encodeURIComponent(r.robot_id)}&limit=20`,
    );
    details.hidden = false;
    details.replaceChildren(
      h("h2", null, `${r.name} `, badge(r.status)),
      h(
        "dl.fields",
        null,
        [
          ["Robot id", r.robot_id],
          ["Capabilities", r.capabilities.join(", ") || "—"],
          ["Tags", r.tags.join(", ") || "—"],
          ["Environment", r.environment ?? "—"],
          ["Version", r.version ?? "—"],
          ["Last heartbeat", `${when(r.last_seen)} (${age(r.last_seen)})`],
          [
            "CPU / memory / disk",
            ["cpu_percent", "memory_percent", "disk_percent"].map((k) =>
              r.metrics[k] === null ? "—" : `${Math.round(r.metrics[k])} %`
            ).join(" / "),
          ],
          ["Jobs assigned (total)", r.metrics.jobs_assigned],
          ["Disconnect reason", r.disconnect_reason ?? "—"],
        ].map(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
      ),
      h("h3", null, "Current jobs"),
      r.current_jobs.length
        ? h(
          "ul",
          null,
          r.current_jobs.map((id) => h("li", null, h("a", { href: `#/jobs/${id}` }, short(id)))),
        )
        : h("p", null, "None."),
      h("h3", null, "Robot log (latest events)"),
      h(
        "ol.activity",
        null,
        [...events].reverse().map((e) =>
          h("li", null, h("time", null, clock(e.recorded_at)), " ", describe(e))
        ),
      ),
    );
  };

  const select = (id) => {
    selected = id;
    render();
    renderDetails().catch((e) => (message.textContent = e.message));
  };

  const loads = sequence();
  const load = async () => {
    const current = loads();
    const answer = (await get("/api/v1/robots")).robots;
    if (!current()) return;
    robots = answer;
    render();
    if (selected) await renderDetails();
  };
  const refresh = debounce(load, 200);
  const off = ctx.live.on((e) => {
    if (e.stream_id.startsWith("robot-")) refresh();
  });
  const offResync = ctx.live.onResync(refresh);
  const poll = setInterval(refresh, 5000);
  const tick = setInterval(() => {
    for (const td of tbody.querySelectorAll("td.hb")) {
      if (td.dataset.since && td.textContent !== "offline") td.textContent = age(td.dataset.since);
    }
  }, 1000);
  load().catch((e) => (message.textContent = e.message));
  return () => {
    off();
    offResync();
    clearInterval(poll);
    clearInterval(tick);
  };
}
