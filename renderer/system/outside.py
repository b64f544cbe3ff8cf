"""What a run asks outside the host's files: a readiness probe and the cluster coordinator.

Kept apart from RealSystem's file handling; both are imported only by runs that restart a rolling
unit (renderer.rolling), never on the in-sync path.
"""

from __future__ import annotations


def probe(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a readiness probe without a shell; its output is kept to 4 KiB."""
    import subprocess

    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    except OSError as exc:
        return 127, f"{argv[0]}: {exc.strerror or exc}"
    output = (done.stdout + done.stderr)[:4096].decode("utf-8", "replace")
    return done.returncode, output


def post_json(url: str, body: bytes, timeout: float) -> bytes:
    """POST JSON to the coordinator; an HTTP error is an OSError with etcd's message."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return bytes(answer.read(1 << 20))
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}") from None
