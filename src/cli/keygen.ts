import { generateSigningKeyPair } from "../verify/sign.ts";

/**
 * `actiongate keygen`: prints a fresh Ed25519 pair for trying routes without epilot. The whpk_
 * (or the PEM) goes into `verification.public_key`; the whsk_ signs with `actiongate send --key`.
 * Nothing is written to disk: where the secret half is kept is the user's choice.
 *
 * @example
 * keygenCommand({ json: true }); // {"secret_key":"whsk_...","public_key":"whpk_...","public_key_pem":"...","private_key_pem":"..."}
 */
export function keygenCommand(
  options: { json: boolean },
  write: (text: string) => void = (text) => process.stdout.write(text),
): number {
  const pair = generateSigningKeyPair();
  if (options.json) {
    write(
      `${JSON.stringify({ secret_key: pair.secretKey, public_key: pair.publicKey, public_key_pem: pair.publicKeyPem, private_key_pem: pair.privateKeyPem }, null, 2)}\n`,
    );
    return 0;
  }
  write(`# A new Ed25519 signing pair (Standard Webhooks v1a, as epilot signs). Keep the secret key to yourself.

secret key (actiongate send --key):            ${pair.secretKey}
public key (verification.public_key in config): ${pair.publicKey}

public key as PEM (verification.public_key_file):
${pair.publicKeyPem}
private key as PEM (also accepted by send --key <file>):
${pair.privateKeyPem}`);
  return 0;
}
