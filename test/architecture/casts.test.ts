import { describe, expect, test } from "bun:test";
import { sourceFiles } from "./source-files.ts";

/**
 * The nominal types of the request path (docs/architecture.md, "Type-state"): only their makers may
 * produce them. The compiler refuses a plain object, a spread copy or a JSON value where one is asked
 * for; what it cannot refuse is a cast, so casts are refused here.
 */
const NOMINAL = ["VerifiedCall", "ParsedCall", "ParsedMessage", "OutboundMessage"] as const;

/**
 * Where each one is made; a maker outside these files is a forgery too. An entry ending in `/` allows
 * a whole folder.
 */
const SANCTIONED_MAKERS: readonly { readonly call: RegExp; readonly files: readonly string[] }[] = [
  // verifySignature makes VerifiedCalls inside verify/signature.ts with its private issuer.
  { call: /\bissueVerifiedCall\b/, files: ["src/verify/signature.ts"] },
  { call: /\bissueParsedCall\b/, files: ["src/payload/parse.ts"] },
  // A payload read from a file (explain, test) is no verified call: one file of src/cli/ alone may
  // make a ParsedCall of it, and only the two local commands may import that file (below).
  {
    call: /\bparseUnsignedPayload\s*\(/,
    files: ["src/payload/parse.ts", "src/payload/parse.test.ts", "src/cli/local-input.ts"],
  },
  { call: /\bissueParsedMessage\b/, files: ["src/payload/message.ts"] },
  // A ParsedMessage comes from epilot's queue (the poll source), or from a file the operator names
  // for the tools that send nothing (explain, test), or from a test's fixture.
  {
    call: /\bparsePollMessage\s*\(/,
    files: ["src/payload/message.ts", "src/payload/message.test.ts", "src/poll/", "src/cli/", "test/support/calls.ts"],
  },
  {
    call: /\bOutboundMessage\.fromCall\s*\(/,
    files: ["src/targets/message.ts", "src/delivery/prepare.ts", "test/support/calls.ts"],
  },
  { call: /\bOutboundMessage\.fromStored\s*\(/, files: ["src/targets/message.ts", "src/delivery/outbox-event.ts"] },
];

const everything = [...sourceFiles("src"), ...sourceFiles("test"), ...sourceFiles("bench"), ...sourceFiles("scripts")];
const production = sourceFiles("src", { withTests: false });

/** `file:line: text` of each line matching `pattern`, for a readable failure. */
function hits(files: typeof everything, pattern: RegExp, skip: (path: string) => boolean = () => false): string[] {
  return files.flatMap((file) => {
    if (skip(file.path)) return [];
    return (
      file.text
        .split("\n")
        // Comments may name a cast (to explain why it is refused); code may not hold one.
        .flatMap((line, index) =>
          pattern.test(line) && !/^\s*(\*|\/\/|\/\*)/.test(line) ? [`${file.path}:${index + 1}: ${line.trim()}`] : [],
        )
    );
  });
}

/** The door from a payload file to a ParsedCall, and the only files that may go through it. */
const LOCAL_INPUT = "src/cli/local-input.ts";
const LOCAL_COMMANDS = ["src/cli/explain.ts", "src/cli/test.ts", "src/cli/local-input.test.ts"];

describe("no forged VerifiedCall, ParsedCall or OutboundMessage", () => {
  test(`${LOCAL_INPUT} (unsigned payload files as ParsedCalls) is imported only by ${LOCAL_COMMANDS.join(", ")}`, () => {
    const importers = everything
      .filter((file) => file.imports.some((edge) => edge.target === LOCAL_INPUT))
      .map((file) => file.path)
      .filter((path) => !LOCAL_COMMANDS.includes(path));
    expect(importers).toEqual([]);
    // The rule holds something: the two commands do import it.
    const commands = everything.filter((file) => file.imports.some((edge) => edge.target === LOCAL_INPUT));
    expect(commands.map((file) => file.path)).toEqual(
      expect.arrayContaining(["src/cli/explain.ts", "src/cli/test.ts"]),
    );
  });

  for (const name of NOMINAL) {
    test(`no cast to ${name} anywhere (src, tests, bench, scripts)`, () => {
      // `as X`, `as X[]`, `<X>value`, `satisfies` does not convert and is fine.
      expect(hits(everything, new RegExp(`\\bas\\s+(readonly\\s+)?${name}\\b|(?<![\\w$.])<${name}>`))).toEqual([]);
    });
  }

  test("in src/, no cast that makes anything of anything: `as never`, `as any`, or `as unknown as` without a reason", () => {
    expect(hits(production, /\bas\s+(never|any)\b/)).toEqual([]);
    // A double cast needs its reason on the line before, starting with `// cast:`.
    const doubles = production.flatMap((file) => {
      const lines = file.text.split("\n");
      return lines.flatMap((line, index) =>
        /\bas\s+unknown\s+as\b/.test(line) && !/\/\/\s*cast:/.test(lines[index - 1] ?? "")
          ? [`${file.path}:${index + 1}: ${line.trim()}`]
          : [],
      );
    });
    expect(doubles).toEqual([]);
  });

  for (const maker of SANCTIONED_MAKERS) {
    test(`${maker.call.source} is called only in ${maker.files.join(", ")}`, () => {
      const callers = everything
        .filter((file) => maker.call.test(file.text))
        .map((file) => file.path)
        .filter(
          (path) =>
            !maker.files.some((allowed) => (allowed.endsWith("/") ? path.startsWith(allowed) : path === allowed)) &&
            !path.startsWith("test/architecture/"),
        );
      expect(callers).toEqual([]);
    });
  }
});
