import { spawn } from "node:child_process";
import {
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsPath } from "./netns.ts";
import { writeMountsFile, type PodMount } from "./mounts.ts";

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
 * Starts the pod's infra process: private mount namespace with kubelet's /etc files and the
 * image launchers at /, UTS namespace with the pod's hostname, inside the pod's netns.
 */
export function startSandbox(spec: SandboxSpec): Promise<SandboxHandle> {
  writeSandboxFiles(spec.dir, spec.files);
  const fdir = join(spec.dir, "files");
  mkdirSync(join(fdir, "bin"), { recursive: true });
  const mounts: PodMount[] = [...(spec.mounts ?? [])];
  const topLevel: string[] = [];
  for (const [name, text] of Object.entries(spec.launchers)) {
    const file = join(fdir, "bin", name.replaceAll("/", "_"));
    writeFileSync(file, text);
    chmodSync(file, 0o755);
    if (name.includes("/"))
      mounts.push({ source: file, mountPath: `/${name}`, kind: "file", readOnly: true });
    else topLevel.push(name);
  }
  writeMountsFile(join(fdir, "mounts"), mounts);
  const root = join(spec.dir, "root");
  mkdirSync(root, { recursive: true });
  const script = join(spec.dir, "pod-root.sh");
  copyFileSync(POD_ROOT_SCRIPT, script);
  const hostNet = spec.netns === undefined;
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
    ...topLevel,
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
