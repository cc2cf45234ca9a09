import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { natSocketPath } from "@klab/dataplane/nat/index.ts";

const ENTRY = fileURLToPath(new URL("./main.ts", import.meta.url));
/** V8 flags of the ingress controller's process (the bench runs its klab side with them too). */
export const INGRESS_NODE_FLAGS = "--max-semi-space-size=32";
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
    // A larger young generation: the proxy allocates a few short-lived objects per request, and
    // 32 MB semi-spaces scavenge less often (2-4% more requests/s in `npm run bench ingress`).
    "klab:ingress": `${node} ${INGRESS_NODE_FLAGS} ${JSON.stringify(CLI)} ingress`,
  };
}
