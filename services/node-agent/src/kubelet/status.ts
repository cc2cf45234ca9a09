/** metav1.Status bodies the kubelet API and the streaming protocols send. */
export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ reason: string; message: string }> };
  code?: number;
}

export function failure(code: number, reason: string, message: string): StatusBody {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

/** The exec result on the error channel: what makes kubectl exit with the command's code. */
export function execResult(
  exitCode: number,
  argv: string[],
): StatusBody | { metadata: Record<string, never>; status: "Success" } {
  if (exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${argv.join(" ")}], exit code ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}
