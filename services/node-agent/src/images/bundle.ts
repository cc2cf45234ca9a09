import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { natSocketPath } from "@klab/dataplane/nat/index.ts";

const ENTRY = fileURLToPath(new URL("./main.ts", import.meta.url));
const CLI = fileURLToPath(new URL("../../../../packages/cli/bin/klab.js", import.meta.url));

/**
 * Bundles the image programs into one plain .mjs so a container starts with bare `node` (fast,
 * small) rather than through the TypeScript loader, and returns the launcher commands.
 */
export async function prepareImagePrograms(stateDir: string): Promise<Record<string, string>> {
  const out = join(stateDir, "bin", "klab-images.mjs");
  mkdirSync(join(stateDir, "bin"), { recursive: true });
  const node = JSON.stringify(process.execPath);
  let runner: string;
  try {
    const esbuild = await import("esbuild");
    await esbuild.build({
      entryPoints: [ENTRY],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: out,
      logLevel: "silent",
    });
    runner = `${node} ${JSON.stringify(out)}`;
  } catch {
    runner = `${node} --import tsx ${JSON.stringify(ENTRY)}`;
  }
  const klab = `${node} ${JSON.stringify(CLI)}`;
  return {
    agnhost: `${runner} agnhost`,
    nginx: `${runner} nginx`,
    "nginx-entrypoint": `${runner} nginx-entrypoint`,
    "http-echo": `${runner} http-echo`,
    pause: `${runner} pause`,
    "klab:coredns": `${klab} coredns`,
    // this node's kube-proxy programs this node's dataplane, as the real one its node's kernel
    "klab:proxy": `env KLAB_NAT_SOCKET=${JSON.stringify(natSocketPath(stateDir))} ${klab} proxy`,
    "klab:ingress": `${klab} ingress`,
  };
}
