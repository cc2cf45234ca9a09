import pino from "pino";
import { runKubeProxyCli } from "./cli.ts";

// Entry point: npx tsx services/proxy/src/main.ts --hostname-override node-1 --nat-socket PATH …

try {
  await runKubeProxyCli(process.argv.slice(2));
} catch (err) {
  pino({ name: "kube-proxy" }).error({ err: (err as Error).message }, "kube-proxy failed to start");
  process.exit(1);
}
