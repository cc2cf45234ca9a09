/**
 * TEST FIXTURE: starts the DNS server in this process on 127.0.0.1 with a static cluster, and
 * runs the real `dig` / `nslookup` against it.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { DnsServer } from "../server.ts";
import { StaticSource, sampleCluster } from "./cluster-fixture.ts";
import type { ClusterState } from "../kubernetes/cluster.ts";

export interface Harness {
  server: DnsServer;
  port: number;
  dir: string;
  corefile: string;
  lines: string[];
  fatals: string[];
  source: StaticSource;
  dig(...args: string[]): Promise<string>;
  nslookup(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

export async function startDns(
  corefile: string,
  options: { cluster?: ClusterState; synced?: boolean } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "klab-dns-"));
  const path = join(dir, "Corefile");
  writeFileSync(path, corefile);
  const lines: string[] = [];
  const fatals: string[] = [];
  const source = new StaticSource(options.cluster ?? sampleCluster(), options.synced ?? true);
  const server = await DnsServer.start({
    corefilePath: path,
    defaultPort: 0,
    defaultHost: "127.0.0.1",
    logger: pino({ level: "silent" }),
    out: (l) => lines.push(l),
    fatal: (m) => fatals.push(m),
    clusterSources: () => source,
    localIPs: () => ["10.244.0.2"],
  });
  const port = server.port();
  return {
    server,
    port,
    dir,
    corefile: path,
    lines,
    fatals,
    source,
    dig: (...args) => run("dig", ["@127.0.0.1", "-p", String(port), "+time=3", "+tries=1", ...args]),
    nslookup: (...args) => run("nslookup", [`-port=${port}`, "-timeout=3", "-retry=1", ...args]),
    stop: () => server.stop(),
  };
}

/** `dig +noall +answer` lines as [name, ttl, class, type, data...]. */
export function records(out: string): string[][] {
  return out
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith(";"))
    .map((l) => l.split(/\s+/));
}

export function status(out: string): string | undefined {
  return /status: (\w+)/.exec(out)?.[1];
}

export function flags(out: string): string[] {
  return (/;; flags: ([a-z ]+);/.exec(out)?.[1] ?? "").trim().split(/\s+/);
}

export function section(out: string, name: "ANSWER" | "AUTHORITY" | "ADDITIONAL"): string[][] {
  const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
  return m ? records(m[1]!) : [];
}
