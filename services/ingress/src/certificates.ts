/**
 * Self-signed certificates: the controller's default "Kubernetes Ingress Controller Fake
 * Certificate" (generated at start, as ingress-nginx's ssl.go does), and certificates for tests.
 */
import "reflect-metadata";
import { X509Certificate as NodeX509, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { CertificateMaterial } from "./tls.ts";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const FAKE_CERTIFICATE_CN = "Kubernetes Ingress Controller Fake Certificate";

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
} as const;
const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface SelfSignedOptions {
  commonName: string;
  organization?: string;
  dnsNames: string[];
  days?: number;
  /** RSA-2048 (the fake certificate's) or ECDSA P-256 (fast, for tests) */
  keyType?: "rsa" | "ecdsa";
  id?: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

export async function selfSigned(opts: SelfSignedOptions): Promise<CertificateMaterial> {
  const alg = opts.keyType === "ecdsa" ? ECDSA : RSA;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const serial = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
  const name = `CN=${opts.commonName}` + (opts.organization ? `, O=${opts.organization}` : "");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.days ?? 365) * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(
        opts.dnsNames.map((value) => ({ type: "dns" as const, value })),
      ),
    ],
  });
  const certPem = cert.toString("pem") + "\n";
  const keyPem = pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { id: opts.id ?? opts.commonName, certPem, keyPem, cert: new NodeX509(certPem) };
}

/** CN=Kubernetes Ingress Controller Fake Certificate, O=Acme Co, SAN ingress.local, RSA-2048, 365 days. */
export function fakeCertificate(): Promise<CertificateMaterial> {
  return selfSigned({
    commonName: FAKE_CERTIFICATE_CN,
    organization: "Acme Co",
    dnsNames: ["ingress.local"],
    days: 365,
    keyType: "rsa",
    id: "default",
  });
}

/** A `kubernetes.io/tls` Secret's data from certificate material. */
export function tlsSecretData(m: CertificateMaterial): Record<string, string> {
  return {
    "tls.crt": Buffer.from(m.certPem).toString("base64"),
    "tls.key": Buffer.from(m.keyPem).toString("base64"),
  };
}
