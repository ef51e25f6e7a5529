/**
 * `POST /api/v1/jobs/:id/retry`: runs a finished job again as a new job linked to it.
 * Mounted by the app with `app.route("/", jobRetryRoutes(orch))` after its auth middleware.
 *
 * @module
 */
import { Hono } from "hono";
import { type Orchestrator, retryJob } from "../engine/mod.ts";
import { errorResponse, ValidationError } from "./api_errors.ts";

/**
 * The route: 201 `{job_id, status, retry_of}` (200 with `Idempotent-Replayed: true` when the
 * `Idempotency-Key` was used before for this job), 404 for an unknown job, 409
 * `not_finished` while it has not ended. Answers once every read model shows the new job.
 * @param orch the orchestrator.
 */
export function jobRetryRoutes(orch: Orchestrator): Hono {
  const app = new Hono();
  app.onError(errorResponse);
  app.post("/api/v1/jobs/:id/retry", async (c) => {
    const key = c.req.header("idempotency-key");
    if (key !== undefined && (key.length < 1 || key.length > 255)) {
      throw new ValidationError("Idempotency-Key", "Idempotency-Key must be 1-255 characters");
    }
    const originalId = c.req.param("id");
    const job = await retryJob(orch.core, orch.jobs, originalId, { idempotencyKey: key });
    if (job.position) await orch.settled(job.position);
    if (job.replayed) c.header("Idempotent-Replayed", "true");
    return c.json(
      { job_id: job.job_id, status: job.status, retry_of: job.retry_of },
      job.replayed ? 200 : 201,
    );
  });
  return app;
}
