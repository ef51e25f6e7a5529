/**
 * Workflows: the folder tree and the details of a workflow. Needs `/api/v1/workflows`
 * (issue 6); while the orchestrator has no such endpoint the panel says so.
 * @module
 */
import { ApiError, get } from "../api.js";
import { h } from "../format.js";

/** @param {HTMLElement} main @param {any} _ctx */
export function workflowsPanel(main, _ctx) {
  const body = h("section.card");
  main.append(h("h1", null, "Workflows"), body);
  get("/api/v1/workflows").then(() => {
    body.replaceChildren(h("p", null, "Workflows are stored; this panel will list them."));
  }).catch((error) => {
    body.dataset.state = "unavailable";
    body.replaceChildren(
      h("h2", null, "Not available"),
      h(
        "p",
        null,
        error instanceof ApiError && error.status === 404
          ? "This orchestrator does not store workflows yet (no /api/v1/workflows). Submit a workflow's JSON with “Submit job”."
          : `Cannot load workflows: ${error.message}`,
      ),
    );
  });
  return () => {};
}
