import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";

/**
 * A throwaway PostgreSQL server for tests: one cluster per test process (initdb + pg_ctl in a temp
 * folder, listening on 127.0.0.1 on a free port), stopped and deleted once the process has exited. With
 * PG_TEST_URL set (postgres://user:pw@127.0.0.1:5432/postgres), that server is used instead.
 *
 * PostgreSQL missing is a test failure with a clear message, never a silent skip: CI installs it
 * (.ci/run).
 */
export interface TestPostgres {
  /** postgres:// URL of a database on this server. */
  url(database: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** `pg_ctl restart -m fast` (only for the cluster this module started); asynchronous, so calls go on meanwhile. */
  restart(): Promise<void>;
  /** Stops the server until `start` (only for the cluster this module started). */
  stop(): Promise<void>;
  start(): Promise<void>;
}

let shared: Promise<TestPostgres> | undefined;

/**
 * The process-wide test server, started on first use.
 *
 * @example
 * const pg = await testPostgres();
 * const url = await pg.createDatabase("store");
 */
export function testPostgres(): Promise<TestPostgres> {
  shared ??= start();
  return shared;
}

async function start(): Promise<TestPostgres> {
  const external = process.env.PG_TEST_URL;
  const server = external ? externalServer(external) : await startCluster();
  return {
    ...server,
    async createDatabase(prefix = "t") {
      const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`
        .toLowerCase()
        .replace(/[^a-z0-9_]/g, "_");
      const admin = postgres(server.url("postgres"), { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end({ timeout: 1 });
      }
      return server.url(name);
    },
  };
}

function externalServer(url: string): Omit<TestPostgres, "createDatabase"> {
  const base = new URL(url);
  const notHere = async () => {
    throw new Error(
      "PG_TEST_URL is set: this test needs to restart PostgreSQL and cannot do that to an external server",
    );
  };
  return {
    url(database) {
      const copy = new URL(base);
      copy.pathname = `/${database}`;
      return copy.toString();
    },
    restart: notHere,
    stop: notHere,
    start: notHere,
  };
}

/** Where initdb and pg_ctl are: PATH, then Debian's /usr/lib/postgresql/<version>/bin. */
function findBinDir(): string {
  const which = spawnSync("sh", ["-c", "command -v pg_ctl"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return join(which.stdout.trim(), "..");
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const bin = join(root, version, "bin");
    if (existsSync(join(bin, "pg_ctl"))) return bin;
  }
  throw new Error(
    "PostgreSQL is not installed (no pg_ctl on PATH or in /usr/lib/postgresql/*/bin): install it (apt-get install -y postgresql; .ci/run does) or set PG_TEST_URL to a server the tests may create databases on",
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startCluster(): Promise<Omit<TestPostgres, "createDatabase">> {
  const bin = findBinDir();
  const dir = mkdtempSync(join(tmpdir(), "actiongate-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const port = await freePort();
  // initdb and the server refuse to run as root: run them as the postgres user, which must own the folder.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
    const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid))
      throw new Error("running as root, but there is no postgres user to run PostgreSQL as");
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const command = asRoot ? ["runuser", "-u", "postgres", "--", join(bin, tool), ...args] : [join(bin, tool), ...args];
    const result = spawnSync(command[0]!, command.slice(1), { encoding: "utf8", timeout: 60_000 });
    if (result.status !== 0) {
      const serverLog = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "";
      throw new Error(
        `${tool} ${args.join(" ")} failed (${result.status}): ${result.stderr}${result.stdout}\n${serverLog}`,
      );
    }
  };
  run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  // fsync off: a test cluster need not survive power loss; a clean restart (pg_ctl) still loses nothing.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const pgCtlArgs = (verb: string, extra: string[] = []) => [
    verb,
    "-D",
    data,
    "-l",
    log,
    "-w",
    "-t",
    "60",
    "-o",
    options,
    ...extra,
  ];
  run("pg_ctl", pgCtlArgs("start"));
  /** pg_ctl without blocking this process: the tests keep sending calls while the server goes down and up. */
  const pgCtl = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const command = asRoot
        ? ["runuser", "-u", "postgres", "--", join(bin, "pg_ctl"), ...args]
        : [join(bin, "pg_ctl"), ...args];
      const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (chunk) => (stderr += chunk));
      child.on("exit", (code) =>
        code === 0 ? resolve() : reject(new Error(`pg_ctl ${args[0]} failed (${code}): ${stderr}`)),
      );
    });
  // bun test fires no "exit" event, and a killed test run fires nothing at all: a watchdog shell stops
  // the cluster and deletes its folder once this process is gone.
  const pgCtlPath = join(bin, "pg_ctl");
  const stopCommand = asRoot ? `runuser -u postgres -- ${pgCtlPath}` : pgCtlPath;
  const watchdog = spawn(
    "sh",
    [
      "-c",
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stopCommand} stop -D '${data}' -m immediate >/dev/null 2>&1; rm -rf '${dir}'`,
    ],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    restart: () => pgCtl(pgCtlArgs("restart", ["-m", "fast"])),
    stop: () => pgCtl(["stop", "-D", data, "-m", "fast", "-w"]),
    start: () => pgCtl(pgCtlArgs("start")),
  };
}
