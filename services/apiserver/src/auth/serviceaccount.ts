// Service-account tokens as kube-apiserver issues and checks them: RS256 JWTs signed with a key
// kept under the state directory (--service-account-key-file), issued by TokenRequest
// (POST /api/v1/namespaces/NS/serviceaccounts/NAME/token, what kubelet calls for projected
// volumes) and accepted as bearer tokens while their ServiceAccount (and bound Pod) still exist.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { KubeObject } from "@klab/api";
import { ApiError, errors, statusOf } from "../registry/errors.ts";
import type { AdmissionHooks } from "../registry/hooks.ts";
import type { StorageView } from "../options.ts";
import { fields } from "../protobuf/wire.ts";

/** --service-account-issuer default of kubeadm clusters; also the default API audience. */
export const DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local";
const DEFAULT_EXPIRATION_SECONDS = 3600;
const MIN_EXPIRATION_SECONDS = 600;
const MAX_EXPIRATION_SECONDS = 2 ** 32;

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  "kubernetes.io": {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
    node?: { name: string; uid: string };
  };
}

export interface BoundObject {
  kind: "Pod" | "Secret" | "Node";
  name: string;
  uid: string;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

export class ServiceAccountTokens {
  private readonly key: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly kid: string;

  constructor(
    stateDir: string,
    readonly issuer = DEFAULT_ISSUER,
    readonly apiAudiences: string[] = [issuer],
  ) {
    const file = join(stateDir, "sa.key");
    if (existsSync(file)) {
      this.key = createPrivateKey(readFileSync(file));
    } else {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(file, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
      this.key = privateKey;
    }
    this.publicKey = createPublicKey(this.key);
    // kube-apiserver's key id: the SHA-256 of the public key's DER, base64url
    this.kid = b64url(
      createHash("sha256")
        .update(this.publicKey.export({ type: "spki", format: "der" }))
        .digest(),
    );
  }

  issue(opts: {
    namespace: string;
    serviceAccount: { name: string; uid: string };
    audiences?: string[];
    expirationSeconds?: number;
    bound?: BoundObject;
    now?: number;
  }): { token: string; claims: TokenClaims } {
    const iat = Math.floor((opts.now ?? Date.now()) / 1000);
    const claims: TokenClaims = {
      aud: opts.audiences?.length ? opts.audiences : this.apiAudiences,
      exp: iat + (opts.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS),
      iat,
      iss: this.issuer,
      jti: randomUUID(),
      "kubernetes.io": {
        namespace: opts.namespace,
        serviceaccount: opts.serviceAccount,
        ...(opts.bound?.kind === "Pod" ? { pod: { name: opts.bound.name, uid: opts.bound.uid } } : {}),
        ...(opts.bound?.kind === "Node" ? { node: { name: opts.bound.name, uid: opts.bound.uid } } : {}),
      },
      nbf: iat,
      sub: `system:serviceaccount:${opts.namespace}:${opts.serviceAccount.name}`,
    };
    const head = b64url(JSON.stringify({ alg: "RS256", kid: this.kid }));
    const body = b64url(JSON.stringify(claims));
    const sig = sign("sha256", Buffer.from(`${head}.${body}`), this.key);
    return { token: `${head}.${body}.${b64url(sig)}`, claims };
  }

  /** The claims of a token this server signed, still valid and meant for the API; else undefined. */
  verify(token: string, now = Date.now()): TokenClaims | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    let head: { alg?: string };
    let claims: TokenClaims;
    try {
      head = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
    if (head?.alg !== "RS256" || typeof claims !== "object" || !claims) return undefined;
    const ok = verify(
      "sha256",
      Buffer.from(`${parts[0]}.${parts[1]}`),
      this.publicKey,
      Buffer.from(parts[2]!, "base64url"),
    );
    if (!ok) return undefined;
    const t = Math.floor(now / 1000);
    if (claims.iss !== this.issuer || typeof claims.exp !== "number" || claims.exp <= t) return undefined;
    if (typeof claims.nbf === "number" && claims.nbf > t + 60) return undefined;
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => this.apiAudiences.includes(a))) return undefined;
    if (!claims["kubernetes.io"]?.serviceaccount?.name) return undefined;
    return claims;
  }
}

/**
 * Authenticates a bearer token as a service account: signature and expiry, then what
 * kube-apiserver checks of bound tokens, that the ServiceAccount and the Pod still exist with the
 * same uid. Returns the user name (system:serviceaccount:NS:NAME) or undefined.
 */
export function authenticateServiceAccount(
  tokens: ServiceAccountTokens,
  storage: StorageView,
  header: string | undefined,
): string | undefined {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const claims = tokens.verify(m[1]!);
  if (!claims) return undefined;
  const k = claims["kubernetes.io"];
  const sa = storage.get("serviceaccounts", k.namespace, k.serviceaccount.name);
  if (!sa || sa.metadata.uid !== k.serviceaccount.uid) return undefined;
  if (k.pod) {
    const pod = storage.get("pods", k.namespace, k.pod.name);
    if (!pod || pod.metadata.uid !== k.pod.uid || pod.metadata.deletionTimestamp) return undefined;
  }
  return claims.sub;
}

function invalid(field: string, value: unknown, message: string): ApiError {
  return new ApiError(
    statusOf(
      422,
      "Invalid",
      `TokenRequest.authentication.k8s.io "" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${message}`,
      {
        group: "authentication.k8s.io",
        kind: "TokenRequest",
        causes: [
          {
            reason: "FieldValueInvalid",
            message: `Invalid value: ${JSON.stringify(value)}: ${message}`,
            field,
          },
        ],
      },
    ),
  );
}

interface TokenRequestBody {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
  spec?: {
    audiences?: unknown;
    expirationSeconds?: unknown;
    boundObjectRef?: { kind?: string; apiVersion?: string; name?: string; uid?: string } | null;
  };
}

/** Pure part of TokenRequest: checks the request against storage, issues, builds the answer. */
export function answerTokenRequest(
  tokens: ServiceAccountTokens,
  storage: StorageView,
  namespace: string,
  name: string,
  body: TokenRequestBody,
): KubeObject {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw errors.badRequest("the body must be a TokenRequest object");
  const sa = storage.get("serviceaccounts", namespace, name);
  if (!sa) throw errors.notFound("", "serviceaccounts", name);
  const spec = body.spec ?? {};
  const audiences = spec.audiences ?? [];
  if (!Array.isArray(audiences) || audiences.some((a) => typeof a !== "string"))
    throw invalid("spec.audiences", audiences, "must be a list of strings");
  const exp = spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
  if (typeof exp !== "number" || !Number.isInteger(exp))
    throw invalid("spec.expirationSeconds", exp, "must be an integer");
  if (exp < MIN_EXPIRATION_SECONDS)
    throw invalid("spec.expirationSeconds", exp, "may not specify a duration less than 10 minutes");
  if (exp > MAX_EXPIRATION_SECONDS)
    throw invalid("spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 seconds");
  let bound: BoundObject | undefined;
  const ref = spec.boundObjectRef;
  if (ref) {
    if (ref.kind !== "Pod" && ref.kind !== "Secret" && ref.kind !== "Node")
      throw invalid("spec.boundObjectRef.kind", ref.kind, 'supported values: "Pod", "Secret", "Node"');
    const plural = ref.kind === "Pod" ? "pods" : ref.kind === "Secret" ? "secrets" : "nodes";
    const obj = storage.get(plural, ref.kind === "Node" ? "" : namespace, String(ref.name ?? ""));
    if (!obj) throw errors.notFound("", plural, String(ref.name ?? ""));
    if (ref.uid && ref.uid !== obj.metadata.uid)
      throw new ApiError(
        statusOf(
          409,
          "Conflict",
          `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
        ),
      );
    bound = { kind: ref.kind, name: obj.metadata.name!, uid: obj.metadata.uid! };
  }
  const { token, claims } = tokens.issue({
    namespace,
    serviceAccount: { name, uid: sa.metadata.uid! },
    audiences: audiences as string[],
    expirationSeconds: exp,
    bound,
  });
  return {
    kind: "TokenRequest",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { name, namespace, creationTimestamp: null },
    spec: {
      audiences: claims.aud,
      expirationSeconds: exp,
      boundObjectRef: ref
        ? { kind: ref.kind, apiVersion: ref.apiVersion ?? "v1", name: ref.name, uid: bound!.uid }
        : null,
    },
    status: { token, expirationTimestamp: new Date(claims.exp * 1000).toISOString().replace(/\.\d+Z$/, "Z") },
  } as unknown as KubeObject;
}

const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/**
 * A TokenRequest in Kubernetes' protobuf envelope (what client-go, hence `kubectl create token`,
 * sends): Unknown{raw=2} wrapping TokenRequest{spec=2{audiences=1, expirationSeconds=4,
 * boundObjectRef=3{kind=1, apiVersion=2, name=3, uid=4}}}.
 */
export function decodeTokenRequestProtobuf(body: Buffer): TokenRequestBody {
  const text = (b?: Uint8Array) => Buffer.from(b ?? []).toString("utf8");
  let raw: Uint8Array | undefined;
  for (const f of fields(body.subarray(4))) if (f.num === 2 && f.bytes) raw = f.bytes;
  if (!raw) throw new Error("the protobuf envelope holds no object");
  const spec: NonNullable<TokenRequestBody["spec"]> = {};
  for (const f of fields(raw)) {
    if (f.num !== 2 || !f.bytes) continue;
    for (const g of fields(f.bytes)) {
      if (g.num === 1) ((spec.audiences ??= []) as string[]).push(text(g.bytes));
      else if (g.num === 4 && g.varint !== undefined)
        spec.expirationSeconds = Number(BigInt.asIntN(64, g.varint));
      else if (g.num === 3 && g.bytes) {
        const ref: NonNullable<NonNullable<TokenRequestBody["spec"]>["boundObjectRef"]> = {};
        for (const r of fields(g.bytes)) {
          const v = text(r.bytes);
          if (r.num === 1) ref.kind = v;
          else if (r.num === 2) ref.apiVersion = v;
          else if (r.num === 3) ref.name = v;
          else if (r.num === 4) ref.uid = v;
        }
        spec.boundObjectRef = ref;
      }
    }
  }
  return { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec };
}

export function registerTokenRequest(
  app: FastifyInstance,
  tokens: ServiceAccountTokens,
  storage: StorageView,
): void {
  app.post("/api/v1/namespaces/:namespace/serviceaccounts/:name/token", async (req, reply) => {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let body: TokenRequestBody;
    try {
      body = PROTOBUF_MAGIC.equals(raw.subarray(0, 4))
        ? decodeTokenRequestProtobuf(raw)
        : raw.toString("utf8").trim()
          ? JSON.parse(raw.toString("utf8"))
          : {};
    } catch (err) {
      throw errors.badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
    }
    const answer = answerTokenRequest(tokens, storage, namespace, name, body);
    return reply.code(201).type("application/json").send(JSON.stringify(answer));
  });
}

const SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The ServiceAccount admission plugin's pod mutation: spec.serviceAccountName defaults to
 * "default", and unless automountServiceAccountToken is false (on the pod) every container gets
 * the kube-api-access-xxxxx projected volume (token, ca.crt from ConfigMap kube-root-ca.crt,
 * namespace) at /var/run/secrets/kubernetes.io/serviceaccount.
 */
export function serviceAccountAdmission(storage: () => StorageView | undefined): AdmissionHooks {
  return { beforeCreate: (obj) => admitPod(obj, storage()) };
}

// the alphabet of kube's utilrand.String, which names generated objects
const RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

function randSuffix(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += RAND_ALPHABET[Math.floor(Math.random() * RAND_ALPHABET.length)];
  return s;
}

function admitPod(obj: KubeObject, storage: StorageView | undefined): void {
  {
    const spec = (obj as { spec?: Record<string, unknown> }).spec;
    if (!spec) return;
    spec.serviceAccountName ??= (spec.serviceAccount as string | undefined) ?? "default";
    spec.serviceAccount ??= spec.serviceAccountName;
    if (spec.automountServiceAccountToken === false) return;
    if (spec.automountServiceAccountToken === undefined && storage) {
      const sa = storage.get(
        "serviceaccounts",
        obj.metadata.namespace ?? "default",
        String(spec.serviceAccountName),
      ) as { automountServiceAccountToken?: boolean } | undefined;
      if (sa?.automountServiceAccountToken === false) return;
    }
    type C = { volumeMounts?: Array<{ mountPath: string; name: string; readOnly?: boolean }> };
    const containers = [...((spec.initContainers as C[]) ?? []), ...((spec.containers as C[]) ?? [])];
    if (containers.length === 0) return;
    const volumes = ((spec.volumes as Array<{ name: string }>) ??= []);
    const name = `kube-api-access-${randSuffix(5)}`;
    let used = false;
    for (const c of containers) {
      if ((c.volumeMounts ?? []).some((m) => m.mountPath.replace(/\/+$/, "") === SA_MOUNT_PATH)) continue;
      (c.volumeMounts ??= []).push({ name, readOnly: true, mountPath: SA_MOUNT_PATH });
      used = true;
    }
    if (!used) return;
    volumes.push({
      name,
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          {
            downwardAPI: {
              items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
            },
          },
        ],
      },
    } as { name: string });
  }
}
