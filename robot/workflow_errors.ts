/**
 * Errors that end a workflow run. Their `name` becomes `error.type` in the job result.
 *
 * @module
 */

/** A node in a workflow, named by id and type (as in the workflow file). */
export interface NodeRef {
  /** The node's id (`nodes` key / `node_id`). */
  nodeId: string;
  /** The node's type, e.g. `LaunchBrowserNode`. */
  nodeType: string;
}

/** The workflow content is not a CasareRPA workflow the engine can walk. */
export class WorkflowValidationError extends Error {
  /** The offending node, when the problem is in one node. */
  readonly nodeId?: string;

  /**
   * Creates the error.
   *
   * @param message What was wrong and what value was seen.
   * @param options `nodeId` of the offending node and the `cause`, when known.
   */
  constructor(message: string, options: { nodeId?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "WorkflowValidationError";
    this.nodeId = options.nodeId;
  }
}

/**
 * The workflow uses node types this robot does not implement. Raised before any node runs,
 * so a workflow is never half executed because of a missing node type.
 */
export class UnsupportedNodeError extends Error {
  /** Id of the first unsupported node (in the workflow's node order). */
  readonly nodeId: string;
  /** Type of the first unsupported node. */
  readonly nodeType: string;
  /** Every unsupported node, in the workflow's node order. */
  readonly nodes: readonly NodeRef[];

  /**
   * Creates the error; the message lists every unsupported node.
   *
   * @param nodes The unsupported nodes; at least one.
   * @throws {RangeError} When `nodes` is empty.
   */
  constructor(nodes: readonly NodeRef[]) {
    if (nodes.length === 0) throw new RangeError("UnsupportedNodeError needs at least one node");
    const list = nodes.map((n) => `${n.nodeType} (node "${n.nodeId}")`).join(", ");
    super(`Unsupported node type: ${list}; this robot cannot run this workflow`);
    this.name = "UnsupportedNodeError";
    this.nodeId = nodes[0].nodeId;
    this.nodeType = nodes[0].nodeType;
    this.nodes = nodes;
  }
}

/** A loop or the whole run went past its iteration limit (an infinite loop, most likely). */
export class IterationLimitError extends Error {
  /** The node at which the limit was hit. */
  readonly nodeId: string;
  /** The limit that was exceeded (iterations of one loop, or node executions of the run). */
  readonly limit: number;

  /**
   * Creates the error.
   *
   * @param message What limit was hit.
   * @param options The node and the limit.
   */
  constructor(message: string, options: { nodeId: string; limit: number }) {
    super(message);
    this.name = "IterationLimitError";
    this.nodeId = options.nodeId;
    this.limit = options.limit;
  }
}

/** A condition or expression could not be parsed or evaluated. */
export class ExpressionError extends Error {
  /** The expression as written in the workflow. */
  readonly expression: string;

  /**
   * Creates the error.
   *
   * @param message What went wrong.
   * @param options The expression and the underlying `cause`.
   */
  constructor(message: string, options: { expression: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = "ExpressionError";
    this.expression = options.expression;
  }
}

/** The run took longer than its timeout (`settings.timeout` or the job's timeout). */
export class WorkflowTimeoutError extends Error {
  /** The timeout that was exceeded, in seconds. */
  readonly timeoutSeconds: number;

  /**
   * Creates the error.
   *
   * @param timeoutSeconds The timeout that was exceeded, in seconds.
   */
  constructor(timeoutSeconds: number) {
    super(`Workflow exceeded its timeout of ${timeoutSeconds} s`);
    this.name = "WorkflowTimeoutError";
    this.timeoutSeconds = timeoutSeconds;
  }
}

/** The run was stopped through its `AbortSignal` (a `cancel_job` from the orchestrator). */
export class JobCancelledError extends Error {
  /**
   * Creates the error; the message includes the abort reason.
   *
   * @param reason The abort reason, if any.
   */
  constructor(reason?: unknown) {
    const detail = reason instanceof Error ? reason.message : reason ? String(reason) : "";
    super(detail ? `Job was cancelled: ${detail}` : "Job was cancelled");
    this.name = "JobCancelledError";
  }
}
