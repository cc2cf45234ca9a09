/**
 * `docker compose up` from this checkout, end to end: the lab in containers, reached from the
 * host with the real kubectl and curl, then `down -v` leaves nothing behind. It builds the base
 * image offline (docker/build-base-image.sh, skipped when it exists) unless KLAB_BASE_IMAGE names
 * another, then the klab image once (compose's services all run that one image).
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWith, hasTool, inCI, missingPrerequisites, type Needs } from "../support/prereq.ts";
import { runCommand, until } from "../support/wait.ts";

const root = resolve(import.meta.dirname, "../..");
const project = `klabe2e${process.pid}`;
const kubeconfig = join(root, ".klab", "kubeconfig");
const baseImage = process.env.KLAB_BASE_IMAGE ?? "klab-base:bookworm";
const image = "klab:local";

/** docker compose v2 if present, else docker-compose 1.29. */
function composeCommand(): string[] {
  const v2 = spawnSync("docker", ["compose", "version"], { stdio: "ignore" });
  return v2.status === 0 ? ["docker", "compose"] : ["docker-compose"];
}

/** Runs a command that must succeed; its output is in the error when it does not. */
async function must(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<string> {
  const r = await runCommand(cmd, args, { cwd: root, timeoutMs, env });
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}:\n${(r.stderr + r.stdout).slice(-4000)}`);
  return r.stdout;
}

function compose(args: string[], timeoutMs = 600_000): Promise<string> {
  const [cmd, ...pre] = composeCommand();
  return must(cmd!, [...pre, "-p", project, ...args], timeoutMs, {
    ...process.env,
    KLAB_BASE_IMAGE: baseImage,
  });
}

function kubectl(args: string[], timeoutMs = 60_000) {
  return runCommand("kubectl", ["--kubeconfig", kubeconfig, ...args], { timeoutMs });
}

/** `kubectl get pods` rows (no headers) of a namespace, optionally by label. */
async function podRows(namespace: string, selector?: string): Promise<string[]> {
  const r = await kubectl([
    "get",
    "pods",
    "-n",
    namespace,
    "--no-headers",
    ...(selector ? ["-l", selector] : []),
  ]);
  if (r.code !== 0) return [];
  return r.stdout.split("\n").filter((l) => l.trim());
}

const needs: Needs = {
  docker: true,
  tools: ["kubectl", "curl", hasTool("docker-compose") ? "docker-compose" : "docker"],
};
const missing = missingPrerequisites(needs);
if (missing.length > 0 && !inCI)
  console.warn(`compose end-to-end suite skipped: it needs ${missing.join(", ")} (under CI=true it fails)`);

describeWith(needs, "docker compose up: the lab in containers", () => {
  let clientPod = "";

  beforeAll(async () => {
    rmSync(join(root, ".klab"), { recursive: true, force: true });
    if (!process.env.KLAB_BASE_IMAGE)
      await must("bash", [join(root, "docker/build-base-image.sh")], 1_200_000);
    // One build (docker-compose 1.29's `build` would build the same image once per service).
    await must(
      "docker",
      ["build", "-q", "--network", "host", "--build-arg", `BASE_IMAGE=${baseImage}`, "-t", image, "."],
      1_800_000,
    );
  }, 3_000_000);

  afterAll(async () => {
    const logs = await compose(["logs", "--no-color", "--tail", "40"]).catch(() => "");
    if (logs) process.stderr.write(logs.slice(-20_000));
    await compose(["down", "-v", "--remove-orphans"]).catch(() => undefined);
  }, 300_000);

  it("comes up Ready: 3 Ready nodes, the kube-system and ingress-nginx pods Running", async () => {
    const started = Date.now();
    await compose(["up", "-d", "--no-build"]);
    // The control plane's healthcheck is the lab's readiness (`up --wait` in compose v2): nodes
    // Ready, kube-proxy on each, CoreDNS, ingress-nginx and the example app available.
    const controlPlane = (await compose(["ps", "-q", "control-plane"])).trim();
    await until(
      "the control plane's healthcheck to report the lab Ready",
      1_200_000,
      async () => {
        const r = await runCommand("docker", [
          "inspect",
          "--format",
          "{{.State.Health.Status}}",
          controlPlane,
        ]);
        return r.stdout.trim() === "healthy" ? true : undefined;
      },
      2_000,
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`compose: from \`up\` to Ready in ${seconds} s (images already built)`);

    const nodes = await kubectl(["get", "nodes", "--no-headers"]);
    expect((nodes.stdout.match(/^node-\d+\s+Ready\s/gm) ?? []).length).toBe(3);
    const rows = await until(
      "the kube-system and ingress-nginx pods Running",
      300_000,
      async () => {
        const all = [...(await podRows("kube-system")), ...(await podRows("ingress-nginx"))];
        return all.length >= 6 && all.every((l) => /\sRunning\s/.test(l)) ? all : undefined;
      },
      2_000,
    );
    expect(rows.filter((l) => l.startsWith("coredns-"))).toHaveLength(2);
    expect(rows.filter((l) => l.startsWith("kube-proxy-"))).toHaveLength(3);
    expect(rows.filter((l) => l.startsWith("ingress-nginx-controller-"))).toHaveLength(1);
  }, 1_700_000);

  it("keeps CoreDNS Ready with no restarts (its forward to the emulated internet answers)", async () => {
    const r = await kubectl([
      "get",
      "pods",
      "-n",
      "kube-system",
      "-l",
      "k8s-app=kube-dns",
      "-o",
      'jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}{"\\n"}{end}',
    ]);
    const pods = r.stdout.trim().split("\n");
    expect(pods).toHaveLength(2);
    for (const p of pods) expect(p).toMatch(/^coredns-\S+ true 0$/);
  }, 120_000);

  it("answers https://myapp.com:8443/api from an api pod through the edge and the ingress", async () => {
    const body = await until(
      "the ingress to answer",
      300_000,
      async () => {
        const r = await runCommand("curl", [
          "-sk",
          "--max-time",
          "10",
          "--resolve",
          "myapp.com:8443:127.0.0.1",
          "https://myapp.com:8443/api",
        ]);
        return r.stdout.trim().startsWith("api-") ? r.stdout.trim() : undefined;
      },
      2_000,
    );
    expect(body).toMatch(/^api-[a-z0-9]+-[a-z0-9]{5}$/);
  }, 400_000);

  it("resolves web-service with nslookup inside a pod and reaches it with curl", async () => {
    clientPod = `client-${process.pid}`;
    const created = await kubectl([
      "run",
      clientPod,
      "--image=curlimages/curl:8.11.1",
      "--restart=Never",
      "--command",
      "--",
      "sleep",
      "3600",
    ]);
    expect(created.code, created.stderr).toBe(0);
    await until(
      "the client pod Running",
      300_000,
      async () =>
        (await podRows("default")).some((l) => l.startsWith(`${clientPod} `) && /\sRunning\s/.test(l))
          ? true
          : undefined,
      2_000,
    );
    const lookup = await kubectl(["exec", clientPod, "--", "nslookup", "web-service"]);
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(lookup.stdout).toContain("web-service.default.svc.cluster.local");
    expect(lookup.stdout).toMatch(/Address:\s+10\.\d+\.\d+\.\d+/);
    const get = await until(
      "web-service over HTTP from the pod",
      120_000,
      async () => {
        const r = await kubectl([
          "exec",
          clientPod,
          "--",
          "curl",
          "-sS",
          "--max-time",
          "10",
          "http://web-service/hostname",
        ]);
        return r.code === 0 ? r : undefined;
      },
      2_000,
    );
    expect(get.stdout.trim()).toMatch(/^web-[a-z0-9]+-[a-z0-9]{5}$/);
  }, 500_000);

  it("resolves api.example.com from a pod through CoreDNS's forward to the emulated internet", async () => {
    const lookup = await kubectl(["exec", clientPod, "--", "nslookup", "api.example.com"]);
    expect(lookup.code, lookup.stderr).toBe(0);
    expect(lookup.stdout).toMatch(/Name:\s+api\.example\.com\s+Address:\s+203\.0\.113\.10/);
  }, 120_000);

  it("leaves no container, network or volume behind after down -v", async () => {
    await compose(["down", "-v", "--remove-orphans"]);
    const left = await Promise.all(
      [
        ["ps", "-a"],
        ["network", "ls"],
        ["volume", "ls"],
      ].map((what) =>
        must("docker", [...what, "--filter", `label=com.docker.compose.project=${project}`, "-q"], 60_000),
      ),
    );
    expect(left.map((s) => s.trim())).toEqual(["", "", ""]);
  }, 300_000);
});
