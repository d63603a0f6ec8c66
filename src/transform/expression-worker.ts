/**
 * The entry of an expression worker thread (started by expression-pool.ts through
 * runtime/worker-thread.ts; an extra entrypoint of the compiled binary, see scripts/build.ts).
 * Each message is one task as JSON text and gets exactly one reply: the pool and the runtime
 * layer count on that.
 */
import { type EvaluationTask, evaluateTask } from "./worker-evaluation.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<string>) => void) | null;
  postMessage(message: unknown): void;
}

// cast: inside a worker thread the global scope is the worker's; DOM's types describe a window.
const scope = globalThis as unknown as WorkerScope;

// Installed before anything is awaited: a message posted while the thread starts is not lost.
scope.onmessage = (event) => {
  const task = JSON.parse(event.data) as EvaluationTask;
  void evaluateTask(task).then((reply) => scope.postMessage(reply));
};
