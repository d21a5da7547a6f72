"""A small HTTP client of the REST API (what the CLI's client commands use), with credential resolution.

Credentials come, in order, from explicit arguments, the DIRCHAIN_API / DIRCHAIN_TOKEN environment, or the
dev profile's var/dev/credentials.json (`{"api": url, "orgs": {code: {"token": ...}}}`) picked by org code.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from chain_gateway.settings import VAR_DIR

__all__ = ["CREDENTIALS_PATH", "ApiClient", "ApiClientError", "Credentials", "resolve_credentials"]

CREDENTIALS_PATH = VAR_DIR / "dev" / "credentials.json"
DEFAULT_API = "http://127.0.0.1:8000"
TERMINAL = ("confirmed", "failed")


class ApiClientError(Exception):
    """The API answered with an error (its JSON body in `body`) or could not be reached (status 0)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('message')}")
        self.status = status
        self.body = body


class Credentials:
    def __init__(self, api: str, token: str | None, org: str | None) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.org = org


def resolve_credentials(
    api: str | None = None,
    token: str | None = None,
    org: str | None = None,
    credentials_path: Path = CREDENTIALS_PATH,
) -> Credentials:
    """API URL and token from arguments, then environment, then the dev credentials file (by `org`)."""
    api = api or os.environ.get("DIRCHAIN_API")
    token = token or os.environ.get("DIRCHAIN_TOKEN")
    org = org or os.environ.get("DIRCHAIN_ORG")
    if (api is None or token is None) and credentials_path.exists():
        saved = json.loads(credentials_path.read_text(encoding="utf-8"))
        api = api or saved.get("api")
        orgs: dict[str, Any] = saved.get("orgs", {})
        if token is None and org is not None:
            if org not in orgs:
                raise ApiClientError(0, {"code": "UNKNOWN_ORG", "message": f"{org} is not in {credentials_path}"})
            token = orgs[org].get("token")
    return Credentials(api or DEFAULT_API, token, org)


class ApiClient:
    """Calls of the REST API; errors raise `ApiClientError` with the API's error body."""

    def __init__(self, credentials: Credentials, http: httpx.Client | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
        self._http = http or httpx.Client(base_url=credentials.api, timeout=timeout)
        self._headers = headers

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ApiClientError(0, {"code": "API_UNREACHABLE", "message": f"cannot reach the API: {exc}"}) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"code": f"HTTP_{response.status_code}", "message": response.text[:500]}
        if response.status_code >= 400:
            raise ApiClientError(response.status_code, body if isinstance(body, dict) else {"message": str(body)})
        return body

    def list_devices(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self.request("GET", "/v1/devices", params=params)
        return result

    def get_device(self, code: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/devices/{code}")
        return result

    def history(self, code: str, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/v1/devices/{code}/history", params={"limit": limit, "offset": offset}
        )
        return result

    def register(self, body: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.request("POST", "/v1/devices", json=body, headers=headers)
        return result

    def lifecycle(
        self, code: str, action: str, replaced_by: str | None = None, note: str = "", idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action, "note": note}
        if replaced_by:
            body["replaced_by"] = replaced_by
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.request("POST", f"/v1/devices/{code}/lifecycle", json=body, headers=headers)
        return result

    # ------------------------------------------------------------ catalog and sharing

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with the non-None `params` as the query string."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.request("POST", path, json=body, headers=headers)
        return result

    def delete(self, path: str, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self.request("DELETE", path, headers=headers)
        return result

    def approval_typed_data(
        self, request_id: int, approver: str, decision: str = "approve", reason: str = "", deadline_seconds: int = 600
    ) -> dict[str, Any]:
        """The EIP-712 typed data `approver` signs for a decision on a request (eth_signTypedData_v4 JSON)."""
        params: dict[str, Any] = {"approver": approver, "decision": decision, "deadline_seconds": deadline_seconds}
        if reason:
            params["reason"] = reason
        result: dict[str, Any] = self.get(f"/v1/sharing-requests/{request_id}/approval-typed-data", **params)
        return result

    def operation(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/operations/{operation_id}")
        return result

    def wait(self, operation_id: str, timeout: float = 60.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll the operation until confirmed or failed; raises TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            op = self.operation(operation_id)
            if op["status"] in TERMINAL:
                return op
            if time.monotonic() >= deadline:
                raise TimeoutError(f"operation {operation_id} is still {op['status']} after {timeout:g} s")
            time.sleep(poll)
