/**
 * A robot's lifecycle (XState v5): `offline → online ⇄ busy`, `paused` in between.
 *
 * Machine events are the recorded `robot.*` events. The robot's stream also records the
 * jobs it holds (`robot.job_assigned` / `robot.job_released`), written in the same append
 * as the job's own event, so a robot's capacity is decided by its stream version.
 * Heartbeats are not events: liveness is kept in memory on the server's clock, and only
 * its outcome (`robot.disconnected` with reason `heartbeat_timeout`) is recorded.
 *
 * @module
 */
import { assign, setup } from "xstate";

/** Status names, as in the reference's `RobotStatus`. */
export type RobotStatus = "offline" | "online" | "busy" | "paused";

/** Everything the log says about one robot. Times are RFC 3339 strings (UTC). */
export interface RobotContext {
  robot_id: string | null;
  name: string;
  capabilities: string[];
  tags: string[];
  /** At least 1. */
  max_concurrent_jobs: number;
  environment: string | null;
  version: string | null;
  /** Job ids the robot holds a lease for. */
  current_jobs: string[];
  registered_at: string | null;
  last_connected_at: string | null;
  last_disconnected_at: string | null;
  disconnect_reason: string | null;
  jobs_assigned: number;
  /**
   * The orchestrator node holding the robot's connection (`node_id` of the latest
   * `robot.connected`); null on a single node or in logs written before clusters.
   */
  node_id: string | null;
}

/** Data of `robot.registered`. */
export interface RobotRegisteredData {
  robot_id: string;
  name: string;
  capabilities: string[];
  tags: string[];
  max_concurrent_jobs: number;
  environment: string | null;
  version: string | null;
  registered_at: string;
}

/** Recorded robot events, as machine events. */
export type RobotEvent =
  | ({ type: "robot.registered" } & RobotRegisteredData)
  | { type: "robot.connected"; connected_at: string; node_id?: string | null }
  | {
    type: "robot.disconnected";
    disconnected_at: string;
    reason: string;
    node_id?: string | null;
  }
  | { type: "robot.paused"; paused_at: string; reason?: string | null }
  | { type: "robot.resumed"; resumed_at: string }
  | { type: "robot.job_assigned"; job_id: string; lease_id: string }
  | { type: "robot.job_released"; job_id: string; reason: string };

/** Context of a robot with no events yet. */
export function emptyRobotContext(): RobotContext {
  return {
    robot_id: null,
    name: "",
    capabilities: [],
    tags: [],
    max_concurrent_jobs: 1,
    environment: null,
    version: null,
    current_jobs: [],
    registered_at: null,
    last_connected_at: null,
    last_disconnected_at: null,
    disconnect_reason: null,
    jobs_assigned: 0,
    node_id: null,
  };
}

type Ev<T extends RobotEvent["type"]> = Extract<RobotEvent, { type: T }>;

/** The robot machine. Pure: use with `transition()` / `initialTransition()` from xstate. */
export const robotMachine = setup({
  types: {} as { context: RobotContext; events: RobotEvent },
  guards: {
    registered: ({ context }) => context.robot_id !== null,
    hasJobs: ({ context }) => context.current_jobs.length > 0,
    hasRoom: ({ context }) => context.current_jobs.length < context.max_concurrent_jobs,
    holdsJob: ({ context, event }) =>
      context.current_jobs.includes((event as Ev<"robot.job_released">).job_id),
    // A robot that re-registers on another orchestrator node while the log still has it
    // connected (its node died without a word): the new node takes it over.
    movedNode: ({ context, event }) => {
      const nodeId = (event as Ev<"robot.connected">).node_id ?? null;
      return nodeId !== null && nodeId !== context.node_id;
    },
    // Only the node holding the connection (or anyone, when nodes are not recorded) can
    // record its loss: a node that lost a robot to another one cannot take it offline.
    sameNode: ({ context, event }) => {
      const nodeId = (event as Ev<"robot.disconnected">).node_id ?? null;
      return nodeId === null || context.node_id === null || nodeId === context.node_id;
    },
    lastJob: ({ context, event }) =>
      context.current_jobs.length === 1 &&
      context.current_jobs[0] === (event as Ev<"robot.job_released">).job_id,
  },
  actions: {
    register: assign(({ event }) => {
      const { type: _t, ...d } = event as Ev<"robot.registered">;
      return { ...d };
    }),
    assignJob: assign(({ context, event }) => {
      const e = event as Ev<"robot.job_assigned">;
      return {
        current_jobs: [...context.current_jobs, e.job_id],
        jobs_assigned: context.jobs_assigned + 1,
      };
    }),
    releaseJob: assign(({ context, event }) => {
      const e = event as Ev<"robot.job_released">;
      return { current_jobs: context.current_jobs.filter((j) => j !== e.job_id) };
    }),
    connect: assign(({ event }) => ({
      last_connected_at: (event as Ev<"robot.connected">).connected_at,
      disconnect_reason: null,
      node_id: (event as Ev<"robot.connected">).node_id ?? null,
    })),
    disconnect: assign(({ event }) => {
      const e = event as Ev<"robot.disconnected">;
      return { last_disconnected_at: e.disconnected_at, disconnect_reason: e.reason };
    }),
  },
}).createMachine({
  id: "robot",
  initial: "offline",
  context: emptyRobotContext,
  on: {
    "robot.registered": { actions: "register" },
    "robot.job_released": { guard: "holdsJob", actions: "releaseJob" },
    "robot.connected": { guard: "movedNode", actions: "connect" },
  },
  states: {
    offline: {
      on: {
        "robot.connected": [
          { guard: "hasJobs", target: "busy", actions: "connect" },
          { guard: "registered", target: "online", actions: "connect" },
        ],
      },
    },
    online: {
      on: {
        "robot.job_assigned": { guard: "hasRoom", target: "busy", actions: "assignJob" },
        "robot.disconnected": { guard: "sameNode", target: "offline", actions: "disconnect" },
        "robot.paused": { target: "paused" },
      },
    },
    busy: {
      on: {
        "robot.job_assigned": { guard: "hasRoom", actions: "assignJob" },
        "robot.job_released": [
          { guard: "lastJob", target: "online", actions: "releaseJob" },
          { guard: "holdsJob", actions: "releaseJob" },
        ],
        "robot.disconnected": { guard: "sameNode", target: "offline", actions: "disconnect" },
        "robot.paused": { target: "paused" },
      },
    },
    paused: {
      on: {
        "robot.resumed": [
          { guard: "hasJobs", target: "busy" },
          { target: "online" },
        ],
        "robot.disconnected": { guard: "sameNode", target: "offline", actions: "disconnect" },
      },
    },
  },
});
