import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fstabPath, planMounts, resolveInPod, type ResolvedMount } from "./mounts.ts";

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
      planMounts({
        root: "/r",
        files: "/f",
        topLevelDirs: [],
        etcFiles: [],
        mounts: [
          { source: "/a,b", mountPath: "/x", target: "/x", anchor: "/", kind: "dir", readOnly: false },
        ],
      }),
    ).toThrow(/comma/);
  });
});

describe("pod mount plan", () => {
  const m = (p: Partial<ResolvedMount> & { target: string; anchor: string }): ResolvedMount => ({
    source: "/src",
    mountPath: p.target,
    kind: "dir",
    readOnly: false,
    ...p,
  });

  it("escapes what fstab separates on", () => {
    expect(fstabPath("/a b\\c\td")).toBe("/a\\040b\\134c\\011d");
  });

  it("rbinds the node's top level, overlays missing mount points once per anchor, then the /etc files", () => {
    const plan = planMounts({
      root: "/p/root",
      files: "/p/files",
      topLevelDirs: ["etc", "run", "usr"],
      mounts: [
        m({ target: "/run/secrets/token", anchor: "/run", readOnly: true }),
        m({ target: "/run/secrets/other", anchor: "/run/secrets" }),
        m({ target: "/data", anchor: "/" }),
        m({ target: "/usr/local/bin/kube-proxy", anchor: "/usr/local/bin", kind: "file", readOnly: true }),
      ],
      etcFiles: [{ source: "/p/files/resolv.conf", target: "/etc/resolv.conf" }],
    });
    expect(plan.base).toBe(
      [
        "/etc /p/root/etc none rbind 0 0",
        "/run /p/root/run none rbind 0 0",
        "/usr /p/root/usr none rbind 0 0",
        "klab-ovl /p/files/ovl tmpfs mode=0700,X-mount.mkdir 0 0",
        "",
      ].join("\n"),
    );
    expect(plan.overlays).toBe(2);
    expect(plan.chunks).toEqual([
      {
        files: [],
        fstab: [
          "klab-pod-1 /p/root/run overlay lowerdir=/run,upperdir=/p/files/ovl/1/upper,workdir=/p/files/ovl/1/work 0 0",
          "/src /p/root/run/secrets/token none bind,ro,X-mount.mkdir 0 0",
          "/src /p/root/run/secrets/other none bind,X-mount.mkdir 0 0",
          "/src /p/root/data none bind,X-mount.mkdir 0 0",
          // the overlay a file mount point is made in comes before the point is made
          "klab-pod-2 /p/root/usr/local/bin overlay lowerdir=/usr/local/bin,upperdir=/p/files/ovl/2/upper,workdir=/p/files/ovl/2/work 0 0",
          "",
        ].join("\n"),
      },
      {
        files: ["/p/root/usr/local/bin/kube-proxy"],
        fstab: [
          "/src /p/root/usr/local/bin/kube-proxy none bind,ro 0 0",
          "/p/files/resolv.conf /p/root/etc/resolv.conf none bind 0 0",
          "",
        ].join("\n"),
      },
    ]);
  });

  it("a pod without volumes mounts its /etc files with the node's directories' chunk", () => {
    const plan = planMounts({
      root: "/r",
      files: "/f",
      topLevelDirs: ["etc"],
      mounts: [],
      etcFiles: [{ source: "/f/hosts", target: "/etc/hosts" }],
    });
    expect(plan.overlays).toBe(0);
    expect(plan.base).toBe("/etc /r/etc none rbind 0 0\n");
    expect(plan.chunks).toEqual([{ files: [], fstab: "/f/hosts /r/etc/hosts none bind 0 0\n" }]);
  });
});
