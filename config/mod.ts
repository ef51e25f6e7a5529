/**
 * Configuration and tokens.
 * @module
 */
export * from "./load_config.ts";
export * from "./tokens.ts";
export * from "./data_dir_lock.ts";
