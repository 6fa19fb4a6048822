"""The one exception tree of smg.

    SmgError                          status  code
    +-- ConfigError                   -       (start-up only; never an HTTP response)
    +-- InvalidRequest                400     invalid_request
    |   +-- InvalidJson               400     invalid_json
    |   +-- (smg.protocol) TooManyMessages, TooManyTools, DuplicateJsonKey
    |                                 400     too_many_messages, too_many_tools, duplicate_json_key
    +-- AuthenticationError           401     invalid_api_key
    +-- PermissionDenied              403     forbidden
    |   +-- ModelForbidden            403     model_forbidden  (the key's scope)
    |   +-- McpServerForbidden        403     mcp_server_forbidden  (the key's scope)
    +-- NotFound                      404     (base for the next three)
    |   +-- UnknownUrl                404     unknown_url
    |   +-- ModelNotFound             404     model_not_found
    |   +-- WorkerNotFound            404     worker_not_found
    |   +-- ResponseNotFound          404     response_not_found
    |   +-- KeyNotFound               404     key_not_found
    +-- MethodNotAllowed              405     method_not_allowed
    +-- Conflict                      409     (e.g. worker_exists, key_exists)
    +-- PayloadTooLarge               413     payload_too_large
    +-- RequestHeadTooLarge           431     request_header_too_large  (written by the HTTP protocol)
    +-- TooManyRequests               429     (base, + Retry-After)
    |   +-- AdmissionQueueFull        429     admission_queue_full
    |   +-- KeyRateLimited            429     key_rate_limited
    +-- StoreError                    500     internal_error  (a store's database; never raised itself)
    |   +-- ResponseStoreError        500     response_store_error
    |   |   +-- ResponseStoreUnavailable 503  response_store_error  (the database cannot be reached)
    |   +-- KeyStoreError             500     key_store_error
    |       +-- KeyStoreUnavailable   503     key_store_error  (the database cannot be reached)
    +-- UpstreamError                 5xx     (base: something between us and a worker failed)
    |   +-- UpstreamConnectError      502     upstream_unavailable
    |   +-- UpstreamProtocolError     502     upstream_protocol_error
    |   +-- UpstreamTimeout           504     upstream_timeout
    |   +-- UpstreamStatusError       any     the worker's own status and body, passed through
    +-- ServiceUnavailable            503     (base)
        +-- NoAvailableWorkers        503     no_available_workers
        +-- AdmissionQueueTimeout     503     admission_queue_timeout

Every error knows its HTTP status, OpenAI error ``type`` and machine-readable ``code``;
`smg.api.errors` is the only place that turns one into a response.
"""

from __future__ import annotations

from typing import ClassVar


class SmgError(Exception):
    """Base of every error smg raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "server_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        """Extra response headers this error asks for (beyond X-SMG-Error-Code)."""
        return {}


class ConfigError(SmgError):
    """A flag, environment variable or config file value is invalid (raised at start-up)."""

    code = "invalid_config"


class InvalidRequest(SmgError):
    status = 400
    code = "invalid_request"
    type = "invalid_request_error"


class InvalidJson(InvalidRequest):
    code = "invalid_json"


class AuthenticationError(SmgError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class PermissionDenied(SmgError):
    status = 403
    code = "forbidden"
    type = "permission_error"


class ModelForbidden(PermissionDenied):
    """The key's scope does not include the model the request names."""

    code = "model_forbidden"

    def __init__(self, model: str, *, key: str | None = None) -> None:
        super().__init__(f"the API key {key!r} may not use the model {model!r}", param="model")
        self.model = model


class McpServerForbidden(PermissionDenied):
    """The key's scope does not include the MCP server (or tool) the request names."""

    code = "mcp_server_forbidden"

    def __init__(self, message: str, *, server: str | None = None, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.server = server


class NotFound(SmgError):
    status = 404
    code = "not_found"
    type = "invalid_request_error"


class UnknownUrl(NotFound):
    code = "unknown_url"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist or is not served by any worker", param="model")
        self.model = model


class WorkerNotFound(NotFound):
    code = "worker_not_found"


class ResponseNotFound(NotFound):
    """A stored response that does not exist (never stored, ``store: false``, expired or deleted)."""

    code = "response_not_found"

    def __init__(self, response_id: str, *, param: str | None = None) -> None:
        super().__init__(f"Response with id '{response_id}' not found.", param=param)
        self.response_id = response_id


class StoreError(SmgError):
    """A store's database failed: the message names what is stored (``what``) and where (``path``, a
    file or a URL without its password), never a stored value."""

    what: ClassVar[str] = "stored data"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{self.what} at {path}: {message}" if path else f"{self.what}: {message}")
        self.path = path


class ResponseStoreError(StoreError):
    code = "response_store_error"
    what = "stored responses"


class ResponseStoreUnavailable(ResponseStoreError):
    """The stored responses' database cannot be reached right now (down, refused, connection lost)."""

    status = 503


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no API key named {name!r}", param="name")
        self.name = name


class KeyStoreError(StoreError):
    code = "key_store_error"
    what = "stored API keys"


class KeyStoreUnavailable(KeyStoreError):
    """The stored keys' database cannot be reached right now (down, refused, connection lost)."""

    status = 503


class MethodNotAllowed(SmgError):
    status = 405
    code = "method_not_allowed"
    type = "invalid_request_error"


class Conflict(SmgError):
    status = 409
    code = "conflict"
    type = "invalid_request_error"


class WorkerExists(Conflict):
    code = "worker_exists"


class KeyExists(Conflict):
    code = "key_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"an API key named {name!r} exists (revoked keys keep their name)", param="name")
        self.name = name


class PayloadTooLarge(SmgError):
    status = 413
    code = "payload_too_large"
    type = "invalid_request_error"


class RequestHeadTooLarge(SmgError):
    """431 ``request_header_too_large``: the request line and headers exceed ``--max-request-head-bytes``.
    Answered by the HTTP protocol (`smg.serving.http_protocol`) before the application sees the request."""

    status = 431
    code = "request_header_too_large"
    type = "invalid_request_error"


class TooManyRequests(SmgError):
    """429 with ``Retry-After``: when the client may try again."""

    status = 429
    code = "rate_limited"
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_secs: int = 1) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_secs)}


class AdmissionQueueFull(TooManyRequests):
    code = "admission_queue_full"


class KeyRateLimited(TooManyRequests):
    """The key's ``rpm`` is used up; ``Retry-After`` says when its next request is allowed."""

    code = "key_rate_limited"


class UpstreamError(SmgError):
    """A worker could not give a usable answer. Carries the worker URL when one was involved."""

    status = 502
    code = "upstream_error"

    def __init__(self, message: str, *, worker: str | None = None) -> None:
        super().__init__(message)
        self.worker = worker


class UpstreamConnectError(UpstreamError):
    code = "upstream_unavailable"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamStatusError(UpstreamError):
    """The worker answered with an error status; its status and body reach the client unchanged."""

    def __init__(self, status: int, body: bytes, *, content_type: str, worker: str) -> None:
        super().__init__(f"worker answered HTTP {status}", worker=worker)
        self.upstream_status = status
        self.body = body
        self.content_type = content_type


class ServiceUnavailable(SmgError):
    status = 503
    code = "service_unavailable"


class NoAvailableWorkers(ServiceUnavailable):
    code = "no_available_workers"


class AdmissionQueueTimeout(ServiceUnavailable):
    code = "admission_queue_timeout"
