/**
 * What a plugin's setup gets: its Corefile lines, the server block it is in, and the process-wide
 * pieces (metrics, logs, HTTP endpoints). Helpers build errors in CoreDNS's words.
 */
import type { Logger } from "pino";
import type { RecordType } from "dns-packet";
import { CorefileError, type Token } from "./corefile/lexer.ts";
import type { Directive } from "./corefile/parse.ts";
import type { Message, Plugin } from "./message.ts";
import type { Metrics } from "./metrics.ts";
import type { HttpStage } from "./http.ts";
import type { ClusterSourceFactory } from "./kubernetes/source.ts";

export interface Runtime {
  metrics: Metrics;
  logger: Logger;
  /** Writes one line of plugin output (`[INFO] ...`, `[ERROR] ...`) as CoreDNS prints it. */
  out: (line: string) => void;
  /** Exits the process (or, embedded, stops the server): the loop plugin's fatal path. */
  fatal: (message: string) => void;
  /** Asks the server to re-read its Corefile (reload plugin). */
  reload: () => Promise<void>;
  corefilePath: string;
  /** In-cluster credentials directory for the kubernetes plugin (tests point it elsewhere). */
  serviceAccountDir?: string;
  /** Where the kubernetes plugin gets cluster state; replaceable by tests. */
  clusterSources: ClusterSourceFactory;
  localIPs: () => string[];
  /** Readiness of every plugin that reports it; `stopping` during lameduck. */
  readiness: () => { stopping: boolean; notReady: string[] };
  /** SHA512 of the running configuration, and of the Corefile on disk now. */
  configHash: () => string;
  corefileHash: () => string;
}

export interface SetupContext {
  runtime: Runtime;
  /** The server block's zones (FQDN, lower case). */
  zones: string[];
  port: number;
  /** `dns://:53`, the metrics label. */
  server: string;
  http: HttpStage;
  /** A lookup through this server, as CoreDNS's upstream does for CNAME targets. */
  lookup: (name: string, type: RecordType) => Promise<Message>;
  /** The address the server listens on (valid after start). */
  address: () => { host: string; port: number };
  onStartup: (fn: () => Promise<void> | void) => void;
  onShutdown: (fn: () => Promise<void> | void) => void;
  /** Runs once the new configuration serves queries (after a reload's swap). */
  onServing: (fn: () => Promise<void> | void) => void;
  /** Registers a readiness check for the ready plugin. */
  ready: (name: string, check: () => boolean) => void;
  /** Addresses the bind plugin asked for. */
  bind: (hosts: string[]) => void;
  /** Registers a lameduck duration to wait through at shutdown (health plugin). */
  lameduck: (ms: number) => void;
}

export type Setup = (directives: Directive[], ctx: SetupContext) => Plugin[];

export function pluginError(
  plugin: string,
  at: { file: string; line: number },
  detail: string,
): CorefileError {
  return new CorefileError(at.file, at.line, detail, plugin);
}

export function argError(plugin: string, d: Directive): CorefileError {
  const last: Token | undefined = d.argTokens[d.argTokens.length - 1];
  return new CorefileError(
    last?.file ?? d.file,
    last?.line ?? d.line,
    `Wrong argument count or unexpected line ending after '${last?.text ?? d.name}'`,
    plugin,
  );
}

/** Go's time.ParseDuration for the units Corefiles use. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  const unit: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  while ((m = re.exec(text))) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 ? total : undefined;
}

export function durationArg(plugin: string, d: Directive, index: number): number {
  const text = d.args[index];
  if (text === undefined) throw argError(plugin, d);
  const ms = parseDuration(text);
  if (ms === undefined) throw pluginError(plugin, d.argTokens[index]!, `invalid duration '${text}'`);
  return ms;
}

export function intArg(
  plugin: string,
  d: Directive,
  index: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const text = d.args[index];
  if (text === undefined) throw argError(plugin, d);
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || n < min || n > max) {
    throw pluginError(plugin, d.argTokens[index]!, `'${text}' is not an integer between ${min} and ${max}`);
  }
  return n;
}

/** Zones given as arguments (names or CIDRs), normalized; defaults to the server block's zones. */
export function normalizeZones(args: string[], fallback: string[]): string[] {
  return args.length === 0
    ? fallback
    : args.map((a) => (a.endsWith(".") ? a.toLowerCase() : `${a.toLowerCase()}.`));
}
