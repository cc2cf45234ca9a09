/**
 * Certificates: loading `kubernetes.io/tls` Secrets, choosing one by SNI as ingress-nginx's
 * certificate.lua (exact name, then one-label wildcard, then the default certificate).
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { Secret } from "@klab/api";
import { wildcardOf } from "./hosts.ts";

export interface CertificateMaterial {
  /** `namespace/name` of the Secret, or `default` for the fake certificate */
  id: string;
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
}

const cache = new WeakMap<Secret, CertificateMaterial | string>();

/** Parse a TLS Secret; an error string says what is wrong with it. Memoized per object. */
export function loadTlsSecret(secret: Secret): CertificateMaterial | string {
  const hit = cache.get(secret);
  if (hit !== undefined) return hit;
  const result = parseTlsSecret(secret);
  cache.set(secret, result);
  return result;
}

function parseTlsSecret(secret: Secret): CertificateMaterial | string {
  const id = `${secret.metadata.namespace}/${secret.metadata.name}`;
  const crt = secret.data?.["tls.crt"];
  const key = secret.data?.["tls.key"];
  if (!crt || !key) return `secret ${id} has no tls.crt and tls.key`;
  const certPem = Buffer.from(crt, "base64").toString("utf8");
  const keyPem = Buffer.from(key, "base64").toString("utf8");
  try {
    const cert = new X509Certificate(certPem);
    const privateKey = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(privateKey)) return `secret ${id}: tls.key does not match tls.crt`;
    return { id, certPem, keyPem, cert };
  } catch (err) {
    return `secret ${id}: ${(err as Error).message}`;
  }
}

/** Whether the certificate's SAN (or CN) covers a rule host, wildcard hosts included. */
export function covers(m: CertificateMaterial, host: string): boolean {
  const probe = host.startsWith("*.") ? "ingress-wildcard-probe" + host.slice(1) : host;
  return m.cert.checkHost(probe, { subject: "default" }) !== undefined;
}

export function expired(m: CertificateMaterial, nowMs: number): boolean {
  return new Date(m.cert.validTo).getTime() < nowMs;
}

/** SNI → certificate; no SNI or an unknown one gets the default. */
export function selectCertificate(
  certificates: ReadonlyMap<string, CertificateMaterial>,
  defaultCertificate: CertificateMaterial,
  sni: string | undefined,
): CertificateMaterial {
  if (!sni) return defaultCertificate;
  let name = sni.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  const exact = certificates.get(name);
  if (exact) return exact;
  const wildcard = wildcardOf(name);
  return (wildcard && certificates.get(wildcard)) || defaultCertificate;
}
