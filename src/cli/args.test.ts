import { describe, expect, test } from "bun:test";
import { parseCliArguments, UsageError } from "./args.ts";

describe("parseCliArguments: --watch", () => {
  test("serve --watch (and the default command) asks for file watching", () => {
    expect(parseCliArguments(["serve", "--watch", "--config", "x.yaml"], {})).toEqual({
      command: "serve",
      configFile: "x.yaml",
      watch: true,
    });
    expect(parseCliArguments(["--watch"], {})).toEqual({ command: "serve", configFile: "config.yaml", watch: true });
    expect(parseCliArguments(["serve"], {})).toEqual({ command: "serve", configFile: "config.yaml" });
  });

  test("--watch with another command is a usage error", () => {
    expect(() => parseCliArguments(["validate", "--watch"], {})).toThrow(
      new UsageError("--watch works only with serve"),
    );
    expect(() => parseCliArguments(["dlq", "list", "--watch"], {})).toThrow(UsageError);
  });
});

describe("parseCliArguments: explain, test, validate --with-tests", () => {
  test("explain needs --payload; --route and --json are optional", () => {
    expect(parseCliArguments(["explain", "--payload", "p.json", "--config", "c.yaml"], {})).toEqual({
      command: "explain",
      configFile: "c.yaml",
      explain: { payloadFile: "p.json", json: false },
    });
    expect(parseCliArguments(["explain", "--payload", "p.json", "--route", "erp", "--json"], {})).toEqual({
      command: "explain",
      configFile: "config.yaml",
      explain: { payloadFile: "p.json", route: "erp", json: true },
    });
    expect(() => parseCliArguments(["explain"], {})).toThrow(new UsageError("explain needs --payload <file.json>"));
    expect(() => parseCliArguments(["explain", "--payload", "p.json", "--route", ""], {})).toThrow(
      new UsageError("--route needs a route name"),
    );
    expect(() => parseCliArguments(["explain", "--payload", "p.json", "extra"], {})).toThrow(
      new UsageError('unexpected argument "extra"'),
    );
    expect(() => parseCliArguments(["explain", "--payload", "p.json", "--watch"], {})).toThrow(UsageError);
  });

  test("test takes any number of paths, and the config from --config or ACTIONGATE_CONFIG", () => {
    expect(parseCliArguments(["test"], { ACTIONGATE_CONFIG: "prod.yaml" })).toEqual({
      command: "test",
      configFile: "prod.yaml",
      testPaths: [],
    });
    expect(parseCliArguments(["test", "--config", "c.yaml", "a.test.yaml", "tests/"], {})).toEqual({
      command: "test",
      configFile: "c.yaml",
      testPaths: ["a.test.yaml", "tests/"],
    });
    expect(() => parseCliArguments(["test", "--json"], {})).toThrow(UsageError);
  });

  test("--with-tests belongs to validate alone", () => {
    expect(parseCliArguments(["validate", "--with-tests"], {})).toEqual({
      command: "validate",
      configFile: "config.yaml",
      withTests: true,
    });
    expect(() => parseCliArguments(["serve", "--with-tests"], {})).toThrow(
      new UsageError("--with-tests works only with validate"),
    );
    expect(() => parseCliArguments(["--with-tests"], {})).toThrow(UsageError);
  });
});
