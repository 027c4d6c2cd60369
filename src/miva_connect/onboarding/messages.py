"""What we tell a merchant for each outcome: what is wrong, and where in the Miva admin to fix it.

Texts never repeat submitted values or the store's own error text.
"""

from __future__ import annotations

from collections.abc import Sequence

TOKEN_SCREEN = "Settings > User Management > API Tokens"  # noqa: S105 (a menu path)

ENDPOINT_HINT = (
    "Paste the Endpoint URL from your Miva admin: "
    f"{TOKEN_SCREEN}, open the token, Settings tab, Copy next to Endpoint URL. "
    "It looks like https://www.yourstore.com/mm5/json.mvc."
)

MESSAGES: dict[str, str] = {
    "invalid_store_url": "That is not a store URL we can use. " + ENDPOINT_HINT,
    "store_url_not_allowed": "That address is not allowed ({reason}). " + ENDPOINT_HINT,
    "store_unreachable": (
        "We could not reach your store at that address (no answer, or a secure connection "
        "could not be made). Check that the store is online and that the URL is right. "
        + ENDPOINT_HINT
    ),
    "store_redirected": (
        "That address redirects elsewhere instead of answering API requests (it points to "
        "{location}). Enter the exact Endpoint URL, usually starting with https://. "
        + ENDPOINT_HINT
    ),
    "not_a_miva_store": (
        "That address did not answer like a Miva JSON API{detail}. " + ENDPOINT_HINT
    ),
    "store_api_offline": (
        "Your store's JSON API is switched off. Turn API access back on in your Miva admin, "
        "then try again."
    ),
    "access_denied": (
        "Your store rejected the API Key, or did not accept requests from our servers. Check "
        "that the API Key is the token's Access Token, copied whole without spaces, and that "
        "the token's Allowed IP Address(es) field ({screen}, Settings tab) lists {ips}."
    ),
    "token_disabled": (
        "This API token is disabled. Enable it in {screen}, or create a new token, then try again."
    ),
    "invalid_signature": (
        "The Signing Key does not match this token. Copy it again from the token's Signature "
        "section ({screen}, Settings tab), or click Generate, Save, and paste the new key."
    ),
    "signature_required": (
        "This token requires signed requests, so its Signing Key is needed. Paste the Signing "
        "Key from the token's Signature section ({screen}, Settings tab)."
    ),
    "timestamp_rejected": (
        "Your store rejected the time of our request. Check that your store server's clock is "
        "right, or widen the token's timestamp window, then try again."
    ),
    "invalid_store_code": (
        "This token cannot open a store with that Store Code. Check the code in your Miva "
        "admin under Settings > Store Settings, Store Details tab, Identification section."
    ),
    "missing_permissions": (
        "The token is missing these Role-Based Groups: {groups}. Open the token in {screen}, "
        "Groups tab, enable them, click Save, then try again."
    ),
    "invalid_signing_key": (
        "The Signing Key is not valid Base64. Copy it again from the token's Signature section; "
        "it looks like aGVsbG93b3JsZA==."
    ),
    "store_error": (
        "Your store answered with an unexpected error. Try again in a few minutes; if it keeps "
        "happening, contact the app that sent you here."
    ),
    "store_url_required": "Enter your store's Endpoint URL first. " + ENDPOINT_HINT,
    "invalid_store_code_format": (
        "Enter your Store Code, from your Miva admin under Settings > Store Settings, Store "
        "Details tab, Identification section: at most 64 letters, digits or punctuation, "
        "without spaces."
    ),
    "invalid_api_key": (
        "Enter the token's Access Token as the API Key ({screen}, Settings tab): at most 256 "
        "characters, without spaces or colons."
    ),
    "signature_not_enforced": (
        "Your token accepts requests without a signature, so the Access Token alone opens your "
        "store (and a Signing Key could not be checked). For better security, open the token "
        "({screen}, Settings tab), choose Require Signature with Key, and connect again with "
        "its Signing Key."
    ),
}


# What sits in front of a store (HTTP auth, a WAF, a wrong path) answers these, not json.mvc.
NOT_MIVA_DETAILS: dict[int, str] = {
    401: " (it asked for a password: is the site password-protected?)",
    403: " (it refused access)",
    404: "",
}


def message(code: str, **values: str) -> str:
    return MESSAGES[code].format(screen=TOKEN_SCREEN, **values)


def allowed_ips_text(egress_ips: Sequence[str]) -> str:
    if not egress_ips:
        return "our servers' addresses"
    return "these addresses: " + ", ".join(egress_ips)
