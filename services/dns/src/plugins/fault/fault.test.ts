import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../../../../../test/support/prereq.ts";
import { startDns, status, section, type Harness } from "../../testing/harness.ts";
import { parseCorefile } from "../../corefile/parse.ts";
import { parseFault } from "./parse.ts";
import { readFaultData } from "./plugin.ts";

const WEB = "web.default.svc.cluster.local.";

async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeWith({ tools: ["dig"] }, "fault plugin: DNS faults read from the klab-faults ConfigMap", () => {
  let dns: Harness;
  let file: string;

  beforeAll(async () => {
    file = join(mkdtempSync(join(tmpdir(), "klab-dns-fault-")), "klab-faults.yaml");
    dns = await startDns(
      `.:0 {
    bind 127.0.0.1
    log
    fault FAULTS {
        reload 100ms
    }
    cache 30
    kubernetes cluster.local
}
`.replace("FAULTS", file),
    );
  });

  afterAll(async () => {
    await dns?.stop();
  });

  it("answers SERVFAIL, then NXDOMAIN, for a matching name, and the real answer once cleared", async () => {
    expect(status(await dns.dig(WEB, "A"))).toBe("NOERROR");
    writeFileSync(
      file,
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: klab-faults, namespace: kube-system}\ndata:\n  web-servfail: |\n    kind: dns-servfail\n    target: {name: "web.*.svc.cluster.local."}\n`,
    );
    await until("SERVFAIL", async () => status(await dns.dig(WEB, "A")) === "SERVFAIL");
    // Other names are untouched, and the cache did not keep the good answer in front of the fault.
    expect(status(await dns.dig("headless.default.svc.cluster.local.", "A"))).toBe("NOERROR");
    expect(dns.lines.some((l) => l.includes(`"A IN ${WEB}`) && l.includes("SERVFAIL"))).toBe(true);
    writeFileSync(file, `web-nx: |\n  kind: dns-nxdomain\n  target: {name: "${WEB}"}\n`);
    await until("NXDOMAIN", async () => status(await dns.dig(WEB, "A")) === "NXDOMAIN");
    writeFileSync(file, `{}\n`);
    await until("the fault to be cleared", async () => status(await dns.dig(WEB, "A")) === "NOERROR");
    expect(section(await dns.dig(WEB, "A"), "ANSWER")[0]?.[4]).toBe("10.96.0.20");
  });

  it("delays answers for a matching name", async () => {
    writeFileSync(
      file,
      `slow: |\n  kind: dns-delay\n  target: {name: "*.default.svc.cluster.local."}\n  delayMs: 1500\n`,
    );
    const queryTime = (out: string) => Number(/Query time: (\d+) msec/.exec(out)?.[1]);
    await until("the delay", async () => queryTime(await dns.dig(WEB, "A", "+time=5")) >= 1400);
    const out = await dns.dig(WEB, "A", "+time=5");
    expect(queryTime(out)).toBeGreaterThanOrEqual(1400);
    expect(status(out)).toBe("NOERROR");
    rmSync(file);
    await until("the delay to go", async () => queryTime(await dns.dig(WEB, "A")) < 1000);
  });

  it("reports a bad fault entry and keeps the good ones", async () => {
    writeFileSync(
      file,
      `bad: |\n  kind: dns-explode\ngood: |\n  kind: dns-servfail\n  target: {name: "${WEB}"}\n`,
    );
    await until("SERVFAIL", async () => status(await dns.dig(WEB, "A")) === "SERVFAIL");
    expect(
      dns.lines.some(
        (l) => l.includes("[ERROR] plugin/fault: klab-faults key bad") && l.includes("unknown kind"),
      ),
    ).toBe(true);
    rmSync(file);
    await until("the fault to be cleared", async () => status(await dns.dig(WEB, "A")) === "NOERROR");
  });

  it("reads a ConfigMap volume: one file per key, kubelet's dot entries skipped", () => {
    const dir = mkdtempSync(join(tmpdir(), "klab-dns-fault-vol-"));
    mkdirSync(join(dir, "..2026_11_26"));
    writeFileSync(join(dir, "..2026_11_26", "web"), "kind: dns-servfail\ntarget: {name: web.}\n");
    symlinkSync("..2026_11_26", join(dir, "..data"));
    symlinkSync("..data/web", join(dir, "web"));
    expect(readFaultData(dir)).toEqual({ web: "kind: dns-servfail\ntarget: {name: web.}\n" });
    rmSync(dir, { recursive: true });
  });

  it("parses its Corefile lines, rejecting bad ones", () => {
    const dirs = (text: string) => parseCorefile(`. {\n${text}\n}`, "Corefile").blocks[0]!.directives;
    expect(parseFault(dirs("fault /x"))).toEqual({ path: "/x", reloadMs: 1000 });
    expect(() => parseFault(dirs("fault"))).toThrow(/Wrong argument count/);
    expect(() => parseFault(dirs("fault /x {\n bogus\n}"))).toThrow(/unknown property 'bogus'/);
  });
});
