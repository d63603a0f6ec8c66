import { describe, expect, test } from "bun:test";
import { holdsReference, InvalidReferenceError, interpolateEnv, MissingVariableError } from "./interpolate.ts";

const env = { ERP_TOKEN: "t0k", HOST: "erp.internal", PORT: "8081", EMPTY: "" };

describe("interpolateEnv", () => {
  test("replaces ${VAR} with the variable's value", () => {
    expect(interpolateEnv("Bearer ${ERP_TOKEN}", env)).toBe("Bearer t0k");
  });

  test("replaces several references in one string", () => {
    expect(interpolateEnv("http://${HOST}:${PORT}/api", env)).toBe("http://erp.internal:8081/api");
  });

  test("${VAR:-default} uses the value when it is set", () => {
    expect(interpolateEnv("${PORT:-8080}", env)).toBe("8081");
  });

  test("${VAR:-default} uses the default when the variable is missing", () => {
    expect(interpolateEnv("${NOT_SET:-8080}", env)).toBe("8080");
  });

  test("a default may be empty, or hold characters other than }", () => {
    expect(interpolateEnv("[${NOT_SET:-}]", env)).toBe("[]");
    expect(interpolateEnv("${NOT_SET:-http://127.0.0.1:8081/a?b=c}", env)).toBe("http://127.0.0.1:8081/a?b=c");
  });

  test("a missing variable without a default throws MissingVariableError naming it", () => {
    let caught: unknown;
    try {
      interpolateEnv("Bearer ${ERP_SECRET}", env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MissingVariableError);
    expect((caught as MissingVariableError).variable).toBe("ERP_SECRET");
    expect((caught as Error).message).toBe(
      "environment variable ERP_SECRET is not set (set it, or write ${ERP_SECRET:-default} where a default is safe)",
    );
  });

  test("the first missing variable is the one named", () => {
    expect(() => interpolateEnv("${HOST}/${FIRST}/${SECOND}", env)).toThrow("environment variable FIRST is not set");
  });

  test("a variable set to the empty string is an error for ${VAR}; ${VAR:-default} gives the default", () => {
    expect(() => interpolateEnv("[${EMPTY}]", env)).toThrow("environment variable EMPTY is empty");
    expect(interpolateEnv("${EMPTY:-fallback}", env)).toBe("fallback");
  });

  test("$${ stands for a literal ${", () => {
    expect(interpolateEnv("$${HOST}", env)).toBe("${HOST}");
    expect(interpolateEnv("cost: $${NOT_SET} and ${HOST}", env)).toBe("cost: ${NOT_SET} and erp.internal");
  });

  test("$${ does not need the variable to exist", () => {
    expect(() => interpolateEnv("$${NOT_SET}", {})).not.toThrow();
  });

  test("text without a reference is returned as is, including a lone $ and JSONata's $variables", () => {
    expect(interpolateEnv("costs $5", env)).toBe("costs $5");
    expect(interpolateEnv("$string(data.entity.amount) & $uppercase(x)", env)).toBe(
      "$string(data.entity.amount) & $uppercase(x)",
    );
    expect(interpolateEnv("{{ data.entity._id }}", env)).toBe("{{ data.entity._id }}");
  });

  test("a reference that is not a variable name is an error, not text sent on to the target", () => {
    expect(() => interpolateEnv("${1ABC}", env)).toThrow(InvalidReferenceError);
    expect(() => interpolateEnv("${ERP-TOKEN}", env)).toThrow('"${ERP-TOKEN}" is not a valid reference');
    expect(() => interpolateEnv("${}", env)).toThrow(InvalidReferenceError);
  });

  test("a value is not interpolated again", () => {
    expect(interpolateEnv("${NESTED}", { NESTED: "${HOST}" })).toBe("${HOST}");
  });
});

describe("holdsReference", () => {
  test.each([
    ["Bearer ${ERP_TOKEN}", true],
    ["${PORT:-8080}", true],
    ["costs $${PRICE}", false],
    ["$${A} and ${B}", true],
    ["plain text", false],
    ["${not valid}", true],
  ])("%s -> %p", (text, expected) => {
    expect(holdsReference(text)).toBe(expected);
  });
});
