"""host:port parsing and resolution with Go's ``net`` conventions."""

from __future__ import annotations

import asyncio
import ipaddress
import socket


def split_host_port(address: str) -> tuple[str, int]:
    """``"h:p"``, ``"[::1]:p"`` or ``":p"`` → (host, port); ValueError like Go's messages."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if port_text.isdigit():
        if int(port_text) > 65535:
            raise ValueError(f"address {port_text}: invalid port")
        return host, int(port_text)
    try:
        return host, socket.getservbyname(port_text, "tcp")
    except OSError:
        raise ValueError(f"lookup tcp/{port_text}: unknown port") from None


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve(address: str) -> tuple[str, int]:
    """Resolve like ``net.ResolveTCPAddr("tcp", address)``: an IPv4 address is preferred."""
    host, port = split_host_port(address)
    if not host:
        return "", port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host, port
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ValueError(f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), port


def display(host: str, port: int) -> str:
    """``TCPAddr.String()``: the wildcard listener prints as ``[::]:port``."""
    return join_host_port(host or "::", port)
