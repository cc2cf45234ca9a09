/**
 * Tests that need root, network namespaces, Docker or a system tool declare it here.
 * Outside CI a suite whose prerequisite is missing is skipped with a message naming it;
 * in CI (CI=true) it fails instead, so a CI machine that lost a tool cannot pass silently.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, it } from "vitest";

export interface Needs {
  root?: boolean;
  /** Commands that must be on PATH, e.g. ["kubectl", "dig", "ip"]. */
  tools?: string[];
  /** /dev/net/tun must exist. */
  tun?: boolean;
  /** A Docker engine must answer `docker info`. */
  docker?: boolean;
}

export function hasTool(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${JSON.stringify(tool)}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function missingPrerequisites(needs: Needs): string[] {
  const missing: string[] = [];
  if (needs.root && process.getuid?.() !== 0) missing.push("root (run as root or with sudo)");
  for (const tool of needs.tools ?? []) if (!hasTool(tool)) missing.push(`the '${tool}' command`);
  if (needs.tun && !existsSync("/dev/net/tun")) missing.push("/dev/net/tun");
  if (needs.docker) {
    try {
      execFileSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 });
    } catch {
      missing.push("a running Docker engine");
    }
  }
  return missing;
}

export const inCI = process.env.CI === "true" || process.env.CI === "1";

/** `describe` that skips (outside CI) or fails (in CI) when prerequisites are missing. */
export function describeWith(needs: Needs, name: string, body: () => void): void {
  const missing = missingPrerequisites(needs);
  if (missing.length === 0) {
    describe(name, body);
  } else if (inCI) {
    describe(name, () => {
      it("has its prerequisites", () => {
        throw new Error(`missing in CI: ${missing.join(", ")}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: needs ${missing.join(", ")})`, body);
  }
}
