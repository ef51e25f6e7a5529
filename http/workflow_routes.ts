/**
 * REST routes of the workflow catalogue and its distribution, mounted by the app with
 * `app.route("/", workflowRoutes(orch.workflows))` after its auth middleware.
 *
 * @module
 */
import { Hono } from "hono";
import {
  WorkflowNotFoundError,
  type WorkflowRegistry,
  type WorkflowStatus,
} from "../engine/mod.ts";
import { principal } from "./auth.ts";
import { errorResponse } from "./api_errors.ts";
import { validJson, validParams, validQuery } from "./validation.ts";
import {
  DeployInput,
  UndeployInput,
  WorkflowInput,
  WorkflowListQuery,
  WorkflowVersionParams,
} from "./workflow_schemas.ts";

const BASE = "/api/v1/workflows";

/** The JSON object body of a request, `{}` when the body is empty. */
/**
 * The routes:
 * - `POST /api/v1/workflows` → 201 the workflow (with `content`)
 * - `GET /api/v1/workflows?folder=&status=&tag=&q=` → `{workflows, folders}` (no content;
 *   `folder` includes sub-folders; `folders` lists every folder path in use and their
 *   ancestors)
 * - `GET /api/v1/workflows/:id` → the workflow with the content of its latest version
 * - `PUT /api/v1/workflows/:id` → a new version with the given fields changed
 * - `DELETE /api/v1/workflows/:id` → 204
 * - `GET /api/v1/workflows/:id/versions` → `{workflow_id, versions}`;
 *   `GET …/versions/:version` → that version with its content (404 for a version it does
 *   not have)
 * - `POST …/deploy {robot_ids, version?}`, `POST …/undeploy {robot_ids?}`,
 *   `GET …/deployment` → the deployment
 * @param workflows the orchestrator's {@linkcode WorkflowRegistry}.
 */
export function workflowRoutes(workflows: WorkflowRegistry): Hono {
  const app = new Hono();
  app.onError(errorResponse);
  app.post(
    BASE,
    async (c) =>
      c.json(
        await workflows.create(await validJson(c, WorkflowInput), { org_id: principal(c).org_id }),
        201,
      ),
  );
  app.get(BASE, (c) => {
    const q = validQuery(c, WorkflowListQuery);
    return c.json({
      workflows: workflows.list({
        folder: q.folder,
        status: q.status as WorkflowStatus | undefined,
        tag: q.tag,
        q: q.q,
        org_id: principal(c).org_id,
      }),
      folders: workflows.folders(principal(c).org_id),
    });
  });
  app.get(`${BASE}/:id`, (c) => c.json(workflows.get(c.req.param("id"), { content: true })));
  app.put(
    `${BASE}/:id`,
    async (c) =>
      c.json(await workflows.update(c.req.param("id"), await validJson(c, WorkflowInput))),
  );
  app.delete(`${BASE}/:id`, async (c) => {
    await workflows.remove(c.req.param("id"));
    return c.body(null, 204);
  });
  app.get(`${BASE}/:id/versions`, (c) => {
    const id = c.req.param("id");
    return c.json({ workflow_id: id, versions: workflows.versions(id) });
  });
  app.get(`${BASE}/:id/versions/:version`, (c) => {
    const id = c.req.param("id");
    const count = workflows.versions(id).length; // 404 first
    const { version } = validParams(c, WorkflowVersionParams);
    // A well-formed version the workflow does not have is a resource that is not there.
    if (version > count) {
      return c.json({
        error: {
          code: "not_found",
          field: "version",
          message: `Workflow ${id} has versions 1 to ${count}, not ${version}`,
        },
      }, 404);
    }
    return c.json({ workflow_id: id, ...workflows.version(id, version) });
  });
  app.post(
    `${BASE}/:id/deploy`,
    async (c) => c.json(await workflows.deploy(c.req.param("id"), await validJson(c, DeployInput))),
  );
  app.post(
    `${BASE}/:id/undeploy`,
    async (c) =>
      c.json(
        await workflows.undeploy(
          c.req.param("id"),
          await validJson(c, UndeployInput, { allowEmpty: true }),
        ),
      ),
  );
  app.get(`${BASE}/:id/deployment`, (c) => c.json(workflows.deployment(c.req.param("id"))));
  return app;
}

/**
 * For `POST /api/v1/jobs` (its body already validated): the stored workflow a job names,
 * `workflow_version` or else its published version.
 * `scope`: the caller's org; a workflow of another org is not found.
 * @returns its content and identity (id, name, version as a string).
 * @throws {WorkflowNotFoundError} | {WorkflowNotPublishedError}
 */
export function resolveStoredWorkflow(
  workflows: WorkflowRegistry,
  named: { workflow_id: string; workflow_version?: number },
  scope?: { org: string; orgOf(workflowId: string): string },
): {
  content: Record<string, unknown>;
  identity: { workflow_id: string; workflow_name: string; workflow_version: string };
} {
  if (scope && scope.orgOf(named.workflow_id) !== scope.org) {
    // Another org's workflow is answered as an unknown one.
    throw new WorkflowNotFoundError(named.workflow_id);
  }
  const resolved = workflows.resolve(named.workflow_id, named.workflow_version);
  return {
    content: resolved.content,
    identity: {
      workflow_id: resolved.workflow_id,
      workflow_name: resolved.name,
      workflow_version: String(resolved.version),
    },
  };
}
