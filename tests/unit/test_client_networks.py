"""Which client a rate limit counts: an IPv4 address, or the /64 an IPv6 address is in."""

from __future__ import annotations

import pytest

from pipeline.web.ratelimit import network_of


@pytest.mark.parametrize(("host", "counted"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:eeee:dddd:cccc", "2001:db8:1:2::/64"),  # same /64: one client
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),  # the next /64: another
    ("[2001:db8:1:2::9]", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped (a dual-stack socket): the IPv4 client
    ("fe80::1%eth0", "fe80::/64"),
    ("testclient", "testclient"),  # not an address: counted as given
])
def test_clients_are_counted_per_ipv4_address_and_per_ipv6_64(host, counted):
    assert network_of(host) == counted
