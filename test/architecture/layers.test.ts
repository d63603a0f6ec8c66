import { describe, expect, test } from "bun:test";
import { folderOf, sourceFiles } from "./source-files.ts";

/**
 * The folders of src/ in the order the request path builds on them (docs/architecture.md draws it).
 * A folder may import only from folders of a lower rank: imports run one way, so no folder cycle can
 * form. Folders on the same rank are independent of each other.
 */
const RANK: Readonly<Record<string, number>> = {
  kit: 0, // units, errors, small helpers: imports nothing of ours
  runtime: 1, // the only place that knows Bun from Deno
  log: 1,
  telemetry: 1, // the tracing interface the stages call; the OpenTelemetry SDK behind it is loaded only when configured
  verify: 2,
  transform: 2,
  epilot: 2,
  payload: 3,
  store: 3,
  routing: 4,
  targets: 5,
  delivery: 6,
  metrics: 7,
  poll: 7, // epilot's Pollable Outbound: leases messages and hands them to the outbox, like pipeline/ does calls
  pipeline: 8,
  server: 9,
  config: 10, // assembles the schemas each part declares
  gateway: 11, // the composition root and the process lifecycle
  cli: 12,
  "(root)": 13, // main.ts
};

const files = sourceFiles("src", { withTests: false }).filter((file) => file.path !== "src/types.d.ts");

describe("layering of src/", () => {
  test("every folder of src/ has a rank", () => {
    const unranked = [...new Set(files.map((file) => folderOf(file.path)))].filter((folder) => !(folder in RANK));
    expect(unranked).toEqual([]);
  });

  test("imports run one way: only to folders of a lower rank (type imports included)", () => {
    const against = files.flatMap((file) =>
      file.imports
        .filter((edge) => edge.target.startsWith("src/"))
        .filter((edge) => {
          const from = folderOf(file.path);
          const to = folderOf(edge.target);
          return from !== to && !(RANK[to]! < RANK[from]!);
        })
        .map((edge) => `${file.path}:${edge.line} imports ${edge.target}`),
    );
    expect(against).toEqual([]);
  });

  test("config/ reads only the schema each part declares (and the target registry), never their code", () => {
    const allowed = (target: string) =>
      target.startsWith("src/config/") ||
      target.startsWith("src/kit/") ||
      target.endsWith("/schema.ts") ||
      target === "src/targets/registry.ts";
    const against = files
      .filter((file) => folderOf(file.path) === "config")
      .flatMap((file) =>
        file.imports.filter((edge) => !allowed(edge.target)).map((edge) => `${file.path} imports ${edge.target}`),
      );
    expect(against).toEqual([]);
  });

  test("kit/ imports nothing of ours but kit/", () => {
    const against = files
      .filter((file) => folderOf(file.path) === "kit")
      .flatMap((file) =>
        file.imports.filter((edge) => !edge.target.startsWith("src/kit/") && !edge.target.endsWith("package.json")),
      );
    expect(against).toEqual([]);
  });
});
