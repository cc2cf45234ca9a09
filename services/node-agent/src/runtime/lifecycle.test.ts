import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Container } from "@klab/api";
import { graceAfterHook, runPreStop } from "./lifecycle.ts";
import type { ProbeTarget } from "./probes.ts";

const dir = mkdtempSync(join(tmpdir(), "klab-prestop-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// No pod here: the hook runs on this host (an empty nsenter prefix), as for a hostNetwork pod.
const target = (container: Partial<Container> = {}): ProbeTarget => ({
  podIP: "127.0.0.1",
  enter: [],
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  container: { name: "app", image: "busybox", ...container } as Container,
});
const podRef = "web-1_default(u1)";

describe("the preStop hook (kubelet's killContainer)", () => {
  it("runs an exec hook in the container before the stop signal", async () => {
    const marker = join(dir, "stopped");
    const r = await runPreStop(
      { exec: { command: ["sh", "-c", `echo draining > ${marker}`] } },
      target(),
      podRef,
      30,
    );
    expect(r).toMatchObject({ timedOut: false });
    expect(r.failure).toBeUndefined();
    expect(readFileSync(marker, "utf8")).toBe("draining\n");
  });

  it("reports a failing exec hook in kubelet's words", async () => {
    const r = await runPreStop(
      { exec: { command: ["sh", "-c", "echo no >&2; exit 3"] } },
      target(),
      podRef,
      30,
    );
    expect(r.failure).toBe(
      'Exec lifecycle hook ([sh -c echo no >&2; exit 3]) for Container "app" in Pod "web-1_default(u1)" failed - error: no\n',
    );
  });

  it("calls an httpGet hook on the pod's port", async () => {
    const paths: string[] = [];
    const server: Server = createServer((req, res) => {
      paths.push(req.url ?? "");
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await runPreStop(
        { httpGet: { path: "/drain", port: "http" } },
        target({ ports: [{ name: "http", containerPort: port }] }),
        podRef,
        30,
      );
      expect(r.failure).toBeUndefined();
      expect(paths).toEqual(["/drain"]);
    } finally {
      server.close();
    }
  });

  it("stops waiting for a hook when the grace period runs out", async () => {
    const marker = join(dir, "never");
    const r = await runPreStop(
      { exec: { command: ["sh", "-c", `sleep 30; touch ${marker}`] } },
      target(),
      podRef,
      1,
    );
    expect(r.timedOut).toBe(true);
    expect(r.failure).toBeUndefined();
    expect(existsSync(marker)).toBe(false);
    expect(await runPreStop({ sleep: { seconds: 30 } }, target(), podRef, 1)).toMatchObject({
      timedOut: true,
    });
  });

  it("leaves the stop signal what the hook did not use, at least 2 seconds", () => {
    expect(graceAfterHook(30, 5.4)).toBe(25);
    expect(graceAfterHook(30, 0.2)).toBe(30);
    expect(graceAfterHook(5, 5)).toBe(2);
    expect(graceAfterHook(3, 10)).toBe(2);
  });
});
