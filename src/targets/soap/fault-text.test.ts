import { describe, expect, test } from "bun:test";
import { loggableFaultText, safeFaultText } from "./fault-text.ts";

describe("safeFaultText", () => {
  test.each([
    ["Customer C-100017 already exists", "Customer C-100017 already exists"],
    ["Error: database down", "Error: database down"],
    ["java.lang.NullPointerException\n\tat com.acme.Dao.save(Dao.java:42)", "java.lang.NullPointerException"],
    [
      "Login failed for user=sa password=hunter2 at db01.corp.local:1433",
      "Login failed for user=[redacted] password=[redacted] at [host]",
    ],
    [
      "Cannot connect to http://u:pw@sap-prd.internal:8000/sap/bc?x=1 (10.20.30.40:3300)",
      "Cannot connect to [url] ([ip])",
    ],
    ["jdbc:sqlserver://db01:1433;databaseName=crm refused", "[url] refused"],
    ["Host fe80::1 and [2001:db8::7]:443 unreachable at 10:14:03", "Host [ip] and [ip] unreachable at 10:14:03"],
    [
      "Server=sqlprod01;Database=crm;User Id=sa;Password=S3cr3t!;",
      "Server=[host];Database=crm;User Id=[redacted];Password=[redacted];",
    ],
    ["Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def rejected", "Authorization: [redacted] [redacted] rejected"],
    ["connect ECONNREFUSED crm.example.com and localhost:8080", "connect ECONNREFUSED [host] and [host]"],
    ["api_key='k-123' token: abc", "api_key=[redacted] token: [redacted]"],
    // Dotted words that are no host names stay; a three-label lower-case one is taken for a host.
    ["Customer.Name is required; see config.yaml", "Customer.Name is required; see config.yaml"],
    ["order.items.price missing", "[host] missing"],
  ])("%p -> %p", (text, safe) => {
    expect(safeFaultText(text)).toBe(safe);
  });

  test("cut to 200 characters, bounded work for a hostile text", () => {
    expect(safeFaultText("x".repeat(10_000))).toBe(`${"x".repeat(200)}…`);
    const started = performance.now();
    safeFaultText("a.".repeat(500_000));
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe("loggableFaultText", () => {
  test("every line and every host, credentials out, bounded", () => {
    expect(loggableFaultText("Login user=sa password=pw at db01.corp.local:1433\n\tat Dao.java:42")).toBe(
      "Login user=[redacted] password=[redacted] at db01.corp.local:1433\n\tat Dao.java:42",
    );
    expect(loggableFaultText("https://u:secret@host/x")).toBe("https://u:[redacted]@host/x");
    expect(loggableFaultText("y".repeat(10_000))).toHaveLength(4_001);
  });
});
