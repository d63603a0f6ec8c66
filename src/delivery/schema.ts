import { z } from "zod";
import { duration, envNumber } from "../kit/units.ts";
import { expression } from "../transform/schema.ts";

export const responseSchema = z
  .strictObject({
    transform: expression(
      "over {status, headers, body} of a successful answer; its result is the 200 answer to epilot",
    ).optional(),
    write_back: expression(
      "over {status, headers, body, payload}; its result is PATCHed onto data.entity through epilot's entity API with the call's x-epilot-token",
    ).optional(),
    fail_when: expression(
      "over {status, headers, body}; when true, a 2xx answer is treated as a failure (502)",
    ).optional(),
    error_reason: expression(
      "over {status, headers, body}; the error_reason shown in epilot when the target failed",
    ).optional(),
  })
  .describe("How the legacy system's answer is read.");

export const circuitBreakerSchema = z
  .strictObject({
    failure_threshold: envNumber(z.number().int().min(1))
      .prefault(5)
      .describe("consecutive failures of the target that open the breaker"),
    cooldown: duration.prefault("30s").describe("how long the breaker stays open before one probe call decides"),
  })
  .describe(
    "Per target: stops calling a target that keeps failing. Open: sync calls get 503 at once, async delivery pauses without spending attempts.",
  );

export const deliverySchema = z
  .strictObject({
    mode: z
      .enum(["sync", "async"])
      .optional()
      .describe(
        "sync (the default for custom actions): epilot waits for the target's answer; async: 202 once stored, delivered in the background with retries (needs `store`). Routes of polled messages are always async",
      ),
    order_key: expression(
      "over the stripped payload (or polled message); outbox events of this route with the same key are delivered one at a time, in the order they were stored (e.g. data.entity._id). Routes of polled messages order by the message's group without it. Async routes only",
    ).optional(),
    max_attempts: envNumber(z.number().int().min(1).max(1000))
      .prefault(10)
      .describe("attempts per stage (delivery, resume, write-back) before the event goes to the dead letters"),
    backoff: z
      .strictObject({
        initial: duration.prefault("1s").describe("delay before the first retry"),
        max: duration.prefault("5m").describe("upper bound of the delay between attempts"),
      })
      .prefault({})
      .describe("exponential backoff with full jitter between attempts"),
    concurrency: envNumber(z.number().int().min(1).max(256))
      .prefault(4)
      .describe("async deliveries in flight at once for this route"),
    circuit_breaker: circuitBreakerSchema.prefault({}),
  })
  .describe("How the call is delivered.");

export type ResponseConfig = z.output<typeof responseSchema>;
export type DeliveryConfig = z.output<typeof deliverySchema>;
