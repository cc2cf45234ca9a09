// kubelet's volume manager for the volume types a lab needs: emptyDir, hostPath, configMap,
// secret, downwardAPI and projected (serviceAccountToken, configMap, secret, downwardAPI).
// Contents are written with kubelet's atomic writer layout (a ..<timestamp> directory, the ..data
// symlink swapped by rename, top-level symlinks into ..data), so a container bind-mounting the
// volume directory sees a ConfigMap update all at once, as CoreDNS's reload plugin expects.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
} from "node:fs";
import { dirname, join, posix } from "node:path";
import type { ConfigMap, KeyToPath, Pod, Secret, Volume } from "@klab/api";
import { fieldRefValue } from "../core/env.ts";
import type { PodMount } from "../sandbox/mounts.ts";

export interface VolumeSources {
  configMap(ns: string, name: string): Promise<ConfigMap | undefined>;
  secret(ns: string, name: string): Promise<Secret | undefined>;
  /** TokenRequest for the pod's service account, bound to the pod */
  serviceAccountToken(
    pod: Pod,
    audiences: string[],
    expirationSeconds: number,
  ): Promise<{ token: string; expirationTimestamp: string }>;
}

export class VolumeError extends Error {}

type Files = Map<string, { data: Buffer; mode: number }>;

/** Token rotation state: kubelet renews a projected token at 80% of its lifetime. */
interface TokenState {
  token: string;
  issuedAt: number;
  expiresAt: number;
}

const SA_DEFAULT_EXPIRATION = 3600;

function checkPath(p: string, what: string): string {
  const parts = p.split("/");
  if (!p || p.startsWith("/") || parts.includes("..") || parts.some((x) => x.startsWith("..")))
    throw new VolumeError(`${what}: invalid path ${JSON.stringify(p)}`);
  return p;
}

function keyed(
  data: Record<string, Buffer>,
  items: KeyToPath[] | undefined,
  mode: number,
  what: string,
  optional: boolean,
): Files {
  const out: Files = new Map();
  if (!items) {
    for (const [k, v] of Object.entries(data)) out.set(checkPath(k, what), { data: v, mode });
    return out;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw new VolumeError(`${what}: key "${it.key}" not found`);
    }
    out.set(checkPath(it.path, what), { data: v, mode: it.mode ?? mode });
  }
  return out;
}

function configMapData(cm: ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v);
  for (const [k, v] of Object.entries((cm as { binaryData?: Record<string, string> }).binaryData ?? {}))
    out[k] = Buffer.from(v, "base64");
  return out;
}

function secretData(s: Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, "base64");
  for (const [k, v] of Object.entries((s as { stringData?: Record<string, string> }).stringData ?? {}))
    out[k] = Buffer.from(v);
  return out;
}

function downward(
  pod: Pod,
  items: Array<{ path: string; fieldRef?: { fieldPath: string }; resourceFieldRef?: unknown; mode?: number }>,
  mode: number,
): Files {
  const out: Files = new Map();
  for (const it of items) {
    let value: string;
    if (it.fieldRef) {
      const f = it.fieldRef.fieldPath;
      if (f === "metadata.labels" || f === "metadata.annotations") {
        const m = (f === "metadata.labels" ? pod.metadata.labels : pod.metadata.annotations) ?? {};
        // kubelet's format: key="value" lines, sorted, values quoted as Go's %q
        value = Object.keys(m)
          .sort()
          .map((k) => `${k}=${JSON.stringify(m[k])}`)
          .join("\n");
      } else {
        try {
          value = fieldRefValue(pod, f, { nodeName: pod.spec?.nodeName ?? "", hostIP: "", podIP: "" });
        } catch (err) {
          throw new VolumeError((err as Error).message);
        }
      }
    } else {
      throw new VolumeError(`downwardAPI item ${JSON.stringify(it.path)}: only fieldRef is supported here`);
    }
    out.set(checkPath(it.path, "downwardAPI"), { data: Buffer.from(value), mode: it.mode ?? mode });
  }
  return out;
}

/** Reads what ..data holds now, to skip writing when nothing changed. */
function currentFiles(dir: string): Files | undefined {
  const data = join(dir, "..data");
  if (!existsSync(data)) return undefined;
  const out: Files = new Map();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(data, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else {
        const p = join(data, r);
        out.set(r, { data: readFileSync(p), mode: statSync(p).mode & 0o777 });
      }
    }
  };
  walk("");
  return out;
}

function sameFiles(a: Files, b: Files): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.mode !== v.mode || !w.data.equals(v.data)) return false;
  }
  return true;
}

/** kubelet's AtomicWriter: returns true when the contents changed. */
export function atomicWrite(dir: string, files: Files): boolean {
  mkdirSync(dir, { recursive: true });
  const cur = currentFiles(dir);
  if (cur && sameFiles(cur, files)) return false;
  const ts = `..${new Date().toISOString().replace(/[-:]/g, "_").replace("T", "_").replace("Z", "")}${process.hrtime.bigint() % 1000000n}`;
  const tsDir = join(dir, ts);
  mkdirSync(tsDir, { recursive: true });
  for (const [rel, f] of files) {
    const p = join(tsDir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
    chmodSync(p, f.mode);
  }
  const tmp = join(dir, "..data_tmp");
  rmSync(tmp, { force: true });
  symlinkSync(ts, tmp);
  renameSync(tmp, join(dir, "..data"));
  const top = new Set([...files.keys()].map((k) => k.split("/")[0]!));
  for (const name of top) {
    const link = join(dir, name);
    const target = posix.join("..data", name);
    let ok = false;
    try {
      ok = lstatSync(link).isSymbolicLink() && readlinkSync(link) === target;
    } catch {
      ok = false;
    }
    if (!ok) {
      rmSync(link, { recursive: true, force: true });
      symlinkSync(target, link);
    }
  }
  for (const e of readdirSync(dir)) {
    if (e.startsWith("..")) {
      if (e !== ts && e !== "..data") rmSync(join(dir, e), { recursive: true, force: true });
    } else if (!top.has(e)) rmSync(join(dir, e), { recursive: true, force: true });
  }
  return true;
}

const pluginDir: Record<string, string> = {
  emptyDir: "kubernetes.io~empty-dir",
  configMap: "kubernetes.io~configmap",
  secret: "kubernetes.io~secret",
  downwardAPI: "kubernetes.io~downward-api",
  projected: "kubernetes.io~projected",
};

/** Keeps the pod's volumes under DIR/volumes/<plugin>/<name> as its spec says. */
export class PodVolumes {
  private tokens = new Map<string, TokenState>();

  constructor(
    private readonly podDir: string,
    private readonly sources: VolumeSources,
  ) {
    try {
      const saved = JSON.parse(readFileSync(join(podDir, "tokens.json"), "utf8")) as Record<
        string,
        TokenState
      >;
      this.tokens = new Map(Object.entries(saved));
    } catch {
      /* first run */
    }
  }

  private volumePath(v: Volume): string {
    if (v.hostPath) return v.hostPath.path;
    const kind = Object.keys(pluginDir).find((k) => (v as unknown as Record<string, unknown>)[k]);
    if (!kind)
      throw new VolumeError(`volume "${v.name}": this volume type is not supported by klab's kubelet`);
    return join(this.podDir, "volumes", pluginDir[kind]!, v.name);
  }

  /** Writes every volume; returns the names whose contents changed. */
  async sync(pod: Pod): Promise<string[]> {
    const ns = pod.metadata.namespace ?? "default";
    const changed: string[] = [];
    mkdirSync(this.podDir, { recursive: true });
    // every volume's sources are fetched at once; the first volume (in spec order) that fails is reported
    const results = await Promise.allSettled(
      (pod.spec?.volumes ?? []).map(async (v) => {
        const where = `MountVolume.SetUp failed for volume "${v.name}"`;
        try {
          if (v.hostPath) {
            this.hostPath(v.hostPath.path, v.hostPath.type ?? "");
            return;
          }
          const dir = this.volumePath(v);
          if (v.emptyDir) {
            mkdirSync(dir, { recursive: true, mode: 0o777 });
            return;
          }
          const files = await this.contents(pod, ns, v);
          if (atomicWrite(dir, files)) changed.push(v.name);
        } catch (err) {
          throw new VolumeError(`${where} : ${(err as Error).message}`);
        }
      }),
    );
    for (const r of results) if (r.status === "rejected") throw r.reason;
    writeFileSync(join(this.podDir, "tokens.json"), JSON.stringify(Object.fromEntries(this.tokens)));
    return changed;
  }

  private hostPath(path: string, type: string): void {
    const st = (() => {
      try {
        return statSync(path);
      } catch {
        return undefined;
      }
    })();
    switch (type) {
      case "DirectoryOrCreate":
        if (!st) mkdirSync(path, { recursive: true, mode: 0o755 });
        else if (!st.isDirectory())
          throw new VolumeError(`hostPath type check failed: ${path} is not a directory`);
        return;
      case "FileOrCreate":
        if (!st) {
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, "", { mode: 0o644 });
        } else if (!st.isFile()) throw new VolumeError(`hostPath type check failed: ${path} is not a file`);
        return;
      case "Directory":
        if (!st?.isDirectory())
          throw new VolumeError(`hostPath type check failed: ${path} is not a directory`);
        return;
      case "File":
        if (!st?.isFile()) throw new VolumeError(`hostPath type check failed: ${path} is not a file`);
        return;
      case "Socket":
        if (!st?.isSocket())
          throw new VolumeError(`hostPath type check failed: ${path} is not a socket file`);
        return;
      case "CharDevice":
        if (!st?.isCharacterDevice())
          throw new VolumeError(`hostPath type check failed: ${path} is not a character device`);
        return;
      case "BlockDevice":
        if (!st?.isBlockDevice())
          throw new VolumeError(`hostPath type check failed: ${path} is not a block device`);
        return;
      case "":
        return;
      default:
        throw new VolumeError(`hostPath type ${JSON.stringify(type)} is not valid`);
    }
  }

  private async contents(pod: Pod, ns: string, v: Volume): Promise<Files> {
    if (v.configMap) return this.configMap(ns, v.configMap, v.configMap.defaultMode ?? 0o644);
    if (v.secret) return this.secret(ns, v.secret, v.secret.defaultMode ?? 0o644);
    if (v.downwardAPI) return downward(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? 0o644);
    const out: Files = new Map();
    const mode = v.projected?.defaultMode ?? 0o644;
    // the sources' API requests go out together; later sources still win a path, as in order
    const parts = await Promise.all(
      ((v.projected?.sources ?? []) as Array<Record<string, any>>).map(async (raw): Promise<Files> => {
        if (raw.serviceAccountToken) return this.token(pod, v.name, raw.serviceAccountToken, mode);
        if (raw.configMap) return this.configMap(ns, raw.configMap, mode);
        if (raw.secret) return this.secret(ns, raw.secret, mode);
        if (raw.downwardAPI) return downward(pod, raw.downwardAPI.items ?? [], mode);
        throw new VolumeError(`projected source ${JSON.stringify(Object.keys(raw))} is not supported`);
      }),
    );
    for (const part of parts) for (const [k, f] of part) out.set(k, f);
    return out;
  }

  private async configMap(
    ns: string,
    src: { name?: string; items?: KeyToPath[]; optional?: boolean },
    mode: number,
  ): Promise<Files> {
    const cm = await this.sources.configMap(ns, src.name ?? "");
    if (!cm) {
      if (src.optional) return new Map();
      throw new VolumeError(`configmap "${src.name}" not found`);
    }
    return keyed(configMapData(cm), src.items, mode, `configmap "${src.name}"`, !!src.optional);
  }

  private async secret(
    ns: string,
    src: { secretName?: string; name?: string; items?: KeyToPath[]; optional?: boolean },
    mode: number,
  ): Promise<Files> {
    const name = src.secretName ?? src.name ?? "";
    const s = await this.sources.secret(ns, name);
    if (!s) {
      if (src.optional) return new Map();
      throw new VolumeError(`secret "${name}" not found`);
    }
    return keyed(secretData(s), src.items, mode, `secret "${name}"`, !!src.optional);
  }

  private async token(
    pod: Pod,
    volume: string,
    src: { audience?: string; expirationSeconds?: number; path: string },
    mode: number,
  ): Promise<Files> {
    const key = `${volume}/${src.path}/${src.audience ?? ""}`;
    const now = Date.now();
    let t = this.tokens.get(key);
    if (!t || now >= t.issuedAt + 0.8 * (t.expiresAt - t.issuedAt)) {
      const r = await this.sources.serviceAccountToken(
        pod,
        src.audience ? [src.audience] : [],
        src.expirationSeconds ?? SA_DEFAULT_EXPIRATION,
      );
      t = { token: r.token, issuedAt: now, expiresAt: Date.parse(r.expirationTimestamp) };
      this.tokens.set(key, t);
    }
    return new Map([[checkPath(src.path, "serviceAccountToken"), { data: Buffer.from(t.token), mode }]]);
  }

  /** The bind mounts the containers ask for (their union: containers share the pod's mount namespace). */
  mounts(pod: Pod): PodMount[] {
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    const byPath = new Map<string, PodMount>();
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      for (const m of c.volumeMounts ?? []) {
        const v = volumes.get(m.name);
        if (!v) throw new VolumeError(`volumeMount "${m.name}": no volume of that name`);
        let source = this.volumePath(v);
        if (m.subPath) source = join(source, checkPath(m.subPath, `volumeMount "${m.name}" subPath`));
        const st = (() => {
          try {
            return statSync(source);
          } catch {
            return undefined;
          }
        })();
        if (!st) {
          if (m.subPath && v.emptyDir) mkdirSync(source, { recursive: true });
          else throw new VolumeError(`volume "${m.name}": ${source} does not exist`);
        }
        const readOnly = !!m.readOnly || !!(v.configMap || v.secret || v.projected || v.downwardAPI);
        byPath.set(m.mountPath, {
          source,
          mountPath: m.mountPath,
          kind: st && !st.isDirectory() ? "file" : "dir",
          readOnly,
        });
      }
    }
    return [...byPath.values()];
  }
}
