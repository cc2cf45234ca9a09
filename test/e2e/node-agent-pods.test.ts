import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Pod } from "@klab/api";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";
import { startFront, startNode, waitFor, type Front, type TestNode } from "./node-agent-support.ts";

const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47";

describeWith(
  { root: true, tools: ["ip", "curl", "kubectl", "script", "nsenter", "unshare"] },
  "node agent runs pods as processes with their own IPs",
  () => {
    let api: TestApiServer;
    let front: Front;
    let node: TestNode;

    const getPod = async (name: string): Promise<Pod> => {
      const r = await front.kubectl(["get", "pod", name, "-o", "json"]);
      if (r.code !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout) as Pod;
    };
    const apply = async (yaml: string) => {
      const r = await front.kubectl(["apply", "-f", "-"], { input: yaml });
      expect(r.stderr).toBe("");
    };
    const running = (name: string) =>
      waitFor(`${name} Running and Ready`, async () => {
        const p = await getPod(name);
        return p.status?.phase === "Running" &&
          p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")
          ? p
          : undefined;
      });

    beforeAll(async () => {
      api = await startApiServer();
      front = await startFront(api);
      node = await startNode(api, "node-e2e", { podNetwork: "tun" });
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: agnhost
    image: ${AGNHOST}
    args: ["netexec", "--http-port=8080"]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
`);
    });

    afterAll(async () => {
      await node?.cleanup();
      await front?.close();
      await api?.stop();
    });

    it("a pod gets an IP from the node's podCIDR and kubectl shows it Running on the node", async () => {
      const pod = await running("web");
      const nodeObj = JSON.parse((await front.kubectl(["get", "node", "node-e2e", "-o", "json"])).stdout);
      const cidr: string = nodeObj.spec.podCIDR;
      expect(pod.spec?.nodeName).toBe("node-e2e");
      expect(pod.status?.podIP?.split(".").slice(0, 3).join(".")).toBe(cidr.split(".").slice(0, 3).join("."));
      expect(pod.status?.podIPs).toEqual([{ ip: pod.status?.podIP }]);
      expect(pod.status?.containerStatuses?.[0]).toMatchObject({
        name: "agnhost",
        ready: true,
        started: true,
        restartCount: 0,
        image: AGNHOST,
      });
      expect(pod.status?.containerStatuses?.[0].containerID).toMatch(/^klab:\/\/[0-9a-f]{64}$/);
      const wide = await front.kubectl(["get", "pod", "web", "-o", "wide"]);
      expect(wide.stdout).toMatch(/web\s+1\/1\s+Running\s+0\s+\S+\s+10\.244\.\d+\.\d+\s+node-e2e/);
    });

    it("inside the pod: hostname is the pod name, eth0 holds the pod IP, resolv.conf and hosts are kubelet's", async () => {
      const pod = await running("web");
      const ip = pod.status!.podIP!;
      expect((await front.kubectl(["exec", "web", "--", "hostname"])).stdout).toBe("web\n");
      // ClusterFirst: kube-dns, the namespace search path (then the node's own searches), ndots:5
      const resolv = (await front.kubectl(["exec", "web", "--", "cat", "/etc/resolv.conf"])).stdout;
      expect(resolv).toMatch(
        /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local( \S+)*\nnameserver 10\.96\.0\.10\noptions ndots:5\n$/,
      );
      const hosts = (await front.kubectl(["exec", "web", "--", "cat", "/etc/hosts"])).stdout;
      expect(hosts.startsWith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")).toBe(true);
      expect(hosts).toContain(`${ip}\tweb\n`);
      const addr = (await front.kubectl(["exec", "web", "--", "ip", "-4", "-o", "addr", "show", "eth0"]))
        .stdout;
      expect(addr).toContain(`inet ${ip}/24`);
      const routes = (await front.kubectl(["exec", "web", "--", "ip", "route"])).stdout;
      expect(routes).not.toMatch(/^default/m);
      // /agnhost is runnable in the pod, as in the image
      const connect = await front.kubectl([
        "exec",
        "web",
        "--",
        "/agnhost",
        "connect",
        `${ip}:8080`,
        "--timeout=2s",
      ]);
      expect(connect.code).toBe(0);
      const refused = await front.kubectl([
        "exec",
        "web",
        "--",
        "/agnhost",
        "connect",
        `${ip}:9`,
        "--timeout=2s",
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("REFUSED");
    });

    it("kubectl exec returns the command's exit code and passes stdin", async () => {
      await running("web");
      const r = await front.kubectl(["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
      expect(r.code).toBe(7);
      expect(r.stdout).toBe("out\n");
      expect(r.stderr).toContain("err\n");
      expect(r.stderr).toContain("command terminated with exit code 7");
      const cat = await front.kubectl(["exec", "-i", "web", "--", "sh", "-c", "cat | tr a-z A-Z"], {
        input: "hello stdin\n",
      });
      expect(cat.code).toBe(0);
      expect(cat.stdout).toBe("HELLO STDIN\n");
    });

    it("kubectl exec -it gives the command a real TTY", async () => {
      await running("web");
      const out = await new Promise<string>((resolve) => {
        const p = spawn("script", ["-qec", "kubectl exec -it web -- sh -c 'tty; stty size'", "/dev/null"], {
          env: { ...process.env, KUBECONFIG: front.kubeconfig },
          stdio: ["pipe", "pipe", "pipe"],
        });
        let s = "";
        p.stdout.on("data", (d) => (s += d));
        p.on("close", () => resolve(s));
        setTimeout(() => p.kill("SIGKILL"), 30_000).unref();
      });
      expect(out).toMatch(/\/dev\/pts\/\d+/);
    });

    it("kubectl logs prints the container's output, with timestamps and tail, and -f follows it", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"]
`);
      await running("talker");
      await waitFor("3 lines", async () =>
        (await front.kubectl(["logs", "talker"])).stdout.includes("line 3\n") ? true : undefined,
      );
      const logs = (await front.kubectl(["logs", "talker"])).stdout;
      expect(logs.startsWith("line 1\nline 2\nline 3\n")).toBe(true);
      expect((await front.kubectl(["logs", "talker", "--tail=1"])).stdout).toMatch(/^line \d+\n$/);
      expect((await front.kubectl(["logs", "talker", "--tail=1", "--timestamps"])).stdout).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line \d+\n$/,
      );
      const followed = await new Promise<string>((resolve) => {
        const p = spawn("kubectl", ["logs", "-f", "talker", "--tail=0"], {
          env: { ...process.env, KUBECONFIG: front.kubeconfig },
        });
        let s = "";
        p.stdout.on("data", (d) => {
          s += d;
          if ((s.match(/\n/g) ?? []).length >= 3) p.kill("SIGTERM");
        });
        p.on("close", () => resolve(s));
        setTimeout(() => p.kill("SIGKILL"), 20_000).unref();
      });
      expect(followed).toMatch(/^line \d+\nline \d+\nline \d+\n/);
    });

    it("kubectl port-forward carries real traffic to the pod", async () => {
      await running("web");
      const p = spawn("kubectl", ["port-forward", "pod/web", ":8080"], {
        env: { ...process.env, KUBECONFIG: front.kubeconfig },
      });
      try {
        const port = await new Promise<number>((resolve, reject) => {
          let s = "";
          p.stdout.on("data", (d) => {
            s += d;
            const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(s);
            if (m) resolve(Number(m[1]));
          });
          p.stderr.on("data", (d) => (s += d));
          p.on("close", () => reject(new Error(`port-forward exited: ${s}`)));
        });
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`http://127.0.0.1:${port}/hostname`);
          expect(await res.text()).toBe("web");
        }
        const echo = await fetch(`http://127.0.0.1:${port}/echo?msg=${"x".repeat(100_000)}`);
        expect((await echo.text()).length).toBe(100_000);
      } finally {
        p.kill("SIGTERM");
      }
    });

    it("pods talk to each other through the node dataplane without NAT, and keep talking after the agent is killed and restarted", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: peer}
spec:
  containers:
  - {name: agnhost, image: ${AGNHOST}, args: ["netexec", "--http-port=8080"]}
`);
      const web = await running("web");
      const peer = await running("peer");
      const ask = async () =>
        (
          await front.kubectl([
            "exec",
            "peer",
            "--",
            "curl",
            "-s",
            "--max-time",
            "5",
            `http://${web.status!.podIP}:8080/clientip`,
          ])
        ).stdout;
      expect(await ask()).toMatch(new RegExp(`^${peer.status!.podIP!.replace(/\./g, "\\.")}:\\d+$`));
      expect(
        (
          await front.kubectl([
            "exec",
            "peer",
            "--",
            "curl",
            "-s",
            `http://${web.status!.podIP}:8080/hostname`,
          ])
        ).stdout,
      ).toBe("web");
      await node.kill9();
      await node.restart();
      await running("peer");
      expect(
        (
          await front.kubectl([
            "exec",
            "peer",
            "--",
            "curl",
            "-s",
            "--max-time",
            "5",
            `http://${web.status!.podIP}:8080/hostname`,
          ])
        ).stdout,
      ).toBe("web");
      const after = await getPod("web");
      expect(after.status?.containerStatuses?.[0].restartCount).toBe(0);
    });
  },
);
