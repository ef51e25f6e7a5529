/**
 * Schedules: every schedule with its next run shown in the viewer's time zone and in the
 * schedule's own zone, the following runs on demand, and pause/resume. Live: schedule
 * events refresh the list.
 * @module
 */
import { get, post } from "../api.js";
import { badge, debounce, h, sequence, when } from "../format.js";

const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** @param {HTMLElement} main @param {any} ctx */
export function schedulesPanel(main, ctx) {
  const tbody = h("tbody");
  const message = h("p.error", { role: "alert" });
  const runs = h("section.card.details", { "aria-label": "Next runs", hidden: true });
  main.append(
    h("h1", null, "Schedules"),
    h("p.muted", null, `Times are shown in your zone (${viewerZone}) and in the schedule's zone.`),
    message,
    h(
      "div.table-wrap",
      null,
      h(
        "table.data",
        { "aria-label": "Schedules" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            [
              "Schedule",
              "When",
              "State",
              `Next run (${viewerZone})`,
              "Next run (schedule's zone)",
              "Last run",
              "Actions",
            ].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        tbody,
      ),
    ),
    runs,
  );

  const showRuns = async (s) => {
    const { next_runs } = await get(
      `/api/v1/schedules/${encodeURIComponent(s.schedule_id)}/next-runs?count=5`,
    );
    runs.hidden = false;
    runs.replaceChildren(
      h("h2", null, `Next runs of ${s.name ?? s.schedule_id}`),
      h(
        "div.table-wrap",
        null,
        h(
          "table.data",
          null,
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col" }, `Your zone (${viewerZone})`),
              h("th", { scope: "col" }, `Schedule's zone (${s.timezone})`),
              h("th", { scope: "col" }, "UTC"),
            ),
          ),
          h(
            "tbody",
            null,
            next_runs.map((r) =>
              h(
                "tr",
                null,
                h("td", null, when(r)),
                h("td", null, when(r, s.timezone)),
                h("td", null, r),
              )
            ),
          ),
        ),
      ),
    );
  };

  const loads = sequence();
  const load = async () => {
    const current = loads();
    const { schedules } = await get("/api/v1/schedules");
    if (!current()) return;
    tbody.replaceChildren(...schedules.map((s) =>
      h(
        "tr",
        { dataset: { scheduleId: s.schedule_id } },
        h("th", { scope: "row" }, s.name ?? s.schedule_id),
        h("td", null, s.frequency === "cron" ? `cron ${s.cron_expression}` : s.frequency),
        h("td", null, badge(s.enabled ? "enabled" : "paused")),
        h("td", null, when(s.next_run)),
        h("td", null, when(s.next_run, s.timezone)),
        h("td", null, when(s.last_run)),
        h(
          "td.actions",
          null,
          h("button.write", {
            type: "button",
            onclick: async () => {
              message.textContent = "";
              try {
                await post(
                  `/api/v1/schedules/${encodeURIComponent(s.schedule_id)}/${
                    s.enabled ? "pause" : "resume"
                  }`,
                );
                await load();
              } catch (e) {
                message.textContent = e.message;
              }
            },
          }, s.enabled ? "Pause" : "Resume"),
          h("button.secondary", {
            type: "button",
            onclick: () => showRuns(s).catch((e) => (message.textContent = e.message)),
          }, "Next runs"),
        ),
      )
    ));
    if (schedules.length === 0) {
      tbody.append(h("tr", null, h("td", { colspan: 7 }, "No schedules.")));
    }
  };
  const refresh = debounce(load, 250);
  const off = ctx.live.on((e) => {
    if (e.stream_id.startsWith("schedule-")) refresh();
  });
  const offResync = ctx.live.onResync(refresh);
  load().catch((e) => (message.textContent = e.message));
  return () => {
    off();
    offResync();
  };
}
