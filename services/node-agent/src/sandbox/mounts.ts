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

/** A path as fstab(5) spells it: whitespace and backslashes octal-escaped. */
export function fstabPath(p: string): string {
  return p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

function fstabLine(source: string, target: string, type: string, options: string): string {
  return `${fstabPath(source)} ${fstabPath(target)} ${type} ${options} 0 0\n`;
}

/** What pod-root.sh mounts, as fstab files for `mount --all --fstab`, one mount(8) run each. */
export interface MountPlan {
  /** the node's top-level directories, rbound into the root, and the overlays' tmpfs */
  base: string;
  /** how many overlays: pod-root.sh makes their upper and work directories in the tmpfs */
  overlays: number;
  /**
   * Volume chunks in order. A chunk's `files` are file mount points to create (after the mounts
   * before them, which may be the overlay they live in) before the chunk's fstab is mounted.
   */
  chunks: Array<{ files: string[]; fstab: string }>;
}

/**
 * Plans the pod's mounts: `root` mirrors the node's / (its top-level directories), each volume
 * is bound at its target, and a mount point that does not exist on the node is made in a private
 * overlay on its deepest existing directory, so the node's own directories are never written to.
 * `etcFiles` (resolv.conf, hosts, hostname: source -> path under /etc) come last, over any volume.
 */
export function planMounts(opts: {
  root: string;
  files: string;
  topLevelDirs: string[];
  mounts: ResolvedMount[];
  etcFiles: Array<{ source: string; target: string }>;
}): MountPlan {
  const { root, files } = opts;
  for (const m of opts.mounts) {
    for (const f of [m.source, m.target, m.anchor]) {
      if (/[\t\n,:]/.test(f))
        throw new Error(`mount path ${JSON.stringify(f)} has a tab, newline, comma or colon`);
    }
  }
  let base = opts.topLevelDirs.map((d) => fstabLine(`/${d}`, `${root}/${d}`, "none", "rbind")).join("");
  const chunks: MountPlan["chunks"] = [];
  let chunk = { files: [] as string[], fstab: "" };
  const overlays: string[] = [];
  for (const m of opts.mounts) {
    if (
      m.anchor !== m.target &&
      m.anchor !== "/" &&
      !overlays.some((o) => `${m.anchor}/`.startsWith(`${o}/`))
    ) {
      overlays.push(m.anchor);
      const n = overlays.length;
      chunk.fstab += fstabLine(
        `klab-pod-${n}`,
        `${root}${m.anchor}`,
        "overlay",
        `lowerdir=${m.anchor},upperdir=${files}/ovl/${n}/upper,workdir=${files}/ovl/${n}/work`,
      );
    }
    const options = ["bind", ...(m.readOnly ? ["ro"] : []), ...(m.kind === "dir" ? ["X-mount.mkdir"] : [])];
    if (m.kind === "file") {
      // a file mount point is made by pod-root.sh, after the mounts it may live in
      if (chunk.fstab) chunks.push(chunk);
      chunk = { files: [`${root}${m.target}`], fstab: "" };
    }
    chunk.fstab += fstabLine(m.source, `${root}${m.target}`, "none", options.join(","));
  }
  for (const f of opts.etcFiles) chunk.fstab += fstabLine(f.source, `${root}${f.target}`, "none", "bind");
  if (chunk.fstab) chunks.push(chunk);
  if (overlays.length) base += fstabLine("klab-ovl", `${files}/ovl`, "tmpfs", "mode=0700,X-mount.mkdir");
  return { base, overlays: overlays.length, chunks };
}
