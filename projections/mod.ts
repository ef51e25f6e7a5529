/**
 * Projections: read models built only from the event log.
 * @module
 */
export * from "./queue_projection.ts";
export * from "./dashboard_projection.ts";
