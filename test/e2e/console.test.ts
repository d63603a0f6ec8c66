import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type GatewayProcess, spawnGateway, tempDir, waitFor } from "../support/gateway.ts";
import { type RecordingServer, startRecordingServer } from "../support/recording-server.ts";
import { fixturePayload, generateTestKeyPair, REPO_DIR, signedHeaders, uniqueWebhookId } from "../support/signing.ts";

/**
 * The console in a real browser: Debian's headless Chromium driven by playwright-core (which never
 * downloads a browser), against the compiled binary with a SQLite store. A legacy system refuses an
 * async call, the operator opens the console with the token, sees the dead letter with what the
 * target said, presses Replay, and the legacy system receives the event. The run keeps a screenshot
 * of the console (docs/console.png, for the README and docs/operations.md; see SCREENSHOT).
 *
 * Chromium comes from Debian's package (`.ci/run` installs it). Without it this suite fails on CI
 * (CI is set) and is skipped with the reason elsewhere, never silently passed.
 */
const CHROMIUM = process.env.ACTIONGATE_CHROMIUM ?? "/usr/bin/chromium";
const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing && process.env.CI) {
  throw new Error(
    `${CHROMIUM} is missing: CI must install Debian's chromium (.ci/run does) for the console's browser tests`,
  );
}
if (chromiumMissing) {
  console.warn(`console browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
}

const TOKEN = "console-token-0123456789abcdef";
/**
 * docs/console.png is made by this test: with ACTIONGATE_UPDATE_SCREENSHOT=1 it is written there (commit
 * it), otherwise to a temp folder, so that a test run leaves the work tree as it found it.
 */
const SCREENSHOT = process.env.ACTIONGATE_UPDATE_SCREENSHOT
  ? join(REPO_DIR, "docs", "console.png")
  : join(tmpdir(), `actiongate-console-${process.pid}.png`);
const keys = generateTestKeyPair();
let legacy: RecordingServer;
let gateway: GatewayProcess;
let admin: string;
let browser: Browser;
let deadId: string;

async function signedCall(route: string, id = uniqueWebhookId()): Promise<Response> {
  const payload = fixturePayload();
  delete payload.data.callback_post_url;
  delete payload.data.resume_token;
  const body = JSON.stringify(payload);
  return fetch(`${gateway.url}/actions/${route}`, {
    method: "POST",
    body,
    headers: signedHeaders(body, { privateKey: keys.privateKey, id }),
  });
}

async function api(path: string): Promise<Response> {
  return fetch(`${admin}/api/${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
}

async function newPage(): Promise<Page> {
  // A fresh context per test: its own sessionStorage, nothing carried over from another test.
  const context = await browser.newContext({
    viewport: { width: 1360, height: 900 },
    locale: "en-GB",
    timezoneId: "UTC",
    colorScheme: "light",
  });
  return context.newPage();
}

/** The dead letters' table (its caption names it). */
const deadLetters = (page: Page) => page.getByRole("table", { name: "Dead letters, newest first" });

describe.skipIf(chromiumMissing)("the console in headless Chromium (binary, SQLite)", () => {
  beforeAll(async () => {
    legacy = await startRecordingServer((request) =>
      request.url.startsWith("/erp")
        ? { status: 400, body: { error: "contract number unknown", contract: "2026-0042" } }
        : request.url.startsWith("/billing")
          ? { status: 503, body: "maintenance window until 04:00" }
          : { status: 200, body: { ok: true } },
    );
    const cwd = tempDir({
      "config.yaml": `
server: { host: 127.0.0.1, port: 0, shutdown_timeout: 2s }
admin: { host: 127.0.0.1, port: 0, token: "${TOKEN}" }
verification: { public_key: ${JSON.stringify(keys.whpk)} }
store: { path: ./data/store.db }
routes:
  - name: erp-contract
    target: { type: http, url: "${legacy.url}/erp/contracts/{{ data.entity.contract_number }}", timeout: 2s }
    delivery: { mode: async, max_attempts: 3, backoff: { initial: 10ms, max: 10ms } }
  - name: billing
    target: { type: http, url: "${legacy.url}/billing", timeout: 2s }
    delivery: { mode: async, max_attempts: 10, backoff: { initial: 1h, max: 1h } }
  - name: crm-customer
    target: { type: http, url: "${legacy.url}/crm", timeout: 2s }
`,
    });
    gateway = await spawnGateway(["serve", "--config", "config.yaml"], { cwd });
    const listening = gateway.logs().find((line) => line.msg === "listening");
    admin = `http://127.0.0.1:${listening?.admin_port}`;

    deadId = uniqueWebhookId();
    expect((await signedCall("erp-contract", deadId)).status).toBe(202);
    expect((await signedCall("billing")).status).toBe(202);
    for (let n = 0; n < 3; n++) expect((await signedCall("crm-customer")).status).toBe(200);
    await waitFor(async () => (await api(`dead-letters/${deadId}`)).status === 200, 10_000, "the dead letter");
    await waitFor(
      async () => ((await (await api("outbox?route=billing")).json()) as any).events[0]?.attempts === 1,
      10_000,
      "a billing event waiting for its next attempt",
    );

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // As the machine needs it: no sandbox (root), no GPU, and nothing that reaches outside. The
      // switches alone still let Chromium look up Google's autofill, accounts and update hosts (seen
      // with strace), so every name but the gateway's loopback address resolves to nothing: no DNS
      // query leaves the machine. playwright-core gives each browser a fresh --user-data-dir.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await legacy?.close();
  });

  test("without a token the page asks for one", async () => {
    const page = await newPage();
    await page.goto(`${admin}/`);
    const input = page.getByRole("textbox", { name: "Admin token" });
    await input.waitFor({ state: "visible" });
    expect(await page.getByRole("button", { name: "Open the console" }).isVisible()).toBe(true);
    expect(await page.getByRole("heading", { name: /Dead letters/ }).isVisible()).toBe(false);
    await page.context().close();
  });

  test("a wrong token shows an error, not a blank page, and asks again", async () => {
    const page = await newPage();
    await page.goto(`${admin}/#token=wrong-token-0123456789`);
    const alert = page.getByRole("alert");
    await alert.waitFor({ state: "visible" });
    expect(await alert.textContent()).toContain("The admin API refused the token (401)");
    expect(await page.getByRole("textbox", { name: "Admin token" }).isVisible()).toBe(true);
    // The token left the address bar at once (it never went to the server: a fragment is not sent).
    expect(new URL(page.url()).hash).toBe("");
    await page.context().close();
  });

  test("with the token: the dead letter shows what the target said; Replay sends it to the legacy system", async () => {
    const page = await newPage();
    await page.goto(`${admin}/#token=${TOKEN}`);
    const row = deadLetters(page).getByRole("row").filter({ hasText: deadId });
    await row.waitFor({ state: "visible" });
    expect(new URL(page.url()).hash).toBe("");
    expect(await row.textContent()).toContain("target answered HTTP 400");
    expect(await page.evaluate(() => sessionStorage.getItem("actiongate.admin-token"))).toBe(TOKEN);
    expect(await page.evaluate(() => document.cookie)).toBe("");

    // The attempt history: the target's status, the resolved URL and its answer.
    await row.getByRole("button", { name: `Details of ${deadId}` }).click();
    const details = page.getByRole("dialog", { name: "Dead letter" });
    await details.waitFor({ state: "visible" });
    const history = await details.textContent();
    expect(history).toContain(`${legacy.url}/erp/contracts/2026-0042`);
    expect(history).toContain('{"error":"contract number unknown","contract":"2026-0042"}');
    await details.getByRole("button", { name: "Close" }).click();

    await page
      .getByRole("table", { name: /^Events waiting/ })
      .getByRole("row")
      .filter({ hasText: "billing" })
      .waitFor();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);

    legacy.respondWith({ status: 200, body: { ok: true } });
    const before = legacy.requests.length;
    await row.getByRole("button", { name: `Replay ${deadId}` }).click();
    await page.getByText(`Replayed ${deadId}: back in the outbox, due now.`).waitFor();
    await waitFor(
      () => legacy.requests.slice(before).some((request) => request.headers["idempotency-key"] === deadId),
      10_000,
      "the replayed event at the legacy system",
    );
    expect(legacy.requests.at(-1)?.url).toBe("/erp/contracts/2026-0042");
    // The row goes at the next refresh; the dead letter is gone from the store at once.
    expect((await api(`dead-letters/${deadId}`)).status).toBe(404);
    await deadLetters(page)
      .getByRole("row")
      .filter({ hasText: deadId })
      .waitFor({ state: "detached", timeout: 10_000 });
    await page.context().close();
  }, 30_000);

  test("purge asks for confirmation; Cancel keeps the dead letter", async () => {
    legacy.respondWith((request) =>
      request.url.startsWith("/erp") ? { status: 400, body: { error: "no" } } : { status: 200, body: {} },
    );
    const id = uniqueWebhookId();
    await signedCall("erp-contract", id);
    await waitFor(async () => (await api(`dead-letters/${id}`)).status === 200, 10_000, "the dead letter");
    const page = await newPage();
    await page.goto(`${admin}/#token=${TOKEN}`);
    const row = deadLetters(page).getByRole("row").filter({ hasText: id });
    await row.getByRole("button", { name: `Purge ${id}` }).click();
    const confirm = page.getByRole("dialog", { name: "Are you sure?" });
    await confirm.waitFor({ state: "visible" });
    await confirm.getByRole("button", { name: "Cancel" }).click();
    expect((await api(`dead-letters/${id}`)).status).toBe(200);
    await row.getByRole("button", { name: `Purge ${id}` }).click();
    await confirm.getByRole("button", { name: "Purge" }).click();
    await page.getByText(`Purged ${id}.`).waitFor();
    expect((await api(`dead-letters/${id}`)).status).toBe(404);
    await page.context().close();
  }, 30_000);
});
