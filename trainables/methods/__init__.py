"""Methods of the paper as orthogonal options (teacher recipe, distillation, post-hoc TS).

`registry` holds the option dataclasses and the named presets of the paper's rows; `losses`
holds the training tasks the one loop calls; `partners` picks MixUp partners.
"""
from trainables.methods.registry import (
    DistillConfig,
    METHODS,
    MethodConfig,
    MixupConfig,
    PRESETS,
    get_method,
    list_methods,
)

__all__ = ["DistillConfig", "METHODS", "MethodConfig", "MixupConfig", "PRESETS", "get_method", "list_methods"]
