"""A static scan of the services' code for the event types they publish and read.

The scan parses every module under ``services/<service>/src`` (nothing is imported
from the services, so a broken module is reported, not hidden) and records:

- every string literal shaped like a type (``send.<owner>.<Name>.v<N>``). A literal of
  the service's own prefix is a type it publishes; one of another owner is a type it
  reads;
- every ``X.EVENT_TYPE``, resolved through the module's imports (and, for a function
  parameter, through its annotation, ``Model`` or ``type[Model]``) to the
  ``send_schemas`` model it names;
- the type argument of every call that makes an event to publish: ``NewEvent`` (the
  kernel's appended event), ``RecordedEvent`` (published straight through the kernel's
  envelope) and ``Emitted`` (the deadlines engine's output). It must be a literal or an
  ``EVENT_TYPE`` naming a type of the service's own owner, or the ``.type`` of a
  parameter annotated as one of those classes (a type already checked where that
  object was made);
- every class the service defines with an ``EVENT_TYPE``: event models belong in
  ``send_schemas``, never in a service.

``problems`` says what breaks the rules; the contract test fails while there are any.
A service that built its type strings at run time (an f-string) would be reported at
the call, because the scan could not tell what it publishes.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from send_schemas.registry import EventType

TYPE_LITERAL = re.compile(r"^send\.([a-z][a-z0-9]*)\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$")
# Calls that make an event for publishing, and where their type argument sits.
PUBLISHING_CALLS: Mapping[str, int] = {"NewEvent": 0, "RecordedEvent": 4, "Emitted": 1}


@dataclass(frozen=True, slots=True)
class Reference:
    """A type string (or model) a service's code names, and where."""

    service: str
    event_type: str
    where: str
    published: bool


@dataclass(slots=True)
class ScanResult:
    references: list[Reference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: int = 0

    def published(self) -> set[str]:
        return {r.event_type for r in self.references if r.published}

    def read(self) -> set[str]:
        return {r.event_type for r in self.references if not r.published}


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name to the dotted path it was imported as."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _load(dotted: str) -> Any:
    """The object a dotted path names: a module, or an attribute chain in one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


def _class_annotated(annotation: ast.expr) -> ast.expr:
    """The class a parameter annotated ``type[Model]`` holds, else the annotation."""
    if isinstance(annotation, ast.Subscript) and _dotted(annotation.value) == "type":
        return annotation.slice
    return annotation


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _ModuleScan(ast.NodeVisitor):
    def __init__(
        self,
        service: str,
        path: str,
        tree: ast.Module,
        registered: Mapping[str, EventType],
        result: ScanResult,
    ) -> None:
        self.service = service
        self.path = path
        self.imports = _imports(tree)
        self.registered = registered
        self.result = result
        self.annotations: list[dict[str, ast.expr]] = [{}]

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', 0)}"

    def problem(self, node: ast.AST, text: str) -> None:
        self.result.problems.append(f"{self.where(node)}: {text}")

    # Scopes, to resolve a parameter's annotation.
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        scope = dict(self.annotations[-1])
        scope.update({a.arg: a.annotation for a in args if a.annotation is not None})
        self.annotations.append(scope)
        self.generic_visit(node)
        self.annotations.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            targets: list[ast.expr] = []
            if isinstance(statement, ast.Assign):
                targets = list(statement.targets)
            elif isinstance(statement, ast.AnnAssign):
                targets = [statement.target]
            if any(isinstance(t, ast.Name) and t.id == "EVENT_TYPE" for t in targets):
                self.problem(
                    node,
                    f"class {node.name} defines EVENT_TYPE: event models live in "
                    f"send_schemas.{self.service}, not in the service",
                )
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and (match := TYPE_LITERAL.match(node.value)):
            self.reference(node, node.value, published=match[1] == self.service)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "EVENT_TYPE":
            for entry_type in self.model_types(node.value, node):
                owner = entry_type.split(".")[1]
                self.reference(node, entry_type, published=owner == self.service)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1] if name else None
        if short is not None and short in PUBLISHING_CALLS:
            self.check_published(node, short, PUBLISHING_CALLS[short])
        self.generic_visit(node)

    # Checks.
    def reference(self, node: ast.AST, event_type: str, *, published: bool) -> None:
        self.result.references.append(
            Reference(self.service, event_type, self.where(node), published)
        )
        if published and event_type not in self.registered:
            self.problem(
                node,
                f"{self.service} names its own type {event_type}, which is not in "
                "the registry: add its model to send_schemas."
                f"{self.service} and run python -m send_schemas.generate",
            )

    def check_published(self, node: ast.Call, call: str, position: int) -> None:
        argument: ast.expr | None = next(
            (k.value for k in node.keywords if k.arg == "type"), None
        )
        if argument is None and len(node.args) > position:
            argument = node.args[position]
        if argument is None:
            return
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            types = [argument.value]
        elif isinstance(argument, ast.Attribute) and argument.attr == "EVENT_TYPE":
            types = self.model_types(argument.value, argument)
        elif self.passes_on_a_checked_type(argument):
            return
        else:
            self.problem(
                node,
                f"{call}(type=...) is given {ast.unparse(argument)!r}: pass a literal "
                "type or <Model>.EVENT_TYPE, so the scan can check what is published",
            )
            return
        for event_type in types:
            owner = event_type.split(".")[1] if event_type.count(".") >= 3 else None
            if owner != self.service:
                self.problem(
                    node,
                    f"{self.service} makes a {event_type} event to publish, but only "
                    f"the {owner} service writes that type",
                )
            elif event_type not in self.registered:
                self.problem(node, f"{event_type} is published but not registered")

    def passes_on_a_checked_type(self, argument: ast.expr) -> bool:
        """``x.type`` of a parameter annotated as another publishing call's class.

        The type of that object was checked where it was made (an ``Emitted`` built
        from a model's ``EVENT_TYPE``, say), so copying it publishes nothing new.
        """
        if not (
            isinstance(argument, ast.Attribute)
            and argument.attr == "type"
            and isinstance(argument.value, ast.Name)
        ):
            return False
        annotation = self.annotations[-1].get(argument.value.id)
        named = _dotted(annotation) if annotation is not None else None
        return named is not None and named.rsplit(".", 1)[-1] in PUBLISHING_CALLS

    def model_types(self, expression: ast.expr, node: ast.AST) -> list[str]:
        """The registered types an ``<expression>.EVENT_TYPE`` may be."""
        model = self.resolve(expression)
        if model is None:
            self.problem(
                node,
                f"cannot tell which model {ast.unparse(expression)!r} is: import the "
                "send_schemas model, or annotate the parameter with its base class",
            )
            return []
        concrete = getattr(model, "EVENT_TYPE", "")
        if concrete:
            if concrete not in self.registered:
                self.problem(node, f"{concrete} is used but not registered")
            return [concrete]
        # A base class: any registered model derived from it.
        found = [
            t for t, entry in self.registered.items() if issubclass(entry.model, model)
        ]
        if not found:
            self.problem(node, f"{model.__qualname__} has no registered event model")
        return found

    def resolve(self, expression: ast.expr) -> type[BaseModel] | None:
        dotted = _dotted(expression)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        annotation = self.annotations[-1].get(head)
        if head not in self.imports and annotation is not None and not rest:
            dotted = _dotted(_class_annotated(annotation)) or ""
            head, _, rest = dotted.partition(".")
        if head not in self.imports:
            return None
        target = self.imports[head] + (f".{rest}" if rest else "")
        try:
            value = _load(target)
        except (ImportError, AttributeError):
            return None
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value
        return None


def service_modules(root: Path) -> Iterator[tuple[str, Path]]:
    """``(service, path)`` of every module under ``services/<service>/src``."""
    for service_dir in sorted(p for p in (root / "services").iterdir() if p.is_dir()):
        for path in sorted((service_dir / "src").rglob("*.py")):
            yield service_dir.name, path


def scan(root: Path, registered: Mapping[str, EventType]) -> ScanResult:
    """Scan every service's code under ``root`` (the repository)."""
    result = ScanResult()
    for service, path in service_modules(root):
        relative = str(path.relative_to(root))
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        except SyntaxError as error:
            result.problems.append(f"{relative}: cannot be parsed ({error.msg})")
            continue
        result.files += 1
        _ModuleScan(service, relative, tree, registered, result).visit(tree)
    result.problems = sorted(set(result.problems))
    return result
