/**
 * Mapping of error classes to HTTP statuses and JSON bodies (one `onError`, after Hono).
 *
 * Every error body is `{error: {code, message, field?}}`.
 *
 * @module
 */
import type { Context } from "hono";
import { InvalidTransitionError } from "../actors/mod.ts";
import {
  IdempotencyKeyReusedError,
  JobAlreadyFinishedError,
  JobNotFinishedError,
  JobNotFoundError,
} from "../engine/mod.ts";
import { workflowErrorResponse } from "./workflow_errors.ts";
import { isStoreUnavailable, WrongExpectedVersionError } from "../events/mod.ts";

/** A request that is wrong in one named field: answered 400. */
export class ValidationError extends Error {
  override name = "ValidationError";
  /** The offending field, as a JSON path (`priority`, `workflow.nodes`). */
  readonly field: string;
  /** The workflow node at fault, when one is (answered as `node_id`). */
  readonly nodeId: string | null;
  constructor(field: string, message: string, nodeId: string | null = null) {
    super(message);
    this.field = field;
    this.nodeId = nodeId;
  }
}

/**
 * A request body sent with a `Content-Type` the API does not read as JSON: answered 415
 * `unsupported_media_type` naming the header as `field` (`validation.ts`, `readJson`).
 */
export class UnsupportedMediaTypeError extends Error {
  override name = "UnsupportedMediaTypeError";
  /** The header at fault (`Content-Type`). */
  readonly field = "Content-Type";
  /** The header as the request sent it. */
  readonly contentType: string;
  constructor(contentType: string) {
    super(
      `Content-Type must be application/json (or a +json type, charset utf-8 if any), got ${
        JSON.stringify(contentType)
      }`,
    );
    this.contentType = contentType;
  }
}

/**
 * Answers an error thrown by a route. Unknown errors are 500 without details; their message
 * and stack are logged by the request log (`request_log.ts`), not here.
 */
export function errorResponse(error: Error, c: Context): Response {
  if (error instanceof ValidationError) {
    return c.json({
      error: {
        code: "invalid_request",
        field: error.field,
        message: error.message,
        ...(error.nodeId === null ? {} : { node_id: error.nodeId }),
      },
    }, 400);
  }
  if (error instanceof UnsupportedMediaTypeError) {
    return c.json({
      error: { code: "unsupported_media_type", field: error.field, message: error.message },
    }, 415);
  }
  if (error instanceof IdempotencyKeyReusedError) {
    return c.json({
      error: { code: "idempotency_key_reused", field: "Idempotency-Key", message: error.message },
    }, 422);
  }
  if (error instanceof JobNotFoundError) {
    return c.json({ error: { code: "not_found", message: error.message } }, 404);
  }
  if (error instanceof JobAlreadyFinishedError) {
    return c.json(
      { error: { code: "already_finished", message: error.message }, job: error.job },
      409,
    );
  }
  if (error instanceof JobNotFinishedError) {
    return c.json({ error: { code: "not_finished", message: error.message } }, 409);
  }
  const workflowError = workflowErrorResponse(error, c);
  if (workflowError) return workflowError;
  if (error instanceof InvalidTransitionError || error instanceof WrongExpectedVersionError) {
    return c.json({ error: { code: "conflict", message: error.message } }, 409);
  }
  if (isStoreUnavailable(error)) {
    c.header("Retry-After", "1");
    return c.json({
      error: { code: "store_unavailable", message: "The event store cannot be reached; retry" },
    }, 503);
  }
  // Not written here: the request log's record of this answer carries the error's message
  // and stack (`request_log.ts`, Hono's `c.error`), one line in the configured format.
  return c.json({ error: { code: "internal_error", message: "Internal server error" } }, 500);
}

/**
 * Reads the request body as a JSON object. Routes validate bodies with `validJson`
 * (`validation.ts`) and their zod schema instead; kept for callers outside `http/`.
 * @param options `allowEmpty`: an empty body reads as `{}` (for optional bodies).
 * @throws {ValidationError} naming `body` when it is not JSON or not a JSON object.
 */
export async function readJsonObject(
  c: Context,
  options: { allowEmpty?: boolean } = {},
): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (options.allowEmpty && text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ValidationError("body", `Body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("body", "Body must be a JSON object");
  }
  return body as Record<string, unknown>;
}
