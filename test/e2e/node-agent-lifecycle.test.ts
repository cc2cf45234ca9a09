import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Pod } from "@klab/api";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";
import { startFront, startNode, waitFor, type Front, type TestNode } from "./node-agent-support.ts";

const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47";

describeWith(
  { root: true, tools: ["ip", "curl", "kubectl", "nsenter", "unshare"] },
  "node agent: probes, restarts, pull errors, termination, adoption",
  () => {
    let api: TestApiServer;
    let front: Front;
    let node: TestNode;

    const getPod = async (name: string): Promise<Pod | undefined> => {
      const r = await front.kubectl(["get", "pod", name, "-o", "json"]);
      return r.code === 0 ? (JSON.parse(r.stdout) as Pod) : undefined;
    };
    const apply = async (yaml: string) => {
      const r = await front.kubectl(["apply", "-f", "-"], { input: yaml });
      expect(r.stderr).toBe("");
    };
    const until = (what: string, name: string, ok: (p: Pod) => boolean, timeoutMs = 60_000) =>
      waitFor(
        what,
        async () => {
          const p = await getPod(name);
          return p && ok(p) ? p : undefined;
        },
        timeoutMs,
      );
    const ready = (p: Pod) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

    beforeAll(async () => {
      api = await startApiServer();
      front = await startFront(api);
      // the kernel-bridge pod network (the pods suite runs the TUN dataplane)
      node = await startNode(api, "node-life", { podNetwork: "bridge" });
    });
    afterAll(async () => {
      await node?.cleanup();
      await front?.close();
      await api?.stop();
    });

    it("a failing readiness probe makes the pod NotReady, a passing one Ready again", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: ready-gate}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "touch /tmp/ready-$HOSTNAME; sleep 3600"]
    readinessProbe: {exec: {command: ["sh", "-c", "test -f /tmp/ready-$HOSTNAME"]}, periodSeconds: 1, failureThreshold: 1}
`);
      await until("Ready", "ready-gate", ready);
      // the pod's /tmp is the node's: remove the marker from outside
      execFileSync("rm", ["-f", "/tmp/ready-ready-gate"]);
      const p = await until("NotReady", "ready-gate", (x) => !ready(x));
      expect(p.status?.conditions?.find((c) => c.type === "ContainersReady")).toMatchObject({
        status: "False",
        reason: "ContainersNotReady",
        message: "containers with unready status: [c]",
      });
      expect(p.status?.containerStatuses?.[0].ready).toBe(false);
      expect((await front.kubectl(["get", "pod", "ready-gate"])).stdout).toMatch(
        /ready-gate\s+0\/1\s+Running/,
      );
      execFileSync("touch", ["/tmp/ready-ready-gate"]);
      await until("Ready again", "ready-gate", ready);
      execFileSync("rm", ["-f", "/tmp/ready-ready-gate"]);
    });

    it("a failing liveness probe restarts the container and restartCount grows", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: unlive}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ${AGNHOST}
    args: ["netexec", "--http-port=8080"]
    livenessProbe: {httpGet: {path: /healthz, port: 8081}, periodSeconds: 1, failureThreshold: 1}
`);
      const p = await until(
        "a restart",
        "unlive",
        (x) => (x.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
      );
      expect(p.status?.containerStatuses?.[0].lastState?.terminated).toBeDefined();
      const ev = await front.kubectl([
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=unlive",
        "-o",
        "json",
      ]);
      const reasons = (JSON.parse(ev.stdout).items as Array<{ reason: string; message: string }>).map(
        (e) => `${e.reason}: ${e.message}`,
      );
      expect(reasons.some((r) => r.startsWith("Unhealthy: Liveness probe failed:"))).toBe(true);
      expect(reasons).toContain("Killing: Container web failed liveness probe, will be restarted");
    });

    it("a crashing container reaches CrashLoopBackOff with kubelet's back-off message", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "echo about to fail; exit 3"]}
`);
      const p = await until(
        "CrashLoopBackOff",
        "crasher",
        (x) => x.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CrashLoopBackOff",
      );
      const cs = p.status!.containerStatuses![0];
      expect(cs.state?.waiting?.message).toMatch(
        new RegExp(
          `^back-off \\d+s restarting failed container=c pod=crasher_default\\(${p.metadata.uid}\\)$`,
        ),
      );
      expect(cs.lastState?.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
      expect(cs.restartCount).toBeGreaterThanOrEqual(1);
      expect((await front.kubectl(["get", "pod", "crasher"])).stdout).toMatch(
        /crasher\s+0\/1\s+CrashLoopBackOff\s+\d+ \(\S+ ago\)/,
      );
      const prev = await front.kubectl(["logs", "crasher", "--previous"]);
      expect(prev.stdout).toBe("about to fail\n");
    });

    it("an image outside the catalog gets ErrImagePull then ImagePullBackOff with a message naming the catalog", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  containers:
  - {name: c, image: "example.com/team/app:1.0"}
`);
      const p = await until(
        "ImagePullBackOff",
        "nopull",
        (x) => x.status?.containerStatuses?.[0]?.state?.waiting?.reason === "ImagePullBackOff",
      );
      expect(p.status?.containerStatuses?.[0].state?.waiting?.message).toBe(
        'Back-off pulling image "example.com/team/app:1.0"',
      );
      expect(p.status?.phase).toBe("Pending");
      const ev = await front.kubectl([
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nopull",
        "-o",
        "json",
      ]);
      const msgs = (JSON.parse(ev.stdout).items as Array<{ message: string }>)
        .map((e) => e.message)
        .join("\n");
      expect(msgs).toContain('Failed to pull image "example.com/team/app:1.0"');
      expect(msgs).toContain("registry.k8s.io/e2e-test-images/agnhost");
    });

    it("a pod that completes is Succeeded (restartPolicy Never), a failing one Failed", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "echo done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: once-bad}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "exit 2"]}
`);
      const ok = await until("Succeeded", "once", (x) => x.status?.phase === "Succeeded");
      expect(ok.status?.containerStatuses?.[0].state?.terminated).toMatchObject({
        exitCode: 0,
        reason: "Completed",
      });
      const bad = await until("Failed", "once-bad", (x) => x.status?.phase === "Failed");
      expect(bad.status?.containerStatuses?.[0].state?.terminated).toMatchObject({
        exitCode: 2,
        reason: "Error",
      });
      const exec = await front.kubectl(["exec", "once", "--", "true"]);
      expect(exec.code).not.toBe(0);
    });

    it("downward API and Service variables reach the container's environment", async () => {
      await apply(`
apiVersion: v1
kind: Service
metadata: {name: web-service}
spec:
  selector: {app: nothing}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: envy}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    env:
    - {name: MY_POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MY_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
`);
      const p = await until("Running", "envy", (x) => x.status?.phase === "Running");
      const svc = JSON.parse((await front.kubectl(["get", "svc", "web-service", "-o", "json"])).stdout);
      const env = (await front.kubectl(["exec", "envy", "--", "env"])).stdout;
      expect(env).toContain("MY_POD_NAME=envy\n");
      expect(env).toContain(`MY_POD_IP=${p.status?.podIP}\n`);
      expect(env).toContain("MY_NODE=node-life\n");
      expect(env).toContain(`WEB_SERVICE_SERVICE_HOST=${svc.spec.clusterIP}\n`);
      expect(env).toContain("WEB_SERVICE_SERVICE_PORT=80\n");
      expect(env).toContain(`WEB_SERVICE_PORT_80_TCP=tcp://${svc.spec.clusterIP}:80\n`);
      expect(env).toContain("HOSTNAME=envy\n");
    });

    it("dnsPolicy None with dnsConfig and hostAliases are written into the pod", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: dns-none}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: ["192.0.2.53"]
    searches: ["lab.example"]
    options: [{name: ndots, value: "2"}]
  hostAliases: [{ip: "127.0.0.1", hostnames: ["foo.local"]}]
  containers:
  - {name: c, image: busybox, command: ["sleep", "3600"]}
`);
      await until("Running", "dns-none", (x) => x.status?.phase === "Running");
      expect((await front.kubectl(["exec", "dns-none", "--", "cat", "/etc/resolv.conf"])).stdout).toBe(
        "search lab.example\nnameserver 192.0.2.53\noptions ndots:2\n",
      );
      expect((await front.kubectl(["exec", "dns-none", "--", "cat", "/etc/hosts"])).stdout).toContain(
        "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\n",
      );
    });

    it("after kill -9 of the agent the pods keep running and the restarted agent takes them back", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: survivor}
spec:
  containers:
  - {name: web, image: ${AGNHOST}, args: ["netexec", "--http-port=8080"], readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
`);
      const before = await until("Running", "survivor", (x) => ready(x));
      const ip = before.status!.podIP!;
      const netns = execFileSync("ip", ["netns", "list"])
        .toString()
        .split("\n")
        .map((l) => l.split(" ")[0])
        .find((n) =>
          n.startsWith(`${node.prefix}-node-life-${before.metadata.uid!.replace(/-/g, "").slice(0, 8)}`),
        )!;
      const ask = () =>
        execFileSync("ip", [
          "netns",
          "exec",
          netns,
          "curl",
          "-s",
          "--max-time",
          "2",
          `http://${ip}:8080/hostname`,
        ]).toString();
      expect(ask()).toBe("survivor");
      await node.kill9();
      expect(ask()).toBe("survivor");
      await node.restart();
      const after = await until("Ready after adoption", "survivor", (x) => ready(x));
      expect(after.status?.containerStatuses?.[0].restartCount).toBe(0);
      expect(after.status?.containerStatuses?.[0].containerID).toBe(
        before.status?.containerStatuses?.[0].containerID,
      );
      expect(after.status?.podIP).toBe(ip);
      expect(ask()).toBe("survivor");
      expect((await front.kubectl(["exec", "survivor", "--", "hostname"])).stdout).toBe("survivor\n");
    });

    it("a hostNetwork pod runs in the node's namespace; ClusterFirstWithHostNet keeps cluster DNS", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  containers:
  - {name: c, image: busybox, command: ["sleep", "3600"]}
`);
      const p = await until("Running", "hostnet", (x) => x.status?.phase === "Running");
      expect(p.status?.podIP).toBe(node.ip);
      const resolv = (await front.kubectl(["exec", "hostnet", "--", "cat", "/etc/resolv.conf"])).stdout;
      expect(resolv).toMatch(/^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
      expect(resolv).toContain("nameserver 10.96.0.10\n");
      const hosts = (await front.kubectl(["exec", "hostnet", "--", "cat", "/etc/hosts"])).stdout;
      expect(hosts.startsWith("# Kubernetes-managed hosts file (host network).\n")).toBe(true);
      const own = execFileSync("readlink", ["/proc/self/ns/net"]).toString().trim();
      const inPod = (
        await front.kubectl(["exec", "hostnet", "--", "readlink", "/proc/self/ns/net"])
      ).stdout.trim();
      expect(inPod).toBe(own);
    });

    it("garbage on a port-forward stream ends that session only", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: pf-target}
spec:
  containers:
  - {name: web, image: ${AGNHOST}, args: ["netexec", "--http-port=8080"]}
`);
      await until("pf-target Ready", "pf-target", (x) => ready(x));
      // a raw WebSocket client: the ws library refuses subprotocol names with '/', as Go clients do not
      const { connect } = await import("node:tls");
      const u = new URL(front.url);
      const answer = await new Promise<string>((resolve) => {
        const sock = connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
          sock.write(
            `GET /api/v1/namespaces/default/pods/pf-target/portforward HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
              `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n` +
              `Authorization: Bearer ${api.token}\r\n\r\n`,
          );
        });
        let got = "";
        sock.on("data", (d: Buffer) => {
          if (!got) {
            const payload = Buffer.from("\x80\x02\x00\x01\x00\x00\x00\x08garbage!", "latin1");
            const mask = Buffer.from([1, 2, 3, 4]);
            const frame = Buffer.concat([
              Buffer.from([0x82, 0x80 | payload.length]),
              mask,
              payload.map((b, k) => b ^ mask[k % 4]),
            ]);
            sock.write(frame);
          }
          got += d.toString("latin1");
          if (got.includes("\x88\x02\x03\xe8")) {
            sock.destroy();
            resolve(got);
          }
        });
        sock.on("close", () => resolve(got));
        sock.on("error", () => resolve(got));
        setTimeout(() => sock.destroy(), 10_000).unref();
      });
      expect(answer.startsWith("HTTP/1.1 101")).toBe(true);
      // the kubelet ends the session: a close frame (opcode 8) with status 1000
      const closed = answer.includes("\x88\x02\x03\xe8") ? 1000 : -1;
      expect(closed).toBe(1000);
      expect((await front.kubectl(["exec", "pf-target", "--", "hostname"])).stdout).toBe("pf-target\n");
    });

    it("deleting a pod stops it gracefully, removes its namespace and the object", async () => {
      await apply(`
apiVersion: v1
kind: Pod
metadata: {name: goner}
spec:
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done"]}
`);
      const p = await until("Running", "goner", (x) => x.status?.phase === "Running");
      const prefix = `${node.prefix}-node-life-${p.metadata.uid!.replace(/-/g, "").slice(0, 8)}`;
      expect(execFileSync("ip", ["netns", "list"]).toString()).toContain(prefix);
      const del = await front.kubectl(["delete", "pod", "goner", "--timeout=60s"]);
      expect(del.stdout).toContain('pod "goner" deleted');
      expect(await getPod("goner")).toBeUndefined();
      expect(execFileSync("ip", ["netns", "list"]).toString()).not.toContain(prefix);
    });
  },
);
