/**
 * JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of the API's answers, for the document in
 * `openapi_document.ts`; objects allow extra fields unless said otherwise. Request schemas
 * are not here: they are generated from the routes' zod validators (`validation.ts`).
 *
 * @module
 */

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({
  type: "string",
  ...(description ? { description } : {}),
});
const nullable = (s: Schema): Schema => ({ anyOf: [s, { type: "null" }] });
const instant = (description: string): Schema => ({
  type: "string",
  format: "date-time",
  description,
});
const int = (description?: string): Schema => ({
  type: "integer",
  ...(description ? { description } : {}),
});
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  ...(required.length ? { required } : {}),
});
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** A reference to a component schema. */
export { ref };

const WORKFLOW_STATUS: Schema = { enum: ["draft", "published", "archived"] };

const VERSION_SUMMARY: Schema = obj({
  version: int(),
  status: WORKFLOW_STATUS,
  name: str(),
  saved_at: instant("when this version was saved"),
});

/** The component schemas, by name. */
export const SCHEMAS: Record<string, Schema> = {
  Error: obj({
    error: obj({
      code: str("machine-readable code: invalid_request, not_found, conflict, …"),
      message: str("what was wrong, in a sentence"),
      field: str("the offending field (JSON path) of a 400"),
      node_id: str("the workflow node at fault, when one is"),
      schedule_ids: {
        type: "array",
        items: str(),
        description: "the schedules using a workflow (409 workflow_in_use)",
      },
    }, ["code", "message"]),
  }, ["error"]),
  JobCreated: obj({ job_id: str(), status: str(), retry_of: nullable(str()) }, [
    "job_id",
    "status",
  ]),
  Job: obj({
    job_id: str(),
    workflow_id: nullable(str()),
    workflow_name: nullable(str()),
    workflow_version: nullable(str()),
    status: {
      enum: [
        "pending",
        "queued",
        "dispatched",
        "running",
        "completed",
        "failed",
        "cancelled",
        "timeout",
      ],
    },
    priority: { enum: ["low", "normal", "high", "critical"] },
    variables: { type: "object" },
    robot_id: nullable(str()),
    created_at: nullable(instant("submission")),
    started_at: nullable(instant("robot accepted")),
    completed_at: nullable(instant("end")),
    error: nullable(str()),
    timeout: { type: "number", description: "seconds" },
    attempt: int(),
    retry_of: nullable(str("the finished job this one retries")),
    load_balancing: nullable(str("strategy asked for this job; null: the orchestrator's")),
    queue_reason: nullable(str()),
    result: nullable({ type: "object" }),
  }, ["job_id", "status"]),
  JobList: obj({ jobs: { type: "array", items: ref("Job") }, next_cursor: nullable(str()) }, [
    "jobs",
  ]),
  Event: obj({
    global_position: int(),
    stream_id: str(),
    stream_version: int(),
    event_id: str(),
    type: str(),
    data: { type: "object" },
    metadata: { type: "object" },
    recorded_at: instant("commit time"),
  }),
  EventList: obj({ events: { type: "array", items: ref("Event") }, next_after: int() }),
  Robot: obj({
    robot_id: str(),
    name: str(),
    status: { enum: ["offline", "online", "busy", "paused"] },
    connected: { type: "boolean" },
    last_seen: nullable(instant("last message")),
    current_jobs: { type: "array", items: str() },
    load: { type: "number" },
    capabilities: { type: "array", items: str() },
    tags: { type: "array", items: str() },
    max_concurrent_jobs: int(),
    metrics: { type: "object" },
  }, ["robot_id", "status"]),
  RobotCredential: obj({
    robot_id: str(),
    name: nullable(str()),
    org_id: str("the org of the admin who provisioned it; the robot belongs to it"),
    active: { type: "boolean" },
    issued_at: instant("when the current token was issued"),
    revoked_at: nullable(instant("when it was revoked")),
    token: str("only in the answer that issues it"),
  }, ["robot_id", "active"]),
  Principal: obj({
    org_id: str(),
    role: { enum: ["admin", "operator", "viewer", "auditor", "robot"] },
    token_id: nullable(str("null for the configured ORCHESTRATOR_API_TOKEN")),
    system_admin: { type: "boolean", description: "an admin of org `default`" },
  }, ["org_id", "role"]),
  ApiToken: obj({
    token_id: str(),
    name: nullable(str()),
    org_id: str(),
    role: { enum: ["admin", "operator", "viewer", "auditor", "robot"] },
    active: { type: "boolean" },
    issued_at: instant("when it was issued"),
    revoked_at: nullable(instant("when it was revoked")),
    token: str("only in the answer that issues it"),
  }, ["token_id", "org_id", "role", "active"]),
  ApiTokenList: obj({ tokens: { type: "array", items: ref("ApiToken") } }, ["tokens"]),
  RobotList: obj({ robots: { type: "array", items: ref("Robot") } }, ["robots"]),
  Workflow: obj({
    id: str(),
    workflow_id: str(),
    name: str(),
    description: str(),
    folder: str(),
    version: int("latest version"),
    status: WORKFLOW_STATUS,
    tags: { type: "array", items: str() },
    content: ref("WorkflowContent"),
    published_version: nullable(int()),
    created_at: instant("creation"),
    updated_at: instant("last change"),
    versions: { type: "array", items: VERSION_SUMMARY },
    deployed_robot_ids: { type: "array", items: str() },
  }, ["workflow_id", "name", "folder", "version", "status"]),
  WorkflowList: obj({
    workflows: { type: "array", items: ref("Workflow") },
    folders: { type: "array", items: str() },
  }, ["workflows", "folders"]),
  WorkflowVersions: obj({
    workflow_id: str(),
    versions: { type: "array", items: VERSION_SUMMARY },
  }),
  WorkflowVersion: obj({
    workflow_id: str(),
    version: int(),
    name: str(),
    description: str(),
    status: WORKFLOW_STATUS,
    content: ref("WorkflowContent"),
    tags: { type: "array", items: str() },
    folder: str(),
    saved_at: instant("when saved"),
  }),
  Deployment: obj({
    workflow_id: str(),
    published_version: nullable(int()),
    robots: {
      type: "array",
      items: obj({
        robot_id: str(),
        version: int(),
        deployed_at: instant("deployment"),
        current: { type: "boolean" },
      }),
    },
  }),
  Schedule: obj({
    schedule_id: str(),
    name: nullable(str()),
    workflow: nullable(ref("WorkflowContent")),
    workflow_id: nullable(str()),
    frequency: { enum: ["once", "hourly", "daily", "weekly", "monthly", "cron"] },
    cron_expression: nullable(str()),
    timezone: str("IANA zone"),
    enabled: { type: "boolean" },
    next_run: nullable(instant("next tick")),
    last_run: nullable(instant("last tick")),
    misfire_policy: { enum: ["skip", "run_once", "run_all"] },
    catch_up_window: int("seconds"),
  }),
  ScheduleList: obj({ schedules: { type: "array", items: ref("Schedule") } }),
  NextRuns: obj({ next_runs: { type: "array", items: instant("UTC tick") } }),
  Dashboard: obj({
    total_robots: int(),
    online_robots: int(),
    offline_robots: int(),
    total_jobs_today: int(),
    completed_jobs_today: int(),
    failed_jobs_today: int(),
    pending_jobs: int(),
    running_jobs: int(),
    average_execution_time: { type: "number", description: "seconds" },
    success_rate: { type: "number", description: "percent" },
  }),
  Alert: obj({
    alert_id: str("<kind>-<event id of the trigger>"),
    org_id: str("the org it belongs to: the robot's, the job's, or the org whose figures met it"),
    kind: { enum: ["robot_disconnected", "job_timeout", "high_error_rate", "queue_backlog"] },
    severity: { enum: ["warning", "critical"] },
    status: { enum: ["raised", "acknowledged", "resolved"] },
    subject: { type: "object", description: "{robot_id}, {job_id} or {} (the org)" },
    message: str(),
    trigger: obj({ event_id: str(), stream_id: str(), stream_version: int(), type: str() }),
    evidence: { type: "object", description: "the figures that met the threshold" },
    raised_at: instant("when raised"),
    acknowledged_at: nullable(instant("when acknowledged")),
    acknowledgement_note: nullable(str()),
    resolved_at: nullable(instant("when resolved")),
    resolution: nullable(obj({ reason: str(), evidence: { type: "object" } })),
    deliveries: {
      type: "array",
      items: obj({
        notification: { enum: ["alert.raised", "alert.resolved"] },
        webhook: str("URL without credentials or query"),
        attempts: int(),
        outcome: { enum: ["delivered", "failed", "gave_up", "rejected"] },
        last_status: nullable(int()),
        last_error: nullable(str()),
        last_attempt_at: instant("last attempt"),
        next_attempt_at: nullable(instant("next attempt (outcome failed)")),
      }),
    },
    version: int("version of the alert's stream"),
  }, ["alert_id", "kind", "status", "raised_at"]),
  AlertList: obj({ alerts: { type: "array", items: ref("Alert") } }),
  Health: obj({
    status: { enum: ["ok", "starting", "failed"] },
    position: int(),
    error: str(),
    // Cluster mode only (ORCHESTRATOR_CLUSTER=on): this node and whether it leads.
    cluster: obj({
      node_id: str(),
      leader: { type: "boolean" },
      leader_token: nullable(int()),
    }),
  }),
  Object: { type: "object" },
};
