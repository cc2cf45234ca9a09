/**
 * `klab up --nodes 2` on this machine, end to end, with the real kubectl: nodes in network
 * namespaces, pods as processes with their own IPs on both nodes, pod-to-pod traffic without NAT
 * over the dataplane (VXLAN between nodes), then `klab down` leaving nothing behind.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const cli = join(root, "packages/cli/bin/klab.js");
const name = `klabt${process.pid % 100000}`;
const home = mkdtempSync(join(tmpdir(), "klab-native-"));
const env = { ...process.env, KLAB_HOME: home };
const apiPort = String(20000 + (process.pid % 5000));
const kubeconfig = join(home, name, "kubeconfig");

async function klab(args: string[], timeout = 300_000): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, ...args], { env, timeout, maxBuffer: 16 << 20 });
  return stdout;
}

interface PodRow {
  name: string;
  ip: string;
  node: string;
}

const kubectl = (args: string[]) => runCommand("kubectl", ["--kubeconfig", kubeconfig, ...args]);

async function pods(selector: string): Promise<PodRow[]> {
  const { stdout } = await kubectl(["get", "pods", "-l", selector, "-o", "json"]);
  const list = JSON.parse(stdout) as {
    items: {
      metadata: { name: string };
      spec: { nodeName?: string };
      status: { podIP?: string; phase?: string };
    }[];
  };
  return list.items
    .filter((p) => p.status.phase === "Running" && p.status.podIP)
    .map((p) => ({ name: p.metadata.name, ip: p.status.podIP!, node: p.spec.nodeName! }));
}

/** The roots of the processes whose root directory is under `dir` (a lab's pods chroot there). */
function rootedIn(dir: string): string[] {
  const roots: string[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      if (root.startsWith(`${dir}/`)) roots.push(`${pid} ${root}`);
    } catch {
      // gone meanwhile, or a zombie
    }
  }
  return roots;
}

describeWith(
  { root: true, tun: true, tools: ["ip", "kubectl", "curl", "ping", "tcpdump"] },
  "klab up on Linux (native driver)",
  () => {
    beforeAll(async () => {
      await klab([
        "up",
        "--name",
        name,
        "--nodes",
        "2",
        "--api-port",
        apiPort,
        "--bare",
        "--http-port",
        "0",
        "--https-port",
        "0",
      ]);
    }, 400_000);

    afterAll(async () => {
      await klab(["down", "--name", name]).catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    }, 120_000);

    it("shows 2 Ready nodes with InternalIPs in the node network", async () => {
      const { stdout } = await kubectl(["get", "nodes", "-o", "wide", "--no-headers"]);
      const rows = stdout.trim().split("\n");
      expect(rows).toHaveLength(2);
      for (const row of rows) expect(row).toMatch(/^node-\d\s+Ready\s+.*\s172\.29\.0\.\d+\s/);
    });

    it("runs a Deployment's pods on both nodes with IPs from each node's podCIDR", async () => {
      const created = await kubectl([
        "create",
        "deployment",
        "echo",
        "--image=registry.k8s.io/e2e-test-images/agnhost:2.52",
        "--replicas=4",
        "--port=8080",
        "--",
        "/agnhost",
        "netexec",
        "--http-port=8080",
      ]);
      expect(created.stderr).toBe("");
      const running = await until("4 running pods", 180_000, async () => {
        const p = await pods("app=echo");
        return p.length === 4 ? p : undefined;
      });
      const nodes = new Set(running.map((p) => p.node));
      expect(nodes.size).toBe(2);
      const { stdout } = await kubectl([
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR} {end}",
      ]);
      const cidrs = Object.fromEntries(
        stdout
          .trim()
          .split(" ")
          .map((kv) => kv.split("=")),
      );
      for (const p of running) {
        const prefix = (cidrs[p.node] as string).split(".").slice(0, 3).join(".") + ".";
        expect(p.ip.startsWith(prefix)).toBe(true);
      }
    }, 240_000);

    it("carries pod-to-pod HTTP and ping without NAT, on one node and across nodes", async () => {
      const all = await pods("app=echo");
      const from = all[0]!;
      const sameNode = all.find((p) => p !== from && p.node === from.node);
      const otherNode = all.find((p) => p.node !== from.node)!;
      for (const to of [sameNode, otherNode].filter((p): p is PodRow => !!p)) {
        const hostname = await kubectl([
          "exec",
          from.name,
          "--",
          "curl",
          "-s",
          "-m",
          "5",
          `http://${to.ip}:8080/hostname`,
        ]);
        expect(hostname.stdout).toBe(to.name);
        const clientip = await kubectl([
          "exec",
          from.name,
          "--",
          "curl",
          "-s",
          "-m",
          "5",
          `http://${to.ip}:8080/clientip`,
        ]);
        expect(clientip.stdout.split(":")[0]).toBe(from.ip);
        const ping = await kubectl(["exec", from.name, "--", "ping", "-c", "1", "-W", "3", to.ip]);
        expect(ping.stdout).toContain("1 received");
      }
    }, 120_000);

    it("sends cross-node packets as VXLAN that tcpdump in a node's namespace decodes", async () => {
      const all = await pods("app=echo");
      const from = all[0]!;
      const to = all.find((p) => p.node !== from.node)!;
      const capture = run(
        "ip",
        // tcpdump names UDP 8472 "OTV" unless told it is VXLAN, as with flannel's overlay.
        [
          "netns",
          "exec",
          `${name}-${from.node}`,
          "tcpdump",
          "-n",
          "-T",
          "vxlan",
          "-i",
          "eth0",
          "-c",
          "1",
          "udp",
          "port",
          "8472",
        ],
        { timeout: 30_000 },
      );
      await new Promise((r) => setTimeout(r, 1_000));
      await kubectl(["exec", from.name, "--", "curl", "-s", "-m", "5", `http://${to.ip}:8080/hostname`]);
      const { stdout } = await capture;
      expect(stdout).toMatch(/VXLAN, flags \[I\] \(0x08\), vni 1/);
      expect(stdout).toContain(from.ip);
    }, 60_000);

    it("stops every process of a force-deleted pod itself, before klab down", async () => {
      // CoreDNS catches SIGTERM; a forced delete gives it no grace period, and nothing of the pod
      // (container, sandbox) may outlive it, out of every named namespace.
      const { stdout } = await kubectl([
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "k8s-app=kube-dns",
        "-o",
        "jsonpath={.items[*].metadata.uid}",
      ]);
      const uids = stdout.trim().split(/\s+/).filter(Boolean);
      expect(uids.length).toBeGreaterThan(0);
      const inDeletedPods = () =>
        rootedIn(join(home, name)).filter((r) => uids.some((u) => r.includes(`/pods/${u}/`)));
      expect(inDeletedPods().length).toBeGreaterThan(0);
      await kubectl([
        "-n",
        "kube-system",
        "delete",
        "pod",
        "-l",
        "k8s-app=kube-dns",
        "--grace-period=0",
        "--force",
      ]);
      await until("the deleted pods' processes to be gone", 60_000, async () =>
        inDeletedPods().length === 0 ? true : undefined,
      );
    }, 120_000);

    it("leaves no namespace, process or state behind after klab down", async () => {
      await klab(["down", "--name", name]);
      expect(rootedIn(join(home, name))).toEqual([]);
      const { stdout } = await run("ip", ["netns", "list"]);
      expect(stdout.split("\n").filter((l) => l.startsWith(`${name}-`))).toEqual([]);
      const ps = await run("ps", ["-eo", "args"]);
      expect(ps.stdout.split("\n").filter((l) => l.includes(join(home, name)))).toEqual([]);
      expect(existsSync(join(home, name))).toBe(false);
    }, 120_000);
  },
);
