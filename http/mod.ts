/**
 * HTTP: the API app and the Deno server.
 * @module
 */
export * from "./app.ts";
export * from "./api_errors.ts";
export * from "./job_requests.ts";
export * from "./server.ts";
