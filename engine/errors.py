"""Domain errors. The web layer maps each to one HTTP status; the CLI to an exit code."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class Malformed(DomainError):
    code, status = "malformed", 400


class Unauthorized(DomainError):
    code, status = "unauthorized", 401


class Forbidden(DomainError):
    code, status = "forbidden", 403


class NotFound(DomainError):
    code, status = "not_found", 404


class Conflict(DomainError):
    code, status = "conflict", 409


class Gone(DomainError):
    code, status = "removed", 410


class TooLarge(DomainError):
    code, status = "too_large", 413


class UnsupportedType(DomainError):
    code, status = "unsupported_type", 415


class Invalid(DomainError):
    code, status = "invalid", 422


class DeployError(DomainError):
    """A definition was refused. `element` names the BPMN/DMN element or file at fault."""

    code, status = "invalid_definition", 422

    def __init__(self, message: str, element: str | None = None, file: str | None = None) -> None:
        where = " ".join(p for p in (f"file {file}" if file else "", f"element {element}" if element else "") if p)
        # keyed by the element at fault, so a modeler can point at it
        super().__init__(f"{where}: {message}" if where else message, {element: message} if element else None)
        self.detail = message  # the message without the place
        self.element = element
        self.file = file


class WorkflowFailed(DomainError):
    """The diagram itself failed on this input (a script or gateway raised)."""

    code, status = "workflow_error", 422


class DeployRefused(DomainError):
    """A deployment refused with every problem found: `fields` maps each element id (or `body`) to
    what is wrong with it."""

    code, status = "invalid_definition", 422
