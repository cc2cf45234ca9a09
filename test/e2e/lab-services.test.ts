/**
 * Services on the wire in a `klab up` lab, kube-proxy in iptables mode (the kube-system DaemonSet
 * loading each node's dataplane): real connections from a pod and from a node, counted by the
 * backend pod that answered; NodePorts across nodes and their traffic policies; the rules as
 * `klab iptables-save` prints them; and switching to ipvs and back through the ConfigMap.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLab, type Lab } from "../support/lab.ts";
import { describeWith } from "../support/prereq.ts";
import { until } from "../support/wait.ts";
import {
  answers,
  clusterIPOf,
  curlMany,
  deployBackends,
  ipvsadmShows,
  NS,
  sepChain,
  svcChain,
  switchProxyMode,
  tally,
  virtualServerBlock,
  type Backends,
} from "./lab-services-support.ts";

/** Each endpoint's share of n connections within 5σ of n/k, and the chi-square below p = 1e-6. */
function expectFairSplit(names: string[], k: number): void {
  const n = names.length;
  const expected = n / k;
  const sigma = Math.sqrt(n * (1 / k) * (1 - 1 / k));
  const counts = [...tally(names).values()];
  expect(counts.length, `answers came from ${counts.length} endpoints`).toBe(k);
  for (const c of counts)
    expect(Math.abs(c - expected), `counts ${counts.join("/")}`).toBeLessThanOrEqual(5 * sigma);
  const chiSquare = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  // the chi-square distribution with 2 degrees of freedom: P(X > x) = exp(-x/2)
  expect(chiSquare, `counts ${counts.join("/")}`).toBeLessThan(-2 * Math.log(1e-6));
}

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "bash"] },
  "Services on the wire in klab up (kube-proxy iptables mode)",
  () => {
    let lab: Lab;
    let backends: Backends;
    const nodeIP = new Map<string, string>();
    const execNode = (node: string, command: string[], timeoutMs = 120_000) =>
      lab.klab(["exec-node", "--name", lab.name, node, "--", ...command], { timeoutMs });
    const nodePort = async (svc: string) =>
      Number(await lab.kubectlOk(["-n", NS, "get", "svc", svc, "-o", "jsonpath={.spec.ports[0].nodePort}"]));

    beforeAll(async () => {
      lab = await startLab({ prefix: "ksvc", bare: true });
      backends = await deployBackends(lab);
      const nodes = JSON.parse(await lab.kubectlOk(["get", "nodes", "-o", "json"])) as {
        items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } }[];
      };
      for (const n of nodes.items)
        nodeIP.set(n.metadata.name, n.status.addresses.find((a) => a.type === "InternalIP")!.address);
    }, 600_000);

    afterAll(async () => {
      await lab?.down();
    }, 180_000);

    it("splits 3000 connections from a pod over 3 endpoints within binomial bounds", async () => {
      const r = await lab.exec(NS, "client", curlMany("http://backend/hostname", 3000), 400_000);
      expectFairSplit(answers(r, backends, 3000), 3);
    }, 420_000);

    it("splits 3000 connections from a node over 3 endpoints within binomial bounds", async () => {
      const [, ...args] = curlMany(`http://${backends.clusterIP}/hostname`, 3000);
      const r = await execNode("node-1", ["curl", ...args], 400_000);
      expectFairSplit(answers(r, backends, 3000), 3);
    }, 420_000);

    it("pins a client to one endpoint with sessionAffinity ClientIP", async () => {
      const fromPod = answers(
        await lab.exec(NS, "client", curlMany("http://sticky/hostname", 100)),
        backends,
        100,
      );
      expect(tally(fromPod).size).toBe(1);
      const sticky = await clusterIPOf(lab, "sticky");
      const [, ...args] = curlMany(`http://${sticky}/hostname`, 100);
      expect(tally(answers(await execNode("node-2", ["curl", ...args]), backends, 100)).size).toBe(1);
      const nat = (await lab.klab(["iptables-save", "--name", lab.name, "--node", "node-2", "-t", "nat"]))
        .stdout;
      expect(nat).toMatch(
        new RegExp(
          `^-A ${svcChain(`${NS}/sticky:http`)} .*-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-`,
          "m",
        ),
      );
    }, 240_000);

    it("refuses a Service without endpoints at once (REJECT), from a pod and from a node", async () => {
      const ip = await clusterIPOf(lab, "nobody");
      const curl = ["curl", "-sS", "--max-time", "20", `http://${ip}/`];
      const tcp = ["bash", "-c", `exec 3<>/dev/tcp/${ip}/80`];
      for (const run of [
        (c: string[]) => lab.exec(NS, "client", c),
        (c: string[]) => execNode("node-1", c),
      ]) {
        const r = await run(curl);
        // 7 is "couldn't connect"; a dropped SYN would be 28, a timeout
        expect(r.code, r.stderr).toBe(7);
        expect((await run(tcp)).stderr).toContain("Connection refused");
      }
      const filter = (
        await lab.klab(["iptables-save", "--name", lab.name, "--node", "node-1", "-t", "filter"])
      ).stdout;
      expect(filter).toContain(
        `-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "${NS}/nobody:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
      );
    }, 240_000);

    it("reaches a NodePort from the other node; Cluster policy reaches endpoints anywhere, SNATed", async () => {
      const port = await nodePort("pinned-cluster");
      // the endpoint is on node-1: through node-1 from node-2, and through node-2 from node-1
      const via1 = await execNode("node-2", [
        "curl",
        "-sS",
        "-m",
        "10",
        `http://${nodeIP.get("node-1")}:${port}/hostname`,
      ]);
      expect(via1.stdout, via1.stderr).toBe("pinned");
      const via2 = await execNode("node-1", [
        "curl",
        "-sS",
        "-m",
        "10",
        `http://${nodeIP.get("node-2")}:${port}/clientip`,
      ]);
      expect(via2.code, via2.stderr).toBe(0);
      expect(via2.stdout.split(":")[0]).not.toBe(nodeIP.get("node-1"));
      // the 3 backends through a node's NodePort, from the other node
      await lab.kubectlOk(["-n", NS, "patch", "svc", "backend", "-p", '{"spec":{"type":"NodePort"}}']);
      const backendPort = await nodePort("backend");
      const url = `http://${nodeIP.get("node-2")}:${backendPort}/hostname`;
      const [, ...args] = curlMany(url, 60);
      const seen = await until("the backend NodePort on node-2", 60_000, async () => {
        const r = await execNode("node-1", ["curl", ...args]);
        return r.code === 0 ? answers(r, backends, 60) : undefined;
      });
      expect(tally(seen).size).toBe(3);
    }, 240_000);

    it("externalTrafficPolicy Local: the client IP is kept; a node without local endpoints drops", async () => {
      const port = await nodePort("pinned-local");
      const kept = await execNode("node-2", [
        "curl",
        "-sS",
        "-m",
        "10",
        `http://${nodeIP.get("node-1")}:${port}/clientip`,
      ]);
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stdout.split(":")[0]).toBe(nodeIP.get("node-2"));
      const dropped = await execNode("node-1", [
        "curl",
        "-sS",
        "-m",
        "5",
        `http://${nodeIP.get("node-2")}:${port}/`,
      ]);
      expect(dropped.code, `${dropped.stdout} ${dropped.stderr}`).toBe(28);
      const filter = (
        await lab.klab(["iptables-save", "--name", lab.name, "--node", "node-2", "-t", "filter"])
      ).stdout;
      expect(filter).toContain(
        `-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "${NS}/pinned-local:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport ${port} -j DROP`,
      );
    }, 180_000);

    it("prints kube-proxy's chain names and probability strings in klab iptables-save", async () => {
      expect(svcChain("default/kubernetes:https")).toBe("KUBE-SVC-NPX46M4PTMTKRN6Y");
      const nat = (await lab.klab(["iptables-save", "--name", lab.name, "--node", "node-1", "-t", "nat"]))
        .stdout;
      expect(nat).toContain(
        '-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y',
      );
      const spn = `${NS}/backend:http`;
      const svc = svcChain(spn);
      expect(nat).toContain(
        `-A KUBE-SERVICES -d ${backends.clusterIP}/32 -p tcp -m comment --comment "${spn} cluster IP" -m tcp --dport 80 -j ${svc}`,
      );
      const dispatch = nat
        .split("\n")
        .filter((l) => l.startsWith(`-A ${svc} -m comment --comment "${spn} -> `));
      expect(dispatch).toHaveLength(3);
      const probabilities = dispatch.map((l) => /--probability (\S+)/.exec(l)?.[1]);
      expect(probabilities).toEqual(["0.33333333349", "0.50000000000", undefined]);
      const endpoints = [...backends.pods.values()].map((ip) => `${ip}:8080`);
      const targets = dispatch.map((l) => / -j (KUBE-SEP-\S+)$/.exec(l)?.[1]);
      expect(new Set(targets)).toEqual(new Set(endpoints.map((e) => sepChain(spn, e))));
      for (const e of endpoints) {
        const sep = sepChain(spn, e);
        expect(nat).toContain(`:${sep} - [0:0]`);
        expect(nat).toContain(
          `-A ${sep} -p tcp -m comment --comment "${spn}" -m tcp -j DNAT --to-destination ${e}`,
        );
      }
    }, 120_000);

    it("switches the dataplane to ipvs and back when the ConfigMap's mode changes and kube-proxy restarts", async () => {
      const client = (await lab.pods(NS, "app=client"))[0]!;
      await switchProxyMode(lab, "ipvs");
      const table = await ipvsadmShows(lab, client.node, backends.clusterIP, 3);
      expect(virtualServerBlock(table, "TCP  10.96.0.1:443 rr")).toHaveLength(2);
      // The switch is over once the ipvs proxier has also removed the iptables rules it replaces
      // (a connection opened while both are being rewritten can be lost, as in a real cluster).
      await until(`iptables rules gone from ${client.node}`, 180_000, async () => {
        const r = await lab.klab(["iptables-save", "--name", lab.name, "--node", client.node, "-t", "nat"]);
        return r.stdout.includes(svcChain(`${NS}/backend:http`)) ? undefined : true;
      });
      const rr = answers(
        await lab.exec(NS, "client", curlMany("http://backend/hostname", 300)),
        backends,
        300,
      );
      expect([...tally(rr).values()]).toEqual([100, 100, 100]);
      expect(rr.every((name, i) => name === rr[i % 3])).toBe(true);
      const nat = (await lab.klab(["iptables-save", "--name", lab.name, "--node", client.node, "-t", "nat"]))
        .stdout;
      expect(nat).not.toContain(svcChain(`${NS}/backend:http`));

      await switchProxyMode(lab, "iptables");
      await until(`iptables rules back on ${client.node}`, 180_000, async () => {
        const r = await lab.klab(["iptables-save", "--name", lab.name, "--node", client.node, "-t", "nat"]);
        return r.stdout.includes(`-j ${svcChain(`${NS}/backend:http`)}`) ? true : undefined;
      });
      // As above: the switch back is over once the ipvs virtual servers are gone too.
      await until(`ipvs virtual servers gone from ${client.node}`, 180_000, async () => {
        const r = await lab.klab(["ipvsadm", "--name", lab.name, "--node", client.node, "-Ln"]);
        return r.stdout.includes(`${backends.clusterIP}:80`) ? undefined : true;
      });
      const back = answers(
        await lab.exec(NS, "client", curlMany("http://backend/hostname", 300)),
        backends,
        300,
      );
      expect(tally(back).size).toBe(3);
    }, 600_000);
  },
);
