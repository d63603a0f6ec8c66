import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountTinyDisk } from "../../test/support/tiny-disk.ts";
import { openMemoryStore } from "./memory-store.ts";
import { openSqliteStore } from "./sqlite-store.ts";

const tmp = mkdtempSync(join(tmpdir(), "actiongate-status-"));
const disk = mountTinyDisk(join(tmp, "disk"), 2048);

afterAll(() => {
  disk?.unmount();
  rmSync(tmp, { recursive: true, force: true });
});

test("status: a SQLite store on either driver is writable with its schema version until closed", async () => {
  for (const driver of ["bun:sqlite", "node:sqlite"] as const) {
    const store = openSqliteStore({
      path: join(tmp, `${driver.replace(":", "-")}.db`),
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

describe.each(["bun:sqlite", "node:sqlite"] as const)("SQLite on a full disk (%s, a 2 MB tmpfs)", (driver) => {
  test.skipIf(!disk)(
    "status writes, so it says not writable; a failed replay-guard release is retried once the disk has room",
    async () => {
      const warnings: string[] = [];
      const store = openSqliteStore({
        path: join(disk!.dir, driver.replace(":", "-"), "store.db"),
        synchronous: "full",
        replayWindowMs: 600_000,
        driver,
        onWarning: (message) => warnings.push(message),
      });
      try {
        expect(await store.replayGuard.claim("msg_1")).toBe(true);
        expect(await store.status()).toMatchObject({ writable: true });
        disk!.fill();

        expect(await store.status()).toMatchObject({
          kind: "sqlite",
          writable: false,
          error: "database or disk is full",
        });
        await expect(
          store.outbox.add({ id: "a", route: "r", stage: "deliver", data: "{}", createdAt: 1 }),
        ).rejects.toThrow("database or disk is full");
        // The call failed, so its id is forgotten: that fails too, and is kept for later, never thrown.
        await store.replayGuard.release("msg_1");
        expect(warnings).toEqual(["replay guard release failed; retrying in the background"]);
        // epilot's retry while the disk is still full: 503 (the claim fails), never a 409.
        await expect(Promise.resolve(store.replayGuard.claim("msg_1"))).rejects.toThrow();

        disk!.free();
        expect(await store.status()).toMatchObject({ writable: true });
        expect(await store.replayGuard.claim("msg_1")).toBe(true);
      } finally {
        disk!.free();
        await store.close();
      }
    },
  );
});
