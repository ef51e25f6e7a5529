/**
 * What running each workflow in `tests/workflows/` (copies of the CasareRPA samples in
 * `../shared/workflows/`, kept in the repository so a clone alone runs the tests) must give, derived by reading the
 * files. Shared by the engine's unit test (`robot/workflow_engine_test.ts`) and the
 * end-to-end suite, so it holds data only.
 *
 * Unsupported node types (desktop automation, browser, file system) fail the run before
 * any node executes: `errorIncludes` names the first such node's type and id.
 *
 * @module
 */

/** Folder of the CasareRPA sample workflows (copied from `../shared/workflows/`). */
export const WORKFLOWS_DIR: URL = new URL("./workflows/", import.meta.url);

/** Expected outcome of running one workflow with no job variables. */
export interface WorkflowExpectation {
  /** File name inside {@linkcode WORKFLOWS_DIR}. */
  file: string;
  /** Final `job_result.status`. */
  status: "completed" | "failed";
  /** Exact log messages the run must contain, in this order (other entries may interleave). */
  logIncludes: string[];
  /** Exact log messages the run must not contain. */
  logExcludes?: string[];
  /** Substrings of `job_result.error.message` (for failed runs). */
  errorIncludes?: string[];
  /** Expected `job_result.error.type` (for failed runs). */
  errorType?: string;
  /** Expected `job_result.error.node_id` (for failed runs). */
  errorNodeId?: string;
}

/** One row per file of {@linkcode WORKFLOWS_DIR}. */
export const workflowExpectations: readonly WorkflowExpectation[] = [
  {
    file: "desktop_notepad.json",
    status: "failed",
    logIncludes: [],
    errorIncludes: ["LaunchApplicationNode", "launch_notepad"],
    errorType: "UnsupportedNodeError",
    errorNodeId: "launch_notepad",
  },
  {
    file: "node_tests_control_flow.json",
    status: "completed",
    logIncludes: [
      "Value is greater than 50",
      "Item: A",
      "Item: B",
      "Item: C",
      "Counter: 1",
      "Counter: 2",
      "Counter: 3",
      "Selected: Option B",
      "All control flow tests passed!",
    ],
    logExcludes: [
      "Value is NOT greater than 50",
      "Counter: 4",
      "Selected: Option A",
      "Selected: Option C",
      "Selected: Default",
    ],
  },
  {
    file: "stress_task_1.json",
    status: "completed",
    logIncludes: ["The total sum is: 15"],
  },
  {
    file: "stress_task_2.json",
    status: "completed",
    logIncludes: ["Hello, my name is Alice and I am 30 years old"],
  },
  {
    file: "stress_task_3.json",
    status: "completed",
    logIncludes: ["The final result is: 40"],
  },
  {
    file: "stress_task_4.json",
    status: "failed",
    logIncludes: [],
    logExcludes: ["File does not exist"],
    errorIncludes: ["FileSystemSuperNode", "check_file_exists"],
    errorType: "UnsupportedNodeError",
    errorNodeId: "check_file_exists",
  },
  {
    file: "stress_task_5.json",
    status: "failed",
    logIncludes: [],
    errorIncludes: ["LaunchBrowserNode", "launch_browser"],
    errorType: "UnsupportedNodeError",
    errorNodeId: "launch_browser",
  },
  {
    file: "stress_task_6.json",
    status: "completed",
    logIncludes: ["Found number greater than 20: 25", "Found number greater than 20: 40"],
    logExcludes: ["Found number greater than 20: 10", "Found number greater than 20: 5"],
  },
  {
    file: "stress_task_7.json",
    status: "failed",
    logIncludes: [],
    errorIncludes: ["FileSystemSuperNode", "write_power_file"],
    errorType: "UnsupportedNodeError",
    errorNodeId: "write_power_file",
  },
  {
    file: "stress_task_8.json",
    status: "completed",
    logIncludes: [
      "Current counter value: 0",
      "Current counter value: 1",
      "Current counter value: 2",
      "Current counter value: 3",
    ],
    logExcludes: ["Current counter value: 4"],
  },
  {
    file: "stress_task_9.json",
    status: "completed",
    logIncludes: ['Dictionary content: {"status":"ok","code":200}'],
  },
  {
    file: "stress_task_10.json",
    status: "completed",
    logIncludes: ["The final value is: 15"],
  },
];
