// Runs before `npm test`: says plainly which system tools the suites need and are missing.
import { execFileSync } from "node:child_process";

const tools = {
  kubectl: "kubectl v1.32 (the real client the API tests drive)",
  dig: "dig (Debian: dnsutils)",
  nslookup: "nslookup (Debian: dnsutils)",
  curl: "curl",
  ip: "ip (Debian: iproute2)",
  ping: "ping (Debian: iputils-ping)",
  tcpdump: "tcpdump",
  nginx: "nginx (benchmark peer)",
};
const missing = Object.entries(tools).filter(([cmd]) => {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
});
const notRoot = process.getuid?.() !== 0;
if (missing.length || notRoot) {
  console.warn(
    "klab tests: some prerequisites are missing; the suites that need them are skipped (they fail under CI=true):",
  );
  for (const [, what] of missing) console.warn(`  - ${what}`);
  if (notRoot) console.warn("  - root (network namespaces, TUN devices)");
  console.warn(
    "  On Debian: apt-get install -y dnsutils curl iproute2 iputils-ping tcpdump nginx  (or run: bash .ci/run)",
  );
}
