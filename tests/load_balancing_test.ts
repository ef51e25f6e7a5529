// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * A job's own load-balancing strategy (`load_balancing` in `POST /api/v1/jobs`) overrides the
 * orchestrator's `LOAD_BALANCING`, is recorded in `job.submitted` and kept by a retry; a wrong
 * strategy or an unknown field is refused with 400 naming it. Real server, raw robots, both
 * stores.
 */
import assert from "node:assert/strict";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const node = (id: string) => ({ node_id: id, node_type: "LogNode", config: { message: id } });
const workflow = (name: string) => ({ metadata: { name }, nodes: { a: node("a") } });

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] load_balancing per job overrides LOAD_BALANCING`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store, { loadBalancing: "least_loaded" });
    const a = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
    const b = new RawRobot(o.wsUrl, o.robotToken, "robot-b");
    try {
      await a.register({ max_concurrent_jobs: 2 });
      await b.register({ max_concurrent_jobs: 2 });
      const run = async (robot: RawRobot, body: Record<string, unknown>, finish: boolean) => {
        const job = await o.api("POST", "/api/v1/jobs", body);
        assert.equal(job.status, 201, JSON.stringify(job.body));
        const assignment = await robot.next("job_assignment");
        assert.equal(assignment.payload.job_id, job.body.job_id);
        const lease = assignment.payload.lease_id;
        robot.send("job_accepted", { job_id: job.body.job_id, lease_id: lease }, assignment.id);
        await o.waitForJob(job.body.job_id, ["running"]);
        if (finish) {
          robot.send("job_result", {
            job_id: job.body.job_id,
            lease_id: lease,
            status: "completed",
            execution_time: 1,
          });
          await o.waitForJob(job.body.job_id, ["completed"]);
        }
        return job.body.job_id as string;
      };
      // Both idle: least_loaded takes robot-a (first by id); it runs "report" successfully.
      await run(a, { workflow: workflow("report") }, true);
      // robot-a is now busy with one job, robot-b idle.
      await run(a, { workflow: workflow("other") }, false);
      // least_loaded alone would pick robot-b; affinity prefers robot-a, which ran "report".
      const affine = await run(
        a,
        { workflow: workflow("report"), load_balancing: "affinity" },
        false,
      );
      const view = (await o.api("GET", `/api/v1/jobs/${affine}`)).body;
      assert.equal(view.load_balancing, "affinity");
      const [submitted] = await o.store.readStream(`job-${affine}`);
      assert.equal((submitted.data as any).load_balancing, "affinity");
      // Without an override the orchestrator's strategy applies: robot-b, the least loaded.
      const plain = await run(b, { workflow: workflow("report") }, false);
      assert.equal((await o.api("GET", `/api/v1/jobs/${plain}`)).body.load_balancing, null);

      const wrong = await o.api("POST", "/api/v1/jobs", {
        workflow: workflow("report"),
        load_balancing: "fastest",
      });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error.field, "load_balancing");
      assert.match(wrong.body.error.message, /round_robin, least_loaded, random, affinity/);
      const misspelt = await o.api("POST", "/api/v1/jobs", {
        workflow: workflow("report"),
        priorty: "high",
      });
      assert.equal(misspelt.status, 400);
      assert.equal(misspelt.body.error.field, "priorty");
      // A robot id that registration would refuse could never run: refused here too.
      const noSuchRobot = await o.api("POST", "/api/v1/jobs", {
        workflow: workflow("report"),
        robot_id: "日本語ロボ",
      });
      assert.equal(noSuchRobot.status, 400);
      assert.equal(noSuchRobot.body.error.field, "robot_id");
      assert.equal(o.orchestrator.jobs.list().jobs.length, 4, "refused bodies wrote nothing");
    } finally {
      a.kill();
      b.kill();
      await o.stop();
      await drop();
    }
  });
}
