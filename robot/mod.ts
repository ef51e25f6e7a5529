/**
 * The reference robot: a CasareRPA workflow engine and the WebSocket client that runs it
 * for the orchestrator (`shared/reference/robot-protocol.md`).
 *
 * @example Run one workflow
 * ```ts
 * import { executeWorkflow } from "./mod.ts";
 * const result = await executeWorkflow({
 *   nodes: { hi: { node_id: "hi", node_type: "LogNode", config: { message: "hi" } } },
 * });
 * console.log(result.status); // completed
 * ```
 *
 * @module
 */

export { executeWorkflow } from "./workflow_engine.ts";
export type { ExecuteWorkflowOptions, WorkflowExecutor } from "./workflow_engine.ts";
export type {
  JobError,
  JobProgress,
  JobResultLike,
  JobStatus,
  LogEntry,
  LogLevel,
  NodeResult,
} from "./job_result.ts";
export {
  ExpressionError,
  IterationLimitError,
  JobCancelledError,
  UnsupportedNodeError,
  WorkflowTimeoutError,
  WorkflowValidationError,
} from "./workflow_errors.ts";
export type { NodeRef } from "./workflow_errors.ts";
export { type Clock, systemClock } from "./clock.ts";
export { createDefaultNodeRegistry, SUPPORTED_NODE_TYPES } from "./nodes/default_node_registry.ts";
export type {
  Arrival,
  NodeContext,
  NodeHandler,
  NodeOutcome,
  NodeRegistry,
} from "./nodes/node_handler.ts";
export { RobotClient, type RobotClientState } from "./robot_client.ts";
export { TypedEventTarget } from "./typed_event_target.ts";
export {
  consoleWarnLogger,
  RobotClientClosedError,
  RobotRegistrationError,
} from "./robot_client_options.ts";
export type {
  ClosedInfo,
  JobInfo,
  RegisteredInfo,
  RobotClientEventMap,
  RobotClientOptions,
  RobotLogger,
  RobotMetrics,
  WebSocketConstructor,
} from "./robot_client_options.ts";
export { createEnvelope, InvalidMessageError, parseEnvelope } from "./protocol_messages.ts";
export type {
  CancelJobPayload,
  CreateEnvelopeOptions,
  Envelope,
  ErrorPayload,
  HeartbeatPayload,
  JobAssignmentPayload,
  JobLogPayload,
  JobProgressPayload,
  JobResultPayload,
  RegisterPayload,
  RobotRegisteredPayload,
  RobotStatus,
} from "./protocol_messages.ts";
export { reconnectDelay } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
