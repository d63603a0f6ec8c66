import { describe, expect, test } from "bun:test";
import { bypassesProxy, proxySchema } from "./proxy.ts";

describe("proxySchema", () => {
  test("a URL, or a mapping with credentials and no_proxy; the password becomes a Proxy-Authorization value", () => {
    expect(proxySchema.parse("http://proxy.internal:3128")).toEqual({ url: "http://proxy.internal:3128", noProxy: [] });
    expect(
      proxySchema.parse({
        url: "http://proxy.internal:3128",
        username: "gw",
        password: "s3:cret",
        no_proxy: [".Corp"],
      }),
    ).toEqual({
      url: "http://proxy.internal:3128",
      username: "gw",
      authorization: `Basic ${Buffer.from("gw:s3:cret").toString("base64")}`,
      noProxy: [".corp"],
    });
    // Credentials in the URL are percent-decoded and taken out of the URL the client is given.
    expect(proxySchema.parse("http://gw:p%40ss@proxy:8080")).toEqual({
      url: "http://proxy:8080",
      username: "gw",
      authorization: `Basic ${Buffer.from("gw:p@ss").toString("base64")}`,
      noProxy: [],
    });
  });

  test.each([
    ["https://proxy:3128", "must be an http:// proxy"],
    ["socks5://proxy:1080", "must be an http:// URL"],
    ["proxy:3128", "must be an http:// URL"],
    ["http://proxy:3128/path", "no path or query"],
    [{ url: "http://gw:pw@proxy:3128", username: "gw", password: "pw" }, "not both"],
    [{ url: "http://proxy:3128", password: "pw" }, "needs username"],
    [{ url: "http://proxy:3128", no_proxy: ["http://erp"] }, "must be a host name"],
  ])("%j is refused: %s", (value, message) => {
    const result = proxySchema.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain(message);
  });
});

describe("bypassesProxy", () => {
  const bypasses = (url: string, noProxy: string[]) => bypassesProxy(new URL(url), noProxy);

  test("a host name covers itself and its subdomains, never a look-alike", () => {
    expect(bypasses("http://erp.internal/x", ["erp.internal"])).toBe(true);
    expect(bypasses("http://API.erp.internal/x", ["erp.internal"])).toBe(true);
    expect(bypasses("http://evil-erp.internal/x", ["erp.internal"])).toBe(false);
    expect(bypasses("http://erp.internal.evil.example/x", ["erp.internal"])).toBe(false);
    expect(bypasses("http://a.corp.local/x", [".corp.local"])).toBe(true);
    expect(bypasses("http://a.corp.local/x", ["*.corp.local"])).toBe(true);
    expect(bypasses("https://login.example.com/t", ["erp.internal"])).toBe(false);
    expect(bypasses("https://anything/t", ["*"])).toBe(true);
    expect(bypasses("https://anything/t", [])).toBe(false);
  });

  test("host:port matches that port only (the scheme's default when the URL names none)", () => {
    expect(bypasses("http://erp:8080/x", ["erp:8080"])).toBe(true);
    expect(bypasses("http://erp:8081/x", ["erp:8080"])).toBe(false);
    expect(bypasses("https://erp/x", ["erp:443"])).toBe(true);
    expect(bypasses("http://erp/x", ["erp:443"])).toBe(false);
  });

  test("IPv4 addresses and networks, IPv6 addresses", () => {
    expect(bypasses("http://10.1.2.3/x", ["10.0.0.0/8"])).toBe(true);
    expect(bypasses("http://11.1.2.3/x", ["10.0.0.0/8"])).toBe(false);
    expect(bypasses("http://192.168.1.7/x", ["192.168.1.7"])).toBe(true);
    expect(bypasses("http://192.168.1.70/x", ["192.168.1.7"])).toBe(false);
    expect(bypasses("http://[::1]:9000/x", ["::1"])).toBe(true);
    expect(bypasses("http://[0:0:0:0:0:0:0:1]/x", ["[::1]"])).toBe(true);
    expect(bypasses("http://erp/x", ["10.0.0.0/8"])).toBe(false);
  });
});
