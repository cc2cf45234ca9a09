import { readFileSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";

/** Copies the API server's kubeconfig for another vantage point: the same credentials, another server URL. */
export function writeKubeconfigFor(source: string, target: string, server: string, mode = 0o600): void {
  const doc = parse(readFileSync(source, "utf8")) as { clusters: { cluster: { server: string } }[] };
  for (const c of doc.clusters) c.cluster.server = server;
  writeFileSync(target, stringify(doc), { mode });
}
