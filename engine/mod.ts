/**
 * The engine: commands, dispatch, robot connections, wired by {@linkcode Orchestrator}.
 * @module
 */
export * from "./clock.ts";
export * from "./job_commands.ts";
export * from "./job_dispatcher.ts";
export * from "./orchestrator.ts";
export * from "./orchestrator_engine.ts";
export * from "./protocol.ts";
export * from "./robot_pool.ts";
export * from "./robot_sessions.ts";
export * from "./read_models.ts";
export * from "./replay_log.ts";
export * from "./retry_policy.ts";
export * from "./actor_snapshots.ts";
export * from "./workflow_registry.ts";
export * from "./workflow_state.ts";
export * from "./workflow_validation.ts";
export * from "./job_retry.ts";
export * from "./fleet_metrics.ts";
export * from "./robot_tokens.ts";
export * from "./org_index.ts";
export * from "./api_tokens.ts";
export * from "./workflow_errors.ts";
export * from "./workflow_views.ts";
export * from "./leader_election.ts";
export * from "./graceful_shutdown.ts";
export * from "./rate_limiter.ts";
export * from "./logger.ts";
export * from "./cluster.ts";
export * from "./node_registry.ts";
export { ROBOT_ID_PATTERN } from "./robot_messages.ts";
export * from "./startup_checkpoint.ts";
