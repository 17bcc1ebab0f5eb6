"""Griffe extensions for the API reference (``mkdocs.yml``), changing only what the site shows.

:class:`CommonOptions` spells out ``**common: Unpack[CommonOptions]`` (below).
:class:`DocstringMarkup` adapts the docstrings' reStructuredText habits to Markdown: an
``Example:`` heading becomes ``Examples:`` (the Google section griffe renders as code; it knows
only the plural) and Sphinx roles (``:class:`~maskmix.torch.RandomCutout```) become code spans.

``CommonOptions``:

Every maskmix transform and layer takes its shared options (``augmentation_ratio``,
``bernoulli_mix``, ``pixels_range``, ``generator`` / ``seed``, ...) as ``**common`` typed with a
``TypedDict``. A reader of the reference should see those options in the signature and in the
parameter table, not a ``**common`` to chase. For every function whose ``**kwargs`` is annotated
``Unpack[SomeTypedDict]``, this extension

* replaces the ``**kwargs`` parameter by one keyword-only parameter per field of the TypedDict
  (its annotation, and its default: the registry's for the common options, else ``None``;
  ``trainable`` defaults to ``True`` as in Keras), and
* replaces the ``**kwargs`` entry of the docstring's ``Args:`` section (of the function, or of the
  class when ``__init__`` is merged into it) by one entry per field, taking each field's
  description from the first docstring of the TypedDict's module that documents it (the base
  classes ``MaskMixTransform`` / ``MaskMixLayer`` do).

It changes only what the documentation shows; the source is untouched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

try:  # the registry's defaults for the shared options (standard library only)
    from maskmix.params import COMMON_PARAMS

    _DEFAULTS = {p.name: repr(p.default) for p in COMMON_PARAMS}
except ImportError:  # pragma: no cover - maskmix not importable: fall back to None
    _DEFAULTS = {}
_DEFAULTS.setdefault("trainable", "True")

_LOGGER = griffe.get_logger("griffe_common_options")


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _documented_fields(module: griffe.Module) -> dict[str, str]:
    """Field name -> one-line description, from the ``Args:`` sections of ``module``'s docstrings."""
    found: dict[str, str] = {}
    # Classes first: the base classes document the shared options in full.
    for obj in sorted(_objects(module), key=lambda o: not o.is_class):
        if obj.docstring is None:
            continue
        for section in obj.docstring.parse("google", warn_unknown_params=False, warn_missing_types=False):
            if section.kind is griffe.DocstringSectionKind.parameters:
                for param in section.value:
                    found.setdefault(param.name, " ".join(param.description.split()))
    return found


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|py:\w+):`~?([^`]+)`")
_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class DocstringMarkup(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                text = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
                obj.docstring.value = _ROLE.sub(lambda m: f"``{m.group(1)}``", text)


class CommonOptions(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in list(_objects(pkg)):
            if obj.is_function:
                self._expand(obj, loader)

    def _expand(self, func: griffe.Function, loader: griffe.GriffeLoader) -> None:
        params = list(func.parameters)
        var = next((p for p in params if p.kind is griffe.ParameterKind.var_keyword), None)
        if var is None or not str(var.annotation or "").startswith("Unpack["):
            return
        typed_dict = self._typed_dict(func, var, loader)
        if typed_dict is None:
            _LOGGER.warning(f"{func.path}: cannot resolve {var.annotation}; **{var.name} left as it is")
            return
        fields = [m for m in typed_dict.members.values() if m.is_attribute and not m.name.startswith("_")]
        existing = {p.name for p in params}
        new = [
            griffe.Parameter(f.name, annotation=f.annotation, kind=griffe.ParameterKind.keyword_only,
                             default=_DEFAULTS.get(f.name, "None"))
            for f in fields if f.name not in existing
        ]
        position = params.index(var)
        func.parameters = griffe.Parameters(*params[:position], *new, *params[position + 1:])
        docs = _documented_fields(typed_dict.module)
        owner = func.parent if func.name == "__init__" and func.parent is not None else func
        for holder in (func, owner):
            if holder.docstring is not None:
                holder.docstring.value = self._rewrite(holder.docstring.value, var.name, new, docs)

    @staticmethod
    def _typed_dict(func: griffe.Function, var: griffe.Parameter, loader: griffe.GriffeLoader) -> griffe.Class | None:
        annotation = var.annotation
        inner = getattr(annotation, "slice", None)
        path = getattr(inner, "canonical_path", None)
        if path is None:
            return None
        try:
            target = loader.modules_collection.get_member(path)
        except Exception:  # unresolvable: reported by the caller
            return None
        while target is not None and target.is_alias:
            target = target.final_target
        return target if target is not None and target.is_class else None

    @staticmethod
    def _rewrite(text: str, name: str, new: list[griffe.Parameter], docs: dict[str, str]) -> str:
        """Replace the ``**name:`` entry (and its continuation lines) of an ``Args:`` section."""
        lines = text.splitlines()
        for i, line in enumerate(lines):
            match = re.match(rf"^(\s*)\*\*{re.escape(name)}\s*:", line)
            if not match:
                continue
            indent = match.group(1)
            end = i + 1
            while end < len(lines) and lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) > len(indent):
                end += 1
            entries = [f"{indent}{p.name}: {docs.get(p.name, '(a shared option)')}"
                       for p in new]
            return "\n".join([*lines[:i], *entries, *lines[end:]])
        return text
