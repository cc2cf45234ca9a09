import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../support/prereq.ts";
import { startApiServer, type TestApiServer } from "../support/apiserver.ts";

const svc = (name: string, nodePort: number, clusterIP?: string) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name },
    spec: { type: "NodePort", ...(clusterIP ? { clusterIP } : {}), ports: [{ port: 80, nodePort }] },
  });

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeWith(
  { tools: ["kubectl"] },
  "controllers: allocations and workloads survive a killed API server",
  () => {
    let api: TestApiServer;

    beforeAll(async () => {
      api = await startApiServer();
    });

    afterAll(async () => {
      await api?.stop();
    });

    it("still refuses a taken ClusterIP and NodePort after kill -9 and restart", async () => {
      const a = await api.kubectl(["apply", "-f", "-"], { input: svc("held", 30111, "10.96.0.77") });
      expect(a.code, a.stderr).toBe(0);
      await api.kill9();
      await api.restart();
      const b = await api.kubectl(["apply", "-f", "-"], { input: svc("again", 30111) });
      expect(b.stderr).toContain(
        "spec.ports[0].nodePort: Invalid value: 30111: provided port is already allocated",
      );
      const c = await api.kubectl(["apply", "-f", "-"], { input: svc("again", 30112, "10.96.0.77") });
      expect(c.stderr).toContain("failed to allocate IP 10.96.0.77: provided IP is already allocated");
    });

    it("keeps reconciling a Deployment created before the restart", async () => {
      const node = JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "solo" } });
      expect((await api.kubectl(["apply", "-f", "-"], { input: node })).code).toBe(0);
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const ready = JSON.stringify({
        status: {
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "KubeletReady",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      });
      expect(
        (await api.kubectl(["patch", "node", "solo", "--subresource=status", "--type=merge", "-p", ready]))
          .code,
      ).toBe(0);
      expect(
        (await api.kubectl(["create", "deployment", "keep", "--image=nginx", "--replicas=2"])).code,
      ).toBe(0);
      const count = async () =>
        (
          await api.kubectl(["get", "pods", "-l", "app=keep", "-o", "jsonpath={.items[*].spec.nodeName}"])
        ).stdout
          .trim()
          .split(/\s+/)
          .filter(Boolean).length;
      await until("2 bound pods", async () => (await count()) === 2);
      await api.kill9();
      await api.restart();
      expect((await api.kubectl(["scale", "deployment", "keep", "--replicas=3"])).code).toBe(0);
      await until("3 bound pods after the restart", async () => (await count()) === 3);
      const rs = await api.kubectl([
        "get",
        "rs",
        "-l",
        "app=keep",
        "-o",
        "jsonpath={.items[*].spec.replicas}",
      ]);
      expect(rs.stdout.trim()).toBe("3");
    });
  },
);
