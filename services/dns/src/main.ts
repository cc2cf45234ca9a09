/**
 * The coredns process: `-conf FILE`, `-dns.port N` (coredns's flags), SIGTERM stops it cleanly
 * after the health plugin's lameduck. Everything else is wiring.
 */
import { resolve } from "node:path";
import { existsSync, writeFileSync } from "node:fs";
import pino from "pino";
import { DnsServer } from "./server.ts";
import { CorefileError } from "./corefile/lexer.ts";
import { COREDNS_VERSION } from "./metrics.ts";
import { PLUGIN_ORDER } from "./plugins/order.ts";

/** `-quiet` drops the startup banner (the zone lines and the version), not the plugins' output. */
let bannerDone = false;
function quietOut(line: string): void {
  if (!bannerDone && !line.startsWith("[")) return;
  bannerDone = true;
  process.stdout.write(`${line}\n`);
}

export interface CorednsFlags {
  conf?: string;
  port?: number;
  version?: boolean;
  plugins?: boolean;
  quiet?: boolean;
  pidfile?: string;
}

/** coredns flags are single-dash Go flags: `-conf x`, `-conf=x`, `--conf x` all work. */
export function parseCorednsArgs(argv: string[]): CorednsFlags {
  const flags: CorednsFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const m = /^--?([a-z.]+)(?:=(.*))?$/.exec(raw);
    if (!m) throw new Error(`unexpected argument '${raw}' (usage: coredns -conf FILE [-dns.port N])`);
    const name = m[1]!;
    const value = () => {
      if (m[2] !== undefined) return m[2];
      const v = argv[++i];
      if (v === undefined) throw new Error(`flag needs an argument: -${name}`);
      return v;
    };
    if (name === "conf") flags.conf = value();
    else if (name === "dns.port") {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n > 65535)
        throw new Error(`invalid value "${v}" for flag -dns.port: parse error`);
      flags.port = n;
    } else if (name === "version") flags.version = true;
    else if (name === "plugins") flags.plugins = true;
    else if (name === "quiet") flags.quiet = true;
    else if (name === "pidfile") flags.pidfile = value();
    else throw new Error(`flag provided but not defined: -${name}`);
  }
  return flags;
}

export async function runCoredns(argv: string[]): Promise<DnsServer | undefined> {
  const flags = parseCorednsArgs(argv);
  if (flags.version) {
    process.stdout.write(
      `CoreDNS-${COREDNS_VERSION}\n${process.platform}/${process.arch}, node${process.versions.node}, klab\n`,
    );
    return undefined;
  }
  if (flags.plugins) {
    const names = PLUGIN_ORDER.map(([n]) => `  dns.${n}`).sort();
    process.stdout.write(
      `Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n\nOther plugins:\n${names.join("\n")}\n`,
    );
    return undefined;
  }
  const conf = resolve(flags.conf ?? "Corefile");
  if (!existsSync(conf)) throw new Error(`Corefile ${conf} does not exist (pass -conf FILE)`);
  const logger = pino({ name: "coredns" }, pino.destination(2));
  let server: DnsServer;
  try {
    server = await DnsServer.start({
      corefilePath: conf,
      defaultPort: flags.port ?? 53,
      logger,
      out: flags.quiet ? quietOut : undefined,
      // Where the pod's service account is mounted; overridable to run "in cluster" elsewhere.
      serviceAccountDir: process.env.KLAB_SERVICE_ACCOUNT_DIR,
    });
  } catch (err) {
    if (err instanceof CorefileError) throw new Error(err.message);
    throw err;
  }
  if (flags.pidfile) writeFileSync(flags.pidfile, `${process.pid}\n`);
  const shutdown = (signal: string) => {
    logger.info({ signal }, "shutting down");
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runCoredns(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
