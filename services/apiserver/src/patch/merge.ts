// RFC 7386 JSON merge patch and RFC 6902 JSON patch.
import jsonpatch, { type Operation } from "fast-json-patch";
import { PatchError } from "./strategic.ts";

export function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError("json patch must be a list of operations");
  const err = jsonpatch.validate(ops as Operation[], target);
  if (err) throw new PatchError(`${err.name}: ${err.message.split("\n")[0]}`);
  try {
    return jsonpatch.applyPatch(structuredClone(target), ops as Operation[], false, true).newDocument;
  } catch (e) {
    throw new PatchError((e as Error).message.split("\n")[0]!);
  }
}
