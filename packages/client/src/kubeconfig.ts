/**
 * Where a client finds its API server and credentials: a kubeconfig file, as kubectl reads it,
 * or the in-cluster service account that kubelet mounts into every pod.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface Connection {
  /** Base URL of the API server, e.g. https://127.0.0.1:6443 */
  server: string;
  /** PEM of the cluster CA; undefined trusts the system store. */
  caPem?: string;
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  insecureSkipTLSVerify?: boolean;
  /** The kubeconfig context's namespace, or the pod's namespace in-cluster. */
  namespace?: string;
}

interface KubeconfigFile {
  "current-context"?: string;
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
}

export class KubeconfigError extends Error {}

function fromDataOrFile(entry: Record<string, unknown>, key: string, base: string): string | undefined {
  const data = entry[`${key}-data`];
  if (typeof data === "string") return Buffer.from(data, "base64").toString("utf8");
  const file = entry[key];
  if (typeof file === "string") return readFileSync(file.startsWith("/") ? file : `${base}/${file}`, "utf8");
  return undefined;
}

/** Reads a kubeconfig file and resolves one context (the current one unless named). */
export function loadKubeconfig(path: string, contextName?: string): Connection {
  let doc: KubeconfigFile;
  try {
    doc = parse(readFileSync(path, "utf8")) as KubeconfigFile;
  } catch (err) {
    throw new KubeconfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
  }
  const name = contextName ?? doc["current-context"];
  const context = doc.contexts?.find((c) => c.name === name)?.context;
  if (!context) throw new KubeconfigError(`kubeconfig ${path}: context "${name ?? ""}" not found`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") {
    throw new KubeconfigError(`kubeconfig ${path}: cluster "${context.cluster}" has no server`);
  }
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
  const base = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  let token = typeof user.token === "string" ? user.token : undefined;
  if (!token && typeof user.tokenFile === "string") token = readFileSync(user.tokenFile, "utf8").trim();
  return {
    server: cluster.server.replace(/\/+$/, ""),
    caPem: fromDataOrFile(cluster, "certificate-authority", base),
    insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] === true,
    token,
    clientCertPem: fromDataOrFile(user, "client-certificate", base),
    clientKeyPem: fromDataOrFile(user, "client-key", base),
    namespace: context.namespace,
  };
}

export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The in-cluster configuration, as client-go's rest.InClusterConfig builds it. */
export function inClusterConnection(env = process.env, dir = serviceAccountDir): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeconfigError(
      "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (pass a kubeconfig)",
    );
  }
  const read = (file: string) => readFileSync(`${dir}/${file}`, "utf8");
  let namespace: string | undefined;
  try {
    namespace = read("namespace").trim();
  } catch {
    namespace = undefined;
  }
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caPem: read("ca.crt"),
    token: read("token").trim(),
    namespace,
  };
}

/** A kubeconfig path if given (or $KUBECONFIG), else the in-cluster service account. */
export function resolveConnection(kubeconfig?: string, env = process.env): Connection {
  const path = kubeconfig ?? env.KUBECONFIG;
  return path ? loadKubeconfig(path) : inClusterConnection(env);
}
