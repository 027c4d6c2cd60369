"""Our signing agrees with Miva's official Python SDK (merchantapi 2.7.0)."""

import base64
import json
import random
import string
from typing import Any, Literal

import httpx
import pytest
import requests
from merchantapi.authenticator import TokenAuthenticator
from merchantapi.client import Client, ClientEncoder
from merchantapi.request import StoreLoad

from miva_connect.miva import AUTH_HEADER, MivaAuth, MivaClient, decode_signing_key

Digest = Literal["sha256", "sha1"]
DIGESTS: list[Digest] = ["sha256", "sha1"]
ENDPOINT = "https://shop.example/mm5/json.mvc"
TOKEN = "0123456789abcdef0123456789abcdef"
KEY_B64 = "ZXhhbXBsZS1zaWduaW5nLWtleS0zMi1ieXRlcyEhISE="
NOW = 1_700_000_000


def sdk_header(token: str, key_text: str, digest: Digest, body: bytes) -> str:
    authenticator = TokenAuthenticator(token, key_text, digest)
    header: str = authenticator.generate_authentication_header(body)
    return header


def our_header(token: str, key_text: str, digest: Digest, body: bytes) -> str:
    return MivaAuth(token, decode_signing_key(key_text), digest).header_value(body)


def random_case(rng: random.Random) -> tuple[str, str, bytes]:
    """A random token, a random key as the admin shows it (padding maybe dropped), a body."""
    token = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 48)))
    key_text = base64.b64encode(rng.randbytes(rng.randint(1, 64))).decode()
    if rng.random() < 0.5:
        key_text = key_text.rstrip("=")
    body = rng.randbytes(rng.randint(0, 600))
    return token, key_text, body


async def post_signed(auth: MivaAuth, body: bytes) -> httpx.Request:
    """Send `body` through httpx with our auth; return the request as it went out."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"success": 1})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await http.post(ENDPOINT, content=body, auth=auth)
    return sent[0]


class TestTokenAuthenticatorAgreement:
    @pytest.mark.parametrize("digest", DIGESTS)
    @pytest.mark.parametrize("key_text", [KEY_B64, KEY_B64.rstrip("=")])
    def test_reference_vector(self, digest: Digest, key_text: str) -> None:
        body = b'{"Store_Code":"SC","Function":"Store_Load","Miva_Request_Timestamp":1700000000}'
        assert our_header(TOKEN, key_text, digest, body) == sdk_header(
            TOKEN, key_text, digest, body
        )

    @pytest.mark.parametrize("digest", DIGESTS)
    def test_random_tokens_keys_and_bodies(self, digest: Digest) -> None:
        rng = random.Random(20240607)
        for _ in range(300):
            token, key_text, body = random_case(rng)
            assert our_header(token, key_text, digest, body) == sdk_header(
                token, key_text, digest, body
            ), (token, key_text, body)

    def test_unpadded_keys_of_every_padding_length(self) -> None:
        for length in range(1, 13):
            key_text = base64.b64encode(bytes(range(length))).decode().rstrip("=")
            assert our_header(TOKEN, key_text, "sha256", b"{}") == sdk_header(
                TOKEN, key_text, "sha256", b"{}"
            )


class TestWholeStoreLoadRequest:
    @staticmethod
    def sdk_store_load_body(client: Client) -> bytes:
        """The body `BaseClient.send` posts for a StoreLoad, built the same way."""
        request = StoreLoad(client)
        if request.get_store_code() in (None, ""):
            request.set_store_code(client.get_option("default_store_code"))
        data: dict[str, Any] = request.to_dict()
        data.update({"Function": request.get_function()})
        data["Miva_Request_Timestamp"] = NOW
        return json.dumps(data, cls=ClientEncoder).encode("utf-8")

    @pytest.mark.parametrize("digest", DIGESTS)
    async def test_sdk_body_is_signed_identically(self, digest: Digest) -> None:
        sdk = Client(ENDPOINT, TOKEN, KEY_B64, {"signing_key_digest": digest})
        sdk.set_option("default_store_code", "SC")
        body = self.sdk_store_load_body(sdk)

        sent = await post_signed(MivaAuth(TOKEN, decode_signing_key(KEY_B64), digest), body)

        assert sent.content == body
        assert sent.headers[AUTH_HEADER] == sdk.generate_auth_header(body)

    async def test_sdk_send_and_our_auth_agree_on_the_posted_bytes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        posted: dict[str, Any] = {}

        def fake_post(url: str, data: bytes, headers: dict[str, str], **_: object) -> Any:
            posted.update(url=url, data=data, headers=headers)
            reply = requests.Response()
            reply.status_code = 200
            reply._content = b'{"success":1,"data":{"code":"SC"}}'
            return reply

        monkeypatch.setattr(requests, "post", fake_post)
        sdk = Client(ENDPOINT, TOKEN, KEY_B64.rstrip("="), {"default_store_code": "SC"})
        assert sdk.send(StoreLoad(sdk)).is_success()

        sent = await post_signed(MivaAuth(TOKEN, decode_signing_key(KEY_B64)), posted["data"])

        assert sent.content == posted["data"]
        assert sent.headers[AUTH_HEADER] == posted["headers"]["X-Miva-API-Authorization"]

    async def test_our_store_load_is_the_sdk_object_compactly_encoded(self) -> None:
        sdk = Client(ENDPOINT, TOKEN, KEY_B64, {"default_store_code": "SC"})
        sdk_body = self.sdk_store_load_body(sdk)
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json={"success": 1})

        auth = MivaAuth(TOKEN, decode_signing_key(KEY_B64))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await MivaClient(http, ENDPOINT, "SC", auth, clock=lambda: NOW).call("Store_Load")

        assert list(json.loads(sent[0].content).items()) == list(json.loads(sdk_body).items())
        assert sent[0].content != sdk_body  # SDK: spaces after ':' and ','; ours: compact
        assert sent[0].headers[AUTH_HEADER] == sdk.generate_auth_header(sent[0].content)
