"""Prompt strategies: small versioned classes that build messages, declare a JSON schema and parse replies.

A strategy turns one planned item (a label and few-shot examples, a seed to evolve, an
input to label, a problem to solve) into chat messages, names the JSON schema the reply
must follow (sent as `response_format` where the server takes it) and parses the reply
back into record fields, or rejects it with a reason. Rejections are counted per reason;
nothing is ever published from a reply that did not parse.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..llm.replies import parse_json
from .checks import REFUSAL
from .tokens import tokenize


class StrategyError(ValueError):
    pass


@dataclass
class Item:
    """What one request is about (every field optional; each strategy reads what it needs)."""

    label: str | None = None
    examples: list[dict[str, str]] = field(default_factory=list)  # few-shot records (role -> text)
    seed: dict[str, str] | None = None  # the record to evolve / revise
    operation: str | None = None  # Evol-Instruct: how to evolve
    context: dict[str, Any] = field(default_factory=dict)  # e.g. the problem (prompt, entry point) for code
    aimed: bool = False  # a targeted request: the prompt says what the example must be
    slice: str | None = None  # the slice's rule in words beyond its label (None: the label says it all)


def _aim(item: Item) -> str:
    """The sentence that aims a request at its slice (empty for an untargeted request: its prompt is unchanged)."""
    return f" It must belong to this slice of the data: {item.slice}." if item.slice else ""


def fields_schema(roles: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(roles),
            "properties": {r: {"type": "string", "minLength": 1} for r in roles}}


def _show(record: dict[str, str]) -> str:
    return json.dumps(record, ensure_ascii=False)


class Strategy:
    name = "base"
    version = "1.0"

    def __init__(self, roles: list[str], labels: list[str] | None = None, task: str = ""):
        self.roles, self.labels, self.task = roles, labels or [], task

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def schema(self) -> dict[str, Any]:
        return fields_schema(self.roles)

    def messages(self, item: Item) -> list[dict[str, str]]:
        raise NotImplementedError

    def parse(self, text: str, item: Item) -> tuple[dict[str, str] | None, str | None]:
        value, reason = parse_json(text, self.schema())
        if value is None:
            return None, reason
        fields = {r: str(value[r]).strip() for r in self.roles}
        empty = [r for r, v in fields.items() if not v]
        return (None, f"empty field(s) {empty}") if empty else (fields, None)

    def _system(self) -> dict[str, str]:
        keys = ", ".join(f'"{r}"' for r in self.roles)
        return {"role": "system", "content": f"You write data for a dataset. {self.task} Reply with one JSON object "
                                             f"with the keys {keys} and nothing else."}


class SelfInstruct(Strategy):
    """Few-shot real seeds of one label -> one new example of that label in the same format."""

    name = "self_instruct"

    def messages(self, item: Item) -> list[dict[str, str]]:
        label = f" labelled '{item.label}'" if item.label else ""
        shots = "\n".join(f"Example {i + 1}: {_show(e)}" for i, e in enumerate(item.examples))
        return [self._system(), {"role": "user", "content": (
            f"Here are real examples{label}:\n{shots}\n\nWrite one new example{label}.{_aim(item)} Keep the style and "
            "length of the examples but say something different; do not copy any example.")}]


EVOLUTIONS = {
    "deepen": "harder: it needs more reasoning steps to answer well",
    "concretize": "more specific: replace general ideas with concrete details",
    "constrain": "more constrained: add one explicit requirement the answer must meet",
    "rephrase": "differently phrased: same intent, new wording and sentence structure",
}
_META_LEAK = re.compile(r"#?\s*(given|rewritten|evolved) (prompt|example)\s*#?", re.I)


class EvolInstruct(Strategy):
    """Rewrite a seed into a harder / more specific / more constrained / rephrased variant (WizardLM's in-depth
    evolution), then eliminate failed evolutions: unchanged, a refusal, leaked meta-prompt text, a trivial answer."""

    name = "evol_instruct"
    operations = tuple(EVOLUTIONS)

    def messages(self, item: Item) -> list[dict[str, str]]:
        how = EVOLUTIONS[item.operation or "rephrase"]
        keep = f" Keep it an example labelled '{item.label}'.{_aim(item)}" if item.aimed and item.label else ""
        return [self._system(), {"role": "user", "content": (
            f"Rewrite this example into a version that is {how}.{keep} Then give a fitting answer in the other "
            f"fields.\nExample: {_show(item.seed or {})}")}]

    def parse(self, text: str, item: Item) -> tuple[dict[str, str] | None, str | None]:
        fields, reason = super().parse(text, item)
        if fields is None:
            return None, reason
        first = self.roles[0]
        new, old = set(tokenize(fields[first])), set(tokenize((item.seed or {}).get(first, "")))
        if new and old and len(new & old) / len(new | old) >= 0.9:
            return None, "evolution failed: the rewrite is (nearly) the seed"
        joined = " ".join(fields.values())
        if REFUSAL.search(joined):
            return None, "evolution failed: a refusal or boilerplate"
        if _META_LEAK.search(joined):
            return None, "evolution failed: the meta-prompt leaked into the example"
        if len(self.roles) > 1 and len(tokenize(fields[self.roles[-1]])) < 3:
            return None, "evolution failed: a trivial answer"
        return fields, None


class Distill(Strategy):
    """A teacher labels a real unlabelled input: the reply is the label only (an enum of the spec's labels)."""

    name = "distill"

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "required": ["label"],
                "properties": {"label": {"type": "string", "enum": self.labels}}}

    def messages(self, item: Item) -> list[dict[str, str]]:
        shots = "\n".join(f"{_show(e)} -> {e.get('_label')}" for e in item.examples)
        return [{"role": "system", "content": f"You label data. {self.task} Reply with JSON {{\"label\": ...}} where "
                                              f"label is one of {self.labels}."},
                {"role": "user", "content": f"Labelled examples:\n{shots}\n\nLabel this: {_show(item.seed or {})}"}]

    def parse(self, text: str, item: Item) -> tuple[dict[str, str] | None, str | None]:
        value, reason = parse_json(text, self.schema())
        if value is None:
            return None, reason
        return {**(item.seed or {}), "_label": value["label"]}, None


class CodeSolution(Strategy):
    """Solve a programming problem: the reply holds the complete function (a candidate for rejection sampling).

    Small models write code far better in a ```python block than inside a JSON string, so the prompt asks for
    the block; a server that enforces the schema gets `{"code": ...}` back and that is parsed too. Either way
    the code must compile, or the reply is rejected with the SyntaxError.
    """

    name = "code_solution"

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "required": ["code"],
                "properties": {"code": {"type": "string", "minLength": 1}}}

    def messages(self, item: Item) -> list[dict[str, str]]:
        shots = "".join(f"Problem:\n{e['prompt']}\nSolution:\n```python\n{e['solution'].strip()}\n```\n\n"
                        for e in item.examples)
        return [{"role": "system", "content": "You are a careful Python programmer. Reply with the complete "
                                              "function, imports included, in one ```python block."},
                {"role": "user", "content": f"{shots}Problem:\n{item.context['prompt']}\nSolution:"}]

    def parse(self, text: str, item: Item) -> tuple[dict[str, str] | None, str | None]:
        code, reason = None, None
        if text.lstrip().startswith("{"):
            value, reason = parse_json(text, self.schema())
            code = value["code"] if value else None
        else:
            block = re.search(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", text, re.S)
            code = block.group(1) if block else None
            reason = None if block else "no ```python block and no JSON object in the reply"
        if code is None:
            return None, reason
        code = re.sub(r"^```(?:python)?\s*|\s*```$", "", code.strip())
        entry = item.context.get("entry_point")
        if entry and not re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", code):
            code = item.context["prompt"] + code  # a body only: complete the given signature
        else:  # a whole function: keep the problem's own imports (e.g. `from typing import List`) above it
            imports = [ln for ln in item.context["prompt"].splitlines() if re.match(r"(from\s+\S+\s+)?import\s", ln)]
            code = "\n".join([ln for ln in imports if ln not in code] + [code])
        try:
            compile(code, "<candidate>", "exec")
        except (SyntaxError, ValueError) as exc:
            return None, f"does not compile: {type(exc).__name__}: {getattr(exc, 'msg', exc)}"
        return {self.roles[0]: item.context["prompt"], self.roles[-1]: code}, None


class Critique(Strategy):
    """The constitutional loop, step 1: does the example break a written principle?"""

    name = "critique"

    def __init__(self, roles, labels=None, task="", principles: list[str] | None = None):
        super().__init__(roles, labels, task)
        self.principles = principles or []

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "required": ["violations"],
                "properties": {"violations": {"type": "array", "items": {"type": "string"}}}}

    def messages(self, item: Item) -> list[dict[str, str]]:
        rules = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(self.principles))
        return [{"role": "system", "content": "You review data against principles. Reply with JSON "
                                              "{\"violations\": [...]} listing each broken principle (empty if none)."},
                {"role": "user", "content": f"Principles:\n{rules}\n\nExample: {_show(item.seed or {})}"}]

    def parse_violations(self, text: str) -> tuple[list[str] | None, str | None]:
        value, reason = parse_json(text, self.schema())
        return (None, reason) if value is None else ([v for v in value["violations"] if str(v).strip()], None)

    def revision(self, item: Item, violations: list[str]) -> list[dict[str, str]]:
        rules = "\n".join(f"- {p}" for p in self.principles)
        return [self._system(), {"role": "user", "content": (
            f"Rewrite this example so that it follows every principle.\nPrinciples:\n{rules}\nProblems found: "
            f"{'; '.join(violations)}\nExample: {_show(item.seed or {})}")}]


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (SelfInstruct, EvolInstruct, Distill, CodeSolution)}


def get_strategy(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown prompt strategy {name!r}; known: {sorted(STRATEGIES)}")
    return STRATEGIES[name]
