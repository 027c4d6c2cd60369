from __future__ import annotations

import pytest

from miva_connect.egress import AddressPolicy
from miva_connect.onboarding.store_url import StoreUrlError, normalise_store_url

PUBLIC = AddressPolicy(allow_private=False)
PRIVATE = AddressPolicy(allow_private=True)


class TestNormalise:
    @pytest.mark.parametrize(
        ("pasted", "endpoint"),
        [
            ("https://www.example.com/mm5/json.mvc", "https://www.example.com/mm5/json.mvc"),
            ("www.example.com/mm5/json.mvc", "https://www.example.com/mm5/json.mvc"),
            ("  www.example.com/mm5/json.mvc\n", "https://www.example.com/mm5/json.mvc"),
            ("https://www.example.com/mm5", "https://www.example.com/mm5/json.mvc"),
            ("https://www.example.com/mm5/", "https://www.example.com/mm5/json.mvc"),
            (
                "https://www.example.com/mm5/admin.mvc?Screen=SUTL&Store_Code=X#top",
                "https://www.example.com/mm5/json.mvc",
            ),
            ("https://www.example.com/mm5/merchant.mvc", "https://www.example.com/mm5/json.mvc"),
            ("https://WWW.Example.COM./Merchant2/", "https://www.example.com/Merchant2/json.mvc"),
            ("https://www.example.com", "https://www.example.com/mm5/json.mvc"),
            ("https://www.example.com:443/mm5/", "https://www.example.com/mm5/json.mvc"),
            ("https://bücher.example/mm5/", "https://xn--bcher-kva.example/mm5/json.mvc"),
            ("HTTPS://shop.example.com/store/json.mvc", "https://shop.example.com/store/json.mvc"),
        ],
    )
    def test_accepts_what_merchants_paste(self, pasted: str, endpoint: str) -> None:
        assert normalise_store_url(pasted, policy=PUBLIC) == endpoint

    @pytest.mark.parametrize(
        "pasted",
        [
            "",
            "   ",
            "not a url",
            "ftp://example.com/mm5",
            "https://",
            "https://exa mple.com/",
            "https://example.com/mm5/../admin",
            "https://-bad-.example.com/",
            "x" * 3000,
            "https://example.com:99999/mm5",
            "javascript:alert(1)",
            "https://xn--rk8d/mm5/",
            "https://exa_mple.com/mm5/",
        ],
    )
    def test_rejects_what_is_not_a_url(self, pasted: str) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url(pasted, policy=PUBLIC)
        assert caught.value.code == "invalid_store_url"

    @pytest.mark.parametrize(
        "pasted",
        [
            "http://www.example.com/mm5/",
            "https://www.example.com:8443/mm5/",
            "https://user:pass@www.example.com/mm5/",
            "https://user@www.example.com/mm5/",
            "https://localhost/mm5/",
            "https://shop.localhost/mm5/",
            "https://127.0.0.1/mm5/",
            "https://10.0.0.8/mm5/",
            "https://169.254.169.254/mm5/",
            "https://[::1]/mm5/",
            "https://[::ffff:127.0.0.1]/mm5/",
            "https://2130706433/mm5/",
            "https://0x7f000001/mm5/",
            "https://127.1/mm5/",
            "https://0177.0.0.1/mm5/",
        ],
    )
    def test_refuses_private_or_unusual_targets_in_production(self, pasted: str) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url(pasted, policy=PUBLIC)
        assert caught.value.code == "store_url_not_allowed"

    def test_private_networks_allow_http_and_loopback(self) -> None:
        assert (
            normalise_store_url("http://127.0.0.1:8100/mm5", policy=PRIVATE)
            == "http://127.0.0.1:8100/mm5/json.mvc"
        )
        assert normalise_store_url("[::1]:8100/mm5/", policy=PRIVATE) == (
            "https://[::1]:8100/mm5/json.mvc"
        )

    def test_user_info_is_refused_even_on_private_networks(self) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url("http://u:p@127.0.0.1:8100/mm5", policy=PRIVATE)
        assert caught.value.code == "store_url_not_allowed"

    def test_the_normalised_endpoint_must_fit_too(self) -> None:
        pasted = "https://www.example.com/" + "a" * (2048 - len("https://www.example.com/"))
        with pytest.raises(StoreUrlError):
            normalise_store_url(pasted, policy=PUBLIC)

    def test_public_ip_literal_is_accepted(self) -> None:
        assert (
            normalise_store_url("https://93.184.216.34/mm5/", policy=PUBLIC)
            == "https://93.184.216.34/mm5/json.mvc"
        )


class TestAddressPolicy:
    """The URL check uses the same `AddressPolicy` as the HTTP client's guard."""

    @pytest.mark.parametrize(
        "pasted",
        [
            "https://100.64.0.1/mm5/",
            "https://100.100.100.200/mm5/",
            "https://168.63.129.16/mm5/",
            "https://224.0.0.1/mm5/",
            "https://[::127.0.0.1]/mm5/",
            "https://[64:ff9b::a9fe:a9fe]/mm5/",
            "https://[2002:7f00:1::1]/mm5/",
            "https://[fd00:ec2::254]/mm5/",
            "https://[fec0::1]/mm5/",
        ],
    )
    def test_refuses_addresses_python_calls_global(self, pasted: str) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url(pasted, policy=PUBLIC)
        assert caught.value.code == "store_url_not_allowed"

    @pytest.mark.parametrize(
        "pasted",
        [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://[::ffff:169.254.169.254]/",
            "http://0.0.0.0:8100/mm5/",
            "http://127.0.0.1:0/mm5/",
        ],
    )
    def test_metadata_stays_refused_on_private_networks(self, pasted: str) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url(pasted, policy=PRIVATE)
        assert caught.value.code == "store_url_not_allowed"

    def test_configured_ports_are_accepted_over_https_only(self) -> None:
        policy = AddressPolicy(allow_private=False, allowed_ports=frozenset({8443}))
        assert (
            normalise_store_url("https://shop.example.com:8443/mm5/", policy=policy)
            == "https://shop.example.com:8443/mm5/json.mvc"
        )
        for pasted in ("https://shop.example.com:8080/mm5/", "http://shop.example.com:8443/"):
            with pytest.raises(StoreUrlError) as caught:
                normalise_store_url(pasted, policy=policy)
            assert caught.value.code == "store_url_not_allowed"


class TestLiteralSpelling:
    def test_ipv4_mapped_ipv6_is_written_as_ipv4(self) -> None:
        endpoint = normalise_store_url("https://[::ffff:93.184.216.34]/mm5/", policy=PUBLIC)
        assert endpoint == "https://93.184.216.34/mm5/json.mvc"

    @pytest.mark.parametrize(
        "url", ["https://[64:ff9b::5db8:d822]/mm5/", "https://[2002:5db8:d822::1]/mm5/"]
    )
    def test_ipv4_inside_other_ipv6_forms_is_refused(self, url: str) -> None:
        with pytest.raises(StoreUrlError) as caught:
            normalise_store_url(url, policy=PUBLIC)
        assert caught.value.code == "store_url_not_allowed"

    def test_zone_ids_are_refused(self) -> None:
        with pytest.raises(StoreUrlError):
            normalise_store_url("https://[2606:4700::1111%25eth0]/mm5/", policy=PUBLIC)
