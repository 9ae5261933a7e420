"""Tools that call an HTTP endpoint: the arguments go out as JSON, the response text comes back.

Each request says which call it serves in ``X-Voicecore-*`` headers (call id, channel,
direction, the numbers when known, the call's own parameters as JSON), so the service can act
on the caller without the LLM having to repeat who it is.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from voicecore.call_info import CallInfo
from voicecore.errors import ConfigError
from voicecore.tools import DEFAULT_TIMEOUT, Tool

__all__ = ["webhook_tool"]

_MAX_RESPONSE = 64 * 1024  # what the LLM is shown of a response, at most
_CALL = "_voicecore_call"  # the keyword the call comes in on: no JSON argument can take it


def webhook_tool(
    *,
    name: str,
    description: str,
    url: str,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Tool:
    """A tool that sends its arguments to ``url`` and gives the LLM the response body.

    ``POST``/``PUT`` send the arguments as a JSON body; ``GET`` sends none (the URL is fixed).
    A non-2xx status becomes an error message the LLM can relay.

    Raises:
        ConfigError: The URL is not http(s) or the method is not GET, POST or PUT.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"webhook tool {name!r}: url must start with http:// or https://, not {url!r}")
    verb = method.upper()
    if verb not in ("GET", "POST", "PUT"):
        raise ConfigError(f"webhook tool {name!r}: method must be GET, POST or PUT, not {method!r}")
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    fixed_headers = {"Content-Type": "application/json", **(headers or {})}

    def call(about: CallInfo, arguments: Mapping[str, Any]) -> str:
        body = None if verb == "GET" else json.dumps(arguments).encode()
        request_headers = {**fixed_headers, **call_headers(about)}
        request = urllib.request.Request(url, data=body, method=verb, headers=request_headers)
        try:
            with urllib.request.urlopen(request, timeout=limit) as response:
                text: str = response.read(_MAX_RESPONSE).decode("utf-8", "replace")
                return text
        except urllib.error.HTTPError as error:
            with error:
                detail = error.read(_MAX_RESPONSE).decode("utf-8", "replace")
            return f"Error: the service answered {error.code} {error.reason}: {detail}"

    async def run(**arguments: Any) -> str:
        about = arguments.pop(_CALL)
        return await asyncio.to_thread(call, about, arguments)

    return Tool(
        name=name,
        description=description,
        parameters=dict(parameters or {"type": "object", "properties": {}}),
        fn=run,
        timeout=limit,
        call_parameter=_CALL,
    )


def call_headers(call: CallInfo) -> dict[str, str]:
    """The ``X-Voicecore-*`` headers that tell a webhook which call a request serves."""
    headers = {
        "X-Voicecore-Call-Id": call.call_id,
        "X-Voicecore-Channel": call.channel,
        "X-Voicecore-Direction": call.direction,
    }
    if call.from_number:
        headers["X-Voicecore-From"] = call.from_number
    if call.to_number:
        headers["X-Voicecore-To"] = call.to_number
    if call.parameters:
        headers["X-Voicecore-Call-Parameters"] = json.dumps(dict(call.parameters), ensure_ascii=True)
    return headers
