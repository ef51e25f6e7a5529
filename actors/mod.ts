/**
 * Actors: the job and robot state machines and the pure fold that rebuilds them.
 * @module
 */
export * from "./job_types.ts";
export * from "./job_machine.ts";
export * from "./robot_machine.ts";
export * from "./fold.ts";
export * from "./event_schemas.ts";
export * from "./compiled_machine.ts";
export * from "./machine_version.ts";
