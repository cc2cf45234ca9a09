import { describe, expect, it } from "vitest";
import {
  labelSelectorMatches,
  labelSelectorToString,
  labelsMatch,
  mapSelectorToString,
  parseLabelSelector,
  parseSelectorRequirements,
  requirementsToString,
  SelectorError,
} from "./labels.ts";

const nameRegexMsg =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

describe("label selector strings", () => {
  it("parse every operator kubectl accepts, sorted by key", () => {
    expect(parseLabelSelector("tier in (fe, be),app=web,env==prod,x!=y,has,!gone,v notin (a)")).toEqual([
      { key: "app", operator: "In", values: ["web"] },
      { key: "env", operator: "In", values: ["prod"] },
      { key: "gone", operator: "DoesNotExist" },
      { key: "has", operator: "Exists" },
      { key: "tier", operator: "In", values: ["be", "fe"] },
      { key: "v", operator: "NotIn", values: ["a"] },
      { key: "x", operator: "NotIn", values: ["y"] },
    ]);
    expect(parseLabelSelector("")).toEqual([]);
    expect(parseLabelSelector("a>3,b<1")).toEqual([
      { key: "a", operator: "Gt", values: ["3"] },
      { key: "b", operator: "Lt", values: ["1"] },
    ]);
  });

  it("print back in kube's canonical form", () => {
    expect(requirementsToString(parseSelectorRequirements("b in (y,x), a=1, !c, d"))).toBe(
      "a=1,b in (x,y),!c,d",
    );
  });

  it("treat in/notin as plain words in value position", () => {
    expect(parseLabelSelector("a=in")).toEqual([{ key: "a", operator: "In", values: ["in"] }]);
    expect(parseLabelSelector("a=")).toEqual([{ key: "a", operator: "In", values: [""] }]);
  });

  it("reject bad input with kube's messages", () => {
    const msg = (s: string) => {
      try {
        parseLabelSelector(s);
      } catch (e) {
        expect(e).toBeInstanceOf(SelectorError);
        return (e as Error).message;
      }
      return "no error";
    };
    expect(msg("app=web,")).toBe("found '', expected: identifier after ','");
    expect(msg("app in (a")).toBe("unable to parse requirement: found '', expected: ',' or ')'");
    expect(msg("app in a")).toBe("unable to parse requirement: found 'a' expected: '('");
    expect(msg("app web")).toBe(
      "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt",
    );
    expect(msg("a=b c")).toBe("found 'c', expected: ',' or 'end of string'");
    expect(msg("=a")).toBe("found '=', expected: !, identifier, or 'end of string'");
    expect(msg("a_=b")).toBe(`unable to parse requirement: <nil>: Invalid value: "a_": ${nameRegexMsg}`);
    expect(msg("a=b_")).toBe(
      `unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
    );
    expect(msg("a>x")).toBe(
      `unable to parse requirement: values[0]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer`,
    );
  });
});

describe("matching labels", () => {
  const web = { app: "web", tier: "fe" };
  it("follows kube's semantics for each operator", () => {
    expect(labelsMatch(parseLabelSelector("app=web"), web)).toBe(true);
    expect(labelsMatch(parseLabelSelector("app!=db"), web)).toBe(true);
    expect(labelsMatch(parseLabelSelector("missing!=x"), web)).toBe(true);
    expect(labelsMatch(parseLabelSelector("tier notin (fe)"), web)).toBe(false);
    expect(labelsMatch(parseLabelSelector("!app"), web)).toBe(false);
    expect(labelsMatch(parseLabelSelector("app,tier in (fe,be)"), web)).toBe(true);
    expect(labelsMatch(parseLabelSelector("n>2"), { n: "3" })).toBe(true);
    expect(labelsMatch(parseLabelSelector("n>2"), { n: "x" })).toBe(false);
    expect(labelsMatch([], undefined)).toBe(true);
  });

  it("an API selector: null matches nothing, empty matches everything", () => {
    expect(labelSelectorMatches(undefined, web)).toBe(false);
    expect(labelSelectorMatches(null, web)).toBe(false);
    expect(labelSelectorMatches({}, web)).toBe(true);
    expect(labelSelectorMatches({ matchLabels: { app: "web" } }, web)).toBe(true);
    expect(
      labelSelectorMatches(
        {
          matchLabels: { app: "web" },
          matchExpressions: [{ key: "tier", operator: "NotIn", values: ["fe"] }],
        },
        web,
      ),
    ).toBe(false);
    // In without values does not convert, so it selects nothing
    expect(
      labelSelectorMatches({ matchExpressions: [{ key: "tier", operator: "In", values: [] }] }, web),
    ).toBe(false);
  });

  it("formats API selectors as kubectl shows them", () => {
    expect(labelSelectorToString({ matchLabels: { tier: "fe", app: "web" } })).toBe("app=web,tier=fe");
    expect(
      labelSelectorToString({ matchExpressions: [{ key: "env", operator: "In", values: ["prod", "dev"] }] }),
    ).toBe("env in (dev,prod)");
    expect(labelSelectorToString({})).toBe("<none>");
    expect(labelSelectorToString(undefined)).toBe("<none>");
    expect(labelSelectorToString({ matchExpressions: [{ key: "a", operator: "Bad" as "In" }] })).toBe(
      "<error>",
    );
    expect(mapSelectorToString({ b: "2", a: "1" })).toBe("a=1,b=2");
    expect(mapSelectorToString(undefined)).toBe("<none>");
  });
});
