/**
 * Robot selection, after the reference's `JobDispatcher` / `RobotPool` and its
 * load-balancing strategies. Pure: randomness and the round-robin cursor are passed in.
 *
 * @module
 */

/** The reference's `LoadBalancingStrategy`. */
export type LoadBalancingStrategy = "round_robin" | "least_loaded" | "random" | "affinity";

/** Strategy names accepted in configuration. */
export const STRATEGIES: readonly LoadBalancingStrategy[] = [
  "round_robin",
  "least_loaded",
  "random",
  "affinity",
];

/** A robot that could take a job now. */
export interface Candidate {
  robot_id: string;
  /** The robot's org (jobs go to robots of their own org only). @default "default" */
  org_id?: string;
  /** Jobs it holds. */
  running: number;
  max_concurrent_jobs: number;
  capabilities: readonly string[];
  tags: readonly string[];
}

/** What a job asks of its robot. */
export interface JobNeeds {
  requested_robot_id: string | null;
  required_capabilities: readonly string[];
  /** Robots that already rejected this attempt. */
  rejected_by: readonly string[];
}

/** Load = running jobs / max concurrent jobs (0 idle … 1 full). */
export function load(c: Candidate): number {
  return c.running / c.max_concurrent_jobs;
}

/** Why a robot cannot take a job, or null when it can. */
export function ineligibility(c: Candidate, job: JobNeeds): string | null {
  if (c.running >= c.max_concurrent_jobs) return "at capacity";
  if (job.requested_robot_id && job.requested_robot_id !== c.robot_id) return "not requested";
  if (job.rejected_by.includes(c.robot_id)) return "rejected this job";
  const missing = job.required_capabilities.filter((cap) => !c.capabilities.includes(cap));
  if (missing.length) return `lacks capabilities ${missing.join(", ")}`;
  return null;
}

/** Options of {@linkcode selectRobot}. */
export interface SelectOptions {
  strategy: LoadBalancingStrategy;
  /** Number in [0, 1) for `random`. @default Math.random() */
  random?: number;
  /** Round-robin cursor: the robot id chosen last time. */
  lastChosen?: string | null;
  /** For `affinity`: the robot that last ran this workflow successfully. */
  preferred?: string | null;
  /**
   * Robots the job's workflow is deployed on (the reference's WorkflowDistributor): when
   * any of them is a candidate, the strategy chooses among those only.
   */
  holding?: ReadonlySet<string>;
}

/**
 * Picks a robot among eligible candidates (sorted by robot id for determinism), or null.
 * `affinity` prefers `preferred` and falls back to `least_loaded`.
 */
export function selectRobot<C extends Candidate = Candidate>(
  candidates: readonly C[],
  options: SelectOptions,
): C | null {
  if (candidates.length === 0) return null;
  const holders = options.holding?.size
    ? candidates.filter((c) => options.holding!.has(c.robot_id))
    : [];
  const sorted = [...(holders.length ? holders : candidates)].sort((
    a,
    b,
  ) => (a.robot_id < b.robot_id ? -1 : 1));
  switch (options.strategy) {
    case "random":
      return sorted[Math.floor((options.random ?? Math.random()) * sorted.length)];
    case "round_robin": {
      const next = sorted.find((c) => options.lastChosen && c.robot_id > options.lastChosen);
      return next ?? sorted[0];
    }
    case "affinity": {
      const preferred = sorted.find((c) => c.robot_id === options.preferred);
      if (preferred) return preferred;
      return leastLoaded(sorted);
    }
    default:
      return leastLoaded(sorted);
  }
}

function leastLoaded<C extends Candidate>(sorted: readonly C[]): C {
  let best = sorted[0];
  for (const c of sorted) {
    if (load(c) < load(best) || (load(c) === load(best) && c.running < best.running)) best = c;
  }
  return best;
}
