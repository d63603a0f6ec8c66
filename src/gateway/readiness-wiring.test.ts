import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { type InProcessGateway, startInProcessGateway, tempDir, waitFor } from "../../test/support/gateway.ts";
import { openSqliteStore } from "../store/sqlite-store.ts";

/**
 * /readyz of a running gateway names the outbox events whose route the config no longer has (a
 * route removed while events waited), and stays ready: the other routes serve.
 */
let gateway: InProcessGateway | undefined;
afterEach(async () => {
  await gateway?.stop();
  gateway = undefined;
});

test("events of a route the config does not have: /readyz lists them per route and stays ready", async () => {
  const path = join(tempDir({}), "store.db");
  const store = openSqliteStore({ path, synchronous: "full", replayWindowMs: 60_000 });
  for (const id of ["orphan-1", "orphan-2", "orphan-3"])
    await store.outbox.add({ id, route: "gone", stage: "deliver", data: "{}", createdAt: Date.now() });
  await store.close();

  gateway = await startInProcessGateway(`
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
verification: { secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] }
store: { path: ${JSON.stringify(path)} }
routes:
  - name: erp
    target: { type: http, url: "http://127.0.0.1:9/erp" }
`);
  const ready = async () => {
    const response = await fetch(`${gateway!.adminUrl}/readyz`);
    return { status: response.status, outbox: ((await response.json()) as any).checks.outbox };
  };
  await waitFor(async () => (await ready()).outbox !== undefined, 4_000, "/readyz to list the waiting events");
  const answer = await ready();
  expect(answer).toEqual({ status: 200, outbox: { ok: true, waiting_for_unknown_routes: { gone: 3 } } });
  // Never buried: they wait for the route or the operator.
  expect(await gateway.gateway.store.deadLetters.list()).toEqual([]);
});
