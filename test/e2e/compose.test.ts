/**
 * `docker compose up` from this checkout, end to end: the lab in containers, reached from the
 * host with the real kubectl and curl, then `down -v` leaves nothing behind. It builds the image
 * on the offline base (docker/build-base-image.sh) unless KLAB_BASE_IMAGE names another.
 */
import { execFile, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith, hasTool } from "../support/prereq.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const project = `klabe2e${process.pid}`;
const kubeconfig = join(root, ".klab", "kubeconfig");

/** docker compose v2 if present, else docker-compose 1.29. */
function composeCommand(): string[] {
  const v2 = spawnSync("docker", ["compose", "version"], { stdio: "ignore" });
  return v2.status === 0 ? ["docker", "compose"] : ["docker-compose"];
}

async function compose(args: string[], timeoutMs = 600_000): Promise<string> {
  const [cmd, ...pre] = composeCommand();
  const { stdout } = await run(cmd!, [...pre, "-p", project, ...args], {
    cwd: root,
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
    env: { ...process.env, KLAB_BASE_IMAGE: process.env.KLAB_BASE_IMAGE ?? "klab-base:bookworm" },
  });
  return stdout;
}

async function kubectl(args: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run("kubectl", ["--kubeconfig", kubeconfig, ...args], { timeout: 60_000 });
    return { stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; code?: number };
    return { stdout: e.stdout ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

const needs = {
  docker: true,
  tools: ["kubectl", "curl", hasTool("docker-compose") ? "docker-compose" : "docker"],
};

describeWith(needs, "docker compose up: the lab in containers", () => {
  beforeAll(async () => {
    rmSync(join(root, ".klab"), { recursive: true, force: true });
    if (!process.env.KLAB_BASE_IMAGE) {
      await run("bash", [join(root, "docker/build-base-image.sh")], {
        timeout: 900_000,
        maxBuffer: 64 << 20,
      });
    }
    await compose(["build"], 1_500_000);
    await compose(["up", "-d"]);
  }, 2_400_000);

  afterAll(async () => {
    const logs = await compose(["logs", "--no-color", "--tail", "40"]).catch(() => "");
    if (logs) process.stderr.write(logs.slice(-20_000));
    await compose(["down", "-v", "--remove-orphans"]).catch(() => undefined);
  }, 300_000);

  it("brings up 3 Ready nodes with the kube-system and ingress-nginx pods Running", async () => {
    await until("3 Ready nodes", 300_000, async () => {
      const { stdout } = await kubectl(["get", "nodes", "--no-headers"]);
      return (stdout.match(/\sReady\s/g) ?? []).length === 3 ? true : undefined;
    });
    await until("system pods Running", 300_000, async () => {
      const { stdout } = await kubectl(["get", "pods", "-n", "kube-system", "--no-headers"]);
      const ingress = await kubectl(["get", "pods", "-n", "ingress-nginx", "--no-headers"]);
      const lines = [...stdout.trim().split("\n"), ...ingress.stdout.trim().split("\n")].filter(Boolean);
      return lines.length >= 6 && lines.every((l) => /\sRunning\s/.test(l)) ? true : undefined;
    });
  }, 700_000);

  it("answers https://myapp.com:8443/api from an api pod through the edge and the ingress", async () => {
    const body = await until("the ingress to answer", 300_000, async () => {
      const { stdout } = await run("curl", [
        "-sk",
        "--max-time",
        "5",
        "--resolve",
        "myapp.com:8443:127.0.0.1",
        "https://myapp.com:8443/api",
      ]);
      return stdout.trim().startsWith("api-") ? stdout.trim() : undefined;
    });
    expect(body).toMatch(/^api-[a-z0-9]+-[a-z0-9]{5}$/);
  }, 400_000);

  it("resolves web-service from inside a pod and reaches it", async () => {
    const { stdout: pods } = await kubectl([
      "get",
      "pods",
      "-l",
      "app=web",
      "-o",
      "jsonpath={.items[0].metadata.name}",
    ]);
    const out = await until("web-service from a pod", 120_000, async () => {
      const r = await kubectl(["exec", pods, "--", "/agnhost", "connect", "web-service:80", "--timeout=3s"]);
      return r.code === 0 ? r : undefined;
    });
    expect(out.code).toBe(0);
    const lookup = await kubectl(["exec", pods, "--", "nslookup", "web-service"]);
    expect(lookup.stdout).toContain("web-service.default.svc.cluster.local");
  }, 200_000);

  it("leaves no container, network or volume behind after down -v", async () => {
    await compose(["down", "-v", "--remove-orphans"]);
    const containers = await run("docker", [
      "ps",
      "-a",
      "--filter",
      `label=com.docker.compose.project=${project}`,
      "-q",
    ]);
    const networks = await run("docker", [
      "network",
      "ls",
      "--filter",
      `label=com.docker.compose.project=${project}`,
      "-q",
    ]);
    const volumes = await run("docker", [
      "volume",
      "ls",
      "--filter",
      `label=com.docker.compose.project=${project}`,
      "-q",
    ]);
    expect([containers.stdout, networks.stdout, volumes.stdout].map((s) => s.trim())).toEqual(["", "", ""]);
  }, 300_000);
});
