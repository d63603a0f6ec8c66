import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadConfigFile } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { ConfigError, type ConfigProblem } from "../kit/config-errors.ts";
import { parseHmacSecret } from "../verify/keys.ts";
import { parseSigningKey, signWebhook } from "../verify/sign.ts";
import type { SendArguments } from "./args.ts";
import { reportConfigError } from "./report-config-error.ts";

/** Where `send` writes; replaceable in tests. */
export interface SendOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processOutput: SendOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** How long `send` waits for the gateway's answer (a sync route waits for its target). */
const ANSWER_TIMEOUT_MS = 120_000;

/**
 * `actiongate send`: signs a payload file the way epilot does (fresh `msg_` id, the current
 * timestamp, v1a with `--key` and/or v1 with `--secret`) and posts it to the running gateway's
 * `/actions/<route>`. Prints the request line, the answer's status and body. Resolves with 0 on a
 * 2xx answer, 1 on any other answer, an unreachable gateway or a broken config, 2 on unusable
 * arguments (a key that is not a key, a payload file that cannot be read).
 *
 * @example
 * await sendCommand({ route: "erp-contract", payloadFile: "payload.json", key: "whsk_..." }, "config.yaml", process.env);
 */
export async function sendCommand(
  args: SendArguments,
  configFile: string,
  env: Readonly<Record<string, string | undefined>>,
  output: SendOutput = processOutput,
): Promise<number> {
  let body: Buffer;
  try {
    body = readFileSync(args.payloadFile);
  } catch (error) {
    output.stderr(
      `actiongate: cannot read the payload file ${args.payloadFile} (${(error as { code?: string }).code ?? "error"})\n`,
    );
    return 2;
  }
  let signing: { privateKey?: KeyObject; hmacSecret?: string };
  try {
    signing = {
      ...(args.key ? { privateKey: parseSigningKey(readKeyArgument(args.key)) } : {}),
      ...(args.secret ? { hmacSecret: checkedSecret(args.secret) } : {}),
    };
  } catch (error) {
    output.stderr(`actiongate: ${(error as Error).message}\n`);
    return 2;
  }

  let base = args.url;
  if (base === undefined) {
    // Only the listener's address is needed, but the whole config is checked so that a typo shows here too.
    const loaded = reportConfigError(() => loadForSend(configFile, env));
    if (!loaded) return 1;
    const routes = loaded.config.routes.map((route) => route.name);
    if (!routes.includes(args.route)) {
      output.stderr(`actiongate: ${configFile} has no route "${args.route}" (routes: ${routes.join(", ")})\n`);
      return 1;
    }
    const derived = gatewayUrlFromConfig(loaded.config);
    if (!derived.ok) {
      output.stderr(`actiongate: ${derived.reason}\n`);
      return 1;
    }
    base = derived.url;
  }

  const url = `${base.replace(/\/+$/, "")}/actions/${encodeURIComponent(args.route)}`;
  const headers = signWebhook(body, signing);
  const schemes = [signing.privateKey ? "v1a" : undefined, signing.hmacSecret ? "v1" : undefined]
    .filter(Boolean)
    .join(" + ");
  output.stdout(`POST ${url} (webhook-id ${headers["webhook-id"]}, signed ${schemes})\n`);
  let answer: Response;
  try {
    answer = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
  } catch (error) {
    output.stderr(
      `actiongate: no answer from ${url}: ${describeFetchError(error)}. Is "actiongate serve" running there?\n`,
    );
    return 1;
  }
  const text = await answer.text();
  output.stdout(`${answer.status} ${answer.statusText}\n${prettyJson(text)}\n`);
  return answer.ok ? 0 : 1;
}

/**
 * The config as `send` needs it. `send` runs beside the gateway, often in another terminal: the
 * variables the routes read (ERP_TOKEN) are the gateway's business, so when those are all that is
 * missing the config is read again with stand-ins for them. Variables of `server`, which gives the
 * address, must still be set, and every other problem is reported.
 */
function loadForSend(configFile: string, env: Readonly<Record<string, string | undefined>>) {
  try {
    return loadConfigFile(configFile, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const routeVariable = (problem: ConfigProblem) => problem.variable !== undefined && problem.path[0] !== "server";
    const others = error.problems.filter((problem) => !routeVariable(problem));
    if (others.length > 0) throw new ConfigError(error.file, others);
    const standIns = Object.fromEntries(error.problems.map((problem) => [problem.variable!, "unset-for-send"]));
    return loadConfigFile(configFile, { ...env, ...standIns });
  }
}

/**
 * The base URL of the gateway a config describes: `server.host` (0.0.0.0 and :: mean this machine)
 * and `server.port`, https when `server.tls` is set.
 *
 * @example
 * gatewayUrlFromConfig(config); // { ok: true, url: "http://127.0.0.1:8080" }
 */
export function gatewayUrlFromConfig(
  config: Pick<GatewayConfig, "server">,
): { ok: true; url: string } | { ok: false; reason: string } {
  const { host, port, tls } = config.server;
  if (port === 0)
    return {
      ok: false,
      reason: "server.port is 0 (the gateway picks a free port when it starts): pass --url with the port it logged",
    };
  const reachable =
    host === "0.0.0.0"
      ? "127.0.0.1"
      : host === "::" || host === "[::]"
        ? "[::1]"
        : host.includes(":") && !host.startsWith("[")
          ? `[${host}]`
          : host;
  return { ok: true, url: `${tls ? "https" : "http"}://${reachable}:${port}` };
}

/** `--key` is the key itself (whsk_ or PEM) or the name of a file holding it. */
function readKeyArgument(value: string): string {
  const trimmed = value.trim();
  if (trimmed.startsWith("whsk_") || trimmed.startsWith("-----BEGIN")) return trimmed;
  if (trimmed.startsWith("whpk_"))
    throw new Error("--key needs the secret key (whsk_...), not the public key (whpk_...)");
  try {
    return readFileSync(value, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new Error(`--key is neither a whsk_ key nor a readable file (${value}: ${code ?? "error"})`);
  }
}

function checkedSecret(secret: string): string {
  parseHmacSecret(secret);
  return secret;
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  if (code === "ECONNREFUSED" || code === "ConnectionRefused") return "connection refused";
  if ((error as Error).name === "TimeoutError") return `no answer within ${ANSWER_TIMEOUT_MS / 1000}s`;
  return (error as Error).message;
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
