// Label selectors: the string syntax kubectl and the API accept (`-l`, `?labelSelector=`), and the
// API's LabelSelector struct, with the semantics and error messages of k8s.io/apimachinery/pkg/labels.
import { aggregateMessage, fieldErrorMessage, invalid, type FieldError } from "../field.ts";
import type { LabelSelector, LabelSelectorOperator, LabelSelectorRequirement } from "../types.ts";
import { isQualifiedName, isValidLabelValue } from "../validation/strings.ts";

/** A selector that cannot be parsed or is not supported; `message` is kube's own text. */
export class SelectorError extends Error {
  override name = "SelectorError";
}

type Tok =
  | "end"
  | "closePar"
  | "comma"
  | "notExists"
  | "doubleEquals"
  | "equals"
  | "gt"
  | "identifier"
  | "in"
  | "lt"
  | "notEquals"
  | "notIn"
  | "openPar";

const symbols: Record<string, Tok> = {
  ")": "closePar",
  ",": "comma",
  "!": "notExists",
  "==": "doubleEquals",
  "=": "equals",
  ">": "gt",
  "<": "lt",
  "!=": "notEquals",
  "(": "openPar",
};
const keywords: Record<string, Tok> = { in: "in", notin: "notIn" };

const isWhitespace = (c: string) => c === " " || c === "\t" || c === "\r" || c === "\n";
const isSpecial = (c: string) => "=!(),><".includes(c);

function lex(s: string): Array<{ tok: Tok; lit: string }> {
  const out: Array<{ tok: Tok; lit: string }> = [];
  let i = 0;
  for (;;) {
    while (i < s.length && isWhitespace(s[i])) i++;
    if (i >= s.length) {
      out.push({ tok: "end", lit: "" });
      return out;
    }
    if (isSpecial(s[i])) {
      // longest run of special characters that still forms a symbol
      let buf = "";
      let last: { tok: Tok; lit: string } | undefined;
      let j = i;
      while (j < s.length && isSpecial(s[j])) {
        buf += s[j];
        if (symbols[buf]) {
          last = { tok: symbols[buf], lit: buf };
          j++;
        } else if (last) break;
        else j++;
      }
      // every single special character is a symbol, so `last` is always set
      out.push(last!);
      i += last!.lit.length;
    } else {
      let j = i;
      while (j < s.length && !isWhitespace(s[j]) && !isSpecial(s[j])) j++;
      const lit = s.slice(i, j);
      out.push({ tok: keywords[lit] ?? "identifier", lit });
      i = j;
    }
  }
}

const binaryOperators = "in, notin, =, ==, !=, gt, lt";

type ParsedOp = "in" | "notin" | "=" | "==" | "!=" | "gt" | "lt" | "exists" | "!";

/** A requirement as the string syntax wrote it, kept so it prints back the same way. */
export interface ParsedRequirement {
  key: string;
  op: ParsedOp;
  values: string[];
}

class Parser {
  private pos = 0;
  constructor(private items: Array<{ tok: Tok; lit: string }>) {}

  /** In value position the keywords in/notin are plain identifiers. */
  lookahead(values = true): { tok: Tok; lit: string } {
    const it = this.items[Math.min(this.pos, this.items.length - 1)];
    if (values && (it.tok === "in" || it.tok === "notIn")) return { tok: "identifier", lit: it.lit };
    return it;
  }

  consume(values = true): { tok: Tok; lit: string } {
    const it = this.lookahead(values);
    if (this.pos < this.items.length - 1) this.pos++;
    return it;
  }

  parse(): ParsedRequirement[] {
    const reqs: ParsedRequirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead();
      if (tok === "identifier" || tok === "notExists") {
        let r: ParsedRequirement;
        try {
          r = this.requirement();
        } catch (e) {
          throw new SelectorError(`unable to parse requirement: ${(e as Error).message}`);
        }
        reqs.push(r);
        const next = this.consume();
        if (next.tok === "end") return reqs;
        if (next.tok === "comma") {
          const after = this.lookahead();
          if (after.tok !== "identifier" && after.tok !== "notExists")
            throw new SelectorError(`found '${after.lit}', expected: identifier after ','`);
        } else {
          throw new SelectorError(`found '${next.lit}', expected: ',' or 'end of string'`);
        }
      } else if (tok === "end") {
        return reqs;
      } else {
        throw new SelectorError(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
    }
  }

  private requirement(): ParsedRequirement {
    let { tok, lit } = this.consume();
    let op: ParsedOp | undefined;
    if (tok === "notExists") {
      op = "!";
      ({ tok, lit } = this.consume());
    }
    if (tok !== "identifier") throw new Error(`found '${lit}', expected: identifier`);
    const keyErrs = isQualifiedName(lit);
    // the parser validates the key against a nil field path, which Go prints as <nil>
    if (keyErrs.length) throw new Error(fieldErrorMessage(invalid("<nil>", lit, keyErrs.join("; "))));
    const key = lit;
    const peek = this.lookahead().tok;
    if ((peek === "end" || peek === "comma") && op !== "!") op = "exists";
    if (op === "exists" || op === "!") return newRequirement(key, op, []);

    const o = this.consume(false);
    switch (o.tok) {
      case "in":
        op = "in";
        break;
      case "notIn":
        op = "notin";
        break;
      case "equals":
        op = "=";
        break;
      case "doubleEquals":
        op = "==";
        break;
      case "notEquals":
        op = "!=";
        break;
      case "gt":
        op = "gt";
        break;
      case "lt":
        op = "lt";
        break;
      default:
        throw new Error(`found '${o.lit}', expected: ${binaryOperators}`);
    }
    const values = op === "in" || op === "notin" ? this.setValues() : this.exactValue();
    return newRequirement(key, op, values);
  }

  private setValues(): string[] {
    const open = this.consume();
    if (open.tok !== "openPar") throw new Error(`found '${open.lit}' expected: '('`);
    const { tok, lit } = this.lookahead();
    if (tok === "identifier" || tok === "comma") {
      const s = this.identifierList();
      if (this.consume().tok !== "closePar") throw new Error(`found '${lit}', expected: ')'`);
      return s;
    }
    if (tok === "closePar") {
      this.consume();
      return [""];
    }
    throw new Error(`found '${lit}', expected: ',', ')' or identifier`);
  }

  private identifierList(): string[] {
    const s = new Set<string>();
    for (;;) {
      const { tok, lit } = this.consume();
      if (tok === "identifier") {
        s.add(lit);
        const next = this.lookahead();
        if (next.tok === "comma") continue;
        if (next.tok === "closePar") return [...s];
        throw new Error(`found '${next.lit}', expected: ',' or ')'`);
      } else if (tok === "comma") {
        // "(,", ",," and ",)" each stand for the empty value
        if (s.size === 0) s.add("");
        const next = this.lookahead().tok;
        if (next === "closePar") {
          s.add("");
          return [...s];
        }
        if (next === "comma") {
          this.consume();
          s.add("");
        }
      } else {
        throw new Error(`found '${lit}', expected: ',', or identifier`);
      }
    }
  }

  private exactValue(): string[] {
    const peek = this.lookahead().tok;
    if (peek === "end" || peek === "comma") return [""];
    const { tok, lit } = this.consume();
    if (tok === "identifier") return [lit];
    throw new Error(`found '${lit}', expected: identifier`);
  }
}

/** labels.NewRequirement: checks operator arity and every value, aggregating the errors. */
function newRequirement(key: string, op: ParsedOp, vals: string[]): ParsedRequirement {
  const values = [...new Set(vals)].sort();
  const errs: FieldError[] = [];
  const keyErrs = isQualifiedName(key);
  if (keyErrs.length) errs.push(invalid("key", key, keyErrs.join("; ")));
  switch (op) {
    case "in":
    case "notin":
      if (values.length === 0)
        errs.push(invalid("values", values, "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case "=":
    case "==":
    case "!=":
      if (values.length !== 1)
        errs.push(invalid("values", values, "exact-match compatibility requires one single value"));
      break;
    case "exists":
    case "!":
      if (values.length !== 0)
        errs.push(invalid("values", values, "values set must be empty for exists and does not exist"));
      break;
    case "gt":
    case "lt":
      if (values.length !== 1)
        errs.push(invalid("values", values, "for 'Gt', 'Lt' operators, exactly one value is required"));
      values.forEach((v, i) => {
        if (!/^[+-]?[0-9]+$/.test(v))
          errs.push(invalid(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
      });
      break;
  }
  values.forEach((v, i) => {
    const m = isValidLabelValue(v);
    if (m.length) errs.push(invalid(`values[${i}][${key}]`, v, m.join("; ")));
  });
  if (errs.length) throw new Error(aggregateMessage(errs.map(fieldErrorMessage)));
  return { key, op, values };
}

const toApiOperator: Record<ParsedOp, LabelSelectorOperator> = {
  in: "In",
  "=": "In",
  "==": "In",
  notin: "NotIn",
  "!=": "NotIn",
  exists: "Exists",
  "!": "DoesNotExist",
  gt: "Gt",
  lt: "Lt",
};

/** Parses the string form into requirements sorted by key, as labels.Parse does. */
export function parseSelectorRequirements(s: string): ParsedRequirement[] {
  const reqs = new Parser(lex(s)).parse();
  return reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Parses `app=web,tier in (fe,be),!legacy` into API requirements: `=`/`==` become In with one
 * value and `!=` NotIn with one value (the same semantics: NotIn also matches a missing label).
 * Throws SelectorError with kube's message on bad input.
 */
export function parseLabelSelector(s: string): LabelSelectorRequirement[] {
  return parseSelectorRequirements(s).map((r) => {
    const operator = toApiOperator[r.op];
    return operator === "Exists" || operator === "DoesNotExist"
      ? { key: r.key, operator }
      : { key: r.key, operator, values: r.values };
  });
}

function requirementMatches(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case "In":
      return has && (r.values ?? []).includes(value!);
    case "NotIn":
      return !has || !(r.values ?? []).includes(value!);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
    case "Gt":
    case "Lt": {
      if (!has || !/^[+-]?[0-9]+$/.test(value!) || (r.values ?? []).length !== 1) return false;
      const lv = BigInt(value!);
      const rv = BigInt(r.values![0]);
      return r.operator === "Gt" ? lv > rv : lv < rv;
    }
    default:
      return false;
  }
}

/** Whether labels satisfy every requirement (an empty list matches everything). */
export function labelsMatch(
  reqs: LabelSelectorRequirement[],
  labels: Record<string, string> | undefined,
): boolean {
  const l = labels ?? {};
  return reqs.every((r) => requirementMatches(r, l));
}

/**
 * metav1.LabelSelectorAsSelector: an API LabelSelector as requirements. `undefined`/null selects
 * nothing (labels.Nothing), `{}` selects everything. Throws SelectorError for a selector kube would
 * refuse to convert (unknown operator, In/NotIn without values, bad keys or values).
 */
export function labelSelectorRequirements(sel: LabelSelector): ParsedRequirement[] {
  const reqs: ParsedRequirement[] = [];
  try {
    for (const [k, v] of Object.entries(sel.matchLabels ?? {})) reqs.push(newRequirement(k, "=", [v]));
    for (const e of sel.matchExpressions ?? []) {
      const op: ParsedOp | undefined = (
        { In: "in", NotIn: "notin", Exists: "exists", DoesNotExist: "!" } as Record<string, ParsedOp>
      )[e.operator];
      if (!op) throw new Error(`${JSON.stringify(e.operator)} is not a valid label selector operator`);
      reqs.push(newRequirement(e.key, op, e.values ?? []));
    }
  } catch (e) {
    throw new SelectorError((e as Error).message);
  }
  return reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Whether an API LabelSelector selects these labels. Follows Kubernetes: a missing (null) selector
 * matches nothing, an empty selector `{}` matches everything, and an invalid selector matches nothing
 * (controllers skip objects whose selector does not convert).
 */
export function labelSelectorMatches(
  sel: LabelSelector | undefined | null,
  labels: Record<string, string> | undefined,
): boolean {
  if (sel === undefined || sel === null) return false;
  let reqs: ParsedRequirement[];
  try {
    reqs = labelSelectorRequirements(sel);
  } catch {
    return false;
  }
  return labelsMatch(
    reqs.map((r) => ({ key: r.key, operator: toApiOperator[r.op], values: r.values })),
    labels,
  );
}

function requirementString(r: ParsedRequirement): string {
  const vals = r.values.length === 1 ? r.values[0] : [...r.values].sort().join(",");
  switch (r.op) {
    case "exists":
      return r.key;
    case "!":
      return "!" + r.key;
    case "in":
      return `${r.key} in (${vals})`;
    case "notin":
      return `${r.key} notin (${vals})`;
    case "gt":
      return `${r.key}>${vals}`;
    case "lt":
      return `${r.key}<${vals}`;
    default:
      return `${r.key}${r.op}${vals}`;
  }
}

/** The canonical string form of parsed requirements (labels.Selector.String()). */
export function requirementsToString(reqs: ParsedRequirement[]): string {
  return reqs.map(requirementString).join(",");
}

/**
 * metav1.FormatLabelSelector: `app=web,tier in (be,fe)`, `<none>` for a null or empty selector,
 * `<error>` for one that does not convert. Used by `-o wide` SELECTOR columns and describe.
 */
export function labelSelectorToString(sel: LabelSelector | undefined | null): string {
  if (sel === undefined || sel === null) return "<none>";
  try {
    const s = requirementsToString(labelSelectorRequirements(sel));
    return s === "" ? "<none>" : s;
  } catch {
    return "<error>";
  }
}

/** A Service-style map selector (`spec.selector`) printed as kubectl prints it. */
export function mapSelectorToString(sel: Record<string, string> | undefined): string {
  const keys = Object.keys(sel ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${sel![k]}`).join(",") : "<none>";
}
