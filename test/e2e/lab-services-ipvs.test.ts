/**
 * Services on the wire in a `klab up --proxy-mode ipvs` lab: IPVS round-robin is exact (a
 * cycle, not a distribution), ClientIP affinity is IPVS persistence, a Service without endpoints
 * is refused, and lc — switched to through the ConfigMap's ipvs.scheduler — sends new connections
 * to the real servers with the fewest active ones, so long-lived connections stay balanced.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab, type PodInfo } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { until } from "../support/wait.ts";
import {
  answers,
  clusterIPOf,
  curlMany,
  deployBackends,
  ipvsadmShows,
  NS,
  switchProxyMode,
  tally,
  virtualServerBlock,
  type Backends,
} from "./lab-services-support.ts";

/** Exactly round-robin: equal counts and the same 3 backends over and over in one order. */
function expectRoundRobin(names: string[]): void {
  const counts = [...tally(names).values()];
  expect(counts, `counts ${counts.join("/")}`).toEqual([
    names.length / 3,
    names.length / 3,
    names.length / 3,
  ]);
  const broken = names.findIndex((name, i) => name !== names[i % 3]);
  expect(broken, `the cycle breaks at connection ${broken}`).toBe(-1);
}

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "bash"] },
  "Services on the wire in klab up (kube-proxy ipvs mode)",
  () => {
    let lab: Lab;
    let backends: Backends;
    let client: PodInfo;
    const execNode = (node: string, command: string[], timeoutMs = 120_000) =>
      lab.klab(["exec-node", "--name", lab.name, node, "--", ...command], { timeoutMs });

    beforeAll(async () => {
      lab = await startLab({ prefix: "kipvs", bare: true, proxyMode: "ipvs" });
      backends = await deployBackends(lab);
      client = (await lab.pods(NS, "app=client"))[0]!;
      await ipvsadmShows(lab, client.node, backends.clusterIP, 3);
    }, 600_000);

    afterAll(async () => {
      await lab?.down();
    }, 180_000);

    it("balances 3000 connections from a pod exactly round-robin (rr)", async () => {
      const r = await lab.exec(NS, "client", curlMany("http://backend/hostname", 3000), 400_000);
      expectRoundRobin(answers(r, backends, 3000));
    }, 420_000);

    it("balances 3000 connections from a node exactly round-robin (rr)", async () => {
      await ipvsadmShows(lab, "node-1", backends.clusterIP, 3);
      const [, ...args] = curlMany(`http://${backends.clusterIP}/hostname`, 3000);
      expectRoundRobin(answers(await execNode("node-1", ["curl", ...args], 400_000), backends, 3000));
    }, 420_000);

    it("pins a client to one endpoint with sessionAffinity ClientIP (IPVS persistence)", async () => {
      const sticky = await clusterIPOf(lab, "sticky");
      const table = (await lab.klab(["ipvsadm", "--name", lab.name, "--node", client.node, "-Ln"])).stdout;
      expect(virtualServerBlock(table, `TCP  ${sticky}:80 rr persistent 10800`)).toHaveLength(4);
      const names = answers(
        await lab.exec(NS, "client", curlMany("http://sticky/hostname", 100)),
        backends,
        100,
      );
      expect(tally(names).size).toBe(1);
    }, 180_000);

    it("refuses a Service without endpoints at once, from a pod and from a node", async () => {
      const ip = await clusterIPOf(lab, "nobody");
      for (const run of [
        (c: string[]) => lab.exec(NS, "client", c),
        (c: string[]) => execNode("node-1", c),
      ]) {
        const r = await run(["curl", "-sS", "--max-time", "20", `http://${ip}/`]);
        expect(r.code, r.stderr).toBe(7);
        expect((await run(["bash", "-c", `exec 3<>/dev/tcp/${ip}/80`])).stderr).toContain(
          "Connection refused",
        );
      }
    }, 180_000);

    it("keeps long-lived connections balanced under lc", async () => {
      await switchProxyMode(lab, "ipvs", "lc");
      await ipvsadmShows(lab, client.node, backends.clusterIP, 3, "lc");
      const ip = backends.clusterIP;
      // bash opens a connection with `exec N<>/dev/tcp/…` and returns once it is established, so
      // the order below is the order IPVS schedules in; each held connection asks its backend's
      // name only at the end.
      const script = [
        `ip=${ip}`,
        "exec 3<>/dev/tcp/$ip/80",
        "exec 4<>/dev/tcp/$ip/80",
        "for i in $(seq 30); do curl -s --max-time 10 -H 'Connection: close' http://$ip/hostname; echo ' short'; done",
        'for fd in 5 6 7 8; do eval "exec $fd<>/dev/tcp/$ip/80"; done',
        "echo held",
        "sleep 25",
        "for fd in 3 4 5 6 7 8; do printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' >&$fd; echo \"$(sed -n '$p' <&$fd) long\"; done",
      ].join("\n");
      const running = lab.exec(NS, "client", ["bash", "-c", script], 180_000);
      // while the six are held: two active connections on every real server
      const active = await until("ActiveConn 2/2/2 under lc", 90_000, async () => {
        const r = await lab.klab(["ipvsadm", "--name", lab.name, "--node", client.node, "-Ln"]);
        const block = virtualServerBlock(r.stdout, `TCP  ${ip}:80 lc`);
        const conns = block?.slice(1).map((l) => Number(l.trim().split(/\s+/)[4]));
        return conns?.join("/") === "2/2/2" ? conns : undefined;
      });
      expect(active).toEqual([2, 2, 2]);
      const r = await running;
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split("\n").filter((l) => l.endsWith(" short") || l.endsWith(" long"));
      const shorts = lines.filter((l) => l.endsWith(" short")).map((l) => l.slice(0, -6));
      const longs = lines.filter((l) => l.endsWith(" long")).map((l) => l.slice(0, -5));
      expect(longs).toHaveLength(6);
      expect(shorts).toHaveLength(30);
      for (const n of [...shorts, ...longs]) expect(backends.pods.has(n), n).toBe(true);
      // the first two held connections went to two backends; every short one then went to the
      // third (the only one with no active connection), and the next four evened it out
      expect(new Set(longs.slice(0, 2)).size).toBe(2);
      const third = [...backends.pods.keys()].find((n) => !longs.slice(0, 2).includes(n))!;
      expect(new Set(shorts)).toEqual(new Set([third]));
      expect([...tally(longs).values()]).toEqual([2, 2, 2]);
    }, 420_000);
  },
);
