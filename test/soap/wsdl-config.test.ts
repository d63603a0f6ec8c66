import { describe, expect, test } from "bun:test";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";
import { compileConfig } from "../../src/gateway/compile.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { runBinary, tempDir } from "../support/gateway.ts";
import { generateTestKeyPair } from "../support/signing.ts";

/**
 * WSDL problems as `validate` and `serve` report them: a config error at the route's
 * `target.wsdl` (or the key to set) with file, line and column, the rest of the config still
 * checked; never "unexpected failure".
 */

const keys = generateTestKeyPair();
const CORPUS = join(import.meta.dir, "wsdl-corpus");

/** A folder holding the corpus (relative paths as an operator writes them) and `config.yaml`. */
function configIn(routes: string): { dir: string; file: string; yaml: string } {
  const dir = tempDir();
  cpSync(CORPUS, join(dir, "wsdl"), { recursive: true });
  const yaml = `verification:\n  public_key: "${keys.whpk}"\nroutes:\n${routes}`;
  return { dir, file: join(dir, "config.yaml"), yaml };
}

function problems(routes: string): string[] {
  const { file, yaml } = configIn(routes);
  try {
    const compiled = compileConfig(loadConfigText(file, yaml, {}), { logger: silentLogger, userAgent: "test" });
    void compiled.close();
    return [];
  } catch (error) {
    return (error as Error).message.split("\n").map((line) => line.slice(file.length + 1));
  }
}

const route = (name: string, target: string) =>
  `  - name: ${name}\n    target:\n      type: soap\n${target.replace(/^/gm, "      ")}\n`;

describe("WSDL problems are config errors at the route's keys", () => {
  test("every problem is reported with its line, each route checked: split WSDL fine, the others named", () => {
    expect(
      problems(
        route("split", "wsdl: ./wsdl/cxf-split/CustomerService.wsdl\noperation: createCustomer") +
          route("remote", "wsdl: ./wsdl/remote-import.wsdl\noperation: GetCustomer") +
          route("no-porttype", "wsdl: ./wsdl/binding-operation-not-in-porttype.wsdl\noperation: DeleteCustomer") +
          route("encoded", "wsdl: ./wsdl/rpc-encoded.wsdl\noperation: createInvoice") +
          route("onvif", "wsdl: ./wsdl/onvif/devicemgmt.wsdl\noperation: GetDeviceInformation") +
          route("bad-url", "url: not a url\noperation: X\nnamespace: urn:x"),
      ),
    ).toEqual([
      "12:13 routes[1] (remote).target.wsdl: ./wsdl/remote-import.wsdl: wsdl:import of http://crm.example.com/ws/CustomerService?wsdl=CustomerService.wsdl: actiongate reads local files only and never downloads one; save it next to the WSDL and point the import at the file",
      `17:13 routes[2] (no-porttype).target.wsdl: ./wsdl/binding-operation-not-in-porttype.wsdl: operation "DeleteCustomer" has no body element: the binding's operation "DeleteCustomer" is not in portType Customers; set namespace to send <DeleteCustomer> in it, or envelope_template`,
      expect.stringMatching(
        /^23:18 routes\[3\] \(encoded\)\.target\.operation: operation "createInvoice" is rpc\/encoded in \.\/wsdl\/rpc-encoded\.wsdl .*send it with envelope_template/,
      ),
      "26:7 routes[4] (onvif).target.url: is required: ./wsdl/onvif/devicemgmt.wsdl has no address for GetDeviceInformation (binding DeviceBinding is in no wsdl:service port)",
      '32:12 routes[5] (bad-url).target.url: must be an absolute http(s) URL (got "not a url")',
    ]);
  });

  test("keys set in the config fill in what the WSDL lacks", () => {
    expect(
      problems(
        route(
          "no-porttype",
          "wsdl: ./wsdl/binding-operation-not-in-porttype.wsdl\noperation: DeleteCustomer\nnamespace: urn:example:crm",
        ) +
          route(
            "onvif",
            "wsdl: ./wsdl/onvif/devicemgmt.wsdl\noperation: GetDeviceInformation\nurl: http://10.0.0.7/onvif/device_service",
          ) +
          route("remote-schema", "wsdl: ./wsdl/remote-schema.wsdl\noperation: ReadMeter\nelement_form: qualified"),
      ),
    ).toEqual([]);
  });

  test("a WSDL that is not well-formed, or holds a DOCTYPE, names the file and line", () => {
    expect(problems(route("doctype", "wsdl: ./wsdl/doctype-inside.wsdl\noperation: X\nurl: http://x/"))).toEqual([
      "7:13 routes[0] (doctype).target.wsdl: ./wsdl/doctype-inside.wsdl: a DOCTYPE is not allowed",
    ]);
  });

  test("the compiled binary: validate reads a CXF split WSDL and the no-service ONVIF WSDL", async () => {
    const { dir, yaml } = configIn(
      route("split", "wsdl: ./wsdl/cxf-split/CustomerService.wsdl\noperation: getCustomer") +
        route(
          "onvif",
          "wsdl: ./wsdl/onvif/devicemgmt.wsdl\noperation: SetHostname\nurl: http://10.0.0.7/onvif/device_service",
        ),
    );
    const broken = `${yaml}${route("remote", "wsdl: ./wsdl/remote-import.wsdl\noperation: GetCustomer")}`;
    writeFileSync(join(dir, "config.yaml"), yaml);
    writeFileSync(join(dir, "broken.yaml"), broken);
    const valid = await runBinary(["validate", "--config", "config.yaml"], { cwd: dir });
    expect({ code: valid.code, stderr: valid.stderr }).toEqual({ code: 0, stderr: "" });
    expect(valid.stdout).toContain("config.yaml: valid, 2 routes");
    const refused = await runBinary(["validate", "--config", "broken.yaml"], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toStartWith(
      "broken.yaml:18:13 routes[2] (remote).target.wsdl: ./wsdl/remote-import.wsdl: wsdl:import of http://",
    );
    expect(refused.stderr).not.toContain("unexpected failure");
  });
});
