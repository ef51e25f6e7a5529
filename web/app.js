/**
 * The dashboard's entry: sign-in, the hash router (`#/dashboard`, `#/robots`, `#/jobs`,
 * `#/jobs/<id>`, `#/metrics`, `#/schedules`, `#/workflows`), the realtime channel and the
 * submit-job dialog.
 * @module
 */
import { api, ApiError, get, post, setToken, token } from "./api.js";
import { h } from "./format.js";
import { Live } from "./live.js";
import { dashboardPanel } from "./panels/dashboard.js";
import { robotsPanel } from "./panels/robots.js";
import { jobsPanel } from "./panels/jobs.js";
import { metricsPanel } from "./panels/metrics.js";
import { schedulesPanel } from "./panels/schedules.js";
import { workflowsPanel } from "./panels/workflows.js";

const PANELS = {
  dashboard: dashboardPanel,
  robots: robotsPanel,
  jobs: jobsPanel,
  metrics: metricsPanel,
  schedules: schedulesPanel,
  workflows: workflowsPanel,
};

const $ = (id) => document.getElementById(id);
const main = $("main");
const live = new Live(token, { banner: $("banner"), indicator: $("live") });
let dispose = null;

/** Navigates to a hash route. @param {string} route e.g. `jobs/<id>` */
export function navigate(route) {
  location.hash = `#/${route}`;
}

function route() {
  if (!token()) return;
  const [name = "dashboard", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const panel = PANELS[name] ?? dashboardPanel;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.panel === (PANELS[name] ? name : "dashboard")) {
      a.setAttribute("aria-current", "page");
    } else a.removeAttribute("aria-current");
  }
  if (typeof dispose === "function") dispose();
  main.replaceChildren();
  main.dataset.panel = PANELS[name] ? name : "dashboard";
  const title = main.dataset.panel;
  document.title = `${title[0].toUpperCase()}${title.slice(1)} · Orchestrator`;
  dispose = panel(main, { live, params: rest.map(decodeURIComponent), navigate, openSubmit });
}

/**
 * Shows the token's org and role, and marks the page read-only for roles that may not
 * change anything (`viewer`, `auditor`: CSS hides the `.write` buttons; the API refuses
 * them anyway with 403).
 */
async function showWho() {
  try {
    const me = await get("/api/v1/auth/me");
    $("whoami").textContent = `${me.org_id} · ${me.role}`;
    document.body.dataset.role = me.role;
    if (me.role === "admin" || me.role === "operator") delete document.body.dataset.readonly;
    else document.body.dataset.readonly = "";
  } catch {
    $("whoami").textContent = "";
  }
}

function showSignedIn(signedIn) {
  $("signin").hidden = signedIn;
  $("shell").hidden = !signedIn;
  if (signedIn) {
    void showWho();
    live.start();
    route();
  } else {
    live.stop();
    if (typeof dispose === "function") dispose();
    dispose = null;
    $("token").focus();
  }
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = $("token").value.trim();
  $("signin-error").textContent = "";
  try {
    await api("GET", "/api/v1/auth/me", undefined, value);
    setToken(value);
    $("token").value = "";
    showSignedIn(true);
  } catch (error) {
    $("signin-error").textContent = error instanceof ApiError && error.status === 401
      ? "This token is not accepted."
      : `Cannot sign in: ${error.message}`;
  }
});

$("signout").addEventListener("click", () => {
  setToken(null);
  showSignedIn(false);
});

addEventListener("unauthorized", () => {
  setToken(null);
  showSignedIn(false);
  $("signin-error").textContent = "The token was refused; sign in again.";
});

addEventListener("hashchange", () => {
  route();
  // Keyboard and screen-reader users land on the new panel, not on the link they used.
  if (!document.querySelector("dialog[open]")) main.focus({ preventScroll: true });
});

// The submit-job dialog, opened from the header, a robot (robot preset) or a retry.
const dialog = $("submit-dialog");

/**
 * Opens the submit dialog.
 * @param {{robot_id?: string, workflow?: unknown, variables?: unknown, priority?: string}} [preset]
 */
export async function openSubmit(preset = {}) {
  $("submit-error").textContent = "";
  if (preset.workflow) $("submit-workflow").value = JSON.stringify(preset.workflow, null, 2);
  if (preset.variables) $("submit-variables").value = JSON.stringify(preset.variables);
  if (preset.priority) $("submit-priority").value = preset.priority;
  const select = $("submit-robot");
  select.replaceChildren(h("option", { value: "" }, "any robot"));
  try {
    const { robots } = await get("/api/v1/robots");
    for (const r of robots) {
      select.append(h("option", { value: r.robot_id }, `${r.name} (${r.robot_id}, ${r.status})`));
    }
  } catch { /* the list is optional */ }
  select.value = preset.robot_id ?? "";
  dialog.showModal();
  $("submit-workflow").focus();
}

$("submit-job-open").addEventListener("click", () => openSubmit());
$("submit-cancel").addEventListener("click", () => dialog.close());
$("submit-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = $("submit-error");
  error.textContent = "";
  const parse = (id, field) => {
    try {
      return JSON.parse($(id).value || "{}");
    } catch {
      throw new ApiError(400, { field, message: `${field} is not valid JSON` });
    }
  };
  try {
    const body = {
      workflow: parse("submit-workflow", "workflow"),
      variables: parse("submit-variables", "variables"),
      priority: $("submit-priority").value,
    };
    if ($("submit-robot").value) body.robot_id = $("submit-robot").value;
    if ($("submit-timeout").value) body.timeout = Number($("submit-timeout").value);
    const job = await post("/api/v1/jobs", body);
    dialog.close();
    navigate(`jobs/${job.job_id}`);
  } catch (err) {
    error.textContent = err.field ? `${err.field}: ${err.message}` : err.message;
  }
});

showSignedIn(token() !== null);
