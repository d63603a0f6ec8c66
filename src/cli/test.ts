import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { loadConfigFile } from "../config/load.ts";
import { createLocalRunner, type LocalInput, type LocalRunner } from "../gateway/local-run.ts";
import { ConfigError, type ConfigProblem, formatProblem } from "../kit/config-errors.ts";
import { type CommandOutput, processOutput } from "./explain.ts";
import { localInputOf } from "./local-input.ts";
import { maskRequest } from "./mask.ts";
import { compareExpectation, type Quote } from "./route-test-expect.ts";
import { type RouteTest, type RouteTestFile, readRouteTestFile } from "./route-test-file.ts";

/** What a run of route tests came to. */
export interface RouteTestSummary {
  readonly passed: number;
  readonly failed: number;
  /** 0 all passed, 1 any failed (or a config did not load), 2 a test file or argument is unusable. */
  readonly exitCode: 0 | 1 | 2;
}

/**
 * `actiongate test`: runs route tests against a config, in process: each test's payload goes
 * through the real pipeline (route, strip, skip_when, transform, the target's request, the
 * response rules, the answer to epilot) with every target answering `target_response` in its
 * stead; nothing leaves the machine. With no paths, every `*.test.yaml` in the config's folder and
 * below. Prints `PASS <file>: <name>` or `FAIL <file>: <name>` with each difference, then
 * `N passed, N failed`. Exit 0 when all pass, 1 when any fails, 2 for a test file that cannot be
 * used (every problem named as `file:line:col key: message`) or a path that does not exist.
 *
 * @example
 * const code = await testCommand([], "examples/http-route/config.yaml");
 */
export async function testCommand(
  paths: readonly string[],
  configFile: string,
  output: CommandOutput = processOutput,
): Promise<number> {
  return (await runRouteTests(configFile, paths, output)).exitCode;
}

/**
 * Runs the route tests of `paths` (files, or folders searched for `*.test.yaml`), or those beside
 * `configFile` when none are given; `validate --with-tests` uses it too.
 */
export async function runRouteTests(
  configFile: string,
  paths: readonly string[],
  output: CommandOutput,
): Promise<RouteTestSummary> {
  const files = findTestFiles(configFile, paths);
  if (!files.ok) {
    output.stderr(`actiongate: ${files.message}\n`);
    return { passed: 0, failed: 0, exitCode: 2 };
  }

  // Every file is read and checked before any test runs, so that all problems show at once.
  const problems: string[] = [];
  const prepared: { testFile: RouteTestFile; label: string; runner?: LocalRunner; configProblem?: string }[] = [];
  const inputs = new Map<RouteTest, LocalInput>();
  for (const file of files.files) {
    const label = shownPath(file);
    const read = readRouteTestFile(file);
    if (!read.ok) {
      problems.push(...read.problems.map((problem) => formatProblem(label, problem)));
      continue;
    }
    const { testFile } = read;
    const fileProblems: ConfigProblem[] = [...read.problems];
    for (const test of testFile.tests) {
      const input = localInputOf(test.payload);
      if (input.ok) inputs.set(test, input.input);
      else fileProblems.push(testFile.problemAt(["tests", test.index, "payload"], input.message));
    }
    let runner: LocalRunner | undefined;
    let configProblem: string | undefined;
    try {
      runner = createLocalRunner(loadConfigFile(configFile, testFile.env));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      configProblem = error.message;
    }
    if (runner) fileProblems.push(...unknownRoutes(testFile, runner, configFile));
    problems.push(...sortByPosition(fileProblems).map((problem) => formatProblem(label, problem)));
    prepared.push({ testFile, label, ...(runner ? { runner } : {}), ...(configProblem ? { configProblem } : {}) });
  }
  if (problems.length > 0) {
    output.stderr(`${problems.join("\n")}\n`);
    await Promise.all(prepared.map((each) => each.runner?.close()));
    return { passed: 0, failed: 0, exitCode: 2 };
  }

  let passed = 0;
  let failed = 0;
  for (const { testFile, label, runner, configProblem } of prepared) {
    if (!runner) {
      // The config is the deployment under test: when it does not load, every test of the file fails.
      output.stdout(`FAIL ${label}: ${configFile} does not load with this file's env\n`);
      output.stdout(`${indent(configProblem ?? "")}\n`);
      failed += testFile.tests.length;
      continue;
    }
    try {
      for (const test of testFile.tests) {
        const differences = await runOne(test, inputs.get(test)!, runner);
        if (differences.length === 0) {
          passed++;
          output.stdout(`PASS ${label}: ${test.name}\n`);
        } else {
          failed++;
          output.stdout(`FAIL ${label}: ${test.name}\n${indent(differences.join("\n"))}\n`);
        }
      }
    } finally {
      await runner.close();
    }
  }
  output.stdout(`${passed} passed, ${failed} failed\n`);
  return { passed, failed, exitCode: failed > 0 ? 1 : 0 };
}

async function runOne(test: RouteTest, input: LocalInput, runner: LocalRunner): Promise<string[]> {
  const result = await runner.run(input, {
    ...(test.route !== undefined ? { routeName: test.route } : {}),
    targetResponse: test.targetResponse,
  });
  if (result.problem) return [result.problem];
  // A route that makes the gateway fail is a failing route, whatever the test expects.
  const crashed = result.crashed
    ? [`the gateway failed unexpectedly and answers 500 internal_error: ${result.crashed}`]
    : [];
  let hide = (text: string) => text;
  if (result.request && result.route !== null) {
    const index = runner.loaded.config.routes.findIndex((route) => route.name === result.route);
    const mask = maskRequest(result.request, runner.loaded, index);
    // The URL as explain shows it too (its password and secret query parameters hidden).
    const url = result.request.url.href;
    hide = (text) => mask.text(text.split(url).join(mask.view.url));
  }
  const quote: Quote = (value) => {
    const text = value === undefined ? "nothing" : hide(JSON.stringify(value));
    return text.length > 300 ? `${text.slice(0, 300)}...` : text;
  };
  return [...crashed, ...compareExpectation(test.expect, result, quote)];
}

/** `route` and `expect.route` must name routes of the config: a typo there could never pass. */
function unknownRoutes(testFile: RouteTestFile, runner: LocalRunner, configFile: string): ConfigProblem[] {
  const known = new Set(runner.routeNames);
  const message = (name: string) => `${configFile} has no route "${name}" (routes: ${runner.routeNames.join(", ")})`;
  return testFile.tests.flatMap((test) => [
    ...(test.route !== undefined && !known.has(test.route)
      ? [testFile.problemAt(["tests", test.index, "route"], message(test.route))]
      : []),
    ...(typeof test.expect.route === "string" && !known.has(test.expect.route)
      ? [testFile.problemAt(["tests", test.index, "expect", "route"], message(test.expect.route))]
      : []),
  ]);
}

function sortByPosition(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/** A path as the user would type it: relative to the working folder when inside it. */
function shownPath(path: string): string {
  const inside = relative(process.cwd(), path);
  return inside === "" ? "." : inside.startsWith("..") ? path : inside;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
}

const TEST_FILE = /\.test\.ya?ml$/;

/**
 * The test files to run: those given (a folder stands for the `*.test.yaml` files in it and below),
 * or those in the config's folder and below. A folder below that holds a file named like the config
 * is another deployment's and is not searched, nor are `node_modules` and hidden folders.
 */
function findTestFiles(
  configFile: string,
  paths: readonly string[],
): { ok: true; files: string[] } | { ok: false; message: string } {
  const configName = basename(configFile);
  const found: string[] = [];
  const walk = (dir: string, root: boolean) => {
    const names = readdirSync(dir).sort();
    if (!root && names.includes(configName)) return;
    for (const name of names) {
      const full = join(dir, name);
      const stat = statSync(full, { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isDirectory()) {
        if (name !== "node_modules" && !name.startsWith(".")) walk(full, false);
      } else if (TEST_FILE.test(name)) found.push(full);
    }
  };
  if (paths.length === 0) {
    const dir = dirname(resolve(configFile));
    walk(dir, true);
    if (found.length === 0) return { ok: false, message: `no route tests (*.test.yaml) in ${shownPath(dir)} or below` };
    return { ok: true, files: found };
  }
  for (const path of paths) {
    if (!existsSync(path)) return { ok: false, message: `no such test file or folder: ${path}` };
    const before = found.length;
    if (statSync(path).isDirectory()) walk(resolve(path), true);
    else found.push(resolve(path));
    if (found.length === before) return { ok: false, message: `no route tests (*.test.yaml) in ${path}` };
  }
  return { ok: true, files: [...new Set(found)] };
}
