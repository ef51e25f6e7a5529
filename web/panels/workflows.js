/**
 * Workflows: the folder tree (the reference's TreePanel) and the details of a workflow (its
 * DetailPanel): versions, deployment to robots, recent runs, and a form to run it with
 * variables and a priority. Needs `/api/v1/workflows`; while the orchestrator has none the
 * panel says so. Live: workflow events refresh the tree and the details, job events the runs.
 * @module
 */
import { ApiError, get, post } from "../api.js";
import { badge, between, debounce, duration, fill, h, sequence, short, when } from "../format.js";

/** Folder path "/a/b" → its name "b" ("/" for the root). */
const baseName = (path) => path === "/" ? "/" : path.split("/").filter(Boolean).at(-1);
const parentOf = (path) => {
  const parts = path.split("/").filter(Boolean);
  return parts.length <= 1 ? "/" : `/${parts.slice(0, -1).join("/")}`;
};

/** @param {HTMLElement} main @param {any} ctx */
export function workflowsPanel(main, ctx) {
  const selected = ctx.params[0] ?? null;
  let workflows = [];
  const tree = h("nav.card.tree", { "aria-label": "Workflow folders" });
  const details = h("section.card.details", { "aria-label": "Workflow details", hidden: true });
  const message = h("p.error", { role: "alert" });
  const layout = h("div.split", null, tree, details);
  main.append(h("h1", null, "Workflows"), message, layout);

  const renderTree = (folders) => {
    const all = new Set(["/", ...folders, ...workflows.map((w) => w.folder)]);
    const children = new Map();
    for (const f of all) {
      if (f === "/") continue;
      const p = parentOf(f);
      all.add(p);
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(f);
    }
    const folderNode = (path) => {
      const subs = (children.get(path) ?? []).sort();
      const items = workflows.filter((w) => w.folder === path).sort((a, b) =>
        a.name.localeCompare(b.name)
      );
      return h(
        "details",
        { open: true, dataset: { folder: path } },
        h("summary", null, `${baseName(path)} `, h("small.muted", null, `(${items.length})`)),
        h(
          "ul",
          null,
          subs.map((s) => h("li", null, folderNode(s))),
          items.map((w) =>
            h(
              "li",
              { dataset: { workflowId: w.workflow_id } },
              h("a", {
                href: `#/workflows/${encodeURIComponent(w.workflow_id)}`,
                "aria-current": w.workflow_id === selected ? "true" : null,
              }, w.name),
              " ",
              badge(w.status),
            )
          ),
        ),
      );
    };
    fill(tree, h("h2", null, "Folders"), folderNode("/"));
  };

  // The run and deploy inputs live as long as the panel: live refreshes re-render the details
  // around them and keep what the operator typed or chose.
  const variables = h(
    "textarea",
    { id: "workflow-run-variables", rows: 3, spellcheck: "false" },
    "{}",
  );
  const priority = h(
    "select",
    { id: "workflow-run-priority" },
    ["low", "normal", "high", "critical"].map((p) =>
      h("option", { value: p, selected: p === "normal" }, p)
    ),
  );
  const deployTo = h("select", {
    id: "workflow-deploy-robot",
    "aria-label": "Robot to deploy to",
  });
  const detailLoads = sequence();
  const showDetails = async () => {
    if (!selected) {
      details.hidden = true;
      return;
    }
    const current = detailLoads();
    const id = encodeURIComponent(selected);
    const [w, runs, robots] = await Promise.all([
      get(`/api/v1/workflows/${id}`),
      get(`/api/v1/jobs?workflow_id=${id}&limit=10`),
      get("/api/v1/robots"),
    ]);
    const deployment = await get(`/api/v1/workflows/${id}/deployment`).catch(() => null);
    if (!current()) return;
    const chosen = deployTo.value;
    deployTo.replaceChildren(
      ...robots.robots.map((r) => h("option", { value: r.robot_id }, r.name)),
    );
    if (robots.robots.some((r) => r.robot_id === chosen)) deployTo.value = chosen;
    const act = (fn) => async () => {
      message.textContent = "";
      try {
        await fn();
      } catch (e) {
        message.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
      }
    };
    details.hidden = false;
    details.dataset.workflowId = w.workflow_id;
    fill(
      details,
      h("h2", null, `${w.name} `, badge(w.status)),
      w.description ? h("p", null, w.description) : null,
      h(
        "dl.fields",
        null,
        [
          ["Workflow id", w.workflow_id],
          ["Folder", w.folder],
          ["Tags", (w.tags ?? []).join(", ") || "—"],
          ["Latest version", w.version],
          ["Published version (jobs run it)", w.published_version ?? "none"],
          ["Updated", when(w.updated_at)],
        ].map(([k, v]) => [h("dt", null, k), h("dd", null, String(v))]),
      ),
      h("h3", null, "Run it"),
      h(
        "form.run",
        {
          onsubmit: (e) => {
            e.preventDefault();
            act(async () => {
              let vars;
              try {
                vars = JSON.parse(variables.value || "{}");
              } catch {
                throw new ApiError(400, { field: "variables", message: "not valid JSON" });
              }
              const job = await post("/api/v1/jobs", {
                workflow_id: w.workflow_id,
                variables: vars,
                priority: priority.value,
              });
              ctx.navigate(`jobs/${job.job_id}`);
            })();
          },
        },
        h("label", { for: "workflow-run-variables" }, "Variables (JSON object)"),
        variables,
        h(
          "div.row",
          null,
          h("label", { for: "workflow-run-priority" }, "Priority"),
          priority,
          h("button.write", { type: "submit", id: "workflow-run" }, "Run"),
        ),
      ),
      h("h3", null, "Versions"),
      h(
        "div.table-wrap",
        null,
        h(
          "table.data",
          { "aria-label": "Versions" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["Version", "Status", "Name", "Saved"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            null,
            [...(w.versions ?? [])].reverse().map((v) =>
              h(
                "tr",
                null,
                h("td", null, v.version),
                h("td", null, badge(v.status)),
                h("td", null, v.name),
                h("td", null, when(v.saved_at)),
              )
            ),
          ),
        ),
      ),
      h("h3", null, "Deployment"),
      deployment?.robots?.length
        ? h(
          "ul",
          null,
          deployment.robots.map((r) =>
            h(
              "li",
              null,
              `${r.robot_id}: version ${r.version}${
                r.current ? "" : " (not the published one)"
              }, since ${when(r.deployed_at)} `,
              h("button.secondary.write", {
                type: "button",
                onclick: act(async () => {
                  await post(`/api/v1/workflows/${id}/undeploy`, { robot_ids: [r.robot_id] });
                  await showDetails();
                }),
              }, "Undeploy"),
            )
          ),
        )
        : h("p", null, "Not deployed on any robot."),
      robots.robots.length
        ? h(
          "div.row",
          null,
          deployTo,
          h("button.write", {
            type: "button",
            onclick: act(async () => {
              await post(`/api/v1/workflows/${id}/deploy`, { robot_ids: [deployTo.value] });
              await showDetails();
            }),
          }, "Deploy"),
        )
        : null,
      h("h3", null, "Recent runs"),
      runs.jobs.length
        ? h(
          "div.table-wrap",
          null,
          h(
            "table.data",
            { "aria-label": "Recent runs" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Job", "Status", "Robot", "Created", "Duration"].map((t) =>
                  h("th", { scope: "col" }, t)
                ),
              ),
            ),
            h(
              "tbody",
              null,
              runs.jobs.map((j) =>
                h(
                  "tr",
                  { dataset: { jobId: j.job_id, status: j.status } },
                  h("td", null, h("a", { href: `#/jobs/${j.job_id}` }, short(j.job_id))),
                  h("td", null, badge(j.status)),
                  h("td", null, j.robot_id ?? "—"),
                  h("td", null, when(j.created_at)),
                  h("td", null, duration(between(j.started_at, j.completed_at))),
                )
              ),
            ),
          ),
        )
        : h("p", null, "No runs yet."),
    );
  };

  const loads = sequence();
  const load = async () => {
    const current = loads();
    const res = await get("/api/v1/workflows");
    if (!current()) return;
    workflows = res.workflows;
    renderTree(res.folders ?? []);
    layout.dataset.state = "loaded";
    await showDetails();
  };

  const unavailable = (error) => {
    layout.replaceChildren(h(
      "section.card",
      { dataset: { state: "unavailable" } },
      h("h2", null, "Not available"),
      h(
        "p",
        null,
        error instanceof ApiError && error.status === 404
          ? "This orchestrator does not store workflows (no /api/v1/workflows). Submit a workflow's JSON with “Submit job”."
          : `Cannot load workflows: ${error.message}`,
      ),
    ));
  };

  const refresh = debounce(() => load().catch((e) => (message.textContent = e.message)), 250);
  const off = ctx.live.on((e) => {
    if (e.stream_id.startsWith("workflow-")) refresh();
    else if (
      selected && e.stream_id.startsWith("job-") &&
      (e.type === "job.submitted" || e.type === "job.completed" || e.type === "job.failed" ||
        e.type === "job.cancelled" || e.type === "job.started")
    ) refresh();
  });
  const offResync = ctx.live.onResync(refresh);
  load().catch(unavailable);
  return () => {
    off();
    offResync();
  };
}
