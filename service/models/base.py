"""Single-table inheritance for SQLModel table models.

SQLModel 0.0.50 does not support SQLAlchemy's polymorphic inheritance (fastapi/sqlmodel
issue #36; PRs #1226 and #1894 are unmerged). A subclass of a ``table=True`` model breaks
in two ways:

- SQLModel turns every inherited field into a new ``Column`` and then skips SQLAlchemy's
  declarative mapping (the class is left unmapped: ``'NoneType' object has no attribute
  'set'`` on the first attribute write);
- pydantic takes the parent's mapped attributes (``InstrumentedAttribute``) for the
  subclass fields' default values, so an unset field "defaults" to a descriptor.

``SingleTableInheritanceMeta`` fixes both in one place: a subclass of a table model
re-declares the inherited fields with the parent's own ``FieldInfo`` (so pydantic keeps
defaults and requiredness), creates no columns (the root's table holds them all) and is
mapped by SQLAlchemy with ``__tablename__ = None``, i.e. single-table inheritance on the
root's ``polymorphic_on`` column. Subclasses only give ``__mapper_args__ =
{"polymorphic_identity": ...}``.
"""

from __future__ import annotations

import warnings
from copy import copy
from typing import Any

from sqlalchemy.orm import DeclarativeMeta
from sqlmodel._compat import is_table_model_class
from sqlmodel.main import SQLModelMetaclass


def _table_base(bases: tuple[type[Any], ...]) -> type[Any] | None:
    return next((base for base in bases if is_table_model_class(base)), None)


class SingleTableInheritanceMeta(SQLModelMetaclass):
    """Metaclass of the root of a single-table hierarchy (``class Root(SQLModel, table=True,
    metaclass=SingleTableInheritanceMeta)``); its subclasses are mapped to the root's table."""

    def __new__(
        cls, name: str, bases: tuple[type[Any], ...], class_dict: dict[str, Any], **kwargs: Any
    ) -> Any:
        parent = _table_base(bases)
        if parent is None:
            return super().__new__(cls, name, bases, class_dict, **kwargs)
        annotations = dict(class_dict.get("__annotations__", {}))
        for field_name, field_info in parent.model_fields.items():
            if field_name not in annotations:
                annotations[field_name] = field_info.annotation
                class_dict[field_name] = copy(field_info)
        class_dict["__annotations__"] = annotations
        # No own table: SQLAlchemy maps a subclass without a table name onto the parent's.
        class_dict["__tablename__"] = None
        # ``table`` off while SQLModel builds the class, so it creates no duplicate columns...
        class_dict["model_config"] = {**class_dict.get("model_config", {}), "table": False}
        with warnings.catch_warnings():
            # ...and the re-declared fields do shadow the parent's mapped attributes, on purpose.
            warnings.filterwarnings("ignore", message=r"Field name .* shadows an attribute in parent")
            new_cls = super().__new__(cls, name, bases, class_dict, **kwargs)
        # ...then on again: instances are built and validated the table-model way.
        new_cls.model_config["table"] = True
        return new_cls

    def __init__(cls, classname: str, bases: tuple[type[Any], ...], dict_: dict[str, Any], **kw: Any) -> None:
        if _table_base(bases) is None:
            super().__init__(classname, bases, dict_, **kw)
        else:
            # SQLModel only maps classes without a table base; map the subclass ourselves.
            DeclarativeMeta.__init__(cls, classname, bases, dict_, **kw)
