"""The route policy table, trusted proxies and path hygiene (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import DEFAULT_ROUTES_DIR, SERVICES
from gateway.openapi import merge
from gateway.policy import Audience, PolicyError, load_policy
from gateway.security import InvalidPath, TrustedProxies, check_path, is_identity_header, mask_ip


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_every_service_route_file_loads() -> None:
    table = load_policy(DEFAULT_ROUTES_DIR, SERVICES)
    assert table.services() == frozenset(SERVICES)
    for service in SERVICES:
        healthz = table.match(service, f"/v1/{service}/healthz")
        assert healthz is not None
        assert healthz.audience is Audience.public
        internal = table.match(service, f"/v1/{service}/internal/anything")
        assert internal is not None
        assert internal.audience is Audience.service
        assert table.match(service, f"/v1/{service}/no-such-segment/x") is None


def test_longest_prefix_wins_and_prefixes_respect_segments(tmp_path: Path) -> None:
    write(
        tmp_path,
        "identity.toml",
        """
[[route]]
prefix = "/v1/identity/public/"
audience = "public"

[[route]]
prefix = "/v1/identity/public/otp"
audience = "public"
methods = ["POST"]
rate_class = "otp"

[[route]]
prefix = "/v1/identity/staff/"
audience = "staff"
min_acr = "aal2"
""",
    )
    table = load_policy(tmp_path, SERVICES)
    otp = table.match("identity", "/v1/identity/public/otp/verify")
    assert otp is not None
    assert otp.rate_class == "otp"
    assert otp.methods == frozenset({"POST"})
    other = table.match("identity", "/v1/identity/public/otpx")
    assert other is not None
    assert other.prefix == "/v1/identity/public/"
    staff = table.match("identity", "/v1/identity/staff/x")
    assert staff is not None
    assert staff.min_acr == "aal2"
    assert table.match("identity", "/v1/identity/staff") is None
    assert table.match("vault", "/v1/vault/public/x") is None


def test_get_routes_also_answer_head(tmp_path: Path) -> None:
    write(tmp_path, "risk.toml", '[[route]]\nprefix = "/v1/risk/healthz"\naudience = "public"\nmethods = ["GET"]\n')
    route = load_policy(tmp_path, SERVICES).match("risk", "/v1/risk/healthz")
    assert route is not None
    assert route.methods == frozenset({"GET", "HEAD"})


@pytest.mark.parametrize(
    "body",
    [
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "everyone"\n',
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "staff"\nmin_acr = "aal9"\n',
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "public"\nmin_acr = "aal2"\n',
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "staff"\nmethods = ["FETCH"]\n',
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "staff"\nrate_class = "vip"\n',
        '[[route]]\nprefix = "/v1/risk/x/"\naudience = "staff"\ntypo = 1\n',
        '[[route]]\nprefix = "/v1/payments/x/"\naudience = "staff"\n',
        '[[route]]\nprefix = "/v1/vault/x/"\naudience = "staff"\n',
        '[[route]]\nprefix = "/v1/risk/../vault/"\naudience = "public"\n',
        '[[route]]\nprefix = "/v1/risk/a/"\naudience = "staff"\n' * 2,
        "[[route]\n",
    ],
)
def test_a_broken_table_refuses_to_load(tmp_path: Path, body: str) -> None:
    write(tmp_path, "risk.toml", body)
    with pytest.raises(PolicyError):
        load_policy(tmp_path, SERVICES)


def test_trusted_proxies_pick_the_rightmost_untrusted_address() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "192.168.1.1/32"])
    assert proxies.client_ip("10.1.2.3", "6.6.6.6, 203.0.113.7, 192.168.1.1") == "203.0.113.7"
    assert proxies.client_ip("10.1.2.3", "203.0.113.7") == "203.0.113.7"
    assert proxies.client_ip("10.1.2.3", "10.9.9.9") == "10.9.9.9"
    assert proxies.client_ip("10.1.2.3", "not-an-ip") == "10.1.2.3"
    # An untrusted peer's header is ignored.
    assert proxies.client_ip("198.51.100.1", "203.0.113.7") == "198.51.100.1"
    assert TrustedProxies([]).client_ip("127.0.0.1", "1.2.3.4") == "127.0.0.1"


@given(st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=6))
def test_the_client_address_is_never_a_trusted_proxy_unless_all_are(chain: list[str]) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    client = proxies.client_ip("10.0.0.1", ", ".join(chain))
    untrusted = [hop for hop in chain if not proxies.trusts(hop)]
    assert client == (untrusted[-1] if untrusted else chain[0])


@given(st.text(alphabet="/.%2fFeE5cC\\ab", max_size=30))
def test_accepted_paths_have_no_dot_or_encoded_separator_segments(suffix: str) -> None:
    path = "/v1/identity/public/" + suffix
    try:
        check_path(path.encode(), path)
    except InvalidPath:
        return
    segments = path.split("/")[1:]
    assert "." not in segments
    assert ".." not in segments
    assert "" not in segments[:-1]
    assert "%2f" not in path.lower()
    assert "%2e" not in path.lower()


def test_identity_headers_and_ip_masking() -> None:
    assert is_identity_header(b"x-user-id")
    assert is_identity_header(b"x-authenticated-subject")
    assert not is_identity_header(b"authorization")
    assert not is_identity_header(b"content-type")
    assert mask_ip("203.0.113.77") == "203.0.113.0/24"
    assert mask_ip("2001:db8:1:2::9") == "2001:db8:1::/48"
    assert mask_ip("garbage") == "unknown"


def test_openapi_merge_keeps_client_routes_and_renames_schemas() -> None:
    table = load_policy(DEFAULT_ROUTES_DIR, SERVICES)
    ref = {"$ref": "#/components/schemas/Case"}
    document = {
        "paths": {
            "/staff/cases/{case_id}": {"get": {"summary": "Read a case", "responses": {"200": {"content": ref}}}},
            "/internal/cases": {"post": {"summary": "Open a case (services)"}},
            "/secret/": {"get": {"summary": "not in the policy table"}},
        },
        "components": {"schemas": {"Case": {"type": "object"}}},
    }
    merged = merge({"incidents": document}, table, version="1")
    assert list(merged["paths"]) == ["/v1/incidents/staff/cases/{case_id}"]
    operation = merged["paths"]["/v1/incidents/staff/cases/{case_id}"]["get"]
    assert operation["x-gateway-policy"]["audience"] == "staff"
    assert operation["security"] == [{"bearer": []}]
    assert operation["responses"]["200"]["content"] == {"$ref": "#/components/schemas/incidents__Case"}
    assert "incidents__Case" in merged["components"]["schemas"]
