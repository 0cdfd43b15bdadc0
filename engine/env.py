"""What domain functions share within one process: the organisation and the spec cache."""

from __future__ import annotations

from dataclasses import dataclass

from engine.org import Organisation, load_organisation
from engine.settings import Settings
from engine.specs import SpecCache


@dataclass
class Env:
    settings: Settings
    org: Organisation
    specs: SpecCache

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Env:
        settings = settings or Settings()
        org = load_organisation(settings.config_dir)
        return cls(settings, org, SpecCache(org))
