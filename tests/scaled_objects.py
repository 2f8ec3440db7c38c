"""ScaledObject documents for the simulate tests, as a user would write them."""

from __future__ import annotations

from typing import Any

import yaml


def manifest(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def scaled_object(name: str = "consumer", *triggers: dict[str, Any], **spec_fields: Any):
    if not triggers:
        triggers = ({"type": "external", "metadata": {"backend": "fake", "name": "jobs"}},)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": "work"},
        "spec": {"scaleTargetRef": {"name": name}, **spec_fields, "triggers": list(triggers)},
    }
