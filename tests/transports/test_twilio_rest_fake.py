"""The fake of Twilio's call-update endpoint, proven with Twilio's official SDK and voicecore's client."""

from __future__ import annotations

import asyncio

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from voicecore.errors import ProviderStatusError
from voicecore.fakes import FakeTwilioAPI
from voicecore.transports.twilio_rest import TwilioCalls

ACCOUNT, CALL = "AC00000000000000000000000000000001", "CA00000000000000000000000000000002"
TWIML = "<Response><Dial><Number>+14155550123</Number></Dial></Response>"


# The SDK's async client still authenticates with aiohttp's deprecated BasicAuth and auth=.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")
def test_the_official_sdk_updates_and_hangs_up_a_call_on_the_fake() -> None:
    async def main() -> tuple[FakeTwilioAPI, list[str], TwilioRestException]:
        async with FakeTwilioAPI(auth_token="token") as api:
            http = AsyncTwilioHttpClient()
            try:
                client = Client(ACCOUNT, "token", http_client=http)
                client.api.base_url = api.http_url
                updated = await client.calls(CALL).update_async(twiml=TWIML)
                ended = await client.calls(CALL).update_async(status="completed")
                intruder = Client(ACCOUNT, "wrong", http_client=http)
                intruder.api.base_url = api.http_url
                with pytest.raises(TwilioRestException) as refused:
                    await intruder.calls(CALL).update_async(status="completed")
            finally:
                await http.close()
            return api, [updated.status, ended.status], refused.value

    api, statuses, refused = asyncio.run(main())
    assert statuses == ["in-progress", "completed"]
    assert [(u.account_sid, u.call_sid, u.twiml, u.status) for u in api.updates] == [
        (ACCOUNT, CALL, TWIML, ""),
        (ACCOUNT, CALL, "", "completed"),
    ]
    assert (refused.status, refused.code) == (401, 20003)


def test_a_scripted_failure_reaches_voicecore_as_a_status_error() -> None:
    async def main() -> ProviderStatusError:
        async with FakeTwilioAPI(status=500) as api:
            with pytest.raises(ProviderStatusError) as failure:
                await TwilioCalls("token", base_url=api.http_url).update(ACCOUNT, CALL, TWIML)
            assert len(api.updates) == 1
            return failure.value

    failure = asyncio.run(main())
    assert failure.status == 500
    assert failure.provider == "twilio"
