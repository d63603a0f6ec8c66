import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openMemoryStore } from "./memory-store.ts";
import { openSqliteStore } from "./sqlite-store.ts";

test("status: a SQLite store on either driver is writable with its schema version until closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "actiongate-status-"));
  for (const driver of ["bun:sqlite", "node:sqlite"] as const) {
    const store = openSqliteStore({
      path: join(dir, `${driver.replace(":", "-")}.db`),
      synchronous: "full",
      replayWindowMs: 1000,
      driver,
    });
    expect(await store.status()).toEqual({ kind: "sqlite", writable: true, schemaVersion: expect.any(Number) });
    // The probe leaves no transaction open behind it: a write still commits.
    await store.outbox.add({ id: "a", route: "r", stage: "deliver", data: "{}", createdAt: 1 });
    expect(await store.outbox.depth()).toEqual({ r: 1 });
    await store.close();
    expect(await store.status()).toMatchObject({ kind: "sqlite", writable: false, error: "closed" });
  }
});

test("status: the memory store is always writable and has no schema", async () => {
  expect(await openMemoryStore({ replayWindowMs: 1 }).status()).toEqual({ kind: "memory", writable: true });
});
