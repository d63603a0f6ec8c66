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
