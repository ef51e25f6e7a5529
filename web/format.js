/**
 * Formatting and DOM helpers: elements, times, durations, and events told in words.
 * @module
 */

/**
 * Creates an element. Text children are text nodes (never parsed as HTML).
 * @param {string} tag e.g. `div.card` (classes after dots)
 * @param {Record<string, any> | null} [attrs] attributes; `on*` functions become listeners
 * @param {...any} children strings, nodes, arrays, null/false (skipped)
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

/**
 * Replaces an element's children; arrays are flattened, null/false skipped (as in `h`).
 * @param {HTMLElement} el
 * @param {...any} children
 */
export function fill(el, ...children) {
  el.replaceChildren(h("div", null, ...children));
  el.replaceChildren(...el.firstChild.childNodes);
}

/** The first 8 characters of an id. @param {string | null} id */
export const short = (id) => (id ? String(id).slice(0, 8) : "—");

/** A local date and time, or a dash. @param {string | null} iso @param {string} [timeZone] */
export function when(iso, timeZone) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    timeZone,
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: timeZone ? "short" : undefined,
  });
}

/** A time of day when `iso` is today, else a date and time. @param {string | null} iso */
export function clock(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : when(iso);
}

/** Seconds as "1.2 s", "3 min 4 s", "2 h 5 min". @param {number | null} seconds */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Age of an instant as "4 s ago". @param {string | null} iso @param {number} [now] */
export function age(iso, now = Date.now()) {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** Seconds between two instants, or null. @param {string|null} a @param {string|null} b */
export function between(a, b) {
  if (!a || !b) return null;
  return (new Date(b).getTime() - new Date(a).getTime()) / 1000;
}

/** A status badge (text plus colour: never colour alone). @param {string} status */
export function badge(status) {
  return h(`span.badge.s-${status}`, { dataset: { status } }, status);
}

/** Events of a job too frequent to list as activity. */
export const NOISY = new Set([
  "job.logged",
  "job.progressed",
  "audit.sealed",
  "audit.heads_recorded",
]);

/**
 * One log event told in words, e.g. "Job 1a2b3c4d completed on robot-1 in 0.42 s".
 * @param {{type: string, stream_id: string, data: any}} e the event as the API shows it
 * @returns {string}
 */
export function describe(e) {
  const d = e.data ?? {};
  const [kind, ...rest] = e.stream_id.split("-");
  const id = rest.join("-");
  const job = `Job ${short(id)}`;
  const robot = `Robot ${id}`;
  switch (e.type) {
    case "job.submitted":
      return `${job} submitted (${d.workflow?.metadata?.name ?? d.workflow?.name ?? "workflow"})`;
    case "job.queued":
      return `${job} queued${d.reason && d.reason !== "submitted" ? ` (${d.reason})` : ""}`;
    case "job.dispatched":
      return `${job} dispatched to ${d.robot_id ?? "a robot"}`;
    case "job.started":
      return `${job} started${d.robot_id ? ` on ${d.robot_id}` : ""}`;
    case "job.completed": {
      const t = d.result?.execution_time;
      return `${job} completed${typeof t === "number" ? ` in ${duration(t)}` : ""}`;
    }
    case "job.failed":
      return `${job} failed: ${d.error?.message ?? d.error ?? "error"}`;
    case "job.cancel_requested":
      return `${job}: cancel requested`;
    case "job.cancelled":
      return `${job} cancelled`;
    case "job.timed_out":
      return `${job} timed out`;
    case "job.rejected":
      return `${job} rejected by ${d.robot_id ?? "a robot"}`;
    case "job.retry_scheduled":
      return `${job} will be retried${d.retry_at ? ` at ${when(d.retry_at)}` : ""}`;
    case "job.logged":
      return `${job} logged ${d.entries?.length ?? 0} line(s)`;
    case "job.progressed":
      return `${job} at ${d.progress ?? "?"}%`;
    case "robot.registered":
      return `${robot} registered (${d.max_concurrent_jobs ?? 1} slots)`;
    case "robot.connected":
      return `${robot} came online`;
    case "robot.disconnected":
      return `${robot} went offline${d.reason ? ` (${d.reason})` : ""}`;
    case "robot.paused":
      return `${robot} paused`;
    case "robot.resumed":
      return `${robot} resumed`;
    case "robot.job_assigned":
      return `${robot} took job ${short(d.job_id)}`;
    case "robot.job_released":
      return `${robot} released job ${short(d.job_id)}`;
    default:
      if (kind === "schedule") return `Schedule ${id}: ${e.type.replace("schedule.", "")}`;
      if (kind === "workflow") return `Workflow ${id}: ${e.type.replace("workflow.", "")}`;
      return `${e.type} on ${e.stream_id}`;
  }
}

/**
 * Orders overlapping loads: each call of the returned function starts a load and returns
 * `isCurrent()`, true until a later load starts. A load applies its answer only while it is
 * current, so a slower, older answer (a live refresh in flight when the operator changed a
 * filter) never replaces a newer one.
 * @returns {() => () => boolean}
 */
export function sequence() {
  let latest = 0;
  return () => {
    const mine = ++latest;
    return () => mine === latest;
  };
}

/**
 * Calls `fn` at most once per `ms` milliseconds, after the last call (trailing), and never
 * while a previous run is still pending.
 * @param {() => Promise<void> | void} fn
 * @param {number} ms
 */
export function debounce(fn, ms) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
    } catch (error) {
      console.error(error);
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(run, ms);
  };
  return schedule;
}
