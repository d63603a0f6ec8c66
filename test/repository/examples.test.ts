import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../../src/config/load.ts";
import { deliverSync } from "../../src/delivery/sync.ts";
import { type CompiledConfig, compileConfig, describeTrustedKeys } from "../../src/gateway/compile.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { parsedCallOf } from "../support/calls.ts";
import { waitFor } from "../support/gateway.ts";
import { closedPort, type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { REPO_DIR } from "../support/signing.ts";

/**
 * The example configs in examples/ are valid as they stand, the README names each with the command
 * that checks it, and they do what their comments say (run here against local stand-ins).
 */
const EXAMPLES = join(REPO_DIR, "examples");
/** Each example is a folder holding its config.yaml and its route tests. */
const exampleConfigs = readdirSync(EXAMPLES, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(EXAMPLES, entry.name, "config.yaml")))
  .map((entry) => `${entry.name}/config.yaml`);

/** The `${NAME}` references without a default in a file: what its user must set. */
function requiredVariables(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((match) => match[1]!))];
}

const opened: CompiledConfig[] = [];
const servers: RecordingServer[] = [];
afterAll(async () => {
  await Promise.all(opened.map((compiled) => compiled.close()));
  await Promise.all(servers.map((server) => server.close()));
});

function compileExample(name: string, env: Record<string, string>): CompiledConfig {
  const compiled = compileConfig(loadConfigFile(join(EXAMPLES, name), env), {
    logger: silentLogger,
    userAgent: "t",
  });
  opened.push(compiled);
  return compiled;
}

describe("examples/", () => {
  test("there are an HTTP, a SOAP-from-WSDL and an async example", () => {
    expect(exampleConfigs.sort()).toEqual([
      "async-route/config.yaml",
      "http-route/config.yaml",
      "soap-route/config.yaml",
    ]);
  });

  test.each(exampleConfigs)(
    "%s is valid with the variables it names, trusts epilot's keys, and the README checks it",
    (name) => {
      const text = readFileSync(join(EXAMPLES, name), "utf8");
      const variables = requiredVariables(text);
      expect(variables.length).toBeGreaterThan(0);
      const env = Object.fromEntries(variables.map((variable) => [variable, "test-value"]));
      const compiled = compileExample(name, env);
      expect(compiled.routes).toHaveLength(1);
      expect(compiled.verification.trusted.trustsEpilot).toBe(true);
      expect(describeTrustedKeys(compiled.verification.trusted)).not.toContain("not epilot's key");
      // The check command in the file's header and in the README sets exactly what it needs.
      const command = `${variables.map((variable) => `${variable}=`).join("")}`;
      expect(command.length).toBeGreaterThan(0);
      const readme = readFileSync(join(REPO_DIR, "README.md"), "utf8");
      const line = readme.split("\n").find((candidate) => candidate.includes(`--config examples/${name}`));
      expect(line).toBeDefined();
      for (const variable of variables) expect(line).toContain(`${variable}=`);
      expect(text).toContain(`npx actiongate validate --config examples/${name}`);
    },
  );

  test("each example refuses to load without its secrets: no silent default", () => {
    for (const name of exampleConfigs) {
      expect(() => loadConfigFile(join(EXAMPLES, name), {})).toThrow(/environment variable \w+ is not set/);
    }
  });
});

describe("examples/soap-route against a SOAP service on this machine", () => {
  const fault = (inner: string) => ({
    status: 500,
    headers: { "content-type": "text/xml; charset=utf-8" },
    body: `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>${inner}</soap:Fault></soap:Body></soap:Envelope>`,
  });

  test("a Conflict fault is shown in the CRM's words; any other fault gets the default reason, never an empty one", async () => {
    const crm = await startRecordingServer(
      fault(
        "<faultcode>soap:Client</faultcode><faultstring>Customer C-100017 already exists</faultstring><detail><Conflict><Message>duplicate of CRM-7</Message></Conflict></detail>",
      ),
    );
    servers.push(crm);
    const compiled = compileExample("soap-route/config.yaml", {
      CRM_URL: crm.url,
      CRM_USER: "gateway",
      CRM_PASSWORD: "pw",
    });
    const route = compiled.routes[0]!;

    const conflict = await deliverSync(await parsedCallOf(), route, { logger: silentLogger });
    expect(conflict.status).toBe(502);
    expect((conflict.body as any).error_output.error_reason).toBe("CRM refused the customer: duplicate of CRM-7");
    expect(crm.requests[0]!.url).toBe("/crm/soap11");
    expect(crm.requests[0]!.body).toContain("<tns:CustomerNumber>C-100017</tns:CustomerNumber>");

    crm.respondWith(fault("<faultcode>soap:Server</faultcode><faultstring>database unavailable</faultstring>"));
    const other = await deliverSync(await parsedCallOf(), route, { logger: silentLogger });
    expect((other.body as any).error_output.error_reason).toBe(
      "The target of route crm-customer failed: SOAP fault Server: database unavailable",
    );
  });
});

describe("examples/fake-erp.mjs", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill("SIGTERM");
  });

  test("answers like the ERP the examples expect and prints each call, without the token", async () => {
    const port = await closedPort();
    let out = "";
    child = spawn(process.env.NODE ?? "node", [join(EXAMPLES, "fake-erp.mjs")], {
      env: { PATH: process.env.PATH ?? "", ERP_PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.stdout!.on("data", (chunk) => (out += chunk));
    await waitFor(() => out.includes("listening"), 5_000, "the fake ERP");
    const answer = await fetch(`http://127.0.0.1:${port}/api/contracts/2026-0042`, {
      method: "POST",
      headers: { authorization: "Bearer s3cret-token", "content-type": "application/json" },
      body: JSON.stringify({ contract: "2026-0042" }),
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ id: "E-1", success: true });
    await waitFor(() => out.includes("fake ERP: POST"), 2_000, "the printed call");
    expect(out).toContain('fake ERP: POST /api/contracts/2026-0042 authorization=Bearer {"contract":"2026-0042"}\n');
    expect(out).not.toContain("s3cret-token");
  });
});
