// The lab's PKI: one CA per state dir (kept across restarts, so kubeconfigs stay valid) and a
// serving certificate signed by it, reissued at each start so its SANs follow the config.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface Pki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64.trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

function derOfPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

async function loadOrCreateCa(
  dir: string,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey; pem: string }> {
  const certFile = join(dir, "ca.crt");
  const keyFile = join(dir, "ca.key");
  if (existsSync(certFile) && existsSync(keyFile)) {
    const pem = readFileSync(certFile, "utf8");
    const key = await webcrypto.subtle.importKey(
      "pkcs8",
      derOfPem(readFileSync(keyFile, "utf8")),
      ALG,
      true,
      ["sign"],
    );
    return { cert: new x509.X509Certificate(pem), key: key as CryptoKey, pem };
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=klab-ca",
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 86400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pem = cert.toString("pem") + "\n";
  writeFileSync(keyFile, pemKey(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)), { mode: 0o600 });
  writeFileSync(certFile, pem);
  return { cert, key: keys.privateKey, pem };
}

/** The SANs kube-apiserver's serving certificate carries, plus the configured extras. */
export function servingSans(serviceIP: string, advertiseAddress: string, extra: string[]): string[] {
  const sans = [
    "127.0.0.1",
    "localhost",
    serviceIP,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    advertiseAddress,
    ...extra,
  ];
  return [...new Set(sans)];
}

export async function ensurePki(stateDir: string, sans: string[]): Promise<Pki> {
  const dir = join(stateDir, "pki");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateCa(dir);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=kube-apiserver",
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 365 * 86400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        sans.map((s) => (isIP(s) ? { type: "ip" as const, value: s } : { type: "dns" as const, value: s })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  const certPem = cert.toString("pem") + "\n";
  const keyPem = pemKey(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  writeFileSync(join(dir, "apiserver.crt"), certPem);
  writeFileSync(join(dir, "apiserver.key"), keyPem, { mode: 0o600 });
  return { caPem: ca.pem, certPem, keyPem };
}
