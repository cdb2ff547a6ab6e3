#!/usr/bin/env python3
"""Rule regexes from patterns/builtin.toml for the competing tools in bench/run.sh.

  rule_regexes.py ere TOML OUT.sed [--max N]   GNU sed -E script: one s///gI line per rule that
                                                translates to ERE and still fires on its examples
  rule_regexes.py rg  TOML OUT.txt [--ids a,b]  every rule regex (or those of the ids), one a line
                                                (Rust regex syntax is close to RE2; run.sh drops
                                                the ones rg rejects)

Prints one JSON line to stdout: how many rules were taken and skipped, and why.
The translation to ERE is deliberately small: RE2 constructs with a clear POSIX/GNU equivalent are
mapped, anything else skips the rule. Case-insensitive groups `(?i:...)` make the whole
expression case-insensitive (sed's I flag): a little broader than the rule, the same work.
"""

import json
import subprocess
import sys
import tomllib

# Rules tried first for the sed contender: common, simple shapes. Then the rest, in pack order.
PREFERRED = ["github-pat", "stripe-secret-key", "aws-access-key-id", "slack-bot-token", "jwt",
             "google-api-key", "aws-secret-access-key", "generic-password",
             "uri-database-password", "gitlab-pat", "npm-access-token", "openai-api-key"]

ERE_SPECIAL = set(".[]()*+?{}|^$\\/")


class Unsupported(Exception):
    pass


def translate_class(rx, i):
    """rx[i] == '['. Returns (ERE bracket expression, index after the closing ']')."""
    i += 1
    negate = False
    if i < len(rx) and rx[i] == "^":
        negate = True
        i += 1
    items = []  # strings to put inside the brackets, already in POSIX form
    has_rbracket = has_dash = has_caret = has_backslash = False
    first = True
    while True:
        if i >= len(rx):
            raise Unsupported("unterminated class")
        c = rx[i]
        if c == "]" and not first:
            i += 1
            break
        first = False
        if c == "[" and rx.startswith("[:", i):
            j = rx.index(":]", i)
            items.append(rx[i:j + 2])
            i = j + 2
            continue
        if c == "\\":
            if i + 1 >= len(rx):
                raise Unsupported("trailing backslash")
            e = rx[i + 1]
            i += 2
            shorthand = {"d": "0-9", "w": "[:alnum:]_", "s": "[:space:]",
                         "n": "\\n", "t": "\\t", "r": "\\r"}  # \n \t \r: GNU sed escapes
            if e in shorthand:
                items.append(shorthand[e])
                continue
            if e == "x":
                lit = chr(int(rx[i:i + 2], 16))
                i += 2
            elif e.isalnum():
                raise Unsupported(f"class escape \\{e}")
            else:
                lit = e
        else:
            lit = c
            i += 1
        # A literal, possibly the start of a range a-b.
        if i + 1 < len(rx) and rx[i] == "-" and rx[i + 1] != "]":
            hi = rx[i + 1]
            if hi == "\\":
                raise Unsupported("escaped range end")
            items.append(f"{lit}-{hi}")
            i += 2
            continue
        if lit == "]":
            has_rbracket = True
        elif lit == "-":
            has_dash = True
        elif lit == "^":
            has_caret = True
        elif lit == "\\":
            has_backslash = True
        elif lit == "/":
            items.append("\\/")  # sed strips the backslash before the delimiter
        else:
            items.append(lit)
    body = ("]" if has_rbracket else "") + "".join(items) + ("\\\\" if has_backslash else "")
    body += ("^" if has_caret else "") + ("-" if has_dash else "")
    if not body:
        raise Unsupported("empty class")
    if has_caret and body == "^":
        body = "\\^" if not negate else "^"  # lone caret
    return ("[^" if negate else "[") + body + "]", i


def to_ere(rx):
    """(ERE text, case_insensitive) or raises Unsupported."""
    out = []
    ci = False
    i = 0
    while i < len(rx):
        c = rx[i]
        if c == "(":
            if rx.startswith("(?:", i):
                out.append("(")
                i += 3
            elif rx.startswith("(?i:", i):
                ci = True
                out.append("(")
                i += 4
            elif rx.startswith("(?i)", i):
                ci = True
                i += 4
            elif rx.startswith("(?P<", i) or rx.startswith("(?<", i):
                i = rx.index(">", i) + 1
                out.append("(")
            elif rx.startswith("(?", i):
                raise Unsupported("group flags")
            else:
                out.append("(")
                i += 1
            continue
        if c in "*+?}":
            out.append(c)
            i += 1
            if i < len(rx) and rx[i] == "?":
                raise Unsupported("lazy quantifier")
            continue
        if c == "[":
            cls, i = translate_class(rx, i)
            out.append(cls)
            continue
        if c == "\\":
            if i + 1 >= len(rx):
                raise Unsupported("trailing backslash")
            e = rx[i + 1]
            i += 2
            if e in "bBwWsS":
                out.append("\\" + e)  # GNU extensions
            elif e == "d":
                out.append("[0-9]")
            elif e == "D":
                out.append("[^0-9]")
            elif e in "nrt":
                out.append("\\" + e)
            elif e == "x":
                ch = chr(int(rx[i:i + 2], 16))
                i += 2
                out.append("\\" + ch if ch in ERE_SPECIAL else ch)
            elif e.isalnum():
                raise Unsupported(f"escape \\{e}")
            else:
                out.append("\\" + e if e in ERE_SPECIAL else e)
            continue
        if c == "/":
            out.append("\\/")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out), ci


def sed_fires(script_line, text):
    r = subprocess.run(["sed", "-E", script_line], input=text.encode(), capture_output=True)
    return r.returncode == 0 and r.stdout.decode(errors="replace") != text + "\n"


def cmd_ere(toml_path, out_path, max_rules):
    rules = tomllib.load(open(toml_path, "rb")).get("rules", [])
    order = sorted(range(len(rules)), key=lambda k: (
        PREFERRED.index(rules[k]["id"]) if rules[k]["id"] in PREFERRED else len(PREFERRED), k))
    taken, skipped = [], {}
    lines = []
    for k in order:
        if len(taken) >= max_rules:
            break
        rule = rules[k]
        try:
            ere, ci = to_ere(rule["regex"])
        except (Unsupported, ValueError) as e:
            skipped[rule["id"]] = str(e)
            continue
        line = f"s/{ere}/[REDACTED]/g{'I' if ci else ''}"
        examples = [ex["text"] for ex in rule.get("examples", []) if "\n" not in ex["text"]]
        if not examples or not all(sed_fires(line, t) for t in examples):
            skipped[rule["id"]] = "translation does not fire on the rule's examples"
            continue
        taken.append(rule["id"])
        lines.append(line)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps({"tool": "sed", "rules": len(taken), "ids": taken,
                      "skipped_before_enough": len(skipped)}))


def cmd_rg(toml_path, out_path, ids=None):
    rules = tomllib.load(open(toml_path, "rb")).get("rules", [])
    if ids is not None:
        rules = [r for r in rules if r["id"] in ids]
    with open(out_path, "w", encoding="utf-8") as f:
        for r in rules:
            if "\n" not in r["regex"]:
                f.write(r["regex"] + "\n")
    print(json.dumps({"tool": "rg", "rules": len(rules)}))


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("ere", "rg"):
        sys.exit(__doc__)
    if sys.argv[1] == "ere":
        max_rules = 8
        if "--max" in sys.argv:
            max_rules = int(sys.argv[sys.argv.index("--max") + 1])
        cmd_ere(sys.argv[2], sys.argv[3], max_rules)
    else:
        ids = None
        if "--ids" in sys.argv:
            ids = set(sys.argv[sys.argv.index("--ids") + 1].split(","))
        cmd_rg(sys.argv[2], sys.argv[3], ids)


if __name__ == "__main__":
    main()
