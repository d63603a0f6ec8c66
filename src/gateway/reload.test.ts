import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startForwardProxy } from "../../test/support/forward-proxy.ts";
import { type InProcessGateway, startInProcessGateway, waitFor } from "../../test/support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../../test/support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, signedHeaders } from "../../test/support/signing.ts";
import { createLogger, silentLogger } from "../log/logger.ts";
import { ActiveConfig } from "./active-config.ts";
import type { CompiledConfig } from "./compile.ts";
import { changedRestartOnlyKeys, createConfigReloader } from "./reload.ts";

const keys = generateTestKeyPair();
let legacyA: RecordingServer;
let legacyB: RecordingServer;

beforeAll(async () => {
  legacyA = await startRecordingServer();
  legacyB = await startRecordingServer();
});
afterAll(async () => {
  await legacyA.close();
  await legacyB.close();
});

function call(gateway: InProcessGateway, route: string): Promise<Response> {
  const text = JSON.stringify(fixturePayload());
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body: text,
    headers: signedHeaders(text, { privateKey: keys.privateKey }),
  });
}

const verification = `verification: { public_key: ${JSON.stringify(keys.whpk)} }`;
function configWith(routes: string, extra = ""): string {
  return `server: { host: 127.0.0.1, port: 0 }\n${verification}\n${extra}\nroutes:\n${routes}`;
}
const routeTo = (name: string, url: string) =>
  `  - name: ${name}\n    target: { type: http, url: "${url}", timeout: 5s }\n`;

/** A reloader for `gateway`; its log lines land in `logs` when given, its results go to `onResult`. */
function reloaderFor(
  gateway: InProcessGateway,
  logs?: Record<string, any>[],
  onResult?: (result: "success" | "failure") => void,
) {
  return createConfigReloader({
    file: gateway.file,
    env: {},
    gateway: gateway.gateway,
    logger: logs ? createLogger({ sink: (line) => logs.push(JSON.parse(line) as any) }) : silentLogger,
    userAgent: "actiongate/test",
    ...(onResult ? { onResult } : {}),
  });
}

describe("config reload", () => {
  test("a good file swaps in: a new route works, a changed target is used, a call in flight finishes on the old config", async () => {
    legacyA.respondWith({ delayMs: 600 });
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    const logs: Record<string, any>[] = [];
    const reloader = reloaderFor(gateway, logs);
    try {
      const before = legacyA.requests.length;
      const inFlight = call(gateway, "erp");
      await new Promise((resolve) => setTimeout(resolve, 150));
      writeFileSync(
        gateway.file,
        configWith(routeTo("erp", `${legacyB.url}/erp-v2`) + routeTo("crm", `${legacyB.url}/crm`)),
      );
      const outcome = await reloader.reload("SIGHUP");
      expect(outcome).toEqual({ kind: "reloaded", routes: ["erp", "crm"], restartOnly: [] });

      // The call that started before the swap ends on the old target, with its connection pool still open.
      const old = await inFlight;
      expect(old.status).toBe(200);
      expect(legacyA.requests.length).toBe(before + 1);

      expect((await call(gateway, "crm")).status).toBe(200);
      expect((await call(gateway, "erp")).status).toBe(200);
      expect(legacyB.requests.map((request) => request.url)).toEqual(expect.arrayContaining(["/crm", "/erp-v2"]));
      expect(legacyA.requests.length).toBe(before + 1);
      expect(logs.find((line) => line.msg === "config reloaded")).toMatchObject({
        level: "info",
        trigger: "SIGHUP",
        routes: ["erp", "crm"],
      });
      expect(await (await fetch(`${gateway.url}/actions/erp`, { method: "POST" })).status).toBe(401);
      const metricsText = await gateway.gateway.metrics.render();
      expect(metricsText).toContain('actiongate_calls_total{route="crm",outcome="delivered"} 1');
    } finally {
      legacyA.respondWith({});
      await gateway.stop();
    }
  });

  test("a broken file is refused with every problem logged, and the old config keeps serving", async () => {
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    const logs: Record<string, any>[] = [];
    const results: string[] = [];
    const reloader = reloaderFor(gateway, logs, (result) => results.push(result));
    try {
      writeFileSync(
        gateway.file,
        configWith(`  - name: erp\n    transform: "{ broken"\n    target: { type: http, url: "not a url" }\n`),
      );
      const outcome = await reloader.reload("SIGHUP");
      expect(outcome.kind).toBe("refused");
      const refused = logs.find((line) => line.msg === "config reload refused; the previous config keeps serving");
      expect(refused).toMatchObject({ level: "error", trigger: "SIGHUP" });
      expect(refused!.problems).toEqual([
        expect.stringMatching(/config\.yaml:6:\d+ routes\[0\] \(erp\)\.transform: JSONata syntax error/),
        expect.stringMatching(
          /config\.yaml:7:\d+ routes\[0\] \(erp\)\.target\.url: must be an absolute http\(s\) URL \(got "not a url"\)$/,
        ),
      ]);
      expect(results).toEqual(["failure"]);
      expect((await call(gateway, "erp")).status).toBe(200);

      // A YAML error is refused the same way.
      writeFileSync(gateway.file, configWith(`  - name: erp\n    target: { type: http, url: "${legacyB.url}" \n`));
      const yamlOutcome = await reloader.reload("SIGHUP");
      expect(yamlOutcome.kind).toBe("refused");
      expect(results).toEqual(["failure", "failure"]);
      expect((await call(gateway, "erp")).status).toBe(200);
      expect(legacyB.requests.some((request) => request.url === "/")).toBe(false);
    } finally {
      await gateway.stop();
    }
  });

  test("restart-only keys keep their old values, with a warning naming them", async () => {
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    const logs: Record<string, any>[] = [];
    const reloader = reloaderFor(gateway, logs);
    try {
      writeFileSync(
        gateway.file,
        `server: { host: 127.0.0.1, port: 1, max_body_size: 1kb }\nadmin: { port: 0 }\n${verification}\nroutes:\n${routeTo("erp", `${legacyA.url}/erp`)}${routeTo("crm", `${legacyA.url}/crm`)}`,
      );
      const outcome = await reloader.reload("SIGHUP");
      expect(outcome).toMatchObject({
        kind: "reloaded",
        restartOnly: ["server.port", "server.max_body_size", "admin"],
      });
      expect(logs.find((line) => line.level === "warn")).toMatchObject({
        keys: ["server.port", "server.max_body_size", "admin"],
      });
      expect(gateway.gateway.config.source.server.max_body_size).toBe(1024 * 1024);
      // Served on the same port, with the old body limit, and the new route.
      expect((await call(gateway, "crm")).status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  test("an async route without the store the running gateway has is refused", async () => {
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    try {
      writeFileSync(
        gateway.file,
        configWith(`${routeTo("erp", `${legacyA.url}/erp`)}    delivery: { mode: async }\n`, "store: { path: ./x.db }"),
      );
      const outcome = await reloaderFor(gateway).reload("SIGHUP");
      expect(outcome.kind === "refused" && outcome.problems).toEqual([
        expect.stringContaining(
          "routes[0].delivery.mode: async delivery needs a store, and adding one needs a restart",
        ),
      ]);
    } finally {
      await gateway.stop();
    }
  });

  test("a file-change event with the same content does not reload", async () => {
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    try {
      const before = gateway.gateway.config;
      expect(await reloaderFor(gateway).reload("watch")).toEqual({ kind: "unchanged" });
      expect(gateway.gateway.config).toBe(before);
    } finally {
      await gateway.stop();
    }
  });

  test("a fetched key carries over: calls keep verifying while the key URL is down after a reload", async () => {
    let keyHits = 0;
    const keyServer = createServer((_, res) => {
      keyHits++;
      res.writeHead(200, { "content-type": "application/json" }).end(keys.keyDocument);
    });
    await new Promise<void>((resolve) => keyServer.listen(0, "127.0.0.1", resolve));
    const keyUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/key`;
    const remote = (routes: string) =>
      `server: { host: 127.0.0.1, port: 0 }\nverification: { public_key_url: "${keyUrl}" }\nroutes:\n${routes}`;
    const gateway = await startInProcessGateway(remote(routeTo("erp", `${legacyA.url}/erp`)));
    try {
      const waitForKey = async () => {
        for (let i = 0; i < 100 && (await call(gateway, "erp")).status === 503; i++)
          await new Promise((resolve) => setTimeout(resolve, 20));
      };
      await waitForKey();
      expect(keyHits).toBeGreaterThan(0);
      await new Promise<void>((resolve) => keyServer.close(() => resolve()));
      keyServer.closeAllConnections();
      writeFileSync(gateway.file, remote(routeTo("erp", `${legacyA.url}/erp`) + routeTo("crm", `${legacyA.url}/crm`)));
      expect((await reloaderFor(gateway).reload("SIGHUP")).kind).toBe("reloaded");
      expect((await call(gateway, "crm")).status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });
});

describe("config reload applies every key that is not restart-only", () => {
  const fresh = (edit: (raw: Record<string, any>) => void = () => {}) => {
    const raw = fixturePayload();
    edit(raw);
    return JSON.stringify(raw);
  };
  const signedCall = (
    gateway: InProcessGateway,
    route: string,
    text: string,
    extraHeaders: Record<string, string> = {},
  ) =>
    fetch(`${gateway.url}/actions/${route}`, {
      method: "POST",
      body: text,
      headers: signedHeaders(text, { privateKey: keys.privateKey, extraHeaders }),
    });

  test("verification: a reload trusts the new key and no longer the old one", async () => {
    const next = generateTestKeyPair();
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    try {
      expect((await call(gateway, "erp")).status).toBe(200);
      writeFileSync(
        gateway.file,
        `server: { host: 127.0.0.1, port: 0 }\nverification: { public_key: ${JSON.stringify(next.whpk)} }\nroutes:\n${routeTo("erp", `${legacyA.url}/erp`)}`,
      );
      expect((await reloaderFor(gateway).reload("SIGHUP")).kind).toBe("reloaded");
      expect((await call(gateway, "erp")).status).toBe(401);
      const text = fresh();
      const signed = await fetch(`${gateway.url}/actions/erp`, {
        method: "POST",
        body: text,
        headers: signedHeaders(text, { privateKey: next.privateKey }),
      });
      expect(signed.status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });

  test("epilot.callback_hosts: after a reload that removes a host, no resume goes there", async () => {
    const epilot = await startRecordingServer({ body: { status: "resumed" } });
    const host = `127.0.0.1:${epilot.port}`;
    const withHosts = (hosts: string[]) =>
      configWith(routeTo("erp", `${legacyA.url}/erp`), `epilot: { callback_hosts: ${JSON.stringify(hosts)} }`);
    const gateway = await startInProcessGateway(withHosts([host]));
    const payload = () =>
      fresh((raw) => {
        raw.data.callback_post_url = `${epilot.url}/v1/automation/public/executions:resume`;
      });
    try {
      expect((await signedCall(gateway, "erp", payload())).status).toBe(200);
      await waitFor(() => epilot.requests.length === 1, 5_000, "the first resume");
      writeFileSync(gateway.file, withHosts(["automation.sls.epilot.io"]));
      expect((await reloaderFor(gateway).reload("SIGHUP")).kind).toBe("reloaded");
      expect((await signedCall(gateway, "erp", payload())).status).toBe(200);
      await waitFor(
        async () => (await gateway.gateway.store.deadLetters.list()).length === 1,
        5_000,
        "the refused resume",
      );
      const [letter] = await gateway.gateway.store.deadLetters.list();
      expect(letter!.reason).toBe(`callback host ${host} is not in epilot.callback_hosts`);
      expect(epilot.requests).toHaveLength(1);
    } finally {
      await gateway.stop();
      await epilot.close();
    }
  });

  test("epilot.proxy: after a reload that adds one, resumes go through it", async () => {
    const epilot = await startRecordingServer({ body: { status: "resumed" } });
    const proxy = await startForwardProxy();
    const host = `127.0.0.1:${epilot.port}`;
    const withProxy = (proxyLine: string) =>
      configWith(routeTo("erp", `${legacyA.url}/erp`), `epilot: { callback_hosts: ["${host}"]${proxyLine} }`);
    const gateway = await startInProcessGateway(withProxy(""));
    const payload = () =>
      fresh((raw) => {
        raw.data.callback_post_url = `${epilot.url}/v1/automation/public/executions:resume`;
      });
    try {
      expect((await signedCall(gateway, "erp", payload())).status).toBe(200);
      await waitFor(() => epilot.requests.length === 1, 5_000, "the first resume, direct");
      expect(proxy.requests).toHaveLength(0);
      writeFileSync(gateway.file, withProxy(`, proxy: "${proxy.url}"`));
      expect((await reloaderFor(gateway).reload("SIGHUP")).kind).toBe("reloaded");
      expect((await signedCall(gateway, "erp", payload())).status).toBe(200);
      await waitFor(() => epilot.requests.length === 2, 5_000, "the second resume");
      expect(proxy.requests.map((request) => [request.method, request.target])).toEqual([
        ["POST", `${epilot.url}/v1/automation/public/executions:resume`],
      ]);
    } finally {
      await gateway.stop();
      await proxy.close();
      await epilot.close();
    }
  });

  test("epilot.entity_api_url: after a reload, write-backs go to the new entity API", async () => {
    const entityA = await startRecordingServer({ body: {} });
    const entityB = await startRecordingServer({ body: {} });
    const token = `e30.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 600 })).toString("base64url")}.sig`;
    const withEntityApi = (url: string) =>
      configWith(
        `${routeTo("erp", `${legacyA.url}/erp`)}    response: { write_back: '{ "erp_status": status }' }\n`,
        `epilot: { entity_api_url: "${url}" }`,
      );
    const gateway = await startInProcessGateway(withEntityApi(entityA.url));
    const payload = () =>
      fresh((raw) => {
        delete raw.data.callback_post_url;
        delete raw.data.resume_token;
      });
    try {
      expect((await signedCall(gateway, "erp", payload(), { "x-epilot-token": token })).status).toBe(200);
      await waitFor(() => entityA.requests.length === 1, 5_000, "the first write-back");
      writeFileSync(gateway.file, withEntityApi(entityB.url));
      expect((await reloaderFor(gateway).reload("SIGHUP")).kind).toBe("reloaded");
      expect((await signedCall(gateway, "erp", payload(), { "x-epilot-token": token })).status).toBe(200);
      await waitFor(() => entityB.requests.length === 1, 5_000, "the write-back to the new entity API");
      expect(entityA.requests).toHaveLength(1);
      expect(entityB.requests[0]).toMatchObject({ method: "PATCH", json: { erp_status: 200 } });
    } finally {
      await gateway.stop();
      await entityA.close();
      await entityB.close();
    }
  });

  test("--watch waits until the file stops changing: a half-written file that parses is never loaded", async () => {
    const gateway = await startInProcessGateway(configWith(routeTo("erp", `${legacyA.url}/erp`)));
    const logs: Record<string, any>[] = [];
    const reloader = createConfigReloader({
      file: gateway.file,
      env: {},
      gateway: gateway.gateway,
      logger: createLogger({ sink: (line) => logs.push(JSON.parse(line) as any) }),
      userAgent: "actiongate/test",
      stableMs: 100,
    });
    try {
      // The first half of the new file is already a valid config (one route of three)...
      writeFileSync(gateway.file, configWith(routeTo("erp", `${legacyA.url}/erp`)).replace("erp", "a"));
      const reloading = reloader.reload("watch");
      // ...and the writer finishes before the file was stable for 100 ms.
      await new Promise((resolve) => setTimeout(resolve, 50));
      writeFileSync(
        gateway.file,
        configWith(
          routeTo("a", `${legacyA.url}/a`) + routeTo("b", `${legacyA.url}/b`) + routeTo("c", `${legacyA.url}/c`),
        ),
      );
      expect(await reloading).toEqual({ kind: "reloaded", routes: ["a", "b", "c"], restartOnly: [] });
      expect(logs.filter((line) => line.msg === "config reloaded")).toHaveLength(1);
    } finally {
      await gateway.stop();
    }
  });
});

describe("changedRestartOnlyKeys", () => {
  test("names leaf keys of server, admin, store and log; routes and verification are not restart-only", () => {
    const base = {
      server: { port: 8080, host: "0.0.0.0" },
      log: { level: "info" },
      routes: [],
      verification: { tolerance: 1 },
    } as never as CompiledConfig["source"];
    const next = {
      ...base,
      server: { port: 8081, host: "0.0.0.0" },
      store: { path: "x.db" },
      routes: [{}],
      verification: { tolerance: 2 },
    } as never as CompiledConfig["source"];
    expect(changedRestartOnlyKeys(base, next)).toEqual(["server.port", "store"]);
    expect(changedRestartOnlyKeys(base, base)).toEqual([]);
  });
});

describe("ActiveConfig", () => {
  function fakeConfig(name: string, closed: string[]): CompiledConfig {
    return {
      source: { verification: { public_key_url: "" } },
      configDir: "/",
      routes: [],
      verification: {
        keySource: { current: () => undefined, refreshAfterFailure: async () => undefined },
        hmacSecrets: [],
        toleranceMs: 1,
      },
      close: async () => void closed.push(name),
    } as never as CompiledConfig;
  }

  test("closes a replaced config only after its last call ended; new calls go to the new one", async () => {
    const closed: string[] = [];
    const release: Array<() => void> = [];
    const active = new ActiveConfig(fakeConfig("old", closed), {
      // Each call waits until the test releases it, then says whether its config was closed under it.
      buildHandler: () => async () => {
        await new Promise<void>((resolve) => release.push(resolve));
        return new Response(closed.includes("old") ? "closed" : "open");
      },
      logger: silentLogger,
    });
    const first = active.fetch(new Request("http://x/"), {});
    const second = active.fetch(new Request("http://x/"), {});
    active.replace(fakeConfig("new", closed));
    await Promise.resolve();
    expect(closed).toEqual([]);
    release[0]!();
    expect(await (await first).text()).toBe("open");
    expect(closed).toEqual([]);
    release[1]!();
    expect(await (await second).text()).toBe("open");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(closed).toEqual(["old"]);
    await active.closeAll();
    expect(closed).toEqual(["old", "new"]);
  });

  test("a replaced config without calls in flight closes at once, and only once", async () => {
    const closed: string[] = [];
    const active = new ActiveConfig(fakeConfig("a", closed), {
      buildHandler: () => () => new Response("ok"),
      logger: silentLogger,
    });
    active.replace(fakeConfig("b", closed));
    active.replace(fakeConfig("c", closed));
    await active.closeAll();
    expect(closed).toEqual(["a", "b", "c"]);
  });
});
