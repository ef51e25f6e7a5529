/**
 * Alerts: robot disconnected, job timeout, high error rate and queue backlog, each raised
 * and resolved as events in `alert-<id>` streams, delivered to webhooks with retries, and
 * shown by the API (`http/alert_routes.ts`).
 *
 * @module
 */
export * from "./alert_config.ts";
export * from "./alert_state.ts";
export * from "./alert_conditions.ts";
export * from "./alert_monitor.ts";
export * from "./webhook_delivery.ts";
