"""Known-answer tests for request signing (reference section 2.6) and key decoding."""

import base64
import hashlib
import hmac
import traceback

import httpx
import pytest

from miva_connect.miva import AUTH_HEADER, InvalidSigningKey, MivaAuth, decode_signing_key
from miva_connect.miva.client import encode_body

TOKEN = "0123456789abcdef0123456789abcdef"
KEY_B64 = "ZXhhbXBsZS1zaWduaW5nLWtleS0zMi1ieXRlcyEhISE="
KEY = b"example-signing-key-32-bytes!!!!"
BODY = b'{"Store_Code":"SC","Function":"Store_Load","Miva_Request_Timestamp":1700000000}'
SPACED_BODY = (
    b'{"Store_Code": "SC", "Function": "Store_Load", "Miva_Request_Timestamp": 1700000000}'
)
SHA256_HEADER = f"MIVA-HMAC-SHA256 {TOKEN}:iM/w8vAvZIWf+QEwNEeSZE22Mdw8z6D068wUILald3U="
SHA1_HEADER = f"MIVA-HMAC-SHA1 {TOKEN}:njJYeBJYGE644znfJiVqs9vDkjc="
# Key bytes whose standard Base64 uses both `+` and `/`, so the URL-safe form differs.
PLUS_SLASH_KEY = base64.b64encode(b"\xfb\xff\xbf" * 11).decode()


class TestKnownAnswers:
    def test_reference_body_is_what_encode_body_produces(self) -> None:
        members = {
            "Store_Code": "SC",
            "Function": "Store_Load",
            "Miva_Request_Timestamp": 1700000000,
        }
        assert encode_body(members) == BODY
        assert len(BODY) == 79

    @pytest.mark.parametrize("key_text", [KEY_B64, KEY_B64.rstrip("=")])
    def test_sha256_header(self, key_text: str) -> None:
        auth = MivaAuth(TOKEN, decode_signing_key(key_text))
        assert auth.header_value(BODY) == SHA256_HEADER

    @pytest.mark.parametrize("key_text", [KEY_B64, KEY_B64.rstrip("=")])
    def test_sha1_header(self, key_text: str) -> None:
        auth = MivaAuth(TOKEN, decode_signing_key(key_text), digest="sha1")
        assert auth.header_value(BODY) == SHA1_HEADER

    def test_no_key_gives_the_unsigned_form(self) -> None:
        assert MivaAuth(TOKEN).header_value(BODY) == f"MIVA {TOKEN}"
        assert MivaAuth(TOKEN, decode_signing_key("")).header_value(BODY) == f"MIVA {TOKEN}"

    def test_same_object_with_other_spacing_gets_another_signature(self) -> None:
        header = MivaAuth(TOKEN, KEY).header_value(SPACED_BODY)
        assert header == f"MIVA-HMAC-SHA256 {TOKEN}:8Y1mwv99+IF7F7S0MiZETJnSRCKMndYMxPTDMAayZZ8="


class TestDecodeSigningKey:
    @pytest.mark.parametrize("key_text", [KEY_B64, KEY_B64.rstrip("=")])
    def test_accepts_padded_and_unpadded_standard_base64(self, key_text: str) -> None:
        assert decode_signing_key(key_text) == KEY

    @pytest.mark.parametrize("key_text", [f"  {KEY_B64}\n", f"\t{KEY_B64.rstrip('=')} \r\n"])
    def test_ignores_surrounding_whitespace(self, key_text: str) -> None:
        assert decode_signing_key(key_text) == KEY

    def test_accepts_plus_and_slash(self) -> None:
        assert decode_signing_key(PLUS_SLASH_KEY) == b"\xfb\xff\xbf" * 11

    @pytest.mark.parametrize("key_text", ["", "   ", "\n"])
    def test_blank_key_means_no_key(self, key_text: str) -> None:
        assert decode_signing_key(key_text) == b""

    @pytest.mark.parametrize(
        "key_text",
        [
            pytest.param(PLUS_SLASH_KEY.replace("+", "-").replace("/", "_"), id="url-safe"),
            pytest.param(f"{KEY_B64[:12]} {KEY_B64[12:]}", id="inner-space"),
            pytest.param(f"{KEY_B64[:12]}\n{KEY_B64[12:]}", id="inner-newline"),
            pytest.param(f"{KEY_B64[:-2]}*=", id="asterisk"),
            pytest.param(f"{KEY_B64[:-2]}é=", id="non-ascii"),
            pytest.param(f"{KEY_B64}\x00", id="nul"),
            pytest.param(f"{KEY_B64.rstrip('=')}AA", id="one-char-too-many"),
            pytest.param("====", id="only-padding"),
            pytest.param(f"{KEY_B64}{KEY_B64}", id="data-after-padding"),
        ],
    )
    def test_rejects_anything_but_strict_standard_base64(self, key_text: str) -> None:
        with pytest.raises(InvalidSigningKey):
            decode_signing_key(key_text)

    @pytest.mark.parametrize(
        "key_text",
        [
            PLUS_SLASH_KEY.replace("+", "-"),
            f"{KEY_B64[:12]} {KEY_B64[12:]}",
            f"{KEY_B64[:-2]}é=",
            f"{KEY_B64.rstrip('=')}AA",
        ],
    )
    def test_error_never_shows_the_key(self, key_text: str) -> None:
        with pytest.raises(InvalidSigningKey) as caught:
            decode_signing_key(key_text)
        shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
        assert key_text[:12] not in shown
        assert key_text[-12:] not in shown


class TestMivaAuth:
    @pytest.mark.parametrize(
        "token", ["", "abc def", " abc", "abc\t", "abc\n", "abc:def", ":", "abc:"]
    )
    def test_rejects_tokens_the_server_would_split(self, token: str) -> None:
        with pytest.raises(ValueError, match="access token"):
            MivaAuth(token, KEY)

    def test_repr_and_str_hold_neither_token_nor_key(self) -> None:
        auth = MivaAuth(TOKEN, KEY)
        for shown in (repr(auth), str(auth), f"{auth!r}"):
            assert TOKEN not in shown
            assert KEY.decode() not in shown
            assert KEY_B64.rstrip("=") not in shown

    def test_unsigned_copy_keeps_the_token_and_drops_the_key(self) -> None:
        auth = MivaAuth(TOKEN, KEY, digest="sha1")
        assert auth.signed
        assert not auth.unsigned().signed
        assert auth.unsigned().header_value(BODY) == f"MIVA {TOKEN}"

    @pytest.mark.parametrize("digest", ["sha256", "sha1"])
    async def test_signs_exactly_the_bytes_httpx_sends(self, digest: str) -> None:
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200)

        auth = MivaAuth(TOKEN, KEY, digest="sha1" if digest == "sha1" else "sha256")
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
            await http.post("https://shop.example/mm5/json.mvc", content=BODY)
            await http.post(
                "https://shop.example/mm5/json.mvc", json={"Name": "Grüße", "N": [1, 2]}
            )
            await http.post("https://shop.example/mm5/json.mvc", content="€ text")

        for request in sent:
            mac = hmac.new(KEY, request.content, getattr(hashlib, digest)).digest()
            expected = f"MIVA-HMAC-{digest.upper()} {TOKEN}:{base64.b64encode(mac).decode()}"
            assert request.headers[AUTH_HEADER] == expected
        assert sent[0].headers[AUTH_HEADER] == (
            SHA256_HEADER if digest == "sha256" else SHA1_HEADER
        )
