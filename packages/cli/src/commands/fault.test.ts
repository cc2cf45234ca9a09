import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { KubeClient } from "@klab/client";
import { FaultController } from "@klab/dataplane/faults/controller.ts";
import type { Fault } from "@klab/dataplane/faults/model.ts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith } from "../../../../test/support/prereq.ts";
import { startApiServer, type TestApiServer } from "../../../../test/support/apiserver.ts";
import { buildFault, parseTargetRef } from "./fault.ts";

const CLI = resolve(import.meta.dirname, "../../bin/klab.js");

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it("builds faults from flags, refusing bad ones", () => {
  expect(buildFault("delay", { pod: "10.244.1.5" }, { id: "d", delay: "100ms", jitter: "10ms" })).toEqual({
    id: "d",
    kind: "delay",
    target: { pod: "10.244.1.5" },
    delayMs: 100,
    jitterMs: 10,
  });
  expect(buildFault("bandwidth", { node: "10.0.0.1" }, { id: "b", rate: "1mbit" }).rateBytesPerSecond).toBe(
    125_000,
  );
  expect(() => buildFault("loss", { pod: "10.244.1.5" }, { loss: "150%" })).toThrow(
    /--loss "150%" must be between/,
  );
  expect(() => buildFault("nope", {}, {})).toThrow(/unknown fault kind "nope"/);
  expect(parseTargetRef("partition", "10.0.0.3")).toEqual({ kind: "node", value: "10.0.0.3" });
  expect(parseTargetRef("reset", "svc/web")).toEqual({ kind: "service", value: "web" });
  expect(() => parseTargetRef("loss", "web")).toThrow(/expected pod\/NAME/);
  expect(() => parseTargetRef("loss", undefined)).toThrow(/needs a target/);
  expect(parseTargetRef("kill-container", "web-1")).toEqual({ kind: "pod", value: "web-1" });
  expect(parseTargetRef("freeze-node", "node/node-2")).toEqual({ kind: "node", value: "node-2" });
  expect(parseTargetRef("conntrack-fill", "node-1")).toEqual({ kind: "node", value: "node-1" });
  expect(() => parseTargetRef("stop-kube-proxy", "pod/web")).toThrow(/targets node\/NAME/);
  expect(buildFault("limit-data", { service: "10.96.0.20:80" }, { id: "l", bytes: "1000" }).bytes).toBe(1000);
  expect(buildFault("slow-close", { service: "10.96.0.20:80" }, { id: "s", delay: "2s" }).delayMs).toBe(2000);
  expect(buildFault("conntrack-fill", { node: "10.0.0.1" }, { id: "c", max: "512" }).max).toBe(512);
});

describeWith({ tools: ["kubectl"] }, "klab fault against the API server", () => {
  let api: TestApiServer;
  let client: KubeClient;
  const klab = (...args: string[]) =>
    promisify(execFile)(process.execPath, [CLI, "fault", ...args, "--kubeconfig", api.kubeconfig], {
      timeout: 60_000,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        stdout: e.stdout,
        stderr: e.stderr,
      }),
    );

  beforeAll(async () => {
    api = await startApiServer();
    client = KubeClient.fromKubeconfig(api.kubeconfig);
  });
  afterAll(async () => {
    await client?.close();
    await api?.stop();
  });

  it("injects, lists and clears faults kept in kube-system/klab-faults, which a controller applies", async () => {
    let applied: Fault[] = [];
    const controller = new FaultController(client, (f) => (applied = f));
    await controller.start();
    try {
      expect(applied).toEqual([]);
      const inj = await klab(
        "inject",
        "delay",
        "10.244.1.5",
        "--delay",
        "100ms",
        "--jitter",
        "10ms",
        "--id",
        "slow-web",
      );
      expect(inj).toMatchObject({
        code: 0,
        stdout: "fault/slow-web injected (delay pod 10.244.1.5 delay=100ms jitter=10ms)\n",
      });
      await until("the controller to apply the fault", () => applied.length === 1);
      expect(applied[0]).toMatchObject({ id: "slow-web", kind: "delay", delayMs: 100 });

      const svc = await api.kubectl(["create", "service", "clusterip", "web", "--tcp=80:8080"]);
      expect(svc.code).toBe(0);
      const ip = (await api.kubectl(["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])).stdout;
      expect((await klab("inject", "reset", "service/web", "--id", "web-reset")).code).toBe(0);
      expect((await klab("inject", "dns-servfail", "*.example.com.", "--id", "dns")).code).toBe(0);
      const cm = await api.kubectl(["get", "configmap", "-n", "kube-system", "klab-faults", "-o", "json"]);
      expect(Object.keys(JSON.parse(cm.stdout).data).sort()).toEqual(["dns", "slow-web", "web-reset"]);

      const list = await klab("list");
      expect(list.stdout).toMatch(/^ID\s+KIND\s+TARGET\n/);
      expect(list.stdout).toContain(`service ${ip}:80`);
      expect(list.stdout).toMatch(/slow-web\s+delay\s+pod 10\.244\.1\.5 delay=100ms jitter=10ms/);

      // A component that restarts reads the faults back from the API.
      let again: Fault[] = [];
      const restarted = new FaultController(client, (f) => (again = f));
      await restarted.start();
      restarted.stop();
      expect(again.map((f) => f.id)).toEqual(["dns", "slow-web", "web-reset"]);

      expect(await klab("clear", "slow-web")).toMatchObject({ code: 0, stdout: "fault/slow-web cleared\n" });
      await until("the controller to drop it", () => applied.length === 2);
      expect(await klab("clear")).toMatchObject({ code: 0 });
      await until("every fault to go", () => applied.length === 0);
      expect((await klab("list")).stderr).toBe("No faults found.\n");
    } finally {
      controller.stop();
    }
  });

  it("refuses bad input with a clear error", async () => {
    expect(await klab("inject", "loss", "10.244.1.5", "--loss", "150%")).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--loss "150%" must be between 0% and 100%/),
    });
    expect((await klab("inject", "delay", "pod/missing", "--delay", "1ms")).stderr).toMatch(
      /pods "missing" not found/,
    );
    expect((await klab("clear", "nothing-here")).stderr).toMatch(/fault nothing-here not found/);
    expect((await klab("inject", "mtu", "node/10.0.0.1", "--mtu", "1")).stderr).toMatch(
      /mtu must be a number between 68/,
    );
  });
});
