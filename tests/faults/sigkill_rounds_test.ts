/**
 * Issue 5, "Done when": 20 rounds of 500 jobs across 5 real robots, the orchestrator
 * SIGKILLed at a random moment of each round and started again on the same PostgreSQL
 * schema; after each round every invariant of `audit/job_invariants.ts` holds over the
 * whole log: 0 lost, 0 duplicated terminal states.
 *
 * The moment of the kill is drawn from a seeded RNG (printed; `FAULTS_SEED=<n>` replays
 * it): a point of the round's progress, counted as accepted submissions plus ended jobs
 * (0–1000), so a kill lands during submission as often as while jobs run. Submissions
 * carry an `Idempotency-Key` and are sent again after the restart when their answer was
 * lost, as a client would; a job counts as accepted when the API answered it with a
 * `job_id`. `FAULTS_ROUNDS` and `FAULTS_JOBS` shrink the run while developing.
 */
import assert from "node:assert/strict";
import { checkJobInvariants } from "../../audit/mod.ts";
import {
  API_TOKEN,
  type Child,
  openFaultSite,
  startOrchestratorProcess,
  startRobotFleet,
} from "./_processes.ts";
import { watchLog } from "./_log_watch.ts";

const ROUNDS = Number(Deno.env.get("FAULTS_ROUNDS") ?? 20);
const JOBS = Number(Deno.env.get("FAULTS_JOBS") ?? 500);
const SUBMITTERS = 32;
const WORKFLOW = { metadata: { name: "fault-noop" }, nodes: {}, connections: [] };

/** Mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test({
  name:
    `${ROUNDS} rounds of ${JOBS} jobs on 5 robots, orchestrator SIGKILLed at a random moment: ` +
    "every accepted job ends exactly once",
  async fn() {
    const seed = Number(Deno.env.get("FAULTS_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`fault seed: ${seed} (FAULTS_SEED=${seed} replays the kill moments)`);
    const random = seededRandom(seed);
    const config = { HEARTBEAT_INTERVAL: "2", HEARTBEAT_TIMEOUT: "20", RECONNECT_GRACE: "10" };
    // Each round has its own schema (its own log) on the same port: the robots stay and
    // reconnect to each new orchestrator as they would after any restart.
    let site = await openFaultSite({ config });
    let watch = watchLog(site.store);
    let orchestrator: Child = await startOrchestratorProcess(site);
    let fleet: Child | null = null;
    /** Resolves while the current orchestrator serves; replaced at each kill. */
    let up: Promise<void> = Promise.resolve();
    let total = 0;
    const started = performance.now();
    try {
      fleet = await startRobotFleet(site, { count: 5, maxJobs: 8, prefix: "fault-robot" });

      const submit = async (key: string): Promise<string> => {
        const failures: string[] = [];
        for (let tries = 0; tries < 50; tries++) {
          try {
            const res = await fetch(`${site.url}/api/v1/jobs`, {
              method: "POST",
              headers: {
                authorization: `Bearer ${API_TOKEN}`,
                "content-type": "application/json",
                "idempotency-key": key,
              },
              body: JSON.stringify({ workflow: WORKFLOW }),
            });
            const body = await res.json().catch(() => ({}));
            if ((res.status === 201 || res.status === 200) && typeof body.job_id === "string") {
              return body.job_id;
            }
            failures.push(`${res.status} ${JSON.stringify(body)}`);
          } catch (error) {
            failures.push(String(error)); // the orchestrator died under the request
          }
          await up; // after a kill: wait for the restart before sending again
        }
        throw new Error(`submission ${key} kept failing: ${failures.slice(-3).join("; ")}`);
      };

      for (let round = 1; round <= ROUNDS; round++) {
        const roundStart = performance.now();
        if (round > 1) {
          await orchestrator.kill();
          await watch.close();
          await site.drop();
          site = await openFaultSite({ config, port: site.port });
          watch = watchLog(site.store);
          orchestrator = await startOrchestratorProcess(site);
        }
        const accepted: string[] = [];
        let restartMs = 0;
        const roundIds = new Set<string>();
        const killAt = Math.floor(random() * 2 * JOBS);
        const endedBefore = watch.ended.size;
        const progress = () => roundIds.size + (watch.ended.size - endedBefore);
        let killed: Promise<void> | null = null;
        const maybeKill = () => {
          if (killed || progress() < killAt) return;
          killed = (async () => {
            const old = orchestrator;
            let resolveUp!: () => void;
            up = new Promise((r) => (resolveUp = r));
            const t0 = performance.now();
            await old.kill();
            orchestrator = await startOrchestratorProcess(site);
            restartMs = performance.now() - t0;
            resolveUp();
          })();
        };
        const killer = watch.until(() => {
          maybeKill();
          return killed !== null;
        });
        let next = 0;
        await Promise.all(Array.from({ length: SUBMITTERS }, async () => {
          while (next < JOBS) {
            const key = `${seed}-${round}-${next++}`;
            const jobId = await submit(key);
            roundIds.add(jobId);
            accepted.push(jobId);
            maybeKill();
          }
        }));
        assert.equal(roundIds.size, JOBS, "a job id was answered for two keys");
        const submittedMs = performance.now() - roundStart;
        await killer;
        await killed;
        await watch.until(() => [...roundIds].every((id) => watch.ended.has(id)));
        const report = await checkJobInvariants(site.store, { accepted });
        const s = (ms: number) => (ms / 1000).toFixed(1);
        console.log(
          `round ${round}: killed at progress ${killAt}/${2 * JOBS} (restart ${s(restartMs)} s), ` +
            `submitted in ${s(submittedMs)} s, all ended in ${
              s(performance.now() - roundStart)
            } s; ` +
            `${report.jobs} jobs, ${report.events} events, outcomes ${
              JSON.stringify(report.outcomes)
            }, requeues ${JSON.stringify(Object.fromEntries(watch.requeues))}`,
        );
        total += accepted.length;
        assert.deepEqual(report.violations, [], `seed ${seed}, round ${round}`);
        assert.equal(report.jobs, accepted.length, "a job in the log was never accepted");
        assert.deepEqual(report.outcomes, { "job.completed": accepted.length });
      }
      console.log(
        `${ROUNDS} rounds, ${total} jobs in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    } catch (error) {
      console.error(`orchestrator output:\n${orchestrator.output().slice(-3000)}`);
      throw error;
    } finally {
      await fleet?.kill();
      await orchestrator.kill();
      await watch.close();
      await site.drop();
    }
  },
});
