import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatMounts, resolveInPod } from "./mounts.ts";

describe("pod mount paths", () => {
  const base = mkdtempSync(join(tmpdir(), "klab-mounts-"));
  mkdirSync(join(base, "run"));
  symlinkSync(join(base, "run"), join(base, "varrun"));
  symlinkSync("run", join(base, "rel"));
  writeFileSync(join(base, "file"), "x");

  it("follows the node's symlinks and stops at the first missing component", () => {
    expect(resolveInPod(`${base}/varrun/secrets/kubernetes.io/serviceaccount`)).toEqual({
      target: `${base}/run/secrets/kubernetes.io/serviceaccount`,
      anchor: `${base}/run`,
    });
    expect(resolveInPod(`${base}/rel/x`)).toEqual({ target: `${base}/run/x`, anchor: `${base}/run` });
  });
  it("an existing path is its own anchor", () => {
    expect(resolveInPod(`${base}/run`)).toEqual({ target: `${base}/run`, anchor: `${base}/run` });
    expect(resolveInPod("/")).toEqual({ target: "/", anchor: "/" });
  });
  it("refuses relative paths, paths through files and separators the mount options use", () => {
    expect(() => resolveInPod("etc/x")).toThrow(/absolute/);
    expect(() => resolveInPod(`${base}/file/x`)).toThrow(/not a directory/);
    expect(() =>
      formatMounts([
        { source: "/a,b", mountPath: "/x", target: "/x", anchor: "/", kind: "dir", readOnly: false },
      ]),
    ).toThrow(/comma/);
  });
});
