/**
 * Request schemas (zod) of workflow content and of the workflow catalogue's routes. The
 * routes validate with them and the OpenAPI document is generated from them
 * (`validation.ts`). The content's graph rules (node ids, dangling connections, limits, a
 * start node) are `engine/workflow_validation.ts`'s, called as a refinement.
 *
 * @module
 */
import { z } from "zod";
import {
  InvalidWorkflowError,
  MAX_WORKFLOW_CONNECTIONS,
  MAX_WORKFLOW_NODES,
  validateWorkflowContent,
} from "../engine/mod.ts";
import { HERE, must, REQUEST_SCHEMAS, strictObject } from "./validation.ts";

const object = () => z.record(z.string(), z.unknown());

/**
 * CasareRPA workflow content: `{metadata?, nodes, connections?, variables?, settings?}`;
 * other top-level fields are kept (the file format grows). Nodes and connections are
 * checked by `validateWorkflowContent` (`engine/workflow_validation.ts`).
 */
export const WorkflowContent = z.looseObject({
  metadata: z.looseObject({
    name: z.string().optional(),
    description: z.string().optional(),
    version: z.string().optional(),
    tags: z.array(z.string()).optional(),
  }).optional(),
  nodes: z.record(
    z.string(),
    z.looseObject({
      node_id: z.string().optional().meta({ description: "equals the node's key" }),
      node_type: z.string().meta({ description: "non-empty" }),
      config: object().optional(),
    }),
  ).meta({
    description: `node_id → node; at most ${MAX_WORKFLOW_NODES} nodes`,
  }),
  connections: z.array(z.looseObject({
    source_node: z.string(),
    source_port: z.string(),
    target_node: z.string(),
    target_port: z.string(),
  })).optional().meta({
    description: `at most ${MAX_WORKFLOW_CONNECTIONS}; each names existing nodes`,
  }),
  variables: object().optional(),
  settings: z.looseObject({
    stop_on_error: z.boolean().optional(),
    timeout: z.number().optional().meta({ description: "seconds" }),
    retry_count: z.int().optional(),
  }).optional(),
}, {
  error: (iss) => iss.code === "invalid_type" ? "must be a CasareRPA workflow object" : undefined,
}).superRefine((content, ctx) => {
  try {
    validateWorkflowContent(content, HERE);
  } catch (error) {
    if (!(error instanceof InvalidWorkflowError)) throw error;
    ctx.addIssue({
      code: "custom",
      message: error.message,
      params: { field: error.field, ...(error.nodeId === null ? {} : { node_id: error.nodeId }) },
    });
  }
}).register(REQUEST_SCHEMAS, { id: "WorkflowContent" });

const STATUS = z.enum(
  ["draft", "published", "archived"],
  must("status", "draft, published or archived"),
);

/** Body of `POST /api/v1/workflows` and `PUT /api/v1/workflows/:id`. */
export const WorkflowInput = strictObject({
  workflow_id: z.string(must("workflow_id", "a string")).optional().meta({
    description: "letters, digits, _ . -; default a UUID (create only)",
  }),
  name: z.string(must("name", "a string")).optional().meta({
    description: "default: content.metadata.name",
  }),
  description: z.string(must("description", "a string")).optional(),
  status: STATUS.optional(),
  content: WorkflowContent.optional().meta({ description: "required on create" }),
  // One message for the whole list (`tags`, not `tags[0]`), as the catalogue names it.
  tags: z.array(z.unknown(), must("tags", "an array of strings")).refine(
    (tags) => tags.every((t) => typeof t === "string"),
    must("tags", "an array of strings"),
  ).optional().meta({ items: { type: "string" } }),
  folder: z.string(must("folder", "a path such as /finance/invoices")).optional().meta({
    description: "path such as /finance/invoices; default /",
  }),
  expected_version: z.int().min(1).optional().meta({
    description: "update only: the version the change is based on",
  }),
}, "a workflow").register(REQUEST_SCHEMAS, { id: "WorkflowInput" });

/** Body of `POST /api/v1/workflows/:id/deploy`. */
export const DeployInput = strictObject({
  robot_ids: z.array(z.string(), must("robot_ids", "a non-empty array of robot ids")).min(
    1,
    must("robot_ids", "a non-empty array of robot ids"),
  ),
  version: z.int().min(1).optional().meta({ description: "default: the published version" }),
}, "a deployment").register(REQUEST_SCHEMAS, { id: "DeployInput" });

/** Body of `POST /api/v1/workflows/:id/undeploy` (optional). */
export const UndeployInput = strictObject({
  robot_ids: z.array(z.string(), must("robot_ids", "an array of robot ids")).optional().meta({
    description: "default: every robot",
  }),
}, "an undeployment").register(REQUEST_SCHEMAS, { id: "UndeployInput" });

/** Query of `GET /api/v1/workflows`. */
export const WorkflowListQuery = z.object({
  folder: z.string().optional().meta({ description: "folder path; includes sub-folders" }),
  status: STATUS.optional(),
  tag: z.string().optional().meta({ description: "a tag" }),
  q: z.string().optional().meta({ description: "substring of the name" }),
});

/** Path of `GET /api/v1/workflows/:id/versions/:version`. */
export const WorkflowVersionParams = z.object({
  id: z.string(),
  version: z.coerce.number(must("version", "a positive integer")).int(
    must("version", "a positive integer"),
  ).min(1, must("version", "a positive integer")).max(
    999_999_999,
    must("version", "a positive integer"),
  ),
});
