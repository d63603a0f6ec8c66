import { describe, expect, test } from "bun:test";
import { isCallbackAllowed } from "./callback-hosts.ts";

const EPILOT = "https://automation.sls.epilot.io/v1/automation/public/executions:resume";

describe("isCallbackAllowed", () => {
  test("the fixture's callback_post_url passes the default list", () => {
    const result = isCallbackAllowed(EPILOT, ["automation.sls.epilot.io"]);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.url.href).toBe(EPILOT);
  });

  test("hosts compare case-insensitively", () => {
    expect(isCallbackAllowed("https://Automation.SLS.epilot.io/x", ["automation.sls.epilot.io"]).ok).toBe(true);
    expect(isCallbackAllowed("https://automation.sls.epilot.io/x", ["AUTOMATION.sls.epilot.io"]).ok).toBe(true);
  });

  test("an entry without a port allows the default port only; host:port matches exactly", () => {
    expect(isCallbackAllowed("https://automation.sls.epilot.io:443/x", ["automation.sls.epilot.io"]).ok).toBe(true);
    expect(isCallbackAllowed("https://automation.sls.epilot.io:8443/x", ["automation.sls.epilot.io"])).toEqual({
      ok: false,
      reason: "callback host automation.sls.epilot.io:8443 is not in epilot.callback_hosts",
    });
    expect(isCallbackAllowed("https://automation.sls.epilot.io:8443/x", ["automation.sls.epilot.io:8443"]).ok).toBe(
      true,
    );
    expect(isCallbackAllowed("https://automation.sls.epilot.io/x", ["automation.sls.epilot.io:8443"]).ok).toBe(false);
    expect(isCallbackAllowed("https://automation.sls.epilot.io/x", ["automation.sls.epilot.io:443"]).ok).toBe(true);
    expect(isCallbackAllowed("http://127.0.0.1:9000/x", ["127.0.0.1"]).ok).toBe(false);
    expect(isCallbackAllowed("http://127.0.0.1:9000/x", ["127.0.0.1:9000"]).ok).toBe(true);
  });

  test("other hosts, look-alikes and user-info tricks are refused", () => {
    const allowed = ["automation.sls.epilot.io"];
    expect(isCallbackAllowed("https://evil.example/resume", allowed)).toEqual({
      ok: false,
      reason: "callback host evil.example is not in epilot.callback_hosts",
    });
    expect(isCallbackAllowed("https://automation.sls.epilot.io.evil.example/x", allowed).ok).toBe(false);
    expect(isCallbackAllowed("https://x.automation.sls.epilot.io/x", allowed).ok).toBe(false);
    expect(isCallbackAllowed("https://automation.sls.epilot.io@evil.example/x", allowed).ok).toBe(false);
    expect(isCallbackAllowed("https://user:pw@automation.sls.epilot.io/x", allowed)).toEqual({
      ok: false,
      reason: "callback URL must not carry user info",
    });
  });

  test("https is required except on loopback hosts", () => {
    expect(isCallbackAllowed("http://automation.sls.epilot.io/x", ["automation.sls.epilot.io"])).toEqual({
      ok: false,
      reason: "callback URL must use https (http only for loopback hosts), not for automation.sls.epilot.io",
    });
    expect(isCallbackAllowed("http://127.0.0.1:8080/x", ["127.0.0.1:8080"]).ok).toBe(true);
    expect(isCallbackAllowed("http://127.10.0.3:8080/x", ["127.10.0.3:8080"]).ok).toBe(true);
    expect(isCallbackAllowed("http://localhost:8080/x", ["LOCALHOST:8080"]).ok).toBe(true);
    expect(isCallbackAllowed("http://[::1]:8080/x", ["[::1]:8080"]).ok).toBe(true);
    expect(isCallbackAllowed("http://[0:0:0:0:0:0:0:1]/x", ["::1"]).ok).toBe(true);
    expect(isCallbackAllowed("http://10.0.0.5:8080/x", ["10.0.0.5:8080"]).ok).toBe(false);
  });

  test("URLs that are not http(s), or not URLs, are refused; bad entries match nothing", () => {
    expect(isCallbackAllowed("not a url", ["automation.sls.epilot.io"])).toEqual({
      ok: false,
      reason: "callback URL is not a valid absolute URL",
    });
    expect(isCallbackAllowed("ftp://automation.sls.epilot.io/x", ["automation.sls.epilot.io"])).toEqual({
      ok: false,
      reason: "callback URL must use https",
    });
    expect(isCallbackAllowed(EPILOT, [])).toMatchObject({ ok: false });
    expect(
      isCallbackAllowed(EPILOT, [
        "automation.sls.epilot.io/v1",
        "https://automation.sls.epilot.io",
        "automation.sls.epilot.io:99999",
        "",
      ]).ok,
    ).toBe(false);
  });

  test("a refusal names the host, never the path or query", () => {
    const result = isCallbackAllowed("https://evil.example/resume?token=secret-value", ["automation.sls.epilot.io"]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).not.toContain("secret-value");
  });
});
