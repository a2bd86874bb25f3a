"""A minimal RESP2/RESP3 client for tests: raw sockets, exact replies, no client library
in the way. `render` prints replies the way the script files spell them."""

import socket


class RespError(Exception):
    """An error reply; str() is the text after '-'."""


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def command(self, *args):
        self.send_raw(encode(args))
        return self.read_reply()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return Status(rest.decode())
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        if kind == b"%":
            n = int(rest)
            return dict_pairs([(self.read_reply(), self.read_reply()) for _ in range(n)])
        if kind == b"_":
            return None
        if kind == b",":
            return float(rest)
        if kind == b"#":
            return rest == b"t"
        raise ValueError(f"bad reply line {line!r}")


class Status(str):
    """A simple-string reply (+OK), distinct from a bulk string."""


class dict_pairs(list):
    """A RESP3 map, kept as a list of pairs to preserve order."""


def encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def render_step(r, unordered: bool) -> str:
    """render(), sorting a top-level array first when the step is unordered."""
    if unordered and isinstance(r, list) and not isinstance(r, dict_pairs):
        return render(sorted(r, key=render))
    return render(r)


def render(r) -> str:
    """redis-cli's rendering, one line: `(integer) 1`, `"v"`, `(nil)`, `(error) ...`."""
    if isinstance(r, RespError):
        return f"(error) {r}"
    if isinstance(r, Status):
        return str(r)
    if isinstance(r, bool):
        return f"(bool) {str(r).lower()}"
    if isinstance(r, int):
        return f"(integer) {r}"
    if isinstance(r, bytes):
        return '"' + r.decode("utf-8", "replace") + '"'
    if r is None:
        return "(nil)"
    if isinstance(r, float):
        return f"(double) {r}"
    if isinstance(r, dict_pairs):
        return "{" + ",".join(f"{render(k)}:{render(v)}" for k, v in r) + "}"
    if isinstance(r, list):
        return "(empty array)" if not r else "[" + ",".join(render(x) for x in r) + "]"
    raise TypeError(r)


def split(line: str):
    """Splits a script command line: spaces separate, double quotes group."""
    out, cur, quoted, any_ = [], [], False, False
    for c in line:
        if c == '"':
            quoted, any_ = not quoted, True
        elif c == " " and not quoted:
            if any_:
                out.append("".join(cur))
                cur, any_ = [], False
        else:
            cur.append(c)
            any_ = True
    if any_:
        out.append("".join(cur))
    return out


def parse_script(path):
    """(line number, command, expected, unordered) for each step of a script file.

    A line starting with `~ ` compares an array reply as a set: Redis leaves the order
    of KEYS, SMEMBERS and the like unspecified."""
    steps = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            unordered = line.startswith("~ ")
            if unordered:
                line = line[2:]
            cmd, sep, want = line.partition(" => ")
            if not sep:
                raise ValueError(f"{path}:{n}: no ' => ' in {line!r}")
            steps.append((n, cmd, want, unordered))
    return steps


def replay(conn, path, name, who):
    """Sends every step of the script at `path` on `conn`; the steps whose reply differs
    from the file's, described with `who` as the replier's name."""
    mismatches = []
    for n, cmd, want, unordered in parse_script(path):
        got = render_step(conn.command(*split(cmd)), unordered)
        if got != want:
            mismatches.append(f"{name}:{n}: {cmd}\n  file  {want}\n  {who} {got}")
    return mismatches
