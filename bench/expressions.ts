/**
 * `bun bench/expressions.ts`: what one JSONata evaluation costs on each of its three paths, over
 * examples/payloads/custom-action.json: direct (plain field picks), in-process JSONata (proven
 * linear, bounded-expression.ts), and a worker thread (expression-pool.ts). For each: the latency
 * an awaiting caller sees (one evaluation at a time), the gateway thread's own CPU time per
 * evaluation (what limits its throughput; the worker's CPU is not counted), and the wall time per
 * evaluation with 64 in flight.
 *
 * The same typical transform is also sent through the worker on purpose, so that the two paths
 * compare on equal work.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CompiledExpression, compileExpression } from "../src/transform/expression.ts";
import { closeSharedExpressionPool, sharedExpressionPool } from "../src/transform/expression-pool.ts";

const payload: unknown = JSON.parse(
  readFileSync(join(import.meta.dir, "..", "examples", "payloads", "custom-action.json"), "utf8"),
);

const DIRECT = `{
  "contract": data.entity.contract_number,
  "customer": data.entity.customer_number,
  "status": data.entity.status,
  "monthly_amount": data.entity.monthly_amount,
  "company_code": data.action_config.custom_action_config.erp_company_code
}`;
const SKIP_WHEN = 'data.entity.status != "approved"';
const TYPICAL = `{
  "contract": data.entity.contract_number,
  "customer": $uppercase(data.entity.customer_number),
  "yearly_amount": $round(data.entity.monthly_amount * 12, 2),
  "city": data.entity.billing_address.city & " (" & data.entity.billing_address.country & ")",
  "approved": data.entity.status = "approved",
  "company_code": data.action_config.custom_action_config.erp_company_code
}`;
const WITH_LAMBDA = `{
  "contract": data.entity.contract_number,
  "address": data.entity.billing_address ~> function($a) { $a.street & ", " & $a.postal_code & " " & $a.city }
}`;

type Evaluate = () => Promise<unknown>;

const threadCpuUsage = (process as unknown as { threadCpuUsage(): { user: number; system: number } }).threadCpuUsage;

async function measure(name: string, evaluate: Evaluate, runs: number): Promise<void> {
  for (let i = 0; i < Math.min(runs, 2_000); i++) await evaluate();
  const cpuBefore = threadCpuUsage();
  const started = performance.now();
  for (let i = 0; i < runs; i++) await evaluate();
  const sequentialUs = ((performance.now() - started) * 1000) / runs;
  const cpu = threadCpuUsage();
  const cpuUs = (cpu.user + cpu.system - cpuBefore.user - cpuBefore.system) / runs;
  const inFlight = 64;
  const concurrentStarted = performance.now();
  for (let done = 0; done < runs; done += inFlight) await Promise.all(Array.from({ length: inFlight }, evaluate));
  const concurrentUs = ((performance.now() - concurrentStarted) * 1000) / (Math.ceil(runs / inFlight) * inFlight);
  console.log(`| ${name} | ${sequentialUs.toFixed(1)} | ${cpuUs.toFixed(1)} | ${concurrentUs.toFixed(1)} |`);
}

function via(expression: CompiledExpression, expected: CompiledExpression["runsIn"]): Evaluate {
  if (expression.runsIn !== expected) throw new Error(`${expression.source} runs in ${expression.runsIn}`);
  return () => expression.evaluate(payload);
}

const pool = sharedExpressionPool();
console.log(`| path | awaited, one at a time (µs) | gateway thread CPU (µs) | 64 in flight, per evaluation (µs) |`);
console.log(`| --- | --- | --- | --- |`);
await measure("direct field picks (config.yaml's transform)", via(compileExpression(DIRECT), "process"), 100_000);
await measure(
  'config.yaml\'s skip_when `data.entity.status != "approved"`, in-process JSONata',
  via(compileExpression(SKIP_WHEN), "process"),
  50_000,
);
await measure("the same skip_when in a worker thread", () => pool.evaluate(SKIP_WHEN, payload), 20_000);
await measure("typical transform, in-process JSONata", via(compileExpression(TYPICAL), "process"), 50_000);
await measure("the same transform in a worker thread", () => pool.evaluate(TYPICAL, payload), 20_000);
await measure("transform with a lambda (worker thread)", via(compileExpression(WITH_LAMBDA), "worker"), 20_000);
console.log(`\nthreads started: ${pool.stats().threads}`);
await closeSharedExpressionPool();
