import { lstatSync, readlinkSync, writeFileSync } from "node:fs";
import { posix } from "node:path";

/** One bind mount into the pod's mount namespace (a volume, or a launcher below /). */
export interface PodMount {
  /** path on the node */
  source: string;
  /** absolute path inside the pod */
  mountPath: string;
  kind: "dir" | "file";
  readOnly: boolean;
}

export interface ResolvedMount extends PodMount {
  /** mountPath with symlinks resolved as the pod sees them (its / mirrors the node's) */
  target: string;
  /** deepest directory of target that exists on the node (target itself when it exists): the pod
   * gets a private overlay there, so creating the mount point never writes to the node */
  anchor: string;
}

const MAX_LINKS = 40;

/**
 * Resolves a path the way the pod's root resolves it. The pod's / is a tmpfs holding bind mounts
 * of the node's top-level directories, so resolution follows the node's symlinks (an absolute link
 * restarts at the pod's / = the node's /); components that do not exist end the walk.
 */
export function resolveInPod(path: string): { target: string; anchor: string } {
  if (!path.startsWith("/")) throw new Error(`mount path ${JSON.stringify(path)} must be absolute`);
  let pending = path.split("/").filter((c) => c && c !== ".");
  let cur = "/";
  let links = 0;
  while (pending.length) {
    const comp = pending.shift()!;
    if (comp === "..") {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, comp);
    let st;
    try {
      st = lstatSync(next);
    } catch {
      const target = posix.join(next, ...pending.filter((c) => c !== ".."));
      return { target, anchor: cur };
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links in ${path}`);
      const link = readlinkSync(next);
      pending = [...link.split("/").filter((c) => c && c !== "."), ...pending];
      if (link.startsWith("/")) cur = "/";
      continue;
    }
    cur = next;
    if (!st.isDirectory() && pending.length) {
      throw new Error(`mount path ${path}: ${next} is not a directory`);
    }
  }
  return { target: cur, anchor: cur };
}

export function resolveMounts(mounts: PodMount[]): ResolvedMount[] {
  // parents before children, so a volume mounted inside another lands in it
  return mounts
    .map((m) => ({ ...m, ...resolveInPod(m.mountPath) }))
    .sort((a, b) => a.target.split("/").length - b.target.split("/").length);
}

/** The mounts file pod-root.sh reads: kind, source, target, anchor, ro|rw, tab-separated. */
export function formatMounts(mounts: ResolvedMount[]): string {
  for (const m of mounts) {
    for (const f of [m.source, m.target, m.anchor]) {
      if (/[\t\n,:]/.test(f))
        throw new Error(`mount path ${JSON.stringify(f)} has a tab, newline, comma or colon`);
    }
  }
  return mounts
    .map((m) => [m.kind, m.source, m.target, m.anchor, m.readOnly ? "ro" : "rw"].join("\t") + "\n")
    .join("");
}

export function writeMountsFile(file: string, mounts: PodMount[]): void {
  writeFileSync(file, formatMounts(resolveMounts(mounts)));
}
