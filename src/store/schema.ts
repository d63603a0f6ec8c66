import { z } from "zod";
import { durationAtLeast, envNumber } from "../kit/units.ts";

export const storeSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .optional()
      .describe(
        "embedded SQLite file (created with its folder if missing): outbox, dead letters, replay guard; one box",
      ),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
      .optional()
      .describe("PostgreSQL shared by several replicas (postgres://user:password@host:5432/db); instead of path"),
    lease: durationAtLeast(1_000)
      .prefault("30s")
      .describe(
        "how long a worker or replica holds a claimed event; when it dies, another takes the event over after this. Must be longer than the target timeout of every async route and than epilot.timeout",
      ),
    max_connections: envNumber(z.number().int().min(1).max(100))
      .prefault(10)
      .describe("PostgreSQL: connections in the pool"),
    encryption_key: z
      .string()
      .optional()
      .describe(
        "base64 of 32 bytes that encrypts what the store keeps of each event at rest (body, payload, tokens, forwarded headers); required with store.url (the same key on every replica); with store.path and no key, a key file `<path>.key` (mode 0600) is created beside the database",
      ),
    commit_wait: durationAtLeast(1, 100)
      .prefault("2ms")
      .describe(
        "SQLite group commit: while calls queue up, the longest a write waits to share one commit (one fsync) with the writes that arrive after it; a quiet store commits each write at once. Every call is still answered only after its own write is durable",
      ),
    synchronous: z
      .enum(["full", "normal"])
      .default("full")
      .describe("SQLite durability: full survives power loss, normal survives a killed process and is faster"),
  })
  .refine((store) => Boolean(store.path) !== Boolean(store.url), {
    message: "set store.path (SQLite) or store.url (PostgreSQL), exactly one",
    path: ["path"],
  })
  .describe(
    "Durable storage for async delivery and the replay guard. Without it: sync routes only, replay guard in memory.",
  );

export type StoreConfig = z.output<typeof storeSchema>;
