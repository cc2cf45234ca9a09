import { spawn } from "node:child_process";
import {
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  lstatSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsPath } from "./netns.ts";
import { planMounts, resolveMounts, type PodMount } from "./mounts.ts";

const POD_ROOT_SCRIPT = fileURLToPath(new URL("./pod-root.sh", import.meta.url));

/** The files kubelet manages for a pod, bind-mounted over /etc in its mount namespace. */
export interface SandboxFiles {
  resolvConf: string;
  hosts: string;
  hostname: string;
}

export interface SandboxSpec {
  dir: string;
  /** undefined for hostNetwork pods */
  netns?: string;
  hostname: string;
  files: SandboxFiles;
  /** launcher path (at the pod's root, or below it: usr/local/bin/kube-proxy) -> script text */
  launchers: Record<string, string>;
  /** volumes, bind-mounted at their mountPath */
  mounts?: PodMount[];
}

export interface SandboxHandle {
  /** The infra process whose mount, UTS and network namespaces every container joins. */
  pid: number;
  /** /proc/<pid>/stat start time, to tell the same process from a reused pid after a restart. */
  startTicks: string;
}

export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function sandboxAlive(h: SandboxHandle): boolean {
  return processStartTicks(h.pid) === h.startTicks;
}

/** Writes resolv.conf/hosts/hostname; the bind mounts make rewrites visible inside the pod. */
export function writeSandboxFiles(dir: string, files: SandboxFiles): void {
  const fdir = join(dir, "files");
  mkdirSync(fdir, { recursive: true });
  writeFileSync(join(fdir, "resolv.conf"), files.resolvConf);
  writeFileSync(join(fdir, "hosts"), files.hosts);
  writeFileSync(join(fdir, "hostname"), `${files.hostname}\n`);
}

/**
 * The pod's root skeleton, made here rather than by the sandbox script (a process per directory):
 * a directory for each of the node's top-level directories (the script rbinds them), its
 * top-level symlinks, and the image launchers. Returns the directories to bind.
 */
function makeRootSkeleton(root: string, launchers: Array<[string, string]>): string[] {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  const dirs: string[] = [];
  for (const e of readdirSync("/", { withFileTypes: true })) {
    if (e.isSymbolicLink()) {
      symlinkSync(readlinkSync(`/${e.name}`), join(root, e.name));
    } else if (e.isDirectory() && e.name !== "lost+found") {
      mkdirSync(join(root, e.name));
      dirs.push(e.name);
    }
  }
  for (const [file, name] of launchers) copyFileSync(file, join(root, name));
  return dirs;
}

/**
 * Starts the pod's infra process: private mount namespace with kubelet's /etc files and the
 * image launchers at /, UTS namespace with the pod's hostname, inside the pod's netns.
 */
export function startSandbox(spec: SandboxSpec): Promise<SandboxHandle> {
  writeSandboxFiles(spec.dir, spec.files);
  const fdir = join(spec.dir, "files");
  mkdirSync(join(fdir, "bin"), { recursive: true });
  const mounts: PodMount[] = [...(spec.mounts ?? [])];
  const topLevel: Array<[string, string]> = [];
  for (const [name, text] of Object.entries(spec.launchers)) {
    const file = join(fdir, "bin", name.replaceAll("/", "_"));
    writeFileSync(file, text, { mode: 0o755 });
    chmodSync(file, 0o755);
    if (name.includes("/"))
      mounts.push({ source: file, mountPath: `/${name}`, kind: "file", readOnly: true });
    else topLevel.push([file, name]);
  }
  const root = join(spec.dir, "root");
  const hostNet = spec.netns === undefined;
  const dirs = makeRootSkeleton(root, topLevel);
  const plan = planMounts({
    root,
    files: fdir,
    topLevelDirs: dirs.filter((d) => hostNet || d !== "sys"),
    mounts: resolveMounts(mounts),
    // a node without one of these files gives its pods none either
    etcFiles: (["resolv.conf", "hosts", "hostname"] as const)
      .filter((f) => lexists(`/etc/${f}`))
      .map((f) => ({ source: join(fdir, f), target: `/etc/${f}` })),
  });
  for (const f of readdirSync(fdir))
    if (/^(fstab|mountpoints)\./.test(f)) rmSync(join(fdir, f), { force: true });
  writeFileSync(join(fdir, "fstab.base"), plan.base);
  writeFileSync(join(fdir, "overlays"), `${plan.overlays}\n`);
  plan.chunks.forEach((c, i) => {
    writeFileSync(join(fdir, `fstab.${i + 1}`), c.fstab);
    if (c.files.length) writeFileSync(join(fdir, `mountpoints.${i + 1}`), c.files.join("\n") + "\n");
  });
  const script = join(spec.dir, "pod-root.sh");
  copyFileSync(POD_ROOT_SCRIPT, script);
  const nsenter = hostNet ? [] : ["nsenter", `--net=${netnsPath(spec.netns!)}`, "--"];
  const unshare = ["unshare", "--mount", ...(hostNet ? [] : ["--uts"]), "--propagation", "private", "--"];
  const argv = [
    ...nsenter,
    ...unshare,
    "sh",
    script,
    root,
    fdir,
    hostNet ? "" : spec.hostname,
    hostNet ? "1" : "0",
  ];
  const errFd = openSync(join(spec.dir, "sandbox.log"), "a");
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", "pipe", errFd] });
  closeSync(errFd);
  return new Promise((resolve, reject) => {
    let out = "";
    const onExit = (code: number | null) => {
      let log = "";
      try {
        log = readFileSync(join(spec.dir, "sandbox.log"), "utf8").trim().split("\n").slice(-3).join("; ");
      } catch {
        /* no log */
      }
      reject(new Error(`pod sandbox setup exited with ${code}: ${log}`));
    };
    child.once("exit", onExit);
    child.once("error", reject);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready\n")) {
        child.off("exit", onExit);
        child.stdout!.destroy();
        child.unref();
        const startTicks = processStartTicks(child.pid!);
        if (!startTicks) return reject(new Error("pod sandbox exited right after setup"));
        resolve({ pid: child.pid!, startTicks });
      }
    });
  });
}

export function stopSandbox(h: SandboxHandle): void {
  if (sandboxAlive(h)) {
    try {
      process.kill(h.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** nsenter arguments that put a process into the pod: its namespaces and its root. */
export function enterPodArgs(h: SandboxHandle, hostNetwork: boolean, workingDir?: string): string[] {
  return [
    "nsenter",
    "-t",
    String(h.pid),
    ...(hostNetwork ? ["-m"] : ["-n", "-m", "-u"]),
    "-r",
    workingDir ? `--wd=${workingDir}` : "-w",
    "--",
  ];
}
