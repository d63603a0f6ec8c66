import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM files made for one test run: a private CA, a server certificate and a client certificate. */
export interface TestCertificates {
  /** The folder holding every file below (ca.pem, server.pem, server-key.pem, client.pem, client-key.pem). */
  dir: string;
  caFile: string;
  ca: string;
  /** For 127.0.0.1, ::1 and localhost (SAN), signed by the CA. */
  serverCertFile: string;
  serverKeyFile: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate (CN actiongate), signed by the CA, for mutual TLS. */
  clientCertFile: string;
  clientKeyFile: string;
  clientCert: string;
  clientKey: string;
  /** A second, unrelated CA: a certificate it signs is not trusted by `ca`. */
  otherCaFile: string;
}

/**
 * Generates certificates with the `openssl` command line into a fresh temp folder (X.509 cannot be
 * built with node:crypto alone). EC P-256 keys keep it fast (well under a second).
 *
 * @example
 * const certs = generateTestCertificates();
 * https.createServer({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true });
 */
export function generateTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "actiongate-certs-"));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    try {
      execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
      throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${stderr || (error as Error).message}`);
    }
  };
  const newKey = (name: string) => openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file(name));
  const newCa = (name: string, subject: string) => {
    newKey(`${name}-key.pem`);
    openssl(
      "req",
      "-x509",
      "-new",
      "-key",
      file(`${name}-key.pem`),
      "-sha256",
      "-days",
      "2",
      "-subj",
      subject,
      "-out",
      file(`${name}.pem`),
    );
  };
  const issue = (name: string, subject: string, extensions: string) => {
    newKey(`${name}-key.pem`);
    openssl("req", "-new", "-key", file(`${name}-key.pem`), "-subj", subject, "-out", file(`${name}.csr`));
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      "x509",
      "-req",
      "-in",
      file(`${name}.csr`),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca-key.pem"),
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      file(`${name}.ext`),
      "-out",
      file(`${name}.pem`),
    );
  };

  newCa("ca", "/CN=actiongate test CA");
  newCa("other-ca", "/CN=unrelated test CA");
  issue("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  issue("client", "/CN=actiongate", "extendedKeyUsage=clientAuth\n");

  const read = (name: string) => readFileSync(file(name), "utf8");
  return {
    dir,
    caFile: file("ca.pem"),
    ca: read("ca.pem"),
    serverCertFile: file("server.pem"),
    serverKeyFile: file("server-key.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server-key.pem"),
    clientCertFile: file("client.pem"),
    clientKeyFile: file("client-key.pem"),
    clientCert: read("client.pem"),
    clientKey: read("client-key.pem"),
    otherCaFile: file("other-ca.pem"),
  };
}
