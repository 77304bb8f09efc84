"""A Toxiproxy 2.12 compatible fault-injecting TCP proxy, its typed client and launcher.

Run it with ``python -m harness.proxy -host 127.0.0.1 -port 8474`` (or
``notepipe-toxiproxy``; see README.md here for how it is checked against the real
server and its deliberate differences); drive it with :class:`harness.proxy.client.ToxiproxyClient`,
or let :class:`harness.proxy.launcher.ToxiproxyServer` pick the real
``toxiproxy-server`` when one is available.
"""

from __future__ import annotations
