/**
 * Jobs: the queue and history table (status filter, search, cursor pages of 50), and the
 * details of one job (variables, outputs, node results, logs, error, its event timeline)
 * with cancel and retry. Live: job events refresh the rows they touch and the details.
 * @module
 */
import { ApiError, get, post } from "../api.js";
import {
  badge,
  between,
  debounce,
  describe,
  duration,
  fill,
  h,
  sequence,
  short,
  when,
} from "../format.js";

const STATUSES = [
  "pending",
  "queued",
  "dispatched",
  "running",
  "completed",
  "failed",
  "cancelled",
  "timeout",
];
const TERMINAL = new Set(["completed", "failed", "cancelled", "timeout"]);
const PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const pre = (value) => h("pre.json", null, JSON.stringify(value ?? null, null, 2));

/** Filter, search and page, kept while the operator opens jobs (each one is a new route). */
const kept = { status: "", robot: "", search: "", cursors: [null] };

/** @param {HTMLElement} main @param {any} ctx */
export function jobsPanel(main, ctx) {
  const selected = ctx.params[0] ?? null;
  let rows = [];
  let nextCursor = null;
  const cursors = kept.cursors;
  const status = h(
    "select",
    { id: "job-status", "aria-label": "Filter by status" },
    h("option", { value: "" }, "all statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  const robot = h(
    "select",
    { id: "job-robot", "aria-label": "Filter by robot" },
    h("option", { value: "" }, "all robots"),
  );
  const search = h("input", {
    id: "job-search",
    type: "search",
    placeholder: "Search id, workflow, robot",
    "aria-label": "Search jobs",
  });
  const newer = h("button.secondary", { type: "button", disabled: true }, "← Newer");
  const older = h("button.secondary", { type: "button", disabled: true }, "Older →");
  const pageInfo = h("span.muted");
  const tbody = h("tbody");
  const message = h("p.error", { role: "alert" });
  const details = h("section.card.details", { "aria-label": "Job details", hidden: true });
  main.append(
    h("h1", null, "Jobs"),
    h("div.toolbar", null, status, robot, search, newer, older, pageInfo),
    message,
    h(
      "div.table-wrap",
      null,
      h(
        "table.data",
        { "aria-label": "Jobs" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Job", "Workflow", "Status", "Priority", "Robot", "Created", "Duration"].map((t) =>
              h("th", { scope: "col" }, t)
            ),
          ),
        ),
        tbody,
      ),
    ),
    details,
  );

  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = q
      ? rows.filter((j) =>
        [j.job_id, j.workflow_name, j.workflow_id, j.robot_id].some((v) =>
          v && String(v).toLowerCase().includes(q)
        )
      )
      : rows;
    tbody.replaceChildren(...shown.map((j) =>
      h(
        "tr",
        {
          dataset: { jobId: j.job_id, status: j.status },
          "aria-selected": j.job_id === selected ? "true" : null,
        },
        h(
          "th",
          { scope: "row" },
          h("a", { href: `#/jobs/${j.job_id}`, title: j.job_id }, short(j.job_id)),
        ),
        h("td", null, j.workflow_name ?? j.workflow_id ?? "—"),
        h("td", null, badge(j.status)),
        h("td", null, j.priority),
        h("td", null, j.robot_id ?? "—"),
        h("td", null, when(j.created_at)),
        h("td", null, duration(between(j.started_at, j.completed_at))),
      )
    ));
    if (shown.length === 0) {
      tbody.append(
        h("tr", null, h("td", { colspan: 7 }, q ? "No job on this page matches." : "No jobs.")),
      );
    }
    newer.disabled = cursors.length <= 1;
    older.disabled = !nextCursor;
    pageInfo.textContent = `page ${cursors.length}`;
  };

  // Loads overlap (a live refresh in flight when the filter changes): only the latest one's
  // answer is shown, so a slower, older answer never replaces a newer one.
  const loads = sequence();
  const detailLoads = sequence();
  const load = async () => {
    const current = loads();
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (status.value) params.set("status", status.value);
    if (kept.robot) params.set("robot_id", kept.robot);
    const cursor = cursors[cursors.length - 1];
    if (cursor) params.set("cursor", cursor);
    const page = await get(`/api/v1/jobs?${params}`);
    if (!current()) return;
    rows = page.jobs;
    nextCursor = page.next_cursor ?? null;
    render();
  };

  const showDetails = async () => {
    if (!selected) return;
    const current = detailLoads();
    const [job, { events }] = await Promise.all([
      get(`/api/v1/jobs/${selected}`),
      get(`/api/v1/jobs/${selected}/events`),
    ]);
    if (!current()) return;
    const result = job.result ?? {};
    const logs = result.logs ??
      events.filter((e) => e.type === "job.logged").flatMap((e) => e.data.entries ?? []);
    const submitted = events.find((e) => e.type === "job.submitted")?.data;
    const cancel = h("button.danger.write", {
      type: "button",
      id: "job-cancel",
      hidden: TERMINAL.has(job.status),
      disabled: job.cancel_requested,
      onclick: async () => {
        message.textContent = "";
        try {
          await post(`/api/v1/jobs/${job.job_id}/cancel`);
          await showDetails();
        } catch (e) {
          message.textContent = `Cancel: ${e.message}`;
        }
      },
    }, job.cancel_requested ? "Cancelling…" : "Cancel job");
    const retry = h("button.write", {
      type: "button",
      id: "job-retry",
      hidden: !TERMINAL.has(job.status) || !submitted,
      onclick: async () => {
        message.textContent = "";
        try {
          const body = {
            // job.submitted keeps {workflow_id, name, version, content}; the API takes the file.
            workflow: submitted.workflow?.content ?? submitted.workflow,
            variables: submitted.variables,
            priority: submitted.priority,
          };
          if (submitted.robot_id) body.robot_id = submitted.robot_id;
          if (submitted.required_capabilities?.length) {
            body.required_capabilities = submitted.required_capabilities;
          }
          // The API's retry (a new job linked by retry_of) when the orchestrator has it,
          // else the same submission again.
          const again = await post(`/api/v1/jobs/${job.job_id}/retry`).catch((e) => {
            if (e instanceof ApiError && e.status === 404 && /^No route/.test(e.message)) {
              return post("/api/v1/jobs", body);
            }
            throw e;
          });
          ctx.navigate(`jobs/${again.job_id}`);
        } catch (e) {
          message.textContent = `Retry: ${e.message}`;
        }
      },
    }, "Retry (new job)");
    details.hidden = false;
    details.dataset.jobId = job.job_id;
    details.dataset.status = job.status;
    fill(
      details,
      h(
        "div.row",
        null,
        h("h2", null, `Job ${short(job.job_id)} `, badge(job.status)),
        h("span.spacer"),
        cancel,
        retry,
        h("a.button.secondary", { href: "#/jobs" }, "Close"),
      ),
      h(
        "dl.fields",
        null,
        [
          ["Job id", job.job_id],
          ["Workflow", `${job.workflow_name ?? "—"} (${job.workflow_id ?? "—"})`],
          ["Priority", job.priority],
          ["Robot", job.robot_id ?? "—"],
          ["Created", when(job.created_at)],
          ["Started", when(job.started_at)],
          ["Ended", when(job.completed_at)],
          [
            "Execution time",
            duration(result.execution_time ?? between(job.started_at, job.completed_at)),
          ],
          ["Attempt", `${job.attempt ?? 0} (max retries ${job.max_retries ?? 0})`],
          [
            "Progress",
            job.progress === null || job.progress === undefined
              ? "—"
              : `${job.progress} %${job.current_node ? ` at ${job.current_node}` : ""}`,
          ],
          ["Waiting because", job.queue_reason ? JSON.stringify(job.queue_reason) : "—"],
        ].map(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
      ),
      job.error
        ? [
          h("h3", null, "Error"),
          h(
            "p.error",
            { "data-field": "error" },
            typeof job.error === "string" ? job.error : JSON.stringify(job.error),
          ),
        ]
        : null,
      h(
        "div.grid2",
        null,
        h("div", null, h("h3", null, "Variables"), pre(job.variables)),
        h("div", null, h("h3", null, "Outputs"), pre(result.outputs ?? null)),
      ),
      result.node_results ? [h("h3", null, "Node results"), pre(result.node_results)] : null,
      h("h3", null, `Logs (${logs.length})`),
      logs.length
        ? h(
          "div.table-wrap",
          null,
          h(
            "table.data.logs",
            { "aria-label": "Logs" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Time", "Level", "Node", "Message"].map((t) => h("th", { scope: "col" }, t)),
              ),
            ),
            h(
              "tbody",
              null,
              logs.map((l) =>
                h(
                  "tr",
                  null,
                  h("td", null, when(l.timestamp)),
                  h("td", null, l.level ?? ""),
                  h("td", null, l.node_id ?? ""),
                  h("td", null, l.message ?? ""),
                )
              ),
            ),
          ),
        )
        : h("p", null, "No log lines."),
      h("h3", null, "Event timeline (from the log)"),
      h(
        "ol.timeline",
        null,
        events.map((e) =>
          h(
            "li",
            { dataset: { type: e.type } },
            h("code", null, `v${e.stream_version}`),
            " ",
            h("time", { datetime: e.recorded_at }, when(e.recorded_at)),
            " ",
            h("strong", null, e.type),
            " — ",
            describe(e),
          )
        ),
      ),
    );
  };

  const refresh = debounce(load, 250);
  const refreshDetails = debounce(showDetails, 250);
  status.value = kept.status;
  get("/api/v1/robots").then(({ robots }) => {
    robot.append(...robots.map((r) => h("option", { value: r.robot_id }, r.name)));
    robot.value = kept.robot;
  }).catch(() => {});
  robot.addEventListener("change", () => {
    kept.robot = robot.value;
    cursors.length = 1;
    load().catch((e) => (message.textContent = e.message));
  });
  search.value = kept.search;
  status.addEventListener("change", () => {
    kept.status = status.value;
    cursors.length = 1;
    load().catch((e) => (message.textContent = e.message));
  });
  search.addEventListener("input", () => {
    kept.search = search.value;
    render();
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && UUID.test(search.value.trim())) {
      ctx.navigate(`jobs/${search.value.trim().toLowerCase()}`);
    }
  });
  older.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    load().catch((e) => (message.textContent = e.message));
  });
  newer.addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    load().catch((e) => (message.textContent = e.message));
  });
  const off = ctx.live.on((e) => {
    if (!e.stream_id.startsWith("job-")) return;
    const id = e.stream_id.slice(4);
    if (cursors.length === 1 || rows.some((j) => j.job_id === id)) refresh();
    if (id === selected) refreshDetails();
  });
  const offResync = ctx.live.onResync(() => {
    refresh();
    refreshDetails();
  });
  load().catch((e) => (message.textContent = e.message));
  showDetails().catch((e) => (message.textContent = `Job ${selected}: ${e.message}`));
  return () => {
    off();
    offResync();
  };
}
