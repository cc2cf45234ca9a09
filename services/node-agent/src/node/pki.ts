// The kubelet's serving certificate: self-signed per node (as kubelet does without
// --tls-cert-file), kept in the state dir so the API server sees the same one after a restart.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface ServingCert {
  certPem: string;
  keyPem: string;
}

export async function ensureServingCert(
  stateDir: string,
  nodeName: string,
  nodeIP: string,
): Promise<ServingCert> {
  const dir = join(stateDir, "pki");
  const certFile = join(dir, "kubelet.crt");
  const keyFile = join(dir, "kubelet.key");
  if (existsSync(certFile) && existsSync(keyFile)) {
    const certPem = readFileSync(certFile, "utf8");
    const cert = new x509.X509Certificate(certPem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    if (san?.names.items.some((n) => n.type === "ip" && n.value === nodeIP))
      return { certPem, keyPem: readFileSync(keyFile, "utf8") };
  }
  mkdirSync(dir, { recursive: true });
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = new Date();
  const stamp = Math.floor(now.getTime() / 1000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString("hex")
      .replace(/^[89a-f]/, "1"),
    name: `CN=${nodeName}@${stamp}`,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 365 * 86400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: nodeName },
        { type: "ip", value: nodeIP },
        { type: "ip", value: "127.0.0.1" },
      ]),
    ],
  });
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .trimEnd()}\n-----END PRIVATE KEY-----\n`;
  const certPem = cert.toString("pem") + "\n";
  writeFileSync(certFile, certPem);
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  return { certPem, keyPem };
}
