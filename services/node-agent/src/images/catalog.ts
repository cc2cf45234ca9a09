import { createHash } from "node:crypto";
import type { Container } from "@klab/api";

/**
 * The images klab runs without pulling anything: each maps to the ENTRYPOINT and CMD of the real
 * image, whose programs are klab's own (launchers installed at the root of the pod's filesystem)
 * or the node's tools. command replaces ENTRYPOINT and args replaces CMD, as in Docker.
 */
export interface ImageSpec {
  /** repository without tag, as normalised by containerd (docker.io/library/nginx) */
  repository: string;
  entrypoint: string[];
  cmd: string[];
  /** launchers (path from the pod's root -> klab program) the image needs */
  launchers: Record<string, string>;
  env?: Record<string, string>;
}

const TOOLBOX = "sh";

const CATALOG: Record<string, Omit<ImageSpec, "repository">> = {
  "registry.k8s.io/e2e-test-images/agnhost": {
    entrypoint: ["/agnhost"],
    cmd: ["pause"],
    launchers: { agnhost: "agnhost" },
  },
  "k8s.gcr.io/e2e-test-images/agnhost": {
    entrypoint: ["/agnhost"],
    cmd: ["pause"],
    launchers: { agnhost: "agnhost" },
  },
  "docker.io/library/nginx": {
    entrypoint: ["/docker-entrypoint.sh"],
    cmd: ["nginx", "-g", "daemon off;"],
    launchers: { "docker-entrypoint.sh": "nginx-entrypoint", nginx: "nginx" },
  },
  "docker.io/hashicorp/http-echo": {
    entrypoint: ["/http-echo"],
    cmd: [],
    launchers: { "http-echo": "http-echo" },
  },
  "docker.io/library/busybox": { entrypoint: [], cmd: [TOOLBOX], launchers: {} },
  "docker.io/library/alpine": { entrypoint: [], cmd: ["/bin/sh"], launchers: {} },
  "docker.io/curlimages/curl": { entrypoint: ["curl"], cmd: [], launchers: {} },
  "docker.io/nicolaka/netshoot": { entrypoint: [], cmd: ["sh"], launchers: {} },
  "registry.k8s.io/pause": { entrypoint: ["/pause"], cmd: [], launchers: { pause: "pause" } },
  "k8s.gcr.io/pause": { entrypoint: ["/pause"], cmd: [], launchers: { pause: "pause" } },
  "registry.k8s.io/coredns/coredns": {
    entrypoint: ["/coredns"],
    cmd: [],
    launchers: { coredns: "klab:coredns" },
  },
  "registry.k8s.io/kube-proxy": {
    // the real image's binary; its DaemonSet runs `/usr/local/bin/kube-proxy --config=…`
    entrypoint: ["/usr/local/bin/kube-proxy"],
    cmd: [],
    launchers: { "usr/local/bin/kube-proxy": "klab:proxy" },
  },
  "registry.k8s.io/ingress-nginx/controller": {
    // the real image is ENTRYPOINT dumb-init, CMD /nginx-ingress-controller: args name the binary
    entrypoint: [],
    cmd: ["/nginx-ingress-controller"],
    launchers: { "nginx-ingress-controller": "klab:ingress" },
  },
};

/** Every program a launcher may name: klab programs and the klab CLI's service commands. */
export const LAUNCHER_PROGRAMS = [
  "agnhost",
  "nginx",
  "nginx-entrypoint",
  "http-echo",
  "pause",
  "klab:coredns",
  "klab:proxy",
  "klab:ingress",
];

export interface ImageRef {
  repository: string;
  tag: string;
  digest?: string;
  /** The name containerd reports in status.containerStatuses[].image */
  normalized: string;
}

/** Parses an image reference the way the Docker reference grammar does (domain, path, tag, digest). */
export function parseImageRef(image: string): ImageRef | undefined {
  const m =
    /^([a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(
      image,
    );
  if (!m) return undefined;
  let repo = m[1];
  const first = repo.split("/")[0];
  const hasDomain =
    repo.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  if (!hasDomain) repo = `docker.io/${repo.includes("/") ? repo : `library/${repo}`}`;
  const tag = m[2] ?? (m[3] ? "" : "latest");
  return {
    repository: repo,
    tag,
    digest: m[3],
    normalized: `${repo}${tag ? `:${tag}` : ""}${m[3] ? `@${m[3]}` : ""}`,
  };
}

export type ResolvedImage =
  | { ok: true; ref: ImageRef; spec: ImageSpec; argv: string[]; imageID: string }
  | { ok: false; reason: "ErrImagePull" | "InvalidImageName"; message: string };

export const CATALOG_NAMES = Object.keys(CATALOG);

/** Resolves a container to the argv it runs, or the pull error a kubelet would report. */
export function resolveImage(container: Container): ResolvedImage {
  const image = container.image ?? "";
  const ref = parseImageRef(image);
  if (!ref) {
    return {
      ok: false,
      reason: "InvalidImageName",
      message: `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`,
    };
  }
  const entry = CATALOG[ref.repository];
  if (!entry) {
    return {
      ok: false,
      reason: "ErrImagePull",
      message:
        `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${ref.normalized}": ` +
        `klab runs images from its built-in catalog only (${CATALOG_NAMES.filter((n) => !n.startsWith("k8s.gcr.io")).join(", ")}); ` +
        `use one of them or set an explicit command on a toolbox image`,
    };
  }
  const spec: ImageSpec = { repository: ref.repository, ...entry };
  const entrypoint = container.command ?? spec.entrypoint;
  const cmd = container.command ? (container.args ?? []) : (container.args ?? spec.cmd);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0)
    return {
      ok: false,
      reason: "ErrImagePull",
      message: `image "${image}" has no command and the container sets none`,
    };
  const digest = createHash("sha256").update(`klab:${ref.repository}:${ref.tag}`).digest("hex");
  return { ok: true, ref, spec, argv, imageID: `${ref.repository}@sha256:${digest}` };
}
