"""What domain functions share within one process: the organisation, the spec cache and the
workflow cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.org import Organisation, load_organisation
from engine.settings import Settings
from engine.workflow.specs import SpecCache
from engine.workflow.workflows import WorkflowCache


@dataclass
class Env:
    settings: Settings
    org: Organisation
    specs: SpecCache
    workflows: WorkflowCache = field(default_factory=WorkflowCache)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Env:
        settings = settings or Settings()
        org = load_organisation(settings.config_dir)
        return cls(settings, org, SpecCache(org), WorkflowCache(settings.workflow_cache))
